"""``ponctl onts ...`` and ``ponctl objects ...``: the inventory, directly on a store file.

``app`` is ``ponctl onts`` (import a CSV file, list), ``objects_app`` is ``ponctl objects``
(create, bind by barcode, unbind, show). Both work on ``--db PATH`` (default
``ponctl.sqlite3``), created on first use.

Exit codes: 0 done; 1 an error (unreadable file, unknown object, invalid value, a refused
binding); 2 ``onts import`` stored the valid rows but rejected some.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agent.inventory import bind_by_barcode, import_onts_csv
from agent.store import Conflict, InvalidValue, NotFound, Ont, Store, StoreError

T = TypeVar("T")

app = typer.Typer(help="ONTs: import from a file, list.", no_args_is_help=True)
objects_app = typer.Typer(help="Objects (addresses) and the ONTs bound to them.",
                          no_args_is_help=True)
out = Console()
err = Console(stderr=True)

Db = Annotated[Path, typer.Option("--db", help="The store file (SQLite).")]
Output = Annotated[Literal["table", "json"], typer.Option("--output", "-o",
                                                          help="table or json")]
DEFAULT_DB = Path("ponctl.sqlite3")


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True, markup=True)
    raise typer.Exit(code)


def _run(db: Path, work: Callable[[Store], Awaitable[T]]) -> T:
    async def main() -> T:
        async with Store(db) as store:
            return await work(store)

    try:
        return asyncio.run(main())
    except (NotFound, Conflict, InvalidValue) as e:
        _fail(str(e))
    except StoreError as e:
        _fail(f"store {db}: {e}")
    except OSError as e:
        _fail(f"store {db}: {e.strerror or e}")
    raise AssertionError("unreachable")


def _plain(text: str) -> str:
    """Text for a rich cell, with markup escaped (values come from files and scans)."""
    return escape(text)


def _ont_json(o: Ont) -> dict[str, Any]:
    return {"serial": o.serial, "olt": o.olt, "pon_port": o.pon_port, "model": o.model,
            "firmware": o.firmware, "vendor": o.vendor, "state": o.state.value,
            "condition": o.condition, "state_since": o.state_since.isoformat(),
            "onu_id": o.onu_id,
            "last_seen": o.last_seen.isoformat() if o.last_seen else None}


# ---- ponctl onts ----------------------------------------------------------------------------
@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV: serial,olt,pon_port[,model,firmware,vendor]")],
    db: Db = DEFAULT_DB,
    output: Output = "table",
) -> None:
    """Pre-import ONTs from a CSV file; report each row imported or rejected (and why)."""
    report = _run(db, lambda s: import_onts_csv(s, file))
    if report.errors:
        if output == "json":
            print(json.dumps({"file": report.path, "errors": list(report.errors)}))
        _fail(report.summary())
    if output == "json":
        print(json.dumps({
            "file": report.path,
            "imported": [{"line": r.line, "serial": r.serial, "change": r.change}
                         for r in report.imported],
            "rejected": [{"line": r.line, "serial": r.serial, "reasons": list(r.reasons)}
                         for r in report.rejected]}, indent=2))
    else:
        table = Table(title=f"Import of {_plain(report.path)}")
        table.add_column("line", justify="right")
        table.add_column("serial")
        table.add_column("result")
        table.add_column("reason")
        rows = [(r.line, r.serial, f"imported ({r.change})", "") for r in report.imported]
        rows += [(r.line, r.serial, "rejected", "; ".join(r.reasons)) for r in report.rejected]
        for line, serial, result, reason in sorted(rows):
            style = "red" if result == "rejected" else None
            table.add_row(str(line), _plain(serial), result, _plain(reason), style=style)
        out.print(table)
        out.print(_plain(report.summary()), highlight=False)
    if report.rejected:
        raise typer.Exit(2)


@app.command("list")
def list_(
    olt: Annotated[str | None, typer.Option(help="Only this OLT's ONTs.")] = None,
    db: Db = DEFAULT_DB,
    output: Output = "table",
) -> None:
    """The ONTs in the inventory, with location and state."""
    onts = _run(db, lambda s: s.list_onts(olt=olt))
    if output == "json":
        print(json.dumps([_ont_json(o) for o in onts], indent=2))
        return
    table = Table(title=f"ONTs ({len(onts)})")
    for col in ("serial", "olt", "pon port", "state", "condition", "model", "firmware",
                "onu-id"):
        table.add_column(col)
    for o in onts:
        table.add_row(o.serial, _plain(o.olt), o.pon_port, o.state.value, _plain(o.condition),
                      _plain(o.model), _plain(o.firmware),
                      "" if o.onu_id is None else str(o.onu_id))
    out.print(table)


# ---- ponctl objects -------------------------------------------------------------------------
@objects_app.command("create")
def create(
    object_id: Annotated[str, typer.Argument(metavar="ID", help="Object id")],
    address: Annotated[str, typer.Argument(help="Address text")],
    db: Db = DEFAULT_DB,
) -> None:
    """Create an object (an address); again with the same address changes nothing."""
    obj = _run(db, lambda s: s.create_object(object_id, address))
    out.print(f"object {_plain(obj.id)}: {_plain(obj.address)}", highlight=False)


@objects_app.command("bind")
def bind(
    object_id: Annotated[str, typer.Argument(metavar="OBJECT", help="Object id")],
    serial: Annotated[str, typer.Argument(help="ONT serial, as scanned")],
    move: Annotated[bool, typer.Option("--move", help="Move the serial here from the "
                                       "object it is bound to.")] = False,
    db: Db = DEFAULT_DB,
) -> None:
    """Bind an ONT to the object by its serial (a barcode scan).

    A serial bound to another object is refused, naming it, unless --move.
    """
    result = _run(db, lambda s: bind_by_barcode(s, object_id, serial, move=move))
    b = result.binding
    if result.change == "moved":
        out.print(f"ONT {b.serial} moved from object {_plain(result.previous_object or '')} "
                  f"to {_plain(b.object_id)}", highlight=False)
    elif result.change == "unchanged":
        out.print(f"ONT {b.serial} was already bound to object {_plain(b.object_id)}",
                  highlight=False)
    else:
        out.print(f"ONT {b.serial} bound to object {_plain(b.object_id)}", highlight=False)


@objects_app.command("unbind")
def unbind(
    object_id: Annotated[str, typer.Argument(metavar="OBJECT", help="Object id")],
    db: Db = DEFAULT_DB,
) -> None:
    """Remove the object's binding."""

    async def work(s: Store) -> str | None:
        if await s.get_object(object_id) is None:
            raise NotFound(f"object {object_id!r} does not exist")
        gone = await s.unbind(object_id)
        return None if gone is None else gone.serial

    serial = _run(db, work)
    if serial is None:
        out.print(f"object {_plain(object_id)} had no ONT bound", highlight=False)
    else:
        out.print(f"ONT {serial} unbound from object {_plain(object_id)}", highlight=False)


@objects_app.command("show")
def show(
    object_id: Annotated[str, typer.Argument(metavar="OBJECT", help="Object id")],
    db: Db = DEFAULT_DB,
    output: Output = "table",
) -> None:
    """The object, its bound ONT (with location and state) and its binding history."""

    async def work(s: Store) -> dict[str, Any]:
        obj = await s.get_object(object_id)
        if obj is None:
            raise NotFound(f"object {object_id!r} does not exist")
        ont = None if obj.serial is None else await s.get_ont(obj.serial)
        history = await s.binding_history(object_id=object_id)
        return {"id": obj.id, "address": obj.address, "created_at": obj.created_at.isoformat(),
                "serial": obj.serial, "ont": None if ont is None else _ont_json(ont),
                "history": [{"at": h.at.isoformat(), "action": h.action, "serial": h.serial,
                             "other_object": h.other_object} for h in history]}

    data = _run(db, work)
    if output == "json":
        print(json.dumps(data, indent=2))
        return
    table = Table(title=f"Object {_plain(data['id'])}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    table.add_row("address", _plain(data["address"]))
    table.add_row("created", data["created_at"])
    table.add_row("ONT", data["serial"] or "(none bound)")
    ont = data["ont"]
    if ont is not None:
        table.add_row("location", f"{_plain(ont['olt'])} {ont['pon_port']}")
        table.add_row("state", f"{ont['state']} {_plain(ont['condition'])}".strip())
    elif data["serial"] is not None:
        table.add_row("location", "(ONT not discovered or imported yet)")
    out.print(table)
    if data["history"]:
        hist = Table(title="Binding history")
        for col in ("at", "action", "serial", "other object"):
            hist.add_column(col)
        for h in data["history"]:
            hist.add_row(h["at"], h["action"], h["serial"], _plain(h["other_object"] or ""))
        out.print(hist)

