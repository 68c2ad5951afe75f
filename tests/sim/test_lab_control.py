"""A whole lab: faces started from a topology, the control endpoint, ``ponctl sim`` commands."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from simulator.control import ControlServer
from simulator.devices import OntState
from simulator.lab import Lab
from tests.conftest import REPO


@pytest.fixture
async def control(lab: Lab) -> AsyncIterator[str]:
    server = await ControlServer.start(lab, "127.0.0.1", 0)
    yield server.url
    await server.close()


async def call(url: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.request(method, url + path, json=body) as r:
        return r.status, await r.json()


async def test_lab_opens_faces_of_olts_and_reachable_gateways(lab: Lab) -> None:
    olt1 = lab.olts["olt1"]
    assert set(olt1.ports) == {"netconf", "snmp", "ssh"}
    assert all(p > 0 for p in olt1.ports.values())
    # SIML0000A001's gateway (NETCONF) and SIML0000A002's (SNMP) are in service at start.
    assert lab.gateways["gw-siml0000a001"].ports.keys() == {"netconf"}
    assert lab.gateways["gw-siml0000a002"].ports.keys() == {"snmp"}
    assert not lab.gateways["gw-hwtc1a2b3c4d"].ports
    data = lab.endpoints("http://x")
    assert {d["kind"] for d in data["devices"]} == {"olt", "gateway"}
    olt = next(d for d in data["devices"] if d["name"] == "olt1")
    assert olt["netconf"] == {"port": olt1.ports["netconf"], "username": "admin",
                              "password": "admin"}
    assert olt["snmp"]["v3"]["user"] == "ponctl"
    assert olt["ssh_host_key"].startswith("ssh-ed25519 ")


async def test_gateway_faces_follow_its_ont(lab: Lab) -> None:
    gw = lab.gateways["gw-siml0000a005"]  # its ONT is configured but powered off
    assert not gw.ports
    lab.find_ont("SIML0000A005").set_power(True)
    async with asyncio.timeout(5):
        await lab.wait_gateway(gw.name, up=True)
    assert set(gw.ports) == {"ssh"}
    lab.find_ont("SIML0000A005").set_fibre(False)
    async with asyncio.timeout(5):
        await lab.wait_gateway(gw.name, up=False)
    assert not gw.ports


async def test_control_faults_power_fibre_and_reboot(lab: Lab, control: str) -> None:
    status, data = await call(control, "POST", "/devices/olt1/faults",
                              {"fault": "latency", "value": 0.25})
    assert status == 200
    assert data["faults"] == {"latency": 0.25}
    assert lab.olts["olt1"].faults.latency == 0.25
    status, data = await call(control, "POST", "/devices/olt1/faults",
                              {"fault": "latency", "value": -1})
    assert status == 400
    assert ">= 0" in data["error"]
    assert lab.olts["olt1"].faults.latency == 0.25  # a bad request changes nothing
    status, data = await call(control, "POST", "/devices/olt1/faults", {"fault": "gremlins"})
    assert status == 400
    assert "unknown fault 'gremlins'" in data["error"]
    status, _ = await call(control, "DELETE", "/devices/olt1/faults")
    assert status == 200
    assert lab.olts["olt1"].faults.active() == {}

    status, data = await call(control, "POST", "/onts/SIML0000A001/power", {"on": False})
    assert (status, data["state"]) == (200, "not-present")
    status, data = await call(control, "POST", "/onts/SIML0000A001/power", {"on": "yes"})
    assert status == 400
    status, data = await call(control, "POST", "/onts/SIML0000A002/fibre", {"ok": False})
    assert data["state"] == "los"
    status, data = await call(control, "GET", "/onts/NOPE00000000")
    assert status == 404

    status, _ = await call(control, "POST", "/olts/olt1/onts",
                           {"serial": "ABCD0000BEEF", "port": "0/1/3"})
    assert status == 201
    assert lab.find_ont("ABCD0000BEEF").state == OntState.UNCLAIMED
    for bad in ("ABCD<script>", "ABCD0000BEEF<x/>", "ABCD0000BEEF\n"):
        status, data = await call(control, "POST", "/olts/olt1/onts",
                                  {"serial": bad, "port": "0/1/3"})
        assert status == 400, bad
    status, data = await call(control, "POST", "/olts/olt1/onts",
                              {"serial": "ABCD0000BEE1", "port": "0/1/3; reboot"})
    assert status == 400
    status, data = await call(control, "POST", "/olts/olt1/onts",
                              {"serial": "ABCD0000BEE0", "port": "0/1/9"})
    assert status == 400
    assert "no PON port '0/1/9'" in data["error"]

    olt = lab.olts["olt1"]
    assert not olt.unsaved
    status, data = await call(control, "POST", "/olts/olt1/oob-change",
                              {"action": "change-s-vlan", "service": "fwd-0/1/0-1-eth1-100",
                               "s_vlan": 1005})
    assert status == 200
    assert olt.view.services["fwd-0/1/0-1-eth1-100"].s_vlan == 1005
    status, data = await call(control, "POST", "/olts/olt1/oob-change",
                              {"action": "change-s-vlan", "service": "fwd-0/1/0-1-eth1-100",
                               "s_vlan": 3999})
    assert status == 409
    assert "network service missing" in data["error"]
    assert olt.unsaved
    status, _ = await call(control, "POST", "/devices/olt1/reboot")
    assert status == 200
    assert not olt.unsaved
    assert olt.view.services["fwd-0/1/0-1-eth1-100"].s_vlan == 1000


async def test_trace_through_the_control_endpoint(lab: Lab, control: str) -> None:
    status, data = await call(control, "POST", "/trace", {"serial": "SIML0000A001"})
    assert status == 200
    assert data["forwarded"] is True
    assert "802.1ad" in data["frame"] or "0x88a8" in data["frame"]
    assert data["egress"] == "uplink 0/9/0"
    status, data = await call(control, "POST", "/trace",
                              {"serial": "SIML0000A001", "direction": "downstream"})
    assert data["forwarded"] is True
    assert "UNI 1" in data["egress"]
    status, data = await call(control, "POST", "/trace", {"serial": "SIML0000A001", "uni": 2})
    assert data["forwarded"] is False
    assert "UNI 2" in data["drop_reason"]
    status, data = await call(control, "POST", "/trace", {"serial": "HWTC1A2B3C4D"})
    assert data["forwarded"] is False
    assert "unclaimed" in data["drop_reason"]


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", *args, cwd=REPO, env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_sim_commands_against_a_running_lab(lab: Lab, control: str,
                                                  tmp_path: Path) -> None:
    env = {"PONCTL_SIM_CONTROL": control, "COLUMNS": "200"}
    rc, out, _ = await run_cli("sim", "fault", "olt2", "drop_after", "3", env=env)
    assert rc == 0
    assert "drop_after" in out
    assert lab.olts["olt2"].faults.drop_after == 3
    rc, out, err = await run_cli("sim", "power", "SIML0000A001", "sideways", env=env)
    assert rc != 0
    assert "on' or 'off" in err
    pcap = tmp_path / "trace.pcap"
    rc, out, _ = await run_cli("sim", "trace", "SIML0000A001", "--pcap", str(pcap), env=env)
    assert rc == 0, out
    assert "out:" in out
    assert pcap.stat().st_size > 0
    rc, out, _ = await run_cli("sim", "status", env=env)
    assert json.loads(out)["onts"] == 8
    rc, _, err = await run_cli("sim", "status", env={"PONCTL_SIM_CONTROL":
                                                     "http://127.0.0.1:9"})
    assert rc == 1
    assert "cannot reach the lab" in err


async def test_sim_run_in_the_foreground_writes_endpoints_and_stops_on_sigterm(
        tmp_path: Path) -> None:
    endpoints = tmp_path / "lab.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "sim", "run", "--free-ports", "--control",
        "127.0.0.1:0", "--endpoints", str(endpoints), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(30):
            while not endpoints.exists():
                assert proc.returncode is None
                await asyncio.sleep(0.05)
        data = json.loads(endpoints.read_text())
        assert data["control"].startswith("http://127.0.0.1:")
        names = {d["name"] for d in data["devices"]}
        assert {"olt1", "olt2"} <= names
        olt1 = next(d for d in data["devices"] if d["name"] == "olt1")
        assert olt1["address"] == "127.1.0.1"
        _, st = await call(data["control"], "GET", "/status")
        assert st["onts"] == 8
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "olt1" in out.decode()
    assert not endpoints.exists()


async def test_sim_run_refuses_a_bad_topology(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("olts: [{name: olt1, uplinks: [{port: 0/9/0, vlans: [4095]}]}]\n")
    rc, _, err = await run_cli("sim", "run", "--topology", str(bad))
    assert rc == 1
    assert "bad.yaml: olts[0].uplinks[0].vlans: Value error, VLAN 4095 is outside 1..4094" in err


async def test_sim_run_keeps_the_endpoints_file_current(tmp_path: Path) -> None:
    endpoints = tmp_path / "lab.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "sim", "run", "--free-ports", "--control",
        "127.0.0.1:0", "--endpoints", str(endpoints), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)

    def gateway(name: str) -> dict[str, Any]:
        data = json.loads(endpoints.read_text())
        return next(d for d in data["devices"] if d["name"] == name)

    try:
        async with asyncio.timeout(30):
            while not endpoints.exists():
                await asyncio.sleep(0.05)
        control = json.loads(endpoints.read_text())["control"]
        assert gateway("gw-siml0000a005")["ssh"] is None  # its ONT is off
        status, _ = await call(control, "POST", "/onts/SIML0000A005/power", {"on": True})
        assert status == 200
        async with asyncio.timeout(10):
            while gateway("gw-siml0000a005")["ssh"] is None:
                await asyncio.sleep(0.05)
        assert gateway("gw-siml0000a005")["reachable"] is True
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = await proc.communicate()
    assert "gw-siml0000a005: reachable (ssh 127.1.1." in out.decode()
