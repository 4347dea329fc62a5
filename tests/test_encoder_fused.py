"""The encoder's fused pass (``encode.pyx`` ``encode_rows``) against its pure-Python twin
and against the column-by-column path it replaced, on generated batches.

All three encode the same batch with engines of their own (so banks and cities are
interned afresh by each) and must give the same ``Encoded``: every per-row array,
clean or slow row alike, the stateless rejects and the number of slow rows.  The
batches reach what the per-row checks decide on: missing and null columns, empty and
odd text (unicode, near-miss vocabulary words, long ids), bad and good card numbers,
amounts at and past their bounds as integers and as text, and the odd column types
(dictionary, ``large_string``, integers) that some columns arrive in.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CIB_CARD, CMB_CARD, CMB_CARD2, QUANZHOU, STRANGER, XIAMEN, registry
from test_properties import BOOK
from txcore._fast import encode_py
from txcore.engine import encoder as encoder_module
from txcore.engine import make_engine
from txcore.engine.encoder import Encoded
from txcore.state.keys import Keyer
from txcore.state.memory import State
from txcore.vocab import BENEFITS, CHANNELS, FEE_ITEMS, INPUT_COLUMNS, KINDS, MAX_AMOUNT

encode_c = pytest.importorskip("txcore._fast.encode", reason="compiled extension not built")
KEY = b"fused-encoder-test-key-32-bytes!"
FIELDS = [f for f in Encoded.__dataclass_fields__ if f not in ("n", "rejects", "slow_rows")]


def _near_misses(words):
    return [w.upper() for w in words] + [w[:-1] for w in words] + [w + " " for w in words]


def _words(valid):
    """``(valid values, odd values)``: null, "", near misses or any text."""
    return st.sampled_from(valid), st.one_of(
        st.none(), st.just(""), st.sampled_from(_near_misses(valid)), st.text(max_size=12))


BAD_CARDS = [CMB_CARD[:-1] + str((int(CMB_CARD[-1]) + 1) % 10),  # Luhn fails
             CMB_CARD[:11], CMB_CARD + "0000", " " + CMB_CARD, CMB_CARD[:-1] + "٦",
             "0" * 12, "0" * 19, "0" * 20]
INT_AMOUNTS = st.one_of(st.integers(-5, 5), st.integers(0, 10**6),
                        st.sampled_from([MAX_AMOUNT - 1, MAX_AMOUNT, MAX_AMOUNT + 1,
                                         -MAX_AMOUNT, 2**63 - 1, -2**63]))
TEXT_AMOUNTS = st.one_of(INT_AMOUNTS.map(str),
                         st.sampled_from(["+5", "-0", "007", "1e3", "1.0", " 5", "٣",
                                          "9" * 18, "9" * 19, "-" + "9" * 18, "+", "-", ""]),
                         st.text(max_size=6))
#: per column: (a value a clean row may have, any other value)
VALUES = {
    "txn_id": (st.text("abcXYZ0189-_", min_size=1, max_size=20)
               | st.sampled_from(["x" * 64, "é" * 32]),
               st.sampled_from([None, "", "x" * 65, "é" * 33]) | st.text(min_size=60)),
    "card_no": (st.sampled_from([CMB_CARD, CMB_CARD2, CIB_CARD, STRANGER]),
                st.sampled_from(BAD_CARDS + [None]) | st.text(max_size=20)),
    "ts": (st.datetimes(dt.datetime(2013, 9, 1), dt.datetime(2014, 3, 1)).map(
        lambda t: t.isoformat(sep=" " if t.second % 2 else "T")) | st.sampled_from(
        ["2013-10-15T10:00:00+08:00", "2013-10-15 10:00:00Z"]),
        st.sampled_from(["2013-10-15", "2013-02-29T00:00:00", "bad", "", None])),
    "kind": _words(list(KINDS)),
    "channel": _words(list(CHANNELS)),
    "amount": (st.integers(0, 10**6), INT_AMOUNTS | st.none()),
    "currency": _words(["CNY"]),
    "acq_bank": _words(["CMB", "CIB", "ABC12345"]),
    "city": _words([QUANZHOU, XIAMEN]),
    "merchant_id": _words(["QZ1", "QZ2", "QZ3"]),
    "mcc": (st.sampled_from(["5411", "0000", "9999"]),
            st.sampled_from(["541", "54111", "54a1", "٥٤١١", "", None])),
    "fee_item": _words(list(FEE_ITEMS)),
    "benefit": _words(list(BENEFITS)),
}
VALUES["orig_txn_id"] = VALUES["txn_id"]


#: the types a text column may arrive in; the fused pass takes plain ``string`` and
#: ``dictionary<int32, string>`` (a Parquet input's low-cardinality columns, io.textdict):
#: nulls as null indices or as a null entry of the dictionary, and dictionaries with
#: entries no row uses, sliced so that the dictionary array has an offset of its own
#: (``string_view`` is left out: ``RecordBatch.take`` of the slow path has no kernel for it)
TEXT_TYPES = ["string"] * 6 + ["large_string", "dictionary", "dictionary_nulls",
                               "dictionary_sliced", "dictionary_int8"]


def _array(values, type_name):
    arr = pa.array(values, pa.string())
    if type_name == "large_string":
        return arr.cast(pa.large_string())
    if type_name == "dictionary":
        return arr.dictionary_encode()
    if type_name == "dictionary_nulls":
        return pc.dictionary_encode(arr, null_encoding="encode")
    if type_name == "dictionary_sliced":  # two unused entries first, the dictionary sliced
        plain = arr.dictionary_encode()
        entries = pa.concat_arrays([pa.array(["unused", None, "x"], pa.string()),
                                    plain.dictionary])
        indices = pc.add(plain.indices, pa.scalar(2, pa.int32()))
        return pa.DictionaryArray.from_arrays(indices, entries.slice(1))
    if type_name == "dictionary_int8":  # not int32 indices: decoded, the column path's way
        return arr.dictionary_encode().cast(pa.dictionary(pa.int8(), pa.string()))
    return arr


@st.composite
def batches(draw):
    n = draw(st.integers(0, 40))
    lead = draw(st.integers(0, 3))  # rows sliced off the front: arrays with an offset
    names, arrays = [], []
    for name in INPUT_COLUMNS:
        # percent of odd values, per column: a batch has clean rows, and rows that only
        # one or two of their columns make slow
        odd = draw(st.sampled_from([0, 0, 0, 0, 5, 50]))
        if odd and draw(st.integers(0, 7)) == 0:
            continue  # the column is missing
        valid, other = VALUES[name]
        values = [draw(other if draw(st.integers(0, 99)) < odd else valid)
                  for _ in range(n + lead)]
        if rows_of_text_amounts := name == "amount" and draw(st.booleans()):
            values = [draw(TEXT_AMOUNTS) if v is not None and draw(st.integers(0, 99)) < odd
                      else None if v is None else str(v) for v in values]
        if name == "amount" and not rows_of_text_amounts:
            typed = draw(st.sampled_from(["int64", "int32"]))
            if typed == "int32":
                values = [v if v is None or -2**31 <= v < 2**31 else None for v in values]
            arr = pa.array(values, pa.int64() if typed == "int64" else pa.int32())
        elif name == "card_no" and draw(st.integers(0, 9)) == 0:
            arr = pa.array([int(v) if v and v.isascii() and v.isdigit() and int(v) < 2**63
                            else None for v in values], pa.int64())  # numbers as integers
        elif name != "ts" and draw(st.integers(0, 3)) == 0:
            arr = _array(values, draw(st.sampled_from(TEXT_TYPES)))
        else:
            arr = pa.array(values, pa.string())
        names.append(name)
        arrays.append(arr)
    if not names:
        return pa.RecordBatch.from_pydict({})
    return pa.RecordBatch.from_arrays(arrays, names).slice(lead)


def _encode(batches, fused, twin):
    """Each batch encoded in turn by one new engine's encoder: ``([Encoded], encoder)``."""
    encoder = make_engine("cython", BOOK, registry(), State(keyer=Keyer(KEY))).encoder
    encoder.fused = fused
    with pytest.MonkeyPatch.context() as mp:
        if twin:
            mp.setattr(encoder_module, "_enc", encode_py)
        return [encoder.encode(b) for b in batches], encoder


def _assert_same(got, want):
    """Every array, the rejects and the banks and cities interned, in the same order."""
    (encs_a, ea), (encs_b, eb) = got, want
    for a, b in zip(encs_a, encs_b, strict=True):
        for name in FIELDS:
            x, y = getattr(a, name), getattr(b, name)
            assert x.dtype == y.dtype and x.shape == y.shape, name
            assert np.array_equal(x, y), name
        assert a.n == b.n and a.slow_rows == b.slow_rows
        assert a.rejects == b.rejects
    assert ea.banks.values == eb.banks.values and ea.cities.values == eb.cities.values


def test_the_fused_pass_encodes_as_its_twin_and_as_the_columns():
    clean = []

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(first=batches(), second=batches())
    def check(first, second):
        # two batches: the second meets banks and cities the first interned
        fused = _encode([first, second], True, False)
        _assert_same(fused, _encode([first, second], True, True))    # the pure-Python twin
        _assert_same(fused, _encode([first, second], False, False))  # the column path
        clean.extend(e.n - e.slow_rows for e in fused[0])

    check()
    # the batches reached rows the encoder calls clean, not only slow ones
    assert sum(clean) > 2 * len(clean)


def test_the_fused_pass_is_taken_for_plain_string_columns(monkeypatch):
    """A batch of plain string columns goes through ``encode_rows`` (the test above would
    pass vacuously if every batch took the column path)."""
    calls = []
    real = encoder_module._enc.encode_rows
    monkeypatch.setattr(encoder_module._enc, "encode_rows",
                        lambda *a: calls.append(1) or real(*a))
    row = {"txn_id": "T1", "card_no": CMB_CARD, "ts": "2013-10-15T10:00:00", "kind": "purchase",
           "channel": "pos", "amount": "100", "currency": "CNY", "merchant_id": "QZ1",
           "mcc": "5411"}
    batch = pa.RecordBatch.from_pydict({k: pa.array([v], pa.string()) for k, v in row.items()})
    (enc,), _ = _encode([batch], True, False)
    assert calls == [1]
    assert enc.slow_rows == 0 and enc.amount.tolist() == [100] and enc.mcc.tolist() == [5411]


def test_the_fused_pass_reads_dictionary_columns_without_decoding_them(monkeypatch):
    """Low-cardinality columns read as dictionaries (io.textdict) go through
    ``encode_rows`` as dictionaries: nothing decodes them first."""
    calls = []
    real = encoder_module._enc.encode_rows
    monkeypatch.setattr(encoder_module._enc, "encode_rows",
                        lambda texts, *a: calls.append([len(t) for t in texts if t is not None])
                        or real(texts, *a))
    monkeypatch.setattr(encoder_module, "_decoded",
                        lambda arr: pytest.fail("a dictionary column was decoded"))
    row = {"txn_id": "T1", "card_no": CMB_CARD, "ts": "2013-10-15T10:00:00", "kind": "purchase",
           "channel": "pos", "amount": "100", "currency": "CNY", "merchant_id": "QZ1",
           "mcc": "5411"}
    batch = pa.RecordBatch.from_pydict(
        {k: pa.array([v, v], pa.string()).dictionary_encode()
         if k in ("kind", "channel", "currency", "mcc") else pa.array([v, v], pa.string())
         for k, v in row.items()})
    (enc,), _ = _encode([batch], True, False)
    assert sorted(calls[0]) == [4] * 4 + [7] * 4  # 4 plain (amount too), 4 dictionaries
    assert enc.slow_rows == 0 and enc.mcc.tolist() == [5411, 5411]


def test_the_twins_name_the_same_columns_and_rules():
    for name in ("FUSED_TEXT", "FUSED_WORDS", "FUSED_TABLES", "NOT_IN_TABLE", "R_COUNTERPARTY",
                 "R_FEE_ITEM", "R_MERCHANT", "R_BENEFIT", "R_REVERSAL"):
        assert getattr(encode_c, name) == getattr(encode_py, name), name
