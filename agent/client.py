"""The CLI's side of the HTTP API: one small client and the options every command shares.

Commands that act on a running agent (``ponctl orders ...``, ``subscribers``, ``lines``,
``gateways``, ``diagnose``, ``push``) talk to its API (:mod:`agent.api`), so the daemon stays the
one writer of the store and the one process that talks to devices:

* ``--api URL`` (or ``$PONCTL_API``; default ``http://127.0.0.1:8600``) names the agent;
* the token comes from ``$PONCTL_TOKEN`` or ``--token-file FILE`` (never from the command
  line, where ``ps`` and shell history would show it);
* ``--output json`` prints the API's JSON as is (for scripts); the default is a table.

An API error exits 1 with the agent's message (which names the field, never echoes the value);
an agent that cannot be reached exits 1 saying where it was looked for.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any, Literal, NoReturn, Self, TypeVar
from urllib.parse import quote

import aiohttp
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agent.api import PREFIX

T = TypeVar("T")

DEFAULT_API = "http://127.0.0.1:8600"
API_ENV = "PONCTL_API"
TOKEN_ENV = "PONCTL_TOKEN"  # noqa: S105 - the variable's name, not a token
TIMEOUT = 120.0  # seconds for one request (a resend waits for the device)

ApiOpt = Annotated[str, typer.Option("--api", envvar=API_ENV, show_envvar=True,
                                     help="The agent's URL.")]
TokenFileOpt = Annotated[Path | None, typer.Option(
    "--token-file", help=f"A file holding the API token (default: ${TOKEN_ENV}).")]
OutputOpt = Annotated[Literal["table", "json"], typer.Option("--output", "-o",
                                                             help="table or json")]

out = Console()
err = Console(stderr=True)


class ClientError(Exception):
    """The API answered with an error, or could not be reached (``status`` 0)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message if field is None else f"{field}: {message}")
        self.status = status
        self.message = message
        self.field = field


def read_token(token_file: Path | None, environ: Mapping[str, str] | None = None) -> str:
    """The API token from ``token_file``, else ``$PONCTL_TOKEN``; a clear error if neither."""
    env = os.environ if environ is None else environ
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ClientError(0, f"cannot read the token file {token_file}: "
                                 f"{exc.strerror or exc}") from None
        if not token:
            raise ClientError(0, f"the token file {token_file} is empty")
        return token
    token = env.get(TOKEN_ENV, "").strip()
    if not token:
        raise ClientError(0, f"no API token: set ${TOKEN_ENV} or give --token-file FILE")
    return token


class ApiClient:
    """``async with ApiClient(url, token) as api: await api.get("/orders")``."""

    def __init__(self, base_url: str, token: str, *, timeout: float = TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"ApiClient({self.base_url!r}, token=***)"

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout),
            headers={"Authorization": f"Bearer {self._token}"})
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, body: Any = None,
                      query: Mapping[str, str] | None = None) -> Any:
        """The response's JSON; :class:`ClientError` for a 4xx/5xx or no answer."""
        if self._session is None:
            raise RuntimeError("use ApiClient as an async context manager")
        url = f"{self.base_url}{PREFIX}{path}"
        try:
            async with self._session.request(method, url, json=body,
                                             params=dict(query or {})) as resp:
                text = await resp.text()
                status = resp.status
        except aiohttp.ClientConnectorError as exc:
            raise ClientError(0, f"cannot reach the agent at {self.base_url} "
                                 f"({exc.os_error.strerror or exc.os_error}): is "
                                 f"`ponctl agent run` running, and is --api / ${API_ENV} "
                                 f"right?") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ClientError(0, f"the agent at {self.base_url} did not answer: "
                                 f"{type(exc).__name__} {exc}".strip()) from None
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        if status >= 400:
            if isinstance(data, dict) and isinstance(data.get("error"), str):
                field = data.get("field")
                raise ClientError(status, data["error"], field if isinstance(field, str)
                                  else None)
            raise ClientError(status, f"the agent answered HTTP {status}")
        return data

    async def get(self, path: str, **query: str) -> Any:
        return await self.request("GET", path, query=query)

    async def post(self, path: str, body: Any = None) -> Any:
        return await self.request("POST", path, body)


def seg(value: str) -> str:
    """``value`` as one URL path segment (the API validates it)."""
    return quote(value, safe="")


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def call(api: str, token_file: Path | None, work: Callable[[ApiClient], Awaitable[T]]) -> T:
    """Run ``work`` against the agent; an API error exits 1 with its message."""
    try:
        token = read_token(token_file)

        async def main() -> T:
            async with ApiClient(api, token) as client:
                return await work(client)

        return asyncio.run(main())
    except ClientError as exc:
        fail(str(exc))


def emit(data: Any, output: str, table: Callable[[Any], Table | str]) -> None:
    """Print ``data`` as JSON (``--output json``) or through ``table``."""
    if output == "json":
        out.print_json(json.dumps(data))
        return
    shown = table(data)
    if isinstance(shown, str):
        out.print(shown, highlight=False, soft_wrap=True, markup=False)
    else:
        out.print(shown)


def simple_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]],
                 title: str | None = None) -> Table:
    """A table of ``rows`` with ``columns`` as (key, heading); values shown as text."""
    t = Table(title=title, show_lines=False)
    for _, heading in columns:
        t.add_column(heading, overflow="fold")
    for r in rows:
        t.add_row(*[_cell(r.get(k)) for k, _ in columns])
    return t


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "\n".join(_cell(v) for v in value)
    return escape(str(value))
