"""Subtree filtering (RFC 6241 section 6) over the configuration tree, before serialising.

A filter is matched against ``DNode`` trees (configuration, operational state, notification
content), never against serialised XML: a list entry named by its key in the filter is found by
one dict lookup, and only what the filter selects is ever turned into XML. On an OLT with
thousands of interfaces, a filter for one interface costs the same as on an empty OLT.

Filter elements without a namespace (or in the NETCONF base namespace, which they inherit when a
client writes ``<filter><interfaces/></filter>`` under a default-namespaced ``<get-config>``)
match by local name in any namespace.
"""

from __future__ import annotations

from collections.abc import Iterator

from lxml import etree

from simulator.config.errors import RpcError
from simulator.config.namespaces import NC
from simulator.config.schema import SNode
from simulator.config.tree import ChildKey, DNode, parse_value

_UNQUALIFIED = (None, "", NC)


def _element_children(el: etree._Element) -> list[etree._Element]:
    return [c for c in el if isinstance(c.tag, str)]


def _is_content_match(el: etree._Element, children: list[etree._Element]) -> bool:
    return not children and bool((el.text or "").strip())


def _candidates(parent: SNode, el: etree._Element) -> list[SNode]:
    """Schema children of ``parent`` that the filter element ``el`` names."""
    q = etree.QName(el)
    if q.namespace in _UNQUALIFIED:
        return [s for (_, name), s in parent.children.items() if name == q.localname]
    s = parent.children.get((q.namespace or "", q.localname))
    return [s] if s is not None else []


def _canonical(s: SNode, el: etree._Element) -> str | None:
    """The filter text in the form the tree stores (``01`` -> ``1``, identities prefixed).

    A value the leaf cannot hold matches nothing rather than raising: a filter is a question.
    """
    if s.type is not None and s.type.kind == "identity":
        try:
            return parse_value(s, el, "")  # resolves the prefix with the element's namespaces
        except RpcError:
            return None
    if s.type is None:
        return (el.text or "").strip()
    try:
        return s.type.check((el.text or "").strip())
    except ValueError:
        return None


def _content_matches(node: DNode, el: etree._Element) -> list[tuple[ChildKey, DNode]] | None:
    """The data leaves a content-match node matches, or None when it matches none."""
    for s in _candidates(node.schema, el):
        if s.kind == "leaf":
            child = node.children.get((s.ns, s.name, ()))
            if child is not None and child.value == _canonical(s, el):
                return [((s.ns, s.name, ()), child)]
        elif s.kind == "leaf-list":
            value = _canonical(s, el)
            ck: ChildKey = (s.ns, s.name, (value or "",))
            child = node.children.get(ck)
            if value is not None and child is not None:
                return [(ck, child)]
    return None


def _key_lookup(s: SNode, el: etree._Element) -> tuple[str, ...] | None:
    """The full key of the list entry ``el`` names by content match, if it names all keys."""
    by_name: dict[str, etree._Element] = {}
    for c in el:
        if not isinstance(c.tag, str):
            continue
        q = etree.QName(c)
        if q.localname in s.keys and (q.namespace in _UNQUALIFIED or q.namespace == s.ns) \
                and _is_content_match(c, _element_children(c)):
            by_name.setdefault(q.localname, c)
    if len(by_name) != len(s.keys):
        return None
    values: list[str] = []
    for k in s.keys:
        value = _canonical(s.children[(s.ns, k)], by_name[k])
        if value is None:
            return None
        values.append(value)
    return tuple(values)


def _matching(node: DNode, el: etree._Element) -> Iterator[tuple[ChildKey, DNode]]:
    """Data children of ``node`` that the selection or containment node ``el`` names."""
    for s in _candidates(node.schema, el):
        if s.kind == "list":
            key = _key_lookup(s, el)
            if key is not None:
                ck: ChildKey = (s.ns, s.name, key)
                child = node.children.get(ck)
                if child is not None:
                    yield ck, child
                continue
        if s.kind in ("list", "leaf-list"):
            for ck, child in node.children.items():
                if ck[1] == s.name and ck[0] == s.ns:
                    yield ck, child
            continue
        ck = (s.ns, s.name, ())
        child = node.children.get(ck)
        if child is not None:
            yield ck, child


def union(a: DNode | None, b: DNode) -> DNode:
    """Two selections of the same data node, merged (neither is changed)."""
    if a is None or a is b:
        return b
    if b.schema.kind in ("leaf", "leaf-list"):
        return a
    merged = DNode(a.schema, a.value, dict(a.children))
    for ck, child in b.children.items():
        merged.children[ck] = union(merged.children.get(ck), child)
    return merged


def _select(node: DNode, el: etree._Element) -> DNode | None:
    """Filter ``node`` (which ``el`` matched) by ``el``'s children; None if excluded."""
    kids = _element_children(el)
    if not kids or node.schema.kind in ("leaf", "leaf-list"):
        return node  # a selection node: the whole subtree
    out = DNode(node.schema)
    rest: list[etree._Element] = []
    matched_content = False
    for c in kids:
        if _is_content_match(c, _element_children(c)):
            candidates = _candidates(node.schema, c)
            if not candidates:
                return None  # a content match on a node the schema lacks never holds
            if not any(s.kind in ("leaf", "leaf-list") for s in candidates):
                rest.append(c)  # text on a container: treat it as a selection node
                continue
            found = _content_matches(node, c)
            if found is None:
                return None  # every content match must hold (RFC 6241 6.2.5)
            for ck, child in found:
                out.children[ck] = child
            matched_content = True
        else:
            rest.append(c)
    if not rest:
        return node  # only content matches: the whole entry (RFC 6241 6.4.4)
    produced = _select_into(out, node, rest)
    if not (produced or matched_content):
        return None
    s = node.schema
    if s.kind == "list":
        for k in s.keys:  # list entries always carry their keys
            ck = (s.ns, k, ())
            if ck not in out.children and ck in node.children:
                out.children[ck] = node.children[ck]
    return out


def _select_into(out: DNode, node: DNode, elements: list[etree._Element]) -> bool:
    produced = False
    for c in elements:
        for ck, child in _matching(node, c):
            picked = _select(child, c)
            if picked is not None:
                out.children[ck] = union(out.children.get(ck), picked)
                produced = True
    return produced


def apply(root: DNode, filter_elements: list[etree._Element] | None) -> DNode:
    """Filter a whole tree by a subtree filter's top-level elements (None: no filter).

    An empty filter selects nothing (RFC 6241 6.4.2). The result shares unselected-into
    subtrees with ``root``; neither is changed.
    """
    if filter_elements is None:
        return root
    out = DNode(root.schema)
    _select_into(out, root, [e for e in filter_elements if isinstance(e.tag, str)])
    return out
