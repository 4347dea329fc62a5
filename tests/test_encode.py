"""The column encoders: compiled ``encode.pyx`` against its pure-Python twin, and both
against the reference's own parsers (``txcore.engine.validate``)."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from txcore import timeconv
from txcore._fast import encode_py
from txcore._fast.buffers import string_buffers as _buffers
from txcore.engine.validate import parse_ts

encode_c = pytest.importorskip("txcore._fast.encode", reason="compiled extension not built")
IMPLS = [pytest.param(encode_c, id="c-extension-module"),
         pytest.param(encode_py, id="pure-python-module")]
EPOCH = timeconv.EPOCH.replace(tzinfo=None)


def test_the_compiled_module_is_the_compiled_one():
    assert encode_c.CYTHON_MODULE == 1 and encode_py.CYTHON_MODULE == 0


@pytest.mark.parametrize("impl", IMPLS)
def test_siphash128_reference_vector(impl):
    """SipHash-2-4-128 of the empty message under key 00..0f (the authors' test vectors)."""
    k0 = int.from_bytes(bytes(range(8)), "little")
    k1 = int.from_bytes(bytes(range(8, 16)), "little")
    hi, lo = impl.siphash128(b"", k0, k1)
    assert (hi.to_bytes(8, "little") + lo.to_bytes(8, "little")).hex() == \
        "a3817f04ba25a8e66df67214c7550293"
    hi, lo = impl.siphash128(bytes(range(15)), k0, k1)
    assert (hi.to_bytes(8, "little") + lo.to_bytes(8, "little")).hex() == \
        "5493e99933b0a8117e08ec0f97cfc3d9"


def _column(values, large, offset):
    arr = pa.array([None] * offset + values, pa.large_string() if large else pa.string())
    return arr.slice(offset)


TEXT = st.lists(st.one_of(st.none(), st.text(max_size=40)), max_size=30)


@settings(max_examples=200, deadline=None)
@given(values=TEXT, large=st.booleans(), offset=st.integers(0, 3),
       k0=st.integers(0, 2**64 - 1), k1=st.integers(0, 2**64 - 1))
def test_hash_strings_twins_agree(values, large, offset, k0, k1):
    arr = _column(values, large, offset)
    out = []
    for impl in (encode_c, encode_py):
        n = len(values)
        hi, lo, length = np.zeros(n, np.uint64), np.zeros(n, np.uint64), np.zeros(n, np.int32)
        if n:
            impl.hash_strings(*_buffers(arr), k0, k1, hi, lo, length)
        out.append((hi.tolist(), lo.tolist(), length.tolist()))
    assert out[0] == out[1]
    for v, h, lo_, n in zip(values, *out[0]):
        assert n == (-1 if v is None else len(v.encode("utf-8", "surrogatepass")))
        if v is not None:
            assert (h, lo_) == encode_py.siphash128(v.encode("utf-8", "surrogatepass"), k0, k1)


def _ts_text():
    digits = st.text("0123456789", min_size=1, max_size=4)
    plain = st.builds(lambda d, sep, t, frac, off: f"{d}{sep}{t}{frac}{off}",
                      st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(str),
                      st.sampled_from(["T", " ", "t", "_"]),
                      st.times().map(lambda t: t.strftime("%H:%M:%S")) | st.sampled_from(
                          ["23:59", "24:00:00", "12:60:00", "12:00:60", "1:00:00"]),
                      st.sampled_from(["", ".5", ",123456", ".123456789", ".1234567890", "."]),
                      st.sampled_from(["", "Z", "+08:00", "-05:30", "+23:59", "+24:00",
                                       "-00:60", "+0800", "z"]))
    return st.one_of(plain, st.text(max_size=30), digits,
                     st.sampled_from(["2013-02-29T00:00:00", "2012-02-29T00:00:00",
                                      "2013-10-15", "٢٠١٣-10-15T10:00:00",
                                      "0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-12:00"]))


@settings(max_examples=400, deadline=None)
@given(values=st.lists(st.one_of(st.none(), _ts_text()), max_size=20), offset=st.integers(0, 2))
def test_parse_timestamps_twins_agree_and_match_the_reference(values, offset):
    arr = _column(values, False, offset)
    n = len(values)
    out = []
    for impl in (encode_c, encode_py):
        wall, off, status = np.zeros(n, np.int64), np.zeros(n, np.int32), np.zeros(n, np.int8)
        if n:
            impl.parse_timestamps(*_buffers(arr), wall, off, status)
        out.append((wall.tolist(), off.tolist(), status.tolist()))
    assert out[0] == out[1]
    for v, wall, off, status in zip(values, *out[0]):
        if status == 0:
            continue  # left to the reference validator, which decides
        ref = parse_ts(v)  # what the reference makes of it must be the same instant
        assert ref is not None, v
        assert (ref.tzinfo is None) == (status == 1), v
        # the instant in microseconds, counted from the wall time so that an instant just
        # before year 1 (0001-01-01T00:00+00:01) needs no datetime Python cannot hold
        offset = ref.utcoffset() or dt.timedelta()
        micros = ((ref.replace(tzinfo=None) - EPOCH) - offset) // dt.timedelta(microseconds=1)
        assert wall - off * 1_000_000 == micros, v


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.from_regex(r"[+-]?[0-9]{0,20}", fullmatch=True),
                                 st.text(max_size=8)), max_size=20))
def test_parse_integers_twins_agree(values):
    arr = pa.array(values, pa.string())
    n = len(values)
    out = []
    for impl in (encode_c, encode_py):
        value, status = np.zeros(n, np.int64), np.zeros(n, np.int8)
        if n:
            impl.parse_integers(*_buffers(arr), value, status)
        out.append((value.tolist(), status.tolist()))
    assert out[0] == out[1]
    for v, value, status in zip(values, *out[0]):
        if status:
            assert int(v) == value


WORDS = ["atm", "pos", "online", "鲤城", "a"]


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.sampled_from(WORDS + ["", "at", "atmx", "ATM"]),
                                 st.text(max_size=6)), max_size=30),
       offset=st.integers(0, 3))
def test_match_words_twins_agree(values, offset):
    from txcore.engine.encoder import Vocabulary
    vocab = Vocabulary({w: 10 + k for k, w in enumerate(WORDS)})
    arr = _column(values, False, offset)
    out = []
    for impl in (encode_c, encode_py):
        codes = np.zeros(len(values), np.int32)
        if values:
            impl.match_words(*_buffers(arr), vocab.word_offsets, vocab.words, vocab.codes, -7,
                             -9, codes)
        out.append(codes.tolist())
    assert out[0] == out[1]
    want = [-9 if not v else 10 + WORDS.index(v) if v in WORDS else -7 for v in values]
    assert out[0] == want


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.from_regex(r"[0-9]{0,6}", fullmatch=True),
                                 st.text(max_size=5)), max_size=30))
def test_parse_mccs_twins_agree(values):
    arr = pa.array(values, pa.string())
    out = []
    for impl in (encode_c, encode_py):
        mcc = np.zeros(len(values), np.int16)
        if values:
            impl.parse_mccs(*_buffers(arr), mcc)
        out.append(mcc.tolist())
    assert out[0] == out[1]
    import re
    want = [-1 if not v else int(v) if re.fullmatch(r"[0-9]{4}", v, re.ASCII) else -2
            for v in values]
    assert out[0] == want
