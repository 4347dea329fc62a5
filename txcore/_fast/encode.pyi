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

FUSED_TEXT: tuple[str, ...]
FUSED_WORDS: tuple[str, ...]
R_COUNTERPARTY: int
R_FEE_ITEM: int
R_MERCHANT: int
R_BENEFIT: int
R_REVERSAL: int

def encode_rows(texts: list,          # FUSED_TEXT: (offsets, data, validity, offset), a
                                      # dictionary's (..., indices, validity, offset)
                                      # (buffers.text_buffers), or None
                words: list,          # FUSED_WORDS: (word_offsets, words, codes)
                k0: int, k1: int,
                kind_rules: np.ndarray,   # const uint8_t[::1]
                channel_ok: np.ndarray,   # const uint8_t[:, ::1]
                min_amount: np.ndarray,   # const int64_t[::1]
                max_amount: int, parse_amount: bool,
                bank: np.ndarray, city: np.ndarray,   # const int32_t[::1]
                merchant: np.ndarray,     # int32_t[::1], in and out
                txn_hi: np.ndarray, txn_lo: np.ndarray, orig_hi: np.ndarray,
                orig_lo: np.ndarray, card_hi: np.ndarray, card_lo: np.ndarray,  # uint64_t[::1]
                kind: np.ndarray, channel: np.ndarray, fee_item: np.ndarray,  # int8_t[::1]
                mcc: np.ndarray,          # int16_t[::1]
                amount: np.ndarray,       # int64_t[::1]
                amount_ok: np.ndarray,    # uint8_t[::1]
                slow: np.ndarray,         # uint8_t[::1], in and out
                other_channel: int, other_fee_item: int) -> None: ...
