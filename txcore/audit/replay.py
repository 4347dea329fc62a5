"""Audit replay (docs/audit.md#txcore-replay): re-price historical files and compare with what was recorded.

``replay`` prices from an empty state (or a snapshot, read only) with the rule
versions in force at each date and touches no live state.  ``compare`` joins
the replayed priced rows with recorded ones by ``txn_id`` and lists every
difference in the priced columns as ``(txn_id, column, recorded, replayed)``.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from txcore import runner
from txcore.io.assemble import OUTPUT_FIELDS
from txcore.errors import InputRefused, UsageError
from txcore.io.reader import InputSource

COMPARED = tuple(f.name for f in OUTPUT_FIELDS)
DIFF_SCHEMA = pa.schema([("txn_id", pa.string()), ("column", pa.string()),
                         ("recorded", pa.string()), ("replayed", pa.string()),
                         ("fee_rule", pa.string())])


def replay(files, *, rules, cards, out_dir, merchants=None, compare=None, snapshot=None,
           key_file=None, **kw) -> dict:
    """Price ``files`` from an empty state (or ``snapshot``); with ``compare``, diff.

    The summary gains ``compare``: mismatching rows and cells by column and by fee
    rule, and the diff file's name (``diff.parquet`` in ``out_dir``).
    """
    if compare is not None and kw.get("fmt", "parquet") != "parquet":
        raise UsageError("--compare needs parquet output")
    recorded = read_recorded(compare) if compare is not None else None
    result = runner.run(files, rules=rules, cards=cards, merchants=merchants, out_dir=out_dir,
                        snapshot=snapshot, key_file=key_file, command="replay", **kw)
    if recorded is None:
        return result
    out_dir = Path(out_dir)
    replayed = pa.concat_tables([pq.read_table(out_dir / i["priced_output"])
                                 for i in result["inputs"]], promote_options="permissive")
    diff = compare_tables(recorded, replayed)
    pq.write_table(diff, out_dir / "diff.parquet")
    result["compare"] = {
        "recorded": str(compare), "diff_file": "diff.parquet", "cells": diff.num_rows,
        "rows": len(set(diff.column("txn_id").to_pylist())),
        "by_column": dict(Counter(diff.column("column").to_pylist()).most_common()),
        "by_fee_rule": dict(Counter(r or "(none)" for r in diff.column("fee_rule").to_pylist())
                            .most_common()),
    }
    return result


def read_recorded(path) -> pa.Table:
    """Recorded priced rows: a file, or every ``*.priced.*`` file in a folder."""
    path = Path(path)
    files = sorted(path.glob("*.priced.*")) if path.is_dir() else [path]
    if not files:
        raise InputRefused(f"{path}: no recorded priced files (*.priced.*)")
    tables = []
    for f in files:  # keep only the columns compared, batch by batch
        source = InputSource(str(f))
        kept = []
        for batch in source.batches():
            kept.append(batch.select(_recorded_columns(source)))
        keep = _recorded_columns(source)
        tables.append(pa.Table.from_batches(kept, schema=pa.schema(
            [source.schema.field(c) for c in keep])))
    return pa.concat_tables(tables, promote_options="permissive")


def _recorded_columns(source) -> list[str]:
    names = source.schema.names
    if "txn_id" not in names:
        raise InputRefused(f"{source.name}: recorded rows have no txn_id column")
    return ["txn_id", *(c for c in COMPARED if c in names)]


def _text(col: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.cast(col, pa.string())


def compare_tables(recorded: pa.Table, replayed: pa.Table) -> pa.Table:
    """Every difference in the priced columns the recorded rows carry, by txn_id.

    A row recorded but not replayed (or the reverse) is one difference in column
    ``(row)``.  Values are compared as text, so a recorded CSV compares too.
    """
    columns = [c for c in COMPARED if c in recorded.column_names]
    left = pa.table({"txn_id": _text(recorded["txn_id"]),
                     **{f"r_{c}": _text(recorded[c]) for c in columns},
                     "r_fee_rule_": _text(recorded["fee_rule"]) if "fee_rule" in columns
                     else pa.nulls(recorded.num_rows, pa.string()),
                     "r_present": pa.array([True] * recorded.num_rows)})
    right = pa.table({"txn_id": _text(replayed["txn_id"]),
                      **{f"p_{c}": _text(replayed[c]) for c in columns},
                      "p_fee_rule_": _text(replayed["fee_rule"]),
                      "p_present": pa.array([True] * replayed.num_rows)})
    joined = left.join(right, "txn_id", join_type="full outer").sort_by("txn_id")
    parts = []
    r_here = pc.fill_null(joined["r_present"], False)
    p_here = pc.fill_null(joined["p_present"], False)
    rule = pc.coalesce(joined["p_fee_rule_"], joined["r_fee_rule_"])
    lonely = pc.not_equal(r_here, p_here)
    if pc.any(lonely).as_py():
        t = joined.filter(lonely)
        parts.append(pa.table({
            "txn_id": t["txn_id"], "column": pa.array(["(row)"] * t.num_rows),
            "recorded": pc.if_else(t["r_present"], "present", "missing"),
            "replayed": pc.if_else(pc.fill_null(t["p_present"], False), "present", "missing"),
            "fee_rule": rule.filter(lonely)}, schema=DIFF_SCHEMA))
    both = pc.and_(r_here, p_here)
    for c in columns:
        r, p = joined[f"r_{c}"], joined[f"p_{c}"]
        same = pc.or_(pc.and_(pc.is_null(r), pc.is_null(p)), pc.fill_null(pc.equal(r, p), False))
        bad = pc.and_(both, pc.invert(same))
        if pc.any(bad).as_py():
            t = joined.filter(bad)
            parts.append(pa.table({"txn_id": t["txn_id"],
                                   "column": pa.array([c] * t.num_rows, pa.string()),
                                   "recorded": t[f"r_{c}"], "replayed": t[f"p_{c}"],
                                   "fee_rule": rule.filter(bad)}, schema=DIFF_SCHEMA))
    if not parts:
        return DIFF_SCHEMA.empty_table()
    return pa.concat_tables(parts).sort_by([("txn_id", "ascending"), ("column", "ascending")])
