"""Shared helpers for the SNMP driver tests: targets for the simulator's agent, and a private
net-snmp ``snmpd`` started and stopped around a test module.

Not a conftest: other drivers' tests live in this folder too.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from drivers.snmp.target import SnmpTarget
from simulator.snmp import SnmpAgent
from tests.sim.snmp_tools import SETTINGS, free_udp_port, get_request_bytes

SNMPD = "/usr/sbin/snmpd"
AUTH_KEY = "ponctl-auth-key"
PRIV_KEY = "ponctl-priv-key"
SYS_LOCATION = "1.3.6.1.2.1.1.6.0"


def sim_v2c(agent: SnmpAgent, community: str = "private", **kw: float) -> SnmpTarget:
    """A v2c target for a simulated device (``private`` writes, ``public`` only reads)."""
    return SnmpTarget("127.0.0.1", agent.port, "v2c", community=community,
                      timeout=kw.get("timeout", 1.0), retries=int(kw.get("retries", 1)))


def sim_v3(agent: SnmpAgent, **kw: str) -> SnmpTarget:
    """A v3 authPriv target for a simulated device (its settings decide the protocols)."""
    return SnmpTarget("127.0.0.1", agent.port, "v3", user=SETTINGS.v3_user,
                      auth_key=kw.get("auth_key", SETTINGS.v3_auth_key),
                      priv_key=kw.get("priv_key", SETTINGS.v3_priv_key),
                      auth_protocol=kw.get("auth_protocol", "SHA"),  # type: ignore[arg-type]
                      priv_protocol=kw.get("priv_protocol", "AES"),  # type: ignore[arg-type]
                      timeout=1.0, retries=1)


@dataclass(frozen=True)
class Snmpd:
    """A running private snmpd."""

    port: int
    home: Path
    proc: subprocess.Popen[bytes]

    def target(self, **kw: object) -> SnmpTarget:
        args: dict[str, object] = {"timeout": 1.0, "retries": 1, **kw}
        return SnmpTarget("127.0.0.1", self.port, **args)  # type: ignore[arg-type]

    def v3(self, **kw: object) -> SnmpTarget:
        args: dict[str, object] = {"version": "v3", "user": "ponctl", "auth_key": AUTH_KEY,
                                   "priv_key": PRIV_KEY, **kw}
        return self.target(**args)


def need(tool: str) -> str:
    path = shutil.which(tool) or (tool if os.path.exists(tool) else None)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian packages snmp, snmpd)")
    return path


def _answers(port: int) -> bool:
    """One v2c GET of sysName.0 (bytes built by scapy, not by the code under test)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        s.sendto(get_request_bytes("public"), ("127.0.0.1", port))
        try:
            return bool(s.recv(65535))
        except TimeoutError:
            return False


@contextmanager
def snmpd(home: Path) -> Iterator[Snmpd]:
    """A private snmpd on a free loopback port: its own config and persistent directory,
    no system MIBs. The v3 user is created from the config file (snmpd moves it to the
    persistent directory's snmpd.conf as a localized usmUser line)."""
    tool = need(SNMPD)
    conf_dir, persist = home / "conf", home / "persist"
    conf_dir.mkdir(parents=True, exist_ok=True)
    persist.mkdir(exist_ok=True)
    conf = conf_dir / "snmpd.conf"
    # sysLocation and sysContact are left out, so they stay writable by SET.
    conf.write_text(
        "rocommunity public 127.0.0.1\n"
        "rwcommunity private 127.0.0.1 .1.3.6.1.2.1.1\n"
        f"createUser ponctl SHA {AUTH_KEY} AES {PRIV_KEY}\n"
        "rwuser ponctl priv\n"
        "dontLogTCPWrappersConnects yes\n")
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(persist), "MIBS": "",
           "SNMPCONFPATH": str(conf_dir)}
    for _ in range(3):  # the free port may be taken between probing and binding
        port = free_udp_port()
        log = (home / "snmpd.log").open("wb")
        proc = subprocess.Popen(
            [tool, "-f", "-Lo", "-C", "-c", str(conf), "-p", str(home / "snmpd.pid"),
             f"udp:127.0.0.1:{port}"], env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline and not _answers(port):
            time.sleep(0.05)
        if proc.poll() is None and _answers(port):
            break
        _stop(proc)
    else:
        raise AssertionError("snmpd did not start: "
                             + (home / "snmpd.log").read_text(errors="replace"))
    try:
        yield Snmpd(port, home, proc)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tool_env(home: Path) -> dict[str, str]:
    """A private home for a net-snmp tool: no user config, no system MIBs."""
    home.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": str(home),
            "SNMPCONFPATH": str(home)}


async def run_tool(*args: str, home: Path, timeout: float = 10.0) -> tuple[int, str]:
    """Run a net-snmp command-line tool without blocking the loop; (exit code, output)."""
    path = need(args[0])
    proc = await asyncio.create_subprocess_exec(
        path, *args[1:], env=tool_env(home), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace")
