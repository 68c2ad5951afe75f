"""``ponctl subscribers|lines|gateways ...``: analytics (PHAN) on a running agent.

* ``subscribers create CODE NAME | list [--search TEXT] | show CODE``
* ``lines create CODE [--subscriber CODE] | list [--search TEXT] [--subscriber CODE] |
  show CODE | link CODE SUBSCRIBER | associate CODE GATEWAY [--move] | dissociate CODE``
* ``gateways register NAME --class C --address A [--port P] [--ont SERIAL] | list |
  show NAME | replace OLD NEW`` (RMA) ``| resend NAME``

All through the agent's API (:mod:`agent.client`: ``--api``, ``$PONCTL_TOKEN`` or
``--token-file``, ``--output json``). Exit codes: 0 done, 1 an error (the agent's message).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from agent.client import DEFAULT_API, ApiOpt, OutputOpt, TokenFileOpt, call, emit, seg, simple_table

subscribers_app = typer.Typer(help="Subscribers (full name, unique code).",
                              no_args_is_help=True)
lines_app = typer.Typer(help="Lines of service: subscriber, gateway, PHAN URL.",
                        no_args_is_help=True)
gateways_app = typer.Typer(help="Residential gateways: registration, PHAN URL state, RMA.",
                           no_args_is_help=True)

Search = Annotated[str | None, typer.Option("--search", "-s",
                                            help="text in the code or the name")]
PHASE_STYLE = {"written": "green", "pending": "yellow", "writing": "cyan", "failed": "red"}


def _phase(state: dict[str, Any] | None) -> str:
    if state is None:
        return "-"
    phase = str(state["phase"])
    what = phase if state["desired_url"] else f"{phase} (clear)"
    return f"[{PHASE_STYLE.get(phase, '')}]{escape(what)}[/]"


# ---- subscribers -------------------------------------------------------------------------------
def _subscribers(data: dict[str, Any]) -> Table:
    rows = [{**s, "lines": ", ".join(s["lines"])} for s in data["subscribers"]]
    return simple_table(rows, [("code", "code"), ("name", "name"), ("lines", "lines")],
                        "subscribers")


def _subscriber(s: dict[str, Any]) -> Table:
    return _subscribers({"subscribers": [s]})


@subscribers_app.command("create")
def create_subscriber(code: str, name: str, api: ApiOpt = DEFAULT_API,
                      token_file: TokenFileOpt = None, output: OutputOpt = "table") -> None:
    """Create a subscriber (the same code and name again changes nothing)."""
    emit(call(api, token_file, lambda c: c.post("/subscribers", {"code": code, "name": name})),
         output, _subscriber)


@subscribers_app.command("list")
def list_subscribers(search: Search = None, api: ApiOpt = DEFAULT_API,
                     token_file: TokenFileOpt = None, output: OutputOpt = "table") -> None:
    """List subscribers, or search them by code or name."""
    query = {} if search is None else {"q": search}
    emit(call(api, token_file, lambda c: c.get("/subscribers", **query)), output, _subscribers)


@subscribers_app.command("show")
def show_subscriber(code: str, api: ApiOpt = DEFAULT_API, token_file: TokenFileOpt = None,
                    output: OutputOpt = "table") -> None:
    """One subscriber and its lines of service."""
    emit(call(api, token_file, lambda c: c.get(f"/subscribers/{seg(code)}")), output,
         _subscriber)


# ---- lines -------------------------------------------------------------------------------------
def _lines(data: dict[str, Any]) -> Table:
    t = Table(title="lines of service")
    for h in ("line", "subscriber", "gateway", "PHAN URL", "state", "message"):
        t.add_column(h, overflow="fold")
    for ln in data["lines"]:
        st = ln.get("gateway_state")
        sub = ln["subscriber"] or "-"
        if ln.get("subscriber_name"):
            sub = f"{sub} ({ln['subscriber_name']})"
        t.add_row(escape(ln["code"]), escape(sub), escape(ln["gateway"] or "-"),
                  escape(ln["phan_url"] or "-"), _phase(st),
                  escape(st["message"]) if st else "")
    return t


def _line(ln: dict[str, Any]) -> Table:
    t = _lines({"lines": [ln]})
    if ln.get("history"):
        t.caption = "\n".join(f"{e['at'][:19]}  {escape(e['message'])}" for e in ln["history"])
        t.caption_justify = "left"
    return t


@lines_app.command("create")
def create_line(code: str,
                subscriber: Annotated[str | None, typer.Option(help="its subscriber's code")]
                = None,
                api: ApiOpt = DEFAULT_API, token_file: TokenFileOpt = None,
                output: OutputOpt = "table") -> None:
    """Create a line of service (its subscriber may be given now or linked later)."""
    body: dict[str, Any] = {"code": code}
    if subscriber is not None:
        body["subscriber"] = subscriber
    emit(call(api, token_file, lambda c: c.post("/lines", body)), output, _line)


@lines_app.command("list")
def list_lines(search: Search = None,
               subscriber: Annotated[str | None, typer.Option(help="one subscriber's lines")]
               = None,
               api: ApiOpt = DEFAULT_API, token_file: TokenFileOpt = None,
               output: OutputOpt = "table") -> None:
    """List lines of service, or search them by code, subscriber code or name."""
    query = {k: v for k, v in (("q", search), ("subscriber", subscriber)) if v is not None}
    emit(call(api, token_file, lambda c: c.get("/lines", **query)), output, _lines)


@lines_app.command("show")
def show_line(code: str, api: ApiOpt = DEFAULT_API, token_file: TokenFileOpt = None,
              output: OutputOpt = "table") -> None:
    """One line: subscriber, gateway, PHAN URL, whether it is written, and its history."""
    emit(call(api, token_file, lambda c: c.get(f"/lines/{seg(code)}")), output, _line)


@lines_app.command("link")
def link(code: str, subscriber: str, api: ApiOpt = DEFAULT_API,
         token_file: TokenFileOpt = None, output: OutputOpt = "table") -> None:
    """Give a line of service to a subscriber."""
    emit(call(api, token_file, lambda c: c.post(f"/lines/{seg(code)}/subscriber",
                                                {"subscriber": subscriber})), output, _line)


@lines_app.command("associate")
def associate(code: str, gateway: str,
              move: Annotated[bool, typer.Option(help="move it from its current gateway")]
              = False,
              api: ApiOpt = DEFAULT_API, token_file: TokenFileOpt = None,
              output: OutputOpt = "table") -> None:
    """Associate a line with a gateway: its PHAN URL is issued (once) and written."""
    emit(call(api, token_file, lambda c: c.post(f"/lines/{seg(code)}/gateway",
                                                {"gateway": gateway, "move": move})),
         output, _line)


@lines_app.command("dissociate")
def dissociate(code: str, api: ApiOpt = DEFAULT_API, token_file: TokenFileOpt = None,
               output: OutputOpt = "table") -> None:
    """Take a line off its gateway (the gateway's URL is cleared)."""
    emit(call(api, token_file, lambda c: c.post(f"/lines/{seg(code)}/dissociate")), output,
         _line)


# ---- gateways ----------------------------------------------------------------------------------
def _gateways(data: dict[str, Any]) -> Table:
    t = Table(title="gateways")
    for h in ("gateway", "class", "address", "ONT", "line", "state", "message"):
        t.add_column(h, overflow="fold")
    for g in data["gateways"]:
        addr = g["address"] + (f":{g['port']}" if g.get("port") else "")
        name = g["name"] + (" (retired)" if g.get("retired_at") else "")
        st = g.get("state")
        t.add_row(escape(name), escape(g["gateway_class"]), escape(addr),
                  escape(g["ont_serial"] or "-"), escape(g["line"] or "-"), _phase(st),
                  escape(st["message"]) if st else "")
    return t


def _gateway(g: dict[str, Any]) -> Table:
    return _gateways({"gateways": [g]})


@gateways_app.command("register")
def register(name: str,
             gateway_class: Annotated[str, typer.Option("--class", help="a gateway class of "
                                                                        "the agent's settings")],
             address: Annotated[str, typer.Option(help="management address")],
             port: Annotated[int | None, typer.Option(help="if not the class's port")] = None,
             ont: Annotated[str | None, typer.Option(help="the ONT it sits behind")] = None,
             api: ApiOpt = DEFAULT_API, token_file: TokenFileOpt = None,
             output: OutputOpt = "table") -> None:
    """Register a gateway the agent can write PHAN URLs to."""
    body: dict[str, Any] = {"name": name, "gateway_class": gateway_class, "address": address}
    if port is not None:
        body["port"] = port
    if ont is not None:
        body["ont_serial"] = ont
    emit(call(api, token_file, lambda c: c.post("/gateways", body)), output, _gateway)


@gateways_app.command("list")
def list_gateways(api: ApiOpt = DEFAULT_API, token_file: TokenFileOpt = None,
                  output: OutputOpt = "table") -> None:
    """List the gateways with what they hold."""
    emit(call(api, token_file, lambda c: c.get("/gateways")), output, _gateways)


@gateways_app.command("show")
def show_gateway(name: str, api: ApiOpt = DEFAULT_API, token_file: TokenFileOpt = None,
                 output: OutputOpt = "table") -> None:
    """One gateway: its line, its URL and whether it is written."""
    emit(call(api, token_file, lambda c: c.get(f"/gateways/{seg(name)}")), output, _gateway)


@gateways_app.command("replace")
def replace(old: str, new: str, api: ApiOpt = DEFAULT_API, token_file: TokenFileOpt = None,
            output: OutputOpt = "table") -> None:
    """RMA: move OLD's line and PHAN URL to NEW (registered); OLD is cleared and retired."""
    emit(call(api, token_file, lambda c: c.post(f"/gateways/{seg(old)}/replace",
                                                {"new_gateway": new})), output, _line)


@gateways_app.command("resend")
def resend(name: str, api: ApiOpt = DEFAULT_API, token_file: TokenFileOpt = None,
           output: OutputOpt = "table") -> None:
    """Write the gateway's PHAN URL again (after a failure or a factory reset)."""
    emit(call(api, token_file, lambda c: c.post(f"/gateways/{seg(name)}/resend")), output,
         _gateway)
