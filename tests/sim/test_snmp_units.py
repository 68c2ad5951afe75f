"""The SNMP face's pure parts, without sockets: tables, SET planning, edits, the wire."""

from __future__ import annotations

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto.mpmod.rfc3412 import SNMPv3Message
from pysnmp.proto.secmod.rfc3414.service import UsmSecurityParameters

from simulator.config import builder as b
from simulator.config.removal import removal
from simulator.devices import Olt
from simulator.snmp import oids as o
from simulator.snmp import provision as pv
from simulator.snmp.engine import engine_id
from simulator.snmp.olt_mib import OltMib
from simulator.snmp.smi import (
    MibView,
    Missing,
    Oid,
    Scalars,
    SetError,
    Syntax,
    Table,
    Value,
    WriteItem,
    integer,
    octets,
)
from simulator.snmp.wire import message_version, refuse_credentials
from tests.sim.snmp_tools import get_request_bytes, make_olt

ENTRY: Oid = (1, 3, 9, 1)


def _table() -> Table[str]:
    def cell(column: int, row: str) -> Value | None:
        if column == 3 and row == "b":
            return None  # a cell the row does not have
        return octets(f"{row}{column}")

    t: Table[str] = Table(ENTRY, (2, 3), cell)
    t.load({(1, 2): "a", (1, 10): "b", (2, 1): "c"})
    return t


def test_table_walks_column_by_column_in_index_order() -> None:
    t = _table()
    view = MibView([Scalars({(1, 3, 1): lambda: integer(1)}), t])
    oid: Oid = (1,)
    seen = []
    while (found := view.next(oid)) is not None:
        oid = found[0]
        seen.append(oid)
    assert seen == [(1, 3, 1, 0),
                    (*ENTRY, 2, 1, 2), (*ENTRY, 2, 1, 10), (*ENTRY, 2, 2, 1),
                    (*ENTRY, 3, 1, 2), (*ENTRY, 3, 2, 1)]  # row "b" has no column 3
    assert t.next((*ENTRY, 2, 1)) == ((*ENTRY, 2, 1, 2), octets("a2"))  # partial index
    assert t.next((*ENTRY, 9)) is None
    assert t.next((1, 3, 8, 99)) == ((*ENTRY, 2, 1, 2), octets("a2"))


def test_get_tells_missing_objects_from_missing_instances() -> None:
    view = MibView([Scalars({(1, 3, 1): lambda: integer(1)}), _table()])
    assert view.get((1, 3, 1, 0)) == integer(1)
    assert view.get((1, 3, 1, 1)) is Missing.NO_SUCH_INSTANCE
    assert view.get((*ENTRY, 2, 1, 10)) == octets("b2")
    assert view.get((*ENTRY, 3, 1, 10)) is Missing.NO_SUCH_INSTANCE
    assert view.get((*ENTRY, 2, 7, 7)) is Missing.NO_SUCH_INSTANCE
    assert view.get((*ENTRY, 4, 1, 2)) is Missing.NO_SUCH_OBJECT
    assert view.get((1, 3, 2)) is Missing.NO_SUCH_OBJECT


def test_engine_ids_follow_rfc_3411() -> None:
    assert engine_id("olt1") == bytes.fromhex("80007ed904") + b"olt1"
    long = engine_id("an OLT name that is far too long to be text")
    assert long[:5] == bytes.fromhex("80007ed905")
    assert len(long) == 17


# ---- the wire --------------------------------------------------------------------------

def _v3_message(flags: int, digest: bytes) -> bytes:
    usm = UsmSecurityParameters()
    usm["msgAuthoritativeEngineId"] = engine_id("olt1")
    usm["msgAuthoritativeEngineBoots"] = 1
    usm["msgAuthoritativeEngineTime"] = 10
    usm["msgUserName"] = b"ponctl"
    usm["msgAuthenticationParameters"] = digest
    usm["msgPrivacyParameters"] = b"\x00" * 8 if flags & 2 else b""
    msg = SNMPv3Message()
    msg["msgVersion"] = 3
    header = msg["msgGlobalData"]
    header["msgID"] = 1
    header["msgMaxSize"] = 65507
    header["msgFlags"] = bytes([flags])
    header["msgSecurityModel"] = 3
    msg["msgSecurityParameters"] = encoder.encode(usm)
    msg["msgData"]["encryptedPDU"] = b"\x01" * 32
    return bytes(encoder.encode(msg))


def test_message_version() -> None:
    assert message_version(get_request_bytes()) == 1
    assert message_version(_v3_message(7, b"\x11" * 12)) == 3
    for junk in (b"", b"\x30", b"\x02\x01\x01", b"\x30\x84\xff\xff\xff\xff", b"\x30\x03\x04"):
        assert message_version(junk) is None


def test_wrong_credentials_spoil_only_authenticated_v3_requests() -> None:
    assert refuse_credentials(get_request_bytes()) is None  # v2c: dropped
    assert refuse_credentials(b"\x30\x03\x02\x01\x03") is None  # unreadable v3: dropped
    discovery = _v3_message(4, b"")
    assert refuse_credentials(discovery) == discovery  # engine discovery passes
    signed = _v3_message(7, b"\x11" * 12)
    spoiled = refuse_credentials(signed)
    assert spoiled is not None
    assert spoiled != signed
    msg, _ = decoder.decode(spoiled, asn1Spec=SNMPv3Message())
    usm, _ = decoder.decode(bytes(msg["msgSecurityParameters"]),
                            asn1Spec=UsmSecurityParameters())
    assert bytes(usm["msgAuthenticationParameters"]) == b"\xee" * 12
    assert bytes(usm["msgUserName"]) == b"ponctl"


# ---- SET planning on an OLT ----------------------------------------------------------------

def _ont(column: int, row: Oid) -> Oid:
    return (*o.ONT_ENTRY, column, *row)


def _svc(column: int, row: Oid) -> Oid:
    return (*o.SERVICE_ENTRY, column, *row)


def _service(row: Oid, uni: int, c_vlan: int, s_vlan: int, gem: int,
             profile: bytes = b"100M", status: int = 4) -> list[WriteItem]:
    u = Syntax.UNSIGNED
    return [WriteItem(_svc(2, row), u, uni), WriteItem(_svc(3, row), u, c_vlan),
            WriteItem(_svc(4, row), u, s_vlan), WriteItem(_svc(5, row), Syntax.OCTETS, profile),
            WriteItem(_svc(6, row), u, gem), WriteItem(_svc(8, row), Syntax.INTEGER, status)]


def _status(err: pytest.ExceptionInfo[SetError]) -> tuple[str, int]:
    return err.value.status, err.value.index


@pytest.fixture
def olt() -> Olt:
    return make_olt(with_onts=False)


def test_onu_and_service_created_in_one_pdu(olt: Olt) -> None:
    mib = OltMib(olt, olt.new_session_id())
    mib.write([WriteItem(_ont(2, (2, 3)), Syntax.OCTETS, b"ABCD00000003"),
               WriteItem(_ont(10, (2, 3)), Syntax.INTEGER, 4),
               *_service((2, 3, 4), 1, 10, 200, 1203)])
    (svc,) = olt.view.services_of("ont-0/1/1-3")
    assert (svc.uni, svc.c_vlan, svc.s_vlan, svc.gemport_id, svc.alloc_id) == (1, 10, 200,
                                                                                1203, 1025)
    assert mib.get(_svc(3, (2, 3, 4))) == Value(Syntax.UNSIGNED, 10)
    assert mib.get(_ont(10, (2, 3))) == integer(1)


def test_services_sharing_an_ont_must_agree_on_gem_and_profile(olt: Olt) -> None:
    mib = OltMib(olt, olt.new_session_id())
    base = olt.running
    with pytest.raises(SetError) as err:  # same UNI as the existing service, other GEM port
        mib.write(_service((1, 5, 2), 1, 11, 100, 1999))
    assert err.value.status == "inconsistentValue"
    assert "GEM port" in err.value.message
    with pytest.raises(SetError) as err:
        mib.write(_service((1, 5, 2), 2, 11, 100, 1999, profile=b"other"))
    assert err.value.status == "inconsistentValue"
    assert "profile" in err.value.message
    with pytest.raises(SetError) as err:  # same UNI and C-VLAN as the existing service
        mib.write(_service((1, 5, 2), 1, 10, 200, 1005))
    assert err.value.status == "inconsistentValue"
    assert olt.running is base
    mib.write(_service((1, 5, 2), 1, 11, 200, 1005))  # shares the GEM port: fine
    assert sorted(s.c_vlan for s in olt.view.services_of("ont-0/1/0-5")) == [10, 11]


def test_row_status_edge_cases(olt: Olt) -> None:
    mib = OltMib(olt, olt.new_session_id())
    base = olt.running
    mib.write([WriteItem(_ont(10, (2, 40)), Syntax.INTEGER, 6)])  # destroying nothing is fine
    mib.write([WriteItem(_ont(10, (2, 40)), Syntax.INTEGER, 5),
               WriteItem(_ont(3, (2, 40)), Syntax.OCTETS, b"waiting")])
    assert olt.running is base  # createAndWait holds the row in the agent
    assert mib.get(_ont(10, (2, 40))) == integer(o.RowStatus.NOT_READY)
    assert mib.get(_ont(3, (2, 40))) == octets("waiting")
    assert mib.get(_ont(2, (2, 40))) is Missing.NO_SUCH_INSTANCE
    with pytest.raises(SetError) as err:
        mib.write([WriteItem(_ont(10, (2, 40)), Syntax.INTEGER, 1)])
    assert _status(err) == ("inconsistentValue", 0)  # still no serial
    with pytest.raises(SetError) as err:  # a service on an ONT that is not active
        mib.write(_service((2, 40, 1), 1, 10, 100, 1240))
    assert err.value.status == "inconsistentValue"
    mib.write([WriteItem(_ont(10, (2, 40)), Syntax.INTEGER, 6)])
    assert mib.get(_ont(10, (2, 40))) is Missing.NO_SUCH_INSTANCE
    with pytest.raises(SetError) as err:
        mib.write([WriteItem(_ont(3, (1, 5)), Syntax.OCTETS, b"ok"),
                   WriteItem((*o.SYS_NAME, 0), Syntax.OCTETS, b"x")])
    assert _status(err) == ("notWritable", 1)
    with pytest.raises(SetError) as err:
        mib.write([WriteItem(_ont(3, (1, 5)), Syntax.OCTETS, b"\x01bell")])
    assert _status(err) == ("wrongValue", 0)
    with pytest.raises(SetError) as err:
        mib.write([WriteItem(_ont(3, (1, 5)), None, b"")])
    assert _status(err) == ("wrongType", 0)
    with pytest.raises(SetError) as err:
        mib.write([WriteItem(_svc(3, (1, 5, 65)), Syntax.UNSIGNED, 10)])
    assert _status(err) == ("noCreation", 0)  # ponctlServiceIndex is 1..64
    assert olt.running is base


def test_autofind_indexes_follow_ont_events(olt: Olt) -> None:
    mib = OltMib(olt, olt.new_session_id())
    olt.subscribe(mib.on_event)
    olt.add_ont("WXYZ00000001", "0/1/1")
    olt.add_ont("WXYZ00000002", "0/1/1")
    olt.add_ont("WXYZ00000003", "0/1/0")
    assert mib.autofind == {"WXYZ00000001": (2, 1), "WXYZ00000002": (2, 2),
                            "WXYZ00000003": (1, 1)}
    olt.remove_ont("WXYZ00000001")
    olt.add_ont("WXYZ00000004", "0/1/1")  # reuses the freed index
    assert mib.autofind["WXYZ00000004"] == (2, 1)
    assert mib.get((*o.AUTOFIND_ENTRY, 2, 2, 2)) == octets("WXYZ00000002")


# ---- edits -----------------------------------------------------------------------------

def test_removing_services_and_onus_leaves_nothing_dangling() -> None:
    olt = make_olt(with_onts=False)
    base = olt.running
    onu = b.OnuSpec("0/1/1", 9, "ABCD00000009")
    spec = b.ServiceSpec(onu, 1, 10, 100, "0/9/0", 1909, 1100, "100M")
    olt.force_edit(b.onu_registration(onu))
    with_onu = olt.running
    olt.force_edit(b.uni_tagging(onu, 1, 10) + b.olt_service(spec))
    one_service = olt.running
    second = b.ServiceSpec(onu, 1, 20, 200, "0/9/0", 1909, 1100, "100M")
    olt.force_edit(b.uni_tagging(onu, 1, 20) + b.olt_service(second))

    olt.force_edit(removal(olt.running, olt.view, set(), {second.forwarder}))
    assert olt.running.same(one_service)
    olt.force_edit(removal(olt.running, olt.view, set(), {spec.forwarder}))
    assert olt.running.same(with_onu)
    olt.force_edit(b.uni_tagging(onu, 1, 10) + b.olt_service(spec))
    olt.force_edit(removal(olt.running, olt.view, {onu.vani}, set()))
    assert olt.running.same(base)
    assert removal(olt.running, olt.view, {"no-such-vani"}, {"no-such-fwd"}) == []


def test_uplink_choice_and_alloc_ids() -> None:
    uplinks = {"0/9/0": frozenset({100}), "0/9/1": frozenset({100, 300})}
    assert pv.uplink_for(uplinks, 100) == "0/9/0"
    assert pv.uplink_for(uplinks, 300) == "0/9/1"
    with pytest.raises(pv.Refused) as err:
        pv.uplink_for(uplinks, 400)
    assert err.value.status == "inconsistentValue"
    assert "S-VLAN 400" in err.value.message
    olt = make_olt(with_onts=False)  # its one T-CONT has alloc-id 1024
    assert pv.alloc_id_for(olt.running, "tcont-0/1/0-5", set()) == 1024
    assert pv.alloc_id_for(olt.running, "tcont-0/1/1-1", set()) == 1025
    assert pv.alloc_id_for(olt.running, "tcont-0/1/1-1", {1025, 1026}) == 1027
