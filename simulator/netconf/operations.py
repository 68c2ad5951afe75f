"""NETCONF operations (RFC 6241 sections 7-8, RFC 5277) on a simulated OLT or gateway.

Each operation reads its parameters, calls the device, and returns an ``Outcome`` for the
session to turn into a reply. No I/O happens here; the device's own methods (locks, confirmed
commit, edit-config) do the work, so the CLI and SNMP faces see the same behaviour.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, cast

from lxml import etree

from simulator.config import edit as ed
from simulator.config.builder import factory_config
from simulator.config.errors import RpcError
from simulator.config.namespaces import NC
from simulator.config.schema import OLT_SCHEMA
from simulator.config.tree import DNode, from_xml
from simulator.devices import PHANTOM_SESSION, Gateway, Olt
from simulator.netconf import capabilities as caps
from simulator.netconf import filters
from simulator.netconf import rpc as r
from simulator.netconf import state as st

Params = dict[str, etree._Element]
_DEFAULT_OPS = ("merge", "replace", "none")
_TEST_OPTIONS = ("test-then-set", "set", "test-only")
_ERROR_OPTIONS = ("stop-on-error", "continue-on-error", "rollback-on-error")


@dataclass(slots=True)
class Outcome:
    """What the session replies: ``<ok/>``, ``<data>`` (trees), or rpc-errors; then maybe close."""

    data: list[DNode] | None = None
    errors: list[RpcError] = field(default_factory=list)
    close: bool = False


class SessionContext(Protocol):
    """What an operation needs of the session it runs in."""

    @property
    def session_id(self) -> int: ...

    def start_subscription(self, filter_elements: list[etree._Element] | None) -> None:
        """Begin sending notifications; raises RpcError if one is already running."""


class Operations(ABC):
    """The operations every device answers; subclasses add their datastores' operations."""

    capabilities: list[str]

    def __init__(self) -> None:
        self._table: dict[tuple[str, str], Callable[[Params, SessionContext], Outcome]] = {
            (NC, "get"): self.get,
            (NC, "get-config"): self.get_config,
            (NC, "edit-config"): self.edit_config,
            (NC, "lock"): self.lock,
            (NC, "unlock"): self.unlock,
            (NC, "close-session"): self.close_session,
            (NC, "kill-session"): self.kill_session,
        }
        self._params: dict[str, tuple[str, ...]] = {
            "get": ("filter",),
            "get-config": ("source", "filter"),
            "edit-config": ("target", "default-operation", "test-option", "error-option",
                            "config", "url"),
            "copy-config": ("target", "source"),
            "delete-config": ("target",),
            "lock": ("target",),
            "unlock": ("target",),
            "validate": ("source",),
            "commit": ("confirmed", "confirm-timeout", "persist", "persist-id"),
            "cancel-commit": ("persist-id",),
            "discard-changes": (),
            "close-session": (),
            "kill-session": ("session-id",),
            "create-subscription": ("stream", "filter", "startTime", "stopTime"),
        }

    @property
    @abstractmethod
    def device(self) -> Olt | Gateway:
        """The device these operations act on."""

    def dispatch(self, op: etree._Element, ctx: SessionContext) -> Outcome:
        """Run one operation; raises RpcError for the reply's rpc-error."""
        q = etree.QName(op)
        handler = self._table.get((q.namespace or "", q.localname))
        if handler is None:
            raise RpcError("operation-not-supported",
                           f"operation <{q.localname}> ({q.namespace or 'no namespace'}) is not "
                           f"supported by this {self.device.kind}", type="protocol",
                           info={"bad-element": q.localname})
        params = r.check_params(op, self._params.get(q.localname, ()))
        return handler(params, ctx)

    def session_closed(self, session: int) -> None:
        """Release whatever the session held; safe to call more than once."""
        self.device.session_closers.pop(session, None)

    # ---- shared operations -------------------------------------------------------------
    @abstractmethod
    def get(self, params: Params, ctx: SessionContext) -> Outcome:
        """``<get>``: configuration and state."""

    @abstractmethod
    def get_config(self, params: Params, ctx: SessionContext) -> Outcome:
        """``<get-config>`` from one datastore."""

    @abstractmethod
    def edit_config(self, params: Params, ctx: SessionContext) -> Outcome:
        """``<edit-config>`` on one datastore."""

    @abstractmethod
    def lock(self, params: Params, ctx: SessionContext) -> Outcome:
        """``<lock>`` one datastore for this session."""

    @abstractmethod
    def unlock(self, params: Params, ctx: SessionContext) -> Outcome:
        """``<unlock>`` a datastore this session locked."""

    def close_session(self, params: Params, ctx: SessionContext) -> Outcome:
        return Outcome(close=True)

    def kill_session(self, params: Params, ctx: SessionContext) -> Outcome:
        value = r.text(params, "session-id")
        if value is None:
            raise RpcError("missing-element", "<session-id> is required", type="protocol",
                           info={"bad-element": "session-id"})
        if not value.isdigit():
            raise RpcError("invalid-value", f"session-id {value!r} is not a number",
                           type="protocol", info={"bad-element": "session-id"})
        target = int(value)
        if target == ctx.session_id:
            raise RpcError("invalid-value", "a session cannot kill itself (use close-session)",
                           type="protocol", info={"bad-element": "session-id"})
        closer = self.device.session_closers.get(target)
        if closer is None:
            raise RpcError("invalid-value", f"no session {target} on this device",
                           type="protocol", info={"bad-element": "session-id"})
        closer()  # releases its locks at once, then closes its connection
        return Outcome()

    # ---- helpers -----------------------------------------------------------------------
    @staticmethod
    def _edit_options(params: Params) -> tuple[ed.Operation, ed.ErrorOption, str]:
        default = r.enum_param(params, "default-operation", _DEFAULT_OPS, "merge")
        test = r.enum_param(params, "test-option", _TEST_OPTIONS, "test-then-set")
        error = r.enum_param(params, "error-option", _ERROR_OPTIONS, "stop-on-error")
        return cast(ed.Operation, default), cast(ed.ErrorOption, error), test

    @staticmethod
    def _config(params: Params) -> list[etree._Element]:
        if "url" in params:
            raise RpcError("operation-not-supported", "<url> needs the :url capability",
                           type="protocol", info={"bad-element": "url"})
        el = params.get("config")
        if el is None:
            raise RpcError("missing-element", "<config> is required", type="protocol",
                           info={"bad-element": "config"})
        return r.children(el)


class OltOperations(Operations):
    """An OLT: running, candidate and startup, confirmed commit, validate, notifications."""

    def __init__(self, olt: Olt) -> None:
        super().__init__()
        self.olt = olt
        self.capabilities = caps.olt_capabilities()
        self._table.update({
            (NC, "copy-config"): self.copy_config,
            (NC, "delete-config"): self.delete_config,
            (NC, "validate"): self.validate,
            (NC, "commit"): self.commit,
            (NC, "cancel-commit"): self.cancel_commit,
            (NC, "discard-changes"): self.discard_changes,
            (r.NOTIF, "create-subscription"): self.create_subscription,
        })

    @property
    def device(self) -> Olt:
        return self.olt

    def session_closed(self, session: int) -> None:
        self.olt.session_closed(session)

    def get(self, params: Params, ctx: SessionContext) -> Outcome:
        flt = r.subtree_filter(params)
        state = st.olt_state(self.olt, st.olt_scope(flt))
        return Outcome(data=[filters.apply(self.olt.running, flt), filters.apply(state, flt)])

    def get_config(self, params: Params, ctx: SessionContext) -> Outcome:
        source = r.datastore(params, "source", ("running", "candidate", "startup"))
        flt = r.subtree_filter(params)
        return Outcome(data=[filters.apply(self.olt.datastore(source), flt)])

    def edit_config(self, params: Params, ctx: SessionContext) -> Outcome:
        target = r.datastore(params, "target", ("running", "candidate"))
        default, error, test = self._edit_options(params)
        config = self._config(params)
        errors = self.olt.edit_config(target, config, ctx.session_id, default, error, test)
        return Outcome(errors=errors)

    def copy_config(self, params: Params, ctx: SessionContext) -> Outcome:
        names = ("running", "candidate", "startup")
        target = r.datastore(params, "target", names)
        source = r.datastore_or_config(params, "source", names)
        if source == target:
            raise RpcError("invalid-value", "copy-config source and target are the same",
                           type="protocol", info={"bad-element": "target"})
        olt, sid = self.olt, ctx.session_id
        if isinstance(source, str):
            root = olt.datastore(source)
        else:
            root = from_xml(OLT_SCHEMA, r.children(source))
        if target == "startup" and source == "running":
            olt.check_writable("startup", sid)
            olt.copy_running_to_startup()
            return Outcome()
        olt.check_writable(target, sid)
        if target != "candidate" or not isinstance(source, str):
            # What reaches running or startup must be valid, and so must inline config; the
            # candidate may hold work in progress, as edit-config's test-option=set allows.
            olt.check(root, None)
        if target == "candidate":
            olt.candidate = root
        elif target == "startup":
            olt.startup = root
        else:
            if olt.faults.refuse_commit:
                raise RpcError("operation-failed", olt.faults.refuse_commit,
                               app_tag="commit-refused")
            olt.set_running(root)
            olt.candidate = olt.running
        return Outcome()

    def delete_config(self, params: Params, ctx: SessionContext) -> Outcome:
        r.datastore(params, "target", ("startup",))
        self.olt.check_writable("startup", ctx.session_id)
        # A box whose startup is erased boots with its factory configuration (its ports).
        factory = factory_config(self.olt.pon_ports, list(self.olt.uplinks))
        self.olt.startup = ed.edit(DNode(OLT_SCHEMA), factory).root
        return Outcome()

    def lock(self, params: Params, ctx: SessionContext) -> Outcome:
        target = r.datastore(params, "target", ("running", "candidate", "startup"))
        self.olt.lock(target, ctx.session_id)
        return Outcome()

    def unlock(self, params: Params, ctx: SessionContext) -> Outcome:
        target = r.datastore(params, "target", ("running", "candidate", "startup"))
        self.olt.unlock(target, ctx.session_id)
        return Outcome()

    def validate(self, params: Params, ctx: SessionContext) -> Outcome:
        source = r.datastore_or_config(params, "source", ("running", "candidate", "startup"))
        if isinstance(source, str):
            self.olt.validate(source)
        else:
            self.olt.check(from_xml(OLT_SCHEMA, r.children(source)), None)
        return Outcome()

    def commit(self, params: Params, ctx: SessionContext) -> Outcome:
        confirmed = "confirmed" in params
        timeout = r.uint_param(params, "confirm-timeout", 600)
        self.olt.commit(ctx.session_id, confirmed=confirmed, timeout=float(timeout),
                        persist=r.text(params, "persist"),
                        persist_id=r.text(params, "persist-id"))
        return Outcome()

    def cancel_commit(self, params: Params, ctx: SessionContext) -> Outcome:
        self.olt.cancel_commit(ctx.session_id, r.text(params, "persist-id"))
        return Outcome()

    def discard_changes(self, params: Params, ctx: SessionContext) -> Outcome:
        self.olt.discard_changes(ctx.session_id)
        return Outcome()

    def create_subscription(self, params: Params, ctx: SessionContext) -> Outcome:
        stream = r.text(params, "stream") or "NETCONF"
        if stream != "NETCONF":
            raise RpcError("invalid-value", f"no event stream {stream!r} (only NETCONF)",
                           type="protocol", info={"bad-element": "stream"})
        if "startTime" in params:
            raise RpcError("operation-failed", "the NETCONF stream does not support replay "
                           "(startTime)", type="protocol", info={"bad-element": "startTime"})
        if "stopTime" in params:
            raise RpcError("missing-element", "stopTime needs startTime", type="protocol",
                           info={"bad-element": "startTime"})
        ctx.start_subscription(r.subtree_filter(params))
        return Outcome()


class GatewayOperations(Operations):
    """A residential gateway: one writable running datastore, no candidate, no notifications."""

    def __init__(self, gateway: Gateway) -> None:
        super().__init__()
        self.gateway = gateway
        self.capabilities = caps.gateway_capabilities()
        # The gateway's only datastore lock is the NETCONF face's business: no other face
        # locks a gateway, so it lives here rather than on the device.
        self.lock_holder: int | None = None

    @property
    def device(self) -> Gateway:
        return self.gateway

    def session_closed(self, session: int) -> None:
        if self.lock_holder == session:
            self.lock_holder = None
        super().session_closed(session)

    def _owner(self) -> int | None:
        return PHANTOM_SESSION if self.gateway.faults.lock_held else self.lock_holder

    def get(self, params: Params, ctx: SessionContext) -> Outcome:
        flt = r.subtree_filter(params)
        state = st.gateway_state(self.gateway)
        return Outcome(data=[filters.apply(self.gateway.config, flt), filters.apply(state, flt)])

    def get_config(self, params: Params, ctx: SessionContext) -> Outcome:
        r.datastore(params, "source", ("running",))
        return Outcome(data=[filters.apply(self.gateway.config, r.subtree_filter(params))])

    def edit_config(self, params: Params, ctx: SessionContext) -> Outcome:
        r.datastore(params, "target", ("running",))
        default, error, _ = self._edit_options(params)
        # Without :rollback-on-error and :validate a client may not ask for either.
        for name, refused in (("error-option", error == "rollback-on-error"),
                              ("test-option", "test-option" in params)):
            if refused:
                raise RpcError("operation-not-supported",
                               f"this gateway does not support <{name}> "
                               f"{r.text(params, name)!r}", type="protocol",
                               info={"bad-element": name})
        config = self._config(params)
        owner = self._owner()
        if owner is not None and owner != ctx.session_id:
            raise RpcError("in-use", f"the running datastore is locked by session {owner}",
                           type="protocol", info={"session-id": str(owner)})
        return Outcome(errors=self.gateway.edit_config(config, default, error))

    def lock(self, params: Params, ctx: SessionContext) -> Outcome:
        r.datastore(params, "target", ("running",))
        owner = self._owner()
        if owner is not None:
            raise RpcError("lock-denied", f"the running datastore is locked by session {owner}",
                           type="protocol", info={"session-id": str(owner)})
        self.lock_holder = ctx.session_id
        return Outcome()

    def unlock(self, params: Params, ctx: SessionContext) -> Outcome:
        r.datastore(params, "target", ("running",))
        if self._owner() != ctx.session_id:
            raise RpcError("operation-failed",
                           "the running datastore is not locked by this session", type="protocol")
        self.lock_holder = None
        return Outcome()
