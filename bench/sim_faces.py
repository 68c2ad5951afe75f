"""The simulator's faces against their ceilings: NETCONF get-config/s, SNMP GET/GETBULK/s.

    python bench/sim_faces.py [--part all|netconf|snmp] [--repeat 5]
        [--requests 1000] [--depths 4,16] [--netconf-onts 0,64]
        [--snmp-onts 512] [--snmp-requests 1000] [--concurrency 16] [--walks 3]

Every server runs in a process of its own, so that client and server CPU are separate
(process_time here, /proc/<pid>/stat there). Figures are medians of ``--repeat`` runs.

NETCONF (one session, the project's NetconfDriver as client, as in bench/driver_netconf.py):
  simulator   the simulated OLT's NetconfServer (this script with --serve netconf-sim), its
              running config holding --netconf-onts ONTs, each registered with one service
  ceiling     a bare asyncssh NETCONF server (--serve netconf-bare) with the same SSH
              settings (ed25519 host key, password login) and the same framing code
              (simulator.netconf.framing decoders): it exchanges hellos, then answers every
              <rpc> with a pre-serialised rpc-reply, byte for byte the simulator's get-config
              reply for the same OLT, only the message-id spliced in. What SSH plus framing
              alone cost; the gap to it is the simulator's RPC handling.
  Reported: rpc/s sequential and with N requests in flight, server CPU ms per request, and
  the simulator's fraction of the ceiling (rpc/s, and server CPU ceiling / simulator CPU).

SNMP v2c (the project's SnmpClient as client, sequential and --concurrency tasks):
  simulator   the simulated OLT's pysnmp agent (--serve snmp-sim) serving PONCTL-MIB for an
              OLT with --snmp-onts ONTs (ponctlOntTable: 9 columns per ONT)
  snmpsim     snmpsim-command-responder serving a .snmprec data file generated from a walk
              of the simulator's system group and ponctlOntTable: the same OIDs, types and
              values
  snmpd       net-snmp's snmpd (private config, as bench/driver_snmp.py starts it); it has
              no ponctlOntTable, so its rows use sysDescr.0 and GETBULKs starting at ifTable
  Rows: GET sysDescr.0; GET one ponctlOntOperStatus cell; GETBULK max-repetitions 25 from
  the table's start (25 varbinds per response on every agent); a full walk of
  ponctlOntTable (GETBULK, 25 per PDU). Agent CPU ms per request from /proc/<pid>/stat.

Results go to bench/results/sim_faces.json (or --out DIR), with the load average before and
after each part: other processes on the machine skew every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import grp
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncssh

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from anywhere

from bench import driver_netconf as dn  # noqa: E402 - the NETCONF measuring loop is shared
from bench import driver_snmp as ds  # noqa: E402 - and so is the private snmpd
from drivers.snmp.client import SnmpClient  # noqa: E402
from drivers.snmp.target import SnmpTarget  # noqa: E402
from drivers.snmp.varbind import Varbind, VarType  # noqa: E402

if TYPE_CHECKING:
    from simulator.devices import Olt

RESULTS = REPO / "bench" / "results" / "sim_faces.json"
ONTS_PER_PORT = 128
SYS_DESCR = "1.3.6.1.2.1.1.1.0"
SYSTEM = "1.3.6.1.2.1.1"
ONT_ENTRY = "1.3.6.1.4.1.32473.1.1.2.1"  # ponctlOntEntry (simulator/snmp/oids.py)
ONT_OPER = f"{ONT_ENTRY}.5.1.5"  # ponctlOntOperStatus of port index 1, ONU 5
IF_TABLE = "1.3.6.1.2.1.2.2"
BULK = 25
_MID = re.compile(rb'message-id="([^"]*)"')
_PLACEHOLDER = "ponctl-bench-message-id"


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---- the OLT both NETCONF servers and the SNMP agent describe ------------------------------

def build_olt(onts: int) -> Olt:
    """An OLT with ``onts`` ONTs plugged in, each registered with one internet service.

    Call inside the running loop: the ONTs range (20 ms) before they are operational.
    """
    from simulator.config import builder as b
    from simulator.config import edit as ed
    from simulator.devices import Credentials, Olt, SnmpSettings

    ports = [f"0/1/{p}" for p in range(max(2, -(-onts // ONTS_PER_PORT)))]
    olt = Olt("olt-bench", "127.0.0.1", Credentials("admin", "admin"),
              SnmpSettings("public", "private", "ponctl", ds.AUTH_KEY, ds.PRIV_KEY),
              frozenset({"netconf", "snmp"}), ports, {"0/9/0": frozenset({1000, 2000})})
    if not onts:
        return olt
    els = b.traffic_profile("tdp-100M", 100_000_000)
    for k in range(onts):
        p, n = divmod(k, ONTS_PER_PORT)
        serial = f"SIML{p:02X}{n:06X}"
        olt.add_ont(serial, ports[p])
        onu = b.OnuSpec(ports[p], n, serial, f"bench ONT {k}")
        gem = 1024 + p * ONTS_PER_PORT + n
        els += b.onu_registration(onu) + b.uni_tagging(onu, 1, 100)
        els += b.olt_service(b.ServiceSpec(onu, 1, 100, 1000, "0/9/0", gem, gem, "tdp-100M"))
    root = ed.edit(olt.running, b.combine(els)).root
    olt.check(root, olt.running)
    olt.set_running(root)
    return olt


async def _wait_operational(olt: Olt) -> None:
    from simulator.devices import OntState

    async with asyncio.timeout(30):
        while any(o.state != OntState.OPERATIONAL for o in olt.onts.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def _until_stdin_closes() -> None:
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


# ---- servers (subprocesses) ----------------------------------------------------------------

async def serve_netconf_sim(onts: int) -> None:
    from simulator.netconf import NetconfServer

    olt = build_olt(onts)
    await _wait_operational(olt)
    key = asyncssh.generate_private_key("ssh-ed25519")
    srv = await NetconfServer.start(olt, "127.0.0.1", 0, key)
    print(json.dumps({"port": srv.port, "key": key.export_public_key().decode().strip()}),
          flush=True)
    await _until_stdin_closes()
    await srv.close()


class _BareSession(asyncssh.SSHServerSession[bytes]):
    """Hello, then the same pre-serialised rpc-reply to every <rpc>: framing and SSH only."""

    def __init__(self, hello: bytes, head: bytes, framed_tail: bytes, ok: bytes) -> None:
        from simulator.netconf import framing as fr

        self._fr = fr
        self._hello, self._head, self._tail, self._ok = hello, head, framed_tail, ok
        self._decoder: fr.Decoder = fr.EomDecoder()
        self._hello_done = False
        self._chan: asyncssh.SSHServerChannel[bytes] | None = None

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self._chan = chan

    def subsystem_requested(self, subsystem: str) -> bool:
        return subsystem == "netconf"

    def session_started(self) -> None:
        assert self._chan is not None
        self._chan.write(self._hello)

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        assert self._chan is not None
        self._decoder.feed(data)
        while (message := self._decoder.next()) is not None:
            if not self._hello_done:
                self._hello_done = True
                if b"base:1.1" in message:
                    self._decoder = self._fr.ChunkedDecoder(initial=self._decoder.rest())
                continue
            found = _MID.search(message, 0, 512)
            mid = found.group(1) if found else b""
            if b"close-session" in message:
                self._chan.write(self._fr.encode_chunked(self._ok.replace(
                    _PLACEHOLDER.encode(), mid)))
                self._chan.close()
                return
            head = self._head + mid
            self._chan.write(b"\n#%d\n%s%s" % (len(head), head, self._tail))


class _BareServer(asyncssh.SSHServer):
    def __init__(self, session: Callable[[], _BareSession]) -> None:
        self._session = session

    def session_requested(self) -> _BareSession:
        return self._session()

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return True


async def serve_netconf_bare(onts: int) -> None:
    from lxml import etree

    from simulator.config.namespaces import NC
    from simulator.netconf import framing as fr
    from simulator.netconf import rpc as r
    from simulator.netconf.capabilities import build_hello, olt_capabilities

    olt = build_olt(onts)
    await _wait_operational(olt)
    rpc = etree.fromstring(f'<rpc xmlns="{NC}" message-id="{_PLACEHOLDER}"/>'.encode())
    reply = r.reply_data(rpc, [olt.running])  # what the simulator's get-config answers
    head, tail = reply.split(_PLACEHOLDER.encode(), 1)
    framed_tail = fr.encode_chunked(tail)  # the reply's last chunks and the end marker
    ok = r.reply_ok(rpc)
    hello = fr.encode_eom(build_hello(olt_capabilities(), 1))
    key = asyncssh.generate_private_key("ssh-ed25519")
    acceptor = await asyncssh.create_server(
        lambda: _BareServer(lambda: _BareSession(hello, head, framed_tail, ok)),
        "127.0.0.1", 0, server_host_keys=[key], encoding=None, allow_pty=False,
        agent_forwarding=False, x11_forwarding=False)
    print(json.dumps({"port": acceptor.get_port(), "reply_bytes": len(reply),
                      "key": key.export_public_key().decode().strip()}), flush=True)
    await _until_stdin_closes()
    acceptor.close()
    await acceptor.wait_closed()


async def serve_snmp_sim(onts: int) -> None:
    from simulator.snmp import SnmpAgent

    olt = build_olt(onts)
    await _wait_operational(olt)
    agent = await SnmpAgent.start(olt, "127.0.0.1", 0, [])
    print(json.dumps({"port": agent.port}), flush=True)
    await _until_stdin_closes()
    await agent.close()


class Face(dn.Server):
    """A server subprocess of this script (``--serve KIND --onts N``)."""

    def __init__(self, kind: str, onts: int) -> None:  # not super().__init__: other argv
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", kind,
             "--onts", str(onts)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(10)
            raise RuntimeError(f"--serve {kind} exited with {self.proc.returncode}")
        self.info: dict[str, Any] = json.loads(line)
        self.port = int(self.info["port"])
        self.known_hosts = f"[127.0.0.1]:{self.port} {self.info.get('key', '')}"


@contextlib.contextmanager
def face(kind: str, onts: int) -> Iterator[Face]:
    f = Face(kind, onts)
    try:
        yield f
    finally:
        f.stop()


# ---- NETCONF -------------------------------------------------------------------------------

def bench_netconf(args: argparse.Namespace) -> dict[str, Any]:
    depths = [int(d) for d in args.depths.split(",") if d]
    out: dict[str, Any] = {}
    for onts in [int(n) for n in args.netconf_onts.split(",") if n]:
        before = load()
        results: dict[str, dict[str, float]] = {}
        sizes: dict[str, int] = {}
        for name, kind in (("simulator", "netconf-sim"), ("ceiling", "netconf-bare")):
            with face(kind, onts) as server:
                rows, size, _connect, cipher = asyncio.run(dn.bench_driver(
                    server, args.requests, args.repeat, depths, label=f" {name}"))
                results.update(rows)
                sizes[name] = int(server.info.get("reply_bytes", 0))
                sizes[f"{name}_data_bytes"] = size
            print(f"  netconf {onts} ONTs, {name}: done ({cipher})", file=sys.stderr)
        share: dict[str, dict[str, float | None]] = {}
        for mode in ["driver sequential", *(f"driver pipelined {d}" for d in depths)]:
            sim, top = results[f"{mode} simulator"], results[f"{mode} ceiling"]
            # server_cpu: the ceiling's CPU per request over the simulator's (None when a
            # tiny run stays under one clock tick)
            share[mode] = {
                "rpc_per_s": round(sim["rpc_per_s"] / top["rpc_per_s"], 3),
                "server_cpu": (round(top["server_cpu_ms_per_rpc"]
                                     / sim["server_cpu_ms_per_rpc"], 3)
                               if sim["server_cpu_ms_per_rpc"] else None),
            }
        out[f"{onts} ONTs"] = {"onts": onts, "reply_bytes": sizes["ceiling"],
                               "driver_data_bytes": sizes["simulator_data_bytes"],
                               "cipher": cipher, "load_average_before": before,
                               "load_average_after": load(), "results": results,
                               "simulator_share_of_ceiling": share}
    return out


def netconf_table(part: dict[str, Any]) -> str:
    lines = ["| ONTs | reply B | mode | simulator rpc/s | ceiling rpc/s | sim / ceiling "
             "| sim server ms/rpc | ceiling server ms/rpc | load 1m |",
             "|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for entry in part.values():
        res = entry["results"]
        for mode, share in entry["simulator_share_of_ceiling"].items():
            sim, top = res[f"{mode} simulator"], res[f"{mode} ceiling"]
            lines.append(
                f"| {entry['onts']} | {entry['reply_bytes']:,} | {mode.removeprefix('driver ')} "
                f"| {sim['rpc_per_s']:,.0f} | {top['rpc_per_s']:,.0f} "
                f"| {share['rpc_per_s']:.0%} | {sim['server_cpu_ms_per_rpc']:.3f} "
                f"| {top['server_cpu_ms_per_rpc']:.3f} | {entry['load_average_before'][0]} |")
    return "\n".join(lines)


# ---- SNMP ----------------------------------------------------------------------------------

_SNMPREC_TAG = {VarType.INTEGER: "2", VarType.OCTET_STRING: "4", VarType.HEX: "4x",
                VarType.OBJECT_IDENTIFIER: "6", VarType.IP_ADDRESS: "64",
                VarType.COUNTER32: "65", VarType.GAUGE32: "66", VarType.UNSIGNED: "66",
                VarType.TIMETICKS: "67", VarType.COUNTER64: "70"}


def snmprec_line(vb: Varbind) -> str:
    tag = _SNMPREC_TAG[vb.type]
    value = vb.value.hex() if isinstance(vb.value, bytes) else str(vb.value)
    if "|" in value or "\n" in value:
        raise ValueError(f"{vb.oid}: value not representable in .snmprec text: {value!r}")
    return f"{vb.oid}|{tag}|{value}"


def v2c(port: int) -> SnmpTarget:
    return SnmpTarget("127.0.0.1", port, "v2c", community="public", timeout=2.0, retries=1,
                      max_repetitions=BULK)


async def snmp_rows(agent: str, port: int, pid: int, table: bool,
                    args: argparse.Namespace) -> list[dict[str, Any]]:
    """Every mode against one agent: medians of ``args.repeat`` runs each."""
    n, conc = args.snmp_requests, args.concurrency
    rows: list[dict[str, Any]] = []
    async with SnmpClient(v2c(port)) as snmp:
        bulk_from = ONT_ENTRY if table else IF_TABLE

        async def get_descr() -> int:
            return len(await snmp.get(SYS_DESCR))

        async def get_cell() -> int:
            return len(await snmp.get(ONT_OPER))

        async def bulk() -> int:
            got = await snmp.get_bulk(bulk_from, max_repetitions=BULK)
            if len(got) != BULK:
                raise RuntimeError(f"{agent}: GETBULK answered {len(got)} varbinds")
            return len(got)

        async def walk() -> int:
            return len(await snmp.walk_all(ONT_ENTRY))

        ops: list[tuple[str, Callable[[], Awaitable[int]], int, bool]] = [
            ("GET sysDescr.0", get_descr, n, True)]
        if table:
            ops.append(("GET ponctlOntOperStatus cell", get_cell, n, True))
        ops.append((f"GETBULK x{BULK} from {'ponctlOntTable' if table else 'ifTable'}",
                    bulk, n // 2, True))
        if table:
            ops.append(("walk ponctlOntTable", walk, args.walks, False))
        for name, op, count, concurrent in ops:
            for _ in range(min(20, count)):  # warm-up
                await op()
            for mode in ("sequential", f"{conc} concurrent") if concurrent else ("sequential",):
                workers = 1 if mode == "sequential" else conc
                per = max(1, count // workers)
                runs = []
                for _ in range(args.repeat):
                    got: list[int] = []

                    async def worker(k: int = per, acc: list[int] = got,
                                     call: Callable[[], Awaitable[int]] = op) -> None:
                        for _ in range(k):
                            acc.append(await call())

                    t0, c0, s0 = time.perf_counter(), time.process_time(), proc_cpu(pid)
                    async with asyncio.TaskGroup() as tg:
                        for _ in range(workers):
                            tg.create_task(worker())
                    wall = time.perf_counter() - t0
                    runs.append((len(got) / wall, sum(got) / wall,
                                 (time.process_time() - c0) * 1000 / len(got),
                                 (proc_cpu(pid) - s0) * 1000 / len(got),
                                 sum(got) / len(got)))
                rows.append({
                    "agent": agent, "request": name, "mode": mode,
                    "requests_per_s": round(statistics.median(r[0] for r in runs), 1),
                    "varbinds_per_s": round(statistics.median(r[1] for r in runs)),
                    "varbinds_per_request": round(statistics.median(r[4] for r in runs), 1),
                    "client_cpu_ms_per_request": round(statistics.median(r[2] for r in runs), 3),
                    "agent_cpu_ms_per_request": round(statistics.median(r[3] for r in runs), 3),
                    "requests_per_run": per * workers, "runs": len(runs)})
    return rows


async def _snapshot(port: int) -> list[str]:
    """.snmprec lines for the simulator's system group and ponctlOntTable, in OID order."""
    async with SnmpClient(v2c(port)) as snmp:
        vbs = await snmp.walk_all(SYSTEM) + await snmp.walk_all(ONT_ENTRY)
    return [snmprec_line(vb) for vb in vbs]


def _wait_snmp(port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    async def probe() -> bool:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                async with SnmpClient(SnmpTarget("127.0.0.1", port, "v2c", timeout=0.5,
                                                 retries=0)) as snmp:
                    await snmp.get(SYS_DESCR)
                return True
            except Exception:  # not answering yet  # noqa: BLE001
                await asyncio.sleep(0.2)
        return False

    if not asyncio.run(probe()):
        raise RuntimeError(f"{what} did not start: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def snmpsim(records: list[str], home: Path) -> Iterator[tuple[int, int]]:
    """snmpsim-command-responder serving ``records`` as community "public": (port, pid)."""
    data, cache = home / "data", home / "cache"
    data.mkdir(parents=True)
    cache.mkdir()
    (data / "public.snmprec").write_text("\n".join(records) + "\n")
    argv = [f"--data-dir={data}", f"--cache-dir={cache}", "--logging-method=stderr",
            "--log-level=error",
            f"--agent-udpv4-endpoint=127.0.0.1:{ds._free_port()}"]
    if os.geteuid() == 0:
        # snmpsim refuses to run as root and drops to another user; that user must read the
        # data and write the index. It then cannot import anything new from a private
        # interpreter (e.g. under /root), so the dbm module its index opens lazily is
        # imported first.
        group = "nogroup" if _has_group("nogroup") else "nobody"
        argv += ["--process-user=nobody", f"--process-group={group}"]
        home.parent.chmod(0o711)  # a TemporaryDirectory is 0700
        for p in (home, data, cache, data / "public.snmprec"):
            p.chmod(0o777 if p.is_dir() else 0o644)
    port = int(argv[4].rsplit(":", 1)[1])
    log = home / "snmpsim.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", "import dbm, dbm.dumb, sys\n"
             "from snmpsim.commands.responder import main\nsys.exit(main())", *argv],
            stdout=out, stderr=subprocess.STDOUT, cwd=home)
    try:
        _wait_snmp(port, proc, "snmpsim", log)
        yield port, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _has_group(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def snmpsim_available() -> str | None:
    """None if snmpsim can run here, else why not."""
    probe = subprocess.run([sys.executable, "-c", "import snmpsim.commands.responder"],
                           capture_output=True, text=True, check=False)
    if probe.returncode:
        return "snmpsim does not import: " + probe.stderr.strip().splitlines()[-1]
    return None


def bench_snmp(args: argparse.Namespace) -> dict[str, Any]:
    onts = args.snmp_onts
    rows: list[dict[str, Any]] = []
    loads: dict[str, list[float]] = {}
    with face("snmp-sim", onts) as sim:
        loads["simulator"] = load()
        rows += asyncio.run(snmp_rows("simulator", sim.port, sim.proc.pid, True, args))
        records = asyncio.run(_snapshot(sim.port))
    print("  snmp simulator: done", file=sys.stderr)
    table_records = sum(1 for r in records if r.startswith(ONT_ENTRY + "."))
    with tempfile.TemporaryDirectory(prefix="bench-faces-") as tmp:
        why = snmpsim_available()
        if why is None:
            with snmpsim(records, Path(tmp) / "snmpsim") as (port, pid):
                loads["snmpsim"] = load()
                rows += asyncio.run(snmp_rows("snmpsim", port, pid, True, args))
            print("  snmp snmpsim: done", file=sys.stderr)
        else:
            print(f"  snmpsim skipped: {why}", file=sys.stderr)
        if shutil.which("snmpd") or Path("/usr/sbin/snmpd").exists():
            home = Path(tmp) / "snmpd"
            with ds.net_snmpd(home) as port:
                pid = int((home / "pid").read_text().split()[0])
                loads["snmpd"] = load()
                rows += asyncio.run(snmp_rows("net-snmp snmpd", port, pid, False, args))
            print("  snmp snmpd: done", file=sys.stderr)
        else:
            print("  snmpd skipped: not installed", file=sys.stderr)
    return {"onts": onts, "table_varbinds": table_records, "version": "v2c",
            "concurrency": args.concurrency, "max_repetitions": BULK,
            "snmpsim_version": _version("snmpsim"), "load_average_at_start": loads,
            "load_average_after": load(), "rows": rows}


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def snmp_table(part: dict[str, Any]) -> str:
    lines = ["| agent | request | mode | req/s | varbinds/s | agent ms/req | client ms/req "
             "| load 1m |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in part["rows"]:
        lines.append(f"| {r['agent']} | {r['request']} | {r['mode']} "
                     f"| {_rate(r['requests_per_s'])} | {r['varbinds_per_s']:,} "
                     f"| {r['agent_cpu_ms_per_request']:.3f} "
                     f"| {r['client_cpu_ms_per_request']:.3f} "
                     f"| {part['load_average_at_start'][_agent_key(r['agent'])][0]} |")
    return "\n".join(lines)


def _rate(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.2f}"


def _agent_key(agent: str) -> str:
    return "snmpd" if "snmpd" in agent else agent


# ---- main ----------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--serve", choices=("netconf-sim", "netconf-bare", "snmp-sim"),
                    help=argparse.SUPPRESS)
    ap.add_argument("--onts", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--part", choices=("all", "netconf", "snmp"), default="all")
    ap.add_argument("--repeat", type=int, default=5, help="runs per row (median)")
    ap.add_argument("--requests", type=int, default=1000, help="get-configs per NETCONF run")
    ap.add_argument("--depths", default="4,16", help="NETCONF requests in flight")
    ap.add_argument("--netconf-onts", default="0,64",
                    help="ONTs in the OLT's running config, one server pair each")
    ap.add_argument("--snmp-onts", type=int, default=512)
    ap.add_argument("--snmp-requests", type=int, default=1000, help="GETs per SNMP run")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--walks", type=int, default=3, help="table walks per SNMP run")
    ap.add_argument("--out", type=Path, help="directory for sim_faces.json "
                                             "(default bench/results)")
    args = ap.parse_args()
    if args.serve:
        serve = {"netconf-sim": serve_netconf_sim, "netconf-bare": serve_netconf_bare,
                 "snmp-sim": serve_snmp_sim}[args.serve]
        asyncio.run(serve(args.onts))
        return
    before = load()
    if before[0] > 0.5:
        print(f"warning: load average {before[0]} before starting; figures will be noisy",
              file=sys.stderr)
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python "
                   f"{platform.python_version()}",
        "load_average_before": before, "repeat": args.repeat}
    if args.part in ("all", "netconf"):
        report["netconf"] = bench_netconf(args)
    if args.part in ("all", "snmp"):
        report["snmp"] = bench_snmp(args)
    report["load_average_after"] = load()
    out = (args.out / "sim_faces.json") if args.out else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['machine']}; medians of {args.repeat} runs; load average (1, 5, 15 min) "
          f"before {before}, after {report['load_average_after']}")
    if "netconf" in report:
        print("\nNETCONF get-config of running, one session, NetconfDriver; ceiling = bare "
              "asyncssh server sending the same reply bytes")
        print(netconf_table(report["netconf"]))
    if "snmp" in report:
        snmp = report["snmp"]
        print(f"\nSNMP v2c through SnmpClient; simulator and snmpsim serve ponctlOntTable of "
              f"{snmp['onts']} ONTs ({snmp['table_varbinds']} varbinds); snmpd: sysDescr.0 "
              "and ifTable")
        print(snmp_table(snmp))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
