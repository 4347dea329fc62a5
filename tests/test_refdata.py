"""Reference data (docs/reference-data.md): the card registry and the partner merchants, CSV and Parquet."""
from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import CIB_CARD, CMB_CARD, CMB_CARD2, CMB_CARD3, FIXTURES, QUANZHOU
from txcore import cardno
from txcore.errors import RefDataError
from txcore.fixtures import card_numbers
from txcore.rules.refdata import Card, Cards, Merchant, Merchants, load_cards, load_merchants

D = dt.date
CARD_COLUMNS = ["card_no", "member_id", "unit", "issuer", "home_city", "member_from",
                "member_to"]
MERCHANT_COLUMNS = ["merchant_id", "name", "discount_bp", "cap", "min_spend", "valid_from",
                    "valid_to"]
# more Luhn-valid numbers from the fixtures' own generator
CMB_MORE = [str(c) for c in card_numbers(np.array(["CMB"] * 6), np.arange(10, 16))]


def luhn_complete(body: str) -> str:
    """``body`` plus the check digit that makes it Luhn-valid."""
    return next(body + d for d in "0123456789" if cardno.is_card_no(body + d))


def write_csv(path: Path, header, rows, quoting=csv.QUOTE_MINIMAL) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, quoting=quoting)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def card_row(card_no=CMB_CARD, member_id="M1", unit="临江街道工会", issuer="CMB",
             home_city=QUANZHOU, member_from="2013-09-01", member_to="") -> list[str]:
    return [str(card_no), member_id, unit, issuer, home_city, member_from, member_to]


def merchant_row(merchant_id="QZ1", name="泉州百货", discount_bp="500", cap="1000",
                 min_spend="0", valid_from="2013-09-01", valid_to="") -> list[str]:
    return [merchant_id, name, discount_bp, cap, min_spend, valid_from, valid_to]


def good_cards() -> list[list[str]]:
    return [card_row(CMB_CARD, "M1"),
            card_row(CMB_CARD2, "M2", member_to="2014-12-31"),
            card_row(CIB_CARD, "M3", "海滨街道工会", "CIB", member_from="2013-10-18"),
            card_row(CMB_CARD3, "", "", member_from="")]


def good_merchants() -> list[list[str]]:
    return [merchant_row("QZ1"),
            merchant_row("QZ2", "泉州医院", "800", "0", "10000", "2014-06-17", "2015-06-30"),
            merchant_row("QZ3", "", "10000", "0", "", "2013-01-01")]


def refused(loader, path) -> list[str]:
    with pytest.raises(RefDataError) as info:
        loader(path)
    assert info.value.exit_code == 2
    assert info.value.problems
    return info.value.problems


def assert_names(message: str, file: str, row: int | None, column: str):
    assert file in message, message
    if row is not None:
        assert re.search(rf"\brow {row}\b", message), message
    assert re.search(rf"(?<!\w){re.escape(column)}(?!\w)", message), message


def assert_masked(text: str, card: str):
    """At most the first 6 and the last 4 digits of ``card`` appear in ``text``."""
    assert card not in text, text
    assert card[:7] not in text, text
    assert card[-5:] not in text, text


# =============================================================== the bundled fixtures

class TestBundledFixtures:
    def test_cards(self):
        cards = load_cards(FIXTURES / "cards.csv")
        with open(FIXTURES / "cards.csv", encoding="utf-8") as fh:
            n_rows = sum(1 for _ in csv.DictReader(fh))
        assert isinstance(cards, Cards)
        assert len(cards) == n_rows > 0
        members = 0
        for card_no, card in cards.items():
            assert type(card_no) is str and cardno.is_card_no(card_no)
            assert isinstance(card, Card)
            assert card.issuer in ("CMB", "CIB")
            assert type(card.home_city) is str and re.fullmatch(r"\d{6}", card.home_city)
            assert card.member_id is None or type(card.member_id) is str
            for day in (card.member_from, card.member_to):
                assert day is None or (type(day) is dt.date), day
            members += card.member_from is not None
        assert members > 0

    def test_cards_keep_their_text(self):
        """The first data row, as written in the file, comes back unchanged."""
        with open(FIXTURES / "cards.csv", encoding="utf-8") as fh:
            first = next(csv.DictReader(fh))
        card = load_cards(FIXTURES / "cards.csv")[first["card_no"]]
        assert card.member_id == first["member_id"]
        assert card.unit == first["unit"]
        assert card.issuer == first["issuer"]
        assert card.home_city == first["home_city"]
        assert card.member_from == (D.fromisoformat(first["member_from"])
                                    if first["member_from"] else None)

    def test_merchants(self):
        merchants = load_merchants(FIXTURES / "merchants.csv")
        with open(FIXTURES / "merchants.csv", encoding="utf-8") as fh:
            n_rows = sum(1 for _ in csv.DictReader(fh))
        assert isinstance(merchants, Merchants)
        assert len(merchants) == n_rows > 0
        for merchant_id, m in merchants.items():
            assert type(merchant_id) is str and m.merchant_id == merchant_id
            assert type(m.discount_bp) is int and 1 <= m.discount_bp <= 10000
            assert type(m.cap) is int and m.cap >= 0
            assert type(m.min_spend) is int and m.min_spend >= 0
            assert type(m.valid_from) is dt.date
            assert m.valid_to is None or type(m.valid_to) is dt.date


# ===================================================================== formats

def to_parquet(csv_path: Path, parquet_path: Path, dates: tuple[str, ...] = ()) -> Path:
    """The CSV's columns as text in Parquet; ``dates`` columns as date32 instead."""
    with open(csv_path, encoding="utf-8") as fh:
        records = list(csv.DictReader(fh))
    header = list(records[0])
    columns = {}
    for name in header:
        values = [r[name] or None for r in records]
        if name in dates:
            columns[name] = pa.array([D.fromisoformat(v) if v else None for v in values],
                                     pa.date32())
        else:
            columns[name] = pa.array(values, pa.string())
    pq.write_table(pa.table(columns), parquet_path)
    return parquet_path


class TestParquet:
    @pytest.mark.parametrize("dates", [(), ("member_from", "member_to")],
                             ids=["text-dates", "date32"])
    def test_cards_same_as_csv(self, tmp_path, dates):
        src = write_csv(tmp_path / "cards.csv", CARD_COLUMNS, good_cards())
        parquet = to_parquet(src, tmp_path / "cards.parquet", dates)
        from_csv, from_parquet = load_cards(src), load_cards(parquet)
        assert len(from_csv) == 4
        assert from_parquet == from_csv
        assert from_parquet[CMB_CARD2].member_to == D(2014, 12, 31)
        assert from_parquet[CMB_CARD3].member_from is None

    @pytest.mark.parametrize("dates", [(), ("valid_from", "valid_to")],
                             ids=["text-dates", "date32"])
    def test_merchants_same_as_csv(self, tmp_path, dates):
        src = write_csv(tmp_path / "m.csv", MERCHANT_COLUMNS, good_merchants())
        parquet = to_parquet(src, tmp_path / "m.parquet", dates)
        from_csv, from_parquet = load_merchants(src), load_merchants(parquet)
        assert len(from_csv) == 3
        assert from_parquet == from_csv
        assert from_parquet["QZ3"].min_spend == 0 and from_parquet["QZ3"].name is None

    def test_bundled_cards_as_parquet(self, tmp_path):
        parquet = to_parquet(FIXTURES / "cards.csv", tmp_path / "cards.parquet",
                             ("member_from", "member_to"))
        assert load_cards(parquet) == load_cards(FIXTURES / "cards.csv")

    def test_parquet_problem_names_file_row_and_column(self, tmp_path):
        rows = good_cards()
        rows[1] = card_row(CMB_CARD2, issuer="cmb")
        src = write_csv(tmp_path / "cards.csv", CARD_COLUMNS, rows)
        parquet = to_parquet(src, tmp_path / "registry.parquet")
        (message,) = refused(load_cards, parquet)
        assert_names(message, "registry.parquet", 2, "issuer")

    def test_unsupported_format(self, tmp_path):
        path = tmp_path / "cards.xlsx"
        path.write_bytes(b"PK\x03\x04")
        (message,) = refused(load_cards, path)
        assert "cards.xlsx" in message

    def test_missing_file(self, tmp_path):
        (message,) = refused(load_cards, tmp_path / "absent.csv")
        assert "absent.csv" in message


class TestCsvText:
    """CSV is read as text (docs/reference-data.md): ids keep leading zeros, long card numbers stay exact,
    whether or not the writer quoted the fields (the bundled fixtures quote them)."""

    QUOTINGS = [pytest.param(csv.QUOTE_MINIMAL, id="unquoted"),
                pytest.param(csv.QUOTE_ALL, id="quoted")]

    @pytest.mark.parametrize("quoting", QUOTINGS)
    def test_card_text_columns(self, tmp_path, quoting):
        rows = [card_row(CMB_CARD, member_id="0001", unit="0815"),
                card_row(CIB_CARD, member_id="0002", unit="0815", issuer="CIB")]
        path = write_csv(tmp_path / "cards.csv", CARD_COLUMNS, rows, quoting)
        cards = load_cards(path)
        assert sorted(cards) == sorted([CMB_CARD, CIB_CARD])
        assert cards[CMB_CARD].member_id == "0001"
        assert cards[CIB_CARD].member_id == "0002"
        assert cards[CIB_CARD].unit == "0815"
        assert cards[CIB_CARD].home_city == QUANZHOU

    @pytest.mark.parametrize("quoting", QUOTINGS)
    def test_long_card_numbers(self, tmp_path, quoting):
        long_card = luhn_complete("955888000000000001")  # 19 digits, above 2**63
        rows = [card_row(CMB_CARD), card_row(long_card, issuer="ICBC")]
        path = write_csv(tmp_path / "cards.csv", CARD_COLUMNS, rows, quoting)
        cards = load_cards(path)
        assert sorted(cards) == sorted([CMB_CARD, long_card])
        assert cards[long_card].issuer == "ICBC"

    @pytest.mark.parametrize("quoting", QUOTINGS)
    def test_merchant_ids(self, tmp_path, quoting):
        rows = [merchant_row("00042", name="0815"), merchant_row("012345678901234")]
        path = write_csv(tmp_path / "m.csv", MERCHANT_COLUMNS, rows, quoting)
        merchants = load_merchants(path)
        assert sorted(merchants) == ["00042", "012345678901234"]
        assert merchants["00042"].merchant_id == "00042"
        assert merchants["00042"].name == "0815"


# ======================================================================= membership

class TestIsMember:
    @pytest.mark.parametrize("member_from, member_to, day, expected", [
        (D(2013, 9, 1), None, D(2013, 9, 1), True),          # first day
        (D(2013, 9, 1), None, D(2013, 8, 31), False),        # the day before
        (D(2013, 9, 1), None, D(2030, 1, 1), True),          # open end
        (D(2013, 9, 1), D(2014, 12, 31), D(2014, 12, 31), True),   # member_to inclusive
        (D(2013, 9, 1), D(2014, 12, 31), D(2015, 1, 1), False),    # the day after
        (D(2013, 9, 1), D(2013, 9, 1), D(2013, 9, 1), True),       # a one-day membership
        (D(2014, 1, 1), D(2013, 12, 31), D(2013, 12, 31), False),  # to < from: never
        (D(2014, 1, 1), D(2013, 12, 31), D(2014, 1, 1), False),
        (D(2014, 1, 1), D(2013, 12, 31), D(2013, 6, 1), False),
        (None, None, D(2013, 9, 1), False),                  # empty member_from: never
        (None, D(2014, 12, 31), D(2014, 1, 1), False),
    ])
    def test_edges(self, member_from, member_to, day, expected):
        card = Card("M1", "u", "CMB", QUANZHOU, member_from, member_to)
        assert card.is_member(day) is expected

    def test_from_a_loaded_registry(self, tmp_path):
        rows = [card_row(CMB_CARD, member_from="2013-09-01", member_to="2013-12-31"),
                card_row(CMB_CARD2, member_from="2014-01-01", member_to="2013-12-31"),
                card_row(CMB_CARD3, member_from="", member_to="")]
        cards = load_cards(write_csv(tmp_path / "cards.csv", CARD_COLUMNS, rows))
        assert cards[CMB_CARD].is_member(D(2013, 12, 31))
        assert not cards[CMB_CARD].is_member(D(2014, 1, 1))
        assert not any(cards[CMB_CARD2].is_member(D(2013, 12, 31) + dt.timedelta(days=k))
                       for k in range(-2, 3))
        assert cards[CMB_CARD3].member_from is None
        assert not cards[CMB_CARD3].is_member(D(2015, 1, 1))

    def test_optional_columns_may_be_absent(self, tmp_path):
        path = write_csv(tmp_path / "cards.csv",
                         ["card_no", "issuer", "home_city", "member_from"],
                         [[CMB_CARD, "CMB", QUANZHOU, "2013-09-01"]])
        card = load_cards(path)[CMB_CARD]
        assert (card.member_id, card.unit, card.member_to) == (None, None, None)
        assert card.is_member(D(2099, 1, 1))


class TestMerchantValidity:
    @pytest.mark.parametrize("valid_from, valid_to, day, expected", [
        (D(2014, 1, 1), None, D(2014, 1, 1), True),
        (D(2014, 1, 1), None, D(2013, 12, 31), False),
        (D(2014, 1, 1), None, D(2040, 1, 1), True),
        (D(2014, 1, 1), D(2014, 6, 30), D(2014, 6, 30), True),
        (D(2014, 1, 1), D(2014, 6, 30), D(2014, 7, 1), False),
    ])
    def test_valid_on(self, valid_from, valid_to, day, expected):
        m = Merchant("QZ1", "n", 500, 0, 0, valid_from, valid_to)
        assert m.valid_on(day) is expected
        table = Merchants()
        table["QZ1"] = m
        assert table.valid_on("QZ1", day) is (m if expected else None)

    def test_unknown_or_missing_merchant(self):
        table = Merchants()
        table["QZ1"] = Merchant("QZ1", None, 500, 0, 0, D(2013, 1, 1), None)
        assert table.valid_on("QZ2", D(2014, 1, 1)) is None
        assert table.valid_on(None, D(2014, 1, 1)) is None

    def test_loaded_values(self, tmp_path):
        merchants = load_merchants(write_csv(tmp_path / "m.csv", MERCHANT_COLUMNS,
                                             good_merchants()))
        qz2 = merchants["QZ2"]
        assert (qz2.discount_bp, qz2.cap, qz2.min_spend) == (800, 0, 10000)
        assert (qz2.valid_from, qz2.valid_to) == (D(2014, 6, 17), D(2015, 6, 30))
        assert merchants.valid_on("QZ2", D(2015, 6, 30)) is qz2
        assert merchants.valid_on("QZ2", D(2015, 7, 1)) is None
        assert merchants["QZ3"].min_spend == 0  # empty min_spend defaults to 0
        assert merchants["QZ3"].discount_bp == 10000

    def test_min_spend_column_is_optional(self, tmp_path):
        path = write_csv(tmp_path / "m.csv", ["merchant_id", "discount_bp", "cap", "valid_from"],
                         [["QZ1", "1", "0", "2013-09-01"]])
        m = load_merchants(path)["QZ1"]
        assert (m.discount_bp, m.min_spend, m.valid_to, m.name) == (1, 0, None, None)


# =================================================================== refused cards

BAD_CARD_NO = CMB_CARD[:-1] + str((int(CMB_CARD[-1]) + 1) % 10)   # Luhn check digit off

# (case id, replacement row 2, column named, message fragment)
REFUSED_CARDS = [
    ("invalid-luhn", card_row(BAD_CARD_NO), "card_no", "card"),
    ("card-no-11-digits", card_row("62148510000"), "card_no", "card"),
    ("card-no-20-digits", card_row(CMB_CARD + "0000"), "card_no", "card"),
    ("card-no-with-letters", card_row(CMB_CARD[:-2] + "AB"), "card_no", "card"),
    ("card-no-empty", card_row(""), "card_no", "empty"),
    ("issuer-lowercase", card_row(CMB_CARD2, issuer="cmb"), "issuer", "cmb"),
    ("issuer-empty", card_row(CMB_CARD2, issuer=""), "issuer", "empty"),
    ("issuer-too-long", card_row(CMB_CARD2, issuer="CMBCMBCMB"), "issuer", "CMBCMBCMB"),
    ("home-city-5-digits", card_row(CMB_CARD2, home_city="35050"), "home_city", "35050"),
    ("home-city-name", card_row(CMB_CARD2, home_city="Quanzhou"), "home_city", "Quanzhou"),
    ("home-city-empty", card_row(CMB_CARD2, home_city=""), "home_city", "empty"),
    ("member-from-month-13", card_row(CMB_CARD2, member_from="2013-13-01"), "member_from",
     "2013-13-01"),
    ("member-from-slashes", card_row(CMB_CARD2, member_from="2013/10/01"), "member_from",
     "2013/10/01"),
    ("member-from-feb-30", card_row(CMB_CARD2, member_from="2014-02-30"), "member_from",
     "2014-02-30"),
    ("member-to-month-13", card_row(CMB_CARD2, member_to="2013-13-01"), "member_to",
     "2013-13-01"),
    ("member-to-slashes", card_row(CMB_CARD2, member_to="2013/10/01"), "member_to",
     "2013/10/01"),
]


class TestRefusedCards:
    @pytest.mark.parametrize("bad_row, column, fragment",
                             [pytest.param(*c[1:], id=c[0]) for c in REFUSED_CARDS])
    def test_problem_names_file_row_and_column(self, tmp_path, bad_row, column, fragment):
        rows = [card_row(CMB_CARD), bad_row, card_row(CIB_CARD, issuer="CIB")]
        path = write_csv(tmp_path / "registry.csv", CARD_COLUMNS, rows)
        (message,) = refused(load_cards, path)
        assert_names(message, "registry.csv", 2, column)
        assert fragment.lower() in message.lower(), message

    def test_duplicate_card_no_is_masked(self, tmp_path):
        rows = [card_row(CMB_CARD), card_row(CMB_CARD2), card_row(CMB_CARD, "M9")]
        path = write_csv(tmp_path / "registry.csv", CARD_COLUMNS, rows)
        with pytest.raises(RefDataError) as info:
            load_cards(path)
        (message,) = info.value.problems
        assert_names(message, "registry.csv", 3, "card_no")
        assert "duplicate" in message.lower()
        assert_masked(message, CMB_CARD)
        assert_masked(str(info.value), CMB_CARD)

    @pytest.mark.parametrize("bad", [BAD_CARD_NO, CMB_CARD + "0000", CMB_CARD[:-1] + "X"],
                             ids=["luhn", "20-digits", "letter"])
    def test_invalid_card_no_is_masked(self, tmp_path, bad):
        rows = [card_row(CMB_CARD), card_row(bad)]
        path = write_csv(tmp_path / "registry.csv", CARD_COLUMNS, rows)
        with pytest.raises(RefDataError) as info:
            load_cards(path)
        (message,) = info.value.problems
        assert_names(message, "registry.csv", 2, "card_no")
        assert_masked(str(info.value), bad)

    @pytest.mark.parametrize("missing", ["card_no", "issuer", "home_city", "member_from"])
    def test_missing_required_column(self, tmp_path, missing):
        keep = [i for i, c in enumerate(CARD_COLUMNS) if c != missing]
        path = write_csv(tmp_path / "registry.csv", [CARD_COLUMNS[i] for i in keep],
                         [[r[i] for i in keep] for r in good_cards()])
        problems = refused(load_cards, path)
        assert len(problems) == 1
        assert_names(problems[0], "registry.csv", None, missing)

    def test_several_bad_rows_are_all_listed(self, tmp_path):
        rows = [
            card_row(CMB_MORE[0]),                                      # 1 fine
            card_row(BAD_CARD_NO),                                      # 2 card_no
            card_row(CMB_MORE[1], issuer="cmb", home_city="35050"),     # 3 issuer, home_city
            card_row(CMB_MORE[2]),                                      # 4 fine
            card_row(CMB_MORE[3], member_from="2013-13-01"),            # 5 member_from
            card_row(CMB_MORE[0]),                                      # 6 duplicate of 1
            card_row(CMB_MORE[4], member_to="2013/10/01"),              # 7 member_to
            card_row("62148510000"),                                    # 8 card_no
        ]
        path = write_csv(tmp_path / "registry.csv", CARD_COLUMNS, rows)
        with pytest.raises(RefDataError) as info:
            load_cards(path)
        problems = info.value.problems
        expected = [(2, "card_no"), (3, "issuer"), (3, "home_city"), (5, "member_from"),
                    (6, "card_no"), (7, "member_to"), (8, "card_no")]
        assert len(problems) == len(expected), problems
        for message, (row, column) in zip(problems, expected):
            assert_names(message, "registry.csv", row, column)
        for card in (BAD_CARD_NO, CMB_MORE[0]):
            assert_masked(str(info.value), card)


# =============================================================== refused merchants

REFUSED_MERCHANTS = [
    ("discount-bp-0", merchant_row("QZ2", discount_bp="0"), "discount_bp", "0"),
    ("discount-bp-10001", merchant_row("QZ2", discount_bp="10001"), "discount_bp", "10001"),
    ("discount-bp-negative", merchant_row("QZ2", discount_bp="-5"), "discount_bp", "-5"),
    ("discount-bp-abc", merchant_row("QZ2", discount_bp="abc"), "discount_bp", "abc"),
    ("discount-bp-decimal", merchant_row("QZ2", discount_bp="2.5"), "discount_bp", "2.5"),
    ("discount-bp-empty", merchant_row("QZ2", discount_bp=""), "discount_bp", "empty"),
    ("cap-negative", merchant_row("QZ2", cap="-1"), "cap", "-1"),
    ("cap-empty", merchant_row("QZ2", cap=""), "cap", "empty"),
    ("min-spend-negative", merchant_row("QZ2", min_spend="-100"), "min_spend", "-100"),
    ("valid-from-empty", merchant_row("QZ2", valid_from=""), "valid_from", "empty"),
    ("valid-from-month-13", merchant_row("QZ2", valid_from="2013-13-01"), "valid_from",
     "2013-13-01"),
    ("valid-to-slashes", merchant_row("QZ2", valid_to="2013/10/01"), "valid_to",
     "2013/10/01"),
    ("merchant-id-empty", merchant_row(""), "merchant_id", "empty"),
]


class TestRefusedMerchants:
    @pytest.mark.parametrize("bad_row, column, fragment",
                             [pytest.param(*c[1:], id=c[0]) for c in REFUSED_MERCHANTS])
    def test_problem_names_file_row_and_column(self, tmp_path, bad_row, column, fragment):
        rows = [merchant_row("QZ1"), bad_row, merchant_row("QZ3")]
        path = write_csv(tmp_path / "partners.csv", MERCHANT_COLUMNS, rows)
        (message,) = refused(load_merchants, path)
        assert_names(message, "partners.csv", 2, column)
        assert fragment.lower() in message.lower(), message

    @pytest.mark.parametrize("value", ["1", "10000"])
    def test_discount_bp_bounds_accepted(self, tmp_path, value):
        path = write_csv(tmp_path / "partners.csv", MERCHANT_COLUMNS,
                         [merchant_row(discount_bp=value, cap="0")])
        assert load_merchants(path)["QZ1"].discount_bp == int(value)

    def test_duplicate_merchant_id(self, tmp_path):
        rows = [merchant_row("QZ1"), merchant_row("QZ2"), merchant_row("QZ1", name="again")]
        path = write_csv(tmp_path / "partners.csv", MERCHANT_COLUMNS, rows)
        (message,) = refused(load_merchants, path)
        assert_names(message, "partners.csv", 3, "merchant_id")
        assert "duplicate" in message.lower() and "QZ1" in message

    @pytest.mark.parametrize("missing", ["merchant_id", "discount_bp", "cap", "valid_from"])
    def test_missing_required_column(self, tmp_path, missing):
        keep = [i for i, c in enumerate(MERCHANT_COLUMNS) if c != missing]
        path = write_csv(tmp_path / "partners.csv", [MERCHANT_COLUMNS[i] for i in keep],
                         [[r[i] for i in keep] for r in good_merchants()])
        problems = refused(load_merchants, path)
        assert len(problems) == 1
        assert_names(problems[0], "partners.csv", None, missing)

    def test_several_bad_rows_are_all_listed(self, tmp_path):
        rows = [
            merchant_row("QZ1"),                                        # 1 fine
            merchant_row("QZ2", discount_bp="0"),                       # 2
            merchant_row("QZ3", cap="-1", valid_from=""),               # 3 two problems
            merchant_row("QZ1"),                                        # 4 duplicate
            merchant_row("QZ5"),                                        # 5 fine
            merchant_row("QZ6", discount_bp="abc", valid_to="2013-13-01"),  # 6 two problems
        ]
        path = write_csv(tmp_path / "partners.csv", MERCHANT_COLUMNS, rows)
        problems = refused(load_merchants, path)
        expected = [(2, "discount_bp"), (3, "cap"), (3, "valid_from"), (4, "merchant_id"),
                    (6, "discount_bp"), (6, "valid_to")]
        assert len(problems) == len(expected), problems
        for message, (row, column) in zip(problems, expected):
            assert_names(message, "partners.csv", row, column)
