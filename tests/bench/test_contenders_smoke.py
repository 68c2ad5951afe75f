"""bench/contenders.py runs end to end at a tiny size: every contender and every protocol row
pushes against the simulator (in its subprocess) and the simulator then holds what was pushed.
A smoke test of the benchmark, not a measurement: nothing about speed is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_the_benchmark_runs_every_row_at_a_tiny_size(tmp_path: Path) -> None:
    pytest.importorskip("nornir", reason="the bench extra is not installed")
    pytest.importorskip("netmiko", reason="the bench extra is not installed")
    pytest.importorskip("ncclient", reason="the bench extra is not installed")
    # The two parts side by side (each starts a fresh simulator process per row).
    procs = [subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "contenders.py"), part, "--repeat", "1",
         "--olts", "1", "--onts", "2", "--gateways", "1", "--out", str(tmp_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for part in ("contenders", "per-protocol")]
    stdout = ""
    for proc in procs:
        out, err = proc.communicate(timeout=110)
        assert proc.returncode == 0, err[-3000:]
        stdout += out
    contenders = json.loads((tmp_path / "contenders.json").read_text())["results"]
    assert len(contenders) == 9
    assert any(name.startswith("Nornir + netconf-client") for name in contenders)
    assert any("netmiko" in name for name in contenders)
    per_protocol = json.loads((tmp_path / "per_protocol.json").read_text())["results"]
    assert len(per_protocol) == 7
    for name, row in {**contenders, **per_protocol}.items():
        assert row["failed_per_run"] == [0], (name, row["errors_sample"])
        assert (row.get("onts_per_run") or row.get("writes_per_run")) > 0, name
    assert "| contender" in stdout
    assert "| ponctl" in stdout
