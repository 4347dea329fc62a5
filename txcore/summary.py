"""Run summary (docs/outputs.md): control totals from the output batches, ``summary.json``, a table.

Totals are taken from the priced and reject batches themselves (Arrow
compute), so they hold for every backend.  Nothing here holds a card number.
"""
from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa

from txcore.money import yuan
from txcore.vocab import KINDS

MONEY = ("amount", "fee_standard", "fee_waived", "fee_charged", "discount")
#: Rows summed by Arrow at once: Arrow's int64 sums wrap silently, and a priced row's money
#: is at most 2 * 10**12 fen (docs/rules.md#bounds-of-rule-values), so 2**22 rows cannot overflow.
SUM_ROWS = 1 << 22


class Totals:
    """Counts and control totals, per kind, of priced rows; rejects by reason."""

    def __init__(self):
        self.by_kind = {k: dict.fromkeys(("count", *MONEY), 0) for k in KINDS}
        self.rejected_by_reason: Counter = Counter()
        self.rulesets: Counter = Counter()
        self.priced = self.rejected = 0

    def add(self, priced: pa.RecordBatch, rejects: pa.RecordBatch):
        self.priced += priced.num_rows
        self.rejected += rejects.num_rows
        if rejects.num_rows:
            for row in pa.Table.from_batches([rejects]).group_by("reject_reason").aggregate(
                    [([], "count_all")]).to_pylist():
                self.rejected_by_reason[row["reject_reason"]] += row["count_all"]
        for start in range(0, priced.num_rows, SUM_ROWS):
            table = pa.Table.from_batches([priced.slice(start, SUM_ROWS)])
            money = [m for m in MONEY if m in table.column_names]  # an input may lack amount
            aggs = [([], "count_all")] + [(m, "sum") for m in money]
            for row in table.group_by("kind").aggregate(aggs).to_pylist():
                t = self.by_kind[row["kind"]]
                t["count"] += row["count_all"]
                for m in money:
                    t[m] += row[f"{m}_sum"] or 0
            for row in table.group_by("ruleset").aggregate([([], "count_all")]).to_pylist():
                self.rulesets[row["ruleset"]] += row["count_all"]

    def merge(self, other: "Totals"):
        """Add ``other``'s counts and totals (a chunk's, priced elsewhere)."""
        self.priced += other.priced
        self.rejected += other.rejected
        self.rejected_by_reason.update(other.rejected_by_reason)
        self.rulesets.update(other.rulesets)
        for kind, t in other.by_kind.items():
            for key, value in t.items():
                self.by_kind[kind][key] += value

    def grand(self) -> dict:
        return {key: sum(t[key] for t in self.by_kind.values()) for key in ("count", *MONEY)}

    def as_dict(self) -> dict:
        return {
            "by_kind": {k: v for k, v in self.by_kind.items() if v["count"]},
            "totals": self.grand(),
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "rulesets": dict(sorted(self.rulesets.items())),
        }


def to_json(summary: dict) -> bytes:
    return (json.dumps(summary, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def render(summary: dict) -> str:
    """The short terminal table."""
    rows = summary["rows"]
    lines = [f"txcore {summary['command']}: {rows['input']:,} rows in, {rows['priced']:,} priced, "
             f"{rows['rejected']:,} rejected  ({summary['elapsed_seconds']:.2f} s, "
             f"{summary['rows_per_second']:,.0f} rows/s, backend {summary['backend']})"]
    for f in summary["inputs"]:
        lines.append(f"  {f['file']}: {f['rows']:,} rows, {f['priced']:,} priced, "
                     f"{f['rejected']:,} rejected  sha256 {f['sha256'][:12]}...")
    for f in summary.get("skipped", []):
        lines.append(f"  {f['file']}: skipped, already committed by run {f['committed_by']}")
    header = f"  {'kind':<13}{'count':>10}{'amount':>18}{'fee std':>13}{'waived':>13}" \
             f"{'charged':>13}{'discount':>13}"
    lines += ["", "  control totals (CNY)", header]
    body = list(summary["by_kind"].items()) + [("total", summary["totals"])]
    for kind, t in body:
        lines.append(f"  {kind:<13}{t['count']:>10,}{yuan(t['amount']):>18}"
                     f"{yuan(t['fee_standard']):>13}{yuan(t['fee_waived']):>13}"
                     f"{yuan(t['fee_charged']):>13}{yuan(t['discount']):>13}")
    if summary["rejected_by_reason"]:
        lines += ["", "  rejected by reason: " + ", ".join(
            f"{k} {v:,}" for k, v in summary["rejected_by_reason"].items())]
    if summary.get("zero_effect_reversals"):
        lines.append(f"  zero-effect reversals: {summary['zero_effect_reversals']:,}")
    lines.append("  rule sets: " + ", ".join(f"{k} ({v:,} rows)"
                                            for k, v in summary["rulesets"].items()))
    return "\n".join(lines)
