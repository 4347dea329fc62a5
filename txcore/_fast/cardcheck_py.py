"""Pure-Python twin of ``cardcheck.pyx``: same function, same buffers.

This is the readable statement of the card-number rule; the compiled module
must agree with it on every input (``tests/test_cardno.py``).
"""
CYTHON_MODULE = 0


def is_card_no(raw: bytes) -> bool:
    """12-19 ASCII digits whose Luhn checksum is 0."""
    if not 12 <= len(raw) <= 19:
        return False
    total = 0
    for position, byte in enumerate(reversed(raw)):
        d = byte - 48
        if not 0 <= d <= 9:
            return False
        if position % 2 == 1:  # every second digit from the right is doubled
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def check_card_numbers(offsets, data, validity, offset, out):
    """See ``cardcheck.pyx``: write 1 into ``out[i]`` for a valid card number."""
    data = bytes(data)
    has_validity = len(validity) > 0
    for i in range(len(out)):
        j = i + offset
        if has_validity and not (validity[j >> 3] >> (j & 7)) & 1:
            out[i] = 0
        else:
            out[i] = is_card_no(data[offsets[j]:offsets[j + 1]])
