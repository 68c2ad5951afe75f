"""The vendor-neutral intent: what should be on the devices for one service of one order.

The agent computes it from facts (order, catalog, inventory, allocations); a device profile
(data under configs/profiles/) renders it into what a device of that kind takes. Every field
is validated here, at the edge, so nothing a user typed can inject into a device's XML or CLI.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SERIAL = re.compile(r"[A-Z0-9]{4}[0-9A-F]{8}")
PON_PORT = re.compile(r"\d{1,2}/\d{1,2}/\d{1,3}")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
# Printable ASCII without the characters that end a quoted CLI argument or start XML markup.
DESCRIPTION = re.compile(r"[A-Za-z0-9 ,.:/()_#@+-]{0,64}")


class IntentError(ValueError):
    """An intent field is out of range or could inject into a device payload."""


def _check(ok: bool, what: str, value: object, rule: str) -> None:
    if not ok:
        raise IntentError(f"{what} {value!r} is invalid: {rule}")


@dataclass(frozen=True, slots=True)
class BandwidthProfile:
    """A traffic descriptor: fixed/assured/maximum bit rates."""

    name: str
    max_bps: int
    assured_bps: int = 0
    fixed_bps: int = 0

    def __post_init__(self) -> None:
        _check(bool(NAME.fullmatch(self.name)), "bandwidth profile name", self.name,
               "1-32 letters, digits, '_', '.', '-'")
        _check(0 <= self.fixed_bps <= self.assured_bps <= self.max_bps <= 100_000_000_000,
               "bandwidth profile rates", (self.fixed_bps, self.assured_bps, self.max_bps),
               "need 0 <= fixed <= assured <= max <= 100 Gbit/s")
        _check(self.max_bps > 0, "bandwidth profile max rate", self.max_bps, "must be > 0")


@dataclass(frozen=True, slots=True)
class OntIntent:
    """The ONU registration: this serial expected on this PON port with this onu-id."""

    olt: str
    serial: str
    pon_port: str
    onu_id: int
    description: str = ""

    def __post_init__(self) -> None:
        _check(bool(NAME.fullmatch(self.olt)), "OLT name", self.olt, "a device name")
        _check(bool(SERIAL.fullmatch(self.serial)), "ONT serial", self.serial,
               "4 upper-case vendor characters + 8 hex digits, e.g. ABCD0000A1B2")
        _check(bool(PON_PORT.fullmatch(self.pon_port)), "PON port", self.pon_port,
               "frame/slot/port, e.g. 0/1/0")
        _check(0 <= self.onu_id <= 127, "onu-id", self.onu_id, "0..127")
        _check(bool(DESCRIPTION.fullmatch(self.description)), "description", self.description,
               "at most 64 letters, digits, spaces and ,.:/()_#@+-")


@dataclass(frozen=True, slots=True)
class ServiceIntent:
    """One VLAN service on one ONT UNI: C-VLAN towards the ONT, S-VLAN on the uplink."""

    name: str  # stable per order and service, e.g. "ord-1042-internet"
    ont: OntIntent
    uni: int
    c_vlan: int
    s_vlan: int
    uplink: str  # the uplink port that carries the S-VLAN (the network service)
    profile: BandwidthProfile
    gemport_id: int
    alloc_id: int

    def __post_init__(self) -> None:
        _check(bool(NAME.fullmatch(self.name)), "service name", self.name,
               "1-32 letters, digits, '_', '.', '-'")
        _check(1 <= self.uni <= 4, "UNI", self.uni, "1..4")
        for what, vlan in (("C-VLAN", self.c_vlan), ("S-VLAN", self.s_vlan)):
            _check(1 <= vlan <= 4094, what, vlan, "1..4094")
        _check(bool(PON_PORT.fullmatch(self.uplink)), "uplink", self.uplink,
               "frame/slot/port, e.g. 0/9/0")
        _check(0 <= self.gemport_id <= 4095, "GEM port", self.gemport_id, "0..4095")
        _check(256 <= self.alloc_id <= 16383, "alloc-id", self.alloc_id, "256..16383")


# An analytics URL as written to a gateway: https, no quotes, spaces, markup or control chars.
PHAN_URL = re.compile(r"https://[A-Za-z0-9.-]+(:\d{1,5})?(/[A-Za-z0-9._~%/-]*)?")


@dataclass(frozen=True, slots=True)
class GatewayIntent:
    """What a gateway should hold: its analytics (PHAN) URL and its WAN VLAN (0: untagged)."""

    name: str
    phan_url: str
    wan_vlan: int = 0

    def __post_init__(self) -> None:
        _check(bool(NAME.fullmatch(self.name)), "gateway name", self.name, "a device name")
        _check(len(self.phan_url) <= 255 and bool(PHAN_URL.fullmatch(self.phan_url)),
               "PHAN URL", self.phan_url, "an https URL of at most 255 characters without "
               "query, quotes, spaces or markup")
        _check(0 <= self.wan_vlan <= 4094, "WAN VLAN", self.wan_vlan, "0 (untagged) or 1..4094")
