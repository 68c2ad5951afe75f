"""``ponctl diagnose TARGET``: one report a first-line engineer can act on.

TARGET is an order id, an ONT serial or an object id (``--kind`` says which when it names
several). The report comes from the running agent's API (``GET /api/v1/diagnose/{target}``;
any token: ``$PONCTL_TOKEN`` or ``--token-file``): the inventory, the ONT's live state on its
OLT (presence, optical Rx level against its GPON class, UNI link), each order's status, last
push and configuration versus intent, and in the lab the data-path trace of a DHCP Discover.
Every check has a verdict and, when it is not ok, the next step to take.

Exit codes: 0 every check is ok (or only warnings); 3 a check failed or could not be made
(a device did not answer); 1 an error (unknown or ambiguous target, agent unreachable).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal
from urllib.parse import quote

import typer
from rich.markup import escape
from rich.text import Text

from agent.client import DEFAULT_API, ApiClient, ApiOpt, OutputOpt, TokenFileOpt, call, out

SYMBOL = {"ok": ("✓", "green"), "warning": ("!", "yellow"), "fail": ("✗", "bold red"),
          "unknown": ("?", "magenta")}
EXIT_FAILED = 3
MAX_DIFF_LINES = 40  # of a diff shown under a check


def _mark(verdict: str) -> Text:
    symbol, style = SYMBOL.get(verdict, ("?", "magenta"))
    return Text(f"{symbol} {verdict.upper():<8}", style=style)


def show(report: dict[str, Any]) -> None:
    """The report, readable: sections, a line per check, the next step under a bad one."""
    what = {"order": "order", "ont": "ONT", "object": "object"}.get(report["kind"], "")
    head = Text.assemble(("Diagnosis of ", "bold"), (f"{what} {report['target']}", "bold cyan"))
    out.print(head)
    facts = [f"object {report['object_id'] or '-'}", f"ONT {report['serial'] or '-'}",
             f"orders {', '.join(report['orders']) or '-'}"]
    out.print(Text("  " + "; ".join(facts), style="dim"))
    for section in report["sections"]:
        out.print()
        out.print(Text.assemble(_mark(section["verdict"]), (section["title"], "bold")))
        for check in section["checks"]:
            subject = f" [{check['subject']}]" if check.get("subject") else ""
            line = Text("  ")
            line.append_text(_mark(check["verdict"]))
            line.append(f"{check['title']}{subject}: ", style="bold")
            line.append(check["finding"])
            out.print(line, soft_wrap=True)
            details = check.get("details") or {}
            if check["verdict"] != "ok":
                if check.get("next_step"):
                    out.print(Text(f"      → next: {check['next_step']}", style="cyan"),
                              soft_wrap=True)
                if details.get("diff") and check["verdict"] == "fail":
                    lines = str(details["diff"]).splitlines()
                    if len(lines) > MAX_DIFF_LINES:
                        more = len(lines) - MAX_DIFF_LINES
                        lines = [*lines[:MAX_DIFF_LINES],
                                 f"... {more} more lines (--output json shows all)"]
                    for d in lines:
                        style = "green" if d.startswith("+") else "red" if d.startswith(
                            "-") else "dim"
                        out.print(Text(f"        {d}", style=style), soft_wrap=True)
            if check["id"].startswith("datapath.") and details.get("steps"):
                for step in details["steps"]:
                    out.print(Text(f"        · {step}", style="dim"), soft_wrap=True)
        for note in section.get("notes") or []:
            out.print(f"  [dim]note: {escape(note)}[/]", soft_wrap=True)
    out.print()
    counts: dict[str, int] = {}
    for section in report["sections"]:
        for check in section["checks"]:
            counts[check["verdict"]] = counts.get(check["verdict"], 0) + 1
    summary = ", ".join(f"{n} {v}" for v, n in sorted(counts.items())) or "no checks"
    out.print(Text.assemble(("Result: ", "bold"), _mark(report["verdict"]),
                            (f"({summary}; {report['seconds']:.1f} s)", "dim")))


def diagnose(
    target: Annotated[str, typer.Argument(help="An order id, an ONT serial or an object id.")],
    kind: Annotated[Literal["order", "ont", "object"] | None, typer.Option(
        "--kind", help="Which the target is, when it names several.")] = None,
    api: ApiOpt = DEFAULT_API,
    token_file: TokenFileOpt = None,
    output: OutputOpt = "table",
) -> None:
    """Diagnose an order, ONT or object: what is wrong and what to do next.

    Exit codes: 0 all ok (warnings allowed), 3 a check failed or could not be made,
    1 an error (unknown or ambiguous target, agent unreachable)."""
    path = f"/diagnose/{quote(target.strip(), safe='')}"

    async def work(client: ApiClient) -> Any:
        if kind is None:
            return await client.get(path)
        return await client.get(path, kind=kind)

    report = call(api, token_file, work)
    if output == "json":
        out.print_json(json.dumps(report))
    else:
        show(report)
    if report.get("verdict") in ("fail", "unknown"):
        raise typer.Exit(EXIT_FAILED)
