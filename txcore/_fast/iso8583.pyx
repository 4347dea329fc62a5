"""ISO 8583 messages to Arrow string columns, for fixed-layout specifications.

A fixed-layout specification has ASCII or binary (BCD/hex) fields of fixed or
LL.../binary/BCD variable length, an ASCII or binary MTI and primary/secondary
bitmaps (``txcore.io.iso8583.Layout`` says whether a specification is one).  The
loop decodes every message it can read plainly and writes the wanted fields
straight into Arrow buffers (offsets, data, validity); a message with anything
unusual — an error, a byte above 0x7F in an ASCII field, a length that is not
plain digits, a tertiary bitmap, a field the specification lacks — is marked
``DEFER`` and left to the reference decoder (pyiso8583, ``iso8583_py.py``), so
every reject is worded by the reference.  Runs without the GIL.
"""
import numpy as np
import pyarrow as pa

from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t

CYTHON_MODULE = 1
OK, BAD, DEFER = 0, 1, 2

cdef const uint8_t* _HEX = <const uint8_t*>b"0123456789ABCDEF"


def frame_index(const uint8_t[::1] data, int64_t pos, int64_t max_frames,
                int64_t[::1] starts, int32_t[::1] lens):
    """See ``iso8583_py.frame_index``."""
    cdef int64_t end = data.shape[0]
    cdef int64_t count = 0
    cdef int64_t n
    with nogil:
        while count < max_frames and pos + 2 <= end:
            n = (<int64_t>data[pos] << 8) | data[pos + 1]
            if pos + 2 + n > end:
                break
            starts[count] = pos
            lens[count] = <int32_t>n
            count += 1
            pos += 2 + n
    return count, pos


cdef inline int _hexval(uint8_t c) noexcept nogil:
    if 48 <= c <= 57:
        return c - 48
    if 65 <= c <= 70:
        return c - 55
    if 97 <= c <= 102:
        return c - 87
    return -1


cdef int _bitmap(const uint8_t* data, int64_t pos, int64_t end, bint binary,
                 uint8_t* bits) noexcept nogil:
    """8 bitmap bytes into ``bits``; the bytes it used, or -1."""
    cdef int k, hi, lo
    if binary:
        if pos + 8 > end:
            return -1
        for k in range(8):
            bits[k] = data[pos + k]
        return 8
    if pos + 16 > end:
        return -1
    for k in range(8):
        hi = _hexval(data[pos + 2 * k])
        lo = _hexval(data[pos + 2 * k + 1])
        if hi < 0 or lo < 0:
            return -1
        bits[k] = <uint8_t>(hi * 16 + lo)
    return 16


cdef int64_t _field(const uint8_t* data, int64_t pos, int64_t end, int f,
                    const int16_t* len_type, const int32_t* max_len,
                    const uint8_t* data_bin, const uint8_t* len_enc,
                    const uint8_t* nibbles, const uint8_t* lpad,
                    const uint8_t* rpad, int64_t* start, int64_t* nbytes,
                    int8_t* drop) noexcept nogil:
    """Decode field ``f`` at ``pos``: its data's start and byte count, and which pad
    nibble to drop (0 none, 1 first, 2 last).  The next position, or -1 to defer."""
    cdef int lt = len_type[f]
    cdef int64_t L = 0, blen, k
    cdef int hi, lo
    cdef uint8_t c
    drop[0] = 0
    if lt == 0:
        L = max_len[f]
    else:
        if pos + lt > end:
            return -1
        for k in range(lt):
            c = data[pos + k]
            if len_enc[f] == 2:
                L = L * 256 + c
            elif len_enc[f] == 1:
                hi, lo = c >> 4, c & 15
                if hi > 9 or lo > 9:
                    return -1
                L = L * 100 + hi * 10 + lo
            else:
                if c < 48 or c > 57:
                    return -1
                L = L * 10 + (c - 48)
        if L > max_len[f]:
            return -1
        pos += lt
    if nibbles[f]:
        blen = (L + 1) // 2
    else:
        blen = L
    if pos + blen > end:
        return -1
    start[0], nbytes[0] = pos, blen
    if L == 0:
        return pos
    if data_bin[f]:
        if nibbles[f] and (L & 1):
            if lpad[f] != 0 and _HEX[data[pos] >> 4] == lpad[f]:
                drop[0] = 1
            elif rpad[f] != 0 and _HEX[data[pos + blen - 1] & 15] == rpad[f]:
                drop[0] = 2
            else:
                return -1
    else:
        for k in range(blen):
            if data[pos + k] > 127:
                return -1
    return pos + blen


def decode_fields(const uint8_t[::1] data, const int64_t[::1] starts,
                  const int32_t[::1] lens, layout, wanted):
    """See ``iso8583_py.decode_fields``; ``status`` is ``OK`` or ``DEFER`` here."""
    cdef Py_ssize_t n = starts.shape[0]
    cdef int nw = len(wanted)
    if n == 0:
        return (np.zeros(0, np.int8), [pa.array([], pa.string()) for _ in wanted], {})
    cdef int16_t[::1] want = np.asarray(wanted, np.int16)
    cdef int16_t[::1] slot = np.full(193, -1, np.int16)
    cdef int w
    for w in range(nw):
        slot[want[w]] = w
    cdef const int16_t[::1] len_type = layout.len_type
    cdef const int32_t[::1] max_len = layout.max_len
    cdef const uint8_t[::1] data_bin = layout.data_bin
    cdef const uint8_t[::1] len_enc = layout.len_enc
    cdef const uint8_t[::1] nibbles = layout.nibbles
    cdef const uint8_t[::1] lpad = layout.lpad
    cdef const uint8_t[::1] rpad = layout.rpad
    cdef const uint8_t[::1] defined = layout.defined
    cdef bint mti_bin = layout.mti_bin, p_bin = layout.p_bin, s_bin = layout.s_bin
    cdef bint header = layout.len_type[0] != 0 or layout.max_len[0] != 0
    caps = np.array([layout.max_chars(f) for f in wanted], np.int64)
    cdef int64_t[::1] cap = caps
    cdef int64_t[::1] base = np.concatenate([[0], np.cumsum(caps * n)]).astype(np.int64)
    buf = np.empty(max(int(base[nw]), 1), np.uint8)
    cdef uint8_t[::1] out = buf
    offs = np.zeros((nw, n + 1), np.int32)
    cdef int32_t[:, ::1] off = offs
    valid_np = np.zeros((nw, n), np.uint8)
    cdef uint8_t[:, ::1] valid = valid_np
    status_np = np.zeros(n, np.int8)
    cdef int8_t[::1] status = status_np
    cdef int64_t[::1] fstart = np.zeros(nw, np.int64)
    cdef int64_t[::1] fbytes = np.zeros(nw, np.int64)
    cdef int8_t[::1] fdrop = np.zeros(nw, np.int8)
    cdef int8_t[::1] fmode = np.zeros(nw, np.int8)  # 0 absent, 1 text, 2 hex
    cdef int32_t[::1] used = np.zeros(nw, np.int32)
    cdef uint8_t bits[24]
    cdef const uint8_t* d = &data[0]
    cdef const int16_t* lt_p = &len_type[0]
    cdef const int32_t* ml_p = &max_len[0]
    cdef const uint8_t* db_p = &data_bin[0]
    cdef const uint8_t* le_p = &len_enc[0]
    cdef const uint8_t* nb_p = &nibbles[0]
    cdef const uint8_t* lp_p = &lpad[0]
    cdef const uint8_t* rp_p = &rpad[0]
    cdef Py_ssize_t i
    cdef int64_t pos, end, s, b, k, q, t, L
    cdef int f, got, nbits
    cdef int8_t drop
    cdef bint bad
    with nogil:
        for i in range(n):
            pos = starts[i] + 2
            end = pos + lens[i]
            for w in range(nw):
                fmode[w] = 0
            bad = False
            if header:
                pos = _field(d, pos, end, 0, lt_p, ml_p, db_p, le_p, nb_p, lp_p, rp_p,
                             &s, &b, &drop)
                bad = pos < 0 or data_bin[0]
            # MTI
            if not bad:
                if mti_bin:
                    bad = pos + 2 > end
                    s, b = pos, 2
                    pos += 2
                else:
                    bad = pos + 4 > end
                    if not bad:
                        for k in range(4):
                            if data[pos + k] > 127:
                                bad = True
                    s, b = pos, 4
                    pos += 4
                if not bad and slot[0] >= 0:
                    fmode[slot[0]] = 2 if mti_bin else 1
                    fstart[slot[0]], fbytes[slot[0]], fdrop[slot[0]] = s, b, 0
            if not bad:
                got = _bitmap(d, pos, end, p_bin, bits)
                bad = got < 0
                pos += got
            nbits = 64
            if not bad and (bits[0] & 0x80):
                got = _bitmap(d, pos, end, s_bin, &bits[8])
                # deferred: a tertiary bitmap, or a specification without field 1
                bad = got < 0 or (bits[8] & 0x80) != 0 or not defined[1]
                pos += got
                nbits = 128
            k = 0
            while not bad and k < (nbits >> 3):  # the set bits, a bitmap byte at a time
                q = bits[k]
                if k == 0:
                    q = q & 0x7F  # bit 1 says a secondary bitmap follows: not a field
                f = k * 8
                while q and not bad:
                    f += 1
                    if q & 0x80:
                        if not defined[f]:
                            bad = True
                            break
                        pos = _field(d, pos, end, f, lt_p, ml_p, db_p, le_p, nb_p, lp_p,
                                     rp_p, &s, &b, &drop)
                        if pos < 0:
                            bad = True
                            break
                        if slot[f] >= 0:
                            fmode[slot[f]] = 2 if data_bin[f] else 1
                            fstart[slot[f]], fbytes[slot[f]], fdrop[slot[f]] = s, b, drop
                    q = (q << 1) & 0xFF
                k += 1
            if not bad and pos != end:
                bad = True
            if bad:
                status[i] = 2
                for w in range(nw):
                    off[w, i + 1] = used[w]
                continue
            for w in range(nw):
                q = base[w] + used[w]
                if fmode[w] == 1:
                    for k in range(fbytes[w]):
                        out[q + k] = data[fstart[w] + k]
                    L = fbytes[w]
                    valid[w, i] = 1
                elif fmode[w] == 2:
                    t = 0
                    for k in range(fbytes[w]):
                        if not (k == 0 and fdrop[w] == 1):
                            out[q + t] = _HEX[data[fstart[w] + k] >> 4]
                            t += 1
                        if not (k == fbytes[w] - 1 and fdrop[w] == 2):
                            out[q + t] = _HEX[data[fstart[w] + k] & 15]
                            t += 1
                    L = t
                    valid[w, i] = 1
                else:
                    L = 0
                used[w] += <int32_t>L
                off[w, i + 1] = used[w]
    columns = []
    for w in range(nw):
        v = valid_np[w]
        nulls = int(n - v.sum())
        bitmap = pa.py_buffer(np.packbits(v, bitorder="little")) if nulls else None
        columns.append(pa.StringArray.from_buffers(
            n, pa.py_buffer(offs[w]), pa.py_buffer(buf[base[w]:base[w] + used[w]]),
            bitmap, nulls))
    return status_np, columns, {}
