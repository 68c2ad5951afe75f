"""The ``ponctl`` command."""

from __future__ import annotations

import typer

from agent.catalog_commands import app as catalog_app
from agent.daemon_commands import app as daemon_app
from agent.inventory_commands import app as onts_app
from agent.inventory_commands import objects_app
from agent.phan_commands import app as phan_app
from simulator.commands import app as sim_app

app = typer.Typer(help="ponctl: provisioning agent for fibre (PON) networks.",
                  no_args_is_help=True, add_completion=False)
app.add_typer(sim_app, name="sim")
app.add_typer(phan_app, name="phan")
app.add_typer(catalog_app, name="catalog")
app.add_typer(onts_app, name="onts")
app.add_typer(objects_app, name="objects")
app.add_typer(daemon_app, name="agent")


def main() -> None:
    """Console entry point."""
    app(prog_name="ponctl")
