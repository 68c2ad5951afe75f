"""What the configuration means: ONU registrations and services, read out of the BBF tree.

The faces edit a standards-shaped tree; the hardware (ONT state machine, data path, SNMP tables,
CLI displays) needs to know which ONU is expected where and which VLAN services it carries.
"""

from __future__ import annotations

import re
import weakref
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


# Parsed sub-interfaces, per (immutable, shared) tree node: a commit that adds one ONU re-parses
# only that ONU's entries, not the thousands that did not change.
_SUBIFS: weakref.WeakKeyDictionary[DNode, SubIf] = weakref.WeakKeyDictionary()


def _subif(e: DNode) -> SubIf:
    cached = _SUBIFS.get(e)
    if cached is None:
        cached = _SUBIFS[e] = _parse_subif(e)
    return cached


def _parse_subif(e: DNode) -> SubIf:
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


@dataclass(frozen=True, slots=True)
class _If:
    """What derivation needs from one interface entry, parsed once per entry version."""

    name: str
    kind: str | None
    description: str
    pair_ref: str | None = None  # channel-termination -> channel-pair
    partition_ref: str | None = None  # channel-pair -> channel-partition
    serial: str | None = None  # v-ani
    onu_id: int | None = None
    partition: str | None = None
    preferred_pair: str | None = None
    venet_lower: str | None = None  # olt-v-enet -> v-ani
    subif: SubIf | None = None


_IFS: weakref.WeakKeyDictionary[DNode, _If] = weakref.WeakKeyDictionary()
_ROWS: weakref.WeakKeyDictionary[DNode, tuple[str | None, ...]] = weakref.WeakKeyDictionary()
_LEAVES: weakref.WeakKeyDictionary[DNode, dict[tuple[str, ...], tuple[str | None, ...]]] = (
    weakref.WeakKeyDictionary())


def _if(e: DNode) -> _If:
    cached = _IFS.get(e)
    if cached is not None:
        return cached
    kw: dict[str, object] = {}
    ct = e.get(XPON, "channel-termination")
    if ct is not None:
        kw["pair_ref"] = ct.leaf("channel-pair-ref")
    cp = e.get(XPON, "channel-pair")
    if cp is not None:
        kw["partition_ref"] = cp.leaf("channel-partition-ref")
    v = e.get(VANI, "v-ani")
    if v is not None:
        sn = v.leaf("expected-serial-number")
        kw.update(serial=sn.upper() if sn else None, onu_id=_int(v.leaf("onu-id")),
                  partition=v.leaf("channel-partition"),
                  preferred_pair=v.leaf("preferred-channel-pair"))
    ve = e.get(VANI, "olt-v-enet")
    if ve is not None:
        kw["venet_lower"] = ve.leaf("lower-layer-interface") or ""
    if e.get(SUBIF, "subif-lower-layer") is not None:
        kw["subif"] = _subif(e)
    facts = _If(e.leaf("name") or "", identity_name(e.leaf("type")),
                e.leaf("description") or "", **kw)  # type: ignore[arg-type]
    _IFS[e] = facts
    return facts


def _row(e: DNode, *leaves: str) -> tuple[str | None, ...]:
    """Some leaves of a list entry, cached per entry version."""
    per_node = _LEAVES.get(e)
    if per_node is None:
        per_node = _LEAVES[e] = {}
    cached = per_node.get(leaves)
    if cached is None:
        cached = per_node[leaves] = tuple(e.leaf(n) for n in leaves)
    return cached


_PER_ROOT: weakref.WeakKeyDictionary[DNode, list[_If]] = weakref.WeakKeyDictionary()


def interfaces(root: DNode) -> list[_If]:
    """Facts of every interface entry; computed once per tree (checks and derive share it)."""
    ifs = root.get(IF, "interfaces")
    if ifs is None:
        return []
    cached = _PER_ROOT.get(ifs)
    if cached is None:
        cached = _PER_ROOT[ifs] = [_if(e) for e in ifs.children.values()
                                   if e.schema.kind == "list"]
    return cached


def _links(root: DNode) -> list[tuple[str, tuple[str, ...]]]:
    lt = root.get(LT, "link-table")
    out = []
    for link in lt.entries(LT, "link-table") if lt is not None else ():
        cached = _ROWS.get(link)
        if cached is None:
            cached = _ROWS[link] = (link.leaf("from-interface"),
                                    *(t.value for t in link.entries(LT, "to-interface")))
        out.append((cached[0] or "", tuple(t for t in cached[1:] if t)))
    return out


def _gem_rows(root: DNode, container: str, entry: str,
              *leaves: str) -> list[tuple[str | None, ...]]:
    c = root.path(GEM, "xpongemtcont", container)
    return [_row(e, *leaves) for e in c.entries(GEM, entry)] if c is not None else []


def _forwarders(root: DNode) -> list[tuple[str, tuple[str, ...]]]:
    fw = root.path(L2F, "forwarding", "forwarders")
    out = []
    for f in fw.entries(L2F, "forwarder") if fw is not None else ():
        cached = _ROWS.get(f)
        if cached is None:
            ports = f.get(L2F, "ports")
            cached = _ROWS[f] = (f.leaf("name"), *(
                p.leaf("sub-interface") for p in
                (ports.entries(L2F, "port") if ports is not None else ())))
        out.append((cached[0] or "", tuple(p for p in cached[1:] if p)))
    return out


def derive(root: DNode, hw: Hardware) -> OltView:
    """Read the registrations and services out of a (valid) configuration tree."""
    view = OltView()
    facts = interfaces(root)
    by_name = {f.name: f for f in facts}
    pair_to_ct: dict[str, str] = {}
    part_to_ct: dict[str, str] = {}
    for f in facts:
        if f.pair_ref and f.name in hw.ct_to_port:
            pair_to_ct[f.pair_ref] = f.name
            pair = by_name.get(f.pair_ref)
            if pair is not None and pair.partition_ref:
                part_to_ct.setdefault(pair.partition_ref, f.name)

    venet_to_vani: dict[str, str] = {}
    subif_by_lower: dict[str, SubIf] = {}
    for f in facts:
        if f.kind == "v-ani":
            ct_if = pair_to_ct.get(f.preferred_pair or "") or part_to_ct.get(f.partition or "")
            view.onus[f.name] = OnuConfig(f.name, f.serial, f.onu_id,
                                          hw.ct_to_port.get(ct_if or ""), f.description)
        elif f.venet_lower is not None:
            venet_to_vani[f.name] = f.venet_lower
        if f.subif is not None:
            subif_by_lower.setdefault(f.subif.lower, f.subif)

    # ONU-side UNIs are linked to OLT-side v-enets by the link table.
    venet_to_uni: dict[str, str] = {}
    for src, targets in _links(root):
        for target in targets:
            if target in venet_to_vani:
                venet_to_uni[target] = src

    gem_by_venet: dict[str, tuple[str | None, ...]] = {}
    for row in _gem_rows(root, "gemports", "gemport", "interface", "gemport-id", "tcont-ref"):
        gem_by_venet.setdefault(row[0] or "", row)
    tconts = {t[0] or "": t for t in _gem_rows(root, "tconts", "tcont", "name", "alloc-id",
                                                "traffic-descriptor-profile-ref")}

    for fname, subs in _forwarders(root):
        user = net = None
        for sub_name in subs:
            sf = by_name.get(sub_name)
            if sf is None or sf.subif is None:
                continue
            if sf.subif.lower in venet_to_vani:
                user = sf.subif
            elif sf.subif.lower in hw.uplink_to_port:
                net = sf.subif
        if user is None or net is None:
            view.other_forwarders.append(fname)
            continue
        vani = venet_to_vani[user.lower]
        problems: list[str] = []
        c_vlan = next((t[1] for r in user.rules for t in r.tags[:1] if t[1]), None)
        s_tags = [t for r in net.rules for t in r.tags[:1] if t[1]]
        s_vlan = s_tags[0][1] if s_tags else next((v for _, v in net.egress_push), None)
        uni_if = venet_to_uni.get(user.lower)
        uni = 0
        if uni_if is None:
            problems.append(f"v-enet {user.lower!r} is not linked to an ONU UNI in the link-table")
        else:
            m = UNI_NAME.search(uni_if)
            if m is None:
                problems.append(f"UNI interface {uni_if!r} does not name an Ethernet port "
                                "(its name must end in eth1..eth4)")
            else:
                uni = int(m.group(1))
        g = gem_by_venet.get(user.lower)
        alloc = profile = None
        if g is None:
            problems.append(f"no GEM port carries v-enet {user.lower!r}")
        else:
            tc = tconts.get(g[2] or "")
            if tc is not None:
                alloc, profile = _int(tc[1]), tc[2]
        if c_vlan is None:
            problems.append(f"sub-interface {user.name!r} matches no C-VLAN")
        uni_sub = subif_by_lower.get(uni_if or "")
        if uni_sub is None and uni_if is not None:
            problems.append(f"UNI {uni_if!r} has no VLAN sub-interface (no tagging rule)")
        view.services[fname] = ServiceConfig(
            fname, vani, uni, c_vlan or 0, s_vlan or 0, hw.uplink_to_port[net.lower],
            _int(g[1]) if g is not None else None, alloc, profile,
            uni_sub, user, net, tuple(problems))
    for onu in view.onus.values():
        if onu.serial is not None:
            view.by_serial[onu.serial] = onu
    for svc in view.services.values():
        view.by_vani.setdefault(svc.vani, []).append(svc)
    return view


def check_network_services(root: DNode, hw: Hardware) -> None:
    """Refuse uplink sub-interfaces whose S-VLAN the uplink does not carry.

    An S-VLAN outside the uplink's network VLANs would be a service that goes nowhere: the
    network service is missing, which the operator must fix in the network, not on the OLT.
    """
    for f in interfaces(root):
        sub = f.subif
        if sub is None or sub.lower not in hw.uplink_to_port:
            continue
        port = hw.uplink_to_port[sub.lower]
        carried = hw.uplink_vlans.get(port, frozenset())
        vlans = {t[1] for r in sub.rules for t in r.tags[:1] if t[1]}
        vlans |= {v for _, v in sub.egress_push[:1]}
        for vlan in sorted(vlans):
            if vlan not in carried:
                have = ", ".join(str(v) for v in sorted(carried)) or "none"
                raise RpcError(
                    "invalid-value",
                    f"network service missing: S-VLAN {vlan} is not carried by uplink {port} "
                    f"(its network VLANs: {have})",
                    path=f"/if:interfaces/if:interface[if:name='{f.name}']",
                    app_tag="network-service-missing",
                )


def check_unique(root: DNode) -> None:
    """Serials, onu-ids per channel partition, alloc-ids and GEM port ids must not repeat."""
    serials: dict[str, str] = {}
    onu_ids: dict[tuple[str, int], str] = {}
    for f in interfaces(root):
        if f.kind != "v-ani":
            continue
        where = f"/if:interfaces/if:interface[if:name='{f.name}']"
        if f.serial is not None:
            other = serials.setdefault(f.serial, f.name)
            if other != f.name:
                raise RpcError("invalid-value",
                               f"serial {f.serial} is already expected by v-ani {other!r}",
                               path=where, app_tag="data-not-unique")
        if f.onu_id is not None:
            other = onu_ids.setdefault((f.partition or "", f.onu_id), f.name)
            if other != f.name:
                raise RpcError("invalid-value",
                               f"onu-id {f.onu_id} on {f.partition} is already used by v-ani "
                               f"{other!r}", path=where, app_tag="data-not-unique")
    for cont, entry, leaf in (("tconts", "tcont", "alloc-id"),
                              ("gemports", "gemport", "gemport-id")):
        seen: dict[str, str] = {}
        for name, num in _gem_rows(root, cont, entry, "name", leaf):
            if num is None:
                continue
            other = seen.setdefault(num, name or "")
            if other != name:
                raise RpcError("invalid-value", f"{leaf} {num} is already used by {other!r}",
                               path=f"/bbf-xpongemtcont:xpongemtcont/{cont}",
                               app_tag="data-not-unique")
