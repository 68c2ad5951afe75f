"""XML namespaces of the Broadband Forum and IETF modules the simulated OLT implements."""

from __future__ import annotations

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
IANAIFT = "urn:ietf:params:xml:ns:yang:iana-if-type"
BBFIFT = "urn:bbf:yang:bbf-if-type"
XPONIFT = "urn:bbf:yang:bbf-xpon-if-type"
XPON = "urn:bbf:yang:bbf-xpon"
XPONTYPES = "urn:bbf:yang:bbf-xpon-types"
VANI = "urn:bbf:yang:bbf-xponvani"
ANI = "urn:bbf:yang:bbf-xponani"
GEM = "urn:bbf:yang:bbf-xpongemtcont"
SUBIF = "urn:bbf:yang:bbf-sub-interfaces"
TAG = "urn:bbf:yang:bbf-sub-interface-tagging"
DOT1QT = "urn:bbf:yang:bbf-dot1q-types"
USAGE = "urn:bbf:yang:bbf-interface-usage"
L2F = "urn:bbf:yang:bbf-l2-forwarding"
LT = "urn:bbf:yang:bbf-link-table"
QOSCLS = "urn:bbf:yang:bbf-qos-classifiers"
QOSPOL = "urn:bbf:yang:bbf-qos-policies"
GW = "urn:ponctl:yang:ponctl-gateway"

# Canonical prefixes, used when writing identityref values back out.
PREFIXES: dict[str, str] = {
    "if": IF,
    "ianaift": IANAIFT,
    "bbfift": BBFIFT,
    "bbf-xponift": XPONIFT,
    "bbf-xpon": XPON,
    "bbf-xpon-types": XPONTYPES,
    "bbf-xponvani": VANI,
    "bbf-xponani": ANI,
    "bbf-xpongemtcont": GEM,
    "bbf-subif": SUBIF,
    "bbf-subif-tag": TAG,
    "bbf-dot1qt": DOT1QT,
    "bbf-if-usg": USAGE,
    "bbf-l2-fwd": L2F,
    "bbf-lt": LT,
    "bbf-qos-cls": QOSCLS,
    "bbf-qos-pol": QOSPOL,
    "pgw": GW,
}
PREFIX_OF: dict[str, str] = {ns: p for p, ns in PREFIXES.items()}
