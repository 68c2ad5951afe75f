"""Hardened XML parsing: no DTDs, no entities, no network, bounded size."""

from __future__ import annotations

from lxml import etree

from simulator.config.errors import RpcError

MAX_DOCUMENT = 16 * 1024 * 1024

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


def parse(data: bytes) -> etree._Element:
    """Parse one XML document, refusing DOCTYPE declarations and entities outright.

    NETCONF messages never carry a DTD, so any DOCTYPE is hostile (billion laughs, external
    entities) and is refused before lxml looks at it.
    """
    if len(data) > MAX_DOCUMENT:
        raise RpcError(
            "too-big",
            f"message of {len(data)} bytes exceeds the {MAX_DOCUMENT}-byte limit",
            type="rpc",
        )
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise RpcError("malformed-message", "DOCTYPE and entity declarations are not accepted",
                       type="rpc")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise RpcError("malformed-message", f"malformed XML: {exc}", type="rpc") from exc
    if root.getroottree().docinfo.internalDTD is not None:  # belt and braces
        raise RpcError("malformed-message", "DTDs are not accepted", type="rpc")
    return root
