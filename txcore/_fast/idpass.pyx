"""The id pass of a partitioned run in one ``nogil`` loop (twin: ``idpass_py.py``).

What it decides, and why it is the only pass over every card's rows, is in
``txcore/plan/idpass.py``.  One open-addressing table (linear probing, at most half
full) maps a txn digest to its entry: the card digest, the local day and the flags,
seeded with the state's entries the rows can name.
"""
from libc.stdint cimport INT64_MIN, int8_t, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, free

CYTHON_MODULE = 1

cdef enum:
    R_DUPLICATE = 3
    R_DISB_NON_MEMBER = 4
    R_MISMATCH = 5
    R_ALREADY = 6
    F_REVERSAL = 1
    F_REVERSED = 2
    ROW_REVERSAL = 1
    ROW_DISB_NON_MEMBER = 2

cdef int64_t NO_LATEST = INT64_MIN  # layout.NO_LATEST: no row priced yet


cdef struct Entry:
    uint64_t key_hi
    uint64_t key_lo
    uint64_t card_hi
    uint64_t card_lo
    int64_t day
    uint8_t flags
    uint8_t used


cdef inline Entry* _slot(Entry* table, uint64_t mask, uint64_t hi, uint64_t lo) noexcept nogil:
    """The entry of ``(hi, lo)``, or the empty slot where it goes (digests are keyed
    hashes: their low word is already uniform)."""
    cdef uint64_t pos = lo & mask
    while table[pos].used and not (table[pos].key_lo == lo and table[pos].key_hi == hi):
        pos = (pos + 1) & mask
    return &table[pos]


def settle(const uint64_t[::1] txn_hi, const uint64_t[::1] txn_lo,
           const uint64_t[::1] orig_hi, const uint64_t[::1] orig_lo,
           const uint64_t[::1] card_hi, const uint64_t[::1] card_lo,
           const int32_t[::1] day, const uint8_t[::1] flags,
           const uint64_t[::1] s_txn_hi, const uint64_t[::1] s_txn_lo,
           const uint64_t[::1] s_card_hi, const uint64_t[::1] s_card_lo,
           const int32_t[::1] s_day, const uint8_t[::1] s_flags,
           int64_t latest, int64_t retention, int8_t[::1] reason, int32_t[::1] now):
    """See ``idpass_py.settle``."""
    cdef Py_ssize_t n = txn_hi.shape[0], m = s_txn_hi.shape[0], i
    cdef uint64_t size = 16, mask
    cdef Entry* table
    cdef Entry* e
    cdef Entry* o
    cdef int64_t d, t
    cdef int8_t code
    while size < 2 * <uint64_t>(n + m) + 16:
        size <<= 1
    mask = size - 1
    table = <Entry*>calloc(size, sizeof(Entry))
    if table == NULL:
        raise MemoryError()
    with nogil:
        for i in range(m):
            e = _slot(table, mask, s_txn_hi[i], s_txn_lo[i])
            e.key_hi, e.key_lo, e.used = s_txn_hi[i], s_txn_lo[i], 1
            e.card_hi, e.card_lo = s_card_hi[i], s_card_lo[i]
            e.day, e.flags = s_day[i], s_flags[i]
        for i in range(n):
            d = day[i]
            t = latest if latest != NO_LATEST and latest > d else d
            e = _slot(table, mask, txn_hi[i], txn_lo[i])
            code = 0
            if e.used and t - e.day <= retention:
                code = R_DUPLICATE
            elif flags[i] & ROW_DISB_NON_MEMBER:
                code = R_DISB_NON_MEMBER
            elif flags[i] & ROW_REVERSAL:
                o = _slot(table, mask, orig_hi[i], orig_lo[i])
                if not o.used or t - o.day > retention or o.flags & F_REVERSAL:
                    o = NULL  # not named, forgotten, or a reversal's: zero-effect
                if o != NULL and (o.card_hi != card_hi[i] or o.card_lo != card_lo[i]):
                    code = R_MISMATCH
                elif o != NULL and o.flags & F_REVERSED:
                    code = R_ALREADY
                elif o != NULL:
                    o.flags |= F_REVERSED
            reason[i] = code
            now[i] = <int32_t>t
            if code == 0:  # the row takes its txn id (a forgotten entry is replaced)
                e.key_hi, e.key_lo, e.used = txn_hi[i], txn_lo[i], 1
                e.card_hi, e.card_lo, e.day = card_hi[i], card_lo[i], d
                e.flags = F_REVERSAL if flags[i] & ROW_REVERSAL else 0
                latest = t
    free(table)
    return latest
