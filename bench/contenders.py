"""ponctl against the scripts users write today, and ponctl per protocol (issue 5, items 2-3).

    python bench/contenders.py contenders   [--olts 4 --onts 64] [--repeat 3] [--only TEXT]
    python bench/contenders.py per-protocol [--onts 64 --gateways 64] [--repeat 3]
    python bench/contenders.py all          (both; --out DIR for the JSON files)

What is measured. The simulator runs in a subprocess (this script with --serve), so client and
server CPU are accounted apart (process_time; /proc/<pid>/stat). Every repetition starts a
fresh lab: OLTs whose ONTs are plugged in and in autofind (ranging delay 0). The workload is,
per ONT, its registration plus one internet service (UNI 1, C-VLAN 100, S-VLAN 1000, GEM port
and alloc-id unique per OLT), rendered by ponctl's own profiles (configs/profiles/sim-olt-*),
so every contender sends the same NETCONF XML or the same Huawei CLI lines. A rate counts only
ONTs that the simulator afterwards reports operational with that service applied: whatever a
contender got wrong is reported as failed, never counted.

* ponctl: one agent.push.OltQueue per OLT as agent.engine.Engine opens them (the agent's
  drivers, agent.connect: NETCONF with a scoped compare; 4 workers, a confirmed commit of 120 s
  where the device offers one, default retries, a 32-push limiter), one PushJob per ONT, all
  submitted at once; NETCONF batches up to 32 jobs per transaction ("unbatched": batch_max 1).
  Each push renders, locks, loads, compares, commits, reads back (verify) and confirms as the
  agent always does.
* Nornir scripts: the OLTs as Nornir hosts, ThreadedRunner (20 workers, so one thread per
  OLT); each host's task opens one session and, per ONT, locks the candidate, edit-configs,
  commits and unlocks with netconf-client's Manager or ncclient's manager (with its send-queue
  TICK as shipped, 0.1 s, on the first ONTs of each OLT only, and lowered to 1 ms on all), or
  sends the CLI lines with netmiko's send_config_set (its stock huawei_olt driver, after
  enable). "32 ONTs per commit/call" rows batch like ponctl.
  Their payloads are rendered before the clock starts: a script's templating is its own.
* PHAN URL writes: gateways behind in-service ONTs, one gateway class per protocol; every
  gateway written at once through agent.gateways.GatewayWriter._write (connect, load,
  compare, commit, read back, close) under the engine's limiter of 32; the URL then read from
  the simulated gateway.

Reported per row: the median rate of --repeat runs, wall seconds, client and server CPU ms per
item, failures per run and a sample of the errors; for contenders, ponctl's ratio over each
(ponctl NETCONF batched over the NETCONF scripts, ponctl SSH CLI over netmiko). Results go to
bench/results/contenders.json and per_protocol.json. A measurement, not a test: nothing here
asserts a speed (tests/bench/test_contenders_smoke.py only checks that every row works).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from anywhere

from agent.connect import netconf_driver  # noqa: E402
from agent.gateways import GatewayWriter  # noqa: E402
from agent.intent import BandwidthProfile, OntIntent, ServiceIntent  # noqa: E402
from agent.lines import Gateway as LineGateway  # noqa: E402
from agent.lines import GatewayPhase, LineStore  # noqa: E402
from agent.profiles import load_profile  # noqa: E402
from agent.push import CONFIRM_TIMEOUT, OltQueue, PushJob  # noqa: E402
from agent.render import render  # noqa: E402
from agent.settings import Settings  # noqa: E402
from bench.report import markdown_table  # noqa: E402
from drivers.base import Driver  # noqa: E402
from drivers.cli import CliDriver, load_platform  # noqa: E402
from drivers.snmp import SnmpDriver, SnmpTarget  # noqa: E402
from drivers.ssh_transport import SshTarget  # noqa: E402

RESULTS = REPO / "bench" / "results"
PROFILE_OF = {"netconf": "sim-olt-netconf", "snmp": "sim-olt-snmp", "ssh": "sim-olt-cli"}
GW_PROFILE_OF = {"netconf": "sim-gw-netconf", "snmp": "sim-gw-snmp", "ssh": "sim-gw-ssh"}
GW_MODEL_OF = {"netconf": "SL-GW-N", "snmp": "SL-GW-S", "ssh": "SL-GW-C"}
UPLINK, C_VLAN, S_VLAN, UNI = "0/9/0", 100, 1000, 1
BW = BandwidthProfile("tdp-100M", 100_000_000)
NC_BASE = "urn:ietf:params:xml:ns:netconf:base:1.0"
USER, PASSWORD, COMMUNITY_RW = "admin", "admin", "private"  # the simulated boxes' lab login


# ---- the simulator (subprocess) -------------------------------------------------------------
@dataclass(frozen=True)
class LabSpec:
    """The lab the server builds: ``olts`` OLTs of ``ports`` PON ports x ``per_port`` ONTs in
    autofind (no gateways); or, with ``gateways``, ONTs already in service with a gateway
    each, gateway models rotated over NETCONF, SNMP and SSH."""

    olts: int = 1
    ports: int = 1
    per_port: int = 8
    gateways: bool = False

    def to_json(self) -> str:
        return json.dumps(self.__dict__)


def _topology(spec: LabSpec) -> Any:
    from simulator.topology import (
        Defaults,
        Generate,
        OltSpec,
        ServiceSpec,
        Topology,
        Uplink,
    )

    gen = Generate(onts_per_port=spec.per_port,
                   gateway_models=list(GW_MODEL_OF.values()) if spec.gateways else [],
                   configured_services=([ServiceSpec(c_vlan=C_VLAN, s_vlan=S_VLAN)]
                                        if spec.gateways else []))
    # ranging_delay 0: an ONT comes up as soon as its registration is committed, so ponctl's
    # read-back (which the contenders do not do) does not wait on simulated ranging.
    return Topology(name="bench", defaults=Defaults(ranging_delay=0.0),
                    olts=[OltSpec(name=f"olt{i + 1}", pon_ports=spec.ports,
                                  uplinks=[Uplink(port=UPLINK, vlans=["1000-1009"])],
                                  generate=gen)
                          for i in range(spec.olts)])


def _snapshot(lab: Any) -> dict[str, Any]:
    """Per OLT, per ONT serial: its state and applied (uni, c_vlan, s_vlan); per gateway: its
    PHAN URL."""
    onts = {name: {o.serial: [o.state.value, sorted([a.uni, a.c_vlan, a.s_vlan]
                                                    for a in o.applied.values())]
                   for o in olt.onts.values()}
            for name, olt in lab.olts.items()}
    return {"onts": onts, "gateways": {n: g.phan_url for n, g in lab.gateways.items()}}


async def _serve(spec: LabSpec) -> None:
    from simulator.lab import Lab
    from simulator.topology import Ports

    lab = Lab(_topology(spec), ports=Ports(netconf=0, snmp=0, ssh=0),
              single_address="127.0.0.1")
    await lab.start()
    if spec.gateways:
        async with asyncio.timeout(120):
            for name in lab.gateways:  # a gateway opens its faces once its service is up
                await lab.wait_gateway(name, up=True)
    info = lab.endpoints()
    info["onts"] = {name: [[o.serial, o.port] for o in olt.onts.values()]
                    for name, olt in lab.olts.items()}
    info["gateway_models"] = {n: g.model for n, g in lab.gateways.items()}
    print(json.dumps(info), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if line.strip() != "check":
            break
        print(json.dumps(_snapshot(lab)), flush=True)
    await lab.stop()


class Server:
    """A fresh simulated lab in a subprocess: its endpoints, a snapshot on demand, its CPU."""

    def __init__(self, spec: LabSpec) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", spec.to_json()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError("the simulator did not start")
        self.info: dict[str, Any] = json.loads(line)
        self.devices = {d["name"]: d for d in self.info["devices"]}
        self.known_hosts = "".join(
            f"[127.0.0.1]:{d[face]['port']} {d['ssh_host_key']}\n"
            for d in self.info["devices"] for face in ("netconf", "ssh") if d.get(face))

    def olt_names(self) -> list[str]:
        return sorted(self.info["onts"])

    def port(self, device: str, face: str) -> int:
        return int(self.devices[device][face]["port"])

    def cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def snapshot(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("check\n")
        self.proc.stdin.flush()
        data: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return data

    def stop(self) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.close()
            self.proc.wait(20)
        except (subprocess.TimeoutExpired, BrokenPipeError):
            self.proc.kill()
            self.proc.wait()


# ---- the workload ---------------------------------------------------------------------------
Job = tuple[OntIntent, ServiceIntent]


def workload(server: Server) -> dict[str, list[Job]]:
    """Per OLT: every ONT in autofind, registered with its port-local onu-id and one internet
    service (UNI 1, C-VLAN 100, S-VLAN 1000, 100 Mbit/s), GEM port and alloc-id unique per
    OLT, as the agent's allocator hands them out."""
    out: dict[str, list[Job]] = {}
    for olt, onts in server.info["onts"].items():
        jobs: list[Job] = []
        per_port: dict[str, int] = {}
        for i, (serial, port) in enumerate(onts):
            onu_id = per_port.get(port, 0)
            per_port[port] = onu_id + 1
            ont = OntIntent(olt, serial, port, onu_id)
            svc = ServiceIntent(f"svc-{serial.lower()}", ont, UNI, C_VLAN, S_VLAN, UPLINK, BW,
                                gemport_id=1024 + i, alloc_id=1024 + i)
            jobs.append((ont, svc))
        out[olt] = jobs
    return out


def configured(snapshot: dict[str, Any], jobs: dict[str, list[Job]]) -> int:
    """How many ONTs of the workload are operational with their service applied."""
    n = 0
    for olt, olt_jobs in jobs.items():
        seen = snapshot["onts"][olt]
        for ont, svc in olt_jobs:
            state, applied = seen.get(ont.serial, ["absent", []])
            if state == "operational" and [svc.uni, svc.c_vlan, svc.s_vlan] in applied:
                n += 1
    return n


# ---- measuring ------------------------------------------------------------------------------
@dataclass
class Run:
    """One repetition: wall and CPU seconds, items done and failed (checked on the device)."""

    items: int
    wall: float
    client_cpu: float
    server_cpu: float
    failed: int
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return (self.items - self.failed) / self.wall if self.wall else 0.0


def summarise(runs: list[Run], unit: str) -> dict[str, Any]:
    n = runs[0].items
    return {
        f"{unit}_per_s": round(statistics.median(r.rate for r in runs), 1),
        "wall_s": round(statistics.median(r.wall for r in runs), 3),
        f"client_cpu_ms_per_{unit}": round(statistics.median(r.client_cpu for r in runs)
                                           / n * 1000, 2),
        f"server_cpu_ms_per_{unit}": round(statistics.median(r.server_cpu for r in runs)
                                           / n * 1000, 2),
        f"{unit}s_per_run": n,
        "failed_per_run": [r.failed for r in runs],
        "runs": len(runs),
        "errors_sample": sorted({e for r in runs for e in r.errors})[:3],
    }


Jobs = dict[str, list[Job]]
Go = Callable[[Server, Jobs], list[str]]


@dataclass(frozen=True)
class Contender:
    """One way of pushing: ``prepare`` (untimed: a script's own templating, done before it
    connects) returns what ``go`` (timed; returns the errors it saw) takes. ``limit``: only
    the first ``limit`` jobs of each OLT (for a client too slow for the whole workload)."""

    name: str
    go: Callable[[Server, Any], list[str]]
    prepare: Callable[[Server, Jobs], Any] = lambda server, jobs: jobs
    limit: int | None = None
    note: str = ""


def measure_onts(spec: LabSpec, c: Contender) -> Run:
    """A fresh lab; time ``c``; then count on the simulator the ONTs of the workload that are
    operational with their service applied (anything else is a failure)."""
    server = Server(spec)
    try:
        jobs = workload(server)
        if c.limit is not None:
            jobs = {olt: j[:c.limit] for olt, j in jobs.items()}
        prepared = c.prepare(server, jobs)
        t0, c0, s0 = time.perf_counter(), time.process_time(), server.cpu()
        errors = c.go(server, prepared)
        wall = time.perf_counter() - t0
        client, srv = time.process_time() - c0, server.cpu() - s0
        items = sum(len(j) for j in jobs.values())
        done = configured(server.snapshot(), jobs)
    finally:
        server.stop()
    return Run(items, wall, client, srv, items - done, errors)


# ---- ponctl ---------------------------------------------------------------------------------
def ponctl_driver(server: Server, olt: str, protocol: str) -> Callable[[], Driver[Any]]:
    """What agent.connect.driver_factory builds for an OLT of that protocol (host keys
    checked against the lab's keys)."""
    if protocol == "snmp":
        target = SnmpTarget("127.0.0.1", server.port(olt, "snmp"), version="v2c",
                            community=COMMUNITY_RW, timeout=30)
        return lambda: SnmpDriver(target)
    ssh = SshTarget("127.0.0.1", server.port(olt, protocol), USER, PASSWORD,
                    known_hosts_text=server.known_hosts, timeout=30)
    if protocol == "netconf":
        return lambda: netconf_driver(ssh)
    cli = load_platform("huawei-olt")
    return lambda: CliDriver(ssh, cli)


def ponctl_onts(protocol: str, *, batch_max: int = 32, concurrency: int = 4,
                verify: bool = True) -> Go:
    """The agent's path: one OltQueue per OLT (as agent.engine.Engine opens them: 4 workers,
    confirmed commit, read-back verify, default retries), one PushJob per ONT (its registration
    and its service, rendered inside push() as always), all submitted at once."""
    profile = load_profile(PROFILE_OF[protocol])

    async def run(server: Server, jobs: dict[str, list[Job]]) -> list[str]:
        limiter = asyncio.Semaphore(32)  # Settings.max_concurrent_pushes
        queues = [OltQueue(ponctl_driver(server, olt, protocol), profile,
                           concurrency=concurrency, batch_max=batch_max, limiter=limiter,
                           verify=verify, confirm_timeout=CONFIRM_TIMEOUT)
                  for olt in jobs]
        for q in queues:
            q.start()
        try:
            futures = [q.submit(PushJob([ont], [svc]))
                       for q, olt_jobs in zip(queues, jobs.values(), strict=True)
                       for ont, svc in olt_jobs]
            results = await asyncio.gather(*futures)
        finally:
            for q in queues:
                await q.close()
        return [r.error.message[:200] for r in results if r.error is not None]

    return lambda server, jobs: asyncio.run(run(server, jobs))


# ---- contenders: Nornir scripts -------------------------------------------------------------
def _nornir(server: Server, jobs: dict[str, list[Any]], face: str, workers: int) -> Any:
    """A Nornir object with the OLTs as hosts (each with its payloads in ``data``), threaded."""
    from nornir.core import Nornir
    from nornir.core.inventory import Defaults, Groups, Host, Hosts, Inventory
    from nornir.plugins.runners import ThreadedRunner

    hosts = Hosts({olt: Host(olt, hostname="127.0.0.1", port=server.port(olt, face),
                             username=USER, password=PASSWORD, data={"jobs": olt_jobs})
                   for olt, olt_jobs in jobs.items()})
    return Nornir(inventory=Inventory(hosts=hosts, groups=Groups(), defaults=Defaults()),
                  runner=ThreadedRunner(num_workers=workers))


def _chunks(items: list[Job], size: int) -> list[list[Job]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _errors(result: Any) -> list[str]:
    out: list[str] = []
    for multi in result.values():
        for r in multi:
            if r.failed:
                out.append(f"{r.host}: {str(r.exception or r.result)[-200:]}")
    return out


def _rendered(protocol: str, batch: int) -> Callable[[Server, Jobs], dict[str, list[Any]]]:
    """Per OLT, ponctl's payloads for each ``batch`` ONTs (the very text ponctl sends)."""
    profile = load_profile(PROFILE_OF[protocol])

    def prepare(server: Server, jobs: Jobs) -> dict[str, list[Any]]:
        return {olt: [render(profile, [o for o, _ in c], [s for _, s in c])
                      for c in _chunks(olt_jobs, batch)]
                for olt, olt_jobs in jobs.items()}

    return prepare


def nornir_netconf(name: str, client: str, batch: int = 1, workers: int = 20,
                   limit: int | None = None, note: str = "",
                   tick: float | None = None) -> Contender:
    """A Nornir script, threaded runner over the OLTs; each host's task opens one NETCONF
    session (netconf-client's Manager or ncclient's manager), then per ONT (or per ``batch``
    ONTs): lock candidate, edit-config of ponctl's rendering, commit, unlock."""

    def task(t: Any) -> str:
        chunks = [f'<config xmlns="{NC_BASE}">{payload}</config>'
                  for payload in t.host.data["jobs"]]
        h = t.host
        if client == "netconf-client":
            from netconf_client.connect import connect_ssh
            from netconf_client.ncclient import Manager

            with Manager(connect_ssh(host=h.hostname, port=h.port, username=h.username,
                                     password=h.password, initial_timeout=30),
                         timeout=60) as m:
                for config in chunks:
                    m.lock(target="candidate")
                    try:
                        m.edit_config(config, target="candidate")
                        m.commit()
                    finally:
                        m.unlock(target="candidate")
        else:
            from ncclient import manager

            with manager.connect(host=h.hostname, port=h.port, username=h.username,
                                 password=h.password, hostkey_verify=False,
                                 look_for_keys=False, allow_agent=False, timeout=60) as m:
                for config in chunks:
                    with m.locked("candidate"):
                        m.edit_config(target="candidate", config=config)
                        m.commit()
        return f"{len(chunks)} transactions"

    def go(server: Server, payloads: dict[str, list[Any]]) -> list[str]:
        if tick is None:
            return _errors(_nornir(server, payloads, "netconf", workers).run(task=task))
        import ncclient.transport.session as session

        shipped = session.TICK
        session.TICK = tick  # how often ncclient's session thread looks at its send queue
        try:
            return _errors(_nornir(server, payloads, "netconf", workers).run(task=task))
        finally:
            session.TICK = shipped

    return Contender(name, go, _rendered("netconf", batch), limit, note)


NETMIKO_ERRORS = r"Failure:|% ?(?:Unknown command|Incomplete command|Parameter error)"


def nornir_netmiko(name: str, batch: int = 1, workers: int = 20) -> Contender:
    """A Nornir script, threaded runner over the OLTs; each host's task opens one netmiko
    session (netmiko's stock huawei_olt driver) and sends ponctl's CLI lines with
    send_config_set, one call per ONT (or per ``batch`` ONTs), failing on the CLI's error
    lines."""
    from netmiko import ConnectHandler

    def task(t: Any) -> str:
        h = t.host
        chunks = [cast(list[str], lines) for lines in h.data["jobs"]]
        with ConnectHandler(device_type="huawei_olt", host=h.hostname, port=h.port,
                     username=h.username, password=h.password, ssh_strict=False,
                     system_host_keys=False, use_keys=False, allow_agent=False) as conn:
            conn.enable()
            for lines in chunks:
                conn.send_config_set(lines, error_pattern=NETMIKO_ERRORS)
        return f"{len(chunks)} send_config_set calls"

    def go(server: Server, payloads: dict[str, list[Any]]) -> list[str]:
        return _errors(_nornir(server, payloads, "ssh", workers).run(task=task))

    return Contender(name, go, _rendered("ssh", batch))


# ---- PHAN URL writes to gateways (ponctl) --------------------------------------------------
def phan_setup(server: Server, protocol: str, workdir: Path,
               ) -> tuple[GatewayWriter, list[tuple[LineGateway, str]]]:
    """A GatewayWriter over settings with one gateway class per protocol (credentials from the
    environment, host keys checked against the lab's), and each gateway of that protocol with
    a PHAN URL issued as the agent issues them (agent.phan.url_for)."""
    from datetime import UTC, datetime

    from agent.phan import Keyring, url_for

    known = workdir / "known_hosts"
    known.write_text(server.known_hosts, encoding="utf-8")
    ssh = {"username": USER, "password": {"env": "BENCH_GW_PASSWORD"}, "known_hosts": str(known)}
    settings = Settings.model_validate({
        "store": str(workdir / "unused.sqlite3"),
        "devices": [{"name": "olt1", "address": "127.0.0.1", "protocol": "snmp", "port": 161,
                     "profile": "sim-olt-snmp",
                     "snmp": {"version": "v2c", "community": {"env": "BENCH_GW_COMMUNITY"}}}],
        "gateway_classes": [
            {"name": "gw-netconf", "protocol": "netconf", "port": 830,
             "profile": GW_PROFILE_OF["netconf"], "ssh": ssh},
            {"name": "gw-snmp", "protocol": "snmp", "port": 161,
             "profile": GW_PROFILE_OF["snmp"],
             "snmp": {"version": "v2c", "community": {"env": "BENCH_GW_COMMUNITY"}}},
            {"name": "gw-ssh", "protocol": "ssh", "port": 22, "profile": GW_PROFILE_OF["ssh"],
             "ssh": ssh},
        ],
    })
    writer = GatewayWriter(cast(LineStore, None), settings, limiter=asyncio.Semaphore(32),
                           environ={"BENCH_GW_PASSWORD": PASSWORD,
                                    "BENCH_GW_COMMUNITY": COMMUNITY_RW},
                           retry_interval=0, confirm_timeout=None)
    keyring = Keyring({"k1": secrets.token_bytes(32)}, "k1")
    model = GW_MODEL_OF[protocol]
    now = datetime.now(UTC)
    gws = [(LineGateway(name, f"gw-{protocol}", "127.0.0.1", server.port(name, protocol),
                        None, now, None),
            url_for("https://phan.example.net/v1", f"LOS{i:06d}", keyring))
           for i, (name, m) in enumerate(sorted(server.info["gateway_models"].items()))
           if m == model]
    return writer, gws


def measure_phan(spec: LabSpec, protocol: str) -> Run:
    """A fresh lab; every gateway of ``protocol`` written at once through the agent's
    GatewayWriter._write (connect, load, compare, commit, read back, close), bounded by the
    engine's push limiter (32) as GatewayWriter.sync does; then each gateway's PHAN URL read
    from the simulator."""
    server = Server(spec)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            writer, gws = phan_setup(server, protocol, Path(tmp))

            async def one(gw: LineGateway, url: str) -> str | None:
                async with writer.limiter:
                    phase, _, message = await writer._write(gw, url)
                return None if phase is GatewayPhase.WRITTEN else message[:200]

            async def all_of() -> list[str | None]:
                return await asyncio.gather(*(one(gw, url) for gw, url in gws))

            t0, c0, s0 = time.perf_counter(), time.process_time(), server.cpu()
            outcome = asyncio.run(all_of())
            wall = time.perf_counter() - t0
            client, srv = time.process_time() - c0, server.cpu() - s0
        held = server.snapshot()["gateways"]
    finally:
        server.stop()
    done = sum(1 for gw, url in gws if held.get(gw.name) == url)
    return Run(len(gws), wall, client, srv, len(gws) - done, [e for e in outcome if e])


# ---- the runs -------------------------------------------------------------------------------
def contenders(quick: bool) -> list[Contender]:
    """Every way of pushing the workload, ponctl first."""
    ncclient_limit = 2 if quick else 8
    return [
        Contender("ponctl NETCONF (batched, default)", ponctl_onts("netconf")),
        Contender("ponctl NETCONF (unbatched)", ponctl_onts("netconf", batch_max=1)),
        nornir_netconf("Nornir + netconf-client Manager, per ONT", "netconf-client"),
        nornir_netconf("Nornir + netconf-client Manager, 32 ONTs per commit", "netconf-client",
                       batch=32),
        nornir_netconf("Nornir + ncclient, per ONT (TICK 1 ms)", "ncclient", tick=0.001,
                       note="ncclient's send-queue TICK lowered from 0.1 s to 1 ms"),
        nornir_netconf("Nornir + ncclient, per ONT (as shipped)", "ncclient",
                       limit=ncclient_limit,
                       note=f"TICK 0.1 s: ~10 RPCs/s per session, so only the first "
                            f"{ncclient_limit} ONTs of each OLT"),
        Contender("ponctl SSH CLI", ponctl_onts("ssh")),
        nornir_netmiko("Nornir + netmiko send_config_set, per ONT"),
        nornir_netmiko("Nornir + netmiko send_config_set, 32 ONTs per call", batch=32),
    ]


BASELINE = "Nornir + netconf-client Manager, per ONT"
CLI_BASELINE = "Nornir + netmiko send_config_set, per ONT"


def run_contenders(spec: LabSpec, repeat: int, quick: bool,
                   only: str | None = None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for c in contenders(quick):
        if only is not None and only.lower() not in c.name.lower():
            continue
        runs = [measure_onts(spec, c) for _ in range(repeat)]
        out[c.name] = summarise(runs, "ont")
        if c.note:
            out[c.name]["note"] = c.note
        print(f"  {c.name}: {out[c.name]['ont_per_s']} ONTs/s, failed "
              f"{out[c.name]['failed_per_run']}", file=sys.stderr, flush=True)
    return out


def run_per_protocol(onts: LabSpec, gws: LabSpec, repeat: int) -> dict[str, dict[str, Any]]:
    rows: list[tuple[str, Callable[[], Run], str]] = [
        ("ONT services: NETCONF unbatched", lambda: measure_onts(
            onts, Contender("", ponctl_onts("netconf", batch_max=1))), "ont"),
        ("ONT services: NETCONF batched (32)", lambda: measure_onts(
            onts, Contender("", ponctl_onts("netconf"))), "ont"),
        ("ONT services: SNMP", lambda: measure_onts(
            onts, Contender("", ponctl_onts("snmp"))), "ont"),
        ("ONT services: SSH CLI", lambda: measure_onts(
            onts, Contender("", ponctl_onts("ssh"))), "ont"),
        ("PHAN URL writes: NETCONF", lambda: measure_phan(gws, "netconf"), "write"),
        ("PHAN URL writes: SNMP", lambda: measure_phan(gws, "snmp"), "write"),
        ("PHAN URL writes: SSH", lambda: measure_phan(gws, "ssh"), "write"),
    ]
    out: dict[str, dict[str, Any]] = {}
    for name, fn, unit in rows:
        out[name] = summarise([fn() for _ in range(repeat)], unit)
        print(f"  {name}: {out[name][unit + '_per_s']}/s, failed "
              f"{out[name]['failed_per_run']}", file=sys.stderr, flush=True)
    return out


# ---- report ---------------------------------------------------------------------------------
def _failed(r: dict[str, Any]) -> str:
    return "/".join(str(f) for f in r["failed_per_run"])


def contenders_table(results: dict[str, dict[str, Any]]) -> str:
    ponctl = results.get("ponctl NETCONF (batched, default)", {}).get("ont_per_s")
    ponctl_cli = results.get("ponctl SSH CLI", {}).get("ont_per_s")
    rows: list[tuple[str, ...]] = []
    for name, r in results.items():
        rate = r["ont_per_s"]
        versus = ponctl_cli if "netmiko" in name else ponctl
        ratio = f"{versus / rate:.2f}" if versus and rate and not name.startswith("ponctl") \
            else "-"
        rows.append((name, f"{rate:,.1f}", ratio, str(r["onts_per_run"]), _failed(r),
                     f"{r['client_cpu_ms_per_ont']:.2f}", f"{r['server_cpu_ms_per_ont']:.2f}"))
    return markdown_table([("contender", "ONTs/s", "ponctl / it", "ONTs", "failed",
                            "client ms/ONT", "server ms/ONT"), *rows])


def per_protocol_table(results: dict[str, dict[str, Any]]) -> str:
    rows: list[tuple[str, ...]] = []
    for name, r in results.items():
        unit = "ont" if "ont_per_s" in r else "write"
        rows.append((name, f"{r[unit + '_per_s']:,.1f}", str(r[unit + "s_per_run"]), _failed(r),
                     f"{r['client_cpu_ms_per_' + unit]:.2f}",
                     f"{r['server_cpu_ms_per_' + unit]:.2f}"))
    return markdown_table([("ponctl", "per s", "items", "failed", "client ms/item",
                            "server ms/item"), *rows])


def machine() -> str:
    return (f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
            f"{platform.python_version()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("part", nargs="?", choices=["contenders", "per-protocol", "all"],
                    default="all")
    ap.add_argument("--repeat", type=int, default=3, help="fresh-lab runs per row (median)")
    ap.add_argument("--olts", type=int, default=4, help="OLTs (contenders)")
    # 64: enough ONTs per OLT that batching and steady state show, not the sessions' set-up
    ap.add_argument("--onts", type=int, default=64, help="ONTs per OLT (contenders; "
                    "per-protocol uses one OLT with twice as many)")
    ap.add_argument("--gateways", type=int, default=64,
                    help="gateways per protocol (per-protocol)")
    ap.add_argument("--only", help="contenders whose name contains this (case-insensitive)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON files")
    args = ap.parse_args()
    if args.serve:
        asyncio.run(_serve(LabSpec(**json.loads(args.serve))))
        return
    quick = args.onts < 8
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f} before starting; figures will be noisy",
              file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    threading.excepthook = lambda a: None  # paramiko reader threads dying at close
    if args.part in ("contenders", "all"):
        spec = LabSpec(olts=args.olts, ports=1, per_port=args.onts)
        results = run_contenders(spec, args.repeat, quick, args.only)
        base = results.get(BASELINE, {}).get("ont_per_s")
        ponctl = results.get("ponctl NETCONF (batched, default)", {}).get("ont_per_s")
        report: dict[str, Any] = {
            "machine": machine(),
            "load_average_before_after": [round(load, 2), round(os.getloadavg()[0], 2)],
            "workload": f"{args.olts} OLTs x {args.onts} ONTs in autofind; per ONT its "
                        "registration and one internet service, rendered by ponctl's "
                        "sim-olt-* profiles",
            "repeat": args.repeat,
            "results": results,
            "target": "ponctl (NETCONF batched) >= 10x " + BASELINE,
            "ratio_ponctl_to_baseline": round(ponctl / base, 2) if ponctl and base else None,
        }
        (args.out / "contenders.json").write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nONT pushes, {report['workload']}; median of {args.repeat} fresh-lab runs; "
              f"{report['machine']}")
        print(contenders_table(results))
        print(f"ponctl / {BASELINE}: {report['ratio_ponctl_to_baseline']} (target 10)")
    if args.part in ("per-protocol", "all"):
        onts = LabSpec(olts=1, ports=2, per_port=args.onts)
        ports = -(-3 * args.gateways // 64)  # at most 64 ONTs (and gateways) a PON port
        gws = LabSpec(olts=1, ports=ports, per_port=-(-3 * args.gateways // ports),
                      gateways=True)
        results = run_per_protocol(onts, gws, args.repeat)
        report = {
            "machine": machine(),
            "load_average_before_after": [round(load, 2), round(os.getloadavg()[0], 2)],
            "onts": f"one OLT, 2 PON ports x {args.onts} ONTs in autofind",
            "gateways": f"one OLT whose {gws.ports * gws.per_port} ONTs are in service, each "
                        "with a gateway; models rotate NETCONF / SNMP / SSH",
            "repeat": args.repeat,
            "results": results,
        }
        (args.out / "per_protocol.json").write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nponctl per protocol: {report['onts']}; {report['gateways']}; median of "
              f"{args.repeat} fresh-lab runs; {report['machine']}")
        print(per_protocol_table(results))


if __name__ == "__main__":
    main()
