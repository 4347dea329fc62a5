"""Card-number check over a whole Arrow string column in one call.

A value passes when it is 12-19 ASCII digits and its Luhn checksum is 0.
The caller (``txcore.cardno``) hands over the Arrow buffers of a ``string`` or
``large_string`` array (offsets, data, validity bitmap) and a ``uint8`` output
array it allocated; the loop runs without the GIL.  Pure-Python twin:
``cardcheck_py.py``.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t

CYTHON_MODULE = 1

ctypedef fused offset_t:
    int32_t
    int64_t


cdef inline bint _is_card_no(const uint8_t[::1] data, int64_t start,
                             int64_t stop) noexcept nogil:
    """Digits only, length 12..19, Luhn checksum 0 (rightmost digit undoubled)."""
    cdef int64_t n = stop - start
    cdef int64_t i
    cdef int total = 0
    cdef int d
    cdef bint double_it = False
    if n < 12 or n > 19:
        return False
    i = stop - 1
    while i >= start:
        d = <int>data[i] - 48          # '0' == 48
        if d < 0 or d > 9:
            return False
        if double_it:
            d = d * 2
            if d > 9:
                d = d - 9
        total = total + d
        double_it = not double_it
        i = i - 1
    return total % 10 == 0


def check_card_numbers(const offset_t[::1] offsets,   # IN  value offsets (whole buffer)
                       const uint8_t[::1] data,       # IN  UTF-8 bytes
                       const uint8_t[::1] validity,   # IN  validity bitmap, or empty
                       Py_ssize_t offset,             # IN  array offset into the buffers
                       uint8_t[::1] out):             # OUT 1 = valid card number
    """Write 1 into ``out[i]`` when row ``i`` holds a valid card number.

    ``len(out)`` is the array length; a null (validity bit 0) gives 0.  An empty
    ``validity`` means the array has no nulls.
    """
    cdef Py_ssize_t n = out.shape[0]
    cdef Py_ssize_t i, j
    cdef bint has_validity = validity.shape[0] > 0
    with nogil:
        for i in range(n):
            j = i + offset
            if has_validity and not (validity[j >> 3] >> (j & 7)) & 1:
                out[i] = 0
            else:
                out[i] = _is_card_no(data, offsets[j], offsets[j + 1])
