"""The SSH CLI driver: the driver contract over an interactive CLI, one platform file per dialect.

    platform = load_platform("huawei-olt")
    async with CliDriver(SshTarget("10.0.0.1", username="admin", password=...,
                                   known_hosts=Path("known_hosts")), platform) as olt:
        await olt.load_candidate(["interface gpon 0/1", "ont add 0 1 sn-auth ...", "quit"])
        print((await olt.compare()).text)   # what is not in the running config yet
        await olt.commit()                  # config mode, line by line, stop at a refusal
        await olt.save()

What a CLI cannot do is declared (:attr:`CliDriver.capabilities`) and refused with
UnsupportedError: there is no candidate datastore (the driver keeps the lines), no
validation before applying, no confirmed commit and no generic undo. Lines apply one by one
as they are sent, so a refusal in the middle leaves the lines before it applied (not a
transaction); the error says which line failed and carries the device's words.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence

import asyncssh

from drivers.base import Capabilities, CommitResult, DeviceEvent, Diff, Driver, Snapshot
from drivers.cli import text
from drivers.cli.channel import CliChannel, check_line, run_exec
from drivers.cli.diff import Planned, diff_lines, plan
from drivers.cli.platform import Platform
from drivers.errors import CliRejectedError, DriverError, SessionLostError
from drivers.ssh_transport import SshTarget, open_ssh

log = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0


class CliDriver(Driver[list[str]]):
    """One SSH session to one device's CLI, in the dialect ``platform`` describes.

    ``target.timeout`` bounds connecting and logging in; ``platform.timeout`` bounds each
    command. A timeout or a lost session closes the driver (the CLI is out of step after
    either); ``reconnect()`` opens a new session.
    """

    protocol = "ssh"

    def __init__(self, target: SshTarget, platform: Platform) -> None:
        self.target = target
        self.platform = platform
        self.host = target.host
        self.timeout = target.timeout
        self._conn: asyncssh.SSHClientConnection | None = None
        self._channel: CliChannel | None = None
        self._candidate: list[str] = []
        # One command at a time on the shell: polling, commits and reads share it.
        self._lock = asyncio.Lock()

    # ---- lifecycle -------------------------------------------------------------------------
    async def connect(self) -> None:
        """Log in, open the shell, wait for the prompt and turn paging off."""
        if self.connected:
            return
        conn = await open_ssh(self.target)
        try:
            self._channel = await CliChannel.open(conn, self.platform, self.host,
                                                  self.target.timeout)
        except BaseException:
            conn.close()
            await _wait_closed(conn)
            raise
        self._conn = conn
        log.debug("%s: CLI session open (platform %s, prompt %r)", self.host,
                  self.platform.name, self._channel.prompt)

    async def close(self) -> None:
        """Close the shell and the connection; a command in progress fails with
        SessionLostError. Idempotent."""
        channel, conn = self._channel, self._conn
        self._channel = self._conn = None
        if channel is not None:
            await channel.close()
        if conn is not None:
            conn.close()
            await _wait_closed(conn)

    @property
    def connected(self) -> bool:
        """True while the shell session is open."""
        return self._channel is not None and not self._channel.closed

    @property
    def prompt(self) -> str:
        """The prompt the device showed last ('' when not connected)."""
        return self._channel.prompt if self._channel is not None else ""

    @property
    def channel(self) -> CliChannel:
        """The open shell session (SessionLostError when there is none)."""
        channel = self._channel
        if channel is None or channel.closed:
            raise SessionLostError("not connected", host=self.host)
        return channel

    @property
    def capabilities(self) -> Capabilities:
        """A CLI has no candidate, validation, confirmed commit, transactions or undo; events
        come from polling a display command."""
        return Capabilities(protocol="ssh", candidate=False, confirmed_commit=False,
                            validate=False, notifications=False, transactions=False,
                            locking=False, rollback="none",
                            details=(f"platform={self.platform.name}",))

    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[CliChannel]:
        """The shell, held for one operation; closes the driver when the session is lost."""
        async with self._lock:
            channel = self.channel
            try:
                yield channel
            except CliRejectedError:
                # A refused line leaves the session usable, unless tidying up lost it.
                if channel.closed:
                    await self.close()
                raise
            except DriverError:
                await self.close()  # timed out or lost: the CLI is out of step
                raise
            except BaseException:
                # Cancelled mid-command: the channel closed itself; drop the connection
                # without awaiting anything more in a cancelled task.
                if channel.closed:
                    self._drop()
                raise

    def _drop(self) -> None:
        conn = self._conn
        self._channel = self._conn = None
        if conn is not None:
            conn.close()

    # ---- reading ---------------------------------------------------------------------------
    async def send_command(self, line: str, *, check: bool = False) -> str:
        """Run one line in the current mode and return its output (prompt, echo and paging
        removed); with ``check`` a reply matching an error pattern raises CliRejectedError."""
        async with self._session() as channel:
            if check:
                return await channel.send_checked(line, 1)
            return await channel.send_command(line)

    async def get_config(self, filter: str | None = None) -> Snapshot[list[str]]:
        """The running configuration as lines (the platform's show-running command).

        ``filter`` is a regular expression: only lines matching it (``re.search``) are kept.
        """
        command = self.platform.show_running
        if command is None:
            raise self._unsupported("show its running configuration (no show_running command "
                                    f"in platform {self.platform.name})")
        output = await self.send_command(command, check=True)
        lines = output.split("\n")
        if filter is not None:
            pattern = re.compile(filter)
            lines = [line for line in lines if pattern.search(line)]
        return Snapshot(lines, "running")

    async def get_state(self, filter: str | None = None, *,
                        check: bool = True) -> Snapshot[str]:
        """The output of the display command ``filter`` (e.g. ``display ont info 0 1 0 all``).

        With ``check`` (default) a reply matching an error pattern raises CliRejectedError;
        note that some devices word an empty table as a failure.
        """
        if not filter:
            raise self._unsupported("read state without a display command")
        return Snapshot(await self.send_command(filter, check=check), "state")

    async def exec(self, command: str, *, check: bool = True) -> str:
        """Run a one-shot command on an SSH exec channel (no PTY, no prompt) and return its
        standard output.

        With ``check``, a non-zero exit status or an output line matching an error pattern
        raises CliRejectedError (``line_no`` 1, the whole command as the line, the device's
        stdout and stderr as its output). A timeout closes this exec channel only; the
        shell session is not involved.
        """
        check_line(command)
        conn = self._conn
        if conn is None:
            raise SessionLostError("not connected", host=self.host)
        result = await run_exec(conn, command, self.host, self.platform.timeout)
        stdout = _str(result.stdout)
        if check and (result.exit_status != 0
                      or text.first_error(stdout, self.platform.errors) is not None):
            raise CliRejectedError(command, 1, stdout + _str(result.stderr), host=self.host)
        return stdout

    # ---- changing --------------------------------------------------------------------------
    async def load_candidate(self, payload: list[str], *, replace: bool = False) -> None:
        """Stage CLI lines (kept by the driver: a CLI has no candidate datastore).

        Lines add to those already staged. ``replace=True`` is refused: a CLI has no generic
        way to make the whole configuration equal to a set of lines.
        """
        if replace:
            raise self._unsupported("replace the whole configuration (lines merge into it)")
        for line in payload:
            check_line(line)
        self._candidate.extend(payload)

    @property
    def candidate(self) -> list[str]:
        """The staged lines (a copy)."""
        return list(self._candidate)

    async def _plan(self) -> list[Planned]:
        running = None
        if self.platform.show_running is not None:
            running = (await self.get_config()).data
        return plan(self._candidate, running, self.platform)

    async def compare(self) -> Diff:
        """The staged lines not already in the running configuration, as ``+ line``, with
        their section lines (``  line`` when the section exists, ``+`` when it is new).

        A line-based view (see :mod:`drivers.cli.diff` for its limits): lines must be
        spelled as the show-running command prints them. Without a show-running command
        every staged line is shown.
        """
        if not self._candidate:
            return Diff(())
        return Diff(diff_lines(await self._plan()))

    async def commit(self, *, confirm_timeout: float | None = None) -> CommitResult:
        """Send what :meth:`compare` shows, line by line, in config mode; then leave config
        mode and run the platform's commit command if it has one (a refusal there is
        reported as line ``len(candidate) + 1``).

        Each line's reply is checked against the platform's error patterns; the first refusal
        stops the batch with CliRejectedError naming the line, its number in the candidate
        and the device's message. The lines before it stay applied (a CLI has no
        transaction); the platform's abort command, if any, drops staged changes; the
        session leaves config mode either way. The candidate is kept on failure and cleared
        on success. ``confirm_timeout`` is refused: a CLI has no confirmed commit.
        """
        if confirm_timeout is not None:
            raise self._unsupported("commit with a confirm timeout (no confirmed commit)")
        if not self._candidate:
            return CommitResult(changed=False)
        planned = await self._plan()
        if not planned:
            self._candidate.clear()
            return CommitResult(changed=False)
        async with self._session() as channel:
            await self._apply(channel, planned)
        self._candidate.clear()
        return CommitResult(changed=True)

    async def _apply(self, channel: CliChannel, planned: Sequence[Planned]) -> None:
        platform = self.platform
        config_mode = platform.modes.config is not None
        try:
            if config_mode:
                await channel.goto("config")
            await channel.send_lines([(p.line_no, p.line) for p in planned])
            if config_mode:
                await channel.goto("privileged")
            if platform.commit is not None:
                await channel.send_checked(platform.commit, len(self._candidate) + 1)
        except CliRejectedError:
            # Tidy up, but the refusal is what the caller must see, not a failure in tidying.
            try:
                if platform.abort is not None:
                    await channel.send_command(platform.abort)
                if config_mode:
                    await channel.goto("privileged")
            except DriverError as exc:
                log.warning("%s: could not tidy up after a refused line: %s", self.host, exc)
            raise

    async def save(self) -> str:
        """Make the running configuration the startup one (the platform's save command,
        answering its confirmation questions); returns the device's output."""
        save = self.platform.save
        if save is None:
            raise self._unsupported(f"save (no save command in platform {self.platform.name})")
        async with self._session() as channel:
            if save.mode is not None:
                await channel.goto(save.mode)
            return await channel.send_checked(save.command, 1, answers=save.confirm)

    async def confirm(self) -> None:
        """Refused: a CLI has no confirmed commit to confirm."""
        raise self._unsupported("confirm a commit (no confirmed commit)")

    async def discard(self) -> None:
        """Drop the staged lines (nothing was sent)."""
        self._candidate.clear()

    async def rollback(self) -> None:
        """Refused: a CLI has no generic undo (capabilities.rollback is "none")."""
        raise self._unsupported("roll back (a CLI has no generic undo)")

    # ---- events ----------------------------------------------------------------------------
    async def events(self, poll_command: str | None = None,
                     interval: float = 5.0) -> AsyncGenerator[DeviceEvent, None]:
        """Poll a display command every ``interval`` seconds; yield a ``poll-changed`` event
        (``fields["command"]``, ``raw`` = the new output) each time its output changes.

        Lines matching the platform's ``volatile`` patterns (times, counters) are ignored.
        The first poll sets the baseline and yields nothing. ``poll_command`` defaults to the
        platform's ``poll_command``.
        """
        command = poll_command or self.platform.poll_command
        if command is None:
            raise self._unsupported("poll for events (no poll command given or in the "
                                    "platform)")
        volatile = self.platform.volatile
        before = text.without((await self.send_command(command)).split("\n"), volatile)
        while True:
            await asyncio.sleep(interval)
            output = await self.send_command(command)
            now = text.without(output.split("\n"), volatile)
            if now != before:
                before = now
                yield DeviceEvent("poll-changed", self.host, {"command": command}, raw=output)


def _str(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


async def _wait_closed(conn: asyncssh.SSHClientConnection) -> None:
    try:
        await asyncio.wait_for(conn.wait_closed(), CLOSE_TIMEOUT)
    except (TimeoutError, OSError, asyncssh.Error):
        log.debug("connection did not close within %s s", CLOSE_TIMEOUT)
