"""The NETCONF-over-SSH server of a simulated OLT or gateway (RFC 6241, 6242, 5277).

One asyncssh server per device. Each SSH channel that asks for the ``netconf`` subsystem is a
session: it exchanges hellos, reads framed messages as they arrive, and answers RPCs in order
from one task, so a slow RPC (the latency fault) delays the replies behind it but never blocks
the event loop. Notifications are written as events happen, between replies (interleave).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping

import asyncssh
from lxml import etree

from simulator.config.builder import ct_name
from simulator.config.errors import RpcError
from simulator.devices import DeviceEvent, Gateway, Olt
from simulator.netconf import filters
from simulator.netconf import framing as fr
from simulator.netconf import rpc as r
from simulator.netconf import state as st
from simulator.netconf.capabilities import build_hello, parse_client_hello
from simulator.netconf.operations import GatewayOperations, OltOperations, Operations

log = logging.getLogger(__name__)

# Messages decoded but not yet answered; past this the session stops reading from the client.
_MAX_PENDING = 32
# Bytes queued towards a client that does not read; past this the session is closed rather
# than buffering notifications without bound.
_MAX_BACKLOG = 8 * 1024 * 1024
_CLOSE_TIMEOUT = 5.0


class NetconfServer:
    """A device's NETCONF face: an SSH server offering the ``netconf`` subsystem.

    Start it with ``await NetconfServer.start(...)``; ``port`` is then the bound port.
    Password logins are checked with ``device.check_login``; every session registers a
    closer in ``device.session_closers`` so a reboot or an unreachable gateway drops it.
    """

    port: int  #: the port the server listens on (useful when started with port 0)

    def __init__(self, device: Olt | Gateway, max_message: int) -> None:
        self.device = device
        self.max_message = max_message
        self.operations: Operations = (OltOperations(device) if isinstance(device, Olt)
                                       else GatewayOperations(device))
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._sessions: set[_Session] = set()

    @classmethod
    async def start(cls, device: Olt | Gateway, host: str, port: int,
                    host_key: asyncssh.SSHKey, *,
                    max_message: int = fr.DEFAULT_MAX_MESSAGE) -> NetconfServer:
        """Listen on ``host``:``port`` (0 picks a free port, see ``.port``).

        ``host_key`` is a loaded key: asyncssh re-reads a key given as a path on every
        connection. ``max_message`` bounds one incoming message; a larger one is refused with
        ``too-big`` and the session is closed.
        """
        self = cls(device, max_message)
        self._acceptor = await asyncssh.create_server(
            lambda: _SshServer(self), host, port,
            server_host_keys=[host_key],
            encoding=None,
            allow_pty=False,
            agent_forwarding=False,
            x11_forwarding=False,
        )
        self.port = self._acceptor.get_port()
        log.info("%s: NETCONF on %s:%d", device.name, host, self.port)
        return self

    async def close(self) -> None:
        """Stop listening and drop every session and connection."""
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None
        for session in list(self._sessions):
            session.close()
        connections = list(self._connections)
        for conn in connections:
            conn.close()
        if connections:
            waits = [asyncio.ensure_future(c.wait_closed()) for c in connections]
            _, pending = await asyncio.wait(waits, timeout=_CLOSE_TIMEOUT)
            for w in pending:
                w.cancel()


class _SshServer(asyncssh.SSHServer):
    """One SSH connection: password login against the device, sessions for ``netconf``."""

    def __init__(self, owner: NetconfServer) -> None:
        self._owner = owner
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._owner._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._owner._connections.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True  # always authenticate

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        # Read at every login, so the wrong_credentials fault takes effect at once.
        return self._owner.device.check_login(username, password)

    def session_requested(self) -> asyncssh.SSHServerSession[bytes]:
        assert self._conn is not None
        return _Session(self._owner, self._conn)


class _Session(asyncssh.SSHServerSession[bytes]):
    """One NETCONF session on one SSH channel."""

    def __init__(self, owner: NetconfServer, conn: asyncssh.SSHServerConnection) -> None:
        self._owner = owner
        self._ops = owner.operations
        self._device = owner.device
        self._conn = conn
        self._chan: asyncssh.SSHServerChannel[bytes] | None = None
        self._decoder: fr.Decoder = fr.EomDecoder(owner.max_message)
        self._hello_done = False
        self._base11 = False
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._reading_paused = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._id = 0
        self._rpcs = 0
        self._unsubscribe: Callable[[], None] | None = None
        self._notification_filter: list[etree._Element] | None = None

    # ---- asyncssh callbacks --------------------------------------------------------------
    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self._chan = chan

    def pty_requested(self, term_type: str, term_size: tuple[int, int, int, int],
                      term_modes: Mapping[int, int]) -> bool:
        return False

    def shell_requested(self) -> bool:
        return False

    def exec_requested(self, command: str) -> bool:
        return False

    def subsystem_requested(self, subsystem: str) -> bool:
        return subsystem == "netconf"

    def session_started(self) -> None:
        self._id = self._device.new_session_id()
        self._device.session_closers[self._id] = self.close
        self._owner._sessions.add(self)
        hello = build_hello(self._ops.capabilities, self._id)
        self._write(fr.encode_eom(hello))
        self._task = asyncio.get_running_loop().create_task(
            self._serve(), name=f"netconf-{self._device.name}-{self._id}")

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if self._closed:
            return
        self._decoder.feed(data)
        self._take_messages()

    def eof_received(self) -> bool:
        # The client sent all it will send: answer what is queued, then close.
        self._queue.put_nowait(None)
        return True

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: BaseException | None) -> None:
        started = self._id != 0
        self.close()
        if started:
            # NETCONF over SSH runs one session per connection: the channel gone, drop the
            # rest. A refused request (shell, exec, another subsystem) leaves it open.
            self._conn.close()

    # ---- session -------------------------------------------------------------------------
    @property
    def session_id(self) -> int:
        return self._id

    def close(self) -> None:
        """End the session: release its locks and subscription at once, close the channel."""
        if self._closed:
            return
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._id:
            self._ops.session_closed(self._id)
        self._owner._sessions.discard(self)
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
        if self._chan is not None:
            self._chan.close()  # flushes what was written first

    def start_subscription(self, filter_elements: list[etree._Element] | None) -> None:
        if self._unsubscribe is not None:
            raise RpcError("operation-failed", "this session already has a subscription",
                           type="protocol")
        self._notification_filter = filter_elements
        self._unsubscribe = self._device.subscribe(self._on_event)

    def _take_messages(self) -> None:
        while not self._closed:
            try:
                message = self._decoder.next()
            except fr.MessageTooBig as exc:
                self._fatal(RpcError("too-big", str(exc), type="rpc"))
                return
            except fr.FramingError as exc:
                self._fatal(RpcError("malformed-message", f"framing error: {exc}", type="rpc"))
                return
            if message is None:
                return
            if not self._hello_done:
                self._on_hello(message)
                continue
            self._queue.put_nowait(message)
            if self._queue.qsize() >= _MAX_PENDING and self._chan is not None:
                self._chan.pause_reading()
                self._reading_paused = True

    def _on_hello(self, message: bytes) -> None:
        try:
            hello = parse_client_hello(message)
        except RpcError as err:
            log.info("%s session %d: bad client hello (%s); closing", self._device.name,
                     self._id, err)
            self.close()
            return
        self._hello_done = True
        if hello.base11:
            # Chunked framing starts with the first message after the hello; whatever
            # already arrived behind the hello belongs to it.
            self._base11 = True
            self._decoder = fr.ChunkedDecoder(self._owner.max_message, self._decoder.rest())

    def _fatal(self, err: RpcError) -> None:
        """The framing is broken: say why (if a reply can still be framed), then close."""
        log.info("%s session %d: %s; closing", self._device.name, self._id, err)
        if self._hello_done:
            self._send(r.reply_errors(None, [self._compatible(err)]))
        self.close()

    async def _serve(self) -> None:
        try:
            while not self._closed:
                message = await self._queue.get()
                if message is None:
                    break
                if self._reading_paused and self._queue.qsize() < _MAX_PENDING // 2:
                    self._reading_paused = False
                    if self._chan is not None:
                        self._chan.resume_reading()
                await self._writable.wait()
                await self._handle(message)
        except Exception:  # a simulator bug must not leave a half-dead session behind
            log.exception("%s session %d failed", self._device.name, self._id)
        finally:
            self.close()

    async def _handle(self, message: bytes) -> None:
        faults = self._device.faults
        if faults.drop_after is not None and self._rpcs >= faults.drop_after:
            self.close()
            return
        self._rpcs += 1
        reply, close_after = self._execute(message)
        # The operation has taken effect; only the reply is late (an ambiguous outcome is
        # exactly what a client must cope with when it times out).
        if faults.latency:
            await asyncio.sleep(faults.latency)
        if self._closed:
            return
        if faults.drop_mid_reply:
            framed = self._frame(reply)
            self._write(framed[:len(framed) // 2])
            self.close()
            return
        self._send(reply)
        if close_after or (faults.drop_after is not None and self._rpcs >= faults.drop_after):
            self.close()

    def _execute(self, message: bytes) -> tuple[bytes, bool]:
        """Answer one message: the reply bytes (unframed) and whether to close after it."""
        try:
            request = r.parse_request(message)
        except RpcError as err:
            return r.reply_errors(None, [self._compatible(err)]), False
        try:
            op = r.check_request(request)
            outcome = self._ops.dispatch(op, self)
        except RpcError as err:
            return r.reply_errors(request.rpc, [self._compatible(err)]), False
        except Exception as exc:  # report a simulator bug to the client, keep the session
            log.exception("%s session %d: RPC failed", self._device.name, self._id)
            bug = RpcError("operation-failed", f"internal error: {type(exc).__name__}: {exc}")
            return r.reply_errors(request.rpc, [bug]), False
        if outcome.errors:
            errors = [self._compatible(e) for e in outcome.errors]
            return r.reply_errors(request.rpc, errors), outcome.close
        if outcome.data is not None:
            return r.reply_data(request.rpc, outcome.data), outcome.close
        return r.reply_ok(request.rpc), outcome.close

    def _compatible(self, err: RpcError) -> RpcError:
        # RFC 6241 Appendix A: malformed-message is new in base:1.1 and must not be sent to
        # base:1.0 clients.
        if err.tag == "malformed-message" and not self._base11:
            return dataclasses.replace(err, tag="operation-failed")
        return err

    def _on_event(self, event: DeviceEvent) -> None:
        if self._closed:
            return
        content = st.notification_content(
            event, ct_name(event.port) if event.port is not None else None)
        if content is None:
            return
        selected = filters.apply(content, self._notification_filter)
        if not selected.children:
            return
        self._send(r.notification(st.rfc3339(event.time), selected,
                                  {st.ONU_TYPES_PREFIX: st.ONU_TYPES}))

    # ---- output --------------------------------------------------------------------------
    def _frame(self, message: bytes) -> bytes:
        return fr.encode_chunked(message) if self._base11 else fr.encode_eom(message)

    def _send(self, message: bytes) -> None:
        self._write(self._frame(message))

    def _write(self, data: bytes) -> None:
        chan = self._chan
        if chan is None or chan.is_closing():
            return
        if chan.get_write_buffer_size() > _MAX_BACKLOG:
            log.warning("%s session %d: client is not reading; closing", self._device.name,
                        self._id)
            self.close()
            return
        with contextlib.suppress(asyncssh.Error, OSError):
            chan.write(data)
