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
"""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
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


def _check_row(values: dict[str, str], extra: list[str]) -> tuple[OntImport | None, list[str]]:
    reasons: list[str] = []
    if extra:
        reasons.append(f"{len(extra)} value(s) in no column (the header has "
                       f"{len(values)}): {', '.join(repr(x[:MAX_TEXT]) for x in extra)}")
    serial = normalise_serial(values.get("serial", ""))
    olt = values.get("olt", "").strip()
    port = values.get("pon_port", "").strip()
    checks = [(check_serial, serial), (check_olt, olt), (check_pon_port, port)]
    for check, value in checks:
        try:
            check(value)
        except InvalidValue as e:
            reasons.append(str(e))
    texts: dict[str, str] = {}
    for col in OPTIONAL:
        value = values.get(col, "").strip()
        try:
            texts[col] = check_text(col, value)
        except InvalidValue as e:
            reasons.append(str(e))
    if reasons:
        return None, reasons
    return OntImport(serial=serial, olt=olt, pon_port=port, model=texts["model"],
                     firmware=texts["firmware"], vendor=texts["vendor"]), []


async def import_onts_csv(store: Store, path: Path | str) -> ImportReport:
    """Validate ``path`` row by row and store the valid rows (one transaction)."""
    p = Path(path)
    try:
        text = await asyncio.to_thread(_read_text, p)
    except UnicodeDecodeError as e:
        return ImportReport(str(p), errors=(f"not UTF-8 text ({e.reason} at byte {e.start})",))
    except (OSError, ValueError) as e:
        return ImportReport(str(p), errors=(f"cannot read the file: {e}",))

    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            return ImportReport(str(p), errors=("the file is empty: expected a header line "
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
            return ImportReport(str(p), errors=tuple(errors))

        good: list[tuple[int, OntImport]] = []
        rejected: list[RejectedRow] = []
        first_line: dict[str, int] = {}
        while True:
            line = reader.line_num + 1
            fields = next(reader, None)
            if fields is None:
                break
            if not any(f.strip() for f in fields):
                continue  # blank line
            values = dict(zip(columns, fields, strict=False))
            extra = fields[len(columns):]
            row, reasons = _check_row(values, extra)
            shown = values.get("serial", "")[:MAX_TEXT]
            if row is not None:
                if row.serial in first_line:
                    reasons = [f"duplicate: serial {row.serial} is already on line "
                               f"{first_line[row.serial]} of this file"]
                else:
                    first_line[row.serial] = line
                    good.append((line, row))
                    continue
            rejected.append(RejectedRow(line, shown, tuple(reasons)))
    except csv.Error as e:
        return ImportReport(str(p), errors=(f"line {reader.line_num}: malformed CSV: {e}",))

    changes = await store.import_onts([row for _, row in good])
    imported = tuple(ImportedRow(line, ch.ont.serial, ch.change)
                     for (line, _), ch in zip(good, changes, strict=True))
    return ImportReport(str(p), imported=imported, rejected=tuple(rejected))


async def bind_by_barcode(store: Store, object_id: str, serial: str, *,
                          move: bool = False, replace: bool = False) -> BindResult:
    """Bind the scanned serial to the object (``ponctl objects bind OBJECT SERIAL``).

    The scan is validated (blanks trimmed, upper-cased, then the serial rule); a serial bound to
    another object is refused unless ``move=True``, naming that object.
    """
    normalised = normalise_serial(serial) if isinstance(serial, str) else serial
    check_serial(normalised)
    return await store.bind(object_id, normalised, move=move, replace=replace)
