"""Terminal text in, clean lines out: pure functions the channel uses (no I/O, no state).

A PTY session carries what a terminal would draw: ANSI escape sequences, carriage returns and
backspaces that redraw a line (pagers erase their "more" prompt that way), CRLF line ends, and
the echo of what was typed. These functions turn it into the text a person would read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), DCS/SOS/PM/APC strings, and two-byte
# escapes (ESC followed by one byte in @..Z, \, ], ^, _ or a charset selector).
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)"
                   r"|[PX^_][^\x1b]*\x1b\\|[()*+][0-9A-Za-z]|[@-Z\\-_=>78])")
# Other C0 controls (and DEL) draw nothing; \t \n \r \b are handled, ESC is kept for the above.
_CONTROL = re.compile(r"[\x00-\x07\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]")


def strip_ansi(text: str) -> str:
    """Remove ANSI escape sequences."""
    return _ANSI.sub("", text) if "\x1b" in text else text


def render_line(text: str) -> str:
    """What a terminal shows for one line: ``\\r`` returns to column 0 and ``\\b`` moves one
    column back, so later characters overwrite earlier ones (a pager erasing its prompt)."""
    if "\r" not in text and "\b" not in text:
        return text
    cells: list[str] = []
    col = 0
    for ch in text:
        if ch == "\r":
            col = 0
        elif ch == "\b":
            col = max(0, col - 1)
        else:
            if col < len(cells):
                cells[col] = ch
            else:
                cells.append(ch)
            col += 1
    return "".join(cells)


def clean_line(text: str) -> str:
    """One line (no ``\\n``) as displayed, without trailing blanks."""
    return render_line(_CONTROL.sub("", strip_ansi(text))).rstrip()


def clean(text: str) -> list[str]:
    """Terminal text as displayed lines (``\\r\\n``, ``\\n`` and lone ``\\r`` handled)."""
    return [clean_line(line) for line in strip_ansi(text).split("\n")]


def last_line(buffer: str) -> str:
    """The (cleaned) line the cursor is on: where a prompt or a pager prompt appears."""
    return clean_line(buffer[buffer.rfind("\n") + 1:])


@dataclass(frozen=True, slots=True)
class Reply:
    """One command's answer: the output lines, and the prompt that ended it."""

    output: str
    prompt: str


def split_reply(buffer: str, command: str | None, prompt: re.Pattern[str]) -> Reply:
    """Split what came back after sending ``command`` into output and the final prompt.

    The echo of the command (the first line ending in the command text) is removed, as are
    blank lines at either end. ``None`` as command: nothing was typed (the login banner).
    """
    lines = clean(buffer)
    tail = lines[-1]
    match = prompt.search(tail)
    start = match.start() if match is not None else len(tail)
    lines[-1] = tail[:start]
    prompt_text = tail[start:]
    typed = command.strip() if command is not None else ""
    if typed:
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            # The echo may follow the rest of an earlier prompt on the same row.
            if line.rstrip().endswith(typed):
                del lines[i]
            break
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    return Reply("\n".join(lines), prompt_text)


def first_error(output: str, patterns: Iterable[re.Pattern[str]]) -> str | None:
    """The first output line matching an error pattern (None: the command succeeded)."""
    compiled = list(patterns)
    for line in output.split("\n"):
        if any(p.search(line) for p in compiled):
            return line
    return None


def without(lines: Iterable[str], patterns: Iterable[re.Pattern[str]]) -> list[str]:
    """``lines`` minus those matching any of ``patterns`` (volatile lines such as times)."""
    compiled = list(patterns)
    return [line for line in lines if not any(p.search(line) for p in compiled)]
