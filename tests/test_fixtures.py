"""The synthetic data set follows the Licheng 2013 notice (docs/cli.md#txcore-fixtures)."""
from __future__ import annotations

import datetime as dt

import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from conftest import FIXTURES
from txcore import cardno
from txcore.runner import DEMO_FIXTURES
from txcore.fixtures import UNITS, make_fixtures


@pytest.fixture(scope="module")
def autumn_2013(tmp_path_factory):
    """2,400 members over the first medical-aid day and the October month end."""
    out = tmp_path_factory.mktemp("fx")
    files = make_fixtures(out, members=2400, days=6, seed=7, start=dt.date(2013, 9, 28))
    cards = pacsv.read_csv(files[0], convert_options=pacsv.ConvertOptions(
        column_types={"card_no": "string", "member_from": "string", "member_to": "string",
                      "home_city": "string"}))
    days = {f.stem[5:]: pq.read_table(f) for f in files[2:]}
    return cards, days


def test_the_bundled_fixtures_are_what_the_generator_makes(tmp_path):
    """fixtures/ = ``txcore fixtures --members 5000 --days 5 --seed 2013``."""
    files = make_fixtures(tmp_path, **DEMO_FIXTURES)
    for f in files:
        if f.suffix == ".parquet":
            assert pq.read_table(f).equals(pq.read_table(FIXTURES / f.name)), f.name
        else:
            assert f.read_bytes() == (FIXTURES / f.name).read_bytes(), f.name


def test_cards_units_issuers_and_numbers(autumn_2013):
    cards, _ = autumn_2013
    assert cardno.check_column(cards.column("card_no")).all()
    assert pc.count_distinct(cards.column("card_no")).as_py() == cards.num_rows
    issuer_of = {name: issuer for name, issuer, _ in UNITS}
    for unit, issuer in zip(cards.column("unit").to_pylist(), cards.column("issuer").to_pylist()):
        assert issuer_of[unit] == issuer
    assert {"临江街道工会", "海滨街道工会", "教育系统工会", "高新园区工会"} <= set(
        cards.column("unit").to_pylist())
    assert issuer_of["教育系统工会"] == "CIB" and issuer_of["金龙街道工会"] == "CMB"
    assert set(cards.column("home_city").to_pylist()) == {"350500"}


def test_rollout_timetable(autumn_2013):
    cards, _ = autumn_2013
    issued = sorted(dt.date.fromisoformat(d) for d in cards.column("member_from").to_pylist()
                    if d)
    n = cards.num_rows
    by = lambda day: sum(d <= day for d in issued) / n  # noqa: E731
    assert issued[0] >= dt.date(2013, 9, 1) and issued[-1] <= dt.date(2015, 10, 1)
    assert 0.19 <= by(dt.date(2013, 12, 31)) <= 0.215  # the 25,000 of 120,000 mutual-aid members
    assert by(dt.date(2014, 3, 1)) > by(dt.date(2013, 12, 31)) + 0.2
    assert by(dt.date(2014, 10, 1)) > by(dt.date(2014, 3, 1)) + 0.25
    assert by(dt.date(2015, 10, 1)) >= 0.99  # all but the few never-members


def test_daily_files_have_the_kinds_of_a_debit_card(autumn_2013):
    _, days = autumn_2013
    everything = [t for t in days.values()]
    kinds = set().union(*(set(t.column("kind").to_pylist()) for t in everything))
    assert {"withdrawal", "transfer", "purchase", "service", "reversal"} <= kinds
    for day, t in days.items():
        disb = t.filter(pc.equal(t.column("kind"), "disbursement"))
        if day < "2013-10-01":
            assert disb.num_rows == 0  # medical aid goes through the card from 2013-10-01
        else:
            assert set(disb.column("benefit").to_pylist()) <= {"medical_aid", "hardship",
                                                                "school_aid"}
    month_end = days["2013-09-30"]
    assessed = month_end.filter(pc.equal(month_end.column("fee_item"), "small_account"))
    assert assessed.num_rows > 100
    assert days["2013-10-01"].filter(pc.equal(days["2013-10-01"].column("fee_item"),
                                              "small_account")).num_rows == 0
    issuance = days["2013-10-02"].filter(pc.equal(days["2013-10-02"].column("fee_item"),
                                                  "issuance"))
    assert issuance.num_rows > 0  # cards issued that day


def test_a_few_malformed_rows_are_mixed_in(tmp_path):
    import txcore
    files = make_fixtures(tmp_path, members=3000, days=2, seed=3)
    s = txcore.run(files[2:], rules=FIXTURES.parent / "rules", cards=files[0],
                   merchants=files[1], out_dir=tmp_path / "out", progress=False)
    share = s["rows"]["rejected"] / s["rows"]["input"]
    assert 0 < share < 0.01
    assert len(s["rejected_by_reason"]) >= 6
