"""The id pass of a partitioned run in ``nogil`` loops (twin: ``idpass_py.py``).

What it decides, and why it is the only pass over every card's rows, is in
``txcore/plan/idpass.py``.  One open-addressing table (linear probing, at most half
full) maps a txn digest to its entry: the card digest, the local day and the flags,
seeded with the state's entries the rows can name.  A :class:`Settler` keeps the table
between calls, so the rows can be settled a chunk at a time, in input order, as the
chunks are encoded.
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
    int32_t day
    uint8_t flags


cdef inline int32_t* _slot(int32_t* slots, uint64_t mask, const Entry* entries, uint64_t hi,
                           uint64_t lo) noexcept nogil:
    """The slot of ``(hi, lo)``: it holds the entry's number, or -1 where the entry would
    go (digests are keyed hashes: their low word is already uniform)."""
    cdef uint64_t pos = lo & mask
    cdef int32_t s
    while True:
        s = slots[pos]
        if s < 0 or (entries[s].key_lo == lo and entries[s].key_hi == hi):
            return &slots[pos]
        pos = (pos + 1) & mask


cdef class Settler:
    """See ``idpass_py.Settler``.  Entries are kept densely, 40 bytes each, and found
    through a table of their numbers (4 bytes a slot, at most half full)."""

    cdef Entry* entries
    cdef int32_t* slots
    cdef uint64_t mask
    cdef Py_ssize_t used, room  # entries made; rows that may still come
    cdef public int64_t latest
    cdef int64_t retention

    def __cinit__(self, Py_ssize_t rows, const uint64_t[::1] s_txn_hi,
                  const uint64_t[::1] s_txn_lo, const uint64_t[::1] s_card_hi,
                  const uint64_t[::1] s_card_lo, const int32_t[::1] s_day,
                  const uint8_t[::1] s_flags, int64_t latest, int64_t retention):
        cdef uint64_t size = 16, pos
        cdef Py_ssize_t m = s_txn_hi.shape[0], i
        cdef int32_t* slot
        if rows + m >= 2**31 - 1:
            raise ValueError(f"{rows + m} txn ids in one run")
        while size < 2 * <uint64_t>(rows + m) + 16:
            size <<= 1
        self.entries = <Entry*>calloc(rows + m + 1, sizeof(Entry))
        self.slots = <int32_t*>calloc(size, sizeof(int32_t))
        if self.entries == NULL or self.slots == NULL:
            raise MemoryError()
        for pos in range(size):
            self.slots[pos] = -1
        self.mask, self.room, self.used = size - 1, rows, 0
        self.latest, self.retention = latest, retention
        with nogil:
            for i in range(m):
                slot = _slot(self.slots, self.mask, self.entries, s_txn_hi[i], s_txn_lo[i])
                if slot[0] < 0:
                    slot[0] = <int32_t>self.used
                    self.used += 1
                self._put(slot[0], s_txn_hi[i], s_txn_lo[i], s_card_hi[i], s_card_lo[i],
                          s_day[i], s_flags[i])

    cdef inline void _put(self, int32_t k, uint64_t hi, uint64_t lo, uint64_t card_hi,
                          uint64_t card_lo, int32_t day, uint8_t flags) noexcept nogil:
        self.entries[k].key_hi, self.entries[k].key_lo = hi, lo
        self.entries[k].card_hi, self.entries[k].card_lo = card_hi, card_lo
        self.entries[k].day, self.entries[k].flags = day, flags

    def __dealloc__(self):
        free(self.entries)
        free(self.slots)

    def settle(self, const uint64_t[::1] txn_hi, const uint64_t[::1] txn_lo,
               const uint64_t[::1] orig_hi, const uint64_t[::1] orig_lo,
               const uint64_t[::1] card_hi, const uint64_t[::1] card_lo,
               const int32_t[::1] day, const uint8_t[::1] flags,
               int8_t[::1] reason, int32_t[::1] now):
        """See ``idpass_py.Settler.settle``."""
        cdef Py_ssize_t n = txn_hi.shape[0], i
        cdef int32_t* slot
        cdef Entry* o
        cdef int32_t d
        cdef int64_t t, latest = self.latest, retention = self.retention
        cdef int32_t k
        cdef int8_t code
        if n > self.room:
            raise ValueError(f"{n} rows, room for {self.room}")
        self.room -= n
        with nogil:
            for i in range(n):
                d = day[i]
                t = latest if latest != NO_LATEST and latest > d else d
                slot = _slot(self.slots, self.mask, self.entries, txn_hi[i], txn_lo[i])
                code = 0
                if slot[0] >= 0 and t - self.entries[slot[0]].day <= retention:
                    code = R_DUPLICATE
                elif flags[i] & ROW_DISB_NON_MEMBER:
                    code = R_DISB_NON_MEMBER
                elif flags[i] & ROW_REVERSAL:
                    k = _slot(self.slots, self.mask, self.entries, orig_hi[i], orig_lo[i])[0]
                    o = NULL if k < 0 else &self.entries[k]
                    if o != NULL and (t - o.day > retention or o.flags & F_REVERSAL):
                        o = NULL  # forgotten, or a reversal's: zero-effect
                    if o != NULL and (o.card_hi != card_hi[i] or o.card_lo != card_lo[i]):
                        code = R_MISMATCH
                    elif o != NULL and o.flags & F_REVERSED:
                        code = R_ALREADY
                    elif o != NULL:
                        o.flags |= F_REVERSED
                reason[i] = code
                now[i] = <int32_t>t
                if code == 0:  # the row takes its txn id (a forgotten entry is replaced)
                    if slot[0] < 0:
                        slot[0] = <int32_t>self.used
                        self.used += 1
                    self._put(slot[0], txn_hi[i], txn_lo[i], card_hi[i], card_lo[i], d,
                              F_REVERSAL if flags[i] & ROW_REVERSAL else 0)
                    latest = t
        self.latest = latest
