"""The NETCONF driver: the ``Driver`` contract over one ``NetconfSession``.

Every operation is build (``rpc``), await (``NetconfSession.rpc``), parse (``rpc.check`` and
``canon``). What the device can do is read from its hello:

- With ``:candidate`` a change is staged in the candidate datastore under locks on running and
  candidate (taken in that order, held from the first ``load_candidate`` to ``commit`` or
  ``discard``), so nobody else changes either in between; ``compare`` diffs candidate against
  running on the device; ``:confirmed-commit:1.1`` gives commits that revert by themselves,
  made ``persist`` so a confirmation still works after a reconnect.
- With only ``:writable-running`` (a residential gateway) the payload is kept here until
  ``commit`` writes it to running in one ``edit-config`` (all-or-nothing where the device
  offers ``:rollback-on-error``). ``compare`` then merges the payload into the running
  configuration locally, without a schema (``canon.merge``): a node with one instance is
  taken as a container, entries among several are matched by their first leaf (YANG's XML
  encoding puts keys first). Exact for containers, best-effort for lists; the gateway's
  configuration is containers and leaves.

``rollback`` cancels a pending confirmed commit, or writes back the running configuration read
just before the last commit: exact with a candidate and confirmed commit (the restore is one
transactional commit), best-effort without (anyone may have changed running since).

A request that times out leaves its outcome unknown; the driver then drops the session (its
locks go with it on the device) rather than keep one whose replies it no longer trusts.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from typing import Literal

from lxml import etree

from drivers.base import Capabilities, CommitResult, DeviceEvent, Diff, Driver, Snapshot
from drivers.errors import (
    DriverError,
    DriverTimeoutError,
    MismatchError,
    NetconfRejectedError,
    ProtocolError,
    SessionLostError,
)
from drivers.netconf import canon, framing, rpc
from drivers.netconf.session import DEFAULT_MAX_IN_FLIGHT, NetconfSession
from drivers.ssh_transport import SshTarget

log = logging.getLogger(__name__)

Source = Literal["running", "candidate", "startup"]


def _base_uri(cap: str) -> str:
    return cap.split("?", 1)[0]


def capabilities_from_hello(uris: Sequence[str]) -> Capabilities:
    """The contract's capabilities from a server's capability URIs."""
    base = {_base_uri(c) for c in uris}
    candidate = rpc.CANDIDATE in base
    confirmed = rpc.CONFIRMED_COMMIT in base
    return Capabilities(
        protocol="netconf",
        candidate=candidate,
        confirmed_commit=confirmed,
        validate=rpc.VALIDATE_11 in base or rpc.VALIDATE_10 in base,
        notifications=rpc.NOTIFICATION in base,
        transactions=candidate or rpc.ROLLBACK_ON_ERROR in base,
        locking=True,  # <lock> is a base operation (RFC 6241 7.5)
        rollback="exact" if candidate and confirmed else "best-effort",
        details=tuple(uris),
    )


class NetconfDriver(Driver[str]):
    """NETCONF over SSH. The payload is the XML text of ``<config>``'s content: one or more
    top-level elements, with or without a ``<config>`` wrapper.

    ``max_message`` bounds one received message (larger: ``ProtocolError``); ``base11=False``
    advertises base:1.0 only; ``poll_interval`` paces ``events()`` on devices without
    notifications; ``notification_backlog`` bounds notifications waiting for ``events()``;
    ``max_in_flight`` bounds pipelined requests on the session (further callers wait their
    turn within their timeout).
    """

    protocol = "netconf"

    def __init__(self, target: SshTarget, *, max_message: int = framing.DEFAULT_MAX_MESSAGE,
                 base11: bool = True, poll_interval: float = 30.0,
                 notification_backlog: int = 1024,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
                 persist_confirmed: bool = True, scoped_compare: bool = False) -> None:
        self.target = target
        # Compare reads only the entries the loaded payloads name (a subtree filter of their
        # list keys, see scope_filter) instead of both whole datastores: the cost of a
        # transaction then follows its payload, not the device's size. The diff covers those
        # entries only. Off by default: a caller that wants the whole picture gets it.
        self.scoped_compare = scoped_compare
        # Confirmed commits carry a persist token (confirmable from a later session, and the
        # device keeps waiting for it if this process dies), or none (the device reverts the
        # change as soon as the session that made it ends: a crash undoes it at once).
        self.persist_confirmed = persist_confirmed
        self.host = target.host
        self.timeout = target.timeout
        self.max_message = max_message
        self.base11 = base11
        self.poll_interval = poll_interval
        self.notification_backlog = notification_backlog
        self.max_in_flight = max_in_flight
        self._session: NetconfSession | None = None
        self._caps = Capabilities(protocol="netconf")
        self._uris: frozenset[str] = frozenset()  # capability URIs without parameters
        self._locked: list[rpc.Datastore] = []  # in the order taken
        self._in_transaction = False  # candidate: something loaded since the last commit
        self._staged: list[etree._Element] = []  # no candidate: the payload, kept here
        self._staged_replace = False
        self._before: list[etree._Element] | None = None  # running before the last commit
        self._persist: str | None = None  # token of our pending confirmed commit
        self._confirm_deadline: float | None = None  # set while one is pending
        # What compare read inside the current transaction (running, and whether the
        # candidate differs): with both datastores locked nothing else can change them, so
        # the commit that follows need not read them again. Dropped by every load and end.
        # (running as read, or None when the read was scoped; whether the candidate differs)
        self._compared: tuple[list[etree._Element] | None, bool] | None = None
        self._scope: list[etree._Element] = []  # what this transaction loaded (scoped compare)
        # Changes are a sequence of requests (lock, edit, commit, unlock); two at once on
        # one driver would interleave them. Reads need no such care.
        self._change_lock = asyncio.Lock()

    # ---- lifecycle ---------------------------------------------------------------------
    async def connect(self) -> None:
        """Open the SSH connection and the NETCONF session; no-op if already connected."""
        if self.connected:
            return
        if self._session is not None:  # ended under us: finish closing it first
            await self._abort(SessionLostError("reconnecting", host=self.host))
        self._session = await NetconfSession.open(
            self.target, max_message=self.max_message, base11=self.base11,
            notification_backlog=self.notification_backlog, max_in_flight=self.max_in_flight)
        self._caps = capabilities_from_hello(self._session.capabilities)
        self._uris = frozenset(_base_uri(c) for c in self._session.capabilities)
        # A new session starts with nothing staged or locked: the device dropped the old
        # session's locks and, with them, its candidate.
        self._forget_transaction()
        if self._confirm_deadline is not None and self._persist is None:
            # A confirmed commit without a persist token ended with its session: the device
            # reverted it; there is nothing left to confirm or cancel.
            self._confirm_deadline = None

    async def close(self) -> None:
        """``<close-session>`` (bounded), then close the connection. Idempotent."""
        session, self._session = self._session, None
        self._forget_transaction()
        if session is not None:
            await session.close(self.timeout)

    async def _abort(self, error: DriverError) -> None:
        session, self._session = self._session, None
        self._forget_transaction()
        if session is not None:
            await session.abort(error, self.timeout)

    def _forget_transaction(self) -> None:
        self._compared = None
        self._scope = []
        self._locked = []
        self._in_transaction = False
        self._staged = []
        self._staged_replace = False

    @property
    def connected(self) -> bool:
        """True while the NETCONF session is open."""
        return self._session is not None and self._session.is_open

    @property
    def capabilities(self) -> Capabilities:
        """What the device's hello offers (all False before ``connect``)."""
        return self._caps

    @property
    def session_id(self) -> int | None:
        """The device's id for this session (e.g. to name it in ``kill_session``)."""
        return self._session.session_id if self._session is not None else None

    @property
    def framing(self) -> framing.Framing | None:
        """"1.1" (chunked) or "1.0" (end-of-message), once connected."""
        return self._session.framing if self._session is not None else None

    @property
    def persist_id(self) -> str | None:
        """The token of this driver's pending confirmed commit (store it to confirm or cancel
        from another process; see ``adopt_confirmed_commit``)."""
        return self._persist

    def adopt_confirmed_commit(self, persist_id: str, before: str | None = None) -> None:
        """Take over a pending confirmed commit made elsewhere (e.g. before a restart), so
        ``confirm`` and ``rollback`` act on it. ``before``: the configuration it replaced."""
        self._persist = rpc.token(persist_id)
        self._confirm_deadline = time.time()  # unknown: the device knows
        if before is not None:
            self._before = rpc.parse_fragment(before)

    # ---- requests ----------------------------------------------------------------------
    def _require(self) -> NetconfSession:
        session = self._session
        if session is None:
            raise SessionLostError("not connected", host=self.host)
        return session

    async def call(self, build: rpc.Builder, *,
                   timeout: float | None = None) -> rpc.Reply:  # noqa: ASYNC109
        """Send one request built by a ``drivers.netconf.rpc`` builder and return its reply;
        ``NetconfRejectedError`` if the device answers with rpc-errors."""
        session = self._require()
        try:
            reply = await session.rpc(build, timeout=timeout or self.timeout)
        except DriverTimeoutError as exc:
            # The outcome is unknown and a late reply may still change things: drop the
            # session (the device releases its locks) rather than keep one we cannot trust.
            if self._session is session:
                await self._abort(SessionLostError(
                    f"session dropped after a timeout ({exc.message})", host=self.host))
            raise
        except (SessionLostError, ProtocolError) as exc:
            if self._session is session:  # already ended by the reader: tidy up
                await self._abort(exc)
            raise
        for w in reply.warnings:
            log.info("%s: device warning %s: %s", self.host, w.tag, w.message)
        return rpc.check(reply, self.host)

    async def _read(self, source: Source | Literal["state"],
                    filter: str | None = None) -> list[etree._Element]:
        build = rpc.get(filter) if source == "state" else rpc.get_config(source, filter)
        reply = await self.call(build)
        if reply.data is None:
            raise ProtocolError("reply without <data>", host=self.host)
        return reply.data_children()

    async def kill_session(self, session_id: int) -> None:
        """``<kill-session>``: end another session on the device (its locks go with it)."""
        await self.call(rpc.kill_session(session_id))

    # ---- reading -----------------------------------------------------------------------
    async def get_config(self, filter: str | None = None,
                         source: Source = "running") -> Snapshot[str]:
        """A datastore's content (``filter``: subtree filter XML) as XML text."""
        return Snapshot(rpc.serialise(await self._read(source, filter)), source)

    async def get_state(self, filter: str | None = None) -> Snapshot[str]:
        """``<get>``: configuration and operational state (``filter``: subtree filter XML)."""
        return Snapshot(rpc.serialise(await self._read("state", filter)), "state")

    # ---- changing ----------------------------------------------------------------------
    async def load_candidate(self, payload: str, *, replace: bool = False) -> None:
        """Stage ``payload`` (merged, or replacing the whole configuration with ``replace``).

        With a candidate: the first load of a transaction locks running and candidate,
        resets the candidate to running, then every load is an edit-config into it,
        validated where the device offers ``:validate``. If the device refuses a load, the
        whole staged change is discarded and the locks released: nothing half-built stays.
        Without a candidate the payload is only checked for well-formedness and kept.

        Raises ``ValueError`` for a payload that is not well-formed XML elements, and
        ``NetconfLockDeniedError`` if another session holds a lock.
        """
        elements = rpc.parse_fragment(payload)
        if not elements:
            raise ValueError("empty payload: nothing to load")
        async with self._change_lock:
            await self._load(elements, replace)

    async def _load(self, elements: list[etree._Element], replace: bool) -> None:
        self._require()
        if not self._caps.candidate:
            if replace:
                self._staged, self._staged_replace = [], True
            self._staged.extend(elements)
            return
        if not self._in_transaction:
            await self._begin()
            self._scope = []
        self._compared = None
        self._scope.extend(elements)
        try:
            if replace:
                # Not every device deletes the top-level nodes a replace does not name.
                elements = _with_removals(elements, await self._read("candidate"))
            await self.call(rpc.edit_config(elements, "candidate",
                                            default_operation="replace" if replace else "merge"))
            if self._caps.validate:
                await self.call(rpc.validate("candidate"))
        except NetconfRejectedError:
            await self._end_transaction(discard=True)
            raise
        self._in_transaction = True

    async def _lock(self, datastore: rpc.Datastore) -> None:
        await self.call(rpc.lock(datastore))
        self._locked.append(datastore)

    async def _begin(self) -> None:
        """Lock running then candidate, and start the candidate from running.

        Running first: whoever holds it is making a change, so we learn of a conflict before
        touching anything. The candidate is reset between the two locks because a device
        refuses to lock a candidate that holds someone's uncommitted changes.
        """
        try:
            await self._lock("running")
            await self.call(rpc.discard_changes())
            await self._lock("candidate")
        except NetconfRejectedError:
            await self._release()
            raise
        self._in_transaction = True

    async def _release(self) -> None:
        """Unlock what we locked, in reverse order; a failed unlock is logged, not raised."""
        while self._locked:
            datastore = self._locked.pop()
            if not self.connected:
                continue  # the device released it with the session
            try:
                await self.call(rpc.unlock(datastore))
            except NetconfRejectedError as exc:
                log.warning("%s: unlock %s failed: %s", self.host, datastore, exc.message)

    async def _end_transaction(self, *, discard: bool) -> None:
        self._compared = None
        self._scope = []
        try:
            if discard and self.connected:
                await self.call(rpc.discard_changes())
        finally:
            self._in_transaction = False
            await self._release()

    async def compare(self) -> Diff:
        """The unified diff from running to what ``commit`` would make of it.

        With a candidate both datastores are read from the device. Without one, the staged
        payload is merged into running here (see ``canon.merge``: best-effort for lists whose
        entries differ only in a second key).
        """
        if self._caps.candidate:
            scope = scope_filter(self._scope) if self.scoped_compare else None
            running, candidate = await asyncio.gather(self._read("running", scope),
                                                      self._read("candidate", scope))
            lines_now = canon.canonical_lines(running)
            lines_then = canon.canonical_lines(candidate)
            if self._in_transaction and self._locked:
                self._compared = (None if scope is not None else running,
                                  lines_now != lines_then)
            return Diff(canon.unified_diff(lines_now, lines_then))
        running = await self._read("running")
        if not self._staged:
            return Diff(())
        after = canon.merge(running, self._staged, replace=self._staged_replace)
        return Diff(canon.unified_diff(canon.canonical_lines(running),
                                       canon.canonical_lines(after), after_name="payload"))

    async def commit(self, *, confirm_timeout: float | None = None) -> CommitResult:
        """Apply what was loaded. ``confirm_timeout`` (seconds, rounded up to whole seconds):
        a confirmed commit that the device reverts unless ``confirm`` follows in time;
        ``UnsupportedError`` without ``:confirmed-commit:1.1``.

        A commit with nothing loaded changes nothing and sends nothing. A refused commit
        keeps the change staged (and locked) for ``discard`` or another try.
        """
        if confirm_timeout is not None:
            if not self._caps.confirmed_commit:
                raise self._unsupported("commit with a confirm timeout (no "
                                        ":confirmed-commit:1.1)")
            if confirm_timeout <= 0:
                raise ValueError("confirm_timeout must be positive")
        self._require()
        async with self._change_lock:
            if self._caps.candidate:
                return await self._commit_candidate(confirm_timeout)
            return await self._commit_running()

    async def _commit_candidate(self, confirm_timeout: float | None) -> CommitResult:
        if not self._in_transaction:
            return CommitResult(changed=False)
        cached = self._compared
        running: list[etree._Element] | None
        if cached is not None and (cached[0] is not None or confirm_timeout is not None):
            # A scoped compare read no whole "before": a confirmed commit is undone by
            # cancel-commit and needs none; a plain one reads it below (for rollback).
            running, changed = cached
        else:
            full, candidate = await asyncio.gather(self._read("running"),
                                                   self._read("candidate"))
            changed = canon.canonical_lines(full) != canon.canonical_lines(candidate)
            running = full
        pending = self._persist
        was_pending = self._confirm_deadline is not None
        if confirm_timeout is None:
            # A plain commit also confirms our own pending confirmed commit, if any.
            await self.call(rpc.commit(persist_id=pending))
            result = CommitResult(changed=changed)
            self._persist, self._confirm_deadline = None, None
        else:
            seconds = max(1, math.ceil(confirm_timeout))
            persist = secrets.token_hex(16) if self.persist_confirmed else None
            await self.call(rpc.commit(confirmed=True, confirm_timeout=seconds,
                                       persist=persist, persist_id=pending))
            self._persist = persist
            self._confirm_deadline = time.time() + seconds
            result = CommitResult(changed=changed, confirm_pending=True,
                                  confirm_deadline=self._confirm_deadline)
        if not was_pending:
            # Following up a confirmed commit keeps the configuration from before it.
            self._before = running
        await self._end_transaction(discard=False)
        return result

    async def _commit_running(self) -> CommitResult:
        if not self._staged:
            return CommitResult(changed=False)
        error_option: rpc.ErrorOption | None = (
            "rollback-on-error" if rpc.ROLLBACK_ON_ERROR in self._uris else None)
        await self._lock("running")
        try:
            before = await self._read("running")
            staged = _with_removals(self._staged, before) if self._staged_replace \
                else self._staged
            await self.call(rpc.edit_config(
                staged, "running",
                default_operation="replace" if self._staged_replace else "merge",
                error_option=error_option))
            self._staged, self._staged_replace = [], False
            self._before = before
            after = await self._read("running")
        finally:
            await self._release()
        return CommitResult(changed=canon.canonical_lines(before)
                            != canon.canonical_lines(after))

    async def confirm(self) -> None:
        """Confirm our pending confirmed commit (``<commit><persist-id>``).

        ``NetconfRejectedError`` if the device no longer has it (its timeout expired and it
        rolled back); ``DriverError`` if this driver made none.
        """
        if not self._caps.confirmed_commit:
            raise self._unsupported("confirm a commit (no :confirmed-commit:1.1)")
        async with self._change_lock:
            if self._confirm_deadline is None:
                raise DriverError("no confirmed commit is pending on this driver",
                                  host=self.host)
            try:
                await self.call(rpc.commit(persist_id=self._persist))
            finally:
                # Confirmed, or refused because the device no longer has it: either way
                # there is nothing left to confirm (a lost session keeps the token).
                if self.connected:
                    self._persist, self._confirm_deadline = None, None

    async def discard(self) -> None:
        """Drop what was loaded (discard-changes and release the locks, with a candidate)."""
        async with self._change_lock:
            await self._discard()

    async def _discard(self) -> None:
        if self._caps.candidate:
            if self._in_transaction or self._locked:
                await self._end_transaction(discard=True)
            return
        self._staged, self._staged_replace = [], False

    async def rollback(self) -> None:
        """Undo the last commit made through this driver.

        A pending confirmed commit is cancelled (``<cancel-commit>``); if the device already
        reverted it, that is success. Otherwise the running configuration read before the
        last commit is written back with default-operation replace (through the candidate
        and one commit where there is one), top-level containers added since removed, and
        read back (``MismatchError`` if the device holds something else afterwards).
        Anything staged is discarded first. ``DriverError`` if there is nothing to undo.
        """
        async with self._change_lock:
            await self._discard()
            if self._confirm_deadline is not None:
                await self._cancel_commit(self._persist)
                return
            before = self._before
            if before is None:
                raise DriverError("nothing to roll back: no commit was made through this "
                                  "driver", host=self.host)
            await self._restore(before)
            self._before = None

    async def _cancel_commit(self, persist: str | None) -> None:
        try:
            await self.call(rpc.cancel_commit(persist_id=persist))
        except NetconfRejectedError:
            # Either the device already reverted (timeout) or it refuses; only the former
            # counts as rolled back, and only if running is what it was before.
            before = self._before
            self._persist, self._confirm_deadline = None, None
            if before is None or canon.canonical_lines(await self._read("running")) \
                    != canon.canonical_lines(before):
                raise
        self._persist, self._confirm_deadline = None, None
        self._before = None

    async def _restore(self, before: list[etree._Element]) -> None:
        """Write ``before`` back as the whole running configuration, then read it back:
        ``MismatchError`` if the device now holds something else."""
        if self._caps.candidate:
            await self._begin()
            try:
                now = await self._read("running")
                await self.call(rpc.edit_config(_with_removals(before, now), "candidate",
                                                default_operation="replace"))
                await self.call(rpc.commit())
                after = await self._read("running")
            except NetconfRejectedError:
                await self._end_transaction(discard=True)
                raise
            await self._end_transaction(discard=False)
        else:
            error_option: rpc.ErrorOption | None = (
                "rollback-on-error" if rpc.ROLLBACK_ON_ERROR in self._uris else None)
            await self._lock("running")
            try:
                now = await self._read("running")
                await self.call(rpc.edit_config(_with_removals(before, now), "running",
                                                default_operation="replace",
                                                error_option=error_option))
                after = await self._read("running")
            finally:
                await self._release()
        diff = canon.unified_diff(canon.canonical_lines(before), canon.canonical_lines(after),
                                  before_name="saved", after_name="running")
        if diff:
            shown = "\n".join(diff[:12])
            raise MismatchError(f"rollback was accepted but running differs from the saved "
                                f"configuration:\n{shown}", host=self.host)

    # ---- events ------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[DeviceEvent]:
        """Notifications as ``DeviceEvent``s (kind: the event element's local name, fields:
        its leaves). Subscribes once per session. Ends when the driver is closed; raises
        ``SessionLostError`` if the session is lost.

        On a device without ``:notification`` the running configuration is polled every
        ``poll_interval`` seconds instead and a change yields a ``poll-changed`` event.
        """
        session = self._require()
        if not self._caps.notifications:
            async for event in self._poll():
                yield event
            return
        if not session.subscribed:
            await self.call(rpc.create_subscription())
            session.subscribed = True
        while True:
            note = await session.next_notification()
            if note is None:
                return
            yield DeviceEvent(kind=note.kind, host=self.host, fields=dict(note.fields),
                              raw=note.raw)

    async def _poll(self) -> AsyncIterator[DeviceEvent]:
        session = self._require()
        last: list[str] | None = None
        while True:
            try:
                config = await self._read("running")
            except DriverError:
                if session.closed_by_us:
                    return
                raise
            lines = canon.canonical_lines(config)
            if last is not None and lines != last:
                yield DeviceEvent(kind="poll-changed", host=self.host,
                                  fields={"source": "running"},
                                  raw=rpc.serialise(config))
            last = lines
            await asyncio.sleep(self.poll_interval)
            if self._session is not session:
                return


_KEYS = ("name", "from-interface")  # list keys of the models the agent's payloads use


def scope_filter(elements: Sequence[etree._Element]) -> str | None:
    """A subtree filter that selects the list entries ``elements`` name (None: everything).

    Each element is kept as a containment node; a list entry (an element with a ``name`` or
    ``from-interface`` child) is reduced to that key as a content-match node, which selects the
    whole entry on the device. A container whose children all drop out selects its whole
    subtree, so the filter never selects less than the payload touches.
    """

    def project(el: etree._Element) -> etree._Element | None:
        if not isinstance(el.tag, str):
            return None
        out = etree.Element(el.tag)
        children = [c for c in el if isinstance(c.tag, str)]
        key = next((c for c in children if etree.QName(c).localname in _KEYS
                    and len(c) == 0 and (c.text or "").strip()), None)
        if key is not None:
            leaf = etree.SubElement(out, key.tag)
            leaf.text = (key.text or "").strip()
            return out
        for child in children:
            if len(child):
                sub = project(child)
                if sub is not None:
                    out.append(sub)
        return out

    nodes = [n for n in (project(e) for e in elements) if n is not None]
    if not nodes:
        return None
    return "".join(etree.tostring(n, encoding="unicode") for n in nodes)


def _with_removals(before: list[etree._Element],
                   now: list[etree._Element]) -> list[etree._Element]:
    """``before`` plus a ``remove`` for each top-level node that exists ``now`` but not in
    ``before``. RFC 6241 has default-operation replace swap the whole datastore, but some
    devices (the simulator among them) replace only the nodes they are given; the explicit
    removes make both kinds end up with exactly ``before``."""
    kept = {str(e.tag) for e in before}
    out = list(before)
    for el in now:
        tag = str(el.tag)
        if tag not in kept:
            kept.add(tag)
            q = etree.QName(el)
            ns = q.namespace or ""
            gone = etree.Element(tag, nsmap={None: ns, "nc": rpc.NC})  # type: ignore[dict-item]
            gone.set(f"{{{rpc.NC}}}operation", "remove")
            out.append(gone)
    return out
