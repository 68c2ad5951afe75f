"""Per-service allocation in the store: the ONT's onu-id, each order's own GEM port and
alloc-id, stable across a reopen, released apart, and the migration from the version-1 schema
(one GEM port and alloc-id per ONT)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.store import (
    ALLOC_IDS,
    GEMPORTS,
    MIGRATIONS,
    AllocationExhausted,
    Conflict,
    NotFound,
    Store,
)

S1 = "ABCD0000A1B2"
S2 = "ABCD0000A1B3"
NOW = datetime.now(UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "agent.db") as s:
        yield s


async def two_orders(store: Store) -> tuple[str, str]:
    await store.create_object("obj-1", "12 Fibre Lane")
    await store.bind("obj-1", S1)
    a = (await store.create_order("obj-1", "fibrenet", "internet", NOW)).order.id
    b = (await store.create_order("obj-1", "fibrenet", "iptv", NOW)).order.id
    return a, b


async def test_each_order_of_one_ont_gets_its_own_gemport_and_alloc_id(
        store: Store, tmp_path: Path) -> None:
    internet, iptv = await two_orders(store)
    ont = await store.allocate("olt1", "0/1/0", S1)
    first = await store.allocate_service(internet, "olt1")
    second = await store.allocate_service(iptv, "olt1")
    assert first.gemport != second.gemport
    assert first.alloc_id != second.alloc_id
    assert {first.gemport, second.gemport} <= set(GEMPORTS)
    assert {first.alloc_id, second.alloc_id} <= set(ALLOC_IDS)
    # per OLT: another OLT starts from the bottom of the range again
    await store.create_order("obj-2", "fibrenet", "internet", NOW, order_id="ord-other-olt")
    other = await store.allocate_service("ord-other-olt", "olt2")
    assert (other.gemport, other.alloc_id) == (first.gemport, first.alloc_id)
    with pytest.raises(Conflict, match="release them there first"):
        await store.allocate_service(internet, "olt2")
    with pytest.raises(NotFound):
        await store.allocate_service("ord-nope", "olt1")

    await store.close()  # stable across a restart
    async with Store(tmp_path / "agent.db") as again:
        assert await again.allocate("olt1", "0/1/0", S1) == ont
        assert await again.allocate_service(internet, "olt1") == first
        assert await again.allocate_service(iptv, "olt1") == second
        # releasing one service leaves the other's numbers and the ONT's onu-id alone
        assert await again.release_service(internet) == first
        assert await again.release_service(internet) is None
        assert await again.get_service_allocation(internet) is None
        assert await again.get_service_allocation(iptv) == second
        assert await again.get_allocation(S1) == ont
        # the freed numbers are handed out again
        await again.create_order("obj-1", "fibrenet", "voip", NOW, order_id="ord-voip")
        reused = await again.allocate_service("ord-voip", "olt1")
        assert (reused.gemport, reused.alloc_id) == (first.gemport, first.alloc_id)
    await store.open()  # the fixture closes it


async def test_gemports_run_out_per_olt(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("agent.store.GEMPORTS", range(1024, 1026))
    for i in range(3):
        await store.create_order("obj-1", "fibrenet", "internet", NOW, order_id=f"ord-{i}")
    await store.allocate_service("ord-0", "olt1")
    await store.allocate_service("ord-1", "olt1")
    with pytest.raises(AllocationExhausted, match="OLT olt1 has no free GEM port"):
        await store.allocate_service("ord-2", "olt1")
    assert (await store.allocate_service("ord-2", "olt2")).gemport == 1024


def version_1_database(path: Path) -> None:
    """A database as the version-1 agent left it: ONT S1 bound to obj-1 with one GEM port and
    alloc-id; obj-1 has a cancelled order (older), then an open one, then a newer open one;
    ONT S2 holds numbers but is bound to nothing."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def at(minutes: int) -> str:
        return (t0 + timedelta(minutes=minutes)).isoformat()

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.executescript(MIGRATIONS[0])
        conn.execute("PRAGMA user_version = 1")
        conn.execute("INSERT INTO objects VALUES ('obj-1', '12 Fibre Lane', ?)", (at(0),))
        conn.execute("INSERT INTO bindings VALUES ('obj-1', ?, ?)", (S1, at(0)))
        for oid, service, minutes, cancelled in (("ord-cancelled", "voip", 1, at(2)),
                                                 ("ord-first", "internet", 3, None),
                                                 ("ord-later", "iptv", 4, None)):
            conn.execute("INSERT INTO orders (id, object_id, isp, service_type, start_at,"
                         " created_at, cancelled_at) VALUES (?, 'obj-1', 'fibrenet', ?, ?, ?, ?)",
                         (oid, service, at(minutes), at(minutes), cancelled))
        conn.execute("INSERT INTO allocations VALUES (?, 'olt1', '0/1/0', 7, 1500, 2500, ?)",
                     (S1, at(5)))
        conn.execute("INSERT INTO allocations VALUES (?, 'olt1', '0/1/1', 7, 1501, 2501, ?)",
                     (S2, at(5)))
    finally:
        conn.close()


async def test_migration_from_version_1_moves_the_numbers_to_the_earliest_open_order(
        tmp_path: Path) -> None:
    db = tmp_path / "agent.db"
    version_1_database(db)
    async with Store(db) as s:
        assert await s.schema_version() == len(MIGRATIONS)
        ont = await s.get_allocation(S1)
        assert ont is not None
        assert (ont.olt, ont.pon_port, ont.onu_id) == ("olt1", "0/1/0", 7)
        svc = await s.get_service_allocation("ord-first")
        assert svc is not None
        assert (svc.olt, svc.gemport, svc.alloc_id) == ("olt1", 1500, 2500)
        assert await s.get_service_allocation("ord-cancelled") is None
        assert await s.get_service_allocation("ord-later") is None
        # an ONT bound to no object keeps its onu-id; its GEM port had no order to go to
        unbound = await s.get_allocation(S2)
        assert unbound is not None
        assert unbound.onu_id == 7
        # the migrated numbers are taken: the next service gets fresh ones
        fresh = await s.allocate_service("ord-later", "olt1")
        assert (fresh.gemport, fresh.alloc_id) == (GEMPORTS[0], ALLOC_IDS[0])
        assert await s.allocate_service("ord-first", "olt1") == svc
    conn = sqlite3.connect(db)
    try:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(allocations)")]
        assert cols == ["serial", "olt", "pon_port", "onu_id", "allocated_at"]
    finally:
        conn.close()


async def test_a_cancelled_order_gives_its_numbers_back_unless_a_push_is_in_flight(
        store: Store) -> None:
    internet, iptv = await two_orders(store)
    reserved = await store.allocate_service(internet, "olt1")  # e.g. by a dry run
    await store.cancel(internet, "customer changed their mind")
    assert await store.get_service_allocation(internet) is None
    again = await store.allocate_service(iptv, "olt1")
    assert (again.gemport, again.alloc_id) == (reserved.gemport, reserved.alloc_id)
    # a push in flight (a crash left it pending): its numbers stay until it is resolved
    await store.create_order("obj-1", "fibrenet", "voip", NOW, order_id="ord-voip")
    await store.allocate_service("ord-voip", "olt1")
    await store.begin_push("olt1", "sha256:x", order_id="ord-voip")
    await store.cancel("ord-voip")
    assert await store.get_service_allocation("ord-voip") is not None


async def test_onu_ids_held_on_the_device_are_not_handed_out_again(store: Store) -> None:
    """An ONU provisioned before the agent (discovery reported its onu-id) keeps its number:
    another ONT of the port gets the next free one; other ports are not affected; once the
    agent released a number it allocated itself, the ONT's stale report does not block it."""
    await store.upsert_ont("HWTC00000001", "olt1", "0/1/0", onu_id=0)  # by hand, before us
    await store.upsert_ont("HWTC00000003", "olt1", "0/1/0", onu_id=2)
    await store.upsert_ont("HWTC00000002", "olt1", "0/1/0")  # unclaimed: no number
    got = await store.allocate("olt1", "0/1/0", "HWTC00000002")
    assert got.onu_id == 1
    nxt = await store.allocate("olt1", "0/1/0", "HWTC00000009")
    assert nxt.onu_id == 3  # 0 and 2 are the device's, 1 ours
    assert (await store.allocate("olt1", "0/1/1", "HWTC00000008")).onu_id == 0
    # The ONT with its registration on the device reports the number we gave it; releasing
    # it (its registration removed) frees the number for the next ONT.
    await store.upsert_ont("HWTC00000002", "olt1", "0/1/0", onu_id=1)
    assert (await store.release("HWTC00000002")) is not None
    ont = await store.get_ont("HWTC00000002")
    assert ont is not None
    assert ont.onu_id is None
    assert (await store.allocate("olt1", "0/1/0", "HWTC00000007")).onu_id == 1
