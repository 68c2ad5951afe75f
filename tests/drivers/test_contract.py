"""One contract, three drivers: the same tests run against NETCONF, SNMP and the SSH CLI.

Every case provisions the same ONT and service on the same simulated OLT (configs/lab.yaml)
through a different protocol, over real sockets, and checks what the driver declares against
what it does (napalm runs its getter tests against every driver the same way).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, suppress
from dataclasses import dataclass
from typing import Any

import pytest
from lxml import etree

from drivers.base import DeviceEvent, Driver
from drivers.cli import CliDriver, load_platform
from drivers.errors import DriverTimeoutError, RejectedError, UnsupportedError
from drivers.netconf import NetconfDriver
from drivers.snmp import RowStatus, SnmpDriver, SnmpTarget, TrapReceiver, Varbind, VarType
from drivers.ssh_transport import SshTarget
from simulator.config import builder as b
from simulator.devices import Olt, Ont, OntState
from simulator.lab import Lab
from simulator.topology import TrapTarget, load_topology
from tests.conftest import REPO, eventually, running_lab

SERIAL = "HWTC1A2B3C4D"  # plugged into olt1 0/1/1 and unclaimed when the lab starts
PORT, PORT_INDEX, ONU_ID = "0/1/1", 2, 3
GOOD_S_VLAN, MISSING_S_VLAN = 1004, 3999  # the uplink carries 1000-1009, not 3999


@dataclass
class Case:
    protocol: str
    make: Callable[[Lab, Olt, float], Driver[Any]]
    payload: Callable[[int], Any]  # S-VLAN -> the protocol's provisioning payload
    events: Callable[[Driver[Any]], AsyncIterator[DeviceEvent]]


def ssh_target(lab: Lab, olt: Olt, face: str, timeout: float) -> SshTarget:
    key = lab.host_keys[olt.name].export_public_key().decode().strip()
    port = olt.ports[face]
    return SshTarget("127.0.0.1", port, olt.credentials.username, olt.credentials.password,
                     known_hosts_text=f"[127.0.0.1]:{port} {key}\n", timeout=timeout)


def netconf_payload(s_vlan: int) -> str:
    onu = b.OnuSpec(PORT, ONU_ID, SERIAL, "contract")
    els = (b.onu_registration(onu) + b.uni_tagging(onu, 1, 100)
           + b.olt_service(b.ServiceSpec(onu, 1, 100, s_vlan, "0/9/0", 2001, 2001, "tdp-100M")))
    return "".join(etree.tostring(e).decode() for e in els)


def snmp_payload(s_vlan: int) -> list[Varbind]:
    ont, svc = f"{PORT_INDEX}.{ONU_ID}", f"{PORT_INDEX}.{ONU_ID}.1"
    go = int(RowStatus.CREATE_AND_GO)
    return [
        Varbind(f"ponctlOntSerial.{ont}", VarType.OCTET_STRING, SERIAL),
        Varbind(f"ponctlOntRowStatus.{ont}", VarType.INTEGER, go),
        Varbind(f"ponctlServiceUni.{svc}", VarType.UNSIGNED, 1),
        Varbind(f"ponctlServiceCVlan.{svc}", VarType.UNSIGNED, 100),
        Varbind(f"ponctlServiceSVlan.{svc}", VarType.UNSIGNED, s_vlan),
        Varbind(f"ponctlServiceProfile.{svc}", VarType.OCTET_STRING, "tdp-100M"),
        Varbind(f"ponctlServiceGemPort.{svc}", VarType.UNSIGNED, 2001),
        Varbind(f"ponctlServiceRowStatus.{svc}", VarType.INTEGER, go),
    ]


def cli_payload(s_vlan: int) -> list[str]:
    hex_sn = SERIAL[:4].encode().hex().upper() + SERIAL[4:]
    tdp = "inbound traffic-table name tdp-default outbound traffic-table name tdp-default"
    return ["interface gpon 0/1",
            f'ont add 1 {ONU_ID} sn-auth "{hex_sn}" omci ont-lineprofile-id 10 '
            'ont-srvprofile-id 10 desc "contract"',
            f"ont port native-vlan 1 {ONU_ID} eth 1 vlan 100", "quit",
            f"service-port 40 vlan {s_vlan} gpon {PORT} ont {ONU_ID} gemport 2001 multi-service "
            f"user-vlan 100 tag-transform translate-and-add inner-vlan 100 {tdp}"]


RECEIVERS: dict[int, TrapReceiver] = {}


def make_snmp(lab: Lab, olt: Olt, timeout: float) -> Driver[Any]:
    receiver = RECEIVERS.get(id(lab))
    return SnmpDriver(SnmpTarget("127.0.0.1", olt.ports["snmp"], version="v2c",
                                 community=olt.snmp.community_rw, timeout=timeout, retries=0),
                      receiver=receiver)


def cli_events(drv: Driver[Any]) -> AsyncIterator[DeviceEvent]:
    assert isinstance(drv, CliDriver)
    return drv.events("display ont autofind all", interval=0.1)


CASES = [
    Case("netconf", lambda lab, olt, t: NetconfDriver(ssh_target(lab, olt, "netconf", t)),
         netconf_payload, lambda d: d.events()),
    Case("snmp", make_snmp, snmp_payload, lambda d: d.events()),
    Case("ssh", lambda lab, olt, t: CliDriver(
        ssh_target(lab, olt, "ssh", t),
        # The platform bounds each command; the target bounds the login.
        load_platform("huawei-olt").model_copy(update={"timeout": t})),
        cli_payload, cli_events),
]


@pytest.fixture(params=CASES, ids=[c.protocol for c in CASES])
def case(request: pytest.FixtureRequest) -> Case:
    c: Case = request.param
    return c


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
async def driver(case: Case, lab: Lab) -> AsyncIterator[Driver[Any]]:
    drv = case.make(lab, lab.olts["olt1"], 10.0)
    async with drv:
        yield drv


def ont(lab: Lab) -> Ont:
    return lab.olts["olt1"].onts[SERIAL]


async def test_connect_declares_capabilities(case: Case, driver: Driver[Any]) -> None:
    assert driver.connected
    caps = driver.capabilities
    assert caps.protocol == case.protocol
    if caps.confirmed_commit:
        assert caps.candidate  # a confirmed commit needs somewhere to stage the change
    await driver.close()
    assert not driver.connected
    await driver.close()  # idempotent


async def test_get_config_reads_the_running_config(driver: Driver[Any]) -> None:
    snap = await driver.get_config()
    assert snap.source == "running"
    assert snap.data  # the OLT ships with its PON ports and uplinks configured


async def test_commit_provisions_and_resending_changes_nothing(
        case: Case, lab: Lab, driver: Driver[Any]) -> None:
    assert ont(lab).state == OntState.UNCLAIMED
    await driver.load_candidate(case.payload(GOOD_S_VLAN))
    diff = await driver.compare()
    assert not diff.empty
    result = await driver.commit()
    assert result.changed
    await eventually(lambda: ont(lab).state == OntState.OPERATIONAL and bool(ont(lab).applied))
    [applied] = ont(lab).applied.values()
    assert (applied.c_vlan, applied.s_vlan) == (100, GOOD_S_VLAN)
    running = lab.olts["olt1"].running

    await driver.load_candidate(case.payload(GOOD_S_VLAN))
    assert (await driver.compare()).empty, "re-sending an applied change must change nothing"
    await driver.commit()
    assert lab.olts["olt1"].running.same(running)


async def test_refused_change_is_a_rejected_error(case: Case, lab: Lab,
                                                  driver: Driver[Any]) -> None:
    olt = lab.olts["olt1"]
    before = olt.running
    async def load_and_commit() -> None:  # refused at load (a validating device) or commit
        await driver.load_candidate(case.payload(MISSING_S_VLAN))
        await driver.commit()

    with pytest.raises(RejectedError) as err:
        await load_and_commit()
    if case.protocol != "snmp":  # SNMP carries a status, not the device's words
        assert "3999" in str(err.value)
    assert not olt.view.services_of(f"ont-{PORT}-{ONU_ID}")  # no service was created
    if driver.capabilities.transactions:
        assert olt.running.same(before)  # all or nothing
    await driver.discard()


async def test_confirmed_commit_is_done_or_declined(case: Case, lab: Lab,
                                                    driver: Driver[Any]) -> None:
    olt = lab.olts["olt1"]
    await driver.load_candidate(case.payload(GOOD_S_VLAN))
    if not driver.capabilities.confirmed_commit:
        before = olt.running
        with pytest.raises(UnsupportedError):
            await driver.commit(confirm_timeout=60)
        assert olt.running.same(before)
        with pytest.raises(UnsupportedError):
            await driver.confirm()
        return
    result = await driver.commit(confirm_timeout=60)
    assert result.confirm_pending
    assert olt.confirm is not None
    await driver.confirm()
    assert olt.confirm is None
    assert olt.view.services_of(f"ont-{PORT}-{ONU_ID}")


async def test_rollback_is_done_or_declined(case: Case, lab: Lab, driver: Driver[Any]) -> None:
    olt = lab.olts["olt1"]
    before = olt.running
    await driver.load_candidate(case.payload(GOOD_S_VLAN))
    await driver.commit()
    await eventually(lambda: bool(ont(lab).applied))
    if driver.capabilities.rollback == "none":
        with pytest.raises(UnsupportedError):
            await driver.rollback()
        return
    await driver.rollback()
    await eventually(lambda: ont(lab).state == OntState.UNCLAIMED)
    assert not olt.view.services_of(f"ont-{PORT}-{ONU_ID}")
    if driver.capabilities.rollback == "exact":
        assert olt.running.same(before)


async def test_events_report_an_arriving_ont(case: Case, lab: Lab, driver: Driver[Any]) -> None:
    olt = lab.olts["olt1"]
    stream = case.events(driver)
    plugged: list[str] = []

    async def plug_until_seen() -> None:
        # A polling driver takes a baseline first: keep plugging ONTs (bounded) until
        # one of them is reported.
        for n in range(40):
            serial = f"ABCD0000C{n:03X}"
            olt.add_ont(serial, "0/1/2")
            plugged.append(serial)
            await asyncio.sleep(0.1)

    async with asyncio.timeout(10), asyncio.TaskGroup() as tg:
        plugger = tg.create_task(plug_until_seen())
        event = await anext(aiter(stream))
        plugger.cancel()
    text = " ".join([*event.fields.values(), str(event.raw or "")])
    assert any(sn in text or sn[4:] in text for sn in plugged), event
    with suppress(AttributeError, RuntimeError):
        await stream.aclose()  # type: ignore[attr-defined]


async def test_device_slower_than_the_timeout_is_a_timeout(
        case: Case, lab: Lab, driver: Driver[Any]) -> None:
    olt = lab.olts["olt1"]
    slow = case.make(lab, olt, 0.5)
    await slow.connect()
    try:
        olt.faults.latency = 1.5
        with pytest.raises(DriverTimeoutError):
            await slow.get_config()
    finally:
        olt.faults.latency = 0
        await slow.close()
    assert not slow.connected
    # The other session to the same device is unharmed.
    assert (await driver.get_config()).data

