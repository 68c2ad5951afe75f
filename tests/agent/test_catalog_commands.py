"""``ponctl catalog``: show, check and resolve through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.agent.test_phan_commands import ponctl


def test_show_check_resolve() -> None:
    shown = ponctl("catalog", "show")
    assert shown.returncode == 0, shown.stderr
    assert "fibrenet" in shown.stdout
    ok = ponctl("catalog", "resolve", "fibrenet", "internet", "olt1", "--output", "json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) | {"c_vlan": 100, "s_vlan": 1000} == json.loads(ok.stdout)
    gap = ponctl("catalog", "resolve", "speedy", "iptv", "olt1")
    assert gap.returncode == 2
    assert "ISP 'speedy' has no VLAN for service type 'iptv'" in gap.stdout


def test_bad_catalog_names_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "catalog.yaml"
    bad.write_text("isps: 7\n")
    run = ponctl("catalog", "check", "--file", str(bad))
    assert run.returncode == 1
    assert f"{bad}: " in run.stderr
