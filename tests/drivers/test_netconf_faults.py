"""Every failure the simulator can produce surfaces as the right error type, with nothing left
half-open: no pending request, no session on the device, no lock held."""

from __future__ import annotations

import asyncio

import asyncssh
import pytest

from drivers.errors import (
    AuthenticationError,
    ConnectError,
    DriverError,
    DriverTimeoutError,
    HostKeyError,
    NetconfRejectedError,
    ProtocolError,
    RefusedError,
    SessionLostError,
)
from drivers.netconf import NetconfDriver, NetconfLockDeniedError
from drivers.ssh_transport import SshTarget
from simulator.config import builder as b
from simulator.devices import Olt
from simulator.netconf import NetconfServer
from tests.drivers.netconf_lab import (
    ONU,
    eventually,
    free_port,
    gateway_payload,
    iface_names,
    known_hosts,
    make_gateway,
    payload,
    service_payload,
    target,
)

# ---- connecting ------------------------------------------------------------------------------

async def test_connection_refused() -> None:
    d = NetconfDriver(SshTarget("127.0.0.1", free_port(), password="admin",
                                known_hosts_text="", timeout=5))
    with pytest.raises(RefusedError) as info:
        await d.connect()
    assert isinstance(info.value, ConnectError)
    assert info.value.host == "127.0.0.1"
    assert not d.connected


async def test_wrong_password_and_wrong_credentials_fault(server: NetconfServer,
                                                          host_key: asyncssh.SSHKey,
                                                          olt: Olt) -> None:
    with pytest.raises(AuthenticationError):
        await NetconfDriver(target(server, host_key, password="nope")).connect()
    olt.faults.wrong_credentials = True
    with pytest.raises(AuthenticationError):
        await NetconfDriver(target(server, host_key)).connect()
    olt.faults.wrong_credentials = False
    async with NetconfDriver(target(server, host_key)) as d:
        assert d.connected


async def test_host_key_changed(server: NetconfServer) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    d = NetconfDriver(target(server, other, known_hosts_text=known_hosts(server.port, other)))
    with pytest.raises(HostKeyError):
        await d.connect()
    assert not d.connected


# ---- timeouts and lost sessions --------------------------------------------------------------

async def test_latency_past_the_timeout(server: NetconfServer, host_key: asyncssh.SSHKey,
                                        olt: Olt) -> None:
    d = NetconfDriver(target(server, host_key))
    await d.connect()
    d.timeout = 0.3  # for requests only: a loaded machine may need longer to connect
    session = d._session
    assert session is not None
    olt.faults.latency = 2.0
    with pytest.raises(DriverTimeoutError) as info:
        await d.get_config()
    assert isinstance(info.value, TimeoutError)
    assert "get-config" in info.value.message
    # The driver dropped the session whose reply it could no longer trust.
    assert not d.connected
    assert session.pending == 0
    await eventually(lambda: not olt.session_closers, "the server to see the session end")
    assert olt.locks == {}
    with pytest.raises(SessionLostError):
        await d.get_config()
    olt.faults.latency = 0.0
    d.timeout = 5.0
    await d.reconnect()
    assert "ct-0/1/0" in iface_names((await d.get_config()).data)
    await d.close()


async def test_latency_during_a_transaction_releases_the_locks(server: NetconfServer,
                                                               host_key: asyncssh.SSHKey,
                                                               olt: Olt) -> None:
    d = NetconfDriver(target(server, host_key))
    await d.connect()
    d.timeout = 0.3
    await d.load_candidate(payload(b.onu_registration(ONU)))
    assert olt.locks
    olt.faults.latency = 2.0
    with pytest.raises(DriverTimeoutError):
        await d.commit()
    await eventually(lambda: not olt.locks, "the device to release the dropped session's locks")
    assert olt.candidate is olt.running
    olt.faults.latency = 0.0
    await d.close()


async def test_close_fails_pending_requests(dev: NetconfDriver, olt: Olt) -> None:
    olt.faults.latency = 1.0
    task = asyncio.ensure_future(dev.get_config())
    await eventually(lambda: dev._session is not None and dev._session.pending == 1,
                     "the request to be in flight")
    await dev.close()
    with pytest.raises(SessionLostError):
        await task
    await eventually(lambda: not olt.session_closers, "the server to see the session end")


async def test_drop_mid_reply(dev: NetconfDriver, olt: Olt) -> None:
    olt.faults.drop_mid_reply = True
    with pytest.raises(SessionLostError):
        await dev.get_config()
    assert not dev.connected
    await eventually(lambda: not olt.session_closers, "the session to end on the device")
    olt.faults.drop_mid_reply = False
    await dev.reconnect()
    assert "ct-0/1/0" in iface_names((await dev.get_config()).data)


async def test_drop_mid_reply_fails_every_pipelined_request(dev: NetconfDriver,
                                                            olt: Olt) -> None:
    olt.faults.drop_mid_reply = True
    results = await asyncio.gather(*(dev.get_config() for _ in range(10)),
                                   return_exceptions=True)
    assert all(isinstance(r, SessionLostError) for r in results), results


async def test_drop_after(server: NetconfServer, host_key: asyncssh.SSHKey, olt: Olt) -> None:
    olt.faults.drop_after = 1
    d = NetconfDriver(target(server, host_key))
    await d.connect()
    await d.get_config()
    with pytest.raises(SessionLostError):
        await d.get_config()
    assert not d.connected
    await eventually(lambda: not olt.session_closers, "the session to end on the device")
    await d.close()


async def test_notification_stream_reports_a_lost_session(dev: NetconfDriver,
                                                          olt: Olt) -> None:
    stream = dev.events()
    first = asyncio.ensure_future(anext(stream))
    await eventually(lambda: olt._listeners, "the subscription")
    olt.drop_sessions()
    with pytest.raises(SessionLostError):
        await asyncio.wait_for(first, 5)


# ---- refusals --------------------------------------------------------------------------------

async def test_lock_held_fault_is_lock_denied(dev: NetconfDriver, olt: Olt) -> None:
    olt.faults.lock_held = True
    with pytest.raises(NetconfLockDeniedError) as info:
        await dev.load_candidate(service_payload())
    assert isinstance(info.value, NetconfRejectedError)
    assert info.value.tag == "lock-denied"
    assert info.value.holder == "4294967295"
    assert olt.locks == {}
    olt.faults.lock_held = False
    await dev.load_candidate(service_payload())
    assert (await dev.commit()).changed


async def test_another_sessions_lock(dev: NetconfDriver, server: NetconfServer,
                                     host_key: asyncssh.SSHKey, olt: Olt) -> None:
    async with NetconfDriver(target(server, host_key)) as other:
        await other.load_candidate(payload(b.onu_registration(ONU)))
        with pytest.raises(NetconfLockDeniedError) as info:
            await dev.load_candidate(service_payload())
        assert info.value.holder == str(other.session_id)
        assert "locked by session" in info.value.errors[0].message
        await other.discard()
    await dev.load_candidate(service_payload())
    await dev.commit()
    assert olt.view.onu_by_serial(ONU.serial) is not None


async def test_refused_commit_keeps_the_device_message(dev: NetconfDriver, olt: Olt) -> None:
    await dev.load_candidate(payload(b.onu_registration(ONU)))
    olt.faults.refuse_commit = "commit refused: hardware busy"
    with pytest.raises(NetconfRejectedError) as info:
        await dev.commit()
    err = info.value.errors[0]
    assert err.message == "commit refused: hardware busy"
    assert err.tag == "operation-failed"
    assert err.app_tag == "commit-refused"
    assert b"commit refused: hardware busy" in info.value.raw
    assert olt.view.onu_by_serial(ONU.serial) is None
    # Still staged and locked; discard lets go of both.
    assert olt.locks
    await dev.discard()
    assert olt.locks == {}
    olt.faults.refuse_commit = None


async def test_invalid_vlan_is_rejected_with_its_path(dev: NetconfDriver, olt: Olt) -> None:
    running = olt.running
    bad = b.ServiceSpec(ONU, 1, 5000, 1000, "0/9/0", 1024, 1024, "p100")
    with pytest.raises(NetconfRejectedError) as info:
        await dev.load_candidate(service_payload(bad))
    err = info.value.errors[0]
    assert err.tag == "invalid-value"
    assert err.type == "application"
    assert "5000" in err.message
    assert err.path is not None
    assert "vlan-id" in err.path
    # A refused load leaves nothing staged or locked.
    assert olt.locks == {}
    assert olt.candidate is olt.running is running
    assert (await dev.compare()).empty


async def test_payload_errors_are_not_driver_errors(dev: NetconfDriver, olt: Olt) -> None:
    with pytest.raises(ValueError, match="well-formed"):
        await dev.load_candidate("<interfaces><interface>")
    with pytest.raises(ValueError, match="empty"):
        await dev.load_candidate("  ")
    assert olt.locks == {}
    assert not issubclass(ValueError, DriverError)


# ---- a hostile or broken server ----------------------------------------------------------------

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
HELLO = (f'<hello xmlns="{NC}"><capabilities><capability>urn:ietf:params:netconf:base:1.0'
         "</capability></capabilities><session-id>1</session-id></hello>]]>]]>").encode()


class _NoAuth(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return False


async def _broken_server(key: asyncssh.SSHKey, reply: bytes | None,
                         hello: bytes = HELLO) -> asyncssh.SSHAcceptor:
    """A NETCONF-over-SSH server that sends ``hello`` and answers the first request with
    ``reply`` (``{id}`` replaced by its message-id), then says nothing more."""

    async def handle(process: asyncssh.SSHServerProcess[bytes]) -> None:
        if process.subsystem != "netconf":
            process.exit(1)
            return
        process.stdout.write(hello)
        await process.stdin.readuntil(b"]]>]]>")  # the client's hello
        if reply is not None:
            request = await process.stdin.readuntil(b"]]>]]>")
            mid = request.split(b'message-id="', 1)[1].split(b'"', 1)[0]
            process.stdout.write(reply.replace(b"{id}", mid) + b"]]>]]>")
        await process.stdin.read()  # until the client goes away
        process.exit(0)

    return await asyncssh.create_server(_NoAuth, "127.0.0.1", 0, server_host_keys=[key],
                                        process_factory=handle, encoding=None,
                                        allow_pty=False)


def _target(acceptor: asyncssh.SSHAcceptor, key: asyncssh.SSHKey,
            timeout: float = 5.0) -> SshTarget:
    port = acceptor.get_port()
    return SshTarget("127.0.0.1", port, password="x", known_hosts_text=known_hosts(port, key),
                     timeout=timeout)


async def test_no_hello_times_out(host_key: asyncssh.SSHKey) -> None:
    acceptor = await _broken_server(host_key, None, hello=b"")
    try:
        with pytest.raises(DriverTimeoutError, match="hello"):
            await NetconfDriver(_target(acceptor, host_key, timeout=1.0)).connect()
    finally:
        acceptor.close()
        await acceptor.wait_closed()


@pytest.mark.parametrize(("reply", "match"), [
    (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]><rpc-reply xmlns="' + NC.encode()
     + b'" message-id="{id}"><data>&x;</data></rpc-reply>', "DOCTYPE"),
    (b'<rpc-reply xmlns="' + NC.encode() + b'" message-id="{id}"><data>', "malformed"),
    (b'<rpc-reply xmlns="' + NC.encode() + b'" message-id="{id}"><data>' + b"x" * 5000
     + b"</data></rpc-reply>", "limit"),
    (b'<rpc-reply xmlns="' + NC.encode() + b'"><rpc-error><error-tag>malformed-message'
     b"</error-tag></rpc-error></rpc-reply>", "without message-id"),
])
async def test_hostile_replies_are_protocol_errors(host_key: asyncssh.SSHKey, reply: bytes,
                                                   match: str) -> None:
    acceptor = await _broken_server(host_key, reply)
    try:
        d = NetconfDriver(_target(acceptor, host_key), max_message=4096)
        await d.connect()
        assert d.framing == "1.0"
        with pytest.raises(ProtocolError, match=match):
            await d.get_config()
        assert not d.connected  # a session that broke the protocol is not reused
        await d.close()
    finally:
        acceptor.close()
        await acceptor.wait_closed()


async def test_gateway_lock_held(olt: Olt, host_key: asyncssh.SSHKey) -> None:
    gateway = make_gateway(olt)
    srv = await NetconfServer.start(gateway, "127.0.0.1", 0, host_key)
    try:
        async with NetconfDriver(target(srv, host_key)) as gw:
            await gw.load_candidate(gateway_payload(wan_vlan=10))
            gateway.faults.lock_held = True
            with pytest.raises(NetconfLockDeniedError):
                await gw.commit()
            assert gateway.wan_vlan == 0
            gateway.faults.lock_held = False
            assert (await gw.commit()).changed  # the payload stayed staged
            assert gateway.wan_vlan == 10
    finally:
        await srv.close()
