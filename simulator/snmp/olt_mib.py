"""The OLT's PONCTL-MIB: PON ports, ONTs, services, autofind, uplinks; and SETs on them.

Rows come from the running configuration (``olt.view``) and the ONTs' live state. The ONT and
service tables are re-indexed only when ``olt.view`` is replaced (every configuration change
replaces it) or a createAndWait row changes; the autofind table when an ONT event says so.

A SET PDU becomes one ``edit-config`` on running, through the OLT's own checks (validation,
locks, the refuse_commit fault): all of its varbinds apply, or none do.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from lxml import etree

from simulator.config.derive import OnuConfig, ServiceConfig
from simulator.config.errors import RpcError
from simulator.config.removal import removal
from simulator.config.schema import SERIAL
from simulator.devices import DeviceEvent, Olt, Ont, OntState
from simulator.snmp import oids as o
from simulator.snmp import provision as pv
from simulator.snmp.smi import (
    MibView,
    Oid,
    SetError,
    Syntax,
    Table,
    Value,
    WriteItem,
    gauge,
    integer,
    octets,
    printable,
)
from simulator.snmp.system import DeviceMib, Interface

log = logging.getLogger(__name__)

MAX_ONU_ID = 1020
MAX_SERVICES = 64
MAX_AUTOFIND = 1024

_OPER = {
    OntState.NOT_PRESENT: o.OntOperStatus.NOT_PRESENT,
    OntState.UNCLAIMED: o.OntOperStatus.NOT_PRESENT,
    OntState.RANGING: o.OntOperStatus.RANGING,
    OntState.OPERATIONAL: o.OntOperStatus.OPERATIONAL,
    OntState.LOS: o.OntOperStatus.LOS,
    OntState.DYING_GASP: o.OntOperStatus.DYING_GASP,
}
_ONT_WRITABLE = {o.OntColumn.SERIAL, o.OntColumn.DESCRIPTION, o.OntColumn.ADMIN_STATUS,
                 o.OntColumn.ROW_STATUS}
_SVC_WRITABLE = {o.ServiceColumn.UNI, o.ServiceColumn.C_VLAN, o.ServiceColumn.S_VLAN,
                 o.ServiceColumn.PROFILE, o.ServiceColumn.GEM_PORT, o.ServiceColumn.ROW_STATUS}
_SVC_REQUIRED = (o.ServiceColumn.UNI, o.ServiceColumn.C_VLAN, o.ServiceColumn.S_VLAN,
                 o.ServiceColumn.PROFILE, o.ServiceColumn.GEM_PORT)


def oper_status(state: OntState) -> int:
    return int(_OPER[state])


@dataclass(slots=True)
class _PendingOnt:
    """An ONT row created with createAndWait: held here, not configured, until active(1)."""

    serial: str | None = None
    description: str = ""


@dataclass(slots=True)
class _PendingService:
    values: dict[int, int | str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return all(c in self.values for c in _SVC_REQUIRED)


@dataclass(frozen=True, slots=True)
class _OntRow:
    onu: OnuConfig | None
    pending: _PendingOnt | None = None


@dataclass(frozen=True, slots=True)
class _ServiceRow:
    onu: OnuConfig | None
    svc: ServiceConfig | None
    pending: _PendingService | None = None


@dataclass(slots=True)
class _Plan:
    """What one SET PDU does, worked out before anything is applied."""

    edits: list[etree._Element] = field(default_factory=list)
    remove_vanis: set[str] = field(default_factory=set)
    remove_forwarders: set[str] = field(default_factory=set)
    created_onus: dict[Oid, OnuConfig] = field(default_factory=dict)
    destroyed_onus: set[Oid] = field(default_factory=set)
    new_forwarders: dict[str, Oid] = field(default_factory=dict)  # forwarder -> service row
    new_services: list[tuple[str, pv.ServiceRequest]] = field(default_factory=list)
    allocs: dict[str, int] = field(default_factory=dict)  # T-CONT name -> alloc-id
    pending_onts: dict[Oid, _PendingOnt | None] = field(default_factory=dict)  # None: drop
    pending_services: dict[Oid, _PendingService | None] = field(default_factory=dict)
    blame: int | None = None  # the varbind an edit-config refusal is reported against

    def touch(self, index: int) -> None:
        if self.blame is None:
            self.blame = index


Columns = dict[int, tuple[int, int | str]]  # column -> (varbind index, checked value)


class OltMib(DeviceMib):
    """PONCTL-MIB of one OLT (plus system and IF-MIB)."""

    def __init__(self, olt: Olt, session: int) -> None:
        super().__init__(olt, f"{olt.vendor} {olt.model} OLT, firmware {olt.firmware} "
                              "(ponctl simulator)", services=2)
        self.olt = olt
        self.session = session
        self.port_index = {p: i + 1 for i, p in enumerate(olt.pon_ports)}
        self.port_name = {i: p for p, i in self.port_index.items()}
        self.uplink_index = {u: j + 1 for j, u in enumerate(olt.uplinks)}
        n = len(olt.pon_ports)
        self.set_interfaces(
            [Interface(i, f"ct-{p}", o.IF_TYPE_GPON, lambda: True)
             for p, i in self.port_index.items()]
            + [Interface(n + j, f"uplink-{u}", o.IF_TYPE_ETHERNET, lambda: True)
               for u, j in self.uplink_index.items()])
        self.pon_table: Table[str] = Table(o.PON_PORT_ENTRY, tuple(o.PonPortColumn),
                                           self._pon_cell)
        self.pon_table.load({(i,): p for p, i in self.port_index.items()})
        self.ont_table: Table[_OntRow] = Table(o.ONT_ENTRY, tuple(o.OntColumn), self._ont_cell)
        self.svc_table: Table[_ServiceRow] = Table(o.SERVICE_ENTRY, tuple(o.ServiceColumn),
                                                   self._svc_cell)
        self.af_table: Table[str] = Table(o.AUTOFIND_ENTRY, tuple(o.AutofindColumn),
                                          self._af_cell)
        uplinks: Table[str] = Table(o.UPLINK_ENTRY, (o.UPLINK_NAME,),
                                    lambda _c, name: octets(name))
        uplinks.load({(j,): u for u, j in self.uplink_index.items()})
        vlans: Table[int] = Table(o.UPLINK_VLAN_ENTRY, (o.UPLINK_VLAN_STATUS,),
                                  lambda _c, _v: integer(1))
        vlans.load({(self.uplink_index[u], v): v for u, vs in olt.uplinks.items() for v in vs})
        self.view = MibView([self.system, self.if_table, self.pon_table, self.ont_table,
                             self.svc_table, self.af_table, uplinks, vlans])
        self.pending_onts: dict[Oid, _PendingOnt] = {}
        self.pending_services: dict[Oid, _PendingService] = {}
        # vani -> forwarder -> ponctlServiceIndex; kept across rebuilds so indexes are stable.
        self.service_index: dict[str, dict[str, int]] = {}
        self.onts_per_port: Counter[int] = Counter()
        self._built_view: object = None
        self._pending_dirty = True
        # serial -> (port index, autofind index), maintained from ONT events
        self.autofind: dict[str, Oid] = {}
        self._af_dirty = True
        for ont in olt.autofind():
            self._discovered(ont.serial, ont.port)

    # ---- structure ---------------------------------------------------------------------
    def refresh(self) -> None:
        view = self.olt.view
        if view is not self._built_view or self._pending_dirty:
            self._rebuild_config()
            self._built_view = view
            self._pending_dirty = False
        if self._af_dirty:
            self.af_table.load({idx: serial for serial, idx in self.autofind.items()})
            self._af_dirty = False

    def _rebuild_config(self) -> None:
        view = self.olt.view
        onts: dict[Oid, _OntRow] = {}
        for onu in view.onus.values():
            pidx = self.port_index.get(onu.port or "")
            if pidx is None or onu.onu_id is None or onu.serial is None:
                continue
            onts.setdefault((pidx, onu.onu_id), _OntRow(onu))
        self.onts_per_port = Counter(k[0] for k in onts)
        # A row waiting for active(1) is dropped once another face configures that ONU, and a
        # waiting service once its ONT row is gone (RFC 2579 lets agents reap such rows).
        self.pending_onts = {k: p for k, p in self.pending_onts.items() if k not in onts}
        for key, p in self.pending_onts.items():
            onts[key] = _OntRow(None, p)
        self.pending_services = {k: p for k, p in self.pending_services.items()
                                 if k[:2] in onts}
        by_vani: dict[str, list[ServiceConfig]] = {}
        for svc in view.services.values():
            by_vani.setdefault(svc.vani, []).append(svc)
        self.service_index = {v: m for v, m in self.service_index.items() if v in view.onus}
        svcs: dict[Oid, _ServiceRow] = {}
        for key, row in onts.items():
            if row.onu is None:
                continue
            reserved = {k[2] for k in self.pending_services if k[:2] == key}
            found = by_vani.get(row.onu.vani, [])
            for name, index in self._indexes(row.onu.vani, found, reserved).items():
                svcs[(*key, index)] = _ServiceRow(row.onu, view.services[name])
        self.pending_services = {k: p for k, p in self.pending_services.items()
                                 if k not in svcs}
        for key, sp in self.pending_services.items():
            owner = onts.get(key[:2])
            svcs[key] = _ServiceRow(owner.onu if owner else None, None, sp)
        self.ont_table.load(onts)
        self.svc_table.load(svcs)

    def _indexes(self, vani: str, services: list[ServiceConfig],
                 reserved: set[int]) -> dict[str, int]:
        """Stable ponctlServiceIndex values for an ONU's services (lowest free for new ones)."""
        if not services and vani not in self.service_index:
            return {}
        known = self.service_index.setdefault(vani, {})
        names = {s.name for s in services}
        for name in [n for n in known if n not in names]:
            del known[name]
        used = set(known.values()) | reserved
        for name in sorted(names - known.keys()):
            free = next((i for i in range(1, MAX_SERVICES + 1) if i not in used), None)
            if free is None:
                log.warning("%s: v-ani %s has more than %d services; %s is not in "
                            "ponctlServiceTable", self.olt.name, vani, MAX_SERVICES, name)
                continue
            known[name] = free
            used.add(free)
        return {n: i for n, i in known.items() if i not in reserved}

    # ---- events ------------------------------------------------------------------------
    def on_event(self, event: DeviceEvent) -> None:
        if event.serial is None:
            return
        if event.kind == "ont-discovered" and event.port is not None:
            self._discovered(event.serial, event.port)
        elif event.kind == "ont-state" and event.serial in self.autofind:
            del self.autofind[event.serial]
            self._af_dirty = True

    def _discovered(self, serial: str, port: str) -> None:
        pidx = self.port_index.get(port)
        if pidx is None or serial in self.autofind:
            return
        used = {idx[1] for idx in self.autofind.values() if idx[0] == pidx}
        free = next((i for i in range(1, MAX_AUTOFIND + 1) if i not in used), None)
        if free is not None:
            self.autofind[serial] = (pidx, free)
            self._af_dirty = True

    # ---- cells -------------------------------------------------------------------------
    def _ont_of(self, onu: OnuConfig) -> Ont | None:
        """The ONT physically on this registration's port with its serial, if one was seen."""
        ont = self.olt.onts.get((onu.serial or "").upper())
        return ont if ont is not None and ont.port == onu.port else None

    def _pon_cell(self, column: int, port: str) -> Value | None:
        if column == o.PonPortColumn.NAME:
            return octets(port)
        if column == o.PonPortColumn.OPER_STATUS:
            return integer(o.UP)
        if column == o.PonPortColumn.ONT_COUNT:
            return gauge(self.onts_per_port.get(self.port_index[port], 0))
        return None

    def _ont_cell(self, column: int, row: _OntRow) -> Value | None:
        onu, pending = row.onu, row.pending
        if pending is not None:
            return self._pending_ont_cell(column, pending)
        assert onu is not None
        ont = self._ont_of(onu)
        if column == o.OntColumn.SERIAL:
            return octets(onu.serial or "")
        if column == o.OntColumn.DESCRIPTION:
            return octets(onu.description)
        if column == o.OntColumn.ADMIN_STATUS:
            return integer(o.UP)
        if column == o.OntColumn.OPER_STATUS:
            return integer(oper_status(ont.state) if ont is not None
                           else o.OntOperStatus.NOT_PRESENT)
        if column in (o.OntColumn.RX_POWER, o.OntColumn.TX_POWER):
            # 0.01 dBm units; 0 while there is no light (the MIB: meaningful only if up).
            dbm = None if ont is None else (ont.rx_power if column == o.OntColumn.RX_POWER
                                            else ont.tx_power)
            return integer(round(dbm * 100) if dbm is not None else 0)
        if column == o.OntColumn.MODEL:
            return octets(ont.model if ont is not None else "")
        if column == o.OntColumn.FIRMWARE:
            return octets(ont.firmware if ont is not None else "")
        if column == o.OntColumn.ROW_STATUS:
            return integer(o.RowStatus.ACTIVE)
        return None

    @staticmethod
    def _pending_ont_cell(column: int, p: _PendingOnt) -> Value | None:
        if column == o.OntColumn.SERIAL:
            return octets(p.serial) if p.serial is not None else None
        if column == o.OntColumn.DESCRIPTION:
            return octets(p.description)
        if column == o.OntColumn.ADMIN_STATUS:
            return integer(o.UP)
        if column == o.OntColumn.OPER_STATUS:
            return integer(o.OntOperStatus.NOT_PRESENT)
        if column in (o.OntColumn.RX_POWER, o.OntColumn.TX_POWER):
            return integer(0)
        if column in (o.OntColumn.MODEL, o.OntColumn.FIRMWARE):
            return octets("")
        if column == o.OntColumn.ROW_STATUS:
            return integer(o.RowStatus.NOT_IN_SERVICE if p.serial is not None
                           else o.RowStatus.NOT_READY)
        return None

    def _svc_cell(self, column: int, row: _ServiceRow) -> Value | None:
        if row.pending is not None:
            v = row.pending.values.get(column)
            if column == o.ServiceColumn.APPLIED:
                return integer(o.FALSE)
            if column == o.ServiceColumn.ROW_STATUS:
                return integer(o.RowStatus.NOT_IN_SERVICE if row.pending.complete
                               else o.RowStatus.NOT_READY)
            if v is None:
                return None
            return octets(v) if isinstance(v, str) else Value(Syntax.UNSIGNED, v)
        svc, onu = row.svc, row.onu
        assert svc is not None
        assert onu is not None
        if column == o.ServiceColumn.UNI:
            return Value(Syntax.UNSIGNED, svc.uni)
        if column == o.ServiceColumn.C_VLAN:
            return Value(Syntax.UNSIGNED, svc.c_vlan)
        if column == o.ServiceColumn.S_VLAN:
            return Value(Syntax.UNSIGNED, svc.s_vlan)
        if column == o.ServiceColumn.PROFILE:
            return octets(svc.profile or "")
        if column == o.ServiceColumn.GEM_PORT:
            return Value(Syntax.UNSIGNED, svc.gemport_id or 0)
        if column == o.ServiceColumn.APPLIED:
            ont = self._ont_of(onu)
            applied = (ont is not None and ont.vani == onu.vani and svc.name in ont.applied)
            return integer(o.TRUE if applied else o.FALSE)
        if column == o.ServiceColumn.ROW_STATUS:
            return integer(o.RowStatus.ACTIVE)
        return None

    def _af_cell(self, column: int, serial: str) -> Value | None:
        ont = self.olt.onts.get(serial)
        if ont is None:
            return None
        if column == o.AutofindColumn.SERIAL:
            return octets(ont.serial)
        if column == o.AutofindColumn.MODEL:
            return octets(ont.model)
        if column == o.AutofindColumn.FIRMWARE:
            return octets(ont.firmware)
        return None

    def ont_index(self, serial: str, port: str) -> Oid | None:
        """The (port index, onu-id) row of the registration expecting ``serial`` on ``port``."""
        onu = self.olt.view.onu_by_serial(serial)
        pidx = self.port_index.get(port)
        if onu is None or onu.onu_id is None or onu.port != port or pidx is None:
            return None
        return (pidx, onu.onu_id)

    # ---- SET ---------------------------------------------------------------------------
    def write(self, items: list[WriteItem]) -> None:
        self.refresh()
        onts: dict[Oid, Columns] = {}
        services: dict[Oid, Columns] = {}
        for i, item in enumerate(items):
            table, column, index = self._target(item.oid, i)
            value = self._checked(table, column, item, i)
            (onts if table == "ont" else services).setdefault(index, {})[column] = (i, value)
        plan = _Plan()
        for key, cols in onts.items():
            self._plan_ont(plan, key, cols)
        for key, cols in services.items():
            self._plan_service(plan, key, cols)
        self._apply(plan)

    def _target(self, oid: Oid, i: int) -> tuple[str, int, Oid]:
        for table, entry, writable, n_index in (("ont", o.ONT_ENTRY, _ONT_WRITABLE, 2),
                                                 ("svc", o.SERVICE_ENTRY, _SVC_WRITABLE, 3)):
            n = len(entry)
            if oid[:n] != entry or len(oid) <= n or oid[n] not in writable:
                continue
            index = oid[n + 1:]
            if len(index) != n_index or not self._index_ok(index):
                raise SetError("noCreation", i, f"no row {'.'.join(map(str, index))} can exist "
                                                "in this table")
            return table, oid[n], index
        raise SetError("notWritable", i, "not a writable object")

    def _index_ok(self, index: Oid) -> bool:
        ok = index[0] in self.port_name and 0 <= index[1] <= MAX_ONU_ID
        return ok and (len(index) == 2 or 1 <= index[2] <= MAX_SERVICES)

    @staticmethod
    def _checked(table: str, column: int, item: WriteItem, i: int) -> int | str:
        """The varbind's value, type- and range-checked against the column's syntax."""
        octet_cols = ({o.OntColumn.SERIAL, o.OntColumn.DESCRIPTION} if table == "ont"
                      else {o.ServiceColumn.PROFILE})
        row_status = o.OntColumn.ROW_STATUS if table == "ont" else o.ServiceColumn.ROW_STATUS
        if column in octet_cols:
            if item.syntax != Syntax.OCTETS or not isinstance(item.data, bytes):
                raise SetError("wrongType", i, "an OCTET STRING is expected")
            if table == "ont" and column == o.OntColumn.SERIAL:
                serial = printable(item.data, "ponctlOntSerial", i, min_len=12, max_len=12)
                assert SERIAL.pattern is not None
                if not SERIAL.pattern.fullmatch(serial):
                    raise SetError("wrongValue", i, "a serial is 4 vendor characters and 8 "
                                                    "hexadecimal digits")
                return serial
            if table == "ont":
                return printable(item.data, "ponctlOntDescription", i, max_len=64)
            return printable(item.data, "ponctlServiceProfile", i, min_len=1, max_len=32)
        enumerated = column == row_status or (table == "ont"
                                               and column == o.OntColumn.ADMIN_STATUS)
        expected = Syntax.INTEGER if enumerated else Syntax.UNSIGNED
        if item.syntax != expected or not isinstance(item.data, int):
            raise SetError("wrongType", i, f"{expected.value} is expected")
        n = item.data
        if column == row_status:
            if n not in tuple(o.RowStatus) or n == o.RowStatus.NOT_READY:
                raise SetError("wrongValue", i, f"{n} is not a RowStatus one can set")
            return n
        if table == "ont":  # ponctlOntAdminStatus
            if n != o.UP:
                raise SetError("wrongValue", i, "this OLT cannot hold an ONT administratively "
                                                "down; only up(1) is accepted")
            return n
        lo, hi = {o.ServiceColumn.UNI: (1, 4), o.ServiceColumn.C_VLAN: (1, 4094),
                  o.ServiceColumn.S_VLAN: (1, 4094), o.ServiceColumn.GEM_PORT: (0, 4095)}[
                      o.ServiceColumn(column)]
        if not lo <= n <= hi:
            raise SetError("wrongValue", i, f"{n} is out of range {lo}..{hi}")
        return n

    def _plan_ont(self, plan: _Plan, key: Oid, cols: Columns) -> None:
        row = self.ont_table.rows.get(key)
        onu = row.onu if row is not None else None
        pending = self.pending_onts.get(key)
        first = min(i for i, _ in cols.values())
        rs_i, rs = cols.get(o.OntColumn.ROW_STATUS, (first, None))
        serial = _str(cols.get(o.OntColumn.SERIAL))
        description = _str(cols.get(o.OntColumn.DESCRIPTION))
        port, onu_id = self.port_name[key[0]], key[1]
        where = f"ONT row {key[0]}.{key[1]}"
        if rs == o.RowStatus.DESTROY:
            if onu is not None:
                plan.remove_vanis.add(onu.vani)
                plan.destroyed_onus.add(key)
                plan.touch(rs_i)
            if pending is not None:
                plan.pending_onts[key] = None
            return
        if rs in (o.RowStatus.CREATE_AND_GO, o.RowStatus.CREATE_AND_WAIT):
            if onu is not None or pending is not None:
                raise SetError("inconsistentValue", rs_i, f"{where} already exists")
            if rs == o.RowStatus.CREATE_AND_WAIT:
                plan.pending_onts[key] = _PendingOnt(serial, description or "")
                return
            pending = _PendingOnt()
        if onu is not None:  # modify an active row (also with active(1) given again)
            if rs == o.RowStatus.NOT_IN_SERVICE:
                raise SetError("wrongValue", rs_i, f"{where} cannot be taken out of service")
            if serial is not None or description is not None:
                plan.edits += pv.update_onu(onu, serial, description)
                plan.touch(first)
            return
        if pending is None:
            if rs is None:
                raise SetError("noCreation", first, f"{where} does not exist; create it with "
                                                    "ponctlOntRowStatus")
            raise SetError("inconsistentValue", rs_i, f"{where} does not exist")
        merged = _PendingOnt(serial if serial is not None else pending.serial,
                             description if description is not None else pending.description)
        if rs in (o.RowStatus.ACTIVE, o.RowStatus.CREATE_AND_GO):
            if merged.serial is None:
                raise SetError("inconsistentValue", rs_i,
                               f"{where}: ponctlOntSerial must be set before the row is active")
            if f"ont-{port}-{onu_id}" in self.olt.view.onus:  # named so by another face
                raise SetError("inconsistentValue", rs_i, f"v-ani ont-{port}-{onu_id} exists "
                                                          "with another PON port or onu-id")
            plan.edits += pv.create_onu(port, onu_id, merged.serial, merged.description)
            plan.created_onus[key] = OnuConfig(f"ont-{port}-{onu_id}", merged.serial, onu_id,
                                               port, merged.description)
            plan.pending_onts[key] = None
            plan.touch(rs_i)
        else:
            plan.pending_onts[key] = merged

    def _onu_for(self, plan: _Plan, key: Oid) -> OnuConfig | None:
        if key in plan.destroyed_onus:
            return None
        row = self.ont_table.rows.get(key)
        if row is not None and row.onu is not None:
            return row.onu
        return plan.created_onus.get(key)

    def _plan_service(self, plan: _Plan, key: Oid, cols: Columns) -> None:
        row = self.svc_table.rows.get(key)
        svc = row.svc if row is not None else None
        pending = self.pending_services.get(key)
        first = min(i for i, _ in cols.values())
        rs_i, rs = cols.get(o.ServiceColumn.ROW_STATUS, (first, None))
        given = {c: v for c, (_, v) in cols.items() if c != o.ServiceColumn.ROW_STATUS}
        where = f"service row {'.'.join(map(str, key))}"
        onu = self._onu_for(plan, key[:2])
        if rs == o.RowStatus.DESTROY:
            if svc is not None:
                plan.remove_forwarders.add(svc.name)
                plan.touch(rs_i)
            if pending is not None:
                plan.pending_services[key] = None
            return
        if rs in (o.RowStatus.CREATE_AND_GO, o.RowStatus.CREATE_AND_WAIT):
            if svc is not None or pending is not None:
                raise SetError("inconsistentValue", rs_i, f"{where} already exists")
            if onu is None:
                raise SetError("inconsistentValue", rs_i, f"ONT row {key[0]}.{key[1]} does "
                                                          "not exist (or is not active)")
            if rs == o.RowStatus.CREATE_AND_WAIT:
                plan.pending_services[key] = _PendingService(dict(given))
                return
            pending = _PendingService()
        if svc is not None:  # modify an active row: the service is rebuilt with new values
            if rs == o.RowStatus.NOT_IN_SERVICE:
                raise SetError("wrongValue", rs_i, f"{where} cannot be taken out of service")
            if given and onu is not None:
                current: dict[int, int | str] = {
                    o.ServiceColumn.UNI: svc.uni, o.ServiceColumn.C_VLAN: svc.c_vlan,
                    o.ServiceColumn.S_VLAN: svc.s_vlan}
                if svc.profile is not None:
                    current[o.ServiceColumn.PROFILE] = svc.profile
                if svc.gemport_id is not None:
                    current[o.ServiceColumn.GEM_PORT] = svc.gemport_id
                plan.remove_forwarders.add(svc.name)
                self._create_service(plan, key, onu, {**current, **given}, first, svc.name)
            return
        if pending is None:
            if rs is None:
                raise SetError("noCreation", first, f"{where} does not exist; create it with "
                                                    "ponctlServiceRowStatus")
            raise SetError("inconsistentValue", rs_i, f"{where} does not exist")
        merged = _PendingService({**pending.values, **given})
        if rs in (o.RowStatus.ACTIVE, o.RowStatus.CREATE_AND_GO):
            if onu is None:
                raise SetError("inconsistentValue", rs_i, f"ONT row {key[0]}.{key[1]} does "
                                                          "not exist (or is not active)")
            self._create_service(plan, key, onu, merged.values, rs_i, None)
            plan.pending_services[key] = None
        else:
            plan.pending_services[key] = merged

    def _create_service(self, plan: _Plan, key: Oid, onu: OnuConfig,
                        values: dict[int, int | str], i: int, name: str | None) -> None:
        missing = [o.ServiceColumn(c).name for c in _SVC_REQUIRED if c not in values]
        if missing:
            raise SetError("inconsistentValue", i, f"service row {'.'.join(map(str, key))} "
                                                   f"lacks {', '.join(missing)}")
        req = pv.ServiceRequest(int(values[o.ServiceColumn.UNI]),
                                int(values[o.ServiceColumn.C_VLAN]),
                                int(values[o.ServiceColumn.S_VLAN]),
                                str(values[o.ServiceColumn.PROFILE]),
                                int(values[o.ServiceColumn.GEM_PORT]))
        try:
            fwd = name or pv.forwarder_name(onu, req.uni, req.c_vlan)
            self._check_unique(plan, fwd, name, req)
            self._check_shared(plan, onu, name, req)
            spec = pv.onu_spec(onu)
            tcont = f"tcont-{spec.port}-{spec.onu_id}"
            alloc = plan.allocs.get(tcont)
            if alloc is None:
                alloc = pv.alloc_id_for(self.olt.running, tcont, set(plan.allocs.values()))
                plan.allocs[tcont] = alloc
            plan.edits += pv.create_service(self.olt.uplinks, onu, req, alloc, name)
        except pv.Refused as exc:
            raise SetError(exc.status, i, exc.message) from exc
        plan.new_forwarders[fwd] = key
        plan.new_services.append((onu.vani, req))
        plan.touch(i)

    def _check_unique(self, plan: _Plan, fwd: str, name: str | None,
                      req: pv.ServiceRequest) -> None:
        """One service per ONU, UNI and C-VLAN (the forwarder name says which)."""
        clash = self.olt.view.services.get(fwd)
        if fwd in plan.new_forwarders or (clash is not None and fwd != name
                                          and fwd not in plan.remove_forwarders):
            raise pv.Refused("inconsistentValue", f"a service for UNI {req.uni} and C-VLAN "
                                                  f"{req.c_vlan} exists on this ONT")

    def _check_shared(self, plan: _Plan, onu: OnuConfig, name: str | None,
                      req: pv.ServiceRequest) -> None:
        """Refuse what would silently change another service of the same ONU.

        The configuration this OLT builds gives an ONU one T-CONT (one bandwidth profile) and
        each UNI one GEM port, shared by the services on them; a new service that asks for a
        different profile or GEM port would rewrite its neighbours' settings.
        """
        others = [(s.uni, s.gemport_id, s.profile) for s in self.olt.view.services.values()
                  if s.vani == onu.vani and s.name != name
                  and s.name not in plan.remove_forwarders]
        others += [(r.uni, r.gemport, r.profile) for v, r in plan.new_services if v == onu.vani]
        for uni, gem, profile in others:
            if profile is not None and profile != req.profile:
                raise pv.Refused("inconsistentValue", f"the ONT's services use bandwidth "
                                                      f"profile {profile!r} (one T-CONT per ONT)")
            if uni == req.uni and gem is not None and gem != req.gemport:
                raise pv.Refused("inconsistentValue", f"UNI {uni} is carried by GEM port "
                                                      f"{gem} (one GEM port per UNI)")

    def _apply(self, plan: _Plan) -> None:
        elements: list[etree._Element] = []
        if plan.remove_vanis or plan.remove_forwarders:
            elements += removal(self.olt.running, self.olt.view, plan.remove_vanis,
                                   plan.remove_forwarders)
        elements += plan.edits
        if elements:
            try:
                self.olt.edit_config("running", elements, session=self.session)
            except RpcError as err:
                raise SetError(status_for(err), plan.blame or 0, str(err)) from err
        # Only now, with the configuration accepted, does the agent's own row state change.
        for key, p in plan.pending_onts.items():
            if p is None:
                self.pending_onts.pop(key, None)
            else:
                self.pending_onts[key] = p
        for skey, sp in plan.pending_services.items():
            if sp is None:
                self.pending_services.pop(skey, None)
            else:
                self.pending_services[skey] = sp
        for fwd, key in plan.new_forwarders.items():
            onu = self._onu_for(plan, key[:2])
            if onu is not None:
                self.service_index.setdefault(onu.vani, {})[fwd] = key[2]
        if plan.pending_onts or plan.pending_services:
            self._pending_dirty = True


def _str(entry: tuple[int, int | str] | None) -> str | None:
    return None if entry is None else str(entry[1])


def status_for(err: RpcError) -> str:
    """The SNMP error status for a refusal of the configuration engine."""
    if err.app_tag == "commit-refused":
        return "commitFailed"
    if err.tag in ("in-use", "lock-denied"):
        return "resourceUnavailable"
    if err.app_tag in ("network-service-missing", "data-not-unique", "instance-required") \
            or err.tag in ("data-missing", "data-exists"):
        return "inconsistentValue"
    if err.tag == "invalid-value":
        return "wrongValue"
    return "commitFailed"

