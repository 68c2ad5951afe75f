"""Canonical text of configuration XML, diffs between two configurations, and a schema-less
merge for devices without a candidate datastore. Pure functions.

The canonical form is meant for diffs a person reads: one element per line, indented, every
namespace written as a default-namespace declaration where it changes (so the server's choice
of prefixes never shows up as a change), attributes sorted, whitespace-only text dropped.
Sibling order is kept: ``ordered-by user`` lists make it meaningful.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Sequence

from lxml import etree

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
_OPERATION = f"{{{NC}}}operation"
_INDENT = "  "


def _esc(text: str, quote: bool = False) -> str:
    out = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return out.replace('"', "&quot;") if quote else out


def _attrs(el: etree._Element) -> str:
    items = []
    for name, value in el.attrib.items():
        q = etree.QName(str(name))
        shown = f"{{{q.namespace}}}{q.localname}" if q.namespace else q.localname
        items.append(f' {shown}="{_esc(str(value), True)}"')
    return "".join(sorted(items))


def _lines(el: etree._Element, parent_ns: str | None, depth: int, out: list[str]) -> None:
    q = etree.QName(el)
    name = q.localname
    xmlns = f' xmlns="{q.namespace or ""}"' if q.namespace != parent_ns else ""
    head = f"{_INDENT * depth}<{name}{xmlns}{_attrs(el)}"
    children = [c for c in el if isinstance(c.tag, str)]
    text = (el.text or "").strip()
    if not children:
        out.append(f"{head}>{_esc(text)}</{name}>" if text else f"{head}/>")
        return
    out.append(f"{head}>" + (_esc(text) if text else ""))
    for child in children:
        _lines(child, q.namespace, depth + 1, out)
    out.append(f"{_INDENT * depth}</{name}>")


def canonical_lines(elements: Iterable[etree._Element]) -> list[str]:
    """The canonical text of top-level config elements, one element per line."""
    out: list[str] = []
    for el in elements:
        if isinstance(el.tag, str):
            _lines(el, None, 0, out)
    return out


def unified_diff(before: Sequence[str], after: Sequence[str], *, before_name: str = "running",
                 after_name: str = "candidate") -> tuple[str, ...]:
    """Unified-diff lines from ``before`` to ``after`` (empty when they are equal)."""
    if list(before) == list(after):
        return ()
    return tuple(difflib.unified_diff(list(before), list(after), fromfile=before_name,
                                      tofile=after_name, lineterm="", n=3))


# ---- merging a payload into a configuration, without a schema --------------------------------

def _is_leaf(el: etree._Element) -> bool:
    return not any(isinstance(c.tag, str) for c in el)


def _key(el: etree._Element) -> tuple[str, str] | None:
    """The first child leaf as (tag, text): YANG's XML encoding puts list keys first
    (RFC 7950 section 7.8.5), so this is a list entry's first key if ``el`` is an entry."""
    for c in el:
        if isinstance(c.tag, str):
            return (str(c.tag), (c.text or "").strip()) if _is_leaf(c) else None
    return None


def _match(target: etree._Element, el: etree._Element) -> etree._Element | None:
    same = [c for c in target if isinstance(c.tag, str) and c.tag == el.tag]
    if not same:
        return None
    if _is_leaf(el):
        # Leaf-list entries are told apart by value; a leaf is unique under its parent.
        if len(same) > 1:
            text = (el.text or "").strip()
            return next((c for c in same if (c.text or "").strip() == text), None)
        return same[0]
    if len(same) == 1:
        # One instance of this tag: a container, or a list with one entry. Taken as the
        # same node (a container's first leaf may change); a new entry of a one-entry list
        # therefore shows as a change to the existing one. That is the "best effort".
        return same[0]
    key = _key(el)
    return next((c for c in same if key is not None and _key(c) == key), None)


def _merge_into(target: etree._Element, elements: Iterable[etree._Element],
                inherited: str) -> None:
    for el in elements:
        if not isinstance(el.tag, str):
            continue
        op = el.get(_OPERATION, inherited)
        existing = _match(target, el)
        if op in ("delete", "remove"):
            if existing is not None:
                target.remove(existing)
            continue
        if op == "none" and existing is None:
            continue
        if existing is None or op in ("replace", "create"):
            fresh = _strip_operations(copy.deepcopy(el))
            if existing is None:
                target.append(fresh)
            else:
                target.replace(existing, fresh)
            continue
        if _is_leaf(el):
            existing.text = el.text
            continue
        _merge_into(existing, list(el), op)


def _strip_operations(el: etree._Element) -> etree._Element:
    for e in el.iter():
        if isinstance(e.tag, str) and _OPERATION in e.attrib:
            del e.attrib[_OPERATION]
    return el


def merge(running: Sequence[etree._Element], payload: Sequence[etree._Element], *,
          replace: bool = False) -> list[etree._Element]:
    """What ``running`` would become after an edit-config of ``payload`` (best effort).

    Without a schema, containers and lists look alike. A node with one instance in running is
    taken as the node the payload means (right for containers; for a one-entry list, a new
    entry shows as a change to the existing one). Among several instances, list entries are
    matched by their first child leaf, which YANG's XML encoding makes the first key
    (entries differing only in a later key are taken as one). ``nc:operation`` attributes
    (merge, replace, create, delete, remove, none) are honoured. With ``replace`` the
    payload is the whole new configuration.
    """
    if replace:
        return [_strip_operations(copy.deepcopy(e)) for e in payload
                if e.get(_OPERATION) not in ("delete", "remove")]
    root = etree.Element("root")
    for e in running:
        root.append(copy.deepcopy(e))
    _merge_into(root, payload, "merge")
    return [c for c in root if isinstance(c.tag, str)]
