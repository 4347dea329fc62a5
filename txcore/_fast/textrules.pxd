"""Byte-level rules shared by the compiled text encoders (``cardcheck.pyx`` and the fused
pass of ``encode.pyx``), on raw pointers so either can call them without the GIL.
Pure-Python statement: ``cardcheck_py.is_card_no``."""
from libc.stdint cimport int64_t, uint8_t


cdef inline const uint8_t* _base(const uint8_t[::1] data) noexcept nogil:
    """The first byte of a buffer, or NULL when it is empty (then no value has a byte)."""
    return &data[0] if data.shape[0] else NULL


cdef inline bint _is_card_no(const uint8_t* s, int64_t n) noexcept nogil:
    """Digits only, length 12..19, Luhn checksum 0 (rightmost digit undoubled)."""
    cdef int64_t i
    cdef int total = 0
    cdef int d
    cdef bint double_it = False
    if n < 12 or n > 19:
        return False
    i = n - 1
    while i >= 0:
        d = <int>s[i] - 48          # '0' == 48
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
