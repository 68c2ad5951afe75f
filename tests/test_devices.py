"""The simulated hardware: ONT arrival, pre-provisioning, power/fibre, commits, reboots."""

from __future__ import annotations

import asyncio

import pytest
from lxml import etree

from simulator.config import builder as b
from simulator.config.errors import RpcError
from simulator.devices import (
    Credentials,
    DeviceEvent,
    Gateway,
    Olt,
    OntState,
    SnmpSettings,
)
from tests.conftest import eventually

CREDS = Credentials("admin", "admin")
SNMP = SnmpSettings("public", "private", "ponctl", "ponctl-auth-key", "ponctl-priv-key")
ONU = b.OnuSpec("0/1/0", 1, "SIML0000A001", "flat 1")
SVC = b.ServiceSpec(ONU, 1, 100, 1000, "0/9/0", 1024, 1024, "tdp-100M")


def make_olt(delay: float = 0.0) -> Olt:
    return Olt("olt1", "127.0.0.1", CREDS, SNMP, frozenset({"netconf"}), ["0/1/0", "0/1/1"],
               {"0/9/0": frozenset({1000, 2000})}, ranging_delay=delay)


def service_config() -> list[etree._Element]:
    return (b.onu_registration(ONU) + b.traffic_profile("tdp-100M", 10**8)
            + b.uni_tagging(ONU, 1, 100) + b.olt_service(SVC))


until = eventually


async def test_unclaimed_ont_is_in_autofind_and_reported() -> None:
    olt = make_olt()
    events: list[DeviceEvent] = []
    olt.subscribe(events.append)
    ont = olt.add_ont("HWTC1A2B3C4D", "0/1/1")
    assert ont.state == OntState.UNCLAIMED
    assert olt.autofind() == [ont]
    assert [(e.kind, e.serial, e.port) for e in events] == [
        ("ont-discovered", "HWTC1A2B3C4D", "0/1/1")]
    assert ont.rx_power is not None
    assert -27 < ont.rx_power < -13


async def test_configuring_an_unclaimed_ont_makes_it_operational_with_its_service() -> None:
    olt = make_olt(delay=0.01)
    ont = olt.add_ont(ONU.serial, "0/1/0")
    olt.edit_config("running", service_config(), session=1)
    assert ont.state.value == "ranging"
    await until(lambda: ont.state == OntState.OPERATIONAL)
    assert ont.onu_id == 1
    [applied] = ont.applied.values()
    assert (applied.uni, applied.c_vlan, applied.s_vlan, applied.gemport_id) == (1, 100, 1000,
                                                                                   1024)


async def test_pre_provisioned_config_applies_when_the_ont_arrives() -> None:
    olt = make_olt(delay=0.01)
    olt.edit_config("running", service_config(), session=1)
    ont = olt.add_ont(ONU.serial, "0/1/0")
    await until(lambda: ont.state == OntState.OPERATIONAL and bool(ont.applied))


async def test_ont_on_the_wrong_port_stays_unclaimed() -> None:
    olt = make_olt()
    olt.edit_config("running", service_config(), session=1)
    ont = olt.add_ont(ONU.serial, "0/1/1")
    assert ont.state == OntState.UNCLAIMED


async def test_power_and_fibre_transitions_emit_events() -> None:
    olt = make_olt()
    olt.edit_config("running", service_config(), session=1)
    ont = olt.add_ont(ONU.serial, "0/1/0")
    await until(lambda: ont.state == OntState.OPERATIONAL)
    states: list[OntState | None] = []
    olt.subscribe(lambda e: states.append(e.state) if e.kind == "ont-state" else None)
    ont.set_power(False)
    assert states == [OntState.DYING_GASP, OntState.NOT_PRESENT]
    assert not ont.applied
    assert ont.rx_power is None
    ont.set_power(True)
    await until(lambda: ont.state == OntState.OPERATIONAL)
    ont.set_fibre(False)
    assert ont.state.value == "los"
    ont.set_fibre(True)
    await until(lambda: ont.state == OntState.OPERATIONAL and bool(ont.applied))


async def test_confirmed_commit_rolls_back_by_itself() -> None:
    olt = make_olt()
    before = olt.running
    olt.edit_config("candidate", service_config(), session=1)
    olt.commit(1, confirmed=True, timeout=0.05)
    assert olt.view.services
    await until(lambda: olt.confirm is None)
    assert olt.running is before
    assert not olt.view.services


async def test_confirming_commit_keeps_the_change() -> None:
    olt = make_olt()
    olt.edit_config("candidate", service_config(), session=1)
    olt.commit(1, confirmed=True, timeout=0.05, persist="tok")
    with pytest.raises(RpcError):
        olt.commit(2)  # a persistent confirmed commit needs its persist-id
    olt.commit(2, persist_id="tok")
    await asyncio.sleep(0.1)
    assert olt.view.services
    assert olt.confirm is None


async def test_session_close_cancels_an_unconfirmed_commit() -> None:
    olt = make_olt()
    olt.edit_config("candidate", service_config(), session=7)
    olt.commit(7, confirmed=True, timeout=60)
    olt.session_closed(7)
    assert not olt.view.services
    assert olt.confirm is None


def test_locks_deny_other_sessions() -> None:
    olt = make_olt()
    olt.lock("candidate", 1)
    with pytest.raises(RpcError) as err:
        olt.lock("candidate", 2)
    assert err.value.tag == "lock-denied"
    assert err.value.info["session-id"] == "1"
    with pytest.raises(RpcError) as err:
        olt.edit_config("candidate", b.onu_registration(ONU), session=2)
    assert err.value.tag == "in-use"
    olt.session_closed(1)
    olt.lock("candidate", 2)
    olt.faults.lock_held = True
    with pytest.raises(RpcError):
        olt.lock("running", 2)


def test_refused_commit_changes_nothing() -> None:
    olt = make_olt()
    olt.faults.refuse_commit = "Failure: the system is busy"
    with pytest.raises(RpcError) as err:
        olt.edit_config("running", service_config(), session=1)
    assert "busy" in err.value.message
    assert not olt.view.onus


async def test_reboot_loses_unsaved_config() -> None:
    olt = make_olt()
    olt.edit_config("running", b.onu_registration(ONU), session=1)
    olt.copy_running_to_startup()
    assert not olt.unsaved
    olt.edit_config("running", b.traffic_profile("tdp-100M", 10**8) + b.uni_tagging(ONU, 1, 100)
                    + b.olt_service(SVC), session=1)
    assert olt.unsaved
    ont = olt.add_ont(ONU.serial, "0/1/0")
    closed: list[int] = []
    olt.session_closers[5] = lambda: closed.append(5)
    olt.reboot()
    assert closed == [5]
    assert olt.view.onus
    assert not olt.view.services
    await until(lambda: ont.state == OntState.OPERATIONAL)
    assert not ont.applied


async def test_gateway_is_reachable_only_with_an_active_service() -> None:
    olt = make_olt()
    gw = Gateway("gw1", "127.0.0.2", CREDS, SNMP, frozenset({"netconf"}), "GW0001",
                 "02:00:00:00:00:01", olt, ONU.serial, 1)
    seen: list[bool] = []
    gw.reachability_watchers.append(lambda g, up: seen.append(up))
    ont = olt.add_ont(ONU.serial, "0/1/0")
    assert not gw.reachable
    olt.edit_config("running", service_config(), session=1)
    await until(lambda: gw.reachable)
    ont.set_fibre(False)
    assert not gw.reachable
    assert seen == [True, False]
    gw.set(phan_url="https://phan.example.net/abc", wan_vlan=100)
    assert (gw.phan_url, gw.wan_vlan) == ("https://phan.example.net/abc", 100)
    with pytest.raises(RpcError):
        gw.set(wan_vlan=5000)
    assert gw.wan_vlan == 100


def test_closing_the_candidate_lock_holder_discards_its_changes() -> None:
    olt = make_olt()
    olt.lock("candidate", 3)
    olt.edit_config("candidate", b.onu_registration(ONU), session=3)
    assert olt.candidate is not olt.running
    olt.session_closed(3)
    assert olt.candidate is olt.running
    assert "candidate" not in olt.locks
