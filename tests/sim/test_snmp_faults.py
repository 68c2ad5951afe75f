"""Faults on the SNMP face (loss, latency, wrong credentials) and hostile datagrams."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from scapy.asn1.asn1 import ASN1_OID
from scapy.layers.snmp import SNMP, SNMPbulk, SNMPresponse, SNMPset, SNMPvarbind

from simulator.snmp import SnmpAgent
from tests.sim.snmp_tools import (
    SYS_NAME,
    get_request_bytes,
    make_gateway,
    make_olt,
    net_snmp,
    serving,
    v2c,
    v3,
)


async def exchange(agent: SnmpAgent, datagram: bytes, wait: float = 0.3) -> bytes | None:
    """Send one raw datagram to the agent; the reply, or None if none came within ``wait``."""
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        await loop.sock_sendto(sock, datagram, ("127.0.0.1", agent.port))
        try:
            reply, _ = await asyncio.wait_for(loop.sock_recvfrom(sock, 65535), wait)
        except TimeoutError:
            return None
        return reply


async def test_snmp_loss_drops_requests_silently(tmp_path: Path) -> None:
    olt = make_olt()
    async with serving(olt) as agent:
        olt.faults.set("snmp_loss", 1.0)
        lost = await net_snmp("snmpget", *v2c(agent, timeout=0.3, retries=0), SYS_NAME,
                              home=tmp_path)
        olt.faults.clear()
        back = await net_snmp("snmpget", *v2c(agent), SYS_NAME, home=tmp_path)
    assert lost.rc != 0, lost.text
    assert "Timeout" in lost.text
    assert back.values() == {SYS_NAME: "olt1"}


async def test_latency_delays_the_answer_without_blocking_the_loop(tmp_path: Path) -> None:
    olt = make_olt()
    gw = make_gateway(olt)
    async with serving(olt) as slow, serving(gw) as fast:
        olt.faults.set("latency", 0.6)
        impatient, patient, other = await asyncio.gather(
            net_snmp("snmpget", *v2c(slow, timeout=0.3, retries=0), SYS_NAME,
                     home=tmp_path / "a"),
            net_snmp("snmpget", *v2c(slow, timeout=3, retries=0), SYS_NAME,
                     home=tmp_path / "b"),
            net_snmp("snmpget", *v2c(fast, timeout=3, retries=0), SYS_NAME,
                     home=tmp_path / "c"))
    assert impatient.rc != 0, impatient.text
    assert "Timeout" in impatient.text
    assert patient.values() == {SYS_NAME: "olt1"}
    assert patient.seconds >= 0.6
    # The other device answered while the slow one's reply was being held back.
    assert other.values() == {SYS_NAME: "gw1"}
    assert other.seconds < 0.5


async def test_wrong_credentials_refuse_every_request(tmp_path: Path) -> None:
    olt = make_olt()
    async with serving(olt) as agent:
        olt.faults.set("wrong_credentials", True)
        for community in ("public", "private"):
            run = await net_snmp("snmpget", *v2c(agent, community, timeout=0.3, retries=0),
                                 SYS_NAME, home=tmp_path / "v2c")
            assert run.rc != 0, run.text  # no answer at all
            assert "Timeout" in run.text
        run = await net_snmp("snmpget", *v3(agent), SYS_NAME, home=tmp_path / "v3a")
        assert run.rc != 0, run.text
        assert "Authentication failure" in run.text
        olt.faults.clear()
        for args, home in ((v2c(agent), "v2c"), (v3(agent), "v3b")):
            run = await net_snmp("snmpget", *args, SYS_NAME, home=tmp_path / home)
            assert run.values() == {SYS_NAME: "olt1"}, run.text


GARBAGE = [
    b"",
    b"\x00",
    b"hello, agent",
    b"\x30\x84\xff\xff\xff\xff\x02\x01\x01",  # a SEQUENCE claiming 4 GiB
    b"\x30\x03\x02\x01",  # truncated version
    b"\x30\x0c\x02\x01\x03\x30\x07\x02\x01\x01",  # a v3 header cut short
    b"\xff" * 1400,
]


async def test_malformed_datagrams_leave_the_agent_serving(tmp_path: Path) -> None:
    olt = make_olt()
    valid = get_request_bytes()
    async with serving(olt) as agent:
        for wrong_credentials in (False, True):
            olt.faults.wrong_credentials = wrong_credentials
            for datagram in [*GARBAGE, valid[: len(valid) // 2], valid[:-1], valid + b"\x00"]:
                reply = await exchange(agent, datagram, wait=0.05)
                if datagram != valid + b"\x00":
                    assert reply is None, datagram
        olt.faults.clear()
        run = await net_snmp("snmpget", *v2c(agent), SYS_NAME, home=tmp_path)
    assert run.values() == {SYS_NAME: "olt1"}, run.text


async def test_requests_crafted_with_scapy(tmp_path: Path) -> None:
    olt = make_olt()
    async with serving(olt) as agent:
        reply = await exchange(agent, get_request_bytes(request_id=4242))
        assert reply is not None
        answer = SNMP(reply)
        assert isinstance(answer.PDU, SNMPresponse)
        assert int(answer.PDU.id.val) == 4242
        assert int(answer.PDU.error.val) == 0
        (vb,) = answer.PDU.varbindlist
        assert vb.oid.val == SYS_NAME
        assert vb.value.val == b"olt1"

        # GetBulk with a negative non-repeaters breaks the PDU's ASN.1 constraints: dropped.
        # A huge max-repetitions is legal: the answer is capped (pysnmp: 64 varbinds).
        for non_repeaters, answered in ((-5, False), (0, True)):
            bulk = SNMP(community="public", PDU=SNMPbulk(
                id=5, non_repeaters=non_repeaters, max_repetitions=100000,
                varbindlist=[SNMPvarbind(oid=ASN1_OID("1.3.6.1"))]))
            reply = await exchange(agent, bytes(bulk))
            assert (reply is not None) == answered
            if reply is not None:
                assert 0 < len(SNMP(reply).PDU.varbindlist) <= 64

        # A SET from an unknown community, and one whose value type the agent never uses.
        stranger = SNMP(community="guess", PDU=SNMPset(id=6, varbindlist=[
            SNMPvarbind(oid=ASN1_OID(SYS_NAME), value=b"x")]))
        assert await exchange(agent, bytes(stranger), wait=0.2) is None
        odd = SNMP(community="private", PDU=SNMPset(id=7, varbindlist=[SNMPvarbind(
            oid=ASN1_OID("1.3.6.1.4.1.32473.1.1.2.1.3.1.5"), value=ASN1_OID("1.2.3"))]))
        reply = await exchange(agent, bytes(odd))
        assert reply is not None
        assert int(SNMP(reply).PDU.error.val) == 7

        started = time.perf_counter()
        run = await net_snmp("snmpget", *v2c(agent), SYS_NAME, home=tmp_path)
    assert run.values() == {SYS_NAME: "olt1"}
    assert time.perf_counter() - started < 2
    assert olt.view.onus["ont-0/1/0-5"].description == "Main Street 1"
