"""The agent's SQLite store: migrations, every API, durability across kill -9, concurrency."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.catalog import load_catalog
from agent.status import (
    ErrorClass,
    NoPush,
    PushFailed,
    PushInProgress,
    PushVerified,
    Status,
    compute_status,
)
from agent.store import (
    MIGRATIONS,
    AllocationExhausted,
    Conflict,
    InvalidTransition,
    InvalidValue,
    NotFound,
    OntImport,
    OntState,
    PushAction,
    PushPhase,
    Store,
    StoreError,
)
from tests.conftest import REPO

S1 = "ABCD0000A1B2"
S2 = "ABCD0000A1B3"
S3 = "HWTC12345678"
NOW = datetime.now(UTC)
TOMORROW = NOW + timedelta(days=1)
YESTERDAY = NOW - timedelta(days=1)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "agent.db") as s:
        yield s


def raw(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


# --- migrations ---------------------------------------------------------------------------------


async def test_migrations_from_empty_and_reopen_is_a_noop(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "agent.db"
    async with Store(db) as s:
        assert await s.schema_version() == len(MIGRATIONS)
        await s.create_object("obj-1", "Main Street 1")
    conn = raw(db)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"onts", "objects", "bindings", "binding_history", "orders", "order_events",
                "pushes", "allocations"} <= tables
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        schema_before = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    finally:
        conn.close()
    async with Store(db) as s:  # re-open: nothing applied again, data kept
        assert await s.schema_version() == len(MIGRATIONS)
        obj = await s.get_object("obj-1")
        assert obj is not None
        assert obj.address == "Main Street 1"
    conn = raw(db)
    try:
        assert conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() \
            == schema_before
    finally:
        conn.close()


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "agent.db"
    conn = raw(db)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this agent knows"):
        await Store(db).open()


async def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    s = Store(tmp_path / "agent.db")
    with pytest.raises(StoreError, match="not open"):
        await s.get_ont(S1)
    await s.open()
    with pytest.raises(StoreError, match="already open"):
        await s.open()
    await s.close()
    await s.close()  # idempotent
    with pytest.raises(StoreError, match="not open"):
        await s.list_onts()


async def test_foreign_keys_are_enforced(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.record_order_event("nope", "x", "y")
    with pytest.raises(NotFound):
        await store.begin_push("olt1", "d", order_id="nope")


# --- ONTs ---------------------------------------------------------------------------------------


async def test_upsert_ont_creates_updates_and_moves_not_duplicates(store: Store) -> None:
    first = await store.upsert_ont(S1, "olt1", "0/1/0", model="HG8245", firmware="V1",
                                   vendor="HWTC", onu_id=3)
    assert first.change == "created"
    assert first.ont.state is OntState.UP
    assert first.ont.first_seen is not None
    again = await store.upsert_ont(S1, "olt1", "0/1/0")
    assert again.change == "unchanged"
    assert again.ont.model == "HG8245"  # None keeps what is stored
    assert again.ont.onu_id == 3
    newer = await store.upsert_ont(S1, "olt1", "0/1/0", firmware="V2")
    assert newer.change == "updated"
    assert newer.ont.firmware == "V2"
    moved = await store.upsert_ont(S1, "olt2", "0/2/5")
    assert moved.change == "moved"
    assert (moved.previous_olt, moved.previous_pon_port) == ("olt1", "0/1/0")
    assert moved.ont.onu_id is None  # the old port's onu-id means nothing on the new one
    assert moved.ont.first_seen == first.ont.first_seen
    onts = await store.list_onts()
    assert [(o.serial, o.olt, o.pon_port) for o in onts] == [(S1, "olt2", "0/2/5")]
    assert await store.list_onts(olt="olt1") == ()
    assert len(await store.list_onts(olt="olt2", pon_port="0/2/5")) == 1
    assert await store.get_ont(S2) is None


async def test_ont_state_and_facts(store: Store) -> None:
    await store.upsert_ont(S1, "olt1", "0/1/0")
    ont = await store.set_ont_state(S1, OntState.ABSENT, "LOS")
    facts = ont.facts()
    assert (facts.present, facts.operational, facts.condition) == (False, False, "LOS")
    assert facts.since == ont.state_since
    same = await store.set_ont_state(S1, OntState.ABSENT, "LOS")
    assert same.state_since == ont.state_since  # unchanged condition keeps its start
    up = await store.upsert_ont(S1, "olt1", "0/1/0", state=OntState.UP)
    assert up.change == "updated"
    assert up.ont.facts().operational
    with pytest.raises(NotFound, match=S2):
        await store.set_ont_state(S2, OntState.UP)
    with pytest.raises(InvalidValue):
        await store.set_ont_state(S1, OntState.IMPORTED)


@pytest.mark.parametrize(("serial", "olt", "port"), [
    ("abcd0000a1b2", "olt1", "0/1/0"),
    ("ABCD0000A1B2<x/>", "olt1", "0/1/0"),
    (S1, "olt 1", "0/1/0"),
    (S1, "olt1", "0/1/0; reboot"),
])
async def test_upsert_ont_validates_identifiers(store: Store, serial: str, olt: str,
                                                port: str) -> None:
    with pytest.raises(InvalidValue):
        await store.upsert_ont(serial, olt, port)
    assert await store.list_onts() == ()


async def test_import_onts(store: Store) -> None:
    await store.upsert_ont(S3, "olt1", "0/1/1")  # already discovered
    changes = await store.import_onts([
        OntImport(S1, "olt1", "0/1/0", model='<b>"X"</b>'),
        OntImport(S3, "olt9", "0/9/9"),
    ])
    assert [c.change for c in changes] == ["created", "unchanged"]
    imported = await store.get_ont(S1)
    assert imported is not None
    assert imported.state is OntState.IMPORTED
    assert imported.model == '<b>"X"</b>'
    assert imported.first_seen is None
    assert not imported.facts().present
    assert "not yet discovered" in imported.facts().condition
    discovered = await store.get_ont(S3)
    assert discovered is not None
    assert (discovered.olt, discovered.pon_port) == ("olt1", "0/1/1")  # the network wins
    again = await store.import_onts([OntImport(S1, "olt1", "0/1/2")])
    assert again[0].change == "moved"
    seen = await store.upsert_ont(S1, "olt1", "0/1/2")
    assert seen.change == "updated"
    assert seen.ont.state is OntState.UP
    with pytest.raises(InvalidValue, match="twice"):
        await store.import_onts([OntImport(S2, "olt1", "0/1/0"), OntImport(S2, "olt1", "0/1/0")])
    assert await store.get_ont(S2) is None


# --- objects and bindings -----------------------------------------------------------------------


async def test_objects(store: Store) -> None:
    obj = await store.create_object("obj-1", "Rue de l'Église 3, <b>&</b>")
    assert obj.serial is None
    assert await store.create_object("obj-1", "Rue de l'Église 3, <b>&</b>") == obj
    with pytest.raises(Conflict, match="already exists"):
        await store.create_object("obj-1", "elsewhere")
    assert await store.get_object("obj-2") is None
    with pytest.raises(InvalidValue):
        await store.create_object("obj 2", "x")
    with pytest.raises(InvalidValue):
        await store.create_object("obj-2", "line\nbreak")
    with pytest.raises(InvalidValue):
        await store.create_object("obj-2", "  ")
    await store.create_object("obj-0", "Zero")
    assert [o.id for o in await store.list_objects()] == ["obj-0", "obj-1"]


async def test_bind_refuses_elsewhere_moves_and_unbinds(store: Store) -> None:
    for oid in ("obj-1", "obj-2"):
        await store.create_object(oid, f"address {oid}")
    with pytest.raises(NotFound, match="obj-9"):
        await store.bind("obj-9", S1)
    first = await store.bind("obj-1", S1)  # the ONT need not be discovered yet
    assert first.change == "bound"
    assert (await store.bind("obj-1", S1)).change == "unchanged"
    with pytest.raises(Conflict, match="already bound to object 'obj-1'"):
        await store.bind("obj-2", S1)
    moved = await store.bind("obj-2", S1, move=True)
    assert (moved.change, moved.previous_object) == ("moved", "obj-1")
    one = await store.get_object("obj-1")
    two = await store.get_object("obj-2")
    assert one is not None
    assert two is not None
    assert (one.serial, two.serial) == (None, S1)
    with pytest.raises(Conflict, match=f"already has ONT {S1}"):
        await store.bind("obj-2", S2)
    replaced = await store.bind("obj-2", S2, replace=True)
    assert replaced.replaced_serial == S1
    assert await store.binding_of_serial(S1) is None
    b = await store.binding_of_object("obj-2")
    assert b is not None
    assert b.serial == S2
    unbound = await store.unbind("obj-2")
    assert unbound is not None
    assert unbound.serial == S2
    assert await store.unbind("obj-2") is None
    history = await store.binding_history(serial=S1)
    assert [(h.object_id, h.action, h.other_object) for h in history] == [
        ("obj-1", "bound", None), ("obj-1", "moved-out", "obj-2"),
        ("obj-2", "moved-in", "obj-1"), ("obj-2", "replaced", None)]
    assert [h.action for h in await store.binding_history(object_id="obj-2")] == [
        "moved-in", "replaced", "bound", "unbound"]


# --- orders -------------------------------------------------------------------------------------


async def test_create_order_is_idempotent_on_external_reference(store: Store) -> None:
    made = await store.create_order("obj-1", "fibrenet", "internet", TOMORROW,
                                    external_ref="OSS-42")
    assert made.created
    assert made.order.id.startswith("ord-")
    again = await store.create_order("obj-1", "fibrenet", "internet", TOMORROW,
                                     external_ref="OSS-42")
    assert not again.created
    assert again.order == made.order
    with pytest.raises(Conflict, match="different content"):
        await store.create_order("obj-1", "fibrenet", "iptv", TOMORROW, external_ref="OSS-42")
    by_id = await store.create_order("obj-1", "speedy", "internet", NOW, order_id="ord-7")
    assert by_id.created
    assert not (await store.create_order("obj-1", "speedy", "internet", NOW,
                                         order_id="ord-7")).created
    with pytest.raises(Conflict):
        await store.create_order("obj-2", "speedy", "internet", NOW, order_id="ord-7")
    assert [o.id for o in await store.list_orders()] == [made.order.id, "ord-7"]
    assert await store.list_orders(object_id="obj-2") == ()
    assert len(await store.list_orders(object_id="obj-1", open_only=True)) == 2
    assert await store.get_order("ord-404") is None
    assert len(await store.order_events(made.order.id)) == 1  # no event for the replay
    with pytest.raises(InvalidValue, match="time zone"):
        await store.create_order("obj-1", "fibrenet", "internet", datetime(2026, 1, 1))
    with pytest.raises(InvalidValue):
        await store.create_order("obj-1", "fibre net", "internet", NOW)


async def test_order_lifecycle_and_history(store: Store) -> None:
    oid = (await store.create_order("obj-1", "fibrenet", "internet", YESTERDAY)).order.id
    await store.record_order_event(oid, Status.AWAITING_PROVISIONING, "ONT offline",
                                   ErrorClass.CONNECTION_ERROR)
    await store.record_order_event(oid, Status.ACTIVE, "verified")
    cancelled = await store.cancel(oid, "customer withdrew")
    assert cancelled.cancelled_at is not None
    assert await store.cancel(oid) == cancelled  # again: no-op
    with pytest.raises(InvalidTransition, match="cancelled"):
        await store.request_removal(oid)
    events = await store.order_events(oid)
    assert [(e.status, e.error_class) for e in events] == [
        ("created", None), ("awaiting-provisioning", ErrorClass.CONNECTION_ERROR),
        ("active", None), ("cancelled", None)]
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert all(a.at <= b.at for a, b in itertools.pairwise(events))
    assert events[-1].message == "cancelled: customer withdrew"
    assert await store.list_orders(open_only=True) == ()

    oid2 = (await store.create_order("obj-1", "fibrenet", "iptv", YESTERDAY)).order.id
    push = await store.begin_push("olt1", "sha256:ab", order_id=oid2)
    await store.finish_push(push, PushPhase.VERIFIED)
    with pytest.raises(InvalidTransition, match="request removal"):
        await store.cancel(oid2)
    with pytest.raises(InvalidTransition, match="no removal"):
        await store.mark_removed(oid2)
    req = await store.request_removal(oid2, "contract ended")
    assert req.removal_requested_at is not None
    assert await store.request_removal(oid2) == req
    with pytest.raises(InvalidTransition, match="terminated"):
        await store.cancel(oid2)
    done = await store.mark_removed(oid2)
    assert done.removed_at is not None
    assert await store.mark_removed(oid2) == done
    assert [e.status for e in await store.order_events(oid2)] == [
        "created", "removal-requested", "terminated"]
    with pytest.raises(NotFound):
        await store.cancel("ord-404")


async def test_order_events_are_append_only(store: Store, tmp_path: Path) -> None:
    oid = (await store.create_order("obj-1", "fibrenet", "internet", NOW)).order.id
    conn = raw(tmp_path / "agent.db")
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("UPDATE order_events SET message = 'x'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM order_events")
    finally:
        conn.close()
    assert len(await store.order_events(oid)) == 1


# --- pushes -------------------------------------------------------------------------------------


async def test_push_phases(store: Store) -> None:
    oid = (await store.create_order("obj-1", "fibrenet", "internet", NOW)).order.id
    pid = await store.begin_push("olt1", "sha256:01", order_id=oid)
    push = await store.get_push(pid)
    assert (push.phase, push.action, push.finished_at) == (PushPhase.INTENT_RECORDED,
                                                           PushAction.APPLY, None)
    assert isinstance(push.outcome(), PushInProgress)
    assert [p.id for p in await store.pending_pushes()] == [pid]
    await store.advance_push(pid, PushPhase.SENT)
    assert (await store.advance_push(pid, PushPhase.SENT)).phase is PushPhase.SENT  # replay
    await store.advance_push(pid, PushPhase.COMMITTED)
    with pytest.raises(InvalidTransition):
        await store.advance_push(pid, PushPhase.SENT)
    done = await store.finish_push(pid, PushPhase.VERIFIED, message="read back equal")
    assert done.finished_at is not None
    assert isinstance(done.outcome(), PushVerified)
    assert await store.pending_pushes() == ()
    with pytest.raises(InvalidTransition, match="cannot go from verified"):
        await store.finish_push(pid, PushPhase.FAILED, error_class=ErrorClass.REJECTED)

    bad = await store.begin_push("olt1", "sha256:02", order_id=oid, action=PushAction.REMOVE)
    with pytest.raises(InvalidValue, match="needs an error class"):
        await store.finish_push(bad, PushPhase.FAILED)
    with pytest.raises(InvalidValue):
        await store.finish_push(bad, PushPhase.SENT)
    with pytest.raises(InvalidValue):
        await store.finish_push(bad, PushPhase.VERIFIED, error_class=ErrorClass.REJECTED)
    failed = await store.finish_push(bad, PushPhase.ROLLED_BACK, error_class=ErrorClass.REJECTED,
                                     message="%Error: vlan 100 <in use>")
    outcome = failed.outcome()
    assert isinstance(outcome, PushFailed)
    assert outcome.message == "%Error: vlan 100 <in use>"
    assert [p.id for p in await store.pushes_of(oid)] == [pid, bad]
    batch = await store.begin_push("olt1", "sha256:03")  # a batch push, no single order
    assert (await store.get_push(batch)).order_id is None
    with pytest.raises(NotFound):
        await store.get_push(9999)


async def test_order_facts_feed_compute_status(store: Store) -> None:
    catalog = await asyncio.to_thread(load_catalog)
    oid = (await store.create_order("obj-1", "fibrenet", "internet", YESTERDAY)).order.id
    facts = await store.order_facts(oid, catalog)
    assert not facts.object_exists
    assert compute_status(facts, NOW).status is Status.AWAITING_PREREQUISITES
    await store.create_object("obj-1", "Main Street 1")
    await store.bind("obj-1", S1)
    facts = await store.order_facts(oid, catalog)
    assert (facts.ont_serial, facts.ont) == (S1, None)
    await store.upsert_ont(S1, "olt1", "0/1/0")
    facts = await store.order_facts(oid, catalog)
    assert facts.push == NoPush()
    assert compute_status(facts, NOW).status is Status.AWAITING_PROVISIONING
    pid = await store.begin_push("olt1", "sha256:aa", order_id=oid)
    await store.finish_push(pid, PushPhase.VERIFIED)
    assert compute_status(await store.order_facts(oid, catalog), NOW).status is Status.ACTIVE
    await store.request_removal(oid)
    facts = await store.order_facts(oid, catalog)
    assert facts.push == NoPush()  # the removal push, not the apply push
    assert compute_status(facts, NOW).status is Status.AWAITING_PROVISIONING


# --- allocations --------------------------------------------------------------------------------


def serial(i: int) -> str:
    return f"ABCD{i:08X}"


async def test_allocations_stable_unique_and_exhausted(store: Store, tmp_path: Path) -> None:
    allocs = [await store.allocate("olt1", "0/1/0", serial(i)) for i in range(128)]
    assert sorted(a.onu_id for a in allocs) == list(range(128))
    with pytest.raises(AllocationExhausted, match=r"olt1 port 0/1/0 has no free onu-id"):
        await store.allocate("olt1", "0/1/0", serial(500))
    other_port = await store.allocate("olt1", "0/1/1", serial(500))
    assert other_port.onu_id == 0
    other_olt = await store.allocate("olt2", "0/1/0", serial(501))
    assert other_olt.onu_id == 0
    with pytest.raises(Conflict, match="release it there first"):
        await store.allocate("olt1", "0/1/1", serial(5))
    # stable across a restart
    await store.close()
    async with Store(tmp_path / "agent.db") as again:
        assert await again.allocate("olt1", "0/1/0", serial(5)) == allocs[5]
        freed = await again.release(serial(5))
        assert freed == allocs[5]
        assert await again.release(serial(5)) is None
        assert await again.get_allocation(serial(5)) is None
        reused = await again.allocate("olt1", "0/1/0", serial(999))
        assert reused.onu_id == allocs[5].onu_id
    await store.open()  # the fixture closes it


# --- durability ---------------------------------------------------------------------------------

CHILD = """
import asyncio, sys
from datetime import UTC, datetime
from agent.store import OntImport, Store

async def main(db: str) -> None:
    async with Store(db) as s:
        oid = (await s.create_order("obj-1", "fibrenet", "internet", datetime.now(UTC),
                                    external_ref="OSS-1")).order.id
        pid = await s.begin_push("olt1", "sha256:cafe", order_id=oid)
        print(pid, flush=True)
        batch = 0
        while True:  # all-or-nothing batches until killed
            rows = [OntImport(f"BTCH{batch:04X}{i:04X}", "olt1", "0/1/0", model=str(batch))
                    for i in range(300)]
            await s.import_onts(rows)
            await s.record_order_event(oid, "progress", f"batch {batch}")
            if batch == 0:
                print("batching", flush=True)
            batch += 1

asyncio.run(main(sys.argv[1]))
"""


async def test_kill_9_mid_push_loses_nothing_and_leaves_nothing_half_written(
        tmp_path: Path) -> None:
    db = tmp_path / "agent.db"
    script = tmp_path / "child.py"
    await asyncio.to_thread(script.write_text, CHILD)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), str(db), cwd=REPO, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    try:
        pid_line = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert (await asyncio.wait_for(proc.stdout.readline(), 20)).strip() == b"batching"
        await asyncio.sleep(0.3)  # somewhere in the middle of a batch
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    push_id = int(pid_line)
    async with Store(db) as s:
        pending = await s.pending_pushes()
        assert [(p.id, p.phase, p.payload_digest) for p in pending] == [
            (push_id, PushPhase.INTENT_RECORDED, "sha256:cafe")]
        order_id = pending[0].order_id
        assert order_id is not None
        events = await s.order_events(order_id)
        onts = await s.list_onts()
    assert events[0].status == "created"
    batches: dict[str, int] = {}
    for ont in onts:
        batches[ont.model] = batches.get(ont.model, 0) + 1
    assert batches
    assert set(batches.values()) == {300}  # whole batches only
    progress = [e.message for e in events if e.status == "progress"]
    assert len(batches) - len(progress) in (0, 1)  # an import committed, its event not yet
    conn = raw(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


# --- concurrency and the event loop -------------------------------------------------------------


async def test_concurrent_writers_lose_no_updates(tmp_path: Path) -> None:
    db = tmp_path / "agent.db"
    async with Store(db) as a, Store(db) as b:  # two connections on one file, plus many tasks
        oid = (await a.create_order("obj-1", "fibrenet", "internet", NOW)).order.id

        async def work(s: Store, i: int) -> None:
            await s.record_order_event(oid, "step", f"task {i}")
            await s.allocate("olt1", f"0/1/{i % 2}", serial(i))
            await s.create_order("obj-1", "fibrenet", "iptv", NOW, order_id=f"ord-{i}")
            await s.allocate_service(f"ord-{i}", "olt1")
            await s.upsert_ont(serial(i), "olt1", f"0/1/{i % 2}")

        await asyncio.gather(*(work(a if i % 2 else b, i) for i in range(100)))
        events = await b.order_events(oid)
        assert sorted(e.message for e in events if e.status == "step") == sorted(
            f"task {i}" for i in range(100))
        allocs = [await a.get_allocation(serial(i)) for i in range(100)]
        assert all(x is not None for x in allocs)
        pairs = {(x.pon_port, x.onu_id) for x in allocs if x is not None}
        assert len(pairs) == 100
        services = [await a.get_service_allocation(f"ord-{i}") for i in range(100)]
        assert len({x.gemport for x in services if x is not None}) == 100
        assert len(await a.list_onts()) == 100


async def test_waiting_for_a_locked_database_does_not_block_the_loop(tmp_path: Path) -> None:
    db = tmp_path / "agent.db"
    async with Store(db) as s:
        blocker = raw(db)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            write = asyncio.create_task(s.create_object("obj-1", "Main Street 1"))
            ticks = 0
            start = time.monotonic()
            while time.monotonic() - start < 1.5:
                await asyncio.sleep(0.01)
                ticks += 1
            assert not write.done()
            assert ticks > 50  # the loop kept running while the store waited for the lock
        finally:
            blocker.execute("COMMIT")
            blocker.close()
        obj = await write
        assert obj.id == "obj-1"


async def test_reads_see_every_acknowledged_write_and_a_loop_of_reads_lets_others_run(
        store: Store) -> None:
    """Reads run in the event loop on their own connection: each sees the writes whose callers
    have resumed, cannot write, and a long run of them yields to other tasks now and then."""
    for n in range(40):
        await store.upsert_ont(f"ABCD{n:08X}", "olt1", "0/1/0")
        assert (await store.get_ont(f"ABCD{n:08X}")) is not None  # no lag behind the writer
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await store.read(lambda c: c.execute("DELETE FROM onts"))
    assert len(await store.list_onts()) == 40
    ran: list[int] = []

    async def other() -> None:
        ran.append(len(ran))

    reads = 0
    task = asyncio.create_task(other())
    while not ran:
        await store.get_ont(S1)  # nothing else in this loop gives the task a turn
        reads += 1
        assert reads <= 64, "a run of reads never let another task run"
    await task


async def test_every_order_facts_and_push_totals_match_the_per_order_reads(
        store: Store) -> None:
    """The metrics' bulk snapshot says what the per-order reads say, order by order: no
    object, unbound, bound to an ONT, pushed and verified, failed, pending, removal requested,
    cancelled, and a push that names no order (left out of the totals)."""
    catalog = await asyncio.to_thread(load_catalog)
    await store.upsert_ont(S1, "olt1", "0/1/0")
    await store.upsert_ont(S2, "olt2", "0/1/1", state=OntState.ABSENT)
    for obj, serial in (("obj-a", S1), ("obj-b", S2), ("obj-c", None)):
        await store.create_object(obj, f"{obj} street")
        if serial is not None:
            await store.bind(obj, serial)
    made = [(await store.create_order(obj, isp, svc, when)).order.id for obj, isp, svc, when in (
        ("obj-a", "fibrenet", "internet", YESTERDAY), ("obj-b", "speedy", "internet", TOMORROW),
        ("obj-c", "fibrenet", "iptv", YESTERDAY), ("obj-none", "fibrenet", "internet",
                                                    YESTERDAY),
        ("obj-a", "speedy", "voip", YESTERDAY), ("obj-b", "fibrenet", "internet", YESTERDAY))]
    verified = await store.begin_push("olt1", "sha256:a", order_id=made[0])
    await store.finish_push(verified, PushPhase.VERIFIED)
    failed = await store.begin_push("olt2", "sha256:b", order_id=made[1])
    await store.finish_push(failed, PushPhase.FAILED, error_class=ErrorClass.CONNECTION_ERROR,
                            message="no route")
    await store.begin_push("olt1", "sha256:c", order_id=made[4])  # left pending
    await store.request_removal(made[0], "moving out")
    await store.cancel(made[5], "changed their mind")
    await store.begin_push("olt1", "sha256:d")  # names no order
    bulk = await store.every_order_facts(catalog)
    one_by_one = tuple([await store.order_facts(o.id, catalog)
                        for o in await store.list_orders()])
    assert bulk == one_by_one
    assert {f.order_id for f in bulk} == set(made)
    totals = await store.push_totals()
    assert totals.by_phase == {"verified": 1, "failed": 1, "intent-recorded": 1}
    assert totals.errors == {"connection-error": 1}
    assert totals.finished == 2
    assert 0.0 <= totals.seconds < 60.0
