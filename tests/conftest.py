"""Shared fixtures: a watchdog that fails any async test which blocks the event loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
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
