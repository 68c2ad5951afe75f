"""``ponctl orders ...``: service orders on a running agent, through its API.

``list`` (with ``--open``, ``--status``), ``show`` (status, prerequisites, error, history),
``create``, ``cancel``, ``terminate``, ``change`` (another ISP or service type), ``resend``
one order, or ``resend --mismatched --olt OLT`` every order the audit found changed on an OLT
(with a progress bar). Connection options: ``--api`` / ``$PONCTL_API``, the token from
``$PONCTL_TOKEN`` or ``--token-file`` (:mod:`agent.client`). ``--output json`` prints the API's
JSON.

Exit codes: 0 done; 1 an error (the agent's message); 2 a bulk resend where some orders did
not turn active.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from agent.client import (
    DEFAULT_API,
    ApiClient,
    ApiOpt,
    OutputOpt,
    TokenFileOpt,
    call,
    emit,
    err,
    fail,
    seg,
)

app = typer.Typer(help="Service orders on the running agent (through its API).",
                  no_args_is_help=True)

STATUS_STYLE = {"active": "green", "awaiting-provisioning": "yellow",
                "awaiting-prerequisites": "magenta", "awaiting-activation": "cyan",
                "cancelled": "dim", "terminated": "dim"}


def _status(order: dict[str, Any]) -> str:
    st = str(order.get("status", ""))
    style = STATUS_STYLE.get(st, "")
    text = escape(st) + (f" ({escape(str(order['error_class']))})"
                         if order.get("error_class") else "")
    return f"[{style}]{text}[/]" if style else text


def orders_table(data: dict[str, Any]) -> Table:
    t = Table(title="orders")
    for h in ("order", "object", "ISP", "service", "start", "status", "message"):
        t.add_column(h, overflow="fold")
    for o in data["orders"]:
        t.add_row(escape(o["id"]), escape(o["object_id"]), escape(o["isp"]),
                  escape(o["service_type"]), escape(o["start_at"][:16]), _status(o),
                  escape(o.get("message") or ""))
    return t


def order_detail(o: dict[str, Any]) -> Table:
    t = Table(title=f"order {escape(o['id'])}", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value", overflow="fold")
    t.add_row("status", _status(o))
    t.add_row("message", escape(o.get("message") or ""))
    for p in o.get("prerequisites") or []:
        t.add_row("missing", escape(p))
    for key in ("object_id", "isp", "service_type", "start_at", "external_ref", "created_at"):
        t.add_row(key.replace("_", " "), escape(str(o.get(key) or "-")))
    for e in o.get("events") or []:
        cls = f" [{e['error_class']}]" if e.get("error_class") else ""
        t.add_row(escape(e["at"][:19]), escape(f"{e['status']}{cls}: {e['message']}"))
    return t


@app.command("list")
def list_orders(open_only: Annotated[bool, typer.Option("--open", help="leave out cancelled "
                                                        "and terminated orders")] = False,
                status: Annotated[str | None, typer.Option(help="only this status")] = None,
                api: ApiOpt = DEFAULT_API, token_file: TokenFileOpt = None,
                output: OutputOpt = "table") -> None:
    """List orders with their status."""
    data = call(api, token_file, lambda c: c.get("/orders", open_only=str(open_only).lower()))
    if status is not None:
        data = {"orders": [o for o in data["orders"] if o["status"] == status]}
    emit(data, output, orders_table)


@app.command()
def show(order_id: str, api: ApiOpt = DEFAULT_API, token_file: TokenFileOpt = None,
         output: OutputOpt = "table") -> None:
    """One order: status, what it waits for, its error and its history."""
    emit(call(api, token_file, lambda c: c.get(f"/orders/{seg(order_id)}")), output,
         order_detail)


@app.command()
def create(object_id: Annotated[str, typer.Option("--object", help="the object (address)")],
           isp: Annotated[str, typer.Option(help="ISP, as in the catalog")],
           service_type: Annotated[str, typer.Option("--service-type",
                                                     help="internet, iptv, voip, ...")],
           start: Annotated[datetime | None, typer.Option(
               help="start date (ISO 8601; default now, UTC)",
               formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"])] = None,
           ref: Annotated[str | None, typer.Option(help="the OSS's reference (idempotent)")]
           = None,
           api: ApiOpt = DEFAULT_API, token_file: TokenFileOpt = None,
           output: OutputOpt = "table") -> None:
    """Create an order; the agent provisions it when its prerequisites are met."""
    when = start or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    body: dict[str, Any] = {"object_id": object_id, "isp": isp, "service_type": service_type,
                            "start_at": when.isoformat()}
    if ref is not None:
        body["external_ref"] = ref
    emit(call(api, token_file, lambda c: c.post("/orders", body)), output, order_detail)


def _action(action: str, order_id: str, reason: str, api: str, token_file: Any,
            output: str) -> None:
    body = {"reason": reason} if reason else None
    emit(call(api, token_file, lambda c: c.post(f"/orders/{seg(order_id)}/{action}", body)),
         output, order_detail)


Reason = Annotated[str, typer.Option(help="why (kept in the order's history)")]


@app.command()
def cancel(order_id: str, reason: Reason = "", api: ApiOpt = DEFAULT_API,
           token_file: TokenFileOpt = None, output: OutputOpt = "table") -> None:
    """Cancel an order that is not provisioned yet."""
    _action("cancel", order_id, reason, api, token_file, output)


@app.command()
def terminate(order_id: str, reason: Reason = "", api: ApiOpt = DEFAULT_API,
              token_file: TokenFileOpt = None, output: OutputOpt = "table") -> None:
    """Remove the order's service from the device."""
    _action("terminate", order_id, reason, api, token_file, output)


@app.command()
def resend(order_id: Annotated[str | None, typer.Argument(help="the order to re-apply")] = None,
           mismatched: Annotated[bool, typer.Option(
               "--mismatched", help="every order whose last audit found a mismatch")] = False,
           olt: Annotated[str | None, typer.Option(help="with --mismatched: only this OLT")]
           = None,
           api: ApiOpt = DEFAULT_API, token_file: TokenFileOpt = None,
           output: OutputOpt = "table") -> None:
    """Re-apply one order, or (``--mismatched [--olt OLT]``) every mismatched one."""
    if (order_id is None) == (not mismatched):
        fail("give an ORDER, or --mismatched (with --olt to limit it to one OLT)")
    if order_id is not None:
        if olt is not None:
            fail("--olt goes with --mismatched")
        _action("resend", order_id, "", api, token_file, output)
        return
    results = call(api, token_file, lambda c: _resend_mismatched(c, olt, output))
    emit({"orders": results}, output, orders_table)
    if any(o["status"] != "active" for o in results):
        raise typer.Exit(2)


async def _resend_mismatched(c: ApiClient, olt: str | None, output: str) -> list[dict[str, Any]]:
    orders = (await c.get("/orders", open_only="true"))["orders"]
    todo = [o for o in orders if o.get("error_class") == "mismatch"]
    if olt is not None:
        olt_of = {o["object_id"]: o["olt"] for o in (await c.get("/onts"))["onts"]
                  if o.get("object_id")}
        todo = [o for o in todo if olt_of.get(o["object_id"]) == olt]
    results: list[dict[str, Any]] = []
    with Progress(TextColumn("resending"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, disable=output == "json") as bar:
        task = bar.add_task("resend", total=len(todo))
        for o in todo:
            results.append(await c.post(f"/orders/{seg(o['id'])}/resend"))
            bar.advance(task)
    return results


@app.command()
def change(order_id: str,
           service_type: Annotated[str | None, typer.Option("--service-type")] = None,
           isp: Annotated[str | None, typer.Option()] = None,
           reason: Reason = "", api: ApiOpt = DEFAULT_API, token_file: TokenFileOpt = None,
           output: OutputOpt = "table") -> None:
    """Change an order to another ISP or service type."""
    if service_type is None and isp is None:
        fail("give --service-type and/or --isp")
    body: dict[str, Any] = {}
    if service_type is not None:
        body["service_type"] = service_type
    if isp is not None:
        body["isp"] = isp
    if reason:
        body["reason"] = reason
    emit(call(api, token_file, lambda c: c.post(f"/orders/{seg(order_id)}/change", body)),
         output, order_detail)
