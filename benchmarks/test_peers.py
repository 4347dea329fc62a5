"""The DuckDB peer against the reference engine on the rows both price, then timed."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import txcore
from peers import run_duckdb, run_polars

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "fixtures"
DAYS = sorted(FIXTURES.glob("txns-*.parquet"))
COMPARED = ["txn_id", "fee_rule", "fee_standard", "fee_waived", "free_slot", "discount",
            "discount_rule", "member", "cross_bank", "same_city"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref")
    txcore.run(DAYS, rules=REPO / "rules", cards=FIXTURES / "cards.csv",
               merchants=FIXTURES / "merchants.csv", out_dir=out, progress=False)
    priced = pa.concat_tables([pq.read_table(out / f"{d.stem}.priced.parquet") for d in DAYS])
    rejects = pa.concat_tables([pq.read_table(out / f"{d.stem}.rejects.parquet") for d in DAYS])
    return priced, rejects


@pytest.mark.parametrize("peer", [run_duckdb, run_polars], ids=["duckdb", "polars"])
def test_peer_agrees_with_the_reference(reference, tmp_path, peer):
    out = tmp_path / "peer.parquet"
    peer(DAYS, FIXTURES / "cards.csv", FIXTURES / "merchants.csv", out)
    duck = pq.read_table(out)
    reference, rejects = reference
    # compare on rows the hand-written query prices the same way: no reversals, no card
    # with a reversal or a rejected row (their slot counts differ by design: the query
    # neither rejects nor gives slots back), no repeated txn_ids
    odd_cards = pa.concat_arrays([
        pc.unique(reference.filter(pc.equal(reference["kind"], "reversal"))["card_no"]).cast(
            pa.string()),
        pc.unique(pc.drop_null(rejects["card_no"])).cast(pa.string())])
    ref = reference.filter(pc.invert(pc.or_(pc.equal(reference["kind"], "reversal"),
                                            pc.is_in(reference["card_no"], odd_cards))))
    counts = duck.group_by("txn_id").aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts["count_all"], 1))["txn_id"]  # duplicate ids
    ref = ref.filter(pc.invert(pc.is_in(ref["txn_id"], repeated)))
    duck = duck.filter(pc.is_in(duck["txn_id"], ref["txn_id"]))
    ref = ref.sort_by("txn_id").select(COMPARED)
    duck = duck.sort_by("txn_id").select(COMPARED).cast(ref.schema)
    assert ref.num_rows > 60000
    assert duck.to_pylist() == ref.to_pylist()


def test_polars_peer_timing(benchmark, tmp_path):
    """Polars' own thread pool (POLARS_MAX_THREADS, fixed at import) -- see README."""
    n = sum(pq.read_metadata(d).num_rows for d in DAYS)
    benchmark.pedantic(run_polars, args=(DAYS, FIXTURES / "cards.csv",
                                         FIXTURES / "merchants.csv", tmp_path / "o.parquet"),
                       rounds=3, iterations=1)
    benchmark.extra_info["rows_per_s"] = round(n / benchmark.stats.stats.median)


@pytest.mark.parametrize("threads", [1, 2])
def test_duckdb_peer_timing(benchmark, tmp_path, threads):
    n = sum(pq.read_metadata(d).num_rows for d in DAYS)
    benchmark.pedantic(run_duckdb, args=(DAYS, FIXTURES / "cards.csv",
                                         FIXTURES / "merchants.csv", tmp_path / "o.parquet",
                                         threads), rounds=3, iterations=1)
    benchmark.extra_info["rows_per_s"] = round(n / benchmark.stats.stats.median)
