"""Capabilities the simulated devices advertise, and the hello exchange (RFC 6241 section 8.1).

Module revisions are those of the Broadband Forum / IETF modules the simulator's schema follows
(``shared/yang/modules``), copied here so that nothing outside the package is read at run time.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from simulator.config import xmlsafe
from simulator.config.errors import RpcError
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
    NC,
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
from simulator.netconf.rpc import nsmap

BASE_10 = "urn:ietf:params:netconf:base:1.0"
BASE_11 = "urn:ietf:params:netconf:base:1.1"
WRITABLE_RUNNING = "urn:ietf:params:netconf:capability:writable-running:1.0"
CANDIDATE = "urn:ietf:params:netconf:capability:candidate:1.0"
CONFIRMED_COMMIT = "urn:ietf:params:netconf:capability:confirmed-commit:1.1"
ROLLBACK_ON_ERROR = "urn:ietf:params:netconf:capability:rollback-on-error:1.0"
VALIDATE = "urn:ietf:params:netconf:capability:validate:1.1"
STARTUP = "urn:ietf:params:netconf:capability:startup:1.0"
NOTIFICATION = "urn:ietf:params:netconf:capability:notification:1.0"
INTERLEAVE = "urn:ietf:params:netconf:capability:interleave:1.0"

ONU_TYPES = "urn:bbf:yang:bbf-xpon-onu-types"
YANG_TYPES = "urn:ietf:params:xml:ns:yang:ietf-yang-types"

# (namespace, module, revision) of each module the OLT implements or whose identities it uses.
OLT_MODULES: tuple[tuple[str, str, str], ...] = (
    (IF, "ietf-interfaces", "2018-02-20"),
    (IANAIFT, "iana-if-type", "2019-02-08"),
    (YANG_TYPES, "ietf-yang-types", "2013-07-15"),
    (BBFIFT, "bbf-if-type", "2023-12-15"),
    (XPONIFT, "bbf-xpon-if-type", "2024-04-23"),
    (XPON, "bbf-xpon", "2024-04-23"),
    (XPONTYPES, "bbf-xpon-types", "2024-04-23"),
    (ONU_TYPES, "bbf-xpon-onu-types", "2024-04-23"),
    (VANI, "bbf-xponvani", "2024-04-23"),
    (ANI, "bbf-xponani", "2024-04-23"),
    (GEM, "bbf-xpongemtcont", "2024-04-23"),
    (SUBIF, "bbf-sub-interfaces", "2023-12-15"),
    (TAG, "bbf-sub-interface-tagging", "2023-12-15"),
    (DOT1QT, "bbf-dot1q-types", "2024-11-11"),
    (USAGE, "bbf-interface-usage", "2023-03-07"),
    (L2F, "bbf-l2-forwarding", "2025-07-02"),
    (LT, "bbf-link-table", "2020-10-13"),
    (QOSCLS, "bbf-qos-classifiers", "2025-07-02"),
    (QOSPOL, "bbf-qos-policies", "2025-07-02"),
)
GATEWAY_MODULES: tuple[tuple[str, str, str], ...] = (
    (GW, "ponctl-gateway", "2026-11-21"),
    (YANG_TYPES, "ietf-yang-types", "2013-07-15"),
)


def module_capability(namespace: str, module: str, revision: str) -> str:
    """A YANG module capability URI (RFC 6020 section 5.6.4)."""
    return f"{namespace}?module={module}&revision={revision}"


def olt_capabilities() -> list[str]:
    """What an OLT advertises: candidate, confirmed commit, validate, notifications, modules."""
    return [
        BASE_10, BASE_11, WRITABLE_RUNNING, CANDIDATE, CONFIRMED_COMMIT, ROLLBACK_ON_ERROR,
        VALIDATE, STARTUP, NOTIFICATION, INTERLEAVE,
        *(module_capability(*m) for m in OLT_MODULES),
    ]


def gateway_capabilities() -> list[str]:
    """What a gateway advertises: a writable running datastore and its own module, no more."""
    return [BASE_10, BASE_11, WRITABLE_RUNNING,
            *(module_capability(*m) for m in GATEWAY_MODULES)]


def build_hello(capabilities: list[str], session_id: int) -> bytes:
    """The server's ``<hello>`` (unframed)."""
    hello = etree.Element(f"{{{NC}}}hello", nsmap=nsmap({None: NC}))
    caps = etree.SubElement(hello, f"{{{NC}}}capabilities")
    for cap in capabilities:
        etree.SubElement(caps, f"{{{NC}}}capability").text = cap
    etree.SubElement(hello, f"{{{NC}}}session-id").text = str(session_id)
    return etree.tostring(hello, xml_declaration=True, encoding="UTF-8")


@dataclass(frozen=True, slots=True)
class ClientHello:
    capabilities: frozenset[str]

    @property
    def base11(self) -> bool:
        return BASE_11 in self.capabilities


def parse_client_hello(data: bytes) -> ClientHello:
    """Parse a client's hello; raises RpcError if it is not one RFC 6241 accepts."""
    root = xmlsafe.parse(data)
    if root.tag != f"{{{NC}}}hello":
        got = etree.QName(root).localname
        raise RpcError("malformed-message", f"expected <hello>, got <{got}>", type="rpc")
    if root.find(f"{{{NC}}}session-id") is not None:
        # RFC 6241 8.1: a client hello with a session-id makes the server end the session.
        raise RpcError("malformed-message", "a client <hello> must not carry a session-id",
                       type="rpc")
    caps_el = root.find(f"{{{NC}}}capabilities")
    if caps_el is None:
        raise RpcError("malformed-message", "<hello> without <capabilities>", type="rpc")
    caps = frozenset((c.text or "").strip() for c in caps_el.iter(f"{{{NC}}}capability"))
    if BASE_10 not in caps and BASE_11 not in caps:
        raise RpcError("malformed-message", "the client supports neither base:1.0 nor base:1.1",
                       type="rpc")
    return ClientHello(caps)
