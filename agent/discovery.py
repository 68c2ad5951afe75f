"""ONT auto-discovery: device events -> :class:`OntSeen` -> the inventory.

Three sources, whichever the OLT's profile uses:

- NETCONF ``onu-state-change`` notifications (BBF ``bbf-xpon-onu-states``; the ponctl
  ``ont-state`` augment tells LOS and dying gasp apart): :func:`from_netconf`;
- SNMP traps ``ponctlOntDiscovered`` / ``ponctlOntUp`` / ``ponctlOntDown`` (PONCTL-MIB):
  :func:`from_snmp_trap`;
- the CLI's ``display ont autofind all``, polled: :func:`parse_autofind` gives the ONTs
  listed, :func:`autofind_changes` the arrivals and departures between two polls.

The parsers are pure; a field that fails validation is ignored with a logged warning, never a
crash. :func:`watch` runs one OLT's stream and survives dropped sessions by reconnecting with a
bounded exponential backoff; :func:`record` turns each :class:`OntSeen` into a store upsert
(an ONT seen on another port is moved by the store, not duplicated).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from agent.intent import PON_PORT, SERIAL
from agent.store import InvalidValue, NotFound, OntState, Store, check_text
from drivers.base import DeviceEvent, Driver
from drivers.cli import CliDriver
from drivers.errors import DriverError, SessionLostError
from drivers.netconf import NetconfDriver
from drivers.snmp import SnmpDriver, Varbind

log = logging.getLogger(__name__)

AUTOFIND_COMMAND = "display ont autofind all"

# OntSeen.state values
UNCLAIMED = "unclaimed"  # present, answered ranging, not configured on the OLT
RANGING = "ranging"
OPERATIONAL = "operational"
LOS = "los"
DYING_GASP = "dying-gasp"
NOT_PRESENT = "not-present"
DEPARTED = "departed"  # left the CLI's autofind list: unplugged, or configured meanwhile
STATES = frozenset({UNCLAIMED, RANGING, OPERATIONAL, LOS, DYING_GASP, NOT_PRESENT, DEPARTED})

# PONCTL-MIB ponctlOntOperStatus
SNMP_OPER_STATUS = {1: NOT_PRESENT, 2: RANGING, 3: OPERATIONAL, 4: LOS, 5: DYING_GASP}
SNMP_TRAPS = ("ponctlOntDiscovered", "ponctlOntUp", "ponctlOntDown")

# OntSeen.state -> (store state, condition)
STORE_STATE: dict[str, tuple[OntState, str]] = {
    OPERATIONAL: (OntState.UP, ""),
    RANGING: (OntState.DOWN, "ranging"),
    # Unclaimed is up and waiting for its configuration: the push is what claims it, so it
    # must not count as offline (its order would wait for itself).
    UNCLAIMED: (OntState.UP, "unclaimed: not configured on the OLT yet"),
    LOS: (OntState.ABSENT, "loss of signal (fibre fault?)"),
    DYING_GASP: (OntState.ABSENT, "dying gasp: the ONT lost power"),
    NOT_PRESENT: (OntState.ABSENT, "not present on the PON port"),
}
DEPARTED_CONDITION = "left autofind: unplugged, or configured on the OLT"


@dataclass(frozen=True, slots=True)
class OntSeen:
    """One observation of an ONT by an OLT."""

    olt: str
    serial: str
    pon_port: str
    state: str  # one of STATES
    model: str | None = None
    firmware: str | None = None
    vendor: str | None = None
    onu_id: int | None = None
    source: str = ""  # "netconf", "snmp", "cli"
    # When the OLT was asked (a sweep or poll: before the request went out) or the report
    # arrived (a notification, a trap); None: unknown. A report older than the ONT's last
    # recorded change is stale and changes nothing (see :func:`record`).
    at: datetime | None = None


# ---- field helpers ------------------------------------------------------------------------
def _serial(raw: str | None, where: str) -> str | None:
    value = (raw or "").strip().upper()
    if SERIAL.fullmatch(value):
        return value
    log.warning("%s: ignoring an invalid ONT serial %r", where, (raw or "")[:64])
    return None


def _port(raw: str | None, where: str) -> str | None:
    value = (raw or "").strip()
    if value.startswith("ct-"):
        value = value[3:]
    if PON_PORT.fullmatch(value):
        return value
    log.warning("%s: ignoring an invalid PON port %r", where, (raw or "")[:64])
    return None


def _onu_id(raw: str | None, where: str) -> int | None:
    if raw is None or not raw.strip():
        return None
    value = raw.strip()
    if value.isdigit() and int(value) < 128:  # the store's onu-id range
        return int(value)
    log.warning("%s: ignoring an invalid onu-id %r", where, value[:64])
    return None


def _text(raw: str | None, what: str, where: str) -> str | None:
    if raw is None:
        return None
    value = raw.strip()
    try:
        return check_text(what, value) or None
    except InvalidValue as e:
        log.warning("%s: ignoring %s", where, e)
        return None


def _field(fields: Mapping[str, str], name: str) -> str | None:
    """A field by its name, with or without an instance suffix (``ponctlOntSerial.2.3``)."""
    if name in fields:
        return fields[name]
    for key, value in fields.items():
        if key.startswith(name + "."):
            return value
    return None


def bbf_onu_state(identity: str) -> str | None:
    """The OntSeen state for a BBF ``onu-state`` identity (any prefix), None if unknown."""
    name = identity.strip().rpartition(":")[2]
    if name.startswith("onu-not-present"):
        return NOT_PRESENT
    if name == "onu-present-and-on-intended-channel-termination":
        return OPERATIONAL
    if "no-v-ani-known" in name or name == "onu-present-and-unclaimed":
        return UNCLAIMED
    if name.startswith("onu-present"):
        return RANGING
    return None


# ---- parsers --------------------------------------------------------------------------------
def from_netconf(olt: str, event: DeviceEvent) -> OntSeen | None:
    """An ``onu-state-change`` notification as OntSeen; None for other or unusable events."""
    if event.kind != "onu-state-change":
        return None
    where = f"{olt}: netconf onu-state-change"
    f = event.fields
    serial = _serial(f.get("detected-serial-number"), where)
    port = _port(f.get("channel-termination-ref"), where)
    if serial is None or port is None:
        return None
    state: str | None = None
    ont_state = (f.get("ont-state") or "").strip()
    if ont_state:
        if ont_state in STATES:
            state = ont_state
        else:
            log.warning("%s: ignoring an unknown ont-state %r", where, ont_state[:64])
    if state is None:
        state = bbf_onu_state(f.get("onu-state") or "")
    if state is None:
        log.warning("%s: no usable state for ONT %s (onu-state %r)", where, serial,
                    (f.get("onu-state") or "")[:100])
        return None
    return OntSeen(olt, serial, port, state, onu_id=_onu_id(f.get("onu-id"), where),
                   vendor=serial[:4], source="netconf")


def from_snmp_trap(olt: str, event: DeviceEvent) -> OntSeen | None:
    """A ponctlOntDiscovered/Up/Down trap as OntSeen; None for other or unusable traps."""
    if event.kind not in SNMP_TRAPS:
        return None
    where = f"{olt}: snmp {event.kind}"
    f = event.fields
    port = _port(_field(f, "ponctlPonPortName"), where)
    if event.kind == "ponctlOntDiscovered":
        serial = _serial(_field(f, "ponctlAutofindSerial"), where)
        state: str | None = UNCLAIMED
    else:
        serial = _serial(_field(f, "ponctlOntSerial"), where)
        raw = (_field(f, "ponctlOntOperStatus") or "").strip()
        digits = re.search(r"\d+", raw)  # "4" or "los(4)"
        state = SNMP_OPER_STATUS.get(int(digits.group())) if digits else None
        if state is None:
            log.warning("%s: ignoring an unknown ponctlOntOperStatus %r", where, raw[:64])
    if serial is None or port is None or state is None:
        return None
    return OntSeen(olt, serial, port, state, vendor=serial[:4],
                   model=_text(_field(f, "ponctlAutofindModel"), "model", where),
                   firmware=_text(_field(f, "ponctlAutofindFirmware"), "firmware", where),
                   source="snmp")


_HEX_SERIAL = re.compile(r"([0-9A-Fa-f]{16})(?:\s*\(([A-Za-z0-9]{4})-([0-9A-Fa-f]{8})\))?")


def autofind_serial(raw: str) -> str | None:
    """``485754431A2B3C4D (HWTC-1A2B3C4D)``, ``485754431A2B3C4D`` or ``HWTC1A2B3C4D`` as the
    12-character serial; None if it is none of those."""
    value = raw.strip()
    m = _HEX_SERIAL.fullmatch(value)
    if m is not None:
        if m.group(2):
            candidate = (m.group(2) + m.group(3)).upper()
        else:
            try:
                vendor = bytes.fromhex(m.group(1)[:8]).decode("ascii")
            except (ValueError, UnicodeDecodeError):
                return None
            candidate = (vendor + m.group(1)[8:]).upper()
    else:
        candidate = value.replace("-", "").upper()
    return candidate if SERIAL.fullmatch(candidate) else None


def parse_autofind(olt: str, output: str) -> dict[str, OntSeen]:
    """The ONTs in ``display ont autofind all`` output, by serial (state ``unclaimed``).

    Records are blocks of ``Key : value`` lines; a record without a usable serial or F/S/P
    is skipped with a warning. "do not exist" output is an empty result.
    """
    where = f"{olt}: cli autofind"
    found: dict[str, OntSeen] = {}
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in output.splitlines():
        stripped = line.strip()
        if stripped.startswith("----"):
            if current:
                records.append(current)
            current = {}
            continue
        key, sep, value = stripped.partition(":")
        if sep and key.strip():
            current[key.strip().lower()] = value.strip()
    if current:
        records.append(current)
    for rec in records:
        if "ont sn" not in rec and "f/s/p" not in rec:
            continue  # a trailer ("The number of GPON autofind ONT is 2")
        serial = autofind_serial(rec.get("ont sn", ""))
        if serial is None:
            log.warning("%s: ignoring a record with an invalid serial %r", where,
                        rec.get("ont sn", "")[:64])
            continue
        port = _port(rec.get("f/s/p"), where)
        if port is None:
            continue
        found[serial] = OntSeen(
            olt, serial, port, UNCLAIMED,
            model=_text(rec.get("ont equipmentid") or rec.get("ont version"), "model", where),
            firmware=_text(rec.get("ont softwareversion"), "firmware", where),
            vendor=_text(rec.get("vendorid"), "vendor", where) or serial[:4], source="cli")
    return found


def autofind_changes(before: Mapping[str, OntSeen],
                     after: Mapping[str, OntSeen]) -> list[OntSeen]:
    """Arrivals (new serial, or listed on another port) and departures (``departed``, on the
    port it was listed on) between two autofind polls."""
    out: list[OntSeen] = []
    for serial, old in before.items():
        if serial not in after:
            out.append(OntSeen(old.olt, serial, old.pon_port, DEPARTED, source=old.source))
    for serial, new in after.items():
        prev = before.get(serial)
        if prev is None or prev.pon_port != new.pon_port:
            out.append(new)
    return out


def parse_event(olt: str, event: DeviceEvent) -> OntSeen | None:
    """A NETCONF notification or SNMP trap as OntSeen (None if it is about no ONT)."""
    try:
        if event.kind == "onu-state-change":
            return from_netconf(olt, event)
        if event.kind in SNMP_TRAPS:
            return from_snmp_trap(olt, event)
    except (AttributeError, TypeError, ValueError) as e:  # fields of an unexpected shape
        log.warning("%s: ignoring a malformed %s event: %s", olt, event.kind, e)
        return None
    log.debug("%s: ignoring event %s", olt, event.kind)
    return None


# ---- watching -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: ``initial * 2**n`` capped at ``cap``, with +-20 % jitter; after
    ``max_failures`` consecutive failed attempts :func:`watch` raises the last error."""

    initial: float = 0.5
    cap: float = 30.0
    max_failures: int = 10

    def delay(self, failures: int) -> float:
        base: float = min(self.cap, self.initial * 2.0 ** max(0, failures - 1))
        return base * random.uniform(0.8, 1.2)  # jitter, not cryptography


OnSeen = Callable[[OntSeen], Awaitable[None]]


async def _poll_autofind(olt: str, driver: CliDriver, command: str, interval: float,
                         known: dict[str, OntSeen]) -> AsyncIterator[OntSeen]:
    """Poll the autofind list; report the difference to ``known`` (updated in place, so
    arrivals and departures during an outage are reported after reconnecting)."""
    while True:
        asked = datetime.now(UTC)
        output = await driver.send_command(command)
        now = parse_autofind(olt, output)
        for seen in autofind_changes(known, now):
            yield dataclasses.replace(seen, at=asked)
        known.clear()
        known.update(now)
        await asyncio.sleep(interval)


# The simulated OLT's operational state (a real vendor's goes in its profile, later).
OLT_STATE_NS = "urn:ponctl:yang:ponctl-olt-state"
_SWEEP_FILTER = f'<olt-state xmlns="{OLT_STATE_NS}"><onts/></olt-state>'
_SAFE = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                        huge_tree=False)


def parse_olt_state(olt: str, xml_text: str) -> list[OntSeen]:
    """Every ONT in a ``<get>`` of the OLT's state (notifications only report changes, so
    this is what a watch reads when it (re)connects)."""
    if "<!DOCTYPE" in xml_text:
        log.warning("%s: state reply with a DOCTYPE ignored", olt)
        return []
    try:
        root = etree.fromstring(f"<data>{xml_text}</data>".encode(), _SAFE)
    except etree.XMLSyntaxError as exc:
        log.warning("%s: unreadable state reply ignored: %s", olt, exc)
        return []
    out: list[OntSeen] = []
    ns = {"s": OLT_STATE_NS}
    for ont in root.iterfind(".//s:onts/s:ont", ns):
        def text(name: str, node: etree._Element = ont) -> str | None:
            return node.findtext(f"s:{name}", namespaces=ns)

        where = f"{olt} state"
        serial = _serial(text("serial"), where)
        port = _port(text("pon-port"), where)
        state = text("state")
        if serial is None or port is None or state not in STATES:
            continue
        out.append(OntSeen(olt, serial, port, state, model=_text(text("model"), "model", where),
                           firmware=_text(text("firmware"), "firmware", where),
                           vendor=_text(text("vendor"), "vendor", where),
                           onu_id=_onu_id(text("onu-id"), where), source="netconf-get"))
    return out


# PONCTL-MIB: ponctlPonPortName, the ONT table's serial, oper status, model and firmware,
# the autofind table's serial, model and firmware.
SNMP_PORT_NAME = "1.3.6.1.4.1.32473.1.1.1.1.2"
SNMP_ONT_COLUMNS = {"serial": "1.3.6.1.4.1.32473.1.1.2.1.2",
                    "oper": "1.3.6.1.4.1.32473.1.1.2.1.5",
                    "model": "1.3.6.1.4.1.32473.1.1.2.1.8",
                    "firmware": "1.3.6.1.4.1.32473.1.1.2.1.9"}
SNMP_AUTOFIND_COLUMNS = {"serial": "1.3.6.1.4.1.32473.1.1.4.1.2",
                         "model": "1.3.6.1.4.1.32473.1.1.4.1.3",
                         "firmware": "1.3.6.1.4.1.32473.1.1.4.1.4"}


def _rows(varbinds: list[Varbind], columns: Mapping[str, str]) -> dict[str, dict[str, Varbind]]:
    """``{row index: {column name: varbind}}`` of the varbinds under ``columns``."""
    out: dict[str, dict[str, Varbind]] = {}
    for vb in varbinds:
        for name, col in columns.items():
            if vb.oid.startswith(col + ".") and not vb.missing:
                out.setdefault(vb.oid[len(col) + 1:], {})[name] = vb
    return out


def parse_snmp_tables(olt: str, varbinds: list[Varbind]) -> list[OntSeen]:
    """Every ONT in a walk of the PONCTL-MIB tables (:data:`SNMP_PORT_NAME`, the ONT and the
    autofind columns): configured ONTs with their oper status and onu-id, ONTs waiting in
    autofind as ``unclaimed`` (traps only report changes, so this is what a watch reads when
    it starts)."""
    where = f"{olt} ONT table"
    ports = {idx: row["name"].text
             for idx, row in _rows(varbinds, {"name": SNMP_PORT_NAME}).items()}
    found: dict[str, OntSeen] = {}
    for idx, row in _rows(varbinds, SNMP_ONT_COLUMNS).items():
        pidx, _, onu = idx.partition(".")
        serial = _serial(row["serial"].text if "serial" in row else None, where)
        port = _port(ports.get(pidx), where)
        oper = row.get("oper")
        state = SNMP_OPER_STATUS.get(oper.value) if oper is not None and isinstance(
            oper.value, int) else None
        if serial is None or port is None or state is None:
            continue
        found[serial] = OntSeen(olt, serial, port, state, vendor=serial[:4],
                                model=_text(row["model"].text if "model" in row else None,
                                            "model", where),
                                firmware=_text(row["firmware"].text if "firmware" in row
                                               else None, "firmware", where),
                                onu_id=_onu_id(onu, where), source="snmp-walk")
    for idx, row in _rows(varbinds, SNMP_AUTOFIND_COLUMNS).items():
        pidx = idx.partition(".")[0]
        serial = _serial(row["serial"].text if "serial" in row else None, where)
        port = _port(ports.get(pidx), where)
        if serial is None or port is None or serial in found:
            continue
        found[serial] = OntSeen(olt, serial, port, UNCLAIMED, vendor=serial[:4],
                                model=_text(row["model"].text if "model" in row else None,
                                            "model", where),
                                firmware=_text(row["firmware"].text if "firmware" in row
                                               else None, "firmware", where),
                                source="snmp-walk")
    return list(found.values())


async def _sweep(olt: str, driver: Driver[Any]) -> list[OntSeen]:
    if isinstance(driver, SnmpDriver):
        columns = [SNMP_PORT_NAME, *SNMP_ONT_COLUMNS.values(), *SNMP_AUTOFIND_COLUMNS.values()]
        rows = (await driver.get_state(columns)).data
        return parse_snmp_tables(olt, rows)
    if not isinstance(driver, NetconfDriver):
        return []  # CLI: the first autofind poll reports everything
    snap = await driver.get_state(_SWEEP_FILTER)
    return parse_olt_state(olt, snap.data)


async def _notifications(olt: str, driver: Driver[Any]) -> AsyncIterator[OntSeen]:
    async for event in driver.events():
        seen = parse_event(olt, event)
        if seen is not None:
            yield dataclasses.replace(seen, at=datetime.now(UTC))


async def watch(olt_name: str, driver: Driver[Any], on_seen: OnSeen, *,
                poll_command: str = AUTOFIND_COMMAND, interval: float = 5.0,
                backoff: Backoff = Backoff()) -> None:
    """Report every ONT the OLT sees to ``on_seen`` until cancelled.

    NETCONF and SNMP: the driver's event stream (notifications, traps). CLI: the autofind
    list polled every ``interval`` seconds (its first poll reports every ONT listed). The
    driver is connected here if it is not; a dropped session (any DriverError) is reconnected
    after a backoff delay; ``backoff.max_failures`` consecutive failures raise the last error.
    ``on_seen`` raising is logged and the watch goes on.
    """
    failures = 0
    known: dict[str, OntSeen] = {}
    while True:
        try:
            if not driver.connected:
                await driver.connect()
            failures = 0
            asked = datetime.now(UTC)
            for seen in await _sweep(olt_name, driver):
                try:
                    await on_seen(dataclasses.replace(seen, at=asked))
                except Exception:
                    log.exception("%s: on_seen failed for %s", olt_name, seen)
            if isinstance(driver, CliDriver):
                stream = _poll_autofind(olt_name, driver, poll_command, interval, known)
            else:
                stream = _notifications(olt_name, driver)
            try:
                async for seen in stream:
                    try:
                        await on_seen(seen)
                    except Exception:
                        log.exception("%s: on_seen failed for %s", olt_name, seen)
            finally:
                with contextlib.suppress(Exception):
                    await stream.aclose()  # type: ignore[attr-defined]
            raise SessionLostError("the event stream ended", host=driver.host)
        except DriverError as e:
            failures += 1
            if failures > backoff.max_failures:
                log.error("%s: giving up after %d failed attempts: %s", olt_name,  # noqa: TRY400
                          failures - 1, e)
                raise
            log.warning("%s: %s session lost (%s); reconnecting", olt_name, driver.protocol, e)
        with contextlib.suppress(DriverError):
            await driver.close()
        await asyncio.sleep(backoff.delay(failures))


# ---- recording ------------------------------------------------------------------------------
def record(store: Store) -> OnSeen:
    """An ``on_seen`` that writes each observation into ``store``.

    A report made before the ONT's last recorded change is stale and ignored. Present states
    upsert (created, or moved when seen on another port). An ONT reported
    absent (LOS, dying gasp, not present) on a port other than where it is now present is a
    stale report and changes nothing. A CLI departure marks the ONT absent only if it was still
    recorded there as not operational.
    """

    async def on_seen(seen: OntSeen) -> None:
        try:
            old = await store.get_ont(seen.serial)
            if old is not None and seen.at is not None and seen.at < old.state_since:
                # Asked before the ONT's last recorded change (a poll or sweep that raced a
                # push verified meanwhile, say): what it says is already out of date.
                log.debug("%s: stale report of ONT %s (%s, %s) ignored", seen.olt, seen.serial,
                          seen.state, seen.at.isoformat())
                return
            if seen.state == DEPARTED:
                # Only an ONT last known as waiting in autofind: one that left it because it
                # was configured is up (its notifications or next poll say so).
                waiting = old is not None and (old.state is OntState.DOWN or (
                    old.state is OntState.UP and old.condition.startswith(UNCLAIMED)))
                if old is not None and waiting \
                        and (old.olt, old.pon_port) == (seen.olt, seen.pon_port):
                    await store.set_ont_state(seen.serial, OntState.ABSENT, DEPARTED_CONDITION)
                return
            mapped = STORE_STATE.get(seen.state)
            if mapped is None:
                log.warning("%s: ignoring ONT %s in unknown state %r", seen.olt, seen.serial,
                            seen.state)
                return
            state, condition = mapped
            elsewhere = old is not None and (old.olt, old.pon_port) != (seen.olt, seen.pon_port)
            if state is OntState.ABSENT and elsewhere and old is not None \
                    and old.state in (OntState.UP, OntState.DOWN):
                log.info("%s: ONT %s reported %s on %s but present on %s %s; ignored",
                         seen.olt, seen.serial, seen.state, seen.pon_port, old.olt,
                         old.pon_port)
                return
            change = await store.upsert_ont(seen.serial, seen.olt, seen.pon_port,
                                            model=seen.model, firmware=seen.firmware,
                                            vendor=seen.vendor, state=state,
                                            condition=condition, onu_id=seen.onu_id)
            if change.change == "moved":
                log.info("ONT %s moved from %s %s to %s %s", seen.serial,
                         change.previous_olt, change.previous_pon_port, seen.olt,
                         seen.pon_port)
        except (InvalidValue, NotFound) as e:
            log.warning("%s: not recorded: %s", seen.olt, e)

    return on_seen
