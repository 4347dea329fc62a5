# C structs of the pricing kernel; each matches the numpy dtype of the same name in
# txcore/_fast/layout.py (align=True), field for field.
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint32_t, uint64_t

# A read of the cache line at p, started now and not waited for (the kernel's and the
# commit's gathers issue it rows ahead of the row that needs it).
cdef extern from *:
    """
    #define TX_PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 1)
    """
    void TX_PREFETCH(const void* p) noexcept nogil

cdef struct ENTRY:
    uint64_t key_hi
    uint64_t key_lo
    int32_t card
    int32_t day
    int32_t effect
    uint8_t flags

cdef struct EFFECT:
    int64_t fee_standard
    int64_t discount
    int32_t discount_rule
    int16_t fee_rule
    int16_t waiver_rule
    int16_t ruleset

cdef struct SLOT:
    uint32_t fp
    int32_t idx

cdef struct CARD:
    uint64_t key_hi
    uint64_t key_lo
    int32_t reg
    int32_t member_from
    int32_t member_to
    int32_t issuer
    int32_t city

cdef struct COUNTER:
    uint64_t key
    int32_t used

cdef struct REG:
    int32_t member_from
    int32_t member_to
    int32_t issuer
    int32_t city

cdef struct VERSION:
    int32_t eff
    int32_t zone
    int32_t ruleset
    int32_t fee_lo
    int32_t fee_hi
    int32_t waiver_lo
    int32_t waiver_hi
    int32_t disc_lo
    int32_t disc_hi

cdef struct RULE:
    int64_t amount_below
    int64_t cap
    int64_t min_spend
    uint32_t kind_mask
    uint32_t channel_mask
    uint32_t fee_item_mask
    int32_t issuer_off
    int32_t mcc_off
    int32_t code
    int32_t band_lo
    int32_t band_hi
    int32_t free_per_month
    int32_t discount_bp
    int8_t cross
    int8_t same
    uint8_t has_below

cdef struct BAND:
    int64_t upto
    int64_t fixed
    int64_t pct_bp
    int64_t min
    int64_t max

cdef struct MERCH:
    int64_t cap
    int64_t min_spend
    int32_t valid_from
    int32_t valid_to
    int32_t bp
