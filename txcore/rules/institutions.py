"""Reference data for ISO 8583 logs: acquiring institutions (``--institutions FILE``).

CSV or Parquet with ``institution_id`` (1-11 digits), ``bank`` (a bank code) and
``city`` (6 digits).  An ISO 8583 message's field 32 (and the acquirer inside
field 90) is looked up with its leading zeros removed.  Any problem stops the
run before anything is written (exit 2), naming file, row and column.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from txcore.errors import RefDataError
from txcore.rules.refdata import read_table
from txcore.vocab import BANK_RE, CITY_RE

_S = pa.string()


@dataclass(frozen=True)
class Institutions:
    """``institution_id`` (leading zeros removed) -> ``bank``, ``city``, as Arrow arrays."""

    ids: pa.Array
    banks: pa.Array
    cities: pa.Array


def load_institutions(path) -> Institutions:
    """``--institutions FILE`` (CSV or Parquet: institution_id, bank, city); every problem,
    naming file, row and column, stops the run (exit 2)."""
    path = Path(path)
    table = read_table(path)
    missing = [c for c in ("institution_id", "bank", "city") if c not in table.column_names]
    if missing:
        raise RefDataError([f"{path.name}: missing column(s) {', '.join(missing)}"])
    problems, seen = [], {}
    ids, banks, cities = [], [], []
    for row, (iid, bank, city) in enumerate(zip(*(table.column(c).cast(pa.string()).to_pylist()
                                                  for c in ("institution_id", "bank", "city"))),
                                            start=1):
        key = (iid or "").lstrip("0")
        if not iid or not iid.isascii() or not iid.isdigit() or len(iid) > 11:
            problems.append(f"{path.name}: row {row}, institution_id: {iid!r} is not 1-11 digits")
        elif key in seen:
            problems.append(f"{path.name}: row {row}, institution_id: {iid!r} repeats row "
                            f"{seen[key]}")
        if bank is None or not BANK_RE.fullmatch(bank):
            problems.append(f"{path.name}: row {row}, bank: {bank!r} is not a bank code")
        if city is None or not CITY_RE.fullmatch(city):
            problems.append(f"{path.name}: row {row}, city: {city!r} is not 6 digits")
        seen.setdefault(key, row)
        ids.append(key), banks.append(bank), cities.append(city)
    if problems:
        raise RefDataError(problems[:50])
    return Institutions(pa.array(ids, _S), pa.array(banks, _S), pa.array(cities, _S))


