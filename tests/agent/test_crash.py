"""``kill -9`` during a bulk push, and restart: no lost order, no duplicate configuration.

DESIGN.md, "Durable first": every push is written to the store before and after the device
side effect, a restarted agent resumes where it stopped, and pushes are idempotent. This test
proves it at daemon level, across real sockets and a real process boundary:

* the simulated lab runs in the test process (every device on its own address, standard
  ports), with 48 unclaimed ONTs added on olt1 (NETCONF) and 16 on olt2 (SNMP, watched by
  traps so that its ONTs are discovered);
* the real daemon (``python -m agent agent run --config FILE``) runs as a subprocess, its
  secrets in its environment, its API on a fixed port, its stderr collected in a file;
* an OSS client creates an object, a binding and an order (with an external reference, the
  idempotency key) for every ONT through the HTTP API, one ONT every few tens of ms, retrying
  each step while the agent is down, as an OSS would (a request the dead agent committed but
  never answered is sent again: the same order must come back, not a second one);
* the daemon is killed with SIGKILL four times, at different points: during the API-driven
  bulk push, with orders still arriving (NETCONF batches and SNMP sets in flight); during the
  start-up resume of the pushes the previous kill left pending (a push interrupted twice);
  once it listens again, during the second bulk push of the orders the OSS could not send
  while it was down (during the resume if they were all in); and at a random moment after the
  next start-up got to work. Each time it is restarted on the same store file.

After the last restart, once every order is active: every acknowledged order exists exactly
once (no lost order, no duplicate, external references unique, one order per object); on each
simulated OLT each ONT's configuration is there exactly once (one v-ani registration, one
forwarder, one user-side VLAN sub-interface, one UNI VLAN sub-interface, one GEM port; no
half-built forwarder; the ONT operational with its one service applied); no push record is
pending in the store; the pushes the kills left pending were resumed (same push record
finished after the restart, "resuming push" in the daemon's log) and the histories of their
orders show them going from awaiting provisioning to active after the kill.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from agent.store import PushPhase, Store
from simulator.lab import Lab
from tests.agent.crash_env import (
    DEADLINE,
    Api,
    Oss,
    Shape,
    abandon,
    api_up,
    check_no_secret_logged,
    check_olt,
    check_orders,
    check_resumed,
    crash_lab,
    generated,
    new_agent,
    pending_ids,
    push_counts,
    run_random_kills,
    settled,
    until,
)

SCRIPTED = Shape()  # olt1: 4 PON ports x 12 ONTs (NETCONF); olt2: 2 x 8 (SNMP)
RANDOM = Shape.for_onts(int(os.environ.get("PONCTL_CRASH_ONTS", "80")))
RANDOM_KILLS = int(os.environ.get("PONCTL_CRASH_KILLS", "3"))


@pytest.fixture
async def scripted_lab() -> AsyncIterator[tuple[Lab, int]]:
    async with crash_lab(SCRIPTED) as lab:
        yield lab


@pytest.mark.timeout(120)
async def test_kill_9_during_a_bulk_push_loses_no_order_and_duplicates_no_config(
        scripted_lab: tuple[Lab, int], tmp_path: Path, request: pytest.FixtureRequest) -> None:
    lab, trap_port = scripted_lab
    serials = generated(lab)
    assert len(serials) == SCRIPTED.total
    agent, api_port = new_agent(lab, tmp_path, trap_port)
    rng = random.Random(os.environ.get("PYTEST_XDIST_WORKER", "") + request.node.nodeid)
    t0 = time.monotonic()
    kills: list[dict[int, str]] = []  # per kill: the pushes it left pending (id -> order)
    killed_at: list[datetime] = []
    creating: asyncio.Future[list[None]] | None = None
    try:
        async with aiohttp.ClientSession() as session:
            api = Api(session, api_port)
            oss = Oss(api)

            async def discovered() -> bool:
                code, body = await api.call("GET", "/onts")
                up = {o["serial"] for o in body["onts"] if o["state"] == "up"}
                return code == 200 and set(serials) <= up

            # Run 1: the agent discovers every ONT (olt2 through its trap listener's first
            # walk), then the OSS sends its orders in a quick stream: a bulk push.
            await agent.start()
            await until("the API is up", lambda: api_up(api), agent)
            await until("every generated ONT is discovered", discovered, agent)
            store = await Store(tmp_path / "ponctl.sqlite3").open()
            try:
                limit = asyncio.Semaphore(8)
                creating = asyncio.ensure_future(asyncio.gather(
                    *(oss.provision(s, n, limit) for n, s in enumerate(sorted(serials)))))

                async def kill(when: str) -> None:
                    await agent.kill()
                    killed_at.append(datetime.now(UTC))
                    kills.append(await pending_ids(store))
                    print(f"kill {len(kills)} ({when}) at {time.monotonic() - t0:.1f} s: "
                          f"{len(oss.acked)} orders acknowledged, pushes "
                          f"{await push_counts(store)}, left pending: {len(kills[-1])}")

                base = await push_counts(store)

                async def in_flight(at_least: int) -> bool:
                    """At least ``at_least`` pushes verified since ``base``, and some pushes
                    recorded but not finished (on their way to a device, or queued)."""
                    now = await push_counts(store)
                    done = now.get("verified", 0) - base.get("verified", 0)
                    pending = sum(now.get(p.value, 0) for p in
                                  (PushPhase.INTENT_RECORDED, PushPhase.SENT,
                                   PushPhase.COMMITTED))
                    return done >= at_least and pending > 0

                total = len(serials)

                async def in_flight_or_done(at_least: int) -> bool:
                    """:func:`in_flight`, or nothing left to push at all (then the kill hits
                    an idle agent rather than the test waiting for work that never comes)."""
                    return await in_flight(at_least) or (
                        creating is not None and creating.done()
                        and await settled(store, total))

                # Kill 1: in the middle of the API-driven bulk push, with orders still
                # arriving (the OSS retries what the dead agent did not answer).
                await until("pushes in flight after the first few verified",
                            lambda: in_flight(3), agent)
                await kill("bulk push")

                # Kill 2: the restarted agent resumes the pending pushes first (before its
                # API listens); kill it while it does, leaving a resumed push pending again.
                await agent.start()
                if kills[-1]:
                    resumes = min(2, len(kills[-1]))

                    async def resuming() -> bool:
                        return agent.saw("resuming push") >= resumes

                    await until("resuming the pending pushes", resuming, agent)
                else:
                    base = await push_counts(store)
                    await until("pushes in flight", lambda: in_flight_or_done(1), agent)
                await kill("resuming")

                # Kill 3: once the restarted agent has resumed what was pending and listens
                # again, during the second bulk push (the orders the OSS could not send while
                # the agent was down); if every order was already in, during the resume.
                await agent.start()
                if not creating.done():
                    async def listening() -> bool:
                        return agent.saw("listening on http") > 0

                    await until("the API listens again", listening, agent)
                base = await push_counts(store)
                await until("pushes in flight after a few verified",
                            lambda: in_flight_or_done(3), agent)
                await kill("second bulk push" if agent.saw("listening on http") else "resume")

                # Kill 4: at a random moment after the next start-up got to work.
                await agent.start()
                if kills[-1]:
                    async def resumed_one() -> bool:
                        return agent.saw("resuming push") > 0

                    await until("resuming the pending pushes", resumed_one, agent)
                await asyncio.sleep(rng.uniform(0.0, 1.5))
                await kill("random")

                # The last restart: everything becomes active by itself.
                await agent.start()
                await asyncio.wait_for(creating, DEADLINE)
                await until("every order is active", lambda: settled(store, total), agent)
                await until("the API is up", lambda: api_up(api), agent)
                elapsed = time.monotonic() - t0
                await check_orders(api, oss, serials)
                pending = await store.pending_pushes()
                assert pending == (), pending
                await check_resumed(api, store, agent, kills, killed_at)
                for olt_name, olt in lab.olts.items():
                    check_olt(olt, [s for s, o in serials.items() if o == olt_name])
                code = await agent.stop()
                assert code == 0
                assert await store.pending_pushes() == ()
            finally:
                await store.close()
            print(f"{len(kills)} kills, {oss.retries} OSS retries, all active after "
                  f"{elapsed:.1f} s")
    except BaseException:
        await abandon(agent, creating)
        raise
    check_no_secret_logged(agent)


@pytest.mark.timeout(int(os.environ.get("PONCTL_CRASH_TIMEOUT", "150")))
async def test_kill_9_at_random_points_loses_no_order_and_duplicates_no_config(
        tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Kills at random points (start-up, resume, discovery, bulk push, idle): CI runs 80 ONTs
    and 3 kills; ``bench/crash_soak.py`` runs 1,000 ONTs and more kills by hand (or set
    PONCTL_CRASH_ONTS / PONCTL_CRASH_KILLS here)."""
    seed = sum(map(ord, os.environ.get("PYTEST_XDIST_WORKER", "") + request.node.nodeid))
    async with crash_lab(RANDOM) as (lab, trap_port):
        assert len(generated(lab)) == RANDOM.total
        summary = await run_random_kills(lab, trap_port, tmp_path, kills=RANDOM_KILLS,
                                         seed=seed, delay=(0.3, 2.5), pace=0.06)
    print(summary.as_json())
    assert len(summary.kills) == RANDOM_KILLS
    assert summary.onts == RANDOM.total
    assert summary.pushes.get("verified", 0) >= RANDOM.total
