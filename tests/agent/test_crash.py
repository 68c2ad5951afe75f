"""``kill -9`` during a bulk push, and restart: no lost order, no duplicate configuration.

DESIGN.md, "Durable first": every push is written to the store before and after the device
side effect, a restarted agent resumes where it stopped, and pushes are idempotent. This test
proves it at daemon level, across real sockets and a real process boundary:

* the simulated lab runs in the test process (every device on its own address, standard
  ports), with 48 unclaimed ONTs added on olt1 (NETCONF) and 16 on olt2 (SNMP, watched by
  traps so that its ONTs are discovered);
* the real daemon (``python -m agent agent run --config FILE``) runs as a subprocess, its
  secrets in its environment, its API on a fixed port, its stderr collected in a file;
* an OSS client creates an object, a binding and an order (with an external reference, the
  idempotency key) for every ONT through the HTTP API, one ONT every few tens of ms, retrying
  each step while the agent is down, as an OSS would (a request the dead agent committed but
  never answered is sent again: the same order must come back, not a second one);
* the daemon is killed with SIGKILL four times, at different points: during the API-driven
  bulk push, with orders still arriving (NETCONF batches and SNMP sets in flight); during the
  start-up resume of the pushes the previous kill left pending (a push interrupted twice);
  once it listens again, during the second bulk push of the orders the OSS could not send
  while it was down (during the resume if they were all in); and at a random moment after the
  next start-up got to work. Each time it is restarted on the same store file.

After the last restart, once every order is active: every acknowledged order exists exactly
once (no lost order, no duplicate, external references unique, one order per object); on each
simulated OLT each ONT's configuration is there exactly once (one v-ani registration, one
forwarder, one user-side VLAN sub-interface, one UNI VLAN sub-interface, one GEM port; no
half-built forwarder; the ONT operational with its one service applied); no push record is
pending in the store; the pushes the kills left pending were resumed (same push record
finished after the restart, "resuming push" in the daemon's log) and the histories of their
orders show them going from awaiting provisioning to active after the kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
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
PER_PORT = {"olt1": 12, "olt2": 8}  # olt1: 4 PON ports -> 48 ONTs; olt2: 2 ports -> 16
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


def topology_data(trap_port: int) -> dict[str, Any]:
    """configs/lab.yaml with distinctive secrets, traps to the agent, no pre-configured ONT,
    and unclaimed ONTs generated on both OLTs."""
    data: dict[str, Any] = yaml.safe_load(
        (REPO / "configs" / "lab.yaml").read_text(encoding="utf-8"))
    data["defaults"]["credentials"]["password"] = PASSWORD
    data["defaults"]["snmp"]["community_rw"] = COMMUNITY
    data["trap_targets"] = [{"address": "127.0.0.1", "port": trap_port, "version": "v2c",
                             "community": TRAP_COMMUNITY}]
    for olt in data["olts"]:
        # The agent's allocator knows nothing of ONUs configured on the OLT before it came
        # (it would hand out their onu-ids and GEM ports again): keep only unclaimed ONTs.
        olt["onts"] = [o for o in olt["onts"] if "configured" not in o]
        olt["generate"] = {"onts_per_port": PER_PORT[olt["name"]], "vendor": VENDOR}
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
        with self.log.open("a", encoding="utf-8", buffering=1) as out:  # line-buffered: read mid-run
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
    acked: dict[str, str] = field(default_factory=dict)  # external ref -> order id
    retries: int = 0

    async def provision(self, serial: str, n: int, limit: asyncio.Semaphore) -> None:
        """Object, binding and order for one ONT; the ``n``-th starts ``n * PACE`` seconds
        in (orders keep arriving while the first ones are pushed, and while the agent is
        killed and restarted)."""
        await asyncio.sleep(n * PACE)
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


def onu_counts(olt: Olt, serial: str) -> OnuCount:
    """Count, in the OLT's running configuration, what was configured for ``serial``: its
    v-ani registrations, then (through the v-ani's v-enets) the service forwarders, the
    OLT-side (user) VLAN sub-interfaces, the UNI VLAN sub-interfaces linked to those v-enets
    in the link table, and the GEM ports."""
    root = olt.running
    facts = dv.interfaces(root)
    vanis = [f.name for f in facts if f.kind == "v-ani" and f.serial == serial]
    venets = {f.name for f in facts if f.venet_lower is not None and f.venet_lower in vanis}
    unis = {src for src, targets in dv._links(root) for t in targets if t in venets}
    user = [f.name for f in facts if f.subif is not None and f.subif.lower in venets]
    uni = [f.name for f in facts if f.subif is not None and f.subif.lower in unis]
    forwarders = [name for name, ports in dv._forwarders(root) if set(ports) & set(user)]
    gems = [row for row in dv._gem_rows(root, "gemports", "gemport", "interface")
            if row[0] in venets]
    return OnuCount(len(vanis), len(forwarders), len(user), len(uni), len(gems))


# ---- the test ------------------------------------------------------------------------------
@pytest.fixture
async def crash_lab() -> AsyncIterator[tuple[Lab, int]]:
    trap_port = free_port(socket.SOCK_DGRAM)
    topo = parse_topology(topology_data(trap_port), "crash lab")
    async with running_lab(topo, own_addresses=True) as lab:
        yield lab, trap_port


@pytest.mark.timeout(120)
async def test_kill_9_during_a_bulk_push_loses_no_order_and_duplicates_no_config(
        crash_lab: tuple[Lab, int], tmp_path: Path, request: pytest.FixtureRequest) -> None:
    lab, trap_port = crash_lab
    serials = generated(lab)
    assert len(serials) == 4 * PER_PORT["olt1"] + 2 * PER_PORT["olt2"]
    api_port = free_port(socket.SOCK_STREAM)
    config = tmp_path / "agent.yaml"
    config.write_text(yaml.safe_dump(agent_settings(lab, tmp_path, api_port, trap_port)),
                      encoding="utf-8")
    env = {**os.environ, PASSWORD_VAR: PASSWORD, COMMUNITY_VAR: COMMUNITY,
           TRAP_VAR: TRAP_COMMUNITY, ADMIN_VAR: ADMIN}
    agent = Agent(config, tmp_path / "agent.log", env)
    rng = random.Random(os.environ.get("PYTEST_XDIST_WORKER", "") + request.node.nodeid)
    t0 = time.monotonic()
    kills: list[dict[int, str]] = []  # per kill: the pushes it left pending (id -> order)
    killed_at: list[datetime] = []
    creating: asyncio.Future[list[None]] | None = None
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, api_port)
            oss = Oss(api)

            async def api_up() -> bool:
                try:
                    code, _ = await api.call("GET", "/onts")
                except DOWN:
                    return False
                return code == 200

            async def discovered() -> bool:
                code, body = await api.call("GET", "/onts")
                up = {o["serial"] for o in body["onts"] if o["state"] == "up"}
                return code == 200 and set(serials) <= up

            # Run 1: the agent discovers every ONT (olt2 through its trap listener's first
            # walk), then the OSS sends its orders in a quick stream: a bulk push.
            await agent.start()
            await until("the API is up", api_up, agent)
            await until("every generated ONT is discovered", discovered, agent)
            store = await Store(tmp_path / "ponctl.sqlite3").open()
            try:
                limit = asyncio.Semaphore(8)
                creating = asyncio.ensure_future(asyncio.gather(
                    *(oss.provision(s, n, limit) for n, s in enumerate(sorted(serials)))))

                async def kill(when: str) -> None:
                    await agent.kill()
                    killed_at.append(datetime.now(UTC))
                    kills.append(await pending_ids(store))
                    print(f"kill {len(kills)} ({when}) at {time.monotonic() - t0:.1f} s: "
                          f"{len(oss.acked)} orders acknowledged, pushes "
                          f"{await push_counts(store)}, left pending: {len(kills[-1])}")

                base = await push_counts(store)

                async def in_flight(at_least: int) -> bool:
                    """At least ``at_least`` pushes verified since ``base``, and some pushes
                    recorded but not finished (on their way to a device, or queued)."""
                    now = await push_counts(store)
                    done = now.get("verified", 0) - base.get("verified", 0)
                    pending = sum(now.get(p.value, 0) for p in
                                  (PushPhase.INTENT_RECORDED, PushPhase.SENT,
                                   PushPhase.COMMITTED))
                    return done >= at_least and pending > 0

                total = len(serials)

                async def in_flight_or_done(at_least: int) -> bool:
                    """:func:`in_flight`, or nothing left to push at all (then the kill hits
                    an idle agent rather than the test waiting for work that never comes)."""
                    return await in_flight(at_least) or (
                        creating is not None and creating.done()
                        and await settled(store, total))

                # Kill 1: in the middle of the API-driven bulk push, with orders still
                # arriving (the OSS retries what the dead agent did not answer).
                await until("pushes in flight after the first few verified",
                            lambda: in_flight(3), agent)
                await kill("bulk push")

                # Kill 2: the restarted agent resumes the pending pushes first (before its
                # API listens); kill it while it does, leaving a resumed push pending again.
                await agent.start()
                if kills[-1]:
                    resumes = min(2, len(kills[-1]))

                    async def resuming() -> bool:
                        return agent.saw("resuming push") >= resumes

                    await until("resuming the pending pushes", resuming, agent)
                else:
                    base = await push_counts(store)
                    await until("pushes in flight", lambda: in_flight_or_done(1), agent)
                await kill("resuming")

                # Kill 3: once the restarted agent has resumed what was pending and listens
                # again, during the second bulk push (the orders the OSS could not send while
                # the agent was down); if every order was already in, during the resume.
                await agent.start()
                if not creating.done():
                    async def listening() -> bool:
                        return agent.saw("listening on http") > 0

                    await until("the API listens again", listening, agent)
                base = await push_counts(store)
                await until("pushes in flight after a few verified",
                            lambda: in_flight_or_done(3), agent)
                await kill("second bulk push" if agent.saw("listening on http") else "resume")

                # Kill 4: at a random moment after the next start-up got to work.
                await agent.start()
                if kills[-1]:
                    async def resumed_one() -> bool:
                        return agent.saw("resuming push") > 0

                    await until("resuming the pending pushes", resumed_one, agent)
                await asyncio.sleep(rng.uniform(0.0, 1.5))
                await kill("random")

                # The last restart: everything becomes active by itself.
                await agent.start()
                await asyncio.wait_for(creating, DEADLINE)
                await until("every order is active", lambda: settled(store, total), agent)
                await until("the API is up", api_up, agent)
                elapsed = time.monotonic() - t0
                await check_orders(api, oss, serials)
                pending = await store.pending_pushes()
                assert pending == (), pending
                await check_resumed(api, store, agent, kills, killed_at)
                for olt_name, olt in lab.olts.items():
                    check_olt(olt, [s for s, o in serials.items() if o == olt_name])
                code = await agent.stop()
                assert code == 0
                assert await store.pending_pushes() == ()
            finally:
                await store.close()
            print(f"{len(kills)} kills, {oss.retries} OSS retries, all active after "
                  f"{elapsed:.1f} s")
    except BaseException:
        if creating is not None:
            creating.cancel()
            with contextlib.suppress(BaseException):
                await creating
        await agent.abort()
        lines = agent.log.read_text(encoding="utf-8").splitlines() if agent.log.exists() else []
        print(f"the agent's stderr ({agent.log}), last {LOG_TAIL} lines:", *lines[-LOG_TAIL:],
              sep="\n", file=sys.stderr)
        raise
    log_text = agent.log.read_text(encoding="utf-8")
    for secret in (PASSWORD, COMMUNITY, TRAP_COMMUNITY, ADMIN):
        assert secret not in log_text


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
    for serial in serials:
        counts = onu_counts(olt, serial)
        assert counts == OnuCount(1, 1, 1, 1, 1), (olt.name, serial, counts)
        onu = view.onu_by_serial(serial)
        assert onu is not None
        services = view.services_of(onu.vani)
        assert len(services) == 1, (serial, services)
        assert services[0].complete, (serial, services[0].problems)
        ont = olt.onts[serial]
        assert ont.state is OntState.OPERATIONAL, (serial, ont.state)
        assert len(ont.applied) == 1, (serial, ont.applied)
