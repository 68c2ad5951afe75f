"""The SNMP driver's pure parts, without sockets: values, the pysnmp edge, the MIB resolver,
the error mapping, and the driver's notion of "already there"."""

from __future__ import annotations

from pathlib import Path

import pytest
from pysnmp.proto import errind, rfc1902, rfc1905
from pysnmp.proto.api import v2c

from drivers.errors import (
    AuthenticationError,
    DriverTimeoutError,
    ProtocolError,
    SnmpRejectedError,
)
from drivers.snmp.driver import describe, satisfied
from drivers.snmp.edge import error_from_indication, from_pysnmp, rejected_from_status, to_pysnmp
from drivers.snmp.mib import MibResolver, UnknownObjectError, default_resolver, parse_module
from drivers.snmp.target import SnmpTarget
from drivers.snmp.varbind import (
    RowStatus,
    Varbind,
    VarType,
    hex_octets,
    integer,
    normalize_oid,
    octets,
    same_value,
    unsigned,
)
from simulator.snmp import oids as o

ONT_SERIAL = "1.3.6.1.4.1.32473.1.1.2.1.2"


def dotted(oid: tuple[int, ...]) -> str:
    return ".".join(map(str, oid))


# ---- varbinds ------------------------------------------------------------------------------
def test_varbind_normalizes_oids_and_checks_values() -> None:
    assert Varbind(".1.3.6.1.2.1.1.5.0").oid == "1.3.6.1.2.1.1.5.0"
    assert Varbind("sysName.0").oid == "sysName.0"  # names are resolved by the client
    assert Varbind("1.3.6", "Integer", 5).type is VarType.INTEGER  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Integer needs"):
        Varbind("1.3.6", VarType.INTEGER, 2**31)
    with pytest.raises(ValueError, match="Unsigned needs"):
        unsigned(-1)
    with pytest.raises(ValueError, match="use Hex"):
        Varbind("1.3.6", VarType.OCTET_STRING, b"\x00")
    with pytest.raises(ValueError, match="IPv4"):
        Varbind("1.3.6", VarType.IP_ADDRESS, "300.1.1.1")
    with pytest.raises(ValueError, match="takes no value"):
        Varbind("1.3.6", VarType.NULL, 0)
    with pytest.raises(ValueError, match="not a numeric OID"):
        normalize_oid("1.3.x")
    with pytest.raises(ValueError, match="Integer needs"):
        integer(True)  # bool is an int in Python, never an SNMP Integer


def test_same_value_follows_the_wire() -> None:
    assert same_value(unsigned(10), Varbind("1", VarType.GAUGE32, 10))
    assert same_value(octets("AB"), hex_octets(b"AB"))
    assert not same_value(integer(10), unsigned(10))  # different wire types
    assert not same_value(octets("a"), octets("b"))


@pytest.mark.parametrize("vb", [
    Varbind("1.3.6.1.1", VarType.INTEGER, -5),
    Varbind("1.3.6.1.1", VarType.UNSIGNED, 4094),
    Varbind("1.3.6.1.1", VarType.GAUGE32, 2**32 - 1),
    Varbind("1.3.6.1.1", VarType.COUNTER32, 7),
    Varbind("1.3.6.1.1", VarType.COUNTER64, 2**64 - 1),
    Varbind("1.3.6.1.1", VarType.TIMETICKS, 100),
    Varbind("1.3.6.1.1", VarType.OCTET_STRING, "Main Street 1"),
    Varbind("1.3.6.1.1", VarType.HEX, b"\x02\x00\x5e\x10\x20\x30"),
    Varbind("1.3.6.1.1", VarType.OBJECT_IDENTIFIER, "1.3.6.1.4.1.32473.1"),
    Varbind("1.3.6.1.1", VarType.IP_ADDRESS, "192.0.2.7"),
    Varbind("1.3.6.1.1", VarType.OPAQUE, b"\x9f\x78\x04"),
    Varbind("1.3.6.1.1", VarType.NULL),
    Varbind("1.3.6.1.1", VarType.NO_SUCH_OBJECT),
    Varbind("1.3.6.1.1", VarType.NO_SUCH_INSTANCE),
    Varbind("1.3.6.1.1", VarType.END_OF_MIB_VIEW),
])
def test_values_round_trip_through_pysnmp(vb: Varbind) -> None:
    name, value = to_pysnmp(vb)
    # Through BER and back, as the agent's answer would arrive.
    pdu = v2c.GetResponsePDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_varbinds(pdu, [(name, value)])
    (back,) = [from_pysnmp(n, v) for n, v in v2c.apiPDU.get_varbinds(pdu)]
    expected_type = VarType.GAUGE32 if vb.type == VarType.UNSIGNED else vb.type
    assert (back.oid, back.type, back.value) == (vb.oid, expected_type, vb.value)


def test_octets_are_text_only_when_printable() -> None:
    assert from_pysnmp(rfc1902.ObjectName("1.3"), rfc1902.OctetString(b"olt1")).value == "olt1"
    mac = from_pysnmp(rfc1902.ObjectName("1.3"), rfc1902.OctetString(b"\x02\x00\x5e\x10\x20"))
    assert (mac.type, mac.text) == (VarType.HEX, "02:00:5e:10:20")
    assert from_pysnmp(rfc1902.ObjectName("1.3"), rfc1905.noSuchInstance).text == \
        "noSuchInstance"


# ---- errors --------------------------------------------------------------------------------
@pytest.mark.parametrize(("indication", "error"), [
    (errind.requestTimedOut, DriverTimeoutError),
    (errind.wrongDigest, AuthenticationError),
    (errind.unknownUserName, AuthenticationError),
    (errind.decryptionError, AuthenticationError),
    (errind.unsupportedSecurityLevel, AuthenticationError),
    (errind.notInTimeWindow, AuthenticationError),
    (errind.parseError, ProtocolError),
    (errind.unknownEngineID, ProtocolError),
    (errind.ReportPduReceived("1.3.6.1.6.3.11.2.1.3.0"), ProtocolError),
    ("badResponse", ProtocolError),
])
def test_error_indications_map_onto_the_error_tree(indication: object,
                                                   error: type[Exception]) -> None:
    got = error_from_indication(indication, host="olt1", timeout=0.5)
    assert type(got) is error
    assert got.host == "olt1"
    if error is DriverTimeoutError:
        assert isinstance(got, TimeoutError)
        assert "0.5 s" in str(got)


def test_error_status_names_the_blamed_varbind() -> None:
    request = [Varbind("1.3.6.1.2.1.1.5.0"), Varbind("1.3.6.1.2.1.1.6.0")]
    status = v2c.apiPDU.get_error_status(_response_with_error(17, 2))  # notWritable
    got = rejected_from_status(status, 2, request, host="olt1")
    assert isinstance(got, SnmpRejectedError)
    assert (got.status, got.index, got.oid) == ("notWritable", 2, "1.3.6.1.2.1.1.6.0")
    whole = rejected_from_status(status, 0, request, host=None)
    assert (whole.index, whole.oid) == (0, None)


def _response_with_error(status: int, index: int) -> object:
    pdu = v2c.GetResponsePDU()
    v2c.apiPDU.set_defaults(pdu)
    v2c.apiPDU.set_error_status(pdu, status)
    v2c.apiPDU.set_error_index(pdu, index)
    return pdu


# ---- MIB names -----------------------------------------------------------------------------
def test_project_mib_names_match_the_simulator_numbers() -> None:
    r = default_resolver()
    assert r.resolve("PONCTL-MIB::ponctlOntSerial") == dotted((*o.ONT_ENTRY, 2))
    assert r.resolve("ponctlOntSerial.1.5") == dotted((*o.ONT_ENTRY, 2, 1, 5))
    assert r.resolve("ponctlServiceRowStatus") == dotted((*o.SERVICE_ENTRY, 8))
    assert r.resolve("ponctlGatewayPhanUrl.0") == dotted((*o.GATEWAY_PHAN_URL, 0))
    assert r.resolve("ponctlOntDown") == dotted(o.ONT_DOWN)
    assert r.resolve("ponctlUplinkVlanTable") == dotted(o.UPLINK_VLAN_ENTRY[:-1])
    assert r.resolve("SNMPv2-MIB::sysName.0") == "1.3.6.1.2.1.1.5.0"
    assert r.resolve("ifDescr.3") == "1.3.6.1.2.1.2.2.1.2.3"
    assert r.resolve(".1.3.6.1.2.1.1.5.0") == "1.3.6.1.2.1.1.5.0"
    assert r.name_of(dotted((*o.ONT_ENTRY, 2, 1, 5))) == "ponctlOntSerial.1.5"
    assert r.name_of(dotted(o.ONT_UP), qualified=True) == "PONCTL-MIB::ponctlOntUp"
    assert r.name_of("1.3.6.1.4.1.32473.1") == "ponctl"
    assert r.name_of("1.2.840.10045") == "1.2.840.10045"  # nothing loaded covers it
    for bad in ("ponctlNoSuchThing", "IF-MIB::ponctlOntSerial", "sys Name", "3com::x"):
        with pytest.raises(UnknownObjectError):
            r.resolve(bad)


def test_row_status_columns_and_writable_columns_come_from_the_mib() -> None:
    r = default_resolver()
    assert r.is_row_status(dotted((*o.ONT_ENTRY, 10, 1, 5)))
    assert r.is_row_status(dotted((*o.SERVICE_ENTRY, 8, 1, 5, 1)))
    assert not r.is_row_status(dotted((*o.ONT_ENTRY, 4, 1, 5)))  # an enum, not RowStatus
    assert not r.is_row_status(dotted((*o.ONT_ENTRY, 10)))  # the column, not an instance
    writable = [c.name for c in r.columns(r.resolve("ponctlServiceEntry")) if c.writable]
    assert writable == ["ponctlServiceUni", "ponctlServiceCVlan", "ponctlServiceSVlan",
                        "ponctlServiceProfile", "ponctlServiceGemPort",
                        "ponctlServiceRowStatus"]
    assert r.node("ponctlOntEntry") is not None
    assert r.node("ponctlOntEntry").index == ("ponctlPonPortIndex", "ponctlOntId")  # type: ignore[union-attr]


def test_parser_handles_comments_strings_and_imports(tmp_path: Path) -> None:
    text = '''
    TEST-MIB DEFINITIONS ::= BEGIN
    IMPORTS MODULE-IDENTITY, OBJECT-TYPE, enterprises FROM SNMPv2-SMI;
    testRoot MODULE-IDENTITY
        DESCRIPTION "a string with -- dashes and ::= { fake 9 } inside"
        ::= { enterprises 99999 }
    -- a comment naming foo OBJECT-TYPE ::= { testRoot 7 }
    testThing OBJECT-TYPE
        SYNTAX OBJECT IDENTIFIER  -- a comment ends at the next dashes -- MAX-ACCESS read-write
        ::= { testRoot 1 }
    testAbs OBJECT IDENTIFIER ::= { iso org(3) dod(6) 99 }
    END
    '''
    module, defs = parse_module(text)
    assert module == "TEST-MIB"
    assert [(d.name, d.parent, d.arcs, d.syntax, d.access) for d in defs] == [
        ("testRoot", "enterprises", (99999,), None, None),
        ("testThing", "testRoot", (1,), "OBJECT IDENTIFIER", "read-write"),
        ("testAbs", "iso", (3, 6, 99), None, None),
    ]
    (tmp_path / "TEST-MIB.txt").write_text(text)
    r = MibResolver.load(tmp_path)
    assert r.resolve("TEST-MIB::testThing.0") == "1.3.6.1.4.1.99999.1.0"
    assert r.resolve("testAbs") == "1.3.6.99"
    (tmp_path / "BAD-MIB.txt").write_text(
        "BAD-MIB DEFINITIONS ::= BEGIN\nx OBJECT IDENTIFIER ::= { nowhere 1 }\nEND\n")
    with pytest.raises(ValueError, match="cannot resolve x under unknown nowhere"):
        MibResolver.load(tmp_path)


# ---- targets and the driver's comparisons --------------------------------------------------
def test_target_validates_and_hides_secrets() -> None:
    t = SnmpTarget("olt1", version="v3", user="u", auth_key="secret-auth",
                   priv_key="secret-priv", community="secret-community")
    assert "secret" not in repr(t)
    with pytest.raises(ValueError, match="at least 8"):
        SnmpTarget("olt1", version="v3", user="u", auth_key="short", priv_key="long-enough")
    with pytest.raises(ValueError, match="needs a user"):
        SnmpTarget("olt1", version="v3")
    with pytest.raises(ValueError, match="priv_protocol"):
        SnmpTarget("olt1", version="v3", user="u", auth_key="12345678", priv_key="12345678",
                   priv_protocol="DES")  # type: ignore[arg-type]


def test_row_status_is_satisfied_by_the_row_state() -> None:
    status = f"{ONT_SERIAL[:-1]}10.1.5"
    go = Varbind(status, VarType.INTEGER, int(RowStatus.CREATE_AND_GO))
    destroy = Varbind(status, VarType.INTEGER, int(RowStatus.DESTROY))
    active = Varbind(status, VarType.INTEGER, int(RowStatus.ACTIVE))
    absent = Varbind(status, VarType.NO_SUCH_INSTANCE)
    assert satisfied(go, active, row_status=True)
    assert not satisfied(go, absent, row_status=True)
    assert satisfied(destroy, absent, row_status=True)
    assert not satisfied(destroy, active, row_status=True)
    assert not satisfied(go, active, row_status=False)  # a plain integer 4 is not 1
    assert describe(absent) == "absent"
    assert describe(Varbind("1.3", VarType.OCTET_STRING, "x")) == "OctetString 'x'"
