"""Reference data (docs/reference-data.md): the card registry and the partner merchants.

Both come from CSV (UTF-8, header row, read as text) or Parquet.  Any problem
stops the run before anything is written (:class:`RefDataError`, exit 2), each
problem naming the file, the row (1-based, header not counted) and the column.
"""
from __future__ import annotations

import csv
import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from txcore import cardno, paths
from txcore.errors import RefDataError
from txcore.rules.registry import Card, Cards
from txcore.rules.registry_check import checked_columns
from txcore.vocab import BANK_RE, CITY_RE, MAX_AMOUNT as MAX_MONEY

MAX_PROBLEMS = 50
CARD_COLUMNS = ("card_no", "issuer", "home_city", "member_from")
CARD_OPTIONAL = ("member_id", "unit", "member_to")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INT_RE = re.compile(r"[+-]?[0-9]+")  # ASCII digits only


@dataclass(frozen=True, slots=True)
class Merchant:
    merchant_id: str
    name: str | None
    discount_bp: int
    cap: int
    min_spend: int
    valid_from: dt.date
    valid_to: dt.date | None

    def valid_on(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


class Merchants(dict):
    """``merchant_id -> Merchant``."""

    source: Path | None = None

    def valid_on(self, merchant_id: str | None, day: dt.date) -> Merchant | None:
        m = self.get(merchant_id)
        return m if m is not None and m.valid_on(day) else None


def read_table(path: Path) -> pa.Table:
    """A small reference table, whole: CSV as text columns, or Parquet."""
    path = paths.regular_file(path, "reference data file", lambda message: RefDataError([message]))
    try:
        if path.suffix.lower() == ".parquet":
            return pq.read_table(path)
        if path.suffix.lower() == ".csv":
            with open(path, encoding="utf-8-sig", newline="") as fh:
                header = next(csv.reader(fh), [])
            # one thread: for a table this size, faster than the pool and ~20 MB less RSS
            return pacsv.read_csv(
                path, read_options=pacsv.ReadOptions(use_threads=False),
                convert_options=pacsv.ConvertOptions(
                    column_types={name: pa.string() for name in header}))
    except (OSError, pa.ArrowInvalid, UnicodeDecodeError, csv.Error) as exc:
        raise RefDataError([f"{path.name}: cannot be read: {cardno.redact(str(exc))}"]) from exc
    raise RefDataError([f"{path.name}: unsupported format (use .csv or .parquet)"])


def require_columns(path: Path, table: pa.Table, required):
    missing = [c for c in required if c not in table.column_names]
    if missing:
        raise RefDataError([f"{Path(path).name}: missing column(s) {', '.join(missing)}"])


class _Rows:
    """Row-by-row access with problem collection."""

    def __init__(self, path: Path, table: pa.Table, required, optional=()):
        self.path, self.problems = Path(path), []
        require_columns(self.path, table, required)
        names = [c for c in (*required, *optional) if c in table.column_names]
        self.columns = {c: table.column(c).to_pylist() for c in names}
        self.n = table.num_rows

    def problem(self, row: int, column: str, message: str):
        self.problems.append(f"{self.path.name}: row {row + 1}: column '{column}': {message}")

    def get(self, column, row):
        col = self.columns.get(column)
        value = None if col is None else col[row]
        return None if value == "" else value

    def text(self, column, row, pattern=None, required=True) -> str | None:
        value = self.get(column, row)
        if value is None:
            if required:
                self.problem(row, column, "is empty")
            return None
        value = str(value)
        if pattern is not None and not pattern.fullmatch(value):
            self.problem(row, column, f"bad value {cardno.redact(value)!r}")
            return None
        return value

    def date(self, column, row, required) -> dt.date | None:
        value = self.get(column, row)
        if value is None:
            if required:
                self.problem(row, column, "is empty")
            return None
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str) and _DATE_RE.fullmatch(value):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        self.problem(row, column, f"bad date {value!r} (want YYYY-MM-DD)")
        return None

    def integer(self, column, row, lo, hi=None, default=None) -> int | None:
        value = self.get(column, row)
        if value is None:
            if default is None:
                self.problem(row, column, "is empty")
            return default
        if isinstance(value, str) and _INT_RE.fullmatch(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(row, column, f"not an integer: {value!r}")
            return None
        if value < lo or (hi is not None and value > hi):
            rng = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            self.problem(row, column, f"{value} out of range ({rng})")
            return None
        return value

    def finish(self):
        if self.problems:
            extra = len(self.problems) - MAX_PROBLEMS
            shown = self.problems[:MAX_PROBLEMS]
            if extra > 0:
                shown.append(f"... and {extra} more problem(s)")
            raise RefDataError(shown)


def load_cards(path: str | Path) -> Cards:
    """Load and validate the card registry; raise :class:`RefDataError`.

    The registry is validated by columns and kept as columns
    (:mod:`txcore.rules.registry_check`, :class:`Cards`); when that finds anything wrong,
    :func:`cards_by_rows` goes through it row by row to word the problems.
    """
    path = Path(path)
    table = read_table(path)
    require_columns(path, table, CARD_COLUMNS)
    columns = checked_columns(table)
    if columns is not None:
        return Cards.from_columns(columns, path)
    return cards_by_rows(path, table)


def cards_by_rows(path: Path, table: pa.Table) -> Cards:
    """The registry validated row by row: the reference of the columnar check, and
    the wording of its problems (file, row, column; card numbers masked)."""
    path = Path(path)
    rows = _Rows(path, table, CARD_COLUMNS, CARD_OPTIONAL)
    valid = cardno.check_column(table.column("card_no"))
    cards, first_row = Cards(), {}
    cards.source = path
    for i in range(rows.n):
        raw = rows.get("card_no", i)
        if raw is None:
            rows.problem(i, "card_no", "is empty")
            continue
        card_no = str(raw)
        if not valid[i]:
            rows.problem(i, "card_no", f"not a valid card number {cardno.mask(card_no)!r}")
            continue
        if card_no in first_row:
            rows.problem(i, "card_no", f"duplicate card_no {cardno.mask(card_no)!r} "
                                       f"(first at row {first_row[card_no] + 1})")
            continue
        first_row[card_no] = i
        issuer = rows.text("issuer", i, BANK_RE)
        home_city = rows.text("home_city", i, CITY_RE)
        member_from = rows.date("member_from", i, required=False)
        member_to = rows.date("member_to", i, required=False)
        member_id, unit = rows.get("member_id", i), rows.get("unit", i)
        cards[card_no] = Card(None if member_id is None else str(member_id),
                              None if unit is None else str(unit),
                              issuer, home_city, member_from, member_to)
    rows.finish()
    return cards


def load_merchants(path: str | Path) -> Merchants:
    """Load and validate the partner-merchants table; raise :class:`RefDataError`."""
    path = Path(path)
    table = read_table(path)
    rows = _Rows(path, table, ("merchant_id", "discount_bp", "cap", "valid_from"),
                 ("name", "min_spend", "valid_to"))
    merchants, first_row = Merchants(), {}
    merchants.source = path
    for i in range(rows.n):
        mid = rows.text("merchant_id", i)
        if mid is None:
            continue
        if mid in first_row:
            rows.problem(i, "merchant_id",
                         f"duplicate merchant_id {mid!r} (first at row {first_row[mid] + 1})")
            continue
        first_row[mid] = i
        bp = rows.integer("discount_bp", i, 1, 10000)
        cap = rows.integer("cap", i, 0, MAX_MONEY)
        min_spend = rows.integer("min_spend", i, 0, MAX_MONEY, default=0)
        valid_from = rows.date("valid_from", i, required=True)
        valid_to = rows.date("valid_to", i, required=False)
        name = rows.get("name", i)
        merchants[mid] = Merchant(mid, None if name is None else str(name), bp, cap, min_spend,
                                  valid_from, valid_to)
    rows.finish()
    return merchants
