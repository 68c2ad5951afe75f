"""ONT discovery: the pure parsers with crafted inputs, and ``watch`` + ``record`` over real
sockets against the simulated lab on NETCONF (notifications), SNMP (traps) and the CLI
(autofind polling): arrival, a move to another port, power off, and a dropped session."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest

from agent.discovery import (
    DEPARTED,
    Backoff,
    OntSeen,
    autofind_changes,
    autofind_serial,
    bbf_onu_state,
    from_netconf,
    from_snmp_trap,
    parse_autofind,
    parse_event,
    record,
    watch,
)
from agent.store import OntState, Store
from drivers.base import DeviceEvent, Driver
from drivers.cli import CliDriver, load_platform
from drivers.errors import ConnectError
from drivers.netconf import NetconfDriver
from drivers.snmp import SnmpDriver, SnmpTarget, TrapReceiver
from drivers.ssh_transport import SshTarget
from simulator.devices import Olt
from simulator.lab import Lab
from simulator.topology import TrapTarget, load_topology
from tests.conftest import REPO, eventually, running_lab

PROTOCOLS = ["netconf", "snmp", "ssh"]
FAST = Backoff(initial=0.05, cap=0.2, max_failures=20)
NEW = "ABCD0000E001"


# ---- parsers --------------------------------------------------------------------------------
def nc(**fields: str) -> DeviceEvent:
    return DeviceEvent("onu-state-change", "h", dict(fields))


def test_netconf_notification_fields() -> None:
    seen = from_netconf("olt1", nc(**{
        "detected-serial-number": "hwtc1a2b3c4d", "channel-termination-ref": "ct-0/1/1",
        "onu-state": "bbf-xpon-onu-types:onu-present-and-no-v-ani-known-and-in-o5",
        "onu-id": "", "ont-state": "unclaimed"}))
    assert seen == OntSeen("olt1", "HWTC1A2B3C4D", "0/1/1", "unclaimed", vendor="HWTC",
                           source="netconf")
    # Without the ponctl augment, the BBF identity decides; ont-state tells LOS apart.
    up = from_netconf("olt1", nc(**{
        "detected-serial-number": "SIML0000A001", "channel-termination-ref": "ct-0/1/0",
        "onu-state": "x:onu-present-and-on-intended-channel-termination", "onu-id": "1"}))
    assert up is not None
    assert (up.state, up.onu_id) == ("operational", 1)
    los = from_netconf("olt1", nc(**{
        "detected-serial-number": "SIML0000A001", "channel-termination-ref": "ct-0/1/0",
        "onu-state": "t:onu-not-present-with-v-ani", "ont-state": "los"}))
    assert los is not None
    assert los.state == "los"
    assert bbf_onu_state("t:onu-not-present-without-v-ani") == "not-present"
    assert bbf_onu_state("t:onu-present") == "ranging"
    assert bbf_onu_state("t:something-else") is None


@pytest.mark.parametrize("fields", [
    {"detected-serial-number": "<x/>; rm -rf", "channel-termination-ref": "ct-0/1/1",
     "ont-state": "unclaimed"},
    {"detected-serial-number": "HWTC1A2B3C4D", "channel-termination-ref": "ct-0/1/1\nquit",
     "ont-state": "unclaimed"},
    {"detected-serial-number": "HWTC1A2B3C4D", "channel-termination-ref": "ct-0/1/1",
     "ont-state": "exploded", "onu-state": "t:weird"},
    {"channel-termination-ref": "ct-0/1/1"},
])
def test_netconf_garbage_is_ignored_with_a_warning(fields: dict[str, str],
                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agent.discovery"):
        assert from_netconf("olt1", nc(**fields)) is None
    assert caplog.records


def test_netconf_bad_onu_id_is_dropped_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    seen = from_netconf("olt1", nc(**{
        "detected-serial-number": "HWTC1A2B3C4D", "channel-termination-ref": "ct-0/1/1",
        "ont-state": "operational", "onu-id": "9999"}))
    assert seen is not None
    assert seen.onu_id is None
    assert "onu-id" in caplog.text


def test_snmp_traps() -> None:
    found = from_snmp_trap("olt1", DeviceEvent("ponctlOntDiscovered", "h", {
        "sysUpTime.0": "1", "ponctlAutofindSerial.3": "ABCD0000E001",
        "ponctlPonPortName.3": "0/1/2"}))
    assert found == OntSeen("olt1", NEW, "0/1/2", "unclaimed", vendor="ABCD", source="snmp")
    down = from_snmp_trap("olt1", DeviceEvent("ponctlOntDown", "h", {
        "ponctlOntSerial.1.1": "SIML0000A001", "ponctlPonPortName.1": "0/1/0",
        "ponctlOntOperStatus.1.1": "5"}))
    assert down is not None
    assert down.state == "dying-gasp"
    up = parse_event("olt1", DeviceEvent("ponctlOntUp", "h", {
        "ponctlOntSerial.1.1": "SIML0000A001", "ponctlPonPortName.1": "0/1/0",
        "ponctlOntOperStatus.1.1": "operational(3)"}))
    assert up is not None
    assert up.state == "operational"
    assert parse_event("olt1", DeviceEvent("linkDown", "h", {})) is None


@pytest.mark.parametrize("fields", [
    {"ponctlOntSerial.1.1": "SIML0000A001", "ponctlPonPortName.1": "0/1/0",
     "ponctlOntOperStatus.1.1": "42"},
    {"ponctlOntSerial.1.1": "53:49:4d:4c", "ponctlPonPortName.1": "0/1/0",
     "ponctlOntOperStatus.1.1": "3"},
    {"ponctlOntSerial.1.1": "SIML0000A001", "ponctlPonPortName.1": "pon one",
     "ponctlOntOperStatus.1.1": "3"},
    {},
])
def test_snmp_garbage_is_ignored_with_a_warning(fields: dict[str, str],
                                                caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agent.discovery"):
        assert from_snmp_trap("olt1", DeviceEvent("ponctlOntDown", "h", fields)) is None
    assert caplog.records


AUTOFIND = """\
   ----------------------------------------------------------------------------
   Number              : 1
   F/S/P               : 0/1/1
   Ont SN              : 414C434CB2C3D4E5 (ALCL-B2C3D4E5)
   VendorID            : ALCL
   Ont Version         : G-240W-F
   Ont SoftwareVersion : 3FE49362
   Ont EquipmentID     : G-240W-F
   Ont autofind time   : 2026-11-21 23:59:01+00:00
   ----------------------------------------------------------------------------
   Number              : 2
   F/S/P               : 0/1/1
   Ont SN              : 485754431A2B3C4D
   VendorID            : HWTC
   Ont SoftwareVersion : V5R019C10
   Ont EquipmentID     : HG8245H
   ----------------------------------------------------------------------------
   Number              : 3
   F/S/P               : 0/1/1
   Ont SN              : ZZZZ (garbage)
   ----------------------------------------------------------------------------
   Number              : 4
   F/S/P               : 9/x/1
   Ont SN              : ABCD0000E001
   ----------------------------------------------------------------------------
   The number of GPON autofind ONT is 4
"""


def test_autofind_output(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agent.discovery"):
        found = parse_autofind("olt1", AUTOFIND)
    assert sorted(found) == ["ALCLB2C3D4E5", "HWTC1A2B3C4D"]
    assert found["ALCLB2C3D4E5"] == OntSeen("olt1", "ALCLB2C3D4E5", "0/1/1", "unclaimed",
                                            model="G-240W-F", firmware="3FE49362",
                                            vendor="ALCL", source="cli")
    assert found["HWTC1A2B3C4D"].model == "HG8245H"
    assert "invalid serial" in caplog.text
    assert "invalid PON port" in caplog.text
    none = "  Failure: The automatically found ONTs do not exist\n"
    assert parse_autofind("olt1", none) == {}
    assert autofind_serial("485754431A2B3C4D (HWTC-1A2B3C4D)") == "HWTC1A2B3C4D"
    assert autofind_serial("HWTC-1A2B3C4D") == "HWTC1A2B3C4D"
    assert autofind_serial("FFFFFFFF1A2B3C4D") is None


def test_autofind_changes_report_arrivals_moves_and_departures() -> None:
    a = OntSeen("olt1", "HWTC1A2B3C4D", "0/1/1", "unclaimed", source="cli")
    b = OntSeen("olt1", "ALCLB2C3D4E5", "0/1/1", "unclaimed", source="cli")
    b_moved = OntSeen("olt1", "ALCLB2C3D4E5", "0/1/3", "unclaimed", source="cli")
    c = OntSeen("olt1", NEW, "0/1/2", "unclaimed", source="cli")
    assert autofind_changes({}, {a.serial: a}) == [a]
    assert autofind_changes({a.serial: a}, {a.serial: a}) == []
    changes = autofind_changes({a.serial: a, b.serial: b}, {b.serial: b_moved, c.serial: c})
    assert changes == [OntSeen("olt1", a.serial, "0/1/1", DEPARTED, source="cli"),
                       b_moved, c]


# ---- over real sockets ----------------------------------------------------------------------
RECEIVERS: dict[int, TrapReceiver] = {}


def ssh_target(lab: Lab, olt: Olt, face: str) -> SshTarget:
    key = lab.host_keys[olt.name].export_public_key().decode().strip()
    port = olt.ports[face]
    return SshTarget("127.0.0.1", port, olt.credentials.username, olt.credentials.password,
                     known_hosts_text=f"[127.0.0.1]:{port} {key}\n", timeout=10.0)


def make_driver(protocol: str, lab: Lab, olt: Olt) -> Driver[Any]:
    if protocol == "netconf":
        return NetconfDriver(ssh_target(lab, olt, "netconf"))
    if protocol == "snmp":
        return SnmpDriver(SnmpTarget("127.0.0.1", olt.ports["snmp"], version="v2c",
                                     community=olt.snmp.community_rw, timeout=10.0, retries=0),
                          receiver=RECEIVERS[id(lab)])
    return CliDriver(ssh_target(lab, olt, "ssh"), load_platform("huawei-olt"))


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    async with AsyncExitStack() as stack:
        receiver = TrapReceiver(communities=["public"])
        await receiver.start()
        stack.push_async_callback(receiver.close)
        topo = load_topology(REPO / "configs" / "lab.yaml")
        topo = topo.model_copy(update={"trap_targets": [
            TrapTarget(address="127.0.0.1", port=receiver.port, community="public")]})
        lab = await stack.enter_async_context(running_lab(topo))
        RECEIVERS[id(lab)] = receiver
        yield lab
        del RECEIVERS[id(lab)]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "ponctl.sqlite3") as s:
        yield s


@contextlib.asynccontextmanager
async def watching(protocol: str, lab: Lab, store: Store,
                   seen: list[OntSeen]) -> AsyncIterator[Driver[Any]]:
    driver = make_driver(protocol, lab, lab.olts["olt1"])
    recorder = record(store)

    async def on_seen(s: OntSeen) -> None:
        seen.append(s)
        await recorder(s)

    task = asyncio.create_task(watch("olt1", driver, on_seen, interval=0.1, backoff=FAST))
    try:
        await eventually(lambda: driver.connected, timeout=10)
        await asyncio.sleep(0.5)  # the subscription / the first poll
        yield driver
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await driver.close()


async def in_store(store: Store, serial: str, **want: Any) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        ont = await store.get_ont(serial)
        if ont is not None and all(getattr(ont, k) == v for k, v in want.items()):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{serial}: wanted {want}, store has {ont}")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_plug_move_and_power_off_reach_the_store(protocol: str, lab: Lab,
                                                       store: Store) -> None:
    olt = lab.olts["olt1"]
    seen: list[OntSeen] = []
    async with watching(protocol, lab, store, seen):
        ont = olt.add_ont(NEW, "0/1/2", model="SL-ONT4G", firmware="V1.0.4")
        # Unclaimed: present and waiting for its configuration (the push claims it).
        await in_store(store, NEW, olt="olt1", pon_port="0/1/2", state=OntState.UP)
        assert any(s.serial == NEW and s.source == ("cli" if protocol == "ssh" else protocol)
                   for s in seen)
        if protocol == "ssh":  # the autofind list carries model and firmware
            await in_store(store, NEW, model="SL-ONT4G", firmware="V1.0.4")

        olt.remove_ont(NEW)
        olt.add_ont(NEW, "0/1/3")
        await in_store(store, NEW, pon_port="0/1/3", state=OntState.UP)
        assert [o.serial for o in await store.list_onts()].count(NEW) == 1

        if protocol == "ssh":  # a configured ONT is not in autofind: power off the new one
            olt.onts[NEW].set_power(False)
            await in_store(store, NEW, state=OntState.ABSENT)
            return
        del ont
        a001 = olt.onts["SIML0000A001"]
        a001.set_power(False)
        await in_store(store, "SIML0000A001", olt="olt1", pon_port="0/1/0",
                       state=OntState.ABSENT)
        stored = await store.get_ont("SIML0000A001")
        assert stored is not None
        assert stored.condition in ("dying gasp: the ONT lost power",
                                    "not present on the PON port")
        a001.set_power(True)
        await in_store(store, "SIML0000A001", state=OntState.UP, condition="")


@pytest.mark.parametrize("protocol", ["netconf", "ssh"])
async def test_watch_survives_a_dropped_session(protocol: str, lab: Lab,
                                                store: Store) -> None:
    olt = lab.olts["olt1"]
    seen: list[OntSeen] = []
    async with watching(protocol, lab, store, seen) as driver:
        olt.drop_sessions()
        await eventually(lambda: not driver.connected, timeout=10)
        await eventually(lambda: driver.connected, timeout=10)
        await asyncio.sleep(0.5)
        olt.add_ont(NEW, "0/1/2")
        await in_store(store, NEW, pon_port="0/1/2", state=OntState.UP)


async def test_watch_gives_up_after_bounded_failures(lab: Lab) -> None:
    olt = lab.olts["olt1"]
    target = ssh_target(lab, olt, "netconf")
    dead = NetconfDriver(SshTarget("127.0.0.1", 1, target.username, target.password,
                                   known_hosts_text="", timeout=1.0))
    calls: list[OntSeen] = []

    async def on_seen(s: OntSeen) -> None:
        calls.append(s)

    with pytest.raises(ConnectError):
        await asyncio.wait_for(watch("olt1", dead, on_seen,
                                     backoff=Backoff(initial=0.01, cap=0.02, max_failures=2)),
                               timeout=20)
    assert calls == []


async def test_record_ignores_stale_absence_elsewhere_and_bad_values(store: Store) -> None:
    rec = record(store)
    await rec(OntSeen("olt1", NEW, "0/1/3", "operational", onu_id=4))
    await rec(OntSeen("olt1", NEW, "0/1/2", "not-present"))  # late report from the old port
    ont = await store.get_ont(NEW)
    assert ont is not None
    assert (ont.pon_port, ont.state, ont.onu_id) == ("0/1/3", OntState.UP, 4)
    await rec(OntSeen("olt1", NEW, "0/1/3", "los"))
    ont = await store.get_ont(NEW)
    assert ont is not None
    assert (ont.state, ont.condition) == (OntState.ABSENT, "loss of signal (fibre fault?)")
    await rec(OntSeen("bad olt name!", NEW, "0/1/3", "operational"))  # logged, not raised
    await rec(OntSeen("olt1", NEW, "0/1/3", "exploded"))
    assert len(await store.list_onts()) == 1
