"""Writing the priced output of the 1 M-row benchmark month: one ``BatchWriter`` beside
parts written in parallel (``txcore.io.stitch.write_part``: 2 threads, or 2 worker
processes) and stitched into the one file.  Every contender must write the same bytes.

The priced rows are made once (``txcore replay`` of the cached 1 M-row month, see
``test_hot_path.py``) and cached as an Arrow IPC file beside the month; every
contender memory-maps it, so the rows are in memory as in a worker that priced them,
and only the Parquet writing is timed.  Chunks are CHUNK_ROWS input rows (batches of
65,536 rows, as the engine prices them), whatever the number of writers; the worker
pool is started before the clock, as a run's workers are.  No timing is asserted.

    pytest benchmarks/test_parquet_stitch.py -p no:cacheprovider -s
"""
from __future__ import annotations

import hashlib
import os
from multiprocessing import get_context
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from test_hot_path import _month
from txcore.io.stitch import stitch, write_part
from txcore.io.writer import BatchWriter

ROWS = 1_000_000
BATCH_ROWS = 65_536
CHUNK_ROWS = 4 * BATCH_ROWS
ROUNDS = int(os.environ.get("TXCORE_BENCH_ROUNDS", 5))
RESULTS: dict = {}
DIGESTS: dict = {}


def _priced_ipc() -> Path:
    data, month = _month(ROWS)
    path = month.with_name(f"priced-{ROWS}.arrow")
    if not path.exists():
        from txcore.audit.replay import replay
        import pyarrow.parquet as pq
        out = month.with_name(f"priced-{ROWS}.tmp")
        replay([month], rules=Path(__file__).resolve().parent.parent / "rules",
               cards=data / "cards.csv", merchants=data / "merchants.csv", out_dir=out,
               progress=False)
        table = pq.read_table(out / f"{month.stem}.priced.parquet")
        with ipc.new_file(path, table.schema) as w:
            w.write_table(table, max_chunksize=BATCH_ROWS)
        for p in out.iterdir():
            p.unlink()
        out.rmdir()
    return path


def _batches(path: Path, start: int = 0, stop: int | None = None) -> list[pa.RecordBatch]:
    reader = ipc.open_file(pa.memory_map(str(path)))
    stop = reader.num_record_batches if stop is None else min(stop, reader.num_record_batches)
    return [reader.get_batch(i) for i in range(start, stop)]


def _write_chunk(args) -> str:
    """A worker's task: the batches of one chunk, written as a part."""
    source, start, stop, part = args
    batches = _batches(Path(source), start, stop)
    write_part(Path(part), batches, batches[0].schema)
    return part


def _warm(_):
    import txcore.io.stitch  # noqa: F401 - imported by the clock's first task otherwise


@pytest.fixture(scope="module")
def priced():
    path = _priced_ipc()
    n = ipc.open_file(pa.memory_map(str(path))).num_record_batches
    return path, n


def one_writer(priced, out: Path) -> Path:
    path, _ = priced
    batches = _batches(path)
    w = BatchWriter(out / "priced.parquet", batches[0].schema, "parquet")
    for b in batches:
        w.write(b)
    w.close()
    return out / "priced.parquet"


def parts_then_stitch(pool, priced, out: Path) -> Path:
    path, n = priced
    per = CHUNK_ROWS // BATCH_ROWS
    tasks = [(str(path), i, i + per, str(out / f"part-{i // per:05d}.parquet"))
             for i in range(0, n, per)]
    parts = list(pool.map(_write_chunk, tasks))
    schema = _batches(path, 0, 1)[0].schema
    stitch(parts, out / "priced.parquet", schema)
    return out / "priced.parquet"


CONTENDERS = ["one BatchWriter", "parts: 2 threads + stitch", "parts: 2 processes + stitch"]
RATIOS: dict = {}
CPU: dict = {}  # CPU seconds of this process (all its threads; not the worker processes')


def test_write_priced_output_side_by_side(benchmark, priced, tmp_path):
    """A round runs each contender once, in a rotating order, so that the load of the
    shared machine falls on all of them alike; the ratios are the medians of each
    round's own ratios."""
    threads = ThreadPoolExecutor(2)
    processes = ProcessPoolExecutor(2, mp_context=get_context("spawn"))
    list(processes.map(_warm, range(4)))  # the workers are up, txcore imported, before the clock
    pools = dict(zip(CONTENDERS, (None, threads, processes)))
    times = {name: [] for name in CONTENDERS}
    cpu = {name: [] for name in CONTENDERS}

    def one_round():
        k = len(times[CONTENDERS[0]])
        for name in CONTENDERS[k % 3:] + CONTENDERS[:k % 3]:
            out = tmp_path / f"round{k}-{CONTENDERS.index(name)}"
            out.mkdir()
            t0, c0 = time.perf_counter(), time.process_time()
            written = one_writer(priced, out) if pools[name] is None \
                else parts_then_stitch(pools[name], priced, out)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            DIGESTS.setdefault(name, set()).add(hashlib.sha256(written.read_bytes()).hexdigest())
            written.unlink()
            out.rmdir()

    try:  # a first round apart: a new worker's first part costs it ~2x (page faults, zstd)
        benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    finally:
        threads.shutdown()
        processes.shutdown()
    for name in CONTENDERS:
        RESULTS[name] = statistics.median(times[name][1:])
        CPU[name] = statistics.median(cpu[name][1:])
        RATIOS[name] = statistics.median(a / b for a, b in zip(times[CONTENDERS[0]][1:],
                                                                times[name][1:]))
    benchmark.extra_info.update(rows=ROWS, **{n: round(RESULTS[n], 3) for n in CONTENDERS})


def test_stitch_alone(benchmark, priced, tmp_path):
    """The stitch itself: parts already written, joined into one file (copy + footer)."""
    path, n = priced
    per = CHUNK_ROWS // BATCH_ROWS
    parts = []
    for i in range(0, n, per):
        parts.append(tmp_path / f"part-{i // per:05d}.parquet")
        _write_chunk((str(path), i, i + per, str(parts[-1])))
    schema = _batches(path, 0, 1)[0].schema
    runs = []

    def once():
        t0 = time.perf_counter()
        stitch(parts, tmp_path / "priced.parquet", schema, remove_parts=False)
        runs.append(time.perf_counter() - t0)

    benchmark.pedantic(once, rounds=ROUNDS, iterations=1)
    RESULTS["stitch alone (parts written)"] = statistics.median(runs)


def test_zz_table():
    """Every contender wrote the same bytes; print the medians and ratios."""
    if not RESULTS:
        pytest.skip("no contender ran")
    assert len(set().union(*DIGESTS.values())) == 1, DIGESTS
    print(f"\n\n{ROWS:,} priced rows; chunks of {CHUNK_ROWS:,} rows; median of {ROUNDS}")
    print("| contender | median seconds | one BatchWriter / it (median of the rounds) "
          "| CPU seconds of the test process |")
    print("|---|---:|---:|---:|")
    for name, seconds in RESULTS.items():
        ratio = f"{RATIOS[name]:.2f}×" if name in CONTENDERS[1:] else ""
        work = f"{CPU[name]:.2f}" if name in CPU else ""
        print(f"| {name} | {seconds:.2f} | {ratio} | {work} |")
