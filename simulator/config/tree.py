"""An immutable, schema-aware configuration tree.

Nodes are never changed in place: an edit returns a new root that shares every untouched
subtree with the old one. That makes the candidate a cheap copy of running, rollback-on-error a
matter of dropping the new root, and a confirmed commit's rollback a saved reference.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import cast

from lxml import etree

from simulator.config.errors import RpcError
from simulator.config.namespaces import PREFIX_OF, PREFIXES
from simulator.config.schema import SNode

# (namespace, local name, key values): key values are () for containers and leaves, the list
# keys for list entries, and (value,) for leaf-list entries.
ChildKey = tuple[str, str, tuple[str, ...]]


def _ns(nsmap: dict[str | None, str] | None) -> dict[str, str] | None:
    # lxml takes None as the default-namespace key; its stubs do not say so.
    return cast(dict[str, str] | None, nsmap)


@dataclass(slots=True, eq=False, weakref_slot=True)
class DNode:
    """A data node: a container or list entry (``children``) or a leaf (``value``)."""

    schema: SNode
    value: str | None = None
    children: dict[ChildKey, DNode] = field(default_factory=dict)

    @property
    def ns(self) -> str:
        return self.schema.ns

    @property
    def name(self) -> str:
        return self.schema.name

    def key(self) -> ChildKey:
        s = self.schema
        if s.kind == "list":
            return (s.ns, s.name, tuple(self.leaf(k) or "" for k in s.keys))
        if s.kind == "leaf-list":
            return (s.ns, s.name, (self.value or "",))
        return (s.ns, s.name, ())

    def leaf(self, name: str, ns: str | None = None) -> str | None:
        """The value of a child leaf (same namespace unless given), or None."""
        node = self.children.get((ns if ns is not None else self.schema.ns, name, ()))
        return node.value if node is not None else None

    def get(self, ns: str, name: str) -> DNode | None:
        return self.children.get((ns, name, ()))

    def entries(self, ns: str, name: str) -> Iterator[DNode]:
        """The entries of a list (or leaf-list) child, in order."""
        for (cns, cname, _), child in self.children.items():
            if cname == name and cns == ns:
                yield child

    def path(self, ns: str, *names: str) -> DNode | None:
        node: DNode | None = self
        for n in names:
            if node is None:
                return None
            node = node.get(ns, n)
        return node

    def shallow_copy(self) -> DNode:
        return DNode(self.schema, self.value, dict(self.children))

    def count(self) -> int:
        return 1 + sum(c.count() for c in self.children.values())

    def same(self, other: DNode) -> bool:
        """Deep equality of two trees (order-insensitive)."""
        if self is other:
            return True
        if self.value != other.value or self.children.keys() != other.children.keys():
            return False
        return all(c.same(other.children[k]) for k, c in self.children.items())


def _qname(node: SNode) -> str:
    return f"{{{node.ns}}}{node.name}" if node.ns else node.name


def to_xml(node: DNode, parent: etree._Element | None = None) -> etree._Element:
    """Serialise a data node (the virtual root becomes a ``<data>``-less list of children)."""
    s = node.schema
    nsmap: dict[str | None, str] = {}
    parent_ns = None if parent is None else etree.QName(parent).namespace
    if s.ns != parent_ns:
        nsmap[None] = s.ns
    value = node.value
    if s.type is not None and s.type.kind == "identity" and value and ":" in value:
        prefix = value.split(":", 1)[0]
        nsmap[prefix] = PREFIXES[prefix]
    if parent is None:
        el = etree.Element(_qname(s), nsmap=_ns(nsmap or None))
    else:
        el = etree.SubElement(parent, _qname(s), nsmap=_ns(nsmap or None))
    if s.kind in ("leaf", "leaf-list"):
        if value:
            el.text = value
        return el
    # List keys come first (RFC 7950 section 7.8.5).
    keys: list[ChildKey] = [(s.ns, k, ()) for k in s.keys]
    for k in keys:
        if k in node.children:
            to_xml(node.children[k], el)
    for ck, child in node.children.items():
        if ck not in keys:
            to_xml(child, el)
    return el


def root_to_xml(root: DNode, wrapper: str) -> etree._Element:
    """Serialise the virtual root's children under a wrapper element (``data``, ``config``)."""
    el = etree.Element(wrapper)
    for child in root.children.values():
        to_xml(child, el)
    return el


def parse_value(schema: SNode, el: etree._Element, path: str) -> str:
    """Check an element's text against its leaf type and return the canonical value."""
    t = schema.type
    assert t is not None
    text = el.text or ""
    if len(el):
        raise RpcError("invalid-value", f"leaf {schema.name!r} cannot have child elements",
                       path=path)
    try:
        if t.kind == "identity":
            return _identity(t.identities, text.strip(), el)
        return t.check(text)
    except ValueError as exc:
        raise RpcError(
            "invalid-value", f"invalid value for {schema.name!r}: {exc}", path=path,
            info={"bad-element": schema.name},
        ) from exc


def _identity(allowed: tuple[tuple[str, str], ...], text: str, el: etree._Element) -> str:
    if ":" in text:
        prefix, name = text.split(":", 1)
        ns = el.nsmap.get(prefix) or PREFIXES.get(prefix)
        if ns is None:
            raise ValueError(f"prefix {prefix!r} of {text!r} is not declared")
        if (ns, name) in allowed:
            return f"{PREFIX_OF[ns]}:{name}"
    else:
        matches = [(ns, n) for ns, n in allowed if n == text]
        if len(matches) == 1:
            ns, name = matches[0]
            return f"{PREFIX_OF[ns]}:{name}"
    names = ", ".join(f"{PREFIX_OF[ns]}:{n}" for ns, n in allowed)
    raise ValueError(f"{text!r} is not one of the identities {names}")


def identity_name(value: str | None) -> str | None:
    """The local name of a canonical identity value (``bbf-xponift:v-ani`` -> ``v-ani``)."""
    if value is None:
        return None
    return value.split(":", 1)[-1]


def element_path(parent_path: str, schema: SNode, key: tuple[str, ...] = ()) -> str:
    prefix = PREFIX_OF.get(schema.ns, "")
    step = f"{prefix}:{schema.name}" if prefix else schema.name
    for k, v in zip(schema.keys, key, strict=False):
        step += f"[{prefix}:{k}={_xpath_literal(v)}]"
    return f"{parent_path}/{step}"


def _xpath_literal(value: str) -> str:
    if "'" not in value:
        return f"'{value}'"
    return '"' + value.replace('"', "") + '"'


def from_xml(schema_root: SNode, elements: list[etree._Element]) -> DNode:
    """Build a tree from data elements (e.g. a ``<config>``'s children); strict schema check."""
    root = DNode(schema_root)
    for el in elements:
        child = _build(schema_root, el, "")
        root.children[child.key()] = child
    return root


def lookup(parent: SNode, el: etree._Element, path: str) -> SNode:
    """The schema node for a child element, or an ``unknown-element`` error."""
    q = etree.QName(el)
    ns = q.namespace or ""
    node = parent.child(ns, q.localname)
    if node is None and not ns:
        # A filter or edit without a namespace: accept a unique match by local name.
        found = [c for (cns, cname), c in parent.children.items() if cname == q.localname]
        if len(found) == 1:
            node = found[0]
    if node is None:
        where = path or "/"
        raise RpcError(
            "unknown-element",
            f"unknown element {q.localname!r} (namespace {ns or 'none'}) under {where}",
            type="application" if path else "protocol",
            path=path or None,
            info={"bad-element": q.localname},
        )
    return node


def _build(parent_schema: SNode, el: etree._Element, parent_path: str) -> DNode:
    s = lookup(parent_schema, el, parent_path)
    if not isinstance(el.tag, str):
        raise RpcError("malformed-message", "unexpected XML node", type="rpc")
    if s.kind in ("leaf", "leaf-list"):
        path = element_path(parent_path, s)
        return DNode(s, parse_value(s, el, path))
    node = DNode(s)
    path = element_path(parent_path, s)
    for child_el in el:
        child = _build(s, child_el, path)
        ck = child.key()
        if ck in node.children and child.schema.kind in ("leaf", "container"):
            raise RpcError("bad-element", f"{child.name!r} appears twice", path=path,
                           info={"bad-element": child.name})
        node.children[ck] = child
    if s.kind == "list":
        for k in s.keys:
            if node.leaf(k) is None:
                raise RpcError("missing-element", f"list {s.name!r} entry lacks key {k!r}",
                               path=path, info={"bad-element": k})
    return node
