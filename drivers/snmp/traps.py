"""An SNMP notification receiver: v1/v2c traps, v3 traps, and INFORMs (acknowledged).

Usage::

    async with TrapReceiver(communities=["public"], users=[TrapUser(
            "ponctl", "auth-key", "priv-key", engine_id=olt_engine_id)]) as receiver:
        async for event in receiver.events():
            print(event.kind, event.host, event.fields)

Who authenticates whom: a v3 *trap* is sent by the agent as the authoritative engine, so the
receiver must know the sender's user under the *sender's* snmpEngineID (snmptrapd's
``createUser -e ENGINEID``; pysnmp's ``add_v3_user(securityEngineId=...)``): one ``TrapUser``
per sender, with that sender's ``engine_id``. An *INFORM* is the other way round: the
receiver is authoritative and the sender discovers the receiver's ``engine_id``, so the
user is configured with ``engine_id=None`` (this receiver's own engine ID).
``SnmpDriver.connect`` learns an agent's engine ID and adds its user here by itself.

Every notification becomes a ``DeviceEvent``: ``kind`` is the snmpTrapOID (its MIB name when
one is loaded, else numeric), ``host`` the source address, ``fields`` every varbind as
``{name or OID: value text}``, ``raw`` the datagram. Datagrams that do not parse, or whose
community or user is unknown, are dropped (and counted) and never stop the receiver.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.carrier.asyncio.dispatch import AsyncioDispatcher
from pysnmp.entity import config
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto.api import v2c

from drivers.base import DeviceEvent
from drivers.errors import ConnectError, DriverError
from drivers.snmp.client import deliver
from drivers.snmp.edge import AUTH_PROTOCOLS, NO_PRIV, PRIV_PROTOCOLS, from_pysnmp
from drivers.snmp.engine import new_engine
from drivers.snmp.mib import MibResolver, default_resolver
from drivers.snmp.target import AuthProtocol, PrivProtocol, SnmpTarget
from drivers.snmp.varbind import Varbind

log = logging.getLogger(__name__)

SNMP_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
Subscriber = Callable[[DeviceEvent], None]


@dataclass(frozen=True, slots=True)
class TrapUser:
    """An SNMPv3 user a sender authenticates notifications with.

    ``engine_id``: the sender's snmpEngineID, for its traps; None for INFORMs, which are
    authenticated against this receiver's own engine ID. ``priv_key`` None: authNoPriv.
    """

    user: str
    auth_key: str = field(repr=False)
    priv_key: str | None = field(default=None, repr=False)
    auth_protocol: AuthProtocol = "SHA"
    priv_protocol: PrivProtocol = "AES"
    engine_id: bytes | None = None

    @classmethod
    def from_target(cls, target: SnmpTarget, engine_id: bytes | None) -> TrapUser:
        """The user a v3 ``target`` would send its notifications with."""
        if not target.auth_key:
            raise ValueError("the target has no SNMPv3 credentials")
        priv = target.priv_key if target.security_level == "authPriv" else None
        return cls(target.user, target.auth_key, priv, target.auth_protocol,
                   target.priv_protocol, engine_id)


class _ReceiverTransport(udp.UdpAsyncioTransport):  # type: ignore[misc]
    """Hands datagrams to pysnmp inside a guard (``client.deliver``): whatever a datagram
    does inside pysnmp, it is counted and dropped, never raised into the event loop."""

    receiver: TrapReceiver

    def datagram_received(self, datagram: bytes, transportAddress: Any) -> None:
        self.receiver._datagram(self, datagram, transportAddress)


class _ReceiverTransport6(udp6.Udp6AsyncioTransport):  # type: ignore[misc]
    receiver: TrapReceiver

    def datagram_received(self, datagram: bytes, transportAddress: Any) -> None:
        self.receiver._datagram(self, datagram, transportAddress)


class TrapReceiver:
    """Receives notifications on one UDP socket and fans them out as DeviceEvents.

    Nothing is accepted unless configured: no community, no user by default. ``port=0``
    binds a free port (``receiver.port`` after ``start``). Subscribers are called
    synchronously for each event; ``events()`` iterators each get their own bounded queue
    (the oldest events are dropped, and counted in ``overflowed``, if a consumer falls
    behind: a flood of traps must not grow memory without bound).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0,
                 communities: Iterable[str] = (), users: Iterable[TrapUser] = (),
                 engine_id: bytes | None = None, resolver: MibResolver | None = None,
                 queue_size: int = 1024) -> None:
        self.host = host
        self.port = port
        self.resolver = resolver or default_resolver()
        self.engine_id = engine_id  # this receiver's own snmpEngineID (set by start())
        self.received = 0  # notifications delivered
        self.dropped = 0  # datagrams that broke something inside pysnmp
        self.overflowed = 0  # events dropped because an events() consumer lagged
        self._communities: list[str] = list(communities)
        self._users: list[TrapUser] = list(users)
        self._queue_size = queue_size
        self._engine: Any = None
        self._transport: Any = None
        self._receiver: Any = None
        self._subscribers: list[tuple[str | None, Subscriber]] = []
        self._streams: list[EventStream] = []
        self._added_users: set[tuple[str, bytes | None]] = set()
        self._community_count = 0

    @property
    def running(self) -> bool:
        """True between ``start`` and ``close``."""
        return self._engine is not None

    async def start(self) -> None:
        """Bind the socket (OSError -> ConnectError at once) and start receiving."""
        if self._engine is not None:
            return
        loop = asyncio.get_running_loop()
        ipv6 = ":" in self.host
        sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_DGRAM)
        engine: Any = None
        transport: Any = None
        try:
            sock.setblocking(False)
            sock.bind((self.host, self.port))
            engine = new_engine()
            if self.engine_id is not None:
                # Set in the MIB rather than through SnmpEngine(snmpEngineID=...), which would
                # also persist a boot counter under the system temp directory.
                (mib_id,) = engine.get_mib_builder().import_symbols("__SNMP-FRAMEWORK-MIB",
                                                                    "snmpEngineID")
                mib_id.syntax = mib_id.syntax.clone(self.engine_id)
                engine.snmpEngineID = mib_id.syntax
            self.engine_id = bytes(engine.snmpEngineID)
            engine.register_transport_dispatcher(AsyncioDispatcher(loop=loop))
            transport = (_ReceiverTransport6 if ipv6 else _ReceiverTransport)(loop=loop)
            transport.receiver = self
            await loop.create_datagram_endpoint(lambda: transport, sock=sock)
            config.add_transport(engine, udp6.DOMAIN_NAME if ipv6 else udp.DOMAIN_NAME,
                                 transport)
            self._engine = engine
            self._transport = transport
            for community in self._communities:
                self._add_community(community)
            for user in self._users:
                self._add_user(user)
            self._receiver = ntfrcv.NotificationReceiver(engine, self._notification)
        except BaseException as exc:
            self._engine = None
            if transport is not None:
                transport.close_transport()
            if engine is not None and engine.transport_dispatcher is not None:
                engine.close_dispatcher()
            sock.close()
            if isinstance(exc, OSError):
                raise ConnectError(f"cannot listen for traps on {self.host}:{self.port}: "
                                   f"{exc.strerror or exc}") from exc
            raise
        self.port = int(sock.getsockname()[1])

    async def close(self) -> None:
        """Stop receiving; every events() iterator ends."""
        engine, self._engine = self._engine, None
        if engine is None:
            return
        if self._receiver is not None:
            self._receiver.close(engine)
            self._receiver = None
        engine.close_dispatcher()
        self._transport = None
        for stream in list(self._streams):
            stream.end()
        await asyncio.sleep(0)  # let the datagram transport finish closing

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    # ---- credentials -------------------------------------------------------------------
    def add_community(self, community: str) -> None:
        """Accept v1/v2c notifications with this community (also while running)."""
        if community in self._communities and self._engine is not None:
            return
        if community not in self._communities:
            self._communities.append(community)
        if self._engine is not None:
            self._add_community(community)

    def _add_community(self, community: str) -> None:
        self._community_count += 1
        config.add_v1_system(self._engine, f"trap-community-{self._community_count}",
                             community)

    def add_user(self, user: TrapUser) -> None:
        """Accept v3 notifications from this user (also while running). Adding the same
        user name for the same engine ID again replaces its keys."""
        if user not in self._users:
            self._users.append(user)
        if self._engine is not None:
            self._add_user(user)

    def _add_user(self, user: TrapUser) -> None:
        key = (user.user, user.engine_id)
        engine_id = v2c.OctetString(user.engine_id) if user.engine_id is not None else None
        if key in self._added_users:
            config.delete_v3_user(self._engine, user.user, securityEngineId=engine_id)
        priv = PRIV_PROTOCOLS[user.priv_protocol] if user.priv_key else NO_PRIV
        config.add_v3_user(self._engine, user.user, AUTH_PROTOCOLS[user.auth_protocol],
                           user.auth_key, priv, user.priv_key, securityEngineId=engine_id)
        self._added_users.add(key)

    # ---- delivery ----------------------------------------------------------------------
    def subscribe(self, callback: Subscriber, *, host: str | None = None) -> Callable[[], None]:
        """Call ``callback(event)`` for every event (from ``host`` only, if given); returns
        the function that unsubscribes. A callback that raises is logged, not propagated."""
        entry = (host, callback)
        self._subscribers.append(entry)

        def unsubscribe() -> None:
            if entry in self._subscribers:
                self._subscribers.remove(entry)

        return unsubscribe

    def events(self, host: str | None = None) -> EventStream:
        """Events from now on (from ``host`` only, if given), until the receiver or the
        stream is closed. Cancelling one ``__anext__`` (a timeout) leaves the stream usable."""
        stream = EventStream(self, host, self._queue_size)
        if self._engine is None:
            stream.close()
        return stream

    def _datagram(self, transport: Any, datagram: bytes, address: Any) -> None:
        if not deliver(transport, datagram, address):
            self.dropped += 1

    def _notification(self, engine: Any, state_reference: Any, context_engine_id: Any,
                      context_name: Any, var_binds: Any, ctx: Any) -> None:
        request = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        address = request.get("transportAddress") or ("", 0)
        raw = request.get("wholeMsg")
        event = self._event(str(address[0]), var_binds,
                            bytes(raw) if raw is not None else None)
        self.received += 1
        for host, callback in list(self._subscribers):
            if host is None or host == event.host:
                try:
                    callback(event)
                except Exception:
                    log.exception("trap subscriber %r failed", callback)
        for stream in list(self._streams):
            if stream.host is None or stream.host == event.host:
                self.overflowed += stream.put(event)

    def _event(self, host: str, var_binds: Any, raw: bytes | None) -> DeviceEvent:
        fields: dict[str, str] = {}
        kind = "unknown-notification"
        for name, value in var_binds:
            try:
                vb = from_pysnmp(name, value)
            except DriverError:  # a type SNMP does not define: keep pyasn1's rendering
                vb = Varbind(".".join(map(str, tuple(name))))
                fields[self.label(vb.oid)] = value.prettyPrint()
                continue
            if vb.oid == SNMP_TRAP_OID and isinstance(vb.value, str):
                node = self.resolver.node(vb.value)
                kind = node.name if node is not None else vb.value
            fields[self.label(vb.oid)] = vb.text
        return DeviceEvent(kind=kind, host=host, fields=fields, raw=raw)

    def label(self, oid: str) -> str:
        """``ponctlOntSerial.1.5`` for an instance of a known object, else the OID."""
        found = self.resolver.object_of(oid)
        if found is not None and found[0].kind == "OBJECT-TYPE":
            node, rest = found
            return f"{node.name}.{rest}" if rest else node.name
        return oid


class EventStream:
    """An async iterator of one consumer's events, with a bounded queue of its own.

    A class rather than an async generator: cancelling a generator's pending ``__anext__``
    (``asyncio.wait_for(anext(stream), 1)``) would finalize it, and the next call would end
    the stream. Here a timeout only abandons that one wait.
    """

    def __init__(self, receiver: TrapReceiver, host: str | None, size: int) -> None:
        self.host = host
        self._receiver = receiver
        self._queue: asyncio.Queue[DeviceEvent | None] = asyncio.Queue(size)
        self._closed = False
        receiver._streams.append(self)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> DeviceEvent:
        if self._closed and self._queue.empty():
            raise StopAsyncIteration
        event = await self._queue.get()
        if event is None:
            self.close()
            raise StopAsyncIteration
        return event

    def put(self, event: DeviceEvent) -> int:
        """Queue without blocking, dropping the oldest when full; returns how many dropped."""
        if self._closed:
            return 0
        return _put(self._queue, event)

    def end(self) -> None:
        """End the stream after the events already queued."""
        _put(self._queue, None)
        self.close()

    def close(self) -> None:
        """Stop receiving; events already queued can still be read."""
        self._closed = True
        if self in self._receiver._streams:
            self._receiver._streams.remove(self)

    async def aclose(self) -> None:
        self.close()
        while not self._queue.empty():
            self._queue.get_nowait()


def _put(queue: asyncio.Queue[DeviceEvent | None], item: DeviceEvent | None) -> int:
    """Queue without blocking; drop the oldest event when full. Returns how many dropped."""
    dropped = 0
    while True:
        try:
            queue.put_nowait(item)
            return dropped
        except asyncio.QueueFull:
            queue.get_nowait()
            dropped += 1
