import numpy as np
import pyarrow as pa

CYTHON_MODULE: int
OK: int
BAD: int
DEFER: int

def frame_index(
    data: np.ndarray,  # const uint8_t[::1]
    pos: int,
    max_frames: int,
    starts: np.ndarray,  # int64_t[::1], OUT
    lens: np.ndarray,  # int32_t[::1], OUT
) -> tuple[int, int]: ...
def decode_fields(
    data: np.ndarray,  # const uint8_t[::1]
    starts: np.ndarray,  # const int64_t[::1]
    lens: np.ndarray,  # const int32_t[::1]
    layout: object,  # txcore.io.iso8583.Layout
    wanted: list[int],  # field numbers, 0 = MTI
) -> tuple[np.ndarray, list[pa.StringArray], dict[int, tuple[str, str]]]: ...
