"""Keystrokes in, lines and screen text out: line editing and paging (pure, no I/O).

The SSH session feeds every character it receives to :meth:`Terminal.feed` and writes what
comes back. Lines end in ``\\r``, ``\\n`` or ``\\r\\n`` (a client with a PTY sends ``\\r``,
a script piping into ``ssh`` sends ``\\n``); typed characters are echoed only when the
client asked for a PTY, because without one the client's own terminal already shows them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

MORE = "---- More ( Press 'Q' to break ) ----"
# Printing the prompt over itself would leave its tail on screen: blank it out instead.
_ERASE_MORE = "\r" + " " * len(MORE) + "\r"


class Kind(enum.Enum):
    ECHO = "echo"  # text to echo; the line is still being typed
    LINE = "line"  # a complete line (text); the terminal has moved to the next row
    INTERRUPT = "interrupt"  # Ctrl-C: the line was thrown away
    EOF = "eof"  # Ctrl-D on an empty line
    PAGE = "page"  # more paged output (text); paging goes on
    PAGE_DONE = "page-done"  # the last of the paged output (text), or the user broke off


@dataclass(frozen=True, slots=True)
class Event:
    kind: Kind
    text: str = ""


class Terminal:
    """Line editor plus pager for one interactive session."""

    def __init__(self, echo: bool, max_line: int = 1024) -> None:
        self.echo = echo
        self.max_line = max_line
        self._buf: list[str] = []
        self._after_cr = False
        self._escape = ""  # an ANSI escape sequence (arrow keys) being swallowed
        self._pages: list[str] | None = None
        self._page_lines = 0
        self._pos = 0

    @property
    def paging(self) -> bool:
        return self._pages is not None

    def show(self, text: str, page_lines: int) -> tuple[str, bool]:
        """Text to print for a command's output; False while the rest waits for a key."""
        lines = text.splitlines(keepends=True)
        if page_lines <= 0 or len(lines) <= page_lines:
            return text, True
        self._pages, self._page_lines, self._pos = lines, page_lines, page_lines
        return "".join(lines[:page_lines]) + MORE, False

    def feed(self, ch: str) -> Event | None:
        """One character typed; None when there is nothing to show."""
        if ch == "\n" and self._after_cr:
            self._after_cr = False
            return None
        self._after_cr = ch == "\r"
        if self._pages is not None:
            return self._page_key(ch)
        if self._escape:
            self._escape += ch
            # CSI (ESC [) and SS3 (ESC O) sequences end in a byte 0x40..0x7e; ESC followed by
            # any other character is complete at once.
            if ((len(self._escape) == 2 and ch not in "[O")
                    or (len(self._escape) > 2 and "@" <= ch <= "~")):
                self._escape = ""
            return None
        if ch in "\r\n":
            line = "".join(self._buf)
            self._buf.clear()
            return Event(Kind.LINE, line)
        if ch == "\x1b":
            self._escape = ch
            return None
        if ch in "\x7f\x08":
            if not self._buf:
                return None
            self._buf.pop()
            return Event(Kind.ECHO, "\b \b" if self.echo else "")
        if ch == "\x03":
            self._buf.clear()
            return Event(Kind.INTERRUPT, "^C" if self.echo else "")
        if ch == "\x04":
            return Event(Kind.EOF) if not self._buf else None
        if ch == "\t":
            ch = " "  # no completion; a tab separates words like a blank
        if not ch.isprintable() or len(self._buf) >= self.max_line:
            return None
        self._buf.append(ch)
        return Event(Kind.ECHO, ch if self.echo else "")

    def _page_key(self, ch: str) -> Event | None:
        assert self._pages is not None
        if ch in "qQ\x03":
            self._pages = None
            return Event(Kind.PAGE_DONE, _ERASE_MORE)
        if ch == " ":
            step = self._page_lines
        elif ch in "\r\n":
            step = 1
        else:
            return None
        chunk = self._pages[self._pos:self._pos + step]
        self._pos += step
        if self._pos >= len(self._pages):
            self._pages = None
            return Event(Kind.PAGE_DONE, _ERASE_MORE + "".join(chunk))
        return Event(Kind.PAGE, _ERASE_MORE + "".join(chunk) + MORE)
