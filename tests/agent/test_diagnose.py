"""``ponctl diagnose`` over real sockets: the daemon (its API) against the simulated lab with
its control endpoint running (for the data-path trace and to switch faults), driven with
aiohttp and, for the CLI, with typer's CliRunner in a thread.

Covers: an active order diagnosing all ok with the DHCP Discover forwarded with its S/C-VLAN
tags, on olt1 over NETCONF, olt2 over SNMP and olt1 through its SSH CLI profile; target
resolution by order, serial and object (unknown: 404 / exit 1; ambiguous: 409, settled by
kind); a powered-off ONT (absent, the power next step, connection error on its order); an
out-of-band change on the OLT (the config diff, the trace's wrong S-VLAN); an ISP without a
VLAN (configuration missing); a hung OLT (the report still comes back, bounded, unknown);
the optical class judgement and its settings."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner, Result

from agent.cli import app
from agent.daemon import Daemon
from agent.diagnose import Verdict, dhcp_discover, frame_tags, judge_rx
from agent.discovery import Backoff
from agent.settings import Diagnose, Settings
from agent.store import OntState, Store
from simulator.control import ControlServer
from simulator.lab import Lab
from simulator.topology import parse_topology
from tests.agent.test_api import ADMIN, ADMIN_VAR, COMMUNITY, CSR, CSR_VAR, PASSWORD, Client
from tests.agent.test_engine import COMMUNITY_VAR, FAST, HWTC, PASSWORD_VAR, ZTE, lab_settings
from tests.conftest import REPO, running_lab

PAST = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    data = yaml.safe_load((REPO / "configs" / "lab.yaml").read_text(encoding="utf-8"))
    data["defaults"]["credentials"]["password"] = PASSWORD
    data["defaults"]["snmp"]["community_rw"] = COMMUNITY
    data["trap_targets"] = []
    async with running_lab(parse_topology(data, "test lab")) as running:
        yield running


@pytest.fixture
async def control(lab: Lab) -> AsyncIterator[str]:
    server = await ControlServer.start(lab, "127.0.0.1", 0)
    try:
        yield server.url
    finally:
        await server.close()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in ((PASSWORD_VAR, PASSWORD), (COMMUNITY_VAR, COMMUNITY),
                       (ADMIN_VAR, ADMIN), (CSR_VAR, CSR)):
        monkeypatch.setenv(var, value)


def make_settings(lab: Lab, tmp_path: Path, control: str, *, cli: bool = False,
                  **diagnose: Any) -> Settings:
    base = lab_settings(lab, tmp_path)
    devices = base.devices
    if cli:  # olt1 through its Huawei-style SSH CLI instead of NETCONF
        olt1 = lab.olts["olt1"]
        key = lab.host_keys["olt1"].export_public_key().decode().strip()
        known = tmp_path / "known_hosts_cli"
        known.write_text(f"[127.0.0.1]:{olt1.ports['ssh']} {key}\n", encoding="utf-8")
        nc = devices[0]
        assert nc.ssh is not None
        devices = [nc.model_copy(update={
            "protocol": "ssh", "port": olt1.ports["ssh"], "profile": "sim-olt-cli",
            "ssh": nc.ssh.model_copy(update={"known_hosts": known})}), *devices[1:]]
    api = base.api.model_validate({"port": 0, "tokens": [
        {"name": "oss", "role": "admin", "token": {"env": ADMIN_VAR}},
        {"name": "support", "role": "csr", "token": {"env": CSR_VAR}}]})
    return base.model_copy(update={
        "devices": devices, "catalog": REPO / "configs" / "catalog.yaml", "api": api,
        "audit_interval": 0.0,
        "diagnose": Diagnose.model_validate({"lab_control": control, **diagnose})})


@asynccontextmanager
async def agent(settings: Settings) -> AsyncIterator[tuple[Daemon, Client]]:
    async with Store(settings.store) as store:  # the ONTs are in the inventory
        await store.upsert_ont(HWTC, "olt1", "0/1/1", state=OntState.UP)
        await store.upsert_ont(ZTE, "olt2", "0/1/0", state=OntState.UP)
    d = Daemon(settings, engine_options={"verify_timeout": 3.0, "retry": FAST},
               watch_interval=0.1, backoff=Backoff(initial=0.05, cap=0.2))
    async with d, aiohttp.ClientSession() as session:
        assert d.port is not None
        client = Client(session, d.port)
        yield d, client
        for text in client.bodies:
            assert ADMIN not in text
            assert CSR not in text
    assert d.shutdown_errors == []


async def order(c: Client, serial: str, *, object_id: str = "obj-1", isp: str = "fibrenet",
                service_type: str = "internet") -> str:
    code, body, _ = await c.call("POST", "/objects", body={"id": object_id,
                                                           "address": "12 Fibre Lane"})
    assert code in (200, 201), body
    code, body, _ = await c.call("POST", f"/objects/{object_id}/bind", body={"serial": serial})
    assert code == 200, body
    code, body, _ = await c.call("POST", "/orders", body={
        "object_id": object_id, "isp": isp, "service_type": service_type, "start_at": PAST})
    assert code == 201, body
    return str(body["id"])


async def wait_order(c: Client, oid: str, *, status: str | None = None,
                     error_class: str | None = None, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        code, body, _ = await c.call("GET", f"/orders/{oid}", CSR)
        assert code == 200, body
        if (status is None or body["status"] == status) and (
                error_class is None or body["error_class"] == error_class):
            return body
        assert time.monotonic() < deadline, (body["status"], body["error_class"],
                                             body["message"])
        await asyncio.sleep(0.1)


async def diagnosis(c: Client, target: str, expect: int = 200, **query: str) -> Any:
    path = f"/diagnose/{target}"
    if query:
        path += "?" + "&".join(f"{k}={v}" for k, v in query.items())
    code, body, _ = await c.call("GET", path, CSR)  # the CSR role is enough
    assert code == expect, body
    return body


def checks(report: Any) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for section in report["sections"]:
        for check in section["checks"]:
            out.setdefault(check["id"], []).append(check)
    return out


def one(report: Any, check_id: str) -> dict[str, Any]:
    [check] = checks(report)[check_id]
    return check


def all_ok(report: Any) -> None:
    bad = [(c["id"], c["verdict"], c["finding"]) for cs in checks(report).values() for c in cs
           if c["verdict"] != "ok"]
    assert bad == []
    assert (report["verdict"], report["exit_code"]) == ("ok", 0)


def assert_forwarded(report: Any, s_vlan: int, c_vlan: int) -> None:
    trace = one(report, "datapath.dhcp")
    assert trace["verdict"] == "ok", trace
    d = trace["details"]
    assert d["forwarded"] is True
    assert (d["outer_vlan"], d["inner_vlan"]) == (s_vlan, c_vlan)
    assert [t["kind"] for t in d["tags"]] == ["s-vlan", "c-vlan"]
    assert d["egress"].startswith("uplink")
    assert f"outer S-VLAN {s_vlan}" in trace["finding"]
    assert f"inner C-VLAN {c_vlan}" in trace["finding"]


async def invoke(*args: str, token: str | None = CSR) -> Result:
    env = {"COLUMNS": "200"}
    if token is not None:
        env["PONCTL_TOKEN"] = token
    # The command calls asyncio.run: it runs in a thread while this loop serves lab and daemon.
    return await asyncio.to_thread(CliRunner().invoke, app, list(args), env=env)


# ---- all ok, on every protocol ---------------------------------------------------------------
@pytest.mark.usefixtures("env")
async def test_an_active_netconf_order_is_all_ok_with_its_trace_by_any_target_and_cli(
        lab: Lab, control: str, tmp_path: Path) -> None:
    async with agent(make_settings(lab, tmp_path, control)) as (d, c):
        oid = await order(c, HWTC)
        await wait_order(c, oid, status="active")
        report = await diagnosis(c, oid)
        assert (report["kind"], report["serial"], report["object_id"], report["orders"]) == (
            "order", HWTC, "obj-1", [oid])
        all_ok(report)
        assert [s["id"] for s in report["sections"]] == ["inventory", "ont", "orders",
                                                         "datapath"]
        optical = one(report, "ont.optical")["details"]
        assert optical["class"] == "B+"
        assert (optical["min_dbm"], optical["max_dbm"]) == (-28.0, -8.0)
        assert optical["margin_db"] > 3
        assert one(report, "ont.uni")["subject"] == "UNI 1"  # NETCONF reports UNI links
        assert "empty diff" in one(report, "order.config")["finding"]
        assert_forwarded(report, 1000, 100)
        # the same ONT by serial (any case) and by object
        by_serial = await diagnosis(c, HWTC.lower())
        assert (by_serial["kind"], by_serial["orders"]) == ("ont", [oid])
        all_ok(by_serial)
        by_object = await diagnosis(c, "obj-1")
        assert (by_object["kind"], by_object["serial"]) == ("object", HWTC)
        # the CLI, through the API with the token from $PONCTL_TOKEN
        url = f"http://127.0.0.1:{d.port}"
        shown = await invoke("diagnose", oid, "--api", url)
        assert shown.exit_code == 0, shown.output
        assert f"order {oid}" in shown.output
        assert "outer S-VLAN 1000 (0x88a8) / inner C-VLAN 100 (0x8100)" in shown.output
        assert "Result: ✓ OK" in shown.output
        got = await invoke("diagnose", HWTC, "--api", url, "--output", "json")
        assert got.exit_code == 0, got.output
        assert json.loads(got.output)["verdict"] == "ok"


@pytest.mark.usefixtures("env")
async def test_an_active_snmp_order_is_all_ok(lab: Lab, control: str, tmp_path: Path) -> None:
    async with agent(make_settings(lab, tmp_path, control)) as (_, c):
        oid = await order(c, ZTE, object_id="obj-2")
        await wait_order(c, oid, status="active")
        report = await diagnosis(c, oid)
        all_ok(report)
        [ont] = [s for s in report["sections"] if s["id"] == "ont"]
        assert ont["title"] == "ONT live state (OLT olt2)"
        assert "read over SNMP PONCTL-MIB" in ont["notes"]
        assert any("UNI link state is not reported" in n for n in ont["notes"])
        assert "ont.uni" not in checks(report)
        assert one(report, "ont.optical")["details"]["rx_dbm"] < -8
        assert_forwarded(report, 1000, 100)


@pytest.mark.usefixtures("env")
async def test_an_active_order_on_a_cli_olt_is_all_ok(lab: Lab, control: str,
                                                      tmp_path: Path) -> None:
    async with agent(make_settings(lab, tmp_path, control, cli=True)) as (d, c):
        assert d.settings.device("olt1").profile == "sim-olt-cli"
        oid = await order(c, HWTC)
        await wait_order(c, oid, status="active")
        report = await diagnosis(c, oid)
        all_ok(report)
        [ont] = [s for s in report["sections"] if s["id"] == "ont"]
        assert "read over CLI display ont info" in ont["notes"]
        assert one(report, "ont.presence")["details"]["state"] == "operational"
        assert_forwarded(report, 1000, 100)


# ---- what goes wrong -------------------------------------------------------------------------
@pytest.mark.usefixtures("env")
async def test_a_powered_off_ont_is_absent_with_the_power_step_and_a_connection_error(
        lab: Lab, control: str, tmp_path: Path) -> None:
    async with agent(make_settings(lab, tmp_path, control)) as (d, c), \
            aiohttp.ClientSession() as session:
        async with session.post(f"{control}/onts/{HWTC}/power", json={"on": False}) as resp:
            assert resp.status == 200
        oid = await order(c, HWTC)
        await wait_order(c, oid, status="awaiting-provisioning", error_class="connection-error")
        report = await diagnosis(c, oid)
        assert (report["verdict"], report["exit_code"]) == ("fail", 3)
        presence = one(report, "ont.presence")
        assert presence["verdict"] == "fail"
        assert "not-present" in presence["finding"]
        assert "powered on" in presence["next_step"]
        assert one(report, "ont.optical")["verdict"] == "fail"
        status = one(report, "order.status")
        assert status["verdict"] == "fail"
        assert status["details"]["error_class"] == "connection-error"
        assert "resending will not help" in status["next_step"]
        trace = one(report, "datapath.dhcp")
        assert trace["details"]["forwarded"] is False
        assert "forwards nothing" in trace["details"]["drop_reason"]
        shown = await invoke("diagnose", oid, "--api", f"http://127.0.0.1:{d.port}")
        assert shown.exit_code == 3, shown.output
        assert "→ next: the OLT does not see the ONT" in shown.output
        assert "connection-error" in shown.output


@pytest.mark.usefixtures("env")
async def test_an_out_of_band_change_shows_the_config_diff_and_the_wrong_tag(
        lab: Lab, control: str, tmp_path: Path) -> None:
    async with agent(make_settings(lab, tmp_path, control)) as (_, c), \
            aiohttp.ClientSession() as session:
        oid = await order(c, HWTC)
        await wait_order(c, oid, status="active")
        olt = lab.olts["olt1"]
        [name] = [n for n, s in olt.view.services.items() if s.vani.startswith("ont-0/1/1-")]
        async with session.post(f"{control}/olts/olt1/oob-change", json={
                "action": "change-s-vlan", "service": name, "s_vlan": 1005}) as resp:
            assert resp.status == 200, await resp.text()
        report = await diagnosis(c, oid)
        assert (report["verdict"], report["exit_code"]) == ("fail", 3)
        config = one(report, "order.config")
        assert config["verdict"] == "fail"
        assert "differs from the intent" in config["finding"]
        assert "1005" in config["details"]["diff"] or "1000" in config["details"]["diff"]
        assert "resend" in config["next_step"]
        trace = one(report, "datapath.dhcp")
        assert trace["verdict"] == "fail"
        assert trace["details"]["outer_vlan"] == 1005
        assert "needs outer S-VLAN 1000" in trace["finding"]
        assert one(report, "ont.presence")["verdict"] == "ok"


@pytest.mark.usefixtures("env")
async def test_an_isp_without_a_vlan_shows_configuration_missing(
        lab: Lab, control: str, tmp_path: Path) -> None:
    async with agent(make_settings(lab, tmp_path, control)) as (_, c):
        oid = await order(c, HWTC, isp="speedy", service_type="iptv")
        await wait_order(c, oid, status="awaiting-prerequisites")
        report = await diagnosis(c, oid)
        status = one(report, "order.status")
        assert status["verdict"] == "fail"
        assert status["details"]["error_class"] == "configuration-missing"
        assert "ISP 'speedy' has no VLAN for service type 'iptv'" in status["finding"]
        assert "fix the configuration" in status["next_step"]
        assert one(report, "order.push")["finding"].startswith("nothing pushed yet")
        assert "order.config" not in checks(report)
        [path] = [s for s in report["sections"] if s["id"] == "datapath"]
        assert path["notes"] == ["no order with a resolved service to trace"]


@pytest.mark.usefixtures("env")
async def test_unknown_and_ambiguous_targets_are_clear_errors(
        lab: Lab, control: str, tmp_path: Path) -> None:
    async with agent(make_settings(lab, tmp_path, control)) as (d, c):
        body = await diagnosis(c, "ord-none", 404)
        assert "not an order id, an ONT serial or an object id" in body["error"]
        assert (await diagnosis(c, "bad;target", 400))["field"] == "target"
        assert (await c.call("GET", "/diagnose/ord-none", None))[0] == 401
        # an object named like a serial: ambiguous until the kind says which
        assert (await c.call("POST", "/objects", body={"id": HWTC, "address": "x"}))[0] == 201
        body = await diagnosis(c, HWTC, 409)
        assert "--kind" in body["error"]
        assert (await diagnosis(c, HWTC, kind="ont"))["kind"] == "ont"
        assert (await diagnosis(c, HWTC, kind="object"))["kind"] == "object"
        assert (await diagnosis(c, HWTC, 400, kind="gateway"))["field"] == "kind"
        shown = await invoke("diagnose", "ord-none", "--api", f"http://127.0.0.1:{d.port}")
        assert shown.exit_code == 1
        assert "not an order id, an ONT serial or an object id" in shown.output
        shown = await invoke("diagnose", "ord-none", "--api", f"http://127.0.0.1:{d.port}",
                             token=None)
        assert shown.exit_code == 1
        assert "PONCTL_TOKEN" in shown.output


@pytest.mark.usefixtures("env")
async def test_a_hung_olt_still_gets_a_bounded_report(lab: Lab, control: str,
                                                      tmp_path: Path) -> None:
    settings = make_settings(lab, tmp_path, control, check_timeout=1.0, report_timeout=2.0)
    async with agent(settings) as (_, c), aiohttp.ClientSession() as session:
        oid = await order(c, ZTE, object_id="obj-2")
        await wait_order(c, oid, status="active")
        async with session.post(f"{control}/devices/olt2/faults",
                                json={"fault": "latency", "value": 30}) as resp:
            assert resp.status == 200
        t0 = time.monotonic()
        report = await diagnosis(c, oid)
        assert time.monotonic() - t0 < 6
        assert report["exit_code"] == 3
        presence = one(report, "ont.presence")
        assert presence["verdict"] == "unknown"
        assert "did not answer within 1 s" in presence["finding"]
        assert one(report, "order.config")["verdict"] == "unknown"
        assert one(report, "order.status")["verdict"] == "ok"  # the store still answers
        assert one(report, "datapath.dhcp")["verdict"] == "ok"  # the lab's data path is fine
        async with session.delete(f"{control}/devices/olt2/faults") as resp:
            assert resp.status == 200


# ---- optical classes -------------------------------------------------------------------------
def test_rx_is_judged_against_the_class_of_the_olt_or_ont_with_a_margin() -> None:
    cfg = Diagnose.model_validate({"olt_optical_class": {"olt2": "C+"},
                                   "ont_optical_class": {ZTE: "B+"}})
    ok = judge_rx(cfg, "olt1", HWTC, -18.0)
    assert (ok.verdict, ok.details["class"], ok.details["margin_db"]) == (Verdict.OK, "B+", 10.0)
    low = judge_rx(cfg, "olt1", HWTC, -29.5)
    assert low.verdict is Verdict.FAIL
    assert "1.50 dB below" in low.finding
    assert low.next_step
    near = judge_rx(cfg, "olt1", HWTC, -26.5)
    assert (near.verdict, near.details["margin_db"]) == (Verdict.WARNING, 1.5)
    # olt2 is class C+ (-32..-12): -10 dBm overloads it, but ZTE's own class B+ wins
    assert judge_rx(cfg, "olt2", "SIML0001B001", -10.0).verdict is Verdict.FAIL
    assert "overload" in judge_rx(cfg, "olt2", "SIML0001B001", -10.0).finding
    assert judge_rx(cfg, "olt2", ZTE, -10.0).verdict is Verdict.WARNING
    assert judge_rx(cfg, "olt2", "SIML0001B001", -30.0).details["class"] == "C+"
    custom = Diagnose.model_validate({"optical_class": "N1",
                                      "optical_classes": {"N1": {"min_dbm": -29,
                                                                 "max_dbm": -9}}})
    assert judge_rx(custom, "olt1", HWTC, -28.0).details["margin_db"] == 1.0
    with pytest.raises(ValidationError, match="optical class 'D' is not defined"):
        Diagnose.model_validate({"olt_optical_class": {"olt1": "D"}})
    with pytest.raises(ValidationError, match="min_dbm must be below"):
        Diagnose.model_validate({"optical_classes": {"X": {"min_dbm": -8, "max_dbm": -28}}})


def test_the_traced_dhcp_discover_and_its_tags() -> None:
    untagged = dhcp_discover()
    assert frame_tags(untagged) == []
    assert untagged[:6] == b"\xff" * 6
    tagged = dhcp_discover(vlan=20)
    assert frame_tags(tagged) == [("c-vlan", 20, 0x8100)]
    assert len(tagged) == len(untagged) + 4
    qinq = untagged[:12] + bytes.fromhex("88a803e8810000640800") + untagged[14:]
    assert frame_tags(qinq) == [("s-vlan", 1000, 0x88A8), ("c-vlan", 100, 0x8100)]
