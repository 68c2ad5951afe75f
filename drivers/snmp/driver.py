"""The driver contract over SNMP: what SNMP can do, and what it cannot, declared.

SNMP has no candidate datastore, no validate, no confirmed commit and no configuration
replace. Here:

* ``load_candidate(varbinds)`` stages varbinds in the driver (merge only);
* ``compare()`` GETs the staged OIDs and lists the ones whose value would change;
* ``commit()`` reads the current values, SETs the ones that differ in ONE PDU, reads them
  back and checks them. One SET PDU is all-or-nothing on a conforming agent (RFC 3416
  4.2.5: "each variable binding is ... altered as if simultaneously"; if any fails, none is),
  which is the only transaction SNMP has: hence ``transactions=True`` in that sense only.
  Nothing spans two PDUs, and a commit is exactly one;
* ``rollback()`` SETs back, again in one PDU, what was read before the last commit. It is
  best-effort: rows the commit created (RowStatus createAndGo/createAndWait) are destroyed,
  rows it destroyed are re-created from the writable columns read before (when the MIB
  describing them is loaded), but an object that had no instance before and is not part
  of such a row cannot be "unset", and side effects on the device are not undone.

RowStatus columns are recognised from the loaded MIBs (``SYNTAX RowStatus``). For them
"equal" means the row state the SET asked for: createAndGo(4) is met by an existing row,
destroy(6) by an absent one. Values are compared as the wire sees them (Unsigned32 equals
Gauge32, text equals its octets).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from drivers.base import Capabilities, CommitResult, Diff, Driver, Snapshot
from drivers.errors import MismatchError, RejectedError, SessionLostError
from drivers.snmp.client import SnmpClient
from drivers.snmp.mib import MibResolver
from drivers.snmp.target import SnmpTarget
from drivers.snmp.traps import EventStream, TrapReceiver, TrapUser
from drivers.snmp.varbind import RowStatus, Varbind, VarType, same_value, value_text

log = logging.getLogger(__name__)

SYS_OBJECT_ID = "1.3.6.1.2.1.1.2.0"
ROW_STATUS_NAMES = {RowStatus.ACTIVE: "active", RowStatus.NOT_IN_SERVICE: "notInService",
                    RowStatus.NOT_READY: "notReady", RowStatus.CREATE_AND_GO: "createAndGo",
                    RowStatus.CREATE_AND_WAIT: "createAndWait", RowStatus.DESTROY: "destroy"}


@dataclass(frozen=True, slots=True)
class _Undo:
    """What one commit changed, for rollback: each SET varbind with the value before."""

    changes: tuple[tuple[Varbind, Varbind], ...]  # (what was set, what was there before)
    rows: dict[str, tuple[Varbind, ...]]  # status OID of a destroyed row -> its old columns


def satisfied(want: Varbind, have: Varbind, *, row_status: bool) -> bool:
    """Whether the device already holds what ``want`` would SET."""
    if row_status and want.type == VarType.INTEGER:
        if want.value in (RowStatus.CREATE_AND_GO, RowStatus.CREATE_AND_WAIT):
            return not have.missing  # the row exists
        if want.value == RowStatus.DESTROY:
            return have.missing
        if want.value == RowStatus.ACTIVE and have.type == VarType.INTEGER:
            return have.value == RowStatus.ACTIVE
    if have.missing:
        return False
    return same_value(want, have)


def describe(vb: Varbind) -> str:
    """A value for a diff line: ``absent`` for a missing instance, else type and value."""
    if vb.missing:
        return "absent"
    text = value_text(vb.type, vb.value)
    return f"{vb.type} {text!r}" if isinstance(vb.value, str | bytes) else f"{vb.type} {text}"


class SnmpDriver(Driver[list[Varbind]]):
    """The contract over SNMP (v1, v2c, v3). See the module docstring for what it means.

    ``receiver``: a running TrapReceiver shared by many drivers; ``events()`` yields its
    notifications from this target's address. Without one, ``events()`` raises
    UnsupportedError (no polling: an agent's caller knows better what is worth polling).
    """

    protocol = "snmp"

    def __init__(self, target: SnmpTarget, *, receiver: TrapReceiver | None = None,
                 resolver: MibResolver | None = None,
                 roots: Sequence[str] = ("1.3.6.1",)) -> None:
        """``roots``: what ``get_config()``/``get_state()`` walk when given no filter."""
        self.target = target
        self.host = target.host
        self.timeout = target.timeout
        self.receiver = receiver
        self.client = SnmpClient(target, resolver=resolver)
        self.roots = tuple(roots)
        self._candidate: dict[str, Varbind] = {}
        self._undo: _Undo | None = None
        self._details: tuple[str, ...] = ()
        self._connected = False
        # A commit or rollback is read, SET, read back: two at once on one driver would
        # read each other's half-done state.
        self._lock = asyncio.Lock()

    # ---- lifecycle ---------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the client and GET sysObjectID.0: over SNMP that is the only way to know
        the agent answers. A wrong community gets no answer (DriverTimeoutError); a wrong
        v3 auth key gets a report (AuthenticationError). With a receiver and v3, the
        agent's engine ID learned here is registered so its v3 traps are accepted."""
        await self.client.open()
        try:
            (oid,) = await self.client.get(SYS_OBJECT_ID)
        except BaseException:
            await self.client.close()
            raise
        details = [f"version={self.target.version}"]
        if oid.type == VarType.OBJECT_IDENTIFIER:
            details.append(f"sysObjectID={oid.text}")
        if self.client.engine_id is not None:
            details.append(f"engineID={self.client.engine_id.hex()}")
            if self.receiver is not None and self.target.version == "v3":
                self.receiver.add_user(TrapUser.from_target(self.target,
                                                            self.client.engine_id))
        self._details = tuple(details)
        self._connected = True

    async def close(self) -> None:
        """Close the client's socket and engine (the shared receiver stays open)."""
        self._connected = False
        await self.client.close()

    @property
    def connected(self) -> bool:
        """True after a successful ``connect`` until ``close``."""
        return self._connected and self.client.is_open

    @property
    def capabilities(self) -> Capabilities:
        """candidate/validate/confirmed-commit: no. transactions: one SET PDU is atomic on
        a conforming agent, and a commit is one PDU. rollback: best-effort."""
        return Capabilities(protocol="snmp", candidate=False, confirmed_commit=False,
                            validate=False, notifications=self.receiver is not None,
                            transactions=True, locking=False, rollback="best-effort",
                            details=self._details)

    def _require(self) -> SnmpClient:
        if not self.connected:
            raise SessionLostError("not connected", host=self.host)
        return self.client

    # ---- reading -----------------------------------------------------------------------
    async def get_config(self, filter: Any = None) -> Snapshot[list[Varbind]]:
        """Walk ``filter`` (an OID or name, or a list of them; default: ``roots``). A
        filter entry with nothing under it is read with GET instead, like snmpwalk does
        for a scalar instance. SNMP does not tell configuration from state."""
        return Snapshot(await self._read(filter), source="running")

    async def get_state(self, filter: Any = None) -> Snapshot[list[Varbind]]:
        """As ``get_config``: the same objects carry configuration and state."""
        return Snapshot(await self._read(filter), source="state")

    async def get(self, oids: Sequence[str]) -> list[Varbind]:
        """GET exactly these instances (split only if the agent says tooBig); an instance
        the agent does not have comes back marked ``missing``."""
        return await self._require().get(*oids)

    async def walk(self, root: str, *, max_repetitions: int | None = None) -> list[Varbind]:
        """Every object under ``root``. ``max_repetitions`` (default: the target's) bounds
        what each GETBULK brings back, past the subtree's end too: a small one suits a
        subtree of a few rows."""
        client = self._require()
        return [vb async for vb in client.walk(root, max_repetitions=max_repetitions)]

    async def _read(self, filter: Any) -> list[Varbind]:
        client = self._require()
        roots = [filter] if isinstance(filter, str) else list(filter or self.roots)
        out: list[Varbind] = []
        seen: set[str] = set()
        for root in roots:
            base = client.resolve(str(root))
            if base in seen:
                continue
            seen.add(base)
            found = await client.walk_all(base)
            if not found:
                found = [vb for vb in await client.get(base) if not vb.missing]
            out += found
        return out

    # ---- changing ----------------------------------------------------------------------
    async def load_candidate(self, payload: list[Varbind], *, replace: bool = False) -> None:
        """Stage varbinds (names resolved now). Later loads merge into earlier ones; a
        varbind for an OID already staged replaces it. ``replace=True``: UnsupportedError,
        SNMP has no way to replace a configuration."""
        if replace:
            raise self._unsupported("replace a configuration (SNMP only sets objects)")
        for vb in payload:
            numeric = Varbind(self.client.resolve(vb.oid), vb.type, vb.value)
            if numeric.type in (VarType.NULL, VarType.NO_SUCH_OBJECT, VarType.NO_SUCH_INSTANCE,
                                VarType.END_OF_MIB_VIEW):
                raise ValueError(f"cannot stage {vb.oid} = {vb.type}")
            self._candidate.pop(numeric.oid, None)  # keep the order of the latest load
            self._candidate[numeric.oid] = numeric

    @property
    def candidate(self) -> list[Varbind]:
        """The staged varbinds, in the order they will be sent."""
        return list(self._candidate.values())

    def _row_status(self, oid: str) -> bool:
        return self.client.resolver.is_row_status(oid)

    async def _pending(self) -> list[tuple[Varbind, Varbind]]:
        """(wanted, current) for every staged varbind the device does not yet satisfy."""
        wanted = self.candidate
        if not wanted:
            return []
        current = await self._require().get(*(vb.oid for vb in wanted))
        return [(w, c) for w, c in zip(wanted, current, strict=True)
                if not satisfied(w, c, row_status=self._row_status(w.oid))]

    def _line(self, want: Varbind, have: Varbind) -> str:
        name = self.client.resolver.name_of(want.oid)
        label = want.oid if name == want.oid else f"{want.oid} ({name})"
        new = describe(want)
        if self._row_status(want.oid) and isinstance(want.value, int) and \
                RowStatus.ACTIVE <= want.value <= RowStatus.DESTROY:
            new += f" ({ROW_STATUS_NAMES[RowStatus(want.value)]})"
        return f"{label}: {describe(have)} -> {new}"

    async def compare(self) -> Diff:
        """``oid (name): current -> new`` for each staged varbind that would change
        something; instances the device lacks are shown as ``absent``."""
        return Diff(tuple(self._line(w, c) for w, c in await self._pending()))

    async def commit(self, *, confirm_timeout: float | None = None) -> CommitResult:
        """Read the staged OIDs, SET the ones that differ in ONE PDU, read back and verify.

        Nothing differs: nothing is sent (``changed=False``), so re-running a commit is
        safe. The SET refused: SnmpRejectedError with the agent's error-status and index,
        and (one PDU, atomic) nothing changed. Read-back differs: RejectedError naming the
        OIDs; the change was made, so ``rollback()`` can undo it.
        """
        if confirm_timeout is not None:
            raise self._unsupported("commit with a confirm timeout (no confirmed commit)")
        async with self._lock:
            return await self._commit()

    async def _commit(self) -> CommitResult:
        client = self._require()
        pending = await self._pending()
        if not pending:
            self._candidate.clear()
            return CommitResult(changed=False)
        rows = await self._rows_to_remember(pending)
        previous, self._undo = self._undo, _Undo(tuple(pending), rows)
        try:
            await client.set([w for w, _ in pending])
        except RejectedError:
            self._undo = previous  # refused: one PDU, so nothing changed
            raise
        # Any other failure (no answer) leaves it unknown whether the SET applied: keep
        # what rollback needs in case it did.
        staged = self.candidate
        self._candidate.clear()
        await self._verify(staged, "commit")
        return CommitResult(changed=True)

    async def _rows_to_remember(self, pending: list[tuple[Varbind, Varbind]]
                                ) -> dict[str, tuple[Varbind, ...]]:
        """Before destroying rows, read their writable columns so rollback can recreate
        them."""
        rows: dict[str, tuple[Varbind, ...]] = {}
        resolver = self.client.resolver
        for want, have in pending:
            if not (self._row_status(want.oid) and want.value == RowStatus.DESTROY
                    and not have.missing):
                continue
            found = resolver.column_of(want.oid)
            assert found is not None
            status, index = found
            entry = status.oid.rpartition(".")[0]
            columns = [f"{c.oid}.{index}" for c in resolver.columns(entry)
                       if c.writable and c.oid != status.oid]
            got = await self.client.get(*columns) if columns else []
            rows[want.oid] = tuple(vb for vb in got if not vb.missing)
        return rows

    async def _verify(self, wanted: list[Varbind], what: str) -> None:
        if not wanted:
            return
        current = await self.client.get(*(vb.oid for vb in wanted))
        wrong = [self._line(w, c) for w, c in zip(wanted, current, strict=True)
                 if not satisfied(w, c, row_status=self._row_status(w.oid))]
        if wrong:
            raise MismatchError(f"{what} read back different values: " + "; ".join(wrong),
                                host=self.host)

    async def confirm(self) -> None:
        """UnsupportedError: SNMP has no confirmed commit."""
        raise self._unsupported("confirm a commit (no confirmed commit)")

    async def discard(self) -> None:
        """Drop the staged varbinds (nothing was sent)."""
        self._candidate.clear()

    async def rollback(self) -> None:
        """SET back, in one PDU, what the last commit changed (best-effort; see the module
        docstring) and verify it. Nothing committed: nothing to do."""
        async with self._lock:
            await self._rollback()

    async def _rollback(self) -> None:
        client = self._require()
        if self._undo is None:
            return
        restore = self._restore_plan(self._undo)
        if restore:
            await client.set(restore)
        self._undo = None
        await self._verify(restore, "rollback")

    def _restore_plan(self, undo: _Undo) -> list[Varbind]:
        resolver = self.client.resolver
        created: set[tuple[str, str]] = set()  # (entry, index) of rows the commit created
        for want, before in undo.changes:
            if (self._row_status(want.oid) and before.missing
                    and want.value in (RowStatus.CREATE_AND_GO, RowStatus.CREATE_AND_WAIT)):
                found = resolver.column_of(want.oid)
                assert found is not None
                created.add((found[0].oid.rpartition(".")[0], found[1]))
        plan: list[Varbind] = []
        for want, before in undo.changes:
            found = resolver.column_of(want.oid)
            row = (found[0].oid.rpartition(".")[0], found[1]) if found else None
            if row in created:
                if self._row_status(want.oid):
                    plan.append(Varbind(want.oid, VarType.INTEGER, int(RowStatus.DESTROY)))
                continue  # its other columns go with the row
            if self._row_status(want.oid) and want.value == RowStatus.DESTROY:
                plan += undo.rows.get(want.oid, ())
                plan.append(Varbind(want.oid, VarType.INTEGER, int(RowStatus.CREATE_AND_GO)))
                continue
            if before.missing:
                log.warning("%s: rollback cannot remove %s (it had no instance before)",
                            self.host, want.oid)
                continue
            plan.append(before)
        return plan

    # ---- events ------------------------------------------------------------------------
    def events(self) -> EventStream:
        """Traps and informs from this target's address (as resolved by ``connect``),
        through the receiver given to the constructor (UnsupportedError without one).
        Devices behind one address (NAT, or several simulated ones on 127.0.0.1) are not
        told apart."""
        if self.receiver is None:
            raise self._unsupported("send events without a trap receiver (none given)")
        address = self.client.address[0] if self.client.address else self.host
        return self.receiver.events(host=address)

