"""Durable run state (docs/state.md): free-slot counters, the reversal index, taken txn_ids.

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

Cards and txn_ids are held as keyed digests (:class:`txcore.state.keys.Keyer`), so
no card number is ever at rest in the state.  Persistence and the atomic
commit are :mod:`txcore.state.store`'s job.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from txcore.bounds import check_int
from txcore.state import schema
from txcore.state.keys import Keyer

DEFAULT_RETENTION_DAYS = 45
#: The retention window a state accepts: at least a day, at most ten years (3,660 days).
#: Beyond that the window would reach before year 1 for dates txcore accepts, and no
#: bank keeps a reversal open for longer (docs/business-date.md).
RETENTION_DAYS_RANGE = (1, 3660)
Month = tuple[int, int]


def check_retention_days(days) -> int:
    """``days`` if it is a whole number in :data:`RETENTION_DAYS_RANGE`; else ValueError
    stating the range."""
    return check_int("--retention-days", days, *RETENTION_DAYS_RANGE)


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
    """The state in Python dicts, for the reference engine.

    Its tables (:meth:`tables`, :meth:`set_tables`) are the state folder's format.
    A compiled engine takes the counters and index over in compact form
    (:mod:`txcore.state.compact`, ``state.compact``); the dicts are rebuilt from it only if
    Python code asks for them again, so a state passes between backends intact.
    """

    def __init__(self, retention_days: int = DEFAULT_RETENTION_DAYS, keyer: Keyer | None = None):
        self.retention_days = retention_days
        self.keyer = keyer if keyer is not None else Keyer()
        self._counters: dict[tuple[bytes, str, Month], int] = {}
        self._index: dict[bytes, Entry] = {}
        self._latest: dt.date | None = None
        self._tables = None   # (counters, index) tables not read into the dicts yet
        self.compact = None   # a txcore.state.compact.CompactState that holds them now
        self.ledger: dict[str, dict] = {}
        self._cards: dict[str, bytes] = {}
        # a partitioned run's new state, already in the state folder's record form
        # (:meth:`set_records`): what the commit writes, without the dicts or tables
        self.records = None

    # -- who holds the counters and the index ---------------------------------------
    def _own(self):
        """Make the dicts current (from loaded tables or a compact state)."""
        if self.compact is not None:
            counters, index = self.compact.to_tables()
            self._latest = self.compact.latest
            self.compact = None
            self._tables = (counters, index)
        if self._tables is not None:
            counters, index = self._tables
            self._tables = None
            self._counters, self._index = {}, {}
            _tables_to_dicts(self, counters, index)

    @property
    def counters(self) -> dict:
        self._own()
        return self._counters

    @property
    def index(self) -> dict:
        self._own()
        return self._index

    @index.setter
    def index(self, value: dict):
        self._own()
        self._index = value

    @property
    def latest(self) -> dt.date | None:
        return self.compact.latest if self.compact is not None else self._latest

    @latest.setter
    def latest(self, day: dt.date | None):
        self._own()
        self._latest = day

    def set_tables(self, counters, index, latest: dt.date | None):
        """Load the state folder's tables (read into dicts only when asked)."""
        self.compact = None
        self._tables, self._latest = (counters, index), latest
        self._counters, self._index = {}, {}

    def set_records(self, counters, runs, latest: dt.date | None):
        """The state after a partitioned run (:mod:`txcore.plan`): its counters table and
        its index entries as the state folder's records (``txcore.state.segments.REC``,
        codes of the commit's string table) within the window of ``latest``, one
        ``(hi, lo, recs)`` run per card bucket, sorted by key, or the bucket's segment as
        a task wrote it (``txcore.state.segments.Written``).  Only a commit reads them."""
        self.compact, self._tables = None, None
        self._counters, self._index = {}, {}
        self.records, self._latest = (counters, runs), latest

    def tables_for_commit(self):
        """``(counters, index schema, index pieces)``: what :meth:`tables` gives, with the
        index as an iterable of tables so a large one is written piece by piece."""
        if self.compact is not None:
            pieces = self.compact.index_tables()
            return self.compact.counters_table(), schema.INDEX, pieces
        counters, index = self.tables()
        return counters, index.schema, [index]

    def tables(self):
        """``(counters, index)`` as the state folder stores them, pruned to the window."""
        if self.compact is not None:
            return self.compact.to_tables()
        if self._tables is not None:
            counters, index = self._tables
            if self._latest is not None:
                import pyarrow.compute as pc
                oldest = self._latest - dt.timedelta(
                    days=min(self.retention_days, (self._latest - dt.date.min).days))
                index = index.filter(pc.greater_equal(index.column("local_date"), oldest))
            return counters, index
        self.prune()
        return _dicts_to_tables(self)

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
        latest = self.latest
        return day if latest is None or day > latest else latest

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
        self._latest = now

    # -- free-slot counters -----------------------------------------------------------
    def used(self, card: bytes, waiver_id: str, month: Month) -> int:
        return self.counters.get((card, waiver_id, month), 0)

    def set_used(self, card: bytes, waiver_id: str, month: Month, used: int):
        self.counters[(card, waiver_id, month)] = used

    def prune(self):
        """Drop index entries outside the window (they are invisible already)."""
        if self.compact is not None or self._tables is not None:
            return  # pruned when turned into tables
        if self._latest is not None:
            now = self._latest
            self._index = {k: e for k, e in self._index.items()
                           if self._visible(e.local_date, now)}


# -- the state folder's tables <-> dicts ---------------------------------------------
def _dicts_to_tables(state: State):
    import pyarrow as pa
    ck = list(state._counters)
    key = schema.KEY
    counters = pa.table({
        "card": pa.array([k[0] for k in ck], key),
        "waiver_id": pa.array([k[1] for k in ck], pa.string()),
        "month": pa.array([k[2][0] * 100 + k[2][1] for k in ck], pa.int32()),
        "used": pa.array([state._counters[k] for k in ck], pa.int32()),
    }, schema=schema.COUNTERS)
    ids = list(state._index)
    entries = [state._index[t] for t in ids]
    effects = [e.effect for e in entries]

    def eff(name, typ):
        return pa.array([None if f is None else getattr(f, name) for f in effects], typ)

    index = pa.table({
        "txn": pa.array(ids, key),
        "card": pa.array([e.card for e in entries], key),
        "local_date": pa.array([e.local_date for e in entries], pa.date32()),
        "is_reversal": pa.array([f is None for f in effects], pa.bool_()),
        "reversed": pa.array([e.reversed for e in entries], pa.bool_()),
        "fee_standard": eff("fee_standard", pa.int64()),
        "fee_waived": eff("fee_waived", pa.int64()),
        "fee_charged": eff("fee_charged", pa.int64()),
        "discount": eff("discount", pa.int64()),
        "fee_rule": eff("fee_rule", pa.string()),
        "waiver_rule": eff("waiver_rule", pa.string()),
        "discount_rule": eff("discount_rule", pa.string()),
        "ruleset": eff("ruleset", pa.string()),
        "slot_waiver": eff("slot_waiver", pa.string()),
        "slot_month": pa.array([None if f is None or f.slot_month is None
                                else f.slot_month[0] * 100 + f.slot_month[1]
                                for f in effects], pa.int32()),
    }, schema=schema.INDEX)
    return counters, index


def _tables_to_dicts(state: State, counters, index):
    c = counters.to_pydict()
    for card, waiver, month, used in zip(c["card"], c["waiver_id"], c["month"], c["used"]):
        state._counters[(card, waiver, (month // 100, month % 100))] = used
    x = index.to_pydict()
    for i, txn in enumerate(x["txn"]):
        effect = None
        if not x["is_reversal"][i]:
            sm = x["slot_month"][i]
            effect = Effect(x["fee_standard"][i], x["fee_waived"][i], x["fee_charged"][i],
                            x["discount"][i], x["fee_rule"][i], x["waiver_rule"][i],
                            x["discount_rule"][i], x["ruleset"][i], x["slot_waiver"][i],
                            None if sm is None else (sm // 100, sm % 100))
        state._index[txn] = Entry(x["card"][i], x["local_date"][i], effect, x["reversed"][i])
