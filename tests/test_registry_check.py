"""The columnar registry check accepts exactly what the row-by-row reference accepts.

Small registries are generated valid, then given a few subtly bad cells (empty
strings, nulls, impossible dates, lower-case banks, 5-digit cities, repeated and
Luhn-invalid card numbers), and written as CSV or Parquet (text, ``date32``,
integer, dictionary or all-null columns).  ``load_cards`` must give what
``cards_by_rows`` gives: the same cards in the same order, or the same problems.
"""
from __future__ import annotations

import csv
import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from txcore.errors import RefDataError
from txcore.fixtures import card_numbers
from txcore.rules.refdata import cards_by_rows, load_cards, read_table
from txcore.rules.registry_check import checked_columns

D = dt.date
COLUMNS = ("card_no", "member_id", "unit", "issuer", "home_city", "member_from", "member_to")
OPTIONAL = ("member_id", "unit", "member_to")
DATES = ("member_from", "member_to")
NUMBERS = [str(n) for n in card_numbers(np.array(["CMB"] * 5 + ["CIB"] * 4), np.arange(1, 10))]
LUHN_OFF = NUMBERS[0][:-1] + str((int(NUMBERS[0][-1]) + 1) % 10)

GOOD = {
    "member_id": ["M1", "0001", "临江街道工会", "", None],
    "unit": ["临江街道工会", "0815", "", None],
    "issuer": ["CMB", "CIB", "ICBC", "B1", "ABCDEFGH", "12345678"],
    "home_city": ["350500", "350200", "000000"],
    "member_from": ["2013-09-01", "2012-02-29", "2000-02-29", "0001-01-01", "9999-12-31", "",
                    None],
    "member_to": ["2014-12-31", "1969-12-31", "2013-08-31", "", None],
}
BAD = {
    "card_no": [LUHN_OFF, NUMBERS[0][:11], NUMBERS[0] + "0000", NUMBERS[1][:-2] + "AB",
                " " + NUMBERS[2], "６" + NUMBERS[3][1:], "", None],
    "issuer": ["cmb", "Cmb", "C", "ABCDEFGHI", "CM B", "CMB ", "ＣＭＢ", "", None],
    "home_city": ["35050", "3505000", "Quanzhou", "３５０５００", " 350500", "35O500", "", None],
    "member_from": ["2013-02-30", "2013-02-29", "1900-02-29", "2013-04-31", "2013-13-01",
                    "2013-00-10", "2013-01-00", "0000-01-01", "2013/10/01", "2013-9-01",
                    "20130901", "２０１３-０９-０１", " 2013-09-01", "2013-09-01 ",
                    "2013-09-01T00:00"],
}
BAD["member_to"] = BAD["member_from"]

FORMATS = ["csv", "parquet-text", "parquet-date32", "parquet-int", "parquet-dictionary",
           "parquet-inferred"]


@st.composite
def registries(draw):
    """``(format, columns)``: columns of text values (None = null), valid or nearly."""
    n = draw(st.integers(0, 6))
    fmt = draw(st.sampled_from(FORMATS))
    numbers = draw(st.lists(st.sampled_from(NUMBERS), min_size=n, max_size=n, unique=True))
    columns = {"card_no": numbers}
    for name, values in GOOD.items():
        columns[name] = [draw(st.sampled_from(values)) for _ in range(n)]
    for _ in range(draw(st.integers(0, 2)) if n else 0):
        name = draw(st.sampled_from([*BAD, "repeat"]))
        row = draw(st.integers(0, n - 1))
        if name == "repeat":
            columns["card_no"][row] = columns["card_no"][draw(st.integers(0, n - 1))]
        else:
            columns[name][row] = draw(st.sampled_from(BAD[name]))
    for name in draw(st.lists(st.sampled_from(OPTIONAL), unique=True, max_size=3)):
        del columns[name]
    return fmt, columns


def write(directory: Path, fmt: str, columns: dict) -> Path:
    if fmt == "csv":
        path = directory / "cards.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            writer.writerows(zip(*columns.values()))
        if not columns["card_no"]:
            path.write_text(",".join(columns) + "\n", encoding="utf-8")
        return path
    path = directory / "cards.parquet"
    pq.write_table(pa.table({name: arrow(fmt, name, values) for name, values in columns.items()}),
                   path)
    return path


def arrow(fmt: str, name: str, values: list) -> pa.Array:
    """One column as the format writes it."""
    if fmt == "parquet-date32" and name in DATES and all(_is_date(v) for v in values):
        return pa.array([D.fromisoformat(v) if v else None for v in values], pa.date32())
    if fmt == "parquet-int" and name in ("card_no", "issuer", "home_city") \
            and all(v is None or _int_text(v) for v in values):
        return pa.array([None if v is None else int(v) for v in values], pa.int64())
    if fmt == "parquet-dictionary":
        return pa.array(values, pa.string()).dictionary_encode()
    if fmt == "parquet-inferred":   # all-null columns come out of type null
        return pa.array(values)
    return pa.array(values, pa.string())


def _int_text(value: str) -> bool:
    """``value`` is the text of an int64 (so an integer column reads back the same)."""
    return value.isascii() and value.isdigit() and str(int(value)) == value \
        and int(value) < 2**63


def _is_date(value) -> bool:
    try:
        return value in ("", None) or D.fromisoformat(value).isoformat() == value
    except ValueError:
        return False


def outcome(load, path):
    try:
        return load(path), None
    except RefDataError as exc:
        return None, exc.problems


def assert_agree(directory: Path, fmt: str, columns: dict):
    """``load_cards`` gives what the row-by-row reference gives; the columnar check
    takes every registry the reference accepts and none that it refuses."""
    path = write(directory, fmt, columns)
    table = read_table(path)
    expected, expected_problems = outcome(lambda p: cards_by_rows(p, table), path)
    got, problems = outcome(load_cards, path)
    fast = checked_columns(table)
    assert problems == expected_problems
    if expected_problems is None:
        assert fast is not None, "a valid registry left to the row-by-row path"
        assert got.columnar and got.source == expected.source == path
        assert list(got.items()) == list(expected.items())
        assert [type(c.issuer) for c in got.values()] == [str] * len(got)
    else:
        assert fast is None
        assert got is None and problems
    return expected_problems is None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(registries())
def test_columnar_load_agrees_with_the_row_by_row_reference(case):
    fmt, columns = case
    with tempfile.TemporaryDirectory() as tmp:
        accepted = assert_agree(Path(tmp), fmt, columns)
    event(f"{fmt}: {'accepted' if accepted else 'refused'}")


CELLS = [(name, value) for table in (GOOD, BAD) for name, values in table.items()
         for value in values]


@pytest.mark.parametrize("name, value", CELLS)
def test_every_value_in_every_format(tmp_path, name, value):
    """Each listed value, good or bad, in the second row of three good ones."""
    columns = {"card_no": NUMBERS[:3]}
    for column, values in GOOD.items():
        columns[column] = [values[0]] * 3
    columns[name][1] = value
    for fmt in FORMATS:
        (tmp_path / fmt).mkdir()
        assert assert_agree(tmp_path / fmt, fmt, columns) is (value in GOOD.get(name, ())), fmt


@pytest.mark.parametrize("name, values, columnar", [
    ("member_id", pa.array([1.5, None]), False),            # float: str(1.5) by the reference
    ("member_id", pa.array([7, None], pa.int32()), True),   # integers: as text
    ("member_from", pa.array([D(2013, 9, 1), None], pa.date64()), True),  # read as date32
    ("member_from", pa.array([dt.datetime(2013, 9, 1), None]), False),   # refused
    ("member_from", pa.array([D(2013, 9, 1), None], pa.date32()).dictionary_encode(), True),
    ("home_city", pa.array(["350500", "350500"], pa.large_string()), True),
    ("issuer", pa.array([True, False]), False),             # refused
])
def test_types_left_to_the_reference(tmp_path, name, values, columnar):
    """Column types the columnar check does not take are decided by the reference."""
    columns = {"card_no": pa.array(NUMBERS[:2]), "issuer": pa.array(["CMB", "CIB"]),
               "home_city": pa.array(["350500", "350200"]),
               "member_from": pa.array(["2013-09-01", ""]), name: values}
    path = tmp_path / "cards.parquet"
    pq.write_table(pa.table(columns), path)
    table = read_table(path)
    expected, expected_problems = outcome(lambda p: cards_by_rows(p, table), path)
    got, problems = outcome(load_cards, path)
    assert problems == expected_problems
    assert (checked_columns(table) is not None) is columnar
    if expected is None:
        assert problems and not columnar
    else:
        assert got.columnar is columnar
        assert list(got.items()) == list(expected.items())


def test_dates_python_cannot_hold_are_left_to_the_reference(tmp_path):
    """A ``date32`` beyond 9999-12-31 is not taken by the columnar check (the reference
    reads every value as a ``datetime.date``, and decides)."""
    path = tmp_path / "cards.parquet"
    for days in (2932896, 2932897):   # 9999-12-31, the day after
        pq.write_table(pa.table({"card_no": [NUMBERS[0]], "issuer": ["CMB"],
                                 "home_city": ["350500"],
                                 "member_from": pa.array([days], pa.int32()).cast(pa.date32())}),
                       path)
        fits = days == (D.max - D(1970, 1, 1)).days
        assert (checked_columns(read_table(path)) is not None) is fits
