"""Shared by the tests that run the daemon with gateways and PHAN keys on a lab whose devices
have their own addresses (tests/agent/conftest.py's ``own_lab`` and ``lines_agent``)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from agent.phan import Keyring
from agent.settings import Settings
from simulator.lab import Lab

PASSWORD_VAR, COMMUNITY_VAR = "PONCTL_TEST_LAB_PW", "PONCTL_TEST_LAB_RW"
ADMIN, CSR = "admin-tok-Lines-7Hq2", "csr-tok-Lines-4Kd9"
ADMIN_VAR, CSR_VAR = "PONCTL_TEST_LINES_ADMIN", "PONCTL_TEST_LINES_CSR"
BASE = "https://analytics.example.net/phan"
A001, A002, A005 = "SIML0000A001", "SIML0000A002", "SIML0000A005"
PAST = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
KEYS = Keyring.generate("k1")


def gw_name(serial: str) -> str:
    return f"gw-{serial.lower()}"


def lab_settings(lab: Lab, tmp_path: Path) -> Settings:
    olt1 = lab.olts["olt1"]
    known = tmp_path / "known_hosts"
    known.write_text("".join(
        f"{dev.address} {lab.host_keys[name].export_public_key().decode().strip()}\n"
        for name, dev in [*lab.olts.items(), *lab.gateways.items()] if name in lab.host_keys),
        encoding="utf-8")
    ssh = {"username": olt1.credentials.username, "password": {"env": PASSWORD_VAR},
           "known_hosts": str(known)}
    snmp = {"version": "v2c", "community": {"env": COMMUNITY_VAR}}
    ports = lab.ports
    return Settings.model_validate({
        "store": str(tmp_path / "ponctl.sqlite3"),
        "devices": [
            {"name": "olt1", "address": olt1.address, "protocol": "netconf",
             "port": ports.netconf, "profile": "sim-olt-netconf", "ssh": ssh},
            {"name": "olt2", "address": lab.olts["olt2"].address, "protocol": "snmp",
             "port": ports.snmp, "profile": "sim-olt-snmp", "snmp": snmp},
        ],
        "gateway_classes": [
            {"name": "sim-n", "protocol": "netconf", "port": ports.netconf,
             "profile": "sim-gw-netconf", "ssh": ssh, "timeout": 3},
            {"name": "sim-s", "protocol": "snmp", "port": ports.snmp,
             "profile": "sim-gw-snmp", "snmp": snmp, "timeout": 3},
            # The lab makes an SSH gateway's host key when its faces first open: opt out
            # (logged on every connection), as configs/agent.yaml does for the lab.
            {"name": "sim-c", "protocol": "ssh", "port": ports.ssh,
             "profile": "sim-gw-ssh", "timeout": 3,
             "ssh": {**ssh, "known_hosts": None, "insecure_no_host_key_check": True}},
        ],
        "phan": {"base_url": BASE},
        "api": {"port": 0, "tokens": [
            {"name": "oss", "role": "admin", "token": {"env": ADMIN_VAR}},
            {"name": "support", "role": "csr", "token": {"env": CSR_VAR}}]},
        "audit_interval": 0,
    })


class Client:
    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self.session = session
        self.base = f"http://127.0.0.1:{port}/api/v1"

    async def call(self, method: str, path: str, token: str | None = ADMIN,
                   body: Any = None) -> tuple[int, Any]:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        async with self.session.request(method, self.base + path, headers=headers,
                                        data=None if body is None else json.dumps(body),
                                        ) as resp:
            text = await resp.text()
            return resp.status, json.loads(text) if text else None


async def register(c: Client, serial: str, gclass: str, lab: Lab) -> str:
    name = gw_name(serial)
    code, body = await c.call("POST", "/gateways", body={
        "name": name, "gateway_class": gclass, "address": lab.gateways[name].address,
        "ont_serial": serial})
    assert code == 201, body
    return name


async def line_state(c: Client, code: str, phase: str, timeout: float = 20,
                     error_class: str | None = None) -> Any:
    """The line once its gateway state is in ``phase`` (and, if given, with ``error_class``:
    a pending state has none until the first attempt to write it failed)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status, body = await c.call("GET", f"/lines/{code}", CSR)
        assert status == 200, body
        st = body["gateway_state"]
        if st is not None and st["phase"] == phase and (
                error_class is None or st["error_class"] == error_class):
            return body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.05)


async def written_line(c: Client, code: str, gateway: str) -> str:
    """Create line ``code``, associate it with ``gateway`` and wait until the gateway holds
    its PHAN URL; the URL."""
    await c.call("POST", "/lines", body={"code": code})
    status, body = await c.call("POST", f"/lines/{code}/gateway", body={"gateway": gateway})
    assert status == 200, body
    await line_state(c, code, "written")
    return str(body["phan_url"])
