"""``ponctl phan ...``: make keys, issue PHAN URLs, and map a URL back to its line of service.

Keys come from ``--keys-file FILE`` (one ``kid:base64key`` per line) or the environment
(``PONCTL_PHAN_KEYS=kid:base64key,...``, current key ``PONCTL_PHAN_CURRENT``), never from a
command-line argument, so they stay out of shell history and process listings.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from agent import phan

app = typer.Typer(help="PHAN analytics URLs: keys, encode, decode.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

KeysFile = Annotated[Path | None, typer.Option(
    "--keys-file", help="Key file (kid:base64key per line); default: $PONCTL_PHAN_KEYS.")]


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def _keyring(keys_file: Path | None) -> phan.Keyring:
    try:
        if keys_file is not None:
            mode = keys_file.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                err.print(f"warning: {keys_file} is readable by group or others; "
                          "chmod 600 it", highlight=False)
            return phan.Keyring.from_file(keys_file,
                                          current=os.environ.get("PONCTL_PHAN_CURRENT"))
        return phan.Keyring.from_env()
    except OSError as exc:
        _fail(f"cannot read {keys_file}: {exc.strerror}")
    except phan.PhanError as exc:
        _fail(str(exc))
    raise AssertionError("unreachable")


@app.command()
def keygen(kid: Annotated[str, typer.Argument(help="Key id, e.g. 2026q4")]) -> None:
    """Print a new random key as ``kid:base64key`` (append it to the key file)."""
    try:
        print(phan.Keyring.generate(kid).export_secrets())
    except phan.PhanError as exc:
        _fail(str(exc))


@app.command()
def encode(
    line_code: Annotated[str, typer.Argument(help="Line-of-service code")],
    base_url: Annotated[str, typer.Option(help="Analytics base URL (https://...)")],
    keys_file: KeysFile = None,
) -> None:
    """Issue the PHAN URL for a line of service (with the current key)."""
    ring = _keyring(keys_file)
    try:
        print(phan.url_for(base_url, line_code, ring))
    except phan.PhanError as exc:
        _fail(str(exc))


@app.command()
def decode(
    url: Annotated[str, typer.Argument(help="A PHAN URL or its token")],
    keys_file: KeysFile = None,
) -> None:
    """Map a PHAN URL back to its line-of-service code; a tampered token is refused."""
    ring = _keyring(keys_file)
    try:
        print(phan.decode(url, ring))
    except phan.PhanError as exc:
        _fail(str(exc))
