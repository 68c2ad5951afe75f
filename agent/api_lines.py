"""API routes for subscribers, lines of service and gateways (PHAN URLs, RMA)."""

from __future__ import annotations

from agent.api import Route

ROUTES: tuple[Route, ...] = ()
