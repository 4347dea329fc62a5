"""The measured per-stage costs behind the scaling model (``scaling_model.py``).

Runs the partitioned plan on the benchmark month (``TXCORE_BENCH_ROWS``, default 10 M)
with every task in one process — each stage's own CPU cost, without the contention of
workers sharing cores — from a fresh state (the id pass runs beside the encoding); and
the id pass alone from 1 M rows priced twice, the second time as another file on the
state the first committed (every row a duplicate, decided by the id pass after the
state's entries are loaded for them).  Writes ``scaling-costs.json`` beside the bench data and prints the projections.

    pip install -e '.[bench]' && pytest benchmarks/test_scaling.py -p no:cacheprovider -s
"""
from __future__ import annotations

import json
import subprocess
import sys

import pyarrow.parquet as pq

from test_hot_path import DATA, HERE, ROWS, _month

from scaling_model import per_million, table


def plan1(month, out) -> dict:
    data, path = month
    proc = subprocess.run([sys.executable, str(HERE / "contenders.py"), "plan1", "1",
                           str(data), str(path), str(out)], stdout=subprocess.PIPE, check=True)
    return json.loads(proc.stdout)


def test_stage_costs_and_projection(benchmark, tmp_path):
    month = _month(ROWS)
    runs = []
    benchmark.pedantic(lambda: runs.append(plan1(month, tmp_path / f"r{len(runs)}")),
                       rounds=1, iterations=1)
    fresh = runs[0]
    # the id pass alone: a million rows priced into a state, then the same rows again in
    # another file (every one a duplicate, which the id pass decides, after the state's
    # entries are loaded for them)
    import txcore
    from txcore.plan.executors import InProcess
    data, path = _month(min(ROWS, 1_000_000))
    kw = dict(rules=HERE.parent / "rules", cards=data / "cards.csv",
              merchants=data / "merchants.csv", state_dir=tmp_path / "idpass" / "state",
              progress=False, engine=InProcess())
    first = txcore.run([path], out_dir=tmp_path / "idpass" / "first", **kw)
    again = tmp_path / "again.parquet"
    pq.write_table(pq.read_table(path).replace_schema_metadata({"copy": "again"}), again)
    second = txcore.run([again], out_dir=tmp_path / "idpass" / "again", **kw)
    per_row = second["stage_seconds"]["id_pass"]["cpu"] / second["rows"]["input"]
    assert first["rows"]["input"] == second["rows"]["input"]
    measured = {"rows": fresh["rows"], "stage_seconds": fresh["stage_seconds"],
                "elapsed_seconds": fresh["elapsed_seconds"],
                "scratch_bytes": fresh["scratch_bytes"],
                "id_pass_seconds": per_row * fresh["rows"],
                "loaded_state_run": {"rows": second["rows"]["input"],
                                     "stage_seconds": second["stage_seconds"],
                                     "first_run": first["stage_seconds"]}}
    (DATA / "scaling-costs.json").write_text(json.dumps(measured, indent=1))
    cost = per_million(measured)
    print("\nper million rows:", json.dumps({k: round(v, 3) for k, v in cost.items()}))
    print(table(cost))
    benchmark.extra_info.update(per_million={k: round(v, 4) for k, v in cost.items()})
