"""Subscribers, lines of service and gateways: who gets analytics, and on which box.

A **subscriber** (unique code, full name) and a **line of service** (unique code for one
subscription; deliberately not a MAC address: the box can be swapped) are created in either
order, at different times, and linked when both exist. A line is **associated** with a
**gateway** (inventory: name, management address, gateway class from the settings, and the ONT
it sits behind); the first association issues the line's PHAN URL, which stays the line's for
good, so a swapped gateway (RMA) gets the same URL and analytics keep their history.

What each gateway should hold is durable state (``gateway_state``): the URL it should carry
(``''`` for a gateway that must be cleared), and how far the agent got writing it:

==========  =====================================================================================
pending     to be written; with ``error_class`` set, the last attempt could not reach it and the
            agent retries when the gateway's ONT comes up (or on the periodic sweep)
writing     recorded before the device is touched; a crash leaves it so, and a restart re-runs it
            (writing is idempotent: read, compare, write only the difference, read back)
written     read back equal (``verified_at``)
failed      the gateway refused, or read back something else; the message says what
==========  =====================================================================================

Every change of a line (created, linked, associated, moved, URL written, cleared) is appended to
its history (``line_events``), the record first-line support reads.

:class:`LineStore` works on the :class:`agent.store.Store`'s connection, in its transactions.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from agent.status import ErrorClass
from agent.store import (
    CONTROL,
    Conflict,
    InvalidValue,
    NotFound,
    Store,
    check_name,
    check_serial,
)

CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")  # also a valid PHAN token plaintext
CODE_RULE = "1-32 letters, digits, '_', '.', '-', starting with a letter or digit"
MAX_NAME = 128
MAX_QUERY = 64
MAX_MESSAGE = 2000
ADDRESS = re.compile(r"[A-Za-z0-9.:-]{1,253}")


class GatewayPhase(StrEnum):
    PENDING = "pending"
    WRITING = "writing"
    WRITTEN = "written"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Subscriber:
    code: str
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Line:
    code: str
    subscriber: str | None
    gateway: str | None
    phan_url: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Gateway:
    name: str
    gateway_class: str
    address: str
    port: int | None  # None: the gateway class's port
    ont_serial: str | None
    created_at: datetime
    retired_at: datetime | None


@dataclass(frozen=True, slots=True)
class GatewayState:
    """What a gateway should hold and how far the agent got (see the module docstring)."""

    gateway: str
    line: str | None
    desired_url: str
    phase: GatewayPhase
    error_class: ErrorClass | None
    message: str
    attempts: int
    updated_at: datetime
    verified_at: datetime | None

    @property
    def in_sync(self) -> bool:
        return self.phase is GatewayPhase.WRITTEN


@dataclass(frozen=True, slots=True)
class LineEvent:
    id: int
    line: str
    at: datetime
    message: str


def check_code(what: str, value: str) -> str:
    if not isinstance(value, str) or not CODE.fullmatch(value):
        raise InvalidValue(f"{what} is invalid: {CODE_RULE}")
    return value


def check_full_name(value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue("subscriber name must not be empty")
    if len(value) > MAX_NAME:
        raise InvalidValue(f"subscriber name is {len(value)} characters long (at most "
                           f"{MAX_NAME})")
    if CONTROL.search(value):
        raise InvalidValue("subscriber name contains a control character")
    return " ".join(value.split())


def check_address(value: str) -> str:
    if not isinstance(value, str) or not ADDRESS.fullmatch(value):
        raise InvalidValue("gateway address is invalid: an IP address or host name")
    return value


def _dt(s: str) -> datetime:
    return datetime.fromisoformat(s)


def _opt(s: str | None) -> datetime | None:
    return None if s is None else datetime.fromisoformat(s)


def _subscriber(r: sqlite3.Row) -> Subscriber:
    return Subscriber(r["code"], r["name"], _dt(r["created_at"]))


def _line(r: sqlite3.Row) -> Line:
    return Line(r["code"], r["subscriber"], r["gateway"], r["phan_url"], _dt(r["created_at"]))


def _gateway(r: sqlite3.Row) -> Gateway:
    return Gateway(r["name"], r["class"], r["address"], r["port"], r["ont_serial"],
                   _dt(r["created_at"]), _opt(r["retired_at"]))


def _state(r: sqlite3.Row) -> GatewayState:
    ec = r["error_class"]
    return GatewayState(r["gateway"], r["line"], r["desired_url"], GatewayPhase(r["phase"]),
                        None if ec is None else ErrorClass(ec), r["message"], r["attempts"],
                        _dt(r["updated_at"]), _opt(r["verified_at"]))


def _like(query: str) -> str:
    """A LIKE pattern for a substring search, with LIKE's own wildcards taken literally."""
    return "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _check_query(query: str | None) -> str | None:
    if query is None:
        return None
    if len(query) > MAX_QUERY or CONTROL.search(query):
        raise InvalidValue(f"search text must be at most {MAX_QUERY} characters without control "
                           f"characters")
    return query.strip() or None


class LineStore:
    """Subscribers, lines and gateways in the agent's store (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # ---- helpers (worker thread) -------------------------------------------------------------
    @staticmethod
    def _one_subscriber(c: sqlite3.Connection, code: str) -> Subscriber | None:
        r = c.execute("SELECT * FROM subscribers WHERE code = ?", (code,)).fetchone()
        return None if r is None else _subscriber(r)

    @staticmethod
    def _one_line(c: sqlite3.Connection, code: str) -> Line | None:
        r = c.execute("SELECT * FROM lines WHERE code = ?", (code,)).fetchone()
        return None if r is None else _line(r)

    @staticmethod
    def _one_gateway(c: sqlite3.Connection, name: str) -> Gateway | None:
        r = c.execute("SELECT * FROM gateways WHERE name = ?", (name,)).fetchone()
        return None if r is None else _gateway(r)

    @staticmethod
    def _one_state(c: sqlite3.Connection, name: str) -> GatewayState | None:
        r = c.execute("SELECT * FROM gateway_state WHERE gateway = ?", (name,)).fetchone()
        return None if r is None else _state(r)

    def _line_or_raise(self, c: sqlite3.Connection, code: str) -> Line:
        line = self._one_line(c, code)
        if line is None:
            raise NotFound(f"line of service {code} does not exist")
        return line

    def _gateway_or_raise(self, c: sqlite3.Connection, name: str) -> Gateway:
        gw = self._one_gateway(c, name)
        if gw is None:
            raise NotFound(f"gateway {name} does not exist")
        return gw

    def _event(self, c: sqlite3.Connection, line: str, message: str) -> None:
        c.execute("INSERT INTO line_events (line, at, message) VALUES (?, ?, ?)",
                  (line, self.store.now(), message[:MAX_MESSAGE]))

    def _want(self, c: sqlite3.Connection, gateway: str, line: str | None, url: str) -> None:
        """Record what ``gateway`` should hold; a change makes it pending again."""
        old = self._one_state(c, gateway)
        if old is not None and (old.line, old.desired_url) == (line, url):
            return
        c.execute("INSERT INTO gateway_state (gateway, line, desired_url, phase, message,"
                  " attempts, updated_at) VALUES (?, ?, ?, 'pending', ?, 0, ?)"
                  " ON CONFLICT (gateway) DO UPDATE SET line = excluded.line,"
                  " desired_url = excluded.desired_url, phase = 'pending', error_class = NULL,"
                  " message = excluded.message, attempts = 0, updated_at = excluded.updated_at",
                  (gateway, line, url, "to be written" if url else "to be cleared",
                   self.store.now()))

    # ---- subscribers -----------------------------------------------------------------------
    async def create_subscriber(self, code: str, name: str) -> tuple[Subscriber, bool]:
        """Create a subscriber; ``(subscriber, created)``. The same code with the same name is
        the existing one (a retried request); with another name it is a conflict."""
        check_code("subscriber code", code)
        name = check_full_name(name)

        def run(c: sqlite3.Connection) -> tuple[Subscriber, bool]:
            old = self._one_subscriber(c, code)
            if old is not None:
                if old.name != name:
                    raise Conflict(f"subscriber {code} exists with another name")
                return old, False
            c.execute("INSERT INTO subscribers (code, name, created_at) VALUES (?, ?, ?)",
                      (code, name, self.store.now()))
            new = self._one_subscriber(c, code)
            assert new is not None
            return new, True

        return await self.store.write(run)

    async def get_subscriber(self, code: str) -> Subscriber | None:
        return await self.store.read(lambda c: self._one_subscriber(c, code))

    async def search_subscribers(self, query: str | None = None,
                                 limit: int = 1000) -> tuple[Subscriber, ...]:
        """Subscribers whose code or name contains ``query`` (case-insensitive), by code."""
        q = _check_query(query)

        def run(c: sqlite3.Connection) -> tuple[Subscriber, ...]:
            if q is None:
                rows = c.execute("SELECT * FROM subscribers ORDER BY code LIMIT ?", (limit,))
            else:
                rows = c.execute("SELECT * FROM subscribers WHERE code LIKE ?1 ESCAPE '\\'"
                                 " OR name LIKE ?1 ESCAPE '\\' ORDER BY code LIMIT ?2",
                                 (_like(q), limit))
            return tuple(_subscriber(r) for r in rows)

        return await self.store.read(run)

    # ---- lines -----------------------------------------------------------------------------
    async def create_line(self, code: str, subscriber: str | None = None) -> tuple[Line, bool]:
        """Create a line of service, optionally linked to an existing subscriber;
        ``(line, created)``. Repeating it is idempotent; another subscriber is a conflict."""
        check_code("line of service code", code)
        if subscriber is not None:
            check_code("subscriber code", subscriber)

        def run(c: sqlite3.Connection) -> tuple[Line, bool]:
            if subscriber is not None and self._one_subscriber(c, subscriber) is None:
                raise NotFound(f"subscriber {subscriber} does not exist")
            old = self._one_line(c, code)
            if old is not None:
                if subscriber is not None and old.subscriber not in (None, subscriber):
                    raise Conflict(f"line of service {code} belongs to subscriber "
                                   f"{old.subscriber}")
                if subscriber is not None and old.subscriber is None:
                    c.execute("UPDATE lines SET subscriber = ? WHERE code = ?", (subscriber, code))
                    self._event(c, code, f"linked to subscriber {subscriber}")
                return self._line_or_raise(c, code), False
            c.execute("INSERT INTO lines (code, subscriber, created_at) VALUES (?, ?, ?)",
                      (code, subscriber, self.store.now()))
            self._event(c, code, "created" + (f" for subscriber {subscriber}" if subscriber
                                              else ""))
            return self._line_or_raise(c, code), True

        return await self.store.write(run)

    async def link_subscriber(self, code: str, subscriber: str) -> Line:
        """Give a line of service to a subscriber (both exist; a line belongs to one)."""
        check_code("line of service code", code)
        check_code("subscriber code", subscriber)

        def run(c: sqlite3.Connection) -> Line:
            line = self._line_or_raise(c, code)
            if self._one_subscriber(c, subscriber) is None:
                raise NotFound(f"subscriber {subscriber} does not exist")
            if line.subscriber == subscriber:
                return line
            if line.subscriber is not None:
                raise Conflict(f"line of service {code} belongs to subscriber {line.subscriber}")
            c.execute("UPDATE lines SET subscriber = ? WHERE code = ?", (subscriber, code))
            self._event(c, code, f"linked to subscriber {subscriber}")
            return self._line_or_raise(c, code)

        return await self.store.write(run)

    async def get_line(self, code: str) -> Line | None:
        return await self.store.read(lambda c: self._one_line(c, code))

    async def search_lines(self, query: str | None = None, *, subscriber: str | None = None,
                           limit: int = 1000) -> tuple[Line, ...]:
        """Lines whose code, subscriber code or subscriber name contains ``query``."""
        q = _check_query(query)

        def run(c: sqlite3.Connection) -> tuple[Line, ...]:
            sql = ("SELECT l.* FROM lines l LEFT JOIN subscribers s ON s.code = l.subscriber"
                   " WHERE 1 = 1")
            args: list[object] = []
            if q is not None:
                sql += (" AND (l.code LIKE ? ESCAPE '\\' OR l.subscriber LIKE ? ESCAPE '\\'"
                        " OR s.name LIKE ? ESCAPE '\\')")
                args += [_like(q)] * 3
            if subscriber is not None:
                sql += " AND l.subscriber = ?"
                args.append(subscriber)
            sql += " ORDER BY l.code LIMIT ?"
            args.append(limit)
            return tuple(_line(r) for r in c.execute(sql, args))

        return await self.store.read(run)

    async def line_events(self, code: str) -> tuple[LineEvent, ...]:
        def run(c: sqlite3.Connection) -> tuple[LineEvent, ...]:
            return tuple(LineEvent(r["id"], r["line"], _dt(r["at"]), r["message"]) for r in
                         c.execute("SELECT * FROM line_events WHERE line = ? ORDER BY id",
                                   (code,)))

        return await self.store.read(run)

    # ---- gateways --------------------------------------------------------------------------
    async def create_gateway(self, name: str, gateway_class: str, address: str,
                             ont_serial: str | None = None, *,
                             port: int | None = None) -> tuple[Gateway, bool]:
        """Register a gateway; ``(gateway, created)``. The same registration again is
        idempotent; a different one for an existing name is a conflict."""
        check_name("gateway name", name)
        check_name("gateway class", gateway_class)
        check_address(address)
        if ont_serial is not None:
            check_serial(ont_serial)
        if port is not None and not (isinstance(port, int) and 1 <= port <= 65535):
            raise InvalidValue("gateway port must be 1..65535")

        def run(c: sqlite3.Connection) -> tuple[Gateway, bool]:
            old = self._one_gateway(c, name)
            if old is not None:
                if (old.gateway_class, old.address, old.port, old.ont_serial) != (
                        gateway_class, address, port, ont_serial):
                    raise Conflict(f"gateway {name} exists with another class, address, port "
                                   f"or ONT")
                return old, False
            c.execute("INSERT INTO gateways (name, class, address, port, ont_serial, created_at)"
                      " VALUES (?, ?, ?, ?, ?, ?)",
                      (name, gateway_class, address, port, ont_serial, self.store.now()))
            new = self._one_gateway(c, name)
            assert new is not None
            return new, True

        return await self.store.write(run)

    async def get_gateway(self, name: str) -> Gateway | None:
        return await self.store.read(lambda c: self._one_gateway(c, name))

    async def list_gateways(self, *, ont_serial: str | None = None) -> tuple[Gateway, ...]:
        def run(c: sqlite3.Connection) -> tuple[Gateway, ...]:
            if ont_serial is None:
                rows = c.execute("SELECT * FROM gateways ORDER BY name")
            else:
                rows = c.execute("SELECT * FROM gateways WHERE ont_serial = ? ORDER BY name",
                                 (ont_serial,))
            return tuple(_gateway(r) for r in rows)

        return await self.store.read(run)

    async def line_of_gateway(self, name: str) -> Line | None:
        def run(c: sqlite3.Connection) -> Line | None:
            r = c.execute("SELECT * FROM lines WHERE gateway = ?", (name,)).fetchone()
            return None if r is None else _line(r)

        return await self.store.read(run)

    async def gateway_state(self, name: str) -> GatewayState | None:
        return await self.store.read(lambda c: self._one_state(c, name))

    async def states(self, phases: Sequence[GatewayPhase] | None = None,
                     ) -> tuple[GatewayState, ...]:
        def run(c: sqlite3.Connection) -> tuple[GatewayState, ...]:
            if phases is None:
                rows = c.execute("SELECT * FROM gateway_state ORDER BY gateway")
            else:
                marks = ", ".join("?" for _ in phases)
                rows = c.execute(f"SELECT * FROM gateway_state WHERE phase IN ({marks})"  # noqa: S608
                                 " ORDER BY gateway", [p.value for p in phases])
            return tuple(_state(r) for r in rows)

        return await self.store.read(run)

    # ---- association, RMA --------------------------------------------------------------------
    async def associate(self, code: str, gateway: str, issue_url: Callable[[str], str], *,
                        move: bool = False) -> Line:
        """Associate a line of service with a gateway; the gateway is to be written.

        The first association issues the line's PHAN URL (``issue_url(code)``). A gateway
        carries one line; a line moves to another gateway only with ``move`` (the old gateway
        is to be cleared). Repeating an association changes nothing.
        """
        check_code("line of service code", code)
        check_name("gateway name", gateway)

        def run(c: sqlite3.Connection) -> Line:
            line = self._line_or_raise(c, code)
            gw = self._gateway_or_raise(c, gateway)
            if gw.retired_at is not None:
                raise Conflict(f"gateway {gateway} was replaced (RMA) and is retired")
            r = c.execute("SELECT code FROM lines WHERE gateway = ?", (gateway,)).fetchone()
            if r is not None and r["code"] != code:
                raise Conflict(f"gateway {gateway} carries line of service {r['code']}")
            if line.gateway == gateway:
                return line
            if line.gateway is not None and not move:
                raise Conflict(f"line of service {code} is on gateway {line.gateway}: move it "
                               f"(RMA replace) to put it on {gateway}")
            url = line.phan_url or issue_url(code)
            c.execute("UPDATE lines SET gateway = ?, phan_url = ? WHERE code = ?",
                      (gateway, url, code))
            self._want(c, gateway, code, url)
            if line.gateway is not None:
                self._want(c, line.gateway, code, "")
                self._event(c, code, f"moved from gateway {line.gateway} to {gateway}; the "
                                     f"PHAN URL moves with it and {line.gateway} is to be "
                                     f"cleared")
            else:
                self._event(c, code, f"associated with gateway {gateway}" +
                            ("; PHAN URL issued" if line.phan_url is None else ""))
            return self._line_or_raise(c, code)

        return await self.store.write(run)

    async def replace_gateway(self, old: str, new: str,
                              issue_url: Callable[[str], str]) -> Line:
        """RMA: the line of service on ``old`` moves (with its URL) to ``new``; ``old`` is
        retired and to be cleared (cleared when it can be reached)."""
        check_name("gateway name", old)
        check_name("gateway name", new)
        if old == new:
            raise InvalidValue("a gateway cannot replace itself")

        def run(c: sqlite3.Connection) -> Line:
            self._gateway_or_raise(c, old)
            r = c.execute("SELECT code FROM lines WHERE gateway = ?", (old,)).fetchone()
            if r is None:
                line_now = c.execute(
                    "SELECT code FROM lines WHERE gateway = ?", (new,)).fetchone()
                gw_old = self._one_gateway(c, old)
                if line_now is not None and gw_old is not None and gw_old.retired_at is not None:
                    return self._line_or_raise(c, line_now["code"])  # done before: idempotent
                raise Conflict(f"gateway {old} carries no line of service")
            return self._move(c, r["code"], old, new, issue_url)

        return await self.store.write(run)

    def _move(self, c: sqlite3.Connection, code: str, old: str, new: str,
              issue_url: Callable[[str], str]) -> Line:
        gw = self._gateway_or_raise(c, new)
        if gw.retired_at is not None:
            raise Conflict(f"gateway {new} was replaced (RMA) and is retired")
        other = c.execute("SELECT code FROM lines WHERE gateway = ?", (new,)).fetchone()
        if other is not None:
            raise Conflict(f"gateway {new} carries line of service {other['code']}")
        line = self._line_or_raise(c, code)
        url = line.phan_url or issue_url(code)
        c.execute("UPDATE lines SET gateway = ?, phan_url = ? WHERE code = ?", (new, url, code))
        c.execute("UPDATE gateways SET retired_at = ? WHERE name = ?", (self.store.now(), old))
        self._want(c, new, code, url)
        self._want(c, old, code, "")
        self._event(c, code, f"gateway {old} replaced by {new} (RMA): the line and its PHAN "
                             f"URL move to {new}; {old} is retired and to be cleared")
        return self._line_or_raise(c, code)

    async def dissociate(self, code: str) -> Line:
        """Take the line of service off its gateway (which is to be cleared); the line keeps
        its URL for its next gateway."""
        check_code("line of service code", code)

        def run(c: sqlite3.Connection) -> Line:
            line = self._line_or_raise(c, code)
            if line.gateway is None:
                return line
            c.execute("UPDATE lines SET gateway = NULL WHERE code = ?", (code,))
            self._want(c, line.gateway, code, "")
            self._event(c, code, f"taken off gateway {line.gateway}, which is to be cleared")
            return self._line_or_raise(c, code)

        return await self.store.write(run)

    # ---- the writer's bookkeeping -----------------------------------------------------------
    async def begin_write(self, gateway: str) -> GatewayState | None:
        """Mark the gateway ``writing`` (before the device is touched); its state, or None if
        nothing is to be done (no state, or written already)."""

        def run(c: sqlite3.Connection) -> GatewayState | None:
            st = self._one_state(c, gateway)
            if st is None or st.phase is GatewayPhase.WRITTEN:
                return None
            c.execute("UPDATE gateway_state SET phase = 'writing', attempts = attempts + 1,"
                      " updated_at = ? WHERE gateway = ?", (self.store.now(), gateway))
            return self._one_state(c, gateway)

        return await self.store.write(run)

    async def mark_stale(self, gateway: str, reason: str) -> GatewayState:
        """The device no longer holds what was written (audit, factory reset): pending."""

        def run(c: sqlite3.Connection) -> GatewayState:
            c.execute("UPDATE gateway_state SET phase = 'pending', error_class = ?,"
                      " message = ?, updated_at = ? WHERE gateway = ?",
                      (ErrorClass.MISMATCH.value, reason[:MAX_MESSAGE], self.store.now(),
                       gateway))
            st = self._one_state(c, gateway)
            if st is None:
                raise NotFound(f"gateway {gateway} has nothing to hold")
            return st

        return await self.store.write(run)

    async def finish_write(self, gateway: str, url: str, phase: GatewayPhase, *,
                           error_class: ErrorClass | None = None,
                           message: str = "") -> GatewayState:
        """Record the result of writing ``url``. If the gateway should now hold something
        else (a new association meanwhile), it stays pending for the next run."""

        def run(c: sqlite3.Connection) -> GatewayState:
            st = self._one_state(c, gateway)
            if st is None:
                raise NotFound(f"gateway {gateway} has nothing to hold")
            now = self.store.now()
            if st.desired_url != url:
                c.execute("UPDATE gateway_state SET phase = 'pending', updated_at = ?"
                          " WHERE gateway = ?", (now, gateway))
            else:
                c.execute("UPDATE gateway_state SET phase = ?, error_class = ?, message = ?,"
                          " updated_at = ?, verified_at = CASE WHEN ? = 'written' THEN ?"
                          " ELSE verified_at END WHERE gateway = ?",
                          (phase.value, None if error_class is None else error_class.value,
                           message[:MAX_MESSAGE], now, phase.value, now, gateway))
                if st.line is not None and phase in (GatewayPhase.WRITTEN, GatewayPhase.FAILED):
                    what = "PHAN URL written to" if url else "PHAN URL cleared on"
                    if phase is GatewayPhase.WRITTEN:
                        self._event(c, st.line, f"{what} gateway {gateway}, read back")
                    else:
                        self._event(c, st.line, f"{what} gateway {gateway} failed: {message}")
            new = self._one_state(c, gateway)
            assert new is not None
            return new

        return await self.store.write(run)

    async def hold_for_ont(self, gateway: str, unclaimed: str) -> GatewayState | None:
        """Keep ``gateway`` pending, without touching the device, while the ONT it sits behind
        cannot be carrying its traffic: not seen on any OLT yet, ``absent`` (unplugged, fibre
        cut, powered off), or up but unclaimed (condition ``unclaimed``: no configuration on
        its OLT yet). Each of these ends with discovery reporting the ONT up, and the engine
        then kicks the gateway. Returns the state held (``pending``, connection error, the
        reason), or None when the write should go ahead (no ONT recorded for the gateway; an
        imported, ranging or serving ONT; nothing to write). Writes only when the state
        changes."""

        def run(c: sqlite3.Connection) -> GatewayState | None:
            st = self._one_state(c, gateway)
            if st is None or st.phase is GatewayPhase.WRITTEN:
                return None
            r = c.execute("SELECT g.ont_serial, o.state, o.condition FROM gateways g"
                          " LEFT JOIN onts o ON o.serial = g.ont_serial WHERE g.name = ?"
                          " AND g.ont_serial IS NOT NULL", (gateway,)).fetchone()
            if r is None:
                return None  # not registered, or registered behind no ONT
            serial = r["ont_serial"]
            if r["state"] is None:
                why = f"its ONT {serial} has not been seen on any OLT yet"
            elif r["state"] == "absent":
                why = f"its ONT {serial} is {r['state']}" + (
                    f" ({r['condition']})" if r["condition"] else "")
            elif r["state"] == "up" and r["condition"] == unclaimed:
                why = f"its ONT {serial} is not configured on its OLT yet"
            else:
                return None
            message = (f"gateway {gateway} cannot be reached: {why}; written when the ONT "
                       f"comes up with its service")
            if (st.phase, st.error_class, st.message) != (
                    GatewayPhase.PENDING, ErrorClass.CONNECTION_ERROR, message):
                c.execute("UPDATE gateway_state SET phase = 'pending', error_class = ?,"
                          " message = ?, updated_at = ? WHERE gateway = ?",
                          (ErrorClass.CONNECTION_ERROR.value, message[:MAX_MESSAGE],
                           self.store.now(), gateway))
                st = self._one_state(c, gateway)
            return st

        return await self.store.write(run)

    async def gateways_behind(self, serial: str) -> tuple[str, ...]:
        """Gateways behind ONT ``serial`` that have something to be written (their count of
        attempts starts again: the ONT coming up is news)."""

        def run(c: sqlite3.Connection) -> tuple[str, ...]:
            # "+phase": look the ONT's gateways up by name; the phase index would walk every
            # pending gateway (all of them in a mass activation) on each ONT report.
            c.execute("UPDATE gateway_state SET attempts = 0 WHERE gateway IN"
                      " (SELECT name FROM gateways WHERE ont_serial = ?) AND +phase = 'pending'",
                      (serial,))
            return tuple(r[0] for r in c.execute(
                "SELECT g.name FROM gateways g JOIN gateway_state s ON s.gateway = g.name"
                " WHERE g.ont_serial = ? AND s.phase != 'written' ORDER BY g.name", (serial,)))

        return await self.store.write(run)
