"""Encoders over Arrow buffers, one call per column or one for the whole batch: the
per-row text work of encoding a batch for the pricing kernel.

* ``hash_strings``: keyed SipHash-2-4-128 of each value (txn ids, card numbers),
  with its byte length (-1 for null).  The same digest keys the state, so no
  identifier is ever at rest in clear (``txcore.state.keys``).
* ``parse_timestamps``: ISO 8601 text (docs/input.md#timestamps) to wall-clock microseconds and
  an offset; anything unusual is left to the reference validator.
* ``parse_integers``: ASCII decimal text to int64.
* ``encode_rows``: the encoder's per-row text work on every column of a batch in one
  pass over the rows (the digests, the card check, vocabulary codes, mcc, amount and
  the row's stateless checks), the same helpers as the column functions.

Layers (as in scikit-learn's ``_loss``): ``cdef inline ... noexcept nogil``
helpers on C scalars, then one ``nogil`` loop per column.  Pure-Python twin:
``encode_py.py``; ``tests/test_encode.py`` checks the two against each other.
"""
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
from cpython.bytearray cimport PyByteArray_FromStringAndSize

from txcore._fast.textrules cimport _base, _is_card_no

CYTHON_MODULE = 1

ctypedef fused offset_t:
    int32_t
    int64_t


# -- SipHash-2-4 with 128-bit output (Aumasson & Bernstein) -----------------------------
cdef extern from *:
    """
    #include <string.h>
    /* eight bytes as a little-endian word, in one load where the machine is little-endian */
    static inline uint64_t txcore_load_le64(const uint8_t* p) {
        uint64_t v;
        memcpy(&v, p, 8);
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        v = __builtin_bswap64(v);
    #endif
        return v;
    }
    #define TXCORE_ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
    #define TXCORE_SIPROUND                                                     \
        do {                                                                    \
            v0 += v1; v1 = TXCORE_ROTL(v1, 13); v1 ^= v0; v0 = TXCORE_ROTL(v0, 32); \
            v2 += v3; v3 = TXCORE_ROTL(v3, 16); v3 ^= v2;                       \
            v0 += v3; v3 = TXCORE_ROTL(v3, 21); v3 ^= v0;                       \
            v2 += v1; v1 = TXCORE_ROTL(v1, 17); v1 ^= v2; v2 = TXCORE_ROTL(v2, 32); \
        } while (0)
    /* SipHash-2-4-128 of the n bytes at s: the reference C of the authors, the state in
       four locals so that it stays in registers */
    static inline void txcore_siphash128(const uint8_t* s, int64_t n, uint64_t k0,
                                         uint64_t k1, uint64_t* hi, uint64_t* lo) {
        uint64_t v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL ^ 0xee;
        uint64_t v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
        const uint8_t* end = s + (n - n % 8);
        uint64_t m, b = ((uint64_t)n) << 56;  /* the tail, with the length in the top byte */
        for (; s != end; s += 8) {            /* full 8-byte little-endian words */
            m = txcore_load_le64(s);
            v3 ^= m; TXCORE_SIPROUND; TXCORE_SIPROUND; v0 ^= m;
        }
        switch (n & 7) {
            case 7: b |= ((uint64_t)s[6]) << 48; /* fall through */
            case 6: b |= ((uint64_t)s[5]) << 40; /* fall through */
            case 5: b |= ((uint64_t)s[4]) << 32; /* fall through */
            case 4: b |= ((uint64_t)s[3]) << 24; /* fall through */
            case 3: b |= ((uint64_t)s[2]) << 16; /* fall through */
            case 2: b |= ((uint64_t)s[1]) << 8;  /* fall through */
            case 1: b |= ((uint64_t)s[0]);
        }
        v3 ^= b; TXCORE_SIPROUND; TXCORE_SIPROUND; v0 ^= b;
        v2 ^= 0xee;
        TXCORE_SIPROUND; TXCORE_SIPROUND; TXCORE_SIPROUND; TXCORE_SIPROUND;
        *hi = v0 ^ v1 ^ v2 ^ v3;
        v1 ^= 0xdd;
        TXCORE_SIPROUND; TXCORE_SIPROUND; TXCORE_SIPROUND; TXCORE_SIPROUND;
        *lo = v0 ^ v1 ^ v2 ^ v3;
    }
    """
    void _siphash128 "txcore_siphash128"(const uint8_t* s, int64_t n, uint64_t k0, uint64_t k1,
                                         uint64_t* hi, uint64_t* lo) noexcept nogil
    uint64_t txcore_load_le64(const uint8_t* p) noexcept nogil


def siphash128(const uint8_t[::1] data, uint64_t k0, uint64_t k1):
    """``(hi, lo)`` keyed digest of one byte string."""
    cdef uint64_t hi = 0, lo = 0
    _siphash128(_base(data), data.shape[0], k0, k1, &hi, &lo)
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
    cdef const uint8_t* base = _base(data)
    with nogil:
        for i in range(n):
            j = i + offset
            if not _valid(validity, j):
                hi[i] = 0
                lo[i] = 0
                length[i] = -1
            else:
                length[i] = <int32_t>(offsets[j + 1] - offsets[j])
                _siphash128(base + offsets[j], offsets[j + 1] - offsets[j], k0, k1, &hi[i],
                            &lo[i])


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
cdef inline bint _parse_int(const uint8_t* s, int64_t n, int64_t* value) noexcept nogil:
    """``[+-]?[0-9]{1,18}`` into ``value``; False for anything else (``value`` untouched)."""
    cdef int64_t p = 0, v = 0
    cdef int sign = 1
    if n > 0 and (s[0] == 43 or s[0] == 45):                          # '+' or '-'
        sign = -1 if s[0] == 45 else 1
        p = 1
    if n - p < 1 or n - p > 18:
        return False
    while p < n:
        if s[p] < 48 or s[p] > 57:
            return False
        v = v * 10 + (s[p] - 48)
        p += 1
    value[0] = sign * v
    return True


def parse_integers(const offset_t[::1] offsets, const uint8_t[::1] data,
                   const uint8_t[::1] validity, Py_ssize_t offset,
                   int64_t[::1] value,           # OUT the number
                   int8_t[::1] status):          # OUT 1 parsed, 0 not (null, empty, other)
    """``[+-]?[0-9]{1,18}`` only; longer or non-ASCII text is left to the reference."""
    cdef Py_ssize_t n = value.shape[0], i, j
    cdef const uint8_t* base = _base(data)
    with nogil:
        for i in range(n):
            j = i + offset
            value[i] = 0
            status[i] = 0
            if _valid(validity, j):
                status[i] = _parse_int(base + offsets[j], offsets[j + 1] - offsets[j], &value[i])


# -- small vocabularies and mcc ---------------------------------------------------------
cdef struct Words:
    const int32_t* offsets    # word k is words[offsets[k]:offsets[k + 1]]
    const uint8_t* words
    const int32_t* codes
    Py_ssize_t m


cdef inline int32_t _word_code(const Words* w, const uint8_t* s, int64_t n,
                               int32_t other) noexcept nogil:
    """The code of the ``n`` bytes at ``s`` (``n`` > 0), or ``other``."""
    cdef Py_ssize_t k
    cdef int64_t p
    cdef const uint8_t* word
    for k in range(w.m):
        if w.offsets[k + 1] - w.offsets[k] != n:
            continue
        word = w.words + w.offsets[k]
        p = 0
        while p < n and s[p] == word[p]:      # words are short: no call to memcmp
            p += 1
        if p == n:
            return w.codes[k]
    return other


cdef inline Words _words(const int32_t[::1] word_offsets, const uint8_t[::1] words,
                         const int32_t[::1] codes) noexcept:
    cdef Words w
    w.offsets = &word_offsets[0]
    w.words = _base(words)
    w.codes = &codes[0] if codes.shape[0] else NULL
    w.m = codes.shape[0]
    return w


def match_words(const offset_t[::1] offsets, const uint8_t[::1] data,
                const uint8_t[::1] validity, Py_ssize_t offset,
                const int32_t[::1] word_offsets,  # IN  word k is words[word_offsets[k]:...[k+1]]
                const uint8_t[::1] words,         # IN  the vocabulary, UTF-8, concatenated
                const int32_t[::1] codes,         # IN  code of word k
                int32_t other, int32_t none,
                int32_t[::1] out):                # OUT code, ``other`` or ``none`` (null, "")
    """Each value's code in a small fixed vocabulary, by comparing bytes."""
    cdef Py_ssize_t n = out.shape[0], i, j
    cdef Words w = _words(word_offsets, words, codes)
    cdef const uint8_t* base = _base(data)
    with nogil:
        for i in range(n):
            j = i + offset
            if not _valid(validity, j) or offsets[j + 1] == offsets[j]:
                out[i] = none
            else:
                out[i] = _word_code(&w, base + offsets[j], offsets[j + 1] - offsets[j], other)


cdef inline int16_t _mcc(const uint8_t* s, int64_t n) noexcept nogil:
    """0..9999 for exactly four ASCII digits, -1 for "", -2 for anything else."""
    cdef int v = 0, k, d
    if n == 0:
        return -1
    if n != 4:
        return -2
    for k in range(4):
        d = <int>s[k] - 48
        if d < 0 or d > 9:
            return -2
        v = v * 10 + d
    return <int16_t>v


def parse_mccs(const offset_t[::1] offsets, const uint8_t[::1] data,
               const uint8_t[::1] validity, Py_ssize_t offset,
               int16_t[::1] out):                 # OUT 0..9999, -1 null or "", -2 malformed
    """The 4-digit number of each mcc (exactly four ASCII digits)."""
    cdef Py_ssize_t n = out.shape[0], i, j
    cdef const uint8_t* base = _base(data)
    with nogil:
        for i in range(n):
            j = i + offset
            out[i] = -1 if not _valid(validity, j) else \
                _mcc(base + offsets[j], offsets[j + 1] - offsets[j])


# -- the fused pass: every text column of a row at once ------------------------------------
#: The text columns ``encode_rows`` reads, in the order it takes them.
FUSED_TEXT = ("txn_id", "orig_txn_id", "card_no", "kind", "channel", "fee_item", "currency",
              "benefit", "mcc", "amount", "acq_bank", "city", "merchant_id")
#: Its vocabularies, in the order it takes them (``(word_offsets, words, codes)`` each).
FUSED_WORDS = ("kind", "channel", "fee_item", "currency", "benefit")
#: Its larger vocabularies, looked up by hash (``(word_offsets, words, codes)`` each):
#: banks and cities interned so far (and well-formed), the partner merchants.
FUSED_TABLES = ("acq_bank", "city", "merchant_id")
cpdef enum:           # the bank or city code of a value not in its table: the caller codes it
    NOT_IN_TABLE = -3
cpdef enum:           # bits of ``kind_rules[kind]``: what a row of that kind needs to be clean
    R_COUNTERPARTY = 1    # a known-shape acq_bank and city
    R_FEE_ITEM = 2        # a fee item of the vocabulary
    R_MERCHANT = 4        # a merchant_id (any text)
    R_BENEFIT = 8         # a benefit of the vocabulary
    R_REVERSAL = 16       # an orig_txn_id; its amount only present (not bounded)

cdef enum:            # FUSED_TEXT positions
    T_TXN, T_ORIG, T_CARD, T_KIND, T_CHANNEL, T_FEE_ITEM, T_CURRENCY, T_BENEFIT, T_MCC, T_AMOUNT,
    T_BANK, T_CITY, T_MERCHANT, N_TEXT

cdef enum:            # FUSED_WORDS positions
    W_KIND, W_CHANNEL, W_FEE_ITEM, W_CURRENCY, W_BENEFIT, N_WORDS

cdef enum:            # FUSED_TABLES positions
    H_BANK, H_CITY, H_MERCHANT, N_TABLES


cdef struct Table:
    Words w
    int32_t* slots            # word index, -1 empty (open addressing, linear probing)
    uint64_t mask


cdef inline uint64_t _fnv1a(const uint8_t* s, int64_t n) noexcept nogil:
    cdef uint64_t h = 14695981039346656037ULL
    cdef int64_t p
    for p in range(n):
        h = (h ^ s[p]) * 1099511628211ULL
    return h


cdef int _table_init(Table* t, const int32_t[::1] word_offsets, const uint8_t[::1] words,
                     const int32_t[::1] codes) except -1:
    """A hash table over the words (at most half full); free ``t.slots`` after."""
    cdef Py_ssize_t k, size = 16
    cdef uint64_t at
    t.w = _words(word_offsets, words, codes)
    while size < 2 * t.w.m:
        size *= 2
    t.slots = <int32_t*>malloc(size * sizeof(int32_t))
    if t.slots == NULL:
        raise MemoryError()
    t.mask = size - 1
    for k in range(size):
        t.slots[k] = -1
    for k in range(t.w.m):
        at = _fnv1a(t.w.words + t.w.offsets[k], t.w.offsets[k + 1] - t.w.offsets[k]) & t.mask
        while t.slots[at] >= 0:
            at = (at + 1) & t.mask
        t.slots[at] = <int32_t>k
    return 0


cdef inline int32_t _table_code(const Table* t, const Text* c, Py_ssize_t i, int32_t other,
                                int32_t none) noexcept nogil:
    """As ``_code``, by hash: the value's code, ``other`` or ``none`` (null, "")."""
    cdef const uint8_t* s
    cdef const uint8_t* word
    cdef int64_t n, p
    cdef int32_t k
    cdef uint64_t at
    if not _value(c, i, &s, &n) or n == 0:
        return none
    at = _fnv1a(s, n) & t.mask
    while t.slots[at] >= 0:
        k = t.slots[at]
        if t.w.offsets[k + 1] - t.w.offsets[k] == n:
            word = t.w.words + t.w.offsets[k]
            p = 0
            while p < n and s[p] == word[p]:
                p += 1
            if p == n:
                return t.w.codes[k]
        at = (at + 1) & t.mask
    return other


cdef struct Text:
    const int32_t* offsets    # NULL: the column is absent (every value null)
    const uint8_t* data
    const uint8_t* validity   # NULL: no nulls
    Py_ssize_t offset
    # a dictionary column: the strings above are its dictionary, row i's value is
    # entry index[i + index_offset] (bounds checked by the reader's full validation)
    const int32_t* index      # NULL: a plain string column
    const uint8_t* index_validity   # NULL: no null index
    Py_ssize_t index_offset


cdef inline bint _value(const Text* c, Py_ssize_t i, const uint8_t** s,
                        int64_t* n) noexcept nogil:
    """Row ``i``'s bytes at ``s[0]``, ``n[0]`` of them; False for a null."""
    cdef Py_ssize_t j
    if c.offsets == NULL:
        return False
    if c.index != NULL:
        j = i + c.index_offset
        if c.index_validity != NULL and not (c.index_validity[j >> 3] >> (j & 7)) & 1:
            return False
        j = c.index[j] + c.offset
    else:
        j = i + c.offset
    if c.validity != NULL and not (c.validity[j >> 3] >> (j & 7)) & 1:
        return False
    s[0] = c.data + c.offsets[j]
    n[0] = c.offsets[j + 1] - c.offsets[j]
    return True


cdef inline int32_t _code(const Text* c, const Words* w, Py_ssize_t i, int32_t other,
                          int32_t none) noexcept nogil:
    """As ``match_words`` for one value."""
    cdef const uint8_t* s
    cdef int64_t n
    if not _value(c, i, &s, &n) or n == 0:
        return none
    return _word_code(w, s, n, other)


cdef inline int32_t _hash(const Text* c, Py_ssize_t i, uint64_t k0, uint64_t k1,
                          uint64_t* hi, uint64_t* lo) noexcept nogil:
    """As ``hash_strings`` for one value: its byte length, -1 for null (digest 0)."""
    cdef const uint8_t* s
    cdef int64_t n
    if not _value(c, i, &s, &n):
        hi[0] = 0
        lo[0] = 0
        return -1
    _siphash128(s, n, k0, k1, hi, lo)
    return <int32_t>n


def encode_rows(list texts,                     # IN  FUSED_TEXT: (offsets, data, validity,
                                                #     offset) of a ``string`` array, those
                                                #     of a dictionary's strings followed by
                                                #     (indices, validity, offset), or None
                list words,                     # IN  FUSED_WORDS: (word_offsets, words, codes)
                list tables,                    # IN  FUSED_TABLES: the same
                uint64_t k0, uint64_t k1,       # IN  the key
                const uint8_t[::1] kind_rules,  # IN  R_* bits per kind code
                const uint8_t[:, ::1] channel_ok,   # IN [kind, channel code]: allowed
                const int64_t[::1] min_amount,  # IN  smallest amount per kind code
                int64_t max_amount,
                bint parse_amount,              # IN  False: amount, amount_ok are given
                int32_t[::1] bank,              # OUT code, -1 none, NOT_IN_TABLE
                int32_t[::1] city,              # OUT code, -1 none, NOT_IN_TABLE
                int32_t[::1] merchant,          # OUT code, -1 other or none
                uint64_t[::1] txn_hi, uint64_t[::1] txn_lo,      # OUT digests (0: null)
                uint64_t[::1] orig_hi, uint64_t[::1] orig_lo,
                uint64_t[::1] card_hi, uint64_t[::1] card_lo,
                int8_t[::1] kind,               # OUT code, -1 none or other
                int8_t[::1] channel,            # OUT code, OTHER_CHANNEL, 0 none
                int8_t[::1] fee_item,           # OUT code, OTHER_FEE_ITEM, 0 none
                int16_t[::1] mcc,               # OUT 0..9999, -1 none, -2 malformed
                int64_t[::1] amount,            # OUT (IN unless parse_amount) 0 when not
                uint8_t[::1] amount_ok,         # OUT (IN unless parse_amount) 1 parsed
                uint8_t[::1] slow,              # IN/OUT 1: the reference validator decides
                int8_t other_channel, int8_t other_fee_item):
    """Every per-row text job of the encoder in one pass over the rows: the keyed digests
    (``hash_strings``), the card check (``cardcheck``), the vocabulary codes
    (``match_words``, and by hash for banks, cities and merchants), the mcc and the amount
    (``parse_mccs``, ``parse_integers``), and the row's stateless checks OR-ed into
    ``slow`` — each exactly as the column functions and the encoder's column path compute
    them (``tests/test_encoder_fused.py``).  A bank or city not in its table (new, or
    malformed) is left NOT_IN_TABLE, and so is its row's counterparty check."""
    cdef Py_ssize_t n = slow.shape[0], i, k
    cdef Text t[N_TEXT]
    cdef Words w[N_WORDS]
    cdef Table h[N_TABLES]
    cdef const int32_t[::1] o
    cdef const uint8_t[::1] d
    cdef const uint8_t[::1] v
    cdef const int32_t[::1] codes
    cdef const int32_t[::1] index
    if len(texts) != N_TEXT or len(words) != N_WORDS or len(tables) != N_TABLES:
        raise ValueError("encode_rows: texts, words and tables as FUSED_TEXT, FUSED_WORDS "
                         "and FUSED_TABLES")
    for k in range(N_TEXT):             # the arrays stay alive in ``texts``, the caller's
        t[k].offsets = NULL
        t[k].data = NULL
        t[k].validity = NULL
        t[k].offset = 0
        t[k].index = NULL
        t[k].index_validity = NULL
        t[k].index_offset = 0
        if texts[k] is not None:
            o, d, v, t[k].offset = texts[k][:4]
            t[k].offsets = &o[0]
            t[k].data = _base(d)
            t[k].validity = _base(v)
            if len(texts[k]) == 7:      # a dictionary: (..., index, index validity, offset)
                index, v, t[k].index_offset = texts[k][4:]
                if index.shape[0]:
                    t[k].index = &index[0]
                else:                   # no rows: every value null
                    t[k].offsets = NULL
                t[k].index_validity = _base(v)
    for k in range(N_WORDS):
        o, d, codes = words[k]
        w[k] = _words(o, d, codes)
    for k in range(N_TABLES):
        h[k].slots = NULL
    try:
        for k in range(N_TABLES):
            o, d, codes = tables[k]
            _table_init(&h[k], o, d, codes)
        _encode_rows(n, t, w, h, k0, k1, kind_rules, channel_ok, min_amount, max_amount,
                     parse_amount, bank, city, merchant, txn_hi, txn_lo, orig_hi, orig_lo,
                     card_hi, card_lo, kind, channel, fee_item, mcc, amount, amount_ok, slow,
                     other_channel, other_fee_item)
    finally:
        for k in range(N_TABLES):
            free(h[k].slots)


cdef void _encode_rows(Py_ssize_t n, const Text* t, const Words* w, const Table* h,
                       uint64_t k0, uint64_t k1, const uint8_t[::1] kind_rules,
                       const uint8_t[:, ::1] channel_ok, const int64_t[::1] min_amount,
                       int64_t max_amount, bint parse_amount, int32_t[::1] bank,
                       int32_t[::1] city, int32_t[::1] merchant, uint64_t[::1] txn_hi,
                       uint64_t[::1] txn_lo, uint64_t[::1] orig_hi, uint64_t[::1] orig_lo,
                       uint64_t[::1] card_hi, uint64_t[::1] card_lo, int8_t[::1] kind,
                       int8_t[::1] channel, int8_t[::1] fee_item, int16_t[::1] mcc,
                       int64_t[::1] amount, uint8_t[::1] amount_ok, uint8_t[::1] slow,
                       int8_t other_channel, int8_t other_fee_item) noexcept:
    """The loop of ``encode_rows``, over its columns and tables."""
    cdef Py_ssize_t i
    cdef int32_t txn_len, orig_len, kd, ch, fe, kk, bk, ct, me
    cdef uint8_t rules, s_
    cdef const uint8_t* text
    cdef int64_t length
    with nogil:
        for i in range(n):
            s_ = slow[i]
            txn_len = _hash(&t[T_TXN], i, k0, k1, &txn_hi[i], &txn_lo[i])
            orig_len = _hash(&t[T_ORIG], i, k0, k1, &orig_hi[i], &orig_lo[i])
            if _value(&t[T_CARD], i, &text, &length):
                _siphash128(text, length, k0, k1, &card_hi[i], &card_lo[i])
                if not _is_card_no(text, length):
                    s_ = 1
            else:
                card_hi[i] = 0
                card_lo[i] = 0
                s_ = 1
            kd = _code(&t[T_KIND], &w[W_KIND], i, -1, -1)
            ch = _code(&t[T_CHANNEL], &w[W_CHANNEL], i, other_channel, 0)
            fe = _code(&t[T_FEE_ITEM], &w[W_FEE_ITEM], i, other_fee_item, 0)
            kind[i] = <int8_t>kd
            channel[i] = <int8_t>ch
            fee_item[i] = <int8_t>fe
            if _value(&t[T_MCC], i, &text, &length):
                mcc[i] = _mcc(text, length)
            else:
                mcc[i] = -1
            if parse_amount:
                amount[i] = 0
                amount_ok[i] = 0
                if _value(&t[T_AMOUNT], i, &text, &length):
                    amount_ok[i] = _parse_int(text, length, &amount[i])
            bk = _table_code(&h[H_BANK], &t[T_BANK], i, NOT_IN_TABLE, -1)
            ct = _table_code(&h[H_CITY], &t[T_CITY], i, NOT_IN_TABLE, -1)
            me = _table_code(&h[H_MERCHANT], &t[T_MERCHANT], i, -1, -2)
            bank[i] = bk
            city[i] = ct
            merchant[i] = me if me >= -1 else -1
            kk = kd if kd >= 0 else 0
            rules = kind_rules[kk] if kd >= 0 else 0
            if (kd < 0 or not channel_ok[kk, ch]
                    or _code(&t[T_CURRENCY], &w[W_CURRENCY], i, 0, 1) == 0
                    or mcc[i] == -2
                    or txn_len <= 0 or txn_len > 64
                    or (rules & R_COUNTERPARTY and (bk == -1 or ct == -1))
                    or (rules & R_FEE_ITEM and (fe == 0 or fe == other_fee_item))
                    or (rules & R_MERCHANT and me == -2)
                    or (rules & R_BENEFIT
                        and _code(&t[T_BENEFIT], &w[W_BENEFIT], i, 0, 1) == 0)
                    or not amount_ok[i]):
                s_ = 1
            elif rules & R_REVERSAL:
                if orig_len <= 0 or orig_len > 64:
                    s_ = 1
            elif amount[i] > max_amount or amount[i] < min_amount[kk]:
                s_ = 1
            slow[i] = s_


# -- digest rows -------------------------------------------------------------------------
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


cdef extern from *:
    """
    /* "00" to "99": two decimal digits a division */
    static const char txcore_digits2[201] =
        "0001020304050607080910111213141516171819202122232425262728293031323334353637383940"
        "4142434445464748495051525354555657585960616263646566676869707172737475767778798081"
        "828384858687888990919293949596979899";
    /* Whether any of the eight bytes of v is below 32, '"' or '\\': a byte JSON escapes.
       Bytes from 0x80 (UTF-8) are written as they are.  The word tests are exact for
       "any byte" (https://graphics.stanford.edu/~seander/bithacks.html#HasLessInWord). */
    static inline int txcore_needs_escape8(uint64_t v) {
        const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
        uint64_t quote = v ^ (ones * 34), slash = v ^ (ones * 92);
        return (((v - ones * 32) & ~v)
                | ((quote - ones) & ~quote) | ((slash - ones) & ~slash)) & highs ? 1 : 0;
    }
    """
    const char* txcore_digits2
    bint txcore_needs_escape8(uint64_t v) noexcept nogil


cdef inline Py_ssize_t _put_int(uint8_t* w, int64_t v) noexcept nogil:
    """Decimal text of ``v`` at ``w`` (at most 20 bytes); its length.  Two digits a step,
    from the right, into ``tmp``; then one copy."""
    cdef uint8_t tmp[24]
    cdef Py_ssize_t k = 24, n = 0
    cdef uint64_t u = <uint64_t>v, q
    cdef Py_ssize_t r
    if v < 0:
        u = <uint64_t>0 - u                     # INT64_MIN included: 2**63 as unsigned
        w[0] = 45                               # '-'
        n = 1
    while u >= 100:
        q = u // 100
        r = <Py_ssize_t>(u - q * 100) * 2
        k -= 2
        tmp[k] = txcore_digits2[r]
        tmp[k + 1] = txcore_digits2[r + 1]
        u = q
    if u >= 10:
        k -= 2
        tmp[k] = txcore_digits2[2 * u]
        tmp[k + 1] = txcore_digits2[2 * u + 1]
    else:
        k -= 1
        tmp[k] = <uint8_t>(48 + u)
    memcpy(&w[n], &tmp[k], 24 - k)
    return n + 24 - k


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
    p = a
    while p + 8 <= b:                           # eight bytes a test, then the rest
        if txcore_needs_escape8(txcore_load_le64(&c.data[p])):
            return -1
        p += 8
    while p < b:
        ch = c.data[p]
        if ch < 32 or ch == 34 or ch == 92:    # control, '"' or '\\'
            return -1
        p += 1
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
        out = PyByteArray_FromStringAndSize(NULL, size)  # room for the longest rows, not
                                                          # zeroed; cut at the end
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
