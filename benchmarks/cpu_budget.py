"""What the month costs in CPU, and how many cores each contender keeps busy: the budget
behind issue 13's floor and Dask targets (benchmarks/README.md, "Seventh pass").

    python benchmarks/cpu_budget.py [ROUNDS]        (default 3)

Runs ``contenders.py`` for the floor (1 and 2 threads), ``txcore run`` (one worker and
``--workers 2``) and the plan on two local processes, one after the other in each round,
on the hot-path benchmark's cached month (``test_hot_path.py`` makes it). Prints each
contender's median seconds, the CPU of its process (all threads) and that CPU over its
wall time, and for the plan the CPU its stages report (``stage_seconds``: the tasks'
CPU in the worker processes plus the client's).  What two cores can do follows: a run
cannot finish in less than half its CPU.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = Path(os.environ.get("TXCORE_BENCH_DATA", Path.home() / ".cache" / "txcore-bench"))
CONTENDERS = [("floor", 1), ("floor", 2), ("txcore", 1), ("txcore", 2), ("processes", 2)]


def one(name: str, threads: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix="txcore-budget-"))
    try:
        proc = subprocess.run(
            [sys.executable, str(HERE / "contenders.py"), name, str(threads),
             str(DATA / "members-120000-days-30"), str(DATA / "month-10000000.parquet"),
             str(out)], capture_output=True, text=True, check=True)
        return json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(rounds: int):
    got = {c: [] for c in CONTENDERS}
    for r in range(rounds):
        for c in CONTENDERS:
            got[c].append(one(*c))
            print(f"round {r + 1}: {c[0]} {c[1]}: {got[c][-1]['seconds']:.2f} s", file=sys.stderr)
    print("| contender | threads | seconds | process CPU | cores busy | tasks' + client's CPU |")
    print("|---|---:|---:|---:|---:|---:|")
    for (name, threads), runs in got.items():
        med = {k: statistics.median(r[k] for r in runs)
               for k in ("seconds", "process_cpu_seconds", "cores_busy")}
        stages = [sum(s["cpu"] for s in r["stage_seconds"].values())
                  for r in runs if r.get("stage_seconds")]
        print(f"| {name} | {threads} | {med['seconds']:.2f} s | {med['process_cpu_seconds']:.2f} s"
              f" | {med['cores_busy']:.2f} | "
              + (f"{statistics.median(stages):.2f} s |" if stages else "|"))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
