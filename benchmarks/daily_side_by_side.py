"""Day 1 against a full window, measured side by side (for a noisy, shared machine).

For each new day file: ``txcore run`` of it on an empty state, then on the full state
(which commits it), then the DuckDB daily peer on an empty database and on the full one.
The pairs run back to back, so the ratios compare like with like even when the machine's
load swings between minutes.  Prints one JSON line per day.

    python benchmarks/daily_side_by_side.py STATE_DIR DUCKDB_FILE CARDS MERCHANTS \\
        RETENTION DAY.parquet [DAY.parquet ...]

(the state and database a ``TXCORE_BENCH_PREFILL`` run of ``test_daily_runs.py`` left in
its ``--basetemp``; new days from ``txcore.fixtures.iter_fixtures`` after its last day).
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from test_daily_runs import _timed  # noqa: E402


def _txcore(day, state, cards, merchants, retention, out):
    return _timed([sys.executable, "-m", "txcore", "run", "--rules", str(HERE.parent / "rules"),
                   "--cards", str(cards), "--merchants", str(merchants), "-o", str(out),
                   "--state", str(state), "--retention-days", str(retention), "--no-progress",
                   str(day)])


def _duckdb(day, db, cards, merchants, retention, out):
    return _timed([sys.executable, str(HERE / "duckdb_daily.py"), str(db), str(day),
                   str(cards), str(merchants), str(out / "peer.parquet"), str(retention)])


def main(state, db, cards, merchants, retention, *days):
    for day in days:
        with tempfile.TemporaryDirectory(prefix="side-by-side-") as tmp:
            tmp = Path(tmp)
            row = {"day": Path(day).name}
            for name, fn, full in (("txcore", _txcore, state), ("duckdb", _duckdb, db)):
                out = tmp / f"out-{name}"
                out.mkdir()
                empty = tmp / f"empty-{name}"
                s1, r1 = fn(day, empty if name == "txcore" else tmp / "empty.duckdb", cards,
                            merchants, retention, out)
                shutil.rmtree(out)
                out.mkdir()
                s2, r2 = fn(day, full, cards, merchants, retention, out)
                row[name] = {"empty_s": round(s1, 2), "full_s": round(s2, 2),
                             "ratio": round(s2 / s1, 2), "empty_rss_mb": round(r1 / 2**20),
                             "full_rss_mb": round(r2 / 2**20)}
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
