"""``ponctl sim ...``: run a lab in the foreground, and control a running one."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import aiohttp
import typer
from rich.console import Console
from rich.table import Table

from simulator.topology import Ports, TopologyError, load_topology

app = typer.Typer(help="The simulated lab: OLTs, ONTs and gateways on loopback.",
                  add_completion=False,
                  no_args_is_help=True)
out = Console()
err = Console(stderr=True)

DEFAULT_TOPOLOGY = Path("configs/lab.yaml")
ControlOpt = Annotated[str | None, typer.Option(
    "--control", help="Control URL of a running lab (default: $PONCTL_SIM_CONTROL, else "
    "http://127.0.0.1:8700).")]


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@app.command()
def run(
    topology: Annotated[Path, typer.Option("--topology", "-t", help="Topology YAML file.")] = (
        DEFAULT_TOPOLOGY),
    endpoints: Annotated[Path | None, typer.Option(
        help="Also write the lab's endpoints to this JSON file.")] = None,
    control: Annotated[str | None, typer.Option(
        help="Control endpoint HOST:PORT (default: the topology's, 127.0.0.1:8700).")] = None,
    free_ports: Annotated[bool, typer.Option(
        "--free-ports", help="Bind every face to a free port instead of the topology's.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print no endpoint table.")] = False,
) -> None:
    """Run a lab in the foreground until Ctrl-C or SIGTERM, printing every device's endpoints."""
    try:
        topo = load_topology(topology)
    except TopologyError as exc:
        _fail(str(exc))
        return
    host, port = topo.control.address, topo.control.port
    if control:
        host, _, p = control.rpartition(":")
        if not p.isdigit() or not host:
            _fail(f"--control {control!r} is not HOST:PORT")
        port = int(p)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    try:
        asyncio.run(_run(topo, host, port, endpoints, free_ports, quiet))
    except OSError as exc:
        _fail(f"cannot start the lab: {exc}")
    except ValueError as exc:
        _fail(f"{topology}: {exc}")


async def _run(topo: Any, host: str, port: int, endpoints: Path | None, free_ports: bool,
               quiet: bool) -> None:
    from simulator.control import ControlServer
    from simulator.lab import Lab

    lab = Lab(topo, ports=Ports(netconf=0, snmp=0, ssh=0) if free_ports else None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await lab.start()
    control = None
    try:
        control = await ControlServer.start(lab, host, port)
        url = control.url
        data = lab.endpoints(url)
        if endpoints is not None:
            await asyncio.to_thread(_write_json, endpoints, data)
        if not quiet:
            _print_endpoints(data, lab.status())
        rewrite: asyncio.TimerHandle | None = None
        writes: set[asyncio.Task[None]] = set()

        def write_later() -> None:
            nonlocal rewrite
            rewrite = None
            if endpoints is not None:  # snapshot on the loop, write in a thread
                task = loop.create_task(asyncio.to_thread(_write_json, endpoints,
                                                          lab.endpoints(url)))
                writes.add(task)
                task.add_done_callback(writes.discard)

        def follow(dev: Any, up: bool) -> None:
            # Gateways open and close their faces as their ONT's service comes and goes:
            # keep the endpoints file current (coalescing bursts) and say so.
            nonlocal rewrite
            if not quiet:
                where = ", ".join(f"{f} {dev.address}:{p}" for f, p in dev.ports.items())
                out.print(f"{dev.name}: " + (f"reachable ({where})" if up else "unreachable"),
                          highlight=False)
            if endpoints is not None and rewrite is None:
                rewrite = loop.call_later(0.5, write_later)

        lab.face_watchers.append(follow)
        await stop.wait()
        if rewrite is not None:
            rewrite.cancel()
        for task in list(writes):
            await task
    finally:
        if control is not None:
            await control.close()
        errors = await lab.stop()
        for e in errors:
            err.print(f"while stopping: {e!r}")
        if endpoints is not None:
            await asyncio.to_thread(endpoints.unlink, missing_ok=True)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)  # readers never see half a file


def _print_endpoints(data: dict[str, Any], status: dict[str, Any]) -> None:
    table = Table(title=f"lab {status['name']}: {status['olts']} OLTs, {status['onts']} ONTs, "
                  f"{status['gateways']} gateways ({status['gateways_reachable']} reachable); "
                  f"started in {status['start_seconds']:.2f} s, RSS {status['rss_mib']:.0f} MiB")
    for col in ("device", "kind", "address", "netconf", "snmp", "ssh"):
        table.add_column(col)
    waiting = 0
    for d in data["devices"]:
        if d["kind"] == "gateway" and not d["reachable"]:
            waiting += 1  # no endpoint until its ONT's service is up
            continue
        table.add_row(d["name"], d["kind"], d["address"],
                      *(str(d[f]["port"]) if d[f] else "-" for f in ("netconf", "snmp", "ssh")))
    out.print(table)
    if waiting:
        out.print(f"{waiting} gateways wait for their ONT's service before they answer; each is "
                  "reported here when it becomes reachable (and in --endpoints).")
    out.print(f"control: {data['control']}   (Ctrl-C stops the lab)")


# ---- commands against a running lab ------------------------------------------------------
def _url(control: str | None) -> str:
    return (control or os.environ.get("PONCTL_SIM_CONTROL") or "http://127.0.0.1:8700").rstrip("/")


def _call(control: str | None, method: str, path: str, body: Any = None) -> Any:
    async def go() -> tuple[int, Any]:
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as s, s.request(
                method, _url(control) + path, json=body) as r:
            return r.status, await r.json(content_type=None)

    try:
        status, data = asyncio.run(go())
    except (aiohttp.ClientError, TimeoutError) as exc:
        _fail(f"cannot reach the lab's control endpoint at {_url(control)}: {exc or 'timeout'}"
              " (is `ponctl sim run` running?)")
        return None
    if status >= 400:
        _fail(str(data.get("error") if isinstance(data, dict) else data))
    return data


@app.command()
def status(control: ControlOpt = None) -> None:
    """Summary of a running lab: devices, ONT states, start time, memory."""
    out.print_json(json.dumps(_call(control, "GET", "/status")))


@app.command()
def devices(control: ControlOpt = None) -> None:
    """List the devices of a running lab with their ports and active faults."""
    table = Table()
    for col in ("device", "kind", "address", "ports", "faults"):
        table.add_column(col)
    for d in _call(control, "GET", "/devices"):
        ports = " ".join(f"{k}:{v}" for k, v in d["ports"].items()) or "(unreachable)"
        faults = " ".join(f"{k}={v}" for k, v in d["faults"].items())
        table.add_row(d["name"], d["kind"], d["address"], ports, faults)
    out.print(table)


@app.command()
def show(name: str, control: ControlOpt = None) -> None:
    """Show one device (an OLT with its ONTs, or a gateway) as JSON."""
    out.print_json(json.dumps(_call(control, "GET", f"/devices/{name}")))


@app.command()
def ont(serial: str, control: ControlOpt = None) -> None:
    """Show one ONT: state, onu-id, optical levels, applied services."""
    out.print_json(json.dumps(_call(control, "GET", f"/onts/{serial}")))


@app.command()
def fault(
    device: str,
    name: Annotated[str, typer.Argument(help="latency, drop_after, drop_mid_reply, "
                                        "refuse_commit, snmp_loss, wrong_credentials, lock_held")],
    value: Annotated[str, typer.Argument(help="JSON value, e.g. 0.5, 3, true, \"busy\"")] = "true",
    control: ControlOpt = None,
) -> None:
    """Switch a fault on a device (value 'null' or 'false' switches it off)."""
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        parsed = value  # a bare word, e.g. a refuse_commit message
    data = _call(control, "POST", f"/devices/{device}/faults", {"fault": name, "value": parsed})
    out.print(f"{data['device']}: faults now {data['faults'] or 'none'}")


@app.command("clear-faults")
def clear_faults(device: str, control: ControlOpt = None) -> None:
    """Switch every fault off on a device."""
    _call(control, "DELETE", f"/devices/{device}/faults")
    out.print(f"{device}: no faults")


@app.command()
def power(serial: str, state: Annotated[str, typer.Argument(help="on or off")],
          control: ControlOpt = None) -> None:
    """Power an ONT on or off (off sends a dying gasp)."""
    if state not in ("on", "off"):
        _fail("state must be 'on' or 'off'")
    d = _call(control, "POST", f"/onts/{serial}/power", {"on": state == "on"})
    out.print(f"ONT {d['serial']}: {d['state']}")


@app.command()
def fibre(serial: str, state: Annotated[str, typer.Argument(help="cut or restore")],
          control: ControlOpt = None) -> None:
    """Cut or restore an ONT's fibre."""
    if state not in ("cut", "restore"):
        _fail("state must be 'cut' or 'restore'")
    d = _call(control, "POST", f"/onts/{serial}/fibre", {"ok": state == "restore"})
    out.print(f"ONT {d['serial']}: {d['state']}")


@app.command()
def reboot(device: str, control: ControlOpt = None) -> None:
    """Reboot a device: sessions drop, unsaved configuration is lost, ONTs range again."""
    _call(control, "POST", f"/devices/{device}/reboot")
    out.print(f"{device}: rebooted")


@app.command()
def plug(olt: str, serial: str, port: str, model: str = "SL-ONT4G",
         control: ControlOpt = None) -> None:
    """Plug a new ONT into a PON port of an OLT."""
    d = _call(control, "POST", f"/olts/{olt}/onts", {"serial": serial, "port": port,
                                                      "model": model})
    out.print(f"ONT {d['serial']} on {olt} {d['port']}: {d['state']}")


@app.command()
def unplug(serial: str, control: ControlOpt = None) -> None:
    """Unplug an ONT."""
    _call(control, "DELETE", f"/onts/{serial}")
    out.print(f"ONT {serial}: unplugged")


@app.command("oob-change")
def oob_change(
    olt: str,
    delete_service: Annotated[str | None, typer.Option(help="Remove this service.")] = None,
    service: Annotated[str | None, typer.Option(help="Service whose S-VLAN to change.")] = None,
    s_vlan: Annotated[int | None, typer.Option(help="New S-VLAN for --service.")] = None,
    delete_onu: Annotated[str | None, typer.Option(help="Remove the ONU with this serial.")] = (
        None),
    control: ControlOpt = None,
) -> None:
    """Change an OLT's running config behind the agent's back, as someone on the box would."""
    if delete_service:
        body: dict[str, Any] = {"action": "delete-service", "service": delete_service}
    elif delete_onu:
        body = {"action": "delete-onu", "serial": delete_onu}
    elif service and s_vlan:
        body = {"action": "change-s-vlan", "service": service, "s_vlan": s_vlan}
    else:
        _fail("give --delete-service NAME, --delete-onu SERIAL, or --service NAME --s-vlan N")
        return
    d = _call(control, "POST", f"/olts/{olt}/oob-change", body)
    out.print(f"{d['device']}: {d['changed']}")


@app.command()
def trace(
    serial: str,
    uni: Annotated[int, typer.Option(min=1, max=4)] = 1,
    direction: Annotated[str, typer.Option(help="upstream or downstream")] = "upstream",
    frame_hex: Annotated[str | None, typer.Option(
        help="The subscriber frame as hex (default: an untagged DHCP Discover).")] = None,
    mac: Annotated[str, typer.Option(help="Source MAC of the default frame.")] = (
        "02:00:5e:00:00:01"),
    pcap: Annotated[Path | None, typer.Option(help="Write the input and output frames here.")] = (
        None),
    control: ControlOpt = None,
) -> None:
    """Trace a subscriber frame through an ONT's and its OLT's configured tagging."""
    body: dict[str, Any] = {"serial": serial, "uni": uni, "direction": direction, "mac": mac}
    if frame_hex:
        body["frame_hex"] = frame_hex
    d = _call(control, "POST", "/trace", body)
    if d.get("input"):
        out.print(f"in:  {d['input']}", highlight=False)
    for step in d["steps"]:
        out.print(f"  {step}", highlight=False)
    if d["forwarded"]:
        out.print(f"out: {d['frame']}  -> {d['egress']}", highlight=False)
    else:
        out.print(f"[red]dropped:[/] {d['drop_reason']}", highlight=False)
    if pcap is not None:
        from simulator import datapath as dp

        frames = [bytes.fromhex(frame_hex)] if frame_hex else []
        if d["frame_b64"]:
            frames.append(base64.b64decode(d["frame_b64"]))
        if not frames:
            _fail("nothing to write: the frame was dropped and no input frame was given")
        dp.write_pcap(pcap, frames)
        out.print(f"wrote {len(frames)} frame(s) to {pcap}")
    if not d["forwarded"]:
        raise typer.Exit(2)


def main() -> None:  # pragma: no cover - entry point
    app(prog_name="ponctl sim")
    sys.exit(0)
