"""Bad input, counted: a table-driven corpus by category. Each case gets a clear error; nothing is
stored (the store's counts are unchanged), nothing reaches a device (the simulated OLT's running
configuration is unchanged), and the daemon / simulator / receiver still answer afterwards. The
count of cases by category is written to bench/results/reliability.json (and printed).

Categories: api (HTTP bodies and paths), cli (``ponctl`` against the daemon), config-files
(catalog and settings files), device-replies (a hostile NETCONF server and SNMP agent stub on
loopback, speaking raw bytes to the drivers), simulator-requests (raw NETCONF to the simulator),
snmp-packets (scapy-crafted and garbage datagrams to the TrapReceiver and the simulator's agent).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncssh
import pytest
import yaml
from scapy.asn1.asn1 import ASN1_OID, ASN1_STRING
from scapy.layers.snmp import SNMP, SNMPget, SNMPresponse, SNMPset, SNMPvarbind
from typer.testing import CliRunner

from agent.catalog import CatalogError, load_catalog
from agent.cli import app
from agent.settings import SettingsError, load_settings
from drivers.errors import DriverError
from drivers.netconf import NetconfDriver
from drivers.snmp import SnmpDriver, TrapReceiver
from drivers.snmp.target import SnmpTarget
from drivers.ssh_transport import SshTarget
from simulator.lab import Lab
from tests.agent.lines_env import ADMIN, PAST, Client
from tests.conftest import REPO
from tests.drivers.test_snmp_traps import GARBAGE, scapy_trap
from tests.reliability.sec_env import secret_agent

COUNTS: Counter[str] = Counter()
RESULTS = REPO / "bench" / "results" / "reliability.json"
HWTC = "HWTC1A2B3C4D"
BILLION = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
           + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                     for i in range(1, 10))
           + ']>')
XXE = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    out = {"bad_input_cases": dict(sorted(COUNTS.items())), "total": sum(COUNTS.values())}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print("bad-input cases by category:", json.dumps(out))


# ---- api and cli: one daemon ---------------------------------------------------------------------
LONG = "x" * 5000
NASTY = ["<x/>", 'a"b', "a'b", "a\nb", "a;b", "a|b", "a#b", "quit\nundo ont", "\u202eevil",
         "\x00", "]]>]]>", "&lol;"]
OBJ = {"id": "obj-ok", "address": "1 Good Road"}
ORDER = {"object_id": "obj-ok", "isp": "fibrenet", "service_type": "internet", "start_at": PAST}
API_CASES: list[tuple[str, str, Any, tuple[int, ...]]] = [
    *[("POST", "/objects", {"id": v, "address": "x"}, (400, 422)) for v in [*NASTY, LONG, ""]],
    ("POST", "/objects", {"id": "obj-x", "address": LONG}, (413, 422)),
    ("POST", "/objects", {"id": "obj-x", "address": "a\nb"}, (422,)),
    ("POST", "/objects", {"id": "obj-x"}, (422,)),
    ("POST", "/objects", {"id": 5, "address": "x"}, (422,)),
    ("POST", "/objects", "not json{", (400, 422)),
    ("POST", "/objects", [1, 2], (400, 422)),
    *[("POST", "/objects/obj-ok/bind", {"serial": s}, (404, 422)) for s in
      ("HWTC1A2B3C4", "HWTC1A2B3C4DX", "hwtc<1a2b3c4", "HWTC1A2B3C4;",
       "\uff28\uff37\uff34\uff231A2B3C4D", "", 12)],
    *[("POST", "/orders", {**ORDER, k: v}, (404, 409, 422)) for k, v in
      (("isp", "<isp/>"), ("isp", "fibre\nnet"),
       ("service_type", "internet;vlan 5"), ("start_at", "tomorrow"), ("object_id", "obj;x"),
       ("isp", LONG), ("start_at", None))],
    ("POST", "/subscribers", {"code": "SUB<1>", "name": "x"}, (422,)),
    ("POST", "/subscribers", {"code": "SUB-1", "name": LONG}, (413, 422)),
    ("POST", "/subscribers", {"code": "SUB-1", "name": "a\r\nb"}, (422,)),
    ("POST", "/lines", {"code": "LOS 1;"}, (422,)),
    ("POST", "/lines", {"code": "LOS-1", "subscriber": "nobody"}, (404, 422)),
    ("POST", "/gateways", {"name": "gw<x>", "gateway_class": "sim-n", "address": "127.0.0.1",
                           "ont_serial": HWTC}, (422,)),
    ("POST", "/gateways", {"name": "gw-x", "gateway_class": "nope", "address": "127.0.0.1",
                           "ont_serial": HWTC}, (404, 422)),
    ("POST", "/gateways", {"name": "gw-x", "gateway_class": "sim-n", "address": "1.2.3.4;ls",
                           "ont_serial": HWTC}, (422,)),
    ("GET", "/onts/HWTC%0A1A2B3C4D", None, (400, 404, 422)),
    ("GET", "/orders/%3Cx%3E", None, (400, 404, 422)),
    ("GET", "/catalog/resolve?isp=%3Cx%3E&service_type=internet", None, (400, 404, 422)),
]


async def _counts(c: Client) -> dict[str, int]:
    out = {}
    # (not /onts: discovery records the ONTs the OLTs report while the test runs)
    for path in ("/orders", "/objects", "/lines", "/gateways", "/subscribers"):
        status, body = await c.call("GET", path, ADMIN)
        assert status == 200, (path, body)
        out[path] = len(next(v for v in body.values() if isinstance(v, list)))
    return out


@pytest.mark.timeout(120)
async def test_api_and_cli_refuse_bad_input(tmp_path: Path) -> None:
    async with secret_agent(tmp_path) as (lab, d, c):
        assert (await c.call("POST", "/objects", body=OBJ))[0] == 201
        assert (await c.call("POST", "/subscribers", body={"code": "SUB-DUP", "name": "A"}))[0] \
            == 201
        olts = {n: o.running for n, o in lab.olts.items()}
        before = await _counts(c)
        for method, path, body, codes in API_CASES:
            if isinstance(body, str):
                async with c.session.post(c.base + path, data=body, headers={
                        "Authorization": f"Bearer {ADMIN}"}) as resp:
                    status, got = resp.status, await resp.json()
            else:
                status, got = await c.call(method, path, ADMIN, body)
            assert status in codes, (path, body if not isinstance(body, dict)
                                     else {k: str(v)[:40] for k, v in body.items()}, got)
            assert isinstance(got, dict)
            assert got.get("error"), got
            COUNTS["api"] += 1
        # duplicate codes
        status, got = await c.call("POST", "/subscribers", ADMIN, {"code": "SUB-DUP",
                                                                   "name": "B"})
        assert status == 409, got
        COUNTS["api"] += 1
        assert await _counts(c) == before

        env = {"PONCTL_API": f"http://127.0.0.1:{d.port}", "PONCTL_TOKEN": ADMIN,
               "COLUMNS": "200"}
        cli_cases = [
            ["objects", "create", "obj;1", "x"], ["objects", "create", "obj-c", "a\nb"],
            ["objects", "create", "obj-c", LONG], ["objects", "bind", "obj-ok", "HWTC<x>"],
            ["objects", "bind", "obj-ok", "HWTC1A2B3C4D;undo"],
            ["orders", "create", "--object", "obj-ok", "--isp", "fibre;net",
             "--service-type", "internet"],
            ["orders", "create", "--object", "obj-ok", "--isp", "fibrenet",
             "--service-type", "<x/>"],
            ["orders", "create", "--object", "obj-ok", "--isp", "fibrenet",
             "--service-type", "internet", "--start", "tomorrow"],
            ["subscribers", "create", "SUB-DUP", "Again"],
            ["subscribers", "create", "SUB\n2", "x"], ["lines", "create", "LOS|1"],
            ["gateways", "register", "gw-c", "--class", "sim-n", "--address", "x;y",
             "--ont", HWTC],
        ]
        for args in cli_cases:
            r = await asyncio.to_thread(CliRunner().invoke, app, args, env=env)
            assert r.exit_code != 0, (args, r.output)
            assert r.exception is None or isinstance(r.exception, SystemExit), (args, r.output)
            assert r.output.strip(), args  # a message, not silence
            assert "Traceback" not in r.output, r.output
            COUNTS["cli"] += 1
        assert await _counts(c) == before
        # Unknown ISP / service type, well-formed: refused (422, the field named, the
        # catalog's names listed), nothing stored. A known ISP lacking a VLAN for a known
        # service type is a catalog gap instead: stored, waiting as configuration missing.
        for isp, stype, field in (("nonet", "internet", "isp"), ("fibrenet", "fax",
                                                                  "service_type")):
            status, got = await c.call("POST", "/orders", ADMIN,
                                       {**ORDER, "isp": isp, "service_type": stype})
            assert (status, got["field"]) == (422, field), got
            assert "the catalog has" in got["error"]
            COUNTS["api"] += 1
        assert await _counts(c) == before
        status, got = await c.call("POST", "/orders", ADMIN,
                                   {**ORDER, "isp": "speedy", "service_type": "iptv"})
        assert status == 201, got
        assert (got["status"], got["error_class"]) == ("awaiting-prerequisites",
                                                       "configuration-missing"), got
        assert any("speedy" in p and "iptv" in p for p in got["prerequisites"]), got
        assert all(lab.olts[n].running is run for n, run in olts.items())
        async with c.session.get(c.base.removesuffix("/api/v1") + "/healthz") as resp:
            assert resp.status == 200


# ---- config files ------------------------------------------------------------------------------
def _catalog(**change: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "configs" / "catalog.yaml").read_text())
    for dotted, value in change.items():
        *parents, leaf = dotted.split("__")
        node = data
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[leaf] = value
    return data


CATALOG_CASES: list[tuple[str, str]] = [
    *[(yaml.safe_dump(_catalog(isps__0__services__internet__c_vlan=v)), "c_vlan")
      for v in (0, 4095, 5000, "text", -1, 1.5)],
    *[(yaml.safe_dump(_catalog(isps__0__services__internet__s_vlan=v)), "s_vlan")
      for v in (0, 4095, "100; undo")],
    (yaml.safe_dump(_catalog(isps__1__code="fibrenet")), "fibrenet"),  # duplicate ISP code
    (yaml.safe_dump(_catalog(isps__0__code="fibre<net>")), "code"),
    (yaml.safe_dump(_catalog(isps__0__code="fibre\nnet")), "code"),
    (yaml.safe_dump(_catalog(isps__0__name="x" * 5000)), "name"),
    (yaml.safe_dump(_catalog(isps__0__extra="?")), "extra"),
    ("isps: [\n", "YAML"),
    ("- just\n- a list\n", ""),
    ("isps: {a: 1, a: 2}\n", ""),  # duplicate key
    ("!!python/object/apply:os.system ['echo pwned']\n", ""),
    ("\x00\x01binary", ""),
]


def test_config_files_are_refused_naming_file_and_field(tmp_path: Path) -> None:
    for i, (text, field) in enumerate(CATALOG_CASES):
        path = tmp_path / f"catalog-{i}.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(CatalogError) as err:
            load_catalog(path)
        assert str(path) in str(err.value), err.value
        assert field in str(err.value), (field, str(err.value)[:300])
        COUNTS["config-files"] += 1
    good = yaml.safe_load((REPO / "configs" / "agent.yaml").read_text())
    settings_cases: list[tuple[Any, str]] = [
        ({**good, "devices": [{**good["devices"][0], "name": "olt<1>"}]}, "name"),
        ({**good, "devices": [{**good["devices"][0], "port": 70000}]}, "port"),
        ({**good, "devices": [{**good["devices"][0], "address": "1.2.3.4; rm"}]}, "address"),
        ({**good, "devices": [{**good["devices"][0], "profile": "../../etc/passwd"}]},
         "profile"),
        ({**good, "devices": [{**good["devices"][0], "protocol": "telnet"}]}, "protocol"),
        ({**good, "unknown_key": 1}, "unknown_key"),
        ("devices: [", "YAML"),
    ]
    for i, (data, field) in enumerate(settings_cases):
        path = tmp_path / f"agent-{i}.yaml"
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
        with pytest.raises(SettingsError) as serr:
            load_settings(path)
        assert str(path) in str(serr.value), serr.value
        assert field in str(serr.value), (field, str(serr.value)[:300])
        COUNTS["config-files"] += 1


# ---- device replies: hostile stubs ---------------------------------------------------------------
HELLO_10 = (b'<?xml version="1.0"?><hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
            b"<capabilities><capability>urn:ietf:params:netconf:base:1.0</capability>"
            b"</capabilities><session-id>1</session-id></hello>]]>]]>")
HELLO_11 = HELLO_10.replace(b"base:1.0</capability>", b"base:1.1</capability>")
REPLY = ('<rpc-reply xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="{mid}">'
         '<data>&lol9;</data></rpc-reply>')
HOSTILE: list[tuple[str, bytes, bytes | None]] = [  # (case, hello, reply to the first rpc)
    ("hello with billion laughs", (BILLION + "<hello>&lol9;</hello>]]>]]>").encode(), None),
    ("hello with an external entity",
     (XXE + '<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>'
      "<capability>&x;</capability></capabilities></hello>]]>]]>").encode(), None),
    ("hello not XML", b"hello, client]]>]]>", None),
    ("hello truncated", HELLO_10[:60], None),
    ("hello never ends", HELLO_10[:-6] + b"A" * 200_000, None),
    ("reply with billion laughs", HELLO_10, (BILLION + REPLY).encode() + b"]]>]]>"),
    ("reply with an external entity", HELLO_10,
     (XXE + REPLY.replace("&lol9;", "&x;")).encode() + b"]]>]]>"),
    ("reply garbage chunk header", HELLO_11, b"\n#abc\n<rpc-reply/>\n##\n"),
    ("reply huge chunk size", HELLO_11, b"\n#99999999999999\n<rpc-reply/>"),
    ("reply chunk truncated", HELLO_11, b"\n#500\n<rpc-reply message-id="),
    ("reply not XML", HELLO_10, b"\x00\xff garbage ]]>]]>"),
    ("reply half then close", HELLO_10, b"<rpc-reply xmlns=\"urn:ietf:params:xml:ns:netco"),
]


class _Stub(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return True


async def _hostile_netconf(key: asyncssh.SSHKey, hello: bytes,
                           reply: bytes | None) -> asyncssh.SSHAcceptor:
    async def handle(process: asyncssh.SSHServerProcess[bytes]) -> None:
        try:
            process.stdout.write(hello)
            if reply is not None:
                seen = b""
                while b"<rpc" not in seen.split(b"</hello>", 1)[-1]:
                    chunk = await process.stdin.read(65536)
                    if not chunk:
                        return
                    seen += chunk
                mid = re.search(rb'message-id="([^"]+)"', seen.split(b"</hello>", 1)[-1])
                process.stdout.write(reply.replace(b"{mid}", mid[1] if mid else b"1"))
            await asyncio.sleep(0.3)
        except (asyncssh.Error, OSError, BrokenPipeError):
            pass
        finally:
            process.exit(0)

    return await asyncssh.create_server(_Stub, "127.0.0.1", 0, server_host_keys=[key],
                                        process_factory=handle, encoding=None,
                                        allow_pty=False)


@pytest.mark.timeout(90)
async def test_hostile_device_replies_are_errors_not_crashes_or_expansions() -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    for case, hello, reply in HOSTILE:
        server = await _hostile_netconf(key, hello, reply)
        port = server.sockets[0].getsockname()[1]
        target = SshTarget("127.0.0.1", port, username="u", password="p", timeout=2.0,
                           known_hosts_text=f"[127.0.0.1]:{port} "
                           f"{key.export_public_key().decode()}")
        driver = NetconfDriver(target)
        try:
            async def session(d: NetconfDriver = driver) -> None:
                await d.connect()
                await d.get_config()

            with pytest.raises(DriverError) as err:
                await session()
            assert str(err.value), case
            assert "lollollol" not in str(err.value), case
            assert "root:" not in str(err.value), case
        finally:
            await driver.close()
            server.close()
            await server.wait_closed()
        COUNTS["device-replies"] += 1

    # a hostile SNMP agent: answers every request with garbage, a wrong request-id, a
    # truncated response, a response with a billion-laughs-sized OID
    loop = asyncio.get_running_loop()
    answers: list[tuple[str, Any]] = [
        ("garbage", lambda req: b"\x30\x84\xff\xff\xff\xff\x02\x01\x01"),
        ("wrong request id", lambda req: bytes(SNMP(community="public", PDU=SNMPresponse(
            id=int(SNMP(req).PDU.id.val) + 1)))),
        ("truncated response", lambda req: bytes(SNMP(community="public", PDU=SNMPresponse(
            id=int(SNMP(req).PDU.id.val), varbindlist=[SNMPvarbind(
                oid=ASN1_OID("1.3.6.1.2.1.1.5.0"), value=ASN1_STRING(b"x" * 100))])))[:-20]),
        ("echo of the request", lambda req: req),
    ]
    for _case, answer in answers:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.setblocking(False)

            async def serve(s: socket.socket = sock, a: Any = answer) -> None:
                while True:
                    data, peer = await loop.sock_recvfrom(s, 65535)
                    try:
                        out = a(data)
                    except Exception:  # noqa: BLE001 - a stub: a request it cannot parse
                        out = b"\x00"
                    await loop.sock_sendto(s, out, peer)

            task = asyncio.create_task(serve())
            snmp = SnmpDriver(SnmpTarget("127.0.0.1", sock.getsockname()[1],
                                         community="public", timeout=0.3, retries=0))
            try:
                async def poll(d: SnmpDriver = snmp) -> None:
                    await d.connect()
                    await d.get_config("1.3.6.1.2.1.1")

                with pytest.raises(DriverError):
                    await poll()
            finally:
                await snmp.close()
                task.cancel()
        COUNTS["device-replies"] += 1


# ---- requests to the simulator -------------------------------------------------------------------
RPC = '<rpc xmlns="urn:ietf:params:xml:ns:netconf:base:1.0" message-id="{n}">{body}</rpc>'
EDIT = ('<edit-config><target><running/></target><config><interfaces xmlns='
        '"urn:ietf:params:xml:ns:yang:ietf-interfaces"><interface><name>{name}</name>'
        '<description>{desc}</description></interface></interfaces></config></edit-config>')
SIM_REQUESTS = [
    (BILLION + RPC.format(n=1, body=EDIT.format(name="x", desc="&lol9;"))).encode(),
    (XXE + RPC.format(n=2, body=EDIT.format(name="x", desc="&x;"))).encode(),
    RPC.format(n=3, body=EDIT.format(name="ont]]>]]>", desc="x")).encode(),
    RPC.format(n=4, body=EDIT.format(name="a\nquit", desc="<!--")).encode(),
    RPC.format(n=5, body="<get-config><source><running/></source>").encode(),  # unclosed
    RPC.format(n=6, body="<kill-session><session-id>0</session-id></kill-session>").encode(),
    b"\x00\xff\xfe not xml at all",
    RPC.format(n=8, body=EDIT.format(name="x" * 100_000, desc="x")).encode(),
]


@pytest.mark.timeout(60)
async def test_hostile_requests_to_the_simulator_are_refused(lab: Lab) -> None:
    olt = lab.olts["olt1"]
    base = olt.running
    port = olt.ports["netconf"]
    creds = olt.credentials
    for request in SIM_REQUESTS:
        async with asyncssh.connect("127.0.0.1", port, username=creds.username,
                                    password=creds.password, known_hosts=None,
                                    client_keys=None, agent_path=None) as conn:
            writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
            writer.write(HELLO_10 + request + b"]]>]]>")
            got = b""
            try:
                while got.count(b"]]>]]>") < 2:
                    chunk = await asyncio.wait_for(reader.read(65536), 3.0)
                    if not chunk:
                        break
                    got += chunk
            except TimeoutError:
                pass
            writer.close()
            reply = got.split(b"]]>]]>")[1] if got.count(b"]]>]]>") >= 2 else b""
            assert reply == b"" or b"<rpc-error>" in reply, reply[:300]
            assert b"lollollol" not in got
            assert b"root:" not in got
            COUNTS["simulator-requests"] += 1
    # garbage framing in 1.1 chunked mode
    for garbage in (b"\n#abc\n", b"\n#0\n", b"\n#99999999999999\n<x/>", b"\n#5\nab"):
        async with asyncssh.connect("127.0.0.1", port, username=creds.username,
                                    password=creds.password, known_hosts=None,
                                    client_keys=None, agent_path=None) as conn:
            writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
            writer.write(HELLO_11 + garbage)
            async def drain(r: Any = reader) -> None:
                while await asyncio.wait_for(r.read(65536), 1.0):
                    pass
                raise TimeoutError  # closed by the server: fine

            with pytest.raises((TimeoutError, asyncssh.Error)):
                await drain()
            writer.close()
        COUNTS["simulator-requests"] += 1
    assert olt.running is base or olt.running.same(base)
    key = lab.host_keys["olt1"].export_public_key().decode()
    async with NetconfDriver(SshTarget("127.0.0.1", port, username=creds.username,
                                       password=creds.password,
                                       known_hosts_text=f"[127.0.0.1]:{port} {key}")) as d:
        assert (await d.get_config()).data is not None  # still answering


# ---- SNMP packets --------------------------------------------------------------------------------
def _crafted() -> list[bytes]:
    oid = "1.3.6.1.2.1.1.5.0"
    return [
        *GARBAGE,
        bytes(SNMP(version=7, community="public", PDU=SNMPget(id=1, varbindlist=[
            SNMPvarbind(oid=ASN1_OID(oid))]))),
        bytes(SNMP(community="public", PDU=SNMPget(id=2, varbindlist=[
            SNMPvarbind(oid=ASN1_OID("1." + ".".join(["4294967295"] * 120)))]))),
        bytes(SNMP(community="x" * 1000, PDU=SNMPget(id=3))),
        bytes(SNMP(community="public", PDU=SNMPset(id=4, varbindlist=[
            SNMPvarbind(oid=ASN1_OID(oid), value=ASN1_STRING(b"<x/>\n;undo"))]))),
        bytes(SNMP(community="public", PDU=SNMPget(id=5, varbindlist=[
            SNMPvarbind(oid=ASN1_OID(oid))] * 500)))[:1400],
        scapy_trap("public")[:-5],
        scapy_trap("public", b"\xff\xfe<x/>;\n" * 20),
        b"",
    ]


async def _exchange(port: int, datagram: bytes, wait: float = 0.15) -> bytes | None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        await loop.sock_sendto(sock, datagram, ("127.0.0.1", port))
        try:
            reply, _ = await asyncio.wait_for(loop.sock_recvfrom(sock, 65535), wait)
        except TimeoutError:
            return None
        return reply


@pytest.mark.timeout(60)
async def test_malformed_snmp_packets_to_the_receiver_and_the_simulator(lab: Lab) -> None:
    olt = lab.olts["olt1"]
    base = olt.running
    async with TrapReceiver(host="127.0.0.1", port=0, communities=["public"]) as receiver:
        events = receiver.events()
        for datagram in _crafted():
            await _exchange(receiver.port, datagram, wait=0.01)
            COUNTS["snmp-packets"] += 1
        await _exchange(receiver.port, scapy_trap("public"), wait=0.01)
        event = await asyncio.wait_for(anext(events), 5.0)
        assert event.kind == "ponctlOntUp"  # the receiver still delivers a valid trap
        await events.aclose()
    port = olt.ports["snmp"]
    for datagram in _crafted():
        reply = await _exchange(port, datagram)
        if reply is not None:  # an answer must be a well-formed SNMP error, never a write
            answer = SNMP(reply)
            assert isinstance(answer.PDU, SNMPresponse)
        COUNTS["snmp-packets"] += 1
    assert olt.running is base
    async with SnmpDriver(SnmpTarget("127.0.0.1", port, community=olt.snmp.community_ro)) as d:
        [name] = (await d.get_config("1.3.6.1.2.1.1.5.0")).data
    assert name.value == "olt1"

