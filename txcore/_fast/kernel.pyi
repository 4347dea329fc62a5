# Types of the compiled pricing kernel (kernel.pyx); the Cython type of each array is in
# its comment.  Structured arrays use the dtypes of txcore/_fast/layout.py.
import numpy as np

CYTHON_MODULE: int
NO_LATEST_VALUE: int

def enums() -> dict[str, int]: ...
def sizes() -> dict[str, int]: ...
def intern_effects(rows: np.ndarray,      # const EFFECT[::1]
                   effects: np.ndarray,   # EFFECT[::1]
                   slots: np.ndarray,     # int32_t[::1]
                   scalars: np.ndarray,   # int64_t[::1]
                   out: np.ndarray,       # int32_t[::1]
                   ) -> None: ...
def rebuild_effect_slots(effects: np.ndarray,  # const EFFECT[::1]
                         n: int,
                         slots: np.ndarray,    # int32_t[::1]
                         ) -> None: ...
def find_cards(cards: np.ndarray,  # const CARD[::1]
               slots: np.ndarray,  # const SLOT[::1]
               hi: np.ndarray,     # const uint64_t[::1]
               lo: np.ndarray,     # const uint64_t[::1]
               out: np.ndarray,    # int64_t[::1]
               ) -> None: ...
def rebuild_card_slots(cards: np.ndarray,  # const CARD[::1]
                       n: int,
                       slots: np.ndarray,  # SLOT[::1]
                       ) -> None: ...
def rebuild_entry_slots(entries: np.ndarray,  # const ENTRY[::1]
                        n: int,
                        slots: np.ndarray,    # SLOT[::1]
                        ) -> None: ...
def rebuild_counter_slots(counters: np.ndarray,  # const COUNTER[::1]
                          n: int,
                          slots: np.ndarray,     # int32_t[::1]
                          ) -> None: ...
def verdicts(pre: np.ndarray, card_hi: np.ndarray, card_lo: np.ndarray,
             day: np.ndarray,       # const int32_t[:, ::1]  [zone, row]
             kind: np.ndarray, versions: np.ndarray, cards: np.ndarray,
             card_slots: np.ndarray,
             code: np.ndarray,      # OUT int8_t[::1]
             local_day: np.ndarray,  # OUT int32_t[::1]
             flags: np.ndarray,     # OUT uint8_t[::1]
             ) -> None: ...
def price_rows(
        # per row, IN
        pre: np.ndarray,          # const int8_t[::1]
        card_hi: np.ndarray, card_lo: np.ndarray,   # const uint64_t[::1]
        txn_hi: np.ndarray, txn_lo: np.ndarray,     # const uint64_t[::1]
        orig_hi: np.ndarray, orig_lo: np.ndarray,   # const uint64_t[::1]
        day: np.ndarray,          # const int32_t[:, ::1]  [zone, row]
        inst: np.ndarray,         # const int64_t[:, ::1]  [zone, row]
        kind: np.ndarray, channel: np.ndarray, fee_item: np.ndarray,  # const int8_t[::1]
        mcc: np.ndarray,          # const int16_t[::1]
        bank: np.ndarray, city: np.ndarray, merchant: np.ndarray,     # const int32_t[::1]
        amount: np.ndarray,       # const int64_t[::1]
        settled_now: np.ndarray,  # const int32_t[::1], empty or one per row
        # rules and reference data, IN
        versions: np.ndarray,     # const VERSION[::1]
        rules: np.ndarray,        # const RULE[::1]
        bands: np.ndarray,        # const BAND[::1]
        issuer_ok: np.ndarray, mcc_ok: np.ndarray,  # const uint8_t[::1]
        merch: np.ndarray,        # const MERCH[::1]
        merch_rule: np.ndarray,   # const int32_t[::1]
        # state, IN/OUT
        cards: np.ndarray,        # const CARD[::1]
        card_slots: np.ndarray,   # const SLOT[::1]
        entries: np.ndarray,      # ENTRY[::1]
        entry_slots: np.ndarray,  # SLOT[::1]
        effects: np.ndarray,      # EFFECT[::1]
        effect_slots: np.ndarray,  # int32_t[::1]
        counters: np.ndarray,     # COUNTER[::1]
        counter_slots: np.ndarray,  # int32_t[::1]
        scalars: np.ndarray,      # int64_t[::1]
        # per row, OUT
        reason: np.ndarray,       # int8_t[::1]
        member: np.ndarray, cross_bank: np.ndarray, same_city: np.ndarray,  # uint8_t[::1]
        ts: np.ndarray,           # int64_t[::1]
        fee_rule: np.ndarray,     # int32_t[::1]
        fee_standard: np.ndarray, fee_waived: np.ndarray, fee_charged: np.ndarray,  # int64_t[::1]
        waiver_rule: np.ndarray,  # int32_t[::1]
        free_slot: np.ndarray,    # int16_t[::1]
        discount: np.ndarray,     # int64_t[::1]
        discount_rule: np.ndarray, ruleset: np.ndarray,  # int32_t[::1]
) -> None: ...
