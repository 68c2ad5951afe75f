"""API routes for manual pushes and dry runs (engineers: ``ponctl push``).

* ``POST /onts/{serial}/push`` (admin), body ``{"dry_run": bool}`` (optional, default false):
  every open order of the object the ONT is bound to, pushed for real (the status after
  each) or dry-run;
* ``POST /onts/{serial}/dry-run`` (any token) and ``POST /orders/{order_id}/dry-run`` (any
  token): the exact payload and the diff against the device; nothing is recorded as a push
  and nothing changes on the device. A dry run only reads the device, so a CSR may run it to
  troubleshoot; a real push needs the admin role.

Orders that are not ready (prerequisites, start date in the future, closed) are listed with
their status and the reason, and not sent. An unknown serial or order is 404; an ONT bound to
no object is 409.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from agent.api import PRINCIPAL, HttpApi, Route, _json, _Request
from agent.engine import OntPush, OrderPush
from agent.intent import SERIAL

log = logging.getLogger(__name__)

SERIAL_RULE = "4 upper-case vendor characters + 8 hex digits"


class PushRequest(_Request):
    """Body of a manual push (optional)."""

    dry_run: bool = Field(default=False, description="show the payload and the diff against "
                                                     "the device; change nothing")


class OrderPushOut(BaseModel):
    order_id: str
    action: Literal["pushed", "dry-run", "skipped"] = Field(
        description="pushed for real, dry-run (nothing changed), or skipped (not ready)")
    status: str = Field(description="the order's status (after the push, if pushed)")
    message: str
    error_class: str | None
    prerequisites: list[str]
    activates_at: datetime | None
    olt: str | None
    payload: str = Field(description="dry run: exactly what a push would send")
    diff: str = Field(description="dry run: the device against the payload (empty: the "
                                  "device already holds it)")
    compared: bool = Field(description="dry run: the device was read and compared")
    error: str = Field(description="dry run: why the device could not be compared")
    reason: str = Field(description="skipped: why; pushed: the push's result")


class OntPushOut(BaseModel):
    serial: str
    object_id: str
    dry_run: bool
    orders: list[OrderPushOut]


def order_push_out(r: OrderPush) -> OrderPushOut:
    st = r.status
    error_class = r.error_class or st.error_class
    return OrderPushOut(order_id=r.order_id, action=r.action.value, status=st.status.value,
                        message=st.message,
                        error_class=error_class.value if error_class else None,
                        prerequisites=list(st.prerequisites), activates_at=st.activates_at,
                        olt=r.olt, payload=r.payload, diff=r.diff, compared=r.compared,
                        error=r.error, reason=r.reason)


def ont_push_out(r: OntPush) -> OntPushOut:
    """The API's (and ``ponctl push --direct``'s) JSON shape of a manual push."""
    return OntPushOut(serial=r.serial, object_id=r.object_id, dry_run=r.dry_run,
                      orders=[order_push_out(o) for o in r.orders])


def _serial(request: web.Request) -> str:
    return HttpApi._path(request, "serial", SERIAL, SERIAL_RULE)


async def _ont(api: HttpApi, request: web.Request, serial: str, dry_run: bool) -> web.Response:
    _, engine = api._parts()
    log.info("API %s: ONT %s %s", request[PRINCIPAL], serial,
             "dry run" if dry_run else "manual push")
    return _json(ont_push_out(await engine.push_ont(serial, dry_run=dry_run)))


async def push_ont(api: HttpApi, request: web.Request) -> web.Response:
    serial = _serial(request)
    body = await api._body(request, PushRequest, required=False)
    return await _ont(api, request, serial, body.dry_run)


async def dry_run_ont(api: HttpApi, request: web.Request) -> web.Response:
    return await _ont(api, request, _serial(request), True)


async def dry_run_order(api: HttpApi, request: web.Request) -> web.Response:
    oid = api._order_id(request)
    _, engine = api._parts()
    log.info("API %s: order %s dry run", request[PRINCIPAL], oid)
    return _json(order_push_out(await engine.dry_run(oid)))


ROUTES: tuple[Route, ...] = (
    Route("POST", "/onts/{serial}/push", "admin", push_ont,
          "Push the open orders of the ONT's object now (dry_run: show payload and diff only)",
          OntPushOut, PushRequest, body_required=False),
    Route("POST", "/onts/{serial}/dry-run", "csr", dry_run_ont,
          "Dry-run the open orders of the ONT's object: payload and diff, nothing changed",
          OntPushOut),
    Route("POST", "/orders/{order_id}/dry-run", "csr", dry_run_order,
          "Dry-run one order: the payload and the diff against the device, nothing changed",
          OrderPushOut),
)
