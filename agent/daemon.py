"""The agent daemon: store, catalog, engine, discovery, audits and a health/metrics server.

:class:`Daemon` starts its parts in order and stops them in reverse, collecting (and logging)
every shutdown error instead of stopping at the first:

1. the :class:`agent.store.Store` (``settings.store``);
2. the :class:`agent.catalog.Catalog` (``settings.catalog``);
3. the :class:`agent.engine.Engine`, then :meth:`Engine.resume` (pushes a crash left pending)
   and one reconcile pass over every open order (:meth:`Engine.tick`);
4. with ``settings.traps``, the SNMP trap listener (:class:`drivers.snmp.TrapReceiver`);
   then one discovery watch per OLT (:func:`agent.discovery.watch`): each observation is
   recorded in the store (:func:`agent.discovery.record`) and an ONT seen operational is
   handed to :meth:`Engine.on_ont_seen`, so orders waiting for it go ahead. NETCONF OLTs
   report by notifications, CLI OLTs by autofind polling, SNMP OLTs by traps (matched to the
   OLT by their source address: the OLT's configured address, resolved at start; traps from
   any other source are logged and ignored). Each watch first reads the OLT's whole ONT list
   (notifications and traps only report changes);
5. one periodic audit task per OLT every ``settings.audit_interval`` seconds (0: none);
6. an aiohttp server on ``settings.api.listen:settings.api.port`` with ``GET /healthz`` and
   ``GET /metrics`` (Prometheus text exposition), and the OSS/BSS API under ``/api/v1``
   (:mod:`agent.api`).

Without ``settings.traps`` SNMP OLTs are not watched (a warning says so, ``/healthz`` shows
``"watched": false``); their orders are still pushed, reconciled by the scheduler and audited.
Two SNMP OLTs behind one address cannot be told apart by their traps: neither is watched.

Metrics are computed from the store on each scrape (the engine offers no hook): orders by
status, pushes by outcome, failed pushes by error class, push durations (sum and count of
finished pushes) and the OLT queues' depths.

Logging: :func:`configure_logging` installs one stderr handler (plain or JSON lines) with a
:class:`RedactingFilter`; :class:`Daemon` registers every secret it resolves with it, so a
resolved password, community or token never reaches the log, whatever logged it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
import logging
import socket
import sys
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from agent.api import PREFIX as API_PREFIX
from agent.api import api_app
from agent.catalog import Catalog, load_catalog
from agent.connect import driver_factory, snmp_target
from agent.discovery import STORE_STATE, Backoff, OntSeen, record, watch
from agent.engine import Engine
from agent.profiles import load_profile
from agent.settings import Device, GatewayClass, SecretRef, Settings, SettingsError
from agent.status import compute_status
from agent.store import PENDING_PHASES, OntState, PushPhase, Store
from drivers.base import DeviceEvent, Driver
from drivers.snmp import SnmpDriver, TrapReceiver, TrapUser

log = logging.getLogger(__name__)

WATCHED_PROTOCOLS = frozenset({"netconf", "ssh"})  # and "snmp" with a trap listener
TASK_STOP_TIMEOUT = 10.0  # seconds for the background tasks to end on stop
MIN_SECRET_LENGTH = 3  # shorter values would redact ordinary words
# ONTs of one OLT whose observations are handled at once (see Daemon._bridge): a handler waits
# for its ONT's push, so this is how many of an OLT's ONTs may be activating at once; the rest
# wait in order. Two NETCONF batches' worth (batch_max 128): one being pushed, one gathering.
WORKERS_PER_OLT = 256


# ---- logging ------------------------------------------------------------------------------------
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime", "taskName"}
REDACTED = "***"


class RedactingFilter(logging.Filter):
    """Replaces every registered secret value in a record (message, arguments, extra fields,
    exception text) by ``***``."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, values: Iterable[str]) -> None:
        self._secrets.update(v for v in values if len(v) >= MIN_SECRET_LENGTH)

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, self.redact(value))
        return True


redactor = RedactingFilter()


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the record's extra fields and
    the exception text, if any."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and key not in out:
                out[key] = value if isinstance(value, int | float | bool | None) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = record.exc_text
        return jsonlib.dumps(out, ensure_ascii=False)


def configure_logging(json: bool, *, level: int = logging.INFO,
                      secrets: Iterable[str] = ()) -> logging.Handler:
    """Send the root logger's records to stderr, as JSON lines or plain text, through the
    module's :data:`redactor` (``secrets`` are added to it). Replaces an earlier call's handler."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_ponctl", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._ponctl = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if json else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    redactor.add(secrets)
    handler.addFilter(redactor)
    root.addHandler(handler)
    root.setLevel(level)
    # asyncssh logs every channel open and close at INFO: thousands of lines on a busy OLT.
    logging.getLogger("asyncssh").setLevel(max(level, logging.WARNING))
    return handler


def _refs(settings: Settings) -> list[SecretRef]:
    refs: list[SecretRef] = [t.token for t in settings.api.tokens]
    reachable: list[Device | GatewayClass] = [*settings.devices, *settings.gateway_classes]
    for d in reachable:
        if d.ssh is not None and d.ssh.password is not None:
            refs.append(d.ssh.password)
        if d.snmp is not None:
            refs += [r for r in (d.snmp.community, d.snmp.auth_key, d.snmp.priv_key)
                     if r is not None]
    if settings.traps is not None:
        refs += settings.traps.communities
        for u in settings.traps.users:
            refs += [r for r in (u.auth_key, u.priv_key) if r is not None]
    return refs


def secret_values(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every secret the settings refer to that resolves now (unresolvable ones are skipped:
    whoever needs them reports the missing variable or file)."""
    env = None if environ is None else dict(environ)
    out: list[str] = []
    for ref in _refs(settings):
        with contextlib.suppress(SettingsError):
            out.append(ref.resolve(env))
    return out


# ---- metrics ---------------------------------------------------------------------------------
def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(lines: list[str], name: str, kind: str, help_text: str,
            samples: Iterable[tuple[str, Mapping[str, str], float]]) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")
    for suffix, labels, value in samples:
        lbl = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        lines.append(f"{name}{suffix}{{{lbl}}} {value:g}" if lbl else f"{name}{suffix} {value:g}")


def phase_outcome(phase: PushPhase) -> str:
    """A push's outcome label in the metrics: ``pending``, or its final phase."""
    return "pending" if phase in PENDING_PHASES else phase.value.replace("-", "_")


# ---- the daemon ------------------------------------------------------------------------------
@dataclass
class DeviceState:
    """What the daemon knows of one OLT's discovery session."""

    name: str
    protocol: str
    watched: bool
    driver: Driver[Any] | None = None
    last_seen: datetime | None = None  # the last ONT observation
    events: int = 0
    error: str = ""
    audits: int = 0
    last_audit: datetime | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol, "watched": self.watched,
            "connected": bool(self.driver is not None and self.driver.connected),
            "last_seen": self.last_seen.isoformat() if self.last_seen else None,
            "events": self.events, "error": self.error, "audits": self.audits,
            "last_audit": self.last_audit.isoformat() if self.last_audit else None,
        }


@dataclass
class _Closer:
    name: str
    close: Callable[[], Awaitable[None]]


@dataclass
class _Tasks:
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def cancel(self) -> None:
        # A cancellation that lands inside a library call may be swallowed (turned into a
        # connection error that the watch retries): cancel again until the task ends.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TASK_STOP_TIMEOUT
        errors: list[BaseException] = []
        for t in self.tasks:
            while not t.done() and loop.time() < deadline:
                t.cancel()
                await asyncio.wait({t}, timeout=0.2)
            if not t.done():
                errors.append(TimeoutError(f"task {t.get_name()} did not stop"))
            elif not t.cancelled() and t.exception() is not None:
                exc = t.exception()
                assert exc is not None
                errors.append(exc)
        self.tasks.clear()
        if errors:
            raise ExceptionGroup("background tasks failed", errors)  # type: ignore[type-var]


class Daemon:
    """The running agent (see the module docstring). ``async with Daemon(settings) as d:``;
    ``d.port`` is the HTTP server's bound port (useful with ``api.port: 0``)."""

    def __init__(self, settings: Settings, *, environ: Mapping[str, str] | None = None,
                 engine_options: Mapping[str, Any] | None = None,
                 watch_interval: float = 5.0, backoff: Backoff | None = None) -> None:
        self.settings = settings
        self.environ = environ
        self.engine_options = dict(engine_options or {})
        self.watch_interval = watch_interval
        self.backoff = backoff or Backoff()
        self.store: Store | None = None
        self.catalog: Catalog | None = None
        self.engine: Engine | None = None
        self.devices: dict[str, DeviceState] = {}
        self.port: int | None = None
        self.receiver: TrapReceiver | None = None
        self.trap_port: int | None = None  # the trap listener's bound port
        self.trap_sources: dict[str, str] = {}  # source address -> SNMP OLT
        self.traps_ignored = 0  # traps from no configured SNMP OLT
        self.started_at = time.monotonic()
        self.shutdown_errors: list[BaseException] = []
        self._closers: list[_Closer] = []
        self._tasks = _Tasks()
        self._handlers: set[asyncio.Task[None]] = set()  # workers on ONT observations
        redactor.add(secret_values(settings, environ))

    # ---- lifecycle --------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start every part in order (on failure, :meth:`stop` undoes what was started)."""
        s = self.settings
        store = Store(s.store)
        await store.open()
        self.store = store
        self._closers.append(_Closer("store", store.close))
        self.catalog = await asyncio.to_thread(load_catalog, s.catalog)
        engine = Engine(store, self.catalog, s, environ=self.environ, **self.engine_options)
        await engine.start()
        self.engine = engine
        self._closers.append(_Closer("engine", engine.close))
        resumed = await engine.resume()
        if resumed:
            log.info("resumed %d pushes left pending", len(resumed))
        await engine.tick()
        if s.traps is not None:
            await self._start_traps()
        self._closers.append(_Closer("ONT observation handlers", self._stop_handlers))
        self._closers.append(_Closer("background tasks", self._tasks.cancel))
        for device in s.devices:
            if device.kind == "olt":
                self._start_watch(device, engine)
        if s.audit_interval > 0:
            for name in self.devices:
                self._spawn(self._audit_loop(name, s.audit_interval), f"audit-{name}")
        await self._start_http()

    async def stop(self) -> None:
        """Stop what was started, in reverse; every error is logged and kept in
        :attr:`shutdown_errors`, and the other parts are still stopped."""
        while self._closers:
            closer = self._closers.pop()
            try:
                await closer.close()
            except Exception as exc:  # noqa: BLE001 - collect, go on stopping the rest
                log.error("stopping the %s failed: %s", closer.name, exc)  # noqa: TRY400
                self.shutdown_errors.append(exc)
        self.engine = None
        self.store = None

    def _spawn(self, coro: Awaitable[None], name: str) -> asyncio.Task[None]:
        async def run() -> None:
            await coro

        task = asyncio.create_task(run(), name=name)
        self._tasks.tasks.append(task)
        return task

    # ---- discovery --------------------------------------------------------------------------
    def _start_watch(self, device: Device, engine: Engine) -> None:
        snmp = device.protocol == "snmp"
        state = DeviceState(device.name, device.protocol,
                            watched=device.protocol in WATCHED_PROTOCOLS
                            or (snmp and self.receiver is not None))
        self.devices[device.name] = state
        if snmp and self.receiver is not None and device.name not in self.trap_sources.values():
            state.watched = False
            state.error = ("its traps cannot be told apart from another SNMP OLT's (same "
                           "address), or its address does not resolve")
            log.warning("%s: not watched: %s", device.name, state.error,
                        extra={"device": device.name})
            return
        if not state.watched:
            log.warning("%s: ONT discovery over SNMP traps is not configured (no 'traps' "
                        "listener in the settings); this OLT is not watched", device.name,
                        extra={"device": device.name})
            return
        driver: Driver[Any]
        if snmp:
            load_profile(device.profile)  # a broken profile fails here, as for the others
            driver = SnmpDriver(snmp_target(device, self.environ), receiver=self.receiver)
        else:
            driver = driver_factory(device, load_profile(device.profile), self.environ)()
        state.driver = driver
        on_seen = self._bridge(state, engine)

        async def run() -> None:
            try:
                await watch(device.name, driver, on_seen, interval=self.watch_interval,
                            backoff=self.backoff)
            except Exception as exc:  # noqa: BLE001 - watch gave up: keep the daemon up, say so
                state.error = f"{type(exc).__name__}: {exc}"
                log.error("%s: discovery stopped: %s", device.name, state.error)  # noqa: TRY400
            finally:
                with contextlib.suppress(Exception):
                    await driver.close()

        self._spawn(run(), f"watch-{device.name}")

    async def _start_traps(self) -> None:
        """Start the trap listener; map each SNMP OLT's address to it (see the module
        docstring). Binding fails at once (a ConnectError naming the address) if the port is
        taken."""
        traps = self.settings.traps
        assert traps is not None
        env = None if self.environ is None else dict(self.environ)
        communities = [c.resolve(env) for c in traps.communities]
        users = [TrapUser(u.user, u.auth_key.resolve(env),
                          u.priv_key.resolve(env) if u.priv_key is not None else None,
                          u.auth_protocol, u.priv_protocol, u.engine_id_bytes())
                 for u in traps.users]
        owners: dict[str, list[str]] = {}
        loop = asyncio.get_running_loop()
        for device in self.settings.devices:
            if device.kind != "olt" or device.protocol != "snmp":
                continue
            try:
                infos = await loop.getaddrinfo(device.address, None, type=socket.SOCK_DGRAM)
            except OSError as exc:
                log.warning("%s: address %s does not resolve (%s): its traps cannot be "
                            "recognised", device.name, device.address, exc)
                continue
            for address in sorted({str(info[4][0]) for info in infos}):
                owners.setdefault(address, []).append(device.name)
        for address, names in owners.items():
            if len(names) > 1:
                log.warning("SNMP OLTs %s share the address %s: their traps cannot be told "
                            "apart", ", ".join(names), address)
                continue
            self.trap_sources[address] = names[0]
        if not communities and not users and not any(
                d.snmp is not None and d.snmp.version == "v3" for d in self.settings.devices):
            log.warning("the trap listener accepts no community and no SNMPv3 user: every "
                        "trap will be dropped")
        receiver = TrapReceiver(host=traps.listen, port=traps.port, communities=communities,
                                users=users)
        await receiver.start()
        self.receiver = receiver
        self.trap_port = receiver.port
        self._closers.append(_Closer("trap listener", self._stop_traps))
        receiver.subscribe(self._trap_source)
        log.info("listening for SNMP traps on %s:%d", traps.listen, receiver.port,
                 extra={"trap_port": receiver.port})

    async def _stop_traps(self) -> None:
        receiver, self.receiver = self.receiver, None
        if receiver is not None:
            await receiver.close()

    def _trap_source(self, event: DeviceEvent) -> None:
        """Log (and count) a trap from no configured SNMP OLT; the watches never see it
        (each reads only its own OLT's address)."""
        if event.host in self.trap_sources:
            return
        self.traps_ignored += 1
        log.warning("ignoring an SNMP trap (%s) from %s: not a configured SNMP OLT",
                    event.kind, event.host, extra={"source": event.host})

    def _bridge(self, state: DeviceState,
                engine: Engine) -> Callable[[OntSeen], Awaitable[None]]:
        """The watch's callback. It never waits: each observation joins its ONT's queue, and
        up to :data:`WORKERS_PER_OLT` workers of the OLT take ONTs in the order they came and
        handle each ONT's observations in order (an ONT that goes away right after coming up
        ends up absent), while other ONTs' go ahead. A watch that waited for every ONT's push
        before reading the next notification would serialise an OLT's activations and leave
        its push queue nothing to batch, and a watch that stopped reading would make the
        driver drop notifications from its backlog; an ONT waiting for a worker costs one
        small record, not a task holding its service's plan (10,000 ONTs arriving at once)."""
        recorder = record(engine.store)
        pending: dict[str, deque[OntSeen]] = {}  # serial -> observations not handled yet
        ready: deque[str] = deque()  # ONTs with observations and no worker on them, in order
        workers = 0

        async def handle(seen: OntSeen) -> None:
            try:
                await recorder(seen)  # model, firmware, onu-id; stale reports ignored
                mapped = STORE_STATE.get(seen.state)
                if mapped is None or mapped[0] is not OntState.UP:
                    return
                ont = await engine.store.get_ont(seen.serial)
                if ont is not None and (ont.olt, ont.pon_port) == (seen.olt, seen.pon_port):
                    # With its condition (unclaimed or not): the engine records it again, and
                    # the gateway writer holds the gateways behind an unclaimed ONT.
                    await engine.on_ont_seen(seen.serial, seen.olt, seen.pon_port, OntState.UP,
                                             condition=mapped[1])
            except Exception:
                log.exception("%s: handling ONT %s %s failed", seen.olt, seen.serial,
                              seen.state, extra={"device": seen.olt, "serial": seen.serial})

        async def work() -> None:
            nonlocal workers
            try:
                while ready:
                    serial = ready.popleft()
                    queue = pending[serial]
                    while queue:
                        await handle(queue.popleft())
                    del pending[serial]  # no await since the queue was seen empty
            finally:
                workers -= 1

        def done(task: asyncio.Task[None]) -> None:
            self._handlers.discard(task)

        async def on_seen(seen: OntSeen) -> None:
            nonlocal workers
            state.last_seen = datetime.now(UTC)
            state.events += 1
            log.info("%s: ONT %s %s on %s", seen.olt, seen.serial, seen.state, seen.pon_port,
                     extra={"device": seen.olt, "serial": seen.serial, "ont_state": seen.state})
            queue = pending.get(seen.serial)
            if queue is not None:  # queued, or a worker is on it: it comes after the others
                queue.append(seen)
                return
            pending[seen.serial] = deque((seen,))
            ready.append(seen.serial)
            if workers < WORKERS_PER_OLT:
                workers += 1
                task = asyncio.create_task(work(), name=f"ont-observations-{state.name}")
                self._handlers.add(task)
                task.add_done_callback(done)

        return on_seen

    async def _stop_handlers(self) -> None:
        """Cancel the ONT observation handlers still running (after the watches stopped)."""
        tasks = list(self._handlers)
        for t in tasks:
            t.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=TASK_STOP_TIMEOUT)
        self._handlers.clear()

    # ---- audit ------------------------------------------------------------------------------
    async def _audit_loop(self, olt: str, interval: float) -> None:
        state = self.devices[olt]
        while True:
            await asyncio.sleep(interval)
            engine = self.engine
            if engine is None:
                return
            try:
                findings = await engine.audit(olt)
            except Exception:
                log.exception("%s: audit failed", olt)
                continue
            state.audits += 1
            state.last_audit = datetime.now(UTC)
            for f in findings:
                log.warning("%s: audit: order %s %s", olt, f.order_id,
                            f.error or ("healed" if f.healed else "differs from its intent"),
                            extra={"device": olt, "order_id": f.order_id})

    # ---- HTTP -------------------------------------------------------------------------------
    async def _start_http(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        app.add_subapp(API_PREFIX, api_app(self))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._closers.append(_Closer("http server", runner.cleanup))
        site = web.TCPSite(runner, self.settings.api.listen, self.settings.api.port)
        await site.start()
        address = runner.addresses[0]
        self.port = int(address[1])
        log.info("listening on http://%s:%d", self.settings.api.listen, self.port,
                 extra={"port": self.port})

    def queue_depths(self) -> dict[str, int]:
        engine = self.engine
        if engine is None:
            return {}
        depths: dict[str, int] = {}
        for name in self.devices:
            with contextlib.suppress(SettingsError):
                depths[name] = engine.queue(name).depth
        return depths

    async def _store_ok(self) -> str | None:
        if self.store is None:
            return "the store is closed"
        try:
            await self.store.schema_version()
        except Exception as exc:  # noqa: BLE001 - any failure means the store is unusable
            return f"{type(exc).__name__}: {exc}"
        return None

    async def _healthz(self, request: web.Request) -> web.Response:
        problem = await self._store_ok()
        body = {
            "status": "ok" if problem is None else "unavailable",
            "store": {"ok": problem is None, **({"error": problem} if problem else {})},
            "devices": {n: d.as_json() for n, d in self.devices.items()},
            "queues": self.queue_depths(),
            **({"traps": {"port": self.trap_port, "received": self.receiver.received,
                          "ignored": self.traps_ignored, "dropped": self.receiver.dropped}}
               if self.receiver is not None else {}),
            "uptime_seconds": round(time.monotonic() - self.started_at, 3),
        }
        return web.json_response(body, status=200 if problem is None else 503)

    async def metrics_text(self) -> str:
        """The Prometheus text exposition of the daemon's metrics."""
        store, engine = self.store, self.engine
        if store is None or engine is None:
            raise RuntimeError("the daemon is not running")
        now = engine.clock()
        orders = Counter(compute_status(facts, now).status.value
                         for facts in await store.every_order_facts(engine.catalog))
        totals = await store.push_totals()
        outcomes: Counter[str] = Counter()
        for phase, n in totals.by_phase.items():
            outcomes[phase_outcome(PushPhase(phase))] += n
        errors, seconds, finished = totals.errors, totals.seconds, totals.finished
        lines: list[str] = []
        _family(lines, "ponctl_pushes_total", "counter", "Pushes recorded, by outcome.",
                [("", {"outcome": k}, v) for k, v in sorted(outcomes.items())])
        _family(lines, "ponctl_push_errors_total", "counter",
                "Failed pushes, by error class.",
                [("", {"error_class": k}, v) for k, v in sorted(errors.items())])
        _family(lines, "ponctl_queue_depth", "gauge", "Push jobs waiting for a worker, by OLT.",
                [("", {"olt": k}, v) for k, v in sorted(self.queue_depths().items())])
        _family(lines, "ponctl_push_seconds", "summary", "Duration of finished pushes.",
                [("_sum", {}, seconds), ("_count", {}, finished)])
        _family(lines, "ponctl_orders", "gauge", "Orders, by status.",
                [("", {"status": k}, v) for k, v in sorted(orders.items())])
        _family(lines, "ponctl_device_connected", "gauge",
                "1 if the OLT's discovery session is connected.",
                [("", {"olt": n}, float(d.as_json()["connected"]))
                 for n, d in sorted(self.devices.items())])
        return "\n".join(lines) + "\n"

    async def _metrics(self, request: web.Request) -> web.Response:
        try:
            text = await self.metrics_text()
        except Exception as exc:
            log.exception("metrics failed")
            raise web.HTTPServiceUnavailable(text=f"metrics unavailable: {type(exc).__name__}") \
                from None
        return web.Response(text=text, headers={
            "Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
