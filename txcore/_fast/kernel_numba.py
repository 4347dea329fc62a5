"""Numba twin of ``kernel.pyx``: the same pricing loop over the same arrays.

Written as plain Python over numpy structured arrays (dtypes in
``txcore._fast.layout``) and compiled by numba on first use; with
``NUMBA_DISABLE_JIT=1`` it runs as ordinary Python, which is how a reader can
step through it.  ``tests/test_differential.py`` checks it, like the Cython
kernel, against the reference engine.
"""
import numba
import numpy as np

from txcore._fast.layout import (DISBURSEMENT, F_REVERSAL, F_REVERSED, F_SLOT, F_WAIVED, LATEST,
                           N_COUNTERS, N_EFFECTS, N_ENTRIES, NO_LATEST, PURCHASE, RETENTION, REVERSAL_KIND,
                           ROW_DISB_NON_MEMBER, ROW_REVERSAL, TRANSFER, WITHDRAWAL, ZERO_EFFECT)

CYTHON_MODULE = 0
_jit = numba.njit(cache=False, nogil=True, boundscheck=False)
_M1 = np.uint64(0xbf58476d1ce4e5b9)
_M2 = np.uint64(0x94d049bb133111eb)
PENDING = -2  # an entry's effect while its row's is not interned yet: PENDING - row


@_jit
def _pct(amount, bp):
    return (amount * bp + 5000) // 10000  # Python floor division, as docs/pricing.md#money-and-rounding


@_jit
def _formula(amount, b):
    fee = b.fixed + _pct(amount, b.pct_bp)
    if fee < b["min"]:
        fee = b["min"]
    if b["max"] > 0 and fee > b["max"]:
        fee = b["max"]
    return fee


@_jit
def _discount(amount, bp, cap, min_spend):
    if amount < min_spend:
        return 0
    d = _pct(amount, bp)
    if cap > 0 and d > cap:
        d = cap
    return d


@_jit
def _month_index(day):
    z = day + 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    m = mp + 3 if mp < 10 else mp - 9
    if m <= 2:
        y += 1
    return y * 12 + m - 1


@_jit
def _mix(x):
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


@_jit
def _find_card(cards, slots, hi, lo):
    mask = np.uint64(len(slots) - 1)
    pos = lo & mask
    fp = np.uint32(lo >> np.uint64(32))
    while True:
        s = slots[pos].idx
        if s < 0:
            return -1
        if slots[pos].fp == fp and cards[s].key_lo == lo and cards[s].key_hi == hi:
            return s
        pos = (pos + np.uint64(1)) & mask


@_jit
def _entry_pos(entries, slots, hi, lo):
    mask = np.uint64(len(slots) - 1)
    pos = lo & mask
    fp = np.uint32(lo >> np.uint64(32))
    while True:
        s = slots[pos].idx
        if s < 0 or (slots[pos].fp == fp and entries[s].key_lo == lo
                     and entries[s].key_hi == hi):
            return pos
        pos = (pos + np.uint64(1)) & mask


@_jit
def _counter_pos(counters, slots, key):
    mask = np.uint64(len(slots) - 1)
    pos = _mix(key) & mask
    while True:
        s = slots[pos]
        if s < 0 or counters[s].key == key:
            return pos
        pos = (pos + np.uint64(1)) & mask


@_jit
def _used(counters, slots, key):
    s = slots[_counter_pos(counters, slots, key)]
    return 0 if s < 0 else counters[s].used


@_jit
def _set_used(counters, slots, scalars, key, used):
    pos = _counter_pos(counters, slots, key)
    s = slots[pos]
    if s < 0:
        s = scalars[N_COUNTERS]
        scalars[N_COUNTERS] += 1
        counters[s].key = key
        slots[pos] = s
    counters[s].used = used


@_jit
def _counter_key(card, waiver, day):
    return ((np.uint64(card) << np.uint64(36)) | (np.uint64(waiver) << np.uint64(20))
            | np.uint64(_month_index(day)))


@_jit
def _effect_hash(fee_standard, discount, fee_rule, waiver_rule, discount_rule, ruleset):
    codes = ((np.uint64(np.uint32(discount_rule)) << np.uint64(32))
             | (np.uint64(np.uint16(fee_rule)) << np.uint64(16)) | np.uint64(np.uint16(waiver_rule)))
    return _mix(np.uint64(fee_standard) ^ _mix(np.uint64(discount) ^ codes
                                               ^ (np.uint64(np.uint16(ruleset)) << np.uint64(48))))


@_jit
def _intern(effects, slots, scalars, fee_standard, discount, fee_rule, waiver_rule,
            discount_rule, ruleset):
    mask = np.uint64(len(slots) - 1)
    pos = _effect_hash(fee_standard, discount, fee_rule, waiver_rule, discount_rule,
                       ruleset) & mask
    while True:
        s = slots[pos]
        if s < 0:
            break
        f = effects[s]
        if (f.fee_standard == fee_standard and f.discount == discount
                and f.fee_rule == fee_rule and f.waiver_rule == waiver_rule
                and f.discount_rule == discount_rule and f.ruleset == ruleset):
            return s
        pos = (pos + np.uint64(1)) & mask
    s = scalars[N_EFFECTS]
    scalars[N_EFFECTS] += 1
    effects[s].fee_standard = fee_standard
    effects[s].discount = discount
    effects[s].discount_rule = discount_rule
    effects[s].fee_rule = fee_rule
    effects[s].waiver_rule = waiver_rule
    effects[s].ruleset = ruleset
    slots[pos] = s
    return s


@_jit
def intern_effects(rows, effects, slots, scalars, out):
    for i in range(len(rows)):
        r = rows[i]
        out[i] = _intern(effects, slots, scalars, r.fee_standard, r.discount, r.fee_rule,
                         r.waiver_rule, r.discount_rule, r.ruleset)


@_jit
def rebuild_effect_slots(effects, n, slots):
    mask = np.uint64(len(slots) - 1)
    for i in range(n):
        f = effects[i]
        pos = _effect_hash(f.fee_standard, f.discount, f.fee_rule, f.waiver_rule,
                           f.discount_rule, f.ruleset) & mask
        while slots[pos] >= 0:
            pos = (pos + np.uint64(1)) & mask
        slots[pos] = i


@_jit
def find_cards(cards, slots, hi, lo, out):
    for i in range(len(out)):
        out[i] = _find_card(cards, slots, hi[i], lo[i])


@_jit
def rebuild_card_slots(cards, n, slots):
    mask = np.uint64(len(slots) - 1)
    for i in range(n):
        pos = cards[i].key_lo & mask
        while slots[pos].idx >= 0:
            pos = (pos + np.uint64(1)) & mask
        slots[pos].fp = np.uint32(cards[i].key_lo >> np.uint64(32))
        slots[pos].idx = i


@_jit
def rebuild_entry_slots(entries, n, slots):
    for i in range(n):
        pos = _entry_pos(entries, slots, entries[i].key_hi, entries[i].key_lo)
        slots[pos].fp = np.uint32(entries[i].key_lo >> np.uint64(32))
        slots[pos].idx = i


@_jit
def rebuild_counter_slots(counters, n, slots):
    for i in range(n):
        slots[_counter_pos(counters, slots, counters[i].key)] = i


@_jit
def _matches(r, kind, channel, fee_item, issuer, mcc, cross, same, amount, issuer_ok, mcc_ok):
    if not (r.kind_mask >> kind) & 1:
        return False
    if not (r.channel_mask >> channel) & 1:
        return False
    if not (r.fee_item_mask >> fee_item) & 1:
        return False
    if r.issuer_off >= 0 and not issuer_ok[r.issuer_off + issuer]:
        return False
    if r.mcc_off >= 0 and (mcc < 0 or not mcc_ok[r.mcc_off + mcc]):
        return False
    if r.cross >= 0 and r.cross != cross:
        return False
    if r.same >= 0 and r.same != same:
        return False
    if r.has_below and not amount < r.amount_below:
        return False
    return True


@_jit
def _first(rules, lo, hi, kind, channel, fee_item, issuer, mcc, cross, same, amount, issuer_ok,
           mcc_ok):
    for k in range(lo, hi):
        if _matches(rules[k], kind, channel, fee_item, issuer, mcc, cross, same, amount,
                    issuer_ok, mcc_ok):
            return k
    return -1


@_jit
def _version_at(versions, day, i):
    """The version in force for row ``i`` (see ``kernel.pyx``); -1 when none is."""
    v = len(versions) - 1
    while v >= 0 and versions[v].eff > day[versions[v].zone, i]:
        v -= 1
    return v


@_jit
def verdicts(pre, card_hi, card_lo, day, kind, versions, cards, card_slots, code, local_day,
             flags):
    """See ``kernel.pyx``: what pricing settles of each row without the state."""
    for i in range(len(pre)):
        code[i] = 0
        local_day[i] = 0
        flags[i] = 0
        if pre[i] != 0:
            code[i] = -1
            continue
        v = _version_at(versions, day, i)
        if v < 0:
            code[i] = 1  # no_ruleset
            continue
        d = day[versions[v].zone, i]
        local_day[i] = d
        c = _find_card(cards, card_slots, card_hi[i], card_lo[i])
        if c < 0 or cards[c].reg < 0:
            code[i] = 2  # unknown_card
        elif kind[i] == REVERSAL_KIND:
            flags[i] = ROW_REVERSAL
        elif kind[i] == DISBURSEMENT and not (cards[c].member_from <= d
                                                 and d <= cards[c].member_to):
            flags[i] = ROW_DISB_NON_MEMBER


@_jit
def price_rows(pre, card_hi, card_lo, txn_hi, txn_lo, orig_hi, orig_lo, day, inst, kind,
               channel, fee_item, mcc, bank, city, merchant, amount, settled_now,
               versions, rules, bands, issuer_ok, mcc_ok, merch, merch_rule,
               cards, card_slots, entries, entry_slots, effects, effect_slots, counters,
               counter_slots, scalars,
               reason, member, cross_bank, same_city, ts, fee_rule, fee_standard, fee_waived,
               fee_charged, waiver_rule, free_slot, discount, discount_rule, ruleset):
    """See ``kernel.pyx``: price one encoded batch in posting order."""
    n_merch = len(merch_rule)
    retention = scalars[RETENTION]
    row_entry = np.empty(len(pre), np.int64)
    for i in range(len(pre)):
        row_entry[i] = -1
        reason[i] = 0
        member[i] = 0
        cross_bank[i] = 0
        same_city[i] = 0
        fee_rule[i] = -1
        waiver_rule[i] = -1
        discount_rule[i] = -1
        ruleset[i] = -1
        fee_standard[i] = 0
        fee_waived[i] = 0
        fee_charged[i] = 0
        discount[i] = 0
        free_slot[i] = 0
        ts[i] = 0
        if pre[i] != 0:
            reason[i] = -1
            continue
        v = _version_at(versions, day, i)
        if v < 0:
            reason[i] = 1  # no_ruleset
            continue
        z = versions[v].zone
        d = day[z, i]
        c = _find_card(cards, card_slots, card_hi[i], card_lo[i])
        if c < 0 or cards[c].reg < 0:
            reason[i] = 2  # unknown_card
            continue
        if len(settled_now):
            now = np.int64(settled_now[i])
        else:
            latest = scalars[LATEST]
            now = d if latest == NO_LATEST or d > latest else latest
        pos = _entry_pos(entries, entry_slots, txn_hi[i], txn_lo[i])
        e = entry_slots[pos].idx
        if e >= 0 and now - entries[e].day <= retention:
            reason[i] = 3  # duplicate_txn_id
            continue
        card = cards[c]
        mem = card.member_from <= d and d <= card.member_to
        kd = kind[i]
        if kd == DISBURSEMENT and not mem:
            reason[i] = 4  # disbursement_to_non_member
            continue
        flags = 0
        if kd == REVERSAL_KIND:
            o = entry_slots[_entry_pos(entries, entry_slots, orig_hi[i], orig_lo[i])].idx
            if o >= 0 and (now - entries[o].day > retention or entries[o]["flags"] & F_REVERSAL):
                o = -1  # forgotten, or a reversal of a reversal: zero-effect
            if o >= 0 and entries[o].card != c:
                reason[i] = 5  # reversal_mismatch
                continue
            if o >= 0 and entries[o]["flags"] & F_REVERSED:
                reason[i] = 6  # already_reversed
                continue
            member[i] = mem
            ts[i] = inst[z, i]
            ruleset[i] = versions[v].ruleset
            if o < 0:
                scalars[ZERO_EFFECT] += 1
            else:
                if entries[o].effect >= 0:
                    was = effects[entries[o].effect]
                    was_std, was_discount = was.fee_standard, was.discount
                    was_fee_rule, was_waiver_rule = was.fee_rule, was.waiver_rule
                    was_discount_rule, was_ruleset = was.discount_rule, was.ruleset
                else:  # priced earlier in this batch, its effect not interned yet
                    r = PENDING - entries[o].effect
                    was_std, was_discount = fee_standard[r], discount[r]
                    was_fee_rule, was_waiver_rule = fee_rule[r], waiver_rule[r]
                    was_discount_rule, was_ruleset = discount_rule[r], ruleset[r]
                std = was_std
                waived = std if entries[o]["flags"] & F_WAIVED else 0
                fee_standard[i] = -std
                fee_waived[i] = -waived
                fee_charged[i] = -(std - waived)
                discount[i] = -was_discount
                fee_rule[i] = was_fee_rule
                waiver_rule[i] = was_waiver_rule
                discount_rule[i] = was_discount_rule
                ruleset[i] = was_ruleset
                if entries[o]["flags"] & F_SLOT:
                    ckey = _counter_key(c, was_waiver_rule, entries[o].day)
                    used = _used(counters, counter_slots, ckey)
                    _set_used(counters, counter_slots, scalars, ckey, used - 1 if used > 0 else 0)
                entries[o]["flags"] |= F_REVERSED
            flags = F_REVERSAL
        else:
            a = amount[i]
            member[i] = mem
            ts[i] = inst[z, i]
            ruleset[i] = versions[v].ruleset
            counterparty = kd == WITHDRAWAL or kd == TRANSFER
            cross = counterparty and bank[i] != card.issuer
            same = counterparty and city[i] == card.city
            cross_bank[i] = cross
            same_city[i] = same
            if kd != DISBURSEMENT:
                iss, ch, fi, mc = card.issuer, channel[i], fee_item[i], mcc[i]
                k = _first(rules, versions[v].fee_lo, versions[v].fee_hi, kd, ch, fi, iss, mc,
                           cross, same, a, issuer_ok, mcc_ok)
                if k >= 0:
                    fee_rule[i] = rules[k].code
                    for b in range(rules[k].band_lo, rules[k].band_hi):
                        if bands[b].upto < 0 or a <= bands[b].upto:
                            fee_standard[i] = _formula(a, bands[b])
                            break
                if mem:
                    k = _first(rules, versions[v].waiver_lo, versions[v].waiver_hi, kd, ch, fi,
                               iss, mc, cross, same, a, issuer_ok, mcc_ok)
                    if k >= 0:
                        waiver_rule[i] = rules[k].code
                        if rules[k].free_per_month < 0:
                            fee_waived[i] = fee_standard[i]
                        else:
                            ckey = _counter_key(c, rules[k].code, d)
                            used = _used(counters, counter_slots, ckey)
                            if used < rules[k].free_per_month:
                                used += 1
                                _set_used(counters, counter_slots, scalars, ckey, used)
                                fee_waived[i] = fee_standard[i]
                                free_slot[i] = used
                                flags = F_SLOT
                fee_charged[i] = fee_standard[i] - fee_waived[i]
                if fee_waived[i] != 0:
                    flags |= F_WAIVED
                if kd == PURCHASE and mem:
                    mi = merchant[i]
                    partner = False
                    if mi >= 0:
                        m = merch[v * n_merch + mi]
                        partner = m.valid_from <= d and d <= m.valid_to
                    if partner:
                        discount_rule[i] = merch_rule[mi]
                        discount[i] = _discount(a, m.bp, m.cap, m.min_spend)
                    else:
                        k = _first(rules, versions[v].disc_lo, versions[v].disc_hi, kd, ch, fi,
                                   iss, mc, cross, same, a, issuer_ok, mcc_ok)
                        if k >= 0:
                            discount_rule[i] = rules[k].code
                            discount[i] = _discount(a, rules[k].discount_bp, rules[k].cap,
                                                    rules[k].min_spend)
        e = entry_slots[pos].idx
        if e < 0:
            e = scalars[N_ENTRIES]
            scalars[N_ENTRIES] += 1
            entry_slots[pos].fp = np.uint32(txn_lo[i] >> np.uint64(32))
            entry_slots[pos].idx = e
        entries[e].key_hi = txn_hi[i]
        entries[e].key_lo = txn_lo[i]
        entries[e].card = c
        entries[e].day = d
        entries[e]["flags"] = flags
        if flags & F_REVERSAL:
            entries[e].effect = -1  # never read: a reversal cannot be reversed
        else:  # interned after the loop, as kernel.pyx does (it prefetches there)
            entries[e].effect = PENDING - i
            row_entry[i] = e
        scalars[LATEST] = now
    for i in range(len(pre)):
        e = row_entry[i]
        if e >= 0 and entries[e].effect == PENDING - i:
            entries[e].effect = _intern(effects, effect_slots, scalars, fee_standard[i],
                                        discount[i], fee_rule[i], waiver_rule[i],
                                        discount_rule[i], ruleset[i])


def _interpreted(fn):
    """``fn`` run as plain Python (``NUMBA_DISABLE_JIT=1``): structured arrays are viewed as
    record arrays, whose rows take ``row.field`` as numba's records do, and the hash mixing's
    intended uint64 wrap-around raises no overflow warning."""
    import functools

    @functools.wraps(fn)
    def run(*args):
        args = [a.view(np.recarray) if isinstance(a, np.ndarray) and a.dtype.names else a
                for a in args]
        with np.errstate(over="ignore"):
            return fn(*args)
    return run


if numba.config.DISABLE_JIT:
    intern_effects, rebuild_effect_slots, find_cards, rebuild_card_slots, \
        rebuild_entry_slots, rebuild_counter_slots, price_rows, verdicts = map(
            _interpreted, (intern_effects, rebuild_effect_slots, find_cards, rebuild_card_slots,
                           rebuild_entry_slots, rebuild_counter_slots, price_rows, verdicts))
