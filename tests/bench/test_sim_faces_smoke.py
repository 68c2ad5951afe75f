"""bench/sim_faces.py runs end to end at a tiny size: both NETCONF servers (the simulator's and
the bare ceiling) answer the driver, and the simulator's SNMP agent, snmpsim (serving the
.snmprec generated from the simulator) and net-snmp snmpd answer every row. A smoke test of
the benchmark, not a measurement: nothing about speed is asserted."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(60)
def test_the_benchmark_runs_every_row_at_a_tiny_size(tmp_path: Path) -> None:
    for module in ("snmpsim", "pysmi"):  # not imported here: the benchmark runs snmpsim
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (the bench and test extras have it)")
    if shutil.which("snmpd") is None and not Path("/usr/sbin/snmpd").exists():
        pytest.skip("net-snmp snmpd is not installed")
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "sim_faces.py"), "--repeat", "1",
         "--requests", "20", "--depths", "4", "--netconf-onts", "2", "--snmp-onts", "8",
         "--snmp-requests", "16", "--concurrency", "4", "--walks", "1",
         "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=55, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "sim_faces.json").read_text())

    netconf = report["netconf"]["2 ONTs"]
    assert netconf["reply_bytes"] > 0
    for name in ("simulator", "ceiling"):
        for mode in ("driver sequential", "driver pipelined 4"):
            assert netconf["results"][f"{mode} {name}"]["rpc_per_s"] > 0

    snmp = report["snmp"]
    assert snmp["table_varbinds"] == 8 * 9  # nine columns per ONT
    agents = {row["agent"] for row in snmp["rows"]}
    assert agents == {"simulator", "snmpsim", "net-snmp snmpd"}
    walks = {row["agent"]: row["varbinds_per_request"] for row in snmp["rows"]
             if row["request"] == "walk ponctlOntTable"}
    # snmpsim serves exactly the table the simulator does
    assert walks == {"simulator": 72, "snmpsim": 72}
    assert "| simulator | GET sysDescr.0 |" in proc.stdout
