"""Load: consecutive daily runs with state, and the DuckDB daily peer on the same days.

Each day is one ``txcore run`` (its own process) committing to one state folder, then
the same day through the DuckDB daily peer (``duckdb_daily.py``, its own process, one
persistent ``.duckdb`` file).  Reported per day: wall seconds and peak RSS of each,
txcore's bytes written by the commit, the day's new index entries and changed counters,
the state size on disk; the DuckDB file's size.  A day's input is generated just before
it and deleted after it.  Scale with environment variables (defaults in brackets):

    TXCORE_BENCH_DAYS [8]        TXCORE_BENCH_MEMBERS [120000]
    TXCORE_BENCH_RATE [0.83]     transactions per card per day (8.3 gives ~1 M rows a day)
    TXCORE_BENCH_RETENTION [5]   retention days (txcore's default is 45)
    TXCORE_BENCH_PEER [1]        0: txcore only
    TXCORE_BENCH_WORKERS [1]     ``--workers`` of each run; a list ("1,2") runs each day
                                 once per value, each on its own copy of the state, side
                                 by side (the first value's run is the row's; the others
                                 add ``seconds_w<N>`` and ``peak_rss_mb_w<N>``)
    TXCORE_BENCH_LOG             also append each day's JSON line to this file
    TXCORE_BENCH_PREFILL [0]     K > 0: the first K days are not run but written directly:
                                 K days x TXCORE_BENCH_PREFILL_ROWS [1000000] random txn
                                 digests as txcore segments and as DuckDB taken ids (no
                                 counters); the real days follow, after one of them run on
                                 an empty state and database as the day-1 baseline.  For a
                                 full window when 60 real days do not fit the time at hand.

Quick: ``pytest benchmarks/test_daily_runs.py -p no:cacheprovider -s``.  The real scale
(1 M rows a day, the default 45-day window, 60 days so it is full for the last 15)::

    TXCORE_BENCH_RATE=8.3 TXCORE_BENCH_DAYS=60 TXCORE_BENCH_RETENTION=45 \\
        pytest benchmarks/test_daily_runs.py -p no:cacheprovider -s

and the same full window with its first 44 days written directly (random digests)::

    TXCORE_BENCH_RATE=8.3 TXCORE_BENCH_DAYS=60 TXCORE_BENCH_RETENTION=45 \\
    TXCORE_BENCH_PREFILL=44 pytest benchmarks/test_daily_runs.py -p no:cacheprovider -s
"""
from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from txcore.fixtures import iter_fixtures
from txcore.state import segments
from txcore.state.memory import DEFAULT_RETENTION_DAYS
from txcore.state.segments import CREC, HEADER, REC

REPO = Path(__file__).resolve().parent.parent
ENTRY_BYTES = 16 + REC.itemsize   # an index entry: its txn digest and record
COUNTER_BYTES = CREC.itemsize


def _env(name, default, cast=int):
    return cast(os.environ.get(name, default))


#: Runs a command and prints its wall seconds and peak RSS.  A child's peak RSS starts at
#: its parent's (Linux keeps it across fork and exec), so the command is started from
#: this small launcher rather than from the benchmark process, which holds a day's data.
LAUNCHER = """
import json, os, sys, time
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(json.dumps([time.perf_counter() - started, usage.ru_maxrss * 1024,
                  os.waitstatus_to_exitcode(status)]))
"""


def _state_of(state: Path, workers: int) -> Path:
    """The state folder of the side-by-side runs with ``--workers WORKERS``."""
    return state.with_name(f"{state.name}-w{workers}")


def _timed(cmd) -> tuple[float, int]:
    """Run ``cmd``; its wall seconds and peak RSS (bytes), or raise with its stderr."""
    proc = subprocess.run([sys.executable, "-c", LAUNCHER, *cmd], capture_output=True,
                          text=True)
    if proc.returncode != 0 or not proc.stdout.strip():
        raise AssertionError(f"{cmd[:4]}...: {proc.stderr[-2000:]}")
    seconds, rss, code = json.loads(proc.stdout.strip().splitlines()[-1])
    if code != 0:
        raise AssertionError(f"{cmd[:4]}... exit {code}: {proc.stderr[-2000:]}")
    return seconds, rss


def _files(state: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in state.iterdir() if p.is_file()}


def _changed_counters(state: Path, before: dict, after: dict) -> int:
    """Counter rows of the new counter files that differ from the files they replace."""
    old = {(f["bucket"], f["month"]): f for f in before.get("files", {}).values()
           if f.get("kind") == "counters"}
    changed = 0
    for f in after["files"].values():
        if f.get("kind") != "counters" or f["generation"] != after["generation"]:
            continue
        new = np.fromfile(state / f["name"], CREC, offset=HEADER)
        prev = old.get((f["bucket"], f["month"]))
        if prev is None:
            changed += len(new)
            continue
        rows = _PREVIOUS.get(prev["name"])  # read before the run deleted it
        if rows is None:
            changed += len(new)
        else:
            changed += len(np.setdiff1d(new.view(np.void), rows.view(np.void)))
    return changed


_PREVIOUS: dict[str, np.ndarray] = {}  # counter files' rows before the day's run


def _remember_counters(state: Path, manifest: dict):
    _PREVIOUS.clear()
    for f in manifest.get("files", {}).values():
        if f.get("kind") == "counters":
            _PREVIOUS[f["name"]] = np.fromfile(state / f["name"], CREC, offset=HEADER)


def _prefill(state: Path, db: Path, start: dt.date, days: int, per_day: int):
    """``days`` days of ``per_day`` random txn digests from ``start`` on: txcore segments
    (one per day and bucket, as daily runs leave them) and the DuckDB peer's taken ids."""
    import duckdb

    from txcore.state.store import StateStore
    store = StateStore(state)
    store.commit(store.load(), "prefill-0")  # an empty generation 1: CURRENT, ledger, strings
    files = dict(store.manifest["files"])
    epoch = dt.date(1970, 1, 1)
    rng = np.random.default_rng(7)
    for k in range(days):
        day = (start + dt.timedelta(days=k) - epoch).days
        hi = np.sort(rng.integers(0, 2**64 - 1, per_day, dtype=np.uint64))
        lo = rng.integers(0, 2**64 - 1, per_day, dtype=np.uint64)
        recs = np.zeros(per_day, REC)
        recs["card_hi"] = rng.integers(0, 2**64 - 1, per_day, dtype=np.uint64)
        recs["card_lo"] = rng.integers(0, 2**64 - 1, per_day, dtype=np.uint64)
        recs["day"] = day
        recs["fee_standard"] = rng.integers(0, 5000, per_day)
        for name in ("fee_rule", "waiver_rule", "discount_rule", "ruleset"):
            recs[name] = -1
        bucket = segments.bucket_of(recs["card_hi"], store.buckets)
        for b in range(store.buckets):
            rows = np.flatnonzero(bucket == b)
            name = f"seg.{k + 2:06d}.b{b:02d}.bin"
            entry = segments.write_segment(state / name, b, k + 2, hi[rows], lo[rows],
                                           np.take(recs, rows), "prefill")
            files[name] = {"kind": "segment", **entry}
            # as the nights before would leave it: what their lookups read (the header,
            # the txn digests' high words, the block crcs) in the page cache, which the
            # segment's own write (O_DIRECT) goes past
            with open(state / name, "rb") as fh:
                fh.read(HEADER + 8 * len(rows))
                fh.seek(HEADER + (16 + REC.itemsize) * len(rows))
                fh.read()
    seg = [f for f in files.values() if f.get("kind") == "segment"]
    latest = start + dt.timedelta(days=days - 1)
    manifest = store._manifest(
        days + 1, "prefill", latest.isoformat(), store.keyer.fingerprint, files,
        {"segments": len(seg), "index_records": sum(f["entries"] for f in seg),
         "counter_files": 0, "counters": 0, "ledger": 0}, None,
        retention_days=DEFAULT_RETENTION_DAYS, buckets=store.buckets)
    store._swap_manifest(manifest, "prefill")
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE taken (id UBIGINT, day DATE)")
    con.execute(f"""INSERT INTO taken SELECT hash(i), DATE '{start}' + CAST(i // {per_day} AS
                    INTEGER) FROM range({days * per_day}) t(i)""")
    con.execute("CHECKPOINT")
    con.close()


def test_daily_runs(benchmark, tmp_path):
    days = _env("TXCORE_BENCH_DAYS", 8)
    retention = _env("TXCORE_BENCH_RETENTION", 5)
    peer = _env("TXCORE_BENCH_PEER", 1)
    log_file = os.environ.get("TXCORE_BENCH_LOG")
    prefill = _env("TXCORE_BENCH_PREFILL", 0)
    start = dt.date(2015, 11, 1)
    fixtures = iter_fixtures(tmp_path / "fx", members=_env("TXCORE_BENCH_MEMBERS", 120000),
                             days=days - prefill, seed=1,
                             start=start + dt.timedelta(days=prefill),
                             rate=_env("TXCORE_BENCH_RATE", "0.83", float))
    cards, merchants = next(fixtures), next(fixtures)
    state, db = tmp_path / "state", tmp_path / "peer.duckdb"
    workers = [int(w) for w in os.environ.get("TXCORE_BENCH_WORKERS", "1").split(",")]
    log = []

    def all_days():
        days_ = fixtures
        if prefill:
            first = next(fixtures)  # the day-1 baseline: the first real day, empty state
            one_day(first, "baseline", tmp_path / "empty-state", tmp_path / "empty.duckdb",
                    keep=True)
            _prefill(state, db, start, prefill,
                     _env("TXCORE_BENCH_PREFILL_ROWS", 1_000_000))
            for w in workers[1:]:
                shutil.copytree(state, _state_of(state, w))
            days_ = itertools.chain([first], fixtures)
        for i, day in enumerate(days_):
            one_day(day, prefill + i + 1, state, db)

    def one_day(day, number, state, db, keep=False):
        out = tmp_path / "out"
        before_files = _files(state) if state.exists() else {}
        before = json.loads((state / "CURRENT").read_text()) if before_files else {}
        _remember_counters(state, before)
        def txcore_run(w, state):
            return _timed([
                sys.executable, "-m", "txcore", "run", "--rules", str(REPO / "rules"),
                "--cards", str(cards), "--merchants", str(merchants), "-o", str(out),
                "--state", str(state), "--retention-days", str(retention), "--no-progress",
                "--workers", str(w), str(day)])

        side = {}
        for w in workers[1:]:  # the same day on the same state, with other --workers
            side[f"seconds_w{w}"], rss_w = txcore_run(w, _state_of(state, w))
            side[f"seconds_w{w}"] = round(side[f"seconds_w{w}"], 2)
            side[f"peak_rss_mb_w{w}"] = round(rss_w / 2**20)
            for p in out.iterdir():
                p.unlink()
        seconds, rss = txcore_run(workers[0], state)
        after = json.loads((state / "CURRENT").read_text())
        files = _files(state)
        written = sum(size for name, size in files.items()
                      if name not in before_files or name == "CURRENT")
        new_entries = sum(f["entries"] for f in after["files"].values()
                          if f.get("kind") == "segment"
                          and f["generation"] == after["generation"])
        changed = _changed_counters(state, before, after)
        summary = json.loads((out / "summary.json").read_text())
        row = {"day": number, "rows": summary["rows"]["input"], "seconds": round(seconds, 2),
               "peak_rss_mb": round(rss / 2**20), "commit_bytes": written,
               "new_entries": new_entries, "changed_counters": changed,
               "commit_ratio": round(written / max(1, new_entries * ENTRY_BYTES
                                                  + changed * COUNTER_BYTES), 2),
               "state_bytes": sum(files.values()),
               "live_records": after["counts"]["index_records"],
               "segments": after["counts"]["segments"],
               "counters": after["counts"]["counters"], "workers": workers[0], **side}
        for p in out.iterdir():
            p.unlink()
        if peer:
            peer_seconds, peer_rss = _timed([
                sys.executable, str(REPO / "benchmarks" / "duckdb_daily.py"), str(db),
                str(day), str(cards), str(merchants), str(tmp_path / "peer.parquet"),
                str(retention)])
            row.update(duckdb_seconds=round(peer_seconds, 2),
                       duckdb_peak_rss_mb=round(peer_rss / 2**20),
                       duckdb_bytes=db.stat().st_size)
        if not keep:
            day.unlink()
        log.append(row)
        print(json.dumps(row), flush=True)
        if log_file:
            with open(log_file, "a") as fh:
                fh.write(json.dumps(row) + "\n")

    benchmark.pedantic(all_days, rounds=1, iterations=1)
    benchmark.extra_info["days"] = log
    assert len(log) == days - prefill + (1 if prefill else 0)
