"""The simulator's data path: what a subscriber's frame looks like after VLAN frame processing.

The configuration modelled here is the Broadband Forum one (TR-383 ``bbf-sub-interfaces`` and
``bbf-sub-interface-tagging``, as used by TR-385 for the OLT and the ONU): every service is a chain
of VLAN sub-interfaces,

    ONU UNI sub-interface  --PON/GEM-->  OLT v-enet (user) sub-interface
        --forwarder-->  OLT uplink (network) sub-interface

each with ingress rules (match untagged / tags, then pop and push tags) and an egress rewrite.
See ``/work/shared/yang/examples/onu-vlan-service.xml`` for the reference service: UNI untagged
-> C-VLAN 100 pushed in the ONU; the OLT accepts C-VLAN 100 and pushes S-VLAN 1000 on uplink 0/9/0.

Frames are real Ethernet bytes. scapy builds and dissects them; the bytes after the VLAN tags
(inner Ethertype and payload) are carried over by slicing, never re-serialised, so pushing and
popping tags keeps the payload byte-exact whatever scapy would make of it.

This module belongs to the simulator and imports nothing from ``agent`` or ``drivers``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal, TypeVar

from scapy.data import DLT_EN10MB
from scapy.layers.dhcp import BOOTP, DHCP, DHCPTypes
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw
from scapy.utils import str2mac, wrpcap

__all__ = [
    "TPID_C_VLAN",
    "TPID_S_VLAN",
    "VLAN_TPIDS",
    "IngressRule",
    "ServicePath",
    "SubInterface",
    "Tag",
    "TagMatch",
    "TraceResult",
    "describe",
    "dhcp_discover",
    "frame_tags",
    "trace_downstream",
    "trace_upstream",
    "write_pcap",
]

TPID_C_VLAN: Final = 0x8100
"""TPID of a customer tag; BBF identity ``bbf-dot1qt:c-vlan`` (IEEE 802.1Q)."""
TPID_S_VLAN: Final = 0x88A8
"""TPID of a service tag; BBF identity ``bbf-dot1qt:s-vlan`` (IEEE 802.1ad)."""
VLAN_TPIDS: Final = frozenset({TPID_C_VLAN, TPID_S_VLAN, 0x9100, 0x9200})
"""Ethertypes read as a VLAN tag: C, S and the pre-802.1ad Q-in-Q TPIDs some OLTs still use."""

_TAG_TYPE_TPID: Final[dict[str, int]] = {"c-vlan": TPID_C_VLAN, "s-vlan": TPID_S_VLAN}
_TPID_NAME: Final[dict[int, str]] = {TPID_C_VLAN: "c-vlan", TPID_S_VLAN: "s-vlan"}
_ETHERTYPE_NAME: Final[dict[int, str]] = {
    0x0800: "IPv4",
    0x0806: "ARP",
    0x86DD: "IPv6",
    0x8863: "PPPoE discovery",
    0x8864: "PPPoE session",
    0x888E: "EAPOL",
}
_MAC_RE: Final = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")
_ETH_HEADER: Final = 14  # dst(6) + src(6) + ethertype(2)
_TAG_LEN: Final = 4  # TPID(2) + TCI(2)
_MAX_REWRITE_TAGS: Final = 2  # bbf-sub-interface-tagging: pop-tags 0..2, push-tag max-elements 2

_T = TypeVar("_T")

TagType = Literal["c-vlan", "s-vlan", "any"]
MatchKind = Literal["untagged", "tagged", "any"]


# --------------------------------------------------------------------------- configuration


@dataclass(frozen=True, slots=True)
class Tag:
    """One VLAN tag as it sits on the wire, or as an ingress/egress rewrite pushes it.

    ``tpid`` is the tag's Ethertype: 0x8100 for a c-vlan, 0x88a8 for an s-vlan. ``pcp`` is the
    802.1p priority; ``dei`` the drop-eligible bit (BBF's ``write-pbit-0``/``write-dei-0`` push
    zeros, the defaults here).
    """

    vlan: int
    tpid: int = TPID_C_VLAN
    pcp: int = 0
    dei: int = 0

    def __post_init__(self) -> None:
        # 12-bit VID: 0 is priority-tagged, 4095 reserved but still representable on the wire.
        if not 0 <= self.vlan <= 4095:
            raise ValueError(f"VLAN id {self.vlan} out of range 0..4095")
        if self.tpid not in VLAN_TPIDS:
            raise ValueError(f"TPID {self.tpid:#06x} is not a VLAN tag type")
        if not 0 <= self.pcp <= 7:
            raise ValueError(f"PCP {self.pcp} out of range 0..7")
        if self.dei not in (0, 1):
            raise ValueError(f"DEI {self.dei} must be 0 or 1")

    def __str__(self) -> str:
        name = _TPID_NAME.get(self.tpid, "vlan")
        extra = f" pcp {self.pcp}" if self.pcp else ""
        extra += " dei" if self.dei else ""
        return f"{name} {self.vlan} ({self.tpid:#06x}){extra}"


@dataclass(frozen=True, slots=True)
class TagMatch:
    """Match criteria for one tag of a frame (BBF ``match-criteria/tag/dot1q-tag``).

    ``vlan`` None matches any VLAN id (BBF ``vlan-id any``, which includes priority-tagged
    frames); ``tag_type`` "any" matches any TPID, "c-vlan" only 0x8100, "s-vlan" only 0x88a8.
    """

    vlan: int | None
    tag_type: TagType

    def __post_init__(self) -> None:
        if self.vlan is not None and not 0 <= self.vlan <= 4095:
            raise ValueError(f"VLAN id {self.vlan} out of range 0..4095")
        if self.tag_type not in ("c-vlan", "s-vlan", "any"):
            raise ValueError(f"unknown tag type {self.tag_type!r}")

    def matches(self, tag: Tag) -> bool:
        """Whether ``tag`` satisfies this criterion."""
        if self.tag_type != "any" and tag.tpid != _TAG_TYPE_TPID[self.tag_type]:
            return False
        return self.vlan is None or tag.vlan == self.vlan

    def __str__(self) -> str:
        vlan = "any" if self.vlan is None else str(self.vlan)
        return f"{'vlan' if self.tag_type == 'any' else self.tag_type} {vlan}"


@dataclass(frozen=True, slots=True)
class IngressRule:
    """One ingress rule of a VLAN sub-interface: classification plus ingress rewrite.

    Semantics follow the BBF YANG modules in ``/work/shared/yang/modules``:

    * Rule selection (``bbf-frame-processing.yang``, grouping ``frame-processing``, used by
      ``bbf-sub-interfaces.yang`` for ``inline-frame-processing``): "first match, then stop
      searching for matches with other rules, then execute the ingress-rewrite actions specified
      in this rule". ``priority`` (1..65535) orders the rules "of this and other sub-interfaces
      on the same parent-interface"; "the higher the value, the lower the priority, i.e.,
      priority 1 is the highest priority". Equal priorities with overlapping criteria are
      "undefined" behaviour: the simulator refuses to guess and drops the frame, naming the
      rules (see :func:`trace_upstream`).
    * Classification (``bbf-sub-interface-tagging.yang`` ``match-criteria``, which uses
      ``vlan-tag-match`` from ``bbf-frame-classification.yang``): ``untagged`` "matches all
      untagged traffic"; ``tag`` lists 1..2 tags, "the outermost tag to match assigned index
      0", and a frame carrying more tags than listed still matches (the Ethertype match
      continues "after the VLAN tags for which a matching criteria is specified"); no tag
      criterion at all means "all frames match" (``match`` "any" here).
    * Rewrite (``bbf-sub-interface-tagging.yang`` grouping ``flexible-rewrite``): pop 0..2
      outer tags, then push up to 2 (``push`` index 0 becomes the outermost tag); a pop
      together with a push is a translation.
    """

    name: str
    priority: int
    match: MatchKind
    tags: tuple[TagMatch, ...] = ()
    pop: int = 0
    push: tuple[Tag, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("rule name must not be empty")
        if not 1 <= self.priority <= 0xFFFF:
            raise ValueError(f"rule {self.name!r}: priority {self.priority} out of range 1..65535")
        if self.match == "tagged":
            if not 1 <= len(self.tags) <= _MAX_REWRITE_TAGS:
                raise ValueError(f"rule {self.name!r}: a tagged match lists 1 or 2 tags")
        elif self.match in ("untagged", "any"):
            if self.tags:
                raise ValueError(f"rule {self.name!r}: only a tagged match lists tags")
        else:
            raise ValueError(f"rule {self.name!r}: unknown match {self.match!r}")
        _check_rewrite(f"rule {self.name!r}", self.pop, self.push)

    def matches(self, tags: Sequence[Tag]) -> bool:
        """Whether a frame whose tags are ``tags`` (outermost first) is classified by this rule."""
        if self.match == "any":
            return True
        if self.match == "untagged":
            return not tags
        if len(tags) < len(self.tags):
            return False
        outer = tuple(tags[: len(self.tags)])
        return all(m.matches(t) for m, t in zip(self.tags, outer, strict=True))

    def criteria(self) -> str:
        """The classification in words, e.g. ``s-vlan 1000 + c-vlan 100``."""
        if self.match == "tagged":
            return " + ".join(str(m) for m in self.tags)
        return "untagged" if self.match == "untagged" else "any frame"


@dataclass(frozen=True, slots=True)
class SubInterface:
    """A BBF ``vlan-sub-interface``: its ingress rules and its egress rewrite (pop, then push)."""

    name: str
    ingress_rules: tuple[IngressRule, ...]
    egress_pop: int = 0
    egress_push: tuple[Tag, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("sub-interface name must not be empty")
        names = [r.name for r in self.ingress_rules]
        if len(names) != len(set(names)):
            # The YANG list is keyed by name; two rules with one name cannot both exist.
            raise ValueError(f"sub-interface {self.name!r}: duplicate rule names {names}")
        _check_rewrite(f"sub-interface {self.name!r} egress", self.egress_pop, self.egress_push)


@dataclass(frozen=True, slots=True)
class ServicePath:
    """One service on one ONT UNI, as the ONT and the OLT have it applied.

    ``uni_subif`` is the ONU's UNI sub-interface, ``olt_user_subif`` the OLT's v-enet (user-port)
    sub-interface for that UNI, joined by a forwarder to ``uplink_subif`` on OLT uplink
    ``uplink`` (e.g. "0/9/0"). ``gemport`` is the GEM port carrying the service on the PON,
    None when not known.
    """

    ont_serial: str
    uni: int
    uni_subif: SubInterface
    olt_user_subif: SubInterface
    uplink_subif: SubInterface
    uplink: str
    gemport: int | None

    def __post_init__(self) -> None:
        if not self.ont_serial:
            raise ValueError("ONT serial must not be empty")
        if self.uni < 1:
            raise ValueError(f"UNI {self.uni} must be 1 or more")
        if not self.uplink:
            raise ValueError("uplink name must not be empty")
        if self.gemport is not None and not 0 <= self.gemport <= 0xFFFF:
            raise ValueError(f"GEM port {self.gemport} out of range 0..65535")


@dataclass(frozen=True, slots=True)
class TraceResult:
    """The outcome of tracing one frame through the configured data path.

    ``forwarded`` frames carry the frame that leaves (``frame``) and where (``egress``: "uplink
    0/9/0" or "ONT <serial> UNI <n>"); dropped ones carry ``drop_reason``. ``steps`` lists the
    hops in order, in words, ending with the exit or the drop.
    """

    forwarded: bool
    frame: bytes | None
    steps: tuple[str, ...]
    drop_reason: str | None
    egress: str | None

    def __post_init__(self) -> None:
        if self.forwarded != (self.frame is not None and self.egress is not None):
            raise ValueError("a forwarded trace has a frame and an egress, a dropped one neither")
        if self.forwarded == (self.drop_reason is not None):
            raise ValueError("exactly the dropped traces have a drop reason")


def _check_rewrite(what: str, pop: int, push: tuple[Tag, ...]) -> None:
    if not 0 <= pop <= _MAX_REWRITE_TAGS:
        raise ValueError(f"{what}: pop {pop} out of range 0..2")
    if len(push) > _MAX_REWRITE_TAGS:
        raise ValueError(f"{what}: at most 2 tags can be pushed")


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True, slots=True)
class _Frame:
    """A frame split at its VLAN tags; ``rest`` is the inner Ethertype and payload, verbatim."""

    macs: bytes  # dst + src, 12 bytes
    tags: tuple[Tag, ...]
    rest: bytes


def _parse(frame: bytes) -> _Frame:
    """Split a frame into MACs, VLAN tags (outermost first) and the untouched rest.

    Raises ValueError for a frame too short to hold its headers.
    """
    if len(frame) < _ETH_HEADER:
        raise ValueError(f"{len(frame)} bytes is shorter than an Ethernet header")
    tags: list[Tag] = []
    offset = 12
    while (tpid := int.from_bytes(frame[offset : offset + 2], "big")) in VLAN_TPIDS:
        if len(frame) < offset + _TAG_LEN + 2:
            raise ValueError(f"VLAN tag {len(tags)} ({tpid:#06x}) is truncated")
        # Dot1Q decodes the TCI plus the next Ethertype. scapy only dissects 0x8100/0x88a8
        # chains by itself, so each tag is decoded on its own slice, whatever its TPID.
        tci = Dot1Q(frame[offset + 2 : offset + _TAG_LEN + 2])
        tags.append(Tag(vlan=int(tci.vlan), tpid=tpid, pcp=int(tci.prio), dei=int(tci.dei)))
        offset += _TAG_LEN
    return _Frame(macs=frame[:12], tags=tuple(tags), rest=frame[offset:])


def _build(frame: _Frame) -> bytes:
    """Serialise with scapy: Ether / one Dot1AD or Dot1Q per tag / the original rest."""
    inner_type = int.from_bytes(frame.rest[:2], "big")
    tpids = [t.tpid for t in frame.tags] + [inner_type]
    # Every type field is set explicitly, or scapy would derive it from the next layer (and the
    # Raw payload has none) instead of keeping the TPID chain and inner Ethertype we carry.
    packet = Ether(dst=str2mac(frame.macs[:6]), src=str2mac(frame.macs[6:]), type=tpids[0])
    for tag, next_type in zip(frame.tags, tpids[1:], strict=True):
        layer = Dot1AD if tag.tpid == TPID_S_VLAN else Dot1Q
        packet = packet / layer(prio=tag.pcp, dei=tag.dei, vlan=tag.vlan, type=next_type)
    if len(frame.rest) > 2:
        packet = packet / Raw(load=frame.rest[2:])
    return bytes(packet)


def frame_tags(frame: bytes) -> tuple[Tag, ...]:
    """The VLAN tags of ``frame``, outermost first. Raises ValueError for a malformed frame."""
    return _parse(frame).tags


def _tags_text(tags: Sequence[Tag]) -> str:
    return " / ".join(str(t) for t in tags) if tags else "untagged"


def describe(frame: bytes) -> str:
    """One line about a frame: MACs, VLAN tags with TPID, and the inner protocol.

    For example ``00:11:22:33:44:55 > ff:ff:ff:ff:ff:ff, s-vlan 1000 (0x88a8) / c-vlan 100
    (0x8100), IPv4 0.0.0.0 > 255.255.255.255, UDP 68 > 67, DHCP Discover, 350 bytes``.
    Malformed frames are described as such rather than raising.
    """
    try:
        parsed = _parse(frame)
    except ValueError as exc:
        return f"malformed frame ({len(frame)} bytes): {exc}"
    parts = [
        f"{str2mac(parsed.macs[6:])} > {str2mac(parsed.macs[:6])}",
        _tags_text(parsed.tags),
    ]
    if len(parsed.rest) >= 2:
        # Dissect the untagged view, so any TPID chain is out of scapy's way.
        parts.extend(_inner_text(Ether(parsed.macs + parsed.rest)))
    parts.append(f"{len(frame)} bytes")
    return ", ".join(parts)


def _inner_text(packet: Ether) -> list[str]:
    """Words for what an untagged Ethernet frame carries."""
    payload = packet.payload
    if isinstance(payload, IP):
        parts = [f"IPv4 {payload.src} > {payload.dst}"]
        l4 = payload.payload
        if isinstance(l4, UDP):
            parts.append(f"UDP {l4.sport} > {l4.dport}")
            if l4.haslayer(DHCP):
                parts.append(f"DHCP {_dhcp_type(l4[DHCP])}")
            elif l4.haslayer(BOOTP):
                parts.append("BOOTP " + ("request" if l4[BOOTP].op == 1 else "reply"))
        elif isinstance(l4, TCP):
            parts.append(f"TCP {l4.sport} > {l4.dport}")
        elif isinstance(l4, ICMP):
            parts.append(f"ICMP type {l4.type} code {l4.code}")
        else:
            parts.append(f"IP protocol {payload.proto}")
        return parts
    if isinstance(payload, ARP):
        if payload.op == 1:
            return [f"ARP who-has {payload.pdst} tell {payload.psrc}"]
        return [f"ARP {payload.psrc} is-at {payload.hwsrc}"]
    ethertype = int(packet.type)
    return [_ETHERTYPE_NAME.get(ethertype, f"ethertype {ethertype:#06x}")]


def _dhcp_type(dhcp: DHCP) -> str:
    for option in dhcp.options:
        if isinstance(option, tuple) and option[0] == "message-type":
            value = option[1]
            name = DHCPTypes.get(value, str(value)) if isinstance(value, int) else str(value)
            return str(name).replace("_", " ").capitalize()
    return "(no message type)"


def dhcp_discover(mac: str, *, xid: int | None = None) -> bytes:
    """An untagged DHCP Discover, as a subscriber's router sends it on the UNI.

    Broadcast from ``mac`` (``aa:bb:cc:dd:ee:ff``) with client-id and a typical parameter
    request list. ``xid`` defaults to one derived from the MAC, so the same call always builds
    the same bytes (reproducible traces and pcaps).
    """
    if not _MAC_RE.fullmatch(mac):
        raise ValueError(f"not a MAC address: {mac!r}")
    hw = bytes.fromhex(mac.replace(":", ""))
    if hw[0] & 1:
        raise ValueError(f"{mac} is a group address, not a router's own MAC")
    if xid is None:
        xid = int.from_bytes(hw[2:], "big")
    elif not 0 <= xid <= 0xFFFFFFFF:
        raise ValueError(f"xid {xid} out of range 0..2**32-1")
    packet = (
        # dst set explicitly: without it scapy resolves it through routes/ARP and warns.
        Ether(dst="ff:ff:ff:ff:ff:ff", src=mac.lower())
        / IP(src="0.0.0.0", dst="255.255.255.255")  # the client has no address yet
        / UDP(sport=68, dport=67)
        / BOOTP(op=1, chaddr=hw, xid=xid)
        / DHCP(
            options=[
                ("message-type", "discover"),
                ("client_id", b"\x01" + hw),
                ("param_req_list", [1, 3, 6, 15, 26, 28, 42, 51, 58, 59]),
                ("max_dhcp_size", 1500),
                "end",
            ]
        )
    )
    return bytes(packet)


def write_pcap(path: Path, frames: Sequence[bytes]) -> None:
    """Write ``frames`` to a pcap file (Ethernet link type) with scapy's ``wrpcap``.

    Each frame is handed over as a dissected ``Ether`` packet (what scapy's signature takes);
    an unmodified dissected packet serialises from its cached original bytes, so the file holds
    exactly the frames given.
    """
    wrpcap(str(path), [Ether(bytes(f)) for f in frames], linktype=DLT_EN10MB)


# --------------------------------------------------------------------------- tracing


class _DroppedError(Exception):
    """Internal: the frame is dropped; ``reason`` says where and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _rewrite_text(pop: int, push: Sequence[Tag]) -> str:
    parts = [f"pop {pop} tag{'s' if pop > 1 else ''}"] if pop else []
    parts.extend(f"push {tag}" for tag in push)
    return ", ".join(parts) if parts else "no tag change"


def _rewrite(frame: _Frame, pop: int, push: tuple[Tag, ...], where: str) -> _Frame:
    """Pop ``pop`` outer tags, then push ``push`` (index 0 outermost), as BBF flexible-rewrite."""
    if pop > len(frame.tags):
        raise _DroppedError(
            f"{where}: cannot pop {pop} tag(s) from a frame with {len(frame.tags)} "
            f"({_tags_text(frame.tags)})"
        )
    return replace(frame, tags=push + frame.tags[pop:])


def _unique(items: Sequence[_T]) -> list[_T]:
    """Distinct items in first-seen order (several services may share one sub-interface)."""
    seen: list[_T] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def _rules_text(subifs: Sequence[SubInterface]) -> str:
    rules = [
        f"'{r.name}' {r.criteria()} (priority {r.priority})"
        for s in subifs
        for r in s.ingress_rules
    ]
    return "; ".join(rules) if rules else "none"


def _classify(
    subifs: Sequence[SubInterface], tags: Sequence[Tag], where: str
) -> tuple[SubInterface, IngressRule] | None:
    """The sub-interface and rule that take a frame, by BBF priority across sub-interfaces.

    None if no rule matches. Raises _DroppedError when rules with different outcomes match at
    the same best priority: BBF calls that undefined, and a simulator that picked one would
    hide the misconfiguration.
    """
    matching = [(s, r) for s in _unique(subifs) for r in s.ingress_rules if r.matches(tags)]
    if not matching:
        return None
    best = min(r.priority for _, r in matching)
    top = [(s, r) for s, r in matching if r.priority == best]
    outcomes = _unique([(s.name, r.pop, r.push) for s, r in top])
    if len(outcomes) > 1:
        names = ", ".join(f"'{r.name}' (sub-interface {s.name})" for s, r in top)
        raise _DroppedError(
            f"{where}: {_tags_text(tags)} frame matches several rules at priority {best}: "
            f"{names}; BBF leaves equal priorities with overlapping matches undefined"
        )
    return top[0]


def _gem_text(paths: Sequence[ServicePath]) -> str:
    gems = sorted({p.gemport for p in paths if p.gemport is not None})
    if not gems:
        return "no GEM port recorded"
    return "GEM port " + ", ".join(str(g) for g in gems)


def _result(steps: list[str], frame: bytes, egress: str) -> TraceResult:
    steps.append(f"leaves {egress}: {describe(frame)}")
    return TraceResult(True, frame, tuple(steps), None, egress)


def _dropped(steps: list[str], reason: str) -> TraceResult:
    steps.append(f"dropped: {reason}")
    return TraceResult(False, None, tuple(steps), reason, None)


def trace_upstream(paths: Sequence[ServicePath], uni: int, frame: bytes) -> TraceResult:
    """Trace a subscriber frame entering UNI ``uni`` up to the OLT uplink.

    ``paths`` are the services applied on ONE ONT (ValueError otherwise: a UNI number alone
    does not say which ONT). The frame goes through, in order:

    1. the ONU: the first matching ingress rule, by priority, among the UNI sub-interfaces of
       all services on that UNI, and its rewrite (typically push the C-tag);
    2. the PON, on the matched service's GEM port;
    3. the OLT v-enet: the first matching rule among the user sub-interfaces of the services on
       that UNI (it must accept the C-tag the ONU sent), and its rewrite;
    4. the forwarder to the uplink sub-interface, and that sub-interface's egress rewrite
       (typically push the S-tag).

    Rule semantics are BBF's; see :class:`IngressRule`. A frame no rule takes is dropped with a
    reason naming the stage, the frame's tags and what was expected.
    """
    serials = sorted({p.ont_serial for p in paths})
    if len(serials) > 1:
        raise ValueError(f"trace_upstream takes the services of one ONT, got {serials}")
    ont = f"ONT {serials[0]}" if serials else "ONT"
    steps: list[str] = []
    try:
        parsed = _parse(frame)
    except ValueError as exc:
        return _dropped(steps, f"{ont} UNI {uni}: malformed frame: {exc}")
    steps.append(f"{ont} UNI {uni} receives {describe(frame)}")
    try:
        out, egress = _upstream(paths, ont, uni, parsed, steps)
    except _DroppedError as drop:
        return _dropped(steps, drop.reason)
    return _result(steps, out, egress)


def _upstream(
    paths: Sequence[ServicePath], ont: str, uni: int, frame: _Frame, steps: list[str]
) -> tuple[bytes, str]:
    at_uni = f"{ont} UNI {uni}"
    on_uni = [p for p in paths if p.uni == uni]
    if not on_uni:
        raise _DroppedError(f"{at_uni}: no service is configured on this UNI")

    # ONU: classify on the UNI, rewrite.
    uni_subifs = [p.uni_subif for p in on_uni]
    hit = _classify(uni_subifs, frame.tags, at_uni)
    if hit is None:
        raise _DroppedError(
            f"{at_uni}: no ingress rule matches the {_tags_text(frame.tags)} frame "
            f"(rules: {_rules_text(_unique(uni_subifs))})"
        )
    uni_subif, rule = hit
    frame = _rewrite(frame, rule.pop, rule.push, f"{at_uni} ingress rule '{rule.name}'")
    steps.append(
        f"{at_uni} ingress rule '{rule.name}' (sub-interface {uni_subif.name}, priority "
        f"{rule.priority}): {_rewrite_text(rule.pop, rule.push)}"
    )
    fed = [p for p in on_uni if p.uni_subif == uni_subif]
    steps.append(f"{ont} -> OLT over the PON on {_gem_text(fed)}: {_tags_text(frame.tags)}")

    # OLT v-enet: every user sub-interface of this UNI classifies, as on a real v-enet.
    at_venet = f"OLT v-enet of {at_uni}"
    user_subifs = [p.olt_user_subif for p in on_uni]
    hit = _classify(user_subifs, frame.tags, at_venet)
    if hit is None:
        expected = _unique([p.olt_user_subif for p in fed])
        raise _DroppedError(
            f"{at_venet}: no user sub-interface accepts the {_tags_text(frame.tags)} frame; "
            f"expected {_rules_text(expected)} on " + ", ".join(s.name for s in expected)
        )
    user_subif, rule = hit
    frame = _rewrite(frame, rule.pop, rule.push, f"{at_venet} rule '{rule.name}'")
    steps.append(
        f"OLT v-enet sub-interface {user_subif.name} ingress rule '{rule.name}' "
        f"({rule.criteria()}): {_rewrite_text(rule.pop, rule.push)}"
    )

    # Forwarder to the uplink sub-interface, then its egress rewrite.
    network = _unique(
        [(p.uplink, p.uplink_subif) for p in on_uni if p.olt_user_subif == user_subif]
    )
    if len(network) > 1:
        raise _DroppedError(
            f"OLT: user sub-interface {user_subif.name} is joined to several uplink "
            "sub-interfaces (" + ", ".join(f"{u} {s.name}" for u, s in network) + ")"
        )
    uplink, up_subif = network[0]
    steps.append(f"OLT forwarder: {user_subif.name} -> {up_subif.name}")
    frame = _rewrite(
        frame, up_subif.egress_pop, up_subif.egress_push, f"OLT uplink {uplink} egress"
    )
    steps.append(
        f"OLT uplink {uplink} egress (sub-interface {up_subif.name}): "
        f"{_rewrite_text(up_subif.egress_pop, up_subif.egress_push)}"
    )
    return _build(frame), f"uplink {uplink}"


def trace_downstream(paths: Sequence[ServicePath], uplink: str, frame: bytes) -> TraceResult:
    """Trace a network frame entering OLT uplink ``uplink`` down to the ONT UNI it leaves on.

    ``paths`` may span ONTs. The frame goes through:

    1. the OLT uplink: the first matching ingress rule, by priority, among the uplink
       sub-interfaces of the services on that uplink (typically S+C tags), and its rewrite
       (typically pop the S-tag);
    2. the forwarder to the user sub-interface and its egress rewrite;
    3. the PON on the service's GEM port, and the ONU UNI sub-interface's egress rewrite
       (typically pop the C-tag).

    A frame no uplink rule takes is dropped with a reason naming its tags and the configured
    rules. An uplink sub-interface shared by services on different UNIs (an N:1 forwarder)
    would need a MAC table to pick one; the simulator has none and says so as a drop.
    """
    steps: list[str] = []
    at_uplink = f"OLT uplink {uplink}"
    try:
        parsed = _parse(frame)
    except ValueError as exc:
        return _dropped(steps, f"{at_uplink}: malformed frame: {exc}")
    steps.append(f"{at_uplink} receives {describe(frame)}")
    try:
        out, egress = _downstream(paths, uplink, parsed, steps)
    except _DroppedError as drop:
        return _dropped(steps, drop.reason)
    return _result(steps, out, egress)


def _downstream(
    paths: Sequence[ServicePath], uplink: str, frame: _Frame, steps: list[str]
) -> tuple[bytes, str]:
    at_uplink = f"OLT uplink {uplink}"
    on_uplink = [p for p in paths if p.uplink == uplink]
    if not on_uplink:
        raise _DroppedError(f"{at_uplink}: no service is configured on this uplink")

    uplink_subifs = [p.uplink_subif for p in on_uplink]
    hit = _classify(uplink_subifs, frame.tags, at_uplink)
    if hit is None:
        raise _DroppedError(
            f"{at_uplink}: no sub-interface matches the {_tags_text(frame.tags)} frame "
            f"(rules: {_rules_text(_unique(uplink_subifs))})"
        )
    up_subif, rule = hit
    frame = _rewrite(frame, rule.pop, rule.push, f"{at_uplink} rule '{rule.name}'")
    steps.append(
        f"{at_uplink} ingress rule '{rule.name}' (sub-interface {up_subif.name}, "
        f"{rule.criteria()}): {_rewrite_text(rule.pop, rule.push)}"
    )

    served = [p for p in on_uplink if p.uplink_subif == up_subif]
    targets = _unique([(p.ont_serial, p.uni, p.olt_user_subif, p.uni_subif) for p in served])
    if len(targets) > 1:
        raise _DroppedError(
            f"OLT forwarder of {up_subif.name} has {len(targets)} user ports ("
            + ", ".join(f"ONT {s} UNI {u}" for s, u, _, _ in targets)
            + "): N:1 forwarding needs a MAC table, which the simulator does not model"
        )
    serial, uni, user_subif, uni_subif = targets[0]
    steps.append(f"OLT forwarder: {up_subif.name} -> {user_subif.name}")
    frame = _rewrite(
        frame,
        user_subif.egress_pop,
        user_subif.egress_push,
        f"OLT v-enet sub-interface {user_subif.name} egress",
    )
    steps.append(
        f"OLT v-enet sub-interface {user_subif.name} egress: "
        f"{_rewrite_text(user_subif.egress_pop, user_subif.egress_push)}"
    )
    steps.append(
        f"OLT -> ONT {serial} over the PON on {_gem_text(served)}: {_tags_text(frame.tags)}"
    )
    at_uni = f"ONT {serial} UNI {uni}"
    frame = _rewrite(frame, uni_subif.egress_pop, uni_subif.egress_push, f"{at_uni} egress")
    steps.append(
        f"{at_uni} egress (sub-interface {uni_subif.name}): "
        f"{_rewrite_text(uni_subif.egress_pop, uni_subif.egress_push)}"
    )
    return _build(frame), at_uni
