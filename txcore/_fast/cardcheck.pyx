"""Card-number check over a whole Arrow string column in one call.

A value passes when it is 12-19 ASCII digits and its Luhn checksum is 0.
The caller (``txcore.cardno``) hands over the Arrow buffers of a ``string`` or
``large_string`` array (offsets, data, validity bitmap) and a ``uint8`` output
array it allocated; the loop runs without the GIL.  Pure-Python twin:
``cardcheck_py.py``.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t

from txcore._fast.textrules cimport _base, _is_card_no

CYTHON_MODULE = 1

ctypedef fused offset_t:
    int32_t
    int64_t


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
    cdef const uint8_t* base = _base(data)
    with nogil:
        for i in range(n):
            j = i + offset
            if has_validity and not (validity[j >> 3] >> (j & 7)) & 1:
                out[i] = 0
            else:
                out[i] = _is_card_no(base + offsets[j], offsets[j + 1] - offsets[j])
