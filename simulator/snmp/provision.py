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
from simulator.config.namespaces import GEM, IF, NC, VANI
from simulator.config.removal import first_uplink
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


def onu_spec(onu: OnuConfig) -> b.OnuSpec:
    if onu.port is None or onu.onu_id is None or onu.serial is None:
        raise Refused("inconsistentValue", f"v-ani {onu.vani!r} lacks a PON port, onu-id or serial")
    return b.OnuSpec(onu.port, onu.onu_id, onu.serial, onu.description, name=onu.vani)


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
    found = first_uplink(uplinks, s_vlan)
    if found is not None:
        return found
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

def services_of(view: OltView, vani: str) -> list[str]:
    return sorted(s.name for s in view.services.values() if s.vani == vani)

