"""The subset of the TR-383/TR-385 YANG schema that the simulated OLT implements.

A real OLT implements a subset of the Broadband Forum models too, and refuses the rest with
``unknown-element``. The subset is what ONU and VLAN service provisioning uses (see
``shared/yang/examples/onu-vlan-service.xml``); names, nesting, list keys and value ranges follow
the modules, so a running config read from the simulator validates with ``yanglint``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from simulator.config.namespaces import (
    ANI,
    BBFIFT,
    DOT1QT,
    GEM,
    GW,
    IANAIFT,
    IF,
    L2F,
    LT,
    QOSCLS,
    QOSPOL,
    SUBIF,
    TAG,
    USAGE,
    VANI,
    XPON,
    XPONIFT,
    XPONTYPES,
)

Kind = Literal["container", "list", "leaf", "leaf-list"]
TypeKind = Literal["string", "uint", "bool", "empty", "enum", "identity", "leafref"]


@dataclass(frozen=True, slots=True)
class LeafType:
    """A leaf's value space; ``check`` returns the canonical value or raises ValueError."""

    kind: TypeKind
    lo: int = 0
    hi: int = 0
    maxlen: int | None = None
    pattern: re.Pattern[str] | None = None
    values: frozenset[str] = frozenset()
    identities: tuple[tuple[str, str], ...] = ()  # (namespace, name)
    ref: str | None = None  # leafref target table, see validate.py

    def check(self, text: str) -> str:
        """Return the canonical form of ``text`` or raise ValueError naming the problem."""
        value = text.strip()
        if self.kind in ("string", "leafref"):
            if self.maxlen is not None and len(text) > self.maxlen:
                raise ValueError(f"longer than {self.maxlen} characters")
            if self.pattern is not None and not self.pattern.fullmatch(text):
                raise ValueError(f"does not match pattern {self.pattern.pattern!r}")
            return text
        if self.kind == "uint":
            if not value.isdigit():
                raise ValueError(f"{text!r} is not a non-negative integer")
            number = int(value)
            if not self.lo <= number <= self.hi:
                raise ValueError(f"{number} is out of range {self.lo}..{self.hi}")
            return str(number)
        if self.kind == "bool":
            if value not in ("true", "false"):
                raise ValueError(f"{text!r} is not a boolean (true or false)")
            return value
        if self.kind == "empty":
            if value:
                raise ValueError("an empty leaf takes no value")
            return ""
        if self.kind == "enum":
            if value not in self.values:
                raise ValueError(f"{text!r} is not one of {', '.join(sorted(self.values))}")
            return value
        raise AssertionError(self.kind)  # identities are checked with their namespace map


def uint(lo: int, hi: int) -> LeafType:
    return LeafType("uint", lo=lo, hi=hi)


def string(maxlen: int | None = None, pattern: str | None = None) -> LeafType:
    return LeafType("string", maxlen=maxlen, pattern=re.compile(pattern) if pattern else None)


def enum(*values: str) -> LeafType:
    return LeafType("enum", values=frozenset(values))


def identity(*ids: tuple[str, str]) -> LeafType:
    return LeafType("identity", identities=ids)


def ref(target: str) -> LeafType:
    return LeafType("leafref", ref=target, maxlen=255)


BOOL = LeafType("bool")
EMPTY = LeafType("empty")
NAME = string(64)
VLAN_ID = uint(1, 4094)


@dataclass(slots=True)
class SNode:
    """One schema node. Children are keyed by (namespace, local name)."""

    kind: Kind
    ns: str
    name: str
    children: dict[tuple[str, str], SNode] = field(default_factory=dict)
    keys: tuple[str, ...] = ()
    type: LeafType | None = None
    # For interface augments: the interface types this container is valid for (YANG "when").
    when_types: tuple[str, ...] = ()
    mandatory: bool = False

    def child(self, ns: str, name: str) -> SNode | None:
        return self.children.get((ns, name))


def _node(kind: Kind, ns: str, name: str, children: tuple[SNode, ...], **kw: object) -> SNode:
    node = SNode(kind, ns, name, **kw)  # type: ignore[arg-type]
    for c in children:
        node.children[(c.ns, c.name)] = c
    return node


def container(ns: str, name: str, *children: SNode, when: tuple[str, ...] = ()) -> SNode:
    return _node("container", ns, name, children, when_types=when)


def lst(ns: str, name: str, keys: tuple[str, ...], *children: SNode) -> SNode:
    return _node("list", ns, name, children, keys=keys)


def leaf(ns: str, name: str, t: LeafType, *, mandatory: bool = False) -> SNode:
    return SNode("leaf", ns, name, type=t, mandatory=mandatory)


def leaf_list(ns: str, name: str, t: LeafType) -> SNode:
    return SNode("leaf-list", ns, name, type=t)


INTERFACE_TYPES = identity(
    (IANAIFT, "ethernetCsmacd"),
    (BBFIFT, "vlan-sub-interface"),
    (XPONIFT, "channel-group"),
    (XPONIFT, "channel-partition"),
    (XPONIFT, "channel-pair"),
    (XPONIFT, "channel-termination"),
    (XPONIFT, "v-ani"),
    (XPONIFT, "ani"),
    (XPONIFT, "olt-v-enet"),
    (XPONIFT, "onu-v-enet"),
)
PON_TYPES = identity(
    (XPONTYPES, "gpon"), (XPONTYPES, "xgs"), (XPONTYPES, "xgpon"), (XPONTYPES, "ngpon2-twdm")
)
TAG_TYPES = identity((DOT1QT, "c-vlan"), (DOT1QT, "s-vlan"))
SERIAL = string(pattern=r"[ -~]{4}[0-9a-fA-F]{8}")


def _dot1q_tag(with_write: bool) -> SNode:
    extra: tuple[SNode, ...] = ()
    if with_write:
        extra = (
            leaf(TAG, "write-pbit-0", EMPTY),
            leaf(TAG, "pbit-from-tag-index", uint(0, 1)),
            leaf(TAG, "write-dei-0", EMPTY),
            leaf(TAG, "dei-from-tag-index", uint(0, 1)),
        )
    return container(
        TAG, "dot1q-tag", leaf(TAG, "tag-type", TAG_TYPES), leaf(TAG, "vlan-id", VLAN_ID), *extra
    )


def _rewrite(name: str, ns: str) -> SNode:
    return container(
        ns,
        name,
        leaf(TAG, "pop-tags", uint(0, 2)),
        lst(TAG, "push-tag", ("index",), leaf(TAG, "index", uint(0, 1)), _dot1q_tag(True)),
    )


_MATCH = container(
    TAG,
    "match-criteria",
    leaf(TAG, "any-frame", EMPTY),
    leaf(TAG, "untagged", EMPTY),
    lst(TAG, "tag", ("index",), leaf(TAG, "index", uint(0, 1)), _dot1q_tag(False)),
)

_SUBIF_TYPES = ("vlan-sub-interface",)

INTERFACE = lst(
    IF,
    "interface",
    ("name",),
    leaf(IF, "name", NAME),
    leaf(IF, "description", string(255)),
    leaf(IF, "type", INTERFACE_TYPES, mandatory=True),
    leaf(IF, "enabled", BOOL),
    container(
        XPON,
        "channel-group",
        leaf(XPON, "polling-period", uint(1, 864000)),
        leaf(XPON, "system-id", string(6)),
        container(
            XPON,
            "pon-pools",
            lst(
                XPON,
                "pon-pool",
                ("name",),
                leaf(XPON, "name", NAME),
                leaf(XPON, "channel-termination-ref", ref("interface")),
            ),
        ),
        when=("channel-group",),
    ),
    container(
        XPON,
        "channel-partition",
        leaf(XPON, "channel-group-ref", ref("interface"), mandatory=True),
        leaf(XPON, "channel-partition-index", uint(0, 255)),
        leaf(XPON, "downstream-fec", BOOL),
        leaf(XPON, "closest-onu-distance", uint(0, 40)),
        leaf(XPON, "maximum-differential-xpon-distance", uint(0, 40)),
        leaf(
            XPON,
            "authentication-method",
            enum("serial-number", "loid", "registration-id", "omci", "dot1x"),
        ),
        when=("channel-partition",),
    ),
    container(
        XPON,
        "channel-pair",
        leaf(XPON, "channel-group-ref", ref("interface")),
        leaf(XPON, "channel-partition-ref", ref("interface")),
        leaf(XPON, "channel-pair-type", PON_TYPES, mandatory=True),
        when=("channel-pair",),
    ),
    container(
        XPON,
        "channel-termination",
        leaf(XPON, "channel-pair-ref", ref("interface")),
        leaf(XPON, "channel-termination-type", PON_TYPES, mandatory=True),
        leaf(XPON, "gpon-pon-id", string(pattern=r"[0-9a-fA-F]{14}")),
        leaf(XPON, "pon-tag", string(255)),
        leaf(XPON, "location", identity((XPONTYPES, "inside-olt"), (XPONTYPES, "outside-olt"))),
        when=("channel-termination",),
    ),
    container(
        VANI,
        "v-ani",
        leaf(VANI, "onu-id", uint(0, 1020)),
        leaf(VANI, "channel-partition", ref("interface")),
        leaf(VANI, "expected-serial-number", SERIAL),
        leaf(VANI, "expected-registration-id", string(36)),
        leaf(VANI, "preferred-channel-pair", ref("interface")),
        leaf(VANI, "upstream-fec", BOOL),
        leaf(VANI, "management-gemport-aes-indicator", BOOL),
        when=("v-ani",),
    ),
    container(
        VANI,
        "olt-v-enet",
        leaf(VANI, "lower-layer-interface", ref("interface"), mandatory=True),
        when=("olt-v-enet",),
    ),
    container(
        ANI,
        "ani",
        leaf(ANI, "upstream-fec", BOOL),
        leaf(ANI, "management-gemport-aes-indicator", BOOL),
        leaf(ANI, "onu-id", uint(0, 1020)),
        when=("ani",),
    ),
    container(
        ANI, "onu-v-enet", leaf(ANI, "ani", ref("interface"), mandatory=True), when=("onu-v-enet",)
    ),
    container(
        SUBIF,
        "subif-lower-layer",
        leaf(SUBIF, "interface", ref("interface")),
        when=_SUBIF_TYPES,
    ),
    container(
        SUBIF,
        "inline-frame-processing",
        container(
            SUBIF,
            "ingress-rule",
            lst(
                SUBIF,
                "rule",
                ("name",),
                leaf(SUBIF, "name", NAME),
                leaf(SUBIF, "priority", uint(1, 65535), mandatory=True),
                container(SUBIF, "flexible-match", _MATCH),
                _rewrite("ingress-rewrite", SUBIF),
            ),
        ),
        _rewrite("egress-rewrite", SUBIF),
        when=_SUBIF_TYPES,
    ),
    container(
        USAGE,
        "interface-usage",
        leaf(USAGE, "interface-usage", enum("user-port", "network-port", "subtended-node-port",
                                             "inherit")),
    ),
    leaf(QOSPOL, "ingress-qos-policy-profile", ref("policy-profile")),
    leaf(QOSPOL, "egress-qos-policy-profile", ref("policy-profile")),
)

TOP: tuple[SNode, ...] = (
    container(IF, "interfaces", INTERFACE),
    container(
        LT,
        "link-table",
        lst(
            LT,
            "link-table",
            ("from-interface",),
            leaf(LT, "from-interface", ref("interface")),
            leaf_list(LT, "to-interface", ref("interface")),
        ),
    ),
    container(
        GEM,
        "xpongemtcont",
        container(
            GEM,
            "traffic-descriptor-profiles",
            lst(
                GEM,
                "traffic-descriptor-profile",
                ("name",),
                leaf(GEM, "name", NAME),
                leaf(GEM, "fixed-bandwidth", uint(0, 2**63)),
                leaf(GEM, "assured-bandwidth", uint(0, 2**63)),
                leaf(GEM, "maximum-bandwidth", uint(0, 2**63)),
                leaf(GEM, "priority", uint(1, 8)),
                leaf(GEM, "weight", uint(0, 255)),
                leaf(
                    GEM,
                    "additional-bw-eligibility-indicator",
                    enum("non-assured-sharing", "best-effort-sharing", "none"),
                ),
            ),
        ),
        container(
            GEM,
            "tconts",
            lst(
                GEM,
                "tcont",
                ("name",),
                leaf(GEM, "name", NAME),
                leaf(GEM, "alloc-id", uint(0, 16383)),
                leaf(GEM, "interface-reference", ref("interface"), mandatory=True),
                leaf(GEM, "traffic-descriptor-profile-ref", ref("tdp"), mandatory=True),
            ),
        ),
        container(
            GEM,
            "gemports",
            lst(
                GEM,
                "gemport",
                ("name",),
                leaf(GEM, "name", NAME),
                leaf(GEM, "gemport-id", uint(0, 65534)),
                leaf(GEM, "interface", ref("interface"), mandatory=True),
                leaf(GEM, "traffic-class", uint(0, 7), mandatory=True),
                leaf(GEM, "tcont-ref", ref("tcont"), mandatory=True),
                leaf(GEM, "upstream-aes-indicator", BOOL),
                leaf(GEM, "downstream-aes-indicator", BOOL),
            ),
        ),
    ),
    container(
        L2F,
        "forwarding",
        container(
            L2F,
            "forwarders",
            lst(
                L2F,
                "forwarder",
                ("name",),
                leaf(L2F, "name", NAME),
                container(
                    L2F,
                    "ports",
                    lst(
                        L2F,
                        "port",
                        ("name",),
                        leaf(L2F, "name", NAME),
                        leaf(L2F, "sub-interface", ref("interface")),
                    ),
                ),
            ),
        ),
    ),
    container(
        QOSCLS,
        "classifiers",
        lst(
            QOSCLS,
            "classifier-entry",
            ("name",),
            leaf(QOSCLS, "name", NAME),
            leaf(QOSCLS, "description", string(255)),
            leaf(QOSCLS, "filter-operation", enum("match-all-filter", "match-any-filter")),
            container(QOSCLS, "match-criteria", leaf(QOSCLS, "any-protocol", EMPTY)),
            lst(
                QOSCLS,
                "classifier-action-entry-cfg",
                ("action-type",),
                leaf(QOSCLS, "action-type", enum("scheduling-traffic-class", "pass", "discard")),
                leaf(QOSCLS, "scheduling-traffic-class", uint(0, 7)),
            ),
        ),
    ),
    container(
        QOSPOL,
        "policies",
        lst(
            QOSPOL,
            "policy",
            ("name",),
            leaf(QOSPOL, "name", NAME),
            leaf(QOSPOL, "description", string(255)),
            lst(QOSPOL, "classifiers", ("name",), leaf(QOSPOL, "name", ref("classifier"))),
        ),
    ),
    container(
        QOSPOL,
        "qos-policy-profiles",
        lst(
            QOSPOL,
            "policy-profile",
            ("name",),
            leaf(QOSPOL, "name", NAME),
            lst(QOSPOL, "policy-list", ("name",), leaf(QOSPOL, "name", ref("policy"))),
        ),
    ),
)

# The gateway's own module (configs/yang/ponctl-gateway@2026-11-21.yang).
GATEWAY_TOP: tuple[SNode, ...] = (
    container(
        GW,
        "gateway",
        leaf(GW, "phan-url", string(255, r"(https?://[!-~]+)?")),
        leaf(GW, "wan-vlan", uint(0, 4094)),
    ),
)


def root(top: tuple[SNode, ...]) -> SNode:
    """A virtual root whose children are the module top-level nodes."""
    return _node("container", "", "", top)


OLT_SCHEMA = root(TOP)
GATEWAY_SCHEMA = root(GATEWAY_TOP)
