"""The provisioning engine: orders -> intents -> pushes -> configured services.

:class:`Engine` ties the store (facts, durable push records, history), the catalog (VLANs,
uplinks, bandwidth profiles), the settings (devices, credentials, limits) and the push engine
(:mod:`agent.push`) together:

* :meth:`Engine.reconcile` computes an order's status from the store's facts
  (:func:`agent.status.compute_status`) and, if the order is ready, builds its intents
  (:class:`agent.intent.OntIntent` from the ONT's inventory record and its allocated onu-id;
  :class:`agent.intent.ServiceIntent` from the catalog and the allocated GEM port/alloc-id),
  records the push (``begin_push``) *before* the device side effect, submits it to the OLT's
  :class:`agent.push.OltQueue`, and records the classified result (``advance_push``,
  ``finish_push``) *after* it. A terminated order (removal requested) gets its removal pushed
  and is marked removed once the device holds no trace of it.
* Every change of an order's status (or error class) is appended to its history
  (``record_order_event``): the status, the error class and the actionable message.
* Failures are not retried blindly: a connection error waits for the ONT (:meth:`on_ont_seen`,
  the discovery hook) or for an explicit :meth:`resend`; configuration missing and refusals
  wait for someone to fix something and resend.
* :meth:`resume` re-runs the pushes a crash left pending; pushes are idempotent and verified by
  reading back, so a replay changes nothing on the device and creates no duplicate.
* A scheduler task activates orders when their start date arrives (it sleeps until the next
  start date, at most ``max_sleep`` seconds, and is cancelled on exit).
* :meth:`audit` dry-runs every active order of an OLT; a non-empty diff is recorded as a
  ``mismatch`` (a failed push record carrying the diff, so the order's status shows it) and,
  if ``settings.heal_mismatches``, healed by a resend.

Use as ``async with Engine(store, catalog, settings) as engine: ...``; the daemon calls
:meth:`resume` right after entering.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Self

from agent.catalog import Catalog, Resolved
from agent.connect import DriverFactory, driver_factory
from agent.errors import Classified, classify
from agent.errors import ErrorClass as DriverErrorClass
from agent.gateways import GatewayWriter
from agent.intent import NAME, IntentError, OntIntent, ServiceIntent
from agent.lines import LineStore
from agent.profiles import Profile, load_profile
from agent.push import (
    CONFIRM_TIMEOUT,
    OltQueue,
    Outcome,
    PushJob,
    PushResult,
    RetryPolicy,
    Stage,
    with_retries,
)
from agent.render import Payload, RenderError, render, render_removal, render_service
from agent.settings import Device, Settings, SettingsError
from agent.status import ErrorClass, OrderFacts, OrderStatus, Status, compute_status
from agent.store import (
    AllocationExhausted,
    Conflict,
    InvalidValue,
    NotFound,
    OntState,
    Order,
    Push,
    PushAction,
    PushPhase,
    Store,
)
from drivers.base import Driver
from drivers.errors import DriverError

log = logging.getLogger(__name__)

RESUME_CONCURRENCY = 256  # orders resumed at once after a restart (see Engine.resume)
_DESCRIPTION_DROP = re.compile(r"[^A-Za-z0-9 ,.:/()_#@+-]")
_HISTORY_STATUSES = frozenset(s.value for s in Status)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def service_name(order_id: str, service_type: str) -> str:
    """A stable, device-safe service name for an order: ``<order id>-<service type>`` when that
    is a valid name, else ``svc-`` and a digest of the order id (same order, same name)."""
    name = f"{order_id}-{service_type}"
    if NAME.fullmatch(name):
        return name
    return "svc-" + hashlib.sha256(order_id.encode()).hexdigest()[:24]


def description_of(address: str) -> str:
    """The object's address as an ONT description: only characters no payload can misread."""
    return " ".join(_DESCRIPTION_DROP.sub("", address).split())[:64].strip()


def payload_text(payload: Payload) -> str:
    if isinstance(payload, str):
        return payload
    return "\n".join(str(x) for x in payload)


def digest(payload: Payload) -> str:
    return "sha256:" + hashlib.sha256(payload_text(payload).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Plan:
    """What one order needs on its OLT."""

    order: Order
    device: Device
    profile: Profile
    ont: OntIntent
    service: ServiceIntent


@dataclass(frozen=True, slots=True)
class AuditFinding:
    """One active order whose configuration differs on the device (``diff``: device vs
    intent), or could not be checked (``error``)."""

    order_id: str
    diff: str = ""
    error: str = ""
    healed: bool = False


@dataclass(frozen=True, slots=True)
class OrderChange:
    """What :meth:`Engine.change` did: ``order_id`` carries the service now (a successor
    when ``replaced``, else the changed order itself), with its status after reconciling;
    ``previous_status``: the replaced order's, after its removal was pushed."""

    order_id: str
    previous_id: str
    replaced: bool
    status: OrderStatus
    previous_status: OrderStatus | None = None


class ChangeRefused(InvalidValue):
    """A change to an ISP/service type the catalog cannot provision; ``field`` names the
    request field at fault (``isp`` or ``service_type``). Nothing was written."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class _NotReady(Exception):
    """The order cannot be planned: ``error_class`` and an actionable message."""

    def __init__(self, error_class: ErrorClass, message: str) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.message = message


def _status_class(c: DriverErrorClass) -> ErrorClass:
    return ErrorClass(c.value)


class Engine:
    """Turns orders into configured services (see the module docstring)."""

    def __init__(self, store: Store, catalog: Catalog, settings: Settings, *,
                 clock: Callable[[], datetime] = _utcnow,
                 profiles: Callable[[str], Profile] = load_profile,
                 environ: Mapping[str, str] | None = None,
                 retry: RetryPolicy | None = None, verify_timeout: float = 10.0,
                 confirm_timeout: float | None = CONFIRM_TIMEOUT, batch_window: float = 0.0,
                 schedule: bool = True, max_sleep: float = 60.0,
                 gateway_retry: float = 60.0) -> None:
        self.store = store
        self.catalog = catalog
        self.settings = settings
        self.clock = clock
        self.profiles = profiles
        self.environ = environ
        self.retry = retry or RetryPolicy()
        self.verify_timeout = verify_timeout
        # Confirmed commits (where the OLT has them) without a persist token
        # (agent.connect): an agent killed between commit and confirm leaves nothing pending
        # on the OLT, because the device reverts the change when the session drops; the push's
        # record is still pending, so the restarted agent re-runs it idempotently.
        self.confirm_timeout = confirm_timeout
        self.batch_window = batch_window
        self.schedule = schedule
        self.max_sleep = max_sleep
        self.limiter = asyncio.Semaphore(settings.max_concurrent_pushes)
        self._profiles: dict[str, Profile] = {}
        self._factories: dict[str, DriverFactory] = {}
        self._queues: dict[str, OltQueue] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._scheduler: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self.lines = LineStore(store)
        self.gateways = GatewayWriter(self.lines, settings, limiter=self.limiter,
                                      profiles=profiles, environ=environ,
                                      retry_interval=gateway_retry,
                                      confirm_timeout=confirm_timeout)

    # ---- lifecycle -------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    async def start(self) -> None:
        """Open one push queue per configured OLT; start the activation scheduler."""
        for device in self.settings.devices:
            if device.kind != "olt" or device.name in self._queues:
                continue
            profile = self.profiles(device.profile)
            factory = driver_factory(device, profile, self.environ)
            queue = OltQueue(factory, profile, concurrency=device.concurrency,
                             batch_window=self.batch_window, retry=self.retry,
                             limiter=self.limiter, confirm_timeout=self.confirm_timeout,
                             verify_timeout=self.verify_timeout)
            queue.start()
            self._profiles[device.name] = profile
            self._factories[device.name] = factory
            self._queues[device.name] = queue
        if self.schedule and self._scheduler is None:
            self._scheduler = asyncio.create_task(self._schedule(), name="activation-scheduler")
        await self.gateways.start()

    async def close(self) -> None:
        """Stop the scheduler and the queues (pushes in flight stay pending: resume them)."""
        await self.gateways.close()
        if self._scheduler is not None:
            self._scheduler.cancel()
            try:
                await self._scheduler
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # close() itself is being cancelled: do not swallow that
            self._scheduler = None
        for queue in self._queues.values():
            await queue.close()
        self._queues.clear()

    def wake(self) -> None:
        """Tell the scheduler to look at the orders now (e.g. after an order was created)."""
        self._wake.set()

    def queue(self, olt: str) -> OltQueue:
        try:
            return self._queues[olt]
        except KeyError:
            raise SettingsError(f"OLT {olt!r} is not a configured device (or the engine is "
                                f"not started)") from None

    def _lock(self, order_id: str) -> asyncio.Lock:
        return self._locks.setdefault(order_id, asyncio.Lock())

    # ---- status and history ----------------------------------------------------------------
    async def status(self, order_id: str) -> OrderStatus:
        """The order's status, computed from the store's facts now."""
        facts = await self.store.order_facts(order_id, self.catalog)
        return compute_status(facts, self.clock())

    async def _note(self, order_id: str) -> OrderStatus:
        """Compute the status; append it to the history if it (or its error class) changed."""
        return (await self._note_facts(order_id))[0]

    async def _note_facts(self, order_id: str) -> tuple[OrderStatus, OrderFacts]:
        """:meth:`_note`, and the facts the status was computed from."""
        facts = await self.store.order_facts(order_id, self.catalog)
        st = compute_status(facts, self.clock())
        last = await self.store.last_status_event(order_id, _HISTORY_STATUSES)
        if last is None or (last.status, last.error_class) != (st.status.value, st.error_class):
            await self.store.record_order_event(order_id, st.status.value, st.message,
                                                st.error_class)
        return st, facts

    # ---- planning ----------------------------------------------------------------------------
    async def plan(self, order_id: str) -> Plan:
        """The intents of an order whose prerequisites are met (raises _NotReady otherwise)."""
        order = await self.store.get_order(order_id)
        if order is None:
            raise NotFound(f"order {order_id} does not exist")
        binding = await self.store.binding_of_object(order.object_id)
        ont = None if binding is None else await self.store.get_ont(binding.serial)
        if ont is None:
            raise _NotReady(ErrorClass.CONFIGURATION_MISSING,
                            f"order {order_id}: no known ONT bound to object {order.object_id!r}")
        resolved = self.catalog.resolve(order.isp, order.service_type, ont.olt)
        if not isinstance(resolved, Resolved):
            raise _NotReady(ErrorClass.CONFIGURATION_MISSING,
                            "; ".join(m.message for m in resolved))
        try:
            device = self.settings.device(ont.olt)
        except KeyError:
            raise _NotReady(ErrorClass.CONFIGURATION_MISSING,
                            f"OLT {ont.olt!r} of ONT {ont.serial} is not a configured device "
                            f"in the agent's settings") from None
        profile = self._profiles.get(device.name) or self.profiles(device.profile)
        if order.removal_requested_at is None and order.cancelled_at is None:
            await self._check_uni_free(order, ont.serial, resolved.uni)
        try:
            alloc = await self.store.allocate(ont.olt, ont.pon_port, ont.serial)
            svc_alloc = await self.store.allocate_service(order.id, ont.olt)
        except (Conflict, AllocationExhausted) as exc:
            raise _NotReady(ErrorClass.CONFIGURATION_MISSING, str(exc)) from None
        obj = await self.store.get_object(order.object_id)
        try:
            ont_intent = OntIntent(ont.olt, ont.serial, ont.pon_port, alloc.onu_id,
                                   description_of(obj.address if obj is not None else ""))
            svc = ServiceIntent(service_name(order.id, order.service_type), ont_intent,
                                uni=resolved.uni, c_vlan=resolved.c_vlan, s_vlan=resolved.s_vlan,
                                uplink=resolved.uplink, profile=resolved.profile,
                                gemport_id=svc_alloc.gemport, alloc_id=svc_alloc.alloc_id)
        except IntentError as exc:
            raise _NotReady(ErrorClass.CONFIGURATION_MISSING, str(exc)) from None
        return Plan(order, device, profile, ont_intent, svc)

    async def _check_uni_free(self, order: Order, serial: str, uni: int) -> None:
        """Refuse a second service on one UNI of an ONT: every shipped OLT profile keys a
        service's entries (UNI interface, v-enet, GEM port name, SNMP service row, CLI
        service-port and native VLAN) by its UNI, so two services there would overwrite each
        other. The earlier order keeps the UNI; an order being removed holds it until its
        removal is verified (the removal takes the UNI's shared entries with it), which is what
        makes a change of service on the same UNI remove first, then apply."""
        for other in await self.store.list_orders(object_id=order.object_id, open_only=True):
            if other.id == order.id:
                continue
            spec = self.catalog.spec.service_types.get(other.service_type)
            if spec is None or spec.uni != uni:
                continue
            if (other.created_at, other.id) < (order.created_at, order.id):
                raise _NotReady(ErrorClass.CONFIGURATION_MISSING,
                                f"order {order.id}: UNI {uni} of ONT {serial} already carries "
                                f"order {other.id} ({other.isp} {other.service_type}"
                                f"{', being removed' if other.removal_requested_at else ''});"
                                f" the catalog puts service type {order.service_type!r} on the "
                                f"same UNI: give it another UNI, or change or terminate order "
                                f"{other.id}")

    # ---- pushes ------------------------------------------------------------------------------
    async def _record_result(self, push_id: int, result: PushResult) -> None:
        if result.outcome is Outcome.APPLIED:
            await self.store.advance_push(push_id, PushPhase.COMMITTED, "committed")
            lines = len(result.diff.lines) if result.diff is not None else 0
            await self.store.finish_push(push_id, PushPhase.VERIFIED,
                                         message=f"applied ({lines} diff lines), read back equal")
        elif result.outcome is Outcome.UNCHANGED:
            await self.store.finish_push(push_id, PushPhase.VERIFIED,
                                         message="the device already held it, read back equal")
        else:
            error = result.error or Classified(DriverErrorClass.REJECTED,
                                               "the push failed without an error", False)
            phase = PushPhase.ROLLED_BACK if result.rolled_back else PushPhase.FAILED
            await self.store.finish_push(push_id, phase,
                                         error_class=_status_class(error.error_class),
                                         message=error.message)

    async def _apply(self, plan: Plan, push_id: int | None = None) -> PushResult:
        """Record, push through the OLT's queue, record the result (``push_id``: resume)."""
        try:
            # Only the digest is kept: the queue renders the batch again when it is taken, so
            # that an ONT waiting in the queue does not hold its payload (some 16 KB of XML
            # each; 160 MB for 10,000 ONTs arriving at once).
            rendered = digest(render(plan.profile, [plan.ont], [plan.service]))
        except RenderError as exc:
            rendered = "unrendered"
            render_error: str | None = str(exc)
        else:
            render_error = None
        if push_id is None:
            push_id = await self.store.begin_push(plan.device.name, rendered,
                                                  order_id=plan.order.id,
                                                  action=PushAction.APPLY)
            await self._note(plan.order.id)
        if render_error is not None:
            result = PushResult(Outcome.FAILED, None, None,
                                Classified(DriverErrorClass.CONFIGURATION_MISSING, render_error,
                                           False), stage=Stage.RENDER)
        else:
            job = PushJob([plan.ont], [plan.service])
            result = await self.queue(plan.device.name).submit(job)
        await self._record_result(push_id, result)
        return result

    async def _remove(self, plan: Plan, push_id: int | None = None) -> PushResult:
        """Remove the order's service (and its ONT registration if no other open order of the
        same object needs it), verified by reading back: the service's own rendering no
        longer matches what the device holds."""
        others = [o for o in await self.store.list_orders(object_id=plan.order.object_id,
                                                          open_only=True)
                  if o.id != plan.order.id and o.removal_requested_at is None]
        with_ont = not others
        payload: Payload | None = None
        render_error = ""
        try:
            payload = render_removal(plan.profile, plan.service, with_ont)
        except RenderError as exc:
            render_error = str(exc)
        if push_id is None:
            push_id = await self.store.begin_push(
                plan.device.name, digest(payload) if payload is not None else "unrendered",
                order_id=plan.order.id, action=PushAction.REMOVE)
            await self._note(plan.order.id)
        if payload is None:
            result = PushResult(Outcome.FAILED, None, None,
                                Classified(DriverErrorClass.CONFIGURATION_MISSING, render_error,
                                           False), stage=Stage.RENDER)
        else:
            removal = payload

            async def once() -> PushResult:
                async with self.limiter:
                    return await self._remove_once(plan, removal, with_ont)

            result = await with_retries(once, self.retry)
        await self._record_result(push_id, result)
        if result.ok:
            await self.store.mark_removed(plan.order.id, "service removed from OLT "
                                          f"{plan.device.name} and verified")
            await self.store.release_service(plan.order.id)
            if with_ont:
                await self.store.release(plan.ont.serial)
        return result

    async def _remove_once(self, plan: Plan, payload: Payload, with_ont: bool) -> PushResult:
        t0 = time.perf_counter()
        driver: Driver[Any] = self._factories[plan.device.name]()
        stage = Stage.CONNECT
        diff = None
        committed = False
        try:
            await driver.connect()
            stage = Stage.LOAD
            await driver.load_candidate(payload)
            diff = await driver.compare()
            if diff.empty:
                await driver.discard()
            else:
                stage = Stage.COMMIT
                caps = driver.capabilities
                commit = await driver.commit(
                    confirm_timeout=self.confirm_timeout if caps.confirmed_commit else None)
                committed = True
                if commit.confirm_pending:
                    stage = Stage.CONFIRM
                    await driver.confirm()
            # Read back: what the order had applied must no longer match the device.
            stage = Stage.VERIFY
            await driver.load_candidate(render(plan.profile, [plan.ont], [plan.service])
                                        if with_ont else
                                        render_service(plan.profile, plan.service))
            left = await driver.compare()
            await driver.discard()
            if left.empty:
                return PushResult(Outcome.FAILED, payload, diff, Classified(
                    DriverErrorClass.MISMATCH, f"the removal did not take: OLT "
                    f"{plan.device.name} still holds service {plan.service.name}", False),
                    time.perf_counter() - t0, Stage.VERIFY)
            return PushResult(Outcome.APPLIED if committed else Outcome.UNCHANGED, payload,
                              diff, seconds=time.perf_counter() - t0)
        except DriverError as exc:
            with contextlib.suppress(DriverError):
                await driver.discard()
            return PushResult(Outcome.FAILED, payload, diff, classify(exc),
                              time.perf_counter() - t0, stage)
        finally:
            with contextlib.suppress(DriverError):
                await driver.close()

    # ---- reconcile ----------------------------------------------------------------------------
    async def reconcile(self, order_id: str, *,
                        retry: Collection[ErrorClass] = ()) -> OrderStatus:
        """Bring one order forward as far as its facts allow; returns its status after.

        Pushes when the order is awaiting provisioning with no error (nothing pushed yet), or
        with an error class listed in ``retry``; a push in progress (left by a crash) is
        :meth:`resume`'s. Records every status change in the order's history.
        """
        async with self._lock(order_id):
            return await self._reconcile(order_id, retry, force=False)

    async def resend(self, order_id: str) -> OrderStatus:
        """Re-apply the order whatever its last result (mismatch, failure, or active: an
        idempotent resend that changes nothing). Does nothing while prerequisites are unmet,
        before the start date, or for a cancelled/terminated order."""
        async with self._lock(order_id):
            return await self._reconcile(order_id, (), force=True)

    async def change(self, order_id: str, *, isp: str | None = None,
                     service_type: str | None = None, reason: str = "") -> OrderChange:
        """Change an order's ISP and/or service type, and reconcile what that means.

        The new combination must resolve in the catalog (on the ONT's OLT, when the ONT is
        known) before anything is written: a change never takes a working service down for
        one that could not be provisioned (:class:`ChangeRefused`, naming the field).

        Then :meth:`agent.store.Store.change_order`: an order never pushed is updated in
        place and reconciled. A pushed one is replaced by a successor order, and the two are
        reconciled in this order: **remove the old service first, then apply the new one**.
        Removing first means the ONT never carries both VLAN configurations at once (on the
        same UNI they would fight over the UNI's entries and its untagged traffic, and the
        removal of the old one would take the UNI's shared entries from under the new one);
        the price is a short outage between the two pushes, which a change of service
        implies anyway. If the removal fails (device unreachable, refused), the successor
        waits: on the same UNI it is "configuration missing" until the old order is
        terminated (the UNI check in :meth:`plan`), and it goes ahead by itself when the
        removal is resent or retried. On another UNI nothing conflicts and it is applied.
        A repeated identical change reconciles again and changes nothing more.
        """
        order = await self.store.get_order(order_id)
        if order is None:
            raise NotFound(f"order {order_id!r} does not exist")
        to_isp = order.isp if isp is None else isp
        to_type = order.service_type if service_type is None else service_type
        await self._check_change(order, to_isp, to_type, isp is not None)
        async with self._lock(order_id):
            changed = await self.store.change_order(order_id, isp=isp,
                                                    service_type=service_type, reason=reason)
        previous = await self.reconcile(order_id) if changed.replaced else None
        status = await self.reconcile(changed.order.id)
        return OrderChange(changed.order.id, order_id, changed.replaced, status, previous)

    async def _check_change(self, order: Order, isp: str, service_type: str,
                            isp_given: bool) -> None:
        if service_type not in self.catalog.service_types:
            raise ChangeRefused("service_type", f"service type {service_type!r} is not in the "
                                f"catalog (it has {', '.join(self.catalog.service_types)})")
        if isp not in self.catalog.isps:
            raise ChangeRefused("isp", f"ISP {isp!r} is not in the catalog (it has "
                                f"{', '.join(self.catalog.isps)})")
        binding = await self.store.binding_of_object(order.object_id)
        ont = None if binding is None else await self.store.get_ont(binding.serial)
        gaps = self.catalog.gaps(isp, service_type, None if ont is None else ont.olt)
        if gaps:
            raise ChangeRefused("isp" if isp_given else "service_type",
                                f"order {order.id} cannot be changed to {isp} {service_type}: "
                                + "; ".join(m.message for m in gaps))

    async def _reconcile(self, order_id: str, retry: Collection[ErrorClass], *,
                         force: bool) -> OrderStatus:
        st, facts = await self._note_facts(order_id)
        if st.status is Status.ACTIVE and not force:
            return st
        if st.status not in (Status.AWAITING_PROVISIONING, Status.ACTIVE):
            return st
        pushes = await self.store.pushes_of(order_id)
        if pushes and pushes[-1].pending:
            return st  # a crash left it in flight: resume() re-runs it
        if st.error_class is ErrorClass.CONNECTION_ERROR and facts.ont is not None \
                and not (facts.ont.present and facts.ont.operational):
            return st  # the ONT is not there: waiting for on_ont_seen
        if not force and st.error_class is not None and st.error_class not in retry:
            return st
        try:
            plan = await self.plan(order_id)
        except _NotReady as exc:
            events = await self.store.order_events(order_id)
            if not events or (events[-1].error_class, events[-1].message) != (exc.error_class,
                                                                              exc.message):
                await self.store.record_order_event(
                    order_id, Status.AWAITING_PROVISIONING.value, exc.message, exc.error_class)
            return st
        if facts.removal_requested:
            await self._remove(plan)
        else:
            result = await self._apply(plan)
            if result.ok:
                # Read back: the ONT reports the service applied, so it is up and configured
                # now (no longer "unclaimed"), whatever a discovery report still in flight
                # says (e.g. that it left the CLI's autofind list).
                await self.store.set_ont_state(plan.ont.serial, OntState.UP, "")
        after = await self._note(order_id)
        if after.status is Status.ACTIVE:
            self.gateways.kick_ont(plan.ont.serial)  # its gateway is reachable now
        return after

    # ---- crash recovery -------------------------------------------------------------------------
    async def resume(self) -> list[Push]:
        """Re-run every push a crash left pending; returns the pushes as finished, in the
        order they were recorded. Orders are resumed side by side (at most
        :data:`RESUME_CONCURRENCY` at once), so that an OLT's queue batches their pushes as
        it does in a bulk push; one order's pushes run one after the other."""
        by_order: dict[str, list[Push]] = {}
        finished: dict[int, Push] = {}
        for pending in await self.store.pending_pushes():
            if pending.order_id is None:
                finished[pending.id] = await self.store.finish_push(
                    pending.id, PushPhase.FAILED, error_class=ErrorClass.REJECTED,
                    message="abandoned after a restart: the push names no order to re-run")
                continue
            by_order.setdefault(pending.order_id, []).append(pending)
        slots = asyncio.Semaphore(RESUME_CONCURRENCY)

        async def one_order(order_id: str, pushes: list[Push]) -> None:
            async with slots, self._lock(order_id):
                for pending in pushes:
                    await self._resume_one(pending)
                    finished[pending.id] = await self.store.get_push(pending.id)
                await self._note(order_id)

        async with asyncio.TaskGroup() as group:
            for order_id, pushes in by_order.items():
                group.create_task(one_order(order_id, pushes), name=f"resume-{order_id}")
        return [finished[k] for k in sorted(finished)]

    async def _resume_one(self, pending: Push) -> None:
        assert pending.order_id is not None
        try:
            plan = await self.plan(pending.order_id)
        except (_NotReady, NotFound) as exc:
            cls = exc.error_class if isinstance(exc, _NotReady) else ErrorClass.REJECTED
            await self.store.finish_push(pending.id, PushPhase.FAILED, error_class=cls,
                                         message=f"not resumed after a restart: {exc}")
            return
        order = plan.order
        if order.cancelled_at is not None or order.removed_at is not None:
            await self.store.finish_push(pending.id, PushPhase.FAILED,
                                         error_class=ErrorClass.REJECTED,
                                         message="not resumed after a restart: the order is "
                                                 "closed")
            return
        log.info("resuming push %d of order %s (%s)", pending.id, order.id, pending.action)
        if pending.action is PushAction.REMOVE:
            await self._remove(plan, pending.id)
        else:
            await self._apply(plan, pending.id)

    # ---- discovery ------------------------------------------------------------------------------
    async def on_ont_seen(self, serial: str, olt: str, pon_port: str,
                          state: OntState | str = OntState.UP, *,
                          condition: str = "") -> list[OrderStatus]:
        """Discovery hook: record the ONT, then reconcile every open order bound to it (an
        order that waited for it, connection error included, goes ahead by itself)."""
        st = OntState(state)
        await self.store.upsert_ont(serial, olt, pon_port, state=st, condition=condition)
        binding = await self.store.binding_of_serial(serial)
        if binding is None:
            return []
        retry = (ErrorClass.CONNECTION_ERROR,) if st is OntState.UP else ()
        if st is OntState.UP:
            self.gateways.kick_ont(serial)
        return [await self.reconcile(o.id, retry=retry)
                for o in await self.store.list_orders(object_id=binding.object_id,
                                                      open_only=True)]

    # ---- activation on time ---------------------------------------------------------------------
    async def tick(self) -> datetime | None:
        """Reconcile every open order once; the earliest future start date, if any."""
        nxt: datetime | None = None
        for order in await self.store.list_orders(open_only=True):
            try:
                st = await self.reconcile(order.id)
            except Exception:  # one broken order must not stop the others
                log.exception("reconciling order %s failed", order.id)
                continue
            if st.activates_at is not None and (nxt is None or st.activates_at < nxt):
                nxt = st.activates_at
        return nxt

    async def _schedule(self) -> None:
        while True:
            nxt = await self.tick()
            delay = self.max_sleep
            if nxt is not None:
                delay = min(delay, max(0.0, (nxt - self.clock()).total_seconds()) + 0.01)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    # ---- audit ----------------------------------------------------------------------------------
    async def audit(self, olt: str) -> list[AuditFinding]:
        """Dry-run every active order on ``olt``; record a mismatch (with the diff) where the
        device differs, and heal it by a resend if ``settings.heal_mismatches``."""
        findings: list[AuditFinding] = []
        queue = self.queue(olt)
        for order in await self.store.list_orders(open_only=True):
            facts = await self.store.order_facts(order.id, self.catalog)
            if facts.ont is None or facts.ont.olt != olt or facts.removal_requested:
                continue
            if compute_status(facts, self.clock()).status is not Status.ACTIVE:
                continue
            async with self._lock(order.id):
                try:
                    plan = await self.plan(order.id)
                except _NotReady as exc:
                    findings.append(AuditFinding(order.id, error=exc.message))
                    continue
                result = await queue.submit(PushJob([plan.ont], [plan.service], dry_run=True))
                if not result.ok:
                    err = result.error.message if result.error else "dry run failed"
                    findings.append(AuditFinding(order.id, error=err))
                    continue
                if result.diff is None or result.diff.empty:
                    continue
                diff = result.diff.text
                pid = await self.store.begin_push(olt, digest(result.payload or ""),
                                                  order_id=order.id)
                await self.store.finish_push(
                    pid, PushPhase.FAILED, error_class=ErrorClass.MISMATCH,
                    message=f"audit: OLT {olt} differs from the intent:\n{diff}")
                await self._note(order.id)
                healed = False
                if self.settings.heal_mismatches:
                    healed = (await self._reconcile(order.id, (), force=True)).status \
                        is Status.ACTIVE
            findings.append(AuditFinding(order.id, diff=diff, healed=healed))
        return findings


    # ---- manual pushes and dry runs ---------------------------------------------------------
    async def dry_run(self, order_id: str) -> OrderPush:
        """What a push of the order would send, and how the device differs from it now:
        render the order's intents and compare them with the device through the OLT's queue
        (``PushJob(..., dry_run=True)``: load, compare, discard). Records no push and changes
        nothing on the device (planning may reserve the ONT's identifiers in the store, as a
        push would). An order that is not ready (prerequisites, start date in the future,
        closed) is reported with its status and why, and not sent anywhere. Raises NotFound
        for an unknown order."""
        async with self._lock(order_id):
            st = await self.status(order_id)
            skipped = await self._not_ready(order_id, st, dry_run=True)
            if skipped is not None:
                return skipped
            try:
                plan = await self.plan(order_id)
            except _NotReady as exc:
                return OrderPush(order_id, st, ManualAction.SKIPPED, reason=exc.message,
                                 error_class=exc.error_class)
            result = await self.queue(plan.device.name).submit(
                PushJob([plan.ont], [plan.service], dry_run=True))
            error, error_class = "", None
            if not result.ok:
                error = result.error.message if result.error else "the dry run failed"
                if result.error is not None:
                    error_class = _status_class(result.error.error_class)
            return OrderPush(order_id, st, ManualAction.DRY_RUN, olt=plan.device.name,
                             payload=result.payload_text,
                             diff=result.diff.text if result.diff is not None else "",
                             compared=result.ok and result.diff is not None,
                             error=error, error_class=error_class)

    async def push_ont(self, serial: str, *, dry_run: bool = False) -> OntPush:
        """The manual push of an ONT: every open order of the object the ONT is bound to,
        oldest first, dry-run (:meth:`dry_run`) or pushed for real (:meth:`resend`, with the
        status after). Orders that are not ready are reported with their status and why, and
        not pushed. Raises NotFound for an unknown serial and Conflict for an ONT bound to no
        object."""
        ont = await self.store.get_ont(serial)
        if ont is None:
            raise NotFound(f"no ONT with serial {serial} in the inventory (not discovered on "
                           f"any OLT and not imported)")
        binding = await self.store.binding_of_serial(serial)
        if binding is None:
            raise Conflict(f"ONT {serial} is not bound to any object, so it has no orders: "
                           f"bind it first (ponctl objects bind OBJECT {serial})")
        orders = await self.store.list_orders(object_id=binding.object_id, open_only=True)
        out: list[OrderPush] = []
        for order in orders:
            if dry_run:
                out.append(await self.dry_run(order.id))
                continue
            st = await self.status(order.id)
            skipped = await self._not_ready(order.id, st, dry_run=False)
            if skipped is not None:
                out.append(skipped)
                continue
            before = len(await self.store.pushes_of(order.id))
            after = await self.resend(order.id)
            pushes = await self.store.pushes_of(order.id)
            if len(pushes) > before:
                last = pushes[-1]
                out.append(OrderPush(order.id, after, ManualAction.PUSHED, olt=last.device,
                                     reason=last.message, error_class=after.error_class))
            else:
                out.append(OrderPush(order.id, after, ManualAction.SKIPPED,
                                     reason=after.message, error_class=after.error_class))
        return OntPush(serial, binding.object_id, dry_run, tuple(out))

    async def _not_ready(self, order_id: str, st: OrderStatus, *,
                         dry_run: bool) -> OrderPush | None:
        """The report of an order a manual push leaves alone, or None if it can go."""
        if st.status not in (Status.AWAITING_PROVISIONING, Status.ACTIVE):
            reason = st.message
            if st.prerequisites:
                reason = "; ".join(st.prerequisites)
            return OrderPush(order_id, st, ManualAction.SKIPPED, reason=reason,
                             error_class=st.error_class)
        facts = await self.store.order_facts(order_id, self.catalog)
        if facts.removal_requested and dry_run:
            return OrderPush(order_id, st, ManualAction.SKIPPED,
                             reason="removal requested: a dry run shows applies only; the "
                                    "push removes the service")
        return None


class ManualAction(StrEnum):
    """What a manual push did with one order."""

    PUSHED = "pushed"  # pushed for real (see the status after)
    DRY_RUN = "dry-run"  # rendered and compared with the device, nothing changed
    SKIPPED = "skipped"  # not ready (or a push is in flight): nothing sent


@dataclass(frozen=True, slots=True)
class OrderPush:
    """One order of a manual push or dry run.

    ``payload``: exactly what would be sent (XML, CLI lines or varbinds, one a line);
    ``diff``: the device against it (empty with ``compared``: the device already holds it);
    ``error``/``error_class``: why the dry run could not compare, or the push's error;
    ``reason``: why a skipped order was left alone, or the pushed order's push record.
    """

    order_id: str
    status: OrderStatus
    action: ManualAction
    olt: str | None = None
    payload: str = ""
    diff: str = ""
    compared: bool = False
    error: str = ""
    error_class: ErrorClass | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class OntPush:
    """A manual push of one ONT: the object it is bound to and each open order's report."""

    serial: str
    object_id: str
    dry_run: bool
    orders: tuple[OrderPush, ...]
