"""Build NETCONF requests and parse what comes back: pure functions, no I/O.

Requests come from netconf-client's builders (``netconf_client.rpc``), which put their
arguments into the XML as they are; everything a caller supplies therefore passes through
``parse_fragment`` (well-formed, one subtree per element, no DOCTYPE) or a whitelist first, so
no argument can close an element and inject an operation.

Replies are parsed with a hardened lxml parser: no entity expansion, no DTD, no network, no
huge trees, and any DOCTYPE refused outright.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from lxml import etree
from netconf_client import rpc as nc_rpc

from drivers.errors import (
    NetconfErrorInfo,
    NetconfLockDeniedError,
    NetconfRejectedError,
    ProtocolError,
)

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NOTIF = "urn:ietf:params:xml:ns:netconf:notification:1.0"
BASE_10 = "urn:ietf:params:netconf:base:1.0"
BASE_11 = "urn:ietf:params:netconf:base:1.1"
CANDIDATE = "urn:ietf:params:netconf:capability:candidate:1.0"
CONFIRMED_COMMIT = "urn:ietf:params:netconf:capability:confirmed-commit:1.1"
ROLLBACK_ON_ERROR = "urn:ietf:params:netconf:capability:rollback-on-error:1.0"
VALIDATE_10 = "urn:ietf:params:netconf:capability:validate:1.0"
VALIDATE_11 = "urn:ietf:params:netconf:capability:validate:1.1"
WRITABLE_RUNNING = "urn:ietf:params:netconf:capability:writable-running:1.0"
NOTIFICATION = "urn:ietf:params:netconf:capability:notification:1.0"
INTERLEAVE = "urn:ietf:params:netconf:capability:interleave:1.0"

Datastore = Literal["running", "candidate", "startup"]
DefaultOperation = Literal["merge", "replace", "none"]
ErrorOption = Literal["stop-on-error", "continue-on-error", "rollback-on-error"]
TestOption = Literal["test-then-set", "set", "test-only"]
Builder = Callable[[str], bytes]  # message-id -> the framed-to-be <rpc>

_DATASTORES = frozenset({"running", "candidate", "startup"})
_ENUMS = frozenset({"merge", "replace", "none", "stop-on-error", "continue-on-error",
                    "rollback-on-error", "test-then-set", "set", "test-only"})
_TOKEN = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_WRAP = "ponctl-fragment"


# ---- hardened parsing ----------------------------------------------------------------------

def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           huge_tree=False, dtd_validation=False, collect_ids=False)


# One parser per module: lxml parsers may be reused, but not shared between threads, and
# everything here runs on the event loop's thread.
_PARSER = _parser()


def parse_xml(raw: bytes | str) -> etree._Element:
    """Parse one XML document without entities, DTDs or network; refuse any DOCTYPE.

    Raises ``ProtocolError`` for malformed input or a DOCTYPE.
    """
    data = raw.encode() if isinstance(raw, str) else raw
    if b"<!DOCTYPE" in data:
        # Refused before libxml2 sees it: no DTD, internal or external, is ever processed.
        raise ProtocolError("XML with a DOCTYPE is refused (entities and DTDs are not accepted)")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ProtocolError(f"malformed XML: {exc}") from exc
    info: Any = root.getroottree().docinfo  # lxml-stubs lack doctype and internalDTD
    if info.doctype or info.internalDTD is not None:
        raise ProtocolError("XML with a DOCTYPE is refused (entities and DTDs are not accepted)")
    return root


def parse_fragment(text: str) -> list[etree._Element]:
    """Parse one or more top-level XML elements (e.g. a payload or a filter).

    A ``<config>`` wrapper (NETCONF namespace or none) is removed, so both
    ``<interfaces .../>`` and ``<config><interfaces .../></config>`` give ``[interfaces]``.
    Raises ``ValueError`` if the text is not well-formed XML elements.
    """
    body = _XML_DECL.sub("", text, count=1)
    try:
        wrapper = parse_xml(f"<{_WRAP}>{body}</{_WRAP}>")
    except ProtocolError as exc:
        raise ValueError(f"not well-formed XML: {exc.message}") from exc
    if (wrapper.text or "").strip() or any((c.tail or "").strip() for c in wrapper):
        raise ValueError("text outside elements in an XML fragment")
    elements = [c for c in wrapper if isinstance(c.tag, str)]
    if len(elements) == 1 and etree.QName(elements[0]).localname == "config" and \
            etree.QName(elements[0]).namespace in (None, NC):
        elements = [c for c in elements[0] if isinstance(c.tag, str)]
    return elements


def serialise(elements: Iterable[etree._Element]) -> str:
    """Elements as XML text, each carrying the namespace declarations it needs."""
    return "".join(etree.tostring(e, encoding="unicode") for e in elements)


# ---- building requests ---------------------------------------------------------------------

def _ds(name: str) -> str:
    if name not in _DATASTORES:
        raise ValueError(f"unknown datastore {name!r}")
    return name


def _enum(value: str | None) -> str | None:
    if value is not None and value not in _ENUMS:
        raise ValueError(f"unknown option value {value!r}")
    return value


def token(value: str) -> str:
    """A persist / persist-id token, checked so it cannot carry markup."""
    if not _TOKEN.fullmatch(value):
        raise ValueError(f"persist token {value!r} must match {_TOKEN.pattern}")
    return value


def subtree_filter(text: str | None) -> str | None:
    """``<filter type="subtree">`` around a subtree filter given as XML text (None: none).

    Namespace-less filter elements inherit the NETCONF namespace, as with every client that
    embeds the filter in the ``<rpc>``; servers match those by local name.
    """
    if text is None:
        return None
    return f'<filter type="subtree">{serialise(parse_fragment(text))}</filter>'


def config_element(elements: Iterable[etree._Element]) -> str:
    """The ``<config>`` parameter of edit-config (the NETCONF namespace is inherited)."""
    return f"<config>{serialise(elements)}</config>"


def _b(value: object) -> bytes:
    return cast(bytes, value)  # netconf-client is untyped; its builders return bytes


def get(filter: str | None = None) -> Builder:
    """``<get>`` with an optional subtree filter."""
    flt = subtree_filter(filter)
    return lambda mid: _b(nc_rpc.get(filter=flt, msg_id=mid))


def get_config(source: Datastore = "running", filter: str | None = None) -> Builder:
    """``<get-config>`` from one datastore with an optional subtree filter."""
    src, flt = _ds(source), subtree_filter(filter)
    return lambda mid: _b(nc_rpc.get_config(source=src, filter=flt, msg_id=mid))


def edit_config(elements: Iterable[etree._Element], target: Datastore = "candidate", *,
                default_operation: DefaultOperation | None = None,
                error_option: ErrorOption | None = None,
                test_option: TestOption | None = None) -> Builder:
    """``<edit-config>`` of already-parsed config elements into ``target``."""
    cfg, tgt = config_element(elements), _ds(target)
    dop, eop, top = _enum(default_operation), _enum(error_option), _enum(test_option)
    return lambda mid: _b(nc_rpc.edit_config(cfg, target=tgt, default_operation=dop,
                                             test_option=top, error_option=eop, msg_id=mid))


def copy_config(target: Datastore, source: Datastore) -> Builder:
    """``<copy-config>`` between two datastores."""
    tgt, src = _ds(target), _ds(source)
    return lambda mid: _b(nc_rpc.copy_config(tgt, src, msg_id=mid))


def delete_config(target: Datastore) -> Builder:
    """``<delete-config>`` (startup, in practice)."""
    tgt = _ds(target)
    return lambda mid: _b(nc_rpc.delete_config(tgt, msg_id=mid))


def lock(target: Datastore) -> Builder:
    """``<lock>`` one datastore for this session."""
    tgt = _ds(target)
    return lambda mid: _b(nc_rpc.lock(tgt, msg_id=mid))


def unlock(target: Datastore) -> Builder:
    """``<unlock>`` a datastore this session locked."""
    tgt = _ds(target)
    return lambda mid: _b(nc_rpc.unlock(tgt, msg_id=mid))


def validate(source: Datastore = "candidate") -> Builder:
    """``<validate>`` a datastore (``:validate``)."""
    src = _ds(source)
    return lambda mid: _b(nc_rpc.validate(src, msg_id=mid))


def commit(*, confirmed: bool = False, confirm_timeout: int | None = None,
           persist: str | None = None, persist_id: str | None = None) -> Builder:
    """``<commit>``: plain, confirmed (with timeout and persist token), or confirming one."""
    if confirm_timeout is not None and (not confirmed or confirm_timeout < 1):
        raise ValueError("confirm-timeout needs confirmed and is at least 1 second")
    p = token(persist) if persist is not None else None
    pid = token(persist_id) if persist_id is not None else None
    return lambda mid: _b(nc_rpc.commit(confirmed=confirmed, confirm_timeout=confirm_timeout,
                                        persist=p, persist_id=pid, msg_id=mid))


def cancel_commit(persist_id: str | None = None) -> Builder:
    """``<cancel-commit>``: revert a pending confirmed commit (by its persist token)."""
    pid = token(persist_id) if persist_id is not None else None
    return lambda mid: _b(nc_rpc.cancel_commit(persist_id=pid, msg_id=mid))


def discard_changes() -> Builder:
    """``<discard-changes>``: reset the candidate to running."""
    return lambda mid: _b(nc_rpc.discard_changes(msg_id=mid))


def close_session() -> Builder:
    """``<close-session>``: end this session gracefully."""
    return lambda mid: _b(nc_rpc.close_session(msg_id=mid))


def kill_session(session_id: int) -> Builder:
    """``<kill-session>``: end another session (releasing its locks)."""
    sid = int(session_id)
    return lambda mid: _b(nc_rpc.kill_session(sid, msg_id=mid))


def create_subscription(stream: str | None = None, filter: str | None = None) -> Builder:
    """``<create-subscription>`` (RFC 5277) on ``stream`` (default NETCONF)."""
    st = token(stream) if stream is not None else None
    flt = subtree_filter(filter)
    return lambda mid: _b(nc_rpc.create_subscription(stream=st, filter=flt, msg_id=mid))


def client_hello(capabilities: Iterable[str]) -> bytes:
    """The client's ``<hello>`` (unframed)."""
    caps = "".join(f"<capability>{_escape(c)}</capability>" for c in capabilities)
    return (f'<?xml version="1.0" encoding="UTF-8"?><hello xmlns="{NC}"><capabilities>'
            f"{caps}</capabilities></hello>").encode()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---- parsing what the server sends ---------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Hello:
    """The server's ``<hello>``: its capability URIs and our session id."""

    capabilities: tuple[str, ...]
    session_id: int


@dataclass(frozen=True, slots=True)
class Reply:
    """One ``<rpc-reply>``. ``errors`` are severity error; ``warnings`` severity warning."""

    message_id: str | None
    ok: bool
    data: etree._Element | None
    errors: tuple[NetconfErrorInfo, ...]
    warnings: tuple[NetconfErrorInfo, ...]
    raw: bytes

    def data_children(self) -> list[etree._Element]:
        """The elements under ``<data>`` (empty if there is none)."""
        if self.data is None:
            return []
        return [c for c in self.data if isinstance(c.tag, str)]


@dataclass(frozen=True, slots=True)
class Notification:
    """One ``<notification>`` (RFC 5277): its event, named after the content's first element."""

    kind: str
    event_time: str | None
    fields: dict[str, str]
    raw: bytes
    content: etree._Element | None = field(default=None, compare=False)


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _text(parent: etree._Element, name: str) -> str | None:
    el = parent.find(f"{{{NC}}}{name}")
    return el.text if el is not None and el.text is not None else None


def parse_hello(raw: bytes) -> Hello:
    """Parse the server's hello; ``ProtocolError`` if it is not a valid one."""
    root = parse_xml(raw)
    if root.tag != f"{{{NC}}}hello":
        raise ProtocolError(f"expected the server's <hello>, got <{_local(root)}>")
    caps = tuple((c.text or "").strip() for c in root.iter(f"{{{NC}}}capability"))
    if BASE_10 not in caps and BASE_11 not in caps:
        raise ProtocolError("the server supports neither base:1.0 nor base:1.1")
    sid = (_text(root, "session-id") or "").strip()
    if not sid.isdigit() or int(sid) == 0:
        raise ProtocolError(f"the server's <hello> has no valid session-id ({sid!r})")
    return Hello(caps, int(sid))


def _error_info(el: etree._Element) -> NetconfErrorInfo:
    info: dict[str, str] = {}
    info_el = el.find(f"{{{NC}}}error-info")
    if info_el is not None:
        for child in info_el:
            if isinstance(child.tag, str):
                # Leaves keep their text; anything structured is kept as XML.
                info[_local(child)] = (child.text or "").strip() if len(child) == 0 else \
                    etree.tostring(child, encoding="unicode")
    path = _text(el, "error-path")
    return NetconfErrorInfo(
        type=(_text(el, "error-type") or "").strip(),
        tag=(_text(el, "error-tag") or "").strip(),
        severity=(_text(el, "error-severity") or "error").strip(),
        message=(_text(el, "error-message") or "").strip(),
        path=path.strip() if path is not None else None,
        app_tag=(_text(el, "error-app-tag") or "").strip() or None,
        info=info,
    )


def parse_message(raw: bytes) -> Reply | Notification:
    """Parse one message after the hello: an ``<rpc-reply>`` or a ``<notification>``."""
    root = parse_xml(raw)
    if root.tag == f"{{{NC}}}rpc-reply":
        return _reply(root, raw)
    if root.tag == f"{{{NOTIF}}}notification":
        return _notification(root, raw)
    raise ProtocolError(f"unexpected message <{_local(root)}> "
                        f"({etree.QName(root).namespace or 'no namespace'})")


def parse_reply(raw: bytes) -> Reply:
    """Parse one ``<rpc-reply>``; ``ProtocolError`` for anything else or malformed XML."""
    msg = parse_message(raw)
    if not isinstance(msg, Reply):
        raise ProtocolError("expected <rpc-reply>, got <notification>")
    return msg


def _reply(root: etree._Element, raw: bytes) -> Reply:
    errors: list[NetconfErrorInfo] = []
    warnings: list[NetconfErrorInfo] = []
    for el in root.iterchildren(f"{{{NC}}}rpc-error"):
        e = _error_info(el)
        (warnings if e.severity == "warning" else errors).append(e)
    return Reply(
        message_id=root.get("message-id"),
        ok=root.find(f"{{{NC}}}ok") is not None,
        data=root.find(f"{{{NC}}}data"),
        errors=tuple(errors),
        warnings=tuple(warnings),
        raw=raw,
    )


def _notification(root: etree._Element, raw: bytes) -> Notification:
    event_time: str | None = None
    content: etree._Element | None = None
    for child in root:
        if not isinstance(child.tag, str):
            continue
        if child.tag == f"{{{NOTIF}}}eventTime":
            event_time = (child.text or "").strip()
        elif content is None:
            content = child
    if content is None:
        raise ProtocolError("<notification> without content")
    fields = {_local(leaf): (leaf.text or "").strip() for leaf in content.iter()
              if leaf is not content and isinstance(leaf.tag, str) and len(leaf) == 0}
    return Notification(_local(content), event_time, fields, raw, content)


def check(reply: Reply, host: str | None = None) -> Reply:
    """Return the reply, or raise ``NetconfRejectedError`` (``NetconfLockDeniedError`` for a
    denied lock) if it carries rpc-errors of severity error."""
    if reply.errors:
        errors = list(reply.errors)
        cls = NetconfLockDeniedError if any(e.tag == "lock-denied" for e in errors) \
            else NetconfRejectedError
        raise cls(errors, reply.raw, host=host)
    return reply
