"""An async SNMP manager session to one agent: get, get-next, get-bulk, walk, set, rows.

Usage::

    async with SnmpClient(SnmpTarget("192.0.2.1", community="private")) as snmp:
        serial, = await snmp.get("ponctlOntSerial.1.5")
        async for vb in snmp.walk("ponctlOntTable"):
            ...
        await snmp.set([Varbind("ponctlOntDescription.1.5", VarType.OCTET_STRING, "x")])

Built on pysnmp's entity-level command generators (``pysnmp.entity.rfc3413.cmdgen``), the
layer that ``pysnmp.hlapi``'s ``get_cmd``/``bulk_cmd`` wrap. The driver configures exactly
one target per client itself, binds its own socket, and passes numeric OIDs straight
through, so it skips hlapi's per-request MIB resolution (names are resolved once by
``drivers.snmp.mib``) and its per-credential target cache.

Every request is bounded twice: pysnmp retries after ``timeout`` and gives up after
``retries`` more tries; an outer asyncio deadline a little past ``timeout * (retries + 1)``
guards against anything in pysnmp that would leave the request hanging.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self

from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.carrier.asyncio.dispatch import AsyncioDispatcher
from pysnmp.entity import config
from pysnmp.entity.rfc3413 import cmdgen
from pysnmp.error import PySnmpError
from pysnmp.proto.error import StatusInformation

from drivers.errors import (
    ConnectError,
    DriverTimeoutError,
    NameResolutionError,
    ProtocolError,
    RefusedError,
    SessionLostError,
    SnmpRejectedError,
    UnreachableError,
    UnsupportedError,
)
from drivers.snmp.edge import (
    AUTH_PROTOCOLS,
    NO_PRIV,
    PRIV_PROTOCOLS,
    error_from_indication,
    from_pysnmp,
    rejected_from_status,
    to_pysnmp,
)
from drivers.snmp.engine import new_engine
from drivers.snmp.mib import MibResolver, default_resolver
from drivers.snmp.target import SnmpTarget
from drivers.snmp.varbind import (
    RowStatus,
    Typed,
    Varbind,
    VarType,
    in_subtree,
    oid_tuple,
)

log = logging.getLogger(__name__)

_TARGET = "ponctl-target"
_PARAMS = "ponctl-params"
_SLACK = 0.5  # seconds past pysnmp's own give-up time before the outer deadline fires
_MP_MODEL = {"v1": 0, "v2c": 1, "v3": 3}

Operation = Literal["get", "next", "bulk", "set"]
Index = int | str | Sequence[int]


def row_suffix(index: Index) -> str:
    """A row index as an OID suffix: ``5`` -> ``"5"``, ``(1, 5)`` -> ``"1.5"``."""
    if isinstance(index, int):
        return str(index)
    if isinstance(index, str):
        return index.strip(".")
    return ".".join(str(i) for i in index)


def deliver(transport: Any, datagram: bytes, address: Any) -> bool:
    """Hand a datagram to pysnmp now, inside a guard; False if pysnmp raised on it.

    pysnmp's own ``datagram_received`` defers this with ``loop.call_soon``, so an exception
    it raises on a malformed datagram (pyasn1 does, on some) ends up in the loop's exception
    handler. Anyone can send to a UDP socket: such a datagram costs itself, nothing else.
    """
    try:
        transport._callback_function(transport, address, datagram)
    except Exception:
        log.debug("dropped a datagram from %s", address, exc_info=True)
        return False
    return True


class _Reporting:
    """Guarded delivery to pysnmp, and socket errors (ICMP unreachable, EHOSTUNREACH from
    sendto) reported to the client, which asyncio's default transport drops."""

    def __init__(self, on_error: Callable[[OSError], None],
                 loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)  # type: ignore[call-arg]
        self._on_error = on_error

    def datagram_received(self, datagram: bytes, transportAddress: Any) -> None:
        deliver(self, datagram, transportAddress)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self._on_error(exc)


class _ClientTransport(_Reporting, udp.UdpAsyncioTransport):  # type: ignore[misc]
    """pysnmp's UDP (IPv4) transport with the client's error reporting."""


class _ClientTransport6(_Reporting, udp6.Udp6AsyncioTransport):  # type: ignore[misc]
    """pysnmp's UDP (IPv6) transport with the client's error reporting."""


class SnmpClient:
    """One SNMP engine, one UDP socket and one target: a manager session to one agent.

    Build and use it inside the running event loop (pysnmp binds its dispatcher to it).
    Names in OIDs are resolved through ``resolver`` (default: the project's MIBs).
    Requests may run concurrently; each is bounded in time. ``close`` fails pending
    requests with SessionLostError.
    """

    def __init__(self, target: SnmpTarget, *, resolver: MibResolver | None = None) -> None:
        self.target = target
        self.resolver = resolver or default_resolver()
        self.engine_id: bytes | None = None  # the agent's snmpEngineID (learned over v3)
        self.address: tuple[str, int] | None = None  # the resolved (ip, port)
        self._engine: Any = None
        self._transport: Any = None
        self._pending: set[asyncio.Future[Any]] = set()
        self._get = cmdgen.GetCommandGenerator()
        self._next = cmdgen.NextCommandGeneratorSingleRun()
        self._bulk = cmdgen.BulkCommandGeneratorSingleRun()
        self._set = cmdgen.SetCommandGenerator()

    @property
    def host(self) -> str:
        """The target's host, as given (``address`` holds the resolved IP and port)."""
        return self.target.host

    @property
    def is_open(self) -> bool:
        """True between ``open`` and ``close``; says nothing about the agent answering."""
        return self._engine is not None

    @property
    def deadline(self) -> float:
        """The longest one request can take: every try timing out, plus some slack."""
        return self.target.timeout * (self.target.retries + 1) + _SLACK

    # ---- lifecycle ---------------------------------------------------------------------
    async def open(self) -> None:
        """Resolve the host, bind a UDP socket and build the engine. Sends nothing: SNMP
        has no session, so reachability is only known from the first answer."""
        if self._engine is not None:
            return
        t = self.target
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(t.timeout * (t.retries + 1)):
                infos = await loop.getaddrinfo(t.host, t.port, type=socket.SOCK_DGRAM)
        except socket.gaierror as exc:
            raise NameResolutionError(f"cannot resolve {t.host}: {exc.strerror}",
                                      host=t.host) from exc
        except TimeoutError as exc:
            raise NameResolutionError(f"resolving {t.host} timed out", host=t.host) from exc
        family, *_, sockaddr = infos[0]
        self.address = (str(sockaddr[0]), int(sockaddr[1]))
        ipv6 = family == socket.AF_INET6
        sock = socket.socket(family, socket.SOCK_DGRAM)
        engine: Any = None
        transport: Any = None
        try:
            sock.setblocking(False)
            sock.bind(("::" if ipv6 else "0.0.0.0", 0))  # any local address
            engine = new_engine()
            dispatcher = AsyncioDispatcher(loop=loop)
            # pysnmp checks timeouts on its timer: a coarse tick makes short timeouts late.
            dispatcher.set_timer_resolution(min(0.1, max(0.01, t.timeout / 5)))
            engine.register_transport_dispatcher(dispatcher)
            transport = (_ClientTransport6 if ipv6 else _ClientTransport)(
                self._on_socket_error, loop)
            # The endpoint is created here (not by pysnmp's open_*_mode, which only schedules
            # it and logs a failure), so a socket problem surfaces now.
            await loop.create_datagram_endpoint(lambda: transport, sock=sock)
            domain = udp6.DOMAIN_NAME if ipv6 else udp.DOMAIN_NAME
            config.add_transport(engine, domain, transport)
            self._configure(engine, domain)
            engine.observer.register_observer(self._observe_response,
                                              "rfc3412.prepareDataElements:response")
        except BaseException:
            if transport is not None:
                transport.close_transport()
            if engine is not None and engine.transport_dispatcher is not None:
                engine.close_dispatcher()
            sock.close()
            raise
        self._engine = engine
        self._transport = transport

    def _configure(self, engine: Any, domain: tuple[int, ...]) -> None:
        t = self.target
        assert self.address is not None
        if t.version == "v3":
            config.add_v3_user(engine, t.user, AUTH_PROTOCOLS[t.auth_protocol], t.auth_key,
                               PRIV_PROTOCOLS[t.priv_protocol] if t.security_level == "authPriv"
                               else NO_PRIV,
                               t.priv_key if t.security_level == "authPriv" else None)
            config.add_target_parameters(engine, _PARAMS, t.user, t.security_level, mpModel=3)
        else:
            config.add_v1_system(engine, "ponctl-community", t.community)
            config.add_target_parameters(engine, _PARAMS, "ponctl-community", "noAuthNoPriv",
                                         mpModel=_MP_MODEL[t.version])
        # pysnmp counts the timeout in hundredths of a second.
        config.add_target_address(engine, _TARGET, domain, self.address, _PARAMS,
                                  timeout=t.timeout * 100, retryCount=t.retries)

    def _observe_response(self, engine: Any, execpoint: str, variables: dict[str, Any],
                          ctx: Any) -> None:
        # A v3 response carries the agent's authoritative engine ID; a trap receiver needs it
        # to accept this agent's v3 traps. Only this execution point is used: it follows
        # an authenticated response, unlike the unauthenticated discovery report.
        engine_id = variables.get("securityEngineId")
        if engine_id:
            self.engine_id = bytes(engine_id)

    def _on_socket_error(self, exc: OSError) -> None:
        error = self._connect_error(exc)
        for fut in list(self._pending):
            if not fut.done():
                fut.set_exception(error)

    def _connect_error(self, exc: OSError) -> ConnectError:
        text = f"{self.target.address}: {exc.strerror or exc}"
        if exc.errno == errno.ECONNREFUSED:
            return RefusedError(f"{text} (ICMP port unreachable)", host=self.host)
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN):
            return UnreachableError(text, host=self.host)
        return ConnectError(text, host=self.host)

    async def close(self) -> None:
        """Close the socket and the engine; pending requests fail with SessionLostError."""
        engine, self._engine = self._engine, None
        if engine is None:
            return
        for fut in list(self._pending):
            if not fut.done():
                fut.set_exception(SessionLostError("SNMP client closed", host=self.host))
        self._pending.clear()
        engine.close_dispatcher()  # closes the transport and the dispatcher's timer
        self._transport = None
        # Let the datagram transport run its deferred close before the caller goes on.
        await asyncio.sleep(0)

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()

    # ---- names -------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """A numeric OID for a numeric OID or a MIB name (see ``MibResolver.resolve``)."""
        return self.resolver.resolve(name)

    def _numeric(self, vb: Varbind) -> Varbind:
        oid = self.resolve(vb.oid)
        return vb if oid == vb.oid else Varbind(oid, vb.type, vb.value)

    # ---- requests ----------------------------------------------------------------------
    async def _request(self, op: Operation, request: list[Varbind], *,
                       non_repeaters: int = 0, max_repetitions: int = 0) -> list[Varbind]:
        """Send one PDU and return the response varbinds; errors converted once, here."""
        engine = self._engine
        if engine is None:
            raise SessionLostError("SNMP client is not open", host=self.host)
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[Any, Any, Any, Any]] = loop.create_future()

        def done(_engine: Any, _handle: Any, indication: Any, status: Any, index: Any,
                 var_binds: Any, _ctx: Any) -> None:
            if not fut.done():
                fut.set_result((indication, status, index, var_binds))

        pdu = [to_pysnmp(vb) for vb in request]
        try:
            if op == "get":
                self._get.send_varbinds(engine, _TARGET, None, "", pdu, done)
            elif op == "next":
                self._next.send_varbinds(engine, _TARGET, None, "", pdu, done)
            elif op == "bulk":
                self._bulk.send_varbinds(engine, _TARGET, None, "", non_repeaters,
                                         max_repetitions, pdu, done)
            else:
                self._set.send_varbinds(engine, _TARGET, None, "", pdu, done)
        except StatusInformation as exc:  # refused before sending (e.g. too big, no keys)
            raise error_from_indication(exc.get("errorIndication"), host=self.host) from exc
        except PySnmpError as exc:
            raise ProtocolError(f"SNMP request could not be sent: {exc}",
                                host=self.host) from exc
        self._pending.add(fut)
        try:
            async with asyncio.timeout(self.deadline):
                indication, status, index, var_binds = await fut
        except TimeoutError as exc:
            raise DriverTimeoutError(
                f"no SNMP response within {self.deadline:g} s", host=self.host) from exc
        finally:
            self._pending.discard(fut)
        if indication:
            raise error_from_indication(indication, host=self.host,
                                        timeout=self.target.timeout)
        if status and int(status) != 0:
            raise rejected_from_status(status, index, request, host=self.host)
        return [from_pysnmp(name, value) for name, value in var_binds]

    async def get(self, *oids: str) -> list[Varbind]:
        """GET many OIDs in one PDU (up to ``target.max_get_oids``, else in several);
        one varbind per OID, in order. An absent object or instance comes back as a
        NoSuchObject / NoSuchInstance varbind, not an error. A tooBig answer is retried in
        halves (GET has no side effects)."""
        request = [Varbind(self.resolve(oid)) for oid in oids]
        size = self.target.max_get_oids
        out: list[Varbind] = []
        for i in range(0, len(request), size):
            out += await self._get_split(request[i:i + size])
        return out

    async def _get_split(self, request: list[Varbind]) -> list[Varbind]:
        try:
            got = await self._request("get", request)
        except SnmpRejectedError as exc:
            if exc.status != "tooBig" or len(request) == 1:
                raise
            half = len(request) // 2
            return [*await self._get_split(request[:half]),
                    *await self._get_split(request[half:])]
        self._check_same_oids(request, got)
        return got

    def _check_same_oids(self, request: list[Varbind], got: list[Varbind]) -> None:
        if [vb.oid for vb in got] != [vb.oid for vb in request]:
            raise ProtocolError(f"response varbinds do not match the request "
                                f"({len(got)} for {len(request)})", host=self.host)

    async def get_next(self, *oids: str) -> list[Varbind]:
        """GETNEXT: the next object after each OID (EndOfMibView past the last)."""
        request = [Varbind(self.resolve(oid)) for oid in oids]
        got = await self._request("next", request)
        if len(got) != len(request):
            raise ProtocolError(f"GETNEXT answered {len(got)} varbinds for {len(request)}",
                                host=self.host)
        return got

    async def get_bulk(self, *oids: str, non_repeaters: int = 0,
                       max_repetitions: int | None = None) -> list[Varbind]:
        """GETBULK (v2c/v3): the next object after each of the first ``non_repeaters`` OIDs,
        then up to ``max_repetitions`` successors of each other OID, interleaved as the
        agent sends them."""
        if self.target.version == "v1":
            raise UnsupportedError("GETBULK needs SNMPv2c or v3", host=self.host)
        request = [Varbind(self.resolve(oid)) for oid in oids]
        reps = self.target.max_repetitions if max_repetitions is None else max_repetitions
        return await self._request("bulk", request, non_repeaters=non_repeaters,
                                   max_repetitions=reps)

    async def walk(self, root: str, *, max_repetitions: int | None = None
                   ) -> AsyncIterator[Varbind]:
        """Every object in the subtree under ``root`` (GETBULK, or GETNEXT over v1), in
        OID order. Nothing under ``root`` yields nothing. An agent whose OIDs do not
        increase raises ProtocolError rather than looping forever."""
        base = self.resolve(root)
        current = base
        while True:
            if self.target.version == "v1":
                try:
                    batch = await self.get_next(current)
                except SnmpRejectedError as exc:
                    if exc.status == "noSuchName":  # v1's end of the MIB
                        return
                    raise
            else:
                batch = await self.get_bulk(current, max_repetitions=max_repetitions)
            if not batch:
                raise ProtocolError(f"empty response walking {base}", host=self.host)
            last = oid_tuple(current)
            for vb in batch:
                if vb.type == VarType.END_OF_MIB_VIEW or not in_subtree(vb.oid, base):
                    return
                here = oid_tuple(vb.oid)
                if here <= last:
                    raise ProtocolError(f"agent returned {vb.oid} after {current}: OIDs not "
                                        "increasing", host=self.host)
                last, current = here, vb.oid
                yield vb

    async def walk_all(self, root: str) -> list[Varbind]:
        """``walk`` collected into a list."""
        return [vb async for vb in self.walk(root)]

    async def set(self, varbinds: Iterable[Varbind]) -> list[Varbind]:
        """SET all varbinds in ONE PDU: a conforming agent applies all or none of them
        (RFC 3416 4.2.5). SnmpRejectedError carries the agent's error-status and the
        varbind it blamed."""
        request = [self._numeric(vb) for vb in varbinds]
        if not request:
            return []
        for vb in request:
            if vb.type in (VarType.NULL, VarType.NO_SUCH_OBJECT, VarType.NO_SUCH_INSTANCE,
                           VarType.END_OF_MIB_VIEW):
                raise ValueError(f"cannot SET {vb.oid} to {vb.type}")
        got = await self._request("set", request)
        self._check_same_oids(request, got)
        return got

    # ---- RowStatus (RFC 2579) ----------------------------------------------------------
    def _column_oid(self, entry: str, column: int | str, suffix: str) -> str:
        if isinstance(column, int):
            return f"{entry}.{column}.{suffix}"
        oid = self.resolve(column)
        if oid.rpartition(".")[0] != entry:
            raise ValueError(f"{column} is not a column of {self.resolver.name_of(entry)}")
        return f"{oid}.{suffix}"

    async def create_row(self, table_entry: str, index: Index,
                         columns: Mapping[int | str, Typed], status_column: int | str, *,
                         create_and_go: bool = True) -> list[Varbind]:
        """Create a conceptual row in one SET: the given columns, then the RowStatus column
        set to createAndGo(4) (or createAndWait(5)). ``table_entry`` is the entry OID or
        name (``ponctlServiceEntry``); columns are numbers or names."""
        entry = self.resolve(table_entry)
        suffix = row_suffix(index)
        status = RowStatus.CREATE_AND_GO if create_and_go else RowStatus.CREATE_AND_WAIT
        varbinds = [Varbind.of(self._column_oid(entry, col, suffix), typed)
                    for col, typed in columns.items()]
        varbinds.append(Varbind(self._column_oid(entry, status_column, suffix),
                                VarType.INTEGER, int(status)))
        return await self.set(varbinds)

    async def destroy_row(self, table_entry: str, index: Index,
                          status_column: int | str) -> list[Varbind]:
        """Delete a conceptual row: its RowStatus column set to destroy(6)."""
        entry = self.resolve(table_entry)
        oid = self._column_oid(entry, status_column, row_suffix(index))
        return await self.set([Varbind(oid, VarType.INTEGER, int(RowStatus.DESTROY))])

