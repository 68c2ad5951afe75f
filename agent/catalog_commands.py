"""``ponctl catalog ...``: read the service catalog the way the agent will use it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from agent.catalog import DEFAULT_PATH, Catalog, CatalogError, Resolved, load_catalog

app = typer.Typer(help="The service catalog: ISPs, service types, VLANs, profiles.",
                  no_args_is_help=True)
out = Console()
err = Console(stderr=True)
FileOpt = Annotated[Path, typer.Option("--file", "-f", help="Catalog file.")]


def _load(path: Path) -> Catalog:
    try:
        return load_catalog(path)
    except CatalogError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None


@app.command()
def show(file: FileOpt = DEFAULT_PATH) -> None:
    """ISPs and service types with their VLANs and bandwidth profiles."""
    cat = _load(file)
    table = Table(title=f"catalog {file}")
    for col in ("ISP", "service type", "C-VLAN", "S-VLAN", "profile"):
        table.add_column(col)
    for isp in cat.spec.isps:
        for st, svc in isp.services.items():
            table.add_row(isp.code, st, str(svc.c_vlan), str(svc.s_vlan), svc.bandwidth_profile)
    out.print(table)


@app.command()
def check(file: FileOpt = DEFAULT_PATH) -> None:
    """List every reference in the catalog that leads nowhere (exit 2 if there are any)."""
    gaps = _load(file).check()
    for gap in gaps:
        out.print(f"{gap.kind}: {gap.message}", highlight=False)
    if gaps:
        raise typer.Exit(2)
    out.print("no gaps")


@app.command()
def resolve(isp: str, service_type: str, olt: str, file: FileOpt = DEFAULT_PATH,
            output: Annotated[str, typer.Option(help="text or json")] = "text") -> None:
    """What an order for ISP + service type on an OLT resolves to, or what is missing."""
    result = _load(file).resolve(isp, service_type, olt)
    if isinstance(result, Resolved):
        data = {"isp": result.isp, "service_type": result.service_type, "olt": result.olt,
                "c_vlan": result.c_vlan, "s_vlan": result.s_vlan, "uplink": result.uplink,
                "uni": result.uni, "profile": result.profile.name}
        if output == "json":
            print(json.dumps(data))
        else:
            out.print(", ".join(f"{k} {v}" for k, v in data.items()), highlight=False)
        return
    for gap in result:
        if output == "json":
            print(json.dumps({"missing": gap.kind, "message": gap.message}))
        else:
            out.print(f"configuration missing: {gap.message}", highlight=False)
    raise typer.Exit(2)
