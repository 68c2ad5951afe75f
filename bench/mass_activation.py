"""Mass activation: ONTs arriving on 8 NETCONF OLTs until every order is active and every PHAN
URL written; single-activation latency on an idle system; growth with the number of ONTs.

    python bench/mass_activation.py [--sizes 100,1000,10000] [--repeat 3] [--repeat-large 1]
                                    [--single 100] [--gateways snmp|mix] [--profile DIR]

Three processes, so that each one's CPU is its own:

  simulator     ``ponctl sim run`` on configs/lab-mass.yaml (8 OLTs x 16 PON ports x 80 ONTs,
                NETCONF only, one gateway behind each ONT (its model set by --gateways), no ONT
                plugged in at start, ranging_delay 0: no simulated delay), its control
                endpoint on a free port
  agent         ``ponctl agent run`` with a generated settings file: the 8 OLTs over NETCONF
                (known hosts from the lab's endpoints), gateway class ``sim-n`` (NETCONF) --
                or ``--gateways snmp|ssh``, or ``mix``: the three in rotation --, PHAN
                keys, a fresh SQLite store, default engine options (no batch window: a
                NETCONF queue takes whatever queued during its previous transaction)
  this script   the OSS and the field: through the agent's API, for each ONT an object, its
                binding, a subscriber, a line of service, the gateway, the line's association
                (which issues the PHAN URL) and an internet order starting now -- all before
                the timed window; then it plugs the ONTs in through the lab's control endpoint
                (``POST /olts/{name}/onts``, 16 requests in flight) as fast as it can

The timed window opens at the first plug and closes when the last order turned active or the
last gateway was read back with its URL, whichever is later (timestamps from the agent's
store: ``order_events`` and ``gateway_state.verified_at``; the script polls the store read-only
to know when to stop). Per-ONT latency: plug request sent -> order ``active`` event.
Agent CPU seconds: utime+stime from /proc/<pid>/stat over the window (and over the setup);
peak RSS: VmHWM from /proc/<pid>/status at the end (the whole life of the process, setup
included). Afterwards every order's last event must be ``active``, every gateway state
``written`` with the line's URL, every ONT operational with its service applied on its OLT
and every gateway holding its line's URL in the simulator (read through the control
endpoint); failures are counted and reported. Then ``GET /metrics`` is timed on the idle
agent with every order in its store (median of 3 scrapes: wall time and agent CPU).

Single activation (``--single K``): a fresh lab and agent with K ONTs set up; they are plugged
in one at a time, each after the previous one's order is active and its gateway written and
a pause, so the system is idle: plug -> order active, p50/p99 over the K.

Growth: ``--sizes`` runs each size on a fresh lab and agent, ``--repeat`` times (sizes of 10,000
and more ``--repeat-large`` times), and reports the medians. ``--profile DIR`` runs the agent
and the simulator under cProfile (slower: for finding hot spots, not for the figures).
Results go to bench/results/mass_activation.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from anywhere

from agent.client import ApiClient  # noqa: E402
from agent.phan import KEYS_ENV_VAR, Keyring  # noqa: E402
from bench.report import markdown_table  # noqa: E402

RESULTS = REPO / "bench" / "results" / "mass_activation.json"
TOPOLOGY = REPO / "configs" / "lab-mass.yaml"
TOKEN_VAR, PASSWORD_VAR, COMMUNITY_VAR = "BENCH_API_TOKEN", "BENCH_PASSWORD", "BENCH_COMMUNITY"
GW_CLASS = {"SL-GW-N": "sim-n", "SL-GW-S": "sim-s", "SL-GW-C": "sim-c"}
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---- processes ------------------------------------------------------------------------------

class Proc:
    """A child process (the simulator or the agent), its CPU seconds and memory."""

    def __init__(self, name: str, argv: list[str], log: Path,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(argv, cwd=REPO, stdout=self._out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     env={**os.environ, **(env or {})})

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def status_mib(self, key: str) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
        return 0.0

    def check(self) -> None:
        if self.proc.poll() is not None:
            tail = self.log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the {self.name} exited ({self.proc.returncode}):\n{tail}")

    def stop(self, timeout: float = 60) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _argv(module_args: list[str], profile: Path | None) -> list[str]:
    run = ["-m", "agent"]
    if profile is None:
        return [sys.executable, *run, *module_args]
    return [sys.executable, "-m", "cProfile", "-o", str(profile), *run, *module_args]


async def _until(what: str, probe: Callable[[], Awaitable[bool]], within: float,
                 procs: Iterable[Proc] = (), interval: float = 0.1) -> None:
    deadline = time.monotonic() + within
    while True:
        for p in procs:
            p.check()
        with contextlib.suppress(aiohttp.ClientError, OSError):
            if await probe():
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {within:g} s")
        await asyncio.sleep(interval)


# ---- the lab ----------------------------------------------------------------------------------

@dataclass
class Target:
    """One ONT of the run with everything the OSS creates for it."""

    serial: str
    olt: str
    port: str
    gateway: str
    model: str  # the gateway's model
    address: str = ""  # the gateway's management address (from the lab's endpoints)

    @property
    def object_id(self) -> str:
        return f"obj-{self.serial}"

    @property
    def line(self) -> str:
        return f"LOS-{self.serial}"

    @property
    def subscriber(self) -> str:
        return f"SUB-{self.serial}"

    @property
    def ref(self) -> str:
        return f"mass-{self.serial}"


def lab_topology(source: Path, work: Path, gateways: str, address_base: str | None = None,
                 onts_per_port: int | None = None) -> tuple[Path, dict[str, Any]]:
    """The topology file the simulator runs: ``source`` with the gateways' models for
    ``--gateways`` (``mix``: all three kinds in rotation), and optionally another address
    range and fewer ONTs per port (the smoke test runs beside a bench)."""
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    if address_base is not None:
        data["address_base"] = address_base
    if onts_per_port is not None:
        for olt in data["olts"]:
            olt["generate"] = {**olt["generate"], "onts_per_port": onts_per_port}
    models = {"snmp": ["SL-GW-S"], "netconf": ["SL-GW-N"], "ssh": ["SL-GW-C"],
              "mix": ["SL-GW-S", "SL-GW-N", "SL-GW-C"]}[gateways]
    for olt in data["olts"]:
        olt["generate"] = {**olt["generate"], "gateway_models": models}
    path = work / "topology.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path, data


def choose(topo: dict[str, Any], n: int, skip: int = 0) -> list[Target]:
    """``n`` ONTs of the generated lab, spread evenly: the k-th ONT of every port of every
    OLT before the (k+1)-th of any (serials as simulator/lab.py generates them)."""
    found: list[tuple[tuple[int, int, int], Target]] = []
    for i, olt in enumerate(topo["olts"]):
        gen = olt["generate"]
        count = olt.get("pon_ports", 4)
        ports = [f"0/1/{p}" for p in range(count)] if isinstance(count, int) else list(count)
        models = gen["gateway_models"]
        m = 0
        for p, port in enumerate(ports):
            for k in range(gen["onts_per_port"]):
                serial = f"{gen.get('vendor', 'SIML')}{i:02X}{p:02X}{k:04X}"
                found.append(((k, p, i), Target(serial, olt["name"], port,
                                                f"gw-{serial.lower()}", models[m % len(models)])))
                m += 1
    found.sort(key=lambda x: x[0])
    if skip + n > len(found):
        raise SystemExit(f"the topology has {len(found)} ONTs; {skip + n} wanted")
    return [t for _, t in found[skip:skip + n]]


def catalog_file(work: Path, olts: list[str]) -> Path:
    data = yaml.safe_load((REPO / "configs" / "catalog.yaml").read_text(encoding="utf-8"))
    data["olts"] = {name: {"uplinks": {"0/9/0": ["1000-1009", 2000, 3000]}} for name in olts}
    path = work / "catalog.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def agent_settings(work: Path, endpoints: dict[str, Any], ports: dict[str, int],
                   api_port: int) -> Path:
    devices = {d["name"]: d for d in endpoints["devices"]}
    olts = sorted((d for d in devices.values() if d["kind"] == "olt"),
                  key=lambda d: int(d["name"].removeprefix("olt")))
    known = work / "known_hosts"
    known.write_text("".join(f"{d['address']} {d['ssh_host_key']}\n" for d in olts),
                     encoding="utf-8")
    olt_ssh = {"username": "admin", "password": {"env": PASSWORD_VAR}, "known_hosts": str(known)}
    gw_ssh = {"username": "admin", "password": {"env": PASSWORD_VAR},
              "insecure_no_host_key_check": True}
    snmp = {"version": "v2c", "community": {"env": COMMUNITY_VAR}}
    settings = {
        "store": str(work / "ponctl.sqlite3"),
        "catalog": str(catalog_file(work, [d["name"] for d in olts])),
        "devices": [{"name": d["name"], "address": d["address"], "protocol": "netconf",
                     "port": ports["netconf"], "profile": "sim-olt-netconf", "ssh": olt_ssh}
                    for d in olts],
        "gateway_classes": [
            {"name": "sim-s", "protocol": "snmp", "port": ports["snmp"],
             "profile": "sim-gw-snmp", "snmp": snmp, "timeout": 5},
            {"name": "sim-n", "protocol": "netconf", "port": ports["netconf"],
             "profile": "sim-gw-netconf", "ssh": gw_ssh, "timeout": 5},
            {"name": "sim-c", "protocol": "ssh", "port": ports["ssh"],
             "profile": "sim-gw-ssh", "ssh": gw_ssh, "timeout": 5},
        ],
        "phan": {"base_url": "https://analytics.example.net/phan"},
        "api": {"listen": "127.0.0.1", "port": api_port,
                "tokens": [{"name": "bench", "role": "admin", "token": {"env": TOKEN_VAR}}]},
        "audit_interval": 0,
    }
    path = work / "agent.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Lab:
    """A running simulator and agent, and what the script needs to talk to them."""

    work: Path
    sim: Proc
    agent: Proc
    control: str
    api: str
    token: str
    topo: dict[str, Any]
    endpoints: dict[str, Any]
    setup_cpu: dict[str, float] = field(default_factory=dict)

    @property
    def store(self) -> Path:
        return self.work / "ponctl.sqlite3"

    def stop(self) -> None:
        for p in (self.agent, self.sim):
            p.stop()


async def start_lab(work: Path, args: argparse.Namespace, profile: Path | None) -> Lab:
    topo_path, topo = lab_topology(args.topology, work, args.gateways, args.address_base,
                                   args.onts_per_port)
    control_port = _free_port()
    control = f"http://127.0.0.1:{control_port}"
    sim = Proc("simulator", _argv(["sim", "run", "--topology", str(topo_path), "--control",
                                   f"127.0.0.1:{control_port}", "--quiet"],
                                  profile / "simulator.prof" if profile else None),
               work / "simulator.log")
    agent: Proc | None = None
    try:
        async with aiohttp.ClientSession() as http:
            async def sim_up() -> bool:
                async with http.get(control + "/status") as r:
                    return r.status == 200

            await _until("the simulator's control endpoint", sim_up, 120, [sim])
            async with http.get(control + "/endpoints") as r:
                endpoints = await r.json()
        api_port = _free_port()
        settings = agent_settings(work, endpoints, topo["defaults"]["ports"], api_port)
        token = secrets.token_urlsafe(24)
        env = {TOKEN_VAR: token, PASSWORD_VAR: "admin", COMMUNITY_VAR: "private",
               KEYS_ENV_VAR: Keyring.generate("bench").export_secrets()}
        agent = Proc("agent", _argv(["agent", "run", "--config", str(settings)],
                                    profile / "agent.prof" if profile else None),
                     work / "agent.log", env)
        api = f"http://127.0.0.1:{api_port}"
        async with aiohttp.ClientSession() as http:
            async def agent_up() -> bool:
                async with http.get(api + "/healthz") as r:
                    body = await r.json()
                    return r.status == 200 and all(d["connected"]
                                                   for d in body["devices"].values())

            await _until("the agent (every OLT's discovery session connected)", agent_up, 120,
                         [sim, agent])
    except BaseException:
        if agent is not None:
            agent.stop()
        sim.stop()
        raise
    return Lab(work, sim, agent, control, api, token, topo, endpoints)


# ---- the OSS: setup ---------------------------------------------------------------------------

async def _pool(items: list[Any], worker: Callable[[Any], Awaitable[None]],
                concurrency: int) -> None:
    it = iter(items)

    async def run() -> None:
        for item in it:
            await worker(item)

    await asyncio.gather(*(run() for _ in range(concurrency)))


async def setup(lab: Lab, targets: list[Target], concurrency: int) -> float:
    """Everything the OSS creates, per ONT; seconds taken."""
    addresses = {d["name"]: d["address"] for d in lab.endpoints["devices"]}
    start = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    t0 = time.perf_counter()
    async with ApiClient(lab.api, lab.token) as api:
        async def one(t: Target) -> None:
            t.address = addresses[t.gateway]
            await api.post("/objects", {"id": t.object_id, "address": f"{t.serial} Fibre Lane"})
            await api.post(f"/objects/{t.object_id}/bind", {"serial": t.serial})
            await api.post("/subscribers", {"code": t.subscriber, "name": f"Sub {t.serial}"})
            await api.post("/lines", {"code": t.line, "subscriber": t.subscriber})
            await api.post("/gateways", {"name": t.gateway, "gateway_class": GW_CLASS[t.model],
                                         "address": t.address, "ont_serial": t.serial})
            await api.post(f"/lines/{t.line}/gateway", {"gateway": t.gateway})
            await api.post("/orders", {"object_id": t.object_id, "isp": "fibrenet",
                                       "service_type": "internet", "start_at": start,
                                       "external_ref": t.ref})

        await _pool(targets, one, concurrency)
    return time.perf_counter() - t0


async def settle(lab: Lab, quiet_for: float = 2.0, within: float = 600) -> float:
    """Wait until the agent's CPU use stays below 5% for ``quiet_for`` seconds (the setup's
    background work -- reconciles, first gateway attempts -- is done); seconds waited."""
    t0 = time.perf_counter()
    last, quiet = lab.agent.cpu(), 0.0
    while quiet < quiet_for and time.perf_counter() - t0 < within:
        await asyncio.sleep(0.5)
        now = lab.agent.cpu()
        quiet = quiet + 0.5 if now - last < 0.025 else 0.0
        last = now
    return time.perf_counter() - t0


# ---- the field: plugging ONTs in --------------------------------------------------------------

async def plug(lab: Lab, targets: list[Target], concurrency: int = 16) -> dict[str, float]:
    """Plug every target in; the wall-clock time each request was sent, by serial."""
    sent: dict[str, float] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        async def one(t: Target) -> None:
            sent[t.serial] = time.time()
            async with http.post(f"{lab.control}/olts/{t.olt}/onts",
                                 json={"serial": t.serial, "port": t.port}) as r:
                if r.status != 201:
                    raise RuntimeError(f"plugging {t.serial}: HTTP {r.status} "
                                       f"{await r.text()}")

        await _pool(targets, one, concurrency)
    return sent


# ---- the agent's store (read-only, from this process) -----------------------------------------

def _ts(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


class StoreReader:
    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)

    def close(self) -> None:
        self.conn.close()

    def counts(self) -> tuple[int, int]:
        active = self.conn.execute("SELECT COUNT(DISTINCT order_id) FROM order_events"
                                   " WHERE status = 'active'").fetchone()[0]
        written = self.conn.execute("SELECT COUNT(*) FROM gateway_state"
                                    " WHERE phase = 'written'").fetchone()[0]
        return int(active), int(written)

    def order_active(self, ref: str) -> bool:
        r = self.conn.execute("SELECT 1 FROM orders o JOIN order_events e ON e.order_id = o.id"
                              " WHERE o.external_ref = ? AND e.status = 'active' LIMIT 1",
                              (ref,)).fetchone()
        return r is not None

    def gateway_written(self, name: str) -> bool:
        r = self.conn.execute("SELECT phase FROM gateway_state WHERE gateway = ?",
                              (name,)).fetchone()
        return r is not None and r[0] == "written"

    def outcome(self) -> dict[str, Any]:
        c = self.conn
        active = {ref: _ts(at) for ref, at in c.execute(
            "SELECT o.external_ref, MIN(e.at) FROM orders o JOIN order_events e"
            " ON e.order_id = o.id WHERE e.status = 'active' GROUP BY o.id")}
        last = dict(c.execute(
            "SELECT o.external_ref, e.status FROM orders o JOIN order_events e"
            " ON e.order_id = o.id WHERE e.id = (SELECT MAX(id) FROM order_events"
            " WHERE order_id = o.id)").fetchall())
        urls = dict(c.execute("SELECT gateway, phan_url FROM lines WHERE gateway IS NOT NULL"))
        gws = {g: (phase, url, None if at is None else _ts(at))
               for g, phase, url, at in c.execute(
                   "SELECT gateway, phase, desired_url, verified_at FROM gateway_state")}
        pushes = c.execute("SELECT COUNT(*), COUNT(DISTINCT order_id) FROM pushes").fetchone()
        return {"active": active, "last": last, "urls": urls, "gateways": gws,
                "pushes": int(pushes[0])}


# ---- one run ------------------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of ``values``."""
    s = sorted(values)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


async def verify_lab(lab: Lab, targets: list[Target], urls: dict[str, str]) -> dict[str, int]:
    """What the simulator holds: ONTs operational with a service applied, gateways with their
    line's URL."""
    bad_onts = bad_gws = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        onts: dict[str, Any] = {}
        for olt in sorted({t.olt for t in targets}):
            async with http.get(f"{lab.control}/devices/{olt}") as r:
                onts.update({o["serial"]: o for o in (await r.json())["onts"]})
        for t in targets:
            o = onts.get(t.serial)
            if o is None or o["state"] != "operational" or not o["applied_services"]:
                bad_onts += 1

        async def gw(t: Target) -> None:
            nonlocal bad_gws
            async with http.get(f"{lab.control}/devices/{t.gateway}") as r:
                info = await r.json()
            if not info.get("phan_url") or info["phan_url"] != urls.get(t.gateway):
                bad_gws += 1

        await _pool(targets, gw, 16)
    return {"onts_not_serving": bad_onts, "gateways_without_url": bad_gws}


async def mass_run(n: int, args: argparse.Namespace, profile: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ponctl-mass-") as tmp:
        work = Path(tmp)
        lab = await start_lab(work, args, profile)
        try:
            return await _mass(lab, n, args)
        finally:
            lab.stop()
            if args.keep is not None:
                dest = args.keep / f"n{n}-{int(time.time())}"
                dest.mkdir(parents=True, exist_ok=True)
                for f in ("agent.log", "simulator.log", "agent.yaml", "ponctl.sqlite3"):
                    with contextlib.suppress(OSError):
                        (dest / f).write_bytes((work / f).read_bytes())


async def _mass(lab: Lab, n: int, args: argparse.Namespace) -> dict[str, Any]:
    targets = choose(lab.topo, n)
    a0, s0 = lab.agent.cpu(), lab.sim.cpu()
    setup_s = await setup(lab, targets, args.setup_concurrency)
    settle_s = await settle(lab)
    a1, s1 = lab.agent.cpu(), lab.sim.cpu()
    rss_before = lab.agent.status_mib("VmRSS")
    print(f"  n={n}: setup {setup_s:.1f} s ({7 * n / setup_s:.0f} requests/s), settled "
          f"after {settle_s:.1f} s; plugging", file=sys.stderr)
    reader = StoreReader(lab.store)
    try:
        t_plug = time.time()
        sent = await plug(lab, targets)
        plug_s = time.time() - t_plug
        deadline = time.monotonic() + args.timeout
        while True:
            active, written = reader.counts()
            if active >= n and written >= n:
                break
            if time.monotonic() > deadline:
                print(f"  n={n}: timed out with {active} active, {written} written",
                      file=sys.stderr)
                break
            lab.agent.check()
            await asyncio.sleep(0.25)
        a2, s2 = lab.agent.cpu(), lab.sim.cpu()
        peak = lab.agent.status_mib("VmHWM")
        rss_end = lab.agent.status_mib("VmRSS")
        sim_peak = lab.sim.status_mib("VmHWM")
        out = reader.outcome()
    finally:
        reader.close()
    lat = [out["active"][t.ref] - sent[t.serial] for t in targets if t.ref in out["active"]]
    gw_lat = [out["gateways"][t.gateway][2] - sent[t.serial] for t in targets
              if t.gateway in out["gateways"] and out["gateways"][t.gateway][2] is not None]
    ends = [*(out["active"][t.ref] for t in targets if t.ref in out["active"]),
            *(out["gateways"][t.gateway][2] for t in targets
              if t.gateway in out["gateways"] and out["gateways"][t.gateway][2] is not None)]
    end = max(ends) if ends else time.time()
    window = end - t_plug
    not_active = sum(1 for t in targets if out["last"].get(t.ref) != "active")
    not_written = sum(1 for t in targets
                      if out["gateways"].get(t.gateway, ("", "", None))[0] != "written"
                      or out["gateways"][t.gateway][1] != out["urls"].get(t.gateway))
    sim_check = await verify_lab(lab, targets, out["urls"])
    scrape = await metrics_scrape(lab)
    result = {
        "onts": n,
        "onts_per_s": round(n / window, 1),
        "window_s": round(window, 2),
        "plug_s": round(plug_s, 2),
        "active_latency_ms": {"p50": round(pct(lat, 50) * 1000, 1),
                              "p99": round(pct(lat, 99) * 1000, 1),
                              "max": round(max(lat) * 1000, 1)} if lat else None,
        "url_written_latency_ms": {"p50": round(pct(gw_lat, 50) * 1000, 1),
                                   "p99": round(pct(gw_lat, 99) * 1000, 1)} if gw_lat else None,
        "agent_cpu_s": round(a2 - a1, 2),
        "agent_cpu_ms_per_ont": round((a2 - a1) / n * 1000, 2),
        "agent_peak_rss_mib": round(peak, 1),
        "agent_rss_before_plug_mib": round(rss_before, 1),
        "agent_rss_end_mib": round(rss_end, 1),
        "sim_cpu_s": round(s2 - s1, 2),
        "sim_peak_rss_mib": round(sim_peak, 1),
        "setup_s": round(setup_s, 2),
        "setup_requests_per_s": round(7 * n / setup_s, 1),
        "setup_agent_cpu_s": round(a1 - a0, 2),
        "setup_sim_cpu_s": round(s1 - s0, 2),
        "pushes": out["pushes"],
        "metrics_scrape": scrape,
        "failures": {"orders_not_active": not_active, "gateway_states_not_written": not_written,
                     **sim_check},
    }
    print(f"  n={n}: {json.dumps(result)}", file=sys.stderr)
    return result


async def metrics_scrape(lab: Lab, times: int = 3) -> dict[str, float]:
    """``GET /metrics`` on the idle agent with every order in the store: the median wall time
    and agent CPU of one scrape, and the size of the exposition."""
    walls: list[float] = []
    cpus: list[float] = []
    size = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        for _ in range(times):
            c0, t0 = lab.agent.cpu(), time.perf_counter()
            async with http.get(lab.api + "/metrics") as r:
                body = await r.read()
                if r.status != 200:
                    raise RuntimeError(f"/metrics answered {r.status}: {body[:200]!r}")
            walls.append(time.perf_counter() - t0)
            cpus.append(lab.agent.cpu() - c0)
            size = len(body)
    return {"wall_ms": round(statistics.median(walls) * 1000, 1),
            "agent_cpu_ms": round(statistics.median(cpus) * 1000, 1), "bytes": size}


async def single_run(k: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ponctl-single-") as tmp:
        lab = await start_lab(Path(tmp), args, None)
        try:
            targets = choose(lab.topo, k)
            await setup(lab, targets, args.setup_concurrency)
            await settle(lab)
            reader = StoreReader(lab.store)
            sent: dict[str, float] = {}
            try:
                for t in targets:
                    await asyncio.sleep(args.single_pause)
                    sent.update(await plug(lab, [t], 1))
                    deadline = time.monotonic() + 30
                    while not (reader.order_active(t.ref) and reader.gateway_written(t.gateway)):
                        if time.monotonic() > deadline:
                            raise RuntimeError(f"ONT {t.serial} not active within 30 s")
                        await asyncio.sleep(0.01)
                out = reader.outcome()
            finally:
                reader.close()
        finally:
            lab.stop()
    lat = [out["active"][t.ref] - sent[t.serial] for t in targets]
    gw = [out["gateways"][t.gateway][2] - sent[t.serial] for t in targets]
    return {"samples": k,
            "active_latency_ms": {"p50": round(pct(lat, 50) * 1000, 1),
                                  "p99": round(pct(lat, 99) * 1000, 1),
                                  "min": round(min(lat) * 1000, 1),
                                  "max": round(max(lat) * 1000, 1)},
            "url_written_latency_ms": {"p50": round(pct(gw, 50) * 1000, 1),
                                       "p99": round(pct(gw, 99) * 1000, 1)}}


# ---- report ----------------------------------------------------------------------------------

def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def med(get: Callable[[dict[str, Any]], float]) -> float:
        return round(statistics.median(get(r) for r in runs), 2)

    return {
        "onts": runs[0]["onts"], "runs": len(runs),
        "onts_per_s": med(lambda r: r["onts_per_s"]),
        "window_s": med(lambda r: r["window_s"]),
        "p50_ms": med(lambda r: r["active_latency_ms"]["p50"]),
        "p99_ms": med(lambda r: r["active_latency_ms"]["p99"]),
        "agent_cpu_s": med(lambda r: r["agent_cpu_s"]),
        "agent_cpu_ms_per_ont": med(lambda r: r["agent_cpu_ms_per_ont"]),
        "agent_peak_rss_mib": med(lambda r: r["agent_peak_rss_mib"]),
        "sim_cpu_s": med(lambda r: r["sim_cpu_s"]),
        "setup_s": med(lambda r: r["setup_s"]),
        "metrics_scrape_ms": med(lambda r: r["metrics_scrape"]["wall_ms"]),
        "failures": sum(sum(r["failures"].values()) for r in runs),
    }


def growth_table(summary: list[dict[str, Any]]) -> str:
    rows = [["ONTs", "runs", "ONTs/s", "window s", "p50 ms", "p99 ms", "agent CPU s",
             "CPU ms/ONT", "agent peak RSS MiB", "sim CPU s", "setup s", "/metrics ms",
             "failures"]]
    for s in summary:
        rows.append([f"{s['onts']:,}", str(s["runs"]), f"{s['onts_per_s']:,.0f}",
                     f"{s['window_s']:.1f}", f"{s['p50_ms']:,.0f}", f"{s['p99_ms']:,.0f}",
                     f"{s['agent_cpu_s']:.1f}", f"{s['agent_cpu_ms_per_ont']:.2f}",
                     f"{s['agent_peak_rss_mib']:.0f}", f"{s['sim_cpu_s']:.1f}",
                     f"{s['setup_s']:.1f}", f"{s['metrics_scrape_ms']:.0f}",
                     str(s["failures"])])
    return markdown_table(rows)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    if load_before > 0.5:
        print(f"warning: load average {load_before:.2f} before starting; figures will be "
              "noisy", file=sys.stderr)
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                   f"{platform.python_version()}",
        "topology": str(args.topology.resolve().relative_to(REPO)
                        if args.topology.resolve().is_relative_to(REPO) else args.topology),
        "gateways": args.gateways,
        "load_average_before": round(load_before, 2),
    }
    sizes = [int(s) for s in args.sizes.split(",") if s]
    runs: dict[str, list[dict[str, Any]]] = {}
    for n in sizes:
        reps = args.repeat_large if n >= 10_000 else args.repeat
        for r in range(reps):
            profile = None
            if args.profile is not None:
                profile = args.profile / f"n{n}-r{r}"
                profile.mkdir(parents=True, exist_ok=True)
            print(f"mass activation: {n} ONTs, run {r + 1}/{reps}", file=sys.stderr)
            runs.setdefault(str(n), []).append(await mass_run(n, args, profile))
    report["runs"] = runs
    report["growth"] = sorted((median_of(v) for v in runs.values()), key=lambda g: g["onts"])
    if args.single:
        singles = []
        for r in range(args.single_repeat):
            print(f"single activation: {args.single} ONTs one at a time, run {r + 1}",
                  file=sys.stderr)
            singles.append(await single_run(args.single, args))
        report["single"] = {
            "runs": singles,
            "p50_ms": round(statistics.median(s["active_latency_ms"]["p50"] for s in singles), 1),
            "p99_ms": round(statistics.median(s["active_latency_ms"]["p99"] for s in singles), 1),
        }
    report["load_average_after"] = round(os.getloadavg()[0], 2)
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100,1000,10000", help="ONT counts, comma-separated")
    ap.add_argument("--repeat", type=int, default=3, help="runs per size below 10,000")
    ap.add_argument("--repeat-large", type=int, default=1, help="runs per size of 10,000+")
    ap.add_argument("--single", type=int, default=100,
                    help="single-activation samples (0: skip)")
    ap.add_argument("--single-repeat", type=int, default=1)
    ap.add_argument("--single-pause", type=float, default=0.2,
                    help="idle seconds before each single plug")
    ap.add_argument("--gateways", choices=("netconf", "snmp", "ssh", "mix"),
                    default="netconf", help="the gateways' management protocol")
    ap.add_argument("--setup-concurrency", type=int, default=16,
                    help="ONTs set up concurrently through the API")
    ap.add_argument("--timeout", type=float, default=900,
                    help="seconds to wait for every order and gateway")
    ap.add_argument("--profile", type=Path, help="run agent and simulator under cProfile, "
                                                 "writing .prof files here")
    ap.add_argument("--keep", type=Path, help="keep the logs, settings and store of each run here")
    ap.add_argument("--topology", type=Path, default=TOPOLOGY)
    ap.add_argument("--address-base", help="another 127.x.0.0 range than the topology's")
    ap.add_argument("--onts-per-port", type=int, help="fewer generated ONTs per PON port")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args()
    report = asyncio.run(main_async(args))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"mass activation, {report['machine']}; gateways: {args.gateways}; medians")
    if report["growth"]:
        print(growth_table(report["growth"]))
    if "single" in report:
        s = report["single"]
        print(f"single activation on an idle system ({args.single} ONTs one at a time): "
              f"p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
