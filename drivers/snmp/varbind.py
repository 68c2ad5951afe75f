"""Typed SNMP values and variable bindings: what the SNMP driver takes and returns.

Free of pysnmp: ``drivers.snmp.edge`` converts these to and from pysnmp objects. A value's
type tag is its SMI type on the wire, with two display-level refinements:

* ``OctetString`` holds text (``str``, UTF-8 on the wire), ``Hex`` holds octets (``bytes``);
  both are an OCTET STRING on the wire. Reads return ``OctetString`` when the octets are
  printable UTF-8 and ``Hex`` otherwise (MAC addresses, engine IDs).
* ``Unsigned`` (Unsigned32) and ``Gauge32`` share one wire encoding, so a read can only ever
  return ``Gauge32`` (as net-snmp prints it); compare values with ``same_value``.

``NoSuchObject``, ``NoSuchInstance`` and ``EndOfMibView`` are the SNMPv2 exceptions an agent
puts in a response varbind instead of a value; they are values here, not errors, because a
GET of many OIDs can be half answered.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass
from typing import TypeAlias

PyValue: TypeAlias = int | str | bytes | None

_OID = re.compile(r"^\.?(\d+)(\.\d+)+$|^\.?\d+$")
_INT32 = (-(2**31), 2**31 - 1)
_UINT32 = (0, 2**32 - 1)
_UINT64 = (0, 2**64 - 1)


class VarType(enum.StrEnum):
    """The type tag of a varbind's value."""

    INTEGER = "Integer"  # Integer32 (also enumerations, TruthValue, RowStatus)
    UNSIGNED = "Unsigned"  # Unsigned32; reads come back as Gauge32 (same wire type)
    OCTET_STRING = "OctetString"  # text
    HEX = "Hex"  # OCTET STRING shown and given as bytes
    OBJECT_IDENTIFIER = "ObjectIdentifier"
    IP_ADDRESS = "IpAddress"
    COUNTER32 = "Counter32"
    COUNTER64 = "Counter64"
    GAUGE32 = "Gauge32"
    TIMETICKS = "TimeTicks"
    OPAQUE = "Opaque"
    NULL = "Null"
    NO_SUCH_OBJECT = "NoSuchObject"
    NO_SUCH_INSTANCE = "NoSuchInstance"
    END_OF_MIB_VIEW = "EndOfMibView"


#: Types whose value is None: a GET placeholder, or an exception in a response.
VALUELESS = frozenset({VarType.NULL, VarType.NO_SUCH_OBJECT, VarType.NO_SUCH_INSTANCE,
                       VarType.END_OF_MIB_VIEW})
#: The SNMPv2 exceptions: the agent has no value at this OID.
EXCEPTIONS = frozenset({VarType.NO_SUCH_OBJECT, VarType.NO_SUCH_INSTANCE,
                        VarType.END_OF_MIB_VIEW})
_INTS: dict[VarType, tuple[int, int]] = {
    VarType.INTEGER: _INT32, VarType.UNSIGNED: _UINT32, VarType.GAUGE32: _UINT32,
    VarType.COUNTER32: _UINT32, VarType.TIMETICKS: _UINT32, VarType.COUNTER64: _UINT64,
}
# Types that are one encoding on the wire, for comparing what was set with what is read back.
_WIRE_CLASS: dict[VarType, str] = {
    VarType.UNSIGNED: "u32", VarType.GAUGE32: "u32",
    VarType.OCTET_STRING: "octets", VarType.HEX: "octets",
}


def normalize_oid(oid: str) -> str:
    """``.1.3.6.1`` or ``1.3.6.1`` -> ``1.3.6.1``; ValueError for anything not numeric."""
    text = oid.strip()
    if not _OID.match(text):
        raise ValueError(f"not a numeric OID: {oid!r}")
    return text.lstrip(".")


def is_numeric_oid(text: str) -> bool:
    """True for ``1.3.6.1`` / ``.1.3.6.1``; False for names such as ``sysName.0``."""
    return bool(_OID.match(text.strip()))


def oid_tuple(oid: str) -> tuple[int, ...]:
    """A numeric OID as a tuple of arcs, for ordering (``1.3.6.10`` sorts after ``1.3.6.9``)."""
    return tuple(int(p) for p in normalize_oid(oid).split("."))


def in_subtree(oid: str, root: str) -> bool:
    """True if ``oid`` is ``root`` or below it (both numeric, normalized)."""
    return oid == root or oid.startswith(root + ".")


@dataclass(frozen=True, slots=True)
class Typed:
    """A value with its type, without an OID: a column value for ``create_row``."""

    type: VarType
    value: PyValue = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "type", VarType(self.type))
        _check(self.type, self.value)


@dataclass(frozen=True, slots=True)
class Varbind:
    """One variable binding: a numeric OID (dotted, no leading dot), a type tag and a value.

    ``Varbind(oid, VarType.UNSIGNED, 10)``; the helpers below (``integer``, ``octets``, ...)
    build the ``Typed`` part. A varbind built with a MIB name instead of a numeric OID is
    resolved by the client before it goes on the wire; varbinds read from a device always
    carry numeric OIDs.
    """

    oid: str
    type: VarType = VarType.NULL
    value: PyValue = None

    def __post_init__(self) -> None:
        if is_numeric_oid(self.oid):
            object.__setattr__(self, "oid", normalize_oid(self.oid))
        elif not self.oid.strip():
            raise ValueError("a varbind needs an OID")
        object.__setattr__(self, "type", VarType(self.type))
        _check(self.type, self.value)

    @classmethod
    def of(cls, oid: str, typed: Typed) -> Varbind:
        return cls(oid, typed.type, typed.value)

    @property
    def typed(self) -> Typed:
        return Typed(self.type, self.value)

    @property
    def missing(self) -> bool:
        """True for NoSuchObject / NoSuchInstance / EndOfMibView: no value at this OID."""
        return self.type in EXCEPTIONS

    @property
    def as_bytes(self) -> bytes:
        """The wire octets of an OctetString, Hex, Opaque or IpAddress value."""
        if isinstance(self.value, bytes):
            return self.value
        if self.type == VarType.IP_ADDRESS and isinstance(self.value, str):
            return ipaddress.IPv4Address(self.value).packed
        if isinstance(self.value, str):
            return self.value.encode()
        raise TypeError(f"{self.type} has no octets")

    @property
    def text(self) -> str:
        """The value as text: strings as they are, octets as colon-separated hex,
        integers in decimal, exceptions by name (e.g. ``noSuchInstance``)."""
        return value_text(self.type, self.value)

    def __str__(self) -> str:
        return f"{self.oid} = {self.type}: {self.text}"


def value_text(type_: VarType, value: PyValue) -> str:
    """See ``Varbind.text``."""
    if type_ in EXCEPTIONS:
        return type_.value[0].lower() + type_.value[1:]
    if value is None:
        return ""
    if isinstance(value, bytes):
        return ":".join(f"{b:02x}" for b in value)
    return str(value)


def same_value(a: Typed | Varbind, b: Typed | Varbind) -> bool:
    """Whether two values are the same on the wire (Unsigned == Gauge32, text == octets)."""
    if _WIRE_CLASS.get(a.type, a.type.value) != _WIRE_CLASS.get(b.type, b.type.value):
        return False
    if a.type in (VarType.OCTET_STRING, VarType.HEX):
        return _octets(a.value) == _octets(b.value)
    return a.value == b.value


def _octets(value: PyValue) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def _check(type_: VarType, value: PyValue) -> None:
    """Refuse a value that does not fit its type, before it reaches the wire."""
    if type_ in VALUELESS:
        if value is not None:
            raise ValueError(f"{type_} takes no value, got {value!r}")
        return
    if type_ in _INTS:
        lo, hi = _INTS[type_]
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise ValueError(f"{type_} needs an integer in {lo}..{hi}, got {value!r}")
        return
    if type_ == VarType.OCTET_STRING:
        if not isinstance(value, str):
            raise ValueError(f"OctetString needs str (use Hex for bytes), got {value!r}")
        return
    if type_ in (VarType.HEX, VarType.OPAQUE):
        if not isinstance(value, bytes):
            raise ValueError(f"{type_} needs bytes, got {value!r}")
        return
    if type_ == VarType.OBJECT_IDENTIFIER:
        if not isinstance(value, str) or not is_numeric_oid(value):
            raise ValueError(f"ObjectIdentifier needs a numeric dotted OID, got {value!r}")
        return
    if type_ == VarType.IP_ADDRESS:
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            raise ValueError(f"IpAddress needs an IPv4 dotted quad, got {value!r}") from None
        return
    raise ValueError(f"unknown type {type_!r}")  # pragma: no cover - enum is closed


# ---- value builders: ``Varbind.of(oid, unsigned(10))`` or columns of ``create_row`` -------
def integer(value: int) -> Typed:
    return Typed(VarType.INTEGER, value)


def unsigned(value: int) -> Typed:
    return Typed(VarType.UNSIGNED, value)


def gauge32(value: int) -> Typed:
    return Typed(VarType.GAUGE32, value)


def counter32(value: int) -> Typed:
    return Typed(VarType.COUNTER32, value)


def counter64(value: int) -> Typed:
    return Typed(VarType.COUNTER64, value)


def timeticks(value: int) -> Typed:
    return Typed(VarType.TIMETICKS, value)


def octets(value: str) -> Typed:
    return Typed(VarType.OCTET_STRING, value)


def hex_octets(value: bytes) -> Typed:
    return Typed(VarType.HEX, value)


def object_identifier(value: str) -> Typed:
    return Typed(VarType.OBJECT_IDENTIFIER, normalize_oid(value))


def ip_address(value: str) -> Typed:
    return Typed(VarType.IP_ADDRESS, value)


def null() -> Typed:
    return Typed(VarType.NULL)


class RowStatus(enum.IntEnum):
    """SNMPv2-TC RowStatus (RFC 2579)."""

    ACTIVE = 1
    NOT_IN_SERVICE = 2
    NOT_READY = 3
    CREATE_AND_GO = 4
    CREATE_AND_WAIT = 5
    DESTROY = 6
