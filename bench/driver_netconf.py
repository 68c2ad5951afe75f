"""NETCONF get-config round trips per second on one session: this driver against other clients.

    python bench/driver_netconf.py [--requests 1000] [--repeat 5] [--depths 4,16,64]

The simulator's OLT and its NETCONF server run in a subprocess (this script with --serve), so
that the client under test and the server each have their own process and CPU accounting.
Every client fetches the same unfiltered running configuration (the factory OLT's, ~3.4 KB)
on one session, and the median of ``--repeat`` runs is reported:

  driver sequential    NetconfDriver.get_config awaited one at a time
  driver pipelined N   N concurrent callers on the one session, replies matched by message-id;
                       the driver keeps at most max_in_flight (default 16) on the wire
  netconf-client       netconf_client.ncclient.Manager (synchronous, paramiko + reader thread)
  ncclient             ncclient's manager, with its send-queue TICK lowered to 1 ms, and as
                       shipped (0.1 s: about ten requests a second, so fewer requests)
  [AES-GCM]            what-if rows: the driver again with asyncssh made to offer AES-GCM
                       first (asyncssh's default, chacha20-poly1305, builds several cipher
                       contexts per packet; paramiko's clients negotiate AES). SshTarget has
                       no cipher option yet, so the bench wraps asyncssh.connect for these.

Besides rates it reports client and server CPU milliseconds per request (from process_time
and /proc/<pid>/stat), and the server's ceiling: 1 / the server's CPU seconds per request,
measured at the deepest pipeline (what the server could answer if it never waited).
Results go to bench/results/driver_netconf.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncssh

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from anywhere

from bench.report import markdown_table  # noqa: E402
from drivers.netconf import NetconfDriver  # noqa: E402
from drivers.ssh_transport import SshTarget  # noqa: E402

RESULTS = REPO / "bench" / "results" / "driver_netconf.json"
AES_GCM = "aes128-gcm@openssh.com"
WARMUP = 50


# ---- the server (subprocess) ----------------------------------------------------------------

async def _serve() -> None:
    from simulator.devices import Credentials, Olt, SnmpSettings
    from simulator.netconf import NetconfServer

    key = asyncssh.generate_private_key("ssh-ed25519")
    olt = Olt("olt-bench", "127.0.0.1", Credentials("admin", "admin"),
              SnmpSettings("public", "private", "ponctl", "authkey123", "privkey123"),
              frozenset({"netconf"}), ["0/1/0", "0/1/1"], {"0/9/0": frozenset({1000, 2000})})
    srv = await NetconfServer.start(olt, "127.0.0.1", 0, key)
    print(json.dumps({"port": srv.port, "key": key.export_public_key().decode().strip()}),
          flush=True)
    # Serve until the parent closes our stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await srv.close()


class Server:
    """The server subprocess: its port, host key and CPU seconds used so far."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert self.proc.stdout is not None
        info = json.loads(self.proc.stdout.readline())
        self.port = int(info["port"])
        self.known_hosts = f"[127.0.0.1]:{self.port} {info['key']}"

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# ---- measuring ------------------------------------------------------------------------------

class Run:
    """One measured run: wall time, client CPU, server CPU, request count."""

    def __init__(self, server: Server, n: int) -> None:
        self.server, self.n = server, n

    def __enter__(self) -> Run:
        self.t0, self.c0, self.s0 = time.perf_counter(), time.process_time(), self.server.cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.t0
        self.client_cpu = time.process_time() - self.c0
        self.server_cpu = self.server.cpu() - self.s0

    @property
    def rate(self) -> float:
        return self.n / self.wall


def summarise(runs: list[Run]) -> dict[str, float]:
    n = runs[0].n
    return {
        "rpc_per_s": round(statistics.median(r.rate for r in runs), 1),
        "client_cpu_ms_per_rpc": round(statistics.median(r.client_cpu for r in runs)
                                       / n * 1000, 3),
        "server_cpu_ms_per_rpc": round(statistics.median(r.server_cpu for r in runs)
                                       / n * 1000, 3),
        "requests_per_run": n,
        "runs": len(runs),
    }


@contextlib.contextmanager
def prefer_ciphers(algs: list[str] | None) -> Iterator[None]:
    """What-if: make asyncssh offer ``algs`` first (SshTarget has no such option yet)."""
    if algs is None:
        yield
        return
    original = asyncssh.connect
    setattr(asyncssh, "connect", functools.partial(original, encryption_algs=algs))  # noqa: B010
    try:
        yield
    finally:
        setattr(asyncssh, "connect", original)  # noqa: B010


async def bench_driver(server: Server, n: int, repeat: int, depths: list[int],
                       label: str = "") -> tuple[dict[str, dict[str, float]], int, float, str]:
    target = SshTarget("127.0.0.1", server.port, "admin", "admin",
                       known_hosts_text=server.known_hosts, timeout=30)
    out: dict[str, dict[str, float]] = {}
    connects = []
    for _ in range(5):
        t0 = time.perf_counter()
        d = NetconfDriver(target)
        await d.connect()
        connects.append(time.perf_counter() - t0)
        await d.close()
    async with NetconfDriver(target) as dev:
        assert dev._session is not None
        cipher = str(dev._session._conn.get_extra_info("send_cipher"))
        size = len((await dev.get_config()).data)
        for _ in range(WARMUP):
            await dev.get_config()
        runs = []
        for _ in range(repeat):
            with Run(server, n) as run:
                for _ in range(n):
                    await dev.get_config()
            runs.append(run)
        out[f"driver sequential{label}"] = summarise(runs)
        for depth in depths:
            runs = []
            for _ in range(repeat):
                per_worker = n // depth

                async def worker(count: int = per_worker) -> None:
                    for _ in range(count):
                        await dev.get_config()

                with Run(server, per_worker * depth) as run:
                    await asyncio.gather(*(worker() for _ in range(depth)))
                runs.append(run)
            out[f"driver pipelined {depth}{label}"] = summarise(runs)
    return out, size, statistics.median(connects), cipher


def bench_sync(server: Server, name: str, connect: Callable[[], Any],
               fetch: Callable[[Any], Any], close: Callable[[Any], Any], n: int,
               repeat: int, warmup: int = WARMUP) -> tuple[dict[str, float], float]:
    setups = []
    for _ in range(3):
        t0 = time.perf_counter()
        client = connect()
        setups.append(time.perf_counter() - t0)
        if len(setups) < 3:
            close(client)
    connect_s = statistics.median(setups)
    try:
        for _ in range(warmup):
            fetch(client)
        runs = []
        for _ in range(repeat):
            with Run(server, n) as run:
                for _ in range(n):
                    fetch(client)
            runs.append(run)
    finally:
        close(client)
    print(f"  {name}: done", file=sys.stderr)
    return summarise(runs), connect_s


def netconf_client_manager(server: Server, n: int, repeat: int) -> tuple[dict[str, float],
                                                                        float]:
    from netconf_client.connect import connect_ssh
    from netconf_client.ncclient import Manager

    def connect() -> Any:
        return Manager(connect_ssh(host="127.0.0.1", port=server.port, username="admin",
                                   password="admin",  # noqa: S106 - the lab's login
                                   initial_timeout=30), timeout=30)

    def close(m: Any) -> None:
        m.close_session()
        m.session.close()

    return bench_sync(server, "netconf-client", connect,
                      lambda m: m.get_config(source="running"), close, n, repeat)


def ncclient_manager(server: Server, n: int, repeat: int,
                     tick: float | None) -> tuple[dict[str, float], float]:
    import ncclient.transport.session
    from ncclient import manager

    shipped = ncclient.transport.session.TICK
    if tick is not None:
        ncclient.transport.session.TICK = tick
    try:
        def connect() -> Any:
            return manager.connect(host="127.0.0.1", port=server.port, username="admin",
                                   password="admin",  # noqa: S106 - the lab's login
                                   hostkey_verify=False,
                                   look_for_keys=False, allow_agent=False, timeout=30)

        return bench_sync(server, f"ncclient tick={tick or shipped}", connect,
                          lambda m: m.get_config(source="running"),
                          lambda m: m.close_session(), n, repeat,
                          warmup=WARMUP if tick is not None else 3)
    finally:
        ncclient.transport.session.TICK = shipped


# ---- report ---------------------------------------------------------------------------------

def table(results: dict[str, dict[str, float]], baseline: str) -> str:
    base = results[baseline]["rpc_per_s"]
    rows = [("client", "rpc/s", f"x {baseline}", "client ms/rpc", "server ms/rpc")]
    for name, r in results.items():
        rows.append((name, f"{r['rpc_per_s']:,.0f}", f"{r['rpc_per_s'] / base:.2f}",
                     f"{r['client_cpu_ms_per_rpc']:.3f}", f"{r['server_cpu_ms_per_rpc']:.3f}"))
    return markdown_table(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--requests", type=int, default=1000, help="requests per run")
    ap.add_argument("--repeat", type=int, default=5, help="runs per client (median)")
    ap.add_argument("--depths", default="4,16,64", help="pipeline depths, comma-separated")
    ap.add_argument("--skip-aes-gcm", action="store_true",
                    help="skip the what-if rows with AES-GCM preferred over chacha20")
    ap.add_argument("--skip-ncclient-default", action="store_true",
                    help="skip ncclient with its shipped 0.1 s TICK (slow)")
    args = ap.parse_args()
    if args.serve:
        asyncio.run(_serve())
        return
    depths = [int(d) for d in args.depths.split(",")]
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        # Client and server each want a CPU; anything else running skews every figure.
        print(f"warning: load average {load_before:.2f} before starting; figures will be "
              "noisy", file=sys.stderr)
    server = Server()
    try:
        results, size, driver_connect, cipher = asyncio.run(
            bench_driver(server, args.requests, args.repeat, depths))
        print("  driver: done", file=sys.stderr)
        connects = {"driver": driver_connect}
        if not args.skip_aes_gcm:
            with prefer_ciphers([AES_GCM]):
                more, _, _, _ = asyncio.run(bench_driver(server, args.requests, args.repeat,
                                                         depths, label=" [AES-GCM]"))
            results.update(more)
            print("  driver, AES-GCM: done", file=sys.stderr)
        results["netconf-client Manager"], connects["netconf-client Manager"] = \
            netconf_client_manager(server, args.requests, args.repeat)
        results["ncclient (TICK 1 ms)"], connects["ncclient"] = ncclient_manager(
            server, max(100, args.requests // 2), args.repeat, 0.001)
        if not args.skip_ncclient_default:
            results["ncclient (TICK 0.1 s)"], _ = ncclient_manager(server, 20, 3, None)
    finally:
        server.stop()

    baseline = "netconf-client Manager"
    deepest = f"driver pipelined {max(depths)}"
    ceiling = 1000 / results[deepest]["server_cpu_ms_per_rpc"]
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                   f"{platform.python_version()}",
        "server": "simulator OLT NetconfServer in a subprocess, 127.0.0.1",
        "driver_cipher": cipher,
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "reply_bytes": size,
        "results": results,
        "ratio_to_netconf_client_manager": {
            k: round(v["rpc_per_s"] / results[baseline]["rpc_per_s"], 2)
            for k, v in results.items()},
        "server_ceiling_rpc_per_s": round(ceiling, 1),
        "pipelined_share_of_ceiling": round(results[deepest]["rpc_per_s"] / ceiling, 2),
        "connect_ms": {k: round(v * 1000, 1) for k, v in connects.items()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"get-config of the running config ({size} bytes) on one session, "
          f"median of {args.repeat} runs; {report['machine']}")
    print(table(results, baseline))
    print(f"server ceiling (1 / server CPU per request at depth {max(depths)}): "
          f"{ceiling:,.0f} rpc/s; driver pipelined {max(depths)} reaches "
          f"{report['pipelined_share_of_ceiling']:.0%} of it")
    print("connect (ms): " + ", ".join(f"{k} {v}" for k, v in report["connect_ms"].items()))
    print(f"written to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
