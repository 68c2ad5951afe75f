"""``ponctl push SERIAL``: push an ONT's open orders now, or ``--dry-run`` them.

A dry run renders each order's payload exactly as a push would send it and compares it with
the device: the payload (XML highlighted) and the diff (``+`` what the push would add, ``-``
what it would remove) are printed; nothing is recorded as a push and nothing changes on the
device. Orders that are not ready (prerequisites, start date in the future) are listed with
their status and the reason, and not pushed.

Through the running agent's API by default (``--api``, token from ``$PONCTL_TOKEN`` or
``--token-file``; a dry run needs any token, a real push the admin role). ``--direct
--config FILE`` needs no daemon: the settings, catalog and store named in FILE are opened in
this process and the devices are talked to from here (for when the agent is not running: two
processes pushing to the same devices at once is not coordinated).

Exit codes: 0 done; 1 an error (unknown serial, ONT bound to no object, agent or device
settings unusable); 2 an order was pushed or dry-run but did not go through (see its error).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.syntax import Syntax
from rich.text import Text

from agent.client import (
    DEFAULT_API,
    ApiClient,
    ApiOpt,
    OutputOpt,
    TokenFileOpt,
    call,
    fail,
    out,
)
from agent.intent import SERIAL
from agent.inventory import normalise_serial

DEFAULT_CONFIG = Path("configs/agent.yaml")


def push(
    serial: Annotated[str, typer.Argument(help="The ONT's serial, e.g. HWTC1A2B3C4D.")],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Show the payload and the diff against the device; change "
                          "nothing.")] = False,
    direct: Annotated[bool, typer.Option(
        "--direct", help="No daemon: open the settings' store and talk to the devices from "
                         "this process.")] = False,
    config: Annotated[Path, typer.Option(
        "--config", "-c", help="Agent settings YAML file (with --direct).")] = DEFAULT_CONFIG,
    api: ApiOpt = DEFAULT_API,
    token_file: TokenFileOpt = None,
    output: OutputOpt = "table",
) -> None:
    """Push the open orders of an ONT's object now (or --dry-run them)."""
    sn = normalise_serial(serial)
    if not SERIAL.fullmatch(sn):
        fail("the serial is invalid: 4 vendor letters + 8 hex digits, e.g. HWTC1A2B3C4D")
    if direct:
        data = _direct(config, sn, dry_run)
    else:
        async def work(client: ApiClient) -> Any:
            if dry_run:
                return await client.post(f"/onts/{sn}/dry-run")
            return await client.post(f"/onts/{sn}/push", {"dry_run": False})

        data = call(api, token_file, work)
    if output == "json":
        out.print_json(json.dumps(data))
    else:
        show(data)
    if any(_failed(o) for o in data.get("orders", [])):
        raise typer.Exit(2)


def _failed(order: dict[str, Any]) -> bool:
    if order.get("action") == "dry-run":
        return bool(order.get("error"))
    return order.get("action") == "pushed" and order.get("status") != "active"


def _direct(config: Path, serial: str, dry_run: bool) -> dict[str, Any]:
    """The same answer as the API's, from an engine in this process (no daemon)."""
    # Imported here: the API path needs none of this (nor the drivers it pulls in).
    from agent.api_push import ont_push_out
    from agent.catalog import CatalogError, load_catalog
    from agent.engine import Engine
    from agent.profiles import ProfileError
    from agent.settings import SettingsError, load_settings
    from agent.store import Store, StoreError

    try:
        settings = load_settings(config)
    except SettingsError as exc:
        fail(str(exc))
    if not settings.store.exists():
        fail(f"the store {settings.store} (named in {config}) does not exist: check --config "
             f"and the directory you run this from")

    async def main() -> dict[str, Any]:
        catalog = await asyncio.to_thread(load_catalog, settings.catalog)
        async with Store(settings.store) as store, \
                Engine(store, catalog, settings, schedule=False) as engine:
            done = await engine.push_ont(serial, dry_run=dry_run)
            return ont_push_out(done).model_dump(mode="json")

    try:
        return asyncio.run(main())
    except (SettingsError, CatalogError, ProfileError, StoreError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot open the store or the catalog: {exc}")


def _diff_text(diff: str) -> Text:
    text = Text()
    for line in diff.splitlines():
        style = "green" if line.startswith("+") else "red" if line.startswith("-") else ""
        text.append(line + "\n", style=style)
    text.rstrip()
    return text


def show(data: dict[str, Any]) -> None:
    """Each order: id, status, what was done, and for a dry run the payload and the diff."""
    mode = "dry run" if data.get("dry_run") else "push"
    orders = data.get("orders", [])
    out.print(Text(f"ONT {data.get('serial')} (object {data.get('object_id')}): {mode} of "
                   f"{len(orders)} open order(s)", style="bold"))
    if not orders:
        out.print("nothing to push: the object has no open order", highlight=False)
    for o in orders:
        head = Text()
        head.append(f"\norder {o['order_id']}", style="bold")
        head.append(f"  {o['status']}")
        if o.get("error_class"):
            head.append(f" ({o['error_class']})", style="yellow")
        head.append(f"  {o['action']}")
        if o.get("olt"):
            head.append(f" on {o['olt']}")
        out.print(head)
        if o["action"] == "skipped":
            out.print(Text(f"  not pushed: {o.get('reason') or o.get('message')}"))
            continue
        if o["action"] == "pushed":
            out.print(Text(f"  {o.get('message')}"))
            if o.get("reason"):
                out.print(Text(f"  push: {o['reason']}"))
            continue
        payload = o.get("payload") or ""
        out.print(Text("  payload:", style="bold"))
        if payload.lstrip().startswith("<"):
            out.print(Syntax(payload, "xml", word_wrap=True, background_color="default"))
        else:
            out.print(Text(payload))
        if o.get("error"):
            out.print(Text(f"  not compared with the device: {o['error']}", style="red"))
        elif o.get("diff"):
            out.print(Text("  diff against the device (+ the push adds, - it removes):",
                           style="bold"))
            out.print(_diff_text(o["diff"]))
        else:
            out.print(Text("  no difference: the device already holds this"))
