"""``ponctl diagnose``: one report a first-line engineer can act on.

:func:`diagnose` resolves a target (an order id, an ONT serial or an object id; each is tried,
so an unknown or ambiguous target is a clear error) and builds a :class:`Report`: a list of
:class:`Section` of :class:`Check`, each with a :class:`Verdict` (ok / warning / fail / unknown),
a one-line finding and, where something is wrong, the next step to take.

The sections, one function each (:data:`SECTIONS`; a new section is one more entry):

* **inventory**: the object, the ONT bound to it, what the agent last knew of the ONT (state
  and since when).
* **ont**: the ONT's live state read from its OLT through the OLT's own protocol (NETCONF
  ``ponctl-olt-state``, PONCTL-MIB over SNMP, the CLI's ``display ont info by-sn``): present
  and operational, the optical Rx level against the OLT's (or ONT's) GPON class with its
  margin (:data:`agent.settings.GPON_CLASSES`, ``settings.diagnose``), the UNI's Ethernet link
  where the device reports it, services the ONT could not apply.
* **orders**: each order's status (prerequisites, error class and message), its last push
  with its error, and the configuration on the OLT versus the intent (the engine's dry run:
  render and compare; an empty diff means in sync).
* **gateway**: each gateway behind the ONT, read now: reachable, and holding its line's PHAN
  URL (or what is missing, with the agent's record of the last write). A gateway that cannot
  be reached is itself the finding: it fails, with the connection error.
* **datapath** (the simulated lab only, ``settings.diagnose.lab_control``): a DHCP Discover
  traced from the ONT's UNI through the lab's ``POST /trace``: forwarded with its outer and
  inner VLAN tags, or dropped with the reason.

Everything is bounded: every device read has ``check_timeout`` seconds, every section
``report_timeout`` seconds, and the sections run concurrently, so the report comes back even
when a device hangs. A device that cannot be reached makes its checks ``unknown`` with the
error; nothing raises out of a section.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import re
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

import aiohttp
from lxml import etree

from agent.catalog import Resolved
from agent.connect import driver_factory
from agent.engine import Engine
from agent.errors import classify
from agent.intent import SERIAL
from agent.inventory import normalise_serial
from agent.settings import Diagnose as DiagnoseSettings
from agent.settings import SettingsError
from agent.status import OrderStatus, Status
from agent.store import OBJECT_ID, Ont, OntState, Order, Push, PushPhase
from drivers.base import Driver
from drivers.cli import CliDriver
from drivers.errors import CliRejectedError, DriverError
from drivers.snmp.varbind import Varbind

log = logging.getLogger(__name__)

Kind = Literal["order", "ont", "object"]
KINDS: tuple[Kind, ...] = ("order", "ont", "object")


# ---- the report ------------------------------------------------------------------------------
class Verdict(StrEnum):
    OK = "ok"
    WARNING = "warning"
    FAIL = "fail"
    UNKNOWN = "unknown"  # could not be checked (device unreachable, timed out)


_RANK = {Verdict.OK: 0, Verdict.WARNING: 1, Verdict.UNKNOWN: 2, Verdict.FAIL: 3}


def worst(verdicts: Sequence[Verdict]) -> Verdict:
    return max(verdicts, key=_RANK.__getitem__, default=Verdict.OK)


@dataclass(frozen=True, slots=True)
class Check:
    """One finding: ``id`` is stable (``ont.presence``, ``order.status``, ...), ``subject``
    says what it is about when a section has several (an order id, a UNI)."""

    id: str
    title: str
    verdict: Verdict
    finding: str
    next_step: str = ""
    subject: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Section:
    id: str
    title: str
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> Verdict:
        return worst([c.verdict for c in self.checks])


@dataclass(frozen=True, slots=True)
class Target:
    """What the target names: its kind, the object and ONT around it, the orders to report."""

    text: str
    kind: Kind
    object_id: str | None
    serial: str | None
    orders: tuple[Order, ...]


@dataclass(frozen=True, slots=True)
class Report:
    target: Target
    sections: tuple[Section, ...]
    generated_at: datetime
    seconds: float

    @property
    def verdict(self) -> Verdict:
        return worst([s.verdict for s in self.sections])

    @property
    def exit_code(self) -> int:
        """0 when every check is ok or a warning; 3 when one failed or could not be made."""
        return 3 if self.verdict in (Verdict.FAIL, Verdict.UNKNOWN) else 0


class TargetError(Exception):
    """The target names nothing (``status`` 404) or several things (409)."""

    status = 404


class UnknownTarget(TargetError):
    status = 404


class AmbiguousTarget(TargetError):
    status = 409


# ---- target resolution ---------------------------------------------------------------------
async def resolve(engine: Engine, text: str, kind: Kind | None = None) -> Target:
    """The order, ONT or object ``text`` names (each tried unless ``kind`` says which)."""
    store = engine.store
    text = text.strip()
    found: list[Target] = []
    if kind in (None, "order") and OBJECT_ID.fullmatch(text):
        order = await store.get_order(text)
        if order is not None:
            binding = await store.binding_of_object(order.object_id)
            found.append(Target(text, "order", order.object_id,
                                binding.serial if binding else None, (order,)))
    serial = normalise_serial(text)
    if kind in (None, "ont") and SERIAL.fullmatch(serial):
        ont = await store.get_ont(serial)
        binding = await store.binding_of_serial(serial)
        if ont is not None or binding is not None:
            object_id = binding.object_id if binding else None
            orders = (await store.list_orders(object_id=object_id, open_only=True)
                      if object_id else ())
            found.append(Target(text, "ont", object_id, serial, tuple(orders)))
    if kind in (None, "object") and OBJECT_ID.fullmatch(text):
        obj = await store.get_object(text)
        if obj is not None:
            orders = await store.list_orders(object_id=obj.id, open_only=True)
            found.append(Target(text, "object", obj.id, obj.serial, tuple(orders)))
    if not found:
        what = f"an {kind}" if kind in ("order", "object") else ("an ONT" if kind else None)
        if what is None:
            raise UnknownTarget(f"{text!r} is not an order id, an ONT serial or an object id "
                                f"the agent knows")
        raise UnknownTarget(f"{text!r} is not {what} the agent knows")
    if len(found) > 1:
        kinds = " and ".join(f"an {t.kind}" if t.kind != "ont" else "an ONT" for t in found)
        raise AmbiguousTarget(f"{text!r} names {kinds}: say which with --kind "
                              f"({'|'.join(t.kind for t in found)})")
    return found[0]


# ---- context shared by the sections ------------------------------------------------------------
@dataclass(slots=True)
class Context:
    engine: Engine
    target: Target
    config: DiagnoseSettings
    ont: Ont | None  # the inventory's record of the target's ONT
    statuses: dict[str, OrderStatus]
    _live: asyncio.Task[LiveOnt] | None = None

    @property
    def open_orders(self) -> list[Order]:
        return [o for o in self.target.orders if o.cancelled_at is None
                and o.removed_at is None]

    def resolved(self, order: Order) -> Resolved | None:
        if self.ont is None:
            return None
        r = self.engine.catalog.resolve(order.isp, order.service_type, self.ont.olt)
        return r if isinstance(r, Resolved) else None

    def live(self) -> Awaitable[LiveOnt]:
        """The ONT's live state from its OLT, read once per report (shared by sections)."""
        if self._live is None:
            self._live = asyncio.ensure_future(read_live(self))
        return asyncio.shield(self._live)


SectionFn = Callable[[Context], Awaitable[Section | None]]


@dataclass(frozen=True, slots=True)
class SectionSpec:
    id: str
    title: str
    run: SectionFn  # returns None when the section does not apply (left out)


# ---- inventory -----------------------------------------------------------------------------
def _ts(t: datetime | None) -> str:
    return t.isoformat(timespec="seconds") if t is not None else "never"


async def inventory_section(ctx: Context) -> Section:
    s = Section("inventory", "Inventory")
    t, store = ctx.target, ctx.engine.store
    if t.object_id is not None:
        obj = await store.get_object(t.object_id)
        if obj is None:
            s.checks.append(Check("inventory.object", "Object", Verdict.FAIL,
                                  f"object {t.object_id!r} does not exist",
                                  "create the object (the address) before ordering for it"))
        else:
            s.checks.append(Check("inventory.object", "Object", Verdict.OK,
                                  f"object {obj.id} at {obj.address!r}",
                                  details={"address": obj.address}))
    if t.serial is None:
        s.checks.append(Check(
            "inventory.binding", "ONT bound", Verdict.FAIL,
            f"no ONT is bound to object {t.object_id!r}",
            f"scan the ONT's serial barcode at the address, or bind it: "
            f"ponctl objects bind {t.object_id} SERIAL"))
        return s
    if t.object_id is None:
        s.checks.append(Check(
            "inventory.binding", "ONT bound", Verdict.WARNING,
            f"ONT {t.serial} is not bound to any object, so it carries no order",
            f"bind it to the subscriber's address: ponctl objects bind OBJECT {t.serial}"))
    else:
        s.checks.append(Check("inventory.binding", "ONT bound", Verdict.OK,
                              f"ONT {t.serial} is bound to object {t.object_id}"))
    ont = ctx.ont
    if ont is None:
        s.checks.append(Check(
            "inventory.ont", "ONT known", Verdict.FAIL,
            f"ONT {t.serial} is unknown: not discovered on any OLT and not imported",
            "check the serial on the ONT's label against the binding, and that the ONT is "
            "plugged in and powered: the OLT reports it when it ranges"))
        return s
    where = f"OLT {ont.olt} port {ont.pon_port}" + (
        f" onu-id {ont.onu_id}" if ont.onu_id is not None else "")
    cond = f" ({ont.condition})" if ont.condition else ""
    finding = (f"ONT {ont.serial} ({ont.vendor or '?'} {ont.model or '?'}) on {where}: "
               f"{ont.state.value}{cond} since {_ts(ont.state_since)}, last seen "
               f"{_ts(ont.last_seen)}")
    details = {"olt": ont.olt, "pon_port": ont.pon_port, "onu_id": ont.onu_id,
               "state": ont.state.value, "condition": ont.condition,
               "state_since": _ts(ont.state_since), "last_seen": _ts(ont.last_seen)}
    if ont.state is OntState.UP:
        s.checks.append(Check("inventory.ont", "ONT known", Verdict.OK, finding,
                              details=details))
    elif ont.state is OntState.IMPORTED:
        s.checks.append(Check("inventory.ont", "ONT known", Verdict.WARNING, finding,
                              f"the ONT was imported but never seen: plug it into {where} "
                              "and power it on", details=details))
    else:
        s.checks.append(Check("inventory.ont", "ONT known", Verdict.WARNING, finding,
                              "see the ONT's live state below", details=details))
    return s


# ---- the ONT's live state, read from its OLT -------------------------------------------------
OLT_STATE_NS = "urn:ponctl:yang:ponctl-olt-state"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
# PONCTL-MIB (configs/mibs/PONCTL-MIB.txt)
_ONT_SERIAL = "1.3.6.1.4.1.32473.1.1.2.1.2"
_ONT_OPER = "1.3.6.1.4.1.32473.1.1.2.1.5"
_ONT_RX = "1.3.6.1.4.1.32473.1.1.2.1.6"  # 0.01 dBm; 0 while there is no light
_AUTOFIND_SERIAL = "1.3.6.1.4.1.32473.1.1.4.1.2"
_SNMP_OPER = {1: "not-present", 2: "ranging", 3: "operational", 4: "los", 5: "dying-gasp"}
_CLI_FIELD = re.compile(r"^\s*([A-Za-z][A-Za-z ()/-]*?)\s*:\s*(.*?)\s*$")


@dataclass(frozen=True, slots=True)
class LiveOnt:
    """What the OLT says about the ONT now (``error``: why it could not be read)."""

    olt: str
    source: str  # e.g. "NETCONF ponctl-olt-state"
    reported: bool = False  # the OLT reports the serial at all
    registered: bool = True  # configured on the OLT (False: seen, e.g. in autofind, only)
    state: str = ""  # the OLT's words, normalised: operational, los, not-present, ...
    online: bool = False
    rx_dbm: float | None = None
    tx_dbm: float | None = None
    uni_link: dict[int, bool] | None = None  # None: the OLT does not report UNI links
    not_applied: dict[str, str] = field(default_factory=dict)  # service -> reason
    down_cause: str = ""
    error: str = ""


def _driver(ctx: Context, olt: str) -> Driver[Any]:
    engine = ctx.engine
    device = engine.settings.device(olt)
    return driver_factory(device, engine.profiles(device.profile), engine.environ)()


async def _netconf_live(driver: Driver[Any], olt: str, serial: str) -> LiveOnt:
    ns = {"s": OLT_STATE_NS}
    flt = (f'<olt-state xmlns="{OLT_STATE_NS}"><onts><ont><serial>{serial}</serial></ont>'
           f'</onts></olt-state>')
    data = (await driver.get_state(flt)).data
    root = etree.fromstring(f"<data>{data}</data>", _PARSER)
    src = "NETCONF ponctl-olt-state"
    for ont in root.iterfind("s:olt-state/s:onts/s:ont", ns):
        if (ont.findtext("s:serial", "", ns) or "").upper() != serial:
            continue
        state = ont.findtext("s:state", "", ns) or ""

        def num(name: str, el: etree._Element = ont) -> float | None:
            text = el.findtext(f"s:{name}", "", ns)
            try:
                return float(text) if text else None
            except ValueError:
                return None

        unis = {int(u.findtext("s:index", "0", ns) or 0):
                (u.findtext("s:link-up", "", ns) or "") == "true"
                for u in ont.iterfind("s:uni", ns)}
        not_applied = {n.findtext("s:name", "", ns) or "?": n.findtext("s:reason", "", ns) or ""
                       for n in ont.iterfind("s:not-applied-service", ns)}
        return LiveOnt(olt, src, True, state != "unclaimed", state, state == "operational",
                       num("rx-power-dbm"), num("tx-power-dbm"), unis or None, not_applied)
    return LiveOnt(olt, src)


async def _snmp_live(driver: Driver[Any], olt: str, serial: str) -> LiveOnt:
    src = "SNMP PONCTL-MIB"

    def column(rows: list[Any], col: str) -> dict[str, Any]:
        return {vb.oid[len(col) + 1:]: vb.value for vb in rows
                if isinstance(vb, Varbind) and vb.oid.startswith(col + ".")}

    serials = column((await driver.get_state(_ONT_SERIAL)).data, _ONT_SERIAL)
    row = next((idx for idx, v in serials.items() if str(v).upper() == serial), None)
    if row is None:
        found = column((await driver.get_state(_AUTOFIND_SERIAL)).data, _AUTOFIND_SERIAL)
        if any(str(v).upper() == serial for v in found.values()):
            return LiveOnt(olt, src, True, False, "unclaimed", False)
        return LiveOnt(olt, src)
    oper = column((await driver.get_state(f"{_ONT_OPER}.{row}")).data, _ONT_OPER)
    rx = column((await driver.get_state(f"{_ONT_RX}.{row}")).data, _ONT_RX)
    status = int(oper.get(row, 1) or 1)
    state = _SNMP_OPER.get(status, str(status))
    raw = int(rx.get(row, 0) or 0)
    return LiveOnt(olt, src, True, True, state, status == 3,
                   raw / 100 if raw and status == 3 else None)


async def _cli_live(driver: Driver[Any], olt: str, serial: str) -> LiveOnt:
    src = "CLI display ont info"

    async def show(command: str) -> str:
        if isinstance(driver, CliDriver):
            return (await driver.get_state(command, check=False)).data
        try:
            return str((await driver.get_state(command)).data)
        except CliRejectedError as exc:
            return exc.output

    info = await show(f"display ont info by-sn {serial}")
    fields = {m.group(1).strip().lower(): m.group(2)
              for m in map(_CLI_FIELD.match, info.splitlines()) if m}
    run = fields.get("run state")
    if run is None:
        found = await show("display ont autofind all")
        if f"{serial[:4]}-{serial[4:]}" in found or \
                serial[:4].encode().hex().upper() + serial[4:] in found:
            return LiveOnt(olt, src, True, False, "unclaimed", False)
        return LiveOnt(olt, src)

    def dbm(text: str | None) -> float | None:
        try:
            return float(text) if text and text != "-" else None
        except ValueError:
            return None

    cause = fields.get("last down cause", "-")
    state = "operational" if run == "online" else (
        "los" if "LOS" in cause else "dying-gasp" if "dying" in cause else "not-present")
    return LiveOnt(olt, src, True, True, state, run == "online",
                   dbm(fields.get("rx optical power(dbm)")),
                   dbm(fields.get("tx optical power(dbm)")),
                   down_cause="" if cause == "-" else cause)


_READERS: dict[str, Callable[[Driver[Any], str, str], Awaitable[LiveOnt]]] = {
    "netconf": _netconf_live, "snmp": _snmp_live, "ssh": _cli_live}


async def read_live(ctx: Context) -> LiveOnt:
    """Connect to the ONT's OLT, read the ONT, close; bounded by ``check_timeout``."""
    ont = ctx.ont
    assert ont is not None
    try:
        driver = _driver(ctx, ont.olt)
    except (KeyError, SettingsError) as exc:
        return LiveOnt(ont.olt, "settings", error=f"OLT {ont.olt} cannot be read: "
                                                   f"{exc.args[0] if exc.args else exc}")
    protocol = driver.protocol
    try:
        async with asyncio.timeout(ctx.config.check_timeout):
            await driver.connect()
            return await _READERS[protocol](driver, ont.olt, ont.serial)
    except TimeoutError:
        return LiveOnt(ont.olt, protocol, error=f"OLT {ont.olt} did not answer within "
                                                f"{ctx.config.check_timeout:g} s")
    except DriverError as exc:
        return LiveOnt(ont.olt, protocol, error=classify(exc).message)
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                await driver.close()


_ABSENT_STEP = {
    "los": "no light reaches the ONT (fibre cut, bent or unplugged): check the drop fibre and "
           "its connectors at the ONT and the splitter; the agent resumes by itself when the "
           "ONT comes back",
    "dying-gasp": "the ONT lost power (dying gasp): ask the customer to check the ONT's power "
                  "supply and switch it on; the agent resumes by itself when it comes back",
    "not-present": "the OLT does not see the ONT: check that it is powered on (PWR LED) and "
                   "its fibre is plugged in (PON LED); the agent resumes by itself when it "
                   "comes back",
}


def optical_class_of(config: DiagnoseSettings, olt: str, serial: str) -> str:
    return config.ont_optical_class.get(serial) or config.olt_optical_class.get(olt) \
        or config.optical_class


def judge_rx(config: DiagnoseSettings, olt: str, serial: str, rx: float) -> Check:
    """The Rx level against the ONT's GPON class: fail outside, warning within
    ``margin_warning_db`` of a limit, ok otherwise; the margin to the nearer limit."""
    name = optical_class_of(config, olt, serial)
    limits = config.classes()[name]
    margin = round(min(rx - limits.min_dbm, limits.max_dbm - rx), 2)
    details = {"rx_dbm": rx, "class": name, "min_dbm": limits.min_dbm,
               "max_dbm": limits.max_dbm, "margin_db": margin}
    span = f"class {name}: {limits.min_dbm:g} to {limits.max_dbm:g} dBm"
    if rx < limits.min_dbm:
        return Check("ont.optical", "Optical Rx", Verdict.FAIL,
                     f"Rx {rx:.2f} dBm is {-margin:.2f} dB below the {span}",
                     "too little light: clean and reseat the ONT's fibre connector, check the "
                     "drop for bends or a bad splice; measure with a power meter", details=details)
    if rx > limits.max_dbm:
        return Check("ont.optical", "Optical Rx", Verdict.FAIL,
                     f"Rx {rx:.2f} dBm is {-margin:.2f} dB above the {span} (overload)",
                     "too much light: the ONT needs an attenuator, or the OLT port a "
                     "different optical class", details=details)
    if margin < config.margin_warning_db:
        return Check("ont.optical", "Optical Rx", Verdict.WARNING,
                     f"Rx {rx:.2f} dBm is within the {span}, but only {margin:.2f} dB from a "
                     f"limit", "the link works but has little reserve: clean the connectors "
                     "and check the drop at the next visit", details=details)
    return Check("ont.optical", "Optical Rx", Verdict.OK,
                 f"Rx {rx:.2f} dBm, {margin:.2f} dB margin ({span})", details=details)


def _order_unis(ctx: Context) -> list[int]:
    unis = sorted({r.uni for o in ctx.open_orders if (r := ctx.resolved(o)) is not None})
    return unis or [1]


async def ont_section(ctx: Context) -> Section | None:
    if ctx.ont is None:
        return None
    s = Section("ont", f"ONT live state (OLT {ctx.ont.olt})")
    live = await ctx.live()
    serial = ctx.ont.serial
    if live.error:
        next_step = (f"check that OLT {live.olt} is up and reachable from the agent; the "
                     f"ONT's state cannot be told until it is")
        for cid, title in (("ont.presence", "ONT on the OLT"), ("ont.optical", "Optical Rx")):
            s.checks.append(Check(cid, title, Verdict.UNKNOWN,
                                  f"could not read OLT {live.olt}: {live.error}", next_step))
        return s
    s.notes.append(f"read over {live.source}")
    where = f"OLT {live.olt} port {ctx.ont.pon_port}"
    details: dict[str, Any] = {"state": live.state or "not reported", "source": live.source}
    if live.down_cause:
        details["down_cause"] = live.down_cause
    if not live.reported:
        s.checks.append(Check("ont.presence", "ONT on the OLT", Verdict.FAIL,
                              f"{where} does not report ONT {serial}",
                              _ABSENT_STEP["not-present"], details=details))
    elif not live.registered:
        orders = "; check its orders below" if ctx.open_orders else ""
        s.checks.append(Check("ont.presence", "ONT on the OLT", Verdict.WARNING,
                              f"ONT {serial} is on the fibre at {where} but not configured on "
                              f"the OLT (unclaimed)",
                              f"nothing has been provisioned on it yet{orders}", details=details))
    elif live.online:
        s.checks.append(Check("ont.presence", "ONT on the OLT", Verdict.OK,
                              f"ONT {serial} is operational on {where}", details=details))
    elif live.state == "ranging":
        s.checks.append(Check("ont.presence", "ONT on the OLT", Verdict.WARNING,
                              f"ONT {serial} is ranging on {where}",
                              "it is coming up: run the diagnosis again in a minute",
                              details=details))
    else:
        cause = f" ({live.down_cause})" if live.down_cause else ""
        s.checks.append(Check("ont.presence", "ONT on the OLT", Verdict.FAIL,
                              f"ONT {serial} is {live.state or 'down'}{cause} on {where}",
                              _ABSENT_STEP.get(live.state, _ABSENT_STEP["not-present"]),
                              details=details))
    if live.rx_dbm is not None:
        s.checks.append(judge_rx(ctx.config, live.olt, serial, live.rx_dbm))
    elif live.reported and (live.online or not live.registered):
        s.checks.append(Check("ont.optical", "Optical Rx", Verdict.UNKNOWN,
                              f"OLT {live.olt} reports no Rx level for ONT {serial}",
                              "read the level on the ONT's own status page or with a power "
                              "meter"))
    else:
        s.checks.append(Check("ont.optical", "Optical Rx", Verdict.FAIL,
                              f"no optical signal: the ONT is {live.state or 'not seen'}",
                              "fix the ONT's presence first (see above)"))
    if live.uni_link is None:
        s.notes.append(f"UNI link state is not reported over {live.source}")
    elif live.online:
        for uni in _order_unis(ctx):
            up = live.uni_link.get(uni)
            if up is None:
                s.checks.append(Check("ont.uni", "UNI link", Verdict.UNKNOWN,
                                      f"the ONT reports no UNI {uni}",
                                      "check the service type's UNI in the catalog",
                                      subject=f"UNI {uni}"))
            elif up:
                s.checks.append(Check("ont.uni", "UNI link", Verdict.OK,
                                      f"UNI {uni} (LAN {uni}) has an Ethernet link",
                                      subject=f"UNI {uni}"))
            else:
                s.checks.append(Check("ont.uni", "UNI link", Verdict.WARNING,
                                      f"UNI {uni} (LAN {uni}) has no Ethernet link",
                                      f"check the cable from the ONT's LAN {uni} port to the "
                                      f"customer's router, and that the router is on",
                                      subject=f"UNI {uni}"))
    for name, reason in sorted(live.not_applied.items()):
        s.checks.append(Check("ont.applied", "Service on the ONT", Verdict.FAIL,
                              f"the ONT could not apply service {name}: {reason}",
                              "the ONT refuses this configuration: check the ONT model and "
                              "firmware against the service, then resend the order",
                              subject=name))
    return s


# ---- orders: status, last push, configuration versus intent --------------------------------
_CLASS_STEP = {
    "connection-error": "the ONT or OLT cannot be reached: fix that (see the ONT state); "
                        "resending will not help, the agent retries by itself when it is back",
    "configuration-missing": "the catalog or the network lacks something (see the message): "
                             "ask the network team to fix the configuration, then resend the "
                             "order",
    "rejected": "the OLT refused the change: escalate with the device's message quoted above",
    "mismatch": "the OLT holds something else than the order says: resend the order to "
                "re-apply it",
}
RESEND = "resend: POST /api/v1/orders/{id}/resend (admin)"


def _status_check(order: Order, st: OrderStatus) -> Check:
    details: dict[str, Any] = {"status": st.status.value,
                               "error_class": st.error_class.value if st.error_class else None,
                               "prerequisites": list(st.prerequisites)}
    if st.activates_at is not None:
        details["activates_at"] = _ts(st.activates_at)
    what = f"{order.isp} {order.service_type}"
    cid, title = "order.status", "Order status"
    if st.status in (Status.ACTIVE, Status.AWAITING_ACTIVATION, Status.CANCELLED,
                     Status.TERMINATED):
        return Check(cid, title, Verdict.OK, f"{what}: {st.status.value}: {st.message}",
                     subject=order.id, details=details)
    if st.error_class is not None:
        step = _CLASS_STEP[st.error_class.value]
        if st.error_class.value in ("configuration-missing", "mismatch"):
            step += f" ({RESEND.format(id=order.id)})"
        return Check(cid, title, Verdict.FAIL,
                     f"{what}: {st.status.value}, {st.error_class.value}: {st.message}",
                     step, subject=order.id, details=details)
    if st.status is Status.AWAITING_PREREQUISITES:
        return Check(cid, title, Verdict.WARNING,
                     f"{what}: waiting for: " + "; ".join(st.prerequisites),
                     "complete what is listed (a technician's step, nothing is broken)",
                     subject=order.id, details=details)
    return Check(cid, title, Verdict.WARNING, f"{what}: {st.status.value}: {st.message}",
                 "the agent is provisioning it: run the diagnosis again in a minute",
                 subject=order.id, details=details)


def _push_check(order: Order, st: OrderStatus, pushes: Sequence[Push]) -> Check:
    cid, title = "order.push", "Last push"
    if not pushes:
        waiting = st.status in (Status.AWAITING_PREREQUISITES, Status.AWAITING_ACTIVATION,
                                Status.CANCELLED)
        return Check(cid, title, Verdict.OK if waiting else Verdict.WARNING,
                     "nothing pushed yet" + (f" (the order is {st.status.value})" if waiting
                                             else ""),
                     "" if waiting else "the agent pushes it when it can; see the order status",
                     subject=order.id)
    p = pushes[-1]
    details: dict[str, Any] = {"push_id": p.id, "device": p.device, "action": p.action.value,
                               "phase": p.phase.value, "started_at": _ts(p.started_at),
                               "finished_at": _ts(p.finished_at),
                               "error_class": p.error_class.value if p.error_class else None,
                               "message": p.message}
    head = f"{p.action.value} #{p.id} on {p.device}, started {_ts(p.started_at)}"
    if p.phase is PushPhase.VERIFIED:
        return Check(cid, title, Verdict.OK, f"{head}: verified ({p.message})",
                     subject=order.id, details=details)
    if p.pending:
        return Check(cid, title, Verdict.WARNING, f"{head}: in progress ({p.phase.value})",
                     "wait for it to finish, then run the diagnosis again", subject=order.id,
                     details=details)
    cls = p.error_class.value if p.error_class else "failed"
    step = _CLASS_STEP.get(cls, "see the message")
    if cls in ("configuration-missing", "mismatch"):
        step += f" ({RESEND.format(id=order.id)})"
    return Check(cid, title, Verdict.FAIL, f"{head}: {p.phase.value}, {cls}: {p.message}",
                 step, subject=order.id, details=details)


async def _config_check(ctx: Context, order: Order, st: OrderStatus) -> Check | None:
    """The engine's dry run: the OLT against the order's intent (None: not applicable)."""
    if st.status not in (Status.ACTIVE, Status.AWAITING_PROVISIONING):
        return None
    if order.removal_requested_at is not None:
        return None
    cid, title = "order.config", "OLT config vs intent"
    try:
        async with asyncio.timeout(ctx.config.check_timeout):
            run = await ctx.engine.dry_run(order.id)
    except TimeoutError:
        return Check(cid, title, Verdict.UNKNOWN,
                     f"the comparison did not finish within {ctx.config.check_timeout:g} s "
                     f"(the OLT is slow or its push queue busy)",
                     "run the diagnosis again; if it persists, check the OLT", subject=order.id)
    except (KeyError, SettingsError) as exc:
        return Check(cid, title, Verdict.UNKNOWN, f"cannot compare: {exc}", subject=order.id)
    details: dict[str, Any] = {"action": run.action.value, "olt": run.olt}
    if run.action.value != "dry-run":
        return Check(cid, title, Verdict.UNKNOWN, f"not compared: {run.reason}",
                     "see the order status", subject=order.id, details=details)
    if run.error or not run.compared:
        if run.error_class is not None and run.error_class.value == "configuration-missing":
            return Check(cid, title, Verdict.FAIL, f"cannot render the intent: {run.error}",
                         _CLASS_STEP["configuration-missing"], subject=order.id,
                         details=details)
        return Check(cid, title, Verdict.UNKNOWN,
                     f"could not compare with OLT {run.olt}: {run.error or 'no diff'}",
                     f"check that OLT {run.olt} is up and reachable", subject=order.id,
                     details=details)
    if not run.diff.strip():
        return Check(cid, title, Verdict.OK,
                     f"OLT {run.olt} holds exactly what the order needs (dry run: empty diff)",
                     subject=order.id, details=details)
    details["diff"] = run.diff
    lines = len(run.diff.splitlines())
    if st.status is Status.ACTIVE:
        return Check(cid, title, Verdict.FAIL,
                     f"OLT {run.olt} differs from the intent ({lines} diff lines): changed on "
                     f"the box, or lost in a reboot",
                     f"resend the order to re-apply it ({RESEND.format(id=order.id)})",
                     subject=order.id, details=details)
    return Check(cid, title, Verdict.WARNING,
                 f"the order is not (fully) on OLT {run.olt} yet ({lines} diff lines): "
                 f"expected while it awaits provisioning",
                 "see the order status and last push", subject=order.id, details=details)


async def orders_section(ctx: Context) -> Section:
    s = Section("orders", "Orders")
    orders = list(ctx.target.orders)
    if not orders:
        s.notes.append(f"no open order for object {ctx.target.object_id}"
                       if ctx.target.object_id else "no object, so no order")
        return s
    store = ctx.engine.store

    async def one(order: Order) -> list[Check]:
        st = ctx.statuses[order.id]
        pushes = await store.pushes_of(order.id)
        out = [_status_check(order, st), _push_check(order, st, pushes)]
        config = await _config_check(ctx, order, st)
        if config is not None:
            out.append(config)
        return out

    for checks in await asyncio.gather(*(one(o) for o in orders)):
        s.checks += checks
    return s


# ---- data path (the simulated lab) ----------------------------------------------------------
TPIDS = {0x88A8: "s-vlan", 0x8100: "c-vlan", 0x9100: "s-vlan"}
TRACE_MAC = "02:00:5e:00:00:01"


def _checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def dhcp_discover(mac: str = TRACE_MAC, vlan: int | None = None) -> bytes:
    """A broadcast DHCP Discover from ``mac``, untagged or with one 802.1Q tag ``vlan``."""
    hw = bytes.fromhex(mac.replace(":", ""))
    xid = int.from_bytes(hw[2:], "big")
    options = bytes([53, 1, 1, 61, 7, 1]) + hw + bytes([55, 3, 1, 3, 6, 255])
    bootp = (struct.pack("!BBBBIHH", 1, 1, 6, 0, xid, 0, 0x8000) + bytes(16) + hw + bytes(10)
             + bytes(192) + b"\x63\x82\x53\x63" + options)
    bootp += bytes(max(0, 300 - len(bootp)))
    udp = struct.pack("!HHHH", 68, 67, 8 + len(bootp), 0) + bootp
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     bytes(4), b"\xff" * 4)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    tag = b"" if vlan is None else struct.pack("!HH", 0x8100, vlan & 0xFFF)
    return b"\xff" * 6 + hw + tag + b"\x08\x00" + ip + udp


def frame_tags(frame: bytes) -> list[tuple[str, int, int]]:
    """The VLAN tags of an Ethernet frame, outer first: (kind, VLAN id, TPID)."""
    out: list[tuple[str, int, int]] = []
    i = 12
    while i + 4 <= len(frame):
        tpid, tci = struct.unpack("!HH", frame[i:i + 4])
        if tpid not in TPIDS:
            break
        out.append((TPIDS[tpid], tci & 0xFFF, tpid))
        i += 4
    return out


@dataclass(frozen=True, slots=True)
class _TraceUnit:
    uni: int
    user_vlan: int | None  # None: untagged on the UNI
    expected: tuple[int, int]  # (S-VLAN, C-VLAN) on the uplink
    orders: tuple[str, ...]
    active: bool


async def _trace(ctx: Context, session: aiohttp.ClientSession, serial: str,
                 unit: _TraceUnit) -> Check:
    assert ctx.config.lab_control is not None
    url = ctx.config.lab_control.rstrip("/") + "/trace"
    frame = dhcp_discover(vlan=unit.user_vlan)
    sent = f"DHCP Discover ({'untagged' if unit.user_vlan is None else f'VLAN {unit.user_vlan}'})"
    subject = f"UNI {unit.uni}"
    cid, title = "datapath.dhcp", "Data path (lab trace)"
    body = {"serial": serial, "uni": unit.uni, "frame_hex": frame.hex()}
    try:
        async with session.post(url, json=body) as resp:
            data = await resp.json(content_type=None)
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return Check(cid, title, Verdict.UNKNOWN,
                     f"the lab's control endpoint {ctx.config.lab_control} did not answer: "
                     f"{type(exc).__name__} {exc}".strip(),
                     "check that the simulated lab is running (ponctl sim run)",
                     subject=subject)
    if status != 200 or not isinstance(data, dict):
        error = data.get("error") if isinstance(data, dict) else None
        return Check(cid, title, Verdict.UNKNOWN,
                     f"the lab could not trace ONT {serial}: {error or f'HTTP {status}'}",
                     "check that this ONT is part of the running lab", subject=subject)
    steps = [str(x) for x in data.get("steps") or []]
    details: dict[str, Any] = {"sent": sent, "forwarded": bool(data.get("forwarded")),
                               "steps": steps, "egress": data.get("egress"),
                               "frame": data.get("frame"), "orders": list(unit.orders),
                               "expected_s_vlan": unit.expected[0],
                               "expected_c_vlan": unit.expected[1]}
    bad = Verdict.FAIL if unit.active else Verdict.WARNING
    if not data.get("forwarded"):
        reason = str(data.get("drop_reason") or "no reason given")
        details["drop_reason"] = reason
        step = ("bring the ONT back first (see the ONT state)" if "forwards nothing" in reason
                else "the service is not (correctly) on the ONT/OLT: see the orders' config "
                     "check, and resend the order")
        return Check(cid, title, bad, f"{sent} from UNI {unit.uni} is dropped: {reason}",
                     step, subject=subject, details=details)
    try:
        out = base64.b64decode(str(data.get("frame_b64") or ""), validate=True)
    except (binascii.Error, ValueError):
        out = b""
    tags = frame_tags(out)
    details["tags"] = [{"kind": k, "vlan": v, "tpid": f"0x{t:04x}"} for k, v, t in tags]
    words = " / ".join(f"{'outer' if i == 0 else 'inner'} {k.upper()} {v} (0x{t:04x})"
                       for i, (k, v, t) in enumerate(tags)) or "untagged"
    if len(tags) >= 2:
        details["outer_vlan"], details["inner_vlan"] = tags[0][1], tags[1][1]
    got = tuple(v for _, v, _ in tags[:2])
    finding = f"{sent} from UNI {unit.uni} leaves on {data.get('egress')} with {words}"
    if got == unit.expected:
        return Check(cid, title, Verdict.OK, finding, subject=subject, details=details)
    s_vlan, c_vlan = unit.expected
    return Check(cid, title, bad,
                 f"{finding}; the order needs outer S-VLAN {s_vlan} / inner C-VLAN {c_vlan}",
                 "the tagging on the box differs from the order: see the orders' config check "
                 "and resend the order", subject=subject, details=details)


async def datapath_section(ctx: Context) -> Section | None:
    if ctx.config.lab_control is None or ctx.target.serial is None:
        return None
    s = Section("datapath", "Data path (simulated lab)")
    units: dict[tuple[int, int | None], _TraceUnit] = {}
    for order in ctx.open_orders:
        r = ctx.resolved(order)
        if r is None or order.removal_requested_at is not None:
            continue
        key = (r.uni, r.user_vlan if r.tagged else None)
        active = ctx.statuses[order.id].status is Status.ACTIVE
        prev = units.get(key)
        units[key] = _TraceUnit(r.uni, key[1], (r.s_vlan, r.c_vlan),
                                (*(prev.orders if prev else ()), order.id),
                                active or (prev.active if prev else False))
    if not units:
        s.notes.append("no order with a resolved service to trace")
        return s
    timeout = aiohttp.ClientTimeout(total=ctx.config.check_timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        s.checks += await asyncio.gather(*(_trace(ctx, session, ctx.target.serial, u)
                                           for u in units.values()))
    return s


# ---- gateway ---------------------------------------------------------------------------------
_PHASE_STEP = {
    "pending": "the agent writes it once the gateway answers (its ONT must be up with a "
               "service on the gateway's UNI); check the gateway's power and cabling",
    "writing": "a write is in progress (or was interrupted: the agent re-runs it on start)",
    "failed": "fix what the message says (credentials, host key, gateway class), then "
              "resend: POST /api/v1/gateways/{name}/resend (admin)",
}


async def gateway_section(ctx: Context) -> Section | None:
    """The gateways behind the target's ONT: reachable, and holding their line's PHAN URL."""
    if ctx.target.serial is None:
        return None
    lines = ctx.engine.lines
    gateways = [g for g in await lines.list_gateways(ont_serial=ctx.target.serial)
                if g.retired_at is None]
    if not gateways:
        return None
    s = Section("gateway", "Gateway and PHAN URL")
    for gw in gateways:
        line = await lines.line_of_gateway(gw.name)
        st = await lines.gateway_state(gw.name)
        if line is None or st is None:
            s.checks.append(Check("gateway.line", "Line of service", Verdict.WARNING,
                                  f"gateway {gw.name} carries no line of service",
                                  "associate the subscriber's line with it: POST "
                                  "/api/v1/lines/{code}/gateway (admin)", subject=gw.name))
            continue
        recorded = (f"the agent's record: {st.phase.value}"
                    + (f" ({st.message})" if st.message else ""))
        try:
            async with asyncio.timeout(ctx.config.check_timeout):
                holds, why = await ctx.engine.gateways.check(gw.name)
        except TimeoutError:
            holds, why = None, f"no answer within {ctx.config.check_timeout:g} s"
        details = {"line": line.code, "phan_url": line.phan_url, "phase": st.phase.value,
                   "address": gw.address}
        if holds is None:
            s.checks.append(Check("gateway.reachable", "Gateway reachable", Verdict.FAIL,
                                  f"gateway {gw.name} at {gw.address} cannot be read: {why}; "
                                  f"{recorded}",
                                  _PHASE_STEP["pending"], subject=gw.name, details=details))
        elif holds:
            s.checks.append(Check("gateway.url", "PHAN URL present", Verdict.OK,
                                  f"gateway {gw.name} holds line {line.code}'s PHAN URL",
                                  subject=gw.name, details=details))
        else:
            step = _PHASE_STEP.get(st.phase.value, "").replace("{name}", gw.name) or (
                f"resend: POST /api/v1/gateways/{gw.name}/resend (admin)")
            s.checks.append(Check("gateway.url", "PHAN URL present", Verdict.FAIL,
                                  f"gateway {gw.name} does not hold line {line.code}'s PHAN "
                                  f"URL; {recorded}", step, subject=gw.name,
                                  details={**details, "diff": why}))
    return s


# ---- the report ------------------------------------------------------------------------------
SECTIONS: list[SectionSpec] = [
    SectionSpec("inventory", "Inventory", inventory_section),
    SectionSpec("ont", "ONT live state", ont_section),
    SectionSpec("orders", "Orders", orders_section),
    SectionSpec("gateway", "Gateway and PHAN URL", gateway_section),
    SectionSpec("datapath", "Data path (simulated lab)", datapath_section),
]


async def _run_section(spec: SectionSpec, ctx: Context) -> Section | None:
    bound = ctx.config.report_timeout
    try:
        async with asyncio.timeout(bound):
            return await spec.run(ctx)
    except TimeoutError:
        return Section(spec.id, spec.title, [Check(
            f"{spec.id}.timeout", spec.title, Verdict.UNKNOWN,
            f"these checks did not finish within {bound:g} s (a device did not answer)",
            "run the diagnosis again; if it persists, check the devices' reachability")])
    except Exception as exc:  # one broken section must not lose the report
        log.exception("diagnose: section %s failed", spec.id)
        return Section(spec.id, spec.title, [Check(
            f"{spec.id}.error", spec.title, Verdict.UNKNOWN,
            f"could not be checked: {type(exc).__name__}: {exc}",
            "report this to the agent's maintainers with the agent's log")])


async def diagnose(engine: Engine, text: str, kind: Kind | None = None,
                   config: DiagnoseSettings | None = None) -> Report:
    """The report for ``text`` (see the module docstring). Raises :class:`UnknownTarget` or
    :class:`AmbiguousTarget`; everything else ends up in the report."""
    t0 = time.perf_counter()
    target = await resolve(engine, text, kind)
    ont = await engine.store.get_ont(target.serial) if target.serial else None
    statuses = {o.id: await engine.status(o.id) for o in target.orders}
    ctx = Context(engine, target, config or engine.settings.diagnose, ont, statuses)
    try:
        found = await asyncio.gather(*(_run_section(spec, ctx) for spec in SECTIONS))
    finally:
        if ctx._live is not None and not ctx._live.done():
            ctx._live.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ctx._live
    sections = tuple(s for s in found if s is not None)
    return Report(target, sections, datetime.now(UTC), round(time.perf_counter() - t0, 3))


def report_json(report: Report) -> dict[str, Any]:
    """The report as JSON-able data (the API's response)."""
    t = report.target
    return {
        "target": t.text, "kind": t.kind, "object_id": t.object_id, "serial": t.serial,
        "orders": [o.id for o in t.orders], "verdict": report.verdict.value,
        "exit_code": report.exit_code, "generated_at": report.generated_at,
        "seconds": report.seconds,
        "sections": [{"id": s.id, "title": s.title, "verdict": s.verdict.value,
                      "notes": list(s.notes),
                      "checks": [{"id": c.id, "title": c.title, "verdict": c.verdict.value,
                                  "finding": c.finding, "next_step": c.next_step,
                                  "subject": c.subject, "details": c.details}
                                 for c in s.checks]}
                     for s in report.sections],
    }
