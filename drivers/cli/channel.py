"""An interactive CLI session over SSH: send a line, read until the prompt comes back.

One :class:`CliChannel` is one shell channel with a PTY on an open asyncssh connection. A
command is the line plus the platform's line ending; its reply is everything up to the next
prompt (the platform's combined prompt pattern matched on the line the cursor is on), with
the echo, the prompt, ANSI sequences and pager prompts taken out. The pager is answered when
paging could not be turned off; questions a command asks (``Confirm``) are answered too.

Every read is bounded by the platform's per-command timeout. The session's state is unknown
after a timeout, a lost connection or a cancelled command (the device may still be printing
the old reply), so any of these closes the channel; only a refused line
(:class:`~drivers.errors.CliRejectedError`) leaves it usable. Commands are serialised by the
caller (the driver holds one lock per session).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Sequence

import asyncssh

from drivers.cli import text
from drivers.cli.platform import Confirm, Mode, Platform, Target
from drivers.errors import (
    CliRejectedError,
    DriverError,
    DriverTimeoutError,
    ProtocolError,
    SessionLostError,
    UnsupportedError,
)
from drivers.ssh_transport import convert

log = logging.getLogger(__name__)

READ_SIZE = 65536
# A line break would send two commands under one prompt wait; other controls (Ctrl-C, ESC)
# would edit or interrupt the device's line. Neither belongs in a command.
_UNSAFE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
CLOSE_TIMEOUT = 2.0
MAX_MODE_STEPS = 6  # enough for sub-config -> privileged -> user and back up to config


class CliChannel:
    """One interactive shell session speaking one platform's dialect."""

    def __init__(self, process: asyncssh.SSHClientProcess[str], platform: Platform,
                 host: str) -> None:
        self._process = process
        self.platform = platform
        self.host = host
        self.prompt = ""  # the last prompt seen, as displayed
        self.banner = ""  # what the device printed before its first prompt
        self.pages_answered = 0  # pager prompts answered (paging could not be disabled)
        self._closed = False

    # ---- lifecycle -------------------------------------------------------------------------
    @classmethod
    async def open(cls, conn: asyncssh.SSHClientConnection, platform: Platform, host: str,
                   login_timeout: float) -> CliChannel:
        """Start the shell (or ``platform.shell_command``) with a PTY, wait for the first
        prompt within ``login_timeout`` seconds and turn paging off."""
        term = platform.terminal
        try:
            async with asyncio.timeout(login_timeout):
                process = await conn.create_process(
                    *((platform.shell_command,) if platform.shell_command else ()),
                    term_type=term.type, term_size=(term.width, term.height),
                    encoding="utf-8", errors="replace")
        except (OSError, asyncssh.Error, TimeoutError) as exc:
            raise convert(exc, host) from exc
        channel = cls(process, platform, host)
        try:
            reply = await channel._exchange(None, (), login_timeout)
            channel.banner = reply.output
            for line in platform.paging.disable:
                # A device that lacks the command still works: the pager gets answered.
                # Part of logging in, so bounded like it rather than by the command timeout.
                out = (await channel._exchange(line, (), login_timeout)).output
                if text.first_error(out, platform.errors) is not None:
                    log.info("%s: paging not disabled by %r: %s", host, line, out.strip())
        except BaseException:
            await channel.close()
            raise
        return channel

    @property
    def closed(self) -> bool:
        """True once the channel is closed (by us, the device, or a failure)."""
        return self._closed

    async def close(self) -> None:
        """Close the channel and wait (bounded) until it is gone. Idempotent."""
        if self._closed:
            return
        self._closed = True
        process = self._process
        process.close()
        with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
            await asyncio.wait_for(process.wait_closed(), CLOSE_TIMEOUT)

    # ---- modes -----------------------------------------------------------------------------
    @property
    def mode(self) -> Mode | None:
        """The mode of the current prompt (None: the platform does not tell modes apart)."""
        return self.platform.mode_of(self.prompt)

    async def goto(self, target: Target) -> None:
        """Move to ``target`` mode with the platform's mode commands."""
        modes = self.platform.modes
        for _ in range(MAX_MODE_STEPS):
            current = self.mode
            if current == target:
                return
            if current is None:
                raise ProtocolError(f"prompt {self.prompt!r} matches no mode of platform "
                                    f"{self.platform.name}", host=self.host)
            step: str | None
            if current in ("config", "sub_config"):
                step = modes.end
            elif current == "user":
                step = modes.enable
            elif target == "user":
                step = modes.disable
            else:
                step = modes.config
            if step is None:
                raise UnsupportedError(f"platform {self.platform.name} has no command to go "
                                       f"from {current} to {target} mode", host=self.host)
            await self.send_checked(step, 0)
        raise ProtocolError(f"could not reach {target} mode (now at {self.prompt!r})",
                            host=self.host)

    # ---- commands --------------------------------------------------------------------------
    async def send_command(self, line: str, *, answers: Sequence[Confirm] = ()) -> str:
        """Send one line and return its output (no error check), answering ``answers`` and
        the platform's questions on the way."""
        reply = await self._exchange(line, answers, self.platform.timeout)
        return reply.output

    async def send_checked(self, line: str, line_no: int, *,
                           answers: Sequence[Confirm] = ()) -> str:
        """Send one line; CliRejectedError if its output matches an error pattern."""
        output = await self.send_command(line, answers=answers)
        if text.first_error(output, self.platform.errors) is not None:
            raise CliRejectedError(line, line_no, output, host=self.host)
        return output

    async def send_lines(self, lines: Sequence[str] | Sequence[tuple[int, str]]) -> list[str]:
        """Send lines in order, checking each; stop at the first refused line.

        Items are lines (numbered from 1) or ``(line_no, line)`` pairs. The error carries the
        line, its number and the device's output; the lines after it are not sent.
        """
        outputs: list[str] = []
        for i, item in enumerate(lines, 1):
            line_no, line = item if isinstance(item, tuple) else (i, item)
            outputs.append(await self.send_checked(line, line_no))
        return outputs

    async def _exchange(self, line: str | None, answers: Sequence[Confirm],
                        seconds: float) -> text.Reply:
        """Write ``line`` (None: nothing) and read until a prompt, within ``seconds``."""
        check_line(line)
        if self._closed:
            raise SessionLostError("the CLI session is closed", host=self.host)
        platform = self.platform
        answers = [*answers, *platform.questions]
        buffer = ""
        try:
            async with asyncio.timeout(seconds):
                if line is not None:
                    await self._write(line + platform.line_ending)
                while True:
                    buffer += await self._read(line, buffer)
                    # Only the row the cursor is on can hold a prompt; earlier rows are output.
                    tail = text.last_line(buffer)
                    pager = platform.paging.prompt
                    found = pager.search(tail) if pager is not None else None
                    if found is not None:
                        buffer = buffer[:buffer.rfind("\n") + 1] + tail[:found.start()]
                        self.pages_answered += 1
                        await self._write(platform.paging.key)
                        continue
                    if platform.prompts.any.search(tail):
                        break
                    question = next((a for a in answers if a.prompt.search(tail)), None)
                    if question is not None:
                        buffer += "\n"  # the question is answered: it is output now
                        await self._write(question.answer + platform.line_ending)
        except TimeoutError as exc:
            await self.close()
            what = f"the prompt after {line!r}" if line is not None else "the first prompt"
            raise DriverTimeoutError(
                f"no prompt within {seconds:g} s waiting for {what}; last line: "
                f"{text.last_line(buffer)!r}; session closed", host=self.host) from exc
        except DriverError:
            await self.close()
            raise
        except (OSError, asyncssh.Error) as exc:
            await self.close()
            raise convert(exc, self.host) from exc
        except BaseException:
            # Cancelled mid-command: the reply is still coming, so the session is out of step.
            await self.close()
            raise
        reply = text.split_reply(buffer, line, platform.prompts.any)
        self.prompt = reply.prompt
        log.debug("%s: %r -> %d chars, prompt %r", self.host, line, len(reply.output),
                  reply.prompt)
        return reply

    async def _read(self, line: str | None, buffer: str) -> str:
        chunk = await self._process.stdout.read(READ_SIZE)
        if not chunk:
            raise SessionLostError(
                "the device closed the session"
                + (f" while answering {line!r}" if line is not None else "")
                + (f"; partial reply: {text.last_line(buffer)!r}" if buffer else ""),
                host=self.host)
        return chunk

    async def _write(self, data: str) -> None:
        stdin = self._process.stdin
        stdin.write(data)
        await stdin.drain()


def check_line(line: str | None) -> None:
    """ValueError if ``line`` holds a line break or another control character."""
    if line is not None and (bad := _UNSAFE.search(line)) is not None:
        raise ValueError(f"a CLI line may not contain control character {bad.group()!r}: "
                         f"{line!r}")


async def run_exec(conn: asyncssh.SSHClientConnection, command: str, host: str,
                   seconds: float) -> asyncssh.SSHCompletedProcess:
    """Run one command on an exec channel (no PTY) and wait for its exit, within ``seconds``.

    A channel that closes without an exit status (the device dropped it) is SessionLostError.
    The channel is closed on every path.
    """
    process: asyncssh.SSHClientProcess[str] | None = None
    try:
        async with asyncio.timeout(seconds):
            process = await conn.create_process(command, encoding="utf-8", errors="replace")
            result = await process.wait(check=False)
    except TimeoutError as exc:
        raise DriverTimeoutError(f"{command!r} did not finish within {seconds:g} s",
                                 host=host) from exc
    except (OSError, asyncssh.Error) as exc:
        raise convert(exc, host) from exc
    finally:
        if process is not None:
            process.close()
            with contextlib.suppress(TimeoutError, OSError, asyncssh.Error):
                await asyncio.wait_for(process.wait_closed(), CLOSE_TIMEOUT)
    if result.exit_status is None and result.exit_signal is None:
        raise SessionLostError(f"the exec channel closed without an exit status while running "
                               f"{command!r}", host=host)
    return result
