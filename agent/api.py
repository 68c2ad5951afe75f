"""The HTTP API for the OSS/BSS, mounted by the daemon under ``/api/v1``.

Authentication: ``Authorization: Bearer <token>``; the tokens are the settings'
``api.tokens`` (name, role, token reference), resolved once when the API is built and compared
with :func:`hmac.compare_digest`. A missing or malformed header is 401 with
``WWW-Authenticate``, an unknown token 401, a CSR token on an admin route 403. Reads need any
known token; every write (objects, bindings, orders and their actions) needs the admin role.
``GET /api/v1/openapi.json`` is public (documentation, no data). Token values are never
echoed, logged or put in an error; a log line names the token by its ``name``.

Request bodies are JSON, at most :data:`MAX_BODY` bytes, validated by strict pydantic models
(unknown fields refused) that apply the same rules as the store and the intent, so nothing that
could inject into a device payload gets in. Errors are ``{"error": message, "field": path}``:
400 malformed request (invalid JSON, bad path or query value), 404 unknown resource, 409
conflict with what is stored, 413 body too large, 422 a field that fails validation. Messages
never repeat the rejected value.

Orders: ``POST /orders`` creates (idempotent on ``external_ref``; 201, or 200 when the order
already existed) and hands the order to the engine for a reconcile in the background, so the
response carries the status computed at creation; ``terminate`` requests removal and reconciles
in the background; ``resend`` re-applies and answers with the status after the push.

The route table (:data:`ROUTES`) is the single source for the router and for the OpenAPI 3.1
document, whose schemas come from the pydantic models.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

from aiohttp import web
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import models_json_schema

from agent.engine import ChangeRefused, Engine
from agent.intent import NAME, SERIAL
from agent.inventory import normalise_serial
from agent.settings import SettingsError
from agent.status import OrderStatus
from agent.store import (
    MAX_ADDRESS,
    OBJECT_ID,
    AllocationExhausted,
    Conflict,
    InvalidTransition,
    InvalidValue,
    NotFound,
    Ont,
    Order,
    Store,
)
from drivers.datafiles import field_path

if TYPE_CHECKING:
    from agent.daemon import Daemon

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
MAX_BODY = 16 * 1024  # bytes
Role = Literal["admin", "csr"]
PRINCIPAL = web.RequestKey("principal", str)  # the authenticated token's name

# Free text stored as data: no control characters (newlines included), bounded.
TEXT = r"^[^\x00-\x1f\x7f]*$"
ObjectId = Annotated[str, Field(pattern=f"^{OBJECT_ID.pattern}$",
                                description="1-64 letters, digits, '_', '.', ':', '/', '-'")]
Name = Annotated[str, Field(pattern=f"^{NAME.pattern}$",
                            description="1-32 letters, digits, '_', '.', '-'")]
Serial = Annotated[str, Field(pattern=f"^{SERIAL.pattern}$",
                              description="4 upper-case vendor characters + 8 hex digits")]


# ---- request models ------------------------------------------------------------------------
class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ObjectCreate(_Request):
    """An object (an address that can take an ONT)."""

    id: ObjectId
    address: str = Field(min_length=1, max_length=MAX_ADDRESS, pattern=TEXT)


class BindRequest(_Request):
    """Bind an ONT (by its serial, as scanned) to the object."""

    serial: Serial
    move: bool = Field(default=False, description="take the serial from another object")


class OrderCreate(_Request):
    """A service order for an object."""

    object_id: ObjectId
    isp: Name
    service_type: Name
    start_at: AwareDatetime = Field(description="ISO 8601 with a UTC offset")
    external_ref: str | None = Field(default=None, min_length=1, max_length=128, pattern=TEXT,
                                     description="the OSS's reference (idempotency key)")


class OrderAction(_Request):
    """Optional body of cancel and terminate."""

    reason: str = Field(default="", max_length=200, pattern=TEXT)


class OrderChangeRequest(_Request):
    """Change an order's ISP and/or service type (at least one). An order not yet provisioned
    is updated in place; a provisioned one is replaced by a new order (same object, start
    date and external reference) and its service removed before the new one is applied."""

    isp: Name | None = Field(default=None, description="the new ISP (absent: unchanged)")
    service_type: Name | None = Field(default=None,
                                      description="the new service type (absent: unchanged)")
    reason: str = Field(default="", max_length=200, pattern=TEXT)


# ---- response models -----------------------------------------------------------------------
class ApiErrorBody(BaseModel):
    error: str
    field: str | None = None


class OntOut(BaseModel):
    serial: str
    olt: str
    pon_port: str
    model: str
    firmware: str
    vendor: str
    state: str
    condition: str
    state_since: datetime
    onu_id: int | None
    first_seen: datetime | None
    last_seen: datetime | None
    object_id: str | None = Field(description="the object the ONT is bound to, if any")


class OntList(BaseModel):
    onts: list[OntOut]


class ObjectOut(BaseModel):
    id: str
    address: str
    created_at: datetime
    serial: str | None = Field(description="the ONT bound to the object, if any")


class BindOut(BaseModel):
    object_id: str
    serial: str
    bound_at: datetime
    change: Literal["bound", "moved", "unchanged"]
    previous_object: str | None


class EventOut(BaseModel):
    at: datetime
    status: str
    error_class: str | None
    message: str


class OrderOut(BaseModel):
    id: str
    external_ref: str | None
    object_id: str
    isp: str
    service_type: str
    start_at: datetime
    created_at: datetime
    cancelled_at: datetime | None
    removal_requested_at: datetime | None
    removed_at: datetime | None
    status: str
    message: str
    prerequisites: list[str]
    error_class: str | None
    activates_at: datetime | None


class OrderList(BaseModel):
    orders: list[OrderOut]


class OrderDetail(OrderOut):
    events: list[EventOut] = Field(description="the order's history, oldest first")


# ---- errors ----------------------------------------------------------------------------------
class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.headers = headers

    def response(self) -> web.Response:
        return web.json_response(ApiErrorBody(error=self.message, field=self.field).model_dump(),
                                 status=self.status, headers=self.headers)


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ")


def _validation_error(exc: ValidationError) -> ApiError:
    first = exc.errors()[0]
    path = field_path(tuple(first["loc"]))
    extra = len(exc.errors()) - 1
    more = f" (and {extra} more)" if extra else ""
    if first["type"] == "extra_forbidden":
        return ApiError(422, f"{path}: unknown field{more}", path)
    return ApiError(422, f"{path}: {_clean(first['msg'])}{more}", path)


# ---- route table --------------------------------------------------------------------------
M = TypeVar("M", bound=BaseModel)
Handler = Callable[["HttpApi", web.Request], Awaitable[web.Response]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # under PREFIX, aiohttp/OpenAPI template syntax
    role: Role | None  # "admin": admin only; "csr": any known token; None: public
    handler: Handler
    summary: str
    response: type[BaseModel] | None
    body: type[BaseModel] | None = None
    body_required: bool = True
    status: int = 200
    query: tuple[tuple[str, str], ...] = ()  # (name, description) of boolean parameters
    text_query: tuple[tuple[str, str], ...] = ()  # (name, description) of text parameters


_PARAM = re.compile(r"\{(\w+)\}")


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(model.model_dump(mode="json"), status=status)


class HttpApi:
    """The API's handlers over a running :class:`agent.daemon.Daemon` (its store and engine are
    looked up on each request: while the daemon is stopping they may be gone, that is 503)."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.tokens: list[tuple[str, Role, bytes]] = []
        for t in daemon.settings.api.tokens:
            try:
                value = t.token.resolve(None if daemon.environ is None else dict(daemon.environ))
            except SettingsError as exc:
                log.warning("API token %r is not usable: %s", t.name, exc)
                continue
            self.tokens.append((t.name, t.role, value.encode()))
        if not self.tokens:
            log.warning("no API token is configured: every /api/v1 request will be refused")
        self._background: set[asyncio.Task[None]] = set()

    # ---- plumbing -------------------------------------------------------------------------
    def application(self) -> web.Application:
        app = web.Application()
        for route in all_routes():
            app.router.add_route(route.method, route.path, self._wrap(route))
        app.on_cleanup.append(self._cleanup)
        return app

    async def _cleanup(self, app: web.Application) -> None:
        tasks = list(self._background)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def _wrap(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                if route.role is not None:
                    request[PRINCIPAL] = self._authenticate(request, route.role)
                return await route.handler(self, request)
            except ApiError as exc:
                return exc.response()
            except NotFound as exc:
                return ApiError(404, str(exc)).response()
            except (Conflict, InvalidTransition, AllocationExhausted) as exc:
                return ApiError(409, str(exc)).response()
            except InvalidValue as exc:
                return ApiError(422, str(exc)).response()

        return handle

    def _authenticate(self, request: web.Request, needed: Role) -> str:
        """The name of the request's token; 401 without a known token, 403 without the role."""
        challenge = {"WWW-Authenticate": 'Bearer realm="ponctl"'}
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(401, "authentication required: Authorization: Bearer <token>",
                           headers=challenge)
        presented = given.strip().encode()
        found: tuple[str, Role] | None = None
        for name, role, value in self.tokens:  # compare against all: no timing hint
            if hmac.compare_digest(presented, value) and found is None:
                found = (name, role)
        if found is None:
            raise ApiError(401, "unknown token",
                           headers={"WWW-Authenticate": 'Bearer realm="ponctl", '
                                                        'error="invalid_token"'})
        if needed == "admin" and found[1] != "admin":
            raise ApiError(403, "this action needs the admin role")
        return found[0]

    def _parts(self) -> tuple[Store, Engine]:
        store, engine = self.daemon.store, self.daemon.engine
        if store is None or engine is None:
            raise ApiError(503, "the agent is not running")
        return store, engine

    async def _raw_body(self, request: web.Request, limit: int = MAX_BODY) -> bytes:
        if request.content_length is not None and request.content_length > limit:
            raise ApiError(413, f"the request body is larger than {limit} bytes", "body")
        chunks: list[bytes] = []
        size = 0
        while chunk := await request.content.read(65536):
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"the request body is larger than {limit} bytes", "body")
            chunks.append(chunk)
        return b"".join(chunks)

    async def _body(self, request: web.Request, model: type[M], *,
                    required: bool = True, limit: int = MAX_BODY) -> M:
        """``model`` from the request's JSON body (at most ``limit`` bytes)."""
        raw = await self._raw_body(request, limit)
        if not raw.strip():
            if required:
                raise ApiError(400, "a JSON object is required as the request body", "body")
            raw = b"{}"
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "the request body is not valid JSON", "body") from None
        if not isinstance(data, dict):
            raise ApiError(400, "the request body must be a JSON object", "body")
        try:
            return model.model_validate_json(raw, strict=True)
        except ValidationError as exc:
            raise _validation_error(exc) from None

    @staticmethod
    def _path(request: web.Request, name: str, rx: re.Pattern[str], rule: str) -> str:
        value = request.match_info[name]
        if not rx.fullmatch(value):
            raise ApiError(400, f"{name} is invalid: {rule}", name)
        return value

    @staticmethod
    def _flag(request: web.Request, name: str) -> bool:
        value = request.query.get(name, "false").lower()
        if value not in ("true", "false", "1", "0"):
            raise ApiError(400, f"{name} must be true or false", name)
        return value in ("true", "1")

    def _spawn_reconcile(self, engine: Engine, order_id: str) -> None:
        async def run() -> None:
            try:
                await engine.reconcile(order_id)
            except Exception:
                log.exception("reconciling order %s failed", order_id)

        task = asyncio.create_task(run(), name=f"api-reconcile-{order_id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---- ONTs and objects ---------------------------------------------------------------------
    @staticmethod
    async def _ont_out(store: Store, ont: Ont) -> OntOut:
        binding = await store.binding_of_serial(ont.serial)
        return OntOut(serial=ont.serial, olt=ont.olt, pon_port=ont.pon_port, model=ont.model,
                      firmware=ont.firmware, vendor=ont.vendor, state=ont.state.value,
                      condition=ont.condition, state_since=ont.state_since, onu_id=ont.onu_id,
                      first_seen=ont.first_seen, last_seen=ont.last_seen,
                      object_id=binding.object_id if binding else None)

    async def list_onts(self, request: web.Request) -> web.Response:
        store, _ = self._parts()
        return _json(OntList(onts=[await self._ont_out(store, o)
                                   for o in await store.list_onts()]))

    async def get_ont(self, request: web.Request) -> web.Response:
        serial = self._path(request, "serial", SERIAL, "4 upper-case vendor characters + 8 "
                                                       "hex digits")
        store, _ = self._parts()
        ont = await store.get_ont(serial)
        if ont is None:
            raise ApiError(404, f"no ONT with serial {serial}")
        return _json(await self._ont_out(store, ont))

    async def get_object(self, request: web.Request) -> web.Response:
        object_id = self._path(request, "object_id", OBJECT_ID, "an object id")
        store, _ = self._parts()
        obj = await store.get_object(object_id)
        if obj is None:
            raise ApiError(404, f"object {object_id!r} does not exist")
        return _json(ObjectOut(id=obj.id, address=obj.address, created_at=obj.created_at,
                               serial=obj.serial))

    async def create_object(self, request: web.Request) -> web.Response:
        body = await self._body(request, ObjectCreate)
        store, _ = self._parts()
        existed = await store.get_object(body.id) is not None
        obj = await store.create_object(body.id, body.address)
        log.info("API %s: object %s created", request[PRINCIPAL], obj.id)
        return _json(ObjectOut(id=obj.id, address=obj.address, created_at=obj.created_at,
                               serial=obj.serial), status=200 if existed else 201)

    async def bind(self, request: web.Request) -> web.Response:
        object_id = self._path(request, "object_id", OBJECT_ID, "an object id")
        body = await self._body(request, BindRequest)
        store, engine = self._parts()
        result = await store.bind(object_id, normalise_serial(body.serial), move=body.move)
        log.info("API %s: ONT %s %s to object %s", request[PRINCIPAL], body.serial,
                 result.change, object_id)
        for order in await store.list_orders(object_id=object_id, open_only=True):
            self._spawn_reconcile(engine, order.id)
        b = result.binding
        return _json(BindOut(object_id=b.object_id, serial=b.serial, bound_at=b.bound_at,
                             change=result.change, previous_object=result.previous_object))

    # ---- orders -----------------------------------------------------------------------------
    @staticmethod
    def _order_out(order: Order, st: OrderStatus) -> dict[str, Any]:
        return {
            "id": order.id, "external_ref": order.external_ref, "object_id": order.object_id,
            "isp": order.isp, "service_type": order.service_type, "start_at": order.start_at,
            "created_at": order.created_at, "cancelled_at": order.cancelled_at,
            "removal_requested_at": order.removal_requested_at,
            "removed_at": order.removed_at, "status": st.status.value, "message": st.message,
            "prerequisites": list(st.prerequisites),
            "error_class": st.error_class.value if st.error_class else None,
            "activates_at": st.activates_at,
        }

    async def _detail(self, order_id: str, status: int = 200) -> web.Response:
        store, engine = self._parts()
        order = await store.get_order(order_id)
        if order is None:
            raise ApiError(404, f"order {order_id!r} does not exist")
        st = await engine.status(order_id)
        events = [EventOut(at=e.at, status=e.status, message=e.message,
                           error_class=e.error_class.value if e.error_class else None)
                  for e in await store.order_events(order_id)]
        return _json(OrderDetail(**self._order_out(order, st), events=events), status)

    def _order_id(self, request: web.Request) -> str:
        return self._path(request, "order_id", OBJECT_ID, "an order id")

    async def list_orders(self, request: web.Request) -> web.Response:
        open_only = self._flag(request, "open_only")
        store, engine = self._parts()
        out = [OrderOut(**self._order_out(o, await engine.status(o.id)))
               for o in await store.list_orders(open_only=open_only)]
        return _json(OrderList(orders=out))

    async def get_order(self, request: web.Request) -> web.Response:
        return await self._detail(self._order_id(request))

    async def create_order(self, request: web.Request) -> web.Response:
        body = await self._body(request, OrderCreate)
        store, engine = self._parts()
        # An ISP or service type the catalog has never heard of is a typo or an OSS out of
        # step: refused, nothing stored. A known ISP that lacks a VLAN for a known service type
        # is a catalog gap: the order is stored and waits as "configuration missing".
        if body.isp not in engine.catalog.isps:
            raise ApiError(422, "unknown ISP: the catalog has "
                                f"{', '.join(engine.catalog.isps) or 'none'}", "isp")
        if body.service_type not in engine.catalog.service_types:
            raise ApiError(422, "unknown service type: the catalog has "
                                f"{', '.join(engine.catalog.service_types) or 'none'}",
                           "service_type")
        created = await store.create_order(body.object_id, body.isp, body.service_type,
                                           body.start_at, external_ref=body.external_ref)
        oid = created.order.id
        if created.created:
            log.info("API %s: order %s created", request[PRINCIPAL], oid)
        self._spawn_reconcile(engine, oid)
        return await self._detail(oid, 201 if created.created else 200)

    async def cancel_order(self, request: web.Request) -> web.Response:
        oid = self._order_id(request)
        body = await self._body(request, OrderAction, required=False)
        store, _ = self._parts()
        await store.cancel(oid, body.reason)
        log.info("API %s: order %s cancelled", request[PRINCIPAL], oid)
        return await self._detail(oid)

    async def terminate_order(self, request: web.Request) -> web.Response:
        oid = self._order_id(request)
        body = await self._body(request, OrderAction, required=False)
        store, engine = self._parts()
        await store.request_removal(oid, body.reason)
        log.info("API %s: order %s termination requested", request[PRINCIPAL], oid)
        self._spawn_reconcile(engine, oid)
        return await self._detail(oid)

    async def change_order(self, request: web.Request) -> web.Response:
        oid = self._order_id(request)
        body = await self._body(request, OrderChangeRequest)
        if body.isp is None and body.service_type is None:
            raise ApiError(422, "isp or service_type: a change needs at least one of them",
                           "service_type")
        _, engine = self._parts()
        try:
            done = await engine.change(oid, isp=body.isp, service_type=body.service_type,
                                       reason=body.reason)
        except ChangeRefused as exc:
            raise ApiError(422, f"{exc.field}: {exc.message}", exc.field) from None
        log.info("API %s: order %s changed%s", request[PRINCIPAL], oid,
                 f" (replaced by order {done.order_id})" if done.replaced else "")
        return await self._detail(done.order_id)

    async def resend_order(self, request: web.Request) -> web.Response:
        oid = self._order_id(request)
        store, engine = self._parts()
        if await store.get_order(oid) is None:
            raise ApiError(404, f"order {oid!r} does not exist")
        log.info("API %s: order %s resent", request[PRINCIPAL], oid)
        await engine.resend(oid)
        return await self._detail(oid)

    async def openapi(self, request: web.Request) -> web.Response:
        return web.json_response(openapi_document())


ROUTES: tuple[Route, ...] = (
    Route("GET", "/onts", "csr", HttpApi.list_onts, "List the ONTs in the inventory", OntList),
    Route("GET", "/onts/{serial}", "csr", HttpApi.get_ont, "One ONT", OntOut),
    Route("POST", "/objects", "admin", HttpApi.create_object,
          "Create an object (201; 200 if it exists with the same address)", ObjectOut,
          ObjectCreate, status=201),
    Route("GET", "/objects/{object_id}", "csr", HttpApi.get_object, "One object", ObjectOut),
    Route("POST", "/objects/{object_id}/bind", "admin", HttpApi.bind,
          "Bind an ONT to the object by its serial (409 if bound elsewhere without move)",
          BindOut, BindRequest),
    Route("GET", "/orders", "csr", HttpApi.list_orders, "List orders with their status",
          OrderList, query=(("open_only", "leave out cancelled and terminated orders"),)),
    Route("POST", "/orders", "admin", HttpApi.create_order,
          "Create an order and reconcile it (201; 200 if external_ref is known)", OrderDetail,
          OrderCreate, status=201),
    Route("GET", "/orders/{order_id}", "csr", HttpApi.get_order,
          "One order: status, prerequisites, error and history", OrderDetail),
    Route("POST", "/orders/{order_id}/cancel", "admin", HttpApi.cancel_order,
          "Cancel an order not yet provisioned", OrderDetail, OrderAction, body_required=False),
    Route("POST", "/orders/{order_id}/terminate", "admin", HttpApi.terminate_order,
          "Remove the order's service from the device", OrderDetail, OrderAction,
          body_required=False),
    Route("POST", "/orders/{order_id}/change", "admin", HttpApi.change_order,
          "Change the order's ISP or service type; returns the order that carries the "
          "service now (a new one replacing a provisioned order)", OrderDetail,
          OrderChangeRequest),
    Route("POST", "/orders/{order_id}/resend", "admin", HttpApi.resend_order,
          "Re-apply the order on the device", OrderDetail),
    Route("GET", "/openapi.json", None, HttpApi.openapi, "This OpenAPI document", None),
)


def all_routes() -> tuple[Route, ...]:
    """:data:`ROUTES` and the routes of the API's other modules (each defines ``ROUTES`` of
    :class:`Route` whose handlers take the :class:`HttpApi` and the request; they import this
    module, so they are imported here, not at the top)."""
    from agent import api_diagnose, api_inventory, api_lines, api_push

    return (ROUTES + api_lines.ROUTES + api_push.ROUTES + api_diagnose.ROUTES
            + api_inventory.ROUTES)


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of :func:`all_routes` (schemas from the pydantic models)."""
    routes = all_routes()
    models: list[type[BaseModel]] = [ApiErrorBody]
    for r in routes:
        for m in (r.body, r.response):
            if m is not None and m not in models:
                models.append(m)
    _, defs = models_json_schema([(m, "validation") for m in models],
                                 ref_template="#/components/schemas/{model}")

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def content(model: type[BaseModel]) -> dict[str, Any]:
        return {"application/json": {"schema": ref(model)}}

    errors = {"400": "malformed request", "401": "missing or unknown token",
              "403": "the admin role is needed", "404": "not found",
              "409": "conflicts with what is stored", "413": "body too large",
              "422": "a field fails validation"}
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        op: dict[str, Any] = {
            "operationId": r.handler.__name__, "summary": r.summary,
            "responses": {str(r.status): {"description": "success", **(
                {"content": content(r.response)} if r.response else {})}},
        }
        if r.status == 201:
            op["responses"]["200"] = {"description": "already existed",
                                      "content": content(r.response) if r.response else {}}
        params = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                  for p in _PARAM.findall(r.path)]
        params += [{"name": q, "in": "query", "required": False, "description": d,
                    "schema": {"type": "boolean", "default": False}} for q, d in r.query]
        params += [{"name": q, "in": "query", "required": False, "description": d,
                    "schema": {"type": "string", "maxLength": 64}} for q, d in r.text_query]
        if params:
            op["parameters"] = params
        if r.body is not None:
            op["requestBody"] = {"required": r.body_required, "content": content(r.body)}
        if r.role is None:
            op["security"] = []
        else:
            op["x-role"] = r.role
            for code, text in errors.items():
                op["responses"][code] = {"description": text, "content": content(ApiErrorBody)}
        paths.setdefault(PREFIX + r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "ponctl agent API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def api_app(daemon: Daemon) -> web.Application:
    """The ``/api/v1`` sub-application for ``daemon`` (mount with ``add_subapp(PREFIX, ...)``)."""
    return HttpApi(daemon).application()
