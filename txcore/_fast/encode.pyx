"""Column encoders over Arrow buffers, one call per column: the per-row text work of
encoding a batch for the pricing kernel.

* ``hash_strings``: keyed SipHash-2-4-128 of each value (txn ids, card numbers),
  with its byte length (-1 for null).  The same digest keys the state, so no
  identifier is ever at rest in clear (``txcore.state.keys``).
* ``parse_timestamps``: ISO 8601 text (docs/input.md#timestamps) to wall-clock microseconds and
  an offset; anything unusual is left to the reference validator.
* ``parse_integers``: ASCII decimal text to int64.

Layers (as in scikit-learn's ``_loss``): ``cdef inline ... noexcept nogil``
helpers on C scalars, then one ``nogil`` loop per column.  Pure-Python twin:
``encode_py.py``; ``tests/test_encode.py`` checks the two against each other.
"""
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint64_t

CYTHON_MODULE = 1

ctypedef fused offset_t:
    int32_t
    int64_t


# -- SipHash-2-4 with 128-bit output (Aumasson & Bernstein) -----------------------------
cdef inline uint64_t _rotl(uint64_t x, int b) noexcept nogil:
    return (x << b) | (x >> (64 - b))


cdef inline void _rounds(uint64_t* v, int n) noexcept nogil:
    cdef int i
    for i in range(n):
        v[0] += v[1]; v[1] = _rotl(v[1], 13); v[1] ^= v[0]; v[0] = _rotl(v[0], 32)
        v[2] += v[3]; v[3] = _rotl(v[3], 16); v[3] ^= v[2]
        v[0] += v[3]; v[3] = _rotl(v[3], 21); v[3] ^= v[0]
        v[2] += v[1]; v[1] = _rotl(v[1], 17); v[1] ^= v[2]; v[2] = _rotl(v[2], 32)


cdef inline void _siphash128(const uint8_t[::1] data, int64_t start, int64_t stop,
                             uint64_t k0, uint64_t k1, uint64_t* hi,
                             uint64_t* lo) noexcept nogil:
    cdef uint64_t v[4]
    cdef uint64_t m
    cdef int64_t n = stop - start, i, j
    cdef int64_t end = start + (n - n % 8)
    v[0] = k0 ^ 0x736f6d6570736575ULL
    v[1] = k1 ^ 0x646f72616e646f6dULL ^ 0xee
    v[2] = k0 ^ 0x6c7967656e657261ULL
    v[3] = k1 ^ 0x7465646279746573ULL
    i = start
    while i < end:                        # full 8-byte little-endian words
        m = 0
        for j in range(8):
            m |= (<uint64_t>data[i + j]) << (8 * j)
        v[3] ^= m
        _rounds(v, 2)
        v[0] ^= m
        i += 8
    m = (<uint64_t>(n & 0xff)) << 56      # the tail, with the length in the top byte
    j = 0
    while i < stop:
        m |= (<uint64_t>data[i]) << (8 * j)
        i += 1
        j += 1
    v[3] ^= m
    _rounds(v, 2)
    v[0] ^= m
    v[2] ^= 0xee
    _rounds(v, 4)
    hi[0] = v[0] ^ v[1] ^ v[2] ^ v[3]
    v[1] ^= 0xdd
    _rounds(v, 4)
    lo[0] = v[0] ^ v[1] ^ v[2] ^ v[3]


def siphash128(const uint8_t[::1] data, uint64_t k0, uint64_t k1):
    """``(hi, lo)`` keyed digest of one byte string."""
    cdef uint64_t hi = 0, lo = 0
    _siphash128(data, 0, data.shape[0], k0, k1, &hi, &lo)
    return hi, lo


cdef inline bint _valid(const uint8_t[::1] validity, Py_ssize_t j) noexcept nogil:
    return validity.shape[0] == 0 or (validity[j >> 3] >> (j & 7)) & 1


def hash_strings(const offset_t[::1] offsets,   # IN  value offsets (whole buffer)
                 const uint8_t[::1] data,       # IN  UTF-8 bytes
                 const uint8_t[::1] validity,   # IN  validity bitmap, or empty
                 Py_ssize_t offset,             # IN  array offset into the buffers
                 uint64_t k0, uint64_t k1,      # IN  the key
                 uint64_t[::1] hi,              # OUT digest, high word
                 uint64_t[::1] lo,              # OUT digest, low word
                 int32_t[::1] length):          # OUT byte length, -1 for null
    cdef Py_ssize_t n = hi.shape[0], i, j
    with nogil:
        for i in range(n):
            j = i + offset
            if not _valid(validity, j):
                hi[i] = 0
                lo[i] = 0
                length[i] = -1
            else:
                length[i] = <int32_t>(offsets[j + 1] - offsets[j])
                _siphash128(data, offsets[j], offsets[j + 1], k0, k1, &hi[i], &lo[i])


# -- ISO 8601 text timestamps ---------------------------------------------------------
cdef inline int _digits(const uint8_t[::1] s, int64_t at, int n) noexcept nogil:
    """The ``n`` ASCII digits at ``at`` as a number, or -1."""
    cdef int value = 0, k, d
    for k in range(n):
        d = <int>s[at + k] - 48
        if d < 0 or d > 9:
            return -1
        value = value * 10 + d
    return value


cdef inline int64_t _days_from_civil(int64_t y, int64_t m, int64_t d) noexcept nogil:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    cdef int64_t era, yoe, doy, doe
    if m <= 2:
        y -= 1
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


cdef inline int _month_days(int y, int m) noexcept nogil:
    if m == 2:
        return 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28
    return 30 if m == 4 or m == 6 or m == 9 or m == 11 else 31


cdef inline int8_t _parse_ts(const uint8_t[::1] s, int64_t p, int64_t stop, int64_t* wall,
                             int32_t* off) noexcept nogil:
    """1 naive, 2 with an offset, 0 not parsed here (the reference validator decides)."""
    cdef int y, mo, d, hh, mi, ss = 0, oh, om, k, dig
    cdef int64_t micro = 0
    cdef int8_t status = 1
    cdef uint8_t c
    if stop - p < 16:
        return 0
    y = _digits(s, p, 4)
    mo = _digits(s, p + 5, 2)
    d = _digits(s, p + 8, 2)
    hh = _digits(s, p + 11, 2)
    mi = _digits(s, p + 14, 2)
    if (y < 1 or mo < 1 or mo > 12 or d < 1 or hh < 0 or hh > 23 or mi < 0 or mi > 59
            or s[p + 4] != 45 or s[p + 7] != 45 or s[p + 13] != 58    # '-' '-' ':'
            or (s[p + 10] != 84 and s[p + 10] != 32)):                # 'T' or ' '
        return 0
    if d > _month_days(y, mo):
        return 0
    p += 16
    if p < stop and s[p] == 58:                                       # ':' seconds
        if stop - p < 3:
            return 0
        ss = _digits(s, p + 1, 2)
        if ss < 0 or ss > 59:
            return 0
        p += 3
        if p < stop and (s[p] == 46 or s[p] == 44):                   # '.' or ','
            p += 1
            k = 0
            while p < stop and k < 9 and 48 <= s[p] <= 57:
                dig = s[p] - 48
                if k < 6:
                    micro = micro * 10 + dig
                k += 1
                p += 1
            if k == 0:
                return 0
            while k < 6:
                micro *= 10
                k += 1
    off[0] = 0
    if p < stop:
        c = s[p]
        if c == 90 and stop - p == 1:                                 # 'Z'
            status = 2
            p += 1
        elif (c == 43 or c == 45) and stop - p == 6 and s[p + 3] == 58:
            oh = _digits(s, p + 1, 2)
            om = _digits(s, p + 4, 2)
            if oh < 0 or oh > 23 or om < 0 or om > 59:
                return 0
            off[0] = (oh * 3600 + om * 60) * (-1 if c == 45 else 1)
            status = 2
            p += 6
    if p != stop:
        return 0
    wall[0] = ((_days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss) * 1000000
               + micro)
    return status


def parse_timestamps(const offset_t[::1] offsets, const uint8_t[::1] data,
                     const uint8_t[::1] validity, Py_ssize_t offset,
                     int64_t[::1] wall,          # OUT wall-clock microseconds since 1970
                     int32_t[::1] off,           # OUT UTC offset in seconds (status 2)
                     int8_t[::1] status):        # OUT 1 naive, 2 with offset, 0 not parsed
    cdef Py_ssize_t n = wall.shape[0], i, j
    with nogil:
        for i in range(n):
            j = i + offset
            wall[i] = 0
            off[i] = 0
            if not _valid(validity, j):
                status[i] = 0
            else:
                status[i] = _parse_ts(data, offsets[j], offsets[j + 1], &wall[i], &off[i])


# -- integer text ---------------------------------------------------------------------
def parse_integers(const offset_t[::1] offsets, const uint8_t[::1] data,
                   const uint8_t[::1] validity, Py_ssize_t offset,
                   int64_t[::1] value,           # OUT the number
                   int8_t[::1] status):          # OUT 1 parsed, 0 not (null, empty, other)
    """``[+-]?[0-9]{1,18}`` only; longer or non-ASCII text is left to the reference."""
    cdef Py_ssize_t n = value.shape[0], i, j
    cdef int64_t p, stop, v
    cdef int sign, k
    with nogil:
        for i in range(n):
            j = i + offset
            value[i] = 0
            status[i] = 0
            if not _valid(validity, j):
                continue
            p = offsets[j]
            stop = offsets[j + 1]
            sign = 1
            if p < stop and (data[p] == 43 or data[p] == 45):
                sign = -1 if data[p] == 45 else 1
                p += 1
            if stop - p < 1 or stop - p > 18:
                continue
            v = 0
            k = 1
            while p < stop:
                if data[p] < 48 or data[p] > 57:
                    k = 0
                    break
                v = v * 10 + (data[p] - 48)
                p += 1
            if k:
                value[i] = sign * v
                status[i] = 1


# -- small vocabularies and mcc ---------------------------------------------------------
def match_words(const offset_t[::1] offsets, const uint8_t[::1] data,
                const uint8_t[::1] validity, Py_ssize_t offset,
                const int32_t[::1] word_offsets,  # IN  word k is words[word_offsets[k]:...[k+1]]
                const uint8_t[::1] words,         # IN  the vocabulary, UTF-8, concatenated
                const int32_t[::1] codes,         # IN  code of word k
                int32_t other, int32_t none,
                int32_t[::1] out):                # OUT code, ``other`` or ``none`` (null, "")
    """Each value's code in a small fixed vocabulary, by comparing bytes."""
    cdef Py_ssize_t n = out.shape[0], i, j, k, p, m = codes.shape[0]
    cdef int64_t a, b, length
    cdef int32_t wa, wb
    cdef bint same
    with nogil:
        for i in range(n):
            j = i + offset
            if not _valid(validity, j):
                out[i] = none
                continue
            a = offsets[j]
            b = offsets[j + 1]
            length = b - a
            if length == 0:
                out[i] = none
                continue
            out[i] = other
            for k in range(m):
                wa = word_offsets[k]
                wb = word_offsets[k + 1]
                if wb - wa != length:
                    continue
                same = True
                for p in range(length):
                    if data[a + p] != words[wa + p]:
                        same = False
                        break
                if same:
                    out[i] = codes[k]
                    break


def parse_mccs(const offset_t[::1] offsets, const uint8_t[::1] data,
               const uint8_t[::1] validity, Py_ssize_t offset,
               int16_t[::1] out):                 # OUT 0..9999, -1 null or "", -2 malformed
    """The 4-digit number of each mcc (exactly four ASCII digits)."""
    cdef Py_ssize_t n = out.shape[0], i, j
    cdef int64_t a, b
    cdef int v
    with nogil:
        for i in range(n):
            j = i + offset
            if not _valid(validity, j):
                out[i] = -1
                continue
            a = offsets[j]
            b = offsets[j + 1]
            if b == a:
                out[i] = -1
            elif b - a != 4:
                out[i] = -2
            else:
                v = _digits(data, a, 4)
                out[i] = <int16_t>(v if v >= 0 else -2)


# -- digest rows -------------------------------------------------------------------------
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

cdef enum:
    COL_TEXT = 0     # UTF-8 string, written as a JSON string
    COL_INT64 = 1    # written in decimal
    COL_INT16 = 2
    COL_BOOL = 3     # bit-packed, written true / false


cdef struct Column:
    int kind
    const int32_t* offsets    # COL_TEXT
    const uint8_t* data       # COL_TEXT bytes, COL_BOOL bits
    const int64_t* i64
    const int16_t* i16
    const uint8_t* validity   # NULL: no nulls
    Py_ssize_t offset


cdef inline bint _is_valid(const Column* c, Py_ssize_t j) noexcept nogil:
    return c.validity == NULL or (c.validity[j >> 3] >> (j & 7)) & 1


cdef inline Py_ssize_t _put_int(uint8_t* w, int64_t v) noexcept nogil:
    """Decimal text of ``v`` at ``w`` (at most 20 bytes); its length."""
    cdef uint8_t tmp[24]
    cdef Py_ssize_t k = 0, n = 0
    cdef uint64_t u = <uint64_t>v
    if v < 0:
        u = <uint64_t>0 - u
    while True:
        tmp[k] = <uint8_t>(48 + u % 10)
        k += 1
        u //= 10
        if u == 0:
            break
    if v < 0:
        w[0] = 45
        n = 1
    while k > 0:
        k -= 1
        w[n] = tmp[k]
        n += 1
    return n


cdef inline Py_ssize_t _put_value(uint8_t* w, const Column* c, Py_ssize_t j) noexcept nogil:
    """One value's JSON text at ``w``; its length, or -1 for text that needs escaping
    (the caller then takes the general path)."""
    cdef int32_t a, b, p
    cdef uint8_t ch
    if not _is_valid(c, j):
        memcpy(w, b"null", 4)
        return 4
    if c.kind == COL_INT64:
        return _put_int(w, c.i64[j])
    if c.kind == COL_INT16:
        return _put_int(w, c.i16[j])
    if c.kind == COL_BOOL:
        if (c.data[j >> 3] >> (j & 7)) & 1:
            memcpy(w, b"true", 4)
            return 4
        memcpy(w, b"false", 5)
        return 5
    a = c.offsets[j]
    b = c.offsets[j + 1]
    for p in range(a, b):
        ch = c.data[p]
        if ch < 32 or ch == 34 or ch == 92:    # control, '"' or '\\'
            return -1
    w[0] = 34
    memcpy(&w[1], &c.data[a], b - a)
    w[b - a + 1] = 34
    return b - a + 2


cdef inline Py_ssize_t _bound(const Column* c, Py_ssize_t n) noexcept nogil:
    """At most how many bytes the column's ``n`` values take (null: 4 bytes)."""
    if c.kind == COL_INT64:
        return 20 * n
    if c.kind == COL_INT16:
        return 6 * n
    if c.kind == COL_BOOL:
        return 5 * n
    return c.offsets[c.offset + n] - c.offsets[c.offset] + 4 * n


def digest_rows(list columns, Py_ssize_t n):
    """The canonical rows ``[v0,v1,...]\\n`` of ``n`` rows (``txcore.io.digest``), or None
    when a text value needs JSON escaping (the caller then encodes in Arrow).

    ``columns[k]`` is ``(kind, offsets, data, values, validity, offset)``: kind 0 text
    (int32 ``offsets`` and ``data``), 1 int64 and 2 int16 (``values``), 3 bool (bit-packed
    ``data``); ``validity`` a bitmap or empty; ``offset`` the array's offset.
    """
    cdef Py_ssize_t m = len(columns), k, i, size = 0, at = 0, got
    cdef Column* cols = <Column*>malloc(m * sizeof(Column))
    cdef const int32_t[::1] o
    cdef const uint8_t[::1] d
    cdef const int64_t[::1] v64
    cdef const int16_t[::1] v16
    cdef const uint8_t[::1] valid
    cdef bytearray out
    cdef uint8_t* w
    cdef bint escape = False
    keep = []
    try:
        for k in range(m):
            kind, offsets, data, values, validity, offset = columns[k]
            cols[k].kind = kind
            cols[k].offset = offset
            cols[k].offsets = NULL
            cols[k].data = NULL
            cols[k].i64 = NULL
            cols[k].i16 = NULL
            cols[k].validity = NULL
            keep.append(columns[k])
            if kind == COL_TEXT:
                o = offsets
                cols[k].offsets = &o[0]
            if kind == COL_TEXT or kind == COL_BOOL:
                d = data
                if d.shape[0]:
                    cols[k].data = &d[0]
            if kind == COL_INT64:
                v64 = values
                if v64.shape[0]:
                    cols[k].i64 = &v64[0]
            if kind == COL_INT16:
                v16 = values
                if v16.shape[0]:
                    cols[k].i16 = &v16[0]
            valid = validity
            if valid.shape[0]:
                cols[k].validity = &valid[0]
        size = n * (m + 2)                      # [ ] , ... \\n
        for k in range(m):
            size += _bound(&cols[k], n)
        out = bytearray(size)                   # room for the longest rows; cut at the end
        w = out
        with nogil:
            for i in range(n):                  # one pass, writing
                w[at] = 91                      # '['
                at += 1
                for k in range(m):
                    if k:
                        w[at] = 44              # ','
                        at += 1
                    got = _put_value(&w[at], &cols[k], i + cols[k].offset)
                    if got < 0:
                        escape = True
                        break
                    at += got
                if escape:
                    break
                w[at] = 93                      # ']'
                w[at + 1] = 10                  # '\\n'
                at += 2
        if escape:
            return None
        del out[at:]
        return out
    finally:
        free(cols)
