"""bench/mass_activation.py runs end to end at a tiny size: a simulator and an agent in their
own processes, ONTs set up through the API and plugged in through the lab's control endpoint,
every order active and every PHAN URL written, and a few single activations. A smoke test of
the benchmark, not a measurement: nothing about speed is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(60)
def test_the_benchmark_activates_every_ont_at_a_tiny_size(tmp_path: Path) -> None:
    out = tmp_path / "mass.json"
    # Its own address range and a small lab: it may run beside a real bench run.
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "mass_activation.py"), "--sizes", "8",
         "--repeat", "1", "--single", "2", "--single-pause", "0.05", "--onts-per-port", "1",
         "--address-base", "127.79.0.0", "--timeout", "25", "--output", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=55, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    (run,) = report["runs"]["8"]
    assert run["onts"] == 8
    assert run["failures"] == {"orders_not_active": 0, "gateway_states_not_written": 0,
                               "onts_not_serving": 0, "gateways_without_url": 0}
    assert run["pushes"] >= 1
    assert run["agent_peak_rss_mib"] > 0
    assert run["agent_cpu_s"] >= 0
    assert run["metrics_scrape"]["bytes"] > 0  # /metrics answered 200 with every order stored
    assert report["single"]["runs"][0]["samples"] == 2
    assert "| ONTs" in proc.stdout
    assert "single activation" in proc.stdout
