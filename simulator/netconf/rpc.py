"""Pure halves of the NETCONF server: parse ``<rpc>`` messages, build replies and notifications.

The session (``server.py``) does the I/O; everything here takes and returns bytes or elements.
"""

from __future__ import annotations

import html
import re
import secrets
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from lxml import etree

from simulator.config import xmlsafe
from simulator.config.errors import RpcError
from simulator.config.namespaces import NC, PREFIXES
from simulator.config.tree import DNode, to_xml

NOTIF = "urn:ietf:params:xml:ns:netconf:notification:1.0"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_PREFIX_IN_PATH = re.compile(r"([A-Za-z_][\w.-]*):")
Nsmap = dict[str | None, str]


def nsmap(m: Nsmap) -> dict[str, str]:
    # lxml takes None as the default-namespace key; its stubs do not say so.
    return cast(dict[str, str], m)


def nc(name: str) -> str:
    return f"{{{NC}}}{name}"


@dataclass(slots=True)
class Request:
    """One received ``<rpc>``: its attributes (echoed in the reply) and its operation."""

    rpc: etree._Element
    operation: etree._Element | None

    @property
    def message_id(self) -> str | None:
        return self.rpc.get("message-id")


def parse_request(data: bytes) -> Request:
    """Parse one message into a Request; raises RpcError (malformed-message, ...)."""
    root = xmlsafe.parse(data)
    if root.tag != nc("rpc"):
        raise RpcError("malformed-message",
                       f"expected <rpc> in {NC}, got <{etree.QName(root).localname}>",
                       type="rpc", info={"bad-element": etree.QName(root).localname})
    ops = [c for c in root if isinstance(c.tag, str)]
    return Request(root, ops[0] if len(ops) == 1 else None)


def check_request(req: Request) -> etree._Element:
    """The operation element of a well-formed request; raises RpcError otherwise."""
    if req.message_id is None:
        raise RpcError("missing-attribute", "<rpc> has no message-id attribute", type="rpc",
                       info={"bad-attribute": "message-id", "bad-element": "rpc"})
    if req.operation is None:
        count = sum(1 for c in req.rpc if isinstance(c.tag, str))
        what = "no operation" if count == 0 else f"{count} operations (one is allowed)"
        raise RpcError("missing-element" if count == 0 else "bad-element",
                       f"<rpc> carries {what}", type="rpc", info={"bad-element": "rpc"})
    return req.operation


def error_element(err: RpcError) -> etree._Element:
    """One ``<rpc-error>`` in RFC 6241 order, with error-path prefixes declared."""
    el = etree.Element(nc("rpc-error"))
    etree.SubElement(el, nc("error-type")).text = err.type
    etree.SubElement(el, nc("error-tag")).text = err.tag
    etree.SubElement(el, nc("error-severity")).text = err.severity
    if err.app_tag:
        etree.SubElement(el, nc("error-app-tag")).text = err.app_tag
    if err.path:
        used = {p: PREFIXES[p] for p in _PREFIX_IN_PATH.findall(err.path) if p in PREFIXES}
        etree.SubElement(el, nc("error-path"), nsmap=nsmap(dict(used))).text = err.path
    msg = etree.SubElement(el, nc("error-message"))
    msg.set(XML_LANG, "en")
    msg.text = err.message
    if err.info:
        info = etree.SubElement(el, nc("error-info"))
        for key, value in err.info.items():
            etree.SubElement(info, nc(key)).text = value
    return el


def _reply_root(rpc: etree._Element | None) -> etree._Element:
    m: Nsmap = {None: NC}
    if rpc is not None:
        # Namespaced attributes keep the client's prefix (lxml fixes nsmap at creation).
        for name in rpc.attrib:
            ns = etree.QName(name).namespace
            if ns and ns != NC:
                for prefix, uri in (rpc.nsmap or {}).items():
                    if uri == ns and prefix:
                        m.setdefault(prefix, uri)
    reply = etree.Element(nc("rpc-reply"), nsmap=nsmap(m))
    if rpc is not None:
        # RFC 6241 4.2: every attribute of <rpc> comes back unchanged.
        for name, value in rpc.attrib.items():
            reply.set(name, value)
    return reply


def serialise(el: etree._Element) -> bytes:
    return etree.tostring(el, xml_declaration=True, encoding="UTF-8")


def reply_ok(rpc: etree._Element) -> bytes:
    reply = _reply_root(rpc)
    etree.SubElement(reply, nc("ok"))
    return serialise(reply)


def reply_errors(rpc: etree._Element | None, errors: Iterable[RpcError]) -> bytes:
    """An rpc-reply with one rpc-error per error (``rpc`` None when it could not be parsed)."""
    reply = _reply_root(rpc)
    for err in errors:
        reply.append(error_element(err))
    return serialise(reply)


# Serialised subtrees, per (immutable) node: reading an unchanged datastore again (read-backs,
# audits) reuses the bytes instead of rebuilding thousands of elements, and a container is the
# concatenation of its children's bytes, so after a commit only the entries it changed are
# serialised again (an OLT's ``interfaces`` holds several entries per ONT: rebuilding all of
# them on every read made each transaction's read-back cost grow with the OLT's size). The
# bytes are the same as serialising the whole subtree at once.
_SERIALISED: weakref.WeakKeyDictionary[DNode, bytes] = weakref.WeakKeyDictionary()
_HOLE = f"ponctl-data-{secrets.token_hex(8)}"


def _subtree_bytes(node: DNode, parent_ns: str | None = None) -> bytes:
    # A node always sits under the same parent (its schema's), so its bytes are cached alone.
    cached = _SERIALISED.get(node)
    if cached is None:
        s = node.schema
        if s.kind == "container" and node.children:
            xmlns = f' xmlns="{html.escape(s.ns, quote=True)}"' if s.ns != parent_ns else ""
            cached = (f"<{s.name}{xmlns}>".encode()
                      + b"".join(_subtree_bytes(c, s.ns) for c in node.children.values())
                      + f"</{s.name}>".encode())
        else:
            cached = etree.tostring(to_xml(node), encoding="UTF-8")
            # Serialised alone it declares its namespace; under a parent of the same
            # namespace it would not (to_xml's rule): drop that declaration.
            own = f'<{s.name} xmlns="{html.escape(s.ns, quote=True)}"'.encode()
            if s.ns == parent_ns and cached.startswith(own):
                cached = f"<{s.name}".encode() + cached[len(own):]
        _SERIALISED[node] = cached
    return cached


def reply_data(rpc: etree._Element, trees: Iterable[DNode]) -> bytes:
    """An rpc-reply whose ``<data>`` holds the top-level nodes of each tree, in order."""
    reply = _reply_root(rpc)
    data = etree.SubElement(reply, nc("data"))
    data.text = _HOLE
    body = b"".join(_subtree_bytes(child) for tree in trees for child in tree.children.values())
    head, tail = serialise(reply).split(_HOLE.encode(), 1)
    return head + body + tail


def notification(event_time: str, content: DNode, extra_ns: dict[str, str]) -> bytes:
    """A ``<notification>`` (RFC 5277) carrying ``content``'s top-level nodes."""
    m: Nsmap = {None: NOTIF}
    m.update(extra_ns)  # prefixes used in identity values, in scope for every child
    note = etree.Element(f"{{{NOTIF}}}notification", nsmap=nsmap(m))
    etree.SubElement(note, f"{{{NOTIF}}}eventTime").text = event_time
    for child in content.children.values():
        to_xml(child, note)
    return serialise(note)


# ---- reading parameters --------------------------------------------------------------------

def children(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def check_params(op: etree._Element, allowed: Iterable[str]) -> dict[str, etree._Element]:
    """The operation's parameters by local name; unknown or repeated ones are refused."""
    names = set(allowed)
    out: dict[str, etree._Element] = {}
    opname = etree.QName(op).localname
    for c in children(op):
        q = etree.QName(c)
        if q.localname not in names or q.namespace not in (NC, etree.QName(op).namespace):
            raise RpcError("unknown-element",
                           f"<{opname}> takes no parameter <{q.localname}>", type="protocol",
                           info={"bad-element": q.localname})
        if q.localname in out:
            raise RpcError("bad-element", f"<{q.localname}> appears twice in <{opname}>",
                           type="protocol", info={"bad-element": q.localname})
        out[q.localname] = c
    return out


def datastore_or_config(params: dict[str, etree._Element], name: str,
                        allowed: Iterable[str]) -> str | etree._Element:
    """A ``<source>`` parameter: a datastore name, or an inline ``<config>`` element."""
    el = params.get(name)
    if el is None:
        raise RpcError("missing-element", f"<{name}> is required", type="protocol",
                       info={"bad-element": name})
    kids = children(el)
    if len(kids) != 1:
        raise RpcError("bad-element", f"<{name}> must name exactly one datastore",
                       type="protocol", info={"bad-element": name})
    choice = etree.QName(kids[0]).localname
    if choice == "config":
        return kids[0]
    ok = set(allowed)
    if choice not in ok:
        raise RpcError("invalid-value",
                       f"<{name}> {choice!r} is not supported here (supported: "
                       f"{', '.join(sorted(ok)) or 'none'})",
                       type="protocol", info={"bad-element": choice})
    return choice


def datastore(params: dict[str, etree._Element], name: str, allowed: Iterable[str]) -> str:
    """A ``<source>``/``<target>`` parameter naming one of the ``allowed`` datastores."""
    choice = datastore_or_config(params, name, allowed)
    if not isinstance(choice, str):
        raise RpcError("invalid-value", f"<{name}> cannot be an inline <config> here",
                       type="protocol", info={"bad-element": "config"})
    return choice


def text(params: dict[str, etree._Element], name: str) -> str | None:
    el = params.get(name)
    return None if el is None else (el.text or "").strip()


def enum_param(params: dict[str, etree._Element], name: str, values: tuple[str, ...],
               default: str) -> str:
    value = text(params, name)
    if value is None:
        return default
    if value not in values:
        raise RpcError("invalid-value", f"<{name}> must be one of {', '.join(values)}, "
                       f"not {value!r}", type="protocol", info={"bad-element": name})
    return value


def uint_param(params: dict[str, etree._Element], name: str, default: int,
               hi: int = 4294967295) -> int:
    value = text(params, name)
    if value is None:
        return default
    if not value.isdigit() or int(value) > hi:
        raise RpcError("invalid-value", f"<{name}> must be an integer 0..{hi}, not {value!r}",
                       type="protocol", info={"bad-element": name})
    return int(value)


def subtree_filter(params: dict[str, etree._Element]) -> list[etree._Element] | None:
    """The top-level elements of a subtree ``<filter>``, or None when there is no filter."""
    el = params.get("filter")
    if el is None:
        return None
    ftype = el.get("type") or el.get(nc("type")) or "subtree"
    if ftype != "subtree":
        raise RpcError("invalid-value",
                       f"filter type {ftype!r} is not supported (no :xpath capability)",
                       type="protocol", info={"bad-attribute": "type", "bad-element": "filter"})
    return children(el)
