"""Removing ONU registrations and services together with everything left dangling.

Every face removes things (SNMP ``destroy``, CLI ``ont delete`` / ``undo service-port``, an
out-of-band edit from the lab's control endpoint); they all use this one closure so that no
face leaves a T-CONT, GEM port, link or sub-interface behind that another face would trip on.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from simulator.config import builder as b
from simulator.config.derive import OltView
from simulator.config.namespaces import GEM, IF, L2F, LT, VANI
from simulator.config.tree import DNode

E = etree._Element


def first_uplink(uplinks: dict[str, frozenset[int]], s_vlan: int) -> str | None:
    """The first uplink, in the OLT's order, whose network VLANs include ``s_vlan``."""
    return next((name for name, vlans in uplinks.items() if s_vlan in vlans), None)


def _tconts(root: DNode) -> list[DNode]:
    tcs = root.path(GEM, "xpongemtcont", "tconts")
    return list(tcs.entries(GEM, "tcont")) if tcs is not None else []


def _interface_refs(node: DNode) -> set[str]:
    """Every interface name a subtree points at through a leafref."""
    found: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        t = n.schema.type
        if t is not None and t.kind == "leafref" and t.ref == "interface" and n.value:
            found.add(n.value)
        stack.extend(n.children.values())
    return found


@dataclass(slots=True)
class _Config:
    """The entries of the running config that can hang off an ONU, with what they point at."""

    interfaces: dict[str, set[str]]
    venet_lower: dict[str, str]  # v-enet -> its v-ani
    links: dict[str, set[str]]  # from-interface -> to-interfaces
    gemports: dict[str, tuple[str, str]]  # name -> (interface, tcont-ref)
    tconts: dict[str, str]  # name -> interface-reference
    forwarders: dict[str, set[str]]  # name -> sub-interfaces of its ports

    @classmethod
    def read(cls, root: DNode) -> _Config:
        interfaces: dict[str, set[str]] = {}
        venet_lower: dict[str, str] = {}
        ifs = root.get(IF, "interfaces")
        for e in ifs.entries(IF, "interface") if ifs is not None else ():
            name = e.leaf("name") or ""
            interfaces[name] = _interface_refs(e)
            ve = e.get(VANI, "olt-v-enet")
            if ve is not None:
                venet_lower[name] = ve.leaf("lower-layer-interface") or ""
        links: dict[str, set[str]] = {}
        lt = root.get(LT, "link-table")
        for link in lt.entries(LT, "link-table") if lt is not None else ():
            links[link.leaf("from-interface") or ""] = {
                t.value for t in link.entries(LT, "to-interface") if t.value}
        gemports: dict[str, tuple[str, str]] = {}
        gps = root.path(GEM, "xpongemtcont", "gemports")
        for gp in gps.entries(GEM, "gemport") if gps is not None else ():
            gemports[gp.leaf("name") or ""] = (gp.leaf("interface") or "",
                                               gp.leaf("tcont-ref") or "")
        tconts = {tc.leaf("name") or "": tc.leaf("interface-reference") or ""
                  for tc in _tconts(root)}
        forwarders: dict[str, set[str]] = {}
        fws = root.path(L2F, "forwarding", "forwarders")
        for f in fws.entries(L2F, "forwarder") if fws is not None else ():
            ports = f.get(L2F, "ports")
            forwarders[f.leaf("name") or ""] = {
                p.leaf("sub-interface") or "" for p in (ports.entries(L2F, "port")
                                                        if ports is not None else ())}
        return cls(interfaces, venet_lower, links, gemports, tconts, forwarders)


def removal(root: DNode, view: OltView, vanis: set[str], forwarders: set[str], *,
            interfaces: frozenset[str] = frozenset(), keep_uni_tagging: bool = False,
            ) -> list[E]:
    """An edit that removes ONU registrations and services, and everything left dangling.

    ``interfaces`` are removed too (with whatever points at them). With ``keep_uni_tagging``
    the ONU side of a removed service (the UNI and its VLAN sub-interface) stays: on the CLI
    the native VLAN of an ONT port is its own setting, not part of the service-port.

    Removing a v-ani takes with it whatever points at it, transitively: its ani (linked to
    it), v-enets, their sub-interfaces, GEM ports, T-CONTs, the UNIs linked to the v-enets and
    the forwarders. Removing a single service (a forwarder) removes its sub-interfaces unless
    another forwarder uses them, then its v-enet (and UNI, GEM port) once no service is left
    on it, and the ONU's T-CONTs once the ONU has no v-enet left.
    """
    cfg = _Config.read(root)
    gone_if: set[str] = (set(vanis) | set(interfaces)) & set(cfg.interfaces)
    gone_fwd: set[str] = set(forwarders) & set(cfg.forwarders)
    gone_gem: set[str] = set()
    gone_tc: set[str] = set()
    gone_link: set[str] = set()
    if not keep_uni_tagging:
        gone_if |= _uni_subifs(cfg, view, gone_fwd)
    changed = True
    while changed:
        n_before = (len(gone_if), len(gone_fwd), len(gone_gem), len(gone_tc), len(gone_link))
        for f, subs in cfg.forwarders.items():
            if f not in gone_fwd and subs & gone_if:
                gone_fwd.add(f)
        live_fwd_subs = {s for f, subs in cfg.forwarders.items() if f not in gone_fwd
                         for s in subs}
        for f in gone_fwd:
            gone_if |= {s for s in cfg.forwarders[f]
                        if s in cfg.interfaces and s not in live_fwd_subs}
        for name, refs in cfg.interfaces.items():
            if name not in gone_if and refs & gone_if:
                gone_if.add(name)
        # A v-enet without sub-interfaces carries no service any more.
        for venet in cfg.venet_lower:
            if venet in gone_if:
                continue
            users = [n for n, refs in cfg.interfaces.items() if venet in refs and n != venet]
            was_used = any(n in gone_if for n in users)
            if was_used and all(n in gone_if for n in users):
                gone_if.add(venet)
        for src, targets in cfg.links.items():
            if src in gone_link:
                continue
            if src in gone_if or targets & gone_if:
                gone_link.add(src)
                to_venet = targets <= cfg.venet_lower.keys()
                if (targets & gone_if and src in cfg.interfaces
                        and not (keep_uni_tagging and to_venet and src not in gone_if)):
                    gone_if.add(src)  # an ani or UNI belongs to what it is linked to
        live_venet_vanis = {v for ve, v in cfg.venet_lower.items() if ve not in gone_if}
        emptied = {v for ve, v in cfg.venet_lower.items() if ve in gone_if} - live_venet_vanis
        for tc, ref in cfg.tconts.items():
            if ref in gone_if or ref in emptied:
                gone_tc.add(tc)
        for gp, (iface, tcref) in cfg.gemports.items():
            if iface in gone_if or tcref in gone_tc:
                gone_gem.add(gp)
        changed = n_before != (len(gone_if), len(gone_fwd), len(gone_gem), len(gone_tc),
                               len(gone_link))
    if not (gone_if or gone_fwd or gone_gem or gone_tc or gone_link):
        return []
    return b.delete_entries(sorted(gone_if), sorted(gone_fwd), sorted(gone_gem),
                            sorted(gone_tc), sorted(gone_link))


def _uni_subifs(cfg: _Config, view: OltView, forwarders: set[str]) -> set[str]:
    """The ONU-side tagging sub-interfaces of removed services that no other service needs.

    They hang off the UNI, not off anything the forwarder references, so the closure in
    ``removal`` would only reach them once the whole UNI goes.
    """
    uni_of_venet = {t: src for src, targets in cfg.links.items() for t in targets}
    keep = {(s.olt_subif.lower, s.c_vlan) for s in view.services.values()
            if s.name not in forwarders}
    found: set[str] = set()
    for f in forwarders:
        svc = view.services.get(f)
        if svc is None or (svc.olt_subif.lower, svc.c_vlan) in keep:
            continue
        uni = uni_of_venet.get(svc.olt_subif.lower)
        candidate = f"{uni}.{svc.c_vlan}"
        if uni is not None and candidate in cfg.interfaces:
            found.add(candidate)
    return found
