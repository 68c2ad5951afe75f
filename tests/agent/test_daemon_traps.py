"""SNMP OLTs watched by the daemon through its trap listener (``settings.traps``), over real
sockets: the simulated lab's olt2 (SNMP) sends its PONCTL-MIB notifications to the daemon's
listener, v2c with a community whose value comes from the environment.

Covers: the watch's first walk of olt2's ONT tables records the ONTs waiting in autofind; an
ONT plugged into olt2 at run time is discovered from its trap and its bound order becomes
active with nothing done by hand; a trap from an address that is no configured SNMP OLT (a
second lab on 127.0.0.2) is counted, logged and changes nothing; the listener binds port 0
and exposes the port; a literal community in the settings is refused."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from agent.daemon import Daemon
from agent.discovery import (
    SNMP_AUTOFIND_COLUMNS,
    SNMP_ONT_COLUMNS,
    SNMP_PORT_NAME,
    Backoff,
    parse_snmp_tables,
)
from agent.settings import Settings, SettingsError, parse_settings
from agent.status import Status
from agent.store import OntState, Store
from drivers.snmp import Varbind, VarType
from simulator.config import builder as b
from simulator.lab import Lab
from simulator.topology import Ports, parse_topology
from tests.agent.test_engine import (
    COMMUNITY_VAR,
    FAST,
    PASSWORD_VAR,
    ZTE,
    applied,
    lab_settings,
    operational,
)
from tests.conftest import REPO, eventually, running_lab

PASSWORD = "Lab-Pw-tr4p9q"
COMMUNITY = "rw-comm-tr8z"
TRAP_COMMUNITY = "trap-comm-k3v9"
TRAP_VAR = "PONCTL_TEST_TRAP_COMMUNITY"
NEW = "ABCD00005678"
STRANGER = "ABCD0000BEEF"

def topology(trap_port: int | None) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        (REPO / "configs" / "lab.yaml").read_text(encoding="utf-8"))
    data["defaults"]["credentials"]["password"] = PASSWORD
    data["defaults"]["snmp"]["community_rw"] = COMMUNITY
    data["trap_targets"] = [] if trap_port is None else [
        {"address": "127.0.0.1", "port": trap_port, "version": "v2c",
         "community": TRAP_COMMUNITY}]
    return data


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def settings_for(lab: Lab, tmp_path: Path, trap_port: int) -> Settings:
    base = lab_settings(lab, tmp_path)
    return base.model_copy(update={
        "catalog": REPO / "configs" / "catalog.yaml",
        "api": base.api.model_copy(update={"port": 0}),
        "audit_interval": 0.0,
        "traps": parse_settings({"devices": [d.model_dump() for d in base.devices],
                                 "traps": {"listen": "127.0.0.1", "port": trap_port,
                                           "communities": [{"env": TRAP_VAR}]}},
                                "test").traps,
    })


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)
    monkeypatch.setenv(COMMUNITY_VAR, COMMUNITY)
    monkeypatch.setenv(TRAP_VAR, TRAP_COMMUNITY)


def daemon(settings: Settings) -> Daemon:
    return Daemon(settings, engine_options={"verify_timeout": 3.0, "retry": FAST},
                  watch_interval=0.1, backoff=Backoff(initial=0.05, cap=0.2))


async def settled(d: Daemon, olt: str) -> None:
    """Until the OLT's watch has read the OLT's ONTs (and so is waiting for traps)."""
    state = d.devices[olt]
    await eventually(lambda: state.events > 0, timeout=10)
    seen = -1
    while seen != state.events:
        seen = state.events
        await asyncio.sleep(0.3)


async def health(d: Daemon) -> Any:
    assert d.port is not None
    async with aiohttp.ClientSession() as session, \
            session.get(f"http://127.0.0.1:{d.port}/healthz") as resp:
        assert resp.status == 200
        return json.loads(await resp.text())


async def test_an_ont_plugged_into_the_snmp_olt_is_discovered_and_provisioned(
        tmp_path: Path) -> None:
    trap_port = free_udp_port()
    async with running_lab(parse_topology(topology(trap_port), "test lab")) as lab:
        olt2 = lab.olts["olt2"]
        # PONCTL-MIB cannot create bandwidth profiles: the OLT holds the catalog's profile.
        olt2.force_edit(b.traffic_profile("tdp-1G", 1_000_000_000, 100_000_000))
        settings = settings_for(lab, tmp_path, trap_port)
        async with Store(settings.store) as store:
            await store.create_object("obj-7", "7 Fibre Lane")
            await store.bind("obj-7", NEW)
            oid = (await store.create_order("obj-7", "fibrenet", "internet",
                                            datetime.now(UTC) - timedelta(minutes=1))).order.id
        async with daemon(settings) as d:
            assert d.trap_port == trap_port
            assert d.engine is not None
            assert d.store is not None
            engine, store = d.engine, d.store
            assert d.devices["olt2"].watched
            await settled(d, "olt2")
            # the first walk of olt2's tables found the ONT waiting in autofind
            ont = await store.get_ont(ZTE)
            assert ont is not None
            assert (ont.olt, ont.pon_port, ont.state) == ("olt2", "0/1/0", OntState.UP)
            assert (await engine.status(oid)).status is Status.AWAITING_PREREQUISITES

            olt2.add_ont(NEW, "0/1/1")  # plugged in: the OLT sends ponctlOntDiscovered
            async with asyncio.timeout(20):
                while (await engine.status(oid)).status is not Status.ACTIVE:
                    await asyncio.sleep(0.05)
            assert operational(lab, NEW)
            assert applied(lab, NEW) == [(100, 1000)]
            ont = await store.get_ont(NEW)
            assert ont is not None
            assert (ont.olt, ont.pon_port) == ("olt2", "0/1/1")
            assert d.receiver is not None
            assert d.receiver.received >= 1
            assert d.traps_ignored == 0
            got = await health(d)
            assert got["devices"]["olt2"]["watched"] is True
            assert got["devices"]["olt2"]["connected"] is True
            assert got["traps"]["port"] == trap_port
        assert d.shutdown_errors == []
        assert d.receiver is None  # stopped


async def test_a_trap_from_an_unknown_source_changes_nothing(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with running_lab(parse_topology(topology(None), "test lab")) as lab:
        settings = settings_for(lab, tmp_path, 0)
        async with daemon(settings) as d:
            assert d.trap_port is not None
            assert d.trap_port > 0  # port 0: a free port, exposed
            assert d.store is not None
            store = d.store
            await settled(d, "olt2")
            before = {o.serial: (o.olt, o.pon_port, o.state) for o in await store.list_onts()}
            events = d.devices["olt2"].events
            # Another OLT, on 127.0.0.2 (not in the settings), sends to the same listener.
            other = topology(d.trap_port)
            stranger = Lab(parse_topology(other, "stranger"),
                           ports=Ports(netconf=0, snmp=0, ssh=0), single_address="127.0.0.2")
            await stranger.start()
            try:
                stranger.olts["olt2"].add_ont(STRANGER, "0/1/1")
                await eventually(lambda: d.traps_ignored >= 1, timeout=10)
                await asyncio.sleep(0.3)
            finally:
                assert await stranger.stop() == []
            assert await store.get_ont(STRANGER) is None
            after = {o.serial: (o.olt, o.pon_port, o.state) for o in await store.list_onts()}
            assert after == before
            assert d.devices["olt2"].events == events  # olt2's watch saw none of it
            assert "not a configured SNMP OLT" in caplog.text
            assert "127.0.0.2" in caplog.text
        assert d.shutdown_errors == []


def test_a_literal_trap_community_is_refused() -> None:
    devices = [{"name": "olt2", "address": "127.0.0.1", "protocol": "snmp", "port": 161,
                "profile": "sim-olt-snmp",
                "snmp": {"version": "v2c", "community": {"env": COMMUNITY_VAR}}}]
    with pytest.raises(SettingsError) as info:
        parse_settings({"devices": devices, "traps": {"communities": [TRAP_COMMUNITY]}},
                       "agent.yaml")
    assert "traps.communities" in str(info.value)
    assert "secrets are not written in the settings file" in str(info.value)
    assert TRAP_COMMUNITY not in str(info.value)
    with pytest.raises(SettingsError, match=r"traps\.users"):
        parse_settings({"devices": devices, "traps": {"users": [
            {"user": "ponctl", "auth_key": "literal-auth-key"}]}}, "agent.yaml")
    ok = parse_settings({"devices": devices, "traps": {
        "port": 8162, "communities": [{"env": TRAP_VAR}],
        "users": [{"user": "ponctl", "auth_key": {"env": "A"}, "priv_key": {"file": "/k"},
                   "engine_id": "0x8000000001020304"}]}}, "agent.yaml")
    assert ok.traps is not None
    assert ok.traps.users[0].engine_id_bytes() == bytes.fromhex("8000000001020304")


def test_the_ont_table_walk_is_parsed() -> None:
    port, ont, af = SNMP_PORT_NAME, SNMP_ONT_COLUMNS, SNMP_AUTOFIND_COLUMNS
    rows = [
        Varbind(f"{port}.1", VarType.OCTET_STRING, "0/1/0"),
        Varbind(f"{port}.2", VarType.OCTET_STRING, "0/1/1"),
        Varbind(f"{ont['serial']}.1.5", VarType.OCTET_STRING, "zteg00c0ffee"),
        Varbind(f"{ont['oper']}.1.5", VarType.INTEGER, 4),  # los
        Varbind(f"{ont['model']}.1.5", VarType.OCTET_STRING, "F660"),
        Varbind(f"{ont['serial']}.2.1", VarType.OCTET_STRING, "not a serial"),
        Varbind(f"{ont['oper']}.2.1", VarType.INTEGER, 3),
        Varbind(f"{af['serial']}.2.1", VarType.OCTET_STRING, NEW),
        Varbind(f"{af['firmware']}.2.1", VarType.OCTET_STRING, "V1.0"),
        Varbind(f"{af['serial']}.1.1", VarType.OCTET_STRING, ZTE),  # also configured: table wins
        Varbind(f"{af['serial']}.9.1", VarType.OCTET_STRING, STRANGER),  # no such PON port
    ]
    seen = {s.serial: s for s in parse_snmp_tables("olt2", rows)}
    assert set(seen) == {ZTE, NEW}
    assert (seen[ZTE].pon_port, seen[ZTE].state, seen[ZTE].onu_id, seen[ZTE].model) == (
        "0/1/0", "los", 5, "F660")
    assert (seen[NEW].pon_port, seen[NEW].state, seen[NEW].firmware) == (
        "0/1/1", "unclaimed", "V1.0")
