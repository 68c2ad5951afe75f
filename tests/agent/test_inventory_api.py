"""The inventory and catalog through the agent's API: ``POST /onts/import``, ``GET /objects``,
``/objects/{id}/history``, ``/objects/{id}/unbind``, ``GET /catalog``, ``/catalog/resolve``, and
the ``ponctl onts|objects|catalog`` commands that use them by default.

A daemon on a real socket (``lines_agent``: an admin and a CSR token) on the simulated lab;
the CLI runs through typer's CliRunner in a worker thread with the token in $PONCTL_TOKEN.
Covers: a CSV with good and bad rows imported in chunks (per-line report, exit 2, bad rows not
stored, a re-imported ONT moved and not duplicated); objects create/bind/unbind/list/show with
the CSR refused for writes; the catalog and a resolve with a gap; role enforcement on the new
admin routes; bad input (XML, quotes, newlines, oversized body, too many rows) refused with the
field named, the value not echoed and nothing stored."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from agent.api_inventory import IMPORT_MAX_BODY, MAX_IMPORT_ROWS
from agent.cli import app
from agent.daemon import Daemon
from agent.inventory import parse_onts_csv
from agent.inventory_commands import CHUNK_ROWS, _row_json, chunks
from agent.store import Store
from tests.agent.lines_env import ADMIN, CSR, Client
from tests.agent.test_api_commands import as_json, ponctl
from tests.conftest import REPO

IMPORT_ROUTE = "/onts/import"


async def ours(store: Store | None, prefix: str = "ABCD0000") -> dict[str, tuple[str, str, str]]:
    """The ONTs these tests imported (the lab's own ONTs may be discovered meanwhile)."""
    assert store is not None
    return {o.serial: (o.olt, o.pon_port, o.model) for o in await store.list_onts()
            if o.serial.startswith(prefix)}


async def post_raw(c: Client, path: str, raw: bytes, token: str | None = ADMIN, *,
                   chunked: bool = False) -> tuple[int, Any, str]:
    """POST ``raw`` with its Content-Length, or (``chunked``) without one."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"

    async def pieces() -> AsyncIterator[bytes]:
        for at in range(0, len(raw), 65536):
            yield raw[at:at + 65536]

    # a file object: aiohttp warns about a large bytes body (and warnings are errors)
    data = pieces() if chunked else io.BytesIO(raw)
    async with c.session.post(c.base + path, data=data, headers=headers) as resp:
        text = await resp.text()
        return resp.status, json.loads(text) if text else None, text


MIXED = (
    "serial,olt,pon_port,model\n"
    "ABCD0000E001,olt1,0/1/3,HG8245H\n"  # 2: imported before at 0/1/1: moved
    "NOPE,olt1,0/1/1,\n"  # 3: bad serial
    "<x/>,olt1,0/1/1,\n"  # 4: XML
    '"ABCD""0000E009",olt1,0/1/1,\n'  # 5: a quote in the serial
    "ABCD0000E003,olt1,9/9/x,\n"  # 6: bad PON port
    'ABCD0000E004,olt1,0/1/2,"evil\nmodel"\n'  # 7-8: a newline in the model
    "ABCD0000E005,olt2,0/1/0,F660\n"  # 9: created
    "ABCD0000E005,olt2,0/1/0,F660\n"  # 10: twice in the file
    "ABCD0000E006,olt2,0/1/0,\n"  # 11: created
    "abcd0000e002,olt1,0/1/1,\n"  # 12: as imported before: unchanged
)


async def test_import_through_the_cli_reports_rows_and_stores_only_good_ones(
        lines_agent: tuple[Daemon, Client], tmp_path: Path) -> None:
    d, _ = lines_agent
    first = tmp_path / "first.csv"
    first.write_text("serial,olt,pon_port,model\nabcd0000e001,olt1,0/1/1,HG8245H\n"
                     "ABCD0000E002,olt1,0/1/1,\n")
    r = await ponctl(d, "onts", "import", str(first))
    assert r.exit_code == 0, r.output
    assert "imported (created)" in r.stdout
    assert "2 row(s) imported, 0 rejected" in r.stdout
    assert "importing" in r.stderr  # the progress bar, on stderr

    mixed = tmp_path / "mixed.csv"
    mixed.write_text(MIXED)
    # --chunk 2: the four good rows go in two requests; the lines still match the file
    r = await ponctl(d, "onts", "import", str(mixed), "--chunk", "2", "-o", "json")
    assert r.exit_code == 2, r.output
    assert r.stderr == ""  # no progress bar with --output json
    report = json.loads(r.stdout)
    assert {x["line"]: (x["serial"], x["change"]) for x in report["imported"]} == {
        2: ("ABCD0000E001", "moved"), 9: ("ABCD0000E005", "created"),
        11: ("ABCD0000E006", "created"), 12: ("ABCD0000E002", "unchanged")}
    assert [x["line"] for x in report["rejected"]] == [3, 4, 5, 6, 7, 10]
    reasons = {x["line"]: " ".join(x["reasons"]) for x in report["rejected"]}
    assert "ONT serial" in reasons[4]
    assert "PON port" in reasons[6]
    assert "model" in reasons[7]
    assert "control character" in reasons[7]
    assert "duplicate: serial ABCD0000E005 is already on line 9" in reasons[10]

    # again, as a table: everything valid is now unchanged
    r = await ponctl(d, "onts", "import", str(mixed))
    assert r.exit_code == 2, r.output
    assert "ONT serial 'NOPE' is invalid" in r.stdout
    assert "imported (unchanged)" in r.stdout
    assert "4 row(s) imported, 6 rejected" in r.stdout

    assert await ours(d.store) == {
        "ABCD0000E001": ("olt1", "0/1/3", "HG8245H"),  # moved, not duplicated
        "ABCD0000E002": ("olt1", "0/1/1", ""),
        "ABCD0000E005": ("olt2", "0/1/0", "F660"),
        "ABCD0000E006": ("olt2", "0/1/0", ""),
    }

    # a CSR may list but not import
    csr_file = tmp_path / "csr.csv"
    csr_file.write_text("serial,olt,pon_port\nABCD0000E007,olt1,0/1/1\n")
    r = await ponctl(d, "onts", "import", str(csr_file), token=CSR)
    assert r.exit_code == 1
    assert "admin role" in r.output
    assert "ABCD0000E007" not in await ours(d.store)
    listed = as_json(await ponctl(d, "onts", "list", "--olt", "olt2", "-o", "json",
                                  token=CSR))
    assert {o["serial"]: (o["pon_port"], o["state"]) for o in listed["onts"]
            if o["serial"].startswith("ABCD")} == {"ABCD0000E005": ("0/1/0", "imported"),
                                                   "ABCD0000E006": ("0/1/0", "imported")}
    assert {o["olt"] for o in listed["onts"]} == {"olt2"}
    r = await ponctl(d, "onts", "list", token=CSR)
    assert r.exit_code == 0, r.output
    assert "ABCD0000E001" in r.stdout
    assert "0/1/3" in r.stdout

    # a file that cannot be used at all is refused before anything is sent
    bad = tmp_path / "header.csv"
    bad.write_text("serial,olt\nABCD0000E008,olt1\n")
    r = await ponctl(d, "onts", "import", str(bad))
    assert r.exit_code == 1
    assert "missing column(s) pon_port" in r.stderr


async def test_import_route_rejects_rows_and_refuses_bad_requests(
        lines_agent: tuple[Daemon, Client]) -> None:
    d, c = lines_agent
    rows = [{"serial": "ABCD0000E101", "olt": "olt1", "pon_port": "0/1/1", "model": "<b>\"x\""},
            {"serial": "<x/>", "olt": "olt1", "pon_port": "0/1/1"},
            {"serial": 'ABCD"0000E102', "olt": "olt1", "pon_port": "0/1/1"},
            {"serial": "ABCD0000E103\nreboot", "olt": "olt1", "pon_port": "0/1/1"},
            {"serial": "ABCD0000E104", "olt": "olt1;reboot", "pon_port": "0/1/1"},
            {"serial": "ABCD0000E105", "olt": "olt1", "pon_port": "0/1/1",
             "firmware": "V1\r\nreboot"},
            {"serial": "abcd0000e101", "olt": "olt1", "pon_port": "0/1/1"}]
    code, body = await c.call("POST", IMPORT_ROUTE, body={"rows": rows})
    assert code == 200, body
    assert [(r["index"], r["result"]) for r in body["rows"]] == [
        (0, "created"), (1, "rejected"), (2, "rejected"), (3, "rejected"), (4, "rejected"),
        (5, "rejected"), (6, "rejected")]
    assert [[x["field"] for x in r["reasons"]] for r in body["rows"][1:]] == [
        ["rows[1].serial"], ["rows[2].serial"], ["rows[3].serial"], ["rows[4].olt"],
        ["rows[5].firmware"], ["rows[6].serial"]]
    assert "row 0 of this request" in body["rows"][6]["reasons"][0]["error"]
    assert body["rows"][6]["serial"] == "ABCD0000E101"  # valid, only twice
    assert body["counts"] == {"created": 1, "moved": 0, "updated": 0, "unchanged": 0,
                              "rejected": 6}
    text = json.dumps(body).lower()  # the serial rule upper-cases: compare without case
    for echoed in ("<x/>", "reboot", 'abcd\\"0000', "olt1;"):
        assert echoed not in text, echoed
    # quotes and markup are fine as model text: stored as data
    assert await ours(d.store) == {"ABCD0000E101": ("olt1", "0/1/1", '<b>"x"')}

    good = {"rows": [{"serial": "ABCD0000E110", "olt": "olt1", "pon_port": "0/1/1"}]}
    # role enforcement on the new admin routes
    for method, path in (("POST", IMPORT_ROUTE), ("POST", "/objects/obj-1/unbind")):
        assert (await c.call(method, path, None, body=good))[0] == 401
        assert (await c.call(method, path, "not-a-token", body=good))[0] == 401
        code, err = await c.call(method, path, CSR, body=good)
        assert code == 403, (path, err)
        assert "admin" in err["error"]
    # the new reads: any known token
    for path in ("/objects", "/catalog", "/catalog/resolve?isp=a&service_type=b&olt=c"):
        assert (await c.call("GET", path, None))[0] == 401
        assert (await c.call("GET", path, CSR))[0] == 200
    assert (await c.call("GET", "/objects/obj-1/history", CSR))[0] == 404

    # malformed requests store nothing, name the field, never echo the value
    too_many = {"rows": [{"serial": f"ABCD0001{i:04X}", "olt": "olt1", "pon_port": "0/1/1"}
                         for i in range(MAX_IMPORT_ROWS + 1)]}
    refusals: list[tuple[Any, int, str]] = [
        (too_many, 422, "rows"),
        ({"rows": []}, 422, "rows"),
        ({"rows": [{**good["rows"][0], "owner": "<evil-marker/>"}]}, 422, "rows[0].owner"),
        ({"rows": [{**good["rows"][0], "model": 7}]}, 422, "rows[0].model"),
        ({"rows": [{"serial": "ABCD0000E110", "olt": "olt1"}]}, 422, "rows[0].pon_port"),
        ({"rows": good["rows"], "dry_run": True}, 422, "dry_run"),
    ]
    for payload, want, field in refusals:
        code, err = await c.call("POST", IMPORT_ROUTE, body=payload)
        assert (code, err["field"]) == (want, field), (field, err)
        assert "evil-marker" not in json.dumps(err)
    big = json.dumps({"rows": [{**good["rows"][0], "model": "m" * 60}] * 10}).encode()
    big += b" " * (IMPORT_MAX_BODY + 1 - len(big))
    for raw, want, chunked in ((big, 413, False), (big, 413, True), (b"{not json", 400, False),
                               (b"[]", 400, False), (b"", 400, False)):
        code, err, _ = await post_raw(c, IMPORT_ROUTE, raw, chunked=chunked)
        assert (code, err["field"]) == (want, "body"), (raw[:20], err)
    assert set(await ours(d.store)) == {"ABCD0000E101"}

    # the OpenAPI document lists the new routes
    code, doc = await c.call("GET", "/openapi.json", None)
    assert code == 200
    assert doc["paths"]["/api/v1/onts/import"]["post"]["x-role"] == "admin"
    assert doc["paths"]["/api/v1/objects/{object_id}/unbind"]["post"]["x-role"] == "admin"
    assert {p["name"] for p in doc["paths"]["/api/v1/catalog/resolve"]["get"]["parameters"]} \
        == {"isp", "service_type", "olt"}


async def test_objects_through_the_cli_with_the_csr_refused_for_writes(
        lines_agent: tuple[Daemon, Client]) -> None:
    d, c = lines_agent
    assert d.store is not None
    r = await ponctl(d, "objects", "create", "obj-1", "12 Fibre Lane, flat 1", token=CSR)
    assert r.exit_code == 1
    assert "admin role" in r.output
    assert await d.store.list_objects() == ()
    made = as_json(await ponctl(d, "objects", "create", "obj-1", "12 Fibre Lane, flat 1",
                                "-o", "json"))
    assert (made["id"], made["serial"]) == ("obj-1", None)
    r = await ponctl(d, "objects", "create", "obj-2", "[bold]Flat[/bold] 2 <b>")
    assert r.exit_code == 0, r.output
    assert "[bold]Flat[/bold] 2 <b>" in r.stdout  # shown as written, not as markup

    r = await ponctl(d, "objects", "bind", "obj-1", "  abcd0000e201 ")  # as a scanner types
    assert r.exit_code == 0, r.output
    assert "ONT ABCD0000E201 bound to object obj-1" in r.stdout
    r = await ponctl(d, "objects", "bind", "obj-1", "ABCD0000E201")
    assert "already bound" in r.stdout
    r = await ponctl(d, "objects", "bind", "obj-2", "ABCD0000E201", "--move", token=CSR)
    assert r.exit_code == 1
    assert "admin role" in r.output
    r = await ponctl(d, "objects", "bind", "obj-2", "ABCD0000E201")
    assert r.exit_code == 1
    assert "already bound to object 'obj-1'" in r.output
    r = await ponctl(d, "objects", "bind", "obj-2", "ABCD0000E201", "--move")
    assert r.exit_code == 0, r.output
    assert "moved from object obj-1 to obj-2" in r.stdout
    r = await ponctl(d, "objects", "bind", "obj-1", "<x/>;quit")
    assert r.exit_code == 1
    assert "serial" in r.output
    assert "quit" not in r.output

    listed = as_json(await ponctl(d, "objects", "list", "-o", "json", token=CSR))
    assert [(o["id"], o["serial"]) for o in listed["objects"]] == [
        ("obj-1", None), ("obj-2", "ABCD0000E201")]
    r = await ponctl(d, "objects", "list", token=CSR)
    assert r.exit_code == 0, r.output
    assert "Objects (2)" in r.stdout
    assert "ABCD0000E201" in r.stdout

    shown = as_json(await ponctl(d, "objects", "show", "obj-2", "-o", "json", token=CSR))
    assert (shown["serial"], shown["ont"]) == ("ABCD0000E201", None)  # not imported yet
    assert [h["action"] for h in shown["history"]] == ["moved-in"]
    code, _ = await c.call("POST", IMPORT_ROUTE, body={"rows": [
        {"serial": "ABCD0000E201", "olt": "olt1", "pon_port": "0/1/5"}]})
    assert code == 200
    r = await ponctl(d, "objects", "show", "obj-2", token=CSR)
    assert r.exit_code == 0, r.output
    assert "olt1 0/1/5" in r.stdout
    assert "imported" in r.stdout
    assert "Binding history" in r.stdout
    first = as_json(await ponctl(d, "objects", "show", "obj-1", "-o", "json"))
    assert [h["action"] for h in first["history"]] == ["bound", "moved-out"]

    r = await ponctl(d, "objects", "unbind", "obj-2", token=CSR)
    assert r.exit_code == 1
    assert "admin role" in r.output
    assert await d.store.binding_of_serial("ABCD0000E201") is not None
    r = await ponctl(d, "objects", "unbind", "obj-2")
    assert r.exit_code == 0, r.output
    assert "ONT ABCD0000E201 unbound from object obj-2" in r.stdout
    assert await d.store.binding_of_serial("ABCD0000E201") is None
    r = await ponctl(d, "objects", "unbind", "obj-2")
    assert "had no ONT bound" in r.stdout
    r = await ponctl(d, "objects", "unbind", "obj-9")
    assert r.exit_code == 1
    assert "does not exist" in r.output
    r = await ponctl(d, "objects", "show", "obj-9", token=CSR)
    assert r.exit_code == 1
    code, err = await c.call("POST", "/objects/obj%3B1/unbind")
    assert (code, err["field"]) == (400, "object_id")


async def test_catalog_through_the_api(lines_agent: tuple[Daemon, Client]) -> None:
    d, c = lines_agent
    r = await ponctl(d, "catalog", "show", token=CSR)
    assert r.exit_code == 0, r.output
    for text in ("fibrenet", "speedy", "tdp-1G", "1000-1009, 2000, 3000", "tagged"):
        assert text in r.stdout, text
    # the agent's catalog is the file it loaded: both modes print the same JSON
    via_api = as_json(await ponctl(d, "catalog", "show", "-o", "json", token=CSR))
    from_file = as_json(await ponctl(d, "catalog", "show", "-o", "json", "--file",
                                     str(REPO / "configs" / "catalog.yaml")))
    assert via_api == from_file
    assert [i["code"] for i in via_api["isps"]] == ["fibrenet", "speedy"]

    r = await ponctl(d, "catalog", "resolve", "speedy", "iptv", "olt1", token=CSR)
    assert r.exit_code == 2, r.output
    assert ("configuration missing: ISP 'speedy' has no VLAN for service type 'iptv'"
            in r.stdout)
    ok = as_json(await ponctl(d, "catalog", "resolve", "fibrenet", "internet", "olt1",
                              "-o", "json", token=CSR))
    assert (ok["resolved"], ok["c_vlan"], ok["s_vlan"], ok["uplink"]) == (
        True, 100, 1000, "0/9/0")
    assert ok["bandwidth_profile"]["name"] == "tdp-1G"
    code, gap = await c.call("GET", "/catalog/resolve?isp=fibrenet&service_type=voip&olt=olt2",
                             CSR)
    assert (code, gap["resolved"]) == (200, False)
    assert [m["kind"] for m in gap["missing"]] == ["network-service-missing"]

    for query, field in (("isp=%3Cx%2F%3E&service_type=iptv&olt=olt1", "isp"),
                         ("isp=speedy&service_type=iptv%0Areboot&olt=olt1", "service_type"),
                         ("isp=speedy&service_type=iptv", "olt")):
        code, err = await c.call("GET", f"/catalog/resolve?{query}", CSR)
        assert (code, err["field"]) == (400, field), (query, err)
        assert "<x/>" not in err["error"]
        assert "reboot" not in err["error"]
    r = await ponctl(d, "catalog", "resolve", "sp eedy", "iptv", "olt1", token=CSR)
    assert r.exit_code == 1
    assert "isp" in r.output


async def test_the_cli_says_where_it_looked_for_the_agent() -> None:
    env = {"PONCTL_API": "http://127.0.0.1:9", "PONCTL_TOKEN": ADMIN}  # nothing listens there
    for args in (["onts", "list"], ["objects", "list"], ["catalog", "show"]):
        r = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
        assert r.exit_code == 1, args
        assert "cannot reach the agent at http://127.0.0.1:9" in r.output


async def test_a_large_file_goes_in_several_requests(lines_agent: tuple[Daemon, Client],
                                                     tmp_path: Path) -> None:
    """2,600 rows: six requests of at most 500 (the default --chunk); all stored, once."""
    d, _ = lines_agent
    big = tmp_path / "big.csv"
    big.write_text("serial,olt,pon_port,model,firmware,vendor\n" + "".join(
        f"ABCD0002{i:04X},olt{1 + i % 2},0/1/{i % 8},Model \"{i}\" <x>,V{i},Vendor\n"
        for i in range(2600)))
    r = await ponctl(d, "onts", "import", str(big), "-o", "json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert len(report["imported"]) == 2600
    assert report["rejected"] == []
    assert [x["line"] for x in report["imported"]] == list(range(2, 2602))
    good = parse_onts_csv(big).good
    assert [len(part) for part in chunks(good, CHUNK_ROWS)] == [500] * 5 + [100]
    # a request also stays within a byte budget (the route's body limit), whatever --chunk says
    budget = 50_000
    parts = list(chunks(good, MAX_IMPORT_ROWS, budget=budget))
    assert len(parts) > 3
    assert sum(len(part) for part in parts) == 2600
    assert all(len(json.dumps({"rows": [_row_json(r) for _, r in part]})) <= budget + 16
               for part in parts)
    stored = await ours(d.store, "ABCD0002")
    assert len(stored) == 2600
    assert stored["ABCD00020007"] == ("olt2", "0/1/7", 'Model "7" <x>')
