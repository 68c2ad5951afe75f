"""Fixtures for tests/agent: a lab with its own addresses, and a daemon with gateways on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from agent.daemon import Daemon
from agent.discovery import Backoff
from agent.phan import KEYS_ENV_VAR
from simulator.lab import Lab
from tests.agent.lines_env import (
    ADMIN,
    ADMIN_VAR,
    COMMUNITY_VAR,
    CSR,
    CSR_VAR,
    KEYS,
    PASSWORD_VAR,
    Client,
    lab_settings,
)
from tests.agent.test_engine import FAST
from tests.conftest import running_lab


@pytest.fixture
async def own_lab() -> AsyncIterator[Lab]:
    """The default lab with every device on its own address and the standard ports."""
    async with running_lab(own_addresses=True) as running:
        yield running


@pytest.fixture
async def lines_agent(own_lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      ) -> AsyncIterator[tuple[Daemon, Client]]:
    """A daemon with gateway classes and PHAN keys, on ``own_lab``."""
    lab = own_lab
    for var, value in ((PASSWORD_VAR, lab.olts["olt1"].credentials.password),
                       (COMMUNITY_VAR, lab.olts["olt2"].snmp.community_rw),
                       (ADMIN_VAR, ADMIN), (CSR_VAR, CSR), (KEYS_ENV_VAR, KEYS.export_secrets())):
        monkeypatch.setenv(var, value)
    settings = lab_settings(lab, tmp_path)
    d = Daemon(settings, engine_options={"verify_timeout": 3.0, "retry": FAST,
                                         "gateway_retry": 0.5},
               watch_interval=0.1, backoff=Backoff(initial=0.05, cap=0.2))
    async with d, aiohttp.ClientSession() as session:
        assert d.port is not None
        yield d, Client(session, d.port)
    assert d.shutdown_errors == []


