"""Row operations of the PONCTL-MIB tables turned into edits of the OLT's BBF configuration.

Pure functions over the running tree and its derived view: they return lxml elements for one
``edit-config``, so SNMP rows land in the same running configuration that NETCONF and the CLI
read and write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from lxml import etree

from simulator.config import builder as b
from simulator.config.derive import OltView, OnuConfig
from simulator.config.namespaces import GEM, IF, L2F, LT, NC, VANI
from simulator.config.tree import DNode

E = etree._Element
ALLOC_ID_FIRST = 1024  # below are the default alloc-ids (one per onu-id); keep clear of them
ALLOC_ID_LAST = 16383


class Refused(Exception):
    """A row operation the configuration cannot take, with the SNMP error status to report."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class _Registered(b.OnuSpec):
    """An ONU as configured, keeping its v-ani name (NETCONF may have chosen another one)."""

    vani_name: str = ""

    @property
    def vani(self) -> str:
        return self.vani_name or f"ont-{self.port}-{self.onu_id}"


def onu_spec(onu: OnuConfig) -> b.OnuSpec:
    if onu.port is None or onu.onu_id is None or onu.serial is None:
        raise Refused("inconsistentValue", f"v-ani {onu.vani!r} lacks a PON port, onu-id or serial")
    return _Registered(onu.port, onu.onu_id, onu.serial, onu.description, vani_name=onu.vani)


def _nsmap(m: dict[str | None, str]) -> dict[str, str]:
    # lxml takes None as the default-namespace key; its stubs do not say so.
    return cast(dict[str, str], m)


def create_onu(port: str, onu_id: int, serial: str, description: str) -> list[E]:
    return b.onu_registration(b.OnuSpec(port, onu_id, serial, description))


def update_onu(onu: OnuConfig, serial: str | None, description: str | None) -> list[E]:
    """Change the serial and/or description of a registration in place (merge)."""
    ifs = etree.Element(f"{{{IF}}}interfaces", nsmap=_nsmap({None: IF, "nc": NC}))
    entry = etree.SubElement(ifs, f"{{{IF}}}interface")
    etree.SubElement(entry, f"{{{IF}}}name").text = onu.vani
    if description is not None:
        d = etree.SubElement(entry, f"{{{IF}}}description")
        if description:
            d.text = description
        else:
            d.set(f"{{{NC}}}operation", "remove")
    if serial is not None:
        va = etree.SubElement(entry, f"{{{VANI}}}v-ani", nsmap=_nsmap({None: VANI}))
        etree.SubElement(va, f"{{{VANI}}}expected-serial-number").text = serial
    return [ifs]


@dataclass(frozen=True, slots=True)
class ServiceRequest:
    uni: int
    c_vlan: int
    s_vlan: int
    profile: str
    gemport: int


def uplink_for(uplinks: dict[str, frozenset[int]], s_vlan: int) -> str:
    """The first uplink (in the OLT's order) that carries ``s_vlan``."""
    for name, vlans in uplinks.items():
        if s_vlan in vlans:
            return name
    carried = ", ".join(f"{u}: {sorted(v)}" for u, v in uplinks.items()) or "no uplinks"
    raise Refused("inconsistentValue",
                  f"network service missing: no uplink carries S-VLAN {s_vlan} ({carried})")


def _tconts(root: DNode) -> list[DNode]:
    tcs = root.path(GEM, "xpongemtcont", "tconts")
    return list(tcs.entries(GEM, "tcont")) if tcs is not None else []


def alloc_id_for(root: DNode, tcont_name: str, taken: set[int]) -> int:
    """The alloc-id of the ONU's T-CONT if it exists, else the lowest one free on the OLT.

    ``taken`` holds alloc-ids already handed out by the edit being built.
    """
    used = set(taken)
    for tc in _tconts(root):
        value = tc.leaf("alloc-id")
        if tc.leaf("name") == tcont_name and value is not None:
            return int(value)
        if value is not None:
            used.add(int(value))
    for candidate in range(ALLOC_ID_FIRST, ALLOC_ID_LAST + 1):
        if candidate not in used:
            return candidate
    raise Refused("resourceUnavailable", "no free alloc-id left on this OLT")


def forwarder_name(onu: OnuConfig, uni: int, c_vlan: int) -> str:
    spec = onu_spec(onu)
    return b.ServiceSpec(spec, uni, c_vlan, 0, "", 0, 0, "").forwarder


def create_service(uplinks: dict[str, frozenset[int]], onu: OnuConfig, req: ServiceRequest,
                   alloc_id: int, name: str | None = None) -> list[E]:
    """The ONU-side tagging and the OLT side (v-enet, GEM, T-CONT, forwarder) of a service.

    The uplink is the first one that carries the S-VLAN; without one the service would go
    nowhere, so it is refused before anything is built.
    """
    spec = onu_spec(onu)
    uplink = uplink_for(uplinks, req.s_vlan)
    svc = b.ServiceSpec(spec, req.uni, req.c_vlan, req.s_vlan, uplink, req.gemport, alloc_id,
                        req.profile, name)
    return b.uni_tagging(spec, req.uni, req.c_vlan) + b.olt_service(svc)


# ---- removal --------------------------------------------------------------------------------

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


def removal(root: DNode, view: OltView, vanis: set[str], forwarders: set[str]) -> list[E]:
    """An edit that removes ONU registrations and services, and everything left dangling.

    Removing a v-ani takes with it whatever points at it, transitively: its ani (linked to
    it), v-enets, their sub-interfaces, GEM ports, T-CONTs, the UNIs linked to the v-enets and
    the forwarders. Removing a single service (a forwarder) removes its sub-interfaces unless
    another forwarder uses them, then its v-enet (and UNI, GEM port) once no service is left
    on it, and the ONU's T-CONTs once the ONU has no v-enet left.
    """
    cfg = _Config.read(root)
    gone_if: set[str] = set(vanis) & set(cfg.interfaces)
    gone_fwd: set[str] = set(forwarders) & set(cfg.forwarders)
    gone_gem: set[str] = set()
    gone_tc: set[str] = set()
    gone_link: set[str] = set()
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
                if targets & gone_if and src in cfg.interfaces:
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


def services_of(view: OltView, vani: str) -> list[str]:
    return sorted(s.name for s in view.services.values() if s.vani == vani)

