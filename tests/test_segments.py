"""The state folder's fixed-width files (txcore.state.segments) and the segment probe.

* the compiled probes (``_fast/probe.pyx``: a galloping merge, and one that jumps by a
  radix table of the queries) against their numpy twin and each other, with Hypothesis,
  on key lists built to share keys, share high words, and not;
* index records <-> the state's index table, and a compact state's records straight
  from its arrays == the records of its tables;
* a written segment read back whole and probed: the newest generation of a key wins;
  every flipped byte of the txn digests is caught by a probe, every flipped byte of a
  record block it reads is caught, and a whole-file read catches any flipped byte.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from txcore._fast import probe_py
from txcore._fast.layout import Strings
from txcore.errors import StateError
from txcore.state import segments as S

try:
    from txcore._fast import probe as probe_c
except ImportError:  # not built
    probe_c = None

needs_c = pytest.mark.skipif(probe_c is None, reason="txcore._fast.probe not built")


def _sorted_unique(pairs):
    arr = np.array(sorted(set(pairs)), np.uint64).reshape(-1, 2)
    return np.ascontiguousarray(arr[:, 0]), np.ascontiguousarray(arr[:, 1])


# small words so that keys collide in hi, in both, or not at all
words = st.integers(0, 6) | st.integers(0, 2**64 - 1)
key_lists = st.lists(st.tuples(words, words), max_size=60)


def _match(module, seg, q):
    seg_at = np.empty(len(q[0]), np.int64)
    q_at = np.empty(len(q[0]), np.int64)
    k = module.merge_match(seg[0], seg[1], q[0], q[1], seg_at, q_at)
    merged = list(zip(seg_at[:k].tolist(), q_at[:k].tolist()))
    table, shift = S.radix_table(q[0])
    k = module.radix_match(seg[0], seg[1], q[0], q[1], table, shift, seg_at, q_at)
    assert list(zip(seg_at[:k].tolist(), q_at[:k].tolist())) == merged
    return merged


@needs_c
@settings(max_examples=300, deadline=None)
@given(key_lists, key_lists)
def test_the_compiled_probe_agrees_with_its_twin(a, b):
    seg, q = _sorted_unique(a), _sorted_unique(b)
    got = _match(probe_c, seg, q)
    assert got == _match(probe_py, seg, q)
    expected = sorted((i, j) for i, s in enumerate(zip(*seg)) for j, t in enumerate(zip(*q))
                      if s == t)
    assert got == expected


def _records(n, rng, days=(16740, 16745)):
    hi = rng.integers(0, 2**63, n, dtype=np.uint64)
    lo = rng.integers(0, 2**63, n, dtype=np.uint64)
    recs = np.zeros(n, S.REC)
    recs["card_hi"] = rng.integers(0, 2**63, n, dtype=np.uint64)
    recs["card_lo"] = rng.integers(0, 2**63, n, dtype=np.uint64)
    recs["day"] = rng.integers(*days, n)
    rev = rng.random(n) < 0.2
    recs["flags"] = np.where(rev, 1 | (rng.random(n) < 0.5) * 2,
                             (rng.random(n) < 0.3) * 4 | (rng.random(n) < 0.3) * 2)
    recs["flags"] |= np.where(~rev & ((recs["flags"] & 4) != 0) & (rng.random(n) < 0.5), 8,
                              0).astype(np.uint8)
    recs["fee_standard"] = np.where(rev, 0, rng.integers(1, 10_000, n))  # waived: fee > 0
    recs["discount"] = np.where(rev, 0, rng.integers(0, 500, n))
    for name in ("fee_rule", "waiver_rule", "discount_rule", "ruleset"):
        recs[name] = np.where(rev, -1, rng.integers(-1, 3, n))
    recs["ruleset"] = np.where(rev, -1, 0)
    recs["waiver_rule"] = np.where((recs["flags"] & 8) != 0, 1, recs["waiver_rule"])
    order = S.sort_by_key(hi, lo)
    return hi[order], lo[order], np.take(recs, order)


def test_records_round_trip_through_the_index_table():
    rng = np.random.default_rng(1)
    hi, lo, recs = _records(500, rng)
    strings = Strings(["licheng-2013", "member-atm-3-free", "merchant:M1"])
    table = S.index_table(hi, lo, recs, strings)
    hi2, lo2, recs2 = S.index_records(table, Strings(strings.values))
    assert (hi2 == hi).all() and (lo2 == lo).all()
    assert S.same_rows(recs2, recs).all()


def test_a_compact_states_records_equal_its_tables_records():
    """The commit's shortcut (records from the compact arrays) gives what the tables give."""
    from txcore._fast import load_kernel
    from txcore.state.compact import CompactState
    rng = np.random.default_rng(2)
    hi, lo, recs = _records(400, rng)
    strings = Strings(["licheng-2013", "member-atm-3-free", "merchant:M1"])
    table = S.index_table(hi, lo, recs, strings)
    empty = S.counters_table(np.zeros(0, np.int64), np.zeros(0, S.CREC), strings)
    compact = CompactState.from_tables(empty, table, None, 45, load_kernel("cython"))
    got = [make() for make in S.compact_runs(compact, Strings(strings.values), 3)]
    want = S.bucket_runs(*S.index_records(compact.to_tables()[1], Strings(strings.values)), 3)
    for (g_hi, g_lo, g_recs), (w_hi, w_lo, w_recs) in zip(got, want, strict=True):
        assert (g_hi == w_hi).all() and (g_lo == w_lo).all()
        assert S.same_rows(g_recs, w_recs).all()
    everything = [np.concatenate(part) for part in zip(*got)]
    order = S.sort_by_key(everything[0], everything[1])
    assert S.same_rows(np.take(everything[2], order), recs).all()


def _write(tmp_path, name, gen, hi, lo, recs):
    return S.write_segment(tmp_path / name, 0, gen, hi, lo, recs, "test")


def test_a_probe_finds_the_newest_record_of_each_key(tmp_path):
    rng = np.random.default_rng(3)
    hi, lo, recs = _records(3000, rng)
    e1 = _write(tmp_path, "seg.1", 1, hi, lo, recs)
    newer = np.take(recs, np.arange(0, 3000, 7))
    newer["flags"] |= 2  # reversed since
    e2 = _write(tmp_path, "seg.2", 2, hi[::7], lo[::7], newer)
    pick = np.sort(rng.choice(3000, 400, replace=False))
    # plus keys that share a stored key's high word (runs of equal hi across chunk cuts)
    q_hi = np.concatenate([hi[pick], rng.integers(0, 2**63, 100, dtype=np.uint64),
                           np.repeat(hi[pick[:10]], 3)])
    q_lo = np.concatenate([lo[pick], rng.integers(0, 2**63, 100, dtype=np.uint64),
                           rng.integers(0, 2**63, 30, dtype=np.uint64)])
    order = S.sort_by_key(q_hi, q_lo)
    q_hi, q_lo = q_hi[order], q_lo[order]
    at, found = S.probe(tmp_path, [e2, e1], q_hi, q_lo)  # either order of segments
    assert len(at) == 400
    for j, rec in zip(at, found):
        i = np.flatnonzero((hi == q_hi[j]) & (lo == q_lo[j]))[0]
        want = newer[i // 7] if i % 7 == 0 else recs[i]
        assert rec.tobytes() == want.tobytes()
    whole = S.read_segment(tmp_path, e1)
    assert (whole[0] == hi).all() and S.same_rows(whole[2], recs).all()


def test_corruption_a_probe_reads_is_caught_and_a_whole_read_catches_any(tmp_path):
    rng = np.random.default_rng(4)
    hi, lo, recs = _records(2000, rng)
    entry = _write(tmp_path, "seg.1", 1, hi, lo, recs)
    path = tmp_path / "seg.1"
    good = path.read_bytes()
    q_hi, q_lo = hi[::50].copy(), lo[::50].copy()
    hit_rows = np.arange(0, 2000, 50)
    record_at = S.HEADER + 16 * 2000 + S.REC.itemsize * hit_rows
    for offset in [0, 40, 100, S.HEADER + 5, S.HEADER + 8 * 1999, *(record_at[:5] + 9),
                   S.HEADER + 8 * 2000 + 8 * 50]:
        data = bytearray(good)
        data[offset] ^= 0x10
        path.write_bytes(bytes(data))
        with pytest.raises(StateError, match="seg.1"):
            S.probe(tmp_path, [entry], q_hi, q_lo)
        with pytest.raises(StateError, match="seg.1"):
            S.read_segment(tmp_path, entry)
    # a record no query reads: the probe does not see it, a whole read does
    data = bytearray(good)
    data[S.HEADER + 16 * 2000 + S.REC.itemsize * 1999 + 3] ^= 0x10
    path.write_bytes(bytes(data))
    S.probe(tmp_path, [entry], q_hi, q_lo)
    with pytest.raises(StateError, match="checksum"):
        S.read_segment(tmp_path, entry)


@needs_c
def test_the_galloping_probe_on_long_lists_agrees_with_its_twin():
    """Lists of very different lengths, sparse and dense overlaps, equal high words."""
    rng = np.random.default_rng(5)
    for n, m, share in ((5000, 40_000, 0.3), (40_000, 300, 0.9), (2000, 2000, 0.0)):
        keys = np.stack([rng.integers(0, 2**40, n + m, dtype=np.uint64),
                         rng.integers(0, 3, n + m, dtype=np.uint64)], axis=1)
        keys = np.unique(keys, axis=0)
        seg = keys[rng.random(len(keys)) < n / (n + m) + share / 2]
        q = keys[rng.random(len(keys)) < m / (n + m) + share / 2]
        seg = (np.ascontiguousarray(seg[:, 0]), np.ascontiguousarray(seg[:, 1]))
        q = (np.ascontiguousarray(q[:, 0]), np.ascontiguousarray(q[:, 1]))
        assert _match(probe_c, seg, q) == _match(probe_py, seg, q)


def test_a_segment_from_one_body_is_the_segment_from_three_arrays(tmp_path):
    """``write_segment`` writes arrays laid out in one body as they are, and the file is
    the one it writes of three separate arrays (a header with its own random file id)."""
    rng = np.random.default_rng(5)
    hi, lo, recs = _records(700, rng)
    b_hi, b_lo, b_recs = S._in_one_body(len(hi))
    b_hi[:], b_lo[:], b_recs[:] = hi, lo, recs
    assert S._image_of(b_hi, b_lo, b_recs) is not None and S._image_of(hi, lo, recs) is None
    assert S._image_of(b_hi[:-1], b_lo[:-1], b_recs[:-1]) is None  # not the whole body
    one = _write(tmp_path, "one.bin", 1, b_hi, b_lo, b_recs)
    three = _write(tmp_path, "three.bin", 1, hi, lo, recs)
    assert (tmp_path / "one.bin").read_bytes()[S.HEADER:] == \
        (tmp_path / "three.bin").read_bytes()[S.HEADER:]
    assert one["size"] == three["size"] and one["entries"] == 700
