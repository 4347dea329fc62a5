"""Which of a run's txn digests a state segment holds: a merge of two sorted key lists.

Both lists are sorted by ``(hi, lo)`` and hold each key once.  One pass over both
(O(n + m), sequential): the segment's ``hi`` words are read in order, its ``lo``
words only where ``hi`` is equal.  Pure-Python twin: ``probe_py.py``
(``tests/test_segments.py`` checks the two agree with Hypothesis).
"""
from libc.stdint cimport int64_t, uint64_t

CYTHON_MODULE = 1


def merge_match(const uint64_t[::1] seg_hi, const uint64_t[::1] seg_lo,
                const uint64_t[::1] q_hi, const uint64_t[::1] q_lo,
                int64_t[::1] seg_at, int64_t[::1] q_at) -> int:
    """Fill ``seg_at[k], q_at[k]`` with the positions of each key found in both; the count."""
    cdef Py_ssize_t i = 0, j = 0, k = 0, n = seg_hi.shape[0], m = q_hi.shape[0]
    cdef uint64_t a, b
    with nogil:
        while i < n and j < m:
            a = seg_hi[i]
            b = q_hi[j]
            if a < b:
                i += 1
            elif a > b:
                j += 1
            elif seg_lo[i] < q_lo[j]:
                i += 1
            elif seg_lo[i] > q_lo[j]:
                j += 1
            else:
                seg_at[k] = i
                q_at[k] = j
                k += 1
                i += 1
                j += 1
    return k
