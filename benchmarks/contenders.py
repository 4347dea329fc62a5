"""One contender of the hot-path benchmark, run in its own process so that its thread
count is set before any library starts its pools and its peak RSS is its own.

    python benchmarks/contenders.py NAME THREADS DATA_DIR INPUT OUTPUT_DIR

NAME: ``floor`` (pyarrow: read the file, write it back with zero-filled output
columns), ``floor_io`` (the same with txcore's read and write settings), ``duckdb`` / ``polars`` (the default rules in SQL / lazy expressions,
``peers.py``), ``txcore`` (``txcore run`` with a fresh state: price, write, commit),
``replay`` (``txcore replay``: the same without state), ``dask`` (``txcore run --engine
dask``: the partitioned plan on a LocalCluster it starts), ``plan1`` (the partitioned plan's tasks one after the other in this process: each
stage's own cost), ``kernel`` (encode + price in
memory: the file is read first, untimed; output assembly timed apart), ``encode`` (the
encoder alone, in memory).  Prints one JSON
line: ``{"seconds": ..., "rows": ..., "peak_rss_mib": ..., "process_cpu_seconds": ...,
"cores_busy": ..., ...}`` (the work timed inside; the peak RSS is this process's own
high-water mark, VmHWM; the CPU is this process's, all its threads, setup included).
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def _pyarrow_threads(threads):
    import pyarrow as pa
    pa.set_cpu_count(threads)
    pa.set_io_thread_count(threads)


def floor(threads, data, inp, out, tuned=False):
    """pyarrow alone: read the file, write it back with zero-filled output columns.  With
    ``tuned``, read and write as txcore does (a row group at a time; no dictionary for
    the all-distinct columns), so the ratio to it is txcore's own cost beyond its I/O."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from txcore.io.assemble import OUTPUT_FIELDS
    from txcore.io.writer import parquet_options
    _pyarrow_threads(threads)
    t0 = time.perf_counter()
    writer, n = None, 0
    pf = pq.ParquetFile(inp)
    batches = (b for g in range(pf.num_row_groups)
               for b in pf.iter_batches(batch_size=65536, row_groups=[g])) if tuned \
        else pf.iter_batches(batch_size=65536)
    for batch in batches:
        rows = batch.num_rows
        cols = list(batch.columns) + [pa.array(np.zeros(rows, f.type.to_pandas_dtype()))
                                      if f.type != pa.string() else pa.nulls(rows, pa.string())
                                      for f in OUTPUT_FIELDS]
        out_batch = pa.RecordBatch.from_arrays(
            cols, schema=pa.schema(list(batch.schema) + OUTPUT_FIELDS))
        if writer is None:
            options = parquet_options(out_batch.schema) if tuned else {"compression": "zstd"}
            writer = pq.ParquetWriter(out / "floor.parquet", out_batch.schema, **options)
        writer.write_batch(out_batch)
        n += rows
    writer.close()
    return time.perf_counter() - t0, n


def floor_io(threads, data, inp, out):
    """The floor with txcore's own read and write settings."""
    return floor(threads, data, inp, out, tuned=True)


def duckdb(threads, data, inp, out):
    from peers import run_duckdb
    t0 = time.perf_counter()
    run_duckdb([inp], data / "cards.csv", data / "merchants.csv", out / "duckdb.parquet",
               threads=threads)
    return time.perf_counter() - t0, None


def polars(threads, data, inp, out):
    os.environ["POLARS_MAX_THREADS"] = str(threads)  # read once, when polars is imported
    from peers import run_polars
    t0 = time.perf_counter()
    run_polars([inp], data / "cards.csv", data / "merchants.csv", out / "polars.parquet")
    return time.perf_counter() - t0, None


def _run(threads, data, inp, out, engine):
    """``txcore run --workers THREADS --engine ENGINE`` on a fresh state."""
    import txcore as tx
    _pyarrow_threads(threads)
    t0 = time.perf_counter()
    s = tx.run([inp], rules=Path(tx.__file__).parent.parent / "rules", cards=data / "cards.csv",
               merchants=data / "merchants.csv", out_dir=out / "txcore",
               state_dir=out / "state", progress=False, workers=threads, engine=engine)
    EXTRA.update(stage_seconds=s.get("stage_seconds"))
    return time.perf_counter() - t0, s["rows"]["input"]


def txcore(threads, data, inp, out):
    """``txcore run --workers THREADS``: ``--engine local`` picks threads or processes."""
    return _run(threads, data, inp, out, "local")


def processes(threads, data, inp, out):
    """``txcore run --engine processes --workers THREADS``: the partitioned plan on local
    worker processes, whatever the count."""
    return _run(threads, data, inp, out, "processes")


def dask(threads, data, inp, out):
    """``txcore run --engine dask --workers THREADS``: the plan on a LocalCluster the run
    starts (its start-up counted, as a user waits for it) and closes."""
    return _run(threads, data, inp, out, "dask")


def plan1(threads, data, inp, out):
    """The partitioned plan with every task in this process, one after the other: each
    stage's own CPU cost, for the scaling model (``scaling_model.py``)."""
    import txcore as tx
    from txcore.plan.executors import InProcess
    _pyarrow_threads(1)
    t0 = time.perf_counter()
    s = tx.run([inp], rules=Path(tx.__file__).parent.parent / "rules", cards=data / "cards.csv",
               merchants=data / "merchants.csv", out_dir=out / "txcore",
               state_dir=out / "state", progress=False, engine=InProcess())
    EXTRA.update(stage_seconds=s["stage_seconds"], scratch_bytes=s["scratch_bytes"],
                 elapsed_seconds=s["elapsed_seconds"])
    return time.perf_counter() - t0, s["rows"]["input"]


def replay(threads, data, inp, out):
    """``txcore replay``: price and write, no state kept (as the peers)."""
    from txcore.audit.replay import replay as run_replay
    _pyarrow_threads(threads)
    t0 = time.perf_counter()
    s = run_replay([inp], rules=Path(__file__).resolve().parent.parent / "rules",
                   cards=data / "cards.csv", merchants=data / "merchants.csv",
                   out_dir=out / "replay", progress=False, workers=threads)
    return time.perf_counter() - t0, s["rows"]["input"]


def kernel(threads, data, inp, out):
    """Encode + price over batches already in memory, one thread (the cython backend);
    the seconds of output assembly (Arrow arrays of the priced and reject batches) and of
    the kernel loop alone are reported beside them."""
    import pyarrow.parquet as pq

    from txcore.engine import make_engine
    from txcore.rules.refdata import load_cards, load_merchants
    from txcore.rules.book import load_book
    from txcore.state.memory import State
    _pyarrow_threads(threads)
    book = load_book(Path(__file__).resolve().parent.parent / "rules",
                     load_merchants(data / "merchants.csv"))
    cards = load_cards(data / "cards.csv")
    batches = pq.read_table(inp).to_batches(65536)
    engine = make_engine(os.environ.get("TXCORE_BENCH_BACKEND", "cython"), book, cards, State())
    n = sum(b.num_rows for b in batches)
    engine.reserve(n)
    encode = loop = outputs = 0.0
    for b in batches:
        t0 = time.perf_counter()
        enc = engine.encoder.encode(b)
        t1 = time.perf_counter()
        priced = engine.price_encoded(enc)
        t2 = time.perf_counter()
        engine.outputs(b, enc, priced)
        t3 = time.perf_counter()
        encode, loop, outputs = encode + t1 - t0, loop + t2 - t1, outputs + t3 - t2
    EXTRA.update(encode_seconds=encode, loop_seconds=loop, outputs_seconds=outputs)
    return encode + loop, n


def encode(threads, data, inp, out):
    """The encoder alone (``Encoder.encode``) over batches already in memory, one thread;
    ``cpu_seconds`` (process time: not the time spent waiting for a core on a shared
    machine) beside the wall seconds.  The loop runs inside ``any()`` so that
    ``valgrind --tool=callgrind --collect-atstart=no --toggle-collect=builtin_any`` counts
    the encode step's instructions and nothing else."""
    import pyarrow.parquet as pq

    from txcore.engine import make_engine
    from txcore.rules.refdata import load_cards, load_merchants
    from txcore.rules.book import load_book
    from txcore.state.memory import State
    _pyarrow_threads(threads)
    book = load_book(Path(__file__).resolve().parent.parent / "rules",
                     load_merchants(data / "merchants.csv"))
    batches = pq.read_table(inp).to_batches(65536)
    encoder = make_engine("cython", book, load_cards(data / "cards.csv"), State()).encoder
    encoder.encode(batches[0].slice(0, 1000))  # first-call work out of the count
    c0, t0 = time.process_time(), time.perf_counter()
    any(encoder.encode(b) is None for b in batches)
    seconds = time.perf_counter() - t0
    EXTRA.update(cpu_seconds=time.process_time() - c0)
    return seconds, sum(b.num_rows for b in batches)


EXTRA: dict = {}


if __name__ == "__main__":
    name, threads, data, inp, out = sys.argv[1:6]
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    Path(out).mkdir(parents=True, exist_ok=True)
    before, started = os.times(), time.perf_counter()
    seconds, rows = globals()[name](int(threads), Path(data), Path(inp), Path(out))
    after, elapsed = os.times(), time.perf_counter() - started
    hwm = next(int(line.split()[1]) for line in open("/proc/self/status")
               if line.startswith("VmHWM:"))
    # this process's CPU (every thread) over the whole call, its setup included, and that
    # over the call's wall time: how many cores it kept busy (a plan's worker processes
    # are not counted: their tasks' CPU is in the run's stage_seconds)
    cpu = (after.user - before.user) + (after.system - before.system)
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_rss_mib": hwm / 1024,
                      "process_cpu_seconds": round(cpu, 3),
                      "cores_busy": round(cpu / elapsed, 2) if elapsed else None, **EXTRA}))
