"""The edge between pysnmp and the driver: values and errors are converted here, and only here.

Pure functions and tables, no I/O: pysnmp value objects <-> ``Varbind``, protocol names ->
pysnmp's USM protocol identifiers, and pysnmp's outcome of a request (error indication,
error-status, error-index) -> one ``DriverError`` subtype.

Error mapping (the agent depends on this split; see drivers/errors.py):

=======================================================  ===================================
pysnmp outcome                                           DriverError
=======================================================  ===================================
``RequestTimedOut`` (no answer after all retries)         DriverTimeoutError
v3 report ``usmStatsWrongDigests``, ``UnknownUserNames``, AuthenticationError
``DecryptionErrors``, ``UnsupportedSecLevels``,
``NotInTimeWindows``; local ``AuthenticationFailure``,
``DecryptionError`` and friends
error-status != noError in a response                    SnmpRejectedError(status, index, oid)
unparseable or mismatched response, other reports,        ProtocolError
``UnknownEngineID`` after discovery retries, non-
increasing OIDs in a walk
=======================================================  ===================================

SNMP runs over UDP, and an agent sends nothing back for a wrong community, so neither a
wrong community nor a port nobody listens on nor a host that is down can be told from a slow
agent: all three are DriverTimeoutError after ``timeout * (retries + 1)``.
"""

from __future__ import annotations

from typing import Any

from pyasn1.type import univ
from pysnmp.entity import config
from pysnmp.proto import errind, rfc1902, rfc1905

from drivers.errors import (
    AuthenticationError,
    DriverError,
    DriverTimeoutError,
    ProtocolError,
    SnmpRejectedError,
)
from drivers.snmp.varbind import Varbind, VarType, normalize_oid

# ---- SNMPv3 USM protocols -------------------------------------------------------------------
AUTH_PROTOCOLS: dict[str, Any] = {
    "SHA": config.USM_AUTH_HMAC96_SHA,
    "SHA224": config.USM_AUTH_HMAC128_SHA224,
    "SHA256": config.USM_AUTH_HMAC192_SHA256,
    "SHA384": config.USM_AUTH_HMAC256_SHA384,
    "SHA512": config.USM_AUTH_HMAC384_SHA512,
}
# AES-192/256 need longer keys than SHA-1 yields, and there are two ways to extend them:
# draft-blumenthal-aes-usm-04 (net-snmp's AES192/AES256, so the plain names here) and
# Reeder's (Cisco's; "AES192C"/"AES256C"). With SHA-256 or stronger the two agree.
PRIV_PROTOCOLS: dict[str, Any] = {
    "AES": config.USM_PRIV_CFB128_AES,
    "AES192": config.USM_PRIV_CFB192_AES_BLUMENTHAL,
    "AES256": config.USM_PRIV_CFB256_AES_BLUMENTHAL,
    "AES192C": config.USM_PRIV_CFB192_AES,
    "AES256C": config.USM_PRIV_CFB256_AES,
}
NO_PRIV = config.USM_PRIV_NONE


# ---- values --------------------------------------------------------------------------------
_ENCODE: dict[VarType, Any] = {
    VarType.INTEGER: rfc1902.Integer32,
    VarType.UNSIGNED: rfc1902.Unsigned32,
    VarType.GAUGE32: rfc1902.Gauge32,
    VarType.COUNTER32: rfc1902.Counter32,
    VarType.COUNTER64: rfc1902.Counter64,
    VarType.TIMETICKS: rfc1902.TimeTicks,
    VarType.IP_ADDRESS: rfc1902.IpAddress,
    VarType.OPAQUE: rfc1902.Opaque,
}
# Decoding goes by BER tag, not Python class: pysnmp may hand back subclasses or choices.
_BY_TAG: dict[Any, VarType] = {
    rfc1902.Integer32.tagSet: VarType.INTEGER,
    rfc1902.Gauge32.tagSet: VarType.GAUGE32,  # == Unsigned32's tag
    rfc1902.Counter32.tagSet: VarType.COUNTER32,
    rfc1902.Counter64.tagSet: VarType.COUNTER64,
    rfc1902.TimeTicks.tagSet: VarType.TIMETICKS,
    rfc1902.IpAddress.tagSet: VarType.IP_ADDRESS,
    rfc1902.Opaque.tagSet: VarType.OPAQUE,
    rfc1902.OctetString.tagSet: VarType.OCTET_STRING,
    rfc1902.ObjectIdentifier.tagSet: VarType.OBJECT_IDENTIFIER,
    univ.Null.tagSet: VarType.NULL,
    rfc1905.NoSuchObject.tagSet: VarType.NO_SUCH_OBJECT,
    rfc1905.NoSuchInstance.tagSet: VarType.NO_SUCH_INSTANCE,
    rfc1905.EndOfMibView.tagSet: VarType.END_OF_MIB_VIEW,
}
_EXCEPTION_VALUES: dict[VarType, Any] = {
    VarType.NULL: univ.Null(""),
    VarType.NO_SUCH_OBJECT: rfc1905.noSuchObject,
    VarType.NO_SUCH_INSTANCE: rfc1905.noSuchInstance,
    VarType.END_OF_MIB_VIEW: rfc1905.endOfMibView,
}


def object_name(oid: str) -> rfc1902.ObjectName:
    """A numeric OID as pysnmp's ObjectName."""
    return rfc1902.ObjectName(normalize_oid(oid))


def to_pysnmp(vb: Varbind) -> tuple[rfc1902.ObjectName, Any]:
    """A varbind (with a numeric OID) as the (ObjectName, value) pair pysnmp sends."""
    t, v = vb.type, vb.value
    if t in _EXCEPTION_VALUES:
        value: Any = _EXCEPTION_VALUES[t]
    elif t == VarType.OCTET_STRING:
        assert isinstance(v, str)
        value = rfc1902.OctetString(v.encode())
    elif t == VarType.HEX:
        assert isinstance(v, bytes)
        value = rfc1902.OctetString(v)
    elif t == VarType.OBJECT_IDENTIFIER:
        assert isinstance(v, str)
        value = rfc1902.ObjectIdentifier(normalize_oid(v))
    else:
        value = _ENCODE[t](v)
    return object_name(vb.oid), value


def from_pysnmp(name: Any, value: Any) -> Varbind:
    """A response varbind from pysnmp as a ``Varbind``; ProtocolError for a type SNMP lacks."""
    oid = ".".join(str(arc) for arc in tuple(name))
    t = _BY_TAG.get(value.getTagSet())
    if t is None:
        raise ProtocolError(f"{oid}: value of unknown type {type(value).__name__}")
    if t in _EXCEPTION_VALUES:
        return Varbind(oid, t)
    if t == VarType.OCTET_STRING:
        raw = bytes(value.asOctets())
        text = _printable(raw)
        return Varbind(oid, VarType.OCTET_STRING, text) if text is not None \
            else Varbind(oid, VarType.HEX, raw)
    if t == VarType.OPAQUE:
        return Varbind(oid, t, bytes(value.asOctets()))
    if t == VarType.IP_ADDRESS:
        return Varbind(oid, t, ".".join(str(b) for b in bytes(value.asOctets())))
    if t == VarType.OBJECT_IDENTIFIER:
        return Varbind(oid, t, ".".join(str(arc) for arc in tuple(value)))
    return Varbind(oid, t, int(value))


def _printable(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if all(c.isprintable() or c in "\t\r\n" for c in text):
        return text
    return None


# ---- errors --------------------------------------------------------------------------------
_AUTH_INDICATIONS: tuple[type[errind.ErrorIndication], ...] = (
    errind.WrongDigest, errind.UnknownUserName, errind.DecryptionError,
    errind.UnsupportedSecurityLevel, errind.NotInTimeWindow, errind.AuthenticationFailure,
    errind.AuthenticationError, errind.UnknownSecurityName, errind.NoAuthentication,
    errind.NoEncryption, errind.EncryptionError, errind.UnsupportedAuthProtocol,
    errind.UnsupportedPrivProtocol, errind.UnknownCommunityName,
)
_HINTS: dict[type[errind.ErrorIndication], str] = {
    errind.WrongDigest: "wrong authentication key or protocol (usmStatsWrongDigests)",
    errind.UnknownUserName: "the agent does not know this SNMPv3 user "
                            "(usmStatsUnknownUserNames)",
    errind.DecryptionError: "wrong privacy key or protocol (usmStatsDecryptionErrors)",
    errind.UnsupportedSecurityLevel: "the user is not configured for this security level "
                                     "(usmStatsUnsupportedSecLevels)",
    errind.NotInTimeWindow: "message outside the agent's time window "
                            "(usmStatsNotInTimeWindows)",
}


def error_from_indication(indication: Any, *, host: str | None,
                          timeout: float | None = None) -> DriverError:
    """The DriverError for a pysnmp error indication (an engine-level failure)."""
    if isinstance(indication, errind.RequestTimedOut):
        after = f" within {timeout:g} s per try" if timeout is not None else ""
        return DriverTimeoutError(
            f"no SNMP response{after} (agent down, port closed, packets lost, or a "
            "community the agent does not know: SNMP over UDP cannot tell these apart)",
            host=host)
    if isinstance(indication, _AUTH_INDICATIONS):
        hint = _HINTS.get(type(indication), str(indication))
        return AuthenticationError(f"SNMPv3 authentication failed: {hint}", host=host)
    return ProtocolError(f"SNMP error: {indication}", host=host)


def rejected_from_status(status: Any, index: Any, request: list[Varbind], *,
                         host: str | None) -> SnmpRejectedError:
    """SnmpRejectedError for a response's non-zero error-status, naming the varbind the
    agent blamed (error-index counts from 1; 0 means the PDU as a whole)."""
    name = status.prettyPrint() if hasattr(status, "prettyPrint") else str(status)
    i = int(index or 0)
    oid = request[i - 1].oid if 1 <= i <= len(request) else None
    return SnmpRejectedError(name, i, oid, host=host)
