"""ISO 8583 input: pricing 1 M messages from a switch log vs the same rows from Parquet, one
core; and the decode rate of pyiso8583 (the reference) beside the compiled decoder's.

The log is the fixture switch's (``txcore fixtures --format iso8583``): withdrawals,
transfers, purchases, reversals, declined attempts and echo tests; the Parquet file holds
the rows it carries (``switchlog.switch_day``).  Target: the log within 1.5x the Parquet
time.  Scale: ``TXCORE_BENCH_MEMBERS`` [240000] and ``TXCORE_BENCH_RATE`` [4.2]
transactions per card per day: one day of about 1.0 M messages.

Run: ``pytest benchmarks/test_iso8583.py -p no:cacheprovider -s``
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import iso8583
import numpy as np
import pyarrow.parquet as pq
import pytest

import txcore
from txcore._fast import iso8583 as compiled
from txcore.fixtures import switch_fixtures
from txcore.io import iso8583 as iso

REPO = Path(__file__).resolve().parent.parent
RESULTS: dict = {}


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    folder = tmp_path_factory.mktemp("iso")
    members = int(os.environ.get("TXCORE_BENCH_MEMBERS", 240000))
    rate = float(os.environ.get("TXCORE_BENCH_RATE", 4.2))
    started = time.perf_counter()
    written = switch_fixtures(folder, members=members, days=1, seed=5, rate=rate)
    print(f"\nfixtures: {time.perf_counter() - started:.1f} s")
    log, rows = written[-1]
    parquet = folder / f"{log.stem}.parquet"
    pq.write_table(rows, parquet, compression="zstd")
    return folder, log, parquet, rows.num_rows


def _run(folder, files, out, **kw):
    return txcore.run(files, rules=REPO / "rules", cards=folder / "cards.csv",
                      merchants=folder / "merchants.csv", out_dir=out, progress=False,
                      workers=1, **kw)


@pytest.mark.parametrize("source", ["parquet", "iso8583"])
def test_price_one_day(benchmark, day, tmp_path, source):
    folder, log, parquet, n_rows = day
    if source == "iso8583":
        fn = lambda: _run(folder, [log], tmp_path / "o",  # noqa: E731
                          institutions=folder / "institutions.csv")
    else:
        fn = lambda: _run(folder, [parquet], tmp_path / "o")  # noqa: E731
    result = benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
    RESULTS[source] = (benchmark.stats.stats.median, result["rows"]["input"])
    benchmark.extra_info["rows"] = result["rows"]
    print(f"\n{source}: {result['rows']['input']:,} rows in, median "
          f"{benchmark.stats.stats.median:.2f} s")
    if len(RESULTS) == 2:
        ratio = RESULTS["iso8583"][0] / RESULTS["parquet"][0]
        print(f"iso8583 / parquet = {ratio:.2f}x")


@pytest.mark.parametrize("decoder", ["pyiso8583", "compiled"])
def test_decode_rate(benchmark, day, decoder):
    folder, log, _, _ = day
    data = np.fromfile(log, np.uint8)
    starts, lens = np.empty(len(data), np.int64), np.empty(len(data), np.int32)
    k, _ = compiled.frame_index(data, 0, len(starts), starts, lens)
    starts, lens = starts[:k].copy(), lens[:k].copy()
    layout = iso.Layout(iso.load_spec())
    if decoder == "pyiso8583":  # 50,000 messages: the rate, not the whole log
        sample = [bytes(data[s + 2:s + 2 + n]) for s, n in zip(starts[:50_000], lens[:50_000])]

        def fn():
            for m in sample:
                iso8583.decode(m, layout.spec)
        n = len(sample)
    else:
        def fn():
            compiled.decode_fields(data, starts, lens, layout, list(iso.WANTED))
        n = k
    benchmark.pedantic(fn, rounds=3, iterations=1)
    rate = n / benchmark.stats.stats.median
    benchmark.extra_info["messages_per_second"] = round(rate)
    print(f"\n{decoder}: {rate:,.0f} messages/s")
