"""SNMP driver speed: GETs per second through SnmpClient, versus a loop of net-snmp snmpget.

    python bench/driver_snmp.py [--requests 2000] [--concurrency 16] [--repeat 3]

Against (a) the simulator's SNMP agent (pysnmp, run in a child process so that its CPU is not
this process's) and (b) a private net-snmp snmpd, each over v2c and v3 authPriv (SHA/AES):

  driver sequential      one GET of sysName.0 at a time, awaited
  driver concurrent      --concurrency tasks sharing one client
  driver 10 OIDs/PDU     sequential GETs of ten OIDs each (rate in varbinds/s)
  snmpget loop           one snmpget process after another (processes/s)

Figures are medians of --repeat runs; "cpu ms/req" is this process's CPU per request (the
driver's cost; the agents run in other processes). Writes bench/results/driver_snmp.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from drivers.snmp.client import SnmpClient  # noqa: E402 - after the path fix
from drivers.snmp.target import SnmpTarget  # noqa: E402

SYS_NAME = "1.3.6.1.2.1.1.5.0"
TEN = [f"1.3.6.1.2.1.1.{n}.0" for n in (1, 2, 3, 4, 5, 6, 7)] + [
    "1.3.6.1.2.1.2.1.0", "1.3.6.1.2.1.2.2.1.2.1", "1.3.6.1.2.1.2.2.1.2.2"]
AUTH_KEY, PRIV_KEY = "ponctl-auth-key", "ponctl-priv-key"


# ---- agents --------------------------------------------------------------------------------
async def serve_simulator() -> None:
    """Child process: one simulated OLT's SNMP face; prints its port, runs until stdin EOF."""
    from simulator.devices import Credentials, Olt, SnmpSettings
    from simulator.snmp import SnmpAgent

    settings = SnmpSettings("public", "private", "ponctl", AUTH_KEY, PRIV_KEY)
    olt = Olt("olt-bench", "127.0.0.1", Credentials("admin", "admin-password"), settings,
              frozenset({"snmp"}), ["0/1/0", "0/1/1"], {"0/9/0": frozenset({100})})
    agent = await SnmpAgent.start(olt, "127.0.0.1", 0, [])
    print(agent.port, flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await agent.close()


@contextmanager
def simulator_agent() -> Iterator[int]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve-simulator"], cwd=REPO,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def net_snmpd(home: Path) -> Iterator[int]:
    """A private snmpd (its own config and persistent directory) on a free loopback port."""
    snmpd = shutil.which("snmpd") or "/usr/sbin/snmpd"
    (home / "conf").mkdir(parents=True)
    (home / "persist").mkdir()
    conf = home / "conf" / "snmpd.conf"
    conf.write_text("rocommunity public 127.0.0.1\n"
                    f"createUser ponctl SHA {AUTH_KEY} AES {PRIV_KEY}\nrouser ponctl priv\n"
                    "dontLogTCPWrappersConnects yes\n")
    port = _free_port()
    env = {**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": str(home / "persist")}
    with (home / "snmpd.log").open("wb") as log:
        proc = subprocess.Popen([snmpd, "-f", "-Lo", "-C", "-c", str(conf), "-p",
                                 str(home / "pid"), f"udp:127.0.0.1:{port}"],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while run_snmpget(port, "v2c", home, timeout=0.2) != 0:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("snmpd did not start: " + (home / "snmpd.log").read_text())
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


# ---- measurements --------------------------------------------------------------------------
def target(port: int, version: str) -> SnmpTarget:
    if version == "v3":
        return SnmpTarget("127.0.0.1", port, "v3", user="ponctl", auth_key=AUTH_KEY,
                          priv_key=PRIV_KEY, timeout=2.0, retries=1)
    return SnmpTarget("127.0.0.1", port, "v2c", community="public", timeout=2.0, retries=1)


async def timed(n: int, work: Callable[[], Awaitable[None]]) -> tuple[float, float]:
    """(requests per second, CPU ms per request) of ``work`` doing ``n`` requests."""
    cpu, wall = time.process_time(), time.perf_counter()
    await work()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, cpu * 1000 / n


async def driver_runs(port: int, version: str, n: int, concurrency: int,
                      repeat: int) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {"sequential": [], "concurrent": [],
                                                  "ten": []}
    async with SnmpClient(target(port, version)) as snmp:
        await snmp.get(SYS_NAME)  # engine discovery (v3) and warm-up

        async def sequential() -> None:
            for _ in range(n):
                await snmp.get(SYS_NAME)

        async def concurrent() -> None:
            async def worker(k: int) -> None:
                for _ in range(k):
                    await snmp.get(SYS_NAME)
            share = n // concurrency
            async with asyncio.TaskGroup() as tg:
                for _ in range(concurrency):
                    tg.create_task(worker(share))

        async def ten() -> None:
            for _ in range(n // 10):
                await snmp.get(*TEN)

        for _ in range(repeat):
            out["sequential"].append(await timed(n, sequential))
            out["concurrent"].append(await timed(n // concurrency * concurrency, concurrent))
            rate, cpu = await timed(n // 10, ten)
            out["ten"].append((rate * 10, cpu))
    return out


def run_snmpget(port: int, version: str, home: Path, timeout: float = 2.0) -> int:
    tool = shutil.which("snmpget") or "snmpget"
    creds = ["-v2c", "-c", "public"] if version == "v2c" else [
        "-v3", "-l", "authPriv", "-u", "ponctl", "-a", "SHA", "-A", AUTH_KEY, "-x", "AES",
        "-X", PRIV_KEY]
    env = {**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": str(home),
           "SNMPCONFPATH": str(home)}
    return subprocess.run([tool, *creds, "-m", "", "-t", str(timeout), "-r", "0",
                           f"udp:127.0.0.1:{port}", SYS_NAME], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          check=False).returncode


def snmpget_loop(port: int, version: str, runs: int, repeat: int, home: Path) -> list[float]:
    rates = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(runs):
            if run_snmpget(port, version, home) != 0:
                raise RuntimeError(f"snmpget {version} against port {port} failed")
        rates.append(runs / (time.perf_counter() - started))
    return rates


def median_pair(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r for r, _ in runs), statistics.median(c for _, c in runs)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-snmp-") as tmp, \
            simulator_agent() as sim_port, net_snmpd(Path(tmp) / "snmpd") as snmpd_port:
        home = Path(tmp) / "tools"
        home.mkdir()
        for agent, port in (("simulator", sim_port), ("net-snmp snmpd", snmpd_port)):
            for version in ("v2c", "v3"):
                runs = await driver_runs(port, version, args.requests, args.concurrency,
                                         args.repeat)
                for key, mode, unit in (
                        ("sequential", "driver sequential", "GET/s"),
                        ("concurrent", f"driver {args.concurrency} concurrent", "GET/s"),
                        ("ten", "driver 10 OIDs/PDU", "varbinds/s")):
                    rate, cpu = median_pair(runs[key])
                    rows.append({"agent": agent, "version": version, "mode": mode,
                                 "rate": round(rate), "unit": unit,
                                 "cpu_ms_per_request": round(cpu, 3)})
                rate = statistics.median(snmpget_loop(port, version, args.tool_runs,
                                                      args.repeat, home))
                rows.append({"agent": agent, "version": version, "mode": "snmpget loop",
                             "rate": round(rate), "unit": "processes/s",
                             "cpu_ms_per_request": None})
    return {"machine": f"{platform.machine()}, {os.cpu_count()} cpus, "
                       f"Python {platform.python_version()}",
            "requests": args.requests, "concurrency": args.concurrency,
            "repeat": args.repeat, "tool_runs": args.tool_runs, "rows": rows}


def table(result: dict[str, Any]) -> str:
    lines = [f"{'agent':<16}{'ver':<5}{'mode':<24}{'rate':>9}  {'unit':<13}{'cpu ms/req':>10}"]
    for r in result["rows"]:
        cpu = "" if r["cpu_ms_per_request"] is None else f"{r['cpu_ms_per_request']:.3f}"
        lines.append(f"{r['agent']:<16}{r['version']:<5}{r['mode']:<24}{r['rate']:>9}  "
                     f"{r['unit']:<13}{cpu:>10}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--requests", type=int, default=2000, help="GETs per driver run")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tool-runs", type=int, default=100, help="snmpget processes per run")
    ap.add_argument("--serve-simulator", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_simulator:
        asyncio.run(serve_simulator())
        return
    result = asyncio.run(bench(args))
    print(result["machine"])
    print(table(result))
    out = REPO / "bench" / "results" / "driver_snmp.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"written to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
