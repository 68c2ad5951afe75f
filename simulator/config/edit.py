"""``edit-config`` semantics (RFC 6241 section 7.2) over the immutable configuration tree."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lxml import etree

from simulator.config.errors import RpcError
from simulator.config.namespaces import NC
from simulator.config.schema import SNode
from simulator.config.tree import ChildKey, DNode, element_path, lookup, parse_value

Operation = Literal["merge", "replace", "create", "delete", "remove", "none"]
ErrorOption = Literal["stop-on-error", "continue-on-error", "rollback-on-error"]
OPERATIONS: tuple[str, ...] = ("merge", "replace", "create", "delete", "remove", "none")
_OP_ATTR = f"{{{NC}}}operation"


@dataclass(slots=True)
class EditResult:
    root: DNode
    errors: list[RpcError] = field(default_factory=list)  # only with continue-on-error
    changed: bool = False


def edit(
    root: DNode,
    config: list[etree._Element],
    default_operation: Operation = "merge",
    error_option: ErrorOption = "stop-on-error",
) -> EditResult:
    """Apply a ``<config>``'s children to ``root`` and return the new root.

    ``root`` is left untouched. With stop-on-error and rollback-on-error nothing of a failed edit
    is kept (the whole edit is atomic, which stop-on-error permits); with continue-on-error each
    list entry or top-level node that fails is skipped and its error collected.
    """
    ctx = _Ctx(error_option == "continue-on-error")
    # default-operation replace: the <config> completely replaces the datastore (RFC 6241
    # 7.2), so top-level nodes it does not mention go too.
    base = DNode(root.schema) if default_operation == "replace" else root
    new = _merge_children(base, root.schema, config, default_operation, "", ctx)
    assert new is not None
    return EditResult(new, ctx.errors, not new.same(root))


@dataclass(slots=True)
class _Ctx:
    keep_going: bool
    errors: list[RpcError] = field(default_factory=list)


def _op_of(el: etree._Element, inherited: Operation, path: str) -> Operation:
    op = el.get(_OP_ATTR)
    if op is None:
        return inherited
    if op not in OPERATIONS:
        raise RpcError(
            "bad-attribute",
            f"operation {op!r} is not one of {', '.join(OPERATIONS)}",
            type="protocol",
            path=path,
            info={"bad-attribute": "operation", "bad-element": etree.QName(el).localname},
        )
    return op  # type: ignore[return-value]


def _entry_key(s: SNode, el: etree._Element, path: str) -> tuple[str, ...]:
    if s.kind == "leaf-list":
        return (parse_value(s, el, path),)
    values = []
    for k in s.keys:
        kel = el.find(f"{{{s.ns}}}{k}")
        if kel is None:
            kel = el.find(k)
        if kel is None:
            raise RpcError("missing-element", f"{s.name!r} entry lacks its key {k!r}",
                           path=path, info={"bad-element": k})
        key_schema = s.children[(s.ns, k)]
        values.append(parse_value(key_schema, kel, f"{path}/{k}"))
    return tuple(values)


def _merge_children(
    node: DNode | None,
    s: SNode,
    elements: list[etree._Element],
    inherited: Operation,
    path: str,
    ctx: _Ctx,
) -> DNode | None:
    result = node.shallow_copy() if node is not None else DNode(s)
    touched = False
    for el in elements:
        if not isinstance(el.tag, str):
            continue
        try:
            touched |= _apply_child(result, s, el, inherited, path, ctx)
        except RpcError as err:
            if not ctx.keep_going:
                raise
            ctx.errors.append(err)
    if node is None and not touched:
        return None
    return result


def _apply_child(
    result: DNode,
    parent_schema: SNode,
    el: etree._Element,
    inherited: Operation,
    path: str,
    ctx: _Ctx,
) -> bool:
    """Apply one child element to ``result`` (a private copy); True if it changed anything."""
    s = lookup(parent_schema, el, path)
    key: tuple[str, ...] = ()
    if s.kind in ("list", "leaf-list"):
        key = _entry_key(s, el, element_path(path, s))
    cpath = element_path(path, s, key if s.kind == "list" else ())
    op = _op_of(el, inherited, cpath)
    ck: ChildKey = (s.ns, s.name, key)
    existing = result.children.get(ck)

    if op in ("delete", "remove"):
        if existing is None:
            if op == "delete":
                raise RpcError("data-missing", f"cannot delete {s.name!r}: it does not exist",
                               path=cpath)
            return False
        del result.children[ck]
        return True
    if op == "create" and existing is not None:
        raise RpcError("data-exists", f"cannot create {s.name!r}: it already exists", path=cpath)

    if s.kind in ("leaf", "leaf-list"):
        value = parse_value(s, el, cpath)
        if op == "none":
            if existing is None and s.kind == "leaf":
                return False
            return False
        if existing is not None and existing.value == value:
            return False
        result.children[ck] = DNode(s, value)
        return True

    base = None if op in ("replace", "create") else existing
    child_inherit: Operation = "merge" if op in ("replace", "create") else op
    # A list entry is applied whole or not at all, also under continue-on-error.
    inner = ctx if s.kind == "container" else _Ctx(False)
    new = _merge_children(base, s, list(el), child_inherit, cpath, inner)
    if new is None:
        if op == "none":
            return False
        new = DNode(s)
    if s.kind == "list":
        for k, v in zip(s.keys, key, strict=True):
            kk: ChildKey = (s.ns, k, ())
            if kk not in new.children:
                new.children[kk] = DNode(s.children[(s.ns, k)], v)
    if op == "none" and existing is None:
        # Only explicit operations below may bring a node into being.
        pass
    if existing is not None and new.same(existing):
        return False
    result.children[ck] = new
    return True
