"""Simulator capacity: start time and memory of a lab, and of bringing every service up.

    python bench/sim_capacity.py [--topology configs/lab-scale.yaml] [--provision-all]

Reports (and writes to bench/results/sim_capacity.json):
  build    time to read the topology and build every device, ONT and gateway (state only)
  start    time to open the OLTs' NETCONF, SNMP and SSH faces on their own addresses
  rss      resident memory after start
With --provision-all, it then configures an internet service for every ONT (one bulk edit
per OLT, straight into the config engine — the agent's speed is measured elsewhere) and
reports the time until every ONT is operational with its service applied and every
gateway's management faces are open, and the memory then.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
from pathlib import Path
from typing import Any

from simulator.config import builder as b
from simulator.config import edit as ed
from simulator.devices import OntState
from simulator.lab import Lab, rss_mib
from simulator.topology import load_topology

REPO = Path(__file__).resolve().parent.parent


def provision_all(lab: Lab) -> None:
    for olt in lab.olts.values():
        uplink = next(iter(olt.uplinks))
        s_vlan = min(olt.uplinks[uplink])
        els = b.traffic_profile("tdp-100M", 100_000_000)
        by_port: dict[str, int] = {}
        for ont in olt.onts.values():
            n = by_port.get(ont.port, 0)
            by_port[ont.port] = n + 1
            p = olt.pon_ports.index(ont.port)
            onu = b.OnuSpec(ont.port, n, ont.serial)
            els += b.onu_registration(onu) + b.uni_tagging(onu, 1, 100)
            els += b.olt_service(b.ServiceSpec(onu, 1, 100, s_vlan, uplink, 1024 + p * 128 + n,
                                               1024 + p * 128 + n, "tdp-100M"))
        root = ed.edit(olt.running, b.combine(els)).root
        olt.check(root, olt.running)
        olt.set_running(root)


async def main() -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--topology", type=Path, default=REPO / "configs" / "lab-scale.yaml")
    ap.add_argument("--provision-all", action="store_true")
    args = ap.parse_args()

    result: dict[str, Any] = {"machine": f"{platform.machine()}, {platform.python_version()}",
                              "topology": str(args.topology.resolve().relative_to(REPO)
                                              if args.topology.resolve().is_relative_to(REPO)
                                              else args.topology)}
    rss0 = rss_mib()
    t0 = time.perf_counter()
    lab = Lab(load_topology(args.topology))
    result["build_s"] = round(time.perf_counter() - t0, 2)
    t1 = time.perf_counter()
    await lab.start()
    result["start_s"] = round(time.perf_counter() - t1, 2)
    result["ready_s"] = round(time.perf_counter() - t0, 2)
    result["rss_mib"] = round(rss_mib(), 1)
    result["rss_python_baseline_mib"] = round(rss0, 1)
    onts = [o for olt in lab.olts.values() for o in olt.onts.values()]
    result["olts"], result["onts"], result["gateways"] = (len(lab.olts), len(onts),
                                                          len(lab.gateways))
    if args.provision_all:
        t2 = time.perf_counter()
        provision_all(lab)
        result["provision_config_s"] = round(time.perf_counter() - t2, 2)
        async with asyncio.timeout(600):
            for name in lab.gateways:  # a gateway opens its faces once its service is up
                await lab.wait_gateway(name, up=True)
        not_up = [o.serial for o in onts if o.state != OntState.OPERATIONAL or not o.applied]
        if not_up:
            raise SystemExit(f"{len(not_up)} ONTs did not come up, e.g. {not_up[:3]}")
        result["all_services_up_s"] = round(time.perf_counter() - t2, 2)
        result["rss_all_up_mib"] = round(rss_mib(), 1)
        result["listening_gateways"] = sum(1 for g in lab.gateways.values() if g.ports)
    errors = await lab.stop()
    result["stop_errors"] = [repr(e) for e in errors]
    return result


if __name__ == "__main__":
    res = asyncio.run(main())
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "sim_capacity.json").write_text(json.dumps(res, indent=2) + "\n")
    width = max(len(k) for k in res)
    for k, v in res.items():
        print(f"{k:<{width}}  {v}")
