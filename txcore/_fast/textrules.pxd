"""Byte-level rules shared by the compiled text encoders (``cardcheck.pyx`` and the fused
pass of ``encode.pyx``), on raw pointers so either can call them without the GIL.
Pure-Python statement: ``cardcheck_py.is_card_no``."""
from libc.stdint cimport int64_t, uint8_t


cdef inline const uint8_t* _base(const uint8_t[::1] data) noexcept nogil:
    """The first byte of a buffer, or NULL when it is empty (then no value has a byte)."""
    return &data[0] if data.shape[0] else NULL


cdef inline bint _is_card_no(const uint8_t* s, int64_t n) noexcept nogil:
    """Digits only, length 12..19, Luhn checksum 0 (rightmost digit undoubled).  Two
    digits a step from the right: the undoubled one, then the doubled one (2d, less 9
    when that is two digits)."""
    cdef int64_t i
    cdef unsigned int total = 0, d, e
    if n < 12 or n > 19:
        return False
    i = n - 1
    while i >= 1:
        d = <unsigned int>s[i] - 48          # '0' == 48; not a digit: > 9 (unsigned)
        e = <unsigned int>s[i - 1] - 48
        if d > 9 or e > 9:
            return False
        total += d + 2 * e - 9 * (e > 4)
        i -= 2
    if i == 0:
        d = <unsigned int>s[0] - 48
        if d > 9:
            return False
        total += d
    return total % 10 == 0
