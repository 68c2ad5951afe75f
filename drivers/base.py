"""The contract every driver implements, modelled on NAPALM's base driver.

A driver is one session to one device over one protocol:

    async with NetconfDriver(target) as dev:
        before = await dev.get_config()
        await dev.load_candidate(payload)          # merge (or replace=True)
        print((await dev.compare()).text)          # what would change
        await dev.commit(confirm_timeout=120)      # where the protocol allows
        ...verify...
        await dev.confirm()                        # or: await dev.rollback()

What a protocol cannot do is declared in ``capabilities`` and refused with
``UnsupportedError``, never faked. Every network await is bounded by ``timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeVar

from drivers.errors import DriverError, UnsupportedError

Protocol_ = Literal["netconf", "snmp", "ssh"]
PayloadT = TypeVar("PayloadT")


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What this protocol and this device support (filled in after ``connect``)."""

    protocol: Protocol_
    candidate: bool = False  # a separate candidate datastore to stage changes in
    confirmed_commit: bool = False  # commit that reverts by itself unless confirmed
    validate: bool = False  # the device checks a candidate before commit
    notifications: bool = False  # the device pushes events (else events() polls)
    transactions: bool = False  # several changes apply all-or-nothing
    locking: bool = False
    rollback: Literal["exact", "best-effort", "none"] = "none"
    details: tuple[str, ...] = ()  # e.g. NETCONF capability URIs


@dataclass(frozen=True, slots=True)
class Snapshot(Generic[PayloadT]):
    """Configuration or state read from a device, in the protocol's own form."""

    data: PayloadT
    source: str  # "running", "candidate", "state", ...
    taken_at: float = field(default_factory=time.time)


@dataclass(frozen=True, slots=True)
class Diff:
    """What a commit would change, as unified-diff-like lines (empty: nothing)."""

    lines: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.lines

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True, slots=True)
class CommitResult:
    """The outcome of ``commit``: whether a confirmation is now due, and by when."""

    changed: bool
    confirm_pending: bool = False
    confirm_deadline: float | None = None  # time.time() at which the device reverts


@dataclass(frozen=True, slots=True)
class DeviceEvent:
    """Something the device reported: a notification, a trap, or a change seen by polling."""

    kind: str  # e.g. "onu-state-change", a trap OID, "poll-changed"
    host: str
    fields: dict[str, str]
    raw: bytes | str | None = None
    received_at: float = field(default_factory=time.time)


class Driver(ABC, Generic[PayloadT]):
    """The async lifecycle all drivers share; ``PayloadT`` is what a candidate is made of
    (XML text for NETCONF, varbinds for SNMP, CLI lines for SSH)."""

    protocol: Protocol_
    host: str
    timeout: float

    # ---- lifecycle ---------------------------------------------------------------------
    @abstractmethod
    async def connect(self) -> None:
        """Open the session (bounded by ``timeout``); raises a DriverError subtype."""

    @abstractmethod
    async def close(self) -> None:
        """Close the session; pending requests fail with SessionLostError. Idempotent."""

    @property
    @abstractmethod
    def connected(self) -> bool:
        """True while the session is open."""

    async def reconnect(self) -> None:
        """Close (ignoring errors) and connect again."""
        with contextlib.suppress(DriverError):
            await self.close()
        await self.connect()

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    @property
    @abstractmethod
    def capabilities(self) -> Capabilities:
        """What the protocol and the connected device support."""

    # ---- reading -----------------------------------------------------------------------
    @abstractmethod
    async def get_config(self, filter: Any = None) -> Snapshot[PayloadT]:
        """The running configuration (optionally filtered, in the protocol's terms)."""

    @abstractmethod
    async def get_state(self, filter: Any = None) -> Snapshot[Any]:
        """Operational state (optionally filtered)."""

    # ---- changing ----------------------------------------------------------------------
    @abstractmethod
    async def load_candidate(self, payload: PayloadT, *, replace: bool = False) -> None:
        """Stage a change (merged into, or replacing, the running configuration)."""

    @abstractmethod
    async def compare(self) -> Diff:
        """What committing the staged change would change on the device."""

    @abstractmethod
    async def commit(self, *, confirm_timeout: float | None = None) -> CommitResult:
        """Apply the staged change; with ``confirm_timeout`` the device reverts by itself
        unless ``confirm`` follows in time (UnsupportedError where the protocol cannot)."""

    @abstractmethod
    async def confirm(self) -> None:
        """Confirm a pending confirmed commit."""

    @abstractmethod
    async def discard(self) -> None:
        """Drop the staged change."""

    @abstractmethod
    async def rollback(self) -> None:
        """Undo the last commit: cancel a pending confirmed commit, or restore what was
        there before (exactly or best-effort, as ``capabilities.rollback`` declares)."""

    # ---- events ------------------------------------------------------------------------
    @abstractmethod
    def events(self) -> AsyncIterator[DeviceEvent]:
        """Device events: notifications, traps, or changes seen by polling."""

    def _unsupported(self, what: str) -> UnsupportedError:
        return UnsupportedError(f"{self.protocol} on this device cannot {what}", host=self.host)


# ---- bulk ----------------------------------------------------------------------------------
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Result(Generic[R]):
    """One device's outcome in a bulk run: a value or the error, never both."""

    host: str
    value: R | None = None
    error: DriverError | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.error is not None


@dataclass(frozen=True, slots=True)
class BulkResult(Generic[R]):
    results: dict[str, Result[R]]

    @property
    def failed_hosts(self) -> dict[str, Result[R]]:
        return {h: r for h, r in self.results.items() if r.failed}

    @property
    def ok_hosts(self) -> dict[str, Result[R]]:
        return {h: r for h, r in self.results.items() if not r.failed}

    def raise_on_error(self) -> None:
        """Raise the first failure (with the count) if any device failed."""
        failed = self.failed_hosts
        if failed:
            first = next(iter(failed.values()))
            assert first.error is not None
            raise DriverError(f"{len(failed)} of {len(self.results)} devices failed; first: "
                              f"{first.error}") from first.error


async def run_bulk(items: Iterable[T], host_of: Callable[[T], str],
                   work: Callable[[T], Awaitable[R]], *, limit: int = 16) -> BulkResult[R]:
    """Run ``work`` on every item with at most ``limit`` at once; one result per device.

    A DriverError becomes that device's failed result; the batch never aborts. Anything
    else (a bug) propagates after every task has finished.
    """
    gate = asyncio.Semaphore(limit)
    results: dict[str, Result[R]] = {}

    async def one(item: T) -> None:
        host = host_of(item)
        async with gate:
            t0 = time.perf_counter()
            try:
                value = await work(item)
            except DriverError as exc:
                results[host] = Result(host, error=exc, seconds=time.perf_counter() - t0)
            else:
                results[host] = Result(host, value=value, seconds=time.perf_counter() - t0)

    async with asyncio.TaskGroup() as tg:
        for item in items:
            tg.create_task(one(item))
    return BulkResult(results)
