"""The simulated hardware: OLTs with PON ports and uplinks, ONTs, residential gateways.

State lives here and nowhere else; every face (NETCONF, SNMP, SSH CLI) reads and changes it
through these classes, so what one face writes the others see.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import logging
import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from lxml import etree

from simulator.config import derive as dv
from simulator.config import edit as ed
from simulator.config import validate as vd
from simulator.config.builder import ct_name, factory_config, uplink_name
from simulator.config.errors import RpcError
from simulator.config.namespaces import GW
from simulator.config.schema import GATEWAY_SCHEMA, OLT_SCHEMA
from simulator.config.tree import DNode
from simulator.faults import Faults

log = logging.getLogger(__name__)

Datastore = Literal["running", "candidate", "startup"]
PHANTOM_SESSION = 4294967295  # the session that holds a lock under the lock_held fault


class OntState(enum.StrEnum):
    """Activation state of an ONT as the OLT sees it."""

    NOT_PRESENT = "not-present"
    UNCLAIMED = "unclaimed"  # ranging answered, but no ONU is configured for this serial here
    RANGING = "ranging"
    OPERATIONAL = "operational"
    LOS = "los"
    DYING_GASP = "dying-gasp"


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class SnmpSettings:
    community_ro: str
    community_rw: str
    v3_user: str
    v3_auth_key: str
    v3_priv_key: str
    auth_protocol: str = "SHA"  # SHA | SHA256 | SHA512
    priv_protocol: str = "AES"  # AES (128) | AES256


@dataclass(frozen=True, slots=True)
class TrapTarget:
    address: str
    port: int
    version: Literal["v2c", "v3"] = "v2c"
    community: str = "public"


@dataclass(slots=True)
class DeviceEvent:
    """Something a face may report: ONT discovery, state change, service (un)applied."""

    kind: Literal["ont-discovered", "ont-state", "service-applied", "service-removed",
                  "config-changed"]
    device: str
    serial: str | None = None
    port: str | None = None
    state: OntState | None = None
    onu_id: int | None = None
    vani: str | None = None
    detail: str = ""
    time: float = field(default_factory=time.time)


Listener = Callable[[DeviceEvent], None]


class Device:
    """What every simulated box has: a name, an address, credentials, faults, listeners."""

    kind: Literal["olt", "gateway"]

    def __init__(self, name: str, address: str, credentials: Credentials,
                 snmp: SnmpSettings, protocols: frozenset[str]) -> None:
        self.name = name
        self.address = address
        self.credentials = credentials
        self.snmp = snmp
        self.protocols = protocols
        self.faults = Faults()
        self.ports: dict[str, int] = {}  # face -> bound port, filled in by the lab
        self._listeners: list[Listener] = []
        self.boot_time = time.time()
        self.session_ids = 0
        # Sessions register a closer so a reboot or a fault can drop them.
        self.session_closers: dict[int, Callable[[], None]] = {}

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def emit(self, event: DeviceEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a broken listener must not stop the hardware
                log.exception("listener failed on %s", event.kind)

    def new_session_id(self) -> int:
        self.session_ids += 1
        return self.session_ids

    def check_login(self, username: str, password: str) -> bool:
        if self.faults.wrong_credentials:
            return False
        return username == self.credentials.username and password == self.credentials.password

    def drop_sessions(self) -> None:
        for closer in list(self.session_closers.values()):
            closer()
        self.session_closers.clear()

    def uptime_ticks(self) -> int:
        return int((time.time() - self.boot_time) * 100)


@dataclass(slots=True)
class AppliedService:
    """What OMCI would have set on the ONT for one service: T-CONT, GEM port, VLAN rules."""

    name: str
    uni: int
    c_vlan: int
    s_vlan: int
    alloc_id: int | None
    gemport_id: int | None
    profile: str | None
    tagging: tuple[dv.TagRule, ...]


class Ont:
    """An ONT on a PON port: power, fibre, activation, optics, UNIs and applied config."""

    def __init__(self, olt: Olt, serial: str, port: str, model: str, firmware: str,
                 powered: bool = True, fibre_ok: bool = True) -> None:
        self.olt = olt
        self.serial = serial.upper()[:4] + serial[4:].upper()
        self.vendor = serial[:4]
        self.port = port
        self.model = model
        self.firmware = firmware
        self.powered = powered
        self.fibre_ok = fibre_ok
        self.state = OntState.NOT_PRESENT
        self.onu_id: int | None = None
        self.vani: str | None = None
        self.uni_link: dict[int, bool] = {1: True, 2: False, 3: False, 4: False}
        self.applied: dict[str, AppliedService] = {}
        self.not_applied: dict[str, str] = {}  # service -> why the ONT could not apply it
        self.last_change = time.time()
        self._ranging: asyncio.TimerHandle | None = None
        digest = hashlib.sha256(self.serial.encode()).digest()
        # Realistic GPON class B+ levels: Rx -14..-26 dBm at the ONT, Tx +0.5..+5 dBm.
        self._rx_base = -14.0 - (digest[0] / 255) * 12.0
        self._tx_base = 0.5 + (digest[1] / 255) * 4.5
        self._phase = digest[2] / 255 * 2 * math.pi

    @property
    def rx_power(self) -> float | None:
        """Received optical power in dBm, drifting slightly (None when there is no light)."""
        if self.state not in (OntState.OPERATIONAL, OntState.RANGING, OntState.UNCLAIMED):
            return None
        drift = 0.25 * math.sin(time.time() / 97.0 + self._phase)
        return round(self._rx_base + drift, 2)

    @property
    def tx_power(self) -> float | None:
        if self.rx_power is None:
            return None
        return round(self._tx_base + 0.1 * math.sin(time.time() / 61.0 + self._phase), 2)

    @property
    def present(self) -> bool:
        return self.state in (OntState.RANGING, OntState.OPERATIONAL, OntState.UNCLAIMED)

    def set_power(self, on: bool) -> None:
        if on == self.powered:
            return
        self.powered = on
        if not on and self.present:
            self._set_state(OntState.DYING_GASP)
        self.olt.reconcile_ont(self)

    def set_fibre(self, ok: bool) -> None:
        if ok == self.fibre_ok:
            return
        self.fibre_ok = ok
        self.olt.reconcile_ont(self)

    def _set_state(self, state: OntState) -> None:
        if state == self.state:
            return
        self.state = state
        self.last_change = time.time()
        if state != OntState.OPERATIONAL:
            for name in list(self.applied):
                del self.applied[name]
        kind: Literal["ont-discovered", "ont-state"] = (
            "ont-discovered" if state == OntState.UNCLAIMED else "ont-state")
        self.olt.emit(DeviceEvent(kind, self.olt.name, self.serial, self.port, state,
                                  self.onu_id, self.vani))
        self.olt.ont_state_changed(self)


class Olt(Device):
    """An OLT: PON ports, uplinks with their network VLANs, three datastores, ONTs."""

    kind: Literal["olt", "gateway"] = "olt"

    def __init__(self, name: str, address: str, credentials: Credentials, snmp: SnmpSettings,
                 protocols: frozenset[str], pon_ports: list[str],
                 uplinks: dict[str, frozenset[int]], *, model: str = "SL-OLT16",
                 vendor: str = "SimuLight", firmware: str = "V3.2.1",
                 ranging_delay: float = 0.02) -> None:
        super().__init__(name, address, credentials, snmp, protocols)
        self.pon_ports = pon_ports
        self.uplinks = uplinks
        self.model, self.vendor, self.firmware = model, vendor, firmware
        self.ranging_delay = ranging_delay
        self.hw = dv.Hardware(
            {ct_name(p): p for p in pon_ports},
            {uplink_name(u): u for u in uplinks},
            dict(uplinks),
        )
        base = ed.edit(DNode(OLT_SCHEMA), factory_config(pon_ports, list(uplinks))).root
        self.running = base
        self.candidate = base
        self.startup = base
        self.view = dv.derive(base, self.hw)
        self.locks: dict[str, int] = {}
        self.onts: dict[str, Ont] = {}
        self.service_port_ids: dict[str, int] = {}  # forwarder -> CLI service-port index
        self.confirm: _PendingConfirm | None = None
        self.gateway_watchers: list[Callable[[Ont], None]] = []  # told of every ONT
        # Told of one ONT (by serial): a gateway watches only its own ONT, so an ONT's change
        # costs the same on an OLT with one gateway as on one with a thousand.
        self.ont_watchers: dict[str, list[Callable[[Ont], None]]] = {}
        # Trees that passed check(): trees are immutable and the checks depend only on the
        # tree and the hardware, so a tree checked once (the candidate, by its edit-config)
        # need not be checked again by <validate> or <commit>.
        self._valid: weakref.WeakSet[DNode] = weakref.WeakSet()

    # ---- ONTs --------------------------------------------------------------------------
    def add_ont(self, serial: str, port: str, model: str = "SL-ONT4G",
                firmware: str = "V1.0.4", *, powered: bool = True,
                fibre_ok: bool = True) -> Ont:
        """Plug an ONT into a PON port (it ranges if powered and the fibre is good)."""
        if port not in self.pon_ports:
            raise ValueError(f"{self.name} has no PON port {port!r} "
                             f"(ports: {', '.join(self.pon_ports)})")
        key = serial.upper()
        if key in self.onts:
            raise ValueError(f"ONT {serial} is already attached to {self.name}")
        ont = Ont(self, serial, port, model, firmware, powered, fibre_ok)
        self.onts[ont.serial] = ont
        self.reconcile_ont(ont)
        return ont

    def remove_ont(self, serial: str) -> None:
        ont = self.onts.pop(serial.upper(), None)
        if ont is not None:
            ont._set_state(OntState.NOT_PRESENT)

    def reconcile_ont(self, ont: Ont) -> None:
        """Move an ONT to the state its power, fibre and the configuration call for."""
        if not ont.powered:
            ont._set_state(OntState.NOT_PRESENT)
            return
        if not ont.fibre_ok:
            ont._set_state(OntState.LOS if ont.state != OntState.NOT_PRESENT
                           else OntState.NOT_PRESENT)
            return
        onu = self.view.onu_by_serial(ont.serial)
        if onu is None or onu.port != ont.port:
            ont.onu_id, ont.vani = None, None
            ont._set_state(OntState.UNCLAIMED)
            return
        if ont.state == OntState.OPERATIONAL and ont.vani == onu.vani:
            ont.onu_id = onu.onu_id
            self._apply_services(ont)
            return
        ont.onu_id, ont.vani = onu.onu_id, onu.vani
        if ont.state == OntState.RANGING:
            return
        ont._set_state(OntState.RANGING)
        self._start_ranging(ont)

    def _start_ranging(self, ont: Ont) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._finish_ranging(ont)
            return
        if ont._ranging is not None:
            ont._ranging.cancel()
        ont._ranging = loop.call_later(self.ranging_delay, self._finish_ranging, ont)

    def _finish_ranging(self, ont: Ont) -> None:
        ont._ranging = None
        if ont.state == OntState.RANGING:
            ont._set_state(OntState.OPERATIONAL)
            self._apply_services(ont)

    def _apply_services(self, ont: Ont) -> None:
        """Set on the ONT what its configured services call for (what OMCI would do)."""
        wanted: dict[str, AppliedService] = {}
        ont.not_applied = {}
        for svc in self.view.services_of(ont.vani or ""):
            if not svc.complete:
                ont.not_applied[svc.name] = "; ".join(svc.problems)
                continue
            wanted[svc.name] = AppliedService(
                svc.name, svc.uni, svc.c_vlan, svc.s_vlan, svc.alloc_id, svc.gemport_id,
                svc.profile, svc.uni_subif.rules if svc.uni_subif else ())
        for name in list(ont.applied):
            if name not in wanted:
                del ont.applied[name]
                self.emit(DeviceEvent("service-removed", self.name, ont.serial, ont.port,
                                      ont.state, ont.onu_id, ont.vani, name))
        for name, applied in wanted.items():
            if ont.applied.get(name) != applied:
                ont.applied[name] = applied
                self.emit(DeviceEvent("service-applied", self.name, ont.serial, ont.port,
                                      ont.state, ont.onu_id, ont.vani, name))
        self.ont_state_changed(ont)

    def ont_state_changed(self, ont: Ont) -> None:
        for watch in list(self.gateway_watchers):
            watch(ont)
        for watch in list(self.ont_watchers.get(ont.serial, ())):
            watch(ont)

    def autofind(self) -> list[Ont]:
        return [o for o in self.onts.values() if o.state == OntState.UNCLAIMED]

    # ---- configuration -----------------------------------------------------------------
    def datastore(self, name: str) -> DNode:
        if name == "running":
            return self.running
        if name == "candidate":
            return self.candidate
        if name == "startup":
            return self.startup
        raise RpcError("invalid-value", f"unknown datastore {name!r}", type="protocol")

    def lock_owner(self, ds: str) -> int | None:
        if self.faults.lock_held and ds in ("running", "candidate"):
            return PHANTOM_SESSION
        return self.locks.get(ds)

    def check_writable(self, ds: str, session: int) -> None:
        owner = self.lock_owner(ds)
        if owner is not None and owner != session:
            raise RpcError("in-use", f"the {ds} datastore is locked by session {owner}",
                           type="protocol", info={"session-id": str(owner)})

    def lock(self, ds: str, session: int) -> None:
        self.datastore(ds)
        owner = self.lock_owner(ds)
        if owner is not None:
            raise RpcError("lock-denied", f"the {ds} datastore is locked by session {owner}",
                           type="protocol", info={"session-id": str(owner)})
        if ds == "candidate" and self.candidate is not self.running:
            raise RpcError("lock-denied", "the candidate has uncommitted changes; "
                           "discard-changes first", type="protocol",
                           info={"session-id": "0"})
        self.locks[ds] = session

    def unlock(self, ds: str, session: int) -> None:
        owner = self.lock_owner(ds)
        if owner != session:
            raise RpcError("operation-failed",
                           f"the {ds} datastore is not locked by this session", type="protocol")
        del self.locks[ds]

    def session_closed(self, session: int) -> None:
        """Release what a session held: its locks, and an unconfirmed non-persist commit.

        A session that held the candidate lock takes its uncommitted changes with it
        (RFC 6241 section 8.3.5.2).
        """
        held_candidate = self.locks.get("candidate") == session
        for ds, owner in list(self.locks.items()):
            if owner == session:
                del self.locks[ds]
        pending = self.confirm
        if pending is not None and pending.session == session and pending.persist is None:
            self._rollback_confirmed("the session that made the confirmed commit closed")
        if held_candidate:
            self.candidate = self.running
        self.session_closers.pop(session, None)

    def edit_config(self, target: str, config: list[etree._Element], session: int,
                    default_operation: ed.Operation = "merge",
                    error_option: ed.ErrorOption = "stop-on-error",
                    test_option: str = "test-then-set") -> list[RpcError]:
        """``edit-config``; returns the errors skipped under continue-on-error."""
        if target not in ("running", "candidate"):
            raise RpcError("invalid-value", f"edit-config target {target!r} is not writable",
                           type="protocol")
        self.check_writable(target, session)
        base = self.datastore(target)
        result = ed.edit(base, config, default_operation, error_option)
        if test_option in ("test-then-set", "test-only"):
            self.check(result.root, base)
        if test_option == "test-only" or not result.changed:
            return result.errors
        if target == "candidate":
            self.candidate = result.root
        else:
            self._refuse_if_faulted()
            self.set_running(result.root)
            self.candidate = self.running
        return result.errors

    def check(self, root: DNode, base: DNode | None = None) -> None:
        """Everything a commit checks: YANG constraints and the network's VLANs (``base``: a
        valid tree ``root`` derives from, so only what differs is walked)."""
        if root in self._valid:
            return
        vd.validate(root, base)
        dv.check_unique(root)
        dv.check_network_services(root, self.hw)
        self._valid.add(root)

    def validate(self, source: str) -> None:
        root = self.datastore(source)
        self.check(root, self.running if self.running in self._valid else None)

    def _refuse_if_faulted(self) -> None:
        if self.faults.refuse_commit:
            raise RpcError("operation-failed", self.faults.refuse_commit,
                           app_tag="commit-refused")

    def commit(self, session: int, *, confirmed: bool = False, timeout: float = 600.0,
               persist: str | None = None, persist_id: str | None = None) -> None:
        """``commit``, a confirmed commit, or the commit that confirms one (RFC 6241 8.4)."""
        pending = self.confirm
        if pending is not None:
            if pending.persist is not None:
                if persist_id != pending.persist:
                    raise RpcError("invalid-value",
                                   "a persistent confirmed commit is pending: give its "
                                   "persist-id to confirm or extend it", type="protocol")
            elif pending.session != session:
                raise RpcError("in-use", "a confirmed commit from another session is pending",
                               type="protocol")
        elif persist_id is not None:
            raise RpcError("invalid-value", f"no confirmed commit with persist-id {persist_id!r}",
                           type="protocol")
        self.check_writable("running", session)
        if self.candidate is not self.running:
            self.check(self.candidate, self.running)
        self._refuse_if_faulted()
        if confirmed:
            before = pending.before if pending is not None else self.running
            if pending is not None:
                pending.timer.cancel()
            loop = asyncio.get_running_loop()
            timer = loop.call_later(timeout, self._rollback_confirmed,
                                    f"confirm-timeout of {timeout:g} s expired")
            self.confirm = _PendingConfirm(before, session, persist, timer)
        else:
            if pending is not None:
                pending.timer.cancel()
            self.confirm = None
        if self.candidate is not self.running:
            self.set_running(self.candidate)

    def cancel_commit(self, session: int, persist_id: str | None = None) -> None:
        pending = self.confirm
        if pending is None:
            raise RpcError("operation-failed", "no confirmed commit is pending", type="protocol")
        if pending.persist is not None and persist_id != pending.persist:
            raise RpcError("invalid-value", "persist-id does not match the pending commit",
                           type="protocol")
        if pending.persist is None and pending.session != session:
            raise RpcError("in-use", "the pending confirmed commit belongs to another session",
                           type="protocol")
        self._rollback_confirmed("cancel-commit")

    def _rollback_confirmed(self, why: str) -> None:
        pending = self.confirm
        if pending is None:
            return
        pending.timer.cancel()
        self.confirm = None
        log.info("%s: rolling back the confirmed commit (%s)", self.name, why)
        self.set_running(pending.before)
        self.candidate = self.running

    def discard_changes(self, session: int) -> None:
        self.check_writable("candidate", session)
        self.candidate = self.running

    def copy_running_to_startup(self) -> None:
        """``save`` on the CLI, copy-config running->startup in NETCONF."""
        self.startup = self.running

    @property
    def unsaved(self) -> bool:
        return not self.running.same(self.startup)

    def set_running(self, root: DNode) -> None:
        """Make ``root`` the running config and let the hardware follow it.

        Only ONTs whose registration or services changed are reconciled, so a commit for one
        ONU costs the same on an OLT with one ONT as on one with a thousand.
        """
        old = self.view
        self.running = root
        self.view = new = dv.derive(root, self.hw)
        self.emit(DeviceEvent("config-changed", self.name))
        for ont in list(self.onts.values()):
            before = old.by_serial.get(ont.serial)
            after = new.by_serial.get(ont.serial)
            vani = after.vani if after is not None else None
            if (before == after and (vani is None
                                     or old.by_vani.get(vani) == new.by_vani.get(vani))):
                continue
            self.reconcile_ont(ont)

    def reboot(self) -> None:
        """Reboot: sessions drop, unsaved config is lost, every ONT ranges again."""
        self.drop_sessions()
        self.locks.clear()
        if self.confirm is not None:
            self.confirm.timer.cancel()
            self.confirm = None
        self.boot_time = time.time()
        self.running = self.startup
        self.candidate = self.startup
        self.view = dv.derive(self.running, self.hw)
        for ont in self.onts.values():
            ont._set_state(OntState.NOT_PRESENT)
        for ont in self.onts.values():
            self.reconcile_ont(ont)

    def force_edit(self, config: list[etree._Element]) -> None:
        """Change running behind the agent's back (someone on the box, a script)."""
        result = ed.edit(self.running, config)
        self.check(result.root, self.running)
        self.set_running(result.root)
        self.candidate = self.running


@dataclass(slots=True)
class _PendingConfirm:
    before: DNode
    session: int
    persist: str | None
    timer: asyncio.TimerHandle


class Gateway(Device):
    """A residential gateway behind an ONT UNI, with its analytics (PHAN) URL and WAN VLAN."""

    kind: Literal["olt", "gateway"] = "gateway"

    def __init__(self, name: str, address: str, credentials: Credentials, snmp: SnmpSettings,
                 protocols: frozenset[str], serial: str, mac: str, olt: Olt, ont_serial: str,
                 uni: int, *, model: str = "SL-GW", firmware: str = "R7.1") -> None:
        super().__init__(name, address, credentials, snmp, protocols)
        self.serial, self.mac = serial, mac
        self.olt, self.ont_serial, self.uni = olt, ont_serial.upper(), uni
        self.model, self.firmware = model, firmware
        self.config = DNode(GATEWAY_SCHEMA)
        self.reachability_watchers: list[Callable[[Gateway, bool], None]] = []
        self._reachable = False
        olt.ont_watchers.setdefault(self.ont_serial, []).append(self._ont_changed)

    @property
    def reachable(self) -> bool:
        """Reachable only while its ONT is operational and a service is active on its UNI."""
        ont = self.olt.onts.get(self.ont_serial)
        return (ont is not None and ont.state == OntState.OPERATIONAL
                and any(s.uni == self.uni for s in ont.applied.values()))

    def _ont_changed(self, ont: Ont) -> None:
        if ont.serial != self.ont_serial:
            return
        now = self.reachable
        if now != self._reachable:
            self._reachable = now
            if not now:
                self.drop_sessions()
            for watch in list(self.reachability_watchers):
                watch(self, now)

    def _leaf(self, name: str) -> str | None:
        gw = self.config.get(GW, "gateway")
        return gw.leaf(name) if gw is not None else None

    @property
    def phan_url(self) -> str:
        return self._leaf("phan-url") or ""

    @property
    def wan_vlan(self) -> int:
        return int(self._leaf("wan-vlan") or 0)

    def set(self, phan_url: str | None = None, wan_vlan: int | None = None) -> None:
        """Set the PHAN URL and/or WAN VLAN (validated like a NETCONF edit)."""
        gw = etree.Element(f"{{{GW}}}gateway")
        if phan_url is not None:
            etree.SubElement(gw, f"{{{GW}}}phan-url").text = phan_url
        if wan_vlan is not None:
            etree.SubElement(gw, f"{{{GW}}}wan-vlan").text = str(wan_vlan)
        self.config = ed.edit(self.config, [gw]).root

    def edit_config(self, config: list[etree._Element], default_operation: ed.Operation = "merge",
                    error_option: ed.ErrorOption = "stop-on-error",
                    test_option: str = "test-then-set") -> list[RpcError]:
        if self.faults.refuse_commit:
            raise RpcError("operation-failed", self.faults.refuse_commit)
        result = ed.edit(self.config, config, default_operation, error_option)
        if test_option != "test-only":
            self.config = result.root
        return result.errors
