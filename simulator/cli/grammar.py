"""A small command grammar with Huawei-style error locations (pure: no device, no I/O).

A command is a sequence of keywords and typed arguments, written as a spec string such as
``"ont delete <port:port> <ontid:ontid>"``; an optional tail goes in brackets
(``"... [desc <desc:desc>]"``). Keywords may be abbreviated to any unambiguous prefix, as on the
real box (``disp ont autof all``). A line that matches no command raises :class:`CliSyntaxError`
carrying the kind of error and the column to put the caret under.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

A = TypeVar("A")


class ErrorKind(enum.Enum):
    """The error classes the OLT's CLI distinguishes, with their wording."""

    UNKNOWN = "Unknown command"
    INCOMPLETE = "Incomplete command"
    PARAMETER = "Parameter error"
    TOO_MANY = "Too many parameters"
    AMBIGUOUS = "Ambiguous command"


class CliSyntaxError(Exception):
    """A line the grammar refuses: what is wrong and where (column in the line)."""

    def __init__(self, kind: ErrorKind, column: int) -> None:
        super().__init__(f"{kind.value} at column {column}")
        self.kind = kind
        self.column = column

    def render(self, indent: int = 0) -> str:
        """The caret line and the message, as the box prints them (two lines, no newline)."""
        return (" " * (indent + self.column) + "^\n"
                f"  % {self.kind.value}, the error locates at '^'")


@dataclass(frozen=True, slots=True)
class Token:
    text: str  # the value, without quotes
    column: int  # where the token starts in the line
    quoted: bool = False


def tokenize(line: str) -> list[Token]:
    """Split a line on blanks; ``"..."`` makes one token (no escapes, as on the box)."""
    tokens: list[Token] = []
    i, n = 0, len(line)
    while i < n:
        if line[i] in " \t":
            i += 1
            continue
        start = i
        if line[i] == '"':
            end = line.find('"', i + 1)
            if end < 0:
                raise CliSyntaxError(ErrorKind.PARAMETER, start)
            if end + 1 < n and line[end + 1] not in " \t":
                raise CliSyntaxError(ErrorKind.PARAMETER, end + 1)
            tokens.append(Token(line[i + 1:end], start, quoted=True))
            i = end + 1
            continue
        while i < n and line[i] not in " \t":
            i += 1
        tokens.append(Token(line[start:i], start))
    return tokens


@dataclass(frozen=True, slots=True)
class Keyword:
    word: str


@dataclass(frozen=True, slots=True)
class Arg:
    name: str
    convert: Callable[[str], object]  # returns the value or raises ValueError


Element = Keyword | Arg


@dataclass(frozen=True, slots=True)
class Command(Generic[A]):
    spec: tuple[Element, ...]
    views: frozenset[str]
    action: A


class Args:
    """Converted arguments of a matched line, with the column of each (for caret errors)."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}
        self.columns: dict[str, int] = {}

    def copy_with(self, name: str, value: object, column: int) -> Args:
        new = Args()
        new.values = {**self.values, name: value}
        new.columns = {**self.columns, name: column}
        return new

    def number(self, name: str) -> int:
        value = self.values[name]
        assert isinstance(value, int)
        return value

    def text(self, name: str) -> str:
        value = self.values[name]
        assert isinstance(value, str)
        return value

    def opt_text(self, name: str) -> str | None:
        return self.text(name) if name in self.values else None

    def error(self, name: str) -> CliSyntaxError:
        """A parameter error located at the argument ``name``."""
        return CliSyntaxError(ErrorKind.PARAMETER, self.columns.get(name, 0))


@dataclass(slots=True)
class Grammar(Generic[A]):
    """Commands by view; ``types`` maps the type names used in specs to converters."""

    types: dict[str, Callable[[str], object]]
    commands: list[Command[A]] = field(default_factory=list)

    def add(self, spec: str, views: Iterable[str], action: A) -> None:
        """Add a command (two if the spec ends in an optional ``[...]`` tail)."""
        head, _, tail = spec.partition("[")
        variants = [head]
        if tail:
            variants.append(head + " " + tail.rstrip().removesuffix("]"))
        for text in variants:
            self.commands.append(Command(tuple(self._element(w) for w in text.split()),
                                         frozenset(views), action))

    def _element(self, word: str) -> Element:
        if word.startswith("<") and word.endswith(">"):
            name, _, tname = word[1:-1].partition(":")
            return Arg(name, self.types[tname or name])
        return Keyword(word)

    def match(self, view: str, tokens: Sequence[Token], end: int) -> tuple[A, Args]:
        """The command a tokenized line means in ``view``; ``end`` is the line's length."""
        cands: list[tuple[Command[A], Args]] = [
            (c, Args()) for c in self.commands if view in c.views]
        for i, tok in enumerate(tokens):
            alive = [(c, a) for c, a in cands if len(c.spec) > i]
            if not alive:
                raise CliSyntaxError(ErrorKind.TOO_MANY if i else ErrorKind.UNKNOWN, tok.column)
            if not tok.quoted:
                word = tok.text.lower()
                exact = [(c, a) for c, a in alive
                         if isinstance(c.spec[i], Keyword) and _word(c.spec[i]) == word]
                if exact:
                    cands = exact
                    continue
                prefixed = [(c, a) for c, a in alive
                            if isinstance(c.spec[i], Keyword) and _word(c.spec[i]).startswith(word)]
                if len({_word(c.spec[i]) for c, _ in prefixed}) > 1:
                    raise CliSyntaxError(ErrorKind.AMBIGUOUS, tok.column)
                if prefixed:
                    cands = prefixed
                    continue
            takes_arg = [(c, a) for c, a in alive if isinstance(c.spec[i], Arg)]
            if not takes_arg:
                raise CliSyntaxError(ErrorKind.UNKNOWN, tok.column)
            converted: list[tuple[Command[A], Args]] = []
            for c, a in takes_arg:
                el = c.spec[i]
                assert isinstance(el, Arg)
                try:
                    value = el.convert(tok.text)
                except ValueError:
                    continue
                converted.append((c, a.copy_with(el.name, value, tok.column)))
            if not converted:
                raise CliSyntaxError(ErrorKind.PARAMETER, tok.column)
            cands = converted
        for c, a in cands:
            if len(c.spec) == len(tokens):
                return c.action, a
        if not tokens:
            raise CliSyntaxError(ErrorKind.INCOMPLETE, 0)
        # The caret goes where the missing word would start.
        raise CliSyntaxError(ErrorKind.INCOMPLETE, end + 1)

    def first_words(self, view: str) -> list[str]:
        """The keywords a line may start with in ``view`` (for ``?``)."""
        words = {_word(c.spec[0]) for c in self.commands
                 if view in c.views and c.spec and isinstance(c.spec[0], Keyword)}
        return sorted(words)


def _word(el: Element) -> str:
    assert isinstance(el, Keyword)
    return el.word
