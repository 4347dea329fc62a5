"""Encode a record batch for the pricing kernel: columns to integer arrays, once per batch.

This is the vectorised twin of :func:`txcore.engine.validate.validate_batch`.  The
text columns of a batch are read in one compiled pass over the rows
(``encode_rows`` in ``txcore/_fast/encode.pyx``): keyed digests of the ids, the
card check, the codes of the small vocabularies, mcc and amount, and the row's
stateless checks.  Banks and cities (interned per distinct value) and merchants
(a large vocabulary) are coded by Arrow, column by column; timestamps are parsed
over the Arrow buffers and local days computed by numpy over zone tables.  A
column of an odd type (``large_string``) sends the batch down the column-by-column
path, which the fused pass is tested against.  A row that passes every stateless
check of docs/pricing.md#settled-edge-cases in its plainest form is *clean*.

A row that is not clean (a missing or bad value, unusual text, a naive time
next to a daylight-saving change...) is handed to the reference validator, the
spec in code, which rejects it with the right reason or accepts it; an
accepted one is encoded value by value.  So the encoder never has to reproduce
the order of the checks or the wording of a reject; it only has to be sure of
the rows it calls clean, and ``tests/test_differential.py`` checks that.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from txcore import cardno

from txcore._fast import layout as L

from txcore.engine import zones
from txcore._fast import compiled_or_twin
from txcore._fast.buffers import string_buffers, text_buffers
from txcore._fast.layout import Strings
from txcore.engine.flatrules import FlatBook
from txcore.io.textdict import DICTIONARY_TYPE
from txcore.timeconv import day_number, utc_micros
from txcore.state.keys import Keyer
from txcore.engine.validate import Reject, TimeCheck, Txn, validate_batch
from txcore.vocab import BANK_RE, BENEFITS, CHANNELS_BY_KIND, CITY_RE, MAX_AMOUNT

_enc = compiled_or_twin("encode")

_NAIVE, _AWARE = 1, 2
#: unit -> (mul, div): microseconds = value * mul // div (floor, as the reference)
_PER_US = {"s": (10**6, 1), "ms": (1000, 1), "us": (1, 1), "ns": (1, 1000)}
_COUNTERPARTY = np.zeros(6, bool)
_COUNTERPARTY[[L.WITHDRAWAL, L.TRANSFER]] = True
#: smallest amount per kind code (reversal: not checked)
_MIN_AMOUNT = np.array([1, 1, 1, 1, 0, 0], np.int64)
#: channel allowed for kind code [kind, channel code]; kinds without a list allow anything
_CHANNEL_OK = np.ones((6, L.OTHER_CHANNEL + 1), bool)
for _kind, _allowed in CHANNELS_BY_KIND.items():
    _CHANNEL_OK[L.KIND_CODES[_kind]] = False
    for _ch in _allowed:
        _CHANNEL_OK[L.KIND_CODES[_kind], L.CHANNEL_CODES[_ch]] = True


@dataclass
class Encoded:
    """One batch as the kernel's per-row arrays (see ``kernel.pyx`` ``price_rows``)."""

    n: int
    pre: np.ndarray            # int8: 0 = to price, 1 = rejected by the stateless checks
    card_hi: np.ndarray
    card_lo: np.ndarray
    txn_hi: np.ndarray
    txn_lo: np.ndarray
    orig_hi: np.ndarray
    orig_lo: np.ndarray
    day: np.ndarray            # int32 [zone, row]
    inst: np.ndarray           # int64 [zone, row]
    kind: np.ndarray
    channel: np.ndarray
    fee_item: np.ndarray
    mcc: np.ndarray
    bank: np.ndarray
    city: np.ndarray
    merchant: np.ndarray
    amount: np.ndarray
    amount_ok: np.ndarray      # bool: amount is not null on the priced row
    rejects: dict = field(default_factory=dict)   # row -> Reject (stateless checks)
    slow_rows: int = 0         # rows that took the reference validator


def text_column(batch: pa.RecordBatch, name: str, dictionary: bool = False):
    """``(array, plain)``: the column as a string array (with ``dictionary``, a
    ``dictionary<int32, string>`` column as it is), or None when absent; ``plain``
    is False when its type is not text or integer (every row then takes the slow path)."""
    if name not in batch.schema.names:
        return None, True
    col = batch.column(name)
    if dictionary and col.type == DICTIONARY_TYPE:
        return col, True
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return col, True
    if pa.types.is_string_view(col.type) or pa.types.is_integer(col.type):
        return col.cast(pa.string()), True
    if pa.types.is_null(col.type):
        return pa.nulls(len(col), pa.string()), True
    return None, False


def _decoded(arr):
    """A dictionary column as plain text (None stays None)."""
    return arr.dictionary_decode() if arr is not None and pa.types.is_dictionary(arr.type) \
        else arr


def _map_values(arr, n: int, fn, dtype, none) -> np.ndarray:
    """``fn(value)`` for every row, computed once per distinct value; null and ""
    give ``none``."""
    if arr is None:
        return np.full(n, none, dtype)
    encoded = pc.dictionary_encode(arr)
    lookup = np.array([none if not v else fn(v) for v in encoded.dictionary.to_pylist()]
                      + [none], dtype)
    idx = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
    return lookup[idx]


def _hashed_codes(arr, n: int, vocab: dict, other: int, none: int) -> np.ndarray:
    """Codes over a large fixed vocabulary (partner merchants), by Arrow's hash lookup:
    ``other`` for any other text, ``none`` for null or ""."""
    if arr is None:
        return np.full(n, none, np.int32)
    out = np.full(n, other, np.int32)
    if vocab:
        values = pa.array(list(vocab), pa.string())
        codes = np.array(list(vocab.values()), np.int32)
        idx = pc.fill_null(pc.index_in(arr, value_set=values), -1).to_numpy(
            zero_copy_only=False)
        out = np.where(idx >= 0, codes[np.maximum(idx, 0)], other).astype(np.int32)
    empty = pc.fill_null(pc.equal(arr, ""), True).to_numpy(zero_copy_only=False)
    out[empty] = none
    return out


class Vocabulary:
    """A small fixed vocabulary (text -> code) in the form ``encode.match_words``
    compares byte by byte (a handful of words: cheaper than hashing)."""

    def __init__(self, vocab: dict):
        raw = [w.encode("utf-8") for w in vocab]
        self.word_offsets = np.cumsum([0] + [len(w) for w in raw]).astype(np.int32)
        self.words = np.frombuffer(b"".join(raw) or b"\0", np.uint8)
        self.codes = np.array(list(vocab.values()) or [], np.int32)
        self.table = (self.word_offsets, self.words, self.codes)  # as ``encode_rows`` takes it

    def codes_of(self, arr, n: int, other: int, none: int) -> np.ndarray:
        """Codes of a column: ``other`` for any other text, ``none`` for null or ""."""
        out = np.full(n, none, np.int32)
        if arr is not None and n:
            _enc.match_words(*string_buffers(arr), self.word_offsets, self.words, self.codes, other,
                             none, out)
        return out


_KINDS = Vocabulary(L.KIND_CODES)
_CHANNELS = Vocabulary(L.CHANNEL_CODES)
_FEE_ITEMS = Vocabulary(L.FEE_ITEM_CODES)
_CURRENCY = Vocabulary({"CNY": 1})
_BENEFITS = Vocabulary(dict.fromkeys(BENEFITS, 1))


def hash_column(arr, n: int, keyer: Keyer):
    """``(hi, lo, length)``: the keyed digest words and the UTF-8 length (-1: null) of each
    of ``n`` values of a plain string column (``arr`` None: all null)."""
    hi, lo = np.zeros(n, np.uint64), np.zeros(n, np.uint64)
    length = np.full(n, -1, np.int32)
    if arr is not None and n:
        _enc.hash_strings(*string_buffers(arr), keyer.k0, keyer.k1, hi, lo, length)
    return hi, lo, length


def _amount_column(batch: pa.RecordBatch):
    """The amount column, dictionary decoded and string views cast to ``string``; None
    when absent."""
    if "amount" not in batch.schema.names:
        return None
    col = batch.column("amount")
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if pa.types.is_string_view(col.type):
        col = col.cast(pa.string())
    return col


#: ``encode_rows``'s vocabularies (``FUSED_WORDS``) and what each kind needs to be clean
_FUSED_WORDS = [v.table for v in (_KINDS, _CHANNELS, _FEE_ITEMS, _CURRENCY, _BENEFITS)]
_KIND_RULES = np.zeros(6, np.uint8)
_KIND_RULES[_COUNTERPARTY] |= _enc.R_COUNTERPARTY
_KIND_RULES[L.SERVICE] |= _enc.R_FEE_ITEM
_KIND_RULES[L.PURCHASE] |= _enc.R_MERCHANT
_KIND_RULES[L.DISBURSEMENT] |= _enc.R_BENEFIT
_KIND_RULES[L.REVERSAL_KIND] |= _enc.R_REVERSAL


class Encoder:
    """Encodes batches for one engine: holds the key, the zones and the code tables."""

    def __init__(self, flat: FlatBook, keyer: Keyer, banks: Strings, cities: Strings,
                 times: TimeCheck):
        self.flat, self.keyer, self.banks, self.cities = flat, keyer, banks, cities
        self.zones = flat.zones
        self.times = times
        #: False: the column-by-column path for every batch (tests compare the two)
        self.fused = True
        self.merchants = Vocabulary(flat.merchant_codes)
        self._tables: dict = {}  # id(Strings) -> (its size, its well-formed values)
        #: a row whose local day in any zone is after this is left to the reference,
        #: which rejects it as lying in the future when it does in the zone in force
        self.last_day = np.iinfo(np.int32).max if times.business_date is None \
            else day_number(times.business_date) + 1

    # -- codes of one value (shared by the column path and the slow path) ---------------
    def _bank(self, v):
        return self.banks.code(v) if BANK_RE.fullmatch(v) else -1

    def _city(self, v):
        return self.cities.code(v) if CITY_RE.fullmatch(v) else -1

    @staticmethod
    def _mccs(arr, n):
        """The 4-digit number of each mcc; -1 none, -2 present but malformed."""
        out = np.full(n, -1, np.int16)
        if arr is not None and n:
            _enc.parse_mccs(*string_buffers(arr), out)
        return out

    def hash_column(self, arr, n):
        return hash_column(arr, n, self.keyer)

    # -- the batch ----------------------------------------------------------------------
    def encode(self, batch: pa.RecordBatch) -> Encoded:
        n = batch.num_rows
        slow = np.zeros(n, bool)
        text = {}
        for name in ("txn_id", "card_no", "kind", "channel", "currency", "acq_bank", "city",
                     "merchant_id", "mcc", "fee_item", "benefit", "orig_txn_id"):
            text[name], plain = text_column(batch, name, dictionary=self.fused)
            if not plain:
                slow[:] = True
        if self.fused and all(a is None or a.type in (pa.string(), DICTIONARY_TYPE)
                              for a in text.values()):
            cols = self._fused(batch, text, n, slow)
        else:
            cols = self._columns(batch, {k: _decoded(a) for k, a in text.items()}, n, slow)
        day, inst = self._times(batch, n, slow)

        enc = Encoded(n, np.zeros(n, np.int8), day=day, inst=inst, **cols)
        rows = np.flatnonzero(slow)
        if len(rows):
            self._slow_path(batch, rows, enc)
        return enc

    def _fused(self, batch, text, n, slow) -> dict:
        """The per-row text work in one compiled pass over the rows (``encode_rows``): every
        text column a plain ``string`` array (or absent)."""
        cols = {name: np.zeros(n, np.uint64) for name in
                ("card_hi", "card_lo", "txn_hi", "txn_lo", "orig_hi", "orig_lo")}
        cols.update(kind=np.zeros(n, np.int8), channel=np.zeros(n, np.int8),
                    fee_item=np.zeros(n, np.int8), mcc=np.zeros(n, np.int16),
                    bank=np.full(n, -1, np.int32), city=np.full(n, -1, np.int32),
                    merchant=np.full(n, -1, np.int32))
        amount_text = _amount_column(batch)
        parse_amount = amount_text is not None and amount_text.type == pa.string()
        if parse_amount:
            amount, amount_ok = np.zeros(n, np.int64), np.zeros(n, bool)
        else:
            amount, amount_ok = self._amounts(batch, n, slow)
        if n:
            texts = [string_buffers(amount_text) if name == "amount" and parse_amount
                     else None if text.get(name) is None else text_buffers(text[name])
                     for name in _enc.FUSED_TEXT]
            tables = [self._interned(self.banks, BANK_RE).table,
                      self._interned(self.cities, CITY_RE).table, self.merchants.table]
            _enc.encode_rows(texts, _FUSED_WORDS, tables, self.keyer.k0, self.keyer.k1,
                             _KIND_RULES, _CHANNEL_OK.view(np.uint8), _MIN_AMOUNT, MAX_AMOUNT,
                             parse_amount, cols["bank"], cols["city"], cols["merchant"],
                             cols["txn_hi"], cols["txn_lo"], cols["orig_hi"], cols["orig_lo"],
                             cols["card_hi"], cols["card_lo"], cols["kind"], cols["channel"],
                             cols["fee_item"], cols["mcc"], amount, amount_ok.view(np.uint8),
                             slow.view(np.uint8), L.OTHER_CHANNEL, L.OTHER_FEE_ITEM)
            # banks and cities not interned yet (or malformed): coded and interned here,
            # in the order they first appear, as the column path does
            missed = np.zeros(n, bool)
            for column, name, fn in (("bank", "acq_bank", self._bank),
                                     ("city", "city", self._city)):
                rows = np.flatnonzero(cols[column] == _enc.NOT_IN_TABLE)
                if len(rows):
                    cols[column][rows] = _map_values(_decoded(text[name].take(pa.array(rows))),
                                                     len(rows), fn, np.int32, -1)
                    missed[rows] = True
            if missed.any():
                k = np.maximum(cols["kind"], 0)
                slow |= missed & _COUNTERPARTY[k] & ((cols["bank"] < 0) | (cols["city"] < 0))
        cols.update(amount=amount, amount_ok=amount_ok)
        return cols

    def _interned(self, strings: Strings, shape) -> "Vocabulary":
        """The well-formed values interned so far in ``strings``, as a vocabulary (made
        again when ``strings`` has grown)."""
        cached = self._tables.get(id(strings))
        if cached is None or cached[0] != len(strings.values):
            vocab = {v: c for v, c in strings.codes.items() if shape.fullmatch(v)}
            cached = self._tables[id(strings)] = (len(strings.values), Vocabulary(vocab))
        return cached[1]

    def _columns(self, batch, text, n, slow) -> dict:
        """The same, column by column: for odd column types (``large_string``), and the
        statement the fused pass is tested against (``tests/test_encoder_fused.py``)."""
        # codes interned per distinct value (banks, cities) or looked up in a large
        # vocabulary (merchants), by Arrow
        bank = _map_values(text["acq_bank"], n, self._bank, np.int32, -1)
        city = _map_values(text["city"], n, self._city, np.int32, -1)
        merchant = _hashed_codes(text["merchant_id"], n, self.flat.merchant_codes, -1, -2)
        kind = _KINDS.codes_of(text["kind"], n, -1, -1).astype(np.int8)
        slow |= kind < 0
        k = np.where(kind < 0, 0, kind)
        channel = _CHANNELS.codes_of(text["channel"], n, L.OTHER_CHANNEL, 0).astype(np.int8)
        slow |= ~_CHANNEL_OK[k, channel]
        fee_item = _FEE_ITEMS.codes_of(text["fee_item"], n, L.OTHER_FEE_ITEM, 0).astype(np.int8)
        slow |= (kind == L.SERVICE) & ((fee_item == 0) | (fee_item == L.OTHER_FEE_ITEM))
        slow |= _CURRENCY.codes_of(text["currency"], n, 0, 1) == 0  # only CNY, or empty
        slow |= _COUNTERPARTY[k] & ((bank < 0) | (city < 0))
        slow |= (kind == L.PURCHASE) & (merchant == -2)
        np.maximum(merchant, -1, out=merchant)
        mcc = self._mccs(text["mcc"], n)
        slow |= mcc == -2
        benefit = _BENEFITS.codes_of(text["benefit"], n, 0, 1)
        slow |= (kind == L.DISBURSEMENT) & (benefit == 0)

        txn_hi, txn_lo, txn_len = self.hash_column(text["txn_id"], n)
        slow |= (txn_len <= 0) | (txn_len > 64)
        orig_hi, orig_lo, orig_len = self.hash_column(text["orig_txn_id"], n)
        slow |= (kind == L.REVERSAL_KIND) & ((orig_len <= 0) | (orig_len > 64))
        card_hi, card_lo, _ = self.hash_column(text["card_no"], n)
        if text["card_no"] is not None:
            slow |= ~cardno.check_column(text["card_no"])
        else:
            slow[:] = True

        amount, amount_ok = self._amounts(batch, n, slow)
        slow |= (kind != L.REVERSAL_KIND) & (~amount_ok | (amount > MAX_AMOUNT)
                                             | (amount < _MIN_AMOUNT[k]))
        slow |= (kind == L.REVERSAL_KIND) & ~amount_ok  # let the reference read it
        return dict(card_hi=card_hi, card_lo=card_lo, txn_hi=txn_hi, txn_lo=txn_lo,
                    orig_hi=orig_hi, orig_lo=orig_lo, kind=kind, channel=channel,
                    fee_item=fee_item, mcc=mcc, bank=bank, city=city, merchant=merchant,
                    amount=amount, amount_ok=amount_ok)

    def _amounts(self, batch, n, slow):
        col = _amount_column(batch)
        if col is None:
            return np.zeros(n, np.int64), np.zeros(n, bool)
        if pa.types.is_integer(col.type):
            try:
                ints = col.cast(pa.int64())
            except pa.ArrowInvalid:
                slow[:] = True
                return np.zeros(n, np.int64), np.zeros(n, bool)
            ok = ints.is_valid().to_numpy(zero_copy_only=False)
            return pc.fill_null(ints, 0).to_numpy(zero_copy_only=False).astype(np.int64), ok
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            value, status = np.zeros(n, np.int64), np.zeros(n, np.int8)
            if n:
                _enc.parse_integers(*string_buffers(col), value, status)
            return value, status == 1
        slow[:] = True
        return np.zeros(n, np.int64), np.zeros(n, bool)

    def _times(self, batch, n, slow):
        """``(day, inst)`` [zone, row]: local day and instant as each zone sees the row."""
        nz = len(self.zones)
        day, inst = np.zeros((nz, n), np.int32), np.zeros((nz, n), np.int64)
        if "ts" not in batch.schema.names:
            slow[:] = True
            return day, inst
        col = batch.column("ts")
        if pa.types.is_dictionary(col.type):
            col = col.dictionary_decode()
        if pa.types.is_timestamp(col.type):
            raw = col.cast(pa.int64())
            ok = raw.is_valid().to_numpy(zero_copy_only=False)
            v = pc.fill_null(raw, 0).to_numpy(zero_copy_only=False).astype(np.int64)
            mul, div = _PER_US[col.type.unit]
            ok &= (v > zones.LO_US * div // mul) & (v < zones.HI_US * div // mul)
            us = np.where(ok, v, 0) * mul // div
            status = np.where(ok, _AWARE if col.type.tz is not None else _NAIVE, 0)
        elif pa.types.is_string(col.type) or pa.types.is_large_string(col.type) \
                or pa.types.is_string_view(col.type):
            if pa.types.is_string_view(col.type):
                col = col.cast(pa.string())
            wall, off = np.zeros(n, np.int64), np.zeros(n, np.int32)
            status = np.zeros(n, np.int8)
            if n:
                _enc.parse_timestamps(*string_buffers(col), wall, off, status)
            us = wall - off.astype(np.int64) * zones.US
        else:
            slow[:] = True
            return day, inst
        status = np.where((us > zones.LO_US) & (us < zones.HI_US), status, 0)
        aware, naive = status == _AWARE, status == _NAIVE
        slow |= status == 0
        wall_day = (us // zones.DAY_US).astype(np.int32)
        # a zone's wall-time lookup only where some time is naive, its day lookup only
        # where some is aware (a Parquet input's times are all aware: half the work);
        # a row neither is slow, and the reference path sets its day and instant
        any_naive, any_aware = naive.any(), aware.any()
        for z, table in enumerate(self.zones):
            if any_naive:
                from_wall, ok = table.from_wall(us)
                slow |= naive & ~ok
                inst[z] = np.where(aware, us, from_wall)
            else:
                inst[z] = us
            day[z] = np.where(aware, table.local_day(us), wall_day) if any_aware else wall_day
            slow |= day[z] > self.last_day
        return day, inst

    # -- rows the reference validator decides --------------------------------------------
    def _slow_path(self, batch, rows, enc: Encoded):
        enc.slow_rows = len(rows)
        outcomes = validate_batch(batch.take(pa.array(rows, pa.int64())), self.times)
        for i, outcome in zip(rows.tolist(), outcomes):
            if isinstance(outcome, Reject):
                enc.pre[i] = 1
                enc.rejects[i] = outcome
            else:
                self._encode_txn(i, outcome, enc)

    def _encode_txn(self, i: int, t: Txn, enc: Encoded):
        enc.card_hi[i], enc.card_lo[i] = self.keyer.words(t.card_no)
        enc.txn_hi[i], enc.txn_lo[i] = self.keyer.words(t.txn_id)
        if t.orig_txn_id is not None:
            enc.orig_hi[i], enc.orig_lo[i] = self.keyer.words(t.orig_txn_id)
        for z, name in enumerate(self.flat.zone_names):
            zone = zones.zone(name)
            if t.ts.tzinfo is None:
                enc.day[z, i] = day_number(t.ts.date())
                enc.inst[z, i] = utc_micros(t.ts.replace(tzinfo=zone))
            else:
                enc.day[z, i] = day_number(t.ts.astimezone(zone).date())
                enc.inst[z, i] = utc_micros(t.ts)
        enc.kind[i] = L.KIND_CODES[t.kind]
        enc.channel[i] = 0 if t.channel is None else L.CHANNEL_CODES.get(t.channel,
                                                                         L.OTHER_CHANNEL)
        enc.fee_item[i] = 0 if t.fee_item is None else L.FEE_ITEM_CODES.get(t.fee_item,
                                                                          L.OTHER_FEE_ITEM)
        enc.mcc[i] = -1 if t.mcc is None else int(t.mcc)
        enc.bank[i] = -1 if t.acq_bank is None else self._bank(t.acq_bank)
        enc.city[i] = -1 if t.city is None else self._city(t.city)
        enc.merchant[i] = self.flat.merchant_codes.get(t.merchant_id, -1)
        enc.amount_ok[i] = t.amount is not None
        enc.amount[i] = 0 if t.amount is None else t.amount

