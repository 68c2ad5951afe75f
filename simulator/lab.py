"""A running lab: devices built from a topology, their faces on loopback, faults at start.

Start order: devices (state only), OLT faces, gateway watchers (a gateway's faces open when it
becomes reachable and close when it stops being reachable), the control endpoint. Stop runs in
reverse and collects every error instead of stopping at the first.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import asyncssh

from simulator import datapath as dp
from simulator.config import builder as b
from simulator.config import derive as dv
from simulator.config import edit as ed
from simulator.devices import (
    Credentials,
    Device,
    Gateway,
    Olt,
    Ont,
    OntState,
    SnmpSettings,
    TrapTarget,
)
from simulator.topology import Ports, Topology

log = logging.getLogger(__name__)

FACES = ("netconf", "snmp", "ssh")


class Face(Protocol):
    port: int


@dataclass(slots=True)
class _Running:
    face: str
    server: Any


def _snmp(topo: Topology) -> SnmpSettings:
    s = topo.defaults.snmp
    return SnmpSettings(s.community_ro, s.community_rw, s.v3.user, s.v3.auth_key,
                        s.v3.priv_key, s.v3.auth_protocol, s.v3.priv_protocol)


class Lab:
    """Every simulated device of a topology, and the servers that make them reachable."""

    def __init__(self, topo: Topology, *, ports: Ports | None = None,
                 single_address: str | None = None) -> None:
        """Build the devices (no I/O yet).

        ``ports`` overrides the topology's ports (tests pass zeros to bind free ports);
        ``single_address`` puts every device on one address (e.g. where 127.x.y.z other than
        127.0.0.1 cannot be bound).
        """
        self.topo = topo
        self.ports = ports or topo.defaults.ports
        self.olts: dict[str, Olt] = {}
        self.gateways: dict[str, Gateway] = {}
        self.faces: dict[str, list[_Running]] = {}
        self.host_keys: dict[str, asyncssh.SSHKey] = {}
        self.control: Any = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._faces_changed = asyncio.Condition()
        self._gw_locks: dict[str, asyncio.Lock] = {}
        # Called after a gateway's faces opened (True) or closed (False).
        self.face_watchers: list[Callable[[Device, bool], None]] = []
        self.started_at = 0.0
        self.start_seconds = 0.0
        base = ipaddress.ip_address(topo.address_base)
        creds = Credentials(topo.defaults.credentials.username,
                            topo.defaults.credentials.password)
        snmp = _snmp(topo)
        trap_targets = [TrapTarget(t.address, t.port, t.version, t.community)
                        for t in topo.trap_targets]
        self.trap_targets = trap_targets
        gw_index = 0
        for i, spec in enumerate(topo.olts):
            address = single_address or spec.address or str(base + 1 + i)
            olt = Olt(spec.name, address, creds, snmp, frozenset(spec.protocols),
                      spec.port_names(), {u.port: u.vlan_set() for u in spec.uplinks},
                      model=spec.model, vendor=spec.vendor, firmware=spec.firmware,
                      ranging_delay=topo.defaults.ranging_delay)
            self.olts[olt.name] = olt
            onts = list(spec.onts)
            gen = spec.generate
            if gen is not None:
                onts.extend(_generated(spec.name, i, olt.pon_ports, gen))
            # The operator's traffic profiles, then any pre-configured ONUs, as saved config.
            configured: list[Any] = [el for name, rate in spec.traffic_profiles.items()
                                     for el in b.traffic_profile(name, rate)]
            for ont in onts:
                if ont.configured is not None:
                    configured.extend(_preconfig(olt, ont.serial, ont.port, ont.configured))
                if ont.gateway is not None:
                    gw_index += 1
                    g = ont.gateway
                    model = topo.gateway_models[g.model]
                    name = g.name or f"gw-{ont.serial.lower()}"
                    gaddr = single_address or g.address or str(base + 256 + gw_index)
                    serial = g.serial or f"GW{ont.serial[4:]}"
                    mac = g.mac or _mac(gw_index)
                    gw = Gateway(name, gaddr, creds, snmp, frozenset(model.protocols), serial,
                                 mac, olt, ont.serial, g.uni, model=g.model,
                                 firmware=model.firmware)
                    if name in self.gateways:
                        raise ValueError(f"gateway name {name!r} repeats")
                    self.gateways[name] = gw
            if configured:
                root = ed.edit(olt.running, b.combine(configured)).root
                olt.check(root, None)
                olt.set_running(root)
                olt.startup = olt.candidate = olt.running
            for ont in onts:
                if ont.present:
                    o = olt.add_ont(ont.serial, ont.port, ont.model, ont.firmware,
                                    powered=ont.powered, fibre_ok=ont.fibre)
                    _ = o
        for i, f in enumerate(topo.faults):
            dev = self.olts.get(f.device) or self.gateways.get(f.device)
            if dev is None:
                raise ValueError(f"faults[{i}]: no device named {f.device!r} (devices: "
                                 f"{', '.join(list(self.olts)[:5])}, gw-<ont serial>, ...)")
            try:
                dev.faults.set(f.fault, f.value)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"faults[{i}] ({f.device}): {exc}") from None

    # ---- lookup ------------------------------------------------------------------------
    @property
    def devices(self) -> dict[str, Device]:
        out: dict[str, Device] = dict(self.olts)
        out.update(self.gateways)
        return out

    def device(self, name: str) -> Device:
        dev = self.olts.get(name) or self.gateways.get(name)
        if dev is None:
            raise KeyError(f"no device named {name!r}")
        return dev

    def find_ont(self, serial: str) -> Ont:
        key = serial.upper()
        for olt in self.olts.values():
            if key in olt.onts:
                return olt.onts[key]
        raise KeyError(f"no ONT with serial {serial!r} is attached to any OLT")

    # ---- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        t0 = time.perf_counter()
        self.started_at = time.time()
        _raise_fd_limit()
        for olt in self.olts.values():
            await self._start_faces(olt)
        for gw in self.gateways.values():
            gw.reachability_watchers.append(self._reachability)
            if gw.reachable:
                gw._reachable = True
                await self._start_faces(gw)
        self.start_seconds = time.perf_counter() - t0

    async def stop(self) -> list[BaseException]:
        """Stop everything in reverse order; returns the errors met (none are raised)."""
        self._stopping = True
        errors: list[BaseException] = []
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception as exc:  # noqa: BLE001 - shutdown collects every error
                errors.append(exc)
        for name in reversed(list(self.faces)):
            errors.extend(await self._stop_faces(name))
        for olt in self.olts.values():
            if olt.confirm is not None:
                olt.confirm.timer.cancel()
            for ont in olt.onts.values():
                if ont._ranging is not None:
                    ont._ranging.cancel()
        return errors

    def host_key(self, device: Device) -> asyncssh.SSHKey:
        key = self.host_keys.get(device.name)
        if key is None:
            key = asyncssh.generate_private_key("ssh-ed25519")
            self.host_keys[device.name] = key
        return key

    async def _start_faces(self, device: Device) -> None:
        running: list[_Running] = []
        self.faces[device.name] = running
        try:
            for face in FACES:
                if face not in device.protocols:
                    continue
                port = getattr(self.ports, face)
                server = await self._start_face(face, device, port)
                device.ports[face] = server.port
                running.append(_Running(face, server))
        except BaseException:
            await self._stop_faces(device.name)
            raise

    async def _start_face(self, face: str, device: Device, port: int) -> Face:
        assert isinstance(device, Olt | Gateway)
        if face == "netconf":
            from simulator.netconf.server import NetconfServer

            return await NetconfServer.start(device, device.address, port,
                                             self.host_key(device))
        if face == "ssh":
            from simulator.cli.server import CliServer

            return await CliServer.start(device, device.address, port,
                                         self.host_key(device))
        from simulator.snmp.agent import SnmpAgent

        targets = self.trap_targets if isinstance(device, Olt) else []
        agent: Face = await SnmpAgent.start(device, device.address, port, targets)
        return agent

    async def _stop_faces(self, name: str) -> list[BaseException]:
        errors: list[BaseException] = []
        for r in reversed(self.faces.pop(name, [])):
            try:
                result = r.server.close()
                if asyncio.iscoroutine(result):
                    await result
            except Exception as exc:  # noqa: BLE001 - shutdown collects every error
                errors.append(exc)
        dev = self.olts.get(name) or self.gateways.get(name)  # not self.devices: a copy
        if dev is not None:
            dev.ports.clear()
        return errors

    def _reachability(self, gw: Gateway, up: bool) -> None:
        if self._stopping:
            return
        task = asyncio.get_running_loop().create_task(self._follow(gw))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _follow(self, gw: Gateway) -> None:
        # One transition at a time per gateway, each acting on the current truth: a service
        # that comes up and goes away quickly must not leave a start finishing after a stop.
        lock = self._gw_locks.setdefault(gw.name, asyncio.Lock())
        async with lock:
            try:
                if gw.reachable and gw.name not in self.faces:
                    await self._start_faces(gw)
                elif not gw.reachable and gw.name in self.faces:
                    await self._stop_faces(gw.name)
                else:
                    return
            except OSError:
                log.exception("gateway %s: could not open its management faces", gw.name)
        for watch in list(self.face_watchers):
            watch(gw, gw.name in self.faces)
        async with self._faces_changed:
            self._faces_changed.notify_all()

    async def wait_gateway(self, name: str, up: bool = True) -> None:
        """Wait until a gateway's faces are open (or closed); callers bound it with a timeout."""
        async with self._faces_changed:
            await self._faces_changed.wait_for(
                lambda: (name in self.faces) == up and (not up or bool(self.gateways[name].ports)))

    # ---- reports -----------------------------------------------------------------------
    def endpoints(self, control_url: str | None = None) -> dict[str, Any]:
        """The lab's endpoints in the documented JSON shape (credentials are lab data)."""
        devices: list[dict[str, Any]] = []
        for dev in self.devices.values():
            c = dev.credentials
            s = dev.snmp
            key = self.host_keys.get(dev.name)
            devices.append({
                "name": dev.name,
                "kind": dev.kind,
                "address": dev.address,
                "reachable": dev.name in self.faces,
                "ssh_host_key": key.export_public_key("openssh").decode().strip() if key else None,
                "netconf": ({"port": dev.ports["netconf"], "username": c.username,
                             "password": c.password} if "netconf" in dev.ports else None),
                "snmp": ({"port": dev.ports["snmp"], "community_ro": s.community_ro,
                          "community_rw": s.community_rw,
                          "v3": {"user": s.v3_user, "auth_key": s.v3_auth_key,
                                 "priv_key": s.v3_priv_key, "auth_protocol": s.auth_protocol,
                                 "priv_protocol": s.priv_protocol}}
                         if "snmp" in dev.ports else None),
                "ssh": ({"port": dev.ports["ssh"], "username": c.username,
                         "password": c.password} if "ssh" in dev.ports else None),
            })
        return {"control": control_url, "devices": devices}

    def status(self) -> dict[str, Any]:
        onts = [o for olt in self.olts.values() for o in olt.onts.values()]
        by_state: dict[str, int] = {}
        for o in onts:
            by_state[o.state.value] = by_state.get(o.state.value, 0) + 1
        return {
            "name": self.topo.name,
            "olts": len(self.olts),
            "onts": len(onts),
            "ont_states": by_state,
            "gateways": len(self.gateways),
            "gateways_reachable": sum(1 for g in self.gateways.values() if g.name in self.faces),
            "start_seconds": round(self.start_seconds, 3),
            "rss_mib": round(rss_mib(), 1),
        }

    # ---- data path ---------------------------------------------------------------------
    def trace(self, serial: str, *, uni: int = 1, direction: str = "upstream",
              frame: bytes | None = None, mac: str = "02:00:5e:00:00:01") -> dp.TraceResult:
        """Trace a subscriber frame through an ONT's applied services and its OLT."""
        ont = self.find_ont(serial)
        paths = service_paths(ont)
        if direction == "upstream":
            if ont.state != OntState.OPERATIONAL:
                return _dropped(f"ONT {ont.serial} is {ont.state.value}: it forwards nothing")
            return dp.trace_upstream(paths, uni, frame or dp.dhcp_discover(mac))
        if direction != "downstream":
            raise ValueError("direction must be upstream or downstream")
        if frame is None:
            up = dp.trace_upstream(paths, uni, dp.dhcp_discover(mac))
            if not up.forwarded or up.frame is None:
                return up
            frame = up.frame
        svc = next((s for s in paths if s.uni == uni), None)
        uplink = svc.uplink if svc else next(iter(ont.olt.uplinks))
        if ont.state != OntState.OPERATIONAL:
            return _dropped(f"ONT {ont.serial} is {ont.state.value}: it forwards nothing")
        return dp.trace_downstream(paths, uplink, frame)


def _dropped(reason: str) -> dp.TraceResult:
    return dp.TraceResult(False, None, (f"dropped: {reason}",), reason, None)


def _tag(kind: str, vlan: int) -> dp.Tag:
    return dp.Tag(vlan, dp.TPID_S_VLAN if kind == "s-vlan" else dp.TPID_C_VLAN)


def _subif(s: dv.SubIf) -> dp.SubInterface:
    rules = tuple(
        dp.IngressRule(
            r.name, r.priority, r.match,  # type: ignore[arg-type]
            tuple(dp.TagMatch(v, k if k in ("c-vlan", "s-vlan") else "any")  # type: ignore[arg-type]
                  for k, v in r.tags),
            r.pop, tuple(_tag(k, v) for k, v in r.push))
        for r in s.rules)
    return dp.SubInterface(s.name, rules, s.egress_pop, tuple(_tag(k, v) for k, v in s.egress_push))


def service_paths(ont: Ont) -> list[dp.ServicePath]:
    """The data-path view of the services applied on an ONT right now."""
    out: list[dp.ServicePath] = []
    for name in ont.applied:
        svc = ont.olt.view.services.get(name)
        if svc is None or svc.uni_subif is None:
            continue
        out.append(dp.ServicePath(ont.serial, svc.uni, _subif(svc.uni_subif),
                                  _subif(svc.olt_subif), _subif(svc.uplink_subif), svc.uplink,
                                  svc.gemport_id))
    return out


def _mac(n: int) -> str:
    # Locally administered unicast range 02:..., one per gateway.
    return "02:50:43:" + ":".join(f"{(n >> s) & 0xFF:02x}" for s in (16, 8, 0))


def _generated(olt_name: str, olt_index: int, ports: list[str], gen: Any) -> list[Any]:
    from simulator.topology import GatewaySpec, OntSpec, PreConfig

    out = []
    n = 0
    for p_index, port in enumerate(ports):
        for k in range(gen.onts_per_port):
            serial = f"{gen.vendor}{olt_index:02X}{p_index:02X}{k:04X}"
            gw = None
            if gen.gateway_models:
                gw = GatewaySpec(model=gen.gateway_models[n % len(gen.gateway_models)])
            conf = None
            if gen.configured_services:
                conf = PreConfig(onu_id=k, services=gen.configured_services)
            out.append(OntSpec(serial=serial, port=port, model=gen.model, present=gen.present,
                               configured=conf, gateway=gw))
            n += 1
    _ = olt_name
    return out


def _preconfig(olt: Olt, serial: str, port: str, conf: Any) -> list[Any]:
    onu = b.OnuSpec(port, conf.onu_id, serial, conf.description)
    els = b.onu_registration(onu)
    ports = olt.pon_ports.index(port)
    for i, svc in enumerate(conf.services):
        uplink = next((u for u, vl in olt.uplinks.items() if svc.s_vlan in vl), None)
        if uplink is None:
            raise ValueError(f"{olt.name}: pre-configured ONT {serial} wants S-VLAN {svc.s_vlan}, "
                             "which no uplink carries")
        base = 1024 + ports * 1024 + conf.onu_id * 8 + i
        els += b.uni_tagging(onu, svc.uni, svc.c_vlan)
        els += b.olt_service(b.ServiceSpec(onu, svc.uni, svc.c_vlan, svc.s_vlan, uplink, base,
                                           1024 + ports * 256 + conf.onu_id, svc.profile))
    return els


def _raise_fd_limit() -> None:
    # Thousands of gateway listeners need file descriptors; use what the hard limit allows.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_mib() -> float:
    """Current resident set size of this process, in MiB."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0
