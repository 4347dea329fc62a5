"""Durable run state (SPEC §6): free-slot counters, the reversal index, taken txn_ids.

The state is what one run hands the next so that ``run A B`` gives the same
rows as ``run A`` then ``run B``:

* ``counters``: ``(card, waiver_id, month) -> used`` free slots;
* ``index``: every priced row's txn_id with its card, local date and (for
  non-reversals) its effect, kept for reversals and duplicate detection;
* ``latest``: the latest local date priced so far;
* ``ledger``: the sha256 of every committed input file, with the run that
  committed it, so a file is never priced twice.

Retention is *logical*: an index entry older than ``retention_days`` before
``latest`` is invisible whether or not it has been pruned yet, so results do
not depend on where runs are split.  ``save`` prunes what is invisible.
Counters are never forgotten: a late row for an old month must not find its
card-month's free slots fresh again (that would give a slot twice).  They grow
by one entry per card, quota waiver and month of use.

Cards and txn_ids are held as keyed digests (:class:`txcore.keys.Keyer`), so
no card number is ever at rest in the state.  Persistence and the atomic
commit are :mod:`txcore.store`'s job.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from txcore.keys import Keyer

DEFAULT_RETENTION_DAYS = 45
Month = tuple[int, int]


@dataclass(slots=True)
class Effect:
    """What a priced non-reversal row did, as a reversal negates it."""

    fee_standard: int
    fee_waived: int
    fee_charged: int
    discount: int
    fee_rule: str | None
    waiver_rule: str | None
    discount_rule: str | None
    ruleset: str
    slot_waiver: str | None = None  # the free slot it used, if any
    slot_month: Month | None = None


@dataclass(slots=True)
class Entry:
    card: bytes              # keyed digest of the card number
    local_date: dt.date
    effect: Effect | None    # None for a reversal row (it cannot itself be reversed)
    reversed: bool = False


class State:
    def __init__(self, retention_days: int = DEFAULT_RETENTION_DAYS, keyer: Keyer | None = None):
        self.retention_days = retention_days
        self.keyer = keyer if keyer is not None else Keyer()
        self.counters: dict[tuple[bytes, str, Month], int] = {}
        self.index: dict[bytes, Entry] = {}
        self.latest: dt.date | None = None
        self.ledger: dict[str, dict] = {}
        self._cards: dict[str, bytes] = {}

    # -- identifiers ------------------------------------------------------------------
    def card_key(self, card_no: str) -> bytes:
        key = self._cards.get(card_no)
        if key is None:
            key = self._cards[card_no] = self.keyer(card_no)
        return key

    def txn_key(self, txn_id: str) -> bytes:
        return self.keyer(txn_id)

    # -- the window -----------------------------------------------------------------
    def now(self, day: dt.date) -> dt.date:
        """The latest local date once a row dated ``day`` is priced."""
        return day if self.latest is None or day > self.latest else self.latest

    def _visible(self, day: dt.date, now: dt.date) -> bool:
        return (now - day).days <= self.retention_days

    # -- txn ids and the reversal index -----------------------------------------------
    def lookup(self, txn: bytes, now: dt.date) -> Entry | None:
        entry = self.index.get(txn)
        if entry is None or not self._visible(entry.local_date, now):
            return None
        return entry

    def take(self, txn: bytes, entry: Entry, now: dt.date):
        self.index[txn] = entry
        self.latest = now

    # -- free-slot counters -----------------------------------------------------------
    def used(self, card: bytes, waiver_id: str, month: Month) -> int:
        return self.counters.get((card, waiver_id, month), 0)

    def set_used(self, card: bytes, waiver_id: str, month: Month, used: int):
        self.counters[(card, waiver_id, month)] = used

    def prune(self):
        """Drop index entries outside the window (they are invisible already)."""
        if self.latest is not None:
            now = self.latest
            self.index = {k: e for k, e in self.index.items()
                          if self._visible(e.local_date, now)}
