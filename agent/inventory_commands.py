"""``ponctl onts ...`` and ``ponctl objects ...``: the inventory, through the agent's API.

``app`` is ``ponctl onts`` (``import FILE``, ``list [--olt OLT]``), ``objects_app`` is
``ponctl objects`` (``create ID ADDRESS``, ``bind OBJECT SERIAL [--move]``, ``unbind OBJECT``,
``show OBJECT``, ``list``).

Two modes, chosen per command:

* **the agent's API** (the default), so that the running agent stays the one writer of the
  store: ``--api URL`` / ``$PONCTL_API``, the token from ``$PONCTL_TOKEN`` or ``--token-file``
  (:mod:`agent.client`). Reads need any token, writes the admin role; the agent's message is
  shown for a refusal (exit 1).
* **offline**, ``--db PATH``: work on a store file (SQLite) directly, created on first use --
  for a machine without a running agent. The connection options are then not used. Do not
  point it at the store of a running agent; use the API there.

``onts import FILE`` parses and checks the CSV here (:func:`agent.inventory.parse_onts_csv`:
the same rules as the agent), reports the rows it refuses without sending them, and sends the
valid rows to ``POST /onts/import`` in chunks of at most ``--chunk`` rows (and at most the
route's body limit), with a progress bar on stderr (none with ``--output json``). Each chunk is
stored in one transaction; if a later chunk fails, the earlier ones stay stored and the error
says how many -- importing the same file again is safe (those rows come back ``unchanged``).
The report, one row per file line (imported: created/moved/updated/unchanged, or rejected and
why), and its JSON are the same in both modes.

``--output json``: in API mode ``onts list``, ``objects list|create|bind|unbind`` print the
API's JSON as is; ``onts import`` and ``objects show`` (several requests) print a document the
CLI assembles, the same in both modes. Offline, ``onts list`` prints a JSON list of ONTs (as
it always did) and the ``objects`` commands print the API's shapes.

Exit codes: 0 done; 1 an error (unreadable file, unknown object, invalid value, a refused
binding, the agent's refusal or absence); 2 ``onts import`` stored the valid rows but rejected
some.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent.api_inventory import IMPORT_MAX_BODY, MAX_IMPORT_ROWS
from agent.client import (
    DEFAULT_API,
    ApiClient,
    ApiOpt,
    ClientError,
    OutputOpt,
    TokenFileOpt,
    call,
    fail,
    seg,
)
from agent.inventory import (
    GoodRow,
    ImportedRow,
    ImportReport,
    ParsedCsv,
    RejectedRow,
    bind_by_barcode,
    import_onts_csv,
    normalise_serial,
    parse_onts_csv,
)
from agent.store import (
    Conflict,
    InvalidValue,
    NotFound,
    ObjectRecord,
    Ont,
    OntImport,
    Store,
    StoreError,
)

T = TypeVar("T")

app = typer.Typer(help="ONTs: import from a file, list (through the agent's API, or --db).",
                  no_args_is_help=True)
objects_app = typer.Typer(help="Objects (addresses) and the ONTs bound to them (through the "
                               "agent's API, or --db).", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

Db = Annotated[Path | None, typer.Option(
    "--db", help="Offline: work on this store file (SQLite) directly, not through the agent's "
                 "API (for a machine without a running agent).")]
Chunk = Annotated[int, typer.Option(
    "--chunk", min=1, max=MAX_IMPORT_ROWS, help="API mode: at most this many rows per request.")]
CHUNK_ROWS = 500
BODY_BUDGET = IMPORT_MAX_BODY - 4096  # room for the envelope {"rows": [...]}


def _run(db: Path, work: Callable[[Store], Awaitable[T]]) -> T:
    async def main() -> T:
        async with Store(db) as store:
            return await work(store)

    try:
        return asyncio.run(main())
    except (NotFound, Conflict, InvalidValue) as e:
        fail(str(e))
    except StoreError as e:
        fail(f"store {db}: {e}")
    except OSError as e:
        fail(f"store {db}: {e.strerror or e}")


def _plain(text: str) -> str:
    """Text for a rich cell, with markup escaped (values come from files and scans)."""
    return escape(text)


def _json_print(data: Any) -> None:
    print(json.dumps(data, indent=2))


def _ont_json(o: Ont, object_id: str | None = None) -> dict[str, Any]:
    return {"serial": o.serial, "olt": o.olt, "pon_port": o.pon_port, "model": o.model,
            "firmware": o.firmware, "vendor": o.vendor, "state": o.state.value,
            "condition": o.condition, "state_since": o.state_since.isoformat(),
            "onu_id": o.onu_id,
            "last_seen": o.last_seen.isoformat() if o.last_seen else None,
            "object_id": object_id}


def _object_json(o: ObjectRecord) -> dict[str, Any]:
    return {"id": o.id, "address": o.address, "created_at": o.created_at.isoformat(),
            "serial": o.serial}


# ---- ponctl onts ----------------------------------------------------------------------------
def _row_json(row: OntImport) -> dict[str, str]:
    return {"serial": row.serial, "olt": row.olt, "pon_port": row.pon_port, "model": row.model,
            "firmware": row.firmware, "vendor": row.vendor}


def chunks(rows: Sequence[GoodRow], size: int,
           budget: int = BODY_BUDGET) -> Iterator[list[GoodRow]]:
    """``rows`` in requests of at most ``size`` rows and about ``budget`` bytes of JSON."""
    part: list[GoodRow] = []
    used = 0
    for item in rows:
        cost = len(json.dumps(_row_json(item[1]))) + 2
        if part and (len(part) >= size or used + cost > budget):
            yield part
            part, used = [], 0
        part.append(item)
        used += cost
    if part:
        yield part


async def _import_via_api(c: ApiClient, parsed: ParsedCsv, size: int,
                          show_progress: bool) -> ImportReport:
    imported: list[ImportedRow] = []
    rejected: list[RejectedRow] = list(parsed.rejected)
    sent = 0
    with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, disable=not show_progress) as bar:
        task = bar.add_task("import", total=len(parsed.good))
        for part in chunks(parsed.good, size):
            try:
                answer = await c.post("/onts/import", {"rows": [_row_json(r) for _, r in part]})
            except ClientError as exc:
                if not sent:
                    raise
                raise ClientError(exc.status, f"{exc.message} ({sent} row(s) sent before were "
                                              f"stored; importing the file again is safe)",
                                  exc.field) from None
            for r in answer["rows"]:
                line, row = part[r["index"]]
                if r["result"] == "rejected":
                    rejected.append(RejectedRow(line, row.serial, tuple(
                        str(x["error"]) for x in r["reasons"])))
                else:
                    imported.append(ImportedRow(line, str(r["serial"]), r["result"]))
            sent += len(part)
            bar.advance(task, len(part))
    return ImportReport(parsed.path, imported=tuple(imported), rejected=tuple(rejected))


def _show_report(report: ImportReport, output: str) -> None:
    if report.errors:
        if output == "json":
            _json_print({"file": report.path, "errors": list(report.errors)})
        fail(report.summary())
    if output == "json":
        _json_print({
            "file": report.path,
            "imported": [{"line": r.line, "serial": r.serial, "change": r.change}
                         for r in report.imported],
            "rejected": [{"line": r.line, "serial": r.serial, "reasons": list(r.reasons)}
                         for r in report.rejected]})
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


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="CSV: serial,olt,pon_port[,model,firmware,vendor]")],
    db: Db = None,
    chunk: Chunk = CHUNK_ROWS,
    api: ApiOpt = DEFAULT_API,
    token_file: TokenFileOpt = None,
    output: OutputOpt = "table",
) -> None:
    """Pre-import ONTs from a CSV file; report each row imported or rejected (and why)."""
    if db is not None:
        report = _run(db, lambda s: import_onts_csv(s, file))
    else:
        parsed = parse_onts_csv(file)
        if parsed.errors:
            report = ImportReport(parsed.path, errors=parsed.errors)
        elif not parsed.good:  # nothing to send: the report is all local
            report = ImportReport(parsed.path, rejected=parsed.rejected)
        else:
            report = call(api, token_file,
                          lambda c: _import_via_api(c, parsed, chunk, output != "json"))
    _show_report(report, output)


def _onts_table(onts: list[dict[str, Any]]) -> Table:
    table = Table(title=f"ONTs ({len(onts)})")
    for col in ("serial", "olt", "pon port", "state", "condition", "model", "firmware",
                "onu-id", "object"):
        table.add_column(col)
    for o in onts:
        table.add_row(_plain(o["serial"]), _plain(o["olt"]), _plain(o["pon_port"]),
                      _plain(o["state"]), _plain(o["condition"]), _plain(o["model"]),
                      _plain(o["firmware"]), "" if o["onu_id"] is None else str(o["onu_id"]),
                      _plain(o.get("object_id") or ""))
    return table


@app.command("list")
def list_(
    olt: Annotated[str | None, typer.Option(help="Only this OLT's ONTs.")] = None,
    db: Db = None,
    api: ApiOpt = DEFAULT_API,
    token_file: TokenFileOpt = None,
    output: OutputOpt = "table",
) -> None:
    """The ONTs in the inventory, with location, state and the object each is bound to."""
    if db is not None:
        async def work(s: Store) -> list[dict[str, Any]]:
            found = []
            for o in await s.list_onts(olt=olt):
                b = await s.binding_of_serial(o.serial)
                found.append(_ont_json(o, None if b is None else b.object_id))
            return found

        onts = _run(db, work)
        if output == "json":
            _json_print(onts)
            return
    else:
        data = call(api, token_file, lambda c: c.get("/onts"))
        if olt is not None:
            data = {**data, "onts": [o for o in data["onts"] if o["olt"] == olt]}
        if output == "json":
            _json_print(data)
            return
        onts = data["onts"]
    out.print(_onts_table(onts))


# ---- ponctl objects -------------------------------------------------------------------------
def _objects(db: Path | None, api: str, token_file: Path | None,
             offline: Callable[[Store], Awaitable[dict[str, Any]]],
             online: Callable[[ApiClient], Awaitable[Any]]) -> dict[str, Any]:
    """The command's data, from the store file (``--db``) or from the agent."""
    if db is not None:
        return _run(db, offline)
    data: dict[str, Any] = call(api, token_file, online)
    return data


@objects_app.command("create")
def create(
    object_id: Annotated[str, typer.Argument(metavar="ID", help="Object id")],
    address: Annotated[str, typer.Argument(help="Address text")],
    db: Db = None,
    api: ApiOpt = DEFAULT_API,
    token_file: TokenFileOpt = None,
    output: OutputOpt = "table",
) -> None:
    """Create an object (an address); again with the same address changes nothing."""

    async def offline(s: Store) -> dict[str, Any]:
        return _object_json(await s.create_object(object_id, address))

    obj = _objects(db, api, token_file, offline,
                   lambda c: c.post("/objects", {"id": object_id, "address": address}))
    if output == "json":
        _json_print(obj)
        return
    out.print(f"object {_plain(obj['id'])}: {_plain(obj['address'])}", highlight=False)


@objects_app.command("bind")
def bind(
    object_id: Annotated[str, typer.Argument(metavar="OBJECT", help="Object id")],
    serial: Annotated[str, typer.Argument(help="ONT serial, as scanned")],
    move: Annotated[bool, typer.Option("--move", help="Move the serial here from the "
                                       "object it is bound to.")] = False,
    db: Db = None,
    api: ApiOpt = DEFAULT_API,
    token_file: TokenFileOpt = None,
    output: OutputOpt = "table",
) -> None:
    """Bind an ONT to the object by its serial (a barcode scan).

    A serial bound to another object is refused, naming it, unless --move.
    """

    async def offline(s: Store) -> dict[str, Any]:
        r = await bind_by_barcode(s, object_id, serial, move=move)
        return {"object_id": r.binding.object_id, "serial": r.binding.serial,
                "bound_at": r.binding.bound_at.isoformat(), "change": r.change,
                "previous_object": r.previous_object}

    body = {"serial": normalise_serial(serial), "move": move}
    b = _objects(db, api, token_file, offline,
                 lambda c: c.post(f"/objects/{seg(object_id)}/bind", body))
    if output == "json":
        _json_print(b)
        return
    if b["change"] == "moved":
        out.print(f"ONT {b['serial']} moved from object {_plain(b['previous_object'] or '')} "
                  f"to {_plain(b['object_id'])}", highlight=False)
    elif b["change"] == "unchanged":
        out.print(f"ONT {b['serial']} was already bound to object {_plain(b['object_id'])}",
                  highlight=False)
    else:
        out.print(f"ONT {b['serial']} bound to object {_plain(b['object_id'])}",
                  highlight=False)


@objects_app.command("unbind")
def unbind(
    object_id: Annotated[str, typer.Argument(metavar="OBJECT", help="Object id")],
    db: Db = None,
    api: ApiOpt = DEFAULT_API,
    token_file: TokenFileOpt = None,
    output: OutputOpt = "table",
) -> None:
    """Remove the object's binding."""

    async def offline(s: Store) -> dict[str, Any]:
        if await s.get_object(object_id) is None:
            raise NotFound(f"object {object_id!r} does not exist")
        gone = await s.unbind(object_id)
        return {"object_id": object_id, "serial": None if gone is None else gone.serial}

    data = _objects(db, api, token_file, offline,
                    lambda c: c.post(f"/objects/{seg(object_id)}/unbind"))
    if output == "json":
        _json_print(data)
    elif data["serial"] is None:
        out.print(f"object {_plain(object_id)} had no ONT bound", highlight=False)
    else:
        out.print(f"ONT {data['serial']} unbound from object {_plain(object_id)}",
                  highlight=False)


@objects_app.command("list")
def list_objects(
    db: Db = None,
    api: ApiOpt = DEFAULT_API,
    token_file: TokenFileOpt = None,
    output: OutputOpt = "table",
) -> None:
    """Every object with the ONT bound to it."""

    async def offline(s: Store) -> dict[str, Any]:
        return {"objects": [_object_json(o) for o in await s.list_objects()]}

    data = _objects(db, api, token_file, offline, lambda c: c.get("/objects"))
    if output == "json":
        _json_print(data)
        return
    table = Table(title=f"Objects ({len(data['objects'])})")
    for col in ("object", "address", "ONT", "created"):
        table.add_column(col, overflow="fold")
    for o in data["objects"]:
        table.add_row(_plain(o["id"]), _plain(o["address"]), _plain(o["serial"] or "-"),
                      _plain(o["created_at"][:19]))
    out.print(table)


async def _show_via_api(c: ApiClient, object_id: str) -> dict[str, Any]:
    obj = await c.get(f"/objects/{seg(object_id)}")
    ont = None
    if obj["serial"] is not None:
        try:
            ont = await c.get(f"/onts/{seg(obj['serial'])}")
        except ClientError as exc:
            if exc.status != 404:  # 404: bound, not discovered or imported yet
                raise
    history = await c.get(f"/objects/{seg(object_id)}/history")
    return {**obj, "ont": ont, "history": history["history"]}


@objects_app.command("show")
def show(
    object_id: Annotated[str, typer.Argument(metavar="OBJECT", help="Object id")],
    db: Db = None,
    api: ApiOpt = DEFAULT_API,
    token_file: TokenFileOpt = None,
    output: OutputOpt = "table",
) -> None:
    """The object, its bound ONT (with location and state) and its binding history."""

    async def offline(s: Store) -> dict[str, Any]:
        obj = await s.get_object(object_id)
        if obj is None:
            raise NotFound(f"object {object_id!r} does not exist")
        ont = None if obj.serial is None else await s.get_ont(obj.serial)
        history = await s.binding_history(object_id=object_id)
        return {**_object_json(obj), "ont": None if ont is None else _ont_json(ont, obj.id),
                "history": [{"at": h.at.isoformat(), "action": h.action, "serial": h.serial,
                             "other_object": h.other_object} for h in history]}

    data = _objects(db, api, token_file, offline, lambda c: _show_via_api(c, object_id))
    if output == "json":
        _json_print(data)
        return
    table = Table(title=f"Object {_plain(data['id'])}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    table.add_row("address", _plain(data["address"]))
    table.add_row("created", _plain(data["created_at"]))
    table.add_row("ONT", _plain(data["serial"] or "(none bound)"))
    ont = data["ont"]
    if ont is not None:
        table.add_row("location", f"{_plain(ont['olt'])} {_plain(ont['pon_port'])}")
        table.add_row("state", f"{_plain(ont['state'])} {_plain(ont['condition'])}".strip())
    elif data["serial"] is not None:
        table.add_row("location", "(ONT not discovered or imported yet)")
    out.print(table)
    if data["history"]:
        hist = Table(title="Binding history")
        for col in ("at", "action", "serial", "other object"):
            hist.add_column(col)
        for h in data["history"]:
            hist.add_row(_plain(h["at"]), _plain(h["action"]), _plain(h["serial"]),
                         _plain(h["other_object"] or ""))
        out.print(hist)
