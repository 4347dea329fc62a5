"""The audit report of a priced (or replayed) period: the programme's benefit to members.

Per local month and union unit: rows, the fees the standard schedule would have
charged, the fees waived, the fees charged and the discounts given — as CSV (fen)
and as an HTML page with charts (matplotlib, embedded as PNG).  Chart labels
use unit codes (U01, ...) listed beside the chart, so no CJK font is needed.
"""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from txcore.money import yuan
from txcore.io.reader import InputSource
from txcore.rules.refdata import load_cards

MONEY = ("fee_standard", "fee_waived", "fee_charged", "discount")


def summarise(priced_files, cards, timezone="Asia/Shanghai") -> pa.Table:
    """month, unit, rows, fee_standard, fee_waived, fee_charged, discount, benefit (fen).

    Aggregated batch by batch, so a long replayed period is never held in memory.
    """
    registry = load_cards(cards).columns()
    numbers = registry.column("card_no").combine_chunks()
    unit = registry.column("unit")  # empty or null: "(none)"
    units = pc.fill_null(pc.if_else(pc.equal(unit, ""), None, unit), "(none)").combine_chunks()
    partials = []
    for f in priced_files:
        for batch in InputSource(str(f)).batches():
            where = pc.index_in(pc.cast(batch["card_no"], pa.string()), value_set=numbers)
            local = pc.cast(batch["ts"], pa.timestamp("us", timezone))
            partials.append(pa.table({
                "month": pc.strftime(local, format="%Y-%m"),
                "unit": pc.fill_null(pc.take(units, where), "(not in registry)"),
                "rows": pa.array([1] * batch.num_rows, pa.int64()),
                **{m: batch[m] for m in MONEY},
            }).group_by(["month", "unit"]).aggregate([(c, "sum") for c in ("rows", *MONEY)]))
    grouped = pa.concat_tables(partials).group_by(["month", "unit"]).aggregate(
        [(f"{c}_sum", "sum") for c in ("rows", *MONEY)])
    out = pa.table({
        "month": grouped["month"], "unit": grouped["unit"], "rows": grouped["rows_sum_sum"],
        **{m: grouped[f"{m}_sum_sum"] for m in MONEY},
        "benefit": pc.add(grouped["fee_waived_sum_sum"], grouped["discount_sum_sum"]),
    })
    return out.sort_by([("month", "ascending"), ("unit", "ascending")])


def _chart(draw) -> str:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=100)
    draw(ax)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def write_report(table: pa.Table, out_dir, title="txcore audit report") -> tuple[Path, Path]:
    """``report.csv`` and ``report.html`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, html_path = out_dir / "report.csv", out_dir / "report.html"
    pacsv.write_csv(table, csv_path)
    rows = table.to_pylist()
    months = sorted({r["month"] for r in rows})
    units = sorted({r["unit"] for r in rows})
    code = {u: f"U{i + 1:02d}" for i, u in enumerate(units)}

    def by(key, field):
        out = {}
        for r in rows:
            out[r[key]] = out.get(r[key], 0) + r[field]
        return out

    charged, waived, disc = (by("month", f) for f in ("fee_charged", "fee_waived", "discount"))

    def monthly(ax):
        x = range(len(months))
        c = [charged.get(m, 0) / 100 for m in months]
        w = [waived.get(m, 0) / 100 for m in months]
        d = [disc.get(m, 0) / 100 for m in months]
        ax.bar(x, c, label="fees charged", color="#c0504d")
        ax.bar(x, w, bottom=c, label="fees waived (member benefit)", color="#4f81bd")
        ax.bar(x, d, bottom=[a + b for a, b in zip(c, w)], label="discounts (member benefit)",
               color="#9bbb59")
        ax.set_xticks(list(x), months, rotation=45 if len(months) > 8 else 0)
        ax.set_ylabel("CNY")
        ax.set_title("Standard fees by month: charged, waived, and discounts given")
        ax.legend()

    benefit = by("unit", "benefit")

    def per_unit(ax):
        order = sorted(units, key=lambda u: benefit.get(u, 0))
        ax.barh([code[u] for u in order], [benefit.get(u, 0) / 100 for u in order],
                color="#4f81bd")
        ax.set_xlabel("CNY")
        ax.set_title("Benefit to members (waived fees + discounts) by union unit")

    total = {f: sum(r[f] for r in rows) for f in ("rows", *MONEY, "benefit")}
    cells = "".join(
        f"<tr><td>{r['month']}</td><td>{code[r['unit']]} {html.escape(r['unit'])}</td>"
        f"<td>{r['rows']:,}</td>" + "".join(f"<td>{yuan(r[f])}</td>"
                                           for f in (*MONEY, "benefit")) + "</tr>"
        for r in rows)
    legend = "".join(f"<li>{code[u]}: {html.escape(u)}</li>" for u in units)
    page = f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}
td:nth-child(2),th:nth-child(2){{text-align:left}}ul{{columns:3}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Period {months[0] if months else '-'} to {months[-1] if months else '-'}:
{total['rows']:,} priced rows; standard fees {yuan(total['fee_standard'])} CNY, of which
<b>{yuan(total['fee_waived'])} CNY waived</b> for members and {yuan(total['fee_charged'])}
CNY charged; <b>{yuan(total['discount'])} CNY</b> of discounts. Benefit to members:
<b>{yuan(total['benefit'])} CNY</b>.</p>
<img alt="fees by month" src="data:image/png;base64,{_chart(monthly)}">
<img alt="benefit by union unit" src="data:image/png;base64,{_chart(per_unit)}">
<h2>Union units</h2><ul>{legend}</ul>
<h2>By month and union unit (CNY)</h2>
<table><tr><th>month</th><th>union unit</th><th>rows</th><th>standard fees</th>
<th>waived</th><th>charged</th><th>discounts</th><th>benefit</th></tr>{cells}</table>
</body></html>
"""
    html_path.write_text(page, encoding="utf-8")
    return csv_path, html_path
