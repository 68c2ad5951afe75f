"""Inventory at the edge: ONT pre-import from CSV and binding by barcode scan.

:func:`import_onts_csv` reads a CSV file with a header naming the columns ``serial``, ``olt``,
``pon_port`` (required) and ``model``, ``firmware``, ``vendor`` (optional), validates every row and
stores the valid ones in one transaction. The :class:`ImportReport` says, per row (by its line in
the file), what was stored and what was rejected and why: bad serial, bad OLT name, bad PON port,
a field too long or with control characters, a value in no column, a serial twice in the file.
Nothing from a rejected row is stored. A file that cannot be used at all (unreadable, not UTF-8,
no header, an unknown or missing column in the header) stores nothing and says why in
``errors``. Model and firmware are free text stored as data (quotes, XML, non-ASCII are fine);
identifiers are validated with the same rules as the intent (:mod:`agent.intent`).

:func:`parse_onts_csv` is the reading and validating half alone (``ponctl onts import``
through the API parses locally and sends the good rows in chunks); :func:`check_row` /
:func:`check_rows` are the row rules, shared with the API's ``POST /onts/import``, which asks
for ``echo=False`` so that no message repeats a rejected value.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from agent.store import (
    MAX_TEXT,
    BindResult,
    Change,
    InvalidValue,
    OntImport,
    Store,
    check_olt,
    check_pon_port,
    check_serial,
    check_text,
)

REQUIRED = ("serial", "olt", "pon_port")
OPTIONAL = ("model", "firmware", "vendor")
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ImportedRow:
    line: int
    serial: str
    change: Change  # created, moved, updated, unchanged (already discovered on the network)


@dataclass(frozen=True, slots=True)
class RejectedRow:
    line: int
    serial: str  # as written in the file (may be the invalid value itself)
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ImportReport:
    path: str
    imported: tuple[ImportedRow, ...] = ()
    rejected: tuple[RejectedRow, ...] = ()
    errors: tuple[str, ...] = ()  # file-level problems: nothing was stored

    @property
    def ok(self) -> bool:
        return not self.errors and not self.rejected

    def summary(self) -> str:
        if self.errors:
            return f"{self.path}: nothing imported: " + "; ".join(self.errors)
        return (f"{self.path}: {len(self.imported)} row(s) imported, "
                f"{len(self.rejected)} rejected")


def normalise_serial(raw: str) -> str:
    """A serial as scanned or typed: surrounding blanks removed, letters upper-cased."""
    return raw.strip().upper()


def _read_text(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ValueError(f"file is {size} bytes (at most {MAX_FILE_BYTES})")
    return path.read_text(encoding="utf-8-sig")


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why one row is refused: the column it is about (None: the row as a whole)."""

    field: str | None
    message: str


def _quiet(message: str, value: str, field: str) -> str:
    """``message`` without the rejected value (the API never repeats what it refuses)."""
    text = message.replace(f" {value!r}", "", 1)
    return text if repr(value) not in text else f"{field} is invalid"


def check_row(values: Mapping[str, str], extra: Sequence[str] = (), *,
              echo: bool = True) -> tuple[OntImport | None, tuple[RowProblem, ...]]:
    """Validate one row (column -> text as given): the :class:`OntImport` or the problems.

    The serial is normalised (:func:`normalise_serial`), the other values stripped; serial, OLT
    and PON port follow the intent's rules, model, firmware and vendor are bounded text
    without control characters. ``echo=False`` leaves the rejected values out of the messages.
    """
    problems: list[RowProblem] = []
    if extra:
        shown = ", ".join(repr(x[:MAX_TEXT]) for x in extra) if echo else "not shown"
        problems.append(RowProblem(None, f"{len(extra)} value(s) in no column (the header "
                                         f"has {len(values)}): {shown}"))
    serial = normalise_serial(values.get("serial", ""))
    olt = values.get("olt", "").strip()
    port = values.get("pon_port", "").strip()
    checks: list[tuple[str, Callable[[str], str], str]] = [
        ("serial", check_serial, serial), ("olt", check_olt, olt),
        ("pon_port", check_pon_port, port)]
    checks += [(col, partial(check_text, col), values.get(col, "").strip()) for col in OPTIONAL]
    texts: dict[str, str] = {}
    for col, check, value in checks:
        try:
            texts[col] = check(value)
        except InvalidValue as e:
            problems.append(RowProblem(col, str(e) if echo else _quiet(str(e), value, col)))
    if problems:
        return None, tuple(problems)
    return OntImport(serial=serial, olt=olt, pon_port=port, model=texts["model"],
                     firmware=texts["firmware"], vendor=texts["vendor"]), ()


RawRow = tuple[int, Mapping[str, str], Sequence[str]]  # (position, column -> text, extra)
GoodRow = tuple[int, OntImport]  # (position, validated row)
BadRow = tuple[int, str, tuple[RowProblem, ...]]  # (position, serial as written, problems)


def check_rows(rows: Iterable[RawRow], *, where: str = "line {} of this file",
               echo: bool = True) -> tuple[list[GoodRow], list[BadRow]]:
    """Validate rows given as (position, values, extra values): the good ones, and the
    rejected ones as (position, serial as written, problems). A serial seen on an earlier
    good row is refused as a duplicate (``where`` names that row's position)."""
    good: list[GoodRow] = []
    rejected: list[BadRow] = []
    first: dict[str, int] = {}
    for pos, values, extra in rows:
        row, problems = check_row(values, extra, echo=echo)
        if row is not None:
            if row.serial not in first:
                first[row.serial] = pos
                good.append((pos, row))
                continue
            problems = (RowProblem("serial", f"duplicate: serial {row.serial} is already on "
                                             f"{where.format(first[row.serial])}"),)
        rejected.append((pos, values.get("serial", "")[:MAX_TEXT], problems))
    return good, rejected


@dataclass(frozen=True, slots=True)
class ParsedCsv:
    """A CSV file read and validated, nothing stored yet (:func:`parse_onts_csv`)."""

    path: str
    good: tuple[GoodRow, ...] = ()  # (line, row)
    rejected: tuple[RejectedRow, ...] = ()
    errors: tuple[str, ...] = ()  # file-level problems: nothing may be stored


def parse_onts_csv(path: Path | str) -> ParsedCsv:
    """Read and validate the CSV file ``path`` (blocking: call it in a thread from a loop)."""
    p = Path(path)
    try:
        text = _read_text(p)
    except UnicodeDecodeError as e:
        return ParsedCsv(str(p), errors=(f"not UTF-8 text ({e.reason} at byte {e.start})",))
    except (OSError, ValueError) as e:
        return ParsedCsv(str(p), errors=(f"cannot read the file: {e}",))

    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return ParsedCsv(str(p), errors=("the file is empty: expected a header line "
                                             f"with {', '.join(REQUIRED)}",))
        columns = [h.strip().lower() for h in header]
        errors: list[str] = []
        unknown = [h for h in columns if h not in REQUIRED + OPTIONAL]
        if unknown:
            errors.append(f"unknown column(s) {', '.join(repr(u[:MAX_TEXT]) for u in unknown)}"
                          f" (known: {', '.join(REQUIRED + OPTIONAL)})")
        missing = [r for r in REQUIRED if r not in columns]
        if missing:
            errors.append(f"missing column(s) {', '.join(missing)}")
        dup_cols = sorted({h for h in columns if columns.count(h) > 1})
        if dup_cols:
            errors.append(f"column(s) named twice: {', '.join(dup_cols)}")
        if errors:
            return ParsedCsv(str(p), errors=tuple(errors))

        raw: list[RawRow] = []
        while True:
            line = reader.line_num + 1
            fields = next(reader, None)
            if fields is None:
                break
            if not any(f.strip() for f in fields):
                continue  # blank line
            raw.append((line, dict(zip(columns, fields, strict=False)), fields[len(columns):]))
    except csv.Error as e:
        return ParsedCsv(str(p), errors=(f"line {reader.line_num}: malformed CSV: {e}",))
    good, rejected = check_rows(raw)
    return ParsedCsv(str(p), good=tuple(good), rejected=tuple(
        RejectedRow(line, serial, tuple(x.message for x in problems))
        for line, serial, problems in rejected))


async def import_onts_csv(store: Store, path: Path | str) -> ImportReport:
    """Validate ``path`` row by row and store the valid rows (one transaction)."""
    parsed = await asyncio.to_thread(parse_onts_csv, path)
    if parsed.errors:
        return ImportReport(parsed.path, errors=parsed.errors)
    changes = await store.import_onts([row for _, row in parsed.good])
    imported = tuple(ImportedRow(line, ch.ont.serial, ch.change)
                     for (line, _), ch in zip(parsed.good, changes, strict=True))
    return ImportReport(parsed.path, imported=imported, rejected=parsed.rejected)


async def bind_by_barcode(store: Store, object_id: str, serial: str, *,
                          move: bool = False, replace: bool = False) -> BindResult:
    """Bind the scanned serial to the object (``ponctl objects bind OBJECT SERIAL``).

    The scan is validated (blanks trimmed, upper-cased, then the serial rule); a serial bound to
    another object is refused unless ``move=True``, naming that object.
    """
    normalised = normalise_serial(serial) if isinstance(serial, str) else serial
    check_serial(normalised)
    return await store.bind(object_id, normalised, move=move, replace=replace)
