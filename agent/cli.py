"""The ``ponctl`` command.

``ponctl sim`` and ``ponctl demo`` load the simulator (and scapy, which its data path uses) only
when they run: the daemon, ``ponctl agent run``, is the same entry point and need not carry them
(about 27 MiB of its resident memory).
"""

from __future__ import annotations

import typer

from agent.catalog_commands import app as catalog_app
from agent.daemon_commands import app as daemon_app
from agent.diagnose_commands import diagnose as diagnose_command
from agent.inventory_commands import app as onts_app
from agent.inventory_commands import objects_app
from agent.lines_commands import gateways_app, lines_app, subscribers_app
from agent.orders_commands import app as orders_app
from agent.phan_commands import app as phan_app
from agent.push_commands import push as push_command

app = typer.Typer(help="ponctl: provisioning agent for fibre (PON) networks.",
                  no_args_is_help=True, add_completion=False)
app.add_typer(phan_app, name="phan")
app.add_typer(catalog_app, name="catalog")
app.add_typer(onts_app, name="onts")
app.add_typer(objects_app, name="objects")
app.add_typer(daemon_app, name="agent")
app.add_typer(orders_app, name="orders")
app.add_typer(subscribers_app, name="subscribers")
app.add_typer(lines_app, name="lines")
app.add_typer(gateways_app, name="gateways")
app.command("diagnose")(diagnose_command)
app.command("push")(push_command)

_PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True,
                 "help_option_names": []}


@app.command("sim", context_settings=_PASS_THROUGH, add_help_option=False,
             help="The simulated lab: OLTs, ONTs and gateways on loopback.")
def sim(ctx: typer.Context) -> None:
    """Hands the rest of the command line to the simulator's own commands."""
    from simulator.commands import app as sim_app

    sim_app(args=ctx.args, prog_name="ponctl sim")


@app.command("demo", context_settings=_PASS_THROUGH, add_help_option=False,
             help="Run the simulated lab and the agent together: orders settle live, then a "
                  "summary.")
def demo(ctx: typer.Context) -> None:
    """Hands the rest of the command line to the demo's command."""
    from demo.run import demo_command

    one = typer.Typer(add_completion=False)
    one.command()(demo_command)
    one(args=ctx.args, prog_name="ponctl demo")


def main() -> None:
    """Console entry point."""
    app(prog_name="ponctl")
