"""Writing through the SNMP face with net-snmp's snmpset: RowStatus, atomicity, refusals."""

from __future__ import annotations

from pathlib import Path

from simulator.config import builder as b
from simulator.devices import Olt, OntState
from simulator.snmp import SnmpAgent
from tests.sim.snmp_tools import (
    AUTOFIND,
    GATEWAY,
    KNOWN_SERIAL,
    ONT,
    SERVICE,
    SYS_NAME,
    Run,
    make_gateway,
    make_olt,
    net_snmp,
    operational,
    serving,
    until,
    v2c,
    v3,
)


def service_args(row: str, uni: int, c_vlan: int, s_vlan: int, gem: int,
                 profile: str = "100M", status: int | None = 4) -> list[str]:
    args = [f"{SERVICE}.2.{row}", "u", str(uni), f"{SERVICE}.3.{row}", "u", str(c_vlan),
            f"{SERVICE}.4.{row}", "u", str(s_vlan), f"{SERVICE}.5.{row}", "s", profile,
            f"{SERVICE}.6.{row}", "u", str(gem)]
    if status is not None:
        args += [f"{SERVICE}.8.{row}", "i", str(status)]
    return args


async def rw_set(agent: SnmpAgent, home: Path, *args: str) -> Run:
    return await net_snmp("snmpset", *v2c(agent, "private"), *args, home=home)


def refused(run: Run, *reasons: str) -> bool:
    return run.rc != 0 and any(f"Reason: {r}" in run.text for r in reasons)


def onu_at(olt: Olt, port: str, onu_id: int) -> str | None:
    for onu in olt.view.onus.values():
        if onu.port == port and onu.onu_id == onu_id:
            return onu.vani
    return None


async def test_onu_and_service_rows_provision_an_arriving_ont(tmp_path: Path) -> None:
    olt = make_olt(with_onts=False)
    base = olt.running
    async with serving(olt) as agent:
        row = "2.7"  # PON port index 2 (0/1/1), onu-id 7
        run = await rw_set(agent, tmp_path, f"{ONT}.2.{row}", "s", "ABCD00000007",
                           f"{ONT}.3.{row}", "s", "Elm Street 2", f"{ONT}.10.{row}", "i", "4")
        assert run.rc == 0, run.text
        vani = onu_at(olt, "0/1/1", 7)
        assert vani is not None
        assert olt.view.onus[vani].serial == "ABCD00000007"
        assert olt.view.onus[vani].description == "Elm Street 2"

        run = await rw_set(agent, tmp_path, *service_args(f"{row}.1", 2, 20, 200, 1207))
        assert run.rc == 0, run.text
        (svc,) = olt.view.services_of(vani)
        assert (svc.uni, svc.c_vlan, svc.s_vlan, svc.uplink, svc.gemport_id, svc.profile) == (
            2, 20, 200, "0/9/0", 1207, "100M")
        assert svc.complete, svc.problems

        got = (await net_snmp("snmpget", *v2c(agent), f"{ONT}.5.{row}", f"{SERVICE}.7.{row}.1",
                              home=tmp_path)).values()
        assert got == {f"{ONT}.5.{row}": "1", f"{SERVICE}.7.{row}.1": "2"}  # absent, not applied

        ont = olt.add_ont("ABCD00000007", "0/1/1")
        await operational(olt, ont.serial)
        await until(lambda: bool(ont.applied))
        (applied,) = ont.applied.values()
        assert (applied.uni, applied.c_vlan, applied.s_vlan, applied.gemport_id) == (
            2, 20, 200, 1207)
        got = (await net_snmp("snmpget", *v2c(agent), f"{ONT}.5.{row}", f"{SERVICE}.7.{row}.1",
                              home=tmp_path)).values()
        assert got == {f"{ONT}.5.{row}": "3", f"{SERVICE}.7.{row}.1": "1"}  # up, applied

        run = await rw_set(agent, tmp_path, f"{ONT}.10.{row}", "i", "6")
        assert run.rc == 0, run.text
        assert onu_at(olt, "0/1/1", 7) is None
        assert olt.running.same(base)  # the service went with the ONT, nothing dangles
        await until(lambda: ont.state == OntState.UNCLAIMED)
        walk = await net_snmp("snmpwalk", *v2c(agent), AUTOFIND, home=tmp_path)
        assert "ABCD00000007" in walk.values().values()
        after = await net_snmp("snmpwalk", *v2c(agent), f"{SERVICE}.8", home=tmp_path)
        assert list(after.values()) == [f"{SERVICE}.8.1.5.1"]


async def test_service_indexes_are_stable_across_faces(tmp_path: Path) -> None:
    olt = make_olt()
    async with serving(olt) as agent:
        # Index 3 chosen by the manager; the pre-configured service keeps index 1.
        run = await rw_set(agent, tmp_path, *service_args("1.5.3", 2, 11, 100, 1105))
        assert run.rc == 0, run.text
        # A service added behind SNMP's back (as NETCONF or the CLI would) gets index 2.
        onu = b.OnuSpec("0/1/0", 5, KNOWN_SERIAL)
        olt.force_edit(b.uni_tagging(onu, 3, 12) + b.olt_service(
            b.ServiceSpec(onu, 3, 12, 200, "0/9/0", 1106, 1024, "100M")))
        walk = (await net_snmp("snmpwalk", *v2c(agent), f"{SERVICE}.3", home=tmp_path)).values()
        assert walk == {f"{SERVICE}.3.1.5.1": "10", f"{SERVICE}.3.1.5.2": "12",
                        f"{SERVICE}.3.1.5.3": "11"}
        run = await rw_set(agent, tmp_path, f"{SERVICE}.8.1.5.1", "i", "6")
        assert run.rc == 0, run.text
        walk = (await net_snmp("snmpwalk", *v2c(agent), f"{SERVICE}.3", home=tmp_path)).values()
        assert walk == {f"{SERVICE}.3.1.5.2": "12", f"{SERVICE}.3.1.5.3": "11"}
        assert sorted(s.c_vlan for s in olt.view.services.values()) == [11, 12]
        # Changing a column of an active row rebuilds that service under the same index.
        run = await rw_set(agent, tmp_path, f"{SERVICE}.3.1.5.3", "u", "13")
        assert run.rc == 0, run.text
        walk = (await net_snmp("snmpwalk", *v2c(agent), f"{SERVICE}.3", home=tmp_path)).values()
        assert walk == {f"{SERVICE}.3.1.5.2": "12", f"{SERVICE}.3.1.5.3": "13"}


async def test_read_only_community_cannot_set(tmp_path: Path) -> None:
    olt = make_olt()
    base = olt.running
    async with serving(olt) as agent:
        for args in ([f"{ONT}.3.1.5", "s", "changed"],
                     [f"{ONT}.2.2.9", "s", "ABCD00000009", f"{ONT}.10.2.9", "i", "4"],
                     [f"{SERVICE}.8.1.5.1", "i", "6"]):
            run = await net_snmp("snmpset", *v2c(agent, "public"), *args, home=tmp_path)
            assert refused(run, "notWritable", "noAccess", "authorizationError"), run.text
        got = (await net_snmp("snmpget", *v2c(agent), f"{ONT}.3.1.5", home=tmp_path)).values()
    assert olt.running is base
    assert got == {f"{ONT}.3.1.5": "Main Street 1"}


async def test_wrong_type_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    olt = make_olt()
    base = olt.running
    async with serving(olt) as agent:
        run = await rw_set(agent, tmp_path, *service_args("1.5.2", 2, 11, 100, 1105)[:3],
                           f"{SERVICE}.3.1.5.2", "i", "11",  # Integer32 where Unsigned32 is
                           *service_args("1.5.2", 2, 11, 100, 1105)[6:])
        assert refused(run, "wrongType"), run.text
        run = await rw_set(agent, tmp_path, f"{ONT}.3.1.5", "s", "fine",
                           f"{ONT}.2.1.5", "i", "5")  # the good half must not apply either
        assert refused(run, "wrongType"), run.text
    assert olt.running is base


async def test_service_without_uplink_for_its_s_vlan_is_refused(tmp_path: Path) -> None:
    olt = make_olt()
    base = olt.running
    async with serving(olt) as agent:
        run = await rw_set(agent, tmp_path, *service_args("1.5.2", 2, 11, 300, 1105))
        assert refused(run, "inconsistentValue", "commitFailed"), run.text
        # One PDU: a valid new ONT row and a service that cannot be built. All or nothing.
        run = await rw_set(agent, tmp_path, f"{ONT}.2.2.8", "s", "ABCD00000008",
                           f"{ONT}.10.2.8", "i", "4", *service_args("2.8.1", 1, 10, 300, 1208))
        assert refused(run, "inconsistentValue", "commitFailed"), run.text
        walk = await net_snmp("snmpwalk", *v2c(agent), f"{ONT}.10", home=tmp_path)
    assert olt.running is base
    assert onu_at(olt, "0/1/1", 8) is None
    assert list(walk.values()) == [f"{ONT}.10.1.5"]


async def test_create_and_wait_then_activate(tmp_path: Path) -> None:
    olt = make_olt()
    base = olt.running
    async with serving(olt) as agent:
        run = await rw_set(agent, tmp_path, f"{ONT}.10.2.9", "i", "5")
        assert run.rc == 0, run.text
        status = f"{ONT}.10.2.9"
        got = (await net_snmp("snmpget", *v2c(agent), status, home=tmp_path)).values()
        assert got == {status: "3"}  # notReady: the serial is missing
        run = await rw_set(agent, tmp_path, f"{ONT}.2.2.9", "s", "ABCD00000009")
        assert run.rc == 0, run.text
        got = (await net_snmp("snmpget", *v2c(agent), status, f"{ONT}.2.2.9",
                              home=tmp_path)).values()
        assert got == {status: "2", f"{ONT}.2.2.9": "ABCD00000009"}  # notInService
        assert olt.running is base  # nothing configured until the row is active
        run = await rw_set(agent, tmp_path, status, "i", "1")
        assert run.rc == 0, run.text
        got = (await net_snmp("snmpget", *v2c(agent), status, home=tmp_path)).values()
        assert got == {status: "1"}
    vani = onu_at(olt, "0/1/1", 9)
    assert vani is not None
    assert olt.view.onus[vani].serial == "ABCD00000009"


async def test_refusals_map_to_snmp_error_statuses(tmp_path: Path) -> None:
    olt = make_olt()
    base = olt.running
    async with serving(olt) as agent:
        cases = [
            ([f"{ONT}.3.2.99", "s", "no such row"], "noCreation"),
            ([f"{ONT}.3.9.1", "s", "no such PON port"], "noCreation"),
            ([SYS_NAME, "s", "renamed"], "notWritable"),
            ([f"{ONT}.5.1.5", "i", "3"], "notWritable"),
            ([f"{ONT}.10.1.5", "i", "3"], "wrongValue"),  # notReady cannot be set
            ([f"{ONT}.4.1.5", "i", "2"], "wrongValue"),  # admin down is not supported
            ([f"{ONT}.2.2.9", "s", "ABCDXYZW0009", f"{ONT}.10.2.9", "i", "4"], "wrongValue"),
            ([f"{ONT}.2.2.9", "s", "ABC", f"{ONT}.10.2.9", "i", "4"], "wrongLength"),
            ([f"{ONT}.10.1.5", "i", "4"], "inconsistentValue"),  # the row exists
            ([f"{ONT}.2.2.9", "s", KNOWN_SERIAL, f"{ONT}.10.2.9", "i", "4"],
             "inconsistentValue"),  # the serial is configured on another row
            ([f"{ONT}.10.2.9", "i", "4"], "inconsistentValue"),  # no serial
            ([f"{SERVICE}.8.2.9.1", "i", "4"], "inconsistentValue"),  # no such ONT row
            (service_args("1.5.2", 1, 11, 100, 1105, profile="other"),
             "inconsistentValue"),  # the ONT's T-CONT uses profile 100M
        ]
        for args, reason in cases:
            run = await rw_set(agent, tmp_path, *args)
            assert refused(run, reason), (args, run.text)
        assert olt.running is base
        olt.faults.refuse_commit = "configuration is locked for maintenance"
        run = await rw_set(agent, tmp_path, f"{ONT}.3.1.5", "s", "x")
        assert refused(run, "commitFailed"), run.text
        olt.faults.clear()
        olt.faults.lock_held = True
        run = await rw_set(agent, tmp_path, f"{ONT}.3.1.5", "s", "x")
        assert refused(run, "resourceUnavailable"), run.text
    assert olt.running is base


async def test_v3_authpriv_set(tmp_path: Path) -> None:
    olt = make_olt()
    async with serving(olt) as agent:
        run = await net_snmp("snmpset", *v3(agent), f"{ONT}.3.1.5", "s", "Oak Lane 3",
                             home=tmp_path)
    assert run.rc == 0, run.text
    assert olt.view.onus["ont-0/1/0-5"].description == "Oak Lane 3"


async def test_gateway_phan_url_and_wan_vlan(tmp_path: Path) -> None:
    gw = make_gateway(make_olt())
    url = f"{GATEWAY}.3.0"
    async with serving(gw) as agent:
        run = await rw_set(agent, tmp_path, url, "s", "https://phan.example.net/t/xyz",
                           f"{GATEWAY}.4.0", "u", "300")
        assert run.rc == 0, run.text
        got = (await net_snmp("snmpget", *v2c(agent), url, f"{GATEWAY}.4.0",
                              home=tmp_path)).values()
        assert got == {url: "https://phan.example.net/t/xyz", f"{GATEWAY}.4.0": "300"}
        assert (gw.phan_url, gw.wan_vlan) == ("https://phan.example.net/t/xyz", 300)
        for args, reason in (([url, "s", "ftp://phan.example.net/"], "wrongValue"),
                             ([url, "i", "1"], "wrongType"),
                             ([f"{GATEWAY}.4.0", "u", "4095"], "wrongValue"),
                             ([f"{GATEWAY}.1.0", "s", "SERIAL"], "notWritable")):
            run = await rw_set(agent, tmp_path, *args)
            assert refused(run, reason), (args, run.text)
        run = await net_snmp("snmpset", *v2c(agent, "public"), url, "s", "https://evil.example/",
                             home=tmp_path)
        assert refused(run, "notWritable", "noAccess", "authorizationError"), run.text
        run = await rw_set(agent, tmp_path, url, "s", "")
        assert run.rc == 0, run.text
    assert (gw.phan_url, gw.wan_vlan) == ("", 300)
