"""The NETCONF driver against the simulator's NETCONF face, over real SSH on loopback."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncGenerator, AsyncIterator
from typing import cast

import asyncssh
import pytest

from drivers.base import DeviceEvent, run_bulk
from drivers.errors import DriverError, NetconfRejectedError, RefusedError, UnsupportedError
from drivers.netconf import NetconfDriver, rpc
from drivers.ssh_transport import SshTarget
from simulator.config import builder as b
from simulator.devices import Gateway, Olt, OntState
from simulator.netconf import NetconfServer
from tests.drivers.netconf_lab import (
    ONU,
    SERVICE,
    WAIT_S,
    eventually,
    free_port,
    gateway_payload,
    iface_filter,
    iface_names,
    make_gateway,
    make_olt,
    payload,
    service_payload,
    target,
    xpath,
)

# ---- connecting and reading ------------------------------------------------------------------

async def test_connect_and_capabilities(dev: NetconfDriver, olt: Olt) -> None:
    caps = dev.capabilities
    assert caps.protocol == "netconf"
    assert caps.candidate
    assert caps.confirmed_commit
    assert caps.validate
    assert caps.notifications
    assert caps.transactions
    assert caps.locking
    assert caps.rollback == "exact"
    assert rpc.CANDIDATE in caps.details
    assert any(d.startswith("urn:bbf:yang:bbf-xpon?module=bbf-xpon&") for d in caps.details)
    assert dev.connected
    assert dev.framing == "1.1"
    assert dev.session_id in olt.session_closers


async def test_get_config_filtered_and_not(dev: NetconfDriver) -> None:
    full = await dev.get_config()
    assert full.source == "running"
    names = iface_names(full.data)
    assert "ct-0/1/0" in names
    assert "uplink-0/9/0" in names
    one = await dev.get_config(iface_filter("ct-0/1/1"))
    assert iface_names(one.data) == ["ct-0/1/1"]
    assert xpath(one.data, "//if:interface/if:type/text()") == [
        "bbf-xponift:channel-termination"]
    # Each top-level element of the snapshot carries its namespace declarations.
    assert str(rpc.parse_fragment(one.data)[0].tag).endswith("}interfaces")
    candidate = await dev.get_config(source="candidate")
    assert candidate.source == "candidate"
    assert iface_names(candidate.data) == names
    state = await dev.get_state('<olt-state xmlns="urn:ponctl:yang:ponctl-olt-state">'
                                "<system><name/></system></olt-state>")
    assert state.source == "state"
    assert "<name>olt-1</name>" in state.data
    with pytest.raises(ValueError, match="well-formed"):
        await dev.get_config("<interfaces>")


# ---- load, compare, commit -------------------------------------------------------------------

async def test_load_compare_commit_brings_the_ont_up(dev: NetconfDriver, olt: Olt) -> None:
    await dev.load_candidate(service_payload())
    assert olt.locks == {"running": dev.session_id, "candidate": dev.session_id}
    diff = await dev.compare()
    assert not diff.empty
    assert diff.lines[:2] == ("--- running", "+++ candidate")
    assert "+    <name>ont-0/1/0-1</name>" in diff.lines
    assert "+      <expected-serial-number>ABCD12345678</expected-serial-number>" in diff.lines
    assert olt.view.onu_by_serial(ONU.serial) is None  # nothing on running yet
    result = await dev.commit()
    assert result.changed
    assert not result.confirm_pending
    assert olt.locks == {}
    assert (await dev.compare()).empty
    olt.add_ont(ONU.serial, ONU.port)
    flt = ('<olt-state xmlns="urn:ponctl:yang:ponctl-olt-state"><onts><ont><serial>'
           f"{ONU.serial}</serial></ont></onts></olt-state>")

    async def operational() -> str | None:
        state = (await dev.get_state(flt)).data
        return state if "<state>operational</state>" in state else None

    state = await eventually(operational, "the ONT to become operational")
    assert "<c-vlan>100</c-vlan>" in state
    assert "<s-vlan>1000</s-vlan>" in state
    assert olt.onts[ONU.serial].state == OntState.OPERATIONAL
    assert olt.onts[ONU.serial].applied[SERVICE.forwarder].c_vlan == 100
    # The same payload again changes nothing.
    await dev.load_candidate(service_payload())
    assert (await dev.compare()).empty
    assert not (await dev.commit()).changed


async def test_commit_without_load_sends_nothing(dev: NetconfDriver, olt: Olt) -> None:
    result = await dev.commit()
    assert not result.changed
    assert olt.locks == {}


async def test_replace_payload_and_config_wrapper(dev: NetconfDriver, olt: Olt) -> None:
    before = await dev.get_config()
    wrapped = f'<config xmlns="{rpc.NC}">{payload(b.onu_registration(ONU))}</config>'
    await dev.load_candidate(wrapped)
    await dev.commit()
    assert olt.view.onu_by_serial(ONU.serial) is not None
    # replace=True makes the payload the whole configuration: the ONU goes again.
    await dev.load_candidate(before.data, replace=True)
    diff = await dev.compare()
    assert "-    <name>ont-0/1/0-1</name>" in diff.lines
    await dev.commit()
    assert olt.view.onu_by_serial(ONU.serial) is None


async def test_discard(dev: NetconfDriver, olt: Olt) -> None:
    running = olt.running
    await dev.load_candidate(service_payload())
    assert not (await dev.compare()).empty
    await dev.discard()
    assert olt.locks == {}
    assert olt.candidate is olt.running is running
    assert (await dev.compare()).empty
    assert not (await dev.commit()).changed
    await dev.discard()  # nothing staged: a no-op


async def test_concurrent_loads_on_one_driver_are_serialised(dev: NetconfDriver,
                                                             olt: Olt) -> None:
    other = b.OnuSpec("0/1/1", 5, "ABCD00000005")
    await asyncio.gather(dev.load_candidate(payload(b.onu_registration(ONU))),
                         dev.load_candidate(payload(b.onu_registration(other))),
                         dev.get_config())
    assert (await dev.commit()).changed
    assert olt.view.onu_by_serial(ONU.serial) is not None
    assert olt.view.onu_by_serial(other.serial) is not None


# ---- confirmed commit and rollback -----------------------------------------------------------

async def test_confirmed_commit_then_confirm(dev: NetconfDriver, olt: Olt) -> None:
    await dev.load_candidate(payload(b.onu_registration(ONU)))
    result = await dev.commit(confirm_timeout=60)
    assert result.changed
    assert result.confirm_pending
    assert result.confirm_deadline is not None
    assert olt.confirm is not None
    assert olt.confirm.persist == dev.persist_id  # persist: survives our session
    await dev.confirm()
    assert olt.confirm is None
    assert dev.persist_id is None
    assert olt.view.onu_by_serial(ONU.serial) is not None
    with pytest.raises(DriverError, match="no confirmed commit"):
        await dev.confirm()


async def test_confirmed_commit_times_out_and_the_device_rolls_back(dev: NetconfDriver,
                                                                    olt: Olt) -> None:
    before = olt.running
    await dev.load_candidate(payload(b.onu_registration(ONU)))
    await dev.commit(confirm_timeout=0.2)  # whole seconds on the wire: 1
    assert "ont-0/1/0-1" in iface_names((await dev.get_config()).data)

    async def reverted() -> bool:
        return "ont-0/1/0-1" not in iface_names((await dev.get_config()).data)

    await eventually(reverted, "the device to revert the unconfirmed commit")
    assert olt.confirm is None
    assert olt.running.same(before)
    # Rolling back what the device already reverted is success, not an error.
    await dev.rollback()
    assert dev.persist_id is None


async def test_late_confirm_is_rejected(dev: NetconfDriver, olt: Olt) -> None:
    await dev.load_candidate(payload(b.onu_registration(ONU)))
    await dev.commit(confirm_timeout=1)
    await eventually(lambda: olt.confirm is None, "the confirm timeout to expire")
    with pytest.raises(NetconfRejectedError) as info:
        await dev.confirm()
    assert info.value.tag == "invalid-value"


async def test_rollback_cancels_a_pending_confirmed_commit(dev: NetconfDriver,
                                                          olt: Olt) -> None:
    before = olt.running
    await dev.load_candidate(service_payload())
    await dev.commit(confirm_timeout=60)
    assert olt.confirm is not None
    await dev.rollback()
    assert olt.confirm is None
    assert olt.running.same(before)
    assert dev.persist_id is None


async def test_confirm_survives_a_reconnect(dev: NetconfDriver, olt: Olt) -> None:
    await dev.load_candidate(payload(b.onu_registration(ONU)))
    await dev.commit(confirm_timeout=60)
    first = dev.session_id
    await dev.reconnect()
    assert dev.session_id != first
    assert olt.confirm is not None  # persist: the closed session did not take it along
    await dev.confirm()
    assert olt.confirm is None
    assert olt.view.onu_by_serial(ONU.serial) is not None


async def test_a_confirmed_commit_without_persist_is_reverted_when_its_session_ends(
        server: NetconfServer, host_key: asyncssh.SSHKey, olt: Olt) -> None:
    """What the agent uses: a process that dies between commit and confirm leaves nothing
    pending on the device (which reverts at once), so its restarted self can commit again."""
    before = olt.running
    async with NetconfDriver(target(server, host_key), persist_confirmed=False) as d:
        await d.load_candidate(payload(b.onu_registration(ONU)))
        result = await d.commit(confirm_timeout=60)
        assert result.confirm_pending
        assert olt.confirm is not None
        assert olt.confirm.persist is None
        assert d.persist_id is None
        first = d.session_id
        await d.reconnect()  # the old session ends, as it would if the process died
        assert d.session_id != first
    await eventually(lambda: olt.confirm is None, "the device to revert at session end")
    assert olt.running.same(before)
    async with NetconfDriver(target(server, host_key), persist_confirmed=False) as d:
        await d.load_candidate(payload(b.onu_registration(ONU)))
        await d.commit(confirm_timeout=60)
        await d.confirm()  # a plain commit on the same session confirms it
        assert olt.confirm is None
        await d.load_candidate(service_payload())
        await d.commit(confirm_timeout=60)
        await d.rollback()  # cancel-commit without a persist-id
        assert olt.confirm is None
    assert olt.view.onu_by_serial(ONU.serial) is not None


async def test_scoped_compare_reads_only_what_the_payload_names(
        server: NetconfServer, host_key: asyncssh.SSHKey, olt: Olt) -> None:
    """The agent's compare: the same verdicts as a whole-datastore compare, over the entries
    the payload names only, so its cost follows the payload and not the OLT's size."""
    async with NetconfDriver(target(server, host_key)) as whole, \
            NetconfDriver(target(server, host_key), scoped_compare=True) as scoped:
        await whole.load_candidate(service_payload())  # something else on the OLT
        await whole.commit()
        onu = payload(b.onu_registration(dataclasses.replace(ONU, description="mine")))
        await scoped.load_candidate(onu)
        diff = await scoped.compare()
        assert not diff.empty
        assert all("svc" not in line and "fwd" not in line for line in diff.lines), diff.text
        await scoped.commit()
        await scoped.load_candidate(onu)
        assert (await scoped.compare()).empty  # resend: nothing to do
        await scoped.discard()
        # a change made behind its back to an entry the payload names is seen
        await whole.load_candidate(payload(b.onu_registration(
            dataclasses.replace(ONU, description="changed"))))
        await whole.commit()
        await scoped.load_candidate(onu)
        again = await scoped.compare()
        assert not again.empty
        await scoped.discard()
    assert olt.view.onu_by_serial(ONU.serial) is not None


async def test_rollback_after_plain_commit_restores_exactly(dev: NetconfDriver,
                                                           olt: Olt) -> None:
    before_tree = olt.running
    before = await dev.get_config()
    await dev.load_candidate(service_payload())  # adds top-level containers too
    await dev.commit()
    assert olt.view.onu_by_serial(ONU.serial) is not None
    await dev.rollback()
    assert olt.running.same(before_tree)
    assert (await dev.get_config()).data == before.data
    assert olt.locks == {}
    with pytest.raises(DriverError, match="nothing to roll back"):
        await dev.rollback()


async def test_rollback_keeps_what_was_there_before(dev: NetconfDriver, olt: Olt) -> None:
    await dev.load_candidate(payload(b.onu_registration(ONU)))
    await dev.commit()
    with_onu = olt.running
    other = b.OnuSpec("0/1/1", 5, "ABCD00000005")
    await dev.load_candidate(payload(b.onu_registration(other)))
    await dev.commit()
    await dev.rollback()
    assert olt.running.same(with_onu)


# ---- sessions: pipelining, framing, reconnect, close -----------------------------------------

async def test_pipelining_fifty_requests_on_one_session(dev: NetconfDriver, olt: Olt) -> None:
    names = [f"ct-0/1/{i % 2}" if i % 3 else "uplink-0/9/0" for i in range(50)]
    session = dev._session
    assert session is not None
    in_flight: list[int] = []

    async def one(name: str) -> list[str]:
        task = asyncio.ensure_future(dev.get_config(iface_filter(name)))
        await asyncio.sleep(0)
        in_flight.append(session.pending)
        return iface_names((await task).data)

    results = await asyncio.gather(*(one(n) for n in names))
    assert results == [[n] for n in names]  # every reply went to its own request
    assert 1 < max(in_flight) <= dev.max_in_flight  # in flight together, within the bound
    assert session.pending == 0


async def test_base10_framing(server: NetconfServer, host_key: asyncssh.SSHKey) -> None:
    async with NetconfDriver(target(server, host_key), base11=False) as d:
        assert d.framing == "1.0"
        results = await asyncio.gather(*(d.get_config(iface_filter("ct-0/1/0"))
                                         for _ in range(10)))
        assert all(iface_names(r.data) == ["ct-0/1/0"] for r in results)
        await d.load_candidate(payload(b.onu_registration(ONU)))
        assert (await d.commit()).changed


async def test_reconnect_and_close_are_idempotent(server: NetconfServer,
                                                  host_key: asyncssh.SSHKey,
                                                  olt: Olt) -> None:
    d = NetconfDriver(target(server, host_key))
    assert not d.connected
    with pytest.raises(DriverError, match="not connected"):
        await d.get_config()
    await d.connect()
    await d.connect()  # already connected: nothing happens
    first = d.session_id
    await d.load_candidate(payload(b.onu_registration(ONU)))
    await d.reconnect()
    assert d.session_id != first
    # The old session's locks and candidate went with it.
    await eventually(lambda: first not in olt.session_closers, "the old session to end")
    assert olt.locks == {}
    assert not (await d.commit()).changed
    await d.close()
    await d.close()
    assert not d.connected
    await eventually(lambda: not olt.session_closers, "the server to see the session end")


# ---- notifications and events ----------------------------------------------------------------

async def test_notifications_arrive_as_events(dev: NetconfDriver, olt: Olt) -> None:
    events: asyncio.Queue[DeviceEvent] = asyncio.Queue()

    async def consume() -> None:
        async for event in dev.events():
            await events.put(event)

    consumer = asyncio.create_task(consume())
    await eventually(lambda: olt._listeners, "the subscription")
    olt.add_ont("ABCD0000BEEF", "0/1/1")
    event = await asyncio.wait_for(events.get(), WAIT_S)
    assert event.kind == "onu-state-change"
    assert event.host == "127.0.0.1"
    assert event.fields["detected-serial-number"] == "ABCD0000BEEF"
    assert event.fields["channel-termination-ref"] == "ct-0/1/1"
    assert event.fields["ont-state"] == "unclaimed"
    assert isinstance(event.raw, bytes)
    assert b"<eventTime>" in event.raw
    # Requests and notifications share the session (interleave).
    assert "ct-0/1/0" in iface_names((await dev.get_config()).data)
    await dev.close()
    await asyncio.wait_for(consumer, WAIT_S)  # the stream ends when the driver closes
    await eventually(lambda: not olt._listeners, "the subscription to end")


# ---- a gateway: writable running only ---------------------------------------------------------

@pytest.fixture
def gateway(olt: Olt) -> Gateway:
    return make_gateway(olt)


@pytest.fixture
async def gw(gateway: Gateway, host_key: asyncssh.SSHKey) -> AsyncIterator[NetconfDriver]:
    srv = await NetconfServer.start(gateway, "127.0.0.1", 0, host_key)
    try:
        async with NetconfDriver(target(srv, host_key), poll_interval=0.05) as d:
            yield d
    finally:
        await srv.close()


async def test_gateway_declares_what_it_cannot_do(gw: NetconfDriver) -> None:
    caps = gw.capabilities
    assert not caps.candidate
    assert not caps.confirmed_commit
    assert not caps.validate
    assert not caps.notifications
    assert not caps.transactions
    assert caps.locking
    assert caps.rollback == "best-effort"
    assert rpc.WRITABLE_RUNNING in caps.details
    with pytest.raises(UnsupportedError, match="confirm timeout"):
        await gw.commit(confirm_timeout=30)
    with pytest.raises(UnsupportedError):
        await gw.confirm()


async def test_gateway_load_compare_commit_rollback(gw: NetconfDriver, gateway: Gateway) -> None:
    url1 = "https://phan.example.net/l/abc?t=1&amp;u=2"
    await gw.load_candidate(gateway_payload(url1, 100))
    assert gateway.phan_url == ""  # kept locally until commit
    diff = await gw.compare()
    assert diff.lines[:2] == ("--- running", "+++ payload")
    assert f"+  <phan-url>{url1}</phan-url>" in diff.lines
    result = await gw.commit()
    assert result.changed
    assert gateway.phan_url == "https://phan.example.net/l/abc?t=1&u=2"
    assert gateway.wan_vlan == 100
    assert (await gw.compare()).empty

    url2 = "https://phan.example.net/l/def"
    await gw.load_candidate(gateway_payload(url2))
    diff = await gw.compare()
    assert f"-  <phan-url>{url1}</phan-url>" in diff.lines
    assert f"+  <phan-url>{url2}</phan-url>" in diff.lines
    assert not any("wan-vlan" in line for line in diff.lines if line[:1] in "+-")
    await gw.commit()
    assert gateway.phan_url == url2
    await gw.rollback()
    assert gateway.phan_url == "https://phan.example.net/l/abc?t=1&u=2"
    assert gateway.wan_vlan == 100
    # discard drops the local payload
    await gw.load_candidate(gateway_payload(url2))
    await gw.discard()
    assert (await gw.compare()).empty
    assert not (await gw.commit()).changed


async def test_gateway_rejects_bad_value_and_keeps_running(gw: NetconfDriver,
                                                           gateway: Gateway) -> None:
    await gw.load_candidate(gateway_payload("ftp://nope"))
    with pytest.raises(NetconfRejectedError) as info:
        await gw.commit()
    assert info.value.tag == "invalid-value"
    assert gateway.phan_url == ""


async def test_gateway_events_by_polling(gw: NetconfDriver, gateway: Gateway) -> None:
    stream = cast(AsyncGenerator[DeviceEvent, None], gw.events())
    first = asyncio.ensure_future(anext(stream))
    n = 0

    def changed() -> bool:
        # Change the gateway until a poll sees it (the first poll only takes a baseline).
        nonlocal n
        if not first.done():
            n += 1
            gateway.set(phan_url=f"https://phan.example.net/l/xyz{n}")
        return first.done()

    await eventually(changed, "a poll-changed event")
    event = first.result()
    assert event.kind == "poll-changed"
    assert isinstance(event.raw, str)
    assert "https://phan.example.net/l/xyz" in event.raw
    assert event.fields == {"source": "running"}
    await stream.aclose()


# ---- bulk ------------------------------------------------------------------------------------

async def test_run_bulk_one_device_down(host_key: asyncssh.SSHKey) -> None:
    olts = [make_olt("olt-a"), make_olt("olt-b")]
    servers = [await NetconfServer.start(o, "127.0.0.1", 0, host_key) for o in olts]
    try:
        targets = {f"dev-{i}": target(s, host_key) for i, s in enumerate(servers)}
        targets["dev-down"] = SshTarget("127.0.0.1", free_port(), password="admin",
                                        known_hosts_text="", timeout=5)

        async def work(name: str) -> int:
            async with NetconfDriver(targets[name]) as d:
                return len(iface_names((await d.get_config()).data))

        result = await run_bulk(list(targets), lambda name: name, work, limit=2)
        assert sorted(result.ok_hosts) == ["dev-0", "dev-1"]
        assert result.ok_hosts["dev-0"].value == 9
        assert list(result.failed_hosts) == ["dev-down"]
        assert isinstance(result.failed_hosts["dev-down"].error, RefusedError)
        with pytest.raises(DriverError, match="1 of 3 devices failed"):
            result.raise_on_error()
    finally:
        for s in servers:
            await s.close()
