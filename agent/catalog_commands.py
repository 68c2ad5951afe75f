"""``ponctl catalog ...``: the service catalog, as the running agent uses it or from a file.

* ``show`` and ``resolve ISP SERVICE_TYPE OLT`` ask the **agent's API** by default
  (``GET /catalog``, ``GET /catalog/resolve``): the catalog the agent loaded is the one its
  orders resolve against, even if the file was edited since. Connection options as for every
  API-backed command (:mod:`agent.client`: ``--api`` / ``$PONCTL_API``, the token from
  ``$PONCTL_TOKEN`` or ``--token-file``). ``--file PATH`` reads that catalog file instead, with
  no agent (for a machine without one, or to try an edited file before the agent loads it);
  both modes print the same table and the same JSON (``--output json``, the API's shape).
* ``check`` validates a file (``--file``, default ``configs/catalog.yaml`` of the checkout):
  load errors exit 1, dangling references are listed and exit 2. It is a check of the file
  before deployment, so it always reads the file.

``resolve`` exits 2 when something is missing, printing each gap ("configuration missing:
ISP 'speedy' has no VLAN for service type 'iptv'").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agent.api_inventory import catalog_out, resolve_out
from agent.catalog import DEFAULT_PATH, Catalog, CatalogError, load_catalog
from agent.client import DEFAULT_API, ApiOpt, OutputOpt, TokenFileOpt, call, fail

app = typer.Typer(help="The service catalog: ISPs, service types, VLANs, profiles.",
                  no_args_is_help=True)
out = Console()
FileOpt = Annotated[Path, typer.Option("--file", "-f", help="Catalog file.")]
SourceOpt = Annotated[Path | None, typer.Option(
    "--file", "-f", help="Read this catalog file instead of asking the agent's API.")]


def _load(path: Path) -> Catalog:
    try:
        return load_catalog(path)
    except CatalogError as exc:
        fail(str(exc))


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2))


def _rate(bps: int) -> str:
    for unit, size in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if bps >= size and bps % size == 0:
            return f"{bps // size}{unit}"
    return str(bps)


def _tables(data: dict[str, Any], source: str) -> list[Table]:
    isps = Table(title=f"catalog {escape(source)}")
    for col in ("ISP", "service type", "C-VLAN", "S-VLAN", "profile"):
        isps.add_column(col)
    for isp in data["isps"]:
        for svc in isp["services"]:
            isps.add_row(escape(isp["code"]), escape(svc["service_type"]), str(svc["c_vlan"]),
                         str(svc["s_vlan"]), escape(svc["bandwidth_profile"]))
    types = Table(title="service types")
    for col in ("service type", "UNI", "tagging", "user VLAN"):
        types.add_column(col)
    for t in data["service_types"]:
        types.add_row(escape(t["name"]), str(t["uni"]), t["tagging"],
                      "-" if t["user_vlan"] is None else str(t["user_vlan"]))
    profiles = Table(title="bandwidth profiles")
    for col in ("profile", "max", "assured", "fixed"):
        profiles.add_column(col)
    for p in data["bandwidth_profiles"]:
        profiles.add_row(escape(p["name"]), _rate(p["max_bps"]), _rate(p["assured_bps"]),
                         _rate(p["fixed_bps"]))
    olts = Table(title="network services (OLT uplinks)")
    for col in ("OLT", "uplink", "S-VLANs"):
        olts.add_column(col, overflow="fold")
    for o in data["olts"]:
        for u in o["uplinks"]:
            olts.add_row(escape(o["olt"]), escape(u["port"]), escape(", ".join(u["s_vlans"])))
    return [isps, types, profiles, olts]


@app.command()
def show(file: SourceOpt = None, api: ApiOpt = DEFAULT_API, token_file: TokenFileOpt = None,
         output: OutputOpt = "table") -> None:
    """ISPs and service types with their VLANs, bandwidth profiles and OLT uplinks."""
    if file is not None:
        data = catalog_out(_load(file)).model_dump(mode="json")
        source = str(file)
    else:
        data = call(api, token_file, lambda c: c.get("/catalog"))
        source = f"of the agent at {api}"
    if output == "json":
        _print_json(data)
        return
    for table in _tables(data, source):
        out.print(table)
    for gap in data["gaps"]:
        out.print(f"{gap['kind']}: {gap['message']}", highlight=False, markup=False)


@app.command()
def check(file: FileOpt = DEFAULT_PATH) -> None:
    """List every reference in the catalog file that leads nowhere (exit 2 if any)."""
    gaps = _load(file).check()
    for gap in gaps:
        out.print(f"{gap.kind}: {gap.message}", highlight=False, markup=False)
    if gaps:
        raise typer.Exit(2)
    out.print("no gaps")


@app.command()
def resolve(isp: str, service_type: str, olt: str, file: SourceOpt = None,
            api: ApiOpt = DEFAULT_API, token_file: TokenFileOpt = None,
            output: Annotated[Literal["table", "text", "json"], typer.Option(
                "--output", "-o", help="table (or text) or json")] = "table") -> None:
    """What an order for ISP + service type on an OLT resolves to, or what is missing."""
    if file is not None:
        data = resolve_out(_load(file), isp, service_type, olt).model_dump(mode="json")
    else:
        query = {"isp": isp, "service_type": service_type, "olt": olt}
        data = call(api, token_file, lambda c: c.get("/catalog/resolve", **query))
    if output == "json":
        _print_json(data)
    elif data["resolved"]:
        shown = {k: data[k] for k in ("isp", "service_type", "olt", "c_vlan", "s_vlan",
                                      "uplink", "uni")}
        shown["profile"] = data["bandwidth_profile"]["name"]
        if data["tagged"]:
            shown["user_vlan"] = data["user_vlan"]
        out.print(", ".join(f"{k} {v}" for k, v in shown.items()), highlight=False,
                  markup=False)
    else:
        for gap in data["missing"]:
            out.print(f"configuration missing: {gap['message']}", highlight=False,
                      markup=False)
    if not data["resolved"]:
        raise typer.Exit(2)
