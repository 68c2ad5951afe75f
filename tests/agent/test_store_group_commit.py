"""The store's group commit: writes that queue up share one transaction, each in its own
savepoint, so a failing write is undone alone and the others are committed."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from agent.store import Store


class Boom(Exception):
    pass


async def test_concurrent_writes_commit_together_and_a_failure_is_undone_alone(
        tmp_path: Path) -> None:
    async with Store(tmp_path / "s.sqlite3") as store:

        def half_then_fail(c: sqlite3.Connection) -> None:
            c.execute("INSERT INTO objects (id, address, created_at) VALUES ('bad', 'x', 'now')")
            raise Boom("after a partial write")

        writes = [store.create_object(f"obj-{i}", f"{i} Fibre Lane") for i in range(40)]
        results = await asyncio.gather(*writes[:20], store.write(half_then_fail), *writes[20:],
                                       return_exceptions=True)
        assert isinstance(results[20], Boom)
        assert all(not isinstance(r, BaseException) for i, r in enumerate(results) if i != 20)
        ids = {o.id for o in await store.list_objects()}
        assert ids == {f"obj-{i}" for i in range(40)}  # 'bad' was rolled back with its write
        # A constraint violation inside one write of a group fails only that write.
        again = await asyncio.gather(store.create_object("obj-41", "41 Fibre Lane"),
                                     store.write(lambda c: c.execute(
                                         "INSERT INTO objects (id, address, created_at)"
                                         " VALUES ('obj-0', 'dup', 'now')")),
                                     return_exceptions=True)
        assert isinstance(again[1], sqlite3.IntegrityError)
        assert (await store.get_object("obj-41")) is not None
        assert (await store.get_object("obj-0")).address == "0 Fibre Lane"  # type: ignore[union-attr]


async def test_a_write_after_close_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite3")
    await store.open()
    await store.close()
    with pytest.raises(Exception, match="not open"):
        await store.create_object("obj-1", "1 Fibre Lane")
