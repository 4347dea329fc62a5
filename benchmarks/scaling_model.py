"""The scaling model: projected wall time of a big day, from measured per-stage costs.

Input: one run of the partitioned plan with every task in one process (``contenders.py
plan1``): its ``stage_seconds`` (CPU seconds of each step, client and tasks), the run's
elapsed seconds and ``scratch_bytes``, on ``rows`` rows.  Per million rows:

* parallel stages, split over the workers: ``read_encode`` (read, check, encode),
  ``price_buckets``, ``assemble`` (the chunk's outputs, its Parquet part);
* the id pass, one sequential pass in the client — overlapped with the encoding when
  the state is known before the run (as here: a fresh state), so it costs only where it
  is longer than the encoding;
* serial client work: ``write_outputs`` (the parts stitched, the rejects and digests in
  order), ``merge_state``, and everything else of the run (start, validation, state
  load and commit): elapsed minus the steps.

A machine of P cores runs P workers; a cluster of N nodes × C cores runs N·C workers,
but never more than there are chunks (one per Parquet row group of ~1 M rows), and
its tasks hand ``scratch_bytes`` per row through a shared file system of the given
aggregate bandwidth.  Everything else (memory bandwidth, the scheduler's per-task
cost) is left out and named in benchmarks/README.md.

    python benchmarks/scaling_model.py costs.json
"""
from __future__ import annotations

import json
import sys

PARALLEL = ("read_encode", "price_buckets", "assemble")


def per_million(measured: dict) -> dict:
    """Seconds per million rows of each part, from a one-process run of the plan."""
    rows = measured["rows"] / 1e6
    st = measured["stage_seconds"]
    encode_step = st["read_encode_id_pass"]
    assemble_step = st["assemble_write"]
    walls = sum(v["wall"] for v in st.values())
    return {"read_encode": (encode_step["cpu"] - encode_step["id_pass_cpu"]) / rows,
            "id_pass": measured["id_pass_seconds"] / rows,
            "price_buckets": st["price_buckets"]["cpu"] / rows,
            "assemble": (assemble_step["cpu"] - assemble_step["write_outputs_cpu"]) / rows,
            "write_outputs": assemble_step["write_outputs_cpu"] / rows,
            "merge_state": st.get("merge_state", {"cpu": 0.0})["cpu"] / rows,
            "rest": max(measured["elapsed_seconds"] - walls, 0.0) / rows,
            "scratch_bytes": measured["scratch_bytes"] / measured["rows"]}


def project(cost: dict, rows_m: float, workers: int, chunks: int | None = None,
            fs_gbps: float | None = None) -> tuple[float, dict]:
    """``(seconds, parts)`` of a run of ``rows_m`` million rows on ``workers`` workers."""
    busy = min(workers, chunks) if chunks else workers
    parts = {
        "read_encode": cost["read_encode"] * rows_m / busy,
        "price_buckets": cost["price_buckets"] * rows_m / workers,
        "assemble": cost["assemble"] * rows_m / busy,
        "write_outputs": cost["write_outputs"] * rows_m,
        "merge_state + start + commit": (cost["merge_state"] + cost["rest"]) * rows_m,
    }
    # the id pass runs beside the encoding: only what is longer than it counts
    parts["id_pass (beyond encoding)"] = max(cost["id_pass"] * rows_m - parts["read_encode"],
                                             0.0)
    if fs_gbps:
        parts["scratch through the shared file system"] = \
            2 * cost["scratch_bytes"] * rows_m * 1e6 / (fs_gbps * 1e9)  # written, read back
    return sum(parts.values()), parts


def table(cost: dict) -> str:
    lines = ["| run | workers | projected wall | limiting stage |", "|---|---:|---:|---|"]
    cases = [("100 M-row day, one process of the plan", 100, 1, None, None),
             ("100 M-row day, 16-core machine", 100, 16, None, None),
             ("100 M-row day, 10-node Dask cluster (16 cores each)", 100, 160, 100, 10.0)]
    for label, rows_m, workers, chunks, fs in cases:
        seconds, parts = project(cost, rows_m, workers, chunks, fs)
        worst = max(parts, key=parts.get)
        lines.append(f"| {label} | {workers} | {seconds:,.0f} s | {worst} "
                     f"({parts[worst]:,.0f} s) |")
    for label, rows_m, workers, chunks, fs in cases[1:]:
        seconds, parts = project(cost, rows_m, workers, chunks, fs)
        worst = max(parts, key=parts.get)
        lines.append(f"| two years replayed (730 such days), {label.split(', ')[1]} | "
                     f"{workers} | {730 * seconds / 3600:,.1f} h | {worst} |")
    return "\n".join(lines)


if __name__ == "__main__":
    measured = json.load(open(sys.argv[1]))
    cost = per_million(measured)
    print(json.dumps({k: round(v, 4) for k, v in cost.items()}, indent=1))
    print(table(cost))
