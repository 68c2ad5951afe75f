"""The OLT's ``display`` outputs, rendered from the device in the MA5800 layouts engineers read.

Each function returns the complete text (lines ending in ``\\n``). They read the device; the one
side effect is :func:`~simulator.cli.oltconfig.service_indexes` numbering services on first sight.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from simulator.cli import oltconfig as oc
from simulator.config import derive as dv
from simulator.devices import Olt, Ont, OntState

RULE = "  " + "-" * 77
WIDE_RULE = "  " + "-" * 88


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime(ts))


def _text(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _dbm(value: float | None) -> str:
    return f"{value:.2f}" if value is not None else "-"


def autofind(olt: Olt) -> str:
    """``display ont autofind all``: ONTs that answered ranging but are not configured."""
    found = sorted(olt.autofind(), key=lambda o: (oc.split_port(o.port) or (0, 0, 0), o.serial))
    if not found:
        return _text(["  Failure: The automatically found ONTs do not exist"])
    lines: list[str] = []
    for n, ont in enumerate(found, 1):
        lines += [
            "   " + "-" * 76,
            f"   Number              : {n}",
            f"   F/S/P               : {ont.port}",
            f"   Ont SN              : {oc.serial_display(ont.serial)}",
            f"   VendorID            : {ont.vendor.upper()}",
            f"   Ont Version         : {ont.model}",
            f"   Ont SoftwareVersion : {ont.firmware}",
            f"   Ont EquipmentID     : {ont.model}",
            f"   Ont autofind time   : {_when(ont.last_change)}",
        ]
    lines += ["   " + "-" * 76, f"   The number of GPON autofind ONT is {len(found)}"]
    return _text(lines)


def physical_ont(olt: Olt, onu: dv.OnuConfig) -> Ont | None:
    """The ONT answering for a registration, if it is on the fibre and ranged against it."""
    ont = olt.onts.get((onu.serial or "").upper())
    if ont is None or ont.vani != onu.vani or ont.port != onu.port:
        return None
    return ont


def states(olt: Olt, onu: dv.OnuConfig) -> tuple[str, str, str]:
    """Run, config and match state of a registration, in the box's words."""
    ont = physical_ont(olt, onu)
    if ont is not None and ont.state == OntState.OPERATIONAL:
        return "online", "normal", "match"
    if ont is not None and ont.state == OntState.RANGING:
        return "online", "config", "initial"
    return "offline", "initial", "initial"


def _down_cause(olt: Olt, onu: dv.OnuConfig) -> str:
    ont = olt.onts.get((onu.serial or "").upper())
    if ont is None or ont.state == OntState.NOT_PRESENT:
        return "-" if ont is None else "power off or not connected"
    if ont.state == OntState.LOS:
        return "LOS(Loss of signal)"
    if ont.state == OntState.DYING_GASP:
        return "dying-gasp"
    return "-"


def _onus_on(olt: Olt, port: str) -> list[dv.OnuConfig]:
    return sorted((o for o in olt.view.onus.values() if o.port == port and o.onu_id is not None),
                  key=lambda o: o.onu_id or 0)


def ont_table(olt: Olt, port: str) -> str:
    """``display ont info F S P all``."""
    onus = _onus_on(olt, port)
    pad = oc.fsp_padded(port)
    lines = [
        RULE,
        "  F/S/P   ONT         SN         Control     Run      Config   Match    Protect",
        "          ID                     flag        state    state    state    side",
        RULE,
    ]
    online = 0
    for onu in onus:
        run, config, match = states(olt, onu)
        online += run == "online"
        lines.append(f"  {pad} {onu.onu_id:>4}  {oc.serial_hex(onu.serial or '?' * 12):<16}  "
                     f"active      {run:<8} {config:<8} {match:<8} no")
    lines += [RULE, "  F/S/P   ONT-ID   Rx power(dBm)  Description", RULE]
    for onu in onus:
        ont = physical_ont(olt, onu)
        rx = _dbm(ont.rx_power) if ont is not None else "-"
        desc = oc.printable(onu.description) or "ONT_NO_DESCRIPTION"
        lines.append(f"  {pad} {onu.onu_id:>6}     {rx:<14} {desc}")
    lines += [RULE, f"  In port {pad} , the total of ONTs are: {len(onus)}, online: {online}",
              RULE]
    return _text(lines)


def ont_detail(olt: Olt, onu: dv.OnuConfig, profiles: tuple[int, int] | None) -> str:
    """``display ont info F S P ID`` and ``display ont info by-sn SN``."""
    run, config, match = states(olt, onu)
    ont = physical_ont(olt, onu)
    line, srv = profiles or (1, 1)
    lines = [
        RULE,
        f"  F/S/P                   : {onu.port}",
        f"  ONT-ID                  : {onu.onu_id}",
        "  Control flag            : active",
        f"  Run state               : {run}",
        f"  Config state            : {config}",
        f"  Match state             : {match}",
        "  Authentic type          : SN-auth",
        f"  SN                      : {oc.serial_display(onu.serial or '?' * 12)}",
        "  Management mode         : OMCI",
        f"  Description             : {oc.printable(onu.description) or 'ONT_NO_DESCRIPTION'}",
        f"  Last down cause         : {_down_cause(olt, onu)}",
        f"  Last up time            : "
        f"{_when(ont.last_change) if ont is not None and run == 'online' else '-'}",
        f"  Rx optical power(dBm)   : {_dbm(ont.rx_power) if ont is not None else '-'}",
        f"  Tx optical power(dBm)   : {_dbm(ont.tx_power) if ont is not None else '-'}",
        f"  Equipment ID            : {ont.model if ont is not None else '-'}",
        f"  Main software version   : {ont.firmware if ont is not None else '-'}",
        f"  Line profile ID         : {line}",
        f"  Service profile ID      : {srv}",
        RULE,
    ]
    return _text(lines)


def service_ports(olt: Olt, port: str | None = None, ont_id: int | None = None) -> str:
    """``display service-port all``, or ``display service-port port F/S/P ont ONT-ID``: the
    service ports of one ONT (``port`` and ``ont_id``)."""
    indexes = oc.service_indexes(olt)
    if port is not None:
        wanted = oc.split_port(port)
        indexes = {i: name for i, name in indexes.items()
                   if (onu := olt.view.onus.get(olt.view.services[name].vani)) is not None
                   and oc.split_port(onu.port) == wanted and onu.onu_id == ont_id}
    if not indexes:
        return _text(["  Failure: No service virtual port can be operated"])
    lines = [
        WIDE_RULE,
        "  INDEX VLAN VLAN     PORT F/ S/ P VPI  VCI   FLOW  FLOW   RX           TX"
        "           STATE",
        "        ID   ATTR     TYPE                    TYPE  PARA",
        WIDE_RULE,
    ]
    by_vani = {o.vani: o for o in olt.onts.values() if o.vani is not None}
    up = 0
    for index in sorted(indexes):
        svc = olt.view.services[indexes[index]]
        onu = olt.view.onus.get(svc.vani)
        fsp = oc.split_port(onu.port if onu else None)
        where = f"{fsp[0]}/{fsp[1]:<2}/{fsp[2]}" if fsp else "-"
        ont_no = str(onu.onu_id) if onu is not None and onu.onu_id is not None else "-"
        gem = str(svc.gemport_id) if svc.gemport_id is not None else "-"
        tdp = (svc.profile or "-")[:12]
        ont = by_vani.get(svc.vani)
        applied = ont is not None and ont.state == OntState.OPERATIONAL and svc.name in ont.applied
        state = "up" if applied else "down"
        up += state == "up"
        lines.append(f"  {index:>5} {svc.s_vlan:>4} common   gpon {where:<7} {ont_no:<4} {gem:<5} "
                     f"vlan  {svc.c_vlan:<6} {tdp:<12} {tdp:<12} {state}")
    lines += [WIDE_RULE,
              f"   Total : {len(indexes)}  (Up/Down :    {up}/{len(indexes) - up})",
              WIDE_RULE]
    return _text(lines)


def vlans(olt: Olt) -> str:
    """``display vlan all``: the network VLANs the uplinks carry."""
    carried: dict[int, int] = {}
    for vids in olt.uplinks.values():
        for v in vids:
            carried[v] = carried.get(v, 0) + 1
    services: dict[int, int] = {}
    for svc in olt.view.services.values():
        services[svc.s_vlan] = services.get(svc.s_vlan, 0) + 1
    lines = [
        RULE,
        "  VLAN  Type     Attribute   STND-Port NUM  SERV-Port NUM  VLAN-Con NUM",
        RULE,
    ]
    for v in sorted(carried):
        lines.append(f"  {v:>4}  smart    common      {carried[v]:>13}  {services.get(v, 0):>13}"
                     "             -")
    lines += [RULE, f"  Total: {len(carried)}"]
    for port, vids in sorted(olt.uplinks.items()):
        lines.append(f"  Uplink {port}: {', '.join(str(v) for v in sorted(vids)) or 'none'}")
    return _text(lines)


def version(olt: Olt) -> str:
    """``display version``."""
    up = int(olt.uptime_ticks() / 100)
    days, rest = divmod(up, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return _text([
        f"  {olt.vendor} Integrated Access Software ({olt.model})",
        f"  VERSION : {olt.firmware}",
        f"  Uptime is {days} day(s), {hours} hour(s), {minutes} minute(s), {seconds} second(s)",
    ])


def service_port_line(olt: Olt, index: int, svc: dv.ServiceConfig) -> str | None:
    """The ``service-port`` command that would create ``svc`` (None if the CLI can't say it)."""
    onu = olt.view.onus.get(svc.vani)
    if onu is None or oc.split_port(onu.port) is None or onu.onu_id is None:
        return None
    gem = svc.gemport_id if svc.gemport_id is not None else 0
    line = (f"service-port {index} vlan {svc.s_vlan} gpon {onu.port} ont {onu.onu_id} "
            f"gemport {gem} multi-service user-vlan {svc.c_vlan} tag-transform "
            f"translate-and-add inner-vlan {svc.c_vlan}")
    if svc.profile:
        name = oc.printable(svc.profile).replace(" ", "?")
        line += f" inbound traffic-table name {name} outbound traffic-table name {name}"
    return line


def current_configuration(olt: Olt, profiles: Mapping[str, tuple[int, int]]) -> str:
    """``display current-configuration``: what is configured, as the commands that make it.

    Rendered from the running configuration, so ONTs and services created through NETCONF show
    up too (services under the index ``olt.service_port_ids`` gives them).
    """
    root = olt.running
    lines = [f"[{olt.model}: {olt.firmware}]", "#", "[global-config]", "  <global-config>",
             f" sysname {olt.name}", "#"]
    by_lower = oc.native_vlans(root)
    boards: dict[str, list[dv.OnuConfig]] = {}
    for onu in olt.view.onus.values():
        fsp = oc.split_port(onu.port)
        if fsp is not None and onu.onu_id is not None and onu.serial:
            boards.setdefault(f"{fsp[0]}/{fsp[1]}", []).append(onu)
    if boards:
        lines.append("[gpon]")
    for board in sorted(boards, key=lambda b: tuple(int(x) for x in b.split("/"))):
        lines += [f"  <gpon-{board}>", f" interface gpon {board}"]
        onus = sorted(boards[board], key=lambda o: (oc.split_port(o.port), o.onu_id))
        for onu in onus:
            fsp = oc.split_port(onu.port)
            assert fsp is not None
            assert onu.serial is not None
            line, srv = profiles.get(onu.vani, (1, 1))
            text = (f" ont add {fsp[2]} {onu.onu_id} sn-auth \"{oc.serial_hex(onu.serial)}\" "
                    f"omci ont-lineprofile-id {line} ont-srvprofile-id {srv}")
            if onu.description:
                text += f" desc \"{oc.printable(onu.description)[:64]}\""
            lines.append(text)
        for onu in onus:
            fsp = oc.split_port(onu.port)
            assert fsp is not None
            natives = oc.uni_native_vlans(root, oc.named_onu(onu), by_lower)
            for eth in sorted(natives):
                for _, vlan in natives[eth][:1]:
                    lines.append(f" ont port native-vlan {fsp[2]} {onu.onu_id} eth {eth} "
                                 f"vlan {vlan}")
        lines += [" quit", "#"]
    indexes = oc.service_indexes(olt)
    sp_lines = [sp for i in sorted(indexes)
                if (sp := service_port_line(olt, i, olt.view.services[indexes[i]])) is not None]
    if sp_lines:
        lines += ["[bbs-config]", "  <bbs-config>", *(" " + s for s in sp_lines), "#"]
    lines.append("return")
    return _text(lines)
