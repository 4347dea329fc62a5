"""Durable run state (SPEC §6): free-slot counters, the reversal index, taken txn_ids.

The state is what one run hands the next so that ``run A B`` gives the same
rows as ``run A`` then ``run B``:

* ``counters``: ``(card_no, waiver_id, month) -> used`` free slots;
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
"""
from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from txcore.errors import StateError

DEFAULT_RETENTION_DAYS = 45
FORMAT_VERSION = 1
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
    card_no: str
    local_date: dt.date
    effect: Effect | None  # None for a reversal row (it cannot itself be reversed)
    reversed: bool = False


class State:
    def __init__(self, retention_days: int = DEFAULT_RETENTION_DAYS):
        self.retention_days = retention_days
        self.counters: dict[tuple[str, str, Month], int] = {}
        self.index: dict[str, Entry] = {}
        self.latest: dt.date | None = None
        self.ledger: dict[str, dict] = {}

    # -- the window -----------------------------------------------------------------
    def now(self, day: dt.date) -> dt.date:
        """The latest local date once a row dated ``day`` is priced."""
        return day if self.latest is None or day > self.latest else self.latest

    def _visible(self, day: dt.date, now: dt.date) -> bool:
        return (now - day).days <= self.retention_days

    # -- txn ids and the reversal index -----------------------------------------------
    def lookup(self, txn_id: str, now: dt.date) -> Entry | None:
        entry = self.index.get(txn_id)
        if entry is None or not self._visible(entry.local_date, now):
            return None
        return entry

    def take(self, txn_id: str, entry: Entry, now: dt.date):
        self.index[txn_id] = entry
        self.latest = now

    # -- free-slot counters -----------------------------------------------------------
    def used(self, card_no: str, waiver_id: str, month: Month) -> int:
        return self.counters.get((card_no, waiver_id, month), 0)

    def set_used(self, card_no: str, waiver_id: str, month: Month, used: int):
        self.counters[(card_no, waiver_id, month)] = used

    # -- persistence ----------------------------------------------------------------
    def prune(self):
        if self.latest is None:
            return
        now = self.latest
        self.index = {k: e for k, e in self.index.items() if self._visible(e.local_date, now)}

    @classmethod
    def load(cls, folder: str | Path, retention_days: int = DEFAULT_RETENTION_DAYS) -> "State":
        folder = Path(folder)
        state = cls(retention_days)
        meta_path = folder / "meta.json"
        if not meta_path.exists():
            return state
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("format") != FORMAT_VERSION:
                raise StateError(f"{folder}: state format {meta.get('format')!r} is not "
                                 f"{FORMAT_VERSION}")
            state.latest = dt.date.fromisoformat(meta["latest"]) if meta["latest"] else None
            state.ledger = json.loads((folder / "ledger.json").read_text())
            c = pq.read_table(folder / "counters.parquet").to_pydict()
            for card, waiver, month, used in zip(c["card_no"], c["waiver_id"], c["month"],
                                                 c["used"]):
                state.counters[(card, waiver, (month // 100, month % 100))] = used
            x = pq.read_table(folder / "index.parquet").to_pydict()
            for i, txn_id in enumerate(x["txn_id"]):
                effect = None
                if not x["is_reversal"][i]:
                    sm = x["slot_month"][i]
                    effect = Effect(x["fee_standard"][i], x["fee_waived"][i],
                                    x["fee_charged"][i], x["discount"][i], x["fee_rule"][i],
                                    x["waiver_rule"][i], x["discount_rule"][i], x["ruleset"][i],
                                    x["slot_waiver"][i],
                                    None if sm is None else (sm // 100, sm % 100))
                state.index[txn_id] = Entry(x["card_no"][i], x["local_date"][i], effect,
                                            x["reversed"][i])
        except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
            raise StateError(f"{folder}: state cannot be read: {exc}") from exc
        return state

    def save(self, folder: str | Path):
        """Write the state; each file goes to a temporary name, then is renamed."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.prune()
        keys = list(self.counters)
        counters = pa.table({
            "card_no": pa.array([k[0] for k in keys], pa.string()),
            "waiver_id": pa.array([k[1] for k in keys], pa.string()),
            "month": pa.array([k[2][0] * 100 + k[2][1] for k in keys], pa.int32()),
            "used": pa.array([self.counters[k] for k in keys], pa.int32()),
        })
        ids = list(self.index)
        entries = [self.index[t] for t in ids]
        effects = [e.effect for e in entries]

        def eff(name, typ):
            return pa.array([None if f is None else getattr(f, name) for f in effects], typ)

        index = pa.table({
            "txn_id": pa.array(ids, pa.string()),
            "card_no": pa.array([e.card_no for e in entries], pa.string()),
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
        })
        _write_atomic(folder / "ledger.json",
                      lambda p: Path(p).write_text(json.dumps(self.ledger, indent=1) + "\n"))
        _write_atomic(folder / "counters.parquet", lambda p: pq.write_table(counters, p))
        _write_atomic(folder / "index.parquet", lambda p: pq.write_table(index, p))
        meta = {"format": FORMAT_VERSION,
                "latest": self.latest.isoformat() if self.latest else None,
                "counters": len(keys), "index": len(ids)}
        _write_atomic(folder / "meta.json",
                      lambda p: Path(p).write_text(json.dumps(meta, indent=1) + "\n"))


def _write_atomic(path: Path, write):
    tmp = path.with_name(path.name + ".tmp")
    write(str(tmp))
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
