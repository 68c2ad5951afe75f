"""The provisioning engine over real sockets against the simulated lab: olt1 over NETCONF (SSH
password from the environment, host key checked against a known_hosts file), olt2 over SNMP
(community from the environment); a fresh SQLite store; the shipped catalog.

Covers: an order becoming active (with its history), awaiting activation (nothing pushed),
awaiting prerequisites (no ONT bound; configuration missing), an offline ONT (connection error,
not retried blindly, active by itself once the ONT is seen), idempotent resend, audit finding an
out-of-band change and resend healing it, crash-resume without duplicates, SNMP, activation on
time by the scheduler, and termination (removal)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from agent.catalog import Catalog, load_catalog
from agent.connect import driver_factory
from agent.engine import ChangeRefused, Engine, digest, service_name
from agent.errors import ErrorClass as DriverErrorClass
from agent.profiles import load_profile
from agent.push import RetryPolicy
from agent.render import render, render_removal
from agent.settings import Settings, SettingsError
from agent.status import ErrorClass, Status
from agent.store import ALLOC_IDS, GEMPORTS, OntState, PushAction, PushPhase, Store
from drivers.netconf import NetconfDriver
from drivers.snmp import SnmpDriver
from simulator.config import builder as b
from simulator.control import OobBody, _apply_oob
from simulator.devices import OntState as SimOntState
from simulator.lab import Lab
from tests.conftest import REPO, eventually

FAST = RetryPolicy(attempts=2, base=0.01, cap=0.05)
HWTC = "HWTC1A2B3C4D"  # olt1 0/1/1, plugged in, unclaimed
ALCL = "ALCLB2C3D4E5"  # olt1 0/1/1, plugged in, unclaimed
ZTE = "ZTEG00C0FFEE"  # olt2 0/1/0, plugged in, unclaimed
PASSWORD_VAR = "PONCTL_TEST_OLT_PASSWORD"
COMMUNITY_VAR = "PONCTL_TEST_SNMP_RW"


@dataclass
class Env:
    lab: Lab
    store: Store
    catalog: Catalog
    settings: Settings

    def engine(self, **kw: object) -> Engine:
        opts: dict[str, object] = {"schedule": False, "verify_timeout": 3.0, "retry": FAST}
        opts.update(kw)
        return Engine(self.store, self.catalog, self.settings, **opts)  # type: ignore[arg-type]


def lab_settings(lab: Lab, tmp_path: Path) -> Settings:
    olt1, olt2 = lab.olts["olt1"], lab.olts["olt2"]
    key = lab.host_keys["olt1"].export_public_key().decode().strip()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{olt1.ports['netconf']} {key}\n", encoding="utf-8")
    return Settings.model_validate({
        "store": str(tmp_path / "ponctl.sqlite3"),
        "devices": [
            {"name": "olt1", "address": "127.0.0.1", "protocol": "netconf",
             "port": olt1.ports["netconf"], "profile": "sim-olt-netconf",
             "ssh": {"username": olt1.credentials.username, "password": {"env": PASSWORD_VAR},
                     "known_hosts": str(known)}},
            {"name": "olt2", "address": "127.0.0.1", "protocol": "snmp",
             "port": olt2.ports["snmp"], "profile": "sim-olt-snmp",
             "snmp": {"version": "v2c", "community": {"env": COMMUNITY_VAR}}},
        ],
    })


@pytest.fixture
async def env(lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Env]:
    monkeypatch.setenv(PASSWORD_VAR, lab.olts["olt1"].credentials.password)
    monkeypatch.setenv(COMMUNITY_VAR, lab.olts["olt2"].snmp.community_rw)
    settings = lab_settings(lab, tmp_path)
    async with Store(settings.store) as store:
        yield Env(lab, store, load_catalog(REPO / "configs" / "catalog.yaml"), settings)


def now() -> datetime:
    return datetime.now(UTC)


async def order_for(store: Store, serial: str | None, olt: str = "olt1", port: str = "0/1/1",
                    *, isp: str = "fibrenet", service_type: str = "internet",
                    start: datetime | None = None, object_id: str = "obj-1") -> str:
    await store.create_object(object_id, "12 Fibre Lane, flat 3")
    if serial is not None:
        await store.upsert_ont(serial, olt, port, state=OntState.UP)
        await store.bind(object_id, serial)
    created = await store.create_order(object_id, isp, service_type,
                                       start or now() - timedelta(minutes=1))
    return created.order.id


def applied(lab: Lab, serial: str) -> list[tuple[int, int]]:
    ont = lab.find_ont(serial)
    return sorted((a.c_vlan, a.s_vlan) for a in ont.applied.values())


def operational(lab: Lab, serial: str) -> bool:
    return lab.find_ont(serial).state == SimOntState.OPERATIONAL


async def history(store: Store, order_id: str) -> list[tuple[str, str | None]]:
    return [(e.status, e.error_class.value if e.error_class else None)
            for e in await store.order_events(order_id)]


# ---- the business flow -------------------------------------------------------------------------
async def test_an_order_becomes_active_and_its_history_lists_the_transitions(env: Env) -> None:
    oid = await order_for(env.store, HWTC)
    async with env.engine() as engine:
        st = await engine.reconcile(oid)
    assert st.status is Status.ACTIVE, st.message
    assert st.error_class is None
    assert operational(env.lab, HWTC)
    assert applied(env.lab, HWTC) == [(100, 1000)]  # fibrenet internet: C-VLAN 100, S-VLAN 1000
    svc = env.lab.olts["olt1"].view.services
    assert [(s.c_vlan, s.s_vlan, s.uplink) for s in svc.values()
            if s.vani.startswith("ont-0/1/1-")] == [(100, 1000, "0/9/0")]
    assert await history(env.store, oid) == [
        ("created", None), ("awaiting-provisioning", None), ("active", None)]
    [push] = await env.store.pushes_of(oid)
    assert push.phase is PushPhase.VERIFIED
    assert push.payload_digest.startswith("sha256:")


async def test_an_order_starting_tomorrow_awaits_activation_and_pushes_nothing(env: Env) -> None:
    olt = env.lab.olts["olt1"]
    before = olt.running
    tomorrow = now() + timedelta(days=1)
    oid = await order_for(env.store, HWTC, start=tomorrow)
    async with env.engine() as engine:
        st = await engine.reconcile(oid)
    assert st.status is Status.AWAITING_ACTIVATION
    assert st.activates_at == tomorrow
    assert await env.store.pushes_of(oid) == ()
    assert olt.running is before or olt.running == before
    assert applied(env.lab, HWTC) == []
    assert (await history(env.store, oid))[-1] == ("awaiting-activation", None)


async def test_an_object_without_an_ont_awaits_prerequisites_listing_it(env: Env) -> None:
    oid = await order_for(env.store, None, object_id="obj-empty")
    async with env.engine() as engine:
        st = await engine.reconcile(oid)
    assert st.status is Status.AWAITING_PREREQUISITES
    assert st.error_class is None  # waiting for a technician, nothing is wrong
    assert any("no ONT bound to object 'obj-empty'" in p for p in st.prerequisites)
    assert await env.store.pushes_of(oid) == ()


async def test_a_catalog_gap_is_configuration_missing_and_listed(env: Env) -> None:
    oid = await order_for(env.store, HWTC, isp="speedy", service_type="iptv")
    async with env.engine() as engine:
        st = await engine.reconcile(oid)
    assert st.status is Status.AWAITING_PREREQUISITES
    assert st.error_class is ErrorClass.CONFIGURATION_MISSING
    assert "ISP 'speedy' has no VLAN for service type 'iptv'" in st.prerequisites
    assert await env.store.pushes_of(oid) == ()
    assert (await history(env.store, oid))[-1] == ("awaiting-prerequisites",
                                                   "configuration-missing")


async def test_an_offline_ont_waits_then_activates_by_itself_when_seen(env: Env) -> None:
    oid = await order_for(env.store, ALCL)
    ont = env.lab.find_ont(ALCL)
    ont.set_power(False)
    async with env.engine() as engine:
        st = await engine.reconcile(oid)
        assert st.status is Status.AWAITING_PROVISIONING
        assert st.error_class is ErrorClass.CONNECTION_ERROR, st.message
        assert ALCL in st.message
        pushes = await env.store.pushes_of(oid)
        assert [p.phase for p in pushes] in ([PushPhase.ROLLED_BACK], [PushPhase.FAILED])
        # not retried blindly
        assert (await engine.reconcile(oid)).error_class is ErrorClass.CONNECTION_ERROR
        assert len(await env.store.pushes_of(oid)) == 1
        # the ONT arrives: discovery re-reconciles the order by itself
        ont.set_power(True)
        await eventually(lambda: ont.state in (SimOntState.UNCLAIMED, SimOntState.OPERATIONAL))
        [after] = await engine.on_ont_seen(ALCL, "olt1", "0/1/1", OntState.UP)
    assert after.status is Status.ACTIVE, after.message
    assert applied(env.lab, ALCL) == [(100, 1000)]
    statuses = await history(env.store, oid)
    assert ("awaiting-provisioning", "connection-error") in statuses
    assert statuses[-1] == ("active", None)


async def test_an_ont_reported_absent_is_a_connection_error_without_a_push(env: Env) -> None:
    oid = await order_for(env.store, ALCL)
    async with env.engine() as engine:
        [st] = await engine.on_ont_seen(ALCL, "olt1", "0/1/1", OntState.ABSENT,
                                        condition="dying gasp")
        assert st.error_class is ErrorClass.CONNECTION_ERROR
        assert "dying gasp" in st.message
        assert await env.store.pushes_of(oid) == ()
        [st] = await engine.on_ont_seen(ALCL, "olt1", "0/1/1", OntState.UP)
    assert st.status is Status.ACTIVE, st.message


async def test_resending_an_active_order_changes_nothing(env: Env) -> None:
    oid = await order_for(env.store, HWTC)
    olt = env.lab.olts["olt1"]
    async with env.engine() as engine:
        assert (await engine.reconcile(oid)).status is Status.ACTIVE
        running = olt.running
        services = dict(olt.view.services)
        st = await engine.resend(oid)
    assert st.status is Status.ACTIVE
    assert olt.running == running
    assert olt.view.services.keys() == services.keys()
    last = (await env.store.pushes_of(oid))[-1]
    assert last.phase is PushPhase.VERIFIED
    assert "already held" in last.message
    # the resend shows in the history (being pushed, then active again)
    assert [s for s, _ in await history(env.store, oid)][-2:] == ["awaiting-provisioning",
                                                                  "active"]


async def test_audit_finds_an_out_of_band_change_and_resend_heals_it(env: Env) -> None:
    oid = await order_for(env.store, HWTC)
    olt = env.lab.olts["olt1"]
    async with env.engine() as engine:
        assert (await engine.reconcile(oid)).status is Status.ACTIVE
        assert await engine.audit("olt1") == []  # nothing differs yet
        [name] = [n for n, s in olt.view.services.items() if s.vani.startswith("ont-0/1/1-")]
        _apply_oob(olt, OobBody(action="delete-service", service=name))
        await eventually(lambda: applied(env.lab, HWTC) == [])
        [finding] = await engine.audit("olt1")
        assert finding.order_id == oid
        assert finding.diff
        assert not finding.healed  # heal_mismatches is off by default
        st = await engine.status(oid)
        assert st.status is Status.AWAITING_PROVISIONING
        assert st.error_class is ErrorClass.MISMATCH
        events = await env.store.order_events(oid)
        assert events[-1].error_class is ErrorClass.MISMATCH
        assert finding.diff in events[-1].message
        healed = await engine.resend(oid)
        assert healed.status is Status.ACTIVE, healed.message
        assert await engine.audit("olt1") == []
    assert applied(env.lab, HWTC) == [(100, 1000)]
    assert [s for s, _ in await history(env.store, oid)][-2:] == ["awaiting-provisioning",
                                                                  "active"]


async def test_audit_heals_by_itself_when_the_setting_says_so(env: Env) -> None:
    oid = await order_for(env.store, HWTC)
    olt = env.lab.olts["olt1"]
    env.settings = env.settings.model_copy(update={"heal_mismatches": True})
    async with env.engine() as engine:
        assert (await engine.reconcile(oid)).status is Status.ACTIVE
        [name] = [n for n, s in olt.view.services.items() if s.vani.startswith("ont-0/1/1-")]
        _apply_oob(olt, OobBody(action="delete-service", service=name))
        [finding] = await engine.audit("olt1")
        assert finding.healed
        assert (await engine.status(oid)).status is Status.ACTIVE
    assert applied(env.lab, HWTC) == [(100, 1000)]


async def test_resume_completes_a_push_a_crash_left_pending_without_duplicates(
        env: Env) -> None:
    oid = await order_for(env.store, HWTC)
    olt = env.lab.olts["olt1"]
    async with env.engine() as engine:
        plan = await engine.plan(oid)
    payload = render(plan.profile, [plan.ont], [plan.service])
    # The agent recorded the intent, then died before touching the device.
    first = await env.store.begin_push("olt1", digest(payload), order_id=oid)
    async with env.engine() as engine:
        st = await engine.status(oid)
        assert st.status is Status.AWAITING_PROVISIONING
        assert (await engine.reconcile(oid)).status is Status.AWAITING_PROVISIONING
        assert len(await env.store.pushes_of(oid)) == 1  # reconcile leaves it to resume
        [done] = await engine.resume()
        assert done.id == first
        assert done.phase is PushPhase.VERIFIED
        assert (await engine.status(oid)).status is Status.ACTIVE
    running = olt.running
    # Died again, this time after the device already took it: the replay changes nothing.
    second = await env.store.begin_push("olt1", digest(payload), order_id=oid)
    async with env.engine() as engine:
        [done] = await engine.resume()
        assert (done.id, done.phase) == (second, PushPhase.VERIFIED)
        assert await env.store.pending_pushes() == ()
    assert olt.running == running
    vani = f"ont-{plan.ont.pon_port}-{plan.ont.onu_id}"
    assert len(olt.view.services_of(vani)) == 1
    assert applied(env.lab, HWTC) == [(100, 1000)]


async def test_an_snmp_order_on_olt2_becomes_active(env: Env) -> None:
    # PONCTL-MIB cannot create bandwidth profiles: the OLT must hold the catalog's profile
    # (the lab's olt2 starts with none), as an operator would have configured it on the box.
    env.lab.olts["olt2"].force_edit(b.traffic_profile("tdp-1G", 1_000_000_000, 100_000_000))
    oid = await order_for(env.store, ZTE, "olt2", "0/1/0")
    async with env.engine() as engine:
        st = await engine.reconcile(oid)
    assert st.status is Status.ACTIVE, st.message
    assert operational(env.lab, ZTE)
    assert applied(env.lab, ZTE) == [(100, 1000)]


async def test_the_scheduler_activates_an_order_when_its_start_date_arrives(env: Env) -> None:
    # Far enough ahead that a loaded machine still sees it waiting when the engine starts.
    oid = await order_for(env.store, HWTC, start=now() + timedelta(seconds=2.5))
    async with env.engine(schedule=True, max_sleep=30.0) as engine:
        assert (await engine.status(oid)).status is Status.AWAITING_ACTIVATION
        deadline = asyncio.get_running_loop().time() + 10
        while (await engine.status(oid)).status is not Status.ACTIVE:
            assert asyncio.get_running_loop().time() < deadline, "not activated on time"
            await asyncio.sleep(0.05)
    assert applied(env.lab, HWTC) == [(100, 1000)]
    statuses = [s for s, _ in await history(env.store, oid)]
    assert statuses.index("awaiting-activation") < statuses.index("active")


async def test_terminating_an_order_removes_its_service(env: Env) -> None:
    # IPTV (S-VLAN 2000, C-VLAN 200): no other subscriber shares its uplink sub-interface. (The
    # sim-olt-netconf profile names the uplink sub-interface by S-VLAN and C-VLAN only, so
    # removing a service that shares it with another ONT, e.g. the lab's preconfigured
    # internet services on 1000/100, is refused by the OLT: see the report.)
    oid = await order_for(env.store, HWTC, service_type="iptv")
    olt = env.lab.olts["olt1"]
    async with env.engine() as engine:
        assert (await engine.reconcile(oid)).status is Status.ACTIVE
        plan = await engine.plan(oid)
        await env.store.request_removal(oid, "customer left")
        st = await engine.reconcile(oid)
    assert st.status is Status.TERMINATED, st.message
    vani = f"ont-{plan.ont.pon_port}-{plan.ont.onu_id}"
    assert olt.view.services_of(vani) == []
    assert vani not in olt.view.onus
    assert await env.store.get_allocation(HWTC) is None
    assert (await history(env.store, oid))[-1][0] == "terminated"


# ---- pure pieces --------------------------------------------------------------------------------
def test_service_names_are_stable_and_device_safe() -> None:
    assert service_name("ord-1042", "internet") == "ord-1042-internet"
    odd = service_name("crm:2026/0001-with-a-very-long-reference", "internet")
    assert odd == service_name("crm:2026/0001-with-a-very-long-reference", "internet")
    assert odd.startswith("svc-")
    assert len(odd) <= 32


def test_driver_factory_resolves_secrets_and_reports_missing_ones(
        lab_free_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    nc, snmp = lab_free_settings.devices
    monkeypatch.delenv(PASSWORD_VAR, raising=False)
    with pytest.raises(SettingsError, match=PASSWORD_VAR):
        driver_factory(nc, load_profile("sim-olt-netconf"))
    monkeypatch.setenv(PASSWORD_VAR, "s3cret")
    driver = driver_factory(nc, load_profile("sim-olt-netconf"))()
    assert isinstance(driver, NetconfDriver)
    assert "s3cret" not in repr(driver.target)
    monkeypatch.setenv(COMMUNITY_VAR, "private")
    assert isinstance(driver_factory(snmp, load_profile("sim-olt-snmp"))(), SnmpDriver)
    with pytest.raises(SettingsError, match="profile"):
        driver_factory(nc, load_profile("sim-olt-snmp"))
    assert DriverErrorClass.CONNECTION.value == ErrorClass.CONNECTION_ERROR.value


@pytest.fixture
def lab_free_settings(tmp_path: Path) -> Settings:
    return Settings.model_validate({"devices": [
        {"name": "olt1", "address": "127.0.0.1", "protocol": "netconf", "port": 830,
         "profile": "sim-olt-netconf",
         "ssh": {"username": "admin", "password": {"env": PASSWORD_VAR},
                 "known_hosts": str(tmp_path / "known_hosts")}},
        {"name": "olt2", "address": "127.0.0.1", "protocol": "snmp", "port": 161,
         "profile": "sim-olt-snmp", "snmp": {"version": "v2c",
                                             "community": {"env": COMMUNITY_VAR}}}]})


# ---- several services on one ONT ----------------------------------------------------------------
def catalog_with(tmp_path: Path, **unis: int) -> Catalog:
    """The shipped catalog with some service types moved to another UNI (the shipped one puts
    every service type on UNI 1)."""
    data = yaml.safe_load((REPO / "configs" / "catalog.yaml").read_text(encoding="utf-8"))
    for service_type, uni in unis.items():
        data["service_types"][service_type]["uni"] = uni
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return load_catalog(path)


def keep_clear_of_the_labs_own_services(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lab's pre-provisioned ONTs hold GEM ports and alloc-ids the agent's store never
    allocated (the allocator does not read the device): hand out only numbers they don't use."""
    svcs = lab.olts["olt1"].view.services.values()
    gems = {s.gemport_id for s in svcs}
    allocs = {s.alloc_id for s in svcs}
    monkeypatch.setattr("agent.store.GEMPORTS", [g for g in GEMPORTS if g not in gems])
    monkeypatch.setattr("agent.store.ALLOC_IDS", [a for a in ALLOC_IDS if a not in allocs])


async def test_two_services_on_one_ont_get_their_own_gemports_and_come_and_go_apart(
        env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keep_clear_of_the_labs_own_services(env.lab, monkeypatch)
    env.catalog = catalog_with(tmp_path, iptv=2)  # internet on UNI 1, IPTV on UNI 2
    internet = await order_for(env.store, HWTC)
    iptv = (await env.store.create_order("obj-1", "fibrenet", "iptv", now())).order.id
    olt = env.lab.olts["olt1"]
    async with env.engine() as engine:
        assert (await engine.reconcile(internet)).status is Status.ACTIVE
        st = await engine.reconcile(iptv)
        assert st.status is Status.ACTIVE, st.message
        p_internet, p_iptv = await engine.plan(internet), await engine.plan(iptv)
        assert p_internet.ont == p_iptv.ont  # one ONT, one onu-id
        assert p_internet.service.gemport_id != p_iptv.service.gemport_id
        assert p_internet.service.alloc_id != p_iptv.service.alloc_id
        vani = f"ont-{p_iptv.ont.pon_port}-{p_iptv.ont.onu_id}"
        on_olt = {s.uni: (s.c_vlan, s.gemport_id, s.alloc_id) for s in olt.view.services_of(vani)}
        assert on_olt == {
            1: (100, p_internet.service.gemport_id, p_internet.service.alloc_id),
            2: (200, p_iptv.service.gemport_id, p_iptv.service.alloc_id)}
        await eventually(lambda: applied(env.lab, HWTC) == [(100, 1000), (200, 2000)])
        assert await engine.audit("olt1") == []

        await env.store.request_removal(internet, "customer keeps only TV")
        st = await engine.reconcile(internet)
        assert st.status is Status.TERMINATED, st.message
        # IPTV is untouched: still on the OLT, the ONT still registered, nothing to re-apply
        assert [(s.uni, s.c_vlan, s.gemport_id) for s in olt.view.services_of(vani)] == [
            (2, 200, p_iptv.service.gemport_id)]
        assert vani in olt.view.onus
        await eventually(lambda: applied(env.lab, HWTC) == [(200, 2000)])
        assert (await engine.status(iptv)).status is Status.ACTIVE
        assert await engine.audit("olt1") == []
        assert (await engine.resend(iptv)).status is Status.ACTIVE
        assert (await env.store.pushes_of(iptv))[-1].message.startswith(
            "the device already held it")
    # the terminated order's numbers are free again; the ONT keeps its onu-id for IPTV
    assert await env.store.get_service_allocation(internet) is None
    kept = await env.store.get_service_allocation(iptv)
    assert kept is not None
    assert kept.gemport == p_iptv.service.gemport_id
    ont_alloc = await env.store.get_allocation(HWTC)
    assert ont_alloc is not None
    assert ont_alloc.onu_id == p_iptv.ont.onu_id


async def test_a_second_service_on_the_same_uni_is_configuration_missing(env: Env) -> None:
    # The shipped catalog puts internet and VoIP on UNI 1: every OLT profile keys a service's
    # entries by its UNI, so the later order must not overwrite the earlier one.
    internet = await order_for(env.store, HWTC)
    voip = (await env.store.create_order("obj-1", "fibrenet", "voip", now())).order.id
    async with env.engine() as engine:
        assert (await engine.reconcile(internet)).status is Status.ACTIVE
        running = env.lab.olts["olt1"].running
        await engine.reconcile(voip)
        events = await env.store.order_events(voip)
        assert events[-1].error_class is ErrorClass.CONFIGURATION_MISSING
        assert f"UNI 1 of ONT {HWTC} already carries order {internet}" in events[-1].message
        assert env.lab.olts["olt1"].running.same(running)
        assert await env.store.pushes_of(voip) == ()
        assert (await engine.status(internet)).status is Status.ACTIVE


# ---- removal is idempotent on every OLT profile --------------------------------------------------
def olt1_over(lab: Lab, tmp_path: Path, protocol: str) -> Settings:
    """Settings with olt1 reached over ``protocol``: NETCONF, the SSH CLI, or SNMP."""
    olt1 = lab.olts["olt1"]
    device: dict[str, object] = {"name": "olt1", "address": "127.0.0.1", "protocol": protocol}
    if protocol == "snmp":
        device |= {"port": olt1.ports["snmp"], "profile": "sim-olt-snmp",
                   "snmp": {"version": "v2c", "community": {"env": COMMUNITY_VAR}}}
    else:
        face = "netconf" if protocol == "netconf" else "ssh"
        key = lab.host_keys["olt1"].export_public_key().decode().strip()
        known = tmp_path / f"known_hosts_{face}"
        known.write_text(f"[127.0.0.1]:{olt1.ports[face]} {key}\n", encoding="utf-8")
        device |= {"port": olt1.ports[face],
                   "profile": "sim-olt-netconf" if face == "netconf" else "sim-olt-cli",
                   "ssh": {"username": olt1.credentials.username,
                           "password": {"env": PASSWORD_VAR}, "known_hosts": str(known)}}
    return Settings.model_validate({"store": str(tmp_path / "ponctl.sqlite3"),
                                    "devices": [device]})


@pytest.mark.parametrize("protocol", ["netconf", "ssh", "snmp"])
async def test_a_removal_replayed_after_a_crash_sends_nothing_and_terminates(
        env: Env, tmp_path: Path, protocol: str) -> None:
    # The agent recorded the removal push, the OLT took it, the agent died before recording
    # the result: the restarted agent replays a removal of what is already gone. (Before
    # removals were compared, the CLI sent `undo service-port N` again and the box refused.)
    env.settings = olt1_over(env.lab, tmp_path, protocol)
    oid = await order_for(env.store, HWTC, service_type="iptv")
    olt = env.lab.olts["olt1"]
    async with env.engine() as engine:
        st = await engine.reconcile(oid)
        assert st.status is Status.ACTIVE, st.message
        await env.store.request_removal(oid, "customer left")
        plan = await engine.plan(oid)
    vani = f"ont-{plan.ont.pon_port}-{plan.ont.onu_id}"
    payload = render_removal(plan.profile, plan.service, with_ont=True)
    pid = await env.store.begin_push("olt1", digest(payload), order_id=oid,
                                     action=PushAction.REMOVE)
    async with driver_factory(plan.device, plan.profile)() as driver:
        await driver.load_candidate(payload)
        assert not (await driver.compare()).empty
        await driver.commit()
        await eventually(lambda: vani not in olt.view.onus)
        await driver.load_candidate(payload)  # what the box would be sent again: nothing
        assert (await driver.compare()).empty
        await driver.discard()
    before = olt.running
    async with env.engine() as engine:  # the restarted agent
        [push] = await engine.resume()
        st = await engine.status(oid)
    assert push.id == pid
    assert push.phase is PushPhase.VERIFIED, push.message
    assert push.message == "the device already held it, read back equal"  # nothing committed
    assert olt.running.same(before)
    assert st.status is Status.TERMINATED, st.message
    assert await env.store.get_allocation(HWTC) is None
    assert await env.store.get_service_allocation(oid) is None


# ---- changing an order ---------------------------------------------------------------------------
async def test_changing_an_active_order_removes_the_old_service_then_applies_the_new(
        env: Env) -> None:
    # Internet and IPTV both land on UNI 1 in the shipped catalog: the old service must be
    # gone before the new one is applied (the new order waits for the UNI until then).
    await env.store.create_object("obj-1", "12 Fibre Lane, flat 3")
    await env.store.upsert_ont(HWTC, "olt1", "0/1/1", state=OntState.UP)
    await env.store.bind("obj-1", HWTC)
    old = (await env.store.create_order("obj-1", "fibrenet", "internet",
                                        now() - timedelta(minutes=1),
                                        external_ref="OSS-77")).order.id
    olt = env.lab.olts["olt1"]
    async with env.engine() as engine:
        assert (await engine.reconcile(old)).status is Status.ACTIVE
        vani = f"ont-0/1/1-{(await engine.plan(old)).ont.onu_id}"
        done = await engine.change(old, service_type="iptv", reason="customer wants TV")
        assert done.replaced
        assert done.status.status is Status.ACTIVE, done.status.message
        assert done.previous_status is not None
        assert done.previous_status.status is Status.TERMINATED
        new = done.order_id
        assert new != old
        assert [(s.uni, s.c_vlan, s.s_vlan) for s in olt.view.services_of(vani)] == [
            (1, 200, 2000)]
        assert vani in olt.view.onus  # the ONT stays registered for the new service
        await eventually(lambda: applied(env.lab, HWTC) == [(200, 2000)])
        assert await engine.audit("olt1") == []
        # the same change again: nothing more happens
        again = await engine.change(old, service_type="iptv")
        assert (again.order_id, again.status.status) == (new, Status.ACTIVE)
    old_order, new_order = await env.store.get_order(old), await env.store.get_order(new)
    assert old_order is not None
    assert new_order is not None
    assert (new_order.object_id, new_order.isp, new_order.service_type) == (
        "obj-1", "fibrenet", "iptv")
    assert (old_order.external_ref, new_order.external_ref) == (None, "OSS-77")
    old_events = [e.message for e in await env.store.order_events(old)]
    assert any(m.startswith(f"changed: replaced by order {new}") and "OSS-77" in m
               for m in old_events)
    assert (await history(env.store, old))[-1][0] == "terminated"
    new_events = await env.store.order_events(new)
    assert new_events[0].message.startswith(f"created as a change of order {old}")
    assert "OSS-77" in new_events[0].message
    assert new_events[-1].status == "active"
    assert await env.store.get_service_allocation(old) is None
    assert await env.store.successor_of(old) == new


async def test_changing_an_order_not_yet_provisioned_updates_it_in_place(env: Env) -> None:
    oid = await order_for(env.store, None, start=now() + timedelta(days=1))
    async with env.engine() as engine:
        done = await engine.change(oid, service_type="voip")
        assert (done.order_id, done.replaced) == (oid, False)
        assert done.status.status is Status.AWAITING_PREREQUISITES
    order = await env.store.get_order(oid)
    assert order is not None
    assert order.service_type == "voip"
    events = [(e.status, e.message) for e in await env.store.order_events(oid)]
    assert ("changed", "changed: fibrenet internet -> fibrenet voip") in events
    assert await env.store.successor_of(oid) is None


async def test_a_change_the_catalog_cannot_provision_is_refused_and_writes_nothing(
        env: Env) -> None:
    oid = await order_for(env.store, HWTC, isp="speedy")
    async with env.engine() as engine:
        assert (await engine.reconcile(oid)).status is Status.ACTIVE
        running = env.lab.olts["olt1"].running
        events = await env.store.order_events(oid)
        for kw, field, text in (({"service_type": "fax"}, "service_type", "not in the catalog"),
                                ({"isp": "nonet"}, "isp", "not in the catalog"),
                                ({"service_type": "iptv"}, "service_type", "speedy")):
            with pytest.raises(ChangeRefused, match=text) as err:
                await engine.change(oid, **kw)
            assert err.value.field == field
        assert env.lab.olts["olt1"].running.same(running)
        assert await env.store.order_events(oid) == events
        assert (await engine.status(oid)).status is Status.ACTIVE
    assert await env.store.successor_of(oid) is None
