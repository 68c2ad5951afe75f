"""The SNMP face of a simulated OLT or gateway: a pysnmp agent on a real UDP socket.

Usage::

    agent = await SnmpAgent.start(olt, "127.0.0.1", 0, trap_targets)
    ...  # agent.port answers v1/v2c (community_ro / community_rw) and v3 authPriv
    await agent.close()
"""

from __future__ import annotations

import asyncio
import logging

from simulator.devices import DeviceEvent, Gateway, Olt, OntState, TrapTarget
from simulator.snmp import oids as o
from simulator.snmp.engine import Binding, EngineHost, engine_id, leave_shared, shared_host
from simulator.snmp.gateway_mib import GatewayMib
from simulator.snmp.olt_mib import OltMib, oper_status
from simulator.snmp.smi import Oid, Value, integer, octets, oid_value, ticks
from simulator.snmp.system import DeviceMib

log = logging.getLogger(__name__)

_DOWN_STATES = (OntState.LOS, OntState.DYING_GASP, OntState.NOT_PRESENT)


class SnmpAgent:
    """Serves one device's MIB over SNMP and sends its notifications.

    OLTs get an SNMP engine of their own (their own snmpEngineID, their own trap sockets).
    Gateways, of which a lab has thousands, share one engine per credential set in the
    running loop, each on its own socket; pass ``shared_engine`` to override either default.
    """

    port: int

    def __init__(self, device: Olt | Gateway, host: EngineHost, mib: DeviceMib,
                 shared: bool) -> None:
        """Use ``start``; this only wires the agent to the device's events."""
        self.device = device
        self.port = 0
        self.engine_id = host.engine_id
        self._host = host
        self._binding: Binding | None = None
        self._mib = mib
        self._shared = shared
        self._closed = False
        self._last_state: dict[str, OntState] = {}
        if isinstance(device, Olt):
            self._last_state = {s: ont.state for s, ont in device.onts.items()}
        # Subscribed before the socket opens, so no event between building the MIB's
        # autofind state and serving it is missed.
        self._unsubscribe = device.subscribe(self._on_event)

    @classmethod
    async def start(cls, device: Olt | Gateway, host: str, port: int,
                    trap_targets: list[TrapTarget], *,
                    shared_engine: bool | None = None) -> SnmpAgent:
        """Start serving ``device`` on UDP (host, port); port 0 binds a free port.

        The socket is bound here, so a busy port raises OSError at once. ``trap_targets``
        receive the OLT's ONT notifications (v2c with the target's community, or v3 with the
        device's v3 user); gateways send none. Must be awaited inside the running loop.
        """
        shared = isinstance(device, Gateway) if shared_engine is None else shared_engine
        engine = (shared_host(device.snmp) if shared
                  else EngineHost(device.snmp, engine_id(device.name)))
        agent: SnmpAgent | None = None
        try:
            if isinstance(device, Olt):
                mib: DeviceMib = OltMib(device, device.new_session_id())
                targets = trap_targets
            else:
                mib = GatewayMib(device)
                targets = []
                if trap_targets:
                    log.debug("%s: gateways send no notifications; trap targets ignored",
                              device.name)
            agent = cls(device, engine, mib, shared)
            agent._binding = await engine.bind(device, mib, host, port, targets)
            agent.port = agent._binding.port
        except BaseException:
            if agent is not None:
                agent._unsubscribe()
            if shared:
                leave_shared(engine)
            else:
                engine.close()
            raise
        return agent

    async def close(self) -> None:
        """Stop serving: unsubscribe, close the sockets (and the engine unless shared)."""
        if self._closed:
            return
        self._closed = True
        self._unsubscribe()
        if self._binding is not None:
            self._host.release(self._binding)
        if self._shared:
            leave_shared(self._host)
        else:
            self._host.close()
        # Let the datagram transports run their deferred close before the caller goes on.
        await asyncio.sleep(0)

    # ---- notifications -----------------------------------------------------------------
    def _on_event(self, event: DeviceEvent) -> None:
        """Follow a device event: keep the MIB current, and send the notification it calls for.

        Called synchronously from the device, possibly while pysnmp is processing a SET, so
        the notification is built now (the state it reports) and sent on the next loop turn.
        """
        if self._closed:
            return
        self._mib.on_event(event)
        if not isinstance(self._mib, OltMib) or event.serial is None:
            return
        notification = self._notification(self._mib, event)
        if notification is not None:
            self._host.loop.call_soon(self._send, notification)

    def _notification(self, mib: OltMib, event: DeviceEvent) -> list[tuple[Oid, Value]] | None:
        assert event.serial is not None
        previous = self._last_state.get(event.serial)
        if event.state is not None:
            self._last_state[event.serial] = event.state
        pidx = mib.port_index.get(event.port or "")
        if pidx is None:
            return None
        if event.kind == "ont-discovered":
            found = mib.autofind.get(event.serial)
            if found is None:
                return None
            return [
                *self._header(o.ONT_DISCOVERED),
                ((*o.AUTOFIND_ENTRY, o.AutofindColumn.SERIAL, *found), octets(event.serial)),
                ((*o.PON_PORT_ENTRY, o.PonPortColumn.NAME, pidx), octets(event.port or "")),
            ]
        if event.kind != "ont-state" or event.state is None or event.onu_id is None:
            return None
        if event.state == OntState.OPERATIONAL:
            trap: Oid = o.ONT_UP
        elif event.state in _DOWN_STATES and previous in (OntState.OPERATIONAL, None):
            trap = o.ONT_DOWN
        else:
            return None
        row = (pidx, event.onu_id)
        return [
            *self._header(trap),
            ((*o.ONT_ENTRY, o.OntColumn.SERIAL, *row), octets(event.serial)),
            ((*o.PON_PORT_ENTRY, o.PonPortColumn.NAME, pidx), octets(event.port or "")),
            ((*o.ONT_ENTRY, o.OntColumn.OPER_STATUS, *row), integer(oper_status(event.state))),
        ]

    def _header(self, trap: Oid) -> list[tuple[Oid, Value]]:
        return [((*o.SYS_UPTIME, 0), ticks(self.device.uptime_ticks())),
                ((*o.SNMP_TRAP_OID, 0), oid_value(trap))]

    def _send(self, var_binds: list[tuple[Oid, Value]]) -> None:
        if self._closed or self._binding is None:
            return
        try:
            self._host.send_notification(self._binding, var_binds)
        except Exception:  # a notification that cannot go out must not hurt the device
            log.exception("%s: could not send a notification", self.device.name)

