"""The card registry (docs/reference-data.md): :class:`Card`, and :class:`Cards` kept as Arrow columns.

A loaded registry keeps its validated columns (:data:`SCHEMA`, registry order) and
makes a :class:`Card` only when one card is asked for, memoised; the compiled
engines read the columns (:meth:`Cards.columns`) and so never make one Python
object per card.  A registry built by hand (``Cards()``, then ``cards[no] =
Card(...)``) is a plain dict inside, and so is a loaded one once it is changed.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa


@dataclass(frozen=True, slots=True)
class Card:
    member_id: str | None
    unit: str | None
    issuer: str
    home_city: str
    member_from: dt.date | None
    member_to: dt.date | None

    def is_member(self, day: dt.date) -> bool:
        """Member card on local date ``day`` (docs/reference-data.md)."""
        return (self.member_from is not None and self.member_from <= day
                and (self.member_to is None or day <= self.member_to))


FIELDS = ("member_id", "unit", "issuer", "home_city", "member_from", "member_to")
#: The registry as columns: one row per card, in registry order.
SCHEMA = pa.schema([("card_no", pa.string()), ("member_id", pa.string()),
                    ("unit", pa.string()), ("issuer", pa.string()),
                    ("home_city", pa.string()), ("member_from", pa.date32()),
                    ("member_to", pa.date32())])


class Cards(MutableMapping):
    """``card_no -> Card`` in registry order; the source file is kept for messages."""

    source: Path | None = None

    def __init__(self, *args, **kwargs):
        self._dict: dict | None = {}   # None while backed by columns
        self._columns: dict[str, pa.Array] | None = None
        self._rows: dict | None = None  # card_no -> row, made on the first lookup
        self._made: dict[int, Card] = {}
        self.update(*args, **kwargs)

    @classmethod
    def from_columns(cls, table: pa.Table, source: Path | None = None) -> Cards:
        """A registry over ``table`` (:data:`SCHEMA`, already validated: card numbers
        distinct, ``member_id``/``unit`` null where empty)."""
        if table.schema != SCHEMA:
            raise TypeError(f"registry columns must be {SCHEMA}, not {table.schema}")
        cards = cls()
        cards._dict = None
        cards._columns = {name: table.column(name).combine_chunks() for name in SCHEMA.names}
        cards.source = source
        return cards

    @property
    def columnar(self) -> bool:
        """Backed by Arrow columns (no per-card objects until asked for)."""
        return self._dict is None

    def columns(self) -> pa.Table:
        """The registry as a :data:`SCHEMA` table, in registry order."""
        if self._dict is None:
            return pa.table(self._columns, schema=SCHEMA)
        values = self._dict.values()
        columns = {"card_no": list(self._dict)}
        for name in FIELDS:
            columns[name] = [getattr(card, name) for card in values]
        return pa.table(columns, schema=SCHEMA)

    # -- the mapping ------------------------------------------------------------------
    def _row(self, card_no) -> int | None:
        if self._rows is None:
            numbers = self._columns["card_no"].to_pylist()
            self._rows = dict(zip(numbers, range(len(numbers))))
        return self._rows.get(card_no)

    def _card(self, row: int) -> Card:
        card = self._made.get(row)
        if card is None:
            card = self._made[row] = Card(*(self._columns[name][row].as_py()
                                            for name in FIELDS))
        return card

    def __getitem__(self, card_no) -> Card:
        if self._dict is not None:
            return self._dict[card_no]
        row = self._row(card_no)
        if row is None:
            raise KeyError(card_no)
        return self._card(row)

    def __contains__(self, card_no) -> bool:
        if self._dict is not None:
            return card_no in self._dict
        return self._row(card_no) is not None

    def __iter__(self):
        if self._dict is not None:
            return iter(self._dict)
        return iter(self._columns["card_no"].to_pylist())

    def __len__(self) -> int:
        if self._dict is not None:
            return len(self._dict)
        return len(self._columns["card_no"])

    def _own(self) -> dict:
        """The cards as a plain dict, from now on (a change leaves the columns)."""
        if self._dict is None:
            self._dict = {number: self[number] for number in self}
            self._columns = self._rows = None
            self._made = {}
        return self._dict

    def __setitem__(self, card_no, card: Card):
        self._own()[card_no] = card

    def __delitem__(self, card_no):
        del self._own()[card_no]

    def __repr__(self) -> str:  # never the card numbers (docs/outputs.md)
        where = f" from {self.source.name}" if self.source is not None else ""
        return f"<Cards: {len(self)} card(s){where}>"
