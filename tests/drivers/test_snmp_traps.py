"""The trap/inform receiver: notifications from the simulator and from net-snmp's snmptrap and
snmpinform, as DeviceEvents; hostile datagrams do not stop it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from scapy.asn1.asn1 import ASN1_OID, ASN1_STRING, ASN1_TIME_TICKS
from scapy.layers.snmp import SNMP, SNMPinform, SNMPtrapv2, SNMPvarbind

from drivers.base import DeviceEvent
from drivers.errors import ConnectError, UnsupportedError
from drivers.snmp.driver import SnmpDriver
from drivers.snmp.target import SnmpTarget
from drivers.snmp.traps import TrapReceiver, TrapUser
from simulator.devices import TrapTarget
from simulator.snmp.wire import message_version
from tests.drivers.snmp_lab import run_tool, sim_v2c, sim_v3
from tests.sim.snmp_tools import KNOWN_SERIAL, make_olt, operational, serving

DISCOVERED = "1.3.6.1.4.1.32473.1.0.1"
COLD_START = "1.3.6.1.6.3.1.1.5.1"
ONT_SERIAL_1_5 = "1.3.6.1.4.1.32473.1.1.2.1.2.1.5"
SENDER_ENGINE_ID = bytes.fromhex("80007ed904736e6d707472617031")  # "snmptrap1", RFC 5612 ent.
AUTH, PRIV = "trap-auth-key", "trap-priv-key"
WAIT = 5.0


async def next_event(events: AsyncIterator[DeviceEvent], timeout: float = WAIT) -> DeviceEvent:
    return await asyncio.wait_for(anext(events), timeout)


async def nothing_within(events: AsyncIterator[DeviceEvent], seconds: float) -> None:
    try:
        extra = await asyncio.wait_for(anext(events), seconds)
    except TimeoutError:
        return
    raise AssertionError(f"unexpected event {extra}")


async def send(port: int, *datagrams: bytes) -> None:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        for datagram in datagrams:
            await loop.sock_sendto(sock, datagram, ("127.0.0.1", port))


def scapy_trap(community: str, serial: bytes = b"ABCD00000005", *, inform: bool = False,
               request_id: int = 1) -> bytes:
    """A v2c ponctlOntUp notification encoded by scapy (independent of pysnmp)."""
    pdu = SNMPinform if inform else SNMPtrapv2
    return bytes(SNMP(community=community, PDU=pdu(id=request_id, varbindlist=[
        SNMPvarbind(oid=ASN1_OID("1.3.6.1.2.1.1.3.0"), value=ASN1_TIME_TICKS(42)),
        SNMPvarbind(oid=ASN1_OID("1.3.6.1.6.3.1.1.4.1.0"),
                    value=ASN1_OID("1.3.6.1.4.1.32473.1.0.2")),
        SNMPvarbind(oid=ASN1_OID(ONT_SERIAL_1_5), value=ASN1_STRING(serial)),
    ])))


# ---- from the simulator, through the driver ------------------------------------------------
async def test_simulator_traps_arrive_as_driver_events() -> None:
    olt = make_olt(with_onts=False)
    async with TrapReceiver(communities=["traps"]) as receiver:
        targets = [TrapTarget("127.0.0.1", receiver.port, "v2c", "traps"),
                   TrapTarget("127.0.0.1", receiver.port, "v3")]
        async with serving(olt, targets) as agent, \
                SnmpDriver(sim_v3(agent), receiver=receiver) as dev:
            # Connecting over v3 taught the receiver the OLT's engine ID for its v3 traps.
            assert dev.capabilities.notifications
            events = dev.events()
            olt.add_ont("WXYZ0000CAFE", "0/1/1")
            found = [await next_event(events), await next_event(events)]  # v2c and v3
            ont = olt.add_ont(KNOWN_SERIAL, "0/1/0")
            await operational(olt, KNOWN_SERIAL)
            up = [await next_event(events), await next_event(events)]
            ont.set_power(False)
            down = [await next_event(events), await next_event(events)]
            await events.aclose()
    for event in found:
        assert (event.kind, event.host) == ("ponctlOntDiscovered", "127.0.0.1")
        assert event.fields["ponctlAutofindSerial.2.1"] == "WXYZ0000CAFE"
        assert event.fields["ponctlPonPortName.2"] == "0/1/1"
        assert event.fields["snmpTrapOID.0"] == DISCOVERED
        assert isinstance(event.raw, bytes)
    # One came as SNMPv2c (msgVersion 1), one as SNMPv3 (3).
    assert sorted(message_version(e.raw) or 0 for e in found if isinstance(e.raw, bytes)) == [1, 3]
    assert [e.kind for e in up] == ["ponctlOntUp"] * 2
    assert up[0].fields["ponctlOntSerial.1.5"] == KNOWN_SERIAL
    assert up[0].fields["ponctlOntOperStatus.1.5"] == "3"
    assert [e.kind for e in down] == ["ponctlOntDown"] * 2
    assert down[1].fields["ponctlOntOperStatus.1.5"] == "5"  # dyingGasp
    assert receiver.received == 6


async def test_v3_traps_need_the_senders_engine_id() -> None:
    olt = make_olt(with_onts=False)
    async with TrapReceiver(communities=["traps"]) as receiver:
        events = receiver.events()
        async with serving(olt, [TrapTarget("127.0.0.1", receiver.port, "v3")]) as agent:
            olt.add_ont("WXYZ0000CAFE", "0/1/1")
            await nothing_within(events, 0.5)  # the OLT's engine ID is not known yet
            # A v2c driver learns no engine ID; the user is added by hand.
            async with SnmpDriver(sim_v2c(agent), receiver=receiver) as dev:
                assert dev.client.engine_id is None
            receiver.add_user(TrapUser("ponctl", "ponctl-auth-key", "ponctl-priv-key",
                                       engine_id=agent.engine_id))
            olt.add_ont("WXYZ0000BEEF", "0/1/1")
            event = await next_event(events)
        await events.aclose()
    assert event.kind == "ponctlOntDiscovered"
    assert "WXYZ0000BEEF" in event.fields.values()


# ---- from net-snmp's tools ----------------------------------------------------------------
async def test_snmptrap_v2c_and_v3(tmp_path: Path) -> None:
    users = [TrapUser("ponctl", AUTH, PRIV, engine_id=SENDER_ENGINE_ID)]
    async with TrapReceiver(communities=["public"], users=users) as receiver:
        events = receiver.events()
        where = f"udp:127.0.0.1:{receiver.port}"
        varbinds = [DISCOVERED, "1.3.6.1.4.1.32473.1.1.4.1.2.2.1", "s", "WXYZ0000CAFE",
                    "1.3.6.1.4.1.32473.1.1.1.1.2.2", "s", "0/1/1"]
        rc, out = await run_tool("snmptrap", "-v2c", "-c", "public", "-m", "", where, "",
                                 *varbinds, home=tmp_path)
        assert rc == 0, out
        v2c = await next_event(events)
        rc, out = await run_tool("snmptrap", "-v3", "-e", SENDER_ENGINE_ID.hex(), "-u",
                                 "ponctl", "-l", "authPriv", "-a", "SHA", "-A", AUTH, "-x",
                                 "AES", "-X", PRIV, "-m", "", where, "", *varbinds,
                                 home=tmp_path)
        assert rc == 0, out
        v3 = await next_event(events)
        # SNMPv1: enterprise 32473.1, specific trap 2 is ponctlOntUp (RFC 3584 3.1).
        rc, out = await run_tool("snmptrap", "-v1", "-c", "public", "-m", "", where,
                                 "1.3.6.1.4.1.32473.1", "127.0.0.1", "6", "2", "",
                                 ONT_SERIAL_1_5, "s", "ABCD00000005", home=tmp_path)
        assert rc == 0, out
        v1 = await next_event(events)
        assert (v1.kind, v1.fields["ponctlOntSerial.1.5"]) == ("ponctlOntUp", "ABCD00000005")
        # The same user with a key the receiver does not have: dropped.
        rc, out = await run_tool("snmptrap", "-v3", "-e", SENDER_ENGINE_ID.hex(), "-u",
                                 "ponctl", "-l", "authPriv", "-a", "SHA", "-A",
                                 "wrong-auth-key", "-x", "AES", "-X", PRIV, "-m", "", where,
                                 "", *varbinds, home=tmp_path)
        assert rc == 0, out
        await nothing_within(events, 0.3)
        await events.aclose()
    for event in (v2c, v3):
        assert (event.kind, event.host) == ("ponctlOntDiscovered", "127.0.0.1")
        assert event.fields["ponctlAutofindSerial.2.1"] == "WXYZ0000CAFE"
        assert event.fields["ponctlPonPortName.2"] == "0/1/1"
        assert int(event.fields["sysUpTime.0"]) >= 0


async def test_snmpinform_v2c_and_v3_are_acknowledged(tmp_path: Path) -> None:
    # INFORMs: the receiver is the authoritative engine, so the v3 user has no engine_id.
    async with TrapReceiver(communities=["public"],
                            users=[TrapUser("ponctl", AUTH, PRIV)]) as receiver:
        events = receiver.events()
        common = ["-m", "", "-t", "2", "-r", "1", f"udp:127.0.0.1:{receiver.port}", "",
                  COLD_START]
        rc, out = await run_tool("snmpinform", "-v2c", "-c", "public", *common, home=tmp_path)
        assert rc == 0, out  # snmpinform exits 0 only once the INFORM is acknowledged
        v2c = await next_event(events)
        rc, out = await run_tool("snmpinform", "-v3", "-u", "ponctl", "-l", "authPriv",
                                 "-a", "SHA", "-A", AUTH, "-x", "AES", "-X", PRIV, *common,
                                 home=tmp_path)
        assert rc == 0, out
        v3 = await next_event(events)
        rc, out = await run_tool("snmpinform", "-v2c", "-c", "guess", *common[:2], "-t", "0.3",
                                 "-r", "0", *common[6:], home=tmp_path)
        assert rc != 0, out  # an unknown community is not acknowledged
        await events.aclose()
    assert v2c.kind == v3.kind == "coldStart"


# ---- hostile input -------------------------------------------------------------------------
GARBAGE = [
    b"",
    b"\x00",
    b"hello, receiver",
    b"\x30\x84\xff\xff\xff\xff\x02\x01\x01",  # a SEQUENCE claiming 4 GiB
    b"\x30\x03\x02\x01",  # truncated version
    b"\x30\x0c\x02\x01\x03\x30\x07\x02\x01\x01",  # a v3 header cut short
    b"\xff" * 1400,
]


async def test_malformed_datagrams_do_not_stop_the_receiver() -> None:
    async with TrapReceiver(communities=["public"]) as receiver:
        events = receiver.events()
        valid = scapy_trap("public")
        await send(receiver.port, *GARBAGE, valid[: len(valid) // 2], valid[:-1],
                   scapy_trap("wrong-community"), scapy_trap("public", inform=True)[:-3])
        await nothing_within(events, 0.3)
        await send(receiver.port, valid)
        event = await next_event(events)
        # An INFORM crafted by scapy gets scapy-readable acknowledgement.
        loop = asyncio.get_running_loop()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            await loop.sock_sendto(sock, scapy_trap("public", b"ABCD00000009", inform=True,
                                                    request_id=77),
                                   ("127.0.0.1", receiver.port))
            reply = SNMP(await asyncio.wait_for(loop.sock_recv(sock, 65535), WAIT))
        informed = await next_event(events)
        await events.aclose()
    assert (event.kind, event.fields["ponctlOntSerial.1.5"]) == ("ponctlOntUp", "ABCD00000005")
    assert informed.fields["ponctlOntSerial.1.5"] == "ABCD00000009"
    assert int(reply.PDU.id.val) == 77
    assert int(reply.PDU.error.val) == 0


def broken_subscriber(event: DeviceEvent) -> None:
    raise RuntimeError(f"cannot handle {event.kind}")


async def test_subscribers_and_per_host_filtering() -> None:
    seen: list[DeviceEvent] = []
    async with TrapReceiver(communities=["public"]) as receiver:
        unsubscribe = receiver.subscribe(seen.append)
        receiver.subscribe(broken_subscriber)  # logged, and the others still get events
        others = receiver.events(host="192.0.2.1")
        mine = receiver.events(host="127.0.0.1")
        await send(receiver.port, scapy_trap("public"))
        event = await next_event(mine)
        await nothing_within(others, 0.1)
        unsubscribe()
        await send(receiver.port, scapy_trap("public"))
        await next_event(mine)
        await others.aclose()
        await mine.aclose()
    assert seen == [event]
    # Closing the receiver ends every iterator.
    ended = [e async for e in receiver.events()]
    assert ended == []


def test_driver_without_receiver_declares_no_events() -> None:
    dev = SnmpDriver(SnmpTarget("127.0.0.1"))
    assert not dev.capabilities.notifications
    with pytest.raises(UnsupportedError, match="without a trap receiver"):
        dev.events()


async def test_a_busy_port_is_a_connect_error() -> None:
    async with TrapReceiver() as first:
        second = TrapReceiver(port=first.port)
        with pytest.raises(ConnectError, match="cannot listen for traps"):
            await second.start()
        assert not second.running
