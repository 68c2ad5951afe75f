"""The OLT configuration as the CLI sees it: reads of the BBF tree, and the edits CLI commands make.

The CLI works in Huawei terms (ONT ids, service-port indexes, native VLANs) over a configuration
that is BBF-shaped and may have been written through NETCONF under any names. Everything here
reads the running tree or builds lxml edits; nothing changes the device.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from simulator.config import builder as bd
from simulator.config import derive as dv
from simulator.config.namespaces import GEM, IF, LT, SUBIF, TAG
from simulator.config.removal import removal
from simulator.config.tree import DNode
from simulator.config.validate import tables
from simulator.devices import Olt

E = etree._Element

_SERIAL = re.compile(r"([!-~]{4})-?([0-9A-Fa-f]{8})")
_SERIAL_HEX = re.compile(r"[0-9A-Fa-f]{16}")
DEFAULT_TDP = "tdp-default"
DEFAULT_TDP_BPS = 1_000_000_000
FIRST_ALLOC_ID = 256  # GPON alloc-ids below 256 are the ONUs' default (OMCC) allocations
MAX_ALLOC_ID = 16383


def parse_serial(text: str) -> str:
    """A serial as typed (``SLNK1234ABCD``, ``SLNK-1234ABCD`` or 16 hex digits), normalised.

    Raises ValueError for anything else, so no odd character reaches the configuration.
    """
    if _SERIAL_HEX.fullmatch(text):
        vendor = bytes.fromhex(text[:8])
        if not all(0x21 <= b <= 0x7E and b != 0x22 for b in vendor):
            raise ValueError("the vendor part is not printable ASCII")
        return (vendor.decode("ascii") + text[8:]).upper()
    m = _SERIAL.fullmatch(text)
    if m is None or '"' in m.group(1):
        raise ValueError("not a GPON serial number")
    return (m.group(1) + m.group(2)).upper()


def serial_hex(serial: str) -> str:
    """The 16-hex-digit form the box prints (``534C4E4B1234ABCD``)."""
    return serial[:4].encode("ascii", "replace").hex().upper() + serial[4:].upper()


def serial_display(serial: str) -> str:
    """``534C4E4B1234ABCD (SLNK-1234ABCD)``."""
    return f"{serial_hex(serial)} ({serial[:4]}-{serial[4:].upper()})"


def split_port(port: str | None) -> tuple[int, int, int] | None:
    """``"0/1/0"`` -> (0, 1, 0); None for PON ports not named frame/slot/port."""
    parts = (port or "").split("/")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


def fsp_padded(port: str) -> str:
    """The box's column form, ``0/ 1/0``."""
    f, s, p = split_port(port) or (0, 0, 0)
    return f"{f}/{s:>2}/{p}"


def printable(text: str) -> str:
    """A string from the configuration made safe to print inside a quoted CLI argument."""
    return "".join(c if c.isprintable() and c != '"' else "?" for c in text)


def named_onu(onu: dv.OnuConfig) -> bd.OnuSpec:
    """The registration as configured, keeping its v-ani name (maybe chosen over NETCONF)."""
    assert onu.port is not None
    assert onu.onu_id is not None
    return bd.OnuSpec(onu.port, onu.onu_id, onu.serial or "", onu.description, name=onu.vani)


def find_onu(olt: Olt, port: str, onu_id: int) -> dv.OnuConfig | None:
    for onu in olt.view.onus.values():
        if onu.port == port and onu.onu_id == onu_id:
            return onu
    return None


# ---- reads -----------------------------------------------------------------------------
def interfaces(root: DNode) -> dict[str, DNode]:
    ifs = root.get(IF, "interfaces")
    if ifs is None:
        return {}
    return {e.leaf("name") or "": e for e in ifs.entries(IF, "interface")}


def subif_lower(e: DNode) -> str | None:
    lower = e.get(SUBIF, "subif-lower-layer")
    return lower.leaf("interface") if lower is not None else None


def native_vlan(e: DNode) -> int | None:
    """The VLAN a sub-interface pushes onto untagged frames (``ont port native-vlan``)."""
    ifp = e.get(SUBIF, "inline-frame-processing")
    rules = ifp.get(SUBIF, "ingress-rule") if ifp is not None else None
    for rule in rules.entries(SUBIF, "rule") if rules is not None else ():
        fm = rule.get(SUBIF, "flexible-match")
        mc = fm.get(TAG, "match-criteria") if fm is not None else None
        rw = rule.get(SUBIF, "ingress-rewrite")
        if mc is None or mc.get(TAG, "untagged") is None or rw is None:
            continue
        for push in rw.entries(TAG, "push-tag"):
            tag = push.get(TAG, "dot1q-tag")
            vlan = tag.leaf("vlan-id") if tag is not None else None
            if vlan is not None:
                return int(vlan)
    return None


def native_vlans(root: DNode) -> dict[str, list[tuple[str, int]]]:
    """Lower interface -> (sub-interface, native VLAN) for every untagged-to-VLAN rule."""
    out: dict[str, list[tuple[str, int]]] = {}
    for name, e in interfaces(root).items():
        lower = subif_lower(e)
        vlan = native_vlan(e) if lower is not None else None
        if lower is not None and vlan is not None:
            out.setdefault(lower, []).append((name, vlan))
    return out


def uni_native_vlans(root: DNode, onu: bd.OnuSpec,
                     by_lower: dict[str, list[tuple[str, int]]] | None = None,
                     ) -> dict[int, list[tuple[str, int]]]:
    """Ethernet port -> (sub-interface, native VLAN) on the UNIs the CLI names for this ONT.

    Pass ``by_lower`` (from :func:`native_vlans`) when asking for many ONTs at once.
    """
    lowers = native_vlans(root) if by_lower is None else by_lower
    return {n: lowers[onu.uni(n)] for n in range(1, 5) if onu.uni(n) in lowers}


def links(root: DNode) -> dict[str, list[str]]:
    """from-interface -> to-interfaces of the link table."""
    lt = root.get(LT, "link-table")
    out: dict[str, list[str]] = {}
    for link in lt.entries(LT, "link-table") if lt is not None else ():
        out[link.leaf("from-interface") or ""] = [t.value or "" for t in
                                                  link.entries(LT, "to-interface")]
    return out


@dataclass(frozen=True, slots=True)
class Gemport:
    name: str
    gemport_id: int | None
    interface: str
    tcont: str


@dataclass(frozen=True, slots=True)
class Tcont:
    name: str
    alloc_id: int | None
    vani: str
    profile: str


def gemports(root: DNode) -> list[Gemport]:
    gem = root.get(GEM, "xpongemtcont")
    gps = gem.get(GEM, "gemports") if gem is not None else None
    out = []
    for g in gps.entries(GEM, "gemport") if gps is not None else ():
        gid = g.leaf("gemport-id")
        out.append(Gemport(g.leaf("name") or "", int(gid) if gid is not None else None,
                           g.leaf("interface") or "", g.leaf("tcont-ref") or ""))
    return out


def tconts(root: DNode) -> dict[str, Tcont]:
    gem = root.get(GEM, "xpongemtcont")
    tcs = gem.get(GEM, "tconts") if gem is not None else None
    out = {}
    for t in tcs.entries(GEM, "tcont") if tcs is not None else ():
        alloc = t.leaf("alloc-id")
        name = t.leaf("name") or ""
        out[name] = Tcont(name, int(alloc) if alloc is not None else None,
                          t.leaf("interface-reference") or "",
                          t.leaf("traffic-descriptor-profile-ref") or "")
    return out


def tdp_names(root: DNode) -> set[str]:
    return tables(root)["tdp"]


def free_alloc_id(root: DNode) -> int | None:
    used = {t.alloc_id for t in tconts(root).values()}
    return next((a for a in range(FIRST_ALLOC_ID, MAX_ALLOC_ID + 1) if a not in used), None)


# ---- edits -----------------------------------------------------------------------------
def delete_onu(root: DNode, view: dv.OltView, onu: dv.OnuConfig) -> list[E]:
    """Remove an ONT registration and everything of it, its ports' native VLANs included.

    The UNIs the CLI names for this ONT go too: ``ont port native-vlan`` creates them without
    any service, so nothing else would lead the removal to them.
    """
    ifs = interfaces(root)
    unis: frozenset[str] = frozenset()
    if onu.port is not None and onu.onu_id is not None:
        spec = named_onu(onu)
        unis = frozenset(spec.uni(n) for n in range(1, 5) if spec.uni(n) in ifs)
    return removal(root, view, {onu.vani}, set(), interfaces=unis)


def delete_service(root: DNode, view: dv.OltView, svc: dv.ServiceConfig) -> list[E]:
    """Remove one service-port and whatever only it used; the port's native VLAN stays."""
    return removal(root, view, set(), {svc.name}, keep_uni_tagging=True)


def service_indexes(olt: Olt) -> dict[int, str]:
    """Index -> forwarder for every service now configured, numbering new ones on first sight.

    Services may come from NETCONF under any name; each keeps the index it first got (held in
    ``olt.service_port_ids``) so the CLI shows a stable ``service-port`` number for it.
    """
    ids = olt.service_port_ids
    used = set(ids.values())
    for name in sorted(olt.view.services):
        if name not in ids:
            index = next(i for i in range(len(used) + 1) if i not in used)
            ids[name] = index
            used.add(index)
    return {ids[name]: name for name in olt.view.services}
