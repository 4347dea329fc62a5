"""The rows of a batch a run keeps — its priced rows: all but the rejects — copied a run
of consecutive rows at a time.

Arrow's filter copies a string column value by value (it is a ``take``), and the twelve
text columns of the input are most of a priced row's bytes.  The rejects are a few
percent of the rows, so the kept rows come in long runs (about 60 on the benchmark
month, where 1.7 % are rejected): a run's bytes are one ``memcpy`` and its offsets one
shifted copy.  The month's output assembly, the filter most of it, went from 1.77-1.88
to 1.34-1.42 s (benchmarks/README.md, "Fourth pass").

The runs are ``[starts[k], ends[k])``, ascending and apart, in rows of the column; the
column is an Arrow ``string`` array as :mod:`txcore._fast.buffers` hands it over
(offsets, data, the array's own offset into them).

Pure-Python twin: ``keep_py.py``; ``tests/test_keep.py`` checks both against Arrow's
filter.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t
from libc.string cimport memcpy, memset

CYTHON_MODULE = 1


cdef inline bint _runs_ok(const int64_t[::1] starts, const int64_t[::1] ends,
                          Py_ssize_t n) noexcept nogil:
    """Whether the runs are ascending, apart and within ``[0, n)``."""
    cdef Py_ssize_t k
    cdef int64_t last = 0
    for k in range(starts.shape[0]):
        if not last <= starts[k] <= ends[k] <= n:
            return False
        last = ends[k]
    return True


def kept_bytes(const int32_t[::1] offsets, Py_ssize_t size, Py_ssize_t offset,
               const int64_t[::1] starts, const int64_t[::1] ends) -> int:
    """The bytes of the kept rows' values (the size of :func:`keep_strings`' data), in a
    column of ``size`` data bytes; ValueError if a run's bytes are not all within them."""
    cdef Py_ssize_t k, n = offsets.shape[0] - 1 - offset
    cdef int64_t total = 0, a, b
    if offset < 0 or n < 0 or ends.shape[0] != starts.shape[0]:
        raise ValueError("kept_bytes: offsets, offset and runs do not match")
    with nogil:
        if _runs_ok(starts, ends, n):
            for k in range(starts.shape[0]):
                a = offsets[offset + starts[k]]
                b = offsets[offset + ends[k]]
                if not 0 <= a <= b <= size:  # what keep_strings copies must be there
                    total = -1
                    break
                total += b - a
        else:
            total = -1
    if total < 0:
        raise ValueError("kept_bytes: runs not ascending and within the column")
    return total


def keep_strings(const int32_t[::1] offsets, const uint8_t[::1] data, Py_ssize_t offset,
                 const int64_t[::1] starts, const int64_t[::1] ends,
                 int32_t[::1] out_offsets, uint8_t[::1] out_data):
    """``out_offsets`` (kept rows + 1) and ``out_data`` (:func:`kept_bytes`): the values of
    the rows in the runs, as a new ``string`` array's buffers."""
    cdef Py_ssize_t k, i, j = 0, a, b, rows = 0
    cdef int32_t pos = 0, base, length
    cdef int64_t need = kept_bytes(offsets, data.shape[0], offset, starts, ends)
    for k in range(starts.shape[0]):
        rows += ends[k] - starts[k]
    if out_offsets.shape[0] != rows + 1 or out_data.shape[0] != need:
        raise ValueError("keep_strings: output buffers of the wrong size")
    with nogil:
        out_offsets[0] = 0
        for k in range(starts.shape[0]):
            a = offset + starts[k]
            b = offset + ends[k]
            base = offsets[a]
            length = offsets[b] - base
            if length:
                memcpy(&out_data[pos], &data[base], length)
            for i in range(a, b):  # the run's offsets, shifted to where its bytes went
                j += 1
                out_offsets[j] = offsets[i + 1] - base + pos
            pos += length


def keep_bits(const uint8_t[::1] bits, Py_ssize_t offset, const int64_t[::1] starts,
              const int64_t[::1] ends, uint8_t[::1] out) -> int:
    """``out``: the bits (LSB first, as Arrow's validity bitmaps) of the rows in the runs,
    from bit ``offset`` of ``bits`` on; the count of bits set."""
    cdef Py_ssize_t k, i, j = 0, rows = 0, n = bits.shape[0] * 8 - offset
    cdef int64_t ones = 0
    if offset < 0 or n < 0 or ends.shape[0] != starts.shape[0] or not _runs_ok(starts, ends, n):
        raise ValueError("keep_bits: runs not ascending and within the bitmap")
    for k in range(starts.shape[0]):
        rows += ends[k] - starts[k]
    if out.shape[0] != (rows + 7) // 8:
        raise ValueError("keep_bits: output bitmap of the wrong size")
    with nogil:
        if out.shape[0]:
            memset(&out[0], 0, out.shape[0])
        for k in range(starts.shape[0]):
            for i in range(offset + starts[k], offset + ends[k]):
                if bits[i >> 3] >> (i & 7) & 1:
                    out[j >> 3] |= <uint8_t>(1 << (j & 7))
                    ones += 1
                j += 1
    return ones
