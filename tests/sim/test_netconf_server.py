"""The simulator's NETCONF face, driven over real SSH by independent clients.

ncclient (synchronous, paramiko) is the well-behaved client: it runs in a worker thread via
``asyncio.to_thread`` so the server's event loop keeps running. Malformed, hostile and
badly framed input is sent as raw bytes over an asyncssh channel, framed by hand here rather
than with the server's own framing code, so that a framing bug cannot cancel itself out.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncssh
import ncclient.transport.session
import pytest
from lxml import etree
from ncclient import manager
from ncclient.operations.errors import TimeoutExpiredError
from ncclient.operations.rpc import RPCError
from ncclient.transport.errors import AuthenticationError, TransportError

from simulator.config import builder as b
from simulator.config.namespaces import GW, IF, NC, VANI
from simulator.devices import Credentials, Gateway, Olt, OntState, SnmpSettings
from simulator.netconf import NetconfServer
from simulator.netconf import capabilities as caps
from simulator.netconf.state import OLT_STATE, ONU_STATES

REPO = Path(__file__).resolve().parents[2]
VALIDATE_BBF = REPO.parent / "shared" / "tools" / "validate-bbf"
CREDS = Credentials("admin", "admin")
SNMP = SnmpSettings("public", "private", "ponctl", "authkey123", "privkey123")
NOTIF = "urn:ietf:params:xml:ns:netconf:notification:1.0"
NS = {"nc": NC, "if": IF, "pos": OLT_STATE, "o": ONU_STATES, "gw": GW, "n": NOTIF,
      "vani": VANI}
ONU = b.OnuSpec("0/1/0", 1, "ABCD12345678")
SERVICE = b.ServiceSpec(ONU, 1, 100, 1000, "0/9/0", 1024, 1024, "p100")
WAIT_S = 5.0


# ---- fixtures and helpers -------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _fast_ncclient(monkeypatch: pytest.MonkeyPatch) -> None:
    # ncclient polls its send queue every TICK (0.1 s by default): 10 RPCs per second.
    monkeypatch.setattr(ncclient.transport.session, "TICK", 0.002)


@pytest.fixture
def host_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture
def olt() -> Olt:
    return Olt("olt-1", "127.0.0.1", CREDS, SNMP, frozenset({"netconf"}), ["0/1/0", "0/1/1"],
               {"0/9/0": frozenset({1000, 2000})})


@pytest.fixture
async def server(olt: Olt, host_key: asyncssh.SSHKey) -> AsyncIterator[NetconfServer]:
    srv = await NetconfServer.start(olt, "127.0.0.1", 0, host_key)
    yield srv
    await srv.close()


class Client:
    """An ncclient Manager whose blocking calls run in a worker thread."""

    def __init__(self, m: Any) -> None:
        self.m = m

    async def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self.m, name), *args, **kwargs)

    @property
    def session_id(self) -> int:
        return int(self.m.session_id)

    def close(self) -> None:
        if self.m.connected:
            try:
                self.m.close_session()
            except Exception:  # noqa: BLE001 - the session may already be gone
                self.m._session.close()


Connect = Callable[..., Any]


@pytest.fixture
async def connect(server: NetconfServer) -> AsyncIterator[Connect]:
    clients: list[Client] = []

    async def _connect(port: int | None = None, password: str = CREDS.password,
                       timeout: float = 10) -> Client:
        m = await asyncio.to_thread(
            manager.connect, host="127.0.0.1", port=port or server.port, username="admin",
            password=password, hostkey_verify=False, look_for_keys=False, allow_agent=False,
            timeout=timeout)
        client = Client(m)
        clients.append(client)
        return client

    yield _connect
    for c in clients:
        await asyncio.to_thread(c.close)


def config(*parts: list[etree._Element]) -> str:
    """An edit-config ``<config>`` from builder fragments."""
    cfg = etree.Element(f"{{{NC}}}config", nsmap={None: NC})  # type: ignore[dict-item]
    for part in parts:
        cfg.extend(part)
    return etree.tostring(cfg).decode()


def service_config(svc: b.ServiceSpec = SERVICE) -> str:
    return config(b.traffic_profile(svc.profile, 100_000_000), b.onu_registration(svc.onu),
                  b.uni_tagging(svc.onu, svc.uni, svc.c_vlan), b.olt_service(svc))


def iface_filter(name: str) -> tuple[str, str]:
    return ("subtree",
            f'<interfaces xmlns="{IF}"><interface><name>{name}</name></interface></interfaces>')


def xpath(reply: Any, expr: str) -> list[Any]:
    root = reply.data_ele if hasattr(reply, "data_ele") else reply
    result = root.xpath(expr, namespaces=NS)
    assert isinstance(result, list)
    return result


def iface_names(reply: Any) -> list[str]:
    return [str(n) for n in xpath(reply, "//if:interface/if:name/text()")]


async def eventually(check: Callable[[], Any], what: str) -> None:
    """Poll an async or sync check until it is truthy (bounded; no fixed sleeps)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Raw:
    """A hand-framed NETCONF client on an asyncssh channel, for what ncclient won't send."""

    def __init__(self, conn: asyncssh.SSHClientConnection, writer: Any, reader: Any,
                 base11: bool) -> None:
        self.conn, self.writer, self.reader, self.base11 = conn, writer, reader, base11
        self.server_hello = b""

    @classmethod
    async def open(cls, port: int, base11: bool = True) -> Raw:
        conn = await asyncssh.connect("127.0.0.1", port, username="admin", password="admin",
                                      known_hosts=None, client_keys=None, agent_path=None)
        writer, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
        raw = cls(conn, writer, reader, base11)
        raw.server_hello = await asyncio.wait_for(reader.readuntil(b"]]>]]>"), WAIT_S)
        bases = [caps.BASE_10] + ([caps.BASE_11] if base11 else [])
        hello = "".join(f"<capability>{c}</capability>" for c in bases)
        writer.write(f'<hello xmlns="{NC}"><capabilities>{hello}</capabilities></hello>'
                     "]]>]]>".encode())
        return raw

    async def send(self, message: bytes) -> None:
        if self.base11:
            self.writer.write(b"\n#%d\n" % len(message) + message + b"\n##\n")
        else:
            self.writer.write(message + b"]]>]]>")

    async def recv(self) -> etree._Element:
        return etree.fromstring(await asyncio.wait_for(self._recv(), WAIT_S))

    async def _recv(self) -> bytes:
        if not self.base11:
            return bytes(await self.reader.readuntil(b"]]>]]>"))[:-6]
        message = b""
        while True:
            assert await self.reader.readexactly(1) == b"\n"
            header = await self.reader.readuntil(b"\n")
            if header == b"##\n":
                return message
            assert header.startswith(b"#")
            message += await self.reader.readexactly(int(header[1:-1]))

    async def rpc(self, body: str, attrs: str = 'message-id="1"') -> etree._Element:
        await self.send(f'<rpc xmlns="{NC}" {attrs}>{body}</rpc>'.encode())
        return await self.recv()

    async def closed_by_server(self) -> bool:
        """True once the server has closed the channel (reads to EOF)."""
        rest = await asyncio.wait_for(self.reader.read(), WAIT_S)
        del rest
        return True

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
async def raw(server: NetconfServer) -> AsyncIterator[Callable[..., Any]]:
    opened: list[Raw] = []

    async def _open(base11: bool = True) -> Raw:
        r = await Raw.open(server.port, base11)
        opened.append(r)
        return r

    yield _open
    for r in opened:
        r.close()
        await r.conn.wait_closed()


def error_tag(reply: etree._Element) -> str:
    tags = reply.xpath("//nc:rpc-error/nc:error-tag/text()", namespaces=NS)
    assert isinstance(tags, list)
    assert tags, etree.tostring(reply).decode()
    return str(tags[0])


# ---- hello and reads ------------------------------------------------------------------------

async def test_hello_advertises_olt_capabilities(connect: Connect) -> None:
    c = await connect()
    got = set(c.m.server_capabilities)
    for cap in (caps.BASE_10, caps.BASE_11, caps.CANDIDATE, caps.CONFIRMED_COMMIT,
                caps.VALIDATE, caps.ROLLBACK_ON_ERROR, caps.STARTUP, caps.WRITABLE_RUNNING,
                caps.NOTIFICATION, caps.INTERLEAVE):
        assert cap in got
    assert ("urn:ietf:params:xml:ns:yang:ietf-interfaces?module=ietf-interfaces"
            "&revision=2018-02-20") in got
    assert any(c.startswith("urn:bbf:yang:bbf-xpon?module=bbf-xpon&") for c in got)
    assert not any("ponctl-gateway" in c for c in got)
    c2 = await connect()
    assert c2.session_id != c.session_id > 0


async def test_get_config_with_and_without_filters(connect: Connect) -> None:
    c = await connect()
    full = await c("get_config", source="running")
    names = iface_names(full)
    assert "ct-0/1/0" in names
    assert "uplink-0/9/0" in names
    assert len(names) == 9
    one = await c("get_config", source="running", filter=iface_filter("ct-0/1/1"))
    assert iface_names(one) == ["ct-0/1/1"]
    assert xpath(one, "//if:interface/if:type/text()") == ["bbf-xponift:channel-termination"]
    # Namespace-less filter elements match by local name; selection nodes pick leaves.
    names_only = await c("get_config", source="running",
                         filter=("subtree", "<interfaces><interface><name/></interface>"
                                 "</interfaces>"))
    assert iface_names(names_only) == names
    assert xpath(names_only, "//if:type") == []
    empty = await c("get_config", source="candidate",
                    filter=f'<filter xmlns="{NC}" type="subtree"/>')
    assert len(empty.data_ele) == 0
    startup = await c("get_config", source="startup", filter=iface_filter("nope"))
    assert len(startup.data_ele) == 0


async def test_get_returns_config_and_state(connect: Connect, olt: Olt) -> None:
    olt.add_ont("ABCD00000009", "0/1/1")
    c = await connect()
    reply = await c("get")
    assert "ct-0/1/0" in iface_names(reply)
    assert xpath(reply, "//pos:autofind/pos:serial/text()") == ["ABCD00000009"]
    assert xpath(reply, "//pos:system/pos:name/text()") == ["olt-1"]
    assert sorted(xpath(reply, "//pos:uplink/pos:vlan/text()")) == ["1000", "2000"]
    state_only = await c("get", filter=("subtree", f'<olt-state xmlns="{OLT_STATE}"><system>'
                                                   "<unsaved-changes/></system></olt-state>"))
    assert iface_names(state_only) == []
    assert xpath(state_only, "//pos:unsaved-changes/text()") == ["false"]


# ---- candidate, validate, commit ------------------------------------------------------------

async def test_edit_candidate_validate_commit(connect: Connect, olt: Olt) -> None:
    c = await connect()
    await c("edit_config", target="candidate", config=service_config())
    assert "ont-0/1/0-1" not in iface_names(await c("get_config", source="running"))
    assert "ont-0/1/0-1" in iface_names(await c("get_config", source="candidate"))
    await c("validate", source="candidate")
    await c("commit")
    running = await c("get_config", source="running", filter=iface_filter("ont-0/1/0-1"))
    assert xpath(running, "//vani:expected-serial-number/text()") == ["ABCD12345678"]
    assert olt.unsaved
    await c("copy_config", source="running", target="startup")
    assert not olt.unsaved
    await c("delete_config", target="startup")
    assert "ont-0/1/0-1" not in iface_names(await c("get_config", source="startup"))
    assert "ct-0/1/0" in iface_names(await c("get_config", source="startup"))


async def test_confirmed_commit_then_confirm(connect: Connect, olt: Olt) -> None:
    c = await connect()
    await c("edit_config", target="candidate", config=config(b.onu_registration(ONU)))
    await c("commit", confirmed=True, timeout="60")
    assert olt.confirm is not None
    assert "ont-0/1/0-1" in iface_names(await c("get_config", source="running"))
    await c("commit")
    assert olt.confirm is None
    assert "ont-0/1/0-1" in iface_names(await c("get_config", source="running"))


async def test_confirmed_commit_times_out_and_rolls_back(connect: Connect, olt: Olt) -> None:
    c = await connect()
    await c("edit_config", target="candidate", config=config(b.onu_registration(ONU)))
    await c("commit", confirmed=True, timeout="1")
    assert "ont-0/1/0-1" in iface_names(await c("get_config", source="running"))

    async def rolled_back() -> bool:
        reply = await c("get_config", source="running", filter=iface_filter("ont-0/1/0-1"))
        return not iface_names(reply)

    await eventually(rolled_back, "the confirmed commit to roll back")
    assert olt.confirm is None


async def test_confirmed_commit_rolls_back_when_its_session_closes(connect: Connect,
                                                                  olt: Olt) -> None:
    c = await connect()
    await c("edit_config", target="candidate", config=config(b.onu_registration(ONU)))
    await c("commit", confirmed=True, timeout="60")
    assert olt.confirm is not None
    await asyncio.to_thread(c.close)
    await eventually(lambda: olt.confirm is None, "the rollback when the session closed")
    assert olt.view.onu_by_serial(ONU.serial) is None


async def test_cancel_commit_and_persist_across_sessions(connect: Connect, olt: Olt) -> None:
    c = await connect()
    await c("edit_config", target="candidate", config=config(b.onu_registration(ONU)))
    await c("commit", confirmed=True, timeout="60")
    await c("cancel_commit")
    assert "ont-0/1/0-1" not in iface_names(await c("get_config", source="running"))
    # A persistent confirmed commit outlives its session; another one confirms it by id.
    await c("edit_config", target="candidate", config=config(b.onu_registration(ONU)))
    await c("commit", confirmed=True, timeout="60", persist="job-7")
    await asyncio.to_thread(c.close)
    other = await connect()
    with pytest.raises(RPCError) as info:
        await other("commit")
    assert info.value.tag == "invalid-value"
    await other("commit", persist_id="job-7")
    assert olt.confirm is None
    assert "ont-0/1/0-1" in iface_names(await other("get_config", source="running"))


async def test_copy_config_between_candidate_running_and_inline(connect: Connect,
                                                                olt: Olt) -> None:
    c = await connect()
    await c("edit_config", target="candidate", config=config(b.onu_registration(ONU)))
    await c("copy_config", source="candidate", target="running")
    assert olt.view.onu_by_serial(ONU.serial) is not None
    other = b.OnuSpec("0/1/1", 5, "ABCD00000005")
    await c("edit_config", target="candidate", config=config(b.onu_registration(other)))
    await c("copy_config", source="running", target="candidate")
    assert "ont-0/1/1-5" not in iface_names(await c("get_config", source="candidate"))
    # An inline <config> is checked like any commit: here its v-ani lacks the ports it names.
    inline = config(b.onu_registration(other))
    with pytest.raises(RPCError) as info:
        await c("copy_config", source=f'<source xmlns="{NC}">{inline}</source>',
                target="candidate")
    assert info.value.tag == "data-missing"
    with pytest.raises(RPCError) as info:
        await c("validate", source=etree.fromstring(inline))
    assert info.value.tag == "data-missing"
    with pytest.raises(RPCError) as info:
        await c("copy_config", source="running", target="running")
    assert info.value.tag == "invalid-value"


async def test_discard_changes(connect: Connect) -> None:
    c = await connect()
    await c("edit_config", target="candidate", config=config(b.onu_registration(ONU)))
    await c("discard_changes")
    assert "ont-0/1/0-1" not in iface_names(await c("get_config", source="candidate"))


# ---- locks and sessions ---------------------------------------------------------------------

async def test_lock_denied_between_sessions(connect: Connect, olt: Olt) -> None:
    a, b2 = await connect(), await connect()
    await a("lock", target="running")
    with pytest.raises(RPCError) as info:
        await b2("lock", target="running")
    assert info.value.tag == "lock-denied"
    assert f"<session-id>{a.session_id}</session-id>" in info.value.info
    with pytest.raises(RPCError) as info:
        await b2("edit_config", target="running", config=config(b.onu_registration(ONU)))
    assert info.value.tag == "in-use"
    await a("unlock", target="running")
    await b2("lock", target="running")
    await b2("unlock", target="running")
    olt.faults.lock_held = True
    with pytest.raises(RPCError) as info:
        await a("lock", target="candidate")
    assert info.value.tag == "lock-denied"
    olt.faults.lock_held = False
    await a("lock", target="candidate")


async def test_kill_session_releases_locks(connect: Connect, olt: Olt) -> None:
    a, b2 = await connect(), await connect()
    await a("lock", target="running")
    with pytest.raises(RPCError) as info:
        await b2("kill_session", str(b2.session_id))
    assert info.value.tag == "invalid-value"
    await b2("kill_session", str(a.session_id))
    await b2("lock", target="running")  # the lock went with the killed session
    await eventually(lambda: not a.m.connected, "the killed session to drop")
    with pytest.raises(RPCError):
        await b2("kill_session", "4242")


async def test_reboot_drops_sessions(connect: Connect, olt: Olt) -> None:
    c = await connect()
    await c("lock", target="candidate")
    olt.reboot()
    await eventually(lambda: not c.m.connected, "the session to drop on reboot")
    assert olt.session_closers == {}
    c2 = await connect()
    await c2("lock", target="candidate")


# ---- edit-config semantics and errors -------------------------------------------------------

async def test_rollback_on_error_leaves_nothing(connect: Connect, olt: Olt) -> None:
    c = await connect()
    before = olt.running
    bad = b.ServiceSpec(b.OnuSpec("0/1/0", 2, "ABCD00000002"), 1, 5000, 1000, "0/9/0", 1025,
                        1025, "p100")
    payload = config(b.onu_registration(ONU), b.onu_registration(bad.onu), b.olt_service(bad))
    with pytest.raises(RPCError) as info:
        await c("edit_config", target="running", config=payload,
                error_option="rollback-on-error")
    assert info.value.tag == "invalid-value"
    assert olt.running is before
    assert "ont-0/1/0-1" not in iface_names(await c("get_config", source="running"))


async def test_continue_on_error_applies_the_rest(connect: Connect) -> None:
    c = await connect()
    good = '<interface><name>spare-1</name><type xmlns:ianaift="urn:ietf:params:xml:ns:yang:' \
           'iana-if-type">ianaift:ethernetCsmacd</type></interface>'
    bad = "<interface><name>spare-2</name><enabled>maybe</enabled></interface>"
    payload = f'<config xmlns="{NC}"><interfaces xmlns="{IF}">{bad}{good}</interfaces></config>'
    with pytest.raises(RPCError) as info:
        await c("edit_config", target="candidate", config=payload,
                error_option="continue-on-error")
    assert info.value.tag == "invalid-value"
    names = iface_names(await c("get_config", source="candidate"))
    assert "spare-1" in names
    assert "spare-2" not in names


async def test_create_delete_remove_replace(connect: Connect) -> None:
    c = await connect()
    op = f'xmlns:nc="{NC}" nc:operation'

    def iface(operation: str, body: str = "") -> str:
        return (f'<config xmlns="{NC}"><interfaces xmlns="{IF}"><interface {op}="{operation}">'
                f"<name>uplink-0/9/0</name>{body}</interface></interfaces></config>")

    with pytest.raises(RPCError) as info:
        await c("edit_config", target="candidate", config=iface("create"))
    assert info.value.tag == "data-exists"
    await c("edit_config", target="candidate",
            config=iface("merge", "<description>to core</description>"))
    reply = await c("get_config", source="candidate", filter=iface_filter("uplink-0/9/0"))
    assert xpath(reply, "//if:description/text()") == ["to core"]
    # replace: the entry becomes exactly what is sent (the description goes).
    typ = ('<type xmlns:ianaift="urn:ietf:params:xml:ns:yang:iana-if-type">'
           "ianaift:ethernetCsmacd</type><enabled>true</enabled>")
    await c("edit_config", target="candidate", config=iface("replace", typ))
    reply = await c("get_config", source="candidate", filter=iface_filter("uplink-0/9/0"))
    assert xpath(reply, "//if:description") == []
    assert xpath(reply, "//if:enabled/text()") == ["true"]
    missing = iface("delete").replace("uplink-0/9/0", "nothing-here")
    with pytest.raises(RPCError) as info:
        await c("edit_config", target="candidate", config=missing)
    assert info.value.tag == "data-missing"
    await c("edit_config", target="candidate", config=iface("remove").replace(
        "uplink-0/9/0", "nothing-here"))
    # default-operation none: nothing is created without an explicit operation.
    await c("edit_config", target="candidate", default_operation="none",
            config=iface("create").replace("uplink-0/9/0", "spare-9").replace(
                "</name>", f"</name>{typ}"))
    assert "spare-9" in iface_names(await c("get_config", source="candidate"))


async def test_rpc_errors_unknown_element_invalid_value_leafref_network(connect: Connect) -> None:
    c = await connect()
    unknown = f'<config xmlns="{NC}"><interfaces xmlns="{IF}"><interface><name>x</name>' \
              "<colour>blue</colour></interface></interfaces></config>"
    with pytest.raises(RPCError) as info:
        await c("edit_config", target="candidate", config=unknown)
    assert info.value.tag == "unknown-element"
    assert "<bad-element>colour</bad-element>" in info.value.info

    bad_vlan = b.ServiceSpec(ONU, 1, 5000, 1000, "0/9/0", 1024, 1024, "p100")
    with pytest.raises(RPCError) as info:
        await c("edit_config", target="candidate", config=config(b.olt_service(bad_vlan)))
    assert info.value.tag == "invalid-value"
    assert "5000" in info.value.message
    assert "vlan-id" in (info.value.path or "")
    assert info.value.to_dict()["type"] == "application"

    # Missing leafref target: the v-enet's v-ani is not configured. "set" skips the check,
    # validate finds it.
    await c("edit_config", target="candidate", test_option="set",
            config=config(b.traffic_profile("p100", 10**8), b.olt_service(SERVICE)))
    with pytest.raises(RPCError) as info:
        await c("validate", source="candidate")
    assert info.value.tag == "data-missing"
    assert info.value.app_tag == "instance-required"
    await c("discard_changes")

    no_network = b.ServiceSpec(ONU, 1, 100, 3000, "0/9/0", 1024, 1024, "p100")
    with pytest.raises(RPCError) as info:
        await c("edit_config", target="running", config=service_config(no_network))
    assert info.value.tag == "invalid-value"
    assert "network service missing" in info.value.message
    assert info.value.app_tag == "network-service-missing"


# ---- raw bytes: malformed, hostile, oversized, badly framed --------------------------------

async def test_raw_malformed_missing_id_unknown_op_and_echo(raw: Callable[..., Any]) -> None:
    r: Raw = await raw()
    assert b"<session-id>" in r.server_hello
    reply = await r.rpc("<get-config><source><running/></get-config>")  # not well-formed
    assert error_tag(reply) == "malformed-message"
    assert reply.get("message-id") is None
    reply = await r.rpc("<get/>", attrs='xmlns:ex="urn:example" ex:user="fred"')
    assert error_tag(reply) == "missing-attribute"
    assert "message-id" in etree.tostring(reply).decode()
    reply = await r.rpc("<reboot-the-world/>",
                        attrs='message-id="42" xmlns:ex="urn:example" ex:user="fred"')
    assert error_tag(reply) == "operation-not-supported"
    assert reply.get("message-id") == "42"
    assert reply.get("{urn:example}user") == "fred"
    reply = await r.rpc("<get-config><source><running/></source><bogus/></get-config>")
    assert error_tag(reply) == "unknown-element"
    # The session is still fine after all of that.
    reply = await r.rpc("<get-config><source><running/></source></get-config>",
                        attrs='message-id="99"')
    assert reply.get("message-id") == "99"
    assert reply.find(f"{{{NC}}}data") is not None


async def test_raw_entities_are_refused_and_never_expanded(raw: Callable[..., Any]) -> None:
    r: Raw = await raw()
    laughs = ('<?xml version="1.0"?><!DOCTYPE rpc [<!ENTITY lol "lol">'
              '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
              '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
              f'<rpc xmlns="{NC}" message-id="1"><get-config><source><running/></source>'
              f'<filter><interfaces xmlns="{IF}"><interface><name>&lol3;</name></interface>'
              "</interfaces></filter></get-config></rpc>")
    await r.send(laughs.encode())
    reply = await r.recv()
    assert error_tag(reply) == "malformed-message"
    assert b"lollol" not in etree.tostring(reply)
    xxe = ('<?xml version="1.0"?><!DOCTYPE rpc [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
           f'<rpc xmlns="{NC}" message-id="2"><edit-config><target><candidate/></target>'
           f'<config><interfaces xmlns="{IF}"><interface><name>a</name>'
           "<description>&xxe;</description></interface></interfaces></config></edit-config>"
           "</rpc>")
    await r.send(xxe.encode())
    reply = await r.recv()
    assert error_tag(reply) == "malformed-message"
    assert b"root:" not in etree.tostring(reply)
    # An undeclared entity without a DOCTYPE is not expanded either.
    reply = await r.rpc("<get-config><source><running/></source>"
                        "<filter><interfaces>&xxe;</interfaces></filter></get-config>")
    assert error_tag(reply) == "malformed-message"


async def test_raw_oversized_message_is_refused_and_session_closed(
        olt: Olt, host_key: asyncssh.SSHKey) -> None:
    srv = await NetconfServer.start(olt, "127.0.0.1", 0, host_key, max_message=64 * 1024)
    try:
        r = await Raw.open(srv.port)
        try:
            big = f'<rpc xmlns="{NC}" message-id="1"><get/>'.encode() + b" " * 70_000 + b"</rpc>"
            await r.send(big)
            reply = await r.recv()
            assert error_tag(reply) == "too-big"
            assert await r.closed_by_server()
            assert olt.session_closers == {}
        finally:
            r.close()
    finally:
        await srv.close()


@pytest.mark.parametrize("garbage", [b"\n#zz\nabc", b"\n#0\n", b"<rpc/>]]>]]>", b"\n##\n"])
async def test_raw_garbage_framing_closes_cleanly(raw: Callable[..., Any], olt: Olt,
                                                  garbage: bytes) -> None:
    r: Raw = await raw()
    await r.rpc("<lock><target><candidate/></target></lock>")
    assert olt.locks == {"candidate": 1}
    r.writer.write(garbage)
    reply = await r.recv()
    assert error_tag(reply) == "malformed-message"
    assert await r.closed_by_server()
    await eventually(lambda: olt.locks == {}, "the closed session's lock to be released")


async def test_raw_base10_session_uses_end_of_message_framing(raw: Callable[..., Any]) -> None:
    r: Raw = await raw(base11=False)
    reply = await r.rpc("<get-config><source><running/></source></get-config>")
    assert reply.find(f"{{{NC}}}data") is not None
    # base:1.0 clients never see malformed-message (RFC 6241 Appendix A).
    reply = await r.rpc("<get")
    assert error_tag(reply) == "operation-failed"


async def test_other_ssh_requests_are_refused(server: NetconfServer) -> None:
    async with asyncssh.connect("127.0.0.1", server.port, username="admin", password="admin",
                                known_hosts=None, client_keys=None, agent_path=None) as conn:
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.open_session(subsystem="sftp")
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.open_session(command="show running-config")
        with pytest.raises(asyncssh.ChannelOpenError):
            await conn.open_session()
        # The connection survives a refused request; the netconf subsystem is still there.
        _, reader, _ = await conn.open_session(subsystem="netconf", encoding=None)
        assert b"<session-id>1</session-id>" in await asyncio.wait_for(
            reader.readuntil(b"]]>]]>"), WAIT_S)


# ---- notifications and ONTs -----------------------------------------------------------------

async def test_notification_on_ont_discovery(connect: Connect, olt: Olt) -> None:
    c = await connect()
    await c("create_subscription")
    olt.add_ont("ABCD0000BEEF", "0/1/1")
    note = await c("take_notification", True, WAIT_S)
    assert note is not None
    ele = note.notification_ele
    assert xpath(ele, "//n:eventTime/text()")[0].endswith("Z")
    assert xpath(ele, "//o:detected-serial-number/text()") == ["ABCD0000BEEF"]
    assert xpath(ele, "//o:channel-termination-ref/text()") == ["ct-0/1/1"]
    assert xpath(ele, "//o:onu-state/text()") == [
        "bbf-xpon-onu-types:onu-present-and-no-v-ani-known-and-in-o5"]
    assert xpath(ele, "//o:onu-state-change/pos:ont-state/text()") == ["unclaimed"]
    # RPCs go on while subscribed (interleave).
    assert "ct-0/1/0" in iface_names(await c("get_config", source="running"))
    with pytest.raises(RPCError):
        await c("create_subscription")  # one subscription per session
    assert len(olt._listeners) == 1
    await asyncio.to_thread(c.close)
    await eventually(lambda: not olt._listeners, "the subscription to end with its session")


async def test_notification_filter_and_states(connect: Connect, olt: Olt) -> None:
    c = await connect()
    flt = ("subtree", f'<onu-state-change xmlns="{ONU_STATES}"><detected-serial-number>'
                      "ABCD00000002</detected-serial-number></onu-state-change>")
    await c("create_subscription", filter=flt)
    olt.add_ont("ABCD00000001", "0/1/0")
    ont = olt.add_ont("ABCD00000002", "0/1/0")
    ont.set_power(False)
    states = []
    for _ in range(2):
        note = await c("take_notification", True, WAIT_S)
        assert note is not None
        assert xpath(note.notification_ele, "//o:detected-serial-number/text()") == [
            "ABCD00000002"]
        states += xpath(note.notification_ele, "//pos:ont-state/text()")
    assert states == ["unclaimed", "dying-gasp"]
    with pytest.raises(RPCError) as info:
        await c("create_subscription", start_time="2026-01-01T00:00:00Z")
    assert info.value.tag == "operation-failed"


async def test_preprovisioned_ont_comes_up_with_its_service(connect: Connect, olt: Olt) -> None:
    c = await connect()
    await c("create_subscription")
    await c("edit_config", target="running", config=service_config())
    olt.add_ont("ABCD12345678", "0/1/0")
    flt = ("subtree", f'<olt-state xmlns="{OLT_STATE}"><onts><ont><serial>ABCD12345678'
                      "</serial></ont></onts></olt-state>")

    async def operational() -> Any:
        reply = await c("get", filter=flt)
        return reply if xpath(reply, "//pos:ont/pos:state/text()") == ["operational"] else None

    await eventually(operational, "the ONT to become operational")
    reply = await c("get", filter=flt)
    assert iface_names(reply) == []  # the filter named state only
    assert xpath(reply, "//pos:ont/pos:v-ani/text()") == ["ont-0/1/0-1"]
    assert xpath(reply, "//pos:ont/pos:onu-id/text()") == ["1"]
    assert xpath(reply, "//pos:applied-service/pos:c-vlan/text()") == ["100"]
    assert xpath(reply, "//pos:applied-service/pos:s-vlan/text()") == ["1000"]
    assert xpath(reply, "//pos:applied-service/pos:gemport-id/text()") == ["1024"]
    assert xpath(reply, "//pos:rx-power-dbm/text()")
    seen = []
    while (note := await c("take_notification", True, WAIT_S)) is not None:
        seen += xpath(note.notification_ele, "//pos:ont-state/text()")
        if seen[-1] == "operational":
            break
    assert seen == ["ranging", "operational"]
    assert xpath(note.notification_ele, "//o:onu-state/text()") == [
        "bbf-xpon-onu-types:onu-present-and-on-intended-channel-termination"]
    assert olt.onts["ABCD12345678"].state == OntState.OPERATIONAL


async def test_running_config_validates_against_bbf_modules(
        connect: Connect, tmp_path: Path) -> None:
    if not VALIDATE_BBF.exists():
        pytest.skip(f"{VALIDATE_BBF} is not there (shared/ beside the repository)")
    if shutil.which("yanglint") is None:
        pytest.skip("yanglint is missing (apt-get install libyang2-tools)")
    c = await connect()
    await c("edit_config", target="candidate", config=service_config())
    await c("commit")
    reply = await c("get_config", source="running")
    out = tmp_path / "running.xml"
    out.write_bytes(b"".join(etree.tostring(child) for child in reply.data_ele))
    proc = await asyncio.create_subprocess_exec(
        str(VALIDATE_BBF), str(out), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT)
    stdout, _ = await asyncio.wait_for(proc.communicate(), 50)
    assert proc.returncode == 0, stdout.decode()


# ---- faults ---------------------------------------------------------------------------------

async def test_latency_past_the_client_timeout(connect: Connect, olt: Olt) -> None:
    c = await connect()
    olt.faults.latency = 0.3
    c.m.timeout = 0.05
    with pytest.raises(TimeoutExpiredError):
        await c("get_config", source="running")
    olt.faults.latency = 0.0
    c.m.timeout = 10


async def test_drop_after(connect: Connect, olt: Olt) -> None:
    olt.faults.drop_after = 1
    c = await connect()
    await c("get_config", source="running")
    await eventually(lambda: not c.m.connected, "the session to be dropped after one RPC")
    with pytest.raises(TransportError):
        await c("get_config", source="running")
    assert olt.session_closers == {}


async def test_drop_mid_reply(connect: Connect, olt: Olt) -> None:
    c = await connect()
    olt.faults.drop_mid_reply = True
    c.m.timeout = 2
    with pytest.raises((TransportError, TimeoutExpiredError)):
        await c("get_config", source="running")
    await eventually(lambda: not c.m.connected, "the session to be dropped")
    olt.faults.drop_mid_reply = False
    c2 = await connect()
    assert "ct-0/1/0" in iface_names(await c2("get_config", source="running"))


async def test_wrong_credentials(connect: Connect, olt: Olt) -> None:
    with pytest.raises(AuthenticationError):
        await connect(password="nope")
    olt.faults.wrong_credentials = True
    with pytest.raises(AuthenticationError):
        await connect()
    olt.faults.wrong_credentials = False
    await connect()


async def test_refuse_commit_fault(connect: Connect, olt: Olt) -> None:
    c = await connect()
    olt.faults.refuse_commit = "commit refused: hardware busy"
    await c("edit_config", target="candidate", config=config(b.onu_registration(ONU)))
    with pytest.raises(RPCError) as info:
        await c("commit")
    assert info.value.message == "commit refused: hardware busy"
    assert info.value.tag == "operation-failed"


# ---- gateway --------------------------------------------------------------------------------

@pytest.fixture
def gateway(olt: Olt) -> Gateway:
    return Gateway("gw-1", "127.0.0.2", CREDS, SNMP, frozenset({"netconf"}), "GW0001",
                   "02:00:00:00:00:01", olt, "ABCD12345678", 1)


@pytest.fixture
async def gw_server(gateway: Gateway, host_key: asyncssh.SSHKey) -> AsyncIterator[NetconfServer]:
    srv = await NetconfServer.start(gateway, "127.0.0.1", 0, host_key)
    yield srv
    await srv.close()


async def test_gateway(connect: Connect, gw_server: NetconfServer, gateway: Gateway) -> None:
    c = await connect(port=gw_server.port)
    got = set(c.m.server_capabilities)
    assert caps.WRITABLE_RUNNING in got
    assert caps.CANDIDATE not in got
    assert caps.NOTIFICATION not in got
    assert "urn:ponctl:yang:ponctl-gateway?module=ponctl-gateway&revision=2026-11-21" in got
    url = "https://phan.example.net/l/abc?t=xyz"
    await c("edit_config", target="running",
            config=f'<config xmlns="{NC}"><gateway xmlns="{GW}"><phan-url>{url}</phan-url>'
                   "<wan-vlan>100</wan-vlan></gateway></config>")
    assert gateway.phan_url == url
    assert gateway.wan_vlan == 100
    reply = await c("get_config", source="running")
    assert xpath(reply, "//gw:phan-url/text()") == [url]
    reply = await c("get", filter=("subtree", f'<gateway-state xmlns="{GW}"/>'))
    assert xpath(reply, "//gw:serial-number/text()") == ["GW0001"]
    assert xpath(reply, "//gw:phan-url") == []
    with pytest.raises(RPCError) as info:
        await c("edit_config", target="running",
                config=f'<config xmlns="{NC}"><gateway xmlns="{GW}"><phan-url>ftp://x</phan-url>'
                       "</gateway></config>")
    assert info.value.tag == "invalid-value"
    assert gateway.phan_url == url
    with pytest.raises(RPCError) as info:
        await c("get_config", source="candidate")
    assert info.value.tag == "invalid-value"
    with pytest.raises(RPCError) as info:  # ncclient itself refuses commit without :candidate
        await c("dispatch", etree.fromstring(f'<commit xmlns="{NC}"/>'))
    assert info.value.tag == "operation-not-supported"
    other = await connect(port=gw_server.port)
    await c("lock", target="running")
    with pytest.raises(RPCError) as info:
        await other("edit_config", target="running",
                    config=f'<config xmlns="{NC}"><gateway xmlns="{GW}"><wan-vlan>7</wan-vlan>'
                           "</gateway></config>")
    assert info.value.tag == "in-use"
    await asyncio.to_thread(c.close)
    await other("lock", target="running")  # released with the closed session

