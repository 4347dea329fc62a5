"""The hot path on one month of fixture data (10 M rows by default), Parquet in and out:
txcore beside the pyarrow floor, DuckDB and Polars, at 1 and 2 threads, in one run.

Every contender runs in a child process (``contenders.py``) with its thread count
set before its libraries start; its work is timed inside and it reports its own
peak RSS (VmHWM: ``wait4`` would count the memory of the forking pytest process).  The data is made once by ``txcore fixtures``
(120,000 members, 30 days) and cached in ``$TXCORE_BENCH_DATA`` (default
``~/.cache/txcore-bench``); ``TXCORE_BENCH_ROWS`` takes a smaller slice for a quick look.
Timing is not asserted anywhere; the table at the end gives medians and ratios.

    pip install -e '.[bench]' && pytest benchmarks/test_hot_path.py -p no:cacheprovider -s
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

HERE = Path(__file__).resolve().parent
ROWS = int(os.environ.get("TXCORE_BENCH_ROWS", 10_000_000))
ROUNDS = int(os.environ.get("TXCORE_BENCH_ROUNDS", 3))
DATA = Path(os.environ.get("TXCORE_BENCH_DATA", Path.home() / ".cache" / "txcore-bench"))
RESULTS: dict = {}
EXTRA: dict = {}  # the full JSON line of a contender's last run
MEMORY: dict = {}  # rows -> peak RSS MiB of txcore replay at one thread


@pytest.fixture(scope="session")
def month(tmp_path_factory):
    """``(data_dir, month.parquet)``: the fixture month, sliced to ROWS rows."""
    return _month(ROWS)


def _month(rows: int):
    data = DATA / "members-120000-days-30"
    if not (data / "cards.csv").exists():
        subprocess.run([sys.executable, "-m", "txcore", "fixtures", "-o", str(data),
                        "--members", "120000", "--days", "30", "--rate", "2.8", "--seed", "7"],
                       check=True, stdout=subprocess.DEVNULL)
    path = DATA / f"month-{rows}.parquet"
    if not path.exists():
        days = sorted(data.glob("txns-*.parquet"))
        table = pa.concat_tables([pq.read_table(d) for d in days])
        pq.write_table(table.slice(0, rows).replace_schema_metadata(None), path)
    return data, path


def contender(name, threads, month, out) -> tuple[float, int, float]:
    """``(seconds, rows, peak RSS MiB)`` of one run of a contender in a child process."""
    data, path = month
    proc = subprocess.run([sys.executable, str(HERE / "contenders.py"), name, str(threads),
                           str(data), str(path), str(out)], stdout=subprocess.PIPE, check=True)
    result = json.loads(proc.stdout)
    EXTRA[(name, threads, str(path))] = result
    return result["seconds"], result["rows"] or ROWS, result["peak_rss_mib"]


CONTENDERS = [(name, threads) for threads in (1, 2)
              for name in ("floor", "floor_io", "duckdb", "polars", "txcore", "replay")] \
    + [("processes", 2), ("dask", 2)]


@pytest.mark.parametrize("name,threads", CONTENDERS, ids=[f"{n}-{t}" for n, t in CONTENDERS])
def test_end_to_end(benchmark, month, tmp_path, name, threads):
    runs = []

    def once():
        out = tmp_path / f"round{len(runs)}"
        runs.append(contender(name, threads, month, out))
        subprocess.run(["rm", "-rf", str(out)], check=True)

    benchmark.pedantic(once, rounds=ROUNDS, iterations=1)
    seconds = statistics.median(r[0] for r in runs)
    rss = max(r[2] for r in runs)
    RESULTS[(name, threads)] = (seconds, runs[0][1], rss)
    benchmark.extra_info.update(rows=runs[0][1], rows_per_s=round(runs[0][1] / seconds),
                                peak_rss_mib=round(rss))


def test_kernel_in_memory(benchmark, month, tmp_path):
    """Encode + price, batches already in memory, one thread (cython backend); the
    encoder, the kernel loop and output assembly are also timed apart."""
    runs, parts = [], []

    def once():
        runs.append(contender("kernel", 1, month, tmp_path))
        parts.append(EXTRA[("kernel", 1, str(month[1]))])

    benchmark.pedantic(once, rounds=ROUNDS, iterations=1)
    seconds = statistics.median(r[0] for r in runs)
    RESULTS[("kernel", 1)] = (seconds, runs[0][1], max(r[2] for r in runs))
    for part in ("encode", "loop", "outputs"):
        RESULTS[(f"kernel: {part} alone", 1)] = (
            statistics.median(p[f"{part}_seconds"] for p in parts), runs[0][1], 0.0)
    benchmark.extra_info.update(rows=runs[0][1], rows_per_s=round(runs[0][1] / seconds))


@pytest.mark.parametrize("rows", [1_000_000, ROWS], ids=["1M", "ROWS"])
def test_peak_rss_by_input_size(month, tmp_path, rows):
    """Peak RSS of ``txcore replay`` (one thread) on 1 M rows and on ROWS rows: it should
    grow only by the index of the window (about 45 bytes a row), not with the file."""
    if rows > ROWS:
        pytest.skip("TXCORE_BENCH_ROWS is below 1 M")
    if rows == ROWS and ("replay", 1) in RESULTS:
        MEMORY[rows] = RESULTS[("replay", 1)][2]
        return
    MEMORY[rows] = contender("replay", 1, _month(rows), tmp_path)[2]


def test_zz_table():
    """Print the comparison (the numbers are quoted in benchmarks/README.md)."""
    if not RESULTS:
        pytest.skip("no contender ran")
    print(f"\n\n{ROWS:,} rows; median of {ROUNDS}; peak RSS of the process")
    print("| contender | threads | seconds | rows/s | vs floor | vs floor_io | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for (name, threads), (seconds, rows, rss) in sorted(RESULTS.items(),
                                                         key=lambda kv: (kv[0][1], kv[0][0])):
        ratio = ""
        for base in ("floor", "floor_io"):
            floor = RESULTS.get((base, threads))
            ratio += f"{seconds / floor[0]:.2f}× | " if floor and not name.startswith("kernel") \
                else " | "
        memory = f"{rss:.0f}" if rss else ""
        print(f"| {name} | {threads} | {seconds:.2f} | {rows / seconds / 1e6:.2f} M | {ratio}"
              f"{memory} |")
    for name in ("txcore", "replay"):
        one, two = RESULTS.get((name, 1)), RESULTS.get((name, 2))
        if one and two:
            print(f"{name} --workers 2 vs 1: {one[0] / two[0]:.2f}×")
    targets = [("txcore --workers 2 vs one worker", ("txcore", 1), ("txcore", 2)),
               ("txcore --workers 2 vs the 2-thread floor", ("floor", 2), ("txcore", 2)),
               ("txcore (1 core) vs Polars", ("polars", 1), ("txcore", 1)),
               ("txcore (1 core) vs DuckDB", ("duckdb", 1), ("txcore", 1)),
               ("--engine processes --workers 2 vs one worker", ("txcore", 1),
                ("processes", 2)),
               ("--engine processes --workers 2 vs Dask 2 workers", ("dask", 2),
                ("processes", 2)),
               ("--workers 2 vs Dask 2 workers", ("dask", 2), ("txcore", 2))]
    for label, slow, fast in targets:  # > 1: the second is faster
        if slow in RESULTS and fast in RESULTS:
            print(f"{label}: {RESULTS[slow][0] / RESULTS[fast][0]:.2f}×")
    for rows, rss in sorted(MEMORY.items()):
        print(f"peak RSS of txcore replay (1 thread) on {rows:,} rows: {rss:.0f} MiB")
