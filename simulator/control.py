"""The lab's control endpoint: JSON over HTTP on loopback, for ``ponctl sim ...`` and tests.

Switches faults, power, fibre, reboots and out-of-band edits on a running lab, plugs ONTs in
and out, and traces frames. Every request body is validated; a bad one gets a 400 naming the
problem and changes nothing.
"""

from __future__ import annotations

import base64
import ipaddress
import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError

from simulator import datapath as dp
from simulator.config.errors import RpcError
from simulator.config.removal import removal
from simulator.devices import Device, Olt, Ont
from simulator.lab import Lab
from simulator.topology import PORT_RE, SERIAL_RE

LAB_KEY = web.AppKey("lab", Lab)
_T = TypeVar("_T", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FaultBody(_Body):
    fault: str
    value: Any = True


class OnBody(_Body):
    on: StrictBool


class OkBody(_Body):
    ok: StrictBool


class PlugBody(_Body):
    serial: str = Field(pattern=f"^{SERIAL_RE.pattern}$")
    port: str = Field(pattern=f"^{PORT_RE.pattern}$")
    model: str = Field(default="SL-ONT4G", max_length=32, pattern=r"^[ -~]+$")
    firmware: str = Field(default="V1.0.4", max_length=32, pattern=r"^[ -~]+$")


class OobBody(_Body):
    """An out-of-band change: remove a service, or move its uplink S-VLAN, on the box."""

    action: str = Field(pattern=r"^(delete-service|change-s-vlan|delete-onu)$")
    service: str | None = Field(default=None, max_length=64)
    serial: str | None = Field(default=None, pattern=f"^{SERIAL_RE.pattern}$")
    s_vlan: int | None = Field(default=None, ge=1, le=4094)


class TraceBody(_Body):
    serial: str = Field(pattern=f"^{SERIAL_RE.pattern}$")
    uni: int = Field(default=1, ge=1, le=4)
    direction: str = Field(default="upstream", pattern=r"^(upstream|downstream)$")
    frame_hex: str | None = Field(default=None, max_length=4096, pattern=r"^[0-9a-fA-F]*$")
    mac: str = Field(default="02:00:5e:00:00:01", pattern=r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _body(request: web.Request, model: type[_T]) -> _T:
    try:
        raw = await request.json()
    except json.JSONDecodeError as exc:
        raise web.HTTPBadRequest(text=json.dumps({"error": f"body is not JSON: {exc}"}),
                                 content_type="application/json") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        msg = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}"
                        for e in exc.errors())
        raise web.HTTPBadRequest(text=json.dumps({"error": msg}),
                                 content_type="application/json") from None


def _lab(request: web.Request) -> Lab:
    return request.app[LAB_KEY]


def _not_found(message: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=json.dumps({"error": message}), content_type="application/json")


def _device(request: web.Request) -> Device:
    try:
        return _lab(request).device(request.match_info["name"])
    except KeyError as exc:
        raise _not_found(str(exc.args[0])) from None


def _ont(request: web.Request) -> Ont:
    try:
        return _lab(request).find_ont(request.match_info["serial"])
    except KeyError as exc:
        raise _not_found(str(exc.args[0])) from None


def _olt(request: web.Request) -> Olt:
    olt = _lab(request).olts.get(request.match_info["name"])
    if olt is None:
        raise _not_found(f"no OLT named {request.match_info['name']!r}")
    return olt


def _device_info(lab: Lab, name: str) -> dict[str, Any]:
    dev = lab.device(name)
    info: dict[str, Any] = {"name": dev.name, "kind": dev.kind, "address": dev.address,
                            "ports": dict(dev.ports), "faults": dev.faults.active()}
    if isinstance(dev, Olt):
        info["unsaved_changes"] = dev.unsaved
        info["onts"] = [_ont_info(o) for o in dev.onts.values()]
        info["uplinks"] = {u: sorted(v) for u, v in dev.uplinks.items()}
    else:
        gw = lab.gateways[name]
        info.update(serial=gw.serial, mac=gw.mac, ont=gw.ont_serial, uni=gw.uni,
                    reachable=gw.reachable, phan_url=gw.phan_url, wan_vlan=gw.wan_vlan,
                    protocols=sorted(gw.protocols))
    return info


def _ont_info(o: Any) -> dict[str, Any]:
    return {"serial": o.serial, "olt": o.olt.name, "port": o.port, "state": o.state.value,
            "onu_id": o.onu_id, "powered": o.powered, "fibre_ok": o.fibre_ok,
            "rx_power_dbm": o.rx_power, "tx_power_dbm": o.tx_power, "model": o.model,
            "firmware": o.firmware, "applied_services": sorted(o.applied),
            "not_applied": dict(o.not_applied)}


async def status(request: web.Request) -> web.Response:
    return web.json_response(_lab(request).status())


async def endpoints(request: web.Request) -> web.Response:
    lab = _lab(request)
    return web.json_response(lab.endpoints(str(request.url.origin())))


async def devices(request: web.Request) -> web.Response:
    lab = _lab(request)
    return web.json_response([{"name": d.name, "kind": d.kind, "address": d.address,
                               "ports": dict(d.ports), "faults": d.faults.active()}
                              for d in lab.devices.values()])


async def device(request: web.Request) -> web.Response:
    return web.json_response(_device_info(_lab(request), _device(request).name))


async def set_fault(request: web.Request) -> web.Response:
    dev = _device(request)
    body = await _body(request, FaultBody)
    try:
        dev.faults.set(body.fault, body.value)
    except (ValueError, TypeError) as exc:
        return _error(400, str(exc))
    return web.json_response({"device": dev.name, "faults": dev.faults.active()})


async def clear_faults(request: web.Request) -> web.Response:
    dev = _device(request)
    dev.faults.clear()
    return web.json_response({"device": dev.name, "faults": {}})


async def reboot(request: web.Request) -> web.Response:
    dev = _device(request)
    if isinstance(dev, Olt):
        dev.reboot()
    else:
        dev.drop_sessions()
    return web.json_response({"device": dev.name, "rebooted": True})


async def ont_power(request: web.Request) -> web.Response:
    ont = _ont(request)
    body = await _body(request, OnBody)
    ont.set_power(body.on)
    return web.json_response(_ont_info(ont))


async def ont_fibre(request: web.Request) -> web.Response:
    ont = _ont(request)
    body = await _body(request, OkBody)
    ont.set_fibre(body.ok)
    return web.json_response(_ont_info(ont))


async def ont_get(request: web.Request) -> web.Response:
    return web.json_response(_ont_info(_ont(request)))


async def plug(request: web.Request) -> web.Response:
    lab = _lab(request)
    olt = _olt(request)
    body = await _body(request, PlugBody)
    try:
        lab.find_ont(body.serial)
        return _error(409, f"ONT {body.serial} is already attached")
    except KeyError:
        pass
    try:
        ont = olt.add_ont(body.serial, body.port, body.model, body.firmware)
    except ValueError as exc:
        return _error(400, str(exc))
    return web.json_response(_ont_info(ont), status=201)


async def unplug(request: web.Request) -> web.Response:
    ont = _ont(request)
    ont.olt.remove_ont(ont.serial)
    return web.json_response({"serial": ont.serial, "removed": True})


async def oob_change(request: web.Request) -> web.Response:
    olt = _olt(request)
    body = await _body(request, OobBody)
    try:
        detail = _apply_oob(olt, body)
    except RpcError as exc:
        return _error(409, f"the OLT refused the change: {exc.message}")
    except ValueError as exc:
        return _error(400, str(exc))
    return web.json_response({"device": olt.name, "changed": detail})


def _apply_oob(olt: Olt, body: OobBody) -> str:
    view = olt.view
    if body.action == "delete-onu":
        if body.serial is None:
            raise ValueError("delete-onu needs 'serial'")
        onu = view.onu_by_serial(body.serial)
        if onu is None:
            raise ValueError(f"no ONU expects serial {body.serial} on {olt.name}")
        olt.force_edit(_onu_removal(olt, onu.vani))
        return f"deleted ONU {onu.vani} ({body.serial}) and its services"
    svc = view.services.get(body.service or "")
    if svc is None:
        raise ValueError(f"no service {body.service!r} on {olt.name} "
                         f"(services: {', '.join(sorted(view.services)) or 'none'})")
    if body.action == "delete-service":
        olt.force_edit(removal(olt.running, olt.view, set(), {svc.name}))
        return f"deleted service {svc.name}"
    if body.s_vlan is None:
        raise ValueError("change-s-vlan needs 's_vlan'")
    from lxml import etree

    from simulator.config.namespaces import IF, SUBIF, TAG

    ifs = etree.Element(f"{{{IF}}}interfaces")
    e = etree.SubElement(ifs, f"{{{IF}}}interface")
    etree.SubElement(e, f"{{{IF}}}name").text = svc.uplink_subif.name
    ifp = etree.SubElement(e, f"{{{SUBIF}}}inline-frame-processing")
    rule = etree.SubElement(etree.SubElement(ifp, f"{{{SUBIF}}}ingress-rule"), f"{{{SUBIF}}}rule")
    etree.SubElement(rule, f"{{{SUBIF}}}name").text = svc.uplink_subif.rules[0].name
    mc = etree.SubElement(etree.SubElement(rule, f"{{{SUBIF}}}flexible-match"),
                          f"{{{TAG}}}match-criteria")
    tag = etree.SubElement(mc, f"{{{TAG}}}tag")
    etree.SubElement(tag, f"{{{TAG}}}index").text = "0"
    etree.SubElement(etree.SubElement(tag, f"{{{TAG}}}dot1q-tag"),
                     f"{{{TAG}}}vlan-id").text = str(body.s_vlan)
    push = etree.SubElement(etree.SubElement(ifp, f"{{{SUBIF}}}egress-rewrite"),
                            f"{{{TAG}}}push-tag")
    etree.SubElement(push, f"{{{TAG}}}index").text = "0"
    etree.SubElement(etree.SubElement(push, f"{{{TAG}}}dot1q-tag"),
                     f"{{{TAG}}}vlan-id").text = str(body.s_vlan)
    olt.force_edit([ifs])
    return f"moved service {svc.name} to S-VLAN {body.s_vlan}"


def _onu_removal(olt: Olt, vani: str) -> list[Any]:
    return removal(olt.running, olt.view, {vani}, set())


async def trace(request: web.Request) -> web.Response:
    lab = _lab(request)
    body = await _body(request, TraceBody)
    frame = bytes.fromhex(body.frame_hex) if body.frame_hex else None
    try:
        result = lab.trace(body.serial, uni=body.uni, direction=body.direction, frame=frame,
                           mac=body.mac)
    except KeyError as exc:
        return _error(404, str(exc.args[0]))
    return web.json_response(trace_json(result, frame))


def trace_json(result: dp.TraceResult, frame: bytes | None) -> dict[str, Any]:
    return {
        "forwarded": result.forwarded,
        "steps": list(result.steps),
        "drop_reason": result.drop_reason,
        "egress": result.egress,
        "frame": dp.describe(result.frame) if result.frame else None,
        "frame_b64": base64.b64encode(result.frame).decode() if result.frame else None,
        "input": dp.describe(frame) if frame else None,
    }


def make_app(lab: Lab) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[LAB_KEY] = lab
    app.add_routes([
        web.get("/status", status),
        web.get("/endpoints", endpoints),
        web.get("/devices", devices),
        web.get("/devices/{name}", device),
        web.post("/devices/{name}/faults", set_fault),
        web.delete("/devices/{name}/faults", clear_faults),
        web.post("/devices/{name}/reboot", reboot),
        web.post("/olts/{name}/onts", plug),
        web.post("/olts/{name}/oob-change", oob_change),
        web.get("/onts/{serial}", ont_get),
        web.delete("/onts/{serial}", unplug),
        web.post("/onts/{serial}/power", ont_power),
        web.post("/onts/{serial}/fibre", ont_fibre),
        web.post("/trace", trace),
    ])
    return app


class ControlServer:
    """The control endpoint of a running lab, bound to a loopback address."""

    def __init__(self, runner: web.AppRunner, site: web.TCPSite, url: str) -> None:
        self._runner, self._site, self.url = runner, site, url

    @classmethod
    async def start(cls, lab: Lab, host: str, port: int) -> ControlServer:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"the control endpoint binds only to loopback, not {host}")
        runner = web.AppRunner(make_app(lab), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        sock = server.sockets[0]  # type: ignore[attr-defined]
        bound = sock.getsockname()[1]
        return cls(runner, site, f"http://{host}:{bound}")

    async def close(self) -> None:
        await self._runner.cleanup()


def out_of_band_change(olt: Olt, action: str, *, service: str | None = None,
                       serial: str | None = None, s_vlan: int | None = None) -> str:
    """Change the OLT's running config behind the agent's back (as ``POST /olts/{name}/
    oob-change`` does): ``delete-service``, ``change-s-vlan`` or ``delete-onu``."""
    return _apply_oob(olt, OobBody(action=action, service=service, serial=serial,
                                   s_vlan=s_vlan))
