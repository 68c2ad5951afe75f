"""The SNMP client and driver against the simulator's SNMP face, over real UDP sockets."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import pytest

from drivers.errors import (
    AuthenticationError,
    DriverTimeoutError,
    NameResolutionError,
    SessionLostError,
    SnmpRejectedError,
    UnsupportedError,
)
from drivers.snmp.client import SnmpClient
from drivers.snmp.driver import SnmpDriver
from drivers.snmp.target import SnmpTarget
from drivers.snmp.varbind import (
    RowStatus,
    Varbind,
    VarType,
    octets,
    unsigned,
)
from simulator.devices import Olt, OntState, SnmpSettings
from tests.conftest import eventually
from tests.drivers.snmp_lab import sim_v2c, sim_v3
from tests.sim.snmp_tools import (
    KNOWN_SERIAL,
    ONT,
    SERVICE,
    STRANGER,
    free_udp_port,
    make_gateway,
    make_olt,
    operational,
    serving,
)

SYS_NAME = "1.3.6.1.2.1.1.5.0"


def onu_at(olt: Olt, port: str, onu_id: int) -> str | None:
    for onu in olt.view.onus.values():
        if onu.port == port and onu.onu_id == onu_id:
            return onu.vani
    return None


def service_columns(uni: int, c_vlan: int, s_vlan: int, gem: int,
                    profile: str = "100M") -> dict[int | str, object]:
    return {"ponctlServiceUni": unsigned(uni), "ponctlServiceCVlan": unsigned(c_vlan),
            "ponctlServiceSVlan": unsigned(s_vlan), "ponctlServiceProfile": octets(profile),
            "ponctlServiceGemPort": unsigned(gem)}


# ---- reading -------------------------------------------------------------------------------
async def test_v2c_get_walk_and_bulk_by_name_and_number() -> None:
    olt = make_olt()
    await operational(olt, KNOWN_SERIAL)
    async with serving(olt) as agent, SnmpClient(sim_v2c(agent, "public")) as snmp:
        # Many OIDs, names and numbers mixed, in one GET; an absent row is a value, not an error.
        got = await snmp.get("sysName.0", "PONCTL-MIB::ponctlOntSerial.1.5",
                             f"{ONT}.3.1.5", "ponctlOntOperStatus.1.5", "ponctlOntSerial.1.99")
        assert [vb.value for vb in got[:4]] == ["olt1", KNOWN_SERIAL, "Main Street 1", 3]
        assert got[1].oid == f"{ONT}.2.1.5"
        assert got[4].type == VarType.NO_SUCH_INSTANCE

        by_name = await snmp.walk_all("ponctlOntTable")
        by_number = await snmp.walk_all(f"{ONT[:-2]}")
        assert by_name == by_number
        assert {vb.oid for vb in by_name} >= {f"{ONT}.2.1.5", f"{ONT}.10.1.5"}
        assert all(vb.oid.startswith(ONT + ".") for vb in by_name)

        services = {vb.oid: vb.value for vb in await snmp.walk_all("ponctlServiceEntry")}
        assert services[f"{SERVICE}.3.1.5.1"] == 10  # C-VLAN
        assert services[f"{SERVICE}.4.1.5.1"] == 100  # S-VLAN
        autofind = await snmp.walk_all("ponctlAutofindSerial")
        assert [vb.value for vb in autofind] == [STRANGER]
        ports = await snmp.walk_all("ponctlPonPortName")
        assert [vb.value for vb in ports] == ["0/1/0", "0/1/1"]
        if_descr = await snmp.walk_all("ifDescr")
        assert [vb.value for vb in if_descr] == ["ct-0/1/0", "ct-0/1/1", "uplink-0/9/0"]

        # GETBULK: sysName.0 as a non-repeater, then three successors of ponctlPonPortName.
        bulk = await snmp.get_bulk("sysName", "ponctlPonPortName", non_repeaters=1,
                                   max_repetitions=3)
        assert bulk[0].oid == SYS_NAME
        assert [vb.value for vb in bulk[1:3]] == ["0/1/0", "0/1/1"]
        (nxt,) = await snmp.get_next("ponctlPonPortName")
        assert nxt.value == "0/1/0"
        assert await snmp.walk_all("ponctlNotifications") == []  # nothing readable there


async def test_v1_walks_with_getnext() -> None:
    async with serving(make_olt()) as agent, \
            SnmpClient(replace(sim_v2c(agent, "public"), version="v1")) as snmp:
        names = [vb.value for vb in await snmp.walk_all("ponctlPonPortName")]
        with pytest.raises(UnsupportedError):
            await snmp.get_bulk("sysName")
    assert names == ["0/1/0", "0/1/1"]


@pytest.mark.parametrize(("auth", "priv"), [("SHA", "AES"), ("SHA256", "AES256")])
async def test_v3_authpriv_get_walk_and_set(auth: str, priv: str) -> None:
    settings = SnmpSettings("public", "private", "ponctl", "ponctl-auth-key",
                            "ponctl-priv-key", auth, priv)
    olt = make_olt(settings=settings)
    async with serving(olt) as agent, \
            SnmpClient(sim_v3(agent, auth_protocol=auth, priv_protocol=priv)) as snmp:
        (name,) = await snmp.get("sysName.0")
        assert name.value == "olt1"
        ports = await snmp.walk_all("ponctlPonPortName")
        assert [vb.value for vb in ports] == ["0/1/0", "0/1/1"]
        by_number = await snmp.walk_all(f"{ONT}.2")
        assert [vb.value for vb in by_number] == [KNOWN_SERIAL]
        bulk = await snmp.get_bulk("ponctlOntSerial", max_repetitions=2)
        assert [vb.oid for vb in bulk] == [f"{ONT}.2.1.5", f"{ONT}.3.1.5"]
        await snmp.set([Varbind("ponctlOntDescription.1.5", VarType.OCTET_STRING, "Oak 3")])
        assert snmp.engine_id == agent.engine_id  # learned from the authenticated answer
    assert olt.view.onus["ont-0/1/0-5"].description == "Oak 3"


# ---- writing -------------------------------------------------------------------------------
async def test_set_many_varbinds_in_one_pdu() -> None:
    olt = make_olt(with_onts=False)
    async with serving(olt) as agent, SnmpClient(sim_v2c(agent)) as snmp:
        answer = await snmp.set([
            Varbind("ponctlOntDescription.1.5", VarType.OCTET_STRING, "Oak Lane 3"),
            Varbind(f"{ONT}.2.2.7", VarType.OCTET_STRING, "ABCD00000007"),
            Varbind(f"{ONT}.3.2.7", VarType.OCTET_STRING, "Elm Street 2"),
            Varbind("ponctlOntRowStatus.2.7", VarType.INTEGER, int(RowStatus.CREATE_AND_GO)),
        ])
        assert [vb.oid for vb in answer][-1] == f"{ONT}.10.2.7"
    assert olt.view.onus["ont-0/1/0-5"].description == "Oak Lane 3"
    vani = onu_at(olt, "0/1/1", 7)
    assert vani is not None
    assert (olt.view.onus[vani].serial, olt.view.onus[vani].description) == (
        "ABCD00000007", "Elm Street 2")


async def test_gateway_settings_set_and_read_back() -> None:
    gw = make_gateway(make_olt())
    async with serving(gw) as agent, SnmpClient(sim_v2c(agent)) as snmp:
        await snmp.set([Varbind("ponctlGatewayPhanUrl.0", VarType.OCTET_STRING,
                                "https://phan.example.net/t/xyz"),
                        Varbind("ponctlGatewayWanVlan.0", VarType.UNSIGNED, 300)])
        url, vlan, mac = await snmp.get("ponctlGatewayPhanUrl.0", "ponctlGatewayWanVlan.0",
                                        "ponctlGatewayMac.0")
    assert (url.value, vlan.type, vlan.value) == ("https://phan.example.net/t/xyz",
                                                  VarType.GAUGE32, 300)
    assert mac.type == VarType.HEX
    assert mac.text == "02:00:5e:10:20:30"
    assert (gw.phan_url, gw.wan_vlan) == ("https://phan.example.net/t/xyz", 300)


async def test_rows_register_an_onu_and_a_service_then_the_ont_arrives() -> None:
    olt = make_olt(with_onts=False)
    base = olt.running
    async with serving(olt) as agent, SnmpClient(sim_v2c(agent)) as snmp:
        await snmp.create_row("ponctlOntEntry", (2, 7), {
            "ponctlOntSerial": octets("ABCD00000007"),
            3: octets("Elm Street 2"),  # ponctlOntDescription, by column number
        }, status_column="ponctlOntRowStatus")
        await snmp.create_row("PONCTL-MIB::ponctlServiceEntry", "2.7.1",
                              service_columns(2, 20, 200, 1207),  # type: ignore[arg-type]
                              status_column=8)
        vani = onu_at(olt, "0/1/1", 7)
        assert vani is not None
        (svc,) = olt.view.services_of(vani)
        assert (svc.uni, svc.c_vlan, svc.s_vlan, svc.gemport_id) == (2, 20, 200, 1207)
        oper, applied = await snmp.get("ponctlOntOperStatus.2.7", "ponctlServiceApplied.2.7.1")
        assert (oper.value, applied.value) == (1, 2)  # notPresent, not applied

        ont = olt.add_ont("ABCD00000007", "0/1/1")
        await operational(olt, ont.serial)
        await eventually(lambda: bool(ont.applied))
        (done,) = ont.applied.values()
        assert (done.uni, done.c_vlan, done.s_vlan, done.gemport_id) == (2, 20, 200, 1207)
        oper, applied = await snmp.get("ponctlOntOperStatus.2.7", "ponctlServiceApplied.2.7.1")
        assert (oper.value, applied.value) == (3, 1)  # operational, applied

        await snmp.destroy_row("ponctlOntEntry", (2, 7), "ponctlOntRowStatus")
        assert onu_at(olt, "0/1/1", 7) is None
        (gone,) = await snmp.get("ponctlServiceRowStatus.2.7.1")
        assert gone.type == VarType.NO_SUCH_INSTANCE  # the service went with the ONT
        await eventually(lambda: ont.state == OntState.UNCLAIMED)
    assert olt.running.same(base)


async def test_read_only_community_cannot_write() -> None:
    olt = make_olt()
    base = olt.running
    async with serving(olt) as agent, SnmpClient(sim_v2c(agent, "public")) as snmp:
        with pytest.raises(SnmpRejectedError) as refused:
            await snmp.set([Varbind("ponctlOntDescription.1.5", VarType.OCTET_STRING, "x")])
        assert refused.value.status in ("notWritable", "noAccess", "authorizationError")
        assert refused.value.host == "127.0.0.1"
        (desc,) = await snmp.get("ponctlOntDescription.1.5")
    assert desc.value == "Main Street 1"
    assert olt.running is base


async def test_wrong_type_is_refused_and_nothing_in_the_pdu_applies() -> None:
    olt = make_olt()
    base = olt.running
    async with serving(olt) as agent, SnmpClient(sim_v2c(agent)) as snmp:
        with pytest.raises(SnmpRejectedError) as refused:
            await snmp.set([
                Varbind("ponctlOntDescription.1.5", VarType.OCTET_STRING, "fine"),
                Varbind("ponctlOntSerial.1.5", VarType.INTEGER, 5),  # OCTET STRING expected
            ])
    assert (refused.value.status, refused.value.index, refused.value.oid) == (
        "wrongType", 2, f"{ONT}.2.1.5")
    assert olt.running is base  # the good half did not apply either: one PDU


# ---- the driver contract -------------------------------------------------------------------
async def test_contract_load_compare_commit_rollback() -> None:
    olt = make_olt(with_onts=False)
    base = olt.running
    async with serving(olt) as agent, SnmpDriver(sim_v2c(agent)) as dev:
        caps = dev.capabilities
        assert (caps.protocol, caps.candidate, caps.confirmed_commit, caps.validate) == (
            "snmp", False, False, False)
        assert (caps.transactions, caps.rollback, caps.notifications) == (
            True, "best-effort", False)
        assert "sysObjectID=1.3.6.1.4.1.32473.1" in caps.details

        change = [
            Varbind("ponctlOntDescription.1.5", VarType.OCTET_STRING, "Oak Lane 3"),
            Varbind("ponctlOntSerial.2.7", VarType.OCTET_STRING, "ABCD00000007"),
            Varbind("ponctlOntRowStatus.2.7", VarType.INTEGER, int(RowStatus.CREATE_AND_GO)),
            *(Varbind.of(f"{name}.2.7.1", typed)  # type: ignore[arg-type]
              for name, typed in service_columns(1, 30, 100, 1230).items()),
            Varbind("ponctlServiceRowStatus.2.7.1", VarType.INTEGER, 4),
        ]
        await dev.load_candidate(change)
        diff = await dev.compare()
        assert len(diff.lines) == len(change)
        assert diff.lines[0] == (f"{ONT}.3.1.5 (ponctlOntDescription.1.5): OctetString "
                                 "'Main Street 1' -> OctetString 'Oak Lane 3'")
        assert diff.lines[2] == (f"{ONT}.10.2.7 (ponctlOntRowStatus.2.7): absent -> "
                                 "Integer 4 (createAndGo)")
        assert olt.running is base  # comparing changed nothing

        result = await dev.commit()
        assert result.changed
        assert not result.confirm_pending
        vani = onu_at(olt, "0/1/1", 7)
        assert vani is not None
        assert [s.c_vlan for s in olt.view.services_of(vani)] == [30]

        await dev.load_candidate(change)  # the same again: already there
        assert (await dev.compare()).empty  # (createAndGo is met by the existing row)
        assert not (await dev.commit()).changed

        await dev.rollback()
        assert onu_at(olt, "0/1/1", 7) is None
        assert olt.view.onus["ont-0/1/0-5"].description == "Main Street 1"
        assert olt.running.same(base)
        await dev.rollback()  # nothing left to undo

        with pytest.raises(UnsupportedError):
            await dev.load_candidate(change, replace=True)
        with pytest.raises(UnsupportedError):
            await dev.commit(confirm_timeout=60)
        with pytest.raises(UnsupportedError):
            await dev.confirm()
        with pytest.raises(UnsupportedError):
            dev.events()
        await dev.load_candidate(change[:1])
        await dev.discard()
        assert (await dev.compare()).empty


async def test_rollback_recreates_a_destroyed_row() -> None:
    olt = make_olt()
    async with serving(olt) as agent, SnmpDriver(sim_v2c(agent)) as dev:
        await dev.load_candidate([Varbind("ponctlOntRowStatus.1.5", VarType.INTEGER, 6)])
        assert (await dev.commit()).changed
        assert onu_at(olt, "0/1/0", 5) is None
        await dev.rollback()  # best-effort: the ONT row comes back from its old columns
        serial, desc, status = await dev.client.get(
            "ponctlOntSerial.1.5", "ponctlOntDescription.1.5", "ponctlOntRowStatus.1.5")
    assert (serial.value, desc.value, status.value) == (KNOWN_SERIAL, "Main Street 1", 1)
    assert onu_at(olt, "0/1/0", 5) is not None


async def test_refused_commit_changes_nothing_and_keeps_the_candidate() -> None:
    olt = make_olt()
    base = olt.running
    async with serving(olt) as agent, SnmpDriver(sim_v2c(agent)) as dev:
        bad = [Varbind("ponctlOntDescription.1.5", VarType.OCTET_STRING, "fine"),
               Varbind("ponctlServiceSVlan.1.5.1", VarType.UNSIGNED, 300)]  # no uplink has it
        await dev.load_candidate(bad)
        with pytest.raises(SnmpRejectedError) as refused:
            await dev.commit()
        assert refused.value.status in ("inconsistentValue", "commitFailed")
        assert len((await dev.compare()).lines) == 2  # still staged
        await dev.rollback()  # no commit went through: nothing to undo
        snap = await dev.get_config(["ponctlOntDescription", "sysName.0"])
    assert olt.running is base
    assert [vb.value for vb in snap.data] == ["Main Street 1", "olt1"]
    assert snap.source == "running"


async def test_get_config_and_state_walk_subtrees() -> None:
    olt = make_olt()
    await operational(olt, KNOWN_SERIAL)
    async with serving(olt) as agent, SnmpDriver(sim_v2c(agent, "public")) as dev:
        config = await dev.get_config("ponctlServiceTable")
        state = await dev.get_state(["ponctlOntOperStatus", "ponctlPonPortOntCount"])
        everything = await dev.get_config()
    assert {vb.oid.rsplit(".", 3)[0] for vb in config.data} == {
        f"{SERVICE}.{c}" for c in range(2, 9)}
    assert [vb.value for vb in state.data] == [3, 1, 0]  # ONT up; ONTs per port
    assert state.source == "state"
    assert len(everything.data) > len(config.data) + len(state.data)


# ---- faults --------------------------------------------------------------------------------
async def test_packet_loss_times_out_after_every_retry() -> None:
    olt = make_olt()
    async with serving(olt) as agent:
        olt.faults.set("snmp_loss", 1.0)
        async with SnmpClient(sim_v2c(agent, "public", timeout=0.2, retries=2)) as snmp:
            started = time.perf_counter()
            with pytest.raises(DriverTimeoutError) as timed_out:
                await snmp.get("sysName.0")
            took = time.perf_counter() - started
            assert isinstance(timed_out.value, TimeoutError)
            assert 0.6 <= took < 1.5, took  # timeout * (retries + 1), then give up
            olt.faults.clear()
            (name,) = await snmp.get("sysName.0")  # the same client recovers
    assert name.value == "olt1"


async def test_latency_past_the_timeout_is_a_timeout() -> None:
    olt = make_olt()
    async with serving(olt) as agent:
        olt.faults.set("latency", 0.5)
        async with SnmpClient(sim_v2c(agent, "public", timeout=0.2, retries=0)) as fast:
            with pytest.raises(DriverTimeoutError):
                await fast.get("sysName.0")
        async with SnmpClient(sim_v2c(agent, "public", timeout=1.5, retries=0)) as patient:
            (name,) = await patient.get("sysName.0")
    assert name.value == "olt1"


async def test_wrong_credentials_v2c_time_out_and_v3_fail_authentication() -> None:
    olt = make_olt()
    async with serving(olt) as agent:
        olt.faults.set("wrong_credentials", True)
        v2c = SnmpDriver(sim_v2c(agent, timeout=0.2, retries=0))
        with pytest.raises(DriverTimeoutError):
            await v2c.connect()  # no answer at all, as for an unknown community
        assert not v2c.connected
        v3 = SnmpDriver(sim_v3(agent))
        started = time.perf_counter()
        with pytest.raises(AuthenticationError, match="usmStatsWrongDigests"):
            await v3.connect()  # the agent reports the wrong digest: no waiting
        assert time.perf_counter() - started < 1.8  # a timeout would take 2 s and more
        olt.faults.clear()
        async with SnmpDriver(sim_v3(agent)) as ok:
            assert ok.connected
    async with serving(make_olt()) as agent:
        wrong_key = SnmpDriver(sim_v3(agent, auth_key="not-the-auth-key"))
        with pytest.raises(AuthenticationError):
            await wrong_key.connect()


async def test_unknown_name_and_silent_port() -> None:
    with pytest.raises(NameResolutionError):
        await SnmpClient(SnmpTarget("no-such-olt.invalid")).open()
    # Nothing listens on the port: over UDP that looks exactly like a silent agent.
    port = free_udp_port()
    async with SnmpClient(SnmpTarget("127.0.0.1", port, timeout=0.2, retries=0)) as snmp:
        with pytest.raises(DriverTimeoutError, match="cannot tell these apart"):
            await snmp.get("sysName.0")


async def test_close_fails_pending_requests() -> None:
    olt = make_olt()
    async with serving(olt) as agent:
        olt.faults.set("latency", 2.0)
        snmp = SnmpClient(sim_v2c(agent, "public", timeout=5, retries=0))
        await snmp.open()
        pending = asyncio.create_task(snmp.get("sysName.0"))
        await asyncio.sleep(0.05)
        await snmp.close()
        with pytest.raises(SessionLostError):
            await pending
        with pytest.raises(SessionLostError):
            await snmp.get("sysName.0")
        await snmp.close()  # idempotent
