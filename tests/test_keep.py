"""The priced rows of a batch copied a run at a time (``_fast/keep.pyx``, its numpy twin,
and ``io.assemble.keep_rows``) against Arrow's filter, with Hypothesis.

* text columns with nulls, empty and non-ASCII values, sliced (an array's own offset
  into shared buffers), kept by masks of long runs, short runs, nothing and everything;
* a whole batch of text and other columns: ``keep_rows`` is ``batch.filter``, and the
  compiled module and its twin give the same buffers;
* runs out of order or past the column, and output buffers of the wrong size, are
  refused before the unchecked copies.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from txcore._fast import keep_py
from txcore._fast.buffers import string_buffers
from txcore.io.assemble import keep_rows, keep_text, kept_runs

try:
    from txcore._fast import keep as keep_c
except ImportError:  # not built
    keep_c = None

needs_c = pytest.mark.skipif(keep_c is None, reason="txcore._fast.keep not built")
MODULES = [keep_py] + ([keep_c] if keep_c is not None else [])

texts = st.lists(st.none() | st.text(max_size=6) | st.sampled_from(["", "卡号", "M001"]),
                 min_size=0, max_size=90)
#: a keep mask: mostly long runs (as rejects are rare), or any pattern
masks = st.booleans().flatmap(lambda rare: st.lists(
    st.sampled_from([True] * 12 + [False]) if rare else st.booleans(), min_size=200,
    max_size=200))


@settings(max_examples=150, deadline=None)
@given(values=texts, cut=st.integers(0, 20), keep=masks)
def test_a_text_column_keeps_what_arrow_filter_keeps(values, cut, keep):
    col = pa.array(values, pa.string())
    col = col.slice(min(cut, len(col)))  # an offset into shared buffers
    keep = np.array(keep[:len(col)], bool)
    want = col.filter(pa.array(keep))
    starts, ends = kept_runs(keep)
    outs = []
    for module in MODULES:
        got = keep_text(col, starts, ends, int(np.count_nonzero(keep)), module)
        got.validate(full=True)
        assert got.equals(want), module.__name__
        outs.append([None if b is None else b.to_pybytes() for b in got.buffers()])
    assert all(o == outs[0] for o in outs)  # compiled and twin: the same bytes


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.none() | st.text(max_size=5), st.none() | st.integers(-5, 5),
                               st.booleans()), max_size=80),
       cut=st.integers(0, 10), keep=masks)
def test_keep_rows_is_arrow_filter(rows, cut, keep):
    batch = pa.RecordBatch.from_pydict({
        "txn_id": pa.array([r[0] for r in rows], pa.string()),
        "amount": pa.array([r[1] for r in rows], pa.int64()),
        "flag": pa.array([r[2] for r in rows], pa.bool_()),
        "card_no": pa.array([None if r[0] is None else r[0] * 2 for r in rows], pa.string()),
    })
    batch = batch.slice(min(cut, batch.num_rows))
    keep = np.array(keep[:batch.num_rows], bool)
    got = keep_rows(batch, keep)
    assert got.schema == batch.schema
    assert got.equals(batch.filter(pa.array(keep)))


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_bad_runs_and_buffers_are_refused(module):
    col = pa.array(["ab", None, "cde", "f"], pa.string())
    offsets, data, _, offset = string_buffers(col)
    bits = np.frombuffer(col.buffers()[0], np.uint8)
    for starts, ends in (([2], [1]), ([0, 1], [2, 3]), ([3], [5]), ([-1], [1])):
        s, e = np.array(starts, np.int64), np.array(ends, np.int64)
        with pytest.raises(ValueError):
            module.kept_bytes(offsets, len(data), offset, s, e)
        with pytest.raises(ValueError):
            module.keep_bits(bits, 4, s, e, np.empty(1, np.uint8))  # 8 bits, 4 from the offset
    s, e = np.array([0], np.int64), np.array([3], np.int64)
    with pytest.raises(ValueError):  # the data holds fewer bytes than the offsets say
        module.kept_bytes(offsets, 2, offset, s, e)
    with pytest.raises(ValueError):  # room for 2 rows, not 3
        module.keep_strings(offsets, data, offset, s, e, np.empty(3, np.int32),
                            np.empty(5, np.uint8))
    with pytest.raises(ValueError):
        module.keep_strings(offsets, data, offset, s, e, np.empty(4, np.int32),
                            np.empty(4, np.uint8))
    with pytest.raises(ValueError):
        module.keep_bits(bits, 0, s, e, np.empty(2, np.uint8))


@needs_c
def test_the_compiled_module_is_used():
    from txcore._fast import NO_EXTENSIONS, compiled_or_twin
    assert compiled_or_twin("keep") is (keep_py if NO_EXTENSIONS else keep_c)
