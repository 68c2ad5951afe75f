"""Security baseline, over real sockets:

- every admin route of ``agent.api.all_routes()`` refuses a missing token (401), a wrong token
  (401) and the CSR token (403), and nothing is stored by the refused calls;
- a read-only SNMP community cannot write through the SNMP driver: SnmpRejectedError, the value
  and the OLT's running configuration unchanged;
- a host key that does not match known_hosts aborts a NETCONF and an SSH CLI connection with
  HostKeyError before any session is opened on the device (nothing sent);
- no secret (SSH password, SNMP communities, API tokens, PHAN keys) appears in the daemon's logs
  (captured at DEBUG as JSON and at INFO as plain text through the daemon's own logging set-up)
  nor in any API response body of a scripted session (orders, provisioning, gateways, PHAN lines,
  errors, OpenAPI, metrics, health)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from agent.api import all_routes
from agent.daemon import configure_logging
from drivers.cli.driver import CliDriver
from drivers.cli.platform import load_platform
from drivers.errors import HostKeyError, SnmpRejectedError
from drivers.netconf import NetconfDriver
from drivers.snmp import SnmpDriver
from drivers.snmp.target import SnmpTarget
from drivers.snmp.varbind import Varbind, VarType
from drivers.ssh_transport import SshTarget
from simulator.lab import Lab
from tests.agent.lines_env import A001, ADMIN, CSR, PAST, Client, line_state, register
from tests.reliability.sec_env import secret_agent, secrets

ONT_DESCRIPTION = "1.3.6.1.4.1.32473.1.1.2.1.3"  # PONCTL-MIB ponctlOntDescription
HWTC = "HWTC1A2B3C4D"


def _fill(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: {"serial": HWTC, "object_id": "obj-sec",
                                           "order_id": "ord-sec", "code": "LOS-SEC",
                                           "name": "gw-sec", "target": HWTC}.get(m[1], "x"),
                  path)


async def _store_counts(c: Client) -> dict[str, int]:
    counts = {}
    for path, key in (("/orders", "orders"), ("/objects", "objects"), ("/lines", "lines"),
                      ("/gateways", "gateways"), ("/subscribers", "subscribers")):
        status, body = await c.call("GET", path, ADMIN)
        assert status == 200, (path, body)
        counts[path] = len(body[key]) if key in body else len(body)
    return counts


async def test_admin_routes_refuse_missing_wrong_and_csr_tokens(tmp_path: Path) -> None:
    async with secret_agent(tmp_path) as (_, _d, c):
        admin = [r for r in all_routes() if r.role == "admin"]
        assert len(admin) >= 15, [r.path for r in admin]
        before = await _store_counts(c)
        body = {"id": "obj-sec", "address": "x", "serial": HWTC, "code": "LOS-SEC"}
        for r in admin:
            path = _fill(r.path)
            for token, want in ((None, 401), ("", 401), ("wrong-token", 401),
                                (ADMIN + "x", 401), (ADMIN[:-1], 401), (CSR, 403)):
                status, got = await c.call(r.method, path, token, body=body)
                assert status == want, (r.method, path, token, got)
                assert "error" in got
        # reads stay open to the CSR role, closed without a token
        for r in all_routes():
            if r.role == "csr" and r.method == "GET":
                assert (await c.call("GET", _fill(r.path), None))[0] == 401, r.path
        assert await _store_counts(c) == before


async def test_a_read_only_community_cannot_write_through_the_driver(lab: Lab) -> None:
    olt = lab.olts["olt1"]
    base = olt.running
    ro = SnmpTarget("127.0.0.1", olt.ports["snmp"], community=olt.snmp.community_ro,
                    timeout=2.0)
    async with SnmpDriver(ro) as driver:
        rows = (await driver.get_config(ONT_DESCRIPTION)).data
        assert rows, "the OLT lists ONT descriptions"
        oid, value = rows[0].oid, rows[0].value
        await driver.load_candidate([Varbind(oid, VarType.OCTET_STRING, "pwned")])
        with pytest.raises(SnmpRejectedError) as refused:
            await driver.commit()
        assert refused.value.status in ("notWritable", "noAccess", "authorizationError")
        await driver.discard()
        [after] = (await driver.get_config(oid)).data
    assert after.value == value
    assert olt.running is base


def _other_key_known_hosts(port: int) -> str:
    other = asyncssh.generate_private_key("ssh-ed25519")
    return f"[127.0.0.1]:{port} {other.export_public_key().decode()}"


async def test_a_host_key_mismatch_aborts_netconf_and_cli_before_any_session(lab: Lab) -> None:
    olt = lab.olts["olt1"]
    sessions, base = olt.session_ids, olt.running
    for face in ("netconf", "ssh"):
        port = olt.ports[face]
        target = SshTarget("127.0.0.1", port, username=olt.credentials.username,
                           password=olt.credentials.password, timeout=5.0,
                           known_hosts_text=_other_key_known_hosts(port))
        driver: Any = (NetconfDriver(target) if face == "netconf"
                       else CliDriver(target, load_platform("huawei-olt")))
        with pytest.raises(HostKeyError) as err:
            await driver.connect()
        assert not driver.connected
        assert olt.credentials.password not in str(err.value)
    assert olt.session_ids == sessions  # no session was opened: nothing was sent
    assert olt.running is base


# ---- no secret in logs or API output ----------------------------------------------------------
@contextlib.contextmanager
def captured_logs(json: bool, level: int) -> Iterator[list[str]]:
    """The daemon's own logging set-up (configure_logging: handler, formatter, redactor), its
    stream pointed at a list."""
    lines: list[str] = []

    class Sink:
        def write(self, s: str) -> int:
            lines.append(s)
            return len(s)

        def flush(self) -> None:
            pass

    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("asyncssh").level)
    real = sys.stderr
    sys.stderr = Sink()
    try:
        handler = configure_logging(json, level=level)
    finally:
        sys.stderr = real
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.getLogger("asyncssh").setLevel(saved[2])


async def _scripted_session(lab: Lab, c: Client) -> list[str]:
    """Admin and CSR calls of a day's work, failures included; every response body."""
    bodies: list[str] = []

    async def call(method: str, path: str, token: str | None = ADMIN,
                   body: Any = None) -> tuple[int, Any]:
        status, got = await c.call(method, path, token, body)
        bodies.append(repr(got))
        return status, got

    assert (await call("POST", "/objects", body={"id": "obj-s", "address": "1 Key St"}))[0] \
        == 201
    assert (await call("POST", "/objects/obj-s/bind", body={"serial": HWTC}))[0] == 200
    status, order = await call("POST", "/orders", body={
        "object_id": "obj-s", "isp": "fibrenet", "service_type": "internet", "start_at": PAST})
    assert status == 201, order
    oid = order["id"]
    for _ in range(200):
        status, got = await call("GET", f"/orders/{oid}", CSR)
        if got["status"] == "active":
            break
        await asyncio.sleep(0.05)
    assert got["status"] == "active", got
    name = await register(c, A001, "sim-n", lab)
    await call("POST", "/subscribers", body={"code": "SUB-S", "name": "Ada"})
    await call("POST", "/lines", body={"code": "LOS-S", "subscriber": "SUB-S"})
    await call("POST", "/lines/LOS-S/gateway", body={"gateway": name})
    line = await line_state(c, "LOS-S", "written")
    bodies.append(repr(line))
    assert line["phan_url"].startswith("https://analytics.example.net/phan")
    for method, path, token in (
            ("POST", f"/orders/{oid}/resend", ADMIN), ("POST", f"/orders/{oid}/dry-run", CSR),
            ("POST", f"/onts/{HWTC}/dry-run", CSR), ("GET", f"/diagnose/{HWTC}", CSR),
            ("GET", "/orders", CSR), ("GET", "/onts", CSR), ("GET", "/lines", CSR),
            ("GET", "/gateways", CSR), ("GET", f"/gateways/{name}", CSR),
            ("GET", "/catalog", CSR), ("GET", "/openapi.json", None),
            ("POST", "/orders", CSR), ("POST", "/orders", "bad-token"),
            ("POST", "/orders", ADMIN), ("GET", "/orders/ord-none", CSR)):
        await call(method, path, token, body={} if method == "POST" else None)
    async with c.session.get(c.base.removesuffix("/api/v1") + "/metrics") as resp:
        bodies.append(await resp.text())
    async with c.session.get(c.base.removesuffix("/api/v1") + "/healthz") as resp:
        bodies.append(await resp.text())
    return bodies


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("json", "level"), [(True, logging.DEBUG), (False, logging.INFO)],
                         ids=["json-debug", "plain-info"])
async def test_no_secret_in_logs_or_api_output(tmp_path: Path, json: bool, level: int) -> None:
    with captured_logs(json, level) as lines:
        async with secret_agent(tmp_path) as (lab, _d, c):
            logging.getLogger("agent").debug("debug logging is on")
            bodies = await _scripted_session(lab, c)
    text = "".join(lines)
    assert "debug logging is on" in text or level > logging.DEBUG
    assert len(lines) > 10, text  # the daemon did log its work
    api = "\n".join(bodies)
    leaks = [(what, where) for what, value in secrets().items()
             for where, haystack in (("logs", text), ("API", api)) if value in haystack]
    assert leaks == []
