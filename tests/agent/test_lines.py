"""Subscribers, lines of service, gateways and PHAN URLs, over real sockets.

The daemon runs against a lab whose devices each have their own loopback address and the
standard ports (as in production): gateways are registered with their class (NETCONF, SNMP or
SSH) and address, and lines associated with them get their PHAN URL written and read back.

Covers: the store's rules (codes, names, search, either-order creation, one line per gateway,
move only when asked), the URL written on each protocol and decodable to its line, a gateway
behind an ONT whose order turns active (written once reachable), a powered-off ONT's gateway
written when it comes back, the RMA swap (URL moves, old gateway cleared and retired), a crash
between recording and writing (re-run on start), roles on every admin route, and input that
could inject refused with nothing stored."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.api_lines import ROUTES
from agent.daemon import Daemon
from agent.diagnose import diagnose
from agent.lines import GatewayPhase, LineStore
from agent.phan import KEYS_ENV_VAR, decode, url_for
from agent.store import Conflict, InvalidValue, NotFound, OntState, Store
from simulator.lab import Lab
from tests.agent.lines_env import (
    A001,
    A002,
    A005,
    ADMIN,
    ADMIN_VAR,
    BASE,
    COMMUNITY_VAR,
    CSR,
    CSR_VAR,
    KEYS,
    PASSWORD_VAR,
    PAST,
    Client,
    gw_name,
    lab_settings,
    line_state,
    register,
    written_line,
)
from tests.agent.test_engine import HWTC
from tests.conftest import eventually


# ---- the store's rules --------------------------------------------------------------------------
@pytest.fixture
async def lines(tmp_path: Path) -> AsyncIterator[LineStore]:
    async with Store(tmp_path / "s.sqlite3") as store:
        yield LineStore(store)


def issue(code: str) -> str:
    return url_for(BASE, code, KEYS)


async def test_subscribers_and_lines_in_either_order_and_search(lines: LineStore) -> None:
    line, created = await lines.create_line("LOS-0001")  # before its subscriber
    assert created
    assert line.subscriber is None
    sub, created = await lines.create_subscriber("SUB-1", "  Ada   Lovelace ")
    assert (sub.name, created) == ("Ada Lovelace", True)
    assert (await lines.create_subscriber("SUB-1", "Ada Lovelace"))[1] is False  # retried
    with pytest.raises(Conflict, match="another name"):
        await lines.create_subscriber("SUB-1", "Someone Else")
    await lines.link_subscriber("LOS-0001", "SUB-1")
    await lines.create_subscriber("SUB-2", "O'Brien & <Sons>")  # data, never a payload
    await lines.create_line("LOS-0002", "SUB-2")
    with pytest.raises(Conflict, match="belongs to subscriber SUB-1"):
        await lines.link_subscriber("LOS-0001", "SUB-2")
    with pytest.raises(NotFound, match="subscriber SUB-9"):
        await lines.create_line("LOS-0003", "SUB-9")
    assert [s.code for s in await lines.search_subscribers("lovel")] == ["SUB-1"]
    assert [s.code for s in await lines.search_subscribers("<sons>")] == ["SUB-2"]
    assert [s.code for s in await lines.search_subscribers("%")] == []  # LIKE taken literally
    assert [ln.code for ln in await lines.search_lines("ada")] == ["LOS-0001"]
    assert [ln.code for ln in await lines.search_lines(subscriber="SUB-2")] == ["LOS-0002"]
    assert [e.message for e in await lines.line_events("LOS-0001")] == [
        "created", "linked to subscriber SUB-1"]


@pytest.mark.parametrize("code", ["", "a b", "<x/>", "a'b", 'a"b', "a;reboot", "a\nb",
                                  "a|b", "-lead", "x" * 33, "é"])
async def test_codes_that_could_inject_are_refused(lines: LineStore, code: str) -> None:
    with pytest.raises(InvalidValue, match="code is invalid"):
        await lines.create_line(code)
    with pytest.raises(InvalidValue, match="code is invalid"):
        await lines.create_subscriber(code, "Name")
    assert await lines.search_lines() == ()
    assert await lines.search_subscribers() == ()


async def test_association_issues_one_url_and_moves_only_when_asked(lines: LineStore) -> None:
    await lines.create_line("LOS-1")
    await lines.create_line("LOS-2")
    for name in ("gw-a", "gw-b", "gw-c"):
        await lines.create_gateway(name, "sim-n", "127.0.0.1")
    line = await lines.associate("LOS-1", "gw-a", issue)
    assert line.phan_url is not None
    assert decode(line.phan_url, KEYS) == "LOS-1"
    assert (await lines.associate("LOS-1", "gw-a", issue)).phan_url == line.phan_url
    with pytest.raises(Conflict, match="carries line of service LOS-1"):
        await lines.associate("LOS-2", "gw-a", issue)
    with pytest.raises(Conflict, match="is on gateway gw-a"):
        await lines.associate("LOS-1", "gw-b", issue)
    moved = await lines.associate("LOS-1", "gw-b", issue, move=True)
    assert (moved.gateway, moved.phan_url) == ("gw-b", line.phan_url)
    old = await lines.gateway_state("gw-a")
    assert old is not None
    assert (old.desired_url, old.phase) == ("", GatewayPhase.PENDING)
    # RMA: gw-b replaced by gw-c, same URL, gw-b retired
    rma = await lines.replace_gateway("gw-b", "gw-c", issue)
    assert (rma.gateway, rma.phan_url) == ("gw-c", line.phan_url)
    assert (await lines.replace_gateway("gw-b", "gw-c", issue)).gateway == "gw-c"  # idempotent
    retired = await lines.get_gateway("gw-b")
    assert retired is not None
    assert retired.retired_at is not None
    with pytest.raises(Conflict, match="retired"):
        await lines.associate("LOS-2", "gw-b", issue)
    with pytest.raises(Conflict, match="exists with another"):
        await lines.create_gateway("gw-a", "sim-n", "127.0.0.2")
    history = [e.message for e in await lines.line_events("LOS-1")]
    assert any("replaced by gw-c (RMA)" in m for m in history), history


# ---- over the daemon and the lab ----------------------------------------------------------------
async def test_phan_url_written_on_each_protocol(lines_agent: tuple[Daemon, Client],
        own_lab: Lab) -> None:
    _, c = lines_agent
    lab = own_lab
    assert (await c.call("POST", "/subscribers", body={"code": "SUB-1",
                                                        "name": "Grace Hopper"}))[0] == 201
    cases = [(A001, "sim-n", "LOS-N"), (A002, "sim-s", "LOS-S"), (A005, "sim-c", "LOS-C")]
    for serial, gclass, code in cases:
        name = await register(c, serial, gclass, lab)
        status, body = await c.call("POST", "/lines", body={"code": code, "subscriber": "SUB-1"})
        assert status == 201, body
        status, body = await c.call("POST", f"/lines/{code}/gateway", body={"gateway": name})
        assert status == 200, body
        assert body["phan_url"].startswith(BASE + "/")
    for serial, _, code in cases[:2]:  # reachable now
        body = await line_state(c, code, "written")
        assert lab.gateways[gw_name(serial)].phan_url == body["phan_url"]
        assert decode(body["phan_url"], KEYS) == code
        assert any("written to gateway" in e["message"] for e in body["history"])
    # A005's ONT is powered off: its gateway cannot be reached, and the line says so.
    body = await line_state(c, "LOS-C", "pending")
    assert body["gateway_state"]["error_class"] == "connection-error"
    assert "cannot be reached" in body["gateway_state"]["message"]
    lab.find_ont(A005).set_power(True)  # the OLT reports it; the agent writes by itself
    body = await line_state(c, "LOS-C", "written")
    assert lab.gateways[gw_name(A005)].phan_url == body["phan_url"]
    # searching, CSR reads
    status, found = await c.call("GET", "/lines?q=hopper", CSR)
    assert sorted(ln["code"] for ln in found["lines"]) == ["LOS-C", "LOS-N", "LOS-S"]
    status, sub = await c.call("GET", "/subscribers/SUB-1", CSR)
    assert sorted(sub["lines"]) == ["LOS-C", "LOS-N", "LOS-S"]
    # resend of a written gateway writes nothing new and stays written
    status, gw = await c.call("POST", f"/gateways/{gw_name(A001)}/resend")
    assert (status, gw["state"]["phase"]) == (200, "written"), gw
    assert "already held it" in gw["state"]["message"]


async def test_gateway_behind_a_new_ont_is_written_once_its_order_is_active(
        lines_agent: tuple[Daemon, Client],
        own_lab: Lab) -> None:
    d, c = lines_agent
    lab = own_lab
    assert d.store is not None
    await d.store.upsert_ont(HWTC, "olt1", "0/1/1", state=OntState.UP)
    name = await register(c, HWTC, "sim-c", lab)
    await c.call("POST", "/lines", body={"code": "LOS-H"})
    await c.call("POST", "/lines/LOS-H/gateway", body={"gateway": name})
    body = await line_state(c, "LOS-H", "pending", error_class="connection-error")
    await c.call("POST", "/objects", body={"id": "obj-h", "address": "1 Fibre Way"})
    await c.call("POST", "/objects/obj-h/bind", body={"serial": HWTC})
    status, order = await c.call("POST", "/orders", body={
        "object_id": "obj-h", "isp": "fibrenet", "service_type": "internet", "start_at": PAST})
    assert status == 201, order
    body = await line_state(c, "LOS-H", "written")
    assert lab.gateways[name].phan_url == body["phan_url"]
    # The gateway answers once the ONT carries the service, which can be a moment before the
    # push that put it there has finished verifying and the order reads active.
    for _ in range(200):
        status, got = await c.call("GET", f"/orders/{order['id']}", CSR)
        if got["status"] == "active":
            break
        await asyncio.sleep(0.05)
    assert got["status"] == "active", got


async def test_rma_moves_the_url_and_clears_the_old_gateway(
        lines_agent: tuple[Daemon, Client], own_lab: Lab) -> None:
    _, c = lines_agent
    lab = own_lab
    old = await register(c, A001, "sim-n", lab)
    new = await register(c, A002, "sim-s", lab)
    url = await written_line(c, "LOS-R", old)
    assert lab.gateways[old].phan_url == url
    status, body = await c.call("POST", f"/gateways/{old}/replace", body={"new_gateway": new},
                                token=CSR)
    assert status == 403
    status, body = await c.call("POST", f"/gateways/{old}/replace", body={"new_gateway": new})
    assert status == 200, body
    assert (body["gateway"], body["phan_url"]) == (new, url)
    await line_state(c, "LOS-R", "written")
    await eventually(lambda: lab.gateways[new].phan_url == url
                     and lab.gateways[old].phan_url == "", timeout=20)
    status, gw = await c.call("GET", f"/gateways/{old}", CSR)
    assert gw["retired_at"] is not None
    assert gw["line"] is None
    for _ in range(200):
        status, gw = await c.call("GET", f"/gateways/{old}", CSR)
        if gw["state"]["phase"] == "written":
            break
        await asyncio.sleep(0.05)
    assert (gw["state"]["phase"], gw["state"]["desired_url"]) == ("written", "")
    status, line = await c.call("GET", "/lines/LOS-R", CSR)
    assert any("cleared on gateway" in e["message"] for e in line["history"]), line["history"]
    status, body = await c.call("POST", "/lines", body={"code": "LOS-X"})
    status, body = await c.call("POST", "/lines/LOS-X/gateway", body={"gateway": old})
    assert status == 409
    assert "retired" in body["error"]


async def test_a_write_left_by_a_crash_is_redone_on_start(own_lab: Lab, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    lab = own_lab
    for var, value in ((PASSWORD_VAR, lab.olts["olt1"].credentials.password),
                       (COMMUNITY_VAR, lab.olts["olt2"].snmp.community_rw),
                       (ADMIN_VAR, ADMIN), (CSR_VAR, CSR)):
        monkeypatch.setenv(var, value)
    settings = lab_settings(lab, tmp_path)
    name = gw_name(A001)
    async with Store(settings.store) as store:
        ls = LineStore(store)
        await ls.create_gateway(name, "sim-n", lab.gateways[name].address, A001)
        await ls.create_line("LOS-K")
        await ls.associate("LOS-K", name, issue)
        st = await ls.begin_write(name)  # recorded, then the process died
        assert st is not None
        assert st.phase is GatewayPhase.WRITING
    assert lab.gateways[name].phan_url == ""
    monkeypatch.setenv(KEYS_ENV_VAR, KEYS.export_secrets())
    async with Daemon(settings, engine_options={"gateway_retry": 0.5}) as d:
        assert d.engine is not None
        lines = d.engine.lines

        async def phase() -> GatewayPhase | None:
            s = await lines.gateway_state(name)
            return None if s is None else s.phase

        for _ in range(400):
            if await phase() is GatewayPhase.WRITTEN:
                break
            await asyncio.sleep(0.05)
        assert await phase() is GatewayPhase.WRITTEN
        url = (await lines.get_line("LOS-K"))
        assert url is not None
        assert lab.gateways[name].phan_url == url.phan_url


def _path(route_path: str) -> str:
    return route_path.replace("{code}", "LOS-1").replace("{name}", "gw-x")


async def test_roles_and_bad_input(lines_agent: tuple[Daemon, Client]) -> None:
    _, c = lines_agent
    admin_routes = [(r.method, _path(r.path)) for r in ROUTES if r.role == "admin"]
    assert len(admin_routes) == 8
    for method, path in admin_routes:
        assert (await c.call(method, path, None, body={}))[0] == 401, path
        assert (await c.call(method, path, "wrong-token", body={}))[0] == 401, path
        assert (await c.call(method, path, CSR, body={}))[0] == 403, path
    for r in ROUTES:
        if r.role == "csr":
            status, _ = await c.call(r.method, _path(r.path), CSR)
            assert status in (200, 404), r.path
    bad: list[tuple[str, str, dict[str, Any], str]] = [
        ("POST", "/subscribers", {"code": "S<1>", "name": "x"}, "code"),
        ("POST", "/subscribers", {"code": "S1", "name": "a\nb"}, "name"),
        ("POST", "/subscribers", {"code": "S1", "name": "x" * 129}, "name"),
        ("POST", "/lines", {"code": "L1'; reboot"}, "code"),
        ("POST", "/lines", {"code": "L1", "subscriber": "a|b"}, "subscriber"),
        ("POST", "/gateways", {"name": "g1", "gateway_class": "sim-n",
                               "address": "127.0.0.1;reboot"}, "address"),
        ("POST", "/gateways", {"name": "g<1>", "gateway_class": "sim-n",
                               "address": "127.0.0.1"}, "name"),
        ("POST", "/gateways", {"name": "g1", "gateway_class": "nope",
                               "address": "127.0.0.1"}, "gateway_class"),
    ]
    for method, path, body, field in bad:
        status, err = await c.call(method, path, body=body)
        assert (status, err["field"]) == (422, field), (path, body, err)
        assert "reboot" not in err["error"]
    status, err = await c.call("GET", "/lines?q=" + "x" * 65, CSR)
    assert (status, err["field"]) == (400, "q")
    assert (await c.call("GET", "/lines", CSR))[1] == {"lines": []}
    assert (await c.call("GET", "/subscribers", CSR))[1] == {"subscribers": []}
    assert (await c.call("GET", "/gateways", CSR))[1] == {"gateways": []}
    status, err = await c.call("POST", "/lines/LOS-404/gateway", body={"gateway": "gw-x"})
    assert status == 404


async def test_diagnose_reports_the_gateway_and_its_url(lines_agent: tuple[Daemon, Client],
                                                        own_lab: Lab) -> None:
    d, c = lines_agent
    lab = own_lab
    engine = d.engine
    assert engine is not None
    for serial, gclass, code in ((A001, "sim-n", "LOS-D1"), (A005, "sim-c", "LOS-D5")):
        name = await register(c, serial, gclass, lab)
        await c.call("POST", "/lines", body={"code": code})
        await c.call("POST", f"/lines/{code}/gateway", body={"gateway": name})
    await line_state(c, "LOS-D1", "written")

    async def gateway_checks(serial: str) -> list[tuple[str, str, str]]:
        report = await diagnose(engine, serial)
        section = next(s for s in report.sections if s.id == "gateway")
        return [(ch.id, ch.verdict.value, ch.finding) for ch in section.checks]

    assert [(i, v) for i, v, _ in await gateway_checks(A001)] == [("gateway.url", "ok")]
    lab.gateways[gw_name(A001)].set(phan_url="")  # a factory reset, say
    [(cid, verdict, finding)] = await gateway_checks(A001)
    assert (cid, verdict) == ("gateway.url", "fail")
    assert "does not hold line LOS-D1's PHAN URL" in finding
    [(cid, verdict, finding)] = await gateway_checks(A005)  # its ONT is powered off
    assert (cid, verdict) == ("gateway.reachable", "fail")
    assert "cannot be read" in finding
    # the resend puts it back
    status, gw = await c.call("POST", f"/gateways/{gw_name(A001)}/resend")
    assert (status, gw["state"]["phase"]) == (200, "written")
    line = (await c.call("GET", "/lines/LOS-D1", CSR))[1]
    assert lab.gateways[gw_name(A001)].phan_url == line["phan_url"]


async def test_moving_a_line_writes_the_new_gateway_and_clears_the_old(
        lines_agent: tuple[Daemon, Client], own_lab: Lab) -> None:
    _, c = lines_agent
    lab = own_lab
    old = await register(c, A001, "sim-n", lab)
    new = await register(c, A002, "sim-s", lab)
    url = await written_line(c, "LOS-M", old)
    status, body = await c.call("POST", "/lines/LOS-M/gateway", body={"gateway": new})
    assert status == 409, body  # without move
    status, body = await c.call("POST", "/lines/LOS-M/gateway",
                                body={"gateway": new, "move": True})
    assert (status, body["gateway"], body["phan_url"]) == (200, new, url), body
    await eventually(lambda: lab.gateways[new].phan_url == url
                     and lab.gateways[old].phan_url == "", timeout=10)
