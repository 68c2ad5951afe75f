"""Support for the SNMP face tests: a small lab OLT, and net-snmp's tools as independent clients.

The net-snmp command-line tools run as subprocesses (``asyncio.create_subprocess_exec``) so the
agent's event loop keeps serving while they wait. Each run gets a private persistent and
configuration directory, and ``-m ""`` so no system MIB or user config is read.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from scapy.asn1.asn1 import ASN1_OID
from scapy.layers.snmp import SNMP, SNMPget, SNMPvarbind

from simulator.config import builder as b
from simulator.devices import (
    Credentials,
    Gateway,
    Olt,
    OntState,
    SnmpSettings,
    TrapTarget,
)
from simulator.snmp import SnmpAgent
from tests.conftest import eventually

REPO = Path(__file__).resolve().parents[2]
MIB_DIR = REPO / "configs" / "mibs"
SETTINGS = SnmpSettings("public", "private", "ponctl", "ponctl-auth-key", "ponctl-priv-key")
CREDS = Credentials("admin", "admin-password")

OBJECTS = "1.3.6.1.4.1.32473.1.1"
PON_PORT = f"{OBJECTS}.1.1"
ONT = f"{OBJECTS}.2.1"
SERVICE = f"{OBJECTS}.3.1"
AUTOFIND = f"{OBJECTS}.4.1"
GATEWAY = f"{OBJECTS}.7"
SYS_NAME = "1.3.6.1.2.1.1.5.0"

PORTS = ["0/1/0", "0/1/1"]
UPLINKS = {"0/9/0": frozenset({100, 200})}
KNOWN_SERIAL = "ABCD00000005"  # configured as onu-id 5 on 0/1/0 (port index 1)
STRANGER = "WXYZ0000BEEF"  # not configured: shows up in autofind


def make_olt(name: str = "olt1", settings: SnmpSettings = SETTINGS, *,
             with_onts: bool = True) -> Olt:
    """An OLT with two PON ports, an uplink carrying VLANs 100 and 200, profile "100M",
    ONU 0/1/0 #5 with one service (UNI 1, C-VLAN 10, S-VLAN 100, GEM 1005), and, if
    ``with_onts``, that ONT plugged in plus an unconfigured one on 0/1/1."""
    olt = Olt(name, "127.0.0.1", CREDS, settings, frozenset({"snmp"}), list(PORTS),
              dict(UPLINKS), ranging_delay=0.01)
    onu = b.OnuSpec("0/1/0", 5, KNOWN_SERIAL, "Main Street 1")
    svc = b.ServiceSpec(onu, 1, 10, 100, "0/9/0", 1005, 1024, "100M")
    olt.force_edit(b.traffic_profile("100M", 100_000_000) + b.onu_registration(onu)
                   + b.uni_tagging(onu, 1, 10) + b.olt_service(svc))
    if with_onts:
        olt.add_ont(KNOWN_SERIAL, "0/1/0")
        olt.add_ont(STRANGER, "0/1/1")
    return olt


def make_gateway(olt: Olt, name: str = "gw1", settings: SnmpSettings = SETTINGS) -> Gateway:
    return Gateway(name, "127.0.0.1", CREDS, settings, frozenset({"snmp"}), "SLGW00001234",
                   "02:00:5e:10:20:30", olt, KNOWN_SERIAL, 1)


@asynccontextmanager
async def serving(device: Olt | Gateway, targets: list[TrapTarget] | None = None,
                  **kwargs: bool) -> AsyncIterator[SnmpAgent]:
    agent = await SnmpAgent.start(device, "127.0.0.1", 0, targets or [], **kwargs)
    try:
        yield agent
    finally:
        await agent.close()


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed (Debian package snmp / snmptrapd)")
    return path


@dataclass
class Run:
    rc: int
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return self.out + self.err

    def values(self) -> dict[str, str]:
        """``-On -OQ`` output as {numeric OID without the leading dot: value}."""
        found: dict[str, str] = {}
        for line in self.out.splitlines():
            if " = " in line:
                oid, value = line.split(" = ", 1)
                found[oid.lstrip(".")] = value.strip().strip('"')
        return found


def tool_env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "MIBS": "", "SNMP_PERSISTENT_DIR": str(home),
            "SNMPCONFPATH": str(home)}


async def net_snmp(tool: str, *args: str, home: Path, timeout: float = 20.0) -> Run:
    """Run a net-snmp tool and collect its output (numeric OIDs, values without types)."""
    path = need(tool)
    fmt = ["-On", "-OQ", "-Ot", "-Oe"] if tool != "snmptranslate" else []
    started = time.perf_counter()
    proc = await asyncio.create_subprocess_exec(
        path, *fmt, *args, env=tool_env(home), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return Run(proc.returncode or 0, out.decode(), err.decode(),
               time.perf_counter() - started)


def v2c(agent: SnmpAgent, community: str = "public", *, timeout: float = 2.0,
        retries: int = 1) -> list[str]:
    return ["-v2c", "-c", community, "-m", "", "-t", str(timeout), "-r", str(retries),
            f"udp:127.0.0.1:{agent.port}"]


def v3(agent: SnmpAgent, settings: SnmpSettings = SETTINGS, *, auth: str = "SHA",
       priv: str = "AES", auth_key: str | None = None, level: str = "authPriv",
       timeout: float = 2.0) -> list[str]:
    return ["-v3", "-l", level, "-u", settings.v3_user, "-a", auth,
            "-A", auth_key or settings.v3_auth_key, "-x", priv, "-X", settings.v3_priv_key,
            "-m", "", "-t", str(timeout), "-r", "1", f"udp:127.0.0.1:{agent.port}"]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


until = eventually  # one polling helper for every test module


async def operational(olt: Olt, serial: str) -> None:
    await until(lambda: serial in olt.onts and olt.onts[serial].state == OntState.OPERATIONAL)


def get_request_bytes(community: str = "public", request_id: int = 7) -> bytes:
    """A v2c GET of sysName.0, encoded by scapy (an encoder independent of pysnmp's)."""
    return bytes(SNMP(community=community, PDU=SNMPget(
        id=request_id, varbindlist=[SNMPvarbind(oid=ASN1_OID(SYS_NAME))])))
