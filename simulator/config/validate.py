"""Whole-datastore checks YANG puts on a configuration: ``when``, mandatory, leafref, unique.

Checks are incremental: only subtrees that differ (by identity) from the last valid tree are
walked, plus a full leafref walk when something that can be referenced was removed.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator

from simulator.config.errors import RpcError
from simulator.config.namespaces import GEM, IF, QOSCLS, QOSPOL
from simulator.config.tree import DNode, element_path, identity_name

Tables = dict[str, set[str]]


_TABLES: weakref.WeakKeyDictionary[DNode, Tables] = weakref.WeakKeyDictionary()


def tables(root: DNode) -> Tables:
    """The names each leafref target table holds (computed once per tree)."""
    cached = _TABLES.get(root)
    if cached is None:
        cached = _TABLES[root] = _tables(root)
    return cached


def _tables(root: DNode) -> Tables:
    t: Tables = {k: set() for k in ("interface", "tdp", "tcont", "classifier", "policy",
                                     "policy-profile")}
    ifs = root.get(IF, "interfaces")
    if ifs is not None:
        t["interface"] = {e.leaf("name") or "" for e in ifs.entries(IF, "interface")}
    gem = root.get(GEM, "xpongemtcont")
    if gem is not None:
        tdps = gem.get(GEM, "traffic-descriptor-profiles")
        if tdps is not None:
            t["tdp"] = {e.leaf("name") or "" for e in tdps.entries(GEM,
                                                                    "traffic-descriptor-profile")}
        tconts = gem.get(GEM, "tconts")
        if tconts is not None:
            t["tcont"] = {e.leaf("name") or "" for e in tconts.entries(GEM, "tcont")}
    cls = root.get(QOSCLS, "classifiers")
    if cls is not None:
        t["classifier"] = {e.leaf("name") or "" for e in cls.entries(QOSCLS, "classifier-entry")}
    pol = root.get(QOSPOL, "policies")
    if pol is not None:
        t["policy"] = {e.leaf("name") or "" for e in pol.entries(QOSPOL, "policy")}
    prof = root.get(QOSPOL, "qos-policy-profiles")
    if prof is not None:
        t["policy-profile"] = {e.leaf("name") or "" for e in prof.entries(QOSPOL,
                                                                           "policy-profile")}
    return t


def validate(new: DNode, old: DNode | None = None) -> None:
    """Raise the first RpcError that makes ``new`` invalid; ``old`` was valid (or None)."""
    tabs = tables(new)
    full = old is None
    if old is not None:
        old_tabs = tables(old)
        full = any(old_tabs[k] - tabs[k] for k in tabs)
    for path, node in _changed(new, None if full else old, ""):
        _check_node(node, path, tabs)


def _changed(new: DNode, old: DNode | None, path: str) -> Iterator[tuple[str, DNode]]:
    """Nodes of ``new`` not shared with ``old``, with their paths (a node shared is valid)."""
    if old is new:
        return
    key = new.key()[2] if new.schema.kind == "list" else ()
    here = element_path(path, new.schema, key) if new.schema.name else ""
    yield here, new
    for k, child in new.children.items():
        prev = old.children.get(k) if old is not None else None
        if prev is child:
            continue
        yield from _changed(child, prev, here)


def _check_node(node: DNode, path: str, tabs: Tables) -> None:
    s = node.schema
    if s.kind in ("leaf", "leaf-list"):
        t = s.type
        if (t is not None and t.kind == "leafref" and t.ref is not None
                and node.value not in tabs[t.ref]):
            raise RpcError(
                "data-missing",
                f"{s.name} refers to {t.ref} {node.value!r}, which does not exist",
                path=path,
                app_tag="instance-required",
            )
        return
    for (cns, cname), cs in s.children.items():
        if cs.mandatory and (cns, cname, ()) not in node.children:
            raise RpcError("data-missing", f"mandatory {cname!r} is missing",
                           path=f"{path}/{cname}", app_tag="missing-element",
                           info={"bad-element": cname})
    if s.name == "interface" and s.ns == IF:
        itype = identity_name(node.leaf("type"))
        for child in node.children.values():
            w = child.schema.when_types
            if w and itype not in w:
                raise RpcError(
                    "invalid-value",
                    f"{child.name!r} is not valid on an interface of type {itype}",
                    path=element_path(path, child.schema),
                    app_tag="when-violated",
                )
