"""Shared helpers for the NETCONF driver tests: simulated devices, targets, payloads.

Not a conftest: other drivers' tests live in this folder too, and plain functions keep each
test module's fixtures visible in the module itself.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import asyncssh
import pytest
from lxml import etree

from drivers.ssh_transport import SshTarget
from simulator.config import builder as b
from simulator.config.namespaces import GW, IF
from simulator.devices import Credentials, Gateway, Olt, SnmpSettings
from simulator.netconf import NetconfServer

CREDS = Credentials("admin", "admin")
SNMP = SnmpSettings("public", "private", "ponctl", "authkey123", "privkey123")
ONU = b.OnuSpec("0/1/0", 1, "ABCD12345678")
SERVICE = b.ServiceSpec(ONU, 1, 100, 1000, "0/9/0", 1024, 1024, "p100")
WAIT_S = 15.0  # a bound on waiting for the device, generous for a loaded 2-core CI box
NS = {"if": IF, "gw": GW}


def make_olt(name: str = "olt-1") -> Olt:
    return Olt(name, "127.0.0.1", CREDS, SNMP, frozenset({"netconf"}), ["0/1/0", "0/1/1"],
               {"0/9/0": frozenset({1000, 2000})})


def make_gateway(olt: Olt) -> Gateway:
    return Gateway("gw-1", "127.0.0.2", CREDS, SNMP, frozenset({"netconf"}), "GW0001",
                   "02:00:00:00:00:01", olt, ONU.serial, 1)


def known_hosts(port: int, key: asyncssh.SSHKey) -> str:
    return f"[127.0.0.1]:{port} {key.export_public_key().decode()}"


def target(server: NetconfServer, key: asyncssh.SSHKey, **kwargs: Any) -> SshTarget:
    """A target for ``server`` whose host key is checked against ``key``."""
    options: dict[str, Any] = {"username": "admin", "password": "admin", "timeout": 5.0,
                               "known_hosts_text": known_hosts(server.port, key)}
    options.update(kwargs)
    return SshTarget("127.0.0.1", server.port, **options)


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def payload(*parts: list[etree._Element]) -> str:
    """Driver payload text from builder fragments: top-level elements, no <config>."""
    return "".join(etree.tostring(el).decode() for part in parts for el in part)


def service_payload(svc: b.ServiceSpec = SERVICE) -> str:
    return payload(b.traffic_profile(svc.profile, 100_000_000), b.onu_registration(svc.onu),
                   b.uni_tagging(svc.onu, svc.uni, svc.c_vlan), b.olt_service(svc))


def gateway_payload(url: str | None = None, wan_vlan: int | None = None) -> str:
    leaves = (f"<phan-url>{url}</phan-url>" if url is not None else "") + \
        (f"<wan-vlan>{wan_vlan}</wan-vlan>" if wan_vlan is not None else "")
    return f'<gateway xmlns="{GW}">{leaves}</gateway>'


def iface_filter(name: str) -> str:
    return f'<interfaces xmlns="{IF}"><interface><name>{name}</name></interface></interfaces>'


def xpath(xml_text: str, expr: str) -> list[str]:
    """XPath over snapshot data (several top-level elements)."""
    root = etree.fromstring(f"<r>{xml_text}</r>")
    result = root.xpath(expr, namespaces=NS)
    assert isinstance(result, list)
    return [str(x) for x in result]


def iface_names(xml_text: str) -> list[str]:
    return xpath(xml_text, "//if:interface/if:name/text()")


async def eventually(check: Callable[[], Any], what: str, limit: float = WAIT_S) -> Any:
    """Poll a sync or async check until it is truthy (bounded; no fixed sleeps)."""
    deadline = time.monotonic() + limit
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
