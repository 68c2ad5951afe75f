"""Order status from facts: every prerequisite combination, activation, each push outcome."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from agent.catalog import Missing, Resolved
from agent.intent import BandwidthProfile
from agent.status import (
    ErrorClass,
    NoPush,
    OntFacts,
    OrderFacts,
    PushFailed,
    PushInProgress,
    PushMismatch,
    PushOutcome,
    PushVerified,
    Status,
    compute_status,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(hours=2)
TOMORROW = NOW + timedelta(days=1)
SERIAL = "ABCD0000A1B2"
RESOLVED = Resolved(isp="fibrenet", service_type="internet", olt="olt1", c_vlan=100,
                    s_vlan=1000, uplink="0/9/0", uni=1, tagged=False, user_vlan=None,
                    profile=BandwidthProfile("tdp-1G", 1_000_000_000))
UP = OntFacts(olt="olt1", pon_port="0/1/0")
VLAN_GAP = Missing("isp-vlan-missing", "ISP 'fibrenet' has no VLAN for service type 'internet'")
NET_GAP = Missing("network-service-missing",
                  "OLT 'olt1' has no uplink carrying S-VLAN 1000 (network service missing)")

NO_OBJECT = "object 'obj-7' does not exist"
NO_ONT = ("no ONT bound to object 'obj-7': scan the ONT's serial barcode or bind it "
          "(ponctl objects bind obj-7 SERIAL)")
ONT_UNKNOWN = (f"ONT {SERIAL} (bound to object 'obj-7') is unknown: not discovered on any OLT "
               "and not imported")


def facts(**kw: object) -> OrderFacts:
    base = OrderFacts(order_id="1042", isp="fibrenet", service_type="internet", start=EARLIER,
                      object_id="obj-7", catalog=RESOLVED, ont_serial=SERIAL, ont=UP)
    return replace(base, **kw)  # type: ignore[arg-type]


# binding state -> (fact overrides, the prerequisite it leaves unmet)
BINDINGS: dict[str, tuple[dict[str, object], list[str]]] = {
    "ok": ({}, []),
    "no object": ({"object_exists": False, "ont_serial": None, "ont": None}, [NO_OBJECT]),
    "object without ONT": ({"ont_serial": None, "ont": None}, [NO_ONT]),
    "ONT unknown": ({"ont": None}, [ONT_UNKNOWN]),
}
CATALOGS: dict[str, tuple[Resolved | list[Missing], list[Missing]]] = {
    "resolved": (RESOLVED, []),
    "VLAN gap": ([VLAN_GAP], [VLAN_GAP]),
    "network service missing": ([NET_GAP], [NET_GAP]),
    "both gaps": ([VLAN_GAP, NET_GAP], [VLAN_GAP, NET_GAP]),
}


@pytest.mark.parametrize(("binding", "catalog", "start"),
                         list(itertools.product(BINDINGS, CATALOGS, [EARLIER, TOMORROW])))
def test_every_prerequisite_combination(binding: str, catalog: str, start: datetime) -> None:
    overrides, unmet_binding = BINDINGS[binding]
    resolution, gaps = CATALOGS[catalog]
    status = compute_status(facts(catalog=resolution, start=start, **overrides), NOW)
    unmet = unmet_binding + [g.message for g in gaps]
    future = start if start > NOW else None
    if not unmet:
        assert status.status is (Status.AWAITING_ACTIVATION if future else
                                 Status.AWAITING_PROVISIONING)
        assert status.prerequisites == ()
        assert status.error_class is None
        return
    assert status.status is Status.AWAITING_PREREQUISITES
    assert status.prerequisites == tuple(unmet)  # all of them, in a stable order
    for item in unmet:
        assert item in status.message
    # catalog gaps are configuration missing; waiting for a technician is no error
    assert status.error_class is (ErrorClass.CONFIGURATION_MISSING if gaps else None)
    assert status.activates_at == future


def test_future_start_awaits_activation() -> None:
    status = compute_status(facts(start=TOMORROW), NOW)
    assert status.status is Status.AWAITING_ACTIVATION
    assert status.activates_at == TOMORROW
    assert TOMORROW.isoformat(timespec="seconds") in status.message
    assert status.error_class is None
    # at the start time itself it is due
    assert compute_status(facts(start=NOW), NOW).status is Status.AWAITING_PROVISIONING


@pytest.mark.parametrize(("push", "status", "error_class", "fragments"), [
    (NoPush(), Status.AWAITING_PROVISIONING, None, [SERIAL, "queued for OLT olt1"]),
    (PushInProgress(EARLIER), Status.AWAITING_PROVISIONING, None,
     [SERIAL, "being pushed to OLT olt1"]),
    (PushVerified(EARLIER), Status.ACTIVE, None, [SERIAL, "olt1", "read back equal"]),
    (PushMismatch("- vlan 100\n+ vlan 101", EARLIER), Status.AWAITING_PROVISIONING,
     ErrorClass.MISMATCH, [SERIAL, "olt1", "resend", "- vlan 100\n+ vlan 101"]),
    (PushFailed(ErrorClass.REJECTED, "Error: VLAN 1000 is locked by another session", EARLIER),
     Status.AWAITING_PROVISIONING, ErrorClass.REJECTED,
     [SERIAL, "OLT olt1 rejected", "Error: VLAN 1000 is locked by another session"]),
    (PushFailed(ErrorClass.CONNECTION_ERROR, "timed out connecting to 127.1.0.1:8830", EARLIER),
     Status.AWAITING_PROVISIONING, ErrorClass.CONNECTION_ERROR,
     ["OLT olt1 could not be reached", "127.1.0.1:8830", "resending will not help"]),
    (PushFailed(ErrorClass.CONFIGURATION_MISSING, "uplink 0/9/0 does not carry VLAN 1000",
                EARLIER),
     Status.AWAITING_PROVISIONING, ErrorClass.CONFIGURATION_MISSING,
     ["olt1", "uplink 0/9/0 does not carry VLAN 1000", "then resend"]),
    (PushFailed(ErrorClass.MISMATCH, "read back vlan 101", EARLIER),
     Status.AWAITING_PROVISIONING, ErrorClass.MISMATCH, [SERIAL, "olt1", "read back vlan 101"]),
])
def test_push_outcomes(push: PushOutcome, status: Status, error_class: ErrorClass | None,
                       fragments: list[str]) -> None:
    result = compute_status(facts(push=push), NOW)
    assert result.status is status
    assert result.error_class is error_class
    assert result.prerequisites == ()
    assert result.activates_at is None
    for fragment in fragments:
        assert fragment in result.message


@pytest.mark.parametrize("push", [NoPush(), PushInProgress(EARLIER),
                                  PushFailed(ErrorClass.REJECTED, "no", EARLIER)])
def test_offline_ont_is_a_connection_error(push: PushOutcome) -> None:
    down = OntFacts(olt="olt1", pon_port="0/1/0", present=False, condition="LOS", since=EARLIER)
    result = compute_status(facts(ont=down, push=push), NOW)
    assert result.status is Status.AWAITING_PROVISIONING
    assert result.error_class is ErrorClass.CONNECTION_ERROR
    assert result.message == (
        f"ONT {SERIAL} is not connected to OLT olt1 port 0/1/0 (LOS since "
        f"{EARLIER.isoformat(timespec='seconds')}): resending will not help; the agent "
        f"retries when it comes back")


def test_present_but_not_operational_ont() -> None:
    ont = OntFacts(olt="olt2", pon_port="0/1/3", operational=False, condition="dying gasp")
    result = compute_status(facts(ont=ont), NOW)
    assert result.error_class is ErrorClass.CONNECTION_ERROR
    assert "is not operational on OLT olt2 port 0/1/3 (dying gasp since" in result.message


def test_active_order_stays_active_while_its_ont_is_offline() -> None:
    down = OntFacts(olt="olt1", pon_port="0/1/0", present=False, condition="LOS")
    assert compute_status(facts(ont=down, push=PushVerified(EARLIER)), NOW).status is \
        Status.ACTIVE


def test_cancelled_before_activation() -> None:
    result = compute_status(facts(start=TOMORROW, cancelled=True, ont_serial=None, ont=None,
                                  catalog=[VLAN_GAP]), NOW)
    assert result.status is Status.CANCELLED
    assert result.prerequisites == ()
    assert result.error_class is None
    assert result.activates_at is None
    assert "1042" in result.message


def test_terminated() -> None:
    result = compute_status(facts(removal_requested=True, removal_done=True,
                                  push=PushVerified(NOW)), NOW)
    assert result.status is Status.TERMINATED
    assert result.error_class is None


@pytest.mark.parametrize(("push", "status", "error_class"), [
    (NoPush(), Status.AWAITING_PROVISIONING, None),
    (PushInProgress(NOW), Status.AWAITING_PROVISIONING, None),
    (PushFailed(ErrorClass.REJECTED, "in use", NOW), Status.AWAITING_PROVISIONING,
     ErrorClass.REJECTED),
    (PushVerified(NOW), Status.TERMINATED, None),
])
def test_removal_requested(push: PushOutcome, status: Status,
                           error_class: ErrorClass | None) -> None:
    result = compute_status(facts(removal_requested=True, push=push), NOW)
    assert result.status is status
    assert result.error_class is error_class
    if status is Status.AWAITING_PROVISIONING:
        assert "removal of the service" in result.message


def test_unresolved_catalog_without_gaps_is_not_activated() -> None:
    result = compute_status(facts(catalog=[]), NOW)
    assert result.status is Status.AWAITING_PREREQUISITES
    assert result.prerequisites == (
        "ISP 'fibrenet' service type 'internet' is not resolved in the catalog for OLT 'olt1'",)
    assert result.error_class is ErrorClass.CONFIGURATION_MISSING


def test_ont_unknown_with_catalog_checked_without_olt() -> None:
    result = compute_status(facts(ont=None, catalog=[]), NOW)
    assert result.prerequisites == (ONT_UNKNOWN,)
    assert result.error_class is None
