"""The crash runs' parts: the lab, the daemon as a subprocess killed with SIGKILL and restarted
on the same store, the OSS that retries while the daemon is down, and the checks that no order
was lost or duplicated and no configuration repeated.

Two runs use them: ``tests/agent/test_crash.py`` (four kills at scripted points, and a CI-sized
run of kills at random points) and ``bench/crash_soak.py`` (kills at random points during a
1,000-ONT activation, repeated, by hand): :func:`run_random_kills` is that run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import signal
import socket
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from agent.settings import parse_settings
from agent.store import PushPhase, Store
from simulator.config import derive as dv
from simulator.devices import Olt, OntState
from simulator.lab import Lab
from simulator.topology import parse_topology
from tests.conftest import REPO, running_lab

PASSWORD = "Crash-Pw-5t8w2e"
COMMUNITY = "rw-comm-crash7"
TRAP_COMMUNITY = "trap-comm-crash3"
ADMIN = "admin-tok-Crash-9Xr4"
PASSWORD_VAR, COMMUNITY_VAR = "PONCTL_TEST_CRASH_PW", "PONCTL_TEST_CRASH_RW"
TRAP_VAR, ADMIN_VAR = "PONCTL_TEST_CRASH_TRAP", "PONCTL_TEST_CRASH_ADMIN"
VENDOR = "CRSH"  # the generated ONTs' serials: CRSH<olt index><port index><n>
START = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
LOG_TAIL = 300  # lines of the agent's stderr printed when the test fails
DEADLINE = 60.0  # seconds for one phase (start-up, a kill condition, activation)
PACE = 0.04  # seconds between two ONTs' requests from the OSS
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=30)
DOWN = (aiohttp.ClientError, TimeoutError)  # the agent is down, being killed or starting


# ---- the lab and the agent's settings -----------------------------------------------------
def free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Shape:
    """Where the generated ONTs are: olt1 (NETCONF) and olt2 (SNMP), each a number of PON
    ports with the same number of ONTs on each."""

    olt1_ports: int = 4
    olt1_per_port: int = 12
    olt2_ports: int = 2
    olt2_per_port: int = 8

    @classmethod
    def for_onts(cls, n: int, per_port_max: int = 100) -> Shape:
        """About ``n`` ONTs, four in five on the NETCONF OLT, at most ``per_port_max`` per
        port, olt1 on 4 ports or more and olt2 on 2 or more (the total is rounded up to fill
        the ports evenly)."""
        if n < 2:
            raise ValueError(f"a crash run needs at least 2 ONTs, not {n}")
        n1 = max(1, round(n * 0.8))
        n2 = max(1, n - n1)
        # At least the ports configs/lab.yaml gives each OLT (its own ONTs sit on them).
        p1, p2 = max(4, math.ceil(n1 / per_port_max)), max(2, math.ceil(n2 / per_port_max))
        return cls(p1, math.ceil(n1 / p1), p2, math.ceil(n2 / p2))

    @property
    def total(self) -> int:
        return self.olt1_ports * self.olt1_per_port + self.olt2_ports * self.olt2_per_port

    def of(self, olt: str) -> tuple[int, int]:
        return ((self.olt1_ports, self.olt1_per_port) if olt == "olt1"
                else (self.olt2_ports, self.olt2_per_port))


def topology_data(trap_port: int, shape: Shape = Shape()) -> dict[str, Any]:
    """configs/lab.yaml with distinctive secrets, traps to the agent, no pre-configured ONT,
    and unclaimed ONTs generated on both OLTs as ``shape`` says."""
    data: dict[str, Any] = yaml.safe_load(
        (REPO / "configs" / "lab.yaml").read_text(encoding="utf-8"))
    data["defaults"]["credentials"]["password"] = PASSWORD
    data["defaults"]["snmp"]["community_rw"] = COMMUNITY
    data["trap_targets"] = [{"address": "127.0.0.1", "port": trap_port, "version": "v2c",
                             "community": TRAP_COMMUNITY}]
    for olt in data["olts"]:
        # The agent's allocator knows the onu-ids of ONUs configured on the OLT before it came
        # (discovery reports them) but not their GEM ports and alloc-ids, which it would hand
        # out again: keep only unclaimed ONTs.
        olt["onts"] = [o for o in olt["onts"] if "configured" not in o]
        ports, per_port = shape.of(olt["name"])
        olt["pon_ports"] = ports
        olt["generate"] = {"onts_per_port": per_port, "vendor": VENDOR}
    return data


def agent_settings(lab: Lab, tmp_path: Path, api_port: int, trap_port: int) -> dict[str, Any]:
    olt1, olt2 = lab.olts["olt1"], lab.olts["olt2"]
    known = tmp_path / "known_hosts"
    key = lab.host_keys["olt1"].export_public_key().decode().strip()
    known.write_text(f"{olt1.address} {key}\n", encoding="utf-8")
    data: dict[str, Any] = {
        "store": str(tmp_path / "ponctl.sqlite3"),
        "catalog": str(REPO / "configs" / "catalog.yaml"),
        "devices": [
            {"name": "olt1", "address": olt1.address, "protocol": "netconf",
             "port": lab.ports.netconf, "profile": "sim-olt-netconf",
             "ssh": {"username": olt1.credentials.username, "password": {"env": PASSWORD_VAR},
                     "known_hosts": str(known)}},
            {"name": "olt2", "address": olt2.address, "protocol": "snmp",
             "port": lab.ports.snmp, "profile": "sim-olt-snmp",
             "snmp": {"version": "v2c", "community": {"env": COMMUNITY_VAR}}},
        ],
        "api": {"listen": "127.0.0.1", "port": api_port,
                "tokens": [{"name": "oss", "role": "admin", "token": {"env": ADMIN_VAR}}]},
        "traps": {"listen": "127.0.0.1", "port": trap_port,
                  "communities": [{"env": TRAP_VAR}]},
        "audit_interval": 0,
    }
    parse_settings(data, "test settings")  # fail here, not in the subprocess
    return data


def generated(lab: Lab) -> dict[str, str]:
    """The generated ONTs: serial -> OLT."""
    return {serial: name for name, olt in lab.olts.items() for serial in olt.onts
            if serial.startswith(VENDOR)}


# ---- the daemon as a subprocess -----------------------------------------------------------
@dataclass
class Agent:
    """Runs ``ponctl agent run`` again and again on one settings file; its stderr (JSON lines)
    goes to ``log`` and to :attr:`messages`, the current run's."""

    config: Path
    log: Path
    env: dict[str, str]
    runs: int = 0
    messages: list[str] = field(default_factory=list)
    proc: asyncio.subprocess.Process | None = None
    reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        assert self.proc is None
        self.runs += 1
        self.messages = []
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "agent", "run", "--config", str(self.config),
            "--json-logs", cwd=REPO, env=self.env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        self.reader = asyncio.create_task(self._read(self.proc, self.runs))

    async def _read(self, proc: asyncio.subprocess.Process, run: int) -> None:
        assert proc.stderr is not None
        # Line-buffered: the checks read the log while the last run is still going.
        with self.log.open("a", encoding="utf-8", buffering=1) as out:
            out.write(f"==== run {run} (pid {proc.pid}) ====\n")
            while line := await proc.stderr.readline():
                text = line.decode(errors="replace")
                out.write(text)
                try:
                    self.messages.append(str(json.loads(text)["message"]))
                except (ValueError, KeyError, TypeError):
                    self.messages.append(text.strip())

    def saw(self, prefix: str) -> int:
        return sum(1 for m in self.messages if m.startswith(prefix))

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def _reap(self) -> int:
        assert self.proc is not None
        assert self.reader is not None
        code = await asyncio.wait_for(self.proc.wait(), 30)
        await asyncio.wait_for(self.reader, 30)
        self.proc = self.reader = None
        return code

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind runs in the daemon."""
        assert self.proc is not None
        assert self.proc.returncode is None, f"the agent exited by itself: {self.messages[-5:]}"
        os.kill(self.proc.pid, signal.SIGKILL)
        code = await self._reap()
        assert code == -signal.SIGKILL

    async def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return await self._reap()

    async def abort(self) -> None:
        if self.proc is not None:
            if self.proc.returncode is None:
                self.proc.kill()
            with contextlib.suppress(Exception):
                await self._reap()


class Api:
    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self.session = session
        self.base = f"http://127.0.0.1:{port}/api/v1"

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.session.request(
                method, self.base + path, headers={"Authorization": f"Bearer {ADMIN}"},
                data=None if body is None else json.dumps(body), timeout=HTTP_TIMEOUT) as resp:
            text = await resp.text()
            return resp.status, json.loads(text) if text else None


# ---- the OSS: objects, bindings and orders, retried while the agent is down ---------------
@dataclass
class Oss:
    api: Api
    pace: float = PACE  # seconds between two ONTs' first requests
    acked: dict[str, str] = field(default_factory=dict)  # external ref -> order id
    retries: int = 0

    async def provision(self, serial: str, n: int, limit: asyncio.Semaphore) -> None:
        """Object, binding and order for one ONT; the ``n``-th starts ``n * pace`` seconds
        in (orders keep arriving while the first ones are pushed, and while the agent is
        killed and restarted)."""
        await asyncio.sleep(n * self.pace)
        obj, ref = f"obj-{serial.lower()}", f"oss-{serial}"
        steps: list[tuple[str, Any, tuple[int, ...]]] = [
            ("/objects", {"id": obj, "address": f"{n} Crash Street"}, (200, 201)),
            (f"/objects/{obj}/bind", {"serial": serial}, (200,)),
            ("/orders", {"object_id": obj, "isp": "fibrenet" if n % 2 else "speedy",
                         "service_type": "internet", "start_at": START,
                         "external_ref": ref}, (200, 201)),
        ]
        for path, body, ok in steps:
            while True:
                try:
                    async with limit:
                        code, answer = await self.api.call("POST", path, body)
                except DOWN:
                    self.retries += 1
                    await asyncio.sleep(0.25)
                    continue
                assert code in ok, (path, code, answer)
                break
        self.acked[ref] = answer["id"]


# ---- what the store and the OLTs hold -----------------------------------------------------
async def push_counts(store: Store) -> dict[str, int]:
    def run(c: sqlite3.Connection) -> dict[str, int]:
        return {str(p): int(n) for p, n in
                c.execute("SELECT phase, count(*) FROM pushes GROUP BY phase")}

    return await store.read(run)


async def pending_ids(store: Store) -> dict[int, str]:
    return {p.id: p.order_id or "" for p in await store.pending_pushes()}


async def settled(store: Store, total: int) -> bool:
    """Every one of ``total`` orders has a verified last apply push, and none is pending."""

    def run(c: sqlite3.Connection) -> bool:
        done = c.execute(
            "SELECT count(*) FROM orders o WHERE (SELECT phase FROM pushes p"
            " WHERE p.order_id = o.id ORDER BY p.id DESC LIMIT 1) = 'verified'").fetchone()[0]
        return bool(done == total)

    return await store.read(run)


async def until(what: str, check: Callable[[], Awaitable[bool]], agent: Agent,
                timeout: float = DEADLINE) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        assert agent.alive, f"the agent exited while waiting for: {what}"
        await asyncio.sleep(0.01)


@dataclass(frozen=True)
class OnuCount:
    """One serial's configuration entries on one OLT."""

    vanis: int
    forwarders: int
    user_subifs: int
    uni_subifs: int
    gemports: int


def onu_counts(olt: Olt) -> dict[str, OnuCount]:
    """Count, in the OLT's running configuration, what is configured for each serial: its
    v-ani registrations, then (through the v-ani's v-enets) the service forwarders, the
    OLT-side (user) VLAN sub-interfaces, the UNI VLAN sub-interfaces linked to those v-enets
    in the link table, and the GEM ports (one pass over the configuration for all serials)."""
    root = olt.running
    facts = dv.interfaces(root)
    vani = {f.name: f.serial for f in facts if f.kind == "v-ani" and f.serial is not None}
    venet = {f.name: vani[f.venet_lower] for f in facts
             if f.venet_lower is not None and f.venet_lower in vani}
    uni = {src: venet[t] for src, targets in dv._links(root) for t in targets if t in venet}
    user = {f.name: venet[f.subif.lower] for f in facts
            if f.subif is not None and f.subif.lower in venet}
    uni_subifs = [uni[f.subif.lower] for f in facts
                  if f.subif is not None and f.subif.lower in uni]
    forwarders = [serial for _, ports in dv._forwarders(root)
                  for serial in {user[p] for p in ports if p in user}]
    gems = [venet[row[0]] for row in dv._gem_rows(root, "gemports", "gemport", "interface")
            if row[0] in venet]

    per = [Counter(vani.values()), Counter(forwarders), Counter(user.values()),
           Counter(uni_subifs), Counter(gems)]
    return {serial: OnuCount(*(c[serial] for c in per)) for serial in per[0]
            if serial is not None}


async def check_orders(api: Api, oss: Oss, serials: dict[str, str]) -> None:
    """No lost order, no duplicate: one order per ONT's object and external reference, each
    the order the OSS was told about, each active."""
    code, body = await api.call("GET", "/orders")
    assert code == 200
    orders = body["orders"]
    refs = [o["external_ref"] for o in orders]
    assert len(refs) == len(set(refs)), "an external reference repeats"
    assert sorted(refs) == sorted(f"oss-{s}" for s in serials)
    assert len(orders) == len(serials)
    objects = [o["object_id"] for o in orders]
    assert len(objects) == len(set(objects))
    by_ref = {o["external_ref"]: o for o in orders}
    assert set(oss.acked) == set(by_ref)
    for ref, oid in oss.acked.items():
        assert by_ref[ref]["id"] == oid, ref
        assert by_ref[ref]["status"] == "active", by_ref[ref]


async def check_resumed(api: Api, store: Store, agent: Agent, kills: list[dict[int, str]],
                        killed_at: list[datetime]) -> None:
    """The pushes the kills left pending were resumed: the same push record finished
    verified after the restart; the daemon logged it; the order's history went from awaiting
    provisioning to active after the kill."""
    log_text = agent.log.read_text(encoding="utf-8")
    left = {pid: (oid, i) for i, k in enumerate(kills) for pid, oid in k.items()}
    assert left, "no kill left a push pending: nothing was in flight"
    for pid, (oid, i) in left.items():
        push = await store.get_push(pid)
        assert push.phase is PushPhase.VERIFIED, push
        assert push.finished_at is not None
        assert push.finished_at > killed_at[i]
        assert f"resuming push {pid} of order {oid}" in log_text
        code, order = await api.call("GET", f"/orders/{oid}")
        assert code == 200
        before = [e for e in order["events"]
                  if datetime.fromisoformat(e["at"]) <= killed_at[i]]
        after = [e for e in order["events"]
                 if datetime.fromisoformat(e["at"]) > killed_at[i]]
        assert before, order["events"]
        assert before[-1]["status"] == "awaiting-provisioning", order["events"]
        assert any(e["status"] == "active" for e in after), order["events"]
        assert order["events"][-1]["status"] == "active"


def check_olt(olt: Olt, serials: list[str]) -> None:
    """Each ONT's configuration is on the OLT exactly once, complete and applied."""
    view = olt.view
    assert view.other_forwarders == [], view.other_forwarders
    every = onu_counts(olt)
    for serial in serials:
        counts = every.get(serial, OnuCount(0, 0, 0, 0, 0))
        assert counts == OnuCount(1, 1, 1, 1, 1), (olt.name, serial, counts)
        onu = view.onu_by_serial(serial)
        assert onu is not None
        services = view.services_of(onu.vani)
        assert len(services) == 1, (serial, services)
        assert services[0].complete, (serial, services[0].problems)
        ont = olt.onts[serial]
        assert ont.state is OntState.OPERATIONAL, (serial, ont.state)
        assert len(ont.applied) == 1, (serial, ont.applied)


# ---- shared by the crash runs ------------------------------------------------------------
def new_agent(lab: Lab, work: Path, trap_port: int) -> tuple[Agent, int]:
    """The daemon's settings file in ``work`` (its store there too, its API on a free port)
    and the :class:`Agent` that runs it with its secrets in its environment; the API port."""
    api_port = free_port(socket.SOCK_STREAM)
    config = work / "agent.yaml"
    config.write_text(yaml.safe_dump(agent_settings(lab, work, api_port, trap_port)),
                      encoding="utf-8")
    env = {**os.environ, PASSWORD_VAR: PASSWORD, COMMUNITY_VAR: COMMUNITY,
           TRAP_VAR: TRAP_COMMUNITY, ADMIN_VAR: ADMIN}
    return Agent(config, work / "agent.log", env), api_port


async def api_up(api: Api) -> bool:
    try:
        code, _ = await api.call("GET", "/onts")
    except DOWN:
        return False
    return code == 200


async def abandon(agent: Agent, creating: asyncio.Future[list[None]] | None) -> None:
    """After a failed check: stop the OSS, kill the daemon, print the tail of its log."""
    if creating is not None:
        creating.cancel()
        with contextlib.suppress(BaseException):
            await creating
    await agent.abort()
    lines = agent.log.read_text(encoding="utf-8").splitlines() if agent.log.exists() else []
    print(f"the agent's stderr ({agent.log}), last {LOG_TAIL} lines:", *lines[-LOG_TAIL:],
          sep="\n", file=sys.stderr)


def check_no_secret_logged(agent: Agent) -> None:
    log_text = agent.log.read_text(encoding="utf-8")
    for secret in (PASSWORD, COMMUNITY, TRAP_COMMUNITY, ADMIN):
        assert secret not in log_text, "a secret is in the agent's log"


# ---- kills at random points ---------------------------------------------------------------
@contextlib.asynccontextmanager
async def crash_lab(shape: Shape = Shape()) -> AsyncIterator[tuple[Lab, int]]:
    """The simulated lab with ``shape``'s ONTs (each device on its own address, standard
    ports), and the UDP port its traps go to (the agent's trap listener)."""
    trap_port = free_port(socket.SOCK_DGRAM)
    topo = parse_topology(topology_data(trap_port, shape), "crash lab")
    async with running_lab(topo, own_addresses=True) as lab:
        yield lab, trap_port


@dataclass
class KillRecord:
    at_s: float  # seconds since the run started
    acked: int  # orders the OSS had been told about
    pushes: dict[str, int]  # push records by phase
    left_pending: int


@dataclass
class CrashSummary:
    onts: int
    kills: list[KillRecord]
    oss_retries: int
    seconds: float
    pushes: dict[str, int]
    resumed: int  # pushes a kill left pending, finished by a later run

    def as_json(self) -> dict[str, Any]:
        return {"onts": self.onts, "kills": len(self.kills),
                "kills_leaving_pushes_pending": sum(1 for k in self.kills if k.left_pending),
                "pushes_left_pending": sum(k.left_pending for k in self.kills),
                "resumed": self.resumed, "oss_retries": self.oss_retries,
                "seconds": round(self.seconds, 1), "pushes": self.pushes,
                "kill_points": [{"at_s": round(k.at_s, 1), "acked": k.acked,
                                 "pushes": k.pushes, "left_pending": k.left_pending}
                                for k in self.kills]}


async def run_random_kills(lab: Lab, trap_port: int, work: Path, *, kills: int, seed: int,
                           delay: tuple[float, float] = (0.3, 3.0), pace: float = PACE,
                           say: Callable[[str], None] = print) -> CrashSummary:
    """The OSS streams an object, binding and order for every generated ONT (one every
    ``pace`` s) while the daemon, started on a fresh store, is killed with SIGKILL ``kills``
    times, each a random ``delay`` after it was (re)started -- wherever that lands: start-up,
    the resume of what the last kill left pending, discovery, a bulk push, an idle moment --
    and restarted on the same store. After the last restart everything must become active
    by itself; then every check of the scripted run holds (no lost or duplicate order, no
    pending push, every push a kill left pending finished by a later run, each ONT's
    configuration on its OLT exactly once). Raises AssertionError naming what broke, after
    printing the tail of the daemon's log."""
    rng = random.Random(seed)
    serials = generated(lab)
    agent, api_port = new_agent(lab, work, trap_port)
    deadline = max(DEADLINE, len(serials) / 5)  # activation at >= 5 ONTs/s, start-up included
    t0 = time.monotonic()
    records: list[KillRecord] = []
    pending_by_kill: list[dict[int, str]] = []
    killed_at: list[datetime] = []
    creating: asyncio.Future[list[None]] | None = None
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, api_port)
            oss = Oss(api, pace=pace)
            await agent.start()
            store = await Store(work / "ponctl.sqlite3").open()
            try:
                limit = asyncio.Semaphore(8)
                creating = asyncio.ensure_future(asyncio.gather(
                    *(oss.provision(s, n, limit) for n, s in enumerate(sorted(serials)))))
                for k in range(kills):
                    wait = rng.uniform(*delay)
                    end = time.monotonic() + wait
                    while time.monotonic() < end:
                        assert agent.alive, f"the agent exited by itself: {agent.messages[-5:]}"
                        await asyncio.sleep(0.02)
                    await agent.kill()
                    killed_at.append(datetime.now(UTC))
                    pending_by_kill.append(await pending_ids(store))
                    records.append(KillRecord(time.monotonic() - t0, len(oss.acked),
                                              await push_counts(store),
                                              len(pending_by_kill[-1])))
                    say(f"kill {k + 1}/{kills} at {records[-1].at_s:.1f} s "
                        f"({wait:.1f} s after start): {records[-1].acked} orders acknowledged, "
                        f"pushes {records[-1].pushes}, left pending: {records[-1].left_pending}")
                    await agent.start()
                await asyncio.wait_for(creating, deadline)
                await until("every order is active", lambda: settled(store, len(serials)),
                            agent, deadline)
                await until("the API is up", lambda: api_up(api), agent)
                elapsed = time.monotonic() - t0
                await check_orders(api, oss, serials)
                assert await store.pending_pushes() == ()
                if any(pending_by_kill):
                    await check_resumed(api, store, agent, pending_by_kill, killed_at)
                for olt_name, olt in lab.olts.items():
                    check_olt(olt, [s for s, o in serials.items() if o == olt_name])
                code = await agent.stop()
                assert code == 0, f"the agent's exit code after SIGTERM: {code}"
                final = await push_counts(store)
            finally:
                await store.close()
    except BaseException:
        await abandon(agent, creating)
        raise
    check_no_secret_logged(agent)
    resumed = len({pid for k in pending_by_kill for pid in k})
    return CrashSummary(len(serials), records, oss.retries, elapsed, final, resumed)
