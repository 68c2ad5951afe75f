"""Shared fixtures: a watchdog that fails any async test which blocks the event loop."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from simulator.lab import Lab
from simulator.topology import Ports, Topology, load_topology

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DEFAULT_LAB = REPO / "configs" / "lab.yaml"
BLOCK_LIMIT = 1.0  # seconds a single callback may hold the loop before the test fails


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fn = getattr(item, "function", None)
        if fn is not None and asyncio.iscoroutinefunction(fn):
            item.fixturenames.insert(0, "_loop_watchdog")  # type: ignore[attr-defined]


@pytest.fixture
async def _loop_watchdog() -> AsyncIterator[None]:
    """Measure how late a 20 ms heartbeat wakes up; a long stall means something blocked."""
    worst = 0.0
    stop = False

    async def beat() -> None:
        nonlocal worst
        while not stop:
            t = time.perf_counter()
            await asyncio.sleep(0.02)
            worst = max(worst, time.perf_counter() - t - 0.02)

    task = asyncio.create_task(beat())
    yield
    stop = True
    await task
    if worst > BLOCK_LIMIT:
        pytest.fail(f"the event loop was blocked for {worst:.2f} s (limit {BLOCK_LIMIT} s)")


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until ``predicate()`` holds, without blocking the loop (device state machines
    run on loop timers); fail the test if it does not within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.005)


@asynccontextmanager
async def running_lab(topology: Topology | None = None, *,
                      own_addresses: bool = False) -> AsyncIterator[Lab]:
    """The default lab (or ``topology``) with every face on 127.0.0.1 and a free port;
    faults are cleared and the lab must stop without errors.

    ``own_addresses``: as in production, every device on its own address with the standard
    ports (a gateway keeps its address and port while it is down), under a fresh 127.R.0.0
    base so that nothing else listening on the default lab's addresses gets in the way."""
    topo = topology or load_topology(DEFAULT_LAB)
    if own_addresses:
        base = f"127.{random.randint(64, 250)}.0.0"
        lab = Lab(topo.model_copy(update={"address_base": base}))
    else:
        lab = Lab(topo, ports=Ports(netconf=0, snmp=0, ssh=0), single_address="127.0.0.1")
    await lab.start()
    try:
        yield lab
    finally:
        for olt in lab.olts.values():
            olt.faults.clear()
        errors = await lab.stop()
    assert errors == []


@pytest.fixture
async def lab() -> AsyncIterator[Lab]:
    """A running default lab (configs/lab.yaml) on free ports."""
    async with running_lab() as running:
        yield running
