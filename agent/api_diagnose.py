"""API route for ``ponctl diagnose``: ``GET /diagnose/{target}`` (any token: troubleshooting).

``target`` is an order id, an ONT serial or an object id (each is tried; ``?kind=order|ont|
object`` says which when it names several). The answer is the report of
:func:`agent.diagnose.diagnose`: sections of checks, each with a verdict, a finding and the
next step. 404: the target names nothing the agent knows; 409: it names several things.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, Field

from agent.api import ApiError, HttpApi, Route, _json
from agent.diagnose import KINDS, Kind, TargetError, diagnose, report_json
from agent.intent import SERIAL
from agent.store import OBJECT_ID

TARGET = re.compile(f"(?:{OBJECT_ID.pattern})|(?:{SERIAL.pattern})", re.IGNORECASE)
VerdictName = Literal["ok", "warning", "fail", "unknown"]


class CheckOut(BaseModel):
    id: str = Field(description="stable check id, e.g. ont.presence, order.config")
    title: str
    verdict: VerdictName
    finding: str = Field(description="what was found, in one line")
    next_step: str = Field(description="what a first-line engineer should do (empty if ok)")
    subject: str | None = Field(description="what the check is about: an order id, a UNI")
    details: dict[str, Any] = Field(description="the values behind the finding (a diff, "
                                                "trace steps, VLAN tags, Rx level, ...)")


class SectionOut(BaseModel):
    id: str
    title: str
    verdict: VerdictName
    notes: list[str]
    checks: list[CheckOut]


class DiagnoseOut(BaseModel):
    target: str
    kind: Literal["order", "ont", "object"]
    object_id: str | None
    serial: str | None
    orders: list[str] = Field(description="the orders reported on")
    verdict: VerdictName = Field(description="the worst verdict of all checks")
    exit_code: int = Field(description="the CLI's exit code: 0 all ok or warnings, 3 a check "
                                       "failed or could not be made")
    generated_at: datetime
    seconds: float
    sections: list[SectionOut]


async def get_diagnosis(api: HttpApi, request: web.Request) -> web.Response:
    target = api._path(request, "target", TARGET,
                       "an order id, an ONT serial or an object id")
    raw_kind = request.query.get("kind")
    kind: Kind | None = None
    if raw_kind is not None:
        if raw_kind not in KINDS:
            raise ApiError(400, f"kind must be one of {', '.join(KINDS)}", "kind")
        kind = raw_kind
    _, engine = api._parts()
    try:
        report = await diagnose(engine, target, kind)
    except TargetError as exc:
        raise ApiError(exc.status, str(exc), "target") from None
    return _json(DiagnoseOut.model_validate(report_json(report)))


ROUTES: tuple[Route, ...] = (
    Route("GET", "/diagnose/{target}", "csr", get_diagnosis,
          "Diagnose an order, ONT or object: inventory, live ONT state, optical level, UNI "
          "link, config versus intent, last push, lab data-path trace", DiagnoseOut,
          text_query=(("kind", "order, ont or object: which one the target names"),)),
)
