"""Intent -> payload: render validated intents through a device profile (pure, no I/O).

The payload is what the profile's driver takes: ``str`` (XML, the content of a NETCONF
``<config>``) for ``netconf``, ``list[str]`` (CLI lines) for ``ssh``, ``list[Varbind]`` for
``snmp``. :func:`render` makes one transaction of several ONTs and services (all the ONT
registrations first, then the services); NETCONF renderings concatenate into one ``<config>``.

Every template sees these variables (plus the profile's own ``variables``):

* ONT: ``olt``, ``serial``, ``serial_hex`` (the 16-hex-digit form a Huawei OLT prints),
  ``vendor_id``, ``pon_port`` (``F/S/P``), ``frame``, ``slot``, ``port`` (ints), ``board``
  (``F/S``), ``onu_id``, ``description``.
* service (``service`` and ``remove_service``): the ONT's, plus ``service`` (its name),
  ``uni``, ``c_vlan``, ``s_vlan``, ``uplink``, ``profile`` (the bandwidth profile's name),
  ``max_bps``, ``assured_bps``, ``fixed_bps``, ``gemport_id``, ``alloc_id``.
* SNMP: ``createAndGo``, ``createAndWait``, ``active``, ``destroy`` (RowStatus values).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeAlias

import jinja2
from lxml import etree

from agent.intent import GatewayIntent, OntIntent, ServiceIntent
from agent.profiles import Profile, TemplateName, VarbindTemplate
from drivers.snmp.varbind import RowStatus, Varbind, VarType

Payload: TypeAlias = str | list[str] | list[Varbind]
_INT_TYPES = frozenset({VarType.INTEGER, VarType.UNSIGNED, VarType.GAUGE32,
                        VarType.TIMETICKS})
_ROW_STATUS = {"active": int(RowStatus.ACTIVE), "createAndGo": int(RowStatus.CREATE_AND_GO),
               "createAndWait": int(RowStatus.CREATE_AND_WAIT),
               "destroy": int(RowStatus.DESTROY)}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


class RenderError(ValueError):
    """A profile could not render an intent; the message names the profile and template."""


def ont_context(ont: OntIntent) -> dict[str, Any]:
    """The template variables of an ONT registration."""
    frame, slot, port = (int(x) for x in ont.pon_port.split("/"))
    return {
        "olt": ont.olt, "serial": ont.serial, "vendor_id": ont.serial[:4],
        "serial_hex": ont.serial[:4].encode("ascii").hex().upper() + ont.serial[4:],
        "pon_port": ont.pon_port, "frame": frame, "slot": slot, "port": port,
        "board": f"{frame}/{slot}", "onu_id": ont.onu_id, "description": ont.description,
    }


def service_context(svc: ServiceIntent) -> dict[str, Any]:
    """The template variables of one service (its ONT's included)."""
    bw = svc.profile
    return {
        **ont_context(svc.ont), "service": svc.name, "uni": svc.uni, "c_vlan": svc.c_vlan,
        "s_vlan": svc.s_vlan, "uplink": svc.uplink, "profile": bw.name, "max_bps": bw.max_bps,
        "assured_bps": bw.assured_bps, "fixed_bps": bw.fixed_bps,
        "gemport_id": svc.gemport_id, "alloc_id": svc.alloc_id,
    }


def _where(profile: Profile, name: str) -> str:
    return f"profile {profile.name!r}{f' ({profile.source})' if profile.source else ''}: {name}"


def _with_variables(profile: Profile, ctx: dict[str, Any]) -> dict[str, Any]:
    out = dict(ctx)
    if profile.protocol == "snmp":
        out.update(_ROW_STATUS)
    for name, expr in profile.variables.items():
        try:
            out[name] = profile.expression(expr)(**out)
        except jinja2.UndefinedError:
            # Over a field this rendering lacks (a service's ``uni`` when rendering an ONT):
            # left undefined, so a template that uses it still fails, naming it.
            continue
        except jinja2.TemplateError as exc:
            raise RenderError(f"{_where(profile, f'variables.{name}')}: {exc}") from None
    return out


def _text(profile: Profile, where: str, template: str, ctx: dict[str, Any]) -> str:
    try:
        return profile.template(template).render(ctx)
    except jinja2.TemplateError as exc:
        raise RenderError(f"{_where(profile, where)}: {exc}") from None


def _varbinds(profile: Profile, where: str, templates: list[VarbindTemplate],
              ctx: dict[str, Any]) -> list[Varbind]:
    out: list[Varbind] = []
    for i, t in enumerate(templates):
        at = f"{where}[{i}]"
        if t.when is not None:
            try:
                keep = profile.expression(t.when)(**ctx)
            except jinja2.TemplateError as exc:
                raise RenderError(f"{_where(profile, at + '.when')}: {exc}") from None
            if not keep:
                continue
        oid = _text(profile, at + ".oid", t.oid, ctx).strip()
        text = _text(profile, at + ".value", t.value, ctx)
        value: int | str = text
        if t.type in _INT_TYPES:
            try:
                value = int(text.strip())
            except ValueError:
                raise RenderError(f"{_where(profile, at + '.value')}: {text!r} is not an "
                                  f"integer ({t.type.value})") from None
        try:
            out.append(Varbind(oid, t.type, value))
        except (TypeError, ValueError) as exc:
            raise RenderError(f"{_where(profile, at)}: {exc}") from None
    return out


def _one(profile: Profile, name: TemplateName, ctx: dict[str, Any]) -> Payload:
    template = getattr(profile.templates, name)
    if template is None:
        raise RenderError(f"{_where(profile, f'templates.{name}')}: this {profile.kind} "
                          "profile has no such template")
    ctx = _with_variables(profile, ctx)
    where = f"templates.{name}"
    if isinstance(template, list):
        return _varbinds(profile, where, template, ctx)
    text = _text(profile, where, template, ctx)
    if profile.protocol == "ssh":
        return [line.rstrip() for line in text.splitlines() if line.strip()]
    text = text.strip()
    _check_xml(profile, where, text)
    return text


def _check_xml(profile: Profile, where: str, text: str) -> None:
    try:
        etree.fromstring(f"<config>{text}</config>", _PARSER)
    except etree.XMLSyntaxError as exc:
        raise RenderError(f"{_where(profile, where)}: the rendering is not well-formed XML: "
                          f"{exc}") from None


def _join(profile: Profile, parts: Iterable[Payload]) -> Payload:
    if profile.protocol == "netconf":
        return "\n".join(p for p in parts if isinstance(p, str) and p)
    if profile.protocol == "ssh":
        return [line for p in parts if isinstance(p, list) for line in p
                if isinstance(line, str)]
    return [vb for p in parts if isinstance(p, list) for vb in p if isinstance(vb, Varbind)]


def render_ont(profile: Profile, ont: OntIntent) -> Payload:
    """The ONU registration."""
    return _one(profile, "ont", ont_context(ont))


def render_service(profile: Profile, service: ServiceIntent) -> Payload:
    """One service on an ONT that is (or will be, earlier in the same payload) registered."""
    return _one(profile, "service", service_context(service))


def render_ont_removal(profile: Profile, ont: OntIntent) -> Payload:
    """Remove an ONU registration (its services must be removed first, or in the same
    payload before it)."""
    return _one(profile, "remove_ont", ont_context(ont))


def render_removal(profile: Profile, service: ServiceIntent, with_ont: bool) -> Payload:
    """Remove a service; ``with_ont``: its ONU registration too, after it."""
    parts = [_one(profile, "remove_service", service_context(service))]
    if with_ont:
        parts.append(render_ont_removal(profile, service.ont))
    return _join(profile, parts)


def render(profile: Profile, onts: OntIntent | Sequence[OntIntent],
           services: Sequence[ServiceIntent] = ()) -> Payload:
    """One transaction: the ONT registrations, then the services (several ONTs batch into one
    NETCONF ``<config>``)."""
    ont_list = [onts] if isinstance(onts, OntIntent) else list(onts)
    parts = [render_ont(profile, o) for o in ont_list]
    parts += [render_service(profile, s) for s in services]
    return _join(profile, parts)


def render_gateway(profile: Profile, gateway: GatewayIntent) -> Payload:
    """Write a gateway's analytics (PHAN) URL and WAN VLAN."""
    return _one(profile, "gateway", {"phan_url": gateway.phan_url, "wan_vlan": gateway.wan_vlan,
                                     "name": gateway.name})


def render_gateway_clear(profile: Profile, name: str) -> Payload:
    """Clear a gateway's PHAN URL (the old gateway of an RMA swap)."""
    return _one(profile, "clear_gateway", {"name": name})
