"""ONT pre-import from CSV (per-row report) and binding by barcode scan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.inventory import bind_by_barcode, import_onts_csv
from agent.store import Conflict, InvalidValue, OntState, Store

S1 = "ABCD0000A1B2"
S2 = "ABCD0000A1B3"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with Store(tmp_path / "agent.db") as s:
        yield s


async def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    await asyncio.to_thread(path.write_text, text, encoding)
    return path


async def test_import_report_rows_and_reasons(store: Store, tmp_path: Path) -> None:
    long_model = "M" * 65
    csv_text = (
        "serial,olt,pon_port,model,firmware\n"
        f"{S1},olt1,0/1/0,HG8245H,V5R019\n"                          # 2 good
        "HWTC1234567Z,olt1,0/1/0,X,Y\n"                               # 3 bad serial (Z not hex)
        f"{S2},olt1,0/1,X,Y\n"                                        # 4 bad port
        f"{S1},olt1,0/1/1,X,Y\n"                                      # 5 duplicate of line 2
        "ZTEG00000001,olt1,0/1/2,X,Y,surplus\n"                       # 6 value in no column
        '"ZTEG00000002",olt1,0/1/2,"<model a=""1"">&amp;</model>","1.0 \'q\'"\n'  # 7 good, XML
        "ZTEG00000003,olt1,0/1/2,Fibra ÓNT ✓ 光,v1\n"                # 8 good, unicode
        f"ZTEG00000004,olt1,0/1/2,{long_model},v1\n"                  # 9 oversized model
        "\n"                                                          # 10 blank: skipped
        "ZTEG00000005,olt 1,0/1/2,X,Y\n"                              # 11 bad OLT name
        "<x/>,olt1,0/1/0;reboot,X,Y\n"                                # 12 bad serial and port
        '"ZTEG00000006",olt1,0/1/2,"two\nlines",v1\n'                 # 13-14 control character
        " zteg00000007 ,olt1,0/1/3,,\n"                               # 15 good (normalised)
    )
    path = await write(tmp_path / "onts.csv", csv_text)
    report = await import_onts_csv(store, path)
    assert report.errors == ()
    assert not report.ok
    assert [(r.line, r.serial, r.change) for r in report.imported] == [
        (2, S1, "created"), (7, "ZTEG00000002", "created"), (8, "ZTEG00000003", "created"),
        (15, "ZTEG00000007", "created")]
    rejected = {r.line: r for r in report.rejected}
    assert sorted(rejected) == [3, 4, 5, 6, 9, 11, 12, 13]
    assert "ONT serial 'HWTC1234567Z' is invalid" in rejected[3].reasons[0]
    assert "PON port '0/1' is invalid" in rejected[4].reasons[0]
    assert rejected[5].reasons == (f"duplicate: serial {S1} is already on line 2 of this file",)
    assert "value(s) in no column" in rejected[6].reasons[0]
    assert "'surplus'" in rejected[6].reasons[0]
    assert "model is 65 characters long" in rejected[9].reasons[0]
    assert "OLT name 'olt 1' is invalid" in rejected[11].reasons[0]
    assert len(rejected[12].reasons) == 2
    assert rejected[12].serial == "<x/>"
    assert "control character" in rejected[13].reasons[0]
    assert report.summary().endswith("4 row(s) imported, 8 rejected")

    onts = {o.serial: o for o in await store.list_onts()}
    assert set(onts) == {S1, "ZTEG00000002", "ZTEG00000003", "ZTEG00000007"}  # nothing else
    assert onts[S1].pon_port == "0/1/0"  # the duplicate on line 5 did not move it
    assert onts[S1].state is OntState.IMPORTED
    assert onts["ZTEG00000002"].model == '<model a="1">&amp;</model>'
    assert onts["ZTEG00000002"].firmware == "1.0 'q'"
    assert onts["ZTEG00000003"].model == "Fibra ÓNT ✓ 光"


async def test_reimport_reports_changes(store: Store, tmp_path: Path) -> None:
    path = await write(tmp_path / "a.csv", f"serial,olt,pon_port\n{S1},olt1,0/1/0\n")
    assert (await import_onts_csv(store, path)).ok
    await store.upsert_ont(S2, "olt1", "0/2/0")
    path = await write(tmp_path / "b.csv",
                       f"\ufeffSERIAL,Olt,Pon_Port,vendor\n{S1},olt1,0/1/5,ABCD\n"
                       f"{S2},olt1,0/3/0,ABCD\n")
    report = await import_onts_csv(store, path)
    assert report.ok
    assert [r.change for r in report.imported] == ["moved", "unchanged"]
    discovered = await store.get_ont(S2)
    assert discovered is not None
    assert discovered.pon_port == "0/2/0"  # the OLT's report wins over the file


@pytest.mark.parametrize(("text", "error"), [
    ("", "the file is empty"),
    ("serial,olt,port\n", "unknown column(s) 'port'"),
    ("serial,olt,pon_port,colour\nX,Y,Z,W\n", "unknown column(s) 'colour'"),
    ("serial,olt\n", "missing column(s) pon_port"),
    ("serial,olt,pon_port,olt\n", "named twice: olt"),
    ('serial,olt,pon_port\n"ABCD0000A1B2"x,olt1,0/1/0\n', "malformed CSV"),
])
async def test_file_level_errors_store_nothing(store: Store, tmp_path: Path, text: str,
                                               error: str) -> None:
    path = await write(tmp_path / "x.csv", text)
    report = await import_onts_csv(store, path)
    assert report.imported == ()
    assert any(error in e for e in report.errors), report.errors
    assert "nothing imported" in report.summary()
    assert await store.list_onts() == ()


async def test_unreadable_and_non_utf8_files(store: Store, tmp_path: Path) -> None:
    missing = await import_onts_csv(store, tmp_path / "nope.csv")
    assert "cannot read the file" in missing.errors[0]
    latin = tmp_path / "latin.csv"
    await asyncio.to_thread(latin.write_bytes, b"serial,olt,pon_port,model\n"
                                               b"ABCD0000A1B2,olt1,0/1/0,caf\xe9\n")
    report = await import_onts_csv(store, latin)
    assert "not UTF-8" in report.errors[0]
    assert await store.list_onts() == ()


async def test_bind_by_barcode(store: Store) -> None:
    await store.create_object("obj-1", "Main Street 1")
    await store.create_object("obj-2", "Main Street 2")
    result = await bind_by_barcode(store, "obj-1", "  abcd0000a1b2\n")
    assert (result.change, result.binding.serial) == ("bound", S1)
    with pytest.raises(Conflict, match="already bound to object 'obj-1'"):
        await bind_by_barcode(store, "obj-2", S1)
    moved = await bind_by_barcode(store, "obj-2", S1, move=True)
    assert moved.previous_object == "obj-1"
    for scan in ("", "ABCD0000A1B", "ABCD0000A1B2; unbind", "ABCD0000A1B2</serial>"):
        with pytest.raises(InvalidValue, match="ONT serial"):
            await bind_by_barcode(store, "obj-1", scan)
    obj = await store.get_object("obj-1")
    assert obj is not None
    assert obj.serial is None
