"""``ponctl catalog``: show, check and resolve through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.agent.test_phan_commands import ponctl
from tests.conftest import REPO

CATALOG = str(REPO / "configs" / "catalog.yaml")


def test_show_check_resolve_from_the_file() -> None:
    """``--file``: the file mode (no agent); the API mode is tested in test_inventory_api."""
    shown = ponctl("catalog", "show", "--file", CATALOG)
    assert shown.returncode == 0, shown.stderr
    assert "fibrenet" in shown.stdout
    assert "1000-1009, 2000, 3000" in shown.stdout  # olt1's uplink
    ok = ponctl("catalog", "resolve", "fibrenet", "internet", "olt1", "--output", "json",
                "--file", CATALOG)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) | {"c_vlan": 100, "s_vlan": 1000} == json.loads(ok.stdout)
    gap = ponctl("catalog", "resolve", "speedy", "iptv", "olt1", "-f", CATALOG)
    assert gap.returncode == 2
    assert "ISP 'speedy' has no VLAN for service type 'iptv'" in gap.stdout
    gaps = ponctl("catalog", "resolve", "speedy", "iptv", "olt1", "-f", CATALOG, "-o", "json")
    assert gaps.returncode == 2
    assert [m["kind"] for m in json.loads(gaps.stdout)["missing"]] == ["isp-vlan-missing"]
    assert ponctl("catalog", "check").returncode == 0  # check reads the checkout's file


def test_show_and_resolve_ask_the_agent_by_default() -> None:
    env = {"PONCTL_API": "http://127.0.0.1:9", "PONCTL_TOKEN": "t"}  # nothing listens there
    for args in (("show",), ("resolve", "speedy", "iptv", "olt1")):
        run = ponctl("catalog", *args, env=env)
        assert run.returncode == 1, run.stdout
        assert "cannot reach the agent at http://127.0.0.1:9" in run.stderr


def test_bad_catalog_names_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "catalog.yaml"
    bad.write_text("isps: 7\n")
    run = ponctl("catalog", "check", "--file", str(bad))
    assert run.returncode == 1
    assert f"{bad}: " in run.stderr
