"""``ponctl onts`` and ``ponctl objects`` offline (``--db``) through the real command line (a
subprocess running the typer apps of ``agent.inventory_commands``): exit codes, tables, JSON and
the store file. The default mode, through the agent's API, is tested in test_inventory_api."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from agent.store import OntState, Store
from tests.conftest import REPO


def run(group: str, *args: str) -> subprocess.CompletedProcess[str]:
    name = "app" if group == "onts" else "objects_app"
    code = f"from agent.inventory_commands import {name}; {name}(prog_name='ponctl {group}')"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, text=True,
                          capture_output=True, check=False, timeout=60,
                          env={**os.environ, "COLUMNS": "250"})


def onts(*args: str) -> subprocess.CompletedProcess[str]:
    return run("onts", *args)


def objects(*args: str) -> subprocess.CompletedProcess[str]:
    return run("objects", *args)


async def _stored(db: Path) -> dict[str, tuple[str, str, OntState]]:
    async with Store(db) as s:
        return {o.serial: (o.olt, o.pon_port, o.state) for o in await s.list_onts()}


def stored(db: Path) -> dict[str, tuple[str, str, OntState]]:
    return asyncio.run(_stored(db))


def test_import_reports_each_row_and_exit_codes(tmp_path: Path) -> None:
    db = str(tmp_path / "inv.sqlite3")
    good = tmp_path / "good.csv"
    good.write_text("serial,olt,pon_port,model\nhwtc1a2b3c4d,olt1,0/1/1,HG8245H\n"
                    "ALCLB2C3D4E5,olt1,0/1/1,\n")
    done = onts("import", str(good), "--db", db)
    assert done.returncode == 0, done.stderr
    assert "HWTC1A2B3C4D" in done.stdout
    assert "imported (created)" in done.stdout
    assert "2 row(s) imported, 0 rejected" in done.stdout

    mixed = tmp_path / "mixed.csv"
    mixed.write_text("serial,olt,pon_port\nABCD0000E001,olt2,0/1/0\n"
                     "NOPE,olt1,0/1/1\nABCD0000E002,olt1,9/9/x\nABCD0000E001,olt2,0/1/0\n"
                     "HWTC1A2B3C4D,olt1,0/1/3\n")
    some = onts("import", str(mixed), "--db", db)
    assert some.returncode == 2, some.stderr
    out = some.stdout
    assert "rejected" in out
    assert "ONT serial 'NOPE' is invalid" in out
    assert "PON port '9/9/x' is invalid" in out
    assert "duplicate: serial ABCD0000E001 is already on line 2" in out
    assert "imported (moved)" in out  # still only imported: the file's location wins
    assert "2 row(s) imported, 3 rejected" in out

    js = onts("import", str(mixed), "--db", db, "--output", "json")
    assert js.returncode == 2
    data = json.loads(js.stdout)
    assert [r["line"] for r in data["rejected"]] == [3, 4, 5]
    assert {r["serial"]: r["change"] for r in data["imported"]} == {
        "ABCD0000E001": "unchanged", "HWTC1A2B3C4D": "unchanged"}

    missing = onts("import", str(tmp_path / "none.csv"), "--db", db)
    assert missing.returncode == 1
    assert "cannot read the file" in missing.stderr
    header = tmp_path / "header.csv"
    header.write_text("serial,olt\nABCD0000E003,olt1\n")
    bad = onts("import", str(header), "--db", db)
    assert bad.returncode == 1
    assert "missing column(s) pon_port" in bad.stderr

    assert stored(tmp_path / "inv.sqlite3") == {
        "HWTC1A2B3C4D": ("olt1", "0/1/3", OntState.IMPORTED),
        "ALCLB2C3D4E5": ("olt1", "0/1/1", OntState.IMPORTED),
        "ABCD0000E001": ("olt2", "0/1/0", OntState.IMPORTED),
    }


def test_list_table_json_and_olt_filter(tmp_path: Path) -> None:
    db = str(tmp_path / "inv.sqlite3")
    csv = tmp_path / "onts.csv"
    csv.write_text("serial,olt,pon_port,model,firmware\nHWTC1A2B3C4D,olt1,0/1/1,HG8245H,V5\n"
                   "ZTEG00C0FFEE,olt2,0/1/0,F660,V6\n")
    assert onts("import", str(csv), "--db", db).returncode == 0
    table = onts("list", "--db", db)
    assert table.returncode == 0, table.stderr
    assert "ONTs (2)" in table.stdout
    assert "HWTC1A2B3C4D" in table.stdout
    assert "HG8245H" in table.stdout
    only = json.loads(onts("list", "--db", db, "--olt", "olt2", "--output", "json").stdout)
    assert [(o["serial"], o["olt"], o["pon_port"], o["state"], o["model"], o["object_id"])
            for o in only] == [("ZTEG00C0FFEE", "olt2", "0/1/0", "imported", "F660", None)]
    bad = onts("list", "--db", db, "--output", "yaml")
    assert bad.returncode == 2  # usage error from the command line parser


def test_objects_bind_refuses_a_serial_bound_elsewhere_unless_moved(tmp_path: Path) -> None:
    db = str(tmp_path / "inv.sqlite3")
    created = objects("create", "obj-1", "12 Fibre Lane, flat 1", "--db", db)
    assert created.returncode == 0, created.stderr
    assert objects("create", "obj-2", "12 Fibre Lane, flat 2", "--db", db).returncode == 0
    clash = objects("create", "obj-1", "elsewhere", "--db", db)
    assert clash.returncode == 1
    assert "already exists" in clash.stderr

    scan = objects("bind", "obj-1", "  hwtc1a2b3c4d ", "--db", db)  # as a scanner types it
    assert scan.returncode == 0, scan.stderr
    assert "ONT HWTC1A2B3C4D bound to object obj-1" in scan.stdout
    again = objects("bind", "obj-1", "HWTC1A2B3C4D", "--db", db)
    assert again.returncode == 0
    assert "already bound" in again.stdout

    refused = objects("bind", "obj-2", "HWTC1A2B3C4D", "--db", db)
    assert refused.returncode == 1
    assert "already bound to object 'obj-1'" in refused.stderr
    moved = objects("bind", "obj-2", "HWTC1A2B3C4D", "--move", "--db", db)
    assert moved.returncode == 0, moved.stderr
    assert "moved from object obj-1 to obj-2" in moved.stdout

    shown = json.loads(objects("show", "obj-2", "--db", db, "--output", "json").stdout)
    assert (shown["address"], shown["serial"], shown["ont"]) == (
        "12 Fibre Lane, flat 2", "HWTC1A2B3C4D", None)
    assert [h["action"] for h in shown["history"]] == ["moved-in"]
    table = objects("show", "obj-2", "--db", db)
    assert table.returncode == 0
    assert "12 Fibre Lane, flat 2" in table.stdout
    assert "Binding history" in table.stdout
    first = json.loads(objects("show", "obj-1", "--db", db, "--output", "json").stdout)
    assert first["serial"] is None
    assert [h["action"] for h in first["history"]] == ["bound", "moved-out"]

    listed = json.loads(objects("list", "--db", db, "-o", "json").stdout)
    assert [(o["id"], o["serial"]) for o in listed["objects"]] == [
        ("obj-1", None), ("obj-2", "HWTC1A2B3C4D")]
    table = objects("list", "--db", db)
    assert table.returncode == 0, table.stderr
    assert "Objects (2)" in table.stdout

    gone = objects("unbind", "obj-2", "--db", db)
    assert gone.returncode == 0
    assert "ONT HWTC1A2B3C4D unbound from object obj-2" in gone.stdout
    assert "had no ONT bound" in objects("unbind", "obj-2", "--db", db).stdout
    unbound = json.loads(objects("unbind", "obj-2", "--db", db, "-o", "json").stdout)
    assert unbound == {"object_id": "obj-2", "serial": None}
    bound = json.loads(objects("bind", "obj-2", "HWTC1A2B3C4D", "--db", db, "-o", "json").stdout)
    assert (bound["object_id"], bound["change"]) == ("obj-2", "bound")


def test_objects_errors_are_clear(tmp_path: Path) -> None:
    db = str(tmp_path / "inv.sqlite3")
    assert objects("create", "obj-1", "1 Main St", "--db", db).returncode == 0
    bad_serial = objects("bind", "obj-1", "<x/>;quit", "--db", db)
    assert bad_serial.returncode == 1
    assert "ONT serial" in bad_serial.stderr
    assert "Traceback" not in bad_serial.stderr
    unknown = objects("bind", "obj-9", "HWTC1A2B3C4D", "--db", db)
    assert unknown.returncode == 1
    assert "object 'obj-9' does not exist" in unknown.stderr
    assert objects("show", "obj-9", "--db", db).returncode == 1
    assert objects("unbind", "obj-9", "--db", db).returncode == 1
    bad_id = objects("create", "bad id!", "x", "--db", db)
    assert bad_id.returncode == 1
    assert "object id" in bad_id.stderr
    markup = objects("create", "obj-2", "[bold]Flat[/bold] 2 <b>", "--db", db)
    assert markup.returncode == 0
    assert "[bold]Flat[/bold] 2 <b>" in objects("show", "obj-2", "--db", db).stdout
