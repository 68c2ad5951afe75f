"""The OSS/BSS API over real sockets: the daemon against the simulated lab (olt1 NETCONF,
olt2 SNMP) with an admin and a CSR token, driven with aiohttp.

Covers: role enforcement on every admin route (no token, unknown token, CSR, admin) and CSR
reads; object + bind + order turning active with its history; bad input refused with the field
named and nothing stored; bind conflict; the OpenAPI document; no token in any response."""

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

from agent.api import MAX_BODY, ROUTES
from agent.daemon import Daemon
from agent.discovery import Backoff
from agent.settings import Settings
from agent.store import OntState, Store
from simulator.lab import Lab
from simulator.topology import parse_topology
from tests.agent.test_engine import COMMUNITY_VAR, FAST, HWTC, PASSWORD_VAR, lab_settings
from tests.conftest import REPO, running_lab

PASSWORD = "Lab-Pw-7f3k9q"
COMMUNITY = "rw-comm-x81z"
ADMIN = "admin-tok-Q7x2Lm9Pz4"
CSR = "csr-tok-B3n8Vw1Kd6"
ADMIN_VAR, CSR_VAR = "PONCTL_TEST_API_ADMIN", "PONCTL_TEST_API_CSR"
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


class Client:
    """Requests against the daemon's API; remembers every response body it saw."""

    def __init__(self, session: aiohttp.ClientSession, port: int) -> None:
        self.session = session
        self.base = f"http://127.0.0.1:{port}/api/v1"
        self.bodies: list[str] = []

    async def call(self, method: str, path: str, token: str | None = ADMIN, *,
                   body: Any = None, raw: bytes | None = None,
                   headers: dict[str, str] | None = None,
                   ) -> tuple[int, Any, aiohttp.ClientResponse]:
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        async with self.session.request(method, self.base + path, data=data,
                                        headers=hdrs) as resp:
            text = await resp.text()
            self.bodies.append(text + "".join(f"{k}: {v}" for k, v in resp.headers.items()))
            return resp.status, json.loads(text) if text else None, resp


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[tuple[Daemon, Client]]:
    # The ONT is in the inventory (as test_daemon does it: the OLT reports it unclaimed).
    async with Store(settings.store) as store:
        await store.upsert_ont(HWTC, "olt1", "0/1/1", state=OntState.UP)
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


async def wait_status(client: Client, oid: str, status: str, timeout: float = 20) -> Any:
    """The order once its status is ``status`` and its history has recorded it (the engine
    records a status a moment after the facts make it so)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        code, body, _ = await client.call("GET", f"/orders/{oid}", CSR)
        assert code == 200, body
        if body["status"] == status and status in [e["status"] for e in body["events"]]:
            return body
        assert asyncio.get_running_loop().time() < deadline, (
            body["status"], body["message"], body["prerequisites"])
        await asyncio.sleep(0.1)


ORDER = {"object_id": "obj-1", "isp": "fibrenet", "service_type": "internet", "start_at": PAST}


async def test_object_bind_order_becomes_active_with_history(
        api: tuple[Daemon, Client]) -> None:
    _, c = api
    code, obj, _ = await c.call("POST", "/objects",
                                body={"id": "obj-1", "address": '12 "Fibre" Lane <b>, flat 3'})
    assert code == 201, obj
    assert obj["id"] == "obj-1"
    assert obj["serial"] is None
    code, bound, _ = await c.call("POST", "/objects/obj-1/bind", body={"serial": HWTC})
    assert code == 200, bound
    assert (bound["serial"], bound["change"]) == (HWTC, "bound")
    code, order, _ = await c.call("POST", "/orders", body={**ORDER, "external_ref": "oss-42"})
    assert code == 201, order
    assert order["status"] in ("awaiting-provisioning", "active", "awaiting-prerequisites")
    assert order["events"][0]["status"] == "created"
    done = await wait_status(c, order["id"], "active")
    assert done["error_class"] is None
    assert done["prerequisites"] == []
    # The status is computed from the verified push at once; the history's "active" entry is
    # appended right after, by the reconcile that made the push.
    for _ in range(100):
        if done["events"][-1]["status"] == "active":
            break
        await asyncio.sleep(0.05)
        done = (await c.call("GET", f"/orders/{order['id']}", CSR))[1]
    statuses = [e["status"] for e in done["events"]]
    assert statuses[0] == "created"
    assert statuses[-1] == "active"
    # idempotent on external_ref
    code, again, _ = await c.call("POST", "/orders", body={**ORDER, "external_ref": "oss-42"})
    assert (code, again["id"]) == (200, order["id"])
    # CSR reads
    code, got, _ = await c.call("GET", "/objects/obj-1", CSR)
    assert (code, got["serial"]) == (200, HWTC)
    code, onts, _ = await c.call("GET", "/onts", CSR)
    assert code == 200
    assert HWTC in [o["serial"] for o in onts["onts"]]
    code, ont, _ = await c.call("GET", f"/onts/{HWTC}", CSR)
    assert (code, ont["object_id"], ont["olt"]) == (200, "obj-1", "olt1")
    code, listed, _ = await c.call("GET", "/orders?open_only=true", CSR)
    assert (code, [o["id"] for o in listed["orders"]]) == (200, [order["id"]])
    # resend of an active order is idempotent; cancel is refused once provisioned
    code, resent, _ = await c.call("POST", f"/orders/{order['id']}/resend")
    assert (code, resent["status"]) == (200, "active"), resent
    code, err, _ = await c.call("POST", f"/orders/{order['id']}/cancel")
    assert code == 409
    assert "terminate" in err["error"]
    # terminate removes it
    code, term, _ = await c.call("POST", f"/orders/{order['id']}/terminate",
                                 body={"reason": "customer left"})
    assert code == 200, term
    await wait_status(c, order["id"], "terminated")


async def test_not_found_and_cancel(api: tuple[Daemon, Client]) -> None:
    _, c = api
    assert (await c.call("GET", "/objects/nope", CSR))[0] == 404
    assert (await c.call("GET", "/onts/ABCD00000000", CSR))[0] == 404
    assert (await c.call("GET", "/orders/ord-none", CSR))[0] == 404
    assert (await c.call("POST", "/orders/ord-none/resend"))[0] == 404
    code, body, _ = await c.call("GET", "/onts/bad;serial", CSR)
    assert (code, body["field"]) == (400, "serial")
    code, body, _ = await c.call("GET", "/orders?open_only=maybe", CSR)
    assert (code, body["field"]) == (400, "open_only")
    # an order for an object with no ONT waits for prerequisites; it can be cancelled
    code, order, _ = await c.call("POST", "/orders", body={**ORDER, "object_id": "obj-9"})
    assert code == 201, order
    assert order["status"] == "awaiting-prerequisites"
    assert order["prerequisites"]
    code, cancelled, _ = await c.call("POST", f"/orders/{order['id']}/cancel")
    assert (code, cancelled["status"]) == (200, "cancelled"), cancelled
    code, listed, _ = await c.call("GET", "/orders?open_only=1", CSR)
    assert listed["orders"] == []
    code, listed, _ = await c.call("GET", "/orders", CSR)
    assert [o["status"] for o in listed["orders"]] == ["cancelled"]


ADMIN_ROUTES = [(r.method, r.path.replace("{object_id}", "obj-1")
                 .replace("{order_id}", "ord-x")) for r in ROUTES if r.role == "admin"]
READ_ROUTES = [(r.method, r.path.replace("{object_id}", "obj-1").replace("{serial}", HWTC)
                .replace("{order_id}", "ord-x")) for r in ROUTES if r.role == "csr"]


async def test_roles_are_enforced_on_every_admin_route(api: tuple[Daemon, Client]) -> None:
    d, c = api
    assert len(ADMIN_ROUTES) == 7
    for method, path in ADMIN_ROUTES:
        code, body, resp = await c.call(method, path, None, body={})
        assert code == 401, (method, path, body)
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        code, _, _ = await c.call(method, path, None, body={},
                                  headers={"Authorization": f"Basic {ADMIN}"})
        assert code == 401, (method, path)
        code, body, _ = await c.call(method, path, "not-a-token", body={})
        assert code == 401, (method, path, body)
        code, body, _ = await c.call(method, path, CSR, body={})
        assert code == 403, (method, path, body)
        assert "admin" in body["error"]
        code, body, _ = await c.call(method, path, ADMIN, body={})
        assert code not in (401, 403), (method, path, body)  # past auth: 404/409/422 here
    assert d.store is not None
    assert await d.store.list_orders() == ()
    assert await d.store.get_object("obj-1") is None
    # admin actions succeed with the admin token
    assert (await c.call("POST", "/objects", body={"id": "obj-1", "address": "x"}))[0] == 201
    assert (await c.call("POST", "/objects/obj-1/bind", body={"serial": HWTC}))[0] == 200
    # reads: CSR and admin fine, no token / unknown token refused
    for method, path in READ_ROUTES:
        for token in (CSR, ADMIN):
            code, body, _ = await c.call(method, path, token)
            assert code in (200, 404), (method, path, body)
        assert (await c.call(method, path, None))[0] == 401
        assert (await c.call(method, path, ADMIN + "x"))[0] == 401
    # health and metrics stay open
    async with c.session.get(c.base.removesuffix("/api/v1") + "/healthz") as resp:
        assert resp.status == 200


BAD_ORDERS: list[tuple[dict[str, Any], str]] = [
    ({**ORDER, "service_type": "<x/>"}, "service_type"),
    ({**ORDER, "service_type": "internet\nvlan 5"}, "service_type"),
    ({**ORDER, "isp": 'fibre"net'}, "isp"),
    ({**ORDER, "isp": "fibre\nnet"}, "isp"),
    ({**ORDER, "isp": "a'; drop"}, "isp"),
    ({**ORDER, "object_id": "obj;1"}, "object_id"),
    ({**ORDER, "start_at": "tomorrow"}, "start_at"),
    ({**ORDER, "start_at": "2025-13-01T00:00:00Z"}, "start_at"),
    ({**ORDER, "start_at": "2025-06-01T00:00:00"}, "start_at"),  # no offset
    ({**ORDER, "start_at": 1700000000}, "start_at"),
    ({**ORDER, "vlan": 4095}, "vlan"),
    ({**ORDER, "c_vlan": "100; vlan 200"}, "c_vlan"),
    ({**ORDER, "external_ref": "a\nb"}, "external_ref"),
    ({k: v for k, v in ORDER.items() if k != "isp"}, "isp"),
    ({**ORDER, "isp": 7}, "isp"),
]


async def test_bad_input_is_refused_naming_the_field_and_nothing_is_stored(
        api: tuple[Daemon, Client]) -> None:
    d, c = api
    assert d.store is not None
    for body, field in BAD_ORDERS:
        code, err, _ = await c.call("POST", "/orders", body=body)
        assert code == 422, (body, err)
        assert err["field"] == field, (body, err)
        assert field in err["error"]
    for body, field in [({"id": "obj;1", "address": "x"}, "id"),
                        ({"id": "obj-1", "address": "line\nbreak"}, "address"),
                        ({"id": "obj-1", "address": "x", "owner": "me"}, "owner"),
                        ({"id": "obj-1"}, "address")]:
        code, err, _ = await c.call("POST", "/objects", body=body)
        assert (code, err["field"]) == (422, field), (body, err)
    for raw, code_wanted in [(b"{not json", 400), (b"[1, 2]", 400), (b"", 400),
                             (b'{"id": "obj-1", "address": "' + b"a" * MAX_BODY + b'"}', 413)]:
        code, err, _ = await c.call("POST", "/objects", raw=raw)
        assert (code, err["field"]) == (code_wanted, "body"), (raw[:20], err)
    code, err, _ = await c.call("POST", "/objects/obj-1/bind",
                                body={"serial": "HWTC1A2B3C4D<x/>"})
    assert (code, err["field"]) == (422, "serial")
    code, err, _ = await c.call("POST", "/objects/obj-1/bind",
                                body={"serial": HWTC, "move": "yes"})
    assert (code, err["field"]) == (422, "move")
    assert await d.store.list_orders() == ()
    assert await d.store.list_objects() == ()
    # the rejected value is not echoed back
    code, err, _ = await c.call("POST", "/orders", body={**ORDER, "isp": "<evil-marker/>"})
    assert code == 422
    assert "evil-marker" not in json.dumps(err)


async def test_binding_a_serial_bound_elsewhere_is_a_conflict(
        api: tuple[Daemon, Client]) -> None:
    d, c = api
    for oid in ("obj-1", "obj-2"):
        assert (await c.call("POST", "/objects", body={"id": oid, "address": oid}))[0] == 201
    assert (await c.call("POST", "/objects", body={"id": "obj-1", "address": "obj-1"}))[0] == 200
    code, err, _ = await c.call("POST", "/objects", body={"id": "obj-1", "address": "other"})
    assert code == 409
    assert (await c.call("POST", "/objects/obj-1/bind", body={"serial": HWTC}))[0] == 200
    code, err, _ = await c.call("POST", "/objects/obj-2/bind", body={"serial": HWTC})
    assert code == 409
    assert "obj-1" in err["error"]
    assert (await c.call("POST", "/objects/nope/bind", body={"serial": HWTC}))[0] == 404
    code, moved, _ = await c.call("POST", "/objects/obj-2/bind",
                                  body={"serial": HWTC, "move": True})
    assert (code, moved["change"], moved["previous_object"]) == (200, "moved", "obj-1")
    assert d.store is not None
    binding = await d.store.binding_of_serial(HWTC)
    assert binding is not None
    assert binding.object_id == "obj-2"


async def test_the_openapi_document_lists_the_routes(api: tuple[Daemon, Client]) -> None:
    _, c = api
    code, doc, resp = await c.call("GET", "/openapi.json", None)
    assert code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert doc["openapi"].startswith("3.1")
    for r in ROUTES:
        op = doc["paths"]["/api/v1" + r.path][r.method.lower()]
        assert op["summary"]
        if r.body is not None:
            ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]
    order = doc["components"]["schemas"]["OrderCreate"]
    assert set(order["required"]) == {"object_id", "isp", "service_type", "start_at"}
    assert order["additionalProperties"] is False
    text = json.dumps(doc)
    assert "#/$defs" not in text
    for ref in {p.split('"')[0] for p in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert ref in doc["components"]["schemas"], ref


async def test_change_needs_admin_and_refuses_a_service_type_the_catalog_lacks(
        api: tuple[Daemon, Client]) -> None:
    _, c = api
    code, order, _ = await c.call("POST", "/orders", body={**ORDER, "object_id": "obj-9"})
    assert code == 201, order
    oid = order["id"]
    order = await wait_status(c, oid, "awaiting-prerequisites")  # no ONT bound: it waits
    code, body, _ = await c.call("POST", f"/orders/{oid}/change", CSR,
                                 body={"service_type": "iptv"})
    assert code == 403, body
    for change, field in (({"service_type": "fax"}, "service_type"),
                          ({"isp": "nonet"}, "isp"),
                          ({"isp": "speedy", "service_type": "iptv"}, "isp"),
                          ({"service_type": "bad type!"}, "service_type"),
                          ({}, "service_type"),
                          ({"service_type": "iptv", "colour": "red"}, "colour")):
        code, body, _ = await c.call("POST", f"/orders/{oid}/change", body=change)
        assert (code, body["field"]) == (422, field), (change, body)
    code, body, _ = await c.call("POST", f"/orders/{oid}/change", body={"service_type": "fax"})
    assert "service type 'fax' is not in the catalog" in body["error"]
    code, same, _ = await c.call("GET", f"/orders/{oid}", CSR)
    assert (same["service_type"], [e["status"] for e in same["events"]]) == (
        "internet", [e["status"] for e in order["events"]])
    assert [o["id"] for o in (await c.call("GET", "/orders", CSR))[1]["orders"]] == [oid]
    # a valid change of an order not yet provisioned updates it in place
    code, changed, _ = await c.call("POST", f"/orders/{oid}/change",
                                    body={"service_type": "iptv", "reason": "wants TV"})
    assert (code, changed["id"], changed["service_type"]) == (200, oid, "iptv"), changed
    assert "changed: fibrenet internet -> fibrenet iptv: wants TV" in [
        e["message"] for e in changed["events"]]
    assert (await c.call("POST", "/orders/ord-none/change",
                         body={"service_type": "iptv"}))[0] == 404
