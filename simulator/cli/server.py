"""The SSH server behind a device's CLI: authentication, sessions, faults; no command meaning.

Each SSH session gets its own interpreter (:class:`~simulator.cli.huawei.HuaweiCli` on an OLT,
:class:`~simulator.cli.uci.UciShell` on a gateway) and its own device session id. An exec
request (``ssh host 'cmd'``) runs its lines in order, stops at the first that fails and
reports its status; a shell request shows the banner and prompts, pages long output and runs
until ``quit``/``exit``, end of input, or a fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import NoReturn

import asyncssh
from asyncssh.connection import SSHConnection

from simulator.cli.huawei import HuaweiCli
from simulator.cli.shell import Reply, Shell
from simulator.cli.terminal import Kind, Terminal
from simulator.cli.uci import UciShell
from simulator.devices import Gateway, Olt

log = logging.getLogger(__name__)

LOGIN_TIMEOUT = 30.0
CLOSE_TIMEOUT = 5.0
DROP_GRACE = 1.0  # how long a dropped session's last bytes may take to leave


class _Dropped(Exception):
    """A fault (or the device) closed the session: stop without an exit status."""


class CliServer:
    """The SSH CLI face of one simulated device, listening on a real TCP port."""

    port: int  # the bound TCP port (the real one when started with port 0)

    def __init__(self, device: Olt | Gateway) -> None:
        self.device = device
        self.port = 0
        self._acceptor: asyncssh.SSHAcceptor | None = None
        self._conns: set[asyncssh.SSHServerConnection] = set()
        self._sessions: set[asyncio.Task[None]] = set()

    @classmethod
    async def start(cls, device: Olt | Gateway, host: str, port: int,
                    host_key: asyncssh.SSHKey) -> CliServer:
        """Listen on ``host:port`` (0 picks a free port, then in ``.port``) with ``host_key``.

        Logins are checked with ``device.check_login`` (so the ``wrong_credentials`` fault
        applies); only password authentication is offered, and no forwarding of any kind.
        """
        server = cls(device)
        server._acceptor = await asyncssh.create_server(
            lambda: _SshServer(server), host, port,
            server_host_keys=[host_key],
            process_factory=server._session,
            encoding="utf-8", errors="replace",
            # The session does its own line editing: the pager needs single keystrokes.
            line_editor=False,
            allow_scp=False, agent_forwarding=False, x11_forwarding=False,
            login_timeout=LOGIN_TIMEOUT,
        )
        server.port = server._acceptor.get_port()
        return server

    async def close(self) -> None:
        """Stop listening, drop every open session, and wait until they have ended."""
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None
        conns = list(self._conns)
        for conn in conns:
            conn.close()
        for conn in conns:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(conn.wait_closed(), CLOSE_TIMEOUT)
        tasks = list(self._sessions)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    # ---- sessions ------------------------------------------------------------------------
    async def _session(self, process: asyncssh.SSHServerProcess[str]) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._sessions.add(task)
        device = self.device
        sid = device.new_session_id()
        conn = process.channel.get_connection()
        device.session_closers[sid] = conn.close
        status: int | None = None
        try:
            if process.subsystem is not None:
                process.stderr.write(f"subsystem {process.subsystem!r} is not offered here\n")
                status = 1
            else:
                status = await _Session(device, process, sid, conn).run()
        except _Dropped:
            status = None
        except (asyncssh.Error, OSError) as exc:
            log.debug("%s: CLI session %d ended: %s", device.name, sid, exc)
            status = None
        finally:
            if isinstance(device, Olt):
                device.session_closed(sid)
            else:
                device.session_closers.pop(sid, None)
            if task is not None:
                self._sessions.discard(task)
        if status is not None:
            with contextlib.suppress(asyncssh.Error, OSError):
                process.exit(status)


class _SshServer(asyncssh.SSHServer):
    def __init__(self, owner: CliServer) -> None:
        self._owner = owner
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._owner._conns.add(conn)
        device = self._owner.device
        if isinstance(device, Gateway) and not device.reachable:
            # A gateway whose ONT is down or carries no service on its UNI has no management
            # path: the connection goes nowhere, as it would on a real network.
            conn.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._owner._conns.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return self._owner.device.check_login(username, password)


class _Session:
    """The I/O of one SSH session around a pure interpreter."""

    def __init__(self, device: Olt | Gateway, process: asyncssh.SSHServerProcess[str], sid: int,
                 conn: SSHConnection) -> None:
        self.device = device
        self.process = process
        self.conn = conn
        self.pty = process.get_terminal_type() is not None
        interactive = process.command is None
        self.shell: Shell = (HuaweiCli(device, sid, interactive=interactive)
                             if isinstance(device, Olt)
                             else UciShell(device, interactive=interactive))
        self.commands = 0

    async def run(self) -> int:
        if self.process.command is not None:
            return await self._exec(self.process.command)
        return await self._interactive()

    async def _exec(self, command: str) -> int:
        for line in command.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
            if not line.strip():
                continue
            reply = await self._command(line)
            await self._write(reply.output, reply=True)
            if reply.close:
                return 0
            if not reply.ok:
                return reply.status
        return 0

    async def _interactive(self) -> int:
        term = Terminal(echo=self.pty)
        shell = self.shell
        await self._write(shell.banner + shell.prompt)
        while True:
            try:
                data = await self.process.stdin.read(4096)
            except (asyncssh.TerminalSizeChanged, asyncssh.BreakReceived,
                    asyncssh.SignalReceived):
                continue
            if not data:
                return 0
            for ch in data:
                event = term.feed(ch)
                if event is None:
                    continue
                if event.kind in (Kind.ECHO, Kind.PAGE):
                    await self._write(event.text)
                elif event.kind in (Kind.PAGE_DONE, Kind.INTERRUPT):
                    await self._write(event.text + "\n" + shell.prompt)
                elif event.kind == Kind.EOF:
                    await self._write("\n")
                    return 0
                elif not event.text.strip():
                    await self._write("\n" + shell.prompt)
                else:
                    await self._write("\n")
                    reply = await self._command(event.text)
                    if reply.close:
                        await self._write(reply.output, reply=True)
                        return 0
                    text, done = term.show(reply.output, shell.page_lines)
                    await self._write(text + ("\n" + reply.prompt if done else ""), reply=True)

    async def _command(self, line: str) -> Reply:
        """Run one line under the device's faults (counted; delayed by the latency fault)."""
        faults = self.device.faults
        self.commands += 1
        if faults.drop_after is not None and self.commands > faults.drop_after:
            await self._drop()
        reply = self.shell.handle(line)
        if faults.latency > 0:
            await asyncio.sleep(faults.latency)
        return reply

    async def _write(self, text: str, *, reply: bool = False) -> None:
        """Send text (CRLF line ends on a PTY); ``reply`` marks a command's answer."""
        if not text:
            return
        if self.pty:
            text = text.replace("\r\n", "\n").replace("\n", "\r\n")
        if reply and self.device.faults.drop_mid_reply:
            self.process.stdout.write(text[:len(text) // 2])
            await self._drop()
        self.process.stdout.write(text)
        await self.process.stdout.drain()

    async def _drop(self) -> NoReturn:
        """End the session abruptly: no exit status, then the connection goes.

        The channel is closed first because a disconnect would overtake data still on its way:
        OpenSSH quits on the disconnect message without printing what came just before it.
        """
        channel = self.process.channel
        channel.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(channel.wait_closed(), DROP_GRACE)
        self.conn.close()
        raise _Dropped
