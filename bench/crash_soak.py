"""Crash soak, by hand: kill -9 the agent at random points during a 1,000-ONT activation,
restart it on the same store, repeat; then every order must be active, each ONT's configuration
on its OLT exactly once, no order lost or duplicated (tests/agent/test_crash.py is the CI-sized
run of the same thing, tests/agent/crash_env.py the run itself).

    python -m bench.crash_soak                          # 1,000 ONTs, 8 kills, seeds 1..3
    python -m bench.crash_soak --onts 2000 --kills 12 --seeds 1

The simulated lab runs in this process (olt1 over NETCONF with four in five of the ONTs, olt2
over SNMP, watched by traps), the agent as a subprocess (``ponctl agent run``) killed with
SIGKILL a random 0.5-5 s after each start -- wherever that lands: start-up, the resume of what
the previous kill left pending, discovery, a bulk push -- while an OSS streams an object, a
binding and an order per ONT through the API, retrying while the agent is down. Prints each
kill and one JSON summary per seed; writes them to bench/results/crash_soak.json; exits 1 if
any run broke a check (the check's message and the agent's log tail are printed)."""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a script from anywhere

from tests.agent.crash_env import Shape, crash_lab, run_random_kills  # noqa: E402

RESULTS = REPO / "bench" / "results" / "crash_soak.json"


async def one(shape: Shape, kills: int, seed: int, delay: tuple[float, float],
              pace: float) -> dict[str, Any]:
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ponctl-crash-") as tmp:
        try:
            async with crash_lab(shape) as (lab, trap_port):
                summary = await run_random_kills(lab, trap_port, Path(tmp), kills=kills,
                                                 seed=seed, delay=delay, pace=pace)
        except AssertionError as exc:
            traceback.print_exc()
            return {"seed": seed, "ok": False, "problem": str(exc) or repr(exc),
                    "seconds": round(time.monotonic() - t0, 1)}
    return {"seed": seed, "ok": True, **summary.as_json()}


async def main(args: argparse.Namespace) -> int:
    shape = Shape.for_onts(args.onts)
    runs = []
    for seed in range(1, args.seeds + 1):
        print(f"crash soak: {shape.total} ONTs, {args.kills} kills, seed {seed}", flush=True)
        result = await one(shape, args.kills, seed, (args.min_delay, args.max_delay), args.pace)
        print(json.dumps({k: v for k, v in result.items() if k != "kill_points"}), flush=True)
        runs.append(result)
    ok = sum(1 for r in runs if r["ok"])
    report = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
              "machine": f"{platform.machine()}, Python {platform.python_version()}",
              "command": "python -m bench.crash_soak " + " ".join(sys.argv[1:]),
              "onts": shape.total, "kills_per_run": args.kills, "runs": runs,
              "runs_ok": ok}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"{ok}/{len(runs)} runs: every order active, no order lost or duplicated, each "
          f"ONT's configuration once; written to {args.output}")
    return 0 if ok == len(runs) else 1


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--onts", type=int, default=1000, help="generated ONTs (about; four in "
                    "five on the NETCONF OLT, at most 100 per PON port)")
    ap.add_argument("--kills", type=int, default=8, help="kills per run")
    ap.add_argument("--seeds", type=int, default=3, help="runs, seeds 1..N")
    ap.add_argument("--min-delay", type=float, default=0.5, help="seconds after a start, least")
    ap.add_argument("--max-delay", type=float, default=5.0, help="seconds after a start, most")
    ap.add_argument("--pace", type=float, default=0.04, help="seconds between two ONTs' "
                    "orders from the OSS")
    ap.add_argument("--output", type=Path, default=RESULTS)
    sys.exit(asyncio.run(main(ap.parse_args())))
