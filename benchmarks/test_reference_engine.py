"""Reference engine throughput on the bundled demo data, beside the pyarrow I/O floor.

Run: ``pip install -e '.[bench]' && pytest benchmarks -p no:cacheprovider``
(see benchmarks/README.md).  The reference engine is the readable spec, not
the fast path: these numbers are the baseline the compiled kernel is measured
against.  No timing is asserted; the rows/s figures go in extra_info.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import txcore
from txcore.engine import make_engine
from txcore.rules.refdata import load_cards, load_merchants
from txcore.rules.book import load_book
from txcore.state.memory import State

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
DAYS = sorted(FIXTURES.glob("txns-*.parquet"))


@pytest.fixture(scope="module")
def demo_batches():
    return [b for day in DAYS for b in pq.ParquetFile(day).iter_batches(65536)]


@pytest.fixture(scope="module")
def engine_inputs():
    book = load_book(REPO / "rules", load_merchants(FIXTURES / "merchants.csv"))
    return book, load_cards(FIXTURES / "cards.csv")


def _rows(batches):
    return sum(b.num_rows for b in batches)


@pytest.mark.parametrize("backend", ["cython", "numba", "python"])
def test_engine_in_memory(benchmark, demo_batches, engine_inputs, backend):
    """Validate + price + assemble output batches, no file I/O."""
    book, cards = engine_inputs

    def price_all():
        engine = make_engine(backend, book, cards, State())
        return sum(p.num_rows + r.num_rows for p, r in map(engine.price_batch, demo_batches))

    n = benchmark(price_all)
    assert n == _rows(demo_batches)
    benchmark.extra_info["rows"] = n
    benchmark.extra_info["rows_per_s"] = round(n / benchmark.stats.stats.median)


@pytest.mark.parametrize("backend", ["cython", "python"])
def test_run_end_to_end(benchmark, backend):
    """``txcore run`` over the bundled days, Parquet in and out, with state."""
    def run_once():
        with tempfile.TemporaryDirectory() as tmp:
            s = txcore.run(DAYS, rules=REPO / "rules", cards=FIXTURES / "cards.csv",
                           merchants=FIXTURES / "merchants.csv", out_dir=Path(tmp) / "out",
                           state_dir=Path(tmp) / "state", progress=False, backend=backend)
            return s["rows"]["input"]

    n = benchmark.pedantic(run_once, rounds=3, iterations=1)
    benchmark.extra_info["rows"] = n
    benchmark.extra_info["rows_per_s"] = round(n / benchmark.stats.stats.median)


def test_pyarrow_floor(benchmark, demo_batches):
    """The I/O floor: read the days and write them back with zero-filled output columns."""
    zeros = {name: pa.int64() for name in ("fee_standard", "fee_waived", "fee_charged",
                                           "discount")}

    def copy_all():
        n = 0
        with tempfile.TemporaryDirectory() as tmp:
            for day in DAYS:
                t = pq.read_table(day)
                for name, typ in zeros.items():
                    t = t.append_column(name, pa.array([0] * t.num_rows, typ))
                pq.write_table(t, Path(tmp) / day.name, compression="zstd")
                n += t.num_rows
        return n

    n = benchmark.pedantic(copy_all, rounds=3, iterations=1)
    benchmark.extra_info["rows"] = n
    benchmark.extra_info["rows_per_s"] = round(n / benchmark.stats.stats.median)
