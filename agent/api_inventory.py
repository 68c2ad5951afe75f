"""API routes for the inventory and the service catalog (``ponctl onts|objects|catalog``).

* ``POST /onts/import`` (admin): pre-import ONTs, a JSON body ``{"rows": [...]}`` of at most
  :data:`MAX_IMPORT_ROWS` rows, each with ``serial``, ``olt``, ``pon_port`` and optionally
  ``model``, ``firmware``, ``vendor`` (text, as a CSV file's columns hold them). Every row is
  checked with the CSV import's rules (:func:`agent.inventory.check_rows`: serial normalised,
  OLT and PON port as the intent takes them, bounded text without control characters, a serial
  twice in one request refused); the valid rows are stored in one transaction, the rejected
  ones change nothing. The answer reports each row by its ``index`` in ``rows``: ``created``,
  ``moved`` (was imported elsewhere), ``updated``, ``unchanged`` (the same, or already
  discovered on the network, which wins) or ``rejected`` with its reasons ``{"error",
  "field"}`` -- which, like every API error, never repeat the rejected value. A malformed
  request (not JSON, unknown field, a value that is not text, too many rows) is refused as a
  whole (400/422) and stores nothing. Because a chunk of rows is larger than other requests,
  this route takes bodies of up to :data:`IMPORT_MAX_BODY` bytes (413 beyond); a client with
  more rows sends several requests (``ponctl onts import`` does, with a progress bar).
* ``GET /objects`` (any token): every object with the serial bound to it;
  ``GET /objects/{object_id}/history`` (any token): its binding history;
  ``POST /objects/{object_id}/unbind`` (admin): remove the object's binding (404 for an unknown
  object; an object with nothing bound answers ``serial: null``). The object's open orders are
  reconciled in the background, as after a bind.
* ``GET /catalog`` (any token): the catalog the agent loaded and uses -- ISPs with their
  services (C-VLAN, S-VLAN, bandwidth profile), service types, bandwidth profiles, per OLT the
  uplinks and the S-VLANs they carry, and the catalog's dangling references (``gaps``).
* ``GET /catalog/resolve?isp=&service_type=&olt=`` (any token): what an order for that ISP and
  service type on that OLT resolves to, or exactly what is missing (``resolved: false`` with
  the gaps' messages, e.g. "ISP 'speedy' has no VLAN for service type 'iptv'"). Each parameter
  is required and must be a name (1-32 letters, digits, '_', '.', '-'); 400 otherwise.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from agent.api import (
    PRINCIPAL,
    ApiError,
    ApiErrorBody,
    HttpApi,
    ObjectOut,
    Route,
    _json,
    _Request,
)
from agent.catalog import Catalog, Resolved
from agent.intent import NAME, SERIAL
from agent.inventory import RowProblem, check_rows, normalise_serial
from agent.store import OBJECT_ID

log = logging.getLogger(__name__)

MAX_IMPORT_ROWS = 1000
# A valid row is at most ~2.5 KB of JSON (three 64-character texts, each character escaped
# as a surrogate pair at worst); 1000 typical rows are ~150 KB.
IMPORT_MAX_BODY = 1024 * 1024  # bytes
NAME_RULE = "1-32 letters, digits, '_', '.', '-'"


# ---- ONT import ----------------------------------------------------------------------------
class OntRow(_Request):
    """One ONT to pre-import, as a CSV file's columns hold it (checked row by row)."""

    serial: str = Field(description="4 vendor letters + 8 hex digits (blanks trimmed, "
                                    "upper-cased)")
    olt: str = Field(description=NAME_RULE)
    pon_port: str = Field(description="frame/slot/port, e.g. 0/1/0")
    model: str = Field(default="", description="at most 64 characters, no control characters")
    firmware: str = Field(default="", description="at most 64 characters, no control "
                                                  "characters")
    vendor: str = Field(default="", description="at most 64 characters, no control characters")


class OntImportRequest(_Request):
    rows: list[OntRow] = Field(min_length=1, max_length=MAX_IMPORT_ROWS)


ImportResult = Literal["created", "moved", "updated", "unchanged", "rejected"]


class ImportRowOut(BaseModel):
    index: int = Field(description="the row's position in the request's rows (from 0)")
    serial: str | None = Field(description="the serial as stored (null: it was invalid)")
    result: ImportResult
    previous_olt: str | None = Field(description="moved: where the ONT was imported before")
    previous_pon_port: str | None
    reasons: list[ApiErrorBody] = Field(description="rejected: why, per field (a path in "
                                                    "the request, e.g. rows[3].serial)")


class ImportOut(BaseModel):
    rows: list[ImportRowOut] = Field(description="one per request row, in order")
    counts: dict[ImportResult, int]


def _reason(index: int, problem: RowProblem) -> ApiErrorBody:
    where = f"rows[{index}]"
    return ApiErrorBody(error=problem.message,
                        field=where if problem.field is None else f"{where}.{problem.field}")


async def import_onts(api: HttpApi, request: web.Request) -> web.Response:
    body = await api._body(request, OntImportRequest, limit=IMPORT_MAX_BODY)
    store, _ = api._parts()
    good, rejected = check_rows(((i, row.model_dump(), ()) for i, row in enumerate(body.rows)),
                                where="row {} of this request", echo=False)
    changes = await store.import_onts([row for _, row in good]) if good else ()
    out: list[ImportRowOut] = [
        ImportRowOut(index=i, serial=ch.ont.serial, result=ch.change,
                     previous_olt=ch.previous_olt, previous_pon_port=ch.previous_pon_port,
                     reasons=[]) for (i, _), ch in zip(good, changes, strict=True)]
    for i, written, problems in rejected:
        serial = normalise_serial(written)  # shown only when valid (a duplicate's, say)
        out.append(ImportRowOut(index=i, serial=serial if SERIAL.fullmatch(serial) else None,
                                result="rejected", previous_olt=None,
                                previous_pon_port=None,
                                reasons=[_reason(i, p) for p in problems]))
    out.sort(key=lambda r: r.index)
    counts: dict[ImportResult, int] = {k: 0 for k in ("created", "moved", "updated",
                                                      "unchanged", "rejected")}
    for r in out:
        counts[r.result] += 1
    log.info("API %s: ONT import of %d row(s): %s", request[PRINCIPAL], len(out),
             ", ".join(f"{n} {k}" for k, n in counts.items() if n))
    return _json(ImportOut(rows=out, counts=counts))


# ---- objects -------------------------------------------------------------------------------
class ObjectList(BaseModel):
    objects: list[ObjectOut]


class UnbindOut(BaseModel):
    object_id: str
    serial: str | None = Field(description="the ONT that was unbound (null: none was bound)")


class BindingEventOut(BaseModel):
    at: datetime
    action: str = Field(description="bound, unbound, moved-in, moved-out or replaced")
    serial: str
    other_object: str | None = Field(description="moved: the object on the other side")


class BindingHistory(BaseModel):
    object_id: str
    history: list[BindingEventOut] = Field(description="oldest first")


def _object_id(request: web.Request) -> str:
    return HttpApi._path(request, "object_id", OBJECT_ID, "an object id")


async def list_objects(api: HttpApi, request: web.Request) -> web.Response:
    store, _ = api._parts()
    return _json(ObjectList(objects=[
        ObjectOut(id=o.id, address=o.address, created_at=o.created_at, serial=o.serial)
        for o in await store.list_objects()]))


async def object_history(api: HttpApi, request: web.Request) -> web.Response:
    object_id = _object_id(request)
    store, _ = api._parts()
    if await store.get_object(object_id) is None:
        raise ApiError(404, f"object {object_id!r} does not exist")
    events = await store.binding_history(object_id=object_id)
    return _json(BindingHistory(object_id=object_id, history=[
        BindingEventOut(at=e.at, action=e.action, serial=e.serial, other_object=e.other_object)
        for e in events]))


async def unbind(api: HttpApi, request: web.Request) -> web.Response:
    object_id = _object_id(request)
    store, engine = api._parts()
    if await store.get_object(object_id) is None:
        raise ApiError(404, f"object {object_id!r} does not exist")
    gone = await store.unbind(object_id)
    if gone is not None:
        log.info("API %s: ONT %s unbound from object %s", request[PRINCIPAL], gone.serial,
                 object_id)
        for order in await store.list_orders(object_id=object_id, open_only=True):
            api._spawn_reconcile(engine, order.id)
    return _json(UnbindOut(object_id=object_id, serial=None if gone is None else gone.serial))


# ---- catalog ---------------------------------------------------------------------------------
class IspServiceOut(BaseModel):
    service_type: str
    c_vlan: int = Field(description="towards the ONT")
    s_vlan: int = Field(description="on the uplink")
    bandwidth_profile: str


class IspOut(BaseModel):
    code: str
    name: str
    services: list[IspServiceOut]


class ServiceTypeOut(BaseModel):
    name: str
    uni: int = Field(description="the default UNI")
    tagging: Literal["untagged", "tagged"]
    user_vlan: int | None = Field(description="tagged: the VLAN on the UNI")


class BandwidthProfileOut(BaseModel):
    name: str
    max_bps: int
    assured_bps: int
    fixed_bps: int


class UplinkOut(BaseModel):
    port: str
    s_vlans: list[str] = Field(description="the S-VLANs it carries: ids and ranges 'lo-hi'")


class OltOut(BaseModel):
    olt: str
    uplinks: list[UplinkOut]


class GapOut(BaseModel):
    kind: str
    message: str


class CatalogOut(BaseModel):
    isps: list[IspOut]
    service_types: list[ServiceTypeOut]
    bandwidth_profiles: list[BandwidthProfileOut]
    olts: list[OltOut]
    gaps: list[GapOut] = Field(description="references in the catalog that lead nowhere")


class ResolveOut(BaseModel):
    isp: str
    service_type: str
    olt: str
    resolved: bool = Field(description="false: see missing")
    c_vlan: int | None
    s_vlan: int | None
    uplink: str | None = Field(description="the uplink port carrying the S-VLAN")
    uni: int | None
    tagged: bool | None
    user_vlan: int | None
    bandwidth_profile: BandwidthProfileOut | None
    missing: list[GapOut] = Field(description="what the order would wait for")


def vlan_ranges(vlans: frozenset[int]) -> list[str]:
    """``{1000, ..., 1009, 2000}`` as ``["1000-1009", "2000"]``."""
    out: list[str] = []
    ordered = sorted(vlans)
    start = prev = None
    for v in [*ordered, None]:
        if v is not None and prev is not None and v == prev + 1:
            prev = v
            continue
        if start is not None and prev is not None:
            out.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = v
    return out


def catalog_out(cat: Catalog) -> CatalogOut:
    """The API's (and ``ponctl catalog show --file``'s) view of a catalog."""
    spec = cat.spec
    return CatalogOut(
        isps=[IspOut(code=i.code, name=i.name, services=[
            IspServiceOut(service_type=st, c_vlan=s.c_vlan, s_vlan=s.s_vlan,
                          bandwidth_profile=s.bandwidth_profile)
            for st, s in i.services.items()]) for i in spec.isps],
        service_types=[ServiceTypeOut(name=n, uni=t.uni, tagging=t.tagging,
                                      user_vlan=t.user_vlan)
                       for n, t in spec.service_types.items()],
        bandwidth_profiles=[BandwidthProfileOut(name=n, max_bps=p.max_bps,
                                                assured_bps=p.assured_bps, fixed_bps=p.fixed_bps)
                            for n, p in spec.bandwidth_profiles.items()],
        olts=[OltOut(olt=olt, uplinks=[UplinkOut(port=port, s_vlans=vlan_ranges(vlans))
                                       for port, vlans in cat.network_services(olt).items()])
              for olt in spec.olts],
        gaps=[GapOut(kind=g.kind, message=g.message) for g in cat.check()])


def resolve_out(cat: Catalog, isp: str, service_type: str, olt: str) -> ResolveOut:
    """The API's (and ``ponctl catalog resolve --file``'s) answer for one combination."""
    r = cat.resolve(isp, service_type, olt)
    if not isinstance(r, Resolved):
        return ResolveOut(isp=isp, service_type=service_type, olt=olt, resolved=False,
                          c_vlan=None, s_vlan=None, uplink=None, uni=None, tagged=None,
                          user_vlan=None, bandwidth_profile=None,
                          missing=[GapOut(kind=g.kind, message=g.message) for g in r])
    p = r.profile
    return ResolveOut(isp=isp, service_type=service_type, olt=olt, resolved=True,
                      c_vlan=r.c_vlan, s_vlan=r.s_vlan, uplink=r.uplink, uni=r.uni,
                      tagged=r.tagged, user_vlan=r.user_vlan,
                      bandwidth_profile=BandwidthProfileOut(
                          name=p.name, max_bps=p.max_bps, assured_bps=p.assured_bps,
                          fixed_bps=p.fixed_bps),
                      missing=[])


def _name_query(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if not value:
        raise ApiError(400, f"{name} is required", name)
    if not NAME.fullmatch(value):
        raise ApiError(400, f"{name} is invalid: {NAME_RULE}", name)
    return value


async def get_catalog(api: HttpApi, request: web.Request) -> web.Response:
    _, engine = api._parts()
    return _json(catalog_out(engine.catalog))


async def resolve(api: HttpApi, request: web.Request) -> web.Response:
    isp, st, olt = (_name_query(request, n) for n in ("isp", "service_type", "olt"))
    _, engine = api._parts()
    return _json(resolve_out(engine.catalog, isp, st, olt))


ROUTES: tuple[Route, ...] = (
    Route("POST", "/onts/import", "admin", import_onts,
          f"Pre-import up to {MAX_IMPORT_ROWS} ONTs; a report per row (rejected rows change "
          f"nothing)", ImportOut, OntImportRequest),
    Route("GET", "/objects", "csr", list_objects, "List the objects with their bound ONT",
          ObjectList),
    Route("GET", "/objects/{object_id}/history", "csr", object_history,
          "The object's binding history", BindingHistory),
    Route("POST", "/objects/{object_id}/unbind", "admin", unbind,
          "Remove the object's binding (serial null: nothing was bound)", UnbindOut),
    Route("GET", "/catalog", "csr", get_catalog,
          "The service catalog the agent uses: ISPs, service types, VLANs, bandwidth "
          "profiles, OLT uplinks", CatalogOut),
    Route("GET", "/catalog/resolve", "csr", resolve,
          "What an ISP + service type on an OLT resolves to, or what is missing", ResolveOut,
          text_query=(("isp", "the ISP's code (required)"),
                      ("service_type", "the service type (required)"),
                      ("olt", "the OLT (required)"))),
)
