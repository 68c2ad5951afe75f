"""Manual pushes and dry runs (``ponctl push``) over real sockets against the simulated lab
(olt1 NETCONF, olt2 SNMP): the engine's methods, the API routes of :mod:`agent.api_push`, and
the command line, both through a running daemon and ``--direct`` (no daemon).

Covers: a dry run shows the exact payload and a non-empty diff for an order not yet applied,
changes nothing on the simulated OLT and records no push; the real push makes the order
active; a dry run then shows an empty diff; an order that is not ready is reported, not
pushed; the CLI through a daemon (token from $PONCTL_TOKEN) and in direct mode; a CSR may dry
run but not push (403); an unknown serial, an unbound ONT and a malformed serial are clear
errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from typer.testing import CliRunner, Result

from agent.catalog import load_catalog
from agent.cli import app
from agent.daemon import Daemon
from agent.discovery import Backoff
from agent.engine import Engine, ManualAction
from agent.settings import Settings
from agent.status import Status
from agent.store import Conflict, NotFound, OntState, Store
from simulator.config import builder as b
from simulator.lab import Lab
from simulator.topology import parse_topology
from tests.agent.test_engine import (
    COMMUNITY_VAR,
    FAST,
    HWTC,
    PASSWORD_VAR,
    ZTE,
    applied,
    lab_settings,
    operational,
    order_for,
)
from tests.conftest import REPO, eventually, running_lab

PASSWORD = "Lab-Pw-p4sh9q"
COMMUNITY = "rw-comm-p8zz"
ADMIN = "admin-tok-Push7Lm9Pz4"
CSR = "csr-tok-Push3n8Vw1Kd"
ADMIN_VAR, CSR_VAR = "PONCTL_TEST_API_ADMIN", "PONCTL_TEST_API_CSR"
UNKNOWN = "ABCD0000FFFF"


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    data = yaml.safe_load((REPO / "configs" / "lab.yaml").read_text(encoding="utf-8"))
    data["defaults"]["credentials"]["password"] = PASSWORD
    data["defaults"]["snmp"]["community_rw"] = COMMUNITY
    data["trap_targets"] = []
    async with running_lab(parse_topology(data, "test lab")) as running:
        yield running


@pytest.fixture
def settings(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for var, value in ((PASSWORD_VAR, PASSWORD), (COMMUNITY_VAR, COMMUNITY),
                       (ADMIN_VAR, ADMIN), (CSR_VAR, CSR)):
        monkeypatch.setenv(var, value)
    base = lab_settings(lab, tmp_path)
    api = base.api.model_validate({"port": 0, "tokens": [
        {"name": "oss", "role": "admin", "token": {"env": ADMIN_VAR}},
        {"name": "support", "role": "csr", "token": {"env": CSR_VAR}}]})
    return base.model_copy(update={"catalog": REPO / "configs" / "catalog.yaml", "api": api,
                                   "audit_interval": 0.0})


def engine_for(store: Store, settings: Settings) -> Engine:
    return Engine(store, load_catalog(settings.catalog), settings, schedule=False,
                  verify_timeout=3.0, retry=FAST)


def tomorrow() -> datetime:
    return datetime.now(UTC) + timedelta(days=1)


async def events_of(store: Store, oid: str) -> list[tuple[str, str]]:
    return [(e.status, e.message) for e in await store.order_events(oid)]


# ---- the engine -------------------------------------------------------------------------------
async def test_a_dry_run_shows_payload_and_diff_changes_nothing_then_the_push_activates(
        lab: Lab, settings: Settings) -> None:
    olt = lab.olts["olt1"]
    async with Store(settings.store) as store:
        oid = await order_for(store, HWTC)
        later = (await store.create_order("obj-1", "fibrenet", "voip", tomorrow())).order.id
        running, services = olt.running, dict(olt.view.services)
        history = await events_of(store, oid)
        async with engine_for(store, settings) as engine:
            dry = await engine.push_ont(HWTC, dry_run=True)
            assert (dry.serial, dry.object_id, dry.dry_run) == (HWTC, "obj-1", True)
            first, skipped = dry.orders
            assert (first.order_id, first.action, first.olt) == (oid, ManualAction.DRY_RUN,
                                                                 "olt1")
            assert first.status.status is Status.AWAITING_PROVISIONING
            assert first.compared, first.error
            assert first.error == ""
            assert first.payload.lstrip().startswith("<")  # the exact NETCONF payload
            assert HWTC in first.payload
            assert first.diff.strip()
            assert any(line.startswith("+") for line in first.diff.splitlines())
            # the order starting tomorrow is reported, not sent anywhere
            assert (skipped.order_id, skipped.action) == (later, ManualAction.SKIPPED)
            assert skipped.status.status is Status.AWAITING_ACTIVATION
            assert skipped.payload == ""
            assert skipped.reason
            # nothing changed on the device, nothing recorded
            assert olt.running == running
            assert olt.view.services.keys() == services.keys()
            assert applied(lab, HWTC) == []
            assert not operational(lab, HWTC)
            assert await store.pushes_of(oid) == ()
            assert await store.pushes_of(later) == ()
            assert await events_of(store, oid) == history
            # one order alone: the same payload and diff
            single = await engine.dry_run(oid)
            assert (single.payload, single.diff) == (first.payload, first.diff)
            assert await store.pushes_of(oid) == ()

            pushed = await engine.push_ont(HWTC)
            done, skipped = pushed.orders
            assert (done.order_id, done.action) == (oid, ManualAction.PUSHED)
            assert done.status.status is Status.ACTIVE, done.status.message
            assert done.olt == "olt1"
            assert skipped.action is ManualAction.SKIPPED
            assert await store.pushes_of(later) == ()
            assert applied(lab, HWTC) == [(100, 1000)]
            assert len(await store.pushes_of(oid)) == 1

            again = await engine.dry_run(oid)
            assert again.action is ManualAction.DRY_RUN
            assert again.compared
            assert again.diff == ""  # the device holds exactly the payload
            assert again.payload == first.payload
            assert again.status.status is Status.ACTIVE
            assert len(await store.pushes_of(oid)) == 1


async def test_an_snmp_dry_run_lists_varbinds_and_changes_nothing(
        lab: Lab, settings: Settings) -> None:
    olt = lab.olts["olt2"]
    olt.force_edit(b.traffic_profile("tdp-1G", 1_000_000_000, 100_000_000))
    async with Store(settings.store) as store:
        oid = await order_for(store, ZTE, "olt2", "0/1/0")
        running = olt.running
        async with engine_for(store, settings) as engine:
            dry = await engine.dry_run(oid)
            assert dry.olt == "olt2"
            assert dry.compared, dry.error
            assert f"ponctlOntSerial.1.0 = OctetString: {ZTE}" in dry.payload  # varbinds
            assert len(dry.payload.splitlines()) > 1
            assert dry.diff
            assert olt.running == running
            assert applied(lab, ZTE) == []
            assert await store.pushes_of(oid) == ()
            [done] = (await engine.push_ont(ZTE)).orders
            assert done.status.status is Status.ACTIVE, done.status.message
            assert (await engine.dry_run(oid)).diff == ""


async def test_unknown_and_unbound_onts_are_clear_errors(lab: Lab, settings: Settings) -> None:
    async with Store(settings.store) as store:
        await store.upsert_ont(HWTC, "olt1", "0/1/1", state=OntState.UP)
        async with engine_for(store, settings) as engine:
            with pytest.raises(NotFound, match=f"no ONT with serial {UNKNOWN}"):
                await engine.push_ont(UNKNOWN, dry_run=True)
            with pytest.raises(Conflict, match=f"ONT {HWTC} is not bound to any object"):
                await engine.push_ont(HWTC)
            with pytest.raises(NotFound):
                await engine.dry_run("ord-none")


# ---- API and CLI through a daemon -------------------------------------------------------------
async def invoke(*args: str, token: str | None = ADMIN) -> Result:
    env = {"COLUMNS": "250"}
    if token is not None:
        env["PONCTL_TOKEN"] = token
    # The command calls asyncio.run: it runs in a thread while this loop serves the lab.
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


async def post(port: int, path: str, token: str, body: Any = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.post(
            f"http://127.0.0.1:{port}/api/v1{path}", json=body,
            headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json()


@pytest.fixture
async def daemon(settings: Settings) -> AsyncIterator[Daemon]:
    # No scheduler: the orders below are created after the start-up pass, so nothing pushes
    # them but the engineer.
    d = Daemon(settings, engine_options={"verify_timeout": 3.0, "retry": FAST,
                                         "schedule": False},
               watch_interval=0.1, backoff=Backoff(initial=0.05, cap=0.2))
    async with d:
        # The NETCONF watch's first read reports every ONT of olt1 (HWTC included) and
        # reconciles the orders bound to them: let it pass before the tests bind anything.
        state = d.devices["olt1"]
        await eventually(lambda: state.events > 0, timeout=10)
        seen = -1
        while seen != state.events:
            seen = state.events
            await asyncio.sleep(0.3)
        yield d
    assert d.shutdown_errors == []


async def test_the_cli_dry_runs_and_pushes_through_the_daemon(lab: Lab, daemon: Daemon) -> None:
    assert daemon.store is not None
    assert daemon.port is not None
    oid = await order_for(daemon.store, HWTC)
    olt = lab.olts["olt1"]
    running = olt.running
    url = f"http://127.0.0.1:{daemon.port}"

    shown = await invoke("push", HWTC.lower(), "--dry-run", "--api", url, token=CSR)
    assert shown.exit_code == 0, shown.output
    assert f"order {oid}" in shown.output
    assert "dry-run on olt1" in shown.output
    assert "payload:" in shown.output
    assert HWTC in shown.output
    assert "diff against the device" in shown.output
    got = await invoke("push", HWTC, "--dry-run", "--api", url, "--output", "json", token=CSR)
    assert got.exit_code == 0, got.output
    data = json.loads(got.output)
    [order] = data["orders"]
    assert (order["order_id"], order["action"], order["compared"]) == (oid, "dry-run", True)
    assert order["diff"]
    assert order["payload"].lstrip().startswith("<")
    assert olt.running == running
    assert applied(lab, HWTC) == []
    assert await daemon.store.pushes_of(oid) == ()

    # a CSR may look, not push
    refused = await invoke("push", HWTC, "--api", url, token=CSR)
    assert refused.exit_code == 1
    assert "admin role" in refused.output
    assert applied(lab, HWTC) == []

    pushed = await invoke("push", HWTC, "--api", url, "-o", "json")
    assert pushed.exit_code == 0, pushed.output
    [order] = json.loads(pushed.output)["orders"]
    assert (order["action"], order["status"]) == ("pushed", "active"), order
    assert applied(lab, HWTC) == [(100, 1000)]

    again = await invoke("push", HWTC, "--dry-run", "--api", url, "-o", "json", token=CSR)
    [order] = json.loads(again.output)["orders"]
    assert (order["diff"], order["compared"], order["status"]) == ("", True, "active")
    table = await invoke("push", HWTC, "--dry-run", "--api", url, token=CSR)
    assert "no difference: the device already holds this" in table.output

    unknown = await invoke("push", UNKNOWN, "--api", url)
    assert unknown.exit_code == 1
    assert f"no ONT with serial {UNKNOWN}" in unknown.output
    bad = await invoke("push", "not-a-serial", "--api", url)
    assert bad.exit_code == 1
    assert "the serial is invalid" in bad.output
    assert ADMIN not in pushed.output + unknown.output


async def test_the_api_routes_enforce_roles_and_validate(lab: Lab, daemon: Daemon) -> None:
    assert daemon.store is not None
    assert daemon.port is not None
    port = daemon.port
    oid = await order_for(daemon.store, HWTC)
    code, body = await post(port, f"/onts/{HWTC}/push", CSR, {"dry_run": False})
    assert (code, body["error"]) == (403, "this action needs the admin role")
    code, body = await post(port, f"/onts/{HWTC}/push", CSR, {"dry_run": True})
    assert code == 403  # the push route is the admin's; CSRs use /dry-run
    code, body = await post(port, f"/orders/{oid}/dry-run", CSR)
    assert code == 200, body
    assert (body["order_id"], body["action"], body["compared"]) == (oid, "dry-run", True)
    assert body["diff"]
    code, body = await post(port, f"/onts/{HWTC}/push", ADMIN, {"dry_run": True})
    assert code == 200, body
    assert body["dry_run"] is True
    assert await daemon.store.pushes_of(oid) == ()
    assert applied(lab, HWTC) == []
    code, body = await post(port, f"/onts/{HWTC}/push", ADMIN, {"dry_run": "yes"})
    assert (code, body["field"]) == (422, "dry_run")
    code, body = await post(port, "/onts/bad;serial/dry-run", CSR)
    assert (code, body["field"]) == (400, "serial")
    code, body = await post(port, f"/onts/{UNKNOWN}/dry-run", CSR)
    assert code == 404
    assert UNKNOWN in body["error"]
    code, body = await post(port, "/orders/ord-none/dry-run", CSR)
    assert code == 404
    await daemon.store.upsert_ont(ZTE, "olt2", "0/1/0", state=OntState.UP)
    code, body = await post(port, f"/onts/{ZTE}/push", ADMIN)
    assert code == 409
    assert "not bound to any object" in body["error"]


# ---- direct mode -------------------------------------------------------------------------------
def settings_file(settings: Settings, path: Path) -> Path:
    data = settings.model_dump(mode="json", exclude_none=True)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


async def test_direct_mode_needs_no_daemon(lab: Lab, settings: Settings,
                                           tmp_path: Path) -> None:
    path = settings_file(settings, tmp_path / "agent.yaml")
    async with Store(settings.store) as store:
        oid = await order_for(store, HWTC)
    olt = lab.olts["olt1"]
    running = olt.running

    dry = await invoke("push", HWTC, "--dry-run", "--direct", "--config", str(path), "-o",
                       "json", token=None)
    assert dry.exit_code == 0, dry.output
    [order] = json.loads(dry.output)["orders"]
    assert (order["order_id"], order["action"]) == (oid, "dry-run")
    assert order["diff"]
    assert order["compared"]
    assert olt.running == running
    assert applied(lab, HWTC) == []

    pushed = await invoke("push", HWTC, "--direct", "--config", str(path), token=None)
    assert pushed.exit_code == 0, pushed.output
    assert f"order {oid}" in pushed.output
    assert "active" in pushed.output
    assert applied(lab, HWTC) == [(100, 1000)]
    async with Store(settings.store) as store:
        assert (await store.pushes_of(oid))[-1].error_class is None

    unknown = await invoke("push", UNKNOWN, "--direct", "--config", str(path), token=None)
    assert unknown.exit_code == 1
    assert f"no ONT with serial {UNKNOWN}" in unknown.output
    missing = await invoke("push", HWTC, "--direct", "--config", str(tmp_path / "none.yaml"),
                           token=None)
    assert missing.exit_code == 1
    assert "cannot read" in missing.output
