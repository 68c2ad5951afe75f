"""The agent's durable state: inventory, objects, bindings, orders, pushes and allocations.

SQLite (standard library) behind an async API. Every call runs on *one* dedicated worker thread
owned by the :class:`Store` (a single-thread executor), so the event loop never blocks and the
connection is only ever used from the thread that created it. The database is opened in WAL mode
with ``synchronous=FULL`` and foreign keys on; every write is one ``BEGIN IMMEDIATE`` transaction
(or one savepoint of one, when writes queue up: group commit, :meth:`Store._write`), so a write is
either entirely on disk or not at all, whatever happens to the process (``kill -9`` included).
Several processes may share one file: writers queue on SQLite's lock (busy timeout).

The schema is a list of versioned migrations (:data:`MIGRATIONS`) applied on open; the applied
version is ``PRAGMA user_version``, so re-opening a current database changes nothing.

Durable first (DESIGN.md): a push is recorded *before* the device side effect
(:meth:`Store.begin_push`, phase ``intent-recorded``) and *after* it (:meth:`Store.advance_push`,
:meth:`Store.finish_push`); :meth:`Store.pending_pushes` lists the pushes a crash left unfinished,
for the agent to resume. Pushes are idempotent and verified by reading back, so re-running one is
safe.

Results are frozen dataclasses; :meth:`Ont.facts`, :meth:`Push.outcome` and
:meth:`Store.order_facts` turn them into the inputs of :func:`agent.status.compute_status`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar

from agent.catalog import Catalog
from agent.intent import NAME, PON_PORT, SERIAL
from agent.lines_schema import LINES_SCHEMA
from agent.status import (
    ErrorClass,
    NoPush,
    OntFacts,
    OrderFacts,
    PushFailed,
    PushInProgress,
    PushOutcome,
    PushVerified,
)

T = TypeVar("T")

OBJECT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_ADDRESS = 256
MAX_TEXT = 64  # model, firmware, vendor, condition
BUSY_TIMEOUT_MS = 10_000
READS_PER_YIELD = 32  # reads in a row before one yields to the event loop

ONU_IDS = range(0, 128)  # per OLT PON port (G.984/G.9807: 0..127 usable here)
GEMPORTS = range(1024, 4096)  # per OLT
ALLOC_IDS = range(1024, 16384)  # per OLT

MIGRATIONS: tuple[str, ...] = (
    # 1: the initial schema.
    """
    CREATE TABLE onts (
        serial      TEXT PRIMARY KEY,
        olt         TEXT NOT NULL,
        pon_port    TEXT NOT NULL,
        model       TEXT NOT NULL DEFAULT '',
        firmware    TEXT NOT NULL DEFAULT '',
        vendor      TEXT NOT NULL DEFAULT '',
        state       TEXT NOT NULL CHECK (state IN ('imported', 'up', 'down', 'absent')),
        condition   TEXT NOT NULL DEFAULT '',
        state_since TEXT NOT NULL,
        onu_id      INTEGER,
        first_seen  TEXT,
        last_seen   TEXT
    );
    CREATE INDEX onts_location ON onts (olt, pon_port);

    CREATE TABLE objects (
        id         TEXT PRIMARY KEY,
        address    TEXT NOT NULL,
        created_at TEXT NOT NULL
    );

    CREATE TABLE bindings (
        object_id TEXT PRIMARY KEY REFERENCES objects (id),
        serial    TEXT NOT NULL UNIQUE,
        bound_at  TEXT NOT NULL
    );

    CREATE TABLE binding_history (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        object_id    TEXT NOT NULL REFERENCES objects (id),
        serial       TEXT NOT NULL,
        action       TEXT NOT NULL CHECK (action IN ('bound', 'unbound', 'moved-in',
                                                     'moved-out', 'replaced')),
        other_object TEXT,
        at           TEXT NOT NULL
    );
    CREATE INDEX binding_history_serial ON binding_history (serial);

    CREATE TABLE orders (
        id                   TEXT PRIMARY KEY,
        external_ref         TEXT UNIQUE,
        object_id            TEXT NOT NULL,
        isp                  TEXT NOT NULL,
        service_type         TEXT NOT NULL,
        start_at             TEXT NOT NULL,
        created_at           TEXT NOT NULL,
        cancelled_at         TEXT,
        removal_requested_at TEXT,
        removed_at           TEXT
    );
    CREATE INDEX orders_object ON orders (object_id);

    CREATE TABLE order_events (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        order_id    TEXT NOT NULL REFERENCES orders (id),
        at          TEXT NOT NULL,
        status      TEXT NOT NULL,
        error_class TEXT,
        message     TEXT NOT NULL
    );
    CREATE INDEX order_events_order ON order_events (order_id, id);
    CREATE TRIGGER order_events_no_update BEFORE UPDATE ON order_events
    BEGIN SELECT RAISE(ABORT, 'order_events is append-only'); END;
    CREATE TRIGGER order_events_no_delete BEFORE DELETE ON order_events
    BEGIN SELECT RAISE(ABORT, 'order_events is append-only'); END;

    CREATE TABLE pushes (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        order_id       TEXT REFERENCES orders (id),
        device         TEXT NOT NULL,
        action         TEXT NOT NULL CHECK (action IN ('apply', 'remove')),
        phase          TEXT NOT NULL CHECK (phase IN ('intent-recorded', 'sent', 'committed',
                                                      'verified', 'failed', 'rolled-back')),
        payload_digest TEXT NOT NULL,
        error_class    TEXT,
        message        TEXT NOT NULL DEFAULT '',
        started_at     TEXT NOT NULL,
        finished_at    TEXT
    );
    CREATE INDEX pushes_order ON pushes (order_id, id);
    CREATE INDEX pushes_phase ON pushes (phase);

    CREATE TABLE allocations (
        serial       TEXT PRIMARY KEY,
        olt          TEXT NOT NULL,
        pon_port     TEXT NOT NULL,
        onu_id       INTEGER NOT NULL,
        gemport      INTEGER NOT NULL,
        alloc_id     INTEGER NOT NULL,
        allocated_at TEXT NOT NULL,
        UNIQUE (olt, pon_port, onu_id),
        UNIQUE (olt, gemport),
        UNIQUE (olt, alloc_id)
    );
    """,
    # 2: per-service allocation. The ONT keeps its onu-id (``allocations``, unique per OLT
    # port); each order (service) gets its own GEM port and alloc-id (``service_allocations``,
    # unique per OLT). An ONT's old GEM port and alloc-id go to the earliest open order
    # (neither cancelled nor removed) of the object it is bound to: that is the service the
    # old numbers were pushed for. SQLite cannot drop UNIQUE columns: the table is recreated.
    # Also order_changes: an order changed after it was pushed, and the successor replacing it.
    """
    CREATE TABLE service_allocations (
        order_id     TEXT PRIMARY KEY REFERENCES orders (id),
        olt          TEXT NOT NULL,
        gemport      INTEGER NOT NULL,
        alloc_id     INTEGER NOT NULL,
        allocated_at TEXT NOT NULL,
        UNIQUE (olt, gemport),
        UNIQUE (olt, alloc_id)
    );
    INSERT INTO service_allocations (order_id, olt, gemport, alloc_id, allocated_at)
    SELECT order_id, olt, gemport, alloc_id, allocated_at FROM (
        SELECT (SELECT o.id FROM orders o JOIN bindings b ON b.object_id = o.object_id
                WHERE b.serial = a.serial AND o.cancelled_at IS NULL AND o.removed_at IS NULL
                ORDER BY o.created_at, o.id LIMIT 1) AS order_id,
               a.olt, a.gemport, a.alloc_id, a.allocated_at
        FROM allocations a)
    WHERE order_id IS NOT NULL;

    CREATE TABLE allocations_v2 (
        serial       TEXT PRIMARY KEY,
        olt          TEXT NOT NULL,
        pon_port     TEXT NOT NULL,
        onu_id       INTEGER NOT NULL,
        allocated_at TEXT NOT NULL,
        UNIQUE (olt, pon_port, onu_id)
    );
    INSERT INTO allocations_v2 (serial, olt, pon_port, onu_id, allocated_at)
    SELECT serial, olt, pon_port, onu_id, allocated_at FROM allocations;
    DROP TABLE allocations;
    ALTER TABLE allocations_v2 RENAME TO allocations;

    -- Order changes: an order changed after it was pushed is replaced by a successor.
    CREATE TABLE order_changes (
        order_id     TEXT PRIMARY KEY REFERENCES orders (id),
        successor_id TEXT NOT NULL UNIQUE REFERENCES orders (id),
        changed_at   TEXT NOT NULL
    );
    """,
    # 3: subscribers, lines of service and gateways (PHAN URLs): agent/lines.py.
    LINES_SCHEMA,
)


# --- errors -------------------------------------------------------------------------------------


class StoreError(Exception):
    """Root of the store's errors."""


class InvalidValue(StoreError, ValueError):
    """An identifier or field that fails validation at the edge."""


class NotFound(StoreError, LookupError):
    """The named row does not exist."""


class Conflict(StoreError):
    """The request contradicts what is stored (binding elsewhere, idempotency key reused, ...)."""


class AllocationExhausted(StoreError):
    """No free onu-id on the port, or no free GEM port / alloc-id on the OLT."""


class InvalidTransition(StoreError):
    """An order or push cannot go from its current state to the requested one."""


# --- records ------------------------------------------------------------------------------------


class OntState(StrEnum):
    IMPORTED = "imported"  # pre-imported from a file, never seen by an OLT
    UP = "up"  # present and operational
    DOWN = "down"  # present (ranged) but not operational
    ABSENT = "absent"  # not seen by the OLT (LOS, power off, ...)


class PushPhase(StrEnum):
    INTENT_RECORDED = "intent-recorded"
    SENT = "sent"
    COMMITTED = "committed"
    VERIFIED = "verified"
    FAILED = "failed"
    ROLLED_BACK = "rolled-back"


class PushAction(StrEnum):
    APPLY = "apply"
    REMOVE = "remove"


PENDING_PHASES = (PushPhase.INTENT_RECORDED, PushPhase.SENT, PushPhase.COMMITTED)
TERMINAL_PHASES = (PushPhase.VERIFIED, PushPhase.FAILED, PushPhase.ROLLED_BACK)

Change = Literal["created", "moved", "updated", "unchanged"]


@dataclass(frozen=True, slots=True)
class Ont:
    serial: str
    olt: str
    pon_port: str
    model: str
    firmware: str
    vendor: str
    state: OntState
    condition: str
    state_since: datetime
    onu_id: int | None
    first_seen: datetime | None
    last_seen: datetime | None

    def facts(self) -> OntFacts:
        """The inventory's record as :class:`agent.status.OntFacts`."""
        condition = self.condition
        if self.state is OntState.IMPORTED and not condition:
            condition = "imported, not yet discovered"
        return OntFacts(olt=self.olt, pon_port=self.pon_port,
                        present=self.state in (OntState.UP, OntState.DOWN),
                        operational=self.state is OntState.UP,
                        condition=condition, since=self.state_since)


@dataclass(frozen=True, slots=True)
class OntChange:
    """What an upsert or import did: ``moved`` carries the previous location."""

    ont: Ont
    change: Change
    previous_olt: str | None = None
    previous_pon_port: str | None = None


@dataclass(frozen=True, slots=True)
class OntImport:
    """One ONT to pre-import (a validated CSV row)."""

    serial: str
    olt: str
    pon_port: str
    model: str = ""
    firmware: str = ""
    vendor: str = ""


@dataclass(frozen=True, slots=True)
class ObjectRecord:
    """An object (address), with the serial bound to it, if any."""

    id: str
    address: str
    created_at: datetime
    serial: str | None


@dataclass(frozen=True, slots=True)
class Binding:
    object_id: str
    serial: str
    bound_at: datetime


@dataclass(frozen=True, slots=True)
class BindResult:
    binding: Binding
    change: Literal["bound", "moved", "unchanged"]
    previous_object: str | None = None  # where the serial was bound before a move
    replaced_serial: str | None = None  # the serial this object had before (replace=True)


@dataclass(frozen=True, slots=True)
class BindingEvent:
    id: int
    object_id: str
    serial: str
    action: str  # bound, unbound, moved-in, moved-out, replaced
    other_object: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Order:
    id: str
    external_ref: str | None
    object_id: str
    isp: str
    service_type: str
    start_at: datetime
    created_at: datetime
    cancelled_at: datetime | None
    removal_requested_at: datetime | None
    removed_at: datetime | None


@dataclass(frozen=True, slots=True)
class OrderCreated:
    order: Order
    created: bool  # False: the idempotency key was already known, nothing written


@dataclass(frozen=True, slots=True)
class OrderChanged:
    """What :meth:`Store.change_order` did: ``order`` is the order that carries the service
    now (the successor, or the order itself updated in place); ``previous`` is the changed
    order as it is after the change (the same order when updated in place)."""

    order: Order
    previous: Order
    replaced: bool  # True: a successor was created and the previous order's removal requested
    changed: bool = True  # False: the same change again, nothing written


@dataclass(frozen=True, slots=True)
class OrderEvent:
    id: int
    order_id: str
    at: datetime
    status: str
    error_class: ErrorClass | None
    message: str


@dataclass(frozen=True, slots=True)
class Push:
    id: int
    order_id: str | None
    device: str
    action: PushAction
    phase: PushPhase
    payload_digest: str
    error_class: ErrorClass | None
    message: str
    started_at: datetime
    finished_at: datetime | None

    @property
    def pending(self) -> bool:
        return self.phase in PENDING_PHASES

    def outcome(self) -> PushOutcome:
        """The push as :data:`agent.status.PushOutcome`."""
        if self.pending:
            return PushInProgress(started=self.started_at)
        at = self.finished_at or self.started_at
        if self.phase is PushPhase.VERIFIED:
            return PushVerified(at=at)
        return PushFailed(error_class=self.error_class or ErrorClass.REJECTED,
                          message=self.message, at=at)


@dataclass(frozen=True, slots=True)
class Allocation:
    """An ONT's onu-id on its OLT port (held while the ONT is registered there)."""

    serial: str
    olt: str
    pon_port: str
    onu_id: int
    allocated_at: datetime


@dataclass(frozen=True, slots=True)
class ServiceAllocation:
    """An order's (service's) GEM port and alloc-id on its OLT (held while the service may be
    on the device)."""

    order_id: str
    olt: str
    gemport: int
    alloc_id: int
    allocated_at: datetime


# --- helpers ------------------------------------------------------------------------------------


def _where(**equal: str | None) -> tuple[str, tuple[str, ...]]:
    """``WHERE a = ? AND b = ?`` over the filters given (``None``: no filter on that column),
    and its parameters. Built per call rather than ``(? IS NULL OR a = ?)``, which SQLite
    cannot answer from an index: that form scanned every order on each ONT report."""
    given = {column: value for column, value in equal.items() if value is not None}
    if not given:
        return "", ()
    return "WHERE " + " AND ".join(f"{column} = ?" for column in given), tuple(given.values())


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(s: str) -> datetime:
    return datetime.fromisoformat(s)


def _opt_dt(s: str | None) -> datetime | None:
    return None if s is None else datetime.fromisoformat(s)


def _aware(what: str, t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise InvalidValue(f"{what} {t.isoformat()} has no time zone")
    return t


def _match(what: str, value: str, rx: re.Pattern[str], rule: str) -> str:
    if not isinstance(value, str) or not rx.fullmatch(value):
        raise InvalidValue(f"{what} {value!r} is invalid: {rule}")
    return value


def check_serial(serial: str) -> str:
    return _match("ONT serial", serial, SERIAL,
                  "4 upper-case vendor characters + 8 hex digits, e.g. ABCD0000A1B2")


def check_olt(olt: str) -> str:
    return _match("OLT name", olt, NAME, "1-32 letters, digits, '_', '.', '-'")


def check_pon_port(port: str) -> str:
    return _match("PON port", port, PON_PORT, "frame/slot/port, e.g. 0/1/0")


def check_name(what: str, value: str) -> str:
    return _match(what, value, NAME, "1-32 letters, digits, '_', '.', '-'")


def check_object_id(object_id: str) -> str:
    return _match("object id", object_id, OBJECT_ID,
                  "1-64 letters, digits, '_', '.', ':', '/', '-'")


def check_text(what: str, value: str, limit: int = MAX_TEXT) -> str:
    """Free text stored as data (quotes and XML are fine): bounded, no control characters."""
    if not isinstance(value, str):
        raise InvalidValue(f"{what} must be text, not {type(value).__name__}")
    if len(value) > limit:
        raise InvalidValue(f"{what} is {len(value)} characters long (at most {limit})")
    if CONTROL.search(value):
        raise InvalidValue(f"{what} {value!r} contains a control character")
    return value


def _ont(r: sqlite3.Row) -> Ont:
    return Ont(serial=r["serial"], olt=r["olt"], pon_port=r["pon_port"], model=r["model"],
               firmware=r["firmware"], vendor=r["vendor"], state=OntState(r["state"]),
               condition=r["condition"], state_since=_dt(r["state_since"]),
               onu_id=r["onu_id"], first_seen=_opt_dt(r["first_seen"]),
               last_seen=_opt_dt(r["last_seen"]))


def _order(r: sqlite3.Row) -> Order:
    return Order(id=r["id"], external_ref=r["external_ref"], object_id=r["object_id"],
                 isp=r["isp"], service_type=r["service_type"], start_at=_dt(r["start_at"]),
                 created_at=_dt(r["created_at"]), cancelled_at=_opt_dt(r["cancelled_at"]),
                 removal_requested_at=_opt_dt(r["removal_requested_at"]),
                 removed_at=_opt_dt(r["removed_at"]))


def _event(r: sqlite3.Row) -> OrderEvent:
    ec = r["error_class"]
    return OrderEvent(id=r["id"], order_id=r["order_id"], at=_dt(r["at"]), status=r["status"],
                      error_class=None if ec is None else ErrorClass(ec), message=r["message"])


def _push(r: sqlite3.Row) -> Push:
    ec = r["error_class"]
    return Push(id=r["id"], order_id=r["order_id"], device=r["device"],
                action=PushAction(r["action"]), phase=PushPhase(r["phase"]),
                payload_digest=r["payload_digest"],
                error_class=None if ec is None else ErrorClass(ec), message=r["message"],
                started_at=_dt(r["started_at"]), finished_at=_opt_dt(r["finished_at"]))


def _alloc(r: sqlite3.Row) -> Allocation:
    return Allocation(serial=r["serial"], olt=r["olt"], pon_port=r["pon_port"],
                      onu_id=r["onu_id"], allocated_at=_dt(r["allocated_at"]))


def _service_alloc(r: sqlite3.Row) -> ServiceAllocation:
    return ServiceAllocation(order_id=r["order_id"], olt=r["olt"], gemport=r["gemport"],
                             alloc_id=r["alloc_id"], allocated_at=_dt(r["allocated_at"]))


def _binding(r: sqlite3.Row) -> Binding:
    return Binding(object_id=r["object_id"], serial=r["serial"], bound_at=_dt(r["bound_at"]))


def _statements(script: str) -> list[str]:
    """Split a migration into complete statements (triggers contain ';' inside BEGIN..END)."""
    out: list[str] = []
    buf = ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n\t;"):
                out.append(buf.strip())
            buf = ""
    if buf.strip(" \n\t;"):
        raise StoreError(f"incomplete statement in migration: {buf.strip()[:80]!r}")
    return out


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # the caller was cancelled; the write happened (or failed) anyway
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _first_free(used: set[int], pool: range) -> int | None:
    return next((i for i in pool if i not in used), None)


def _facts(order: Order, obj: ObjectRecord | None, ont: Ont | None, push: Push | None,
           catalog: Catalog) -> OrderFacts:
    resolved = (catalog.resolve(order.isp, order.service_type, ont.olt)
                if ont is not None else catalog.gaps(order.isp, order.service_type))
    outcome: PushOutcome = NoPush() if push is None else push.outcome()
    return OrderFacts(order_id=order.id, isp=order.isp, service_type=order.service_type,
                      start=order.start_at, object_id=order.object_id,
                      catalog=resolved, object_exists=obj is not None,
                      ont_serial=obj.serial if obj is not None else None,
                      ont=None if ont is None else ont.facts(),
                      push=outcome, cancelled=order.cancelled_at is not None,
                      removal_requested=order.removal_requested_at is not None,
                      removal_done=order.removed_at is not None)


@dataclass(frozen=True, slots=True)
class PushTotals:
    """The store's pushes in numbers (see :meth:`Store.push_totals`)."""

    by_phase: dict[str, int]
    errors: dict[str, int]
    finished: int
    seconds: float


# --- the store ----------------------------------------------------------------------------------


def _snapshot(conn: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``fn`` in one read transaction on ``conn``: a consistent snapshot."""
    conn.execute("BEGIN")
    try:
        return fn(conn)
    finally:
        conn.execute("COMMIT")


class Store:
    """The agent's SQLite store; use ``async with Store(path) as store:``."""

    def __init__(self, path: Path | str, *, clock: Callable[[], datetime] | None = None) -> None:
        self.path = Path(path)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # the worker thread's: writes
        self._reader: sqlite3.Connection | None = None  # the event loop's: reads
        self._reads = 0
        # Writes waiting for the worker (group commit, see _write).
        self._group: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any],
                                asyncio.AbstractEventLoop]] = []
        self._group_lock = threading.Lock()
        self._group_scheduled = False

    # lifecycle

    async def open(self) -> Self:
        if self._executor is not None:
            raise StoreError(f"store {self.path} is already open")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ponctl-store")
        try:
            await self._call(self._connect)
            self._reader = self._open_reader()
        except BaseException:
            with contextlib.suppress(Exception):
                await self._call(self._disconnect)
            self._executor.shutdown(wait=False)
            self._executor = None
            raise
        return self

    async def close(self) -> None:
        if self._executor is None:
            return
        reader, self._reader = self._reader, None
        try:
            if reader is not None:
                reader.close()
            await self._call(self._disconnect)
        finally:
            self._executor.shutdown(wait=False)
            self._executor = None

    def _open_reader(self) -> sqlite3.Connection:
        """The connection reads run on, in the event loop's thread (see :meth:`_read`)."""
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                               check_same_thread=False)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA query_only = ON")  # a read that tries to write fails loudly
        except BaseException:
            conn.close()
            raise
        return conn

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def schema_version(self) -> int:
        return await self._read(lambda c: int(c.execute("PRAGMA user_version").fetchone()[0]))

    # worker-thread plumbing

    async def _call(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise StoreError(f"store {self.path} is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _connect(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        try:
            self._configure(conn)
            self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _configure(self, conn: sqlite3.Connection) -> None:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.path}: cannot switch to WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")

    def _check_version(self, current: int) -> None:
        if current > len(MIGRATIONS):
            raise StoreError(f"{self.path}: schema version {current} is newer than "
                             f"this agent knows ({len(MIGRATIONS)})")

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _migrate(self, conn: sqlite3.Connection) -> None:
        for version, script in enumerate(MIGRATIONS, start=1):
            conn.execute("BEGIN IMMEDIATE")  # another process may be migrating the same file
            try:
                current = int(conn.execute("PRAGMA user_version").fetchone()[0])
                self._check_version(current)
                if current < version:
                    for statement in _statements(script):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {version}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _c(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"store {self.path} is not open")
        return self._conn

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one write transaction on the worker thread.

        Group commit: writes that queue up while the worker is busy are run together, each in
        its own savepoint (a failing one is rolled back alone and raises to its caller), and
        committed with one ``COMMIT`` -- one fsync for the group instead of one each. Every
        caller still resumes only after its write is durable; an idle store commits each write
        on its own, as before.
        """
        if self._executor is None:
            raise StoreError(f"store {self.path} is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._group_lock:
            self._group.append((fn, future, loop))
            start = not self._group_scheduled
            self._group_scheduled = True
        if start:
            try:
                self._executor.submit(self._commit_group)
            except BaseException:
                with self._group_lock:
                    self._group_scheduled = False
                raise
        return await future

    def _commit_group(self) -> None:
        """Worker thread: run every queued write in one transaction (see :meth:`_write`)."""
        with self._group_lock:
            group, self._group = self._group, []
            self._group_scheduled = False
        if not group:
            return
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn = self._c()
            conn.execute("BEGIN IMMEDIATE")
            try:
                for fn, _, _ in group:
                    conn.execute("SAVEPOINT write")
                    try:
                        result = fn(conn)
                    except Exception as exc:  # noqa: BLE001 - handed to that write's caller
                        conn.execute("ROLLBACK TO write")
                        conn.execute("RELEASE write")
                        outcomes.append((False, exc))
                    else:
                        conn.execute("RELEASE write")
                        outcomes.append((True, result))
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001 - the transaction failed: every write did
            outcomes = [(False, exc)] * len(group)
        for (_, future, loop), (ok, value) in zip(group, outcomes, strict=True):
            loop.call_soon_threadsafe(_settle, future, ok, value)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one read transaction (a consistent snapshot), in the event loop's own
        thread on a connection of its own.

        WAL readers neither wait for the writer nor make it wait, and the reads on the hot
        path are single-row lookups (tens of microseconds): a hop to the worker thread and
        back cost more than the read itself, and a mass activation makes some 30 reads per
        ONT. A read sees every write whose caller has resumed (a write resumes its caller
        only after its ``COMMIT``).
        """
        self._reads += 1
        if self._reads % READS_PER_YIELD == 0:
            # A read does not suspend: a loop of them (a metrics scrape, the start-up pass
            # over every open order) lets the rest of the daemon in every so often.
            await asyncio.sleep(0)
        conn = self._reader
        if conn is None:
            raise StoreError(f"store {self.path} is not open")
        return _snapshot(conn, fn)

    async def _read_apart(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """:meth:`_read`, but in a thread of its own on a connection of its own, for the rare
        read that builds something of every order (a metrics scrape: some 45 ms of Python
        per 1,000 orders): the event loop goes on with its work meanwhile."""
        if self._reader is None:
            raise StoreError(f"store {self.path} is not open")

        def run() -> T:
            conn = self._open_reader()
            try:
                return _snapshot(conn, fn)
            finally:
                conn.close()

        return await asyncio.to_thread(run)

    def _now(self) -> str:
        return _iso(_aware("clock", self._clock()))

    # for the store's companion modules (agent.lines): same thread, same transactions

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one write transaction on the store's worker thread."""
        return await self._write(fn)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one read transaction (a consistent snapshot)."""
        return await self._read(fn)

    def now(self) -> str:
        """The store's clock now, as stored (ISO 8601, UTC)."""
        return self._now()

    # ONTs

    def _get_ont(self, c: sqlite3.Connection, serial: str) -> Ont | None:
        r = c.execute("SELECT * FROM onts WHERE serial = ?", (serial,)).fetchone()
        return None if r is None else _ont(r)

    async def get_ont(self, serial: str) -> Ont | None:
        return await self._read(lambda c: self._get_ont(c, serial))

    async def list_onts(self, *, olt: str | None = None,
                        pon_port: str | None = None) -> tuple[Ont, ...]:
        def run(c: sqlite3.Connection) -> tuple[Ont, ...]:
            where, params = _where(olt=olt, pon_port=pon_port)
            rows = c.execute(f"SELECT * FROM onts {where} ORDER BY olt, pon_port, serial",  # noqa: S608 - fixed columns
                             params).fetchall()
            return tuple(_ont(r) for r in rows)

        return await self._read(run)

    async def upsert_ont(self, serial: str, olt: str, pon_port: str, *,
                         model: str | None = None, firmware: str | None = None,
                         vendor: str | None = None, state: OntState = OntState.UP,
                         condition: str = "", onu_id: int | None = None) -> OntChange:
        """Record a discovery: create the ONT, or update it; seen on another port it is moved.

        ``None`` for model/firmware/vendor/onu_id keeps what is stored.
        """
        check_serial(serial)
        check_olt(olt)
        check_pon_port(pon_port)
        for what, v in (("model", model), ("firmware", firmware), ("vendor", vendor)):
            if v is not None:
                check_text(what, v)
        check_text("condition", condition)
        if state is OntState.IMPORTED:
            raise InvalidValue("a discovered ONT cannot be in state 'imported'")
        if onu_id is not None and onu_id not in ONU_IDS:
            raise InvalidValue(f"onu-id {onu_id} is out of range 0..127")

        def run(c: sqlite3.Connection) -> OntChange:
            now = self._now()
            old = self._get_ont(c, serial)
            if old is None:
                c.execute("INSERT INTO onts (serial, olt, pon_port, model, firmware, vendor, state,"
                          " condition, state_since, onu_id, first_seen, last_seen)"
                          " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          (serial, olt, pon_port, model or "", firmware or "", vendor or "",
                           state.value, condition, now, onu_id, now, now))
                new = self._get_ont(c, serial)
                assert new is not None
                return OntChange(new, "created")
            moved = (old.olt, old.pon_port) != (olt, pon_port)
            since = _iso(old.state_since) if (old.state, old.condition) == (state, condition) \
                else now
            c.execute("UPDATE onts SET olt = ?, pon_port = ?, model = ?, firmware = ?, vendor = ?,"
                      " state = ?, condition = ?, state_since = ?, onu_id = ?,"
                      " first_seen = COALESCE(first_seen, ?), last_seen = ? WHERE serial = ?",
                      (olt, pon_port, old.model if model is None else model,
                       old.firmware if firmware is None else firmware,
                       old.vendor if vendor is None else vendor, state.value, condition, since,
                       (None if moved else old.onu_id) if onu_id is None else onu_id,
                       now, now, serial))
            new = self._get_ont(c, serial)
            assert new is not None
            if moved:
                return OntChange(new, "moved", old.olt, old.pon_port)
            same = (old.model, old.firmware, old.vendor, old.state, old.condition, old.onu_id) == \
                   (new.model, new.firmware, new.vendor, new.state, new.condition, new.onu_id)
            return OntChange(new, "unchanged" if same else "updated")

        return await self._write(run)

    async def set_ont_state(self, serial: str, state: OntState, condition: str = "") -> Ont:
        """An event about a known ONT (LOS, dying gasp, back up) that names no location."""
        check_text("condition", condition)
        if state is OntState.IMPORTED:
            raise InvalidValue("an ONT cannot go back to state 'imported'")

        def run(c: sqlite3.Connection) -> Ont:
            old = self._get_ont(c, serial)
            if old is None:
                raise NotFound(f"ONT {serial} is unknown")
            now = self._now()
            changed = (old.state, old.condition) != (state, condition)
            c.execute("UPDATE onts SET state = ?, condition = ?, state_since = ?,"
                      " first_seen = COALESCE(first_seen, ?), last_seen = ? WHERE serial = ?",
                      (state.value, condition, now if changed else _iso(old.state_since),
                       now, now, serial))
            new = self._get_ont(c, serial)
            assert new is not None
            return new

        return await self._write(run)

    async def import_onts(self, rows: Sequence[OntImport]) -> tuple[OntChange, ...]:
        """Pre-import ONTs in one transaction (all or nothing).

        A new serial is stored as ``imported``; one still only imported is updated (or moved);
        one an OLT has already reported is left as the network says (``unchanged``).
        """
        serials: set[str] = set()
        for row in rows:
            check_serial(row.serial)
            check_olt(row.olt)
            check_pon_port(row.pon_port)
            check_text("model", row.model)
            check_text("firmware", row.firmware)
            check_text("vendor", row.vendor)
            if row.serial in serials:
                raise InvalidValue(f"ONT serial {row.serial} appears twice in one import")
            serials.add(row.serial)

        def run(c: sqlite3.Connection) -> tuple[OntChange, ...]:
            now = self._now()
            out: list[OntChange] = []
            for row in rows:
                old = self._get_ont(c, row.serial)
                if old is None:
                    c.execute("INSERT INTO onts (serial, olt, pon_port, model, firmware, vendor,"
                              " state, condition, state_since) VALUES (?, ?, ?, ?, ?, ?, ?, '', ?)",
                              (row.serial, row.olt, row.pon_port, row.model, row.firmware,
                               row.vendor, OntState.IMPORTED.value, now))
                    change: Change = "created"
                elif old.state is not OntState.IMPORTED:
                    out.append(OntChange(old, "unchanged"))
                    continue
                else:
                    c.execute("UPDATE onts SET olt = ?, pon_port = ?, model = ?, firmware = ?,"
                              " vendor = ? WHERE serial = ?",
                              (row.olt, row.pon_port, row.model, row.firmware, row.vendor,
                               row.serial))
                    if (old.olt, old.pon_port) != (row.olt, row.pon_port):
                        change = "moved"
                    elif (old.model, old.firmware, old.vendor) != (row.model, row.firmware,
                                                                   row.vendor):
                        change = "updated"
                    else:
                        change = "unchanged"
                new = self._get_ont(c, row.serial)
                assert new is not None
                if change == "moved" and old is not None:
                    out.append(OntChange(new, change, old.olt, old.pon_port))
                else:
                    out.append(OntChange(new, change))
            return tuple(out)

        return await self._write(run)

    # objects and bindings

    def _get_object(self, c: sqlite3.Connection, object_id: str) -> ObjectRecord | None:
        r = c.execute("SELECT o.id, o.address, o.created_at, b.serial FROM objects o"
                      " LEFT JOIN bindings b ON b.object_id = o.id WHERE o.id = ?",
                      (object_id,)).fetchone()
        if r is None:
            return None
        return ObjectRecord(id=r["id"], address=r["address"], created_at=_dt(r["created_at"]),
                            serial=r["serial"])

    async def create_object(self, object_id: str, address: str) -> ObjectRecord:
        """Create an object; creating it again with the same address returns it unchanged."""
        check_object_id(object_id)
        check_text("address", address, MAX_ADDRESS)
        if not address.strip():
            raise InvalidValue("address is empty")

        def run(c: sqlite3.Connection) -> ObjectRecord:
            old = self._get_object(c, object_id)
            if old is not None:
                if old.address != address:
                    raise Conflict(f"object {object_id!r} already exists with address "
                                   f"{old.address!r}")
                return old
            c.execute("INSERT INTO objects (id, address, created_at) VALUES (?, ?, ?)",
                      (object_id, address, self._now()))
            new = self._get_object(c, object_id)
            assert new is not None
            return new

        return await self._write(run)

    async def get_object(self, object_id: str) -> ObjectRecord | None:
        return await self._read(lambda c: self._get_object(c, object_id))

    async def list_objects(self) -> tuple[ObjectRecord, ...]:
        def run(c: sqlite3.Connection) -> tuple[ObjectRecord, ...]:
            ids = [r[0] for r in c.execute("SELECT id FROM objects ORDER BY id")]
            return tuple(o for i in ids if (o := self._get_object(c, i)) is not None)

        return await self._read(run)

    def _history(self, c: sqlite3.Connection, object_id: str, serial: str, action: str,
                 other: str | None, now: str) -> None:
        c.execute("INSERT INTO binding_history (object_id, serial, action, other_object, at)"
                  " VALUES (?, ?, ?, ?, ?)", (object_id, serial, action, other, now))

    async def bind(self, object_id: str, serial: str, *, move: bool = False,
                   replace: bool = False) -> BindResult:
        """Bind the ONT ``serial`` to the object.

        A serial bound to another object is refused unless ``move=True`` (then it is unbound
        there). An object that already has another ONT is refused unless ``replace=True``.
        Binding what is already bound is a no-op. The ONT need not be discovered yet.
        """
        check_object_id(object_id)
        check_serial(serial)

        def run(c: sqlite3.Connection) -> BindResult:
            if self._get_object(c, object_id) is None:
                raise NotFound(f"object {object_id!r} does not exist")
            now = self._now()
            elsewhere = c.execute("SELECT * FROM bindings WHERE serial = ?", (serial,)).fetchone()
            if elsewhere is not None and elsewhere["object_id"] == object_id:
                return BindResult(_binding(elsewhere), "unchanged")
            here = c.execute("SELECT * FROM bindings WHERE object_id = ?",
                             (object_id,)).fetchone()
            if elsewhere is not None and not move:
                raise Conflict(f"ONT {serial} is already bound to object "
                               f"{elsewhere['object_id']!r}: unbind it there or move it "
                               f"explicitly (move=True)")
            if here is not None and not replace:
                raise Conflict(f"object {object_id!r} already has ONT {here['serial']} bound: "
                               f"unbind it first or replace it explicitly (replace=True)")
            previous: str | None = None
            if elsewhere is not None:
                previous = elsewhere["object_id"]
                c.execute("DELETE FROM bindings WHERE serial = ?", (serial,))
                self._history(c, previous, serial, "moved-out", object_id, now)
            replaced: str | None = None
            if here is not None:
                replaced = here["serial"]
                c.execute("DELETE FROM bindings WHERE object_id = ?", (object_id,))
                self._history(c, object_id, here["serial"], "replaced", None, now)
            c.execute("INSERT INTO bindings (object_id, serial, bound_at) VALUES (?, ?, ?)",
                      (object_id, serial, now))
            self._history(c, object_id, serial, "moved-in" if previous else "bound",
                          previous, now)
            return BindResult(Binding(object_id, serial, _dt(now)),
                              "moved" if previous else "bound", previous, replaced)

        return await self._write(run)

    async def unbind(self, object_id: str) -> Binding | None:
        """Remove the object's binding; returns what was bound, or None if nothing was."""

        def run(c: sqlite3.Connection) -> Binding | None:
            r = c.execute("SELECT * FROM bindings WHERE object_id = ?", (object_id,)).fetchone()
            if r is None:
                return None
            c.execute("DELETE FROM bindings WHERE object_id = ?", (object_id,))
            self._history(c, object_id, r["serial"], "unbound", None, self._now())
            return _binding(r)

        return await self._write(run)

    async def binding_of_object(self, object_id: str) -> Binding | None:
        def run(c: sqlite3.Connection) -> Binding | None:
            r = c.execute("SELECT * FROM bindings WHERE object_id = ?", (object_id,)).fetchone()
            return None if r is None else _binding(r)

        return await self._read(run)

    async def binding_of_serial(self, serial: str) -> Binding | None:
        def run(c: sqlite3.Connection) -> Binding | None:
            r = c.execute("SELECT * FROM bindings WHERE serial = ?", (serial,)).fetchone()
            return None if r is None else _binding(r)

        return await self._read(run)

    async def binding_history(self, *, serial: str | None = None,
                              object_id: str | None = None) -> tuple[BindingEvent, ...]:
        def run(c: sqlite3.Connection) -> tuple[BindingEvent, ...]:
            where, params = _where(serial=serial, object_id=object_id)
            rows = c.execute(f"SELECT * FROM binding_history {where} ORDER BY id",  # noqa: S608 - fixed columns
                             params).fetchall()
            return tuple(BindingEvent(id=r["id"], object_id=r["object_id"], serial=r["serial"],
                                      action=r["action"], other_object=r["other_object"],
                                      at=_dt(r["at"])) for r in rows)

        return await self._read(run)

    # orders

    def _get_order(self, c: sqlite3.Connection, order_id: str) -> Order | None:
        r = c.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
        return None if r is None else _order(r)

    def _order_or_raise(self, c: sqlite3.Connection, order_id: str) -> Order:
        order = self._get_order(c, order_id)
        if order is None:
            raise NotFound(f"order {order_id!r} does not exist")
        return order

    def _event(self, c: sqlite3.Connection, order_id: str, status: str,
               error_class: ErrorClass | None, message: str) -> OrderEvent:
        cur = c.execute("INSERT INTO order_events (order_id, at, status, error_class, message)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (order_id, self._now(), status,
                         None if error_class is None else error_class.value, message))
        r = c.execute("SELECT * FROM order_events WHERE id = ?", (cur.lastrowid,)).fetchone()
        return _event(r)

    async def create_order(self, object_id: str, isp: str, service_type: str,
                           start_at: datetime, *, external_ref: str | None = None,
                           order_id: str | None = None) -> OrderCreated:
        """Create an order (and its first history event) in one transaction.

        Idempotent on ``external_ref`` (the OSS's reference) and on ``order_id``: the same
        request again returns the stored order with ``created=False``; the same key with
        different content is a :class:`Conflict`. The object need not exist yet (that is a
        prerequisite the order's status reports).
        """
        check_object_id(object_id)
        check_name("ISP", isp)
        check_name("service type", service_type)
        _aware("start date", start_at)
        if external_ref is not None:
            check_text("external reference", external_ref, 128)
            if not external_ref.strip():
                raise InvalidValue("external reference is empty")
        oid = order_id if order_id is not None else f"ord-{uuid.uuid4().hex[:12]}"
        check_object_id(oid)
        start = _iso(start_at)

        def run(c: sqlite3.Connection) -> OrderCreated:
            for key, sql in ((external_ref, "SELECT * FROM orders WHERE external_ref = ?"),
                             (order_id, "SELECT * FROM orders WHERE id = ?")):
                if key is None:
                    continue
                r = c.execute(sql, (key,)).fetchone()
                if r is None:
                    continue
                old = _order(r)
                if (old.object_id, old.isp, old.service_type, _iso(old.start_at)) != \
                        (object_id, isp, service_type, start) or \
                        (order_id is not None and old.id != order_id) or \
                        (external_ref is not None and old.external_ref != external_ref):
                    raise Conflict(f"order {old.id} (external reference "
                                   f"{old.external_ref!r}) already exists with different "
                                   f"content: object {old.object_id!r}, {old.isp} "
                                   f"{old.service_type}, start {_iso(old.start_at)}")
                return OrderCreated(old, created=False)
            c.execute("INSERT INTO orders (id, external_ref, object_id, isp, service_type,"
                      " start_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (oid, external_ref, object_id, isp, service_type, start, self._now()))
            self._event(c, oid, "created", None,
                        f"order created: {isp} {service_type} on object {object_id!r}, "
                        f"start {start}")
            return OrderCreated(self._order_or_raise(c, oid), created=True)

        return await self._write(run)

    async def get_order(self, order_id: str) -> Order | None:
        return await self._read(lambda c: self._get_order(c, order_id))

    async def list_orders(self, *, object_id: str | None = None,
                          open_only: bool = False) -> tuple[Order, ...]:
        """Orders by creation; ``open_only`` leaves out cancelled and removed ones."""

        def run(c: sqlite3.Connection) -> tuple[Order, ...]:
            where, params = _where(object_id=object_id)
            if open_only:
                where += (" AND" if where else "WHERE") + \
                    " cancelled_at IS NULL AND removed_at IS NULL"
            rows = c.execute(f"SELECT * FROM orders {where} ORDER BY created_at, id",  # noqa: S608 - fixed columns
                             params).fetchall()
            return tuple(_order(r) for r in rows)

        return await self._read(run)

    async def cancel(self, order_id: str, reason: str = "") -> Order:
        """Withdraw an order before activation; cancelling again is a no-op.

        Refused once a push of the order was verified (its service is on a device: terminate
        it with :meth:`request_removal` instead) or once removal was requested.
        """

        def run(c: sqlite3.Connection) -> Order:
            order = self._order_or_raise(c, order_id)
            if order.cancelled_at is not None:
                return order
            if order.removal_requested_at is not None:
                raise InvalidTransition(f"order {order_id} is being terminated; it cannot be "
                                        f"cancelled")
            verified = c.execute("SELECT 1 FROM pushes WHERE order_id = ? AND +phase = ?",
                                 (order_id, PushPhase.VERIFIED.value)).fetchone()
            if verified is not None:
                raise InvalidTransition(f"order {order_id} has been provisioned on a device; "
                                        f"terminate it (request removal) instead of cancelling")
            now = self._now()
            c.execute("UPDATE orders SET cancelled_at = ? WHERE id = ?", (now, order_id))
            self._event(c, order_id, "cancelled", None,
                        "cancelled" + (f": {reason}" if reason else ""))
            # Never provisioned: its GEM port and alloc-id (reserved by a push or a dry run)
            # go back to the pool, unless a push is still in flight (its outcome decides).
            marks = ", ".join("?" for _ in PENDING_PHASES)
            pending = c.execute(f"SELECT 1 FROM pushes WHERE order_id = ? AND phase IN ({marks})",  # noqa: S608
                                (order_id, *[p.value for p in PENDING_PHASES])).fetchone()
            if pending is None:
                c.execute("DELETE FROM service_allocations WHERE order_id = ?", (order_id,))
            return self._order_or_raise(c, order_id)

        return await self._write(run)

    async def request_removal(self, order_id: str, reason: str = "") -> Order:
        """Ask for the order's service to be removed from the device (terminate)."""

        def run(c: sqlite3.Connection) -> Order:
            order = self._order_or_raise(c, order_id)
            if order.removal_requested_at is not None:
                return order
            if order.cancelled_at is not None:
                raise InvalidTransition(f"order {order_id} is cancelled; nothing to remove")
            c.execute("UPDATE orders SET removal_requested_at = ? WHERE id = ?",
                      (self._now(), order_id))
            self._event(c, order_id, "removal-requested", None,
                        "removal requested" + (f": {reason}" if reason else ""))
            return self._order_or_raise(c, order_id)

        return await self._write(run)

    async def mark_removed(self, order_id: str, message: str = "service removed") -> Order:
        """Record that the removal push was verified: the order is terminated."""

        def run(c: sqlite3.Connection) -> Order:
            order = self._order_or_raise(c, order_id)
            if order.removed_at is not None:
                return order
            if order.removal_requested_at is None:
                raise InvalidTransition(f"order {order_id}: no removal was requested")
            c.execute("UPDATE orders SET removed_at = ? WHERE id = ?", (self._now(), order_id))
            self._event(c, order_id, "terminated", None, message)
            return self._order_or_raise(c, order_id)

        return await self._write(run)

    async def change_order(self, order_id: str, *, isp: str | None = None,
                           service_type: str | None = None, reason: str = "",
                           successor_id: str | None = None) -> OrderChanged:
        """Change an order's ISP and/or service type (``None``: keep it).

        * Not pushed yet (no push of the order was ever recorded, so nothing of it can be on
          a device): the order is updated in place; its history says what changed.
        * Pushed (active, or a push that failed and may have left something behind): a
          successor order is created for the same object and start date with the new ISP and
          service type, and takes over the OSS's external reference; the changed order's
          removal is requested. The histories link both ways ("changed: replaced by order X",
          "created as a change of order Y"), naming the external reference.

        Changing an order again the same way returns what the first change did
        (``changed=False``); an order already replaced must be changed through its successor.
        Refused for a cancelled or terminated order and for one whose removal was requested.
        The catalog is not consulted here: :meth:`agent.engine.Engine.change` checks it first.
        """
        if isp is not None:
            check_name("ISP", isp)
        if service_type is not None:
            check_name("service type", service_type)
        if isp is None and service_type is None:
            raise InvalidValue("a change needs a new ISP or a new service type")
        check_text("reason", reason, 200)
        new_id = successor_id if successor_id is not None else f"ord-{uuid.uuid4().hex[:12]}"
        check_object_id(new_id)
        why = f": {reason}" if reason else ""

        def run(c: sqlite3.Connection) -> OrderChanged:
            order = self._order_or_raise(c, order_id)
            to_isp = order.isp if isp is None else isp
            to_type = order.service_type if service_type is None else service_type
            link = c.execute("SELECT successor_id FROM order_changes WHERE order_id = ?",
                             (order_id,)).fetchone()
            if link is not None:
                successor = self._order_or_raise(c, link[0])
                if (successor.isp, successor.service_type) == (to_isp, to_type):
                    return OrderChanged(successor, order, replaced=True, changed=False)
                raise InvalidTransition(f"order {order_id} was already changed: it is replaced "
                                        f"by order {successor.id} ({successor.isp} "
                                        f"{successor.service_type}); change that order instead")
            if order.cancelled_at is not None:
                raise InvalidTransition(f"order {order_id} is cancelled; create a new order")
            if order.removal_requested_at is not None:
                raise InvalidTransition(f"order {order_id} is terminated or being terminated; "
                                        f"create a new order")
            if (order.isp, order.service_type) == (to_isp, to_type):
                raise InvalidValue(f"order {order_id} already is {to_isp} {to_type}: nothing "
                                   f"to change")
            was = f"{order.isp} {order.service_type}"
            now_is = f"{to_isp} {to_type}"
            pushed = c.execute("SELECT 1 FROM pushes WHERE order_id = ? LIMIT 1",
                               (order_id,)).fetchone()
            if pushed is None:
                c.execute("UPDATE orders SET isp = ?, service_type = ? WHERE id = ?",
                          (to_isp, to_type, order_id))
                self._event(c, order_id, "changed", None, f"changed: {was} -> {now_is}{why}")
                new = self._order_or_raise(c, order_id)
                return OrderChanged(new, new, replaced=False)
            if self._get_order(c, new_id) is not None:
                raise Conflict(f"order {new_id} already exists")
            ref = order.external_ref
            ref_text = f", external reference {ref!r}" if ref is not None else ""
            now = self._now()
            c.execute("UPDATE orders SET external_ref = NULL, removal_requested_at = ?"
                      " WHERE id = ?", (now, order_id))
            c.execute("INSERT INTO orders (id, external_ref, object_id, isp, service_type,"
                      " start_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (new_id, ref, order.object_id, to_isp, to_type, _iso(order.start_at), now))
            c.execute("INSERT INTO order_changes (order_id, successor_id, changed_at)"
                      " VALUES (?, ?, ?)", (order_id, new_id, now))
            self._event(c, order_id, "changed", None,
                        f"changed: replaced by order {new_id} ({now_is}{ref_text}); removal "
                        f"of {was} requested{why}")
            self._event(c, new_id, "created", None,
                        f"created as a change of order {order_id} (was {was}{ref_text}): "
                        f"{now_is} on object {order.object_id!r}, start "
                        f"{_iso(order.start_at)}{why}")
            return OrderChanged(self._order_or_raise(c, new_id),
                                self._order_or_raise(c, order_id), replaced=True)

        return await self._write(run)

    async def successor_of(self, order_id: str) -> str | None:
        """The order that replaced ``order_id`` in a change, if any."""

        def run(c: sqlite3.Connection) -> str | None:
            r = c.execute("SELECT successor_id FROM order_changes WHERE order_id = ?",
                          (order_id,)).fetchone()
            return None if r is None else str(r[0])

        return await self._read(run)

    async def record_order_event(self, order_id: str, status: str, message: str,
                                 error_class: ErrorClass | None = None) -> OrderEvent:
        """Append one entry to the order's history (what first-line support reads)."""
        if not status or len(status) > MAX_TEXT:
            raise InvalidValue(f"event status {status!r} must be 1..{MAX_TEXT} characters")

        def run(c: sqlite3.Connection) -> OrderEvent:
            self._order_or_raise(c, order_id)
            return self._event(c, order_id, status, error_class, message)

        return await self._write(run)

    async def last_status_event(self, order_id: str,
                                statuses: Collection[str]) -> OrderEvent | None:
        """The order's latest history event whose status is one of ``statuses``."""
        marks = ", ".join("?" for _ in statuses)

        def run(c: sqlite3.Connection) -> OrderEvent | None:
            r = c.execute(f"SELECT * FROM order_events WHERE order_id = ? AND status IN ({marks})"  # noqa: S608
                          " ORDER BY id DESC LIMIT 1", (order_id, *statuses)).fetchone()
            return None if r is None else _event(r)

        return await self._read(run)

    async def order_events(self, order_id: str) -> tuple[OrderEvent, ...]:
        def run(c: sqlite3.Connection) -> tuple[OrderEvent, ...]:
            rows = c.execute("SELECT * FROM order_events WHERE order_id = ? ORDER BY id",
                             (order_id,)).fetchall()
            return tuple(_event(r) for r in rows)

        return await self._read(run)

    # pushes

    def _get_push(self, c: sqlite3.Connection, push_id: int) -> Push:
        r = c.execute("SELECT * FROM pushes WHERE id = ?", (push_id,)).fetchone()
        if r is None:
            raise NotFound(f"push {push_id} does not exist")
        return _push(r)

    async def begin_push(self, device: str, payload_digest: str, *, order_id: str | None = None,
                         action: PushAction = PushAction.APPLY) -> int:
        """Record the intent to push, *before* touching the device; returns the push id."""
        check_olt(device)
        check_text("payload digest", payload_digest, 128)

        def run(c: sqlite3.Connection) -> int:
            if order_id is not None:
                self._order_or_raise(c, order_id)
            cur = c.execute("INSERT INTO pushes (order_id, device, action, phase, payload_digest,"
                            " started_at) VALUES (?, ?, ?, ?, ?, ?)",
                            (order_id, device, action.value, PushPhase.INTENT_RECORDED.value,
                             payload_digest, self._now()))
            assert cur.lastrowid is not None
            return cur.lastrowid

        return await self._write(run)

    async def _set_phase(self, push_id: int, phase: PushPhase, error_class: ErrorClass | None,
                         message: str) -> Push:
        order = list(PushPhase)

        def run(c: sqlite3.Connection) -> Push:
            push = self._get_push(c, push_id)
            if push.phase is phase and push.error_class == error_class \
                    and push.message == message:
                return push  # replay of the same transition
            if not push.pending or (phase in PENDING_PHASES
                                    and order.index(phase) <= order.index(push.phase)):
                raise InvalidTransition(f"push {push_id} cannot go from {push.phase} to {phase}")
            finished = self._now() if phase in TERMINAL_PHASES else None
            c.execute("UPDATE pushes SET phase = ?, error_class = ?, message = ?,"
                      " finished_at = ? WHERE id = ?",
                      (phase.value, None if error_class is None else error_class.value,
                       message, finished, push_id))
            return self._get_push(c, push_id)

        return await self._write(run)

    async def advance_push(self, push_id: int, phase: Literal[PushPhase.SENT,
                                                              PushPhase.COMMITTED],
                           message: str = "") -> Push:
        """Record progress after a device step (payload sent, candidate committed)."""
        if phase not in (PushPhase.SENT, PushPhase.COMMITTED):
            raise InvalidValue(f"advance_push takes 'sent' or 'committed', not {phase!r}")
        return await self._set_phase(push_id, phase, None, message)

    async def finish_push(self, push_id: int, phase: PushPhase, *,
                          error_class: ErrorClass | None = None, message: str = "") -> Push:
        """Record the push's result: verified, or failed/rolled-back with an error class."""
        if phase not in TERMINAL_PHASES:
            raise InvalidValue(f"finish_push takes verified, failed or rolled-back, "
                               f"not {phase!r}")
        if phase is PushPhase.VERIFIED and error_class is not None:
            raise InvalidValue("a verified push has no error class")
        if phase is not PushPhase.VERIFIED and error_class is None:
            raise InvalidValue(f"a {phase} push needs an error class")
        return await self._set_phase(push_id, phase, error_class, message)

    async def get_push(self, push_id: int) -> Push:
        return await self._read(lambda c: self._get_push(c, push_id))

    async def pending_pushes(self) -> tuple[Push, ...]:
        """Pushes a crash left unfinished (intent recorded, sent or committed), oldest first."""

        def run(c: sqlite3.Connection) -> tuple[Push, ...]:
            rows = c.execute("SELECT * FROM pushes WHERE phase IN (?, ?, ?) ORDER BY id",
                             tuple(p.value for p in PENDING_PHASES)).fetchall()
            return tuple(_push(r) for r in rows)

        return await self._read(run)

    async def pushes_of(self, order_id: str) -> tuple[Push, ...]:
        def run(c: sqlite3.Connection) -> tuple[Push, ...]:
            rows = c.execute("SELECT * FROM pushes WHERE order_id = ? ORDER BY id",
                             (order_id,)).fetchall()
            return tuple(_push(r) for r in rows)

        return await self._read(run)

    # allocations

    def _get_alloc(self, c: sqlite3.Connection, serial: str) -> Allocation | None:
        r = c.execute("SELECT * FROM allocations WHERE serial = ?", (serial,)).fetchone()
        return None if r is None else _alloc(r)

    def _get_service_alloc(self, c: sqlite3.Connection,
                           order_id: str) -> ServiceAllocation | None:
        r = c.execute("SELECT * FROM service_allocations WHERE order_id = ?",
                      (order_id,)).fetchone()
        return None if r is None else _service_alloc(r)

    async def allocate(self, olt: str, pon_port: str, serial: str) -> Allocation:
        """The ONT's onu-id (unique per OLT port).

        Stable: allocating again returns the same number, also after a restart. A serial that
        holds an onu-id on another port must be released first (its registration is still
        there). The services' GEM ports and alloc-ids are per order: :meth:`allocate_service`.
        """
        check_olt(olt)
        check_pon_port(pon_port)
        check_serial(serial)

        def run(c: sqlite3.Connection) -> Allocation:
            old = self._get_alloc(c, serial)
            if old is not None:
                if (old.olt, old.pon_port) != (olt, pon_port):
                    raise Conflict(f"ONT {serial} holds onu-id {old.onu_id} on OLT {old.olt} "
                                   f"port {old.pon_port}: release it there first")
                return old
            used_onu = {r[0] for r in c.execute(
                "SELECT onu_id FROM allocations WHERE olt = ? AND pon_port = ?", (olt, pon_port))}
            # And the numbers other ONTs hold on the device itself, as discovery reported them
            # (ONUs provisioned before the agent, or by hand): handing one out again would
            # have the OLT refuse the push.
            used_onu |= {r[0] for r in c.execute(
                "SELECT onu_id FROM onts WHERE olt = ? AND pon_port = ? AND serial != ?"
                " AND onu_id IS NOT NULL", (olt, pon_port, serial))}
            onu_id = _first_free(used_onu, ONU_IDS)
            if onu_id is None:
                raise AllocationExhausted(f"OLT {olt} port {pon_port} has no free onu-id: all "
                                          f"{len(ONU_IDS)} are allocated or held on the "
                                          f"device")
            c.execute("INSERT INTO allocations (serial, olt, pon_port, onu_id, allocated_at)"
                      " VALUES (?, ?, ?, ?, ?)", (serial, olt, pon_port, onu_id, self._now()))
            new = self._get_alloc(c, serial)
            assert new is not None
            return new

        return await self._write(run)

    async def allocate_service(self, order_id: str, olt: str) -> ServiceAllocation:
        """The order's own GEM port and alloc-id (each unique per OLT), so that two services
        of one ONT never share one.

        Stable: allocating again returns the same numbers, also after a restart. An order that
        holds numbers on another OLT must be released first (its service is still there).
        """
        check_olt(olt)

        def run(c: sqlite3.Connection) -> ServiceAllocation:
            self._order_or_raise(c, order_id)
            old = self._get_service_alloc(c, order_id)
            if old is not None:
                if old.olt != olt:
                    raise Conflict(f"order {order_id} holds GEM port {old.gemport} and alloc-id "
                                   f"{old.alloc_id} on OLT {old.olt}: release them there first")
                return old
            used_gem: set[int] = set()
            used_alloc: set[int] = set()
            for g, a in c.execute("SELECT gemport, alloc_id FROM service_allocations"
                                  " WHERE olt = ?", (olt,)):
                used_gem.add(g)
                used_alloc.add(a)
            gem = _first_free(used_gem, GEMPORTS)
            alloc = _first_free(used_alloc, ALLOC_IDS)
            if gem is None or alloc is None:
                raise AllocationExhausted(f"OLT {olt} has no free "
                                          f"{'GEM port' if gem is None else 'alloc-id'}")
            c.execute("INSERT INTO service_allocations (order_id, olt, gemport, alloc_id,"
                      " allocated_at) VALUES (?, ?, ?, ?, ?)",
                      (order_id, olt, gem, alloc, self._now()))
            new = self._get_service_alloc(c, order_id)
            assert new is not None
            return new

        return await self._write(run)

    async def get_allocation(self, serial: str) -> Allocation | None:
        return await self._read(lambda c: self._get_alloc(c, serial))

    async def get_service_allocation(self, order_id: str) -> ServiceAllocation | None:
        return await self._read(lambda c: self._get_service_alloc(c, order_id))

    async def release(self, serial: str) -> Allocation | None:
        """Free the ONT's onu-id (after its registration was removed); returns what was freed."""

        def run(c: sqlite3.Connection) -> Allocation | None:
            old = self._get_alloc(c, serial)
            if old is not None:
                c.execute("DELETE FROM allocations WHERE serial = ?", (serial,))
                # The registration is gone from the device with it: the number the ONT last
                # reported no longer blocks the port's allocations (see allocate).
                c.execute("UPDATE onts SET onu_id = NULL WHERE serial = ? AND olt = ? AND"
                          " pon_port = ? AND onu_id = ?",
                          (serial, old.olt, old.pon_port, old.onu_id))
            return old

        return await self._write(run)

    async def release_service(self, order_id: str) -> ServiceAllocation | None:
        """Free the order's GEM port and alloc-id (after its service was removed); returns
        what was freed."""

        def run(c: sqlite3.Connection) -> ServiceAllocation | None:
            old = self._get_service_alloc(c, order_id)
            if old is not None:
                c.execute("DELETE FROM service_allocations WHERE order_id = ?", (order_id,))
            return old

        return await self._write(run)

    # status facts

    async def order_facts(self, order_id: str, catalog: Catalog) -> OrderFacts:
        """Everything :func:`agent.status.compute_status` needs for one order, from one
        consistent snapshot of the store (plus the catalog)."""

        def run(c: sqlite3.Connection) -> OrderFacts:
            order = self._order_or_raise(c, order_id)
            obj = self._get_object(c, order.object_id)
            serial = obj.serial if obj is not None else None
            ont = self._get_ont(c, serial) if serial is not None else None
            action = PushAction.REMOVE if order.removal_requested_at else PushAction.APPLY
            r = c.execute("SELECT * FROM pushes WHERE order_id = ? AND action = ?"
                          " ORDER BY id DESC LIMIT 1", (order_id, action.value)).fetchone()
            return _facts(order, obj, ont, None if r is None else _push(r), catalog)

        return await self._read(run)

    async def every_order_facts(self, catalog: Catalog) -> tuple[OrderFacts, ...]:
        """:meth:`order_facts` of every order, from one snapshot in five queries, built off
        the event loop (for the daemon's metrics: at 10,000 orders it is about half a second
        of CPU, which would otherwise hold up discovery and pushes)."""

        def run(c: sqlite3.Connection) -> tuple[OrderFacts, ...]:
            objects = {r["id"]: ObjectRecord(id=r["id"], address=r["address"],
                                             created_at=_dt(r["created_at"]), serial=r["serial"])
                       for r in c.execute("SELECT o.id, o.address, o.created_at, b.serial"
                                          " FROM objects o LEFT JOIN bindings b"
                                          " ON b.object_id = o.id")}
            onts = {r["serial"]: _ont(r) for r in c.execute("SELECT * FROM onts")}
            last = {(r["order_id"], r["action"]): _push(r) for r in c.execute(
                "SELECT * FROM pushes WHERE id IN (SELECT max(id) FROM pushes"
                " WHERE order_id IS NOT NULL GROUP BY order_id, action)")}
            out = []
            for r in c.execute("SELECT * FROM orders ORDER BY created_at, id"):
                order = _order(r)
                obj = objects.get(order.object_id)
                serial = obj.serial if obj is not None else None
                action = PushAction.REMOVE if order.removal_requested_at else PushAction.APPLY
                out.append(_facts(order, obj, onts.get(serial) if serial else None,
                                  last.get((order.id, action.value)), catalog))
            return tuple(out)

        return await self._read_apart(run)

    async def push_totals(self) -> PushTotals:
        """Pushes of orders counted by outcome (``pending`` or their phase) and by error class,
        and the count and summed seconds of the finished ones."""

        def run(c: sqlite3.Connection) -> PushTotals:
            by_phase: Counter[str] = Counter()
            errors: Counter[str] = Counter()
            for phase, error_class, n in c.execute(
                    "SELECT phase, error_class, count(*) FROM pushes WHERE order_id IS NOT NULL"
                    " GROUP BY phase, error_class"):
                by_phase[phase] += n
                if error_class is not None:
                    errors[error_class] += n
            finished, seconds = c.execute(
                "SELECT count(*), total((julianday(finished_at) - julianday(started_at))"
                " * 86400.0) FROM pushes WHERE order_id IS NOT NULL"
                " AND finished_at IS NOT NULL").fetchone()
            return PushTotals(by_phase=dict(by_phase), errors=dict(errors),
                              finished=int(finished), seconds=max(0.0, float(seconds)))

        return await self._read(run)
