"""Fixtures shared by the NETCONF driver tests: a simulated OLT, its server, a driver."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncssh
import pytest

from drivers.netconf import NetconfDriver
from simulator.devices import Olt
from simulator.netconf import NetconfServer
from tests.drivers.netconf_lab import make_olt, target


@pytest.fixture
def host_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture
def olt() -> Olt:
    return make_olt()


@pytest.fixture
async def server(olt: Olt, host_key: asyncssh.SSHKey) -> AsyncIterator[NetconfServer]:
    srv = await NetconfServer.start(olt, "127.0.0.1", 0, host_key)
    yield srv
    await srv.close()


@pytest.fixture
async def dev(server: NetconfServer, host_key: asyncssh.SSHKey) -> AsyncIterator[NetconfDriver]:
    async with NetconfDriver(target(server, host_key)) as d:
        yield d
