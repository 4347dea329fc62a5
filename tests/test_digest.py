"""The digest's column-wise encoding equals the documented row-by-row JSON."""
from __future__ import annotations

import hashlib

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from txcore import _fast
from txcore._fast import encode_py
from txcore.io.assemble import OUTPUT_FIELDS, TS_TYPE
from txcore.io.digest import FileDigest, reference_rows

IMPLS = [pytest.param(_fast.compiled_or_twin("encode"), id="as-installed"),
         pytest.param(encode_py, id="pure-python-module")]

TEXT = st.one_of(st.none(), st.text(max_size=12),
                 st.sampled_from(['a"b', "a\\b", "\x00\x1f\n\t\b\f\r", "鲤城", "\x7f\u2028",
                                  # past the first eight bytes, tested a word at a time
                                  'abcdefgh"', "abcdefghijklmno\\", "鲤城鲤城鲤城\x1f",
                                  "abcdefghijklmnop"]))


@pytest.mark.parametrize("impl", IMPLS)
@settings(max_examples=200, deadline=None)
@given(rows=st.lists(st.tuples(st.text(min_size=1, max_size=10), st.integers(-2**62, 2**62),
                               st.one_of(st.none(), st.booleans()), TEXT,
                               st.one_of(st.integers(-10**12, 10**12),
                                         st.integers(-2**63, 2**63 - 1)), st.integers(0, 3)),
                     max_size=20),
       cut=st.integers(0, 20))
def test_column_wise_digest_equals_the_json_rows(impl, rows, cut):
    n = len(rows)
    fields = {f.name: f for f in OUTPUT_FIELDS}
    cols = {"txn_id": pa.array([r[0] for r in rows], pa.string()),
            "ts": pa.array([r[1] for r in rows], pa.int64()).cast(TS_TYPE)}
    for name, f in fields.items():
        if f.type == pa.bool_():
            cols[name] = pa.array([r[2] for r in rows], pa.bool_())
        elif f.type == pa.string():
            cols[name] = pa.array([r[3] for r in rows], pa.string())
        elif f.type == pa.int16():
            cols[name] = pa.array([r[5] for r in rows], pa.int16())
        else:
            cols[name] = pa.array([r[4] for r in rows], f.type)
    batch = pa.RecordBatch.from_pydict(cols)
    saved, _fast._chosen["encode"] = _fast._chosen["encode"], impl
    try:
        digest = _digest(batch, cut)
    finally:
        _fast._chosen["encode"] = saved
    assert digest == hashlib.sha256(reference_rows(batch)).hexdigest()
    assert n == 0 or reference_rows(batch).count(b"\n") >= n


def _digest(batch, cut):
    d = FileDigest()
    d.add(batch.slice(0, cut))  # any split into batches
    d.add(batch.slice(cut))
    return d.hexdigest()
