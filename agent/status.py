"""Order status, computed from facts and never set by hand (DESIGN.md, "Order statuses").

:func:`compute_status` is a pure function of :class:`OrderFacts` and the current time. The rules,
in order of precedence:

1. removal done -> **terminated**; order cancelled -> **cancelled**.
2. removal requested -> **awaiting provisioning** while the removal push is pending (``push``
   is then the removal push's outcome; its error class is reported like any push's), or
   **terminated** once that push is verified.
3. any unmet prerequisite -> **awaiting prerequisites**, listing *every* one of them: the
   object does not exist; no ONT bound to the object; the bound ONT is unknown to the inventory;
   each catalog/network gap (:class:`agent.catalog.Missing`). Catalog gaps are prerequisites
   *and* they set ``error_class`` to ``configuration-missing``: the fix is configuration, then
   resend. An order only waiting for a technician (no ONT bound yet, ONT not discovered) has no
   error class — nothing is wrong, something has not happened yet. A push that fails because the
   device lacks configuration (found at push time, not in the catalog) is awaiting provisioning
   with ``configuration-missing``: the same class, whichever side discovers it.
4. start date in the future -> **awaiting activation** (``activates_at`` = start date). The start
   date is also reported as ``activates_at`` while awaiting prerequisites, if it is in the future.
5. last push verified -> **active** (config on the device, read back equal). An active order
   stays active while its ONT is offline: its configuration is still on the OLT.
6. otherwise **awaiting provisioning**: the ONT not present or not operational is a
   ``connection-error`` (it wins over an earlier failure: nothing can be pushed until the ONT is
   back, and the agent resumes by itself); a mismatch found by audit is ``mismatch``; a failed
   push carries its own class; no push yet or one in progress has no error class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from agent.catalog import Missing, Resolved


class Status(StrEnum):
    AWAITING_PREREQUISITES = "awaiting-prerequisites"
    AWAITING_ACTIVATION = "awaiting-activation"
    AWAITING_PROVISIONING = "awaiting-provisioning"
    ACTIVE = "active"
    CANCELLED = "cancelled"
    TERMINATED = "terminated"


class ErrorClass(StrEnum):
    CONNECTION_ERROR = "connection-error"
    CONFIGURATION_MISSING = "configuration-missing"
    REJECTED = "rejected"
    MISMATCH = "mismatch"


@dataclass(frozen=True, slots=True)
class OntFacts:
    """Where the inventory knows the ONT, and its state there."""

    olt: str
    pon_port: str
    present: bool = True  # the OLT sees it (ranged)
    operational: bool = True  # up and able to take configuration
    condition: str = ""  # why not, as the OLT says: "LOS", "dying gasp", "power off", ...
    since: datetime | None = None  # when it went into that condition


@dataclass(frozen=True, slots=True)
class NoPush:
    """Nothing pushed yet."""


@dataclass(frozen=True, slots=True)
class PushInProgress:
    started: datetime


@dataclass(frozen=True, slots=True)
class PushFailed:
    error_class: ErrorClass
    message: str  # for ``rejected``, the device's own error, verbatim
    at: datetime


@dataclass(frozen=True, slots=True)
class PushVerified:
    at: datetime


@dataclass(frozen=True, slots=True)
class PushMismatch:
    diff: str  # device versus intent
    at: datetime


PushOutcome = NoPush | PushInProgress | PushFailed | PushVerified | PushMismatch


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """Everything the status of one order depends on."""

    order_id: str
    isp: str
    service_type: str
    start: datetime
    object_id: str
    catalog: Resolved | Sequence[Missing]  # Catalog.resolve(), or Catalog.gaps() if no OLT yet
    object_exists: bool = True
    ont_serial: str | None = None  # the ONT bound to the object, if any
    ont: OntFacts | None = None  # the inventory's record of that serial; None = unknown
    push: PushOutcome = NoPush()  # once removal is requested: the removal push's outcome
    cancelled: bool = False
    removal_requested: bool = False
    removal_done: bool = False


@dataclass(frozen=True, slots=True)
class OrderStatus:
    status: Status
    message: str
    prerequisites: tuple[str, ...] = ()
    error_class: ErrorClass | None = None
    activates_at: datetime | None = None


def _ts(t: datetime | None) -> str:
    return t.isoformat(timespec="seconds") if t is not None else "an unknown time"


def prerequisites(facts: OrderFacts) -> tuple[list[str], bool]:
    """Every unmet prerequisite, and whether any of them is a configuration gap."""
    out: list[str] = []
    if not facts.object_exists:
        out.append(f"object {facts.object_id!r} does not exist")
    elif facts.ont_serial is None:
        out.append(f"no ONT bound to object {facts.object_id!r}: scan the ONT's serial barcode "
                   f"or bind it (ponctl objects bind {facts.object_id} SERIAL)")
    elif facts.ont is None:
        out.append(f"ONT {facts.ont_serial} (bound to object {facts.object_id!r}) is unknown: "
                   f"not discovered on any OLT and not imported")
    gaps = [] if isinstance(facts.catalog, Resolved) else [m.message for m in facts.catalog]
    if not gaps and not isinstance(facts.catalog, Resolved) and not out:
        # Caller passed gaps() without an OLT although the ONT's OLT is known: say so rather
        # than activating an order that has no resolution.
        olt = facts.ont.olt if facts.ont is not None else "?"
        gaps.append(f"ISP {facts.isp!r} service type {facts.service_type!r} is not resolved "
                    f"in the catalog for OLT {olt!r}")
    return out + gaps, bool(gaps)


def _connection_message(serial: str, ont: OntFacts) -> str:
    state = "not connected to" if not ont.present else "not operational on"
    cond = f"{ont.condition} " if ont.condition else ""
    return (f"ONT {serial} is {state} OLT {ont.olt} port {ont.pon_port} "
            f"({cond}since {_ts(ont.since)}): resending will not help; "
            f"the agent retries when it comes back")


def _push_status(facts: OrderFacts, what: str) -> OrderStatus:
    """Awaiting provisioning, or active, from the ONT state and the last push outcome."""
    serial = facts.ont_serial or "?"
    olt = facts.ont.olt if facts.ont is not None else "?"
    push = facts.push
    prov = Status.AWAITING_PROVISIONING
    ont_down = facts.ont is not None and not (facts.ont.present and facts.ont.operational)
    if isinstance(push, PushVerified):
        return OrderStatus(Status.ACTIVE, f"{what} for ONT {serial} is configured on OLT {olt} "
                                          f"and read back equal (verified {_ts(push.at)})")
    if isinstance(push, PushMismatch):
        return OrderStatus(prov, f"{what} for ONT {serial} on OLT {olt} differs from what the "
                                 f"agent says should be there (found {_ts(push.at)}): resend "
                                 f"provisioning re-applies it\n{push.diff}",
                           error_class=ErrorClass.MISMATCH)
    if ont_down and facts.ont is not None:
        return OrderStatus(prov, _connection_message(serial, facts.ont),
                           error_class=ErrorClass.CONNECTION_ERROR)
    if isinstance(push, NoPush):
        return OrderStatus(prov, f"{what} for ONT {serial} is queued for OLT {olt}")
    if isinstance(push, PushInProgress):
        return OrderStatus(prov, f"{what} for ONT {serial} is being pushed to OLT {olt} "
                                 f"(since {_ts(push.started)})")
    cls = push.error_class
    fix = {
        ErrorClass.CONNECTION_ERROR: f"OLT {olt} could not be reached: {push.message}; resending "
                                     f"will not help, the agent retries when it comes back",
        ErrorClass.CONFIGURATION_MISSING: f"configuration missing on OLT {olt}: {push.message}; "
                                          f"fix the catalog or the network, then resend",
        ErrorClass.REJECTED: f"OLT {olt} rejected {what} for ONT {serial}: {push.message}",
        ErrorClass.MISMATCH: f"{what} for ONT {serial} read back different from the intent "
                             f"on OLT {olt}: resend provisioning re-applies it\n{push.message}",
    }[cls]
    return OrderStatus(prov, f"{fix} (push failed {_ts(push.at)})", error_class=cls)


def compute_status(facts: OrderFacts, now: datetime) -> OrderStatus:
    """The order's status from its facts at ``now`` (see the module docstring for the rules)."""
    order = f"order {facts.order_id} ({facts.isp} {facts.service_type})"
    if facts.removal_done:
        return OrderStatus(Status.TERMINATED, f"{order}: service removed from the device")
    if facts.cancelled:
        return OrderStatus(Status.CANCELLED, f"{order}: cancelled before activation")
    if facts.removal_requested:
        if isinstance(facts.push, PushVerified):  # the removal push, verified
            return OrderStatus(Status.TERMINATED, f"{order}: service removed from the device "
                                                  f"(verified {_ts(facts.push.at)})")
        return _push_status(facts, "removal of the service")
    unmet, config_gap = prerequisites(facts)
    future = facts.start if facts.start > now else None
    if unmet:
        return OrderStatus(Status.AWAITING_PREREQUISITES,
                           f"{order} is waiting for: " + "; ".join(unmet),
                           prerequisites=tuple(unmet),
                           error_class=ErrorClass.CONFIGURATION_MISSING if config_gap else None,
                           activates_at=future)
    if future is not None:
        return OrderStatus(Status.AWAITING_ACTIVATION,
                           f"{order}: all prerequisites met; the agent activates it at "
                           f"{_ts(future)}", activates_at=future)
    return _push_status(facts, f"{order}")
