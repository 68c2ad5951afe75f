"""The CLI against a running agent's API: orders, subscribers, lines and gateways.

Each command runs through typer's CliRunner in a worker thread (the CLI calls asyncio.run)
against a daemon on a real socket, with the token in $PONCTL_TOKEN: tables for people,
``--output json`` for scripts, errors with the agent's message and exit 1, the bulk resend of
mismatched orders with its exit code."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from typer.testing import CliRunner, Result

from agent.cli import app
from agent.daemon import Daemon
from agent.phan import decode
from simulator.lab import Lab
from tests.agent.lines_env import A001, ADMIN, CSR, KEYS, Client, gw_name

PAST = "2020-01-01T00:00:00+00:00"


async def ponctl(d: Daemon, *args: str, token: str = ADMIN) -> Result:
    env = {"PONCTL_API": f"http://127.0.0.1:{d.port}", "PONCTL_TOKEN": token,
           "COLUMNS": "200"}
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


async def test_subscriber_line_gateway_round_trip(lines_agent: tuple[Daemon, Client],
                                                   own_lab: Lab) -> None:
    d, _ = lines_agent
    lab = own_lab
    name = gw_name(A001)
    r = await ponctl(d, "subscribers", "create", "SUB-7", "Katherine Johnson")
    assert r.exit_code == 0, r.output
    assert "Katherine Johnson" in r.stdout
    r = await ponctl(d, "lines", "create", "LOS-7", "--subscriber", "SUB-7")
    assert r.exit_code == 0, r.output
    r = await ponctl(d, "gateways", "register", name, "--class", "sim-n", "--address",
                     lab.gateways[name].address, "--ont", A001)
    assert r.exit_code == 0, r.output
    line = as_json(await ponctl(d, "lines", "associate", "LOS-7", name, "-o", "json"))
    assert decode(line["phan_url"], KEYS) == "LOS-7"
    for _ in range(200):
        line = as_json(await ponctl(d, "lines", "show", "LOS-7", "-o", "json", token=CSR))
        if line["gateway_state"]["phase"] == "written":
            break
        await asyncio.sleep(0.05)
    assert lab.gateways[name].phan_url == line["phan_url"]
    r = await ponctl(d, "lines", "list", "--search", "katherine", token=CSR)
    assert r.exit_code == 0, r.output
    assert "LOS-7" in r.stdout
    assert "written" in r.stdout
    found = as_json(await ponctl(d, "subscribers", "list", "-s", "johnson", "-o", "json",
                                 token=CSR))
    assert [s["code"] for s in found["subscribers"]] == ["SUB-7"]
    gws = as_json(await ponctl(d, "gateways", "list", "-o", "json", token=CSR))
    assert [(g["name"], g["line"]) for g in gws["gateways"]] == [(name, "LOS-7")]
    # a CSR may read but not create; the agent's message is shown, exit 1
    r = await ponctl(d, "lines", "create", "LOS-8", token=CSR)
    assert r.exit_code == 1
    assert "admin role" in r.output
    r = await ponctl(d, "lines", "create", "LOS 8;reboot")
    assert r.exit_code == 1
    assert "code" in r.output
    assert "reboot" not in r.output


async def test_orders_commands(lines_agent: tuple[Daemon, Client]) -> None:
    d, _ = lines_agent
    order = as_json(await ponctl(d, "orders", "create", "--object", "obj-1", "--isp",
                                 "fibrenet", "--service-type", "internet", "--ref", "oss-1",
                                 "-o", "json"))
    assert order["status"] == "awaiting-prerequisites"
    r = await ponctl(d, "orders", "show", order["id"], token=CSR)
    assert r.exit_code == 0, r.output
    assert "awaiting-prerequisites" in r.stdout
    assert "obj-1" in r.stdout
    listed = as_json(await ponctl(d, "orders", "list", "--open", "-o", "json", token=CSR))
    assert [o["id"] for o in listed["orders"]] == [order["id"]]
    r = await ponctl(d, "orders", "cancel", order["id"], "--reason", "customer moved")
    assert r.exit_code == 0, r.output
    assert "cancelled" in r.stdout
    listed = as_json(await ponctl(d, "orders", "list", "--status", "cancelled", "-o", "json"))
    assert len(listed["orders"]) == 1
    # nothing mismatched: a bulk resend has nothing to do and succeeds
    done = as_json(await ponctl(d, "orders", "resend", "--mismatched", "--olt", "olt1",
                                "-o", "json"))
    assert done == {"orders": []}
    r = await ponctl(d, "orders", "resend")
    assert r.exit_code == 1
    assert "--mismatched" in r.output
    r = await ponctl(d, "orders", "show", "ord-none", token=CSR)
    assert r.exit_code == 1
    assert "does not exist" in r.output


async def test_unreachable_agent_and_missing_token(lines_agent: tuple[Daemon, Client]) -> None:
    d, _ = lines_agent
    env = {"PONCTL_API": "http://127.0.0.1:9", "PONCTL_TOKEN": ADMIN}
    r = await asyncio.to_thread(CliRunner().invoke, app, ["orders", "list"], env=env)
    assert r.exit_code == 1
    assert "cannot reach the agent at http://127.0.0.1:9" in r.output
    env = {"PONCTL_API": f"http://127.0.0.1:{d.port}", "PONCTL_TOKEN": ""}
    r = await asyncio.to_thread(CliRunner().invoke, app, ["orders", "list"], env=env)
    assert r.exit_code == 1
    assert "PONCTL_TOKEN" in r.output
