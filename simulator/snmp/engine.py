"""pysnmp engines that serve simulated devices.

An ``EngineHost`` is one pysnmp ``SnmpEngine`` with one set of credentials (communities, a v3
user, VACM), the Get/Next/Bulk/Set command responders, and any number of devices, each on its
own UDP socket. pysnmp tells every request's transport domain to the MIB instrumentation, so
each device's socket is registered under a domain of its own and the instrumentation serves
the device bound to the domain the request came in on.

An engine costs ~1.2 MiB and ~130 ms of CPU to build (pysnmp compiles its MIB modules per
engine) and runs a 10 Hz timer: fine for eight OLTs, not for thousands of gateways, which is
why gateways with the same credentials share one engine (see ``shared_host``).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import socket
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp
from pysnmp.entity import config
from pysnmp.entity.engine import SnmpEngine
from pysnmp.entity.rfc3413 import cmdrsp, context, ntforg
from pysnmp.proto import rfc1902, rfc1905
from pysnmp.proto.api import v2c
from pysnmp.smi import error as smi_error
from pysnmp.smi.instrum import AbstractMibInstrumController

from simulator.devices import Device, SnmpSettings, TrapTarget
from simulator.snmp.smi import Missing, Oid, SetError, Syntax, Value, WriteItem
from simulator.snmp.system import DeviceMib
from simulator.snmp.wire import refuse_credentials

log = logging.getLogger(__name__)

ALL: Oid = (1, 3, 6, 1)
# pysnmp 7.1 grants access through a VACM view that has no entries (upstream issue 48), so
# every view that should deny is given one harmless entry instead of being left empty.
NOTHING: Oid = (0, 0)
RO, RW = "ponctl-ro", "ponctl-rw"
# Communities for v2c trap targets carry this tag, which no target address has, so pysnmp
# never accepts them on an incoming request.
NOTIFY_ONLY_TAG = "ponctl-notify-only"
ENTERPRISE_NUMBER = 32473

AUTH_PROTOCOLS: dict[str, Any] = {
    "SHA": config.USM_AUTH_HMAC96_SHA,
    "SHA1": config.USM_AUTH_HMAC96_SHA,
    "SHA224": config.USM_AUTH_HMAC128_SHA224,
    "SHA256": config.USM_AUTH_HMAC192_SHA256,
    "SHA384": config.USM_AUTH_HMAC256_SHA384,
    "SHA512": config.USM_AUTH_HMAC384_SHA512,
}
# AES-192/256 need longer keys than SHA-1 yields, and two key extensions exist: the one of
# draft-blumenthal-aes-usm-04, which net-snmp uses for AES-192/AES-256, and Reeder's (Cisco;
# pysnmp's USM_PRIV_CFB256_AES). The plain names follow net-snmp; the C suffix picks Reeder's.
# With SHA-256 or stronger the key is long enough and both agree.
PRIV_PROTOCOLS: dict[str, Any] = {
    "AES": config.USM_PRIV_CFB128_AES,
    "AES128": config.USM_PRIV_CFB128_AES,
    "AES192": config.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES256": config.USM_PRIV_CFB256_AES_BLUMENTHAL,
    "AES192C": config.USM_PRIV_CFB192_AES,
    "AES256C": config.USM_PRIV_CFB256_AES,
}


def engine_id(label: str) -> bytes:
    """An RFC 3411 snmpEngineID under the documentation enterprise, naming ``label``."""
    head = (0x80000000 | ENTERPRISE_NUMBER).to_bytes(4, "big")
    text = label.encode("ascii", "replace")
    if len(text) <= 27 and all(0x20 < b < 0x7F for b in text):
        return head + b"\x04" + text  # format 4: administratively assigned text
    return head + b"\x05" + sha256(label.encode()).digest()[:12]  # format 5: octets


class DeviceTransport(udp.UdpAsyncioTransport):  # type: ignore[misc]
    """A device's UDP socket, where the packet-level faults act (as if on the wire).

    snmp_loss drops requests before pysnmp sees them; latency holds each outgoing datagram
    back, which is how a slow device looks from the client (a SET takes effect on arrival;
    a client that gives up and retries meets its own first write, as with a real box).
    pysnmp's command responders cannot answer later: ``process_pdu`` releases the request
    state as soon as the handler returns. Delaying at the socket needs no pysnmp internals
    and keeps the loop free while the answer waits.
    """

    def __init__(self, device: Device, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self.device = device
        self._late: set[asyncio.TimerHandle] = set()

    def datagram_received(self, datagram: bytes, transportAddress: Any) -> None:
        faults = self.device.faults
        if faults.snmp_loss > 0 and random.random() < faults.snmp_loss:
            return
        if faults.wrong_credentials:
            refused = refuse_credentials(datagram)
            if refused is None:
                return
            datagram = refused
        super().datagram_received(datagram, transportAddress)

    def send_message(self, outgoingMessage: bytes, transportAddress: Any) -> None:
        delay = self.device.faults.latency
        if delay <= 0:
            super().send_message(outgoingMessage, transportAddress)
            return
        handle: asyncio.TimerHandle | None = None

        def late() -> None:
            if handle is not None:
                self._late.discard(handle)
            if self.transport is not None and not self.transport.is_closing():
                super(DeviceTransport, self).send_message(outgoingMessage, transportAddress)

        handle = self.loop.call_later(delay, late)
        self._late.add(handle)

    def close_transport(self) -> None:
        for handle in self._late:
            handle.cancel()
        self._late.clear()
        super().close_transport()


class SendOnlyTransport(udp.UdpAsyncioTransport):  # type: ignore[misc]
    """The socket traps leave from; nothing that arrives on it is a request to serve."""

    def datagram_received(self, datagram: bytes, transportAddress: Any) -> None:
        return


_TO_ASN1: dict[Syntax, Callable[[Any], Any]] = {
    Syntax.OCTETS: rfc1902.OctetString,
    Syntax.INTEGER: rfc1902.Integer32,
    Syntax.UNSIGNED: rfc1902.Unsigned32,
    Syntax.GAUGE: rfc1902.Gauge32,
    Syntax.TIMETICKS: rfc1902.TimeTicks,
    Syntax.OID: rfc1902.ObjectIdentifier,
}
_FROM_TAG: dict[Any, Syntax] = {
    rfc1902.Integer32.tagSet: Syntax.INTEGER,
    rfc1902.Unsigned32.tagSet: Syntax.UNSIGNED,  # Gauge32 has the same tag
    rfc1902.OctetString.tagSet: Syntax.OCTETS,
    rfc1902.TimeTicks.tagSet: Syntax.TIMETICKS,
    rfc1902.ObjectIdentifier.tagSet: Syntax.OID,
}
_SET_ERRORS: dict[str, type[smi_error.MibOperationError]] = {
    "wrongType": smi_error.WrongTypeError,
    "wrongLength": smi_error.WrongLengthError,
    "wrongValue": smi_error.WrongValueError,
    "noCreation": smi_error.NoCreationError,
    "inconsistentValue": smi_error.InconsistentValueError,
    "resourceUnavailable": smi_error.ResourceUnavailableError,
    "commitFailed": smi_error.CommitFailedError,
    "notWritable": smi_error.NotWritableError,
    "noAccess": smi_error.NoAccessError,
    "genErr": smi_error.GenError,
}


def to_asn1(value: Value) -> Any:
    return _TO_ASN1[value.syntax](value.data)


def write_item(name: Any, value: Any) -> WriteItem:
    syntax = _FROM_TAG.get(value.getTagSet())
    if syntax in (Syntax.OCTETS,):
        return WriteItem(tuple(name), syntax, value.asOctets())
    if syntax == Syntax.OID:
        return WriteItem(tuple(name), syntax, tuple(value))
    if syntax is not None:
        return WriteItem(tuple(name), syntax, int(value))
    return WriteItem(tuple(name), None, b"")


class Instrumentation(AbstractMibInstrumController):  # type: ignore[misc]
    """pysnmp's view of the devices' MIBs: varbinds in, varbinds out, VACM applied.

    pysnmp calls these synchronously for each PDU (GETBULK calls ``read_next_variables`` once
    per repetition). ``acFun`` is pysnmp's VACM check: it returns True for an OID outside the
    request's view and raises for a request with no access at all.
    """

    def __init__(self, host: EngineHost) -> None:
        self.host = host

    def _mib(self, ctx: dict[str, Any]) -> DeviceMib:
        request = ctx["snmpEngine"].observer.get_execution_context(
            "rfc3412.receiveMessage:request")
        binding = self.host.bindings.get(tuple(request["transportDomain"]))
        if binding is None:  # a socket being closed; answer nothing rather than the wrong box
            raise smi_error.GenError(idx=0)
        return binding.mib

    @staticmethod
    def _hidden(view: str, name: Any, value: Any, idx: int, ctx: dict[str, Any]) -> bool:
        ac = ctx.get("acFun")
        return bool(ac and ac(view, (name, value), **{**ctx, "idx": idx}))

    def read_variables(self, *var_binds: Any, **ctx: Any) -> list[tuple[Any, Any]]:
        mib = self._mib(ctx)
        out: list[tuple[Any, Any]] = []
        for i, (name, _value) in enumerate(var_binds):
            oid = tuple(name)
            found = Missing.NO_SUCH_OBJECT if self._hidden("read", name, None, i, ctx) \
                else self._guard(mib.get, oid)
            if found is Missing.NO_SUCH_OBJECT:
                out.append((name, rfc1905.noSuchObject))
            elif found is Missing.NO_SUCH_INSTANCE:
                out.append((name, rfc1905.noSuchInstance))
            else:
                assert isinstance(found, Value)
                out.append((name, to_asn1(found)))
        return out

    def read_next_variables(self, *var_binds: Any, **ctx: Any) -> list[tuple[Any, Any]]:
        mib = self._mib(ctx)
        out: list[tuple[Any, Any]] = []
        for i, (name, _value) in enumerate(var_binds):
            oid: Oid = tuple(name)
            while True:
                found = self._guard(mib.next, oid)
                if found is None:
                    out.append((name, rfc1905.endOfMibView))
                    break
                oid, value = found
                asn1 = to_asn1(value)
                ident = v2c.ObjectIdentifier(oid)
                if not self._hidden("read", ident, asn1, i, ctx):
                    out.append((ident, asn1))
                    break
        return out

    def write_variables(self, *var_binds: Any, **ctx: Any) -> list[tuple[Any, Any]]:
        mib = self._mib(ctx)
        items: list[WriteItem] = []
        for i, (name, value) in enumerate(var_binds):
            if self._hidden("write", name, value, i, ctx):
                raise smi_error.NotWritableError(name=name, idx=i)
            items.append(write_item(name, value))
        try:
            mib.write(items)
        except SetError as exc:
            log.info("%s: SET refused: %s", mib.device.name, exc)
            raise _SET_ERRORS.get(exc.status, smi_error.GenError)(
                name=var_binds[exc.index][0], idx=exc.index) from exc
        except Exception as exc:
            log.exception("%s: SET failed", mib.device.name)
            raise smi_error.GenError(idx=0) from exc
        return list(var_binds)

    @staticmethod
    def _guard(fn: Callable[[Oid], Any], oid: Oid) -> Any:
        try:
            return fn(oid)
        except Exception as exc:  # a bug here must cost one genErr, not the agent
            log.exception("reading %s failed", ".".join(map(str, oid)))
            raise smi_error.GenError(idx=0) from exc


@dataclass(slots=True)
class Binding:
    """One device served by an engine host, on its own socket."""

    id: int
    device: Device
    mib: DeviceMib
    domain: Oid
    transport: DeviceTransport
    sock: socket.socket
    port: int
    notify_domain: Oid | None = None
    notify_transport: Any = None
    notify_sock: socket.socket | None = None
    notification: str | None = None
    target_names: list[str] = field(default_factory=list)


async def _opened(transport: Any) -> None:
    # open_server_mode() only schedules create_datagram_endpoint(); wait for it, so a failure
    # surfaces here and the caller gets a socket that is being served.
    pending = getattr(transport, "_lport", None)
    if pending is not None:
        await pending


def _bound_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


class EngineHost:
    """One SnmpEngine with one credential set, serving the devices bound to it."""

    _ids = itertools.count(1)

    def __init__(self, settings: SnmpSettings, engine_id: bytes) -> None:
        """Build the engine; call from inside the running event loop (pysnmp binds to it)."""
        if settings.community_ro == settings.community_rw:
            raise ValueError("community_ro and community_rw must differ, or the read-only "
                             "community could write")
        auth = AUTH_PROTOCOLS.get(settings.auth_protocol.upper().replace("-", ""))
        priv = PRIV_PROTOCOLS.get(settings.priv_protocol.upper().replace("-", ""))
        if auth is None or priv is None:
            raise ValueError(f"unsupported SNMPv3 protocols {settings.auth_protocol}/"
                             f"{settings.priv_protocol} (auth: {', '.join(AUTH_PROTOCOLS)}; "
                             f"priv: {', '.join(PRIV_PROTOCOLS)})")
        self.loop = asyncio.get_running_loop()
        self.settings = settings
        self.engine = SnmpEngine()
        # Set the engine ID in the MIB rather than through SnmpEngine(snmpEngineID=...), which
        # would also persist a boot counter under the system temp directory.
        (mib_id,) = self.engine.get_mib_builder().import_symbols("__SNMP-FRAMEWORK-MIB",
                                                                  "snmpEngineID")
        mib_id.syntax = mib_id.syntax.clone(engine_id)
        self.engine.snmpEngineID = mib_id.syntax
        self.engine_id = engine_id
        e = self.engine
        config.add_v1_system(e, RO, settings.community_ro)
        config.add_v1_system(e, RW, settings.community_rw)
        for model in (1, 2):  # SNMPv1 and v2c
            config.add_vacm_user(e, model, RO, "noAuthNoPriv", readSubTree=ALL,
                                 writeSubTree=NOTHING, notifySubTree=NOTHING)
            config.add_vacm_user(e, model, RW, "noAuthNoPriv", readSubTree=ALL,
                                 writeSubTree=ALL, notifySubTree=NOTHING)
        config.add_v3_user(e, settings.v3_user, auth, settings.v3_auth_key, priv,
                           settings.v3_priv_key)
        config.add_vacm_user(e, 3, settings.v3_user, "authPriv", readSubTree=ALL,
                             writeSubTree=ALL, notifySubTree=ALL)
        self.context = context.SnmpContext(e)
        self.context.unregister_context_name(b"")
        self.context.register_context_name(b"", Instrumentation(self))
        self.responders = [cls(e, self.context) for cls in (
            cmdrsp.GetCommandResponder, cmdrsp.NextCommandResponder,
            cmdrsp.BulkCommandResponder, cmdrsp.SetCommandResponder)]
        self.notifier = ntforg.NotificationOriginator()
        self.bindings: dict[Oid, Binding] = {}
        self.users = 0  # bindings open or being opened; see shared_host()
        self.closed = False
        self._domains = itertools.count(1)

    def _domain(self) -> Oid:
        return (*udp.DOMAIN_NAME, next(self._domains))

    async def bind(self, device: Device, mib: DeviceMib, host: str, port: int,
                   trap_targets: list[TrapTarget]) -> Binding:
        """Serve ``device`` on (host, port); port 0 picks a free one."""
        sock = _bound_socket(host, port)
        domain = self._domain()
        transport = DeviceTransport(device, self.loop)
        try:
            config.add_transport(self.engine, domain, transport.open_server_mode(sock=sock))
            binding = Binding(next(self._ids), device, mib, domain, transport, sock,
                              sock.getsockname()[1])
            self.bindings[domain] = binding
            await _opened(transport)
            if trap_targets:
                await self._add_traps(binding, host, trap_targets)
        except BaseException:
            self._drop(domain, transport, sock)
            raise
        return binding

    async def _add_traps(self, b: Binding, host: str, targets: list[TrapTarget]) -> None:
        """Configure where this device's notifications go: one target per TrapTarget.

        Each target gets its own parameters (credentials): targets never share them, so a
        notification is sent once per target with that target's community or v3 user.
        """
        e = self.engine
        b.notify_sock = _bound_socket(host, 0)  # traps leave from the device's own address
        b.notify_domain = self._domain()
        b.notify_transport = SendOnlyTransport(loop=self.loop)
        config.add_transport(e, b.notify_domain,
                             b.notify_transport.open_server_mode(sock=b.notify_sock))
        await _opened(b.notify_transport)
        tag = f"b{b.id}-traps"
        for i, t in enumerate(targets):
            name = f"b{b.id}-t{i}"
            if t.version == "v3":
                config.add_target_parameters(e, name, self.settings.v3_user, "authPriv",
                                             mpModel=3)
            else:
                config.add_v1_system(e, name, t.community, securityName=name,
                                     transportTag=NOTIFY_ONLY_TAG)
                config.add_vacm_user(e, 2, name, "noAuthNoPriv", readSubTree=NOTHING,
                                     writeSubTree=NOTHING, notifySubTree=ALL)
                config.add_target_parameters(e, name, name, "noAuthNoPriv", mpModel=1)
            config.add_target_address(e, name, b.notify_domain, (t.address, t.port), name,
                                      tagList=tag)
            b.target_names.append(name)
        b.notification = f"b{b.id}-notify"
        config.add_notification_target(e, b.notification, b.target_names[0], tag, "trap")

    def send_notification(self, b: Binding, var_binds: list[tuple[Oid, Value]]) -> None:
        """Send a notification (sysUpTime.0 and snmpTrapOID.0 first) to the device's targets."""
        if b.notification is None or self.closed:
            return
        self.notifier.send_varbinds(self.engine, b.notification, None, b"",
                                    [(oid, to_asn1(v)) for oid, v in var_binds])

    def release(self, b: Binding) -> None:
        """Stop serving a device; its sockets close."""
        if b.notification is not None:
            e = self.engine
            config.delete_notification_target(e, b.notification, b.target_names[0])
            for name in b.target_names:
                config.delete_target_address(e, name)
                config.delete_target_parameters(e, name)
            b.notification = None
        if b.notify_domain is not None:
            self._drop(b.notify_domain, b.notify_transport, b.notify_sock)
            b.notify_domain = None
        self._drop(b.domain, b.transport, b.sock)

    def _drop(self, domain: Oid, transport: Any, sock: socket.socket | None) -> None:
        self.bindings.pop(domain, None)
        if not self.closed and config.get_transport(self.engine, domain) is not None:
            config.delete_transport(self.engine, domain)
        transport.close_transport()
        if sock is not None:
            sock.close()

    def close(self) -> None:
        """Close every socket and the engine's dispatcher (and its timer)."""
        if self.closed:
            return
        for b in list(self.bindings.values()):
            self.release(b)
        self.closed = True
        if self.engine.transport_dispatcher is not None:
            self.engine.close_dispatcher()


_shared: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[SnmpSettings, EngineHost]]
_shared = weakref.WeakKeyDictionary()


def shared_host(settings: SnmpSettings) -> EngineHost:
    """The engine that devices with these credentials share in the running loop.

    The caller counts itself in ``users`` at once (before any await), and calls
    ``leave_shared`` when done; the last one out closes the engine.
    """
    loop = asyncio.get_running_loop()
    hosts = _shared.setdefault(loop, {})
    host = hosts.get(settings)
    if host is None or host.closed:
        host = EngineHost(settings, engine_id(f"ponctl-shared-{next(_labels)}"))
        hosts[settings] = host
    host.users += 1
    return host


_labels = itertools.count(1)


def leave_shared(host: EngineHost) -> None:
    host.users -= 1
    if host.users > 0:
        return
    host.close()
    hosts = _shared.get(host.loop, {})
    if hosts.get(host.settings) is host:
        del hosts[host.settings]
