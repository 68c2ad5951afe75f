"""The push engine: intents -> payload -> device, verified by reading back (no storage here).

:func:`push` runs one transaction on one connected (or connectable) driver::

    render -> [connect] -> load_candidate -> compare
        dry_run:     discard; return the payload and the diff (nothing changes)
        empty diff:  discard; verify; 'unchanged' (an idempotent resend)
        otherwise:   commit (confirmed where capabilities.confirmed_commit) -> verify (polled,
                     bounded) -> confirm  |  rollback (where capabilities.rollback declares one)

Every driver error is classified (:func:`agent.errors.classify`) into the result; nothing
raises except bugs and cancellation. :func:`with_retries` re-runs a push whose error is
retryable (a held lock), with exponential backoff and full jitter, a bounded number of times.
:class:`OltQueue` is the per-OLT work queue: bounded concurrency per OLT (one driver session
per worker), an optional semaphore shared by all queues as the global bound, and batching of
several jobs into one NETCONF transaction.

Verifiers (:func:`verifier_for`) read back what the *simulated* OLT exposes: NETCONF
``ponctl-olt-state``, PONCTL-MIB over SNMP, the Huawei-style CLI's display commands. A real
vendor's OLT reports applied services its own way and needs its own verifier (a later profile
field); pass it to :func:`push` as ``verify``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lxml import etree

from agent.errors import Classified, ErrorClass, classify
from agent.intent import OntIntent, ServiceIntent
from agent.profiles import Profile
from agent.render import Payload, RenderError, render
from drivers.base import Diff, Driver
from drivers.cli import CliDriver
from drivers.errors import CliRejectedError, DriverError, SnmpRejectedError
from drivers.snmp import SnmpDriver
from drivers.snmp.varbind import Varbind

CONFIRM_TIMEOUT = 120.0  # seconds a confirmed commit waits for its confirm, by default

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


# ---- results -------------------------------------------------------------------------------
class Outcome(enum.StrEnum):
    UNCHANGED = "unchanged"  # the device already held it (verified, if asked)
    APPLIED = "applied"  # committed, verified, confirmed
    DRY_RUN = "dry-run"  # payload and diff shown, nothing changed
    FAILED = "failed"  # see ``error``


class Stage(enum.StrEnum):
    """Where a push stopped (for the caller to tell device-wide failures from content)."""

    RENDER = "render"
    CONNECT = "connect"
    LOAD = "load"
    COMMIT = "commit"
    VERIFY = "verify"
    CONFIRM = "confirm"


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """One read-back: ``ok``, or why not and which error class that failure is."""

    ok: bool
    detail: str = ""
    error_class: ErrorClass = ErrorClass.CONNECTION


Verify = Callable[[], Awaitable[VerifyResult]]


@dataclass(frozen=True, slots=True)
class PushResult:
    """One push: the outcome, the payload (for the audit log), the diff, the error."""

    outcome: Outcome
    payload: Payload | None
    diff: Diff | None
    error: Classified | None = None
    seconds: float = 0.0
    stage: Stage | None = None  # where it failed; None unless failed
    rolled_back: bool = False  # a failed push whose commit was undone
    attempts: int = 1
    batched: int = 1  # jobs that shared this transaction

    @property
    def ok(self) -> bool:
        return self.outcome is not Outcome.FAILED

    @property
    def payload_text(self) -> str:
        """The payload as text, one line per CLI line or varbind."""
        p = self.payload
        if p is None:
            return ""
        if isinstance(p, str):
            return p
        return "\n".join(str(x) for x in p)


# ---- push ----------------------------------------------------------------------------------
async def _poll(verify: Verify, within: float, interval: float) -> VerifyResult:
    """Call ``verify`` until it is ok or ``within`` seconds have passed (the last result)."""
    deadline = time.monotonic() + within
    while True:
        result = await verify()
        if result.ok or time.monotonic() >= deadline:
            return result
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))


async def _quietly(action: Callable[[], Awaitable[None]]) -> bool:
    """Run a clean-up step; a DriverError there must not hide the error being reported."""
    try:
        await action()
    except DriverError:
        return False
    return True


_SNMP_SERVICE_TABLE = "1.3.6.1.4.1.32473.1.1.3.1."  # PONCTL-MIB ponctlServiceEntry
_SNMP_UPLINK_VLAN_STATUS = "1.3.6.1.4.1.32473.1.1.6.1.2"  # ponctlUplinkVlanStatus


async def _refine(driver: Driver[Any], exc: DriverError,
                  services: Sequence[ServiceIntent]) -> Classified:
    """Classify, reading a little more where the error alone cannot tell.

    An SNMP error-status carries no text: a PONCTL-MIB OLT refusing a service row with
    inconsistentValue may mean the S-VLAN is not carried by any uplink, which the uplink
    VLAN table (a row per carried VLAN) settles.
    """
    found = classify(exc)
    if not (isinstance(exc, SnmpRejectedError) and exc.status == "inconsistentValue"
            and exc.oid is not None and exc.oid.startswith(_SNMP_SERVICE_TABLE)
            and found.error_class is ErrorClass.REJECTED and driver.connected):
        return found
    try:
        rows = (await driver.get_state(_SNMP_UPLINK_VLAN_STATUS)).data
    except DriverError:
        return found
    carried = {int(vb.oid.rsplit(".", 1)[1]) for vb in rows if isinstance(vb, Varbind)}
    missing = sorted({s.s_vlan for s in services} - carried)
    if not missing:
        return found
    vlans = ", ".join(str(v) for v in missing)
    return Classified(ErrorClass.CONFIGURATION_MISSING,
                      f"network service missing on {exc.host or 'the device'}: S-VLAN {vlans} "
                      f"is not carried by any uplink (the device said: {found.device_words})",
                      False, found.device_words)


async def push(driver: Driver[Any], profile: Profile, onts: Sequence[OntIntent],
               services: Sequence[ServiceIntent], *, dry_run: bool = False,
               confirm_timeout: float | None = CONFIRM_TIMEOUT, verify: Verify | None = None,
               verify_timeout: float = 10.0, verify_interval: float = 0.1) -> PushResult:
    """One transaction of ``onts`` and ``services`` through ``profile`` on ``driver``.

    Connects the driver if it is not connected. ``confirm_timeout``: seconds for a confirmed
    commit where the device offers one (else a plain commit). ``verify``: the read-back
    ("the ONT reports the service applied"), polled up to ``verify_timeout`` seconds; if it
    never holds, the commit is rolled back where the driver declares a rollback and the
    result carries ``verify``'s error class and detail. Never raises a DriverError.
    """
    t0 = time.perf_counter()
    payload: Payload | None = None
    diff: Diff | None = None

    def done(outcome: Outcome, error: Classified | None = None, stage: Stage | None = None,
             rolled_back: bool = False) -> PushResult:
        return PushResult(outcome, payload, diff, error, time.perf_counter() - t0, stage,
                          rolled_back)

    try:
        payload = render(profile, list(onts), services)
    except RenderError as exc:
        return done(Outcome.FAILED, Classified(ErrorClass.CONFIGURATION_MISSING, str(exc),
                                               False), Stage.RENDER)
    stage = Stage.CONNECT
    committed = False
    try:
        if not driver.connected:
            await driver.connect()
        stage = Stage.LOAD
        try:
            await driver.load_candidate(payload)
            diff = await driver.compare()
        except BaseException:
            await _quietly(driver.discard)
            raise
        if dry_run or diff.empty:
            await driver.discard()
            if dry_run:
                return done(Outcome.DRY_RUN)
        else:
            stage = Stage.COMMIT
            caps = driver.capabilities
            timeout = confirm_timeout if caps.confirmed_commit else None
            try:
                commit = await driver.commit(confirm_timeout=timeout)
            except BaseException:
                await _quietly(driver.discard)
                raise
            committed = True
        stage = Stage.VERIFY
        if verify is not None:
            checked = await _poll(verify, verify_timeout, verify_interval)
            if not checked.ok:
                rolled_back = False
                if committed and driver.capabilities.rollback != "none":
                    rolled_back = await _quietly(driver.rollback)
                undone = " (the change was rolled back)" if rolled_back else ""
                return done(Outcome.FAILED, Classified(checked.error_class,
                                                       checked.detail + undone, False),
                            Stage.VERIFY, rolled_back)
        if not committed:
            return done(Outcome.UNCHANGED)
        stage = Stage.CONFIRM
        if commit.confirm_pending:
            await driver.confirm()
        return done(Outcome.APPLIED)
    except DriverError as exc:
        rolled_back = False
        if committed and driver.connected and driver.capabilities.rollback != "none":
            rolled_back = await _quietly(driver.rollback)
        return done(Outcome.FAILED, await _refine(driver, exc, services), stage, rolled_back)


# ---- retries -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter: before retry n (1-based) sleep a uniform random
    time in [0, min(cap, base * 2**(n-1))]. ``attempts`` bounds the tries (>= 1)."""

    attempts: int = 4
    base: float = 0.2
    cap: float = 5.0

    def delay(self, retry: int) -> float:
        return random.uniform(0.0, min(self.cap, self.base * 2 ** (retry - 1)))


async def with_retries(fn: Callable[[], Awaitable[PushResult]],
                       policy: RetryPolicy) -> PushResult:
    """Run ``fn`` until it does not fail retryably, at most ``policy.attempts`` times.

    Only errors classified retryable are retried (a held lock); connection errors wait for
    the device or ONT instead, and refusals need someone to change something.
    """
    attempt = 1
    while True:
        result = await fn()
        if (result.error is None or not result.error.retryable
                or attempt >= max(1, policy.attempts)):
            return dataclasses.replace(result, attempts=attempt)
        await asyncio.sleep(policy.delay(attempt))
        attempt += 1


# ---- verifiers for the simulated OLT -------------------------------------------------------
OLT_STATE_NS = "urn:ponctl:yang:ponctl-olt-state"
_PON_NAME_COL = "1.3.6.1.4.1.32473.1.1.1.1.2"  # ponctlPonPortName
_ONT_SERIAL_COL = "1.3.6.1.4.1.32473.1.1.2.1.2"  # ponctlOntSerial
_ONT_OPER_COL = "1.3.6.1.4.1.32473.1.1.2.1.5"  # ponctlOntOperStatus
_SVC_COLS = {"uni": "1.3.6.1.4.1.32473.1.1.3.1.2", "c_vlan": "1.3.6.1.4.1.32473.1.1.3.1.3",
             "s_vlan": "1.3.6.1.4.1.32473.1.1.3.1.4",
             "applied": "1.3.6.1.4.1.32473.1.1.3.1.7"}  # ponctlService{Uni,CVlan,SVlan,Applied}
_OPER_NAMES = {1: "notPresent", 2: "ranging", 3: "operational", 4: "los", 5: "dyingGasp"}
_SERVICE_PORT = re.compile(r"^\s*\d+\s+(\d+)\s+\S+\s+gpon\s+(\d+)/\s*(\d+)\s*/\s*(\d+)\s+(\d+)\s+"
                           r"\S+\s+vlan\s+(\d+)\s+.*\s(up|down)\s*$")
_RUN_STATE = re.compile(r"Run state\s*:\s*(\S+)")


@dataclass(frozen=True, slots=True)
class _Seen:
    """What the OLT reports of one ONT: its state and the (uni, c_vlan, s_vlan) applied."""

    state: str
    online: bool
    applied: frozenset[tuple[int | None, int, int]]


def _offline(host: str, ont: OntIntent, state: str) -> VerifyResult:
    return VerifyResult(False, f"ONT {ont.serial} ({ont.olt} {ont.pon_port}, at {host}) is "
                        f"{state}: not connected to the OLT (powered off, fibre cut or "
                        "missing); the agent retries when it comes back")


def _judge(host: str, onts: dict[str, OntIntent], services: Sequence[ServiceIntent],
           seen: dict[str, _Seen]) -> VerifyResult:
    for serial, ont in onts.items():
        got = seen.get(serial)
        if got is None:
            return _offline(host, ont, "not reported by the OLT")
        if not got.online:
            return _offline(host, ont, got.state)
    for svc in services:
        applied = seen[svc.ont.serial].applied
        if ((svc.uni, svc.c_vlan, svc.s_vlan) not in applied
                and (None, svc.c_vlan, svc.s_vlan) not in applied):
            return VerifyResult(False, f"ONT {svc.ont.serial} does not report service "
                                f"{svc.name} (UNI {svc.uni}, C-VLAN {svc.c_vlan}, S-VLAN "
                                f"{svc.s_vlan}) applied", ErrorClass.MISMATCH)
    return VerifyResult(True)


def _all_onts(onts: Sequence[OntIntent],
              services: Sequence[ServiceIntent]) -> dict[str, OntIntent]:
    out = {o.serial: o for o in onts}
    for s in services:
        out.setdefault(s.ont.serial, s.ont)
    return out


def netconf_verifier(driver: Driver[Any], onts: Sequence[OntIntent],
                     services: Sequence[ServiceIntent]) -> Verify:
    """``<get>`` of ``olt-state/onts/ont`` filtered on the serials: state operational and an
    ``applied-service`` with the service's UNI, C-VLAN and S-VLAN."""
    wanted = _all_onts(onts, services)
    entries = "".join(f"<ont><serial>{serial}</serial></ont>" for serial in wanted)
    filter_xml = f'<olt-state xmlns="{OLT_STATE_NS}"><onts>{entries}</onts></olt-state>'
    ns = {"s": OLT_STATE_NS}

    def num(el: etree._Element, name: str) -> int:
        return int(el.findtext(f"s:{name}", "0", namespaces=ns) or 0)

    async def check() -> VerifyResult:
        data = (await driver.get_state(filter_xml)).data
        root = etree.fromstring(f"<data>{data}</data>", _PARSER)
        seen: dict[str, _Seen] = {}
        for ont in root.iterfind("s:olt-state/s:onts/s:ont", ns):
            state = ont.findtext("s:state", "", namespaces=ns) or ""
            applied = frozenset((num(a, "uni"), num(a, "c-vlan"), num(a, "s-vlan"))
                                for a in ont.iterfind("s:applied-service", ns))
            seen[ont.findtext("s:serial", "", namespaces=ns) or ""] = _Seen(
                state, state == "operational", applied)
        return _judge(driver.host, wanted, services, seen)

    return check


def snmp_verifier(driver: Driver[Any], onts: Sequence[OntIntent],
                  services: Sequence[ServiceIntent]) -> Verify:
    """PONCTL-MIB: the ONT row (ponctlPonPortIndex.onu-id) holds the ONT's ponctlOntSerial
    with ponctlOntOperStatus operational(3), and a service row of that ONT has the UNI,
    C-VLAN and S-VLAN with ponctlServiceApplied true(1).

    Only the ONTs' own rows are read: the PON port table (to number the ports), one GET of
    the ONT columns, and per ONT its service rows (4 short walks under its row), so a
    read-back costs the same on an OLT of 10 ONTs as of 10,000.
    """
    if not isinstance(driver, SnmpDriver):
        raise TypeError(f"the SNMP read-back needs an SnmpDriver, not {type(driver).__name__}")
    snmp = driver
    wanted = _all_onts(onts, services)

    def column(rows: list[Varbind], col: str) -> dict[str, Any]:
        return {vb.oid[len(col) + 1:]: vb.value for vb in rows
                if not vb.missing and vb.oid.startswith(col + ".")}

    async def rows_of() -> dict[str, str]:
        """serial -> ONT row index, for the ONTs that have a row."""
        names = column(await snmp.walk(_PON_NAME_COL), _PON_NAME_COL)
        port_index = {str(name): idx for idx, name in names.items()}
        rows = {serial: f"{port_index[ont.pon_port]}.{ont.onu_id}"
                for serial, ont in wanted.items() if ont.pon_port in port_index}
        if not rows:
            return {}
        got = await snmp.get([f"{_ONT_SERIAL_COL}.{row}" for row in rows.values()])
        serials = column(got, _ONT_SERIAL_COL)
        return {serial: row for serial, row in rows.items()
                if str(serials.get(row, "")) == serial}

    async def check() -> VerifyResult:
        row_of = await rows_of()
        seen: dict[str, _Seen] = {}
        if row_of:
            got = await snmp.get([f"{_ONT_OPER_COL}.{row}" for row in row_of.values()])
            oper = column(got, _ONT_OPER_COL)
            read: list[Varbind] = []
            for row in row_of.values():
                for col in _SVC_COLS.values():  # one service per UNI: a walk of 4 is one PDU
                    read += await snmp.walk(f"{col}.{row}", max_repetitions=4)
            svc = {name: column(read, col) for name, col in _SVC_COLS.items()}
            for serial, row in row_of.items():
                status = int(oper.get(row, 1) or 1)
                applied = frozenset(
                    (int(svc["uni"].get(i, 0)), int(c), int(svc["s_vlan"].get(i, 0)))
                    for i, c in svc["c_vlan"].items()
                    if i.startswith(row + ".") and int(svc["applied"].get(i, 2)) == 1)
                seen[serial] = _Seen(_OPER_NAMES.get(status, str(status)), status == 3,
                                     applied)
        return _judge(driver.host, wanted, services, seen)

    return check


def cli_verifier(driver: Driver[Any], onts: Sequence[OntIntent],
                 services: Sequence[ServiceIntent]) -> Verify:
    """Huawei-style CLI: ``display ont info by-sn SN`` (Run state online) and
    ``display service-port port F/S/P ont ONT-ID`` (a row for the ONT with the S-VLAN and
    C-VLAN whose state is up): the ONT's own rows, not the OLT's whole service-port table."""
    wanted = _all_onts(onts, services)
    with_services = {s.ont.serial for s in services}

    async def show(command: str) -> str:
        if isinstance(driver, CliDriver):
            return (await driver.get_state(command, check=False)).data
        try:
            return str((await driver.get_state(command)).data)
        except CliRejectedError as exc:
            return exc.output

    async def service_ports(ont: OntIntent) -> list[tuple[str, ...]]:
        if ont.serial not in with_services:
            return []
        ports = await show(f"display service-port port {ont.pon_port} ont {ont.onu_id}")
        return [m.groups() for m in map(_SERVICE_PORT.match, ports.splitlines()) if m]

    async def check() -> VerifyResult:
        seen: dict[str, _Seen] = {}
        for serial, ont in wanted.items():
            info = await show(f"display ont info by-sn {serial}")
            m = _RUN_STATE.search(info)
            if m is None:
                continue
            up = await service_ports(ont)
            where = (*ont.pon_port.split("/"), str(ont.onu_id))
            applied = frozenset((None, int(c), int(s)) for s, f, sl, p, oid, c, state in up
                                if (f, sl, p, oid) == where and state == "up")
            seen[serial] = _Seen(m.group(1), m.group(1) == "online", applied)
        return _judge(driver.host, wanted, services, seen)

    return check


_VERIFIERS: dict[str, Callable[[Driver[Any], Sequence[OntIntent], Sequence[ServiceIntent]],
                               Verify]] = {
    "netconf": netconf_verifier, "snmp": snmp_verifier, "ssh": cli_verifier}


def verifier_for(driver: Driver[Any], onts: Sequence[OntIntent],
                 services: Sequence[ServiceIntent]) -> Verify:
    """The simulated OLT's read-back for the driver's protocol (see the module docstring)."""
    return _VERIFIERS[driver.protocol](driver, onts, services)


# ---- the per-OLT work queue ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class PushJob:
    """What one caller wants pushed (e.g. one order's ONT and services)."""

    onts: Sequence[OntIntent]
    services: Sequence[ServiceIntent]
    dry_run: bool = False


@dataclass(slots=True)
class _Item:
    job: PushJob
    future: asyncio.Future[PushResult]


class OltQueue:
    """Push jobs for one OLT: ``concurrency`` workers, each with its own driver session
    (``make_driver``), an optional ``limiter`` shared by every OLT's queue (the global
    bound), retries per ``retry``.

    Where the profile's protocol is NETCONF, jobs go in batches of up to ``batch_max`` per
    transaction (dry runs go alone): a worker forms its batch when its turn at the OLT comes,
    from every job that queued up while the previous transaction ran, so a job on an idle OLT
    goes at once and a busy OLT batches by itself; ``batch_window`` (seconds, default 0)
    additionally waits for more jobs before a transaction.
    If a batch fails for a reason other than reaching the device (a refusal, a missing
    network service, an ONT that does not come up), its jobs are pushed one by one so one
    bad job does not hold back the others. A NETCONF queue runs one transaction at a time
    (the OLT has one candidate datastore). ``verify``: read back with :func:`verifier_for`.

    Use as ``async with OltQueue(...) as q: result = await q.submit(job)``.
    """

    def __init__(self, make_driver: Callable[[], Driver[Any]], profile: Profile, *,
                 concurrency: int = 1, batch_window: float = 0.0, batch_max: int = 128,
                 retry: RetryPolicy | None = None, limiter: asyncio.Semaphore | None = None,
                 verify: bool = True, confirm_timeout: float | None = CONFIRM_TIMEOUT,
                 verify_timeout: float = 10.0) -> None:
        if concurrency < 1 or batch_max < 1:
            raise ValueError("concurrency and batch_max must be >= 1")
        self.make_driver = make_driver
        self.profile = profile
        self.concurrency = concurrency
        self.batch_window = batch_window
        self.batch_max = batch_max
        self.retry = retry or RetryPolicy()
        self.limiter = limiter
        self.verify = verify
        self.confirm_timeout = confirm_timeout
        self.verify_timeout = verify_timeout
        self._queue: asyncio.Queue[_Item] = asyncio.Queue()
        # A NETCONF OLT has one candidate datastore (and at most one pending confirmed
        # commit): concurrent transactions of this queue's workers would only refuse each
        # other (lock denied until the retries run out, or a commit refused while another
        # worker's commit awaits its confirmation). One transaction at a time; the workers
        # still collect batches and keep their own sessions.
        self._transaction = asyncio.Lock()
        self._turn = asyncio.Lock()  # the worker forming and running the next batch
        self._workers: list[asyncio.Task[None]] = []
        self._drivers: list[Driver[Any]] = []

    @property
    def batching(self) -> bool:
        return self.profile.protocol == "netconf"

    @property
    def depth(self) -> int:
        """Jobs waiting for a worker."""
        return self._queue.qsize()

    async def __aenter__(self) -> OltQueue:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        if not self._workers:
            self._workers = [asyncio.create_task(self._work(), name=f"push-worker-{i}")
                             for i in range(self.concurrency)]

    async def close(self) -> None:
        """Stop the workers (jobs still queued are cancelled) and close the sessions."""
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []
        while not self._queue.empty():
            self._queue.get_nowait().future.cancel()
        for driver in self._drivers:
            await _quietly(driver.close)
        self._drivers = []

    def submit(self, job: PushJob) -> asyncio.Future[PushResult]:
        """Queue ``job``; the future resolves to its PushResult (shared by a batch)."""
        if not self._workers:
            raise RuntimeError("the queue is not started")
        future: asyncio.Future[PushResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Item(job, future))
        return future

    async def _collect(self, first: _Item) -> tuple[list[_Item], list[_Item]]:
        """The batch that starts with ``first``, and dry runs met on the way."""
        batch: list[_Item] = [first]
        alone: list[_Item] = []
        if not self.batching or first.job.dry_run:
            return batch, alone
        while len(batch) < self.batch_max and not self._queue.empty():
            item = self._queue.get_nowait()  # queued while the previous transaction ran
            (alone if item.job.dry_run else batch).append(item)
        if self.batch_window <= 0:
            return batch, alone
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.batch_window
        while len(batch) < self.batch_max:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                item = await asyncio.wait_for(self._queue.get(), remaining)
            except TimeoutError:
                break
            (alone if item.job.dry_run else batch).append(item)
        return batch, alone

    async def _work(self) -> None:
        driver = self.make_driver()
        self._drivers.append(driver)
        while True:
            if self.batching:
                # One worker at a time takes jobs and runs their transaction (the OLT has one
                # candidate): what queues up meanwhile is the next batch, whole.
                async with self._turn:
                    await self._serve(driver, await self._queue.get())
            else:
                await self._serve(driver, await self._queue.get())

    async def _serve(self, driver: Driver[Any], first: _Item) -> None:
        batch, alone = await self._collect(first)
        try:
            await self._run(driver, batch)
            for item in alone:
                await self._run(driver, [item])
        except BaseException as exc:
            for item in batch + alone:
                if not item.future.done():
                    if isinstance(exc, asyncio.CancelledError):
                        item.future.cancel()
                    else:
                        item.future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            # A bug: reported to the callers; the worker keeps serving.

    async def _push(self, driver: Driver[Any], items: list[_Item]) -> PushResult:
        onts = list({o.serial: o for i in items for o in i.job.onts}.values())
        services = list({s.name: s for i in items for s in i.job.services}.values())
        verify = verifier_for(driver, onts, services) if self.verify else None

        async def once() -> PushResult:
            return await push(driver, self.profile, onts, services,
                              dry_run=items[0].job.dry_run,
                              confirm_timeout=self.confirm_timeout, verify=verify,
                              verify_timeout=self.verify_timeout)

        serial: contextlib.AbstractAsyncContextManager[Any] = (
            self._transaction if self.batching else contextlib.nullcontext())
        async with serial:
            if self.limiter is None:
                result = await with_retries(once, self.retry)
            else:
                async with self.limiter:
                    result = await with_retries(once, self.retry)
        return dataclasses.replace(result, batched=len(items))

    async def _run(self, driver: Driver[Any], items: list[_Item]) -> None:
        result = await self._push(driver, items)
        if (result.ok or len(items) == 1 or result.stage is Stage.CONNECT
                or (result.error is not None and result.error.error_class
                    is ErrorClass.CONNECTION and result.stage is not Stage.VERIFY)):
            for item in items:
                if not item.future.done():
                    item.future.set_result(result)
            return
        for item in items:  # one bad job must not hold back the others
            single = await self._push(driver, [item])
            if not item.future.done():
                item.future.set_result(single)
