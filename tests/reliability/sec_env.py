"""A daemon on a lab whose secrets are all distinctive (the default lab's admin/admin, public and
private are ordinary words that legitimately appear in output): SSH password, SNMP communities
and v3 keys, API tokens, PHAN keys. Shared by the security and bad-input tests."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp

from agent.daemon import Daemon
from agent.discovery import Backoff
from agent.phan import KEYS_ENV_VAR
from simulator.lab import Lab
from simulator.topology import Topology, load_topology
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
from tests.conftest import DEFAULT_LAB, running_lab

PASSWORD = "Pw-olt-9fK2xQ7v"
COMMUNITY_RO = "ro-comm-R7t2Lp"
COMMUNITY_RW = "rw-comm-W3m8Zs"
V3_AUTH, V3_PRIV = "v3-auth-A1b2C3d4", "v3-priv-P9o8I7u6"


def secret_topology() -> Topology:
    data = load_topology(DEFAULT_LAB).model_dump()
    data["defaults"]["credentials"] = {"username": "ops", "password": PASSWORD}
    snmp = data["defaults"]["snmp"]
    snmp.update(community_ro=COMMUNITY_RO, community_rw=COMMUNITY_RW)
    snmp["v3"].update(auth_key=V3_AUTH, priv_key=V3_PRIV)
    data["trap_targets"] = []
    return Topology.model_validate(data)


def secrets() -> dict[str, str]:
    """Every secret value the daemon holds, by what it is (PHAN keys whole and per key)."""
    out = {"ssh password": PASSWORD, "rw community": COMMUNITY_RW,
           "ro community": COMMUNITY_RO, "admin token": ADMIN, "csr token": CSR,
           "phan keyring": KEYS.export_secrets()}
    for entry in KEYS.export_secrets().split(","):
        out[f"phan key {entry.split(':')[0]}"] = entry.split(":", 1)[1]
    return out


@contextlib.contextmanager
def environment() -> Iterator[None]:
    values = {PASSWORD_VAR: PASSWORD, COMMUNITY_VAR: COMMUNITY_RW, ADMIN_VAR: ADMIN,
              CSR_VAR: CSR, KEYS_ENV_VAR: KEYS.export_secrets()}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.asynccontextmanager
async def secret_agent(tmp_path: Path) -> AsyncIterator[tuple[Lab, Daemon, Client]]:
    with environment():
        async with running_lab(secret_topology(), own_addresses=True) as lab:
            settings = lab_settings(lab, tmp_path)
            d = Daemon(settings, engine_options={"verify_timeout": 3.0, "retry": FAST,
                                                 "gateway_retry": 0.5},
                       watch_interval=0.1, backoff=Backoff(initial=0.05, cap=0.2))
            async with d, aiohttp.ClientSession() as session:
                assert d.port is not None
                yield lab, d, Client(session, d.port)
            assert d.shutdown_errors == []
