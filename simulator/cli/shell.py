"""What a CLI dialect offers the SSH session: a banner, a prompt, and one line at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Reply:
    """The result of one command line.

    ``output`` is the text to print, each line ending in ``\\n`` (empty when there is nothing
    to say); ``prompt`` is the prompt to show next; ``status`` is 0 for success and the exit
    status an exec request reports otherwise; ``close`` ends the session.
    """

    output: str
    prompt: str
    status: int = 0
    close: bool = False

    @property
    def ok(self) -> bool:
        return self.status == 0


class Shell(Protocol):
    """A pure command interpreter: the session does the I/O, the shell only the meaning."""

    @property
    def banner(self) -> str: ...

    @property
    def prompt(self) -> str: ...

    @property
    def page_lines(self) -> int:
        """Lines per screen on an interactive session; 0 disables paging."""

    def handle(self, line: str) -> Reply: ...
