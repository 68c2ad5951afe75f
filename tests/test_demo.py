"""``ponctl demo`` end to end: the lab and the agent in one process, every order ending as
the demo expects (active with PHAN URLs written, awaiting activation, awaiting prerequisites,
configuration missing, a connection error that clears, a mismatch healed by a resend)."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest

from demo.run import CASES, run_demo


@pytest.mark.timeout(120)
async def test_demo_ends_with_every_order_as_expected(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    base = f"127.{random.randint(64, 250)}.0.0"
    code = await run_demo(tmp_path, plug_interval=0.05, live=False, address_base=base)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "every order ended as expected" in out
    db = sqlite3.connect(tmp_path / "ponctl-demo.sqlite3")
    try:
        written = db.execute("SELECT COUNT(*) FROM gateway_state WHERE phase = 'written'"
                             " AND desired_url != ''").fetchone()[0]
        mismatches = db.execute("SELECT COUNT(*) FROM pushes WHERE error_class = 'mismatch'"
                                ).fetchone()[0]
        history = [r[0] for r in db.execute(
            "SELECT DISTINCT error_class FROM order_events WHERE error_class IS NOT NULL")]
    finally:
        db.close()
    assert written == sum(1 for c in CASES if c.expect == "active")
    assert mismatches == 1
    assert {"connection-error", "configuration-missing", "mismatch"} <= set(history)
