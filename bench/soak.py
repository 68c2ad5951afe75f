"""Soak: faults at rate at a larger size, by hand (tests/reliability/test_faults_at_rate.py is
the CI-sized run of the same thing, tests/reliability/faults_env.py the run itself).

    python -m bench.soak                         # 4x24 + 2x24 ONTs, 15 s of faults, 3 seeds
    python -m bench.soak --per-port 64 --seconds 60 --seeds 1

Prints one JSON summary per seed (faults injected, statuses right after the faults, final
statuses, audit findings, problems); exits 1 if any run found a problem."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

from tests.reliability.faults_env import run_faults


async def main(per_port: int, seconds: float, seeds: list[int], converge: float) -> int:
    failed = 0
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            s = await run_faults(Path(tmp), per_port_1=per_port, per_port_2=per_port,
                                 seed=seed, fault_seconds=seconds, converge_timeout=converge)
        print(json.dumps(s.as_json(), indent=2))
        failed += bool(s.problems)
    print(f"{len(seeds) - failed}/{len(seeds)} runs converged with no problem")
    return 1 if failed else 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-port", type=int, default=24, help="ONTs per PON port (olt1 has 4 "
                    "ports over NETCONF, olt2 2 over SNMP)")
    ap.add_argument("--seconds", type=float, default=15.0, help="seconds of faults")
    ap.add_argument("--seeds", type=int, default=3, help="runs, seeds 1..N")
    ap.add_argument("--converge-timeout", type=float, default=180.0)
    a = ap.parse_args()
    sys.exit(asyncio.run(main(a.per_port, a.seconds, list(range(1, a.seeds + 1)),
                              a.converge_timeout)))
