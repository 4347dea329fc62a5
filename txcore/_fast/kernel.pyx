"""The pricing kernel: docs/pricing.md for a whole encoded batch in one ``nogil`` loop.

Same semantics as the reference engine (``txcore/engine/reference.py``), row for row;
``tests/test_differential.py`` checks it against the reference with Hypothesis.
Numba twin: ``kernel_numba.py`` (same function, same arrays).

Layers:
1. ``cdef inline ... noexcept nogil`` helpers on scalars: money, dates, hashing;
2. open-addressing hash tables (linear probing, capacity a power of two, at most
   70 % full — the caller grows them before each batch) over four state arrays:
   cards (digest -> registry row), the index (txn digest -> entry), the free-slot
   counters (card, waiver, month -> used) and the interned effects (what a row did
   -> its effect row, shared by every entry that did the same);
3. one row's steps, each a ``cdef inline`` function over the row's ``Facts`` and its
   ``Outcome``: the version in force, the standard fee of a rule's bands, the deciding
   waiver and its free slot, a member's discount, the original of a reversal and its
   undoing;
4. ``price_rows``: the loop over one batch, in posting order: the rejects that need
   the state, then the steps, then the row's outputs and its index entry; a second
   pass interns what each priced row did.
The Python layer prepares everything else: ``txcore.engine.encoder`` encodes batches,
``txcore.engine.flatrules`` compiles the rules into flat arrays,
``txcore.state.compact`` holds and sizes the tables, and ``txcore.engine.compiled``
calls this kernel and builds the output Arrow arrays.
"""
from libc.stdlib cimport free, malloc
from libc.stdint cimport (INT64_MIN, int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t,
                          uint32_t, uint64_t)
from txcore._fast.kernel cimport (BAND, CARD, COUNTER, EFFECT, ENTRY, MERCH, REG, RULE, SLOT,
                                  VERSION)

CYTHON_MODULE = 1

# Values of txcore/_fast/layout.py (KERNEL_ENUMS), checked when the module loads: enums()
cdef enum:
    F_REVERSAL = 1
    F_REVERSED = 2
    F_WAIVED = 4
    F_SLOT = 8
    R_NO_RULESET = 1
    R_UNKNOWN_CARD = 2
    R_DUPLICATE = 3
    R_DISB_NON_MEMBER = 4
    R_MISMATCH = 5
    R_ALREADY = 6
    K_WITHDRAWAL = 0
    K_TRANSFER = 1
    K_PURCHASE = 2
    K_DISBURSEMENT = 3
    K_REVERSAL = 5
    S_N_ENTRIES = 0
    S_N_COUNTERS = 1
    S_LATEST = 2
    S_RETENTION = 3
    S_ZERO_EFFECT = 4
    S_N_EFFECTS = 5
    ROW_REVERSAL = 1
    ROW_DISB_NON_MEMBER = 2
cdef int64_t NO_LATEST = INT64_MIN  # layout.NO_LATEST: no row priced yet
# An entry's effect while its row's effect is not interned yet: PENDING - row (< -1).
cdef int64_t PENDING = -2


NO_LATEST_VALUE = NO_LATEST


def enums():
    """The ``cdef enum`` values above, checked against ``layout.KERNEL_ENUMS`` at load."""
    return {"F_REVERSAL": F_REVERSAL, "F_REVERSED": F_REVERSED, "F_WAIVED": F_WAIVED,
            "F_SLOT": F_SLOT, "R_NO_RULESET": R_NO_RULESET, "R_UNKNOWN_CARD": R_UNKNOWN_CARD,
            "R_DUPLICATE": R_DUPLICATE, "R_DISB_NON_MEMBER": R_DISB_NON_MEMBER,
            "R_MISMATCH": R_MISMATCH, "R_ALREADY": R_ALREADY, "K_WITHDRAWAL": K_WITHDRAWAL,
            "K_TRANSFER": K_TRANSFER, "K_PURCHASE": K_PURCHASE,
            "K_DISBURSEMENT": K_DISBURSEMENT, "K_REVERSAL": K_REVERSAL,
            "S_N_ENTRIES": S_N_ENTRIES, "S_N_COUNTERS": S_N_COUNTERS, "S_LATEST": S_LATEST,
            "S_RETENTION": S_RETENTION, "S_ZERO_EFFECT": S_ZERO_EFFECT,
            "S_N_EFFECTS": S_N_EFFECTS, "ROW_REVERSAL": ROW_REVERSAL,
            "ROW_DISB_NON_MEMBER": ROW_DISB_NON_MEMBER}


def sizes():
    """C struct sizes, checked against the numpy dtypes of ``txcore._fast.layout``."""
    return {"ENTRY": sizeof(ENTRY), "EFFECT": sizeof(EFFECT), "CARD": sizeof(CARD), "COUNTER": sizeof(COUNTER),
            "REG": sizeof(REG), "VERSION": sizeof(VERSION), "RULE": sizeof(RULE),
            "BAND": sizeof(BAND), "MERCH": sizeof(MERCH), "SLOT": sizeof(SLOT)}


# -- 1. scalars ------------------------------------------------------------------------
cdef inline int64_t _floordiv(int64_t a, int64_t b) noexcept nogil:
    cdef int64_t q = a // b        # C truncates toward zero (cdivision)
    if (a % b != 0) and ((a < 0) != (b < 0)):
        q -= 1
    return q


cdef inline int64_t _pct(int64_t amount, int64_t bp) noexcept nogil:
    """pct(amount, bp) = (amount * bp + 5000) // 10000, half up (docs/pricing.md#money-and-rounding)."""
    return _floordiv(amount * bp + 5000, 10000)


cdef inline int64_t _formula(int64_t amount, const BAND* b) noexcept nogil:
    cdef int64_t fee = b.fixed + _pct(amount, b.pct_bp)
    if fee < b.min:
        fee = b.min
    if b.max > 0 and fee > b.max:
        fee = b.max
    return fee


cdef inline int64_t _discount(int64_t amount, int64_t bp, int64_t cap,
                              int64_t min_spend) noexcept nogil:
    cdef int64_t d
    if amount < min_spend:
        return 0
    d = _pct(amount, bp)
    if cap > 0 and d > cap:
        d = cap
    return d


cdef inline int64_t _month_index(int64_t day) noexcept nogil:
    """year * 12 + month - 1 of a day since 1970-01-01 (H. Hinnant's civil_from_days)."""
    cdef int64_t z = day + 719468
    cdef int64_t era = _floordiv(z, 146097)
    cdef int64_t doe = z - era * 146097
    cdef int64_t yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    cdef int64_t y = yoe + era * 400
    cdef int64_t doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    cdef int64_t mp = (5 * doy + 2) // 153
    cdef int64_t m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    return y * 12 + m - 1


cdef inline uint64_t _mix(uint64_t x) noexcept nogil:
    """splitmix64's finaliser: spreads a counter key over the table."""
    x ^= x >> 30
    x *= 0xbf58476d1ce4e5b9ULL
    x ^= x >> 27
    x *= 0x94d049bb133111ebULL
    x ^= x >> 31
    return x


# -- 2. hash tables ----------------------------------------------------------------------
# Rows ahead whose slot (PREFETCH_SLOTS) and then card (PREFETCH_CARDS) are fetched
# into the cache before the loop reaches them: the tables are far larger than the
# cache, and each row would otherwise wait on two or three memory reads in turn.
cdef enum:
    PREFETCH_SLOTS = 16
    PREFETCH_CARDS = 8
    PREFETCH_EFFECTS = 8  # the intern pass: effect slot 2x this far ahead, effect row 1x


cdef inline int64_t _find_card(const CARD[::1] cards, const SLOT[::1] slots,
                               uint64_t hi, uint64_t lo) noexcept nogil:
    cdef uint64_t mask = slots.shape[0] - 1
    cdef uint64_t pos = lo & mask
    cdef uint32_t fp = <uint32_t>(lo >> 32)
    cdef int32_t s
    while True:
        s = slots[pos].idx
        if s < 0:
            return -1
        if slots[pos].fp == fp and cards[s].key_lo == lo and cards[s].key_hi == hi:
            return s
        pos = (pos + 1) & mask


cdef inline int64_t _entry_pos(const ENTRY[::1] entries, const SLOT[::1] slots,
                               uint64_t hi, uint64_t lo) noexcept nogil:
    """The slot holding ``(hi, lo)``, or the empty slot where it would go.  The slot's
    fingerprint is compared first: an entry is read only when it is very likely the one."""
    cdef uint64_t mask = slots.shape[0] - 1
    cdef uint64_t pos = lo & mask
    cdef uint32_t fp = <uint32_t>(lo >> 32)
    cdef int32_t s
    while True:
        s = slots[pos].idx
        if s < 0 or (slots[pos].fp == fp and entries[s].key_lo == lo
                     and entries[s].key_hi == hi):
            return pos
        pos = (pos + 1) & mask


cdef inline int64_t _counter_pos(const COUNTER[::1] counters, const int32_t[::1] slots,
                                 uint64_t key) noexcept nogil:
    cdef uint64_t mask = slots.shape[0] - 1
    cdef uint64_t pos = _mix(key) & mask
    cdef int32_t s
    while True:
        s = slots[pos]
        if s < 0 or counters[s].key == key:
            return pos
        pos = (pos + 1) & mask


cdef inline int32_t _used(const COUNTER[::1] counters, const int32_t[::1] slots,
                          uint64_t key) noexcept nogil:
    cdef int32_t s = slots[_counter_pos(counters, slots, key)]
    return 0 if s < 0 else counters[s].used


cdef inline void _set_used(COUNTER[::1] counters, int32_t[::1] slots, int64_t[::1] scalars,
                           uint64_t key, int32_t used) noexcept nogil:
    cdef int64_t pos = _counter_pos(counters, slots, key)
    cdef int32_t s = slots[pos]
    if s < 0:
        s = <int32_t>scalars[S_N_COUNTERS]
        scalars[S_N_COUNTERS] += 1
        counters[s].key = key
        slots[pos] = s
    counters[s].used = used


cdef inline uint64_t _counter_key(int64_t card, int64_t waiver, int64_t day) noexcept nogil:
    return (<uint64_t>card << 36) | (<uint64_t>waiver << 20) | <uint64_t>_month_index(day)


cdef inline uint64_t _effect_hash(int64_t fee_standard, int64_t discount, int32_t fee_rule,
                                  int32_t waiver_rule, int32_t discount_rule,
                                  int32_t ruleset) noexcept nogil:
    cdef uint64_t codes = ((<uint64_t><uint32_t>discount_rule) << 32
                           | (<uint64_t><uint16_t>fee_rule) << 16 | <uint16_t>waiver_rule)
    return _mix(<uint64_t>fee_standard
                ^ _mix(<uint64_t>discount ^ codes ^ (<uint64_t><uint16_t>ruleset) << 48))


cdef inline int32_t _intern(EFFECT[::1] effects, int32_t[::1] slots, int64_t[::1] scalars,
                            int64_t fee_standard, int64_t discount, int32_t fee_rule,
                            int32_t waiver_rule, int32_t discount_rule,
                            int32_t ruleset) noexcept nogil:
    """The effect row equal to these fields, added if new (the caller keeps room)."""
    cdef uint64_t mask = slots.shape[0] - 1
    cdef uint64_t pos = _effect_hash(fee_standard, discount, fee_rule, waiver_rule,
                                     discount_rule, ruleset) & mask
    cdef int32_t s
    cdef EFFECT* f
    while True:
        s = slots[pos]
        if s < 0:
            break
        f = &effects[s]
        if (f.fee_standard == fee_standard and f.discount == discount
                and f.fee_rule == fee_rule and f.waiver_rule == waiver_rule
                and f.discount_rule == discount_rule and f.ruleset == ruleset):
            return s
        pos = (pos + 1) & mask
    s = <int32_t>scalars[S_N_EFFECTS]
    scalars[S_N_EFFECTS] += 1
    f = &effects[s]
    f.fee_standard, f.discount, f.discount_rule = fee_standard, discount, discount_rule
    f.fee_rule, f.waiver_rule, f.ruleset = <int16_t>fee_rule, <int16_t>waiver_rule, \
        <int16_t>ruleset
    slots[pos] = s
    return s


def intern_effects(const EFFECT[::1] rows, EFFECT[::1] effects, int32_t[::1] slots,
                   int64_t[::1] scalars, int32_t[::1] out):
    """``out[i]``: the effect row equal to ``rows[i]``, interned (room kept by the caller)."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(rows.shape[0]):
            out[i] = _intern(effects, slots, scalars, rows[i].fee_standard, rows[i].discount,
                             rows[i].fee_rule, rows[i].waiver_rule, rows[i].discount_rule,
                             rows[i].ruleset)


def rebuild_effect_slots(const EFFECT[::1] effects, Py_ssize_t n, int32_t[::1] slots):
    """Fill ``slots`` (all empty on entry) for ``effects[:n]`` (all distinct)."""
    cdef Py_ssize_t i
    cdef uint64_t mask = slots.shape[0] - 1, pos
    with nogil:
        for i in range(n):
            pos = _effect_hash(effects[i].fee_standard, effects[i].discount,
                               effects[i].fee_rule, effects[i].waiver_rule,
                               effects[i].discount_rule, effects[i].ruleset) & mask
            while slots[pos] >= 0:
                pos = (pos + 1) & mask
            slots[pos] = <int32_t>i


def find_cards(const CARD[::1] cards, const SLOT[::1] slots, const uint64_t[::1] hi,
               const uint64_t[::1] lo, int64_t[::1] out):
    """``out[i]``: the slot of card ``(hi[i], lo[i])`` in ``cards``, or -1."""
    cdef Py_ssize_t i
    with nogil:
        for i in range(out.shape[0]):
            out[i] = _find_card(cards, slots, hi[i], lo[i])


def rebuild_card_slots(const CARD[::1] cards, Py_ssize_t n, SLOT[::1] slots):
    """Fill ``slots`` (all empty on entry) for ``cards[:n]``."""
    cdef Py_ssize_t i
    cdef uint64_t mask = slots.shape[0] - 1, pos
    with nogil:
        for i in range(n):
            pos = cards[i].key_lo & mask
            while slots[pos].idx >= 0:
                pos = (pos + 1) & mask
            slots[pos].fp = <uint32_t>(cards[i].key_lo >> 32)
            slots[pos].idx = <int32_t>i


def rebuild_entry_slots(const ENTRY[::1] entries, Py_ssize_t n, SLOT[::1] slots):
    cdef Py_ssize_t i
    cdef int64_t pos
    with nogil:
        for i in range(n):
            pos = _entry_pos(entries, slots, entries[i].key_hi, entries[i].key_lo)
            slots[pos].fp = <uint32_t>(entries[i].key_lo >> 32)
            slots[pos].idx = <int32_t>i


def rebuild_counter_slots(const COUNTER[::1] counters, Py_ssize_t n, int32_t[::1] slots):
    cdef Py_ssize_t i
    with nogil:
        for i in range(n):
            slots[_counter_pos(counters, slots, counters[i].key)] = <int32_t>i


# -- 3. one row's steps --------------------------------------------------------------------
cdef struct Facts:
    # What the rules' conditions test, of one row (codes as in txcore/_fast/layout.py).
    int64_t amount
    int32_t issuer        # the card's issuer code
    int16_t mcc           # -1 = none
    int8_t kind
    int8_t channel
    int8_t fee_item
    bint cross            # cross_bank / same_city as derived (false where the kind has
    bint same             # no counterparty)


cdef struct Outcome:
    # What pricing one row decided: fen, rule ids as string codes (-1 = null) and the
    # flags of its index entry.  The loop writes it to the row's output columns.
    int64_t fee_standard
    int64_t fee_waived
    int64_t discount
    int32_t fee_rule
    int32_t waiver_rule
    int32_t discount_rule
    int32_t ruleset
    int16_t free_slot
    uint8_t flags


cdef inline bint _matches(const RULE* r, const Facts* f, const uint8_t[::1] issuer_ok,
                          const uint8_t[::1] mcc_ok) noexcept nogil:
    """Conditions.matches (txcore/rules/book.py): an omitted condition matches anything."""
    if not (r.kind_mask >> f.kind) & 1:
        return False
    if not (r.channel_mask >> f.channel) & 1:
        return False
    if not (r.fee_item_mask >> f.fee_item) & 1:
        return False
    if r.issuer_off >= 0 and not issuer_ok[r.issuer_off + f.issuer]:
        return False
    if r.mcc_off >= 0 and (f.mcc < 0 or not mcc_ok[r.mcc_off + f.mcc]):
        return False
    if r.cross >= 0 and r.cross != f.cross:
        return False
    if r.same >= 0 and r.same != f.same:
        return False
    if r.has_below and not f.amount < r.amount_below:
        return False
    return True


cdef inline const RULE* _first(const RULE[::1] rules, int32_t lo, int32_t hi, const Facts* f,
                               const uint8_t[::1] issuer_ok,
                               const uint8_t[::1] mcc_ok) noexcept nogil:
    """The first of ``rules[lo:hi]`` that matches, or NULL."""
    cdef int32_t k
    for k in range(lo, hi):
        if _matches(&rules[k], f, issuer_ok, mcc_ok):
            return &rules[k]
    return NULL


cdef inline int32_t _version_at(const VERSION[::1] versions, const int32_t[:, ::1] day,
                                Py_ssize_t i) noexcept nogil:
    """The version in force for row ``i``: the latest ``effective_from`` on or before the
    row's local date in that version's zone; -1 when none is."""
    cdef int32_t v = <int32_t>versions.shape[0] - 1
    while v >= 0 and versions[v].eff > day[versions[v].zone, i]:
        v -= 1
    return v


cdef inline int64_t _band_fee(const RULE* rule, const BAND[::1] bands,
                              int64_t amount) noexcept nogil:
    """The fee of ``rule``: the formula of the first band whose ``upto`` covers ``amount``
    (a flat rule is one open band)."""
    cdef int32_t b
    for b in range(rule.band_lo, rule.band_hi):
        if bands[b].upto < 0 or amount <= bands[b].upto:
            return _formula(amount, &bands[b])
    return 0


cdef inline void _waive(Outcome* out, const RULE* waiver, int64_t card, int32_t d,
                        COUNTER[::1] counters, int32_t[::1] counter_slots,
                        int64_t[::1] scalars) noexcept nogil:
    """The deciding waiver: the whole fee, or one of the card-month's free slots while
    any is left (a slot is used even when the fee is 0).  The waiver is recorded even
    when it waives nothing, so an auditor sees why the member paid."""
    cdef uint64_t ckey
    cdef int32_t used
    out.waiver_rule = waiver.code
    if waiver.free_per_month < 0:
        out.fee_waived = out.fee_standard
        return
    ckey = _counter_key(card, waiver.code, d)
    used = _used(counters, counter_slots, ckey)
    if used < waiver.free_per_month:
        used += 1
        _set_used(counters, counter_slots, scalars, ckey, used)
        out.fee_waived = out.fee_standard
        out.free_slot = <int16_t>used
        out.flags = F_SLOT


cdef inline void _member_discount(Outcome* out, const Facts* f, const MERCH* m,
                                  int32_t merchant_rule, int32_t d, const RULE[::1] rules,
                                  const VERSION* version, const uint8_t[::1] issuer_ok,
                                  const uint8_t[::1] mcc_ok) noexcept nogil:
    """A member's purchase: the partner merchant valid on the day decides (even below its
    minimum spend), else the first matching [[discount]] rule."""
    cdef const RULE* rule
    if m != NULL and m.valid_from <= d and d <= m.valid_to:
        out.discount_rule = merchant_rule
        out.discount = _discount(f.amount, m.bp, m.cap, m.min_spend)
        return
    rule = _first(rules, version.disc_lo, version.disc_hi, f, issuer_ok, mcc_ok)
    if rule != NULL:
        out.discount_rule = rule.code
        out.discount = _discount(f.amount, rule.discount_bp, rule.cap, rule.min_spend)


cdef inline int64_t _original(const ENTRY[::1] entries, const SLOT[::1] entry_slots,
                              uint64_t hi, uint64_t lo, int64_t now,
                              int64_t retention) noexcept nogil:
    """The index entry a reversal names, or -1: not in the index, forgotten (outside the
    window), or itself a reversal (a reversal of a reversal is zero-effect)."""
    cdef int64_t o = entry_slots[_entry_pos(entries, entry_slots, hi, lo)].idx
    if o >= 0 and (now - entries[o].day > retention or entries[o].flags & F_REVERSAL):
        return -1
    return o


cdef inline void _undo(Outcome* out, ENTRY* orig, int64_t card, const EFFECT[::1] effects,
                       COUNTER[::1] counters, int32_t[::1] counter_slots,
                       int64_t[::1] scalars,
                       # outputs of earlier rows of this batch, IN
                       const int64_t[::1] fee_standard, const int64_t[::1] discount,
                       const int32_t[::1] fee_rule, const int32_t[::1] waiver_rule,
                       const int32_t[::1] discount_rule,
                       const int32_t[::1] ruleset) noexcept nogil:
    """A reversal of ``orig``: its money negated, its rule ids, its free slot given back
    to its card-month; ``orig`` is marked reversed."""
    cdef const EFFECT* was
    cdef int64_t r, std, waived
    cdef uint64_t ckey
    cdef int32_t used
    if orig.effect >= 0:
        was = &effects[orig.effect]
        std, out.discount = was.fee_standard, -was.discount
        out.fee_rule, out.waiver_rule = was.fee_rule, was.waiver_rule
        out.discount_rule, out.ruleset = was.discount_rule, was.ruleset
    else:  # priced earlier in this batch, its effect not interned yet
        r = PENDING - orig.effect
        std, out.discount = fee_standard[r], -discount[r]
        out.fee_rule, out.waiver_rule = fee_rule[r], waiver_rule[r]
        out.discount_rule, out.ruleset = discount_rule[r], ruleset[r]
    waived = std if orig.flags & F_WAIVED else 0
    out.fee_standard = -std
    out.fee_waived = -waived
    if orig.flags & F_SLOT:  # the free slot goes back to its card-month
        ckey = _counter_key(card, out.waiver_rule, orig.day)
        used = _used(counters, counter_slots, ckey)
        _set_used(counters, counter_slots, scalars, ckey, used - 1 if used > 0 else 0)
    orig.flags |= F_REVERSED


# -- 4. the loops -----------------------------------------------------------------------
def verdicts(const int8_t[::1] pre, const uint64_t[::1] card_hi, const uint64_t[::1] card_lo,
             const int32_t[:, ::1] day, const int8_t[::1] kind, const VERSION[::1] versions,
             const CARD[::1] cards, const SLOT[::1] card_slots,
             int8_t[::1] code, int32_t[::1] local_day, uint8_t[::1] flags):
    """What pricing settles of each row without the state, as ``price_rows`` does it (a
    partitioned run's first stage, txcore/plan/tasks.py): ``code`` -1 rejected already,
    R_NO_RULESET, R_UNKNOWN_CARD or 0; ``local_day`` in the zone of the version in force;
    ``flags`` ROW_REVERSAL, or ROW_DISB_NON_MEMBER: a disbursement to a card that is not a
    member that day."""
    cdef Py_ssize_t i
    cdef int32_t v, d
    cdef int64_t c
    with nogil:
        for i in range(pre.shape[0]):
            code[i], local_day[i], flags[i] = 0, 0, 0
            if pre[i] != 0:
                code[i] = -1
                continue
            v = _version_at(versions, day, i)
            if v < 0:
                code[i] = R_NO_RULESET
                continue
            d = day[versions[v].zone, i]
            local_day[i] = d
            c = _find_card(cards, card_slots, card_hi[i], card_lo[i])
            if c < 0 or cards[c].reg < 0:
                code[i] = R_UNKNOWN_CARD
            elif kind[i] == K_REVERSAL:
                flags[i] = ROW_REVERSAL
            elif kind[i] == K_DISBURSEMENT and not (cards[c].member_from <= d
                                                     and d <= cards[c].member_to):
                flags[i] = ROW_DISB_NON_MEMBER



def price_rows(
        # per row, IN
        const int8_t[::1] pre,            # 0 = price this row; else rejected already, skip
        const uint64_t[::1] card_hi, const uint64_t[::1] card_lo,
        const uint64_t[::1] txn_hi, const uint64_t[::1] txn_lo,
        const uint64_t[::1] orig_hi, const uint64_t[::1] orig_lo,
        const int32_t[:, ::1] day,        # local day, per zone of the rules  [zone, row]
        const int64_t[:, ::1] inst,       # the instant (UTC us), per zone   [zone, row]
        const int8_t[::1] kind, const int8_t[::1] channel, const int8_t[::1] fee_item,
        const int16_t[::1] mcc, const int32_t[::1] bank, const int32_t[::1] city,
        const int32_t[::1] merchant, const int64_t[::1] amount,
        # the latest local day once each row is priced, settled by the id pass of a
        # partitioned run (txcore/plan/idpass.py) over every bucket's rows; empty: this
        # batch is the whole stream, the running latest of the state decides
        const int32_t[::1] settled_now,
        # rules and reference data, IN
        const VERSION[::1] versions, const RULE[::1] rules, const BAND[::1] bands,
        const uint8_t[::1] issuer_ok, const uint8_t[::1] mcc_ok,
        const MERCH[::1] merch,           # [version * n_merch + merchant]
        const int32_t[::1] merch_rule,    # string code of "merchant:<id>"
        # state, IN/OUT
        const CARD[::1] cards, const SLOT[::1] card_slots,
        ENTRY[::1] entries, SLOT[::1] entry_slots,
        EFFECT[::1] effects, int32_t[::1] effect_slots,
        COUNTER[::1] counters, int32_t[::1] counter_slots,
        int64_t[::1] scalars,             # see txcore/_fast/layout.py
        # per row, OUT
        int8_t[::1] reason, uint8_t[::1] member, uint8_t[::1] cross_bank,
        uint8_t[::1] same_city, int64_t[::1] ts, int32_t[::1] fee_rule,
        int64_t[::1] fee_standard, int64_t[::1] fee_waived, int64_t[::1] fee_charged,
        int32_t[::1] waiver_rule, int16_t[::1] free_slot, int64_t[::1] discount,
        int32_t[::1] discount_rule, int32_t[::1] ruleset):
    """Price one batch in posting order; see the module docstring for the layers."""
    cdef Py_ssize_t n = pre.shape[0], i
    cdef Py_ssize_t n_merch = merch_rule.shape[0]
    cdef int32_t v, z, d
    cdef int64_t c, now, pos, e, o, r, retention = scalars[S_RETENTION]
    cdef bint mem
    cdef Facts f
    cdef Outcome out
    cdef const RULE* rule
    cdef const MERCH* m
    cdef const CARD* card
    cdef uint64_t entry_mask = entry_slots.shape[0] - 1, card_mask = card_slots.shape[0] - 1
    cdef uint64_t effect_mask = effect_slots.shape[0] - 1
    cdef int32_t ahead
    cdef bint settled = settled_now.shape[0] > 0
    cdef int64_t* row_entry = <int64_t*>malloc(max(n, 1) * sizeof(int64_t))
    if row_entry == NULL:
        raise MemoryError()
    with nogil:
        for i in range(n):
            if i + PREFETCH_SLOTS < n:
                TX_PREFETCH(&entry_slots[txn_lo[i + PREFETCH_SLOTS] & entry_mask])
                TX_PREFETCH(&card_slots[card_lo[i + PREFETCH_SLOTS] & card_mask])
            if i + PREFETCH_CARDS < n:
                ahead = card_slots[card_lo[i + PREFETCH_CARDS] & card_mask].idx
                if ahead >= 0:  # a 40-byte CARD may straddle two cache lines: fetch both
                    TX_PREFETCH(&cards[ahead])
                    TX_PREFETCH(<const char*>&cards[ahead] + sizeof(CARD) - 1)
            row_entry[i] = -1
            reason[i] = 0
            member[i] = cross_bank[i] = same_city[i] = 0
            ts[i] = 0
            out.fee_standard = out.fee_waived = out.discount = 0
            out.fee_rule = out.waiver_rule = out.discount_rule = out.ruleset = -1
            out.free_slot = 0
            out.flags = 0
            # the rejects that need the state, in their order (docs/outputs.md)
            if pre[i] != 0:
                reason[i] = -1
            else:
                v = _version_at(versions, day, i)
                if v < 0:
                    reason[i] = R_NO_RULESET
                else:
                    z = versions[v].zone
                    d = day[z, i]
                    c = _find_card(cards, card_slots, card_hi[i], card_lo[i])
                    if c < 0 or cards[c].reg < 0:
                        reason[i] = R_UNKNOWN_CARD
            if reason[i] == 0:
                if settled:
                    now = settled_now[i]
                else:
                    now = d if scalars[S_LATEST] == NO_LATEST or d > scalars[S_LATEST] \
                        else scalars[S_LATEST]
                pos = _entry_pos(entries, entry_slots, txn_hi[i], txn_lo[i])
                e = entry_slots[pos].idx
                card = &cards[c]
                mem = card.member_from <= d and d <= card.member_to
                if e >= 0 and now - entries[e].day <= retention:
                    reason[i] = R_DUPLICATE
                elif kind[i] == K_DISBURSEMENT and not mem:
                    reason[i] = R_DISB_NON_MEMBER
                elif kind[i] == K_REVERSAL:
                    o = _original(entries, entry_slots, orig_hi[i], orig_lo[i], now, retention)
                    if o >= 0 and entries[o].card != c:
                        reason[i] = R_MISMATCH
                    elif o >= 0 and entries[o].flags & F_REVERSED:
                        reason[i] = R_ALREADY
                    else:
                        out.ruleset = versions[v].ruleset  # a zero-effect reversal's own
                        if o < 0:
                            scalars[S_ZERO_EFFECT] += 1
                        else:
                            _undo(&out, &entries[o], c, effects, counters, counter_slots,
                                  scalars, fee_standard, discount, fee_rule, waiver_rule,
                                  discount_rule, ruleset)
                        out.flags = F_REVERSAL
                else:
                    f.kind, f.channel, f.fee_item = kind[i], channel[i], fee_item[i]
                    f.mcc, f.issuer, f.amount = mcc[i], card.issuer, amount[i]
                    f.cross = (f.kind == K_WITHDRAWAL or f.kind == K_TRANSFER) \
                        and bank[i] != card.issuer
                    f.same = (f.kind == K_WITHDRAWAL or f.kind == K_TRANSFER) \
                        and city[i] == card.city
                    cross_bank[i], same_city[i] = f.cross, f.same
                    out.ruleset = versions[v].ruleset
                    if f.kind != K_DISBURSEMENT:  # disbursements are never charged
                        rule = _first(rules, versions[v].fee_lo, versions[v].fee_hi, &f,
                                      issuer_ok, mcc_ok)
                        if rule != NULL:
                            out.fee_rule = rule.code
                            out.fee_standard = _band_fee(rule, bands, f.amount)
                        if mem:
                            rule = _first(rules, versions[v].waiver_lo, versions[v].waiver_hi,
                                          &f, issuer_ok, mcc_ok)
                            if rule != NULL:
                                _waive(&out, rule, c, d, counters, counter_slots, scalars)
                        if out.fee_waived != 0:
                            out.flags |= F_WAIVED
                        if f.kind == K_PURCHASE and mem:
                            m = &merch[v * n_merch + merchant[i]] if merchant[i] >= 0 else NULL
                            _member_discount(&out, &f, m,
                                             merch_rule[merchant[i]] if m != NULL else -1,
                                             d, rules, &versions[v], issuer_ok, mcc_ok)
            # the row's outputs (a rejected row's stay empty)
            fee_standard[i], fee_waived[i] = out.fee_standard, out.fee_waived
            fee_charged[i] = out.fee_standard - out.fee_waived
            discount[i], free_slot[i] = out.discount, out.free_slot
            fee_rule[i], waiver_rule[i] = out.fee_rule, out.waiver_rule
            discount_rule[i], ruleset[i] = out.discount_rule, out.ruleset
            if reason[i] != 0:
                continue
            member[i] = mem
            ts[i] = inst[z, i]
            # take the txn id: a new entry, or the forgotten one it replaces
            e = entry_slots[pos].idx
            if e < 0:
                e = scalars[S_N_ENTRIES]
                scalars[S_N_ENTRIES] += 1
                entry_slots[pos].fp = <uint32_t>(txn_lo[i] >> 32)
                entry_slots[pos].idx = <int32_t>e
            entries[e].key_hi = txn_hi[i]
            entries[e].key_lo = txn_lo[i]
            entries[e].card = <int32_t>c
            entries[e].day = d
            entries[e].flags = out.flags
            if out.flags & F_REVERSAL:
                entries[e].effect = -1  # never read: a reversal cannot be reversed
            else:  # interned after the loop, where the lookups can be fetched ahead
                entries[e].effect = <int32_t>(PENDING - i)
                row_entry[i] = e
            scalars[S_LATEST] = now

        # Intern what each priced row did.  A pass of its own so that the effect table's
        # slot (and then its row) is prefetched rows ahead; inline, each lookup of a rare
        # effect waited on memory.  An entry taken over later in the batch by a forgotten
        # txn id's new row is left to that row (its effect is no longer PENDING - i).
        for i in range(n):
            if i + 2 * PREFETCH_EFFECTS < n and row_entry[i + 2 * PREFETCH_EFFECTS] >= 0:
                r = i + 2 * PREFETCH_EFFECTS
                TX_PREFETCH(&effect_slots[_effect_hash(
                    fee_standard[r], discount[r], fee_rule[r], waiver_rule[r],
                    discount_rule[r], ruleset[r]) & effect_mask])
            if i + PREFETCH_EFFECTS < n and row_entry[i + PREFETCH_EFFECTS] >= 0:
                r = i + PREFETCH_EFFECTS
                ahead = effect_slots[_effect_hash(
                    fee_standard[r], discount[r], fee_rule[r], waiver_rule[r],
                    discount_rule[r], ruleset[r]) & effect_mask]
                if ahead >= 0:
                    TX_PREFETCH(&effects[ahead])
            e = row_entry[i]
            if e >= 0 and entries[e].effect == PENDING - i:
                entries[e].effect = _intern(effects, effect_slots, scalars, fee_standard[i],
                                            discount[i], fee_rule[i], waiver_rule[i],
                                            discount_rule[i], ruleset[i])
    free(row_entry)
