import numpy as np

CYTHON_MODULE: int

def siphash128(data: bytes, k0: int, k1: int) -> tuple[int, int]: ...
def hash_strings(offsets: np.ndarray,   # const int32_t[::1] | const int64_t[::1]
                 data: np.ndarray,      # const uint8_t[::1]
                 validity: np.ndarray,  # const uint8_t[::1]
                 offset: int, k0: int, k1: int,
                 hi: np.ndarray,        # uint64_t[::1]
                 lo: np.ndarray,        # uint64_t[::1]
                 length: np.ndarray,    # int32_t[::1]
                 ) -> None: ...
def parse_timestamps(offsets: np.ndarray, data: np.ndarray, validity: np.ndarray, offset: int,
                     wall: np.ndarray,    # int64_t[::1]
                     off: np.ndarray,     # int32_t[::1]
                     status: np.ndarray,  # int8_t[::1]
                     ) -> None: ...
def parse_integers(offsets: np.ndarray, data: np.ndarray, validity: np.ndarray, offset: int,
                   value: np.ndarray,     # int64_t[::1]
                   status: np.ndarray,    # int8_t[::1]
                   ) -> None: ...
def digest_rows(columns: list,   # [(kind, offsets, data, values, validity, offset)]
                n: int) -> bytearray | None: ...
def match_words(offsets: np.ndarray, data: np.ndarray, validity: np.ndarray, offset: int,
                word_offsets: np.ndarray,  # const int32_t[::1]
                words: np.ndarray,         # const uint8_t[::1]
                codes: np.ndarray,         # const int32_t[::1]
                other: int, none: int,
                out: np.ndarray,           # int32_t[::1]
                ) -> None: ...
def parse_mccs(offsets: np.ndarray, data: np.ndarray, validity: np.ndarray, offset: int,
               out: np.ndarray,            # int16_t[::1]
               ) -> None: ...
