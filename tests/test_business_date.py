"""The business date (docs/business-date.md): where it comes from, and rows dated more
than a day after it rejected bad_ts on every backend, so that one mis-dated row cannot
move the retention window."""
from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import txcore
from conftest import CMB_CARD, FIXTURES, RULES, batch_of, price, registry, row
from txcore.business_date import dates_in_name, resolve_business_date
from txcore.cli import main
from txcore.audit.explain import explain

SHANGHAI = ZoneInfo("Asia/Shanghai")
BD = dt.date(2015, 10, 29)


# -- where the date comes from ----------------------------------------------------------
def test_the_option_wins_over_file_names():
    assert resolve_business_date(dt.date(2020, 1, 2), ["txns-20151029.csv"], SHANGHAI) == \
        (dt.date(2020, 1, 2), "option")


def test_the_latest_date_in_the_file_names_in_either_form():
    paths = ["in/txns-20151029.parquet", "in/2015-10-31-extra.csv", "x/20151030.avro", "-"]
    assert resolve_business_date(None, paths, SHANGHAI) == (dt.date(2015, 10, 31), "file name")


def test_digits_that_are_no_date_or_part_of_a_longer_run_are_not_a_date():
    assert dates_in_name(f"{CMB_CARD}.csv") == []          # a card number as a file name
    assert dates_in_name("batch-20151399.csv") == []        # no 13th month
    assert dates_in_name("x-120151029.csv") == []           # nine digits
    assert dates_in_name("２０１５１０２９.csv") == []        # full-width digits
    assert resolve_business_date(None, ["20990101/txns.csv"], SHANGHAI)[1] == "today"


def test_without_a_date_it_is_today_in_the_rules_zone():
    zone = ZoneInfo("Pacific/Kiritimati")  # UTC+14: often a different date than UTC
    before = dt.datetime.now(zone).date()
    got, source = resolve_business_date(None, ["txns.csv", "-"], zone)
    assert source == "today" and got in {before, dt.datetime.now(zone).date()}


# -- rows after it -----------------------------------------------------------------------
def test_a_row_more_than_a_day_after_the_business_date_is_bad_ts(book, backend):
    rows = [row(txn_id="A", ts="2015-10-30T23:59:59+08:00"),   # the next day: priced
            row(txn_id="B", ts="2015-10-31T00:00:00+08:00"),   # two days on: future
            row(txn_id="C", ts="2015-10-30T16:00:00Z"),        # 2015-10-31 in Quanzhou
            row(txn_id="D", ts="2015-10-31T00:00:00"),         # naive: its wall date
            row(txn_id="E", ts="2099-01-01T10:00+08:00")]
    priced, rejects = price(rows, book, backend=backend, business_date=BD)
    assert [p["txn_id"] for p in priced] == ["A"]
    assert [r["reject_reason"] for r in rejects] == ["bad_ts"] * 4
    assert all("lies in the future" in r["reject_detail"] and "2015-10-29" in r["reject_detail"]
               for r in rejects)
    assert rejects[0]["reject_detail"].startswith("ts='2015-10-31T00:00:00+08:00' lies in")


def test_a_parquet_timestamp_in_the_future_is_bad_ts_too(book, backend):
    ts = [dt.datetime(2015, 10, 30, 15, 0, tzinfo=dt.timezone.utc),
          dt.datetime(2015, 10, 30, 16, 0, tzinfo=dt.timezone.utc)]
    rows = [row(txn_id=f"T{i}", ts=t) for i, t in enumerate(ts)]
    priced, rejects = price(rows, book, backend=backend, business_date=BD)
    assert [p["txn_id"] for p in priced] == ["T0"]
    assert [(r["txn_id"], r["reject_reason"]) for r in rejects] == [("T1", "bad_ts")]


def test_the_future_check_takes_bad_ts_place_in_the_reject_order(book, backend):
    future = "2099-01-01T10:00+08:00"
    rows = [row(txn_id="A", ts=future, kind="bogus"),           # ts is checked before kind
            row(txn_id="B", ts=future, card_no="1234"),         # card_no before ts
            row(txn_id="C", ts=future, card_no="6" * 16 + "0")]
    _, rejects = price(rows, book, backend=backend, business_date=BD)
    assert [r["reject_reason"] for r in rejects] == ["bad_ts", "bad_card_no", "bad_card_no"]


def _day(tmp_path, name, rows):
    path = tmp_path / name
    pq.write_table(pa.Table.from_batches([batch_of(rows)]), path)
    return path


@pytest.mark.parametrize("engine", ["python", "cython", "numba"])
def test_one_2099_row_no_longer_switches_off_duplicates_and_reversals(tmp_path, engine):
    """The issue's scenario: a daily file with one row dated 2099 used to move the state's
    latest date, so a redelivered withdrawal was charged again and a reversal refunded
    nothing, for good."""
    cards = tmp_path / "cards.csv"
    cards.write_text("card_no,member_id,unit,issuer,home_city,member_from,member_to\n"
                     f"{CMB_CARD},M1,u,CMB,350500,,\n")
    remote = dict(acq_bank="CIB", city="350200", amount=100000)  # charged 700 fen
    d1 = _day(tmp_path, "txns-20151029.parquet",
              [row(txn_id="W1", ts="2015-10-29T10:00+08:00", **remote)])
    d2 = _day(tmp_path, "txns-20151030.parquet",
              [row(txn_id="X", ts="2099-01-01T10:00+08:00", **remote)])
    d3 = _day(tmp_path, "txns-20151031.parquet",
              [row(txn_id="W1", ts="2015-10-31T09:00+08:00", **remote),
               row(txn_id="R1", ts="2015-10-31T09:30+08:00", kind="reversal", channel=None,
                   orig_txn_id="W1")])
    kw = dict(rules=RULES, cards=cards, state_dir=tmp_path / "state", backend=engine,
              progress=False)
    txcore.run([d1], out_dir=tmp_path / "o1", **kw)
    s2 = txcore.run([d2], out_dir=tmp_path / "o2", **kw)
    assert s2["rejected_by_reason"] == {"bad_ts": 1}
    assert s2["business_date"] == {"date": "2015-10-30", "source": "file name"}
    s3 = txcore.run([d3], out_dir=tmp_path / "o3", **kw)
    assert s3["rejected_by_reason"] == {"duplicate_txn_id": 1}
    priced = pq.read_table(tmp_path / "o3" / "txns-20151031.priced.parquet").to_pylist()
    assert [(p["txn_id"], p["fee_charged"]) for p in priced] == [("R1", -700)]
    summary = json.loads((tmp_path / "o3" / "summary.json").read_text())
    assert summary["business_date"] == {"date": "2015-10-31", "source": "file name"}


def test_the_option_on_the_command_line_and_in_the_api(tmp_path, capfd):
    day = _day(tmp_path, "in.parquet", [row(txn_id="A", ts="2015-10-29T10:00+08:00"),
                                          row(txn_id="B", ts="2015-11-02T10:00+08:00")])
    common = ["--rules", str(RULES), "--cards", str(FIXTURES / "cards.csv"), "--no-progress"]
    assert main(["replay", *common, "-o", str(tmp_path / "a"), "--business-date", "2015-10-29",
                 str(day)]) == 0
    s = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert s["business_date"] == {"date": "2015-10-29", "source": "option"}
    assert s["rows"] == {"input": 2, "priced": 1, "rejected": 1}
    s = txcore.run([day], rules=RULES, cards=FIXTURES / "cards.csv", out_dir=tmp_path / "b",
                   business_date="2015-11-01", progress=False)
    assert s["business_date"] == {"date": "2015-11-01", "source": "option"}
    assert s["rows"]["priced"] == 2
    s = txcore.run([day], rules=RULES, cards=FIXTURES / "cards.csv", out_dir=tmp_path / "c",
                   progress=False)
    assert s["business_date"]["source"] == "today" and s["rows"]["priced"] == 2
    capfd.readouterr()
    for bad in ("2015-13-01", "20151029", "２０１５-10-29", "yesterday"):
        with pytest.raises(SystemExit) as exc:
            main(["run", *common, "--state", str(tmp_path / "st"), "-o", str(tmp_path / "d"),
                  "--business-date", bad, str(day)])
        assert exc.value.code == 2
        assert "--business-date" in capfd.readouterr().err
    with pytest.raises(txcore.errors.UsageError):
        txcore.run([day], rules=RULES, cards=FIXTURES / "cards.csv", out_dir=tmp_path / "e",
                   business_date=dt.datetime(2015, 10, 29), progress=False)


def test_explain_uses_the_business_date(tmp_path):
    day = _day(tmp_path, "in.parquet", [row(txn_id="F", ts="2015-11-02T10:00+08:00",
                                            card_no=CMB_CARD)])
    cards = tmp_path / "cards.csv"
    cards.write_text("card_no,member_id,unit,issuer,home_city,member_from,member_to\n"
                     f"{CMB_CARD},M1,u,CMB,350500,2013-09-01,\n")
    with pytest.raises(txcore.errors.UsageError, match="not among the priced rows"):
        explain("F", [day], rules=RULES, cards=cards, business_date=BD)
    assert "Transaction F" in explain("F", [day], rules=RULES, cards=cards,
                                      business_date="2015-11-01")
