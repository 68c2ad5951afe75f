"""Request datagrams as the wrong_credentials fault makes the engine see them.

The fault must look, from the client, like credentials that no longer match: a v1/v2c
request with an unknown community gets no answer at all, and an authenticated v3 request gets
the USM report a wrong key earns (usmStatsWrongDigests). Rather than reconfigure the engine's
USM and community tables while the fault is on (they may be shared by several devices), the
request's authentication parameters are spoiled on the way in, so pysnmp's own USM refuses it
exactly as it refuses a wrong key. Unauthenticated v3 messages (engine discovery) pass, as they
would on a real agent.
"""

from __future__ import annotations

from pyasn1.codec.ber import decoder, encoder
from pyasn1.error import PyAsn1Error
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

SNMP_V3 = 3
_AUTH_FLAG = 0x01


def message_version(datagram: bytes) -> int | None:
    """The msgVersion of an SNMP message (0 = v1, 1 = v2c, 3 = v3), or None if unreadable."""
    # SEQUENCE { INTEGER version, ... }: read just enough BER to find it.
    try:
        if len(datagram) < 2 or datagram[0] != 0x30:
            return None
        pos = 2
        if datagram[1] & 0x80:
            pos += datagram[1] & 0x7F
        if datagram[pos] != 0x02:
            return None
        n = datagram[pos + 1]
        if not 1 <= n <= 4:
            return None
        return int.from_bytes(datagram[pos + 2:pos + 2 + n], "big", signed=True)
    except IndexError:
        return None


def refuse_credentials(datagram: bytes) -> bytes | None:
    """The datagram to hand to the engine under wrong_credentials, or None to drop it."""
    if message_version(datagram) != SNMP_V3:
        return None
    try:
        msg, _ = decoder.decode(datagram, asn1Spec=SNMPv3Message())
        flags = msg["msgGlobalData"]["msgFlags"].asNumbers()
        if not flags or not flags[0] & _AUTH_FLAG:
            return datagram
        usm, _ = decoder.decode(bytes(msg["msgSecurityParameters"]),
                                asn1Spec=UsmSecurityParameters())
        digest = bytes(usm["msgAuthenticationParameters"])
        usm["msgAuthenticationParameters"] = bytes(b ^ 0xFF for b in digest) or b"\x00" * 12
        msg["msgSecurityParameters"] = encoder.encode(usm)
        return bytes(encoder.encode(msg))
    except PyAsn1Error:
        return None
