"""The reference pricing engine: docs/pricing.md in plain Python, one row at a time.

This module is the specification in code.  Fast backends (``txcore._fast``)
must give the same output, to the fen, on every column; the tests check them
against :class:`ReferenceEngine` on generated streams.

Per accepted row (after the stateless checks of :mod:`txcore.engine.validate`):
choose the rule-set version in force on the local date, run the stateful
checks (no_ruleset, unknown_card, duplicate_txn_id, disbursement_to_non_member,
reversal_mismatch, already_reversed), then price: standard fee, member waiver
(with monthly free slots), discount.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pyarrow as pa

from txcore import money
from txcore.io.assemble import build_outputs
from txcore.rules.refdata import Cards
from txcore.rules.book import Facts, RuleBook, RuleSet
from txcore.state.memory import Effect, Entry, State
from txcore.engine.validate import Reject, TimeCheck, Txn, detail, validate_batch
from txcore.vocab import KINDS_WITH_COUNTERPARTY


@dataclass(slots=True)
class Priced:
    """The output columns of one priced row (docs/outputs.md)."""

    ts: dt.datetime  # the instant, aware
    amount: int | None
    member: bool
    cross_bank: bool
    same_city: bool
    fee_rule: str | None
    fee_standard: int
    fee_waived: int
    fee_charged: int
    waiver_rule: str | None
    free_slot: int
    discount: int
    discount_rule: str | None
    ruleset: str


def discount_of(amount: int, bp: int, cap: int, min_spend: int) -> int:
    """``pct(amount, bp)``, capped at ``cap`` when ``cap > 0``, 0 below ``min_spend``."""
    if amount < min_spend:
        return 0
    d = money.pct(amount, bp)
    return min(d, cap) if cap > 0 else d


def in_force(book: RuleBook, ts: dt.datetime) -> tuple[RuleSet, dt.date, dt.datetime] | None:
    """``(version, local date, instant)`` of a row's timestamp, or None before every
    version.  A naive timestamp is wall time in the zone of the version it falls in."""
    if ts.tzinfo is None:
        found = book.for_naive(ts)
        return None if found is None else (found[0], ts.date(), found[1])
    found = book.for_instant(ts)
    return None if found is None else (found[0], found[1], ts)


def facts_of(txn: Txn, card) -> Facts:
    """What the rules' conditions test, with ``cross_bank`` / ``same_city`` derived
    (false where the kind has no counterparty bank and city)."""
    counterparty = txn.kind in KINDS_WITH_COUNTERPARTY
    return Facts(txn.kind, txn.channel, txn.fee_item, card.issuer, txn.mcc,
                 counterparty and txn.acq_bank != card.issuer,
                 counterparty and txn.city == card.home_city, txn.amount)


class ReferenceEngine:
    """Prices record batches in posting order, carrying state from row to row."""

    name = "python"

    def __init__(self, book: RuleBook, cards: Cards, state: State | None = None,
                 business_date: dt.date | None = None):
        """``business_date``: rows dated more than a day after it are rejected bad_ts
        (None: no such check; ``txcore.run`` always gives one)."""
        self.book, self.cards = book, cards
        self.state = state if state is not None else State()
        self.times = TimeCheck(book, business_date)
        self.zero_effect_reversals = 0

    def price_batch(self, batch: pa.RecordBatch):
        """``(priced, rejects)`` record batches for one input batch, in input order."""
        outcomes = [r if isinstance(r, Reject) else self.price(r)
                    for r in validate_batch(batch, self.times)]
        return build_outputs(batch, outcomes)

    # -- one row ----------------------------------------------------------------------
    def price(self, txn: Txn) -> Priced | Reject:
        found = in_force(self.book, txn.ts)
        if found is None:
            return Reject("no_ruleset", detail("ts", txn.ts.isoformat()))
        version, local_date, instant = found
        card = self.cards.get(txn.card_no)
        if card is None:
            return Reject("unknown_card", detail("card_no", txn.card_no))
        state = self.state
        now = state.now(local_date)
        txn_key, card_key = state.txn_key(txn.txn_id), state.card_key(txn.card_no)
        if state.lookup(txn_key, now) is not None:
            return Reject("duplicate_txn_id", detail("txn_id", txn.txn_id))
        member = card.is_member(local_date)
        if txn.kind == "disbursement" and not member:
            return Reject("disbursement_to_non_member", detail("card_no", txn.card_no))
        if txn.kind == "reversal":
            return self._reverse(txn, txn_key, card_key, version, instant, local_date, member,
                                 now)

        facts = facts_of(txn, card)
        out = Priced(instant, txn.amount, member, facts.cross_bank, facts.same_city, None, 0, 0,
                     0, None, 0, 0, None, version.id)
        slot = (None, None)  # (waiver id, month) of the free slot used, if any
        if txn.kind != "disbursement":  # disbursements are never charged (docs/pricing.md#5-disbursements)
            slot = self._fee(txn, card_key, version, facts, member, local_date, out)
            if txn.kind == "purchase" and member:
                self._discount(txn, version, facts, local_date, out)
        effect = Effect(out.fee_standard, out.fee_waived, out.fee_charged, out.discount,
                        out.fee_rule, out.waiver_rule, out.discount_rule, out.ruleset, *slot)
        state.take(txn_key, Entry(card_key, local_date, effect), now)
        return out

    def _fee(self, txn, card_key, version: RuleSet, facts, member, local_date, out):
        """Standard fee and member waiver into ``out``; returns the free slot used, if any."""
        slot = (None, None)
        rule = version.first_fee(facts)
        if rule is not None:
            out.fee_rule, out.fee_standard = rule.id, rule.fee(txn.amount)
        if member:
            waiver = version.first_waiver(facts)
            if waiver is not None:
                out.waiver_rule = waiver.id  # recorded even when it waives nothing
                if waiver.free_per_month is None:
                    out.fee_waived = out.fee_standard
                else:
                    month = (local_date.year, local_date.month)
                    used = self.state.used(card_key, waiver.id, month)
                    if used < waiver.free_per_month:
                        used += 1
                        self.state.set_used(card_key, waiver.id, month, used)
                        out.fee_waived, out.free_slot = out.fee_standard, used
                        slot = (waiver.id, month)
        out.fee_charged = out.fee_standard - out.fee_waived
        return slot

    def _discount(self, txn, version: RuleSet, facts, local_date, out):
        partner = version.merchants.valid_on(txn.merchant_id, local_date) \
            if version.merchants is not None else None
        if partner is not None:  # a partner merchant decides, even below min_spend
            out.discount_rule = f"merchant:{partner.merchant_id}"
            out.discount = discount_of(txn.amount, partner.discount_bp, partner.cap,
                                       partner.min_spend)
            return
        rule = version.first_discount(facts)
        if rule is not None:
            out.discount_rule = rule.id
            out.discount = discount_of(txn.amount, rule.discount_bp, rule.cap, rule.min_spend)

    def _reverse(self, txn, txn_key, card_key, version, instant, local_date, member,
                 now) -> Priced | Reject:
        state = self.state
        orig = state.lookup(state.txn_key(txn.orig_txn_id), now)
        if orig is not None and orig.effect is None:
            orig = None  # a reversal of a reversal is zero-effect
        if orig is not None and orig.card != card_key:
            return Reject("reversal_mismatch", detail("card_no", txn.card_no))
        if orig is not None and orig.reversed:
            return Reject("already_reversed", detail("orig_txn_id", txn.orig_txn_id))
        out = Priced(instant, txn.amount, member, False, False, None, 0, 0, 0, None, 0, 0, None,
                     version.id)
        if orig is None:
            self.zero_effect_reversals += 1
        else:
            e = orig.effect
            out.fee_standard, out.fee_waived = -e.fee_standard, -e.fee_waived
            out.fee_charged, out.discount = -e.fee_charged, -e.discount
            out.fee_rule, out.waiver_rule, out.discount_rule = e.fee_rule, e.waiver_rule, \
                e.discount_rule
            out.ruleset = e.ruleset
            if e.slot_waiver is not None:  # give the free slot back to its card-month
                used = state.used(card_key, e.slot_waiver, e.slot_month)
                state.set_used(card_key, e.slot_waiver, e.slot_month, max(used - 1, 0))
            orig.reversed = True
        state.take(txn_key, Entry(card_key, local_date, None), now)
        return out
