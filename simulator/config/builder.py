"""Builders for the BBF configuration shapes the simulator's own faces and topology create.

The NETCONF face takes whatever BBF-shaped XML a client sends; the CLI and SNMP faces, and
services pre-configured in a topology file, are translated into edits built here, so a service
added through the CLI is the same data a NETCONF client reads back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from lxml import etree

from simulator.config.namespaces import (
    BBFIFT,
    DOT1QT,
    GEM,
    IANAIFT,
    IF,
    L2F,
    LT,
    NC,
    SUBIF,
    TAG,
    USAGE,
    VANI,
    XPON,
    XPONIFT,
    XPONTYPES,
)

E = etree._Element


def _ns(nsmap: dict[str | None, str] | None) -> dict[str, str] | None:
    # lxml takes None as the default-namespace key; its stubs do not say so.
    return cast(dict[str, str] | None, nsmap)


def _el(parent: E | None, ns: str, name: str, text: str | None = None,
        nsmap: dict[str | None, str] | None = None) -> E:
    tag = f"{{{ns}}}{name}"
    el = etree.Element(tag, nsmap=_ns(nsmap)) if parent is None else etree.SubElement(parent, tag,
                                                                                  nsmap=_ns(nsmap))
    if text is not None:
        el.text = text
    return el


def _interface(parent: E, name: str, itype: str, type_ns: str, prefix: str) -> E:
    e = _el(parent, IF, "interface")
    _el(e, IF, "name", name)
    _el(e, IF, "type", f"{prefix}:{itype}", nsmap={prefix: type_ns})
    return e


def _interfaces() -> E:
    return _el(None, IF, "interfaces", nsmap={None: IF})


def ct_name(port: str) -> str:
    return f"ct-{port}"


def uplink_name(port: str) -> str:
    return f"uplink-{port}"


def factory_config(pon_ports: list[str], uplinks: list[str]) -> list[E]:
    """The OLT's configuration as shipped: its PON ports (channel hierarchy) and uplinks."""
    ifs = _interfaces()
    for p in pon_ports:
        cg = _interface(ifs, f"cg-{p}", "channel-group", XPONIFT, "bbf-xponift")
        g = _el(cg, XPON, "channel-group", nsmap={None: XPON})
        _el(g, XPON, "polling-period", "100")
        pool = _el(_el(g, XPON, "pon-pools"), XPON, "pon-pool")
        _el(pool, XPON, "name", "pool1")
        _el(pool, XPON, "channel-termination-ref", ct_name(p))
        cpart = _interface(ifs, f"cpart-{p}", "channel-partition", XPONIFT, "bbf-xponift")
        pt = _el(cpart, XPON, "channel-partition", nsmap={None: XPON})
        _el(pt, XPON, "channel-group-ref", f"cg-{p}")
        _el(pt, XPON, "channel-partition-index", "1")
        _el(pt, XPON, "authentication-method", "serial-number")
        cpair = _interface(ifs, f"cpair-{p}", "channel-pair", XPONIFT, "bbf-xponift")
        pr = _el(cpair, XPON, "channel-pair", nsmap={None: XPON})
        _el(pr, XPON, "channel-group-ref", f"cg-{p}")
        _el(pr, XPON, "channel-partition-ref", f"cpart-{p}")
        _el(pr, XPON, "channel-pair-type", "bbf-xpon-types:gpon",
            nsmap={"bbf-xpon-types": XPONTYPES})
        ct = _interface(ifs, ct_name(p), "channel-termination", XPONIFT, "bbf-xponift")
        c = _el(ct, XPON, "channel-termination", nsmap={None: XPON})
        _el(c, XPON, "channel-pair-ref", f"cpair-{p}")
        _el(c, XPON, "channel-termination-type", "bbf-xpon-types:gpon",
            nsmap={"bbf-xpon-types": XPONTYPES})
        _el(c, XPON, "location", "bbf-xpon-types:inside-olt", nsmap={"bbf-xpon-types": XPONTYPES})
    for u in uplinks:
        _interface(ifs, uplink_name(u), "ethernetCsmacd", IANAIFT, "ianaift")
    return [ifs]


@dataclass(frozen=True, slots=True)
class OnuSpec:
    """An ONU registration; ``name`` keeps a v-ani name chosen elsewhere (e.g. over NETCONF)."""

    port: str
    onu_id: int
    serial: str
    description: str = ""
    name: str = ""

    @property
    def vani(self) -> str:
        return self.name or f"ont-{self.port}-{self.onu_id}"

    @property
    def ani(self) -> str:
        return f"ani-{self.port}-{self.onu_id}"

    def uni(self, n: int) -> str:
        return f"uni-{self.port}-{self.onu_id}-eth{n}"

    def venet(self, n: int) -> str:
        return f"venet-{self.port}-{self.onu_id}-eth{n}"


def onu_registration(onu: OnuSpec) -> list[E]:
    """A v-ani expecting ``onu.serial`` on its PON port, its ani, and their link."""
    ifs = _interfaces()
    v = _interface(ifs, onu.vani, "v-ani", XPONIFT, "bbf-xponift")
    if onu.description:
        _el(v, IF, "description", onu.description)
    va = _el(v, VANI, "v-ani", nsmap={None: VANI})
    _el(va, VANI, "onu-id", str(onu.onu_id))
    _el(va, VANI, "channel-partition", f"cpart-{onu.port}")
    _el(va, VANI, "expected-serial-number", onu.serial)
    _el(va, VANI, "preferred-channel-pair", f"cpair-{onu.port}")
    a = _interface(ifs, onu.ani, "ani", XPONIFT, "bbf-xponift")
    an = _el(a, "urn:bbf:yang:bbf-xponani", "ani", nsmap={None: "urn:bbf:yang:bbf-xponani"})
    _el(an, "urn:bbf:yang:bbf-xponani", "upstream-fec", "true")
    _el(an, "urn:bbf:yang:bbf-xponani", "management-gemport-aes-indicator", "false")
    _el(an, "urn:bbf:yang:bbf-xponani", "onu-id", str(onu.onu_id))
    lt = _el(None, LT, "link-table", nsmap={None: LT})
    link = _el(lt, LT, "link-table")
    _el(link, LT, "from-interface", onu.ani)
    _el(link, LT, "to-interface", onu.vani)
    return [ifs, lt]


def _dot1q(parent: E, kind: str, vlan: int, write: bool) -> None:
    d = _el(parent, TAG, "dot1q-tag")
    _el(d, TAG, "tag-type", f"bbf-dot1qt:{kind}", nsmap={"bbf-dot1qt": DOT1QT})
    _el(d, TAG, "vlan-id", str(vlan))
    if write:
        _el(d, TAG, "write-pbit-0")
        _el(d, TAG, "write-dei-0")


def _subif(ifs: E, name: str, lower: str, usage: str | None) -> E:
    e = _interface(ifs, name, "vlan-sub-interface", BBFIFT, "bbfift")
    _el(_el(e, SUBIF, "subif-lower-layer", nsmap={None: SUBIF}), SUBIF, "interface", lower)
    if usage:
        _el(_el(e, USAGE, "interface-usage", nsmap={None: USAGE}), USAGE, "interface-usage",
            usage)
    return _el(e, SUBIF, "inline-frame-processing", nsmap={None: SUBIF})


def _rule(ifp: E, name: str, match: list[tuple[str, int]] | None, pop: int,
          push: tuple[str, int] | None) -> None:
    r = _el(_el(ifp, SUBIF, "ingress-rule"), SUBIF, "rule")
    _el(r, SUBIF, "name", name)
    _el(r, SUBIF, "priority", "100")
    mc = _el(_el(r, SUBIF, "flexible-match"), TAG, "match-criteria", nsmap={None: TAG})
    if not match:
        _el(mc, TAG, "untagged")
    for i, (kind, vlan) in enumerate(match or []):
        t = _el(mc, TAG, "tag")
        _el(t, TAG, "index", str(i))
        _dot1q(t, kind, vlan, False)
    if pop or push:
        rw = _el(r, SUBIF, "ingress-rewrite")
        _el(rw, TAG, "pop-tags", str(pop), nsmap={None: TAG})
        if push:
            p = _el(rw, TAG, "push-tag", nsmap={None: TAG})
            _el(p, TAG, "index", "0")
            _dot1q(p, push[0], push[1], True)


def uni_tagging(onu: OnuSpec, uni: int, c_vlan: int, user_vlan: int | None = None) -> list[E]:
    """The ONU side: UNI ``uni`` takes untagged (or ``user_vlan``) frames into ``c_vlan``."""
    ifs = _interfaces()
    _interface(ifs, onu.uni(uni), "ethernetCsmacd", IANAIFT, "ianaift")
    ifp = _subif(ifs, f"{onu.uni(uni)}.{c_vlan}", onu.uni(uni), None)
    if user_vlan is None:
        _rule(ifp, f"untagged-to-{c_vlan}", None, 0, ("c-vlan", c_vlan))
        eg = _el(ifp, SUBIF, "egress-rewrite")
        _el(eg, TAG, "pop-tags", "1", nsmap={None: TAG})
    else:
        _rule(ifp, f"vlan{user_vlan}-to-{c_vlan}", [("c-vlan", user_vlan)], 1,
              ("c-vlan", c_vlan))
        eg = _el(ifp, SUBIF, "egress-rewrite")
        _el(eg, TAG, "pop-tags", "1", nsmap={None: TAG})
        p = _el(eg, TAG, "push-tag", nsmap={None: TAG})
        _el(p, TAG, "index", "0")
        _dot1q(p, "c-vlan", user_vlan, True)
    return [ifs]


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    onu: OnuSpec
    uni: int
    c_vlan: int
    s_vlan: int
    uplink: str
    gemport_id: int
    alloc_id: int
    profile: str
    name: str | None = None

    @property
    def forwarder(self) -> str:
        return self.name or f"fwd-{self.onu.port}-{self.onu.onu_id}-eth{self.uni}-{self.c_vlan}"


def traffic_profile(name: str, max_bps: int, assured_bps: int = 0) -> list[E]:
    gem = _el(None, GEM, "xpongemtcont", nsmap={None: GEM})
    t = _el(_el(gem, GEM, "traffic-descriptor-profiles"), GEM, "traffic-descriptor-profile")
    _el(t, GEM, "name", name)
    _el(t, GEM, "fixed-bandwidth", "0")
    _el(t, GEM, "assured-bandwidth", str(assured_bps))
    _el(t, GEM, "maximum-bandwidth", str(max_bps))
    _el(t, GEM, "additional-bw-eligibility-indicator", "non-assured-sharing")
    return [gem]


def olt_service(svc: ServiceSpec) -> list[E]:
    """The OLT side of a service: v-enet, UNI link, GEM/T-CONT, sub-interfaces, forwarder."""
    onu, n = svc.onu, svc.uni
    ifs = _interfaces()
    ve = _interface(ifs, onu.venet(n), "olt-v-enet", XPONIFT, "bbf-xponift")
    _el(_el(ve, VANI, "olt-v-enet", nsmap={None: VANI}), VANI, "lower-layer-interface", onu.vani)
    _interface(ifs, onu.uni(n), "ethernetCsmacd", IANAIFT, "ianaift")
    user = f"{onu.venet(n)}.{svc.c_vlan}"
    ifp = _subif(ifs, user, onu.venet(n), "user-port")
    _rule(ifp, f"cvlan{svc.c_vlan}", [("c-vlan", svc.c_vlan)], 0, None)
    net = f"{uplink_name(svc.uplink)}.{svc.s_vlan}.{svc.c_vlan}"
    ifp = _subif(ifs, net, uplink_name(svc.uplink), "network-port")
    _rule(ifp, f"svlan{svc.s_vlan}-cvlan{svc.c_vlan}",
          [("s-vlan", svc.s_vlan), ("c-vlan", svc.c_vlan)], 1, None)
    eg = _el(ifp, SUBIF, "egress-rewrite")
    p = _el(eg, TAG, "push-tag", nsmap={None: TAG})
    _el(p, TAG, "index", "0")
    _dot1q(p, "s-vlan", svc.s_vlan, True)

    lt = _el(None, LT, "link-table", nsmap={None: LT})
    link = _el(lt, LT, "link-table")
    _el(link, LT, "from-interface", onu.uni(n))
    _el(link, LT, "to-interface", onu.venet(n))

    gem = _el(None, GEM, "xpongemtcont", nsmap={None: GEM})
    tc = _el(_el(gem, GEM, "tconts"), GEM, "tcont")
    _el(tc, GEM, "name", f"tcont-{onu.port}-{onu.onu_id}")
    _el(tc, GEM, "alloc-id", str(svc.alloc_id))
    _el(tc, GEM, "interface-reference", onu.vani)
    _el(tc, GEM, "traffic-descriptor-profile-ref", svc.profile)
    gp = _el(_el(gem, GEM, "gemports"), GEM, "gemport")
    _el(gp, GEM, "name", f"gem-{onu.port}-{onu.onu_id}-eth{n}")
    _el(gp, GEM, "gemport-id", str(svc.gemport_id))
    _el(gp, GEM, "interface", onu.venet(n))
    _el(gp, GEM, "traffic-class", "0")
    _el(gp, GEM, "tcont-ref", f"tcont-{onu.port}-{onu.onu_id}")

    fwd = _el(None, L2F, "forwarding", nsmap={None: L2F})
    f = _el(_el(fwd, L2F, "forwarders"), L2F, "forwarder")
    _el(f, L2F, "name", svc.forwarder)
    ports = _el(f, L2F, "ports")
    for pname, sub in (("user", user), ("network", net)):
        port = _el(ports, L2F, "port")
        _el(port, L2F, "name", pname)
        _el(port, L2F, "sub-interface", sub)
    return [ifs, lt, gem, fwd]


def _removed(parent: E, ns: str, entry: str, key: str, value: str) -> None:
    e = _el(parent, ns, entry)
    e.set(f"{{{NC}}}operation", "remove")
    _el(e, ns, key, value)


def delete_entries(
    interfaces: list[str],
    forwarders: list[str] | None = None,
    gemports: list[str] | None = None,
    tconts: list[str] | None = None,
    links: list[str] | None = None,
) -> list[E]:
    """An edit that removes the named entries (``remove``: absent entries are no error).

    Referencing entries come first so that nothing is left pointing at a removed interface.
    """
    out: list[E] = []
    if forwarders:
        fwd = _el(None, L2F, "forwarding", nsmap={None: L2F, "nc": NC})
        fs = _el(fwd, L2F, "forwarders")
        for n in forwarders:
            _removed(fs, L2F, "forwarder", "name", n)
        out.append(fwd)
    if gemports or tconts:
        gem = _el(None, GEM, "xpongemtcont", nsmap={None: GEM, "nc": NC})
        if gemports:
            gs = _el(gem, GEM, "gemports")
            for n in gemports:
                _removed(gs, GEM, "gemport", "name", n)
        if tconts:
            ts = _el(gem, GEM, "tconts")
            for n in tconts:
                _removed(ts, GEM, "tcont", "name", n)
        out.append(gem)
    if links:
        lt = _el(None, LT, "link-table", nsmap={None: LT, "nc": NC})
        for n in links:
            _removed(lt, LT, "link-table", "from-interface", n)
        out.append(lt)
    if interfaces:
        ifs = _el(None, IF, "interfaces", nsmap={None: IF, "nc": NC})
        for n in interfaces:
            _removed(ifs, IF, "interface", "name", n)
        out.append(ifs)
    return out


def combine(elements: list[E]) -> list[E]:
    """Merge top-level elements of the same tag into one, so a bulk edit copies each list once.

    Builders return one ``<interfaces>`` per ONU; a thousand of them applied one by one would
    copy the growing interface list a thousand times.
    """
    merged: dict[str, E] = {}
    containers: dict[tuple[str, str], E] = {}
    for el in elements:
        tag = str(el.tag)
        if tag not in merged:
            ns = etree.QName(el).namespace or ""
            merged[tag] = _el(None, ns, etree.QName(el).localname, nsmap={None: ns, "nc": NC})
        target = merged[tag]
        for child in el:
            # len() of an lxml element counts its children: test the cheap things first.
            if _container_like(child):
                existing = containers.get((tag, str(child.tag)))
                if existing is not None:
                    existing.extend(list(child))
                    continue
                containers[(tag, str(child.tag))] = child
            target.append(child)
    return list(merged.values())


def _container_like(el: E) -> bool:
    # Second-level containers (tconts, gemports, forwarders, ...) merge; list entries don't.
    return etree.QName(el).localname in {"tconts", "gemports", "traffic-descriptor-profiles",
                                         "forwarders"}
