"""Faults at rate: a lab of generated ONTs on a NETCONF OLT (olt1) and an SNMP OLT (olt2), orders
provisioned by the engine while the simulator injects faults at random (fixed seed), then the
faults stop and every order must converge. Shared by tests/reliability/test_faults_at_rate.py
(CI size) and bench/soak.py (larger, by hand).

What "converge" drives after the faults stop is what the running agent and its operators do:
discovery reports an ONT that is back (``Engine.on_ont_seen``: connection errors retry by
themselves), the audit finds configuration a reboot lost (healed, ``heal_mismatches``), and an
operator resends an order the device refused while it was refusing."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.catalog import load_catalog
from agent.engine import Engine
from agent.push import RetryPolicy
from agent.settings import Settings
from agent.status import ErrorClass, Status
from agent.store import OntState, Store
from simulator.config.derive import interfaces
from simulator.devices import Olt
from simulator.devices import OntState as SimOntState
from simulator.lab import Lab
from simulator.topology import Topology
from tests.conftest import REPO, running_lab

PASSWORD_VAR = "PONCTL_REL_OLT_PASSWORD"
COMMUNITY_VAR = "PONCTL_REL_SNMP_RW"
# (ISP, service type) -> (C-VLAN, S-VLAN) in the shipped catalog
VLANS = {("fibrenet", "internet"): (100, 1000), ("fibrenet", "iptv"): (200, 2000),
         ("speedy", "internet"): (101, 1001)}


@dataclass
class Expect:
    order_id: str
    serial: str
    olt: str
    isp: str
    service_type: str
    status: Status = Status.ACTIVE
    error_class: ErrorClass | None = None


@dataclass
class Summary:
    onts: int
    orders: int
    seed: int
    fault_seconds: float
    converge_seconds: float = 0.0
    rounds: int = 0
    injected: Counter[str] = field(default_factory=Counter)
    after_faults: Counter[str] = field(default_factory=Counter)  # status/error right after
    final: Counter[str] = field(default_factory=Counter)
    audit: Counter[str] = field(default_factory=Counter)  # audit findings while converging
    problems: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"onts": self.onts, "orders": self.orders, "seed": self.seed,
                "fault_seconds": self.fault_seconds,
                "converge_seconds": round(self.converge_seconds, 2), "rounds": self.rounds,
                "injected": dict(self.injected), "after_faults": dict(self.after_faults),
                "final": dict(self.final),
                "audit": dict(self.audit), "problems": self.problems}


def topology(per_port_1: int, per_port_2: int) -> Topology:
    """olt1: 4 PON ports, olt2: 2 PON ports, generated unclaimed ONTs, no gateways."""
    def olt(name: str, ports: int, per_port: int, vlans: list[Any]) -> dict[str, Any]:
        return {"name": name, "pon_ports": ports,
                "uplinks": [{"port": "0/9/0", "vlans": vlans}],
                "generate": {"onts_per_port": per_port, "vendor": "RELB"}}
    return Topology.model_validate({
        "name": "reliability", "defaults": {"ranging_delay": 0.02},
        "olts": [olt("olt1", 4, per_port_1, ["1000-1009", 2000, 3000]),
                 olt("olt2", 2, per_port_2, ["1000-1009", 2000])]})


def settings_for(lab: Lab, tmp_path: Path) -> Settings:
    olt1, olt2 = lab.olts["olt1"], lab.olts["olt2"]
    key = lab.host_keys["olt1"].export_public_key().decode().strip()
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{olt1.ports['netconf']} {key}\n", encoding="utf-8")
    return Settings.model_validate({
        "store": str(tmp_path / "ponctl.sqlite3"),
        "heal_mismatches": True,
        "devices": [
            {"name": "olt1", "address": "127.0.0.1", "protocol": "netconf",
             "port": olt1.ports["netconf"], "profile": "sim-olt-netconf", "timeout": 3,
             "ssh": {"username": olt1.credentials.username, "password": {"env": PASSWORD_VAR},
                     "known_hosts": str(known)}},
            {"name": "olt2", "address": "127.0.0.1", "protocol": "snmp", "timeout": 3,
             "port": olt2.ports["snmp"], "profile": "sim-olt-snmp",
             "snmp": {"version": "v2c", "community": {"env": COMMUNITY_VAR}}},
        ],
    })


# ---- what is on the devices --------------------------------------------------------------------
def device_problems(olt: Olt, expected: list[Expect]) -> list[str]:
    """Partial or duplicated configuration on ``olt`` against the orders that should be on it:
    every ONU registration carries a complete service, every service its ONU, every VLAN
    sub-interface and v-enet belongs to a service, each active order's ONT is registered once
    with exactly its service, applied on the ONT itself; nothing else is there."""
    out: list[str] = []
    view = olt.view
    name = olt.name
    for fw in view.other_forwarders:
        out.append(f"{name}: forwarder {fw} joins no user and network sub-interface pair")
    for svc in view.services.values():
        if svc.problems:
            out.append(f"{name}: service {svc.name} is partial: {'; '.join(svc.problems)}")
        if svc.vani not in view.onus:
            out.append(f"{name}: service {svc.name} on v-ani {svc.vani} that is not registered")
    for vani, onu in view.onus.items():
        if not view.services_of(vani):
            out.append(f"{name}: ONU {vani} ({onu.serial}) registered without a service")
    used = {s.name for svc in view.services.values()
            for s in (svc.uni_subif, svc.olt_subif, svc.uplink_subif) if s is not None}
    venets = {svc.olt_subif.lower for svc in view.services.values()}
    for f in interfaces(olt.running):
        if f.subif is not None and f.name not in used:
            out.append(f"{name}: VLAN sub-interface {f.name} belongs to no service")
        if f.venet_lower is not None and f.name not in venets:
            out.append(f"{name}: v-enet {f.name} belongs to no service")
    active = {e.serial: e for e in expected if e.status is Status.ACTIVE}
    serials = Counter(onu.serial for onu in view.onus.values())
    for serial, n in serials.items():
        if serial not in active:
            out.append(f"{name}: ONU {serial} is registered but no active order wants it")
        elif n != 1:
            out.append(f"{name}: ONU {serial} is registered {n} times")
    for serial, e in active.items():
        reg = view.onu_by_serial(serial)
        if reg is None:
            out.append(f"{name}: active order {e.order_id}: ONT {serial} is not registered")
            continue
        # (the OLT names a service by its forwarder; the agent's service name is in the
        # NETCONF/SNMP rendering only): one service, with the order's VLANs
        got = [(s.c_vlan, s.s_vlan) for s in view.services_of(reg.vani)]
        want = [VLANS[(e.isp, e.service_type)]]
        if got != want:
            out.append(f"{name}: ONT {serial} carries {got}, expected {want}")
        ont = olt.onts[serial]
        on_ont = sorted((a.c_vlan, a.s_vlan) for a in ont.applied.values())
        if ont.state != SimOntState.OPERATIONAL or on_ont != want:
            out.append(f"{name}: ONT {serial} is {ont.state} with {on_ont} applied")
    return out


# ---- the run -----------------------------------------------------------------------------------
async def _chaos(lab: Lab, rng: random.Random, seconds: float, summary: Summary,
                 flappers: list[str]) -> None:
    """Switch faults at rate for ``seconds``: SNMP loss 10% all along; every 50 ms tick,
    latency redrawn, a 10% chance of dropping replies mid-way for one tick; a window of
    refused commits and one of a held lock on each OLT; olt1 rebooted once (unsaved config
    lost); some ONTs power-flapping."""
    olt1, olt2 = lab.olts["olt1"], lab.olts["olt2"]
    olt2.faults.set("snmp_loss", 0.1)
    summary.injected["snmp_loss 0.1 (olt2, whole run)"] += 1
    loop = asyncio.get_running_loop()
    start = loop.time()
    windows: dict[tuple[str, str], tuple[float, float]] = {}
    for olt in (olt1, olt2):
        for fault in ("refuse_commit", "lock_held"):
            at = rng.uniform(0.1, 0.6) * seconds
            windows[(olt.name, fault)] = (at, at + rng.uniform(0.1, 0.2) * seconds)
    reboot_at = rng.uniform(0.4, 0.7) * seconds
    rebooted = False
    flaps = {s: rng.uniform(0.05, 0.8) * seconds for s in flappers}
    down: dict[str, float] = {}
    while (now := loop.time() - start) < seconds:
        for olt in (olt1, olt2):
            olt.faults.set("latency", rng.choice((0.0, 0.0, 0.005, 0.02, 0.05)))
            drop = rng.random() < 0.1
            olt.faults.set("drop_mid_reply", drop)
            summary.injected["drop_mid_reply ticks"] += drop
            for fault in ("refuse_commit", "lock_held"):
                lo, hi = windows[(olt.name, fault)]
                on = lo <= now < hi
                if on and not getattr(olt.faults, fault):
                    summary.injected[f"{fault} windows"] += 1
                olt.faults.set(fault, "simulated refusal: config locked by NMS" if on
                               and fault == "refuse_commit" else on if fault == "lock_held"
                               else None)
        if not rebooted and now >= reboot_at:
            rebooted = True
            olt1.reboot()
            summary.injected["olt1 reboots (unsaved config lost)"] += 1
        for serial, at in list(flaps.items()):
            if now >= at:
                lab.find_ont(serial).set_power(False)
                down[serial] = now + rng.uniform(0.1, 0.4)
                summary.injected["ONT power flaps"] += 1
                del flaps[serial]
        for serial, until in list(down.items()):
            if now >= until:
                lab.find_ont(serial).set_power(True)
                del down[serial]
        await asyncio.sleep(0.05)
    for serial in down:
        lab.find_ont(serial).set_power(True)
    for olt in (olt1, olt2):
        olt.faults.clear()


def _key(st: Any) -> str:
    return f"{st.status.value}/{st.error_class.value if st.error_class else '-'}"


async def _discovery(engine: Engine, lab: Lab, e: Expect) -> None:
    """What discovery reports about the order's ONT now (as a watch would)."""
    ont = lab.find_ont(e.serial)
    up = ont.state in (SimOntState.OPERATIONAL, SimOntState.UNCLAIMED, SimOntState.RANGING)
    await engine.on_ont_seen(e.serial, e.olt, ont.port, OntState.UP if up else OntState.ABSENT,
                             condition="" if up else f"ONT is {ont.state}")


async def converge(engine: Engine, lab: Lab, expected: list[Expect], summary: Summary,
                   timeout: float) -> None:
    t0 = time.monotonic()
    while True:
        summary.rounds += 1
        # the audit finds configuration the reboot lost and heals it (heal_mismatches)
        for olt in ("olt1", "olt2"):
            for finding in await engine.audit(olt):
                summary.audit[("healed" if finding.healed else "found") if finding.diff
                              else "error"] += 1
        pending = []
        for e in expected:
            st = await engine.status(e.order_id)
            if (st.status, st.error_class) != (e.status, e.error_class):
                pending.append((e, st))
        if not pending and not any(device_problems(lab.olts[o], [e for e in expected
                                                                  if e.olt == o])
                                   for o in ("olt1", "olt2")):
            break
        if time.monotonic() - t0 > timeout:
            break

        async def step(e: Expect, st: Any) -> None:
            if st.error_class is ErrorClass.CONNECTION_ERROR or st.status is Status.ACTIVE:
                await _discovery(engine, lab, e)
            else:  # refused or mismatch: the operator resends
                await engine.resend(e.order_id)

        await asyncio.gather(*(step(e, st) for e, st in pending))
        await asyncio.sleep(0.1)
    summary.converge_seconds = time.monotonic() - t0


async def run_faults(tmp_path: Path, *, per_port_1: int, per_port_2: int, seed: int,
                     fault_seconds: float, converge_timeout: float = 60.0) -> Summary:
    """Provision one order per generated ONT under faults, then converge; the summary lists
    every problem found (an empty ``problems`` is a pass)."""
    import os

    rng = random.Random(seed)
    random.seed(seed)  # the simulator's SNMP loss and the retry jitter draw from here
    async with running_lab(topology(per_port_1, per_port_2)) as lab:
        os.environ[PASSWORD_VAR] = lab.olts["olt1"].credentials.password
        os.environ[COMMUNITY_VAR] = lab.olts["olt2"].snmp.community_rw
        settings = settings_for(lab, tmp_path)
        catalog = load_catalog(REPO / "configs" / "catalog.yaml")
        serials = {name: sorted(olt.onts) for name, olt in lab.olts.items()}
        summary = Summary(sum(len(v) for v in serials.values()), 0, seed, fault_seconds)
        # A fibre cut that never heals: its order must end as a connection error, nothing
        # of it left on the OLT.
        cut = serials["olt1"][-1]
        lab.find_ont(cut).set_fibre(False)
        start = datetime.now(UTC) - timedelta(minutes=1)
        expected: list[Expect] = []
        async with Store(settings.store) as store:
            for olt, items in serials.items():
                for i, serial in enumerate(items):
                    isp, stype = (("fibrenet", "iptv") if olt == "olt1" and i % 3 == 1 else
                                  ("speedy", "internet") if i % 3 == 2 else
                                  ("fibrenet", "internet"))
                    obj = f"obj-{olt}-{i}"
                    await store.create_object(obj, f"{i} Fault Street, {olt}")
                    await store.upsert_ont(serial, olt, lab.find_ont(serial).port,
                                           state=OntState.UP)
                    await store.bind(obj, serial)
                    oid = (await store.create_order(obj, isp, stype, start)).order.id
                    e = Expect(oid, serial, olt, isp, stype)
                    if serial == cut:
                        e.status = Status.AWAITING_PROVISIONING
                        e.error_class = ErrorClass.CONNECTION_ERROR
                    expected.append(e)
            summary.orders = len(expected)
            flappers = rng.sample([s for s in serials["olt1"] if s != cut], 2) + \
                rng.sample(serials["olt2"], 1)
            async with Engine(store, catalog, settings, schedule=False, verify_timeout=1.5,
                              retry=RetryPolicy(attempts=3, base=0.02, cap=0.2)) as engine:
                async def provision(e: Expect) -> None:
                    await asyncio.sleep(rng.uniform(0, fault_seconds * 0.8))
                    await engine.reconcile(e.order_id)

                await asyncio.gather(_chaos(lab, rng, fault_seconds, summary, flappers),
                                     *(provision(e) for e in expected))
                for e in expected:
                    summary.after_faults[_key(await engine.status(e.order_id))] += 1
                await converge(engine, lab, expected, summary, converge_timeout)
                for e in expected:
                    st = await engine.status(e.order_id)
                    summary.final[_key(st)] += 1
                    if (st.status, st.error_class) != (e.status, e.error_class):
                        summary.problems.append(
                            f"order {e.order_id} ({e.serial} on {e.olt}) is {_key(st)}, "
                            f"expected {e.status.value}/"
                            f"{e.error_class.value if e.error_class else '-'}: {st.message}")
                    pushes = await store.pushes_of(e.order_id)
                    if any(p.pending for p in pushes):
                        summary.problems.append(f"order {e.order_id} has a push left pending")
            for o in ("olt1", "olt2"):
                summary.problems += device_problems(lab.olts[o],
                                                    [e for e in expected if e.olt == o])
    return summary
