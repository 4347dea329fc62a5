"""The scratch files a partitioned run's tasks hand on: objects with their arrays out of
band, read back as views of the mapped file (txcore.plan.scratch)."""
from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from txcore.plan import scratch

DTYPES = [np.dtype(t) for t in ("int8", "uint8", "int16", "int32", "int64", "uint64",
                                "float64", "bool")]
arrays = st.sampled_from(DTYPES).flatmap(lambda dt: hnp.arrays(
    dt, hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=40)))


def _views(arr: np.ndarray):
    """The array, and ways a task hands one on: sliced, strided, transposed."""
    return st.sampled_from([arr, arr[1:], arr[::2], arr.T])


values = st.recursive(
    st.one_of(st.none(), st.integers(), st.binary(max_size=50), arrays.flatmap(_views)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.tuples(inner, inner),
                            st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=12)


def _same(a, b):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    else:
        assert a == b


@settings(max_examples=150, deadline=None)
@given(obj=values)
def test_what_is_saved_loads_back(tmp_path_factory, obj):
    path = tmp_path_factory.mktemp("s") / "x"
    scratch.save(path, obj)
    _same(obj, scratch.load(path))
    assert [p.name for p in path.parent.iterdir()] == ["x"]  # no temporary file left


def test_arrays_come_back_as_aligned_read_only_views_of_the_file(tmp_path):
    path = tmp_path / "x"
    big = np.arange(100_000, dtype=np.int64)
    scratch.save(path, {"a": big, "b": [big[:3].astype(np.int8), big * 2]})
    got = scratch.load(path)
    for arr in (got["a"], *got["b"]):
        assert not arr.flags.writeable  # a view of the mapped file, not a copy
        assert arr.__array_interface__["data"][0] % 64 == 0
        with pytest.raises(ValueError):
            arr[0] = 1
    np.testing.assert_array_equal(got["a"], big)
    # the file is a small pickle plus the arrays' bytes (1.6 MB): none of them in twice
    assert path.stat().st_size < 2 * big.nbytes + 3 + 4096


def test_loaded_files_hold_no_file_descriptor(tmp_path):
    """A bucket task keeps every chunk's rows mapped at once: thousands of chunks must
    not mean thousands of open files."""
    path = tmp_path / "x"
    scratch.save(path, {"a": np.arange(1000)})
    before = len(os.listdir("/proc/self/fd"))
    kept = [scratch.load(path) for _ in range(50)]
    assert len(os.listdir("/proc/self/fd")) == before
    assert all(int(k["a"].sum()) == 499500 for k in kept)


def test_a_second_save_replaces_the_file_whole(tmp_path):
    path = tmp_path / "x"
    scratch.save(path, np.zeros(1000, np.int32))
    first = scratch.load(path)  # still mapped when the file is replaced
    scratch.save(path, np.ones(10, np.int32))
    np.testing.assert_array_equal(scratch.load(path), np.ones(10, np.int32))
    np.testing.assert_array_equal(first, np.zeros(1000, np.int32))


def test_arrow_tables_round_trip(tmp_path):
    table = pa.table({"card": pa.array([b"a" * 16, b"b" * 16], pa.binary(16)),
                      "n": pa.array([1, None], pa.int64())})
    scratch.save(tmp_path / "t", table)
    assert scratch.load(tmp_path / "t").equals(table)


def test_a_file_that_is_not_a_scratch_file_is_refused(tmp_path):
    (tmp_path / "x").write_bytes(b"\x80\x05N." + bytes(40))  # an in-band pickle of None
    with pytest.raises(ValueError, match="not a scratch file"):
        scratch.load(tmp_path / "x")
