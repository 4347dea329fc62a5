"""Where the time of a one-thread run goes, stage by stage (for benchmarks/README.md).

    python benchmarks/profile_stages.py [ROWS]      (default 1,000,000)

Uses the hot-path benchmark's cached month (``test_hot_path.py`` makes it) and prices
it as ``txcore run`` does — read, encode, kernel, assemble outputs, digest, totals,
write — timing each stage with every library on one thread.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

pa.set_cpu_count(1)
pa.set_io_thread_count(1)

from txcore.engine import make_engine  # noqa: E402
from txcore.io.digest import FileDigest  # noqa: E402
from txcore.io.reader import InputSource  # noqa: E402
from txcore.rules.refdata import load_cards, load_merchants  # noqa: E402
from txcore.rules.book import load_book  # noqa: E402
from txcore.state.memory import State  # noqa: E402
from txcore.summary import Totals  # noqa: E402
from txcore.io.writer import BatchWriter  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("TXCORE_BENCH_DATA", Path.home() / ".cache" / "txcore-bench"))


def main(rows: int):
    data = DATA / "members-120000-days-30"
    month = DATA / "month-10000000.parquet"
    t = {}

    def timed(name, fn, *args):
        t0 = time.perf_counter()
        out = fn(*args)
        t[name] = t.get(name, 0.0) + time.perf_counter() - t0
        return out

    book = timed("startup: rules", load_book, REPO / "rules", load_merchants(data / "merchants.csv"))
    cards = timed("startup: card registry", load_cards, data / "cards.csv")
    engine = timed("startup: engine (compile, attach)", make_engine, "cython", book, cards, State())
    engine.reserve(rows)
    digest, totals = FileDigest(), Totals()
    reader = InputSource(str(month)).batches()  # as txcore reads: a row group at a time
    n = 0
    with tempfile.TemporaryDirectory() as tmp:
        writers = None
        while n < rows:
            batch = timed("read (Parquet decode, checked)", next, reader)
            n += batch.num_rows
            enc = timed("encode + validate", engine.encoder.encode, batch)
            out = timed("kernel", engine.price_encoded, enc)
            priced, rejects = timed("assemble outputs", engine.outputs, batch, enc, out)
            timed("digest", digest.add, priced)
            timed("totals", totals.add, priced, rejects)
            if writers is None:
                writers = (BatchWriter(Path(tmp) / "p.parquet", priced.schema, "parquet"),
                           BatchWriter(Path(tmp) / "r.parquet", rejects.schema, "parquet"))
            timed("write (Parquet encode)", _write, writers, priced, rejects)
        for w in writers:
            timed("write (Parquet encode)", w.close)
    total = sum(t.values())
    print(f"{n:,} rows, one thread; seconds per stage (share of the total {total:.2f} s)")
    print("| stage | seconds | share |\n|---|---:|---:|")
    for name, seconds in t.items():
        print(f"| {name} | {seconds:.3f} | {seconds / total:.0%} |")


def _write(writers, priced, rejects):
    writers[0].write(priced)
    writers[1].write(rejects)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
