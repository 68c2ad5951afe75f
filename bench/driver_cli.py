"""SSH CLI driver speed: connection setups and CLI commands per second.

    python bench/driver_cli.py [--reps 3] [--handshakes 100] [--commands 500] [--no-sshd]

Peers:
  sim       the simulator's OLT CLI (asyncssh server) in its own process, password auth
  sim-loop  the same server in the benchmark's own event loop (client and server share one
            core and no wake-ups cross processes: how LIBRARY-NOTES measured asyncssh pairs)
  sshd      a private OpenSSH sshd on a free loopback port, ed25519 key authentication
            (skipped with the reason when sshd is missing or cannot start). sshd runs every
            session through the user's login shell, so its exec and shell rows include that
            shell's start-up (rc files) — a property of the host, not of the driver.

Rows (each the median of --reps repetitions):
  ssh setups/s, sequential     open_ssh (TCP, kex, host key check, auth) then close, one at a time
  ssh setups/s, 8 concurrent   the same with 8 connections in flight
  driver connects/s            CliDriver connect+close: the above plus shell, PTY, first prompt
                               and the paging-off command
  commands/s, one session      send_command round trips on one open shell (display version /
                               true)
  exec/s, one connection       one exec channel per command on one connection

Writes bench/results/driver_cli.json. A measurement, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from drivers.cli import CliDriver, Platform, load_platform
from drivers.ssh_transport import SshTarget, open_ssh
from simulator.cli import CliServer
from simulator.devices import Credentials, Olt, SnmpSettings

REPO = Path(__file__).resolve().parent.parent
SSHD = Path("/usr/sbin/sshd")
CONCURRENCY = 8

# The simulator in a child process: one OLT's CLI face on a free port; prints port and host
# key, serves until its stdin closes.
SIM_SERVER = """
import asyncio, sys
import asyncssh
from simulator.cli import CliServer
from simulator.devices import Credentials, Olt, SnmpSettings

async def main():
    olt = Olt("OLT1", "127.0.0.1", Credentials("admin", "bench-pw"),
              SnmpSettings("public", "private", "ponctl", "authkey-123", "privkey-123"),
              frozenset({"ssh"}), ["0/1/0", "0/1/1"], {"0/9/0": frozenset({100})})
    key = asyncssh.generate_private_key("ssh-ed25519")
    server = await CliServer.start(olt, "127.0.0.1", 0, key)
    print(server.port, key.export_public_key().decode().strip(), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await server.close()

asyncio.run(main())
"""


@dataclass
class Peer:
    name: str
    target: SshTarget
    platform: Platform
    command: str  # a cheap command for the per-session rate


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def sim_peer() -> Iterator[Peer]:
    proc = subprocess.Popen([sys.executable, "-c", SIM_SERVER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None
        port_text, public = proc.stdout.readline().split(" ", 1)
        known = f"[127.0.0.1]:{port_text} {public.strip()}\n"
        yield Peer("sim", SshTarget("127.0.0.1", int(port_text), "admin", "bench-pw",
                                    known_hosts_text=known),
                   load_platform("huawei-olt"), "display version")
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.asynccontextmanager
async def sim_loop_peer() -> AsyncIterator[Peer]:
    olt = Olt("OLT1", "127.0.0.1", Credentials("admin", "bench-pw"),
              SnmpSettings("public", "private", "ponctl", "authkey-123", "privkey-123"),
              frozenset({"ssh"}), ["0/1/0", "0/1/1"], {"0/9/0": frozenset({100})})
    key = asyncssh.generate_private_key("ssh-ed25519")
    server = await CliServer.start(olt, "127.0.0.1", 0, key)
    try:
        known = f"[127.0.0.1]:{server.port} {key.export_public_key().decode().strip()}\n"
        yield Peer("sim-loop", SshTarget("127.0.0.1", server.port, "admin", "bench-pw",
                                         known_hosts_text=known),
                   load_platform("huawei-olt"), "display version")
    finally:
        await server.close()


@contextlib.contextmanager
def sshd_peer(tmp: Path) -> Iterator[Peer | str]:
    """A private sshd, or the reason there is none."""
    if not SSHD.is_file() or shutil.which("ssh-keygen") is None:
        yield "sshd or ssh-keygen not installed"
        return
    run_dir = Path("/run/sshd")
    try:
        run_dir.mkdir(mode=0o755, exist_ok=True)
    except OSError as exc:
        yield f"{run_dir} missing and cannot be created: {exc.strerror}"
        return
    host = tmp / "host"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-f", str(host), "-N", ""],
                   check=True, capture_output=True, timeout=30)
    client = asyncssh.generate_private_key("ssh-ed25519")
    (tmp / "authorized_keys").write_bytes(client.export_public_key())
    port = _free_port()
    conf = tmp / "sshd_config"
    conf.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {host}", f"PidFile {tmp / 'pid'}",
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "PubkeyAuthentication yes", "UsePAM no",
        "StrictModes no", "PermitRootLogin yes", "PrintMotd no", "PrintLastLog no",
        "MaxStartups 100", "LogLevel ERROR", ""]))
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(conf)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                yield f"sshd exited with status {proc.returncode}"
                return
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                yield "sshd did not start listening within 10 s"
                return
            time.sleep(0.02)
        public = " ".join((tmp / "host.pub").read_text().split()[:2])
        yield Peer("sshd", SshTarget("127.0.0.1", port, getpass.getuser(), client_keys=(client,),
                                     known_hosts_text=f"[127.0.0.1]:{port} {public}\n"),
                   load_platform("linux-shell"), "true")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- measurements ---------------------------------------------------------------------------
async def rate(n: int, workers: int, one: Callable[[], Awaitable[None]]) -> float:
    """Operations per second doing ``n`` operations with ``workers`` in flight."""
    counter = iter(range(n))

    async def worker() -> None:
        for _ in counter:
            await one()

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(workers):
            tg.create_task(worker())
    return n / (time.perf_counter() - t0)


async def median(reps: int, measure: Callable[[], Awaitable[float]]) -> float:
    return statistics.median([await measure() for _ in range(reps)])


async def bench_peer(peer: Peer, reps: int, handshakes: int, commands: int) -> dict[str, float]:
    target = peer.target

    async def setup() -> None:
        conn = await open_ssh(target)
        conn.close()
        await conn.wait_closed()

    async def driver_connect() -> None:
        driver = CliDriver(target, peer.platform)
        await driver.connect()
        await driver.close()

    out: dict[str, float] = {}
    await setup()  # warm up (imports, first key exchange)
    out["ssh setups/s, sequential"] = await median(reps, lambda: rate(handshakes, 1, setup))
    out[f"ssh setups/s, {CONCURRENCY} concurrent"] = await median(
        reps, lambda: rate(handshakes, CONCURRENCY, setup))
    out["driver connects/s, sequential"] = await median(
        reps, lambda: rate(max(handshakes // 2, 1), 1, driver_connect))
    async with CliDriver(target, peer.platform) as cli:
        async def command() -> None:
            await cli.send_command(peer.command)

        async def exec_once() -> None:
            await cli.exec(peer.command)

        out["commands/s, one session"] = await median(reps, lambda: rate(commands, 1, command))
        out["exec/s, one connection"] = await median(
            reps, lambda: rate(max(commands // 5, 1), 1, exec_once))
    return {k: round(v, 1) for k, v in out.items()}


async def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--handshakes", type=int, default=100)
    ap.add_argument("--commands", type=int, default=500)
    ap.add_argument("--no-sshd", action="store_true")
    args = ap.parse_args()
    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {platform.python_version()}, "
                   f"asyncssh {asyncssh.__version__}",
        "reps": args.reps, "handshakes": args.handshakes, "commands": args.commands,
        "peers": {}}
    with sim_peer() as sim:
        result["peers"]["sim"] = await bench_peer(sim, args.reps, args.handshakes, args.commands)
    async with sim_loop_peer() as sim_loop:
        result["peers"]["sim-loop"] = await bench_peer(sim_loop, args.reps, args.handshakes,
                                                       args.commands)
    if args.no_sshd:
        result["peers"]["sshd"] = "skipped (--no-sshd)"
    else:
        with tempfile.TemporaryDirectory() as tmp, sshd_peer(Path(tmp)) as sshd:
            result["peers"]["sshd"] = (
                await bench_peer(sshd, args.reps, args.handshakes, args.commands)
                if isinstance(sshd, Peer) else f"skipped: {sshd}")
    return result


def table(result: dict[str, Any]) -> str:
    peers: dict[str, Any] = result["peers"]
    rows = sorted({row for figures in peers.values() if isinstance(figures, dict)
                   for row in figures}, key=lambda r: list(peers["sim"]).index(r)
                  if r in peers["sim"] else 99)
    width = max(len(r) for r in rows)
    lines = [f"{'':<{width}}  " + "  ".join(f"{name:>10}" for name in peers)]
    for row in rows:
        cells = [f"{figures[row]:>10.1f}" if isinstance(figures, dict) else f"{'-':>10}"
                 for figures in peers.values()]
        lines.append(f"{row:<{width}}  " + "  ".join(cells))
    lines += [f"{name}: {figures}" for name, figures in peers.items()
              if not isinstance(figures, dict)]
    return "\n".join(lines)


if __name__ == "__main__":
    res = asyncio.run(main())
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "driver_cli.json").write_text(json.dumps(res, indent=2) + "\n")
    print(f"{res['machine']}; medians of {res['reps']}")
    print(table(res))
