"""Load: consecutive daily runs with state (issue: state that survives anything, item 8).

Each day is one ``txcore run`` committing to the same state folder.  Reported
per day: seconds, and the state folder's size and index entries; both should
stay flat once the retention window is full.  Scale with environment
variables (defaults in brackets):

    TXCORE_BENCH_DAYS [30]   TXCORE_BENCH_MEMBERS [120000]
    TXCORE_BENCH_RATE [0.83] transactions per card per day (8.3 gives ~1M rows/day)
    TXCORE_BENCH_RETENTION [10] retention days, short so the window fills within the run

Run: ``pytest benchmarks/test_daily_runs.py -p no:cacheprovider -s``
"""
from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import txcore
from txcore.fixtures import make_fixtures

REPO = Path(__file__).resolve().parent.parent


def _env(name, default, cast=int):
    return cast(os.environ.get(name, default))


def test_daily_runs_stay_flat(benchmark, tmp_path):
    days = _env("TXCORE_BENCH_DAYS", 30)
    retention = _env("TXCORE_BENCH_RETENTION", 10)
    files = make_fixtures(tmp_path / "fx", members=_env("TXCORE_BENCH_MEMBERS", 120000),
                          days=days, seed=1, start=dt.date(2015, 11, 1),
                          rate=_env("TXCORE_BENCH_RATE", "0.83", float))
    cards, merchants, day_files = files[0], files[1], files[2:]
    state = tmp_path / "state"
    log = []

    def all_days():
        for i, day in enumerate(day_files):
            started = time.perf_counter()
            s = txcore.run([day], rules=REPO / "rules", cards=cards, merchants=merchants,
                           out_dir=tmp_path / "out" / str(i), state_dir=state,
                           retention_days=retention, progress=False)
            seconds = time.perf_counter() - started
            manifest = json.loads((state / "CURRENT").read_text())
            size = sum(p.stat().st_size for p in state.iterdir() if p.is_file())
            log.append({"day": i + 1, "rows": s["rows"]["input"], "seconds": round(seconds, 2),
                        "state_bytes": size, "index": manifest["counts"]["index"],
                        "counters": manifest["counts"]["counters"]})
            print(json.dumps(log[-1]))

    benchmark.pedantic(all_days, rounds=1, iterations=1)
    benchmark.extra_info["days"] = log
    assert len(log) == days
