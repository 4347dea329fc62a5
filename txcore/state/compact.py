"""The state in compact form, for the compiled kernels: arrays and hash tables.

What :class:`txcore.state.memory.State` holds as Python dicts, this holds as numpy
structured arrays (layouts in :mod:`txcore._fast.layout`) with open-addressing slot
tables: 32 bytes per index entry (plus its slot) instead of several hundred; what an
entry did (money and rule ids) is a row of an interned effects table that entries
doing the same thing share.  It reads
and writes the same Arrow tables as ``State`` (the format of the state folder),
so either form can commit a run and either can continue it.

Cards are numbered by *slot*: the position of the card's digest in ``cards``;
entries and counters refer to cards by slot.  Rule ids are codes of a
:class:`~txcore.engine.flatrules.Strings` table owned here, so every engine that
continues this state decodes them the same way.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from txcore._fast import layout as L
from txcore._fast.layout import Strings
from txcore.state import schema
from txcore.timeconv import day_number, day_of



def digest_words(column) -> tuple[np.ndarray, np.ndarray]:
    """``(hi, lo)`` uint64 words of a ``binary(16)`` digest column."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], schema.KEY)
    column = column.cast(schema.KEY)
    n = len(column)
    if n == 0:
        return np.zeros(0, np.uint64), np.zeros(0, np.uint64)
    raw = np.frombuffer(column.buffers()[1], dtype=">u8")[2 * column.offset: 2 * (column.offset + n)]
    words = raw.reshape(n, 2).astype(np.uint64)
    return words[:, 0].copy(), words[:, 1].copy()


def digest_array(hi: np.ndarray, lo: np.ndarray) -> pa.Array:
    words = np.empty((len(hi), 2), ">u8")
    words[:, 0], words[:, 1] = hi, lo
    return pa.FixedSizeBinaryArray.from_buffers(schema.KEY, len(hi), [None, pa.py_buffer(words.tobytes())])


def _pow2_at_least(n: int) -> int:
    return 1 << max(4, int(n - 1).bit_length())


def _empty_slots(n: int) -> np.ndarray:
    slots = np.zeros(n, L.SLOT)
    slots["idx"] = -1
    return slots


def _grown(array: np.ndarray, size: int, used: int) -> np.ndarray:
    """``array`` with room for ``size`` rows (the first ``used`` kept)."""
    out = np.zeros(size, array.dtype)
    out[:used] = array[:used]
    return out


def _first_of_each(pairs: np.ndarray) -> np.ndarray:
    """The distinct rows of ``pairs`` (card digests), each once, in order of first
    appearance (no per-card Python work: the registry adds every card here)."""
    hi = np.sort(pairs[:, 0])
    if not np.any(hi[1:] == hi[:-1]):
        return pairs  # no two alike (a registry: its card numbers are distinct)
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))  # stable: a run starts at its first
    ordered = pairs[order]
    starts = np.ones(len(order), bool)
    starts[1:] = np.any(ordered[1:] != ordered[:-1], axis=1)
    return pairs[np.sort(order[starts])]


def _slots_for(n: int) -> int:
    return _pow2_at_least(int(n / L.MAX_LOAD) + 1)


def _codes(strings: Strings, column) -> np.ndarray:
    """String codes of a text column (null -> -1), interning new strings."""
    encoded = pc.dictionary_encode(column).combine_chunks() if isinstance(column, pa.ChunkedArray) \
        else pc.dictionary_encode(column)
    lookup = np.array([strings.code(v) for v in encoded.dictionary.to_pylist()] + [-1], np.int64)
    idx = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    return lookup[idx]


def _months(days: np.ndarray) -> np.ndarray:
    """year * 12 + month - 1 of days since 1970."""
    months = days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
    return months + 1970 * 12


class CompactState:
    def __init__(self, retention_days: int, kernel):
        self.kernel = kernel
        self.strings = Strings()
        self.scalars = np.array([0, 0, L.NO_LATEST, retention_days, 0, 0], np.int64)
        self.cards = np.zeros(16, L.CARD)
        self.n_cards = 0
        self.card_slots = _empty_slots(32)
        self.entries = np.zeros(16, L.ENTRY)
        self.entry_slots = _empty_slots(32)
        self.counters = np.zeros(16, L.COUNTER)
        self.counter_slots = np.full(32, -1, np.int32)
        self.effects = np.zeros(16, L.EFFECT)
        self.effect_slots = np.full(32, -1, np.int32)

    # -- the window -------------------------------------------------------------------
    @property
    def retention_days(self) -> int:
        return int(self.scalars[L.RETENTION])

    @property
    def latest(self) -> dt.date | None:
        day = self.scalars[L.LATEST]
        return None if day == L.NO_LATEST else day_of(day)

    # -- cards ------------------------------------------------------------------------
    def add_cards(self, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """The slot of each card digest, adding those not seen yet (looked up in the
        kernel's card table; the registry and a loaded state's distinct cards come here)."""
        hi = np.ascontiguousarray(hi, np.uint64)
        lo = np.ascontiguousarray(lo, np.uint64)
        out = np.empty(len(hi), np.int64)
        if len(hi):
            self.kernel.find_cards(self.cards, self.card_slots, hi, lo, out)
        missing = np.flatnonzero(out < 0)
        if len(missing):
            new = _first_of_each(np.stack([hi[missing], lo[missing]], axis=1))
            start, self.n_cards = self.n_cards, self.n_cards + len(new)
            if self.n_cards >= 2**28:
                raise ValueError("more than 2**28 cards in one state")
            if self.n_cards > len(self.cards):
                self.cards = _grown(self.cards, max(self.n_cards, 2 * len(self.cards)), start)
            self.cards[start:self.n_cards] = 0
            self.cards["key_hi"][start:self.n_cards] = new[:, 0]
            self.cards["key_lo"][start:self.n_cards] = new[:, 1]
            self.cards["reg"][start:self.n_cards] = -1
            self.card_slots = _empty_slots(_pow2_at_least(2 * self.n_cards))
            self.kernel.rebuild_card_slots(self.cards, self.n_cards, self.card_slots)
            found = np.empty(len(missing), np.int64)
            self.kernel.find_cards(self.cards, self.card_slots, hi[missing], lo[missing], found)
            out[missing] = found
        return out

    def _card_column(self, column) -> np.ndarray:
        """The slot of each card digest of a state table's column (a card appears on
        many rows: each distinct one is added once, in order of first appearance)."""
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if len(column) == 0:
            return np.zeros(0, np.int64)
        encoded = pc.dictionary_encode(column.cast(schema.KEY))
        slots = self.add_cards(*digest_words(encoded.dictionary))
        return slots[encoded.indices.to_numpy(zero_copy_only=False)]

    def attach_registry(self, hi: np.ndarray, lo: np.ndarray, reg: np.ndarray):
        """Registry row ``i`` (``reg[i]``, a ``REG``) is the card with digest
        ``(hi[i], lo[i])``; other cards are unknown to this run."""
        slots = self.add_cards(hi, lo)
        self.cards["reg"][: self.n_cards] = -1
        self.cards["reg"][slots] = np.arange(len(slots), dtype=np.int32)
        for name in reg.dtype.names:
            self.cards[name][slots] = reg[name]

    # -- room for a batch -------------------------------------------------------------
    def reserve(self, rows: int, counters: bool = True):
        """Room for ``rows`` more entries (and counters and effects); slot tables at most
        MAX_LOAD full.  Growing doubles, so a caller that knows its total rows reserves the
        entries up front (``counters=False``: few rows add a counter or an effect, so those
        grow batch by batch)."""
        used = int(self.scalars[L.N_ENTRIES])
        need = used + rows
        if need > len(self.entries):
            self.entries = _grown(self.entries, max(need, 2 * len(self.entries)), used)
        if need > L.MAX_LOAD * len(self.entry_slots):
            self.entry_slots = _empty_slots(_slots_for(len(self.entries)))
            self.kernel.rebuild_entry_slots(self.entries, used, self.entry_slots)
        if not counters:
            return
        self.counters, self.counter_slots = self._room(
            self.counters, self.counter_slots, L.N_COUNTERS, rows,
            self.kernel.rebuild_counter_slots)
        self.effects, self.effect_slots = self._room(
            self.effects, self.effect_slots, L.N_EFFECTS, rows, self.kernel.rebuild_effect_slots)

    def _room(self, rows_array, slots, used_at: int, rows: int, rebuild):
        """``(rows_array, slots)`` with room for ``rows`` more rows, slots at most half full."""
        used = int(self.scalars[used_at])
        need = used + rows
        if need > len(rows_array):
            rows_array = _grown(rows_array, max(need, 2 * len(rows_array)), used)
        if 2 * need > len(slots):
            slots = np.full(_pow2_at_least(2 * max(need, len(rows_array))), -1, np.int32)
            rebuild(rows_array, used, slots)
        return rows_array, slots

    # -- the state folder's tables ----------------------------------------------------
    @classmethod
    def from_tables(cls, counters: pa.Table, index: pa.Table, latest: dt.date | None,
                    retention_days: int, kernel) -> CompactState:
        self = cls(retention_days, kernel)
        if latest is not None:
            self.scalars[L.LATEST] = day_number(latest)
        entry_cards = self._card_column(index.column("card"))
        counter_cards = self._card_column(counters.column("card"))

        n = index.num_rows
        self.entries = np.zeros(max(n, 16), L.ENTRY)
        e = self.entries[:n]
        e["key_hi"], e["key_lo"] = digest_words(index.column("txn"))
        e["card"] = entry_cards
        e["day"] = index.column("local_date").cast(pa.int32()).to_numpy(zero_copy_only=False)
        reversal = index.column("is_reversal").to_numpy(zero_copy_only=False)
        std = pc.fill_null(index.column("fee_standard"), 0).to_numpy(zero_copy_only=False)
        waived = pc.fill_null(index.column("fee_waived"), 0).to_numpy(zero_copy_only=False)
        slot = index.column("slot_waiver").is_valid().to_numpy(zero_copy_only=False)
        flags = (np.where(reversal, L.F_REVERSAL, 0)
                 | np.where(index.column("reversed").to_numpy(zero_copy_only=False),
                            L.F_REVERSED, 0)
                 | np.where(waived != 0, L.F_WAIVED, 0) | np.where(slot, L.F_SLOT, 0))
        e["flags"] = flags
        self._intern_effects(index, std, reversal)
        self.scalars[L.N_ENTRIES] = n

        m = counters.num_rows
        self.counters = np.zeros(max(m, 16), L.COUNTER)
        waiver = _codes(self.strings, counters.column("waiver_id"))
        if m and waiver.max() >= 2**16:
            raise ValueError("more than 65535 distinct strings before a waiver id")
        month = counters.column("month").to_numpy(zero_copy_only=False).astype(np.int64)
        month_index = (month // 100) * 12 + month % 100 - 1
        self.counters["key"][:m] = ((counter_cards.astype(np.uint64) << np.uint64(36))
                                    | (waiver.astype(np.uint64) << np.uint64(20))
                                    | month_index.astype(np.uint64))
        self.counters["used"][:m] = counters.column("used").to_numpy(zero_copy_only=False)
        self.scalars[L.N_COUNTERS] = m
        self.entry_slots = _empty_slots(0)
        self.counter_slots = np.full(0, -1, np.int32)
        self.reserve(0)
        return self

    def _intern_effects(self, index: pa.Table, std: np.ndarray, reversal: np.ndarray,
                        chunk: int = 1 << 20):
        """Each loaded entry's effect row (-1 for reversals), a chunk at a time."""
        discount = pc.fill_null(index.column("discount"), 0).to_numpy(zero_copy_only=False)
        # rule-set and rule ids first: they are 16-bit codes in an effect, and the many
        # "merchant:<id>" discount rules (32-bit) must not push them past 2**15
        codes = {name: _codes(self.strings, index.column(name))
                 for name in ("ruleset", "fee_rule", "waiver_rule", "discount_rule")}
        for name in ("ruleset", "fee_rule", "waiver_rule"):
            if len(codes[name]) and codes[name].max() >= 2**15:
                raise ValueError(f"more than 32767 distinct strings before a {name} id")
        for start in range(0, index.num_rows, chunk):
            part = slice(start, min(start + chunk, index.num_rows))
            rows = np.zeros(len(std[part]), L.EFFECT)
            rows["fee_standard"], rows["discount"] = std[part], discount[part]
            for name, values in codes.items():
                rows[name] = values[part]
            self.effects, self.effect_slots = self._room(
                self.effects, self.effect_slots, L.N_EFFECTS, len(rows),
                self.kernel.rebuild_effect_slots)
            out = np.empty(len(rows), np.int32)
            self.kernel.intern_effects(rows, self.effects, self.effect_slots, self.scalars, out)
            self.entries["effect"][part] = np.where(reversal[part], -1, out)

    def to_tables(self) -> tuple[pa.Table, pa.Table]:
        """``(counters, index)`` as the state folder stores them; entries outside the
        retention window are left out (they are invisible already)."""
        tables = list(self.index_tables())
        index = pa.concat_tables(tables) if tables else self._index_table(self.entries[:0])
        return self.counters_table(), index

    def index_tables(self, chunk: int = 1 << 18):
        """The index table in pieces of ``chunk`` entries (a state of tens of millions of
        entries is written without all of it in Arrow form at once)."""
        n = int(self.scalars[L.N_ENTRIES])
        latest = self.scalars[L.LATEST]
        for start in range(0, n, chunk):
            e = self.entries[start:start + chunk]
            if latest != L.NO_LATEST:
                e = e[latest - e["day"].astype(np.int64) <= self.retention_days]
            if len(e):
                yield self._index_table(e)

    def _index_table(self, e: np.ndarray) -> pa.Table:
        cards = self.cards[: self.n_cards]
        flags = e["flags"]
        reversal = (flags & L.F_REVERSAL) != 0
        slot = ((flags & L.F_SLOT) != 0) & ~reversal
        effect = self.effects[np.where(reversal, 0, e["effect"])]  # reversals: masked below
        std = effect["fee_standard"]
        waived = np.where((flags & L.F_WAIVED) != 0, std, 0)

        def money(values):
            return pa.array(values, pa.int64(), mask=reversal)

        def text(codes):
            return self.strings.decode(np.where(reversal, -1, codes))

        months = _months(e["day"])
        index = pa.table({
            "txn": digest_array(e["key_hi"], e["key_lo"]),
            "card": digest_array(cards["key_hi"][e["card"]], cards["key_lo"][e["card"]]),
            "local_date": pa.array(e["day"].astype(np.int32), pa.int32()).cast(pa.date32()),
            "is_reversal": pa.array(reversal),
            "reversed": pa.array((flags & L.F_REVERSED) != 0),
            "fee_standard": money(std), "fee_waived": money(waived),
            "fee_charged": money(std - waived), "discount": money(effect["discount"]),
            "fee_rule": text(effect["fee_rule"]), "waiver_rule": text(effect["waiver_rule"]),
            "discount_rule": text(effect["discount_rule"]), "ruleset": text(effect["ruleset"]),
            "slot_waiver": self.strings.decode(np.where(slot, effect["waiver_rule"], -1)),
            "slot_month": pa.array((months // 12) * 100 + months % 12 + 1, pa.int32(),
                                   mask=~slot),
        }, schema=schema.INDEX)
        return index

    def counters_table(self) -> pa.Table:
        cards = self.cards[: self.n_cards]
        c = self.counters[: int(self.scalars[L.N_COUNTERS])]
        key = c["key"]
        card = (key >> np.uint64(36)).astype(np.int64)
        month_index = (key & np.uint64(0xFFFFF)).astype(np.int64)
        counters = pa.table({
            "card": digest_array(cards["key_hi"][card], cards["key_lo"][card]),
            "waiver_id": self.strings.decode(((key >> np.uint64(20)) & np.uint64(0xFFFF))
                                             .astype(np.int64)),
            "month": pa.array((month_index // 12) * 100 + month_index % 12 + 1, pa.int32()),
            "used": pa.array(c["used"], pa.int32()),
        }, schema=schema.COUNTERS)
        return counters
