"""Operational state and notification content, as trees the subtree filter can prune.

State is built as ``DNode`` trees over small schemas so the one filter engine serves config,
state and notifications alike. It is built per ``<get>``: ``olt_state`` takes a ``StateScope``
read off the filter, so a filter naming one ONT by serial builds that ONT and nothing else.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from lxml import etree

from simulator.config.namespaces import GW, NC
from simulator.config.schema import NAME, SNode, container, leaf, leaf_list, lst, root, string
from simulator.config.tree import ChildKey, DNode
from simulator.devices import DeviceEvent, Gateway, Olt, Ont, OntState

OLT_STATE = "urn:ponctl:yang:ponctl-olt-state"
ONU_STATES = "urn:bbf:yang:bbf-xpon-onu-states"
ONU_TYPES = "urn:bbf:yang:bbf-xpon-onu-types"
ONU_TYPES_PREFIX = "bbf-xpon-onu-types"
_TEXT = string()
_ONT_SECTIONS = frozenset({"onts", "autofind", "uplink", "system"})


def _leaves(ns: str, *names: str) -> tuple[SNode, ...]:
    return tuple(leaf(ns, n, _TEXT) for n in names)


OLT_STATE_SCHEMA = root((
    container(
        OLT_STATE, "olt-state",
        container(
            OLT_STATE, "onts",
            lst(OLT_STATE, "ont", ("serial",),
                *_leaves(OLT_STATE, "serial", "pon-port", "state", "onu-id", "v-ani", "model",
                         "firmware", "vendor", "rx-power-dbm", "tx-power-dbm", "last-change"),
                lst(OLT_STATE, "uni", ("index",), *_leaves(OLT_STATE, "index", "link-up")),
                lst(OLT_STATE, "applied-service", ("name",),
                    leaf(OLT_STATE, "name", NAME),
                    *_leaves(OLT_STATE, "uni", "c-vlan", "s-vlan", "gemport-id", "alloc-id",
                             "profile")),
                lst(OLT_STATE, "not-applied-service", ("name",),
                    leaf(OLT_STATE, "name", NAME), leaf(OLT_STATE, "reason", _TEXT))),
        ),
        lst(OLT_STATE, "autofind", ("serial",),
            *_leaves(OLT_STATE, "serial", "pon-port", "model", "firmware")),
        lst(OLT_STATE, "uplink", ("port",), leaf(OLT_STATE, "port", _TEXT),
            leaf_list(OLT_STATE, "vlan", _TEXT)),
        container(OLT_STATE, "system",
                  *_leaves(OLT_STATE, "name", "model", "vendor", "firmware", "uptime",
                           "unsaved-changes")),
    ),
))

GATEWAY_STATE_SCHEMA = root((
    container(GW, "gateway-state",
              *_leaves(GW, "serial-number", "mac-address", "model", "firmware")),
))

NOTIFICATION_SCHEMA = root((
    container(
        ONU_STATES, "onu-state-change",
        *_leaves(ONU_STATES, "detected-serial-number", "channel-termination-ref", "onu-state",
                 "onu-id", "v-ani-ref"),
        leaf(OLT_STATE, "ont-state", _TEXT),  # ponctl's augment: los and dying-gasp apart
    ),
))


def rfc3339(t: float) -> str:
    """A POSIX time as an RFC 3339 / yang:date-and-time string in UTC."""
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="microseconds").replace(
        "+00:00", "Z")


class _Builder:
    """Adds children to a DNode by name in one namespace; None values are left out."""

    def __init__(self, node: DNode, ns: str) -> None:
        self.node = node
        self.ns = ns

    def _schema(self, name: str) -> SNode:
        return self.node.schema.children[(self.ns, name)]

    def leaf(self, name: str, value: object | None) -> None:
        if value is None:
            return
        schema = self._schema(name)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        key: ChildKey = (self.ns, name, (text,) if schema.kind == "leaf-list" else ())
        self.node.children[key] = DNode(schema, text)

    def container(self, name: str) -> _Builder:
        child = DNode(self._schema(name))
        self.node.children[(self.ns, name, ())] = child
        return _Builder(child, self.ns)

    def entry(self, name: str, *key: str) -> _Builder:
        schema = self._schema(name)
        b = _Builder(DNode(schema), self.ns)
        for k, v in zip(schema.keys, key, strict=True):
            b.leaf(k, v)
        self.node.children[(self.ns, name, key)] = b.node
        return b


@dataclass(frozen=True, slots=True)
class StateScope:
    """What a filter can possibly select of ``olt-state``: sections and ONT serials.

    ``None`` means everything; the filter itself is still applied to what is built.
    """

    sections: frozenset[str] | None = None
    serials: frozenset[str] | None = None


NOTHING = StateScope(frozenset(), frozenset())


def _local(el: etree._Element, namespaces: tuple[str, ...]) -> str | None:
    """The element's local name if it is in one of ``namespaces`` or unqualified."""
    q = etree.QName(el)
    if q.namespace in (None, "", NC) or q.namespace in namespaces:
        return q.localname
    return None


def _kids(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def olt_scope(filter_elements: list[etree._Element] | None) -> StateScope:
    """Read off a subtree filter which parts of the OLT state to build."""
    if filter_elements is None:
        return StateScope()
    tops = [e for e in filter_elements
            if isinstance(e.tag, str) and _local(e, (OLT_STATE,)) == "olt-state"]
    if not tops:
        return NOTHING
    sections: set[str] = set()
    serials: set[str] | None = set()
    for top in tops:
        kids = _kids(top)
        if not kids or any(not _is_structural(k) for k in kids):
            return StateScope()  # selection or content match on olt-state: all of it
        for k in kids:
            name = _local(k, (OLT_STATE,))
            if name not in _ONT_SECTIONS:
                continue
            sections.add(name)
            if name == "onts" and serials is not None:
                serials = _serials(k, serials)
    return StateScope(frozenset(sections),
                      frozenset(serials) if serials is not None else None)


def _is_structural(el: etree._Element) -> bool:
    return bool(_kids(el)) or not (el.text or "").strip()


def _serials(onts: etree._Element, acc: set[str]) -> set[str] | None:
    """Serials an ``<onts>`` filter names by content match, or None if it may select any."""
    entries = _kids(onts)
    if not entries:
        return None
    for ont in entries:
        if _local(ont, (OLT_STATE,)) != "ont":
            continue
        serial = next((c for c in _kids(ont)
                       if _local(c, (OLT_STATE,)) == "serial" and not _kids(c)
                       and (c.text or "").strip()), None)
        if serial is None:
            return None
        acc.add((serial.text or "").strip().upper())
    return acc


def olt_state(olt: Olt, scope: StateScope | None = None) -> DNode:
    """The OLT's operational state (``pos:olt-state``), limited to ``scope`` (None: all)."""
    scope = scope or StateScope()
    out = DNode(OLT_STATE_SCHEMA)
    if scope.sections is not None and not scope.sections:
        return out
    top = _Builder(out, OLT_STATE).container("olt-state")

    def want(section: str) -> bool:
        return scope.sections is None or section in scope.sections

    if want("onts"):
        onts = top.container("onts")
        if scope.serials is None:
            chosen: list[Ont] = list(olt.onts.values())
        else:
            chosen = [o for s in sorted(scope.serials) if (o := olt.onts.get(s)) is not None]
        for ont in chosen:
            _ont(onts, ont)
    if want("autofind"):
        for ont in olt.autofind():
            e = top.entry("autofind", ont.serial)
            e.leaf("pon-port", ont.port)
            e.leaf("model", ont.model)
            e.leaf("firmware", ont.firmware)
    if want("uplink"):
        for port, vlans in olt.uplinks.items():
            u = top.entry("uplink", port)
            for vlan in sorted(vlans):
                u.leaf("vlan", vlan)
    if want("system"):
        sysb = top.container("system")
        sysb.leaf("name", olt.name)
        sysb.leaf("model", olt.model)
        sysb.leaf("vendor", olt.vendor)
        sysb.leaf("firmware", olt.firmware)
        sysb.leaf("uptime", olt.uptime_ticks() // 100)
        sysb.leaf("unsaved-changes", olt.unsaved)
    return out


def _ont(onts: _Builder, ont: Ont) -> None:
    e = onts.entry("ont", ont.serial)
    e.leaf("pon-port", ont.port)
    e.leaf("state", ont.state.value)
    e.leaf("onu-id", ont.onu_id)
    e.leaf("v-ani", ont.vani)
    e.leaf("model", ont.model)
    e.leaf("firmware", ont.firmware)
    e.leaf("vendor", ont.vendor)
    rx, tx = ont.rx_power, ont.tx_power
    e.leaf("rx-power-dbm", None if rx is None else f"{rx:.2f}")
    e.leaf("tx-power-dbm", None if tx is None else f"{tx:.2f}")
    e.leaf("last-change", rfc3339(ont.last_change))
    for index, up in sorted(ont.uni_link.items()):
        e.entry("uni", str(index)).leaf("link-up", up)
    for name, svc in ont.applied.items():
        a = e.entry("applied-service", name)
        a.leaf("uni", svc.uni)
        a.leaf("c-vlan", svc.c_vlan)
        a.leaf("s-vlan", svc.s_vlan)
        a.leaf("gemport-id", svc.gemport_id)
        a.leaf("alloc-id", svc.alloc_id)
        a.leaf("profile", svc.profile)
    for name, reason in ont.not_applied.items():
        e.entry("not-applied-service", name).leaf("reason", reason)


def gateway_state(gw: Gateway) -> DNode:
    """The gateway's ``gateway-state`` container (ponctl-gateway module)."""
    out = DNode(GATEWAY_STATE_SCHEMA)
    g = _Builder(out, GW).container("gateway-state")
    g.leaf("serial-number", gw.serial)
    g.leaf("mac-address", gw.mac.lower())
    g.leaf("model", gw.model)
    g.leaf("firmware", gw.firmware)
    return out


def onu_state_identity(state: OntState | None, vani: str | None) -> str:
    """The BBF onu-state identity (bbf-xpon-onu-types) closest to an ONT's state."""
    if state == OntState.OPERATIONAL:
        name = "onu-present-and-on-intended-channel-termination"
    elif state == OntState.UNCLAIMED:
        name = "onu-present-and-no-v-ani-known-and-in-o5"
    elif state == OntState.RANGING:
        name = "onu-present"
    elif vani:
        name = "onu-not-present-with-v-ani"
    else:
        name = "onu-not-present-without-v-ani"
    return f"{ONU_TYPES_PREFIX}:{name}"


def notification_content(event: DeviceEvent, ct_ref: str | None) -> DNode | None:
    """The ``onu-state-change`` tree for an ONT event, or None for other events."""
    if event.kind not in ("ont-discovered", "ont-state"):
        return None
    out = DNode(NOTIFICATION_SCHEMA)
    n = _Builder(out, ONU_STATES).container("onu-state-change")
    n.leaf("detected-serial-number", event.serial)
    n.leaf("channel-termination-ref", ct_ref)
    n.leaf("onu-state", onu_state_identity(event.state, event.vani))
    n.leaf("onu-id", event.onu_id)
    n.leaf("v-ani-ref", event.vani)
    if event.state is not None:
        _Builder(n.node, OLT_STATE).leaf("ont-state", event.state.value)
    return out
