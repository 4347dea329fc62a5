"""Benefits delivered, from priced files: per local month and union unit, in fen.

Reads only the columns it needs, one Parquet row group (or one batch of another
format) at a time, and keeps only running sums per (month, unit, ...) — so a
year of priced files is read in bounded memory.  Each priced row's card is
looked up in the registry (:class:`txcore.rollout.Roster`); a row whose card
is not there, or whose card's unit is not one of the programme's, is counted
under "unknown unit" with its reason, never dropped.  Sums are exact int64
(Arrow's grouped sums); nothing here is a float.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from txcore.audit.rollout import UNKNOWN, Roster
from txcore.cardno import redact
from txcore.errors import InputRefused
from txcore.io.reader import InputSource

REQUIRED = ("card_no", "ts", "kind", "fee_standard", "fee_waived", "fee_charged", "discount")
OPTIONAL = ("amount", "benefit", "waiver_rule", "discount_rule")
MONEY = ("fee_standard", "fee_waived", "fee_charged", "discount")
PARTNER = "partner merchants"  #: the item under which every ``merchant:*`` discount is summed
CATEGORIES = ("fee_waived", "discount_partner", "discount_mcc", "disbursement")
BATCH_ROWS = 1 << 18
ITEM_BITS = 24  #: room for 16 M distinct rule ids / benefit names in a key
ITEM_MASK = (1 << ITEM_BITS) - 1


def priced_files(paths) -> list[Path]:
    """The files named, a folder standing for the ``*.priced.*`` files in it (sorted)."""
    out = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if ".priced." in f.name and f.is_file())
            if not found:
                raise InputRefused(f"{p}: no *.priced.* files in this folder")
            out.extend(found)
        else:
            out.append(p)
    return out


class CardIndex:
    """Card number -> registry row, built once: an open-addressing hash table over the
    numbers as integers, probed a whole batch at a time (numpy gathers).

    Priced card numbers are 12-19 ASCII digits, so each is an exact uint64; the
    digit count is compared too, so ``0123...`` never matches ``123...``.  A
    registry where two numbers differ only by leading zeros (the same integer) is
    looked up through a plain dict instead.
    """

    def __init__(self, numbers: pa.Array):
        values = pc.cast(numbers, pa.uint64()).to_numpy(zero_copy_only=False)
        lengths = pc.utf8_length(numbers).to_numpy(zero_copy_only=False)
        self.order = np.argsort(values, kind="stable")
        self.values, self.lengths = values[self.order], lengths[self.order]
        self.unique = len(self.values) < 2 or bool(np.all(np.diff(self.values) > 0))
        self._dict = None if self.unique else {n: i for i, n in enumerate(numbers.to_pylist())}
        # the table: at most half full; slot -> registry row (-1 empty), with its key
        self.bits = max(4, int(2 * max(len(values), 1) - 1).bit_length())
        self.slot_row = np.full(1 << self.bits, -1, np.int64)
        self.slot_key = np.zeros(1 << self.bits, np.uint64)
        self.slot_len = np.zeros(1 << self.bits, lengths.dtype if len(lengths) else np.int32)
        self.probes = 0
        if self._dict is None:
            pending = np.arange(len(values))
            home = self._hash(values)
            probe = 0
            while len(pending):
                slot = (home[pending] + probe) & ((1 << self.bits) - 1)
                free = self.slot_row[slot] == -1
                # of the rows that want the same free slot, the first takes it
                cand, first = np.unique(slot[free], return_index=True)
                taken = pending[free][first]
                self.slot_row[cand] = taken
                self.slot_key[cand] = values[taken]
                self.slot_len[cand] = lengths[taken]
                placed = np.zeros(len(pending), bool)
                placed[np.flatnonzero(free)[first]] = True
                pending = pending[~placed]
                self.probes = probe
                probe += 1

    def _hash(self, values: np.ndarray) -> np.ndarray:
        mixed = values * np.full(len(values), 0x9E3779B97F4A7C15, np.uint64)  # wraps mod 2**64
        return (mixed >> np.uint64(64 - self.bits)).astype(np.int64)

    def rows(self, card_no: pa.Array) -> np.ndarray:
        """Registry row of each number, -1 where not in the registry."""
        card_no = pc.cast(card_no, pa.string())
        if self._dict is None and len(self.values):
            try:
                values = pc.fill_null(pc.cast(card_no, pa.uint64()), 0).to_numpy(
                    zero_copy_only=False)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError, ValueError):
                values = None  # a number that is not digits: one by one below
            if values is not None:
                # a null (no card number) gets length 0, which no registry number has
                lengths = pc.fill_null(pc.utf8_length(card_no), 0).to_numpy(
                    zero_copy_only=False)
                out = np.full(len(values), -1, np.int64)
                pending = np.arange(len(values))
                home = self._hash(values)
                for probe in range(self.probes + 1):
                    slot = (home[pending] + probe) & ((1 << self.bits) - 1)
                    row = self.slot_row[slot]
                    hit = (row >= 0) & (self.slot_key[slot] == values[pending])
                    out[pending[hit]] = row[hit]
                    pending = pending[~hit & (row >= 0)]
                    if not len(pending):
                        break
                matched = out >= 0
                out[matched & (lengths != self.lengths_by_row()[np.maximum(out, 0)])] = -1
                return out
        return np.array([self._lookup(n) for n in card_no.to_pylist()], np.int64)

    def lengths_by_row(self) -> np.ndarray:
        if not hasattr(self, "_by_row"):
            self._by_row = np.empty_like(self.lengths)
            self._by_row[self.order] = self.lengths
        return self._by_row

    def _lookup(self, number) -> int:
        if number is None:
            return -1
        if self._dict is not None:
            return self._dict.get(number, -1)
        if not (number.isascii() and number.isdigit() and 0 < len(number) <= 19):
            return -1
        v = np.uint64(int(number))
        at = int(np.searchsorted(self.values, v))
        if at < len(self.values) and self.values[at] == v and self.lengths[at] == len(number):
            return int(self.order[at])
        return -1


class Benefits:
    """Running sums over priced batches; :meth:`add` one batch, read the tables after.

    Sums are kept per small integer key (month, unit, category, item) in a dict of
    int64 numpy rows, added with ``np.add.at`` (exact integers, no float).
    """

    def __init__(self, roster: Roster, cards: pa.Array, timezone: str = "Asia/Shanghai"):
        self.roster, self.timezone = roster, timezone
        self.index = CardIndex(cards)
        self._control: dict[int, np.ndarray] = {}  # (month, unit) -> rows, MONEY
        self._detail: dict[int, np.ndarray] = {}  # (month, unit, category, item) -> count, fen
        self._unknown: dict[int, np.ndarray] = {}  # (reason, label) -> rows, waived, disc, disb
        self.items: dict[str, int] = {}  # item text -> id
        self.rows = 0

    def add_file(self, path: Path):
        path = Path(path)
        if path.suffix.lower() == ".parquet":
            try:
                pf = pq.ParquetFile(path)
                names = pf.schema_arrow.names
                self._check(path, names)
                cols = [c for c in (*REQUIRED, *OPTIONAL) if c in names]
                for i in range(pf.num_row_groups):  # one row group at a time
                    self.add(pf.read_row_group(i, columns=cols, use_threads=False))
            except (OSError, pa.ArrowException) as exc:
                raise InputRefused(f"{path.name}: cannot be read as parquet: "
                                   f"{redact(str(exc))}") from exc
            return
        if path.suffix.lower() == ".csv":
            self._add_csv(path)
            return
        source = InputSource(str(path), batch_size=BATCH_ROWS)
        for batch in source.batches():
            self._check(path, batch.schema.names)
            self.add(batch.select([c for c in (*REQUIRED, *OPTIONAL)
                                   if c in batch.schema.names]))

    def _add_csv(self, path: Path):
        """A priced CSV file (as txcore writes it): the needed columns, typed, a block at a
        time."""
        with open(path, encoding="utf-8-sig", newline="") as fh:
            header = next(csv.reader(fh), [])
        self._check(path, header)
        cols = [c for c in (*REQUIRED, *OPTIONAL) if c in header]
        types = {c: pa.int64() for c in (*MONEY, "amount")}
        types["ts"] = pa.timestamp("us", "UTC")
        try:
            reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 24),
                                    convert_options=pacsv.ConvertOptions(
                                        include_columns=cols,
                                        column_types={c: types.get(c, pa.string())
                                                      for c in cols}))
            for batch in reader:
                self.add(batch)
        except (OSError, pa.ArrowException) as exc:
            raise InputRefused(f"{path.name}: cannot be read as a priced CSV file: "
                               f"{redact(str(exc))}") from exc

    @staticmethod
    def _check(path, names):
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise InputRefused(f"{Path(path).name}: not a priced file: no column(s) "
                               f"{', '.join(missing)}")

    def add(self, batch):
        """Add one record batch (or table) of priced rows."""
        n = batch.num_rows
        if not n:
            return
        self.rows += n
        t = pa.table(batch) if isinstance(batch, pa.RecordBatch) else batch

        def col(name):
            return t.column(name).combine_chunks() if name in t.column_names else None

        row = self.index.rows(col("card_no"))
        found = row >= 0
        unit = np.full(n, UNKNOWN, np.int64)
        unit[found] = self.roster.unit[row[found]]
        month = self._months(col("ts"))
        money = {m: _ints(col(m)) for m in MONEY}
        key = month * 256 + unit
        _accumulate(self._control, key, [np.ones(n, np.int64), *money.values()])

        kind = col("kind")
        sign = np.where(_flags(pc.equal(kind, "reversal")), -1, 1).astype(np.int64)
        rule = col("discount_rule")
        partner = (_flags(pc.starts_with(rule, "merchant:")) if rule is not None
                   else np.zeros(n, bool))
        disb = _flags(pc.equal(kind, "disbursement"))
        amount = _ints(col("amount")) if "amount" in t.column_names else np.zeros(n, np.int64)
        waived, discount = money["fee_waived"], money["discount"]
        for c, where, item, fen, count in (
                (0, waived != 0, col("waiver_rule"), waived, sign),
                (1, (discount != 0) & partner, None, discount, sign),
                (2, (discount != 0) & ~partner, rule, discount, sign),
                (3, disb, col("benefit"), amount, np.ones(n, np.int64))):
            if not where.any():
                continue
            ids = self._item_ids(item, n) if c != 1 else np.full(n, self._item(PARTNER))
            k = ((key * 4 + c) << ITEM_BITS) + ids
            _accumulate(self._detail, k[where], [count[where], fen[where]])

        unknown = unit == UNKNOWN
        if unknown.any():
            reason = np.zeros(n, np.int64)  # card_not_in_registry
            label = np.zeros(n, np.int64)
            reason[found] = self.roster.unknown_reason[row[found]]
            label[found] = self.roster.unknown_label[row[found]]
            k = (reason * (1 << 32) + label)[unknown]
            _accumulate(self._unknown, k, [np.ones(int(unknown.sum()), np.int64),
                                           waived[unknown], discount[unknown],
                                           np.where(disb, amount, 0)[unknown]])

    def _item(self, text: str) -> int:
        return self.items.setdefault(text, len(self.items))

    def _item_ids(self, item, n) -> np.ndarray:
        if item is None:
            return np.full(n, self._item("(none)"), np.int64)
        enc = pc.dictionary_encode(pc.cast(item, pa.string()))
        ids = np.array([self._item(v) for v in enc.dictionary.to_pylist()] + [self._item("(none)")],
                       np.int64)
        idx = pc.fill_null(enc.indices, len(enc.dictionary)).to_numpy(zero_copy_only=False)
        return ids[idx]

    def _months(self, ts) -> np.ndarray:
        """Local month of each instant, as months since 1970-01."""
        if not pa.types.is_timestamp(ts.type):
            ts = pc.cast(ts, pa.timestamp("us", "UTC"))
        elif ts.type.tz is None:  # naive: local time already
            ts = pc.assume_timezone(ts, self.timezone)
        local = pc.cast(ts, pa.timestamp("us", self.timezone))
        year = pc.year(local).to_numpy(zero_copy_only=False)
        month = pc.month(local).to_numpy(zero_copy_only=False)
        return ((year - 1970) * 12 + month - 1).astype(np.int64)

    # -- results ---------------------------------------------------------------------------
    def control(self) -> list[dict]:
        """month, unit, rows, fee_standard, fee_waived, fee_charged, discount (sorted)."""
        return [{"month": k // 256, "unit": k % 256, "rows": int(v[0]),
                 **{m: int(x) for m, x in zip(MONEY, v[1:])}}
                for k, v in sorted(self._control.items())]

    def detail(self) -> list[dict]:
        """month, unit, category, item, count, fen (sorted by month, unit, category, item)."""
        text = {i: t for t, i in self.items.items()}
        out = [{"month": k >> (ITEM_BITS + 10), "unit": (k >> (ITEM_BITS + 2)) & 255,
                "category": CATEGORIES[(k >> ITEM_BITS) & 3], "item": text[k & ITEM_MASK],
                "count": int(v[0]), "fen": int(v[1])} for k, v in self._detail.items()]
        return sorted(out, key=lambda d: (d["month"], d["unit"], CATEGORIES.index(d["category"]),
                                          d["item"]))

    def unknown(self) -> list[dict]:
        """reason, label, rows, fee_waived, discount, disbursed."""
        return [{"reason": k >> 32, "label": k & 0xFFFFFFFF, "rows": int(v[0]),
                 "fee_waived": int(v[1]), "discount": int(v[2]), "disbursed": int(v[3])}
                for k, v in sorted(self._unknown.items())]


def _ints(column) -> np.ndarray:
    return np.asarray(pc.fill_null(column, 0).to_numpy(zero_copy_only=False), np.int64)


def _flags(column) -> np.ndarray:
    return np.asarray(pc.fill_null(column, False).to_numpy(zero_copy_only=False), bool)


def _accumulate(store: dict, key: np.ndarray, values: list[np.ndarray]):
    """``store[k] += sum of values over the rows with key k`` (int64, exact)."""
    uniq, inverse = np.unique(key, return_inverse=True)
    sums = np.zeros((len(values), len(uniq)), np.int64)
    for i, v in enumerate(values):
        np.add.at(sums[i], inverse, v)
    for j, k in enumerate(uniq.tolist()):
        if k in store:
            store[k] += sums[:, j]
        else:
            store[k] = sums[:, j].copy()
