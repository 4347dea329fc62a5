"""The card registry validated by columns: the fast path of :func:`txcore.rules.refdata.load_cards`.

:func:`checked_columns` accepts exactly what the row-by-row reference
(:func:`txcore.rules.refdata.cards_by_rows`) accepts, with Arrow compute over whole
columns and no per-row Python work.  It says only *whether* every row is valid: on
any problem it returns None and the caller runs the reference, which words the
problems (file, row, column).  It also returns None for column types it does not
handle (anything but text, integers for the text columns, ``date32`` or all-null
for the dates); the reference then decides.

What the reference accepts, column by column (``""`` counts as empty, like null):

* ``card_no``: not empty, 12-19 digits, Luhn-valid (:func:`txcore.cardno.check_column`),
  no number twice;
* ``issuer``, ``home_city``: not empty, the whole value matching ``vocab.BANK_RE`` /
  ``vocab.CITY_RE``;
* ``member_from``, ``member_to``: empty, a ``date32`` value, or text ``YYYY-MM-DD``
  (ASCII digits) naming a real date of years 1-9999;
* ``member_id``, ``unit``: anything (empty becomes null).
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from txcore import cardno
from txcore.rules.registry import SCHEMA
from txcore.timeconv import day_number
from txcore.vocab import BANK_RE, CITY_RE

_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_FIRST_DAY = day_number(dt.date.min)   # the dates Python can hold
_LAST_DAY = day_number(dt.date.max)
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def checked_columns(table: pa.Table) -> pa.Table | None:
    """The registry as a :data:`txcore.rules.registry.SCHEMA` table when every row of
    ``table`` is valid, else None (the caller has checked the required columns)."""
    text = {name: _text(table, name) for name in ("card_no", "member_id", "unit", "issuer",
                                                  "home_city")}
    if any(column is None for column in text.values()):
        return None
    numbers = text["card_no"]
    if numbers.null_count or not cardno.check_column(numbers).all() or _repeats(numbers):
        return None
    if not (_matches(text["issuer"], BANK_RE.pattern)
            and _matches(text["home_city"], CITY_RE.pattern)):
        return None
    days = {name: _dates(table, name) for name in ("member_from", "member_to")}
    if any(column is None for column in days.values()):
        return None
    columns = {"card_no": numbers, "member_id": _null_if_empty(text["member_id"]),
               "unit": _null_if_empty(text["unit"]), "issuer": text["issuer"],
               "home_city": text["home_city"], **days}
    return pa.table(columns, schema=SCHEMA)


def _all(mask: pa.Array) -> bool:
    """Every value true (none null); true for no values."""
    return pc.all(mask, skip_nulls=False, min_count=0).as_py() is True


def _repeats(column: pa.Array) -> bool:
    """Some value twice (found by sorting: a hash table of every card number would
    take more memory than the registry)."""
    ordered = column.take(pc.sort_indices(column))
    return len(ordered) > 1 and pc.any(pc.equal(ordered[1:], ordered[:-1])).as_py() is True


def _text(table: pa.Table, name: str) -> pa.Array | None:
    """Column ``name`` as one string array, as the reference reads it (``str(value)``;
    all null when absent); None for a type the fast path leaves to the reference."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    column = _decoded(table.column(name))
    kind = column.type
    if _is_text(kind) or pa.types.is_integer(kind) or pa.types.is_null(kind):
        return column.cast(pa.string())
    return None


def _decoded(column: pa.ChunkedArray) -> pa.Array:
    """One array of plain values (a dictionary column decoded)."""
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    return column.combine_chunks()


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) \
        or pa.types.is_string_view(kind)


def _null_if_empty(column: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)


def _matches(column: pa.Array, pattern: str) -> bool:
    """Every value present and matching ``pattern`` whole (RE2 ``$`` is the end of
    the text, like Python's ``fullmatch``)."""
    return column.null_count == 0 and _all(pc.match_substring_regex(column, f"^(?:{pattern})$"))


def _dates(table: pa.Table, name: str) -> pa.Array | None:
    """Column ``name`` as ``date32`` (null where empty) when every value is a valid
    date, else None."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, pa.date32())
    column = _decoded(table.column(name))
    kind = column.type
    if pa.types.is_null(kind):
        return pa.nulls(len(column), pa.date32())
    if pa.types.is_date32(kind):  # as long as datetime.date can hold every value
        low, high = (v.as_py() for v in pc.min_max(column.cast(pa.int32())).values())
        return column if low is None or (_FIRST_DAY <= low and high <= _LAST_DAY) else None
    if not _is_text(kind):
        return None
    text = _null_if_empty(column.cast(pa.string()))
    filled = pc.fill_null(text, "1970-01-01")
    if not (_all(pc.match_substring_regex(filled, _DATE)) and _real_dates(filled)):
        return None
    return text.cast(pa.date32())


def _real_dates(text: pa.Array) -> bool:
    """Every ``YYYY-MM-DD`` of ``text`` names a day of the Gregorian calendar, years
    1-9999 (as ``datetime.date`` has them)."""
    year, month, day = (pc.utf8_slice_codeunits(text, start, stop).cast(pa.int32())
                        .to_numpy(zero_copy_only=False) for start, stop in ((0, 4), (5, 7), (8, 10)))
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    last = _MONTH_DAYS[np.where(month_ok, month - 1, 0)] + (leap & (month == 2))
    return bool(np.all((year >= 1) & month_ok & (day >= 1) & (day <= last)))
