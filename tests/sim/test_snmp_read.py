"""Reading the SNMP face with net-snmp's tools: v2c get/walk/bulkwalk, v3 authPriv, gateways."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tests.sim.snmp_tools import (
    AUTOFIND,
    GATEWAY,
    KNOWN_SERIAL,
    MIB_DIR,
    ONT,
    PON_PORT,
    SERVICE,
    SETTINGS,
    STRANGER,
    SYS_NAME,
    make_gateway,
    make_olt,
    net_snmp,
    operational,
    serving,
    v2c,
    v3,
)

SYSTEM = "1.3.6.1.2.1.1"
IF_TABLE = "1.3.6.1.2.1.2.2.1"


async def test_v2c_get_system_group(tmp_path: Path) -> None:
    olt = make_olt()
    async with serving(olt) as agent:
        run = await net_snmp("snmpget", *v2c(agent), f"{SYSTEM}.1.0", f"{SYSTEM}.2.0",
                             f"{SYSTEM}.3.0", f"{SYSTEM}.4.0", SYS_NAME, f"{SYSTEM}.6.0",
                             "1.3.6.1.2.1.2.1.0", home=tmp_path)
    assert run.rc == 0, run.text
    got = run.values()
    assert "SL-OLT16" in got[f"{SYSTEM}.1.0"]
    assert got[f"{SYSTEM}.2.0"] == ".1.3.6.1.4.1.32473.1"  # ponctl, under RFC 5612's number
    assert 0 <= int(got[f"{SYSTEM}.3.0"]) <= olt.uptime_ticks()
    assert got[SYS_NAME] == "olt1"
    assert got[f"{SYSTEM}.4.0"]
    assert got[f"{SYSTEM}.6.0"]
    assert got["1.3.6.1.2.1.2.1.0"] == "3"  # two PON ports and one uplink


async def test_v2c_walk_if_table(tmp_path: Path) -> None:
    async with serving(make_olt()) as agent:
        run = await net_snmp("snmpwalk", *v2c(agent), IF_TABLE, home=tmp_path)
    got = run.values()
    assert [got[f"{IF_TABLE}.1.{i}"] for i in (1, 2, 3)] == ["1", "2", "3"]
    assert [got[f"{IF_TABLE}.2.{i}"] for i in (1, 2, 3)] == ["ct-0/1/0", "ct-0/1/1",
                                                              "uplink-0/9/0"]
    assert [got[f"{IF_TABLE}.3.{i}"] for i in (1, 2, 3)] == ["250", "250", "6"]  # gpon, eth
    assert {got[f"{IF_TABLE}.{c}.{i}"] for c in (7, 8) for i in (1, 2, 3)} == {"1"}  # up
    assert len(got) == 15


async def test_v2c_walk_ponctl_tables(tmp_path: Path) -> None:
    olt = make_olt()
    await operational(olt, KNOWN_SERIAL)
    async with serving(olt) as agent:
        run = await net_snmp("snmpwalk", *v2c(agent), "1.3.6.1.4.1.32473", home=tmp_path)
    got = run.values()
    assert got[f"{PON_PORT}.2.1"] == "0/1/0"
    assert got[f"{PON_PORT}.4.1"] == "1"
    assert got[f"{PON_PORT}.4.2"] == "0"
    row = "1.5"  # port index 1, onu-id 5
    assert got[f"{ONT}.2.{row}"] == KNOWN_SERIAL
    assert got[f"{ONT}.3.{row}"] == "Main Street 1"
    assert got[f"{ONT}.5.{row}"] == "3"  # operational
    ont = olt.onts[KNOWN_SERIAL]
    assert ont.rx_power is not None
    assert abs(int(got[f"{ONT}.6.{row}"]) - ont.rx_power * 100) <= 5  # 0.01 dBm units
    assert -2600 <= int(got[f"{ONT}.6.{row}"]) <= -1400
    assert 50 <= int(got[f"{ONT}.7.{row}"]) <= 500
    assert got[f"{ONT}.8.{row}"] == "SL-ONT4G"
    assert got[f"{ONT}.10.{row}"] == "1"  # active
    svc = "1.5.1"
    assert [got[f"{SERVICE}.{c}.{svc}"] for c in range(2, 9)] == [
        "1", "10", "100", "100M", "1005", "1", "1"]  # applied(true), active
    assert got[f"{AUTOFIND}.2.2.1"] == STRANGER  # on port index 2, first discovery
    assert got[f"{OBJECTS_UPLINK}.2.1"] == "0/9/0"
    assert {k for k in got if k.startswith(UPLINK_VLAN)} == {
        f"{UPLINK_VLAN}.2.1.100", f"{UPLINK_VLAN}.2.1.200"}
    assert not any(k.startswith(GATEWAY) for k in got)  # an OLT is no gateway


OBJECTS_UPLINK = "1.3.6.1.4.1.32473.1.1.5.1"
UPLINK_VLAN = "1.3.6.1.4.1.32473.1.1.6.1"


async def test_bulkwalk_returns_what_walk_returns(tmp_path: Path) -> None:
    async with serving(make_olt()) as agent:
        walk = await net_snmp("snmpwalk", *v2c(agent), "1.3.6.1", home=tmp_path)
        bulk = await net_snmp("snmpbulkwalk", "-Cr7", *v2c(agent), "1.3.6.1", home=tmp_path)
    assert walk.rc == 0, walk.text
    assert bulk.rc == 0, bulk.text

    def stable(values: dict[str, str]) -> dict[str, str]:  # uptime and optics drift
        return {k: v for k, v in values.items() if not k.startswith(
            (f"{SYSTEM}.3.", f"{ONT}.6.", f"{ONT}.7."))}

    assert list(bulk.values()) == list(walk.values())  # same OIDs, in the same order
    assert stable(bulk.values()) == stable(walk.values())
    assert len(walk.values()) > 45


async def test_get_missing_objects_and_instances(tmp_path: Path) -> None:
    async with serving(make_olt()) as agent:
        run = await net_snmp("snmpget", *v2c(agent), f"{ONT}.2.1.99", "1.3.6.1.4.1.99.1.0",
                             f"{SYSTEM}.1.1", home=tmp_path)
    got = run.values()
    assert "No Such Instance" in got[f"{ONT}.2.1.99"]
    assert "No Such Object" in got["1.3.6.1.4.1.99.1.0"]
    assert "No Such Instance" in got[f"{SYSTEM}.1.1"]


async def test_walk_with_the_project_mib(tmp_path: Path) -> None:
    probe = await net_snmp("snmptranslate", "-M", f"+{MIB_DIR}", "-m", "PONCTL-MIB",
                           "PONCTL-MIB::ponctlOntSerial", home=tmp_path)
    if probe.rc != 0:
        pytest.skip("net-snmp cannot load PONCTL-MIB (are SNMPv2-SMI/TC/CONF installed?): "
                    + probe.err.strip()[:200])
    async with serving(make_olt()) as agent:
        run = await net_snmp("snmpwalk", "-v2c", "-c", "public", "-M", f"+{MIB_DIR}",
                             "-m", "PONCTL-MIB", "-OS", f"udp:127.0.0.1:{agent.port}",
                             "PONCTL-MIB::ponctlOntTable", home=tmp_path)
    assert run.rc == 0, run.text
    # -OS after -On: symbolic names with module, which proves the OIDs match the MIB.
    lines = run.out.splitlines()
    assert any(line.startswith("PONCTL-MIB::ponctlOntSerial.1.5 = ") and KNOWN_SERIAL in line
               for line in lines), run.out
    assert any(line.startswith("PONCTL-MIB::ponctlOntRowStatus.1.5 = ") for line in lines)


async def test_v3_authpriv_sha_aes(tmp_path: Path) -> None:
    async with serving(make_olt()) as agent:
        run = await net_snmp("snmpget", *v3(agent), SYS_NAME, f"{ONT}.2.1.5", home=tmp_path)
    assert run.rc == 0, run.text
    assert run.values() == {SYS_NAME: "olt1", f"{ONT}.2.1.5": KNOWN_SERIAL}


@pytest.mark.parametrize(("auth", "priv", "a", "x"), [
    ("SHA256", "AES256", "SHA-256", "AES-256"),
    ("SHA", "AES256", "SHA", "AES-256"),  # key extended as net-snmp does (Blumenthal)
    ("SHA512", "AES", "SHA-512", "AES"),
])
async def test_v3_other_protocols(tmp_path: Path, auth: str, priv: str, a: str,
                                  x: str) -> None:
    settings = dataclasses.replace(SETTINGS, auth_protocol=auth, priv_protocol=priv)
    async with serving(make_olt(settings=settings)) as agent:
        run = await net_snmp("snmpget", *v3(agent, settings, auth=a, priv=x), SYS_NAME,
                             home=tmp_path)
    assert run.rc == 0, run.text
    assert run.values() == {SYS_NAME: "olt1"}


async def test_v3_wrong_key_and_weaker_level_are_refused(tmp_path: Path) -> None:
    async with serving(make_olt()) as agent:
        wrong = await net_snmp("snmpget", *v3(agent, auth_key="not-the-auth-key"), SYS_NAME,
                               home=tmp_path / "a")
        weak = await net_snmp("snmpget", *v3(agent, level="authNoPriv"), SYS_NAME,
                              home=tmp_path / "b")
    assert wrong.rc != 0, wrong.text
    assert "Authentication failure" in wrong.text
    assert SYS_NAME not in wrong.values()
    # The user is configured for authPriv: pysnmp's USM reports authNoPriv as unsupported
    # (and VACM would refuse it too, as access is granted for authPriv only).
    assert weak.rc != 0, weak.text
    assert "Unsupported security level" in weak.text or "authorizationError" in weak.text
    assert SYS_NAME not in weak.values()


async def test_unknown_community_gets_no_answer(tmp_path: Path) -> None:
    async with serving(make_olt()) as agent:
        run = await net_snmp("snmpget", *v2c(agent, "guess", timeout=0.3, retries=0), SYS_NAME,
                             home=tmp_path)
    assert run.rc != 0, run.text
    assert "Timeout" in run.text


async def test_gateway_scalars(tmp_path: Path) -> None:
    olt = make_olt()
    gw = make_gateway(olt)
    gw.set(phan_url="https://phan.example.net/t/abc", wan_vlan=100)
    async with serving(gw) as agent:
        run = await net_snmp("snmpget", *v2c(agent), SYS_NAME, f"{GATEWAY}.1.0",
                             f"{GATEWAY}.2.0", f"{GATEWAY}.3.0", f"{GATEWAY}.4.0",
                             home=tmp_path)
        walk = await net_snmp("snmpwalk", *v2c(agent), "1.3.6.1.4.1.32473", home=tmp_path)
    assert run.rc == 0, run.text
    got = run.values()
    assert got[SYS_NAME] == "gw1"
    assert got[f"{GATEWAY}.1.0"] == "SLGW00001234"
    assert got[f"{GATEWAY}.2.0"].replace(" ", "").lower() == "02005e102030"
    assert got[f"{GATEWAY}.3.0"] == "https://phan.example.net/t/abc"
    assert got[f"{GATEWAY}.4.0"] == "100"
    assert list(walk.values()) == [f"{GATEWAY}.{n}.0" for n in (1, 2, 3, 4)]
