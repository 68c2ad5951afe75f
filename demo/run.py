"""``ponctl demo``: everything on embedded defaults, in under a minute.

1. A simulated lab starts in-process (``configs/demo-lab.yaml``: olt1 managed over NETCONF,
   olt2 over SNMP, gateways of all three kinds, on 127.42.x.x).
2. The agent starts against it with a fresh SQLite file, the shipped catalog, gateway classes,
   an SNMP trap listener, a throw-away API token and PHAN key.
3. Through the agent's API, as an OSS would: objects, barcode bindings, subscribers, lines of
   service, gateways and their association (PHAN URLs), and one order per object.
4. ONTs are plugged in one after another; the agent discovers them (NETCONF notifications on
   olt1, SNMP traps on olt2) and provisions them, then writes each PHAN URL to its gateway.
5. The powered-off ONT is switched on (its connection error clears by itself); an out-of-band
   change on the OLT is found by the audit (mismatch) and healed by a resend.
6. A summary table; exit code 0 if every order ended as expected, 1 otherwise.

The orders and what they show:

=========  ==============================================================================
obj-01..   active, PHAN URL written
obj-03     active; then an out-of-band change: mismatch, healed by a resend
obj-07     connection error (ONT powered off), active once the demo powers it on
obj-08     configuration missing: ISP ``speedy`` has no VLAN for ``iptv``
obj-13     awaiting activation: starts tomorrow
obj-20     awaiting prerequisites: no ONT bound to the object
=========  ==============================================================================
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from agent.client import ApiClient
from agent.daemon import Daemon
from agent.discovery import Backoff
from agent.phan import KEYS_ENV_VAR, Keyring
from agent.settings import Settings
from simulator.control import out_of_band_change
from simulator.lab import Lab
from simulator.topology import TrapTarget, load_topology

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
console = Console()
TOKEN_VAR, PASSWORD_VAR, COMMUNITY_VAR = "DEMO_API_TOKEN", "DEMO_PASSWORD", "DEMO_COMMUNITY"
GW_CLASS = {"SL-GW-N": "sim-n", "SL-GW-S": "sim-s", "SL-GW-C": "sim-c"}


@dataclass
class Case:
    """One object of the demo: its ONT, order and the status it should end in."""

    object_id: str
    serial: str | None
    isp: str
    service_type: str
    expect: str
    note: str
    plug: bool = False  # plugged in during the demo
    start_in: timedelta = timedelta(0)
    order_id: str = ""
    line: str = ""
    gateway: str | None = None
    final: dict[str, Any] = field(default_factory=dict)


CASES = [
    Case("obj-01", "DEMO00000001", "fibrenet", "internet", "active", "", plug=True),
    Case("obj-02", "DEMO00000002", "fibrenet", "internet", "active", "", plug=True),
    # The only subscriber of S-VLAN 1001 on olt1: an out-of-band change to it touches no one
    # else (a change to fibrenet's shared S-VLAN 1000 sub-interface would hit them all).
    Case("obj-03", "DEMO00000003", "speedy", "internet", "active",
         "mismatch (out-of-band change), healed by a resend", plug=True),
    Case("obj-04", "DEMO00000004", "fibrenet", "internet", "active", "", plug=True),
    Case("obj-05", "DEMO00000005", "fibrenet", "iptv", "active", "", plug=True),
    Case("obj-06", "DEMO00000006", "fibrenet", "voip", "active", "", plug=True),
    Case("obj-07", "DEMO00000007", "fibrenet", "internet", "active",
         "connection error (ONT off) until the demo powers it on"),
    Case("obj-08", "DEMO00000008", "speedy", "iptv", "awaiting-prerequisites",
         "configuration missing: no VLAN for this ISP and service type"),
    Case("obj-11", "DEMO00000011", "fibrenet", "internet", "active", "", plug=True),
    Case("obj-12", "DEMO00000012", "speedy", "internet", "active", "", plug=True),
    Case("obj-13", "DEMO00000013", "fibrenet", "internet", "awaiting-activation",
         "starts tomorrow", start_in=timedelta(days=1)),
    Case("obj-20", None, "fibrenet", "internet", "awaiting-prerequisites",
         "no ONT bound to the object"),
]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _settings(lab: Lab, work: Path, trap_port: int) -> Settings:
    known = work / "known_hosts"
    known.write_text("".join(
        f"{olt.address} {lab.host_keys[name].export_public_key().decode().strip()}\n"
        for name, olt in lab.olts.items()), encoding="utf-8")
    olt_ssh = {"username": "admin", "password": {"env": PASSWORD_VAR}, "known_hosts": str(known)}
    # Gateways make their SSH host keys when their faces first open: the lab opts out of
    # checking them (logged on every connection); production lists them in known_hosts.
    gw_ssh = {"username": "admin", "password": {"env": PASSWORD_VAR},
              "insecure_no_host_key_check": True}
    snmp = {"version": "v2c", "community": {"env": COMMUNITY_VAR}}
    ports = lab.ports
    return Settings.model_validate({
        "store": str(work / "ponctl-demo.sqlite3"),
        "catalog": str(CONFIGS / "catalog.yaml"),
        "devices": [
            {"name": "olt1", "address": lab.olts["olt1"].address, "protocol": "netconf",
             "port": ports.netconf, "profile": "sim-olt-netconf", "ssh": olt_ssh},
            {"name": "olt2", "address": lab.olts["olt2"].address, "protocol": "snmp",
             "port": ports.snmp, "profile": "sim-olt-snmp", "snmp": snmp},
        ],
        "gateway_classes": [
            {"name": "sim-n", "protocol": "netconf", "port": ports.netconf,
             "profile": "sim-gw-netconf", "ssh": gw_ssh, "timeout": 5},
            {"name": "sim-s", "protocol": "snmp", "port": ports.snmp, "profile": "sim-gw-snmp",
             "snmp": snmp, "timeout": 5},
            {"name": "sim-c", "protocol": "ssh", "port": ports.ssh, "profile": "sim-gw-ssh",
             "ssh": gw_ssh, "timeout": 5},
        ],
        "traps": {"listen": "127.0.0.1", "port": trap_port,
                  "communities": [{"env": COMMUNITY_VAR}]},
        "phan": {"base_url": "https://analytics.example.net/phan"},
        "api": {"listen": "127.0.0.1", "port": 0,
                "tokens": [{"name": "demo", "role": "admin", "token": {"env": TOKEN_VAR}}]},
        "audit_interval": 0,
    })


class Demo:
    def __init__(self, work: Path, *, plug_interval: float, live: bool) -> None:
        self.work = work
        self.plug_interval = plug_interval
        self.live = live
        self.cases = [Case(**{k: getattr(c, k) for k in (
            "object_id", "serial", "isp", "service_type", "expect", "note", "plug",
            "start_in")}) for c in CASES]
        self.phase = "starting"
        self.orders: dict[str, dict[str, Any]] = {}
        self.lines: dict[str, dict[str, Any]] = {}
        self.started = time.monotonic()

    # ---- display ----------------------------------------------------------------------
    def table(self, title: str) -> Table:
        t = Table(title=title, caption=f"{self.phase}  ({time.monotonic() - self.started:.1f} s)")
        for h in ("object", "ONT", "order", "status", "PHAN URL on gateway", "note"):
            t.add_column(h, overflow="fold")
        for c in self.cases:
            o = self.orders.get(c.order_id, {})
            st = o.get("status", "-")
            if o.get("error_class"):
                st += f" ({o['error_class']})"
            style = "green" if o.get("status") == "active" else (
                "red" if o.get("error_class") else "yellow")
            ln = self.lines.get(c.line, {})
            gs = ln.get("gateway_state") or {}
            url = {"written": "[green]written[/]", "pending": "[yellow]pending[/]",
                   "writing": "[cyan]writing[/]", "failed": "[red]failed[/]"}.get(
                gs.get("phase", ""), "-")
            t.add_row(c.object_id, c.serial or "-", f"{c.isp} {c.service_type}",
                      f"[{style}]{escape(st)}[/]", url, escape(c.note))
        return t

    async def refresh(self, api: ApiClient) -> None:
        for o in (await api.get("/orders"))["orders"]:
            self.orders[o["id"]] = o
        for ln in (await api.get("/lines"))["lines"]:
            self.lines[ln["code"]] = ln

    # ---- the story --------------------------------------------------------------------
    async def setup(self, api: ApiClient, lab: Lab) -> None:
        self.phase = "creating objects, bindings, subscribers, lines, gateways and orders"
        tomorrow_base = datetime.now(UTC)
        for i, c in enumerate(self.cases, start=1):
            await api.post("/objects", {"id": c.object_id, "address": f"{i} Fibre Lane"})
            if c.serial is not None:
                await api.post(f"/objects/{c.object_id}/bind", {"serial": c.serial})
                gw = lab.gateways.get(f"gw-{c.serial.lower()}")
                if gw is not None:
                    c.line, c.gateway = f"LOS-{i:04d}", gw.name
                    await api.post("/subscribers", {"code": f"SUB-{i:04d}",
                                                    "name": f"Subscriber {i}"})
                    await api.post("/lines", {"code": c.line, "subscriber": f"SUB-{i:04d}"})
                    await api.post("/gateways", {
                        "name": gw.name, "gateway_class": GW_CLASS[gw.model],
                        "address": gw.address, "ont_serial": c.serial})
                    await api.post(f"/lines/{c.line}/gateway", {"gateway": gw.name})
            start = tomorrow_base + c.start_in - timedelta(seconds=1)
            order = await api.post("/orders", {
                "object_id": c.object_id, "isp": c.isp, "service_type": c.service_type,
                "start_at": start.isoformat(), "external_ref": f"demo-{c.object_id}"})
            c.order_id = order["id"]

    async def plug_in(self, lab: Lab) -> None:
        topo = {o.serial: (olt.name, o) for olt in lab.topo.olts for o in olt.onts}
        for c in self.cases:
            if c.plug and c.serial is not None:
                olt_name, spec = topo[c.serial]
                self.phase = f"plugging in {c.serial} on {olt_name} {spec.port}"
                lab.olts[olt_name].add_ont(spec.serial, spec.port, spec.model, spec.firmware)
                await asyncio.sleep(self.plug_interval)

    def settled(self, *, waiting_for: Callable[[Case], bool]) -> bool:
        for c in self.cases:
            o = self.orders.get(c.order_id)
            if o is None or not waiting_for(c):
                continue
            if o["status"] != c.expect:
                return False
            ln = self.lines.get(c.line)
            if c.expect == "active" and ln is not None and \
                    (ln.get("gateway_state") or {}).get("phase") != "written":
                return False
        return True

    async def wait(self, api: ApiClient, until: Callable[[], bool], within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            await self.refresh(api)
            if until():
                return True
            await asyncio.sleep(0.2)
        await self.refresh(api)
        return until()

    async def story(self, api: ApiClient, lab: Lab, daemon: Daemon) -> bool:
        await self.setup(api, lab)
        await self.refresh(api)
        await self.plug_in(lab)
        self.phase = "waiting for the plugged ONTs' orders and gateways to settle"
        off = next(c for c in self.cases if c.object_id == "obj-07")
        ok = await self.wait(api, lambda: self.settled(waiting_for=lambda c: c is not off),
                             30)
        self.phase = "powering on DEMO00000007 (its order waited with a connection error)"
        await asyncio.sleep(1.0)
        lab.find_ont("DEMO00000007").set_power(True)
        ok = await self.wait(api, lambda: self.settled(waiting_for=lambda c: True), 20) and ok
        first = next(c for c in self.cases if c.object_id == "obj-03")
        assert first.serial is not None
        svc = next(iter(lab.find_ont(first.serial).applied))  # the OLT's name for it
        self.phase = f"out-of-band change on olt1: service {svc} moved to S-VLAN 1005"
        out_of_band_change(lab.olts["olt1"], "change-s-vlan", service=svc, s_vlan=1005)
        await asyncio.sleep(1.0)
        assert daemon.engine is not None
        findings = await daemon.engine.audit("olt1")
        await self.refresh(api)
        found = [f.order_id for f in findings if f.diff]
        self.phase = f"audit of olt1: mismatch on {', '.join(found) or 'nothing'}; resending"
        await asyncio.sleep(1.5)
        await api.post(f"/orders/{first.order_id}/resend")
        ok = await self.wait(api, lambda: self.settled(waiting_for=lambda c: True), 20) and ok
        self.phase = "done"
        return ok and found == [first.order_id]


async def run_demo(work: Path, *, plug_interval: float = 0.4, live: bool = True,
                   address_base: str | None = None) -> int:
    """Run the demo; 0 when every order ended as expected (``address_base``: another
    127.x.0.0 range than the demo lab's own)."""
    logging.basicConfig(filename=work / "demo.log", level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    trap_port = _free_udp_port()
    topo = load_topology(CONFIGS / "demo-lab.yaml")
    topo = topo.model_copy(update={"trap_targets": [TrapTarget(
        address="127.0.0.1", port=trap_port, version="v2c", community="private")],
        **({"address_base": address_base} if address_base else {})})
    lab = Lab(topo)
    token = secrets.token_urlsafe(24)
    environ = {TOKEN_VAR: token, PASSWORD_VAR: "admin", COMMUNITY_VAR: "private",
               KEYS_ENV_VAR: Keyring.generate("demo").export_secrets()}
    demo = Demo(work, plug_interval=plug_interval, live=live)
    await lab.start()
    try:
        settings = _settings(lab, work, trap_port)
        daemon = Daemon(settings, environ=environ,
                        engine_options={"gateway_retry": 2.0, "verify_timeout": 5.0},
                        watch_interval=0.5, backoff=Backoff(initial=0.1, cap=1.0))
        async with daemon, ApiClient(f"http://127.0.0.1:{daemon.port}", token) as api:
            ok = await _with_display(demo, demo.story(api, lab, daemon), live)
            await demo.refresh(api)
    finally:
        await lab.stop()
    console.print(summary(demo))
    bad = [c for c in demo.cases if demo.orders.get(c.order_id, {}).get("status") != c.expect]
    console.print(f"log: {work / 'demo.log'}    store: {work / 'ponctl-demo.sqlite3'}")
    if ok and not bad:
        console.print(f"[green]demo done in {time.monotonic() - demo.started:.1f} s: every "
                      f"order ended as expected[/]")
        return 0
    console.print(f"[red]demo: {len(bad)} order(s) did not end as expected[/]")
    return 1


async def _with_display(demo: Demo, work: Awaitable[bool], live: bool) -> bool:
    if not live:
        return await work
    with Live(demo.table("ponctl demo"), console=console, refresh_per_second=4) as view:
        task = asyncio.ensure_future(work)
        while not task.done():
            view.update(Group(demo.table("ponctl demo")))
            await asyncio.sleep(0.25)
        view.update(demo.table("ponctl demo"))
        return task.result()


def summary(demo: Demo) -> Table:
    t = Table(title="summary")
    for h in ("object", "order", "expected", "ended", "error", "PHAN URL", "ok"):
        t.add_column(h, overflow="fold")
    for c in demo.cases:
        o = demo.orders.get(c.order_id, {})
        ln = demo.lines.get(c.line, {})
        url = ln.get("phan_url") if (ln.get("gateway_state") or {}).get("phase") == \
            "written" else None
        ok = o.get("status") == c.expect
        t.add_row(c.object_id, c.order_id, c.expect, escape(str(o.get("status", "-"))),
                  escape(str(o.get("error_class") or "")),
                  escape(url[:48] + "...") if url else "-",
                  "[green]yes[/]" if ok else "[red]no[/]")
    return t


def demo_command(
        plug_interval: Annotated[float, typer.Option(help="seconds between ONT plug-ins")] = 0.4,
        keep: Annotated[Path | None, typer.Option(help="keep the store and log in this "
                                                      "directory")] = None,
        no_live: Annotated[bool, typer.Option("--no-live", help="no live table")] = False,
) -> None:
    """Run the simulated lab and the agent together: orders settle live, then a summary."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        code = asyncio.run(run_demo(keep, plug_interval=plug_interval, live=not no_live))
    else:
        with tempfile.TemporaryDirectory(prefix="ponctl-demo-") as tmp:
            code = asyncio.run(run_demo(Path(tmp), plug_interval=plug_interval,
                                        live=not no_live))
    raise typer.Exit(code)
