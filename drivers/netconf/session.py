"""One NETCONF session over one SSH connection (RFC 6241, 6242): the part that awaits.

Requests are written under a lock and answered by message-id: a reader task decodes every
message the server sends and resolves the future registered for its id, so any number of
requests can be in flight at once (pipelining). ``<notification>`` messages go to a bounded
queue. Whatever ends the session (``close``, the device, a broken frame) fails every pending
request at once: nothing is ever left waiting for a reply that cannot come.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re

import asyncssh

from drivers.errors import DriverError, DriverTimeoutError, ProtocolError, SessionLostError
from drivers.netconf import framing
from drivers.netconf import rpc as proto
from drivers.netconf.framing import Framing
from drivers.ssh_transport import SshTarget, convert, open_ssh

log = logging.getLogger(__name__)

_READ_SIZE = 256 * 1024
_CLOSE_SESSION_TIMEOUT = 2.0  # close-session is a courtesy: never wait long for it
# Requests in flight per session. Past a few, pipelining gains nothing (client and server are
# both busy); past what a device reads ahead it loses: the simulator's server stops reading at
# 32 queued requests and throughput then halves.
DEFAULT_MAX_IN_FLIGHT = 16
_OP_NAME = re.compile(rb"<rpc\b[^>]*>\s*<(?:[\w.-]+:)?([\w.-]+)")


def _op_name(message: bytes) -> str:
    m = _OP_NAME.search(message, 0, 512)
    return m.group(1).decode() if m else "rpc"


class NetconfSession:
    """A NETCONF session: hello exchange, framed writes, replies matched by message-id.

    Open with ``await NetconfSession.open(target)``. ``rpc`` may be called concurrently;
    requests are pipelined on the one channel. Errors are ``DriverError`` subtypes.
    """

    def __init__(self, conn: asyncssh.SSHClientConnection, writer: asyncssh.SSHWriter[bytes],
                 reader: asyncssh.SSHReader[bytes], host: str, *,
                 max_message: int = framing.DEFAULT_MAX_MESSAGE,
                 notification_backlog: int = 1024,
                 max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        self.host = host
        self.hello: proto.Hello | None = None
        self.framing: Framing = "1.0"
        self.subscribed = False  # set by whoever sent <create-subscription> on this session
        self._conn = conn
        self._writer = writer
        self._reader = reader
        self._decoder = framing.MessageDecoder(max_message)
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[proto.Reply]] = {}
        self._write_lock = asyncio.Lock()
        self._in_flight = asyncio.Semaphore(max_in_flight)
        # None marks the end of the session; one slot more so it always fits.
        self._notes: asyncio.Queue[proto.Notification | None] = asyncio.Queue(
            notification_backlog + 1)
        self._backlog = notification_backlog
        self._notes_dropped = 0
        self._reader_task: asyncio.Task[None] | None = None
        self._closing = False
        self._ended = False
        self._end_error: DriverError | None = None  # why the session ended (None: still open)
        self._closed_by_us = False

    # ---- opening ------------------------------------------------------------------------
    @classmethod
    async def open(cls, target: SshTarget, *, max_message: int = framing.DEFAULT_MAX_MESSAGE,
                   base11: bool = True, notification_backlog: int = 1024,
                   max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> NetconfSession:
        """Connect, open the ``netconf`` subsystem and exchange hellos within
        ``target.timeout``. With ``base11=False`` only base:1.0 is advertised;
        ``max_in_flight`` bounds requests written and not yet answered (more callers wait)."""
        conn = await open_ssh(target)
        try:
            try:
                async with asyncio.timeout(target.timeout):
                    writer, reader, _ = await conn.open_session(subsystem="netconf",
                                                                encoding=None)
            except (OSError, asyncssh.Error, TimeoutError) as exc:
                raise convert(exc, target.host) from exc
            self = cls(conn, writer, reader, target.host, max_message=max_message,
                       notification_backlog=notification_backlog,
                       max_in_flight=max_in_flight)
            await self._exchange_hellos(base11, target.timeout)
        except BaseException:
            conn.close()
            raise
        return self

    async def _exchange_hellos(self, base11: bool, limit: float) -> None:
        ours = [proto.BASE_10, proto.BASE_11] if base11 else [proto.BASE_10]
        # Both hellos go out at once (RFC 6241 8.1); ours is always framed as base:1.0.
        self._writer.write(framing.encode_10(proto.client_hello(ours)))
        messages: list[bytes] = []
        try:
            async with asyncio.timeout(limit):
                while not messages:
                    data = await self._reader.read(_READ_SIZE)
                    if not data:
                        raise SessionLostError("the device closed the session before its "
                                               "<hello>", host=self.host)
                    messages = self._decoder.feed(data)
        except TimeoutError as exc:
            raise DriverTimeoutError(f"no <hello> within {limit:g} s", host=self.host) \
                from exc
        except (OSError, asyncssh.Error) as exc:
            raise convert(exc, self.host) from exc
        except ProtocolError as exc:
            exc.host = self.host
            raise
        try:
            self.hello = proto.parse_hello(messages[0])
        except ProtocolError as exc:
            exc.host = self.host
            raise
        server_bases = {proto.BASE_10, proto.BASE_11} & set(self.hello.capabilities)
        if not base11 and proto.BASE_10 not in server_bases:
            raise ProtocolError("the device offers only base:1.1 and base:1.0 was asked for",
                                host=self.host)
        self.framing = "1.1" if base11 and proto.BASE_11 in server_bases else "1.0"
        held = self._decoder.set_framing(self.framing)
        self._reader_task = asyncio.get_running_loop().create_task(
            self._read_loop(held), name=f"netconf-reader-{self.host}")

    # ---- state --------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        """True until the session ends or starts closing."""
        return self._end_error is None and not self._closing

    @property
    def session_id(self) -> int | None:
        """The id the device gave this session in its hello."""
        return self.hello.session_id if self.hello else None

    @property
    def capabilities(self) -> tuple[str, ...]:
        """The capability URIs of the device's hello."""
        return self.hello.capabilities if self.hello else ()

    @property
    def pending(self) -> int:
        """Requests in flight (written, or about to be, and not yet answered)."""
        return len(self._pending)

    @property
    def notifications_dropped(self) -> int:
        """Notifications discarded because nobody consumed the backlog in time."""
        return self._notes_dropped

    def _gone(self) -> DriverError:
        if self._closed_by_us:
            return SessionLostError("the session is closed", host=self.host)
        if self._end_error is not None:
            return type(self._end_error)(self._end_error.message, host=self.host)
        return SessionLostError("the session is closing", host=self.host)

    # ---- requests -----------------------------------------------------------------------
    async def rpc(self, build: proto.Builder, *,
                  timeout: float) -> proto.Reply:  # noqa: ASYNC109 - enforced inside
        """Send one request (``build`` turns a message-id into the ``<rpc>`` bytes) and
        return its reply, parsed but unchecked (see ``proto.check``).

        Raises ``DriverTimeoutError`` when no reply arrives within ``timeout`` (the request
        may still take effect on the device), ``SessionLostError`` when the session ends
        first, ``ProtocolError`` when the device breaks the framing or the XML.
        """
        if not self.is_open:
            raise self._gone()
        return await self._rpc(build, timeout)

    async def _rpc(self, build: proto.Builder, limit: float) -> proto.Reply:
        mid = str(next(self._ids))
        message = build(mid)
        fut: asyncio.Future[proto.Reply] = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(limit), self._in_flight:
                self._pending[mid] = fut
                async with self._write_lock:
                    if self._end_error is not None:
                        raise self._gone()
                    self._writer.write(framing.encode(message, self.framing))
                    await self._writer.drain()
                return await fut
        except TimeoutError as exc:
            if isinstance(exc, DriverError):
                raise
            raise DriverTimeoutError(f"no reply to <{_op_name(message)}> within {limit:g} s",
                                     host=self.host) from exc
        except (OSError, asyncssh.Error) as exc:
            raise convert(exc, self.host) from exc
        finally:
            self._pending.pop(mid, None)

    # ---- notifications ------------------------------------------------------------------
    async def next_notification(self) -> proto.Notification | None:
        """The next notification; None once the session was closed by ``close``.

        Raises the error that ended the session if it ended any other way.
        """
        item = await self._notes.get()
        if item is None:
            self._notes.put_nowait(None)  # the end stays visible to every later call
            if self._closed_by_us:
                return None
            raise self._gone()
        return item

    # ---- reading ------------------------------------------------------------------------
    async def _read_loop(self, held: list[bytes]) -> None:
        error: DriverError = SessionLostError("the session ended", host=self.host)
        try:
            for message in held:
                self._dispatch(message)
            while True:
                data = await self._reader.read(_READ_SIZE)
                if not data:
                    error = SessionLostError("the device closed the session", host=self.host)
                    break
                for message in self._decoder.feed(data):
                    self._dispatch(message)
        except asyncio.CancelledError:
            error = SessionLostError("the session was closed", host=self.host)
            raise
        except DriverError as exc:
            exc.host = self.host
            error = exc
        except (OSError, asyncssh.Error) as exc:
            error = convert(exc, self.host)
        except Exception as exc:  # a bug here must still release every waiter
            log.exception("%s: NETCONF reader failed", self.host)
            error = ProtocolError(f"unexpected {type(exc).__name__} while reading: {exc}",
                                  host=self.host)
        finally:
            self._end(error)

    def _dispatch(self, message: bytes) -> None:
        parsed = proto.parse_message(message)
        if isinstance(parsed, proto.Notification):
            if self._notes.qsize() >= self._backlog:
                # The consumer fell behind: keep the newest, count what was lost.
                self._notes.get_nowait()
                self._notes_dropped += 1
                log.warning("%s: notification backlog full; dropped the oldest", self.host)
            self._notes.put_nowait(parsed)
            return
        if parsed.message_id is None:
            # The device could not read one of our requests well enough to echo its id;
            # which one is unknowable, so no reply can be trusted to match any more.
            detail = "; ".join(f"{e.tag}: {e.message}" for e in parsed.errors) or "no details"
            raise ProtocolError(f"<rpc-reply> without message-id ({detail})", host=self.host)
        fut = self._pending.pop(parsed.message_id, None)
        if fut is None:
            # The caller timed out or was cancelled; its late reply is dropped.
            log.debug("%s: reply to message-id %s that nobody awaits", self.host,
                      parsed.message_id)
            return
        if not fut.done():
            fut.set_result(parsed)

    def _end(self, error: DriverError) -> None:
        """Mark the session ended and fail every pending request with ``error``."""
        if self._end_error is None:
            self._end_error = error
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(type(error)(error.message, host=self.host))
        if self._ended:
            return
        self._ended = True
        self._notes.put_nowait(None)
        with contextlib.suppress(Exception):
            self._writer.channel.close()
        self._conn.close()

    # ---- closing ------------------------------------------------------------------------
    async def close(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """End the session: fail what is pending, say ``<close-session>`` (briefly, if the
        device still listens), close the connection and wait for it. Idempotent."""
        if self._closing:
            await self._wait_closed(timeout)
            return
        self._closing = True
        self._closed_by_us = True
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(SessionLostError("the session was closed with this request "
                                                   "in flight", host=self.host))
        self._pending.clear()
        if self._end_error is None:
            with contextlib.suppress(DriverError):
                await self._rpc(proto.close_session(), min(timeout, _CLOSE_SESSION_TIMEOUT))
        await self._shutdown(timeout)

    async def abort(self, error: DriverError,
                    timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """End the session at once, without ``<close-session>`` (the device is not
        answering, or its replies can no longer be trusted); ``error`` is what pending
        requests and ``next_notification`` report."""
        self._closing = True
        self._end(error)
        await self._shutdown(timeout)

    @property
    def closed_by_us(self) -> bool:
        """True if ``close`` ended the session (rather than the device or an error)."""
        return self._closed_by_us

    async def _shutdown(self, limit: float) -> None:
        self._end(SessionLostError("the session was closed", host=self.host))
        task = self._reader_task
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # we are being cancelled ourselves, not just the reader
        await self._wait_closed(limit)

    async def _wait_closed(self, limit: float) -> None:
        with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
            async with asyncio.timeout(limit):
                await self._conn.wait_closed()
