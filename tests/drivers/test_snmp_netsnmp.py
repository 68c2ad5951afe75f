"""The SNMP client and driver against a real net-snmp ``snmpd``: a private instance per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.errors import AuthenticationError, DriverTimeoutError, SnmpRejectedError
from drivers.snmp.client import SnmpClient
from drivers.snmp.driver import SnmpDriver
from drivers.snmp.varbind import Varbind, VarType
from tests.drivers.snmp_lab import SYS_LOCATION, Snmpd, snmpd

SYSTEM = "1.3.6.1.2.1.1"


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpd]:
    with snmpd(tmp_path_factory.mktemp("snmpd")) as running:
        yield running


async def test_v2c_get_walk_and_bulk_of_the_system_group(agent: Snmpd) -> None:
    async with SnmpClient(agent.target(community="public")) as snmp:
        descr, object_id, uptime, name = await snmp.get(
            "sysDescr.0", "SNMPv2-MIB::sysObjectID.0", f"{SYSTEM}.3.0", "sysName.0")
        system = await snmp.walk_all("system")
        bulk = await snmp.get_bulk("sysDescr", "sysObjectID", max_repetitions=2)
    assert descr.type == VarType.OCTET_STRING
    assert descr.value
    assert object_id.type == VarType.OBJECT_IDENTIFIER
    assert object_id.value == "1.3.6.1.4.1.8072.3.2.10"  # net-snmp on Linux
    assert uptime.type == VarType.TIMETICKS
    assert name.type == VarType.OCTET_STRING
    oids = [vb.oid for vb in system]
    assert oids[:3] == [f"{SYSTEM}.1.0", f"{SYSTEM}.2.0", f"{SYSTEM}.3.0"]
    assert oids == sorted(oids, key=lambda o: tuple(map(int, o.split("."))))
    assert all(o.startswith(SYSTEM + ".") for o in oids)
    assert len(system) > 7  # the system group plus sysORTable
    assert [vb.oid for vb in bulk] == [f"{SYSTEM}.1.0", f"{SYSTEM}.2.0", f"{SYSTEM}.2.0",
                                       f"{SYSTEM}.3.0"]


async def test_v2c_walk_of_the_if_table(agent: Snmpd) -> None:
    async with SnmpClient(agent.target(community="public", max_repetitions=10,
                                       max_get_oids=7)) as snmp:
        table = await snmp.walk_all("ifTable")
        (count,) = await snmp.get("ifNumber.0")
        again = await snmp.get(*(vb.oid for vb in table))  # in PDUs of 7 OIDs, in order
    counters = {f"1.3.6.1.2.1.2.2.1.{c}." for c in range(9, 22)}  # these move meanwhile
    assert [vb for vb in again if vb.oid.rsplit(".", 1)[0] + "." not in counters] == [
        vb for vb in table if vb.oid.rsplit(".", 1)[0] + "." not in counters]
    index = [vb.value for vb in table if vb.oid.startswith("1.3.6.1.2.1.2.2.1.1.")]
    descr = {vb.oid.rsplit(".", 1)[1]: vb.value for vb in table
             if vb.oid.startswith("1.3.6.1.2.1.2.2.1.2.")}
    assert len(index) == count.value
    assert "lo" in descr.values()
    mac = [vb for vb in table if vb.oid.startswith("1.3.6.1.2.1.2.2.1.6.")]
    assert all(vb.type in (VarType.HEX, VarType.OCTET_STRING) for vb in mac)


async def test_v3_authpriv_get_and_set_of_sys_location(agent: Snmpd) -> None:
    async with SnmpDriver(agent.v3()) as dev:
        assert any(d.startswith("engineID=80001f88") for d in dev.capabilities.details)
        await dev.load_candidate([Varbind("sysLocation.0", VarType.OCTET_STRING,
                                          "PoP 3, rack 12")])
        (line,) = (await dev.compare()).lines
        assert line.endswith("-> OctetString 'PoP 3, rack 12'")
        assert (await dev.commit()).changed
        (now,) = await dev.client.get(SYS_LOCATION)
        assert now.value == "PoP 3, rack 12"
        await dev.rollback()
        (back,) = await dev.client.get(SYS_LOCATION)
    assert back.value != "PoP 3, rack 12"


async def test_v3_wrong_key_is_an_authentication_error(agent: Snmpd) -> None:
    with pytest.raises(AuthenticationError, match="usmStatsWrongDigests"):
        async with SnmpDriver(agent.v3(auth_key="not-the-auth-key")):
            pass
    with pytest.raises(AuthenticationError, match="usmStatsUnknownUserNames"):
        async with SnmpClient(agent.v3(user="nobody")) as snmp:
            await snmp.get("sysName.0")
    # net-snmp decrypts an AES PDU under a wrong privacy key into garbage and drops it
    # without a report: indistinguishable from silence.
    with pytest.raises(DriverTimeoutError):
        async with SnmpClient(agent.v3(priv_key="not-the-priv-key", timeout=0.2,
                                       retries=0)) as snmp:
            await snmp.get("sysName.0")


async def test_set_on_the_read_only_community_is_rejected(agent: Snmpd) -> None:
    async with SnmpClient(agent.target(community="public")) as snmp:
        (before,) = await snmp.get(SYS_LOCATION)
        with pytest.raises(SnmpRejectedError) as refused:
            await snmp.set([Varbind(SYS_LOCATION, VarType.OCTET_STRING, "nope")])
        (after,) = await snmp.get(SYS_LOCATION)
    assert refused.value.status in ("noAccess", "notWritable", "authorizationError")
    assert refused.value.oid == SYS_LOCATION
    assert after == before


async def test_v2c_write_community_sets_and_wrong_community_times_out(agent: Snmpd) -> None:
    async with SnmpClient(agent.target(community="private")) as snmp:
        await snmp.set([Varbind("sysContact.0", VarType.OCTET_STRING, "noc@example.net"),
                        Varbind(SYS_LOCATION, VarType.OCTET_STRING, "lab")])
        contact, location = await snmp.get("sysContact.0", SYS_LOCATION)
        with pytest.raises(SnmpRejectedError) as refused:
            await snmp.set([Varbind("sysName.0", VarType.INTEGER, 1)])
    assert (contact.value, location.value) == ("noc@example.net", "lab")
    assert refused.value.status == "wrongType"
    with pytest.raises(DriverTimeoutError):
        async with SnmpDriver(agent.target(community="guess", timeout=0.2, retries=0)):
            pass
