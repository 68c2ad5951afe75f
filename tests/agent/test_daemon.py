"""The daemon over real sockets against the simulated lab (olt1 NETCONF, olt2 SNMP), with lab
secrets that are distinctive strings so that a leak into the logs is detectable.

Covers: start-up against the lab (health, Prometheus metrics), an order created before start
becoming active by the start-up reconcile, discovery of a newly plugged ONT (NETCONF), 503 when
the store is unusable, the log redaction filter, and ``run`` as a subprocess (SIGTERM -> exit
0, no secret in the logs; a literal secret in the settings -> exit 1 naming the field)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from typer.testing import CliRunner

from agent.daemon import Daemon, JsonFormatter, RedactingFilter, configure_logging
from agent.daemon_commands import app
from agent.discovery import Backoff
from agent.settings import Settings
from agent.status import Status
from agent.store import OntState, Store
from simulator.lab import Lab
from simulator.topology import parse_topology
from tests.agent.test_engine import (
    COMMUNITY_VAR,
    FAST,
    HWTC,
    PASSWORD_VAR,
    lab_settings,
    operational,
    order_for,
)
from tests.conftest import REPO, eventually, running_lab

PASSWORD = "Lab-Pw-7f3k9q"
COMMUNITY = "rw-comm-x81z"
NEW = "ABCD00001234"
METRICS = ("ponctl_pushes_total", "ponctl_push_errors_total", "ponctl_queue_depth",
           "ponctl_push_seconds", "ponctl_orders")
SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})?'
                    r" -?[0-9.e+-]+$")


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
    monkeypatch.setenv(PASSWORD_VAR, PASSWORD)
    monkeypatch.setenv(COMMUNITY_VAR, COMMUNITY)
    base = lab_settings(lab, tmp_path)
    return base.model_copy(update={
        "catalog": REPO / "configs" / "catalog.yaml",
        "api": base.api.model_copy(update={"port": 0}),
        "audit_interval": 0.0,
    })


def daemon(settings: Settings) -> Daemon:
    return Daemon(settings, engine_options={"verify_timeout": 3.0, "retry": FAST},
                  watch_interval=0.1, backoff=Backoff(initial=0.05, cap=0.2))


async def get(port: int | None, path: str) -> tuple[int, str, str]:
    assert port is not None
    async with aiohttp.ClientSession() as session, \
            session.get(f"http://127.0.0.1:{port}{path}") as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


def samples(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.fullmatch(r"# (HELP|TYPE) [a-z_]+ .+", line), line
            continue
        assert SAMPLE.fullmatch(line), f"not a Prometheus sample: {line!r}"
        name, _, value = line.rpartition(" ")
        out[name] = float(value)
    return out


async def test_start_health_metrics_and_an_order_activated_by_the_startup_pass(
        lab: Lab, settings: Settings) -> None:
    async with Store(settings.store) as store:
        oid = await order_for(store, HWTC)
    async with daemon(settings) as d:
        assert d.engine is not None
        assert (await d.engine.status(oid)).status is Status.ACTIVE
        assert operational(lab, HWTC)
        await eventually(lambda: d.devices["olt1"].as_json()["connected"], timeout=10)

        status, _, body = await get(d.port, "/healthz")
        assert status == 200
        health = json.loads(body)
        assert health["status"] == "ok"
        assert health["store"]["ok"] is True
        assert health["devices"]["olt1"]["connected"] is True
        assert health["devices"]["olt2"]["watched"] is False  # SNMP: no trap listener
        assert health["queues"] == {"olt1": 0, "olt2": 0}

        status, ctype, text = await get(d.port, "/metrics")
        assert status == 200
        assert ctype.startswith("text/plain")
        got = samples(text)
        for name in METRICS:
            assert f"# TYPE {name} " in text
        assert got['ponctl_orders{status="active"}'] == 1
        assert got['ponctl_pushes_total{outcome="verified"}'] == 1
        assert got["ponctl_push_seconds_count"] == 1
        assert got['ponctl_queue_depth{olt="olt1"}'] == 0
    assert d.shutdown_errors == []


async def test_a_newly_plugged_ont_reaches_the_store_by_discovery(
        lab: Lab, settings: Settings) -> None:
    async with daemon(settings) as d:
        state = d.devices["olt1"]
        await eventually(lambda: state.as_json()["connected"], timeout=10)
        await asyncio.sleep(0.5)  # the NETCONF subscription
        lab.olts["olt1"].add_ont(NEW, "0/1/2")
        assert d.store is not None
        store = d.store
        deadline = asyncio.get_running_loop().time() + 10
        while (ont := await store.get_ont(NEW)) is None:
            assert asyncio.get_running_loop().time() < deadline, "ONT not discovered"
            await asyncio.sleep(0.05)
        assert (ont.olt, ont.pon_port, ont.state) == ("olt1", "0/1/2", OntState.UP)
        assert state.events >= 1
        assert state.last_seen is not None


async def test_the_periodic_audit_runs_per_olt(lab: Lab, settings: Settings) -> None:
    async with Store(settings.store) as store:
        await order_for(store, HWTC)
    async with daemon(settings.model_copy(update={"audit_interval": 0.1})) as d:
        await eventually(lambda: all(s.audits >= 2 for s in d.devices.values()), timeout=10)
        health = json.loads((await get(d.port, "/healthz"))[2])
        assert health["devices"]["olt1"]["last_audit"] is not None
        assert d.store is not None
        assert [p.error_class for o in await d.store.list_orders()
                for p in await d.store.pushes_of(o.id)] == [None]  # no mismatch found
    assert d.shutdown_errors == []


async def test_healthz_is_503_when_the_store_is_unusable(lab: Lab, settings: Settings) -> None:
    async with daemon(settings) as d:
        assert d.store is not None
        await d.store.close()
        status, _, body = await get(d.port, "/healthz")
        assert status == 503
        assert json.loads(body)["store"]["ok"] is False
    assert d.shutdown_errors == []


def test_the_redacting_filter_hides_resolved_secrets() -> None:
    redact = RedactingFilter()
    redact.add([PASSWORD, "ab"])  # too short to redact safely: ignored
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(redact)
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("login with %s failed", PASSWORD, extra={"detail": f"pw={PASSWORD}"})
        try:
            int(f"bad password {PASSWORD}")
        except ValueError:
            logger.exception("in message: " + PASSWORD)
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert PASSWORD not in text
    first, second = (json.loads(line) for line in text.splitlines())
    assert first["message"] == "login with *** failed"
    assert first["detail"] == "pw=***"
    assert first["level"] == "WARNING"
    assert first["logger"] == "test.redaction"
    assert "time" in first
    assert second["message"] == "in message: ***"
    assert "bad password ***" in second["exception"]
    assert "ValueError" in second["exception"]


def test_configure_logging_installs_one_handler() -> None:
    root = logging.getLogger()
    level = root.level
    try:
        first = configure_logging(True, secrets=[PASSWORD])
        second = configure_logging(False)
        assert first not in root.handlers
        assert second in root.handlers
    finally:
        root.removeHandler(second)
        root.setLevel(level)


def settings_file(settings: Settings, path: Path, **changes: Any) -> Path:
    data = settings.model_dump(mode="json", exclude_none=True)
    data.update(changes)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


async def test_run_stops_gracefully_on_sigterm_and_logs_no_secret(
        lab: Lab, settings: Settings, tmp_path: Path) -> None:
    path = settings_file(settings, tmp_path / "agent.yaml")
    env = {**os.environ, PASSWORD_VAR: PASSWORD, COMMUNITY_VAR: COMMUNITY}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from agent.daemon_commands import app; app()",
        "run", "--config", str(path), "--json-logs", cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stderr is not None
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        port = None
        while port is None:
            line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
            assert line, "the daemon exited before listening: " + "".join(lines)
            lines.append(line)
            record = json.loads(line)
            if record["message"].startswith("listening on"):
                port = record["port"]
        status, _, body = await get(port, "/healthz")
        assert status == 200, body
        proc.send_signal(signal.SIGTERM)
        rest, out = await asyncio.wait_for(
            asyncio.gather(proc.stderr.read(), proc.stdout.read()), 30)
        code = await asyncio.wait_for(proc.wait(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    log_text = "".join(lines) + rest.decode() + out.decode()
    assert code == 0, log_text
    assert '"message": "stopped"' in log_text
    assert PASSWORD not in log_text
    assert COMMUNITY not in log_text


def test_a_literal_secret_in_the_settings_is_refused(settings: Settings, tmp_path: Path) -> None:
    data = settings.model_dump(mode="json", exclude_none=True)
    data["devices"][0]["ssh"]["password"] = PASSWORD
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = CliRunner().invoke(app, ["run", "--config", str(path)])
    assert result.exit_code == 1
    output = result.output
    assert "devices[0].ssh.password" in output
    assert "secrets are not written in the settings file" in output
    assert PASSWORD not in output


async def test_an_ont_waiting_in_autofind_at_start_is_discovered_and_provisioned(
        lab: Lab, settings: Settings) -> None:
    # The business flow with nothing marked by hand: the ONT is plugged in and unclaimed
    # before the daemon starts; the store has never heard of it; the order waits for it.
    async with Store(settings.store) as store:
        await store.create_object("obj-9", "9 Fibre Lane")
        await store.bind("obj-9", HWTC)
        oid = (await store.create_order("obj-9", "fibrenet", "internet",
                                        datetime.now(UTC) - timedelta(minutes=1))).order.id
        assert await store.get_ont(HWTC) is None
    async with daemon(settings) as d:
        assert d.engine is not None
        engine = d.engine
        # The watch's first read of the OLT finds the ONT in autofind; the order goes ahead.
        await eventually(lambda: operational(lab, HWTC), timeout=20)
        async def active() -> bool:
            return (await engine.status(oid)).status is Status.ACTIVE
        async with asyncio.timeout(20):
            while not await active():
                await asyncio.sleep(0.05)
    assert d.shutdown_errors == []
