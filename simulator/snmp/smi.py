"""SMI-level building blocks, free of pysnmp: typed values, tables, scalars, SET errors.

A device's MIB is an ordered list of nodes (scalar groups and tables) that occupy disjoint,
increasing OID ranges. GET looks a node up by prefix; GETNEXT asks each node in order for its
first instance after the OID, and the first answer wins. A table keeps only its sorted row
indexes (bisect finds the next row), not one entry per cell, so rebuilding it after a
configuration change costs one sort of the rows rather than rows times columns.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

Oid = tuple[int, ...]
R = TypeVar("R")


class Syntax(enum.Enum):
    """The SMIv2 base types this simulator serves and accepts."""

    OCTETS = "OCTET STRING"
    INTEGER = "INTEGER"  # Integer32 and enumerations (RowStatus, TruthValue)
    UNSIGNED = "Unsigned32"  # Unsigned32 and Gauge32 share one tag on the wire
    GAUGE = "Gauge32"
    TIMETICKS = "TimeTicks"
    OID = "OBJECT IDENTIFIER"


class Value(NamedTuple):
    syntax: Syntax
    data: int | bytes | Oid


def octets(text: str | bytes) -> Value:
    return Value(Syntax.OCTETS, text.encode() if isinstance(text, str) else text)


def integer(n: int) -> Value:
    return Value(Syntax.INTEGER, n)


def unsigned(n: int) -> Value:
    return Value(Syntax.UNSIGNED, n)


def gauge(n: int) -> Value:
    return Value(Syntax.GAUGE, n)


def ticks(n: int) -> Value:
    return Value(Syntax.TIMETICKS, n % 2**32)


def oid_value(o: Oid) -> Value:
    return Value(Syntax.OID, o)


class Missing(enum.Enum):
    """Why a GET found nothing: the object type is unknown, or only this instance is."""

    NO_SUCH_OBJECT = "noSuchObject"
    NO_SUCH_INSTANCE = "noSuchInstance"


class SetError(Exception):
    """A SET refused with an SNMP error status (RFC 3416 names) for varbind ``index``."""

    def __init__(self, status: str, index: int, message: str) -> None:
        super().__init__(f"{status} (varbind {index + 1}): {message}")
        self.status = status
        self.index = index
        self.message = message


@dataclass(frozen=True, slots=True)
class WriteItem:
    """One SET varbind, its value already reduced to a Python value.

    ``syntax`` is None for a type this MIB never uses (Counter32, IpAddress, ...).
    """

    oid: Oid
    syntax: Syntax | None
    data: int | bytes | Oid


class Node(ABC):
    """A range of the OID tree served by one object group."""

    @abstractmethod
    def get(self, oid: Oid) -> Value | Missing | None:
        """The value at ``oid``; a Missing if the OID is ours but absent; None if not ours."""

    @abstractmethod
    def next(self, oid: Oid) -> tuple[Oid, Value] | None:
        """The first instance after ``oid`` in this node, or None."""


@dataclass(slots=True)
class Scalars(Node):
    """Scalar objects: instance ``<object>.0``, each value computed on read."""

    objects: dict[Oid, Callable[[], Value]]
    _sorted: list[Oid] = field(init=False)

    def __post_init__(self) -> None:
        self._sorted = sorted((*o, 0) for o in self.objects)

    def get(self, oid: Oid) -> Value | Missing | None:
        if oid[-1:] == (0,) and oid[:-1] in self.objects:
            return self.objects[oid[:-1]]()
        if oid[:-1] in self.objects or oid in self.objects:
            return Missing.NO_SUCH_INSTANCE
        return None

    def next(self, oid: Oid) -> tuple[Oid, Value] | None:
        i = bisect_right(self._sorted, oid)
        if i == len(self._sorted):
            return None
        inst = self._sorted[i]
        return inst, self.objects[inst[:-1]]()


class Table(Node, Generic[R]):
    """A conceptual table: ``<entry>.<column>.<index...>``, column by column.

    ``cell(column, row)`` computes a value on read, or returns None where the row has no such
    cell (a row created with createAndWait before the column was set); GETNEXT skips those.
    """

    def __init__(self, entry: Oid, columns: tuple[int, ...],
                 cell: Callable[[int, R], Value | None]) -> None:
        self.entry = entry
        self.columns = tuple(sorted(columns))
        self.cell = cell
        self.rows: dict[Oid, R] = {}
        self._order: list[Oid] = []

    def load(self, rows: Mapping[Oid, R]) -> None:
        """Replace the rows (index tuple -> row object)."""
        self.rows = dict(rows)
        self._order = sorted(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def items(self) -> Iterator[tuple[Oid, R]]:
        for idx in self._order:
            yield idx, self.rows[idx]

    def get(self, oid: Oid) -> Value | Missing | None:
        n = len(self.entry)
        if oid[:n] != self.entry:
            return None
        if len(oid) == n or oid[n] not in self.columns:
            return Missing.NO_SUCH_OBJECT
        row = self.rows.get(oid[n + 1:])
        value = self.cell(oid[n], row) if row is not None else None
        return value if value is not None else Missing.NO_SUCH_INSTANCE

    def next(self, oid: Oid) -> tuple[Oid, Value] | None:
        if not self._order:
            return None
        n = len(self.entry)
        if oid[:n] == self.entry:
            rest = oid[n:]
            column, after = (rest[0], rest[1:]) if rest else (0, ())
        elif oid < self.entry:
            column, after = 0, ()
        else:
            return None
        for col in self.columns:
            if col < column:
                continue
            start = bisect_right(self._order, after) if col == column and after else 0
            for idx in self._order[start:]:
                value = self.cell(col, self.rows[idx])
                if value is not None:
                    return (*self.entry, col, *idx), value
        return None


class MibView:
    """An ordered list of nodes with disjoint, increasing OID ranges."""

    def __init__(self, nodes: list[Node]) -> None:
        self.nodes = nodes

    def get(self, oid: Oid) -> Value | Missing:
        for node in self.nodes:
            found = node.get(oid)
            if found is not None:
                return found
        return Missing.NO_SUCH_OBJECT

    def next(self, oid: Oid) -> tuple[Oid, Value] | None:
        for node in self.nodes:
            found = node.next(oid)
            if found is not None:
                return found
        return None


def printable(data: bytes, what: str, index: int, *, max_len: int, min_len: int = 0) -> str:
    """Decode a DisplayString value (printable ASCII) or refuse it as RFC 3416 says."""
    if not min_len <= len(data) <= max_len:
        raise SetError("wrongLength", index, f"{what} must be {min_len}..{max_len} octets long")
    if any(b < 0x20 or b > 0x7E for b in data):
        raise SetError("wrongValue", index, f"{what} must be printable ASCII")
    return data.decode("ascii")
