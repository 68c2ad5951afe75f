"""Scale: gateways share an SNMP engine; a big OLT's tables walk in order and quickly."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path

import pytest

from simulator.config import builder as b
from simulator.devices import Gateway, Olt
from simulator.snmp import SnmpAgent
from simulator.snmp import engine as snmp_engine
from tests.sim.snmp_tools import (
    CREDS,
    GATEWAY,
    ONT,
    SETTINGS,
    SYS_NAME,
    make_olt,
    net_snmp,
    serving,
    v2c,
)

STATUS = Path("/proc/self/status")


def rss_kib() -> int:
    for line in STATUS.read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not STATUS.exists(), reason="resident memory is read from /proc (Linux)")
async def test_gateways_share_one_engine_cheaply(tmp_path: Path) -> None:
    olt = make_olt(with_onts=False)
    gateways = [Gateway(f"gw{i}", "127.0.0.1", CREDS, SETTINGS, frozenset({"snmp"}),
                        f"SLGW{i:08d}", f"02:00:00:00:{i // 256:02x}:{i % 256:02x}", olt,
                        f"ABCD{i:08X}", 1) for i in range(201)]
    agents = [await SnmpAgent.start(gateways[0], "127.0.0.1", 0, [])]  # builds the engine
    try:
        gc.collect()
        before, started = rss_kib(), time.perf_counter()
        for gw in gateways[1:]:
            agents.append(await SnmpAgent.start(gw, "127.0.0.1", 0, []))
        seconds = time.perf_counter() - started
        gc.collect()
        per_agent_kib = (rss_kib() - before) / 200
        # An engine of its own costs ~1.4 MiB and ~150 ms; sharing must stay far below.
        assert per_agent_kib < 300, per_agent_kib
        assert seconds / 200 < 0.02, seconds
        assert len({a.engine_id for a in agents}) == 1
        for i in (1, 77, 200):  # each socket answers for its own gateway
            run = await net_snmp("snmpget", *v2c(agents[i]), SYS_NAME, f"{GATEWAY}.1.0",
                                 home=tmp_path)
            assert run.values() == {SYS_NAME: f"gw{i}", f"{GATEWAY}.1.0": f"SLGW{i:08d}"}
        gateways[77].faults.set("snmp_loss", 1.0)  # faults stay per device
        lost = await net_snmp("snmpget", *v2c(agents[77], timeout=0.3, retries=0), SYS_NAME,
                              home=tmp_path)
        kept = await net_snmp("snmpget", *v2c(agents[78]), SYS_NAME, home=tmp_path)
        assert "Timeout" in lost.text
        assert kept.values() == {SYS_NAME: "gw78"}
    finally:
        for agent in agents:
            await agent.close()
    loop = asyncio.get_running_loop()
    assert not snmp_engine._shared.get(loop)  # the last one out closed the shared engine


async def test_olt_and_gateway_engines_are_separate(tmp_path: Path) -> None:
    olt = make_olt()
    gw = Gateway("gw1", "127.0.0.1", CREDS, SETTINGS, frozenset({"snmp"}), "SLGW1",
                 "02:00:00:00:00:01", olt, "ABCD00000005", 1)
    async with serving(olt) as a, serving(gw) as g, serving(gw, shared_engine=False) as d:
        assert len({a.engine_id, g.engine_id, d.engine_id}) == 3
        for agent, name in ((a, "olt1"), (g, "gw1"), (d, "gw1")):
            run = await net_snmp("snmpget", *v2c(agent), SYS_NAME, home=tmp_path)
            assert run.values() == {SYS_NAME: name}


async def test_big_olt_walks_in_index_order(tmp_path: Path) -> None:
    olt = Olt("big", "127.0.0.1", CREDS, SETTINGS, frozenset({"snmp"}),
              [f"0/1/{p}" for p in range(8)], {"0/9/0": frozenset({100})})
    olt.force_edit(b.traffic_profile("100M", 100_000_000))
    expected = []
    for chunk in range(4):  # several edits, so no single one holds the loop for long
        edit = []
        for n in range(chunk * 64, chunk * 64 + 64):
            port, onu_id = n % 8, n // 8
            onu = b.OnuSpec(f"0/1/{port}", onu_id, f"ABCD{n:08X}")
            edit += b.onu_registration(onu)
            expected.append(((port + 1, onu_id), f"ABCD{n:08X}"))
        olt.force_edit(edit)
        await asyncio.sleep(0)
    expected.sort()
    async with serving(olt) as agent:
        started = time.perf_counter()
        run = await net_snmp("snmpbulkwalk", "-Cr25", *v2c(agent), f"{ONT}.2", home=tmp_path)
        seconds = time.perf_counter() - started
        count = await net_snmp("snmpget", *v2c(agent), "1.3.6.1.4.1.32473.1.1.1.1.4.3",
                               home=tmp_path)
    got = list(run.values().items())
    assert got == [(f"{ONT}.2.{p}.{i}", serial) for (p, i), serial in expected]
    assert count.values() == {"1.3.6.1.4.1.32473.1.1.1.1.4.3": "32"}
    assert seconds < 5, seconds
