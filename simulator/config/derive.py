"""What the configuration means: ONU registrations and services, read out of the BBF tree.

The faces edit a standards-shaped tree; the hardware (ONT state machine, data path, SNMP tables,
CLI displays) needs to know which ONU is expected where and which VLAN services it carries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from simulator.config.errors import RpcError
from simulator.config.namespaces import GEM, IF, L2F, LT, SUBIF, TAG, VANI, XPON
from simulator.config.tree import DNode, identity_name

UNI_NAME = re.compile(r"eth(\d+)$")


@dataclass(frozen=True, slots=True)
class TagRule:
    """One ingress rule of a VLAN sub-interface, reduced to what the data path needs."""

    name: str
    priority: int
    match: str  # "untagged" | "tagged" | "any"
    tags: tuple[tuple[str, int | None], ...]  # (tag-type, vlan) outermost first
    pop: int
    push: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class SubIf:
    name: str
    lower: str
    rules: tuple[TagRule, ...]
    egress_pop: int
    egress_push: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class OnuConfig:
    """An ONU registration: the v-ani with its expected serial on a PON port."""

    vani: str
    serial: str | None
    onu_id: int | None
    port: str | None  # PON port name, e.g. "0/1/0"
    description: str


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """One VLAN service on one ONU UNI, joined through a forwarder to an uplink."""

    name: str  # the forwarder
    vani: str
    uni: int
    c_vlan: int
    s_vlan: int
    uplink: str  # uplink port name, e.g. "0/9/0"
    gemport_id: int | None
    alloc_id: int | None
    profile: str | None  # traffic-descriptor-profile name
    uni_subif: SubIf | None
    olt_subif: SubIf
    uplink_subif: SubIf
    problems: tuple[str, ...] = ()  # why the ONU cannot apply it, if anything

    @property
    def complete(self) -> bool:
        return not self.problems


@dataclass(slots=True)
class OltView:
    onus: dict[str, OnuConfig] = field(default_factory=dict)  # by v-ani name
    services: dict[str, ServiceConfig] = field(default_factory=dict)  # by forwarder name
    other_forwarders: list[str] = field(default_factory=list)
    by_serial: dict[str, OnuConfig] = field(default_factory=dict)
    by_vani: dict[str, list[ServiceConfig]] = field(default_factory=dict)

    def onu_by_serial(self, serial: str) -> OnuConfig | None:
        return self.by_serial.get(serial.upper())

    def services_of(self, vani: str) -> list[ServiceConfig]:
        return self.by_vani.get(vani, [])


@dataclass(frozen=True, slots=True)
class Hardware:
    """The OLT's physical ports, as its factory configuration names them."""

    ct_to_port: dict[str, str]  # channel-termination interface -> PON port
    uplink_to_port: dict[str, str]  # uplink interface -> uplink port
    uplink_vlans: dict[str, frozenset[int]]  # uplink port -> network VLANs it carries


def _int(v: str | None) -> int | None:
    return int(v) if v is not None else None


def _subif(e: DNode) -> SubIf:
    name = e.leaf("name") or ""
    lower = e.path(SUBIF, "subif-lower-layer")
    ifp = e.get(SUBIF, "inline-frame-processing")
    rules: list[TagRule] = []
    egress_pop: int = 0
    egress_push: tuple[tuple[str, int], ...] = ()
    if ifp is not None:
        ir = ifp.get(SUBIF, "ingress-rule")
        for r in ir.entries(SUBIF, "rule") if ir is not None else ():
            rules.append(_rule(r))
        eg = ifp.get(SUBIF, "egress-rewrite")
        if eg is not None:
            egress_pop, egress_push = _rewrite(eg)
    rules.sort(key=lambda r: r.priority)
    return SubIf(name, (lower.leaf("interface") if lower else None) or "", tuple(rules),
                 egress_pop, egress_push)


def _tag(t: DNode) -> tuple[str, int | None]:
    d = t.get(TAG, "dot1q-tag")
    if d is None:
        return ("any", None)
    return (identity_name(d.leaf("tag-type")) or "any", _int(d.leaf("vlan-id")))


def _rewrite(rw: DNode) -> tuple[int, tuple[tuple[str, int], ...]]:
    pop = int(rw.leaf("pop-tags", TAG) or 0)
    push = []
    for p in sorted(rw.entries(TAG, "push-tag"), key=lambda p: int(p.leaf("index") or 0)):
        kind, vlan = _tag(p)
        push.append((kind, vlan or 0))
    return pop, tuple(push)


def _rule(r: DNode) -> TagRule:
    fm = r.path(SUBIF, "flexible-match")
    mc = fm.get(TAG, "match-criteria") if fm is not None else None
    match = "any"
    tags: tuple[tuple[str, int | None], ...] = ()
    if mc is not None:
        if mc.get(TAG, "untagged") is not None:
            match = "untagged"
        entries = sorted(mc.entries(TAG, "tag"), key=lambda t: int(t.leaf("index") or 0))
        if entries:
            match, tags = "tagged", tuple(_tag(t) for t in entries)
    rw = r.get(SUBIF, "ingress-rewrite")
    pop, push = _rewrite(rw) if rw is not None else (0, ())
    return TagRule(r.leaf("name") or "", int(r.leaf("priority") or 0), match, tags, pop, push)


def derive(root: DNode, hw: Hardware) -> OltView:
    """Read the registrations and services out of a (valid) configuration tree."""
    view = OltView()
    ifs = root.get(IF, "interfaces")
    by_name: dict[str, DNode] = {}
    if ifs is not None:
        by_name = {e.leaf("name") or "": e for e in ifs.entries(IF, "interface")}
    pair_to_ct: dict[str, str] = {}
    part_to_ct: dict[str, str] = {}
    for name, e in by_name.items():
        ct = e.get(XPON, "channel-termination")
        if ct is not None and name in hw.ct_to_port:
            pair = ct.leaf("channel-pair-ref")
            if pair:
                pair_to_ct[pair] = name
                cp = by_name.get(pair)
                cpn = cp.get(XPON, "channel-pair") if cp is not None else None
                part = cpn.leaf("channel-partition-ref") if cpn is not None else None
                if part:
                    part_to_ct.setdefault(part, name)

    venet_to_vani: dict[str, str] = {}
    for name, e in by_name.items():
        v = e.get(VANI, "v-ani")
        if v is not None:
            ct_if = pair_to_ct.get(v.leaf("preferred-channel-pair") or "") or part_to_ct.get(
                v.leaf("channel-partition") or "")
            view.onus[name] = OnuConfig(
                name, v.leaf("expected-serial-number"), _int(v.leaf("onu-id")),
                hw.ct_to_port.get(ct_if or ""), e.leaf("description") or "")
        ve = e.get(VANI, "olt-v-enet")
        if ve is not None:
            venet_to_vani[name] = ve.leaf("lower-layer-interface") or ""

    # ONU-side UNIs are linked to OLT-side v-enets by the link table.
    venet_to_uni: dict[str, str] = {}
    lt = root.get(LT, "link-table")
    for link in lt.entries(LT, "link-table") if lt is not None else ():
        src = link.leaf("from-interface") or ""
        for target in link.entries(LT, "to-interface"):
            if target.value is not None and target.value in venet_to_vani:
                venet_to_uni[target.value] = src
    uni_subifs: dict[str, SubIf] = {}
    for e in by_name.values():
        if e.get(SUBIF, "subif-lower-layer") is not None:
            sub = _subif(e)
            uni_subifs.setdefault(sub.lower, sub)

    gem_by_venet: dict[str, DNode] = {}
    tconts: dict[str, DNode] = {}
    gem = root.get(GEM, "xpongemtcont")
    if gem is not None:
        gps = gem.get(GEM, "gemports")
        for gp in gps.entries(GEM, "gemport") if gps is not None else ():
            gem_by_venet.setdefault(gp.leaf("interface") or "", gp)
        tcs = gem.get(GEM, "tconts")
        for tc in tcs.entries(GEM, "tcont") if tcs is not None else ():
            tconts[tc.leaf("name") or ""] = tc

    fw = root.path(L2F, "forwarding", "forwarders")
    for f in fw.entries(L2F, "forwarder") if fw is not None else ():
        fname = f.leaf("name") or ""
        ports = f.get(L2F, "ports")
        subs = [by_name.get(p.leaf("sub-interface") or "")
                for p in (ports.entries(L2F, "port") if ports is not None else ())]
        user = net = None
        for s in subs:
            if s is None:
                continue
            lower = (s.path(SUBIF, "subif-lower-layer") or s).leaf("interface", SUBIF) or ""
            if lower in venet_to_vani:
                user = s
            elif lower in hw.uplink_to_port:
                net = s
        if user is None or net is None:
            view.other_forwarders.append(fname)
            continue
        usub, nsub = _subif(user), _subif(net)
        vani = venet_to_vani[usub.lower]
        problems: list[str] = []
        c_vlan = next((t[1] for r in usub.rules for t in r.tags[:1] if t[1]), None)
        s_tags = [t for r in nsub.rules for t in r.tags[:1] if t[1]]
        s_vlan = s_tags[0][1] if s_tags else next((v for _, v in nsub.egress_push), None)
        uni_if = venet_to_uni.get(usub.lower)
        uni = 0
        if uni_if is None:
            problems.append(f"v-enet {usub.lower!r} is not linked to an ONU UNI in the link-table")
        else:
            m = UNI_NAME.search(uni_if)
            if m is None:
                problems.append(f"UNI interface {uni_if!r} does not name an Ethernet port "
                                "(its name must end in eth1..eth4)")
            else:
                uni = int(m.group(1))
        g = gem_by_venet.get(usub.lower)
        alloc = profile = None
        if g is None:
            problems.append(f"no GEM port carries v-enet {usub.lower!r}")
        else:
            t = tconts.get(g.leaf("tcont-ref") or "")
            if t is not None:
                alloc = _int(t.leaf("alloc-id"))
                profile = t.leaf("traffic-descriptor-profile-ref")
        if c_vlan is None:
            problems.append(f"sub-interface {usub.name!r} matches no C-VLAN")
        uni_sub = uni_subifs.get(uni_if or "")
        if uni_sub is None and uni_if is not None:
            problems.append(f"UNI {uni_if!r} has no VLAN sub-interface (no tagging rule)")
        view.services[fname] = ServiceConfig(
            fname, vani, uni, c_vlan or 0, s_vlan or 0, hw.uplink_to_port[nsub.lower],
            _int(g.leaf("gemport-id")) if g is not None else None, alloc, profile,
            uni_sub, usub, nsub, tuple(problems))
    for onu in view.onus.values():
        if onu.serial is not None:
            view.by_serial[onu.serial.upper()] = onu
    for svc in view.services.values():
        view.by_vani.setdefault(svc.vani, []).append(svc)
    return view


def check_network_services(root: DNode, hw: Hardware) -> None:
    """Refuse uplink sub-interfaces whose S-VLAN the uplink does not carry.

    An S-VLAN outside the uplink's network VLANs would be a service that goes nowhere: the
    network service is missing, which the operator must fix in the network, not on the OLT.
    """
    ifs = root.get(IF, "interfaces")
    if ifs is None:
        return
    for e in ifs.entries(IF, "interface"):
        lower = e.path(SUBIF, "subif-lower-layer")
        low = lower.leaf("interface") if lower is not None else None
        if low is None or low not in hw.uplink_to_port:
            continue
        sub = _subif(e)
        port = hw.uplink_to_port[low]
        carried = hw.uplink_vlans.get(port, frozenset())
        vlans = {t[1] for r in sub.rules for t in r.tags[:1] if t[1]}
        vlans |= {v for _, v in sub.egress_push[:1]}
        for vlan in sorted(vlans):
            if vlan not in carried:
                name = e.leaf("name")
                have = ", ".join(str(v) for v in sorted(carried)) or "none"
                raise RpcError(
                    "invalid-value",
                    f"network service missing: S-VLAN {vlan} is not carried by uplink {port} "
                    f"(its network VLANs: {have})",
                    path=f"/if:interfaces/if:interface[if:name='{name}']",
                    app_tag="network-service-missing",
                )


@dataclass(slots=True)
class OnuEntries:
    """Every configuration entry that belongs to one ONU, for removing it whole."""

    interfaces: list[str] = field(default_factory=list)
    forwarders: list[str] = field(default_factory=list)
    gemports: list[str] = field(default_factory=list)
    tconts: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)


def onu_entries(root: DNode, vani: str, *, keep_registration: bool = False) -> OnuEntries:
    """The entries of ONU ``vani``: its services, v-enets, UNIs, GEM ports, T-CONTs, links.

    With ``keep_registration`` the v-ani and ani stay (remove the services only).
    """
    out = OnuEntries()
    ifs = root.get(IF, "interfaces")
    entries = list(ifs.entries(IF, "interface")) if ifs is not None else []
    venets = {e.leaf("name") or "" for e in entries
              if (ve := e.get(VANI, "olt-v-enet")) is not None
              and ve.leaf("lower-layer-interface") == vani}
    lt = root.get(LT, "link-table")
    unis: set[str] = set()
    anis: set[str] = set()
    for link in lt.entries(LT, "link-table") if lt is not None else ():
        src = link.leaf("from-interface") or ""
        targets = {t.value for t in link.entries(LT, "to-interface")}
        if targets & venets:
            unis.add(src)
            out.links.append(src)
        elif vani in targets and not keep_registration:
            anis.add(src)
            out.links.append(src)
    subifs = {e.leaf("name") or "" for e in entries
              if (sl := e.path(SUBIF, "subif-lower-layer")) is not None
              and sl.leaf("interface") in venets | unis}
    fw = root.path(L2F, "forwarding", "forwarders")
    for f in fw.entries(L2F, "forwarder") if fw is not None else ():
        ports = f.get(L2F, "ports")
        subs = {p.leaf("sub-interface") for p in
                (ports.entries(L2F, "port") if ports is not None else ())}
        if subs & subifs:
            out.forwarders.append(f.leaf("name") or "")
            # The uplink side of the forwarder belongs to this service alone.
            subifs |= {s for s in subs if s}
    gem = root.get(GEM, "xpongemtcont")
    if gem is not None:
        gps = gem.get(GEM, "gemports")
        for g in gps.entries(GEM, "gemport") if gps is not None else ():
            if g.leaf("interface") in venets:
                out.gemports.append(g.leaf("name") or "")
        tcs = gem.get(GEM, "tconts")
        for t in tcs.entries(GEM, "tcont") if tcs is not None else ():
            if t.leaf("interface-reference") == vani and not keep_registration:
                out.tconts.append(t.leaf("name") or "")
    out.interfaces = sorted(subifs) + sorted(venets) + sorted(unis)
    if not keep_registration:
        out.interfaces += [*sorted(anis), vani]
    return out
