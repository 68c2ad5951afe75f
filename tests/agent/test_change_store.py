"""Store.change_order: in place before any push, a successor after one; idempotent; refused
for closed orders; the external reference moves to the successor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.store import InvalidTransition, InvalidValue, PushPhase, Store

NOW = datetime.now(UTC)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "agent.db") as s:
        yield s


async def test_a_pushed_order_is_replaced_by_a_successor(store: Store) -> None:
    oid = (await store.create_order("obj-1", "fibrenet", "internet", NOW,
                                    external_ref="OSS-1")).order.id
    pid = await store.begin_push("olt1", "sha256:aa", order_id=oid)
    await store.finish_push(pid, PushPhase.VERIFIED)
    done = await store.change_order(oid, service_type="iptv", reason="wants TV",
                                    successor_id="ord-new")
    assert (done.replaced, done.changed, done.order.id) == (True, True, "ord-new")
    assert (done.order.isp, done.order.service_type, done.order.start_at) == (
        "fibrenet", "iptv", done.previous.start_at)
    assert done.order.external_ref == "OSS-1"
    assert done.previous.external_ref is None
    assert done.previous.removal_requested_at is not None
    # the OSS's reference now finds the order that carries the service
    again = await store.create_order("obj-1", "fibrenet", "iptv", NOW, external_ref="OSS-1")
    assert (again.created, again.order.id) == (False, "ord-new")
    # the same change again returns the first one; another one must go to the successor
    repeat = await store.change_order(oid, service_type="iptv")
    assert (repeat.changed, repeat.order.id) == (False, "ord-new")
    with pytest.raises(InvalidTransition, match="change that order instead"):
        await store.change_order(oid, service_type="voip")
    assert await store.successor_of(oid) == "ord-new"
    assert [o.id for o in await store.list_orders(open_only=True)] == [oid, "ord-new"]


async def test_refusals_write_nothing(store: Store) -> None:
    oid = (await store.create_order("obj-1", "fibrenet", "internet", NOW)).order.id
    with pytest.raises(InvalidValue, match="needs a new ISP or a new service type"):
        await store.change_order(oid)
    with pytest.raises(InvalidValue, match="nothing to change"):
        await store.change_order(oid, isp="fibrenet", service_type="internet")
    with pytest.raises(InvalidValue, match="service type"):
        await store.change_order(oid, service_type="not valid!")
    assert [e.status for e in await store.order_events(oid)] == ["created"]
    await store.cancel(oid)
    with pytest.raises(InvalidTransition, match="cancelled"):
        await store.change_order(oid, service_type="iptv")
    other = (await store.create_order("obj-2", "fibrenet", "internet", NOW)).order.id
    await store.request_removal(other)
    with pytest.raises(InvalidTransition, match="terminated"):
        await store.change_order(other, service_type="iptv")
