import numpy as np

CYTHON_MODULE: int

def check_card_numbers(
    offsets: np.ndarray,  # const int32_t[::1] or const int64_t[::1]
    data: np.ndarray,  # const uint8_t[::1]
    validity: np.ndarray,  # const uint8_t[::1], empty = no nulls
    offset: int,
    out: np.ndarray,  # uint8_t[::1], OUT
) -> None: ...
