"""The programme report for the union federation: card rollout and benefits delivered.

:func:`build_report` reads the card registry (:mod:`txcore.rollout`) and priced
files (:mod:`txcore.benefits`) and writes, into one folder, CSV files holding
every figure (money in integer fen) and ``report.html``, a page with charts
(:mod:`txcore.charts`) that a person opens in a browser.  What each file holds,
and the definitions: ``docs/report.md``.
"""
from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from txcore.audit.benefits import CATEGORIES, MONEY, Benefits, priced_files
from txcore.audit.charts import Charts
from txcore.audit.rollout import (REASONS, Roster, month_first, month_index,
                                  month_label, month_last, ratio, unit_code, unit_name)
from txcore.money import yuan
from txcore.programme import MILESTONES, UNITS
from txcore.rules.refdata import load_cards

CATEGORY_NAMES = {"fee_waived": "fees waived", "discount_partner": "partner-merchant discounts",
                  "discount_mcc": "category (MCC) discounts",
                  "disbursement": "disbursements (union benefits)"}
FILES = {
    "milestones.csv": "district cards issued at each milestone date: date, target, issued, met",
    "unit_milestones.csv": "each union unit at each milestone: expected, issued, short, behind",
    "rollout.csv": "cards issued per month, bank and union unit, and cumulative",
    "report.csv": "per month and union unit: rows, fees, discounts, disbursements, members, "
                  "benefit and benefit per member (fen)",
    "benefits.csv": "per month and union unit: each waiver rule, partner merchants, each "
                    "category discount rule, each disbursement benefit: count and fen",
    "totals.csv": "the whole period, per category and item: count, fen, per member",
    "unknown.csv": "priced rows and registry cards under \"unknown unit\", by reason",
}

#: The columns of each CSV file, in order (money in fen).
COLUMNS = {
    "milestones.csv": ("date", "target", "issued", "met"),
    "unit_milestones.csv": ("date", "target", "unit_code", "unit", "bank", "registry_cards",
                            "expected", "issued", "short", "behind"),
    "rollout.csv": ("month", "bank", "unit_code", "unit", "issued", "cumulative"),
    "report.csv": ("month", "unit_code", "unit", "rows", *MONEY, "discount_partner",
                   "discount_mcc", "disbursements", "disbursed", "benefit", "members",
                   "benefit_per_member"),
    "benefits.csv": ("month", "unit_code", "unit", "category", "item", "count", "fen"),
    "totals.csv": ("category", "item", "count", "fen", "members", "per_member"),
    "unknown.csv": ("reason", "registry_unit", "registry_cards", "rows", "fee_waived",
                    "discount", "disbursed"),
}


def build_report(priced, cards, out_dir, timezone: str = "Asia/Shanghai",
                 title: str = "Union member service card: programme report") -> dict:
    """Write the report's CSV files and ``report.html`` into ``out_dir``; return what was
    written (``files``), the chart font (``font``, None when units are shown by code) and
    the priced ``rows`` read."""
    registry = load_cards(cards).columns()
    roster = Roster(registry)
    benefits = Benefits(roster, registry.column("card_no").combine_chunks(), timezone)
    for path in priced_files(priced):
        benefits.add_file(path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    r = _Figures(roster, benefits)
    for name, rows in (("milestones.csv", r.milestones), ("unit_milestones.csv", r.standing),
                       ("rollout.csv", r.rollout), ("report.csv", r.by_month_unit),
                       ("benefits.csv", r.detail), ("totals.csv", r.totals),
                       ("unknown.csv", r.unknown)):
        _write_csv(out / name, rows, COLUMNS[name])
    charts = Charts([u.name for u in UNITS])
    page = _page(r, charts, title)
    (out / "report.html").write_text(page, encoding="utf-8")
    return {"out_dir": str(out), "files": [*FILES, "report.html"], "font": charts.font,
            "rows": benefits.rows}


class _Figures:
    """Every table of the report, as lists of dicts (money in fen)."""

    def __init__(self, roster: Roster, benefits: Benefits):
        self.roster = roster
        control = benefits.control()
        detail = benefits.detail()
        issue = roster.issue_months()
        last_ms = month_index(MILESTONES[-1].date)
        priced_months = sorted({c["month"] for c in control})
        first = min([*issue.tolist(), *priced_months] or [last_ms])
        last = max([*issue.tolist(), last_ms, *priced_months])
        self.rollout_months = range(int(first), int(last) + 1)
        self.months = (range(priced_months[0], priced_months[-1] + 1) if priced_months
                       else range(0))
        self.rollout = roster.rollout(self.rollout_months)
        self.milestones = roster.milestones()
        self.standing = roster.unit_standing()

        members = {m: roster.members(month_first(m), month_last(m)) for m in self.months}
        cat = {}
        for d in detail:
            key = (d["month"], d["unit"], d["category"])
            c, f = cat.get(key, (0, 0))
            cat[key] = (c + d["count"], f + d["fen"])
        self.by_month_unit = []
        for c in control:
            m, u = c["month"], c["unit"]
            disb_count, disbursed = cat.get((m, u, "disbursement"), (0, 0))
            benefit = c["fee_waived"] + c["discount"] + disbursed
            n = int(members[m][u])
            self.by_month_unit.append({
                "month": month_label(m), "unit_code": unit_code(u), "unit": unit_name(u),
                "rows": c["rows"], **{k: c[k] for k in MONEY},
                "discount_partner": cat.get((m, u, "discount_partner"), (0, 0))[1],
                "discount_mcc": cat.get((m, u, "discount_mcc"), (0, 0))[1],
                "disbursements": disb_count, "disbursed": disbursed, "benefit": benefit,
                "members": n, "benefit_per_member": ratio(benefit, n) if n else None})
        self.detail = [{"month": month_label(d["month"]), "unit_code": unit_code(d["unit"]),
                        "unit": unit_name(d["unit"]), "category": d["category"],
                        "item": d["item"], "count": d["count"], "fen": d["fen"]}
                       for d in detail]

        if self.months:
            self.period = (month_first(self.months[0]), month_last(self.months[-1]))
            self.unit_members = roster.members(*self.period)
        else:
            self.period, self.unit_members = None, roster.members(dt.date.max, dt.date.min)
        period_members = int(self.unit_members.sum())
        items = {}
        for d in detail:
            c, f = items.get((d["category"], d["item"]), (0, 0))
            items[(d["category"], d["item"])] = (c + d["count"], f + d["fen"])
        self.totals = []
        for category in CATEGORIES:
            keys = sorted(k for k in items if k[0] == category)
            for key in keys + [(category, "(all)")]:
                count, fen = (items[key] if key in items else
                              tuple(sum(items[k][i] for k in keys) for i in (0, 1)))
                self.totals.append({"category": category, "item": key[1], "count": count,
                                    "fen": fen, "members": period_members,
                                    "per_member": ratio(fen, period_members)})
        total = sum(t["fen"] for t in self.totals if t["item"] == "(all)")
        self.totals.append({"category": "all benefits", "item": "(all)", "count": None,
                            "fen": total, "members": period_members,
                            "per_member": ratio(total, period_members)})
        self.total_benefit = total

        self.unknown = []
        for u in benefits.unknown():
            label = roster.labels[u["label"]]
            cards_ = None if u["reason"] == 0 else int(
                ((roster.unknown_reason == u["reason"]) & (roster.unknown_label == u["label"])).sum())
            self.unknown.append({"reason": REASONS[u["reason"]], "registry_unit": label,
                                 "registry_cards": cards_, "rows": u["rows"],
                                 "fee_waived": u["fee_waived"], "discount": u["discount"],
                                 "disbursed": u["disbursed"]})
        seen = {(x["reason"], x["registry_unit"]) for x in self.unknown}
        for reason in (1, 2):  # registry cards under "unknown unit" with no priced row
            for label in set(roster.unknown_label[roster.unknown_reason == reason].tolist()):
                key = (REASONS[reason], roster.labels[label])
                if key not in seen:
                    n = int(((roster.unknown_reason == reason)
                             & (roster.unknown_label == label)).sum())
                    self.unknown.append({"reason": key[0], "registry_unit": key[1],
                                         "registry_cards": n, "rows": 0, "fee_waived": 0,
                                         "discount": 0, "disbursed": 0})
        self.priced_rows = sum(c["rows"] for c in control)
        self.unknown_rows = sum(x["rows"] for x in self.unknown)


def _write_csv(path: Path, rows: list[dict], columns: tuple[str, ...]):
    if rows:
        assert tuple(rows[0]) == columns, (path.name, tuple(rows[0]))
    pacsv.write_csv(pa.Table.from_pylist(rows, schema=pa.schema(
        [(c, _CSV_TYPES.get(c, pa.int64())) for c in columns])), path)


_CSV_TYPES = {c: pa.string() for c in ("date", "month", "bank", "unit_code", "unit", "category",
                                       "item", "reason", "registry_unit")}
_CSV_TYPES.update(met=pa.bool_(), behind=pa.bool_())


# -- the page -------------------------------------------------------------------------------
def _img(png: str, alt: str) -> str:
    return f'<img class="chart" alt="{html.escape(alt)}" src="data:image/png;base64,{png}">'


def _page(r: _Figures, charts: Charts, title: str) -> str:
    e = html.escape
    roster = r.roster
    lbl = {u: charts.label(unit_code(u), unit_name(u)) for u in range(roster.n_units)}

    # rollout: the district line, then one chart per bank
    months = [month_last(m) for m in r.rollout_months]
    district = [0] * len(months)
    per_bank: dict[str, dict[str, list[int]]] = {}
    codes = {unit_code(u): u for u in range(roster.n_units)}
    for i, row in enumerate(r.rollout):
        k = i % len(months)
        district[k] += row["cumulative"]
        per_bank.setdefault(row["bank"], {}).setdefault(
            lbl[codes[row["unit_code"]]], []).append(row["cumulative"])
    targets = roster.bank_targets()
    charts_rollout = [_img(charts.district(months, district, r.milestones), "district rollout")]
    for bank, series in per_bank.items():
        charts_rollout.append(_img(charts.bank(bank, months, series, r.milestones,
                                               targets[bank]), f"rollout {bank}"))

    ms_rows = "".join(
        f"<tr><td>{m['date']}</td><td class=l>{e(ms.label)}</td>"
        f"<td>{'' if m['target'] is None else format(m['target'], ',')}</td>"
        f"<td>{m['issued']:,}</td>" + _met(m["met"]) + "</tr>"
        for m, ms in zip(r.milestones, MILESTONES))

    # the units x milestones matrix
    dates = [m.date.isoformat() for m in MILESTONES]
    cell = {(s["unit_code"], s["date"]): s for s in r.standing}
    matrix = ""
    for u in range(roster.n_units):
        code = unit_code(u)
        if (code, dates[0]) not in cell:
            continue
        first = cell[(code, dates[0])]
        tds = ""
        for d in dates:
            s = cell[(code, d)]
            cls, text = (("behind", f"{s['issued']:,} / {s['expected']:,}<br>short {s['short']:,}")
                         if s["behind"] else ("ok", f"{s['issued']:,} / {s['expected']:,}"))
            tds += f"<td class={cls}>{text}</td>"
        matrix += (f"<tr><td class=l>{e(code)}</td><td class=l>{e(unit_name(u))}</td>"
                   f"<td class=l>{e(first['bank'])}</td><td>{first['registry_cards']:,}</td>"
                   f"{tds}</tr>")
    behind_lists = "".join(
        f"<li><b>{d}</b>: " + (", ".join(e(f"{s['unit_code']} {s['unit']}") for s in r.standing
                                         if s["date"] == d and s["behind"]) or "none") + "</li>"
        for d in dates)

    # benefits
    bmonths = [month_first(m) for m in r.months]
    cats = {c: [0] * len(bmonths) for c in CATEGORIES}
    unit_cats = {c: [0] * roster.n_units for c in CATEGORIES}
    for d in r.detail:
        u = codes[d["unit_code"]]
        unit_cats[d["category"]][u] += d["fen"]
        k = r.months.index(month_index(dt.date.fromisoformat(d["month"] + "-01")))
        cats[d["category"]][k] += d["fen"]
    if bmonths:
        present = [u for u in range(roster.n_units)
                   if any(unit_cats[c][u] for c in CATEGORIES) or r.unit_members[u]]
        per_member = [ratio(sum(unit_cats[c][u] for c in CATEGORIES), int(r.unit_members[u]))
                      for u in present]
        kinds = sorted({d["item"] for d in r.detail if d["category"] == "disbursement"})
        paid = {k: [0] * len(bmonths) for k in kinds}
        for d in r.detail:
            if d["category"] == "disbursement":
                paid[d["item"]][r.months.index(
                    month_index(dt.date.fromisoformat(d["month"] + "-01")))] += d["fen"]
        charts_benefit = [
            _img(charts.monthly(bmonths, {c: cats[c] for c in CATEGORIES[:3]}, paid,
                                CATEGORY_NAMES), "benefits by month"),
            _img(charts.by_unit([lbl[u] for u in present],
                                {c: [unit_cats[c][u] for u in present] for c in CATEGORIES},
                                CATEGORY_NAMES, per_member), "benefits by union unit")]
        period = f"{r.period[0]} to {r.period[1]}"
    else:
        charts_benefit, period = ["<p>No priced files were given.</p>"], "-"
    totals = "".join(
        f"<tr{' class=sum' if t['item'] == '(all)' else ''}>"
        f"<td class=l>{e(CATEGORY_NAMES.get(t['category'], t['category']))}</td>"
        f"<td class=l>{e(t['item'])}</td><td>{'' if t['count'] is None else format(t['count'], ',')}"
        f"</td><td>{yuan(t['fen'])}</td><td>{yuan(t['per_member'])}</td></tr>"
        for t in r.totals)
    unknown = "".join(
        f"<tr><td class=l>{e(x['reason'])}</td><td class=l>{e(x['registry_unit'])}</td>"
        f"<td>{'' if x['registry_cards'] is None else format(x['registry_cards'], ',')}</td>"
        f"<td>{x['rows']:,}</td><td>{yuan(x['fee_waived'])}</td><td>{yuan(x['discount'])}</td>"
        f"<td>{yuan(x['disbursed'])}</td></tr>" for x in r.unknown) or (
        "<tr><td class=l colspan=7>none: every priced row's card is in the registry, "
        "with a unit of the programme</td></tr>")
    table = "".join(
        f"<tr><td>{x['month']}</td><td class=l>{e(x['unit_code'])} {e(x['unit'])}</td>"
        f"<td>{x['rows']:,}</td><td>{yuan(x['fee_waived'])}</td>"
        f"<td>{yuan(x['discount_partner'])}</td><td>{yuan(x['discount_mcc'])}</td>"
        f"<td>{x['disbursements']:,}</td><td>{yuan(x['disbursed'])}</td>"
        f"<td>{yuan(x['benefit'])}</td><td>{x['members']:,}</td>"
        f"<td>{'' if x['benefit_per_member'] is None else yuan(x['benefit_per_member'])}</td></tr>"
        for x in r.by_month_unit)
    files = "".join(f"<li><code>{n}</code>: {e(d)}</li>" for n, d in FILES.items())
    final = max(m.target for m in MILESTONES if m.target is not None)
    short_registry = (f"<p><b>The registry holds {len(roster):,} cards, fewer than the notice's "
                      f"{final:,}: its numbered targets cannot be met with this registry.</b></p>"
                      if len(roster) < final else "")
    font_note = (f"Charts set in {e(charts.font)}." if charts.font else
                 "<b>No CJK font was found: charts label units by code</b> (see the table).")
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>body{{font-family:"Noto Sans CJK SC","WenQuanYi Micro Hei","Microsoft YaHei",sans-serif;
margin:1.5em 2em;max-width:72em;color:#222}}
table{{border-collapse:collapse;margin:.5em 0 1.5em}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}} .l{{text-align:left}}
td.ok{{background:#e3f1e4}} td.behind{{background:#f8dcdc}} tr.sum td{{font-weight:bold}}
td.met{{background:#e3f1e4;font-weight:bold}} td.missed{{background:#f8dcdc;font-weight:bold}}
img.chart{{display:block;max-width:100%;margin:.5em 0 1em}} h2{{margin-top:1.5em}}</style>
</head><body>
<h1>{e(title)}</h1>
<p>工会会员服务卡 · registry {len(roster):,} cards; priced rows {r.priced_rows:,}
(period {period}); {r.unknown_rows:,} of them under “unknown unit”.
Money in yuan (CNY); every figure is also in the CSV files beside this page, money in fen.
{font_note}</p>
<h2>1. Card rollout against the notice's milestones</h2>{short_registry}
<table><tr><th>date</th><th class=l>step</th><th>district target</th><th>cards issued</th>
<th>met</th></tr>{ms_rows}</table>
{''.join(charts_rollout)}
<h3>Union units at each milestone: cards issued / expected</h3>
<p>Expected = the district number at that date (where the notice gives none: the cards the
district had issued by then) times the unit's share of the registry's cards. Red: behind
schedule (issued below expected), with the shortfall.</p>
<table><tr><th class=l>code</th><th class=l>union unit</th><th class=l>bank</th>
<th>registry cards</th>{''.join(f'<th>{d}</th>' for d in dates)}</tr>{matrix}</table>
<p>Behind schedule:</p><ul>{behind_lists}</ul>
<h2>2. Benefits delivered to members</h2>
<table><tr><th class=l>category</th><th class=l>item</th><th>count</th><th>yuan</th>
<th>per member</th></tr>{totals}</table>
<p>Per member: over the members of the period (cards that were member cards on at least one
day of it): {int(r.unit_members.sum()):,}. Reversals count against what they reverse.</p>
{''.join(charts_benefit)}
<h2>3. Unknown unit</h2>
<p>Priced rows whose card is not in the registry, or whose card's unit is empty or not one of
the programme's units: counted here, and in every total under “unknown unit”.</p>
<table><tr><th class=l>reason</th><th class=l>registry unit</th><th>registry cards</th>
<th>priced rows</th><th>fees waived</th><th>discounts</th><th>disbursed</th></tr>{unknown}</table>
<h2>4. By month and union unit (yuan)</h2>
<details><summary>{len(r.by_month_unit):,} rows</summary>
<table><tr><th>month</th><th class=l>union unit</th><th>rows</th><th>fees waived</th>
<th>partner discounts</th><th>MCC discounts</th><th>disbursements</th><th>disbursed</th>
<th>benefit</th><th>members</th><th>per member</th></tr>{table}</table></details>
<h2>Files</h2><ul>{files}</ul>
</body></html>
"""


def _met(met) -> str:
    if met is None:
        return "<td>—</td>"
    return "<td class=met>met ✓</td>" if met else "<td class=missed>missed ✗</td>"
