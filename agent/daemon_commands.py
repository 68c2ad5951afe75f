"""``ponctl agent run``: the daemon in the foreground until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agent.catalog import CatalogError
from agent.daemon import Daemon, configure_logging, secret_values
from agent.profiles import ProfileError
from agent.settings import Settings, SettingsError, load_settings

app = typer.Typer(help="The provisioning agent daemon.", no_args_is_help=True)
err = Console(stderr=True)
log = logging.getLogger("agent.daemon")

DEFAULT_CONFIG = Path("configs/agent.yaml")


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True, markup=True)
    raise typer.Exit(code)


@app.callback()
def _main() -> None:
    """The provisioning agent daemon."""


@app.command()
def run(
    config: Annotated[Path, typer.Option("--config", "-c", help="Agent settings YAML file.")] = (
        DEFAULT_CONFIG),
    json_logs: Annotated[bool, typer.Option("--json-logs", help="Log JSON lines to stderr.")] = (
        False),
) -> None:
    """Run the agent until SIGTERM or Ctrl-C; exit 0 after a graceful stop."""
    try:
        settings = load_settings(config)
    except SettingsError as exc:
        _fail(str(exc))
        return
    configure_logging(json_logs, secrets=secret_values(settings))
    try:
        asyncio.run(_run(settings))
    except (SettingsError, CatalogError, ProfileError) as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot start the agent: {exc}")


async def _run(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with Daemon(settings) as daemon:
            log.info("agent running (%d devices)", len(daemon.devices))
            await stop.wait()
            log.info("stopping")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    log.info("stopped")
