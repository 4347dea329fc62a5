"""The programme report: rollout from the registry, benefits from priced files.

Every figure is checked against a plain-Python recount of the registry and the
priced rows, and against the replay's own control totals.
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import warnings
from collections import Counter, defaultdict

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, RULES
from txcore.audit import charts
from txcore.audit.benefits import Benefits, CardIndex, priced_files
from txcore.audit.report import COLUMNS, build_report
from txcore.audit.rollout import Roster
from txcore.cli import main
from txcore.programme import MILESTONES, UNITS
from txcore.rules.refdata import load_cards

CARDS = FIXTURES / "cards.csv"


def read(path):
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """The bundled fixture days replayed with --report (once for the module)."""
    out = tmp_path_factory.mktemp("replay")
    days = sorted(FIXTURES.glob("txns-*.parquet"))
    rc = main(["replay", "--rules", str(RULES), "--cards", str(CARDS),
               "--merchants", str(FIXTURES / "merchants.csv"), "-o", str(out), "--no-progress",
               "--report", *map(str, days)])
    assert rc == 0
    return out


def test_replay_report_adds_up_to_the_control_totals(replayed):
    summary = json.loads((replayed / "summary.json").read_text())
    report = read(replayed / "report.csv")
    assert tuple(report[0]) == COLUMNS["report.csv"]
    for money in ("fee_standard", "fee_waived", "fee_charged", "discount"):
        assert sum(int(r[money]) for r in report) == summary["totals"][money]
    assert sum(int(r["rows"]) for r in report) == summary["rows"]["priced"]
    assert (sum(int(r["disbursed"]) for r in report)
            == summary["by_kind"]["disbursement"]["amount"] > 0)
    assert {r["month"] for r in report} == {"2015-10", "2015-11"}
    for r in report:
        assert int(r["discount"]) == int(r["discount_partner"]) + int(r["discount_mcc"])
        assert int(r["benefit"]) == int(r["fee_waived"]) + int(r["discount"]) + int(r["disbursed"])
        n = int(r["members"])
        assert int(r["benefit_per_member"]) == (2 * int(r["benefit"]) + n) // (2 * n)
    page = (replayed / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 5  # district, CMB, CIB, monthly, by unit
    assert "临江街道工会" in page and "Benefits delivered" in page


def test_milestones_and_rollout_recount_the_registry(replayed):
    cards = read(CARDS)
    issued = [dt.date.fromisoformat(c["member_from"]) for c in cards if c["member_from"]]
    milestones = read(replayed / "milestones.csv")
    assert [m["date"] for m in milestones] == [m.date.isoformat() for m in MILESTONES]
    for row, ms in zip(milestones, MILESTONES):
        n = sum(d <= ms.date for d in issued)
        assert int(row["issued"]) == n
        if ms.target is None:
            assert row["target"] == "" and row["met"] == ""
        else:
            assert int(row["target"]) == ms.target
            assert row["met"] == ("true" if n >= ms.target else "false")
    # cumulative per unit and bank, by month
    rollout = read(replayed / "rollout.csv")
    name = {u.code: u.name for u in UNITS}
    for r in rollout:
        assert name[r["unit_code"]] == r["unit"]
        end = dt.date.fromisoformat(r["month"] + "-01")
        end = (end.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        assert int(r["cumulative"]) == sum(
            1 for c in cards if c["unit"] == r["unit"] and c["issuer"] == r["bank"]
            and c["member_from"] and dt.date.fromisoformat(c["member_from"]) < end)
    last = {(r["bank"], r["unit_code"]): int(r["cumulative"]) for r in rollout}
    assert sum(last.values()) == len(issued)
    # each unit's standing: expected = district number x its share of the registry
    for s in read(replayed / "unit_milestones.csv"):
        ms = next(m for m in MILESTONES if m.date.isoformat() == s["date"])
        district = ms.target if ms.target is not None else sum(d <= ms.date for d in issued)
        mine = [c for c in cards if c["unit"] == s["unit"]]
        assert int(s["registry_cards"]) == len(mine)
        assert int(s["expected"]) == (2 * district * len(mine) + len(cards)) // (2 * len(cards))
        got = sum(1 for c in mine if c["member_from"]
                  and dt.date.fromisoformat(c["member_from"]) <= ms.date)
        assert int(s["issued"]) == got
        assert s["behind"] == ("true" if got < int(s["expected"]) else "false")


def test_benefits_recount_the_priced_rows(replayed):
    """benefits.csv against a row-by-row recount of the priced files."""
    unit_of = {c["card_no"]: c["unit"] for c in read(CARDS)}
    expected = defaultdict(lambda: [0, 0])
    for f in sorted(replayed.glob("*.priced.parquet")):
        for r in pq.read_table(f).to_pylist():
            month = (r["ts"] + dt.timedelta(hours=8)).strftime("%Y-%m")
            unit = unit_of[r["card_no"]]
            sign = -1 if r["kind"] == "reversal" else 1
            if r["fee_waived"]:
                e = expected[(month, unit, "fee_waived", r["waiver_rule"])]
                e[0] += sign
                e[1] += r["fee_waived"]
            if r["discount"]:
                partner = r["discount_rule"].startswith("merchant:")
                e = expected[(month, unit, "discount_partner" if partner else "discount_mcc",
                              "partner merchants" if partner else r["discount_rule"])]
                e[0] += sign
                e[1] += r["discount"]
            if r["kind"] == "disbursement":
                e = expected[(month, unit, "disbursement", r["benefit"] or "(none)")]
                e[0] += 1
                e[1] += r["amount"]
    got = {(r["month"], r["unit"], r["category"], r["item"]): [int(r["count"]), int(r["fen"])]
           for r in read(replayed / "benefits.csv")}
    assert got == dict(expected)
    assert {k[2] for k in got} >= {"fee_waived", "discount_partner", "disbursement"}
    totals = {(t["category"], t["item"]): t for t in read(replayed / "totals.csv")}
    for category in ("fee_waived", "discount_partner", "disbursement"):
        assert int(totals[(category, "(all)")]["fen"]) == sum(
            v[1] for k, v in got.items() if k[2] == category)


def test_report_on_a_folder_counts_unknown_units_and_never_drops_a_row(replayed, tmp_path):
    """A registry of another programme: some cards gone, some units unknown or empty."""
    rows = read(CARDS)
    dropped = {c["card_no"] for c in rows[::7]}
    foreign = {c["card_no"] for c in rows[1::7]}
    blank = {c["card_no"] for c in rows[2::7]}
    kept = [dict(c, unit="外区工会" if c["card_no"] in foreign else
                 "" if c["card_no"] in blank else c["unit"])
            for c in rows if c["card_no"] not in dropped]
    registry = tmp_path / "cards.csv"
    with open(registry, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(kept)
    out = tmp_path / "rep"
    assert main(["report", "--cards", str(registry), "-o", str(out), str(replayed)]) == 0
    priced = pa.concat_tables(pq.read_table(f, columns=["card_no"])
                              for f in sorted(replayed.glob("*.priced.parquet")))
    cards = Counter(priced.column("card_no").to_pylist())
    want = {"card_not_in_registry": sum(n for c, n in cards.items() if c in dropped),
            "unit_not_in_programme": sum(n for c, n in cards.items() if c in foreign),
            "unit_empty": sum(n for c, n in cards.items() if c in blank)}
    unknown = {u["reason"]: u for u in read(out / "unknown.csv")}
    assert {k: int(v["rows"]) for k, v in unknown.items()} == want
    assert unknown["unit_not_in_programme"]["registry_unit"] == "外区工会"
    assert int(unknown["unit_empty"]["registry_cards"]) == len(blank)
    report = read(out / "report.csv")
    assert sum(int(r["rows"]) for r in report) == priced.num_rows  # nothing dropped
    assert sum(int(r["rows"]) for r in report if r["unit"] == "unknown unit") == sum(want.values())
    page = (out / "report.html").read_text(encoding="utf-8")
    assert f"{sum(want.values()):,} of them under “unknown unit”" in page


def test_report_without_priced_files_shows_the_rollout(tmp_path):
    result = build_report([], CARDS, tmp_path)
    assert result["rows"] == 0
    assert len(read(tmp_path / "milestones.csv")) == len(MILESTONES)
    assert read(tmp_path / "report.csv") == []


def test_without_a_cjk_font_charts_fall_back_to_unit_codes(monkeypatch, tmp_path):
    monkeypatch.setattr(charts, "cjk_font", lambda text: None)
    with pytest.warns(charts.FontFallbackWarning, match="fonts-wqy-microhei"):
        result = build_report([], CARDS, tmp_path)
    assert result["font"] is None
    assert "No CJK font was found" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_the_cjk_font_has_every_unit_name_glyph():
    """On a machine set up by .ci/run (fonts-wqy-microhei) the names render, no warning."""
    font = charts.cjk_font("".join(u.name for u in UNITS))
    assert font is not None, "no CJK font installed: apt-get install fonts-wqy-microhei"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert charts.Charts([u.name for u in UNITS]).font == font


@settings(max_examples=200, deadline=None)
@given(registry=st.lists(st.text("0123456789", min_size=12, max_size=19), unique=True,
                         max_size=40),
       queries=st.lists(st.one_of(st.text("0123456789", min_size=12, max_size=19),
                                  st.none()), max_size=40),
       picks=st.lists(st.integers(0, 1000), max_size=20))
def test_card_index_agrees_with_a_dict(registry, queries, picks):
    """The sorted-integer lookup against the plain dict (leading zeros included)."""
    if registry:
        queries = queries + [registry[p % len(registry)] for p in picks]
    index = CardIndex(pa.array(registry, pa.string()))
    want = {c: i for i, c in enumerate(registry)}
    got = index.rows(pa.array(queries, pa.string()))
    assert got.tolist() == [want.get(q, -1) if q is not None else -1 for q in queries]
    assert isinstance(got, np.ndarray)


def test_card_index_on_a_large_registry():
    """Many collisions in the hash table: every member found, every stranger not."""
    rng = np.random.default_rng(15)
    numbers = np.unique(rng.integers(10**15, 10**16, 60_000)).astype(str)
    registry, strangers = numbers[:50_000], numbers[50_000:]
    index = CardIndex(pa.array(registry))
    queries = np.concatenate([registry[rng.integers(0, len(registry), 20_000)], strangers])
    want = {c: i for i, c in enumerate(registry)}
    assert index.rows(pa.array(queries)).tolist() == [want.get(q, -1) for q in queries]
    assert index.probes >= 1


def test_every_priced_format_gives_the_same_sums(tmp_path):
    day = str(sorted(FIXTURES.glob("txns-*.parquet"))[0])
    registry = load_cards(CARDS).columns()
    sums = {}
    for fmt in ("parquet", "csv", "arrow"):
        out = tmp_path / fmt
        assert main(["replay", "--rules", str(RULES), "--cards", str(CARDS), "-o", str(out),
                     "--format", fmt, "--no-progress", day]) == 0
        benefits = Benefits(Roster(registry), registry.column("card_no").combine_chunks())
        for f in priced_files([out]):
            benefits.add_file(f)
        sums[fmt] = (benefits.control(), benefits.detail(), benefits.unknown())
    assert sums["csv"] == sums["parquet"] == sums["arrow"]
    assert sum(c["rows"] for c in sums["csv"][0]) > 0


def test_a_file_that_is_not_priced_is_refused_by_name(tmp_path, capfd):
    day = sorted(FIXTURES.glob("txns-*.parquet"))[0]
    assert main(["report", "--cards", str(CARDS), "-o", str(tmp_path), str(day)]) == 3
    err = capfd.readouterr().err
    assert day.name in err and "not a priced file" in err and "fee_standard" in err
