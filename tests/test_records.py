"""The commit's records (``_fast/records.pyx``) against their numpy twin, with Hypothesis.

* :func:`key_order` on keys built to collide in ``hi``, in both words, or not, with
  buckets out of range (left out), and on keys crowded into a few top-bit bins (the
  heapsort a non-uniform input takes);
* :func:`bucket_positions` then :func:`sort_positions` (the two steps of
  :func:`key_order`, which the commit runs a bucket per thread) on the same keys;
* :func:`entry_buckets` and :func:`entry_records` on generated compact-state arrays:
  windows, reversals, null rule ids;
* a position outside the arrays is refused before the unchecked loops read it.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from txcore._fast import layout as L
from txcore._fast import records_py

try:
    from txcore._fast import records as records_c
except ImportError:  # not built
    records_c = None

needs_c = pytest.mark.skipif(records_c is None, reason="txcore._fast.records not built")

words = st.integers(0, 6) | st.integers(0, 2**64 - 1) | st.integers(2**64 - 4, 2**64 - 1)
#: ``(buckets, [(hi, lo, bucket), ...])``: keys that collide in hi, in both words or not,
#: with buckets from -1 (left out) to ``buckets`` (out of range, left out)
bucketed_keys = st.integers(1, 4).flatmap(lambda p: st.tuples(
    st.just(p), st.lists(st.tuples(words, words, st.integers(-1, p)), max_size=120)))


def _order(module, hi, lo, bucket, buckets):
    order, bounds = np.empty(len(hi), np.int64), np.empty(buckets + 1, np.int64)
    m = module.key_order(hi, lo, bucket, buckets, order, bounds)
    assert m == bounds[-1]
    return order[:m].tolist(), bounds.tolist()


def _arrays(rows):
    hi = np.array([r[0] for r in rows], np.uint64)
    lo = np.array([r[1] for r in rows], np.uint64)
    bucket = np.array([r[2] for r in rows], np.int32)
    return hi, lo, bucket


@needs_c
@settings(max_examples=300, deadline=None)
@given(bucketed_keys)
def test_key_order_agrees_with_its_twin(case):
    buckets, rows = case
    hi, lo, bucket = _arrays(rows)
    got = _order(records_c, hi, lo, bucket, buckets)
    assert got == _order(records_py, hi, lo, bucket, buckets)
    keys = [(int(bucket[i]), int(hi[i]), int(lo[i]), i) for i in got[0]]
    assert keys == sorted(keys)  # by bucket, key, then position
    assert len(got[0]) == int(((bucket >= 0) & (bucket < buckets)).sum())


@needs_c
@settings(max_examples=20, deadline=None)
@given(st.integers(33, 3000), st.integers(1, 3), st.integers(0, 2**32))
def test_key_order_on_keys_crowded_into_a_few_bins(n, distinct_tops, seed):
    """Keys whose top bits take only a few values: bins of hundreds (heapsorted)."""
    rng = np.random.default_rng(seed)
    hi = (rng.integers(0, distinct_tops, n, dtype=np.uint64) << np.uint64(60)) \
        | rng.integers(0, 8, n, dtype=np.uint64)
    lo = rng.integers(0, 4, n, dtype=np.uint64)
    bucket = rng.integers(-1, 3, n).astype(np.int32)
    got = _order(records_c, hi, lo, bucket, 2)
    assert got == _order(records_py, hi, lo, bucket, 2)


def _compact(draw_rng, n_entries, n_cards, n_effects, n_strings):
    rng = draw_rng
    cards = np.zeros(n_cards, L.CARD)
    cards["key_hi"] = rng.integers(0, 2**63, n_cards, dtype=np.uint64) * np.uint64(2) + \
        rng.integers(0, 2, n_cards, dtype=np.uint64)
    cards["key_lo"] = rng.integers(0, 2**63, n_cards, dtype=np.uint64)
    effects = np.zeros(n_effects, L.EFFECT)
    effects["fee_standard"] = rng.integers(-10**12, 10**12, n_effects)
    effects["discount"] = rng.integers(0, 10**9, n_effects)
    for name in ("discount_rule", "fee_rule", "waiver_rule", "ruleset"):
        effects[name] = rng.integers(-1, n_strings, n_effects)
    entries = np.zeros(n_entries, L.ENTRY)
    entries["key_hi"] = rng.integers(0, 2**63, n_entries, dtype=np.uint64)
    entries["key_lo"] = rng.integers(0, 2**63, n_entries, dtype=np.uint64)
    entries["card"] = rng.integers(0, n_cards, n_entries)
    entries["day"] = rng.integers(16_000, 16_100, n_entries)
    entries["flags"] = rng.integers(0, 16, n_entries)
    entries["effect"] = np.where((entries["flags"] & L.F_REVERSAL) != 0, -1,
                                 rng.integers(0, n_effects, n_entries))
    lookup = rng.permutation(n_strings).astype(np.int32) + 5
    return entries, cards, effects, lookup


@needs_c
@settings(max_examples=200, deadline=None)
@given(st.integers(0, 300), st.integers(1, 20), st.integers(1, 30), st.integers(1, 12),
       st.integers(1, 5), st.sampled_from([L.NO_LATEST, 16_050, 16_099]),
       st.integers(0, 60), st.integers(0, 2**32))
def test_entry_buckets_and_records_agree_with_their_twin(n, n_cards, n_effects, n_strings,
                                                         buckets, latest, retention, seed):
    entries, cards, effects, lookup = _compact(np.random.default_rng(seed), n, n_cards,
                                               n_effects, n_strings)
    got_b, want_b = np.empty(n, np.int32), np.empty(n, np.int32)
    records_c.entry_buckets(entries, cards, latest, retention, buckets, got_b)
    records_py.entry_buckets(entries, cards, latest, retention, buckets, want_b)
    assert (got_b == want_b).all()
    order = np.empty(n, np.int64)
    bounds = np.empty(buckets + 1, np.int64)
    m = records_c.key_order(np.ascontiguousarray(entries["key_hi"]),
                            np.ascontiguousarray(entries["key_lo"]), got_b, buckets, order,
                            bounds)
    at = order[:m]
    results = []
    for module in (records_c, records_py):
        hi, lo, recs = np.empty(m, np.uint64), np.empty(m, np.uint64), np.full(m, 0xAB, "V56")
        recs = recs.view(L.REC)
        module.entry_records(entries, cards, effects, lookup, at, hi, lo, recs.view(np.uint8))
        results.append((hi, lo, recs.view(np.uint8)))
    (g_hi, g_lo, g_recs), (w_hi, w_lo, w_recs) = results
    assert (g_hi == w_hi).all() and (g_lo == w_lo).all()
    assert (g_recs == w_recs).all()  # byte for byte, padding included
    recs = g_recs.view(L.REC)
    reversal = (recs["flags"] & L.F_REVERSAL) != 0
    assert (recs["fee_rule"][reversal] == -1).all() and (recs["discount"][reversal] == 0).all()


@needs_c
@settings(max_examples=200, deadline=None)
@given(bucketed_keys)
def test_bucket_positions_then_sort_positions_agree_with_their_twin(case):
    """The two steps :func:`compact_runs` takes apart (so buckets sort side by side)."""
    buckets, rows = case
    hi, lo, bucket = _arrays(rows)
    entries = np.zeros(len(hi), L.ENTRY)  # the keys as compact_runs passes them: strided
    entries["key_hi"], entries["key_lo"] = hi, lo
    results = []
    for module in (records_c, records_py):
        grouped, bounds = np.empty(len(hi), np.int64), np.empty(buckets + 1, np.int64)
        m = module.bucket_positions(bucket, buckets, grouped, bounds)
        parts = []
        for b in range(buckets):
            src = grouped[bounds[b]:bounds[b + 1]]
            assert (bucket[src] == b).all() and (np.diff(src) > 0).all()
            dst, strided = np.empty(len(src), np.int64), np.empty(len(src), np.int64)
            module.sort_positions(hi, lo, src, dst)
            module.sort_positions(entries["key_hi"], entries["key_lo"], src, strided)
            assert (dst == strided).all()
            parts.append(dst.tolist())
        results.append((m, bounds.tolist(), parts))
    assert results[0] == results[1]


@needs_c
def test_positions_outside_the_arrays_are_refused():
    """The compiled loops read by position unchecked: a bad position is refused first."""
    hi = lo = np.arange(4, dtype=np.uint64)
    with pytest.raises(ValueError, match="outside"):
        records_c.sort_positions(hi, lo, np.array([0, 4], np.int64), np.empty(2, np.int64))
    entries, cards, effects, lookup = _compact(np.random.default_rng(0), 3, 2, 2, 2)
    one = np.empty(1, np.uint64)
    with pytest.raises(ValueError, match="outside"):
        records_c.entry_records(entries, cards, effects, lookup, np.array([3], np.int64), one,
                                one.copy(), np.empty(L.REC.itemsize, np.uint8))
