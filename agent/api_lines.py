"""API routes for subscribers, lines of service and gateways (PHAN URLs and RMA).

* ``/subscribers``: create (admin), search by code or name (``?q=``), one with its lines.
* ``/lines``: create (admin; with or without a subscriber, which may come later), search by
  code, subscriber code or name, one with its gateway, PHAN URL, write state and history;
  ``/lines/{code}/subscriber`` links a subscriber, ``/lines/{code}/gateway`` associates a
  gateway (the first association issues the PHAN URL; the agent writes it in the background and
  the line shows when it is read back), ``/lines/{code}/dissociate`` takes it off.
* ``/gateways``: register (admin: name, class from the settings, management address, the ONT
  it sits behind), list, one; ``/gateways/{name}/replace`` is the RMA swap (the line and its URL
  move to the new gateway, the old one is retired and cleared); ``/gateways/{name}/resend``
  writes it again.

Reads need any token; everything that creates, associates or writes needs the admin role.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field

from agent.api import (
    PRINCIPAL,
    TEXT,
    ApiError,
    HttpApi,
    Name,
    Route,
    Serial,
    _json,
    _Request,
)
from agent.engine import Engine
from agent.gateways import PhanNotConfigured
from agent.intent import NAME
from agent.inventory import normalise_serial
from agent.lines import CODE, CODE_RULE, MAX_NAME, MAX_QUERY, Line, LineStore

log = logging.getLogger(__name__)

Code = Annotated[str, Field(pattern=f"^{CODE.pattern}$", description=CODE_RULE)]
Address = Annotated[str, Field(pattern=r"^[A-Za-z0-9.:-]{1,253}$",
                               description="an IP address or host name")]


# ---- requests ----------------------------------------------------------------------------------
class SubscriberCreate(_Request):
    code: Code
    name: str = Field(min_length=1, max_length=MAX_NAME, pattern=TEXT,
                      description="the subscriber's full name")


class LineCreate(_Request):
    code: Code
    subscriber: Code | None = Field(default=None, description="an existing subscriber's code")


class LinkSubscriber(_Request):
    subscriber: Code


class Associate(_Request):
    gateway: Name
    move: bool = Field(default=False, description="move the line from its current gateway")


class GatewayCreate(_Request):
    name: Name
    gateway_class: Name = Field(description="a gateway class of the agent's settings")
    address: Address
    port: int | None = Field(default=None, ge=1, le=65535,
                             description="management port, if not the class's")
    ont_serial: Serial | None = Field(default=None, description="the ONT it sits behind")


class Replace(_Request):
    new_gateway: Name = Field(description="the registered gateway that replaces this one")


# ---- responses ---------------------------------------------------------------------------------
class GatewayStateOut(BaseModel):
    phase: str = Field(description="pending, writing, written or failed")
    desired_url: str = Field(description="what it should hold ('' : to be cleared)")
    error_class: str | None
    message: str
    attempts: int
    updated_at: datetime
    verified_at: datetime | None


class SubscriberOut(BaseModel):
    code: str
    name: str
    created_at: datetime
    lines: list[str]


class SubscriberList(BaseModel):
    subscribers: list[SubscriberOut]


class LineEventOut(BaseModel):
    at: datetime
    message: str


class LineOut(BaseModel):
    code: str
    subscriber: str | None
    subscriber_name: str | None
    gateway: str | None
    phan_url: str | None
    gateway_state: GatewayStateOut | None


class LineDetail(LineOut):
    history: list[LineEventOut]


class LineList(BaseModel):
    lines: list[LineOut]


class GatewayOut(BaseModel):
    name: str
    gateway_class: str
    address: str
    port: int | None
    ont_serial: str | None
    created_at: datetime
    retired_at: datetime | None
    line: str | None
    state: GatewayStateOut | None


class GatewayList(BaseModel):
    gateways: list[GatewayOut]


# ---- handlers ----------------------------------------------------------------------------------
def _engine(api: HttpApi) -> Engine:
    return api._parts()[1]


def _lines(api: HttpApi) -> LineStore:
    return _engine(api).lines


def _code(request: web.Request, name: str = "code") -> str:
    return HttpApi._path(request, name, CODE, CODE_RULE)


def _search(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    if value is None:
        return None
    if len(value) > MAX_QUERY or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ApiError(400, f"{name} must be at most {MAX_QUERY} characters without control "
                            f"characters", name)
    return value


async def _state_out(lines: LineStore, gateway: str | None) -> GatewayStateOut | None:
    st = None if gateway is None else await lines.gateway_state(gateway)
    if st is None:
        return None
    return GatewayStateOut(phase=st.phase.value, desired_url=st.desired_url,
                           error_class=None if st.error_class is None else st.error_class.value,
                           message=st.message, attempts=st.attempts, updated_at=st.updated_at,
                           verified_at=st.verified_at)


async def _line_out(lines: LineStore, line: Line) -> LineOut:
    sub = None if line.subscriber is None else await lines.get_subscriber(line.subscriber)
    return LineOut(code=line.code, subscriber=line.subscriber,
                   subscriber_name=None if sub is None else sub.name, gateway=line.gateway,
                   phan_url=line.phan_url, gateway_state=await _state_out(lines, line.gateway))


async def _line_detail(lines: LineStore, code: str, status: int = 200) -> web.Response:
    line = await lines.get_line(code)
    if line is None:
        raise ApiError(404, f"line of service {code} does not exist")
    out = await _line_out(lines, line)
    history = [LineEventOut(at=e.at, message=e.message) for e in await lines.line_events(code)]
    return _json(LineDetail(**out.model_dump(), history=history), status)


async def _subscriber_out(lines: LineStore, code: str) -> SubscriberOut:
    sub = await lines.get_subscriber(code)
    if sub is None:
        raise ApiError(404, f"subscriber {code} does not exist")
    return SubscriberOut(code=sub.code, name=sub.name, created_at=sub.created_at,
                         lines=[ln.code for ln in await lines.search_lines(subscriber=code)])


async def list_subscribers(api: HttpApi, request: web.Request) -> web.Response:
    lines = _lines(api)
    found = await lines.search_subscribers(_search(request, "q"))
    return _json(SubscriberList(subscribers=[await _subscriber_out(lines, s.code)
                                             for s in found]))


async def create_subscriber(api: HttpApi, request: web.Request) -> web.Response:
    body = await api._body(request, SubscriberCreate)
    lines = _lines(api)
    sub, created = await lines.create_subscriber(body.code, body.name)
    if created:
        log.info("API %s: subscriber %s created", request[PRINCIPAL], sub.code)
    return _json(await _subscriber_out(lines, sub.code), 201 if created else 200)


async def get_subscriber(api: HttpApi, request: web.Request) -> web.Response:
    return _json(await _subscriber_out(_lines(api), _code(request)))


async def list_lines(api: HttpApi, request: web.Request) -> web.Response:
    lines = _lines(api)
    subscriber = _search(request, "subscriber")
    found = await lines.search_lines(_search(request, "q"), subscriber=subscriber)
    return _json(LineList(lines=[await _line_out(lines, ln) for ln in found]))


async def create_line(api: HttpApi, request: web.Request) -> web.Response:
    body = await api._body(request, LineCreate)
    lines = _lines(api)
    line, created = await lines.create_line(body.code, body.subscriber)
    if created:
        log.info("API %s: line of service %s created", request[PRINCIPAL], line.code)
    return await _line_detail(lines, line.code, 201 if created else 200)


async def get_line(api: HttpApi, request: web.Request) -> web.Response:
    return await _line_detail(_lines(api), _code(request))


async def link_subscriber(api: HttpApi, request: web.Request) -> web.Response:
    code = _code(request)
    body = await api._body(request, LinkSubscriber)
    lines = _lines(api)
    await lines.link_subscriber(code, body.subscriber)
    log.info("API %s: line %s linked to subscriber %s", request[PRINCIPAL], code,
             body.subscriber)
    return await _line_detail(lines, code)


async def associate(api: HttpApi, request: web.Request) -> web.Response:
    code = _code(request)
    body = await api._body(request, Associate)
    engine = _engine(api)
    before = await engine.lines.get_line(code)
    try:
        line = await engine.lines.associate(code, body.gateway, engine.gateways.issue_url,
                                            move=body.move)
    except PhanNotConfigured as exc:
        raise ApiError(409, str(exc)) from None
    log.info("API %s: line %s associated with gateway %s", request[PRINCIPAL], code,
             body.gateway)
    # Write the line's gateway, and clear the one it left (a move), in the background.
    left = before.gateway if before is not None else None
    for name in {n for n in (line.gateway, left) if n is not None}:
        engine.gateways.kick(name)
    return await _line_detail(engine.lines, code)


async def dissociate(api: HttpApi, request: web.Request) -> web.Response:
    code = _code(request)
    engine = _engine(api)
    before = await engine.lines.get_line(code)
    await engine.lines.dissociate(code)
    if before is not None and before.gateway is not None:
        engine.gateways.kick(before.gateway)
        log.info("API %s: line %s taken off gateway %s", request[PRINCIPAL], code,
                 before.gateway)
    return await _line_detail(engine.lines, code)


async def _gateway_out(lines: LineStore, name: str) -> GatewayOut:
    gw = await lines.get_gateway(name)
    if gw is None:
        raise ApiError(404, f"gateway {name} does not exist")
    line = await lines.line_of_gateway(name)
    return GatewayOut(name=gw.name, gateway_class=gw.gateway_class, address=gw.address,
                      port=gw.port, ont_serial=gw.ont_serial, created_at=gw.created_at,
                      retired_at=gw.retired_at, line=None if line is None else line.code,
                      state=await _state_out(lines, name))


def _gateway_name(request: web.Request) -> str:
    return HttpApi._path(request, "name", NAME, "a gateway name")


async def list_gateways(api: HttpApi, request: web.Request) -> web.Response:
    lines = _lines(api)
    return _json(GatewayList(gateways=[await _gateway_out(lines, g.name)
                                       for g in await lines.list_gateways()]))


async def create_gateway(api: HttpApi, request: web.Request) -> web.Response:
    body = await api._body(request, GatewayCreate)
    engine = _engine(api)
    try:
        engine.settings.gateway_class(body.gateway_class)
    except KeyError:
        raise ApiError(422, "no gateway class of that name in the agent's settings",
                       "gateway_class") from None
    serial = None if body.ont_serial is None else normalise_serial(body.ont_serial)
    gw, created = await engine.lines.create_gateway(body.name, body.gateway_class, body.address,
                                                    serial, port=body.port)
    if created:
        log.info("API %s: gateway %s registered", request[PRINCIPAL], gw.name)
    return _json(await _gateway_out(engine.lines, gw.name), 201 if created else 200)


async def get_gateway(api: HttpApi, request: web.Request) -> web.Response:
    return _json(await _gateway_out(_lines(api), _gateway_name(request)))


async def replace_gateway(api: HttpApi, request: web.Request) -> web.Response:
    old = _gateway_name(request)
    body = await api._body(request, Replace)
    engine = _engine(api)
    try:
        line = await engine.lines.replace_gateway(old, body.new_gateway,
                                                  engine.gateways.issue_url)
    except PhanNotConfigured as exc:
        raise ApiError(409, str(exc)) from None
    log.info("API %s: gateway %s replaced by %s (RMA)", request[PRINCIPAL], old,
             body.new_gateway)
    engine.gateways.kick(body.new_gateway)
    engine.gateways.kick(old)
    return await _line_detail(engine.lines, line.code)


async def resend_gateway(api: HttpApi, request: web.Request) -> web.Response:
    name = _gateway_name(request)
    engine = _engine(api)
    if await engine.lines.get_gateway(name) is None:
        raise ApiError(404, f"gateway {name} does not exist")
    if await engine.gateways.resend(name) is None:
        raise ApiError(409, f"gateway {name} has nothing to hold: associate a line first")
    log.info("API %s: gateway %s resent", request[PRINCIPAL], name)
    return _json(await _gateway_out(engine.lines, name))


SEARCH = (("q", "text contained in the code or the name (case-insensitive)"),)

ROUTES: tuple[Route, ...] = (
    Route("GET", "/subscribers", "csr", list_subscribers,
          "Search subscribers by code or name", SubscriberList, text_query=SEARCH),
    Route("POST", "/subscribers", "admin", create_subscriber,
          "Create a subscriber (201; 200 if it exists with the same name)", SubscriberOut,
          SubscriberCreate, status=201),
    Route("GET", "/subscribers/{code}", "csr", get_subscriber,
          "One subscriber and its lines of service", SubscriberOut),
    Route("GET", "/lines", "csr", list_lines,
          "Search lines of service by code, subscriber code or name", LineList,
          text_query=(*SEARCH, ("subscriber", "only this subscriber's lines"))),
    Route("POST", "/lines", "admin", create_line,
          "Create a line of service (201; 200 if it exists)", LineDetail, LineCreate,
          status=201),
    Route("GET", "/lines/{code}", "csr", get_line,
          "One line: subscriber, gateway, PHAN URL, write state and history", LineDetail),
    Route("POST", "/lines/{code}/subscriber", "admin", link_subscriber,
          "Give the line of service to a subscriber", LineDetail, LinkSubscriber),
    Route("POST", "/lines/{code}/gateway", "admin", associate,
          "Associate the line with a gateway; issues the PHAN URL and writes it",
          LineDetail, Associate),
    Route("POST", "/lines/{code}/dissociate", "admin", dissociate,
          "Take the line off its gateway (the gateway is cleared)", LineDetail),
    Route("GET", "/gateways", "csr", list_gateways, "List the gateways", GatewayList),
    Route("POST", "/gateways", "admin", create_gateway,
          "Register a gateway (201; 200 if registered the same)", GatewayOut, GatewayCreate,
          status=201),
    Route("GET", "/gateways/{name}", "csr", get_gateway,
          "One gateway: its line and what it holds", GatewayOut),
    Route("POST", "/gateways/{name}/replace", "admin", replace_gateway,
          "RMA: move the line and its URL to the new gateway, clear and retire this one",
          LineDetail, Replace),
    Route("POST", "/gateways/{name}/resend", "admin", resend_gateway,
          "Write the gateway's PHAN URL again", GatewayOut),
)
