"""The compiled engines: encode a batch, price it in one kernel call, build Arrow outputs.

``CompiledEngine(kernel)`` is the orchestration shared by the ``cython`` and
``numba`` backends; they differ only in the kernel module
(:func:`txcore._fast.kernel`).  Per batch:

1. :class:`~txcore.engine.encoder.Encoder` turns the columns into integer arrays
   (rows failing a stateless check are rejected by the reference validator);
2. the kernel prices every row in posting order against the compact state
   (:mod:`txcore.state.compact`), returning per-row output arrays and a reason code for
   the stateful rejects (no_ruleset, unknown_card, ...);
3. the outputs are assembled with Arrow ``take`` and dictionary decoding — no
   per-row Python work except for reject details.

The engine takes the state's counters and index over for as long as it lives
(``state.compact``); ``State.tables()`` and the reference engine read them back.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from txcore._fast import layout as L
from txcore.io.assemble import TS_TYPE, keep_rows, priced_schema, reject_batch
from txcore.state.compact import CompactState
from txcore.engine.encoder import Encoder, hash_column
from txcore._fast import load_kernel
from txcore._fast.layout import Strings
from txcore.engine.flatrules import compile_book, compile_registry
from txcore.rules.refdata import Cards
from txcore.rules.book import RuleBook
from txcore.state.memory import State
from txcore.engine.validate import Reject, TimeCheck, detail, validate_batch
from txcore.vocab import PRICED_COLUMNS

_NO_NOW = np.zeros(0, np.int32)


@dataclass(frozen=True)
class Registry:
    """The card registry as the kernel takes it: its ``REG`` rows and their cards' keyed
    digests, and the issuer and city strings in the order the rows number them.  Made
    once per process and key (:func:`compile_cards`), shared by every engine there."""

    reg: np.ndarray
    hi: np.ndarray
    lo: np.ndarray
    banks: tuple
    cities: tuple

    def only(self, keep: np.ndarray) -> Registry:
        """The cards where ``keep`` (a card bucket's, say); the same strings."""
        return Registry(self.reg[keep], self.hi[keep], self.lo[keep], self.banks, self.cities)


def compile_cards(cards: Cards, keyer) -> Registry:
    banks, cities = Strings(), Strings()
    reg, numbers = compile_registry(cards, banks, cities)
    hi, lo, _ = hash_column(numbers, len(numbers), keyer)
    return Registry(reg, hi, lo, tuple(banks.values), tuple(cities.values))


class CompiledEngine:
    name = "compiled"
    kernel_name = ""

    def __init__(self, book: RuleBook, cards: Cards, state: State | None = None,
                 business_date: dt.date | None = None, registry: Registry | None = None):
        """``registry``: ``cards`` already compiled for this state's key (a partitioned
        run's worker makes it once for all its engines)."""
        self.kernel = load_kernel(self.kernel_name)
        self.times = TimeCheck(book, business_date)
        self.book, self.cards = book, cards
        self.state = state if state is not None else State()
        if self.state.compact is not None and self.state.compact.kernel is self.kernel:
            self.compact = self.state.compact
        else:
            counters, index = self.state.tables()
            self.compact = CompactState.from_tables(counters, index, self.state.latest,
                                                    self.state.retention_days, self.kernel)
            self.state.compact = self.compact
        self.compact.scalars[L.ZERO_EFFECT] = 0
        if registry is None:
            registry = compile_cards(cards, self.state.keyer)
        self.banks, self.cities = Strings(registry.banks), Strings(registry.cities)
        self.reg = registry.reg
        self.flat = compile_book(book, self.compact.strings, self.banks)
        self.encoder = Encoder(self.flat, self.state.keyer, self.banks, self.cities, self.times)
        self.compact.attach_registry(registry.hi, registry.lo, registry.reg)
        self.slow_rows = 0

    def reserve(self, rows: int):
        """Room in the state's index for ``rows`` more rows, allocated once (not by doubling)."""
        self.compact.reserve(rows, counters=False)

    @property
    def zero_effect_reversals(self) -> int:
        return int(self.compact.scalars[L.ZERO_EFFECT])

    def price_batch(self, batch: pa.RecordBatch):
        """``(priced, rejects)`` record batches for one input batch, in input order."""
        enc = self.encoder.encode(batch)
        return self.outputs(batch, enc, self.price_encoded(enc))

    def price_encoded(self, enc, settled_now=None) -> dict:
        """Run the kernel over an encoded batch: its per-row output arrays, by name.

        ``settled_now`` (int32 per row): the latest local day once each row is priced,
        as the id pass of a partitioned run settled it over every card's rows
        (:mod:`txcore.plan.idpass`); None: this engine sees the whole stream."""
        self.slow_rows += enc.slow_rows
        n, c, f = enc.n, self.compact, self.flat
        c.reserve(n)
        out = {"reason": np.empty(n, np.int8), "member": np.empty(n, np.uint8),
               "cross_bank": np.empty(n, np.uint8), "same_city": np.empty(n, np.uint8),
               "ts": np.empty(n, np.int64), "fee_rule": np.empty(n, np.int32),
               "fee_standard": np.empty(n, np.int64), "fee_waived": np.empty(n, np.int64),
               "fee_charged": np.empty(n, np.int64), "waiver_rule": np.empty(n, np.int32),
               "free_slot": np.empty(n, np.int16), "discount": np.empty(n, np.int64),
               "discount_rule": np.empty(n, np.int32), "ruleset": np.empty(n, np.int32)}
        self.kernel.price_rows(
            enc.pre, enc.card_hi, enc.card_lo, enc.txn_hi, enc.txn_lo, enc.orig_hi, enc.orig_lo,
            enc.day, enc.inst, enc.kind, enc.channel, enc.fee_item, enc.mcc, enc.bank, enc.city,
            enc.merchant, enc.amount, _NO_NOW if settled_now is None else settled_now,
            f.versions, f.rules, f.bands, f.issuer_ok, f.mcc_ok, f.merch, f.merch_rule,
            c.cards, c.card_slots, c.entries, c.entry_slots, c.effects, c.effect_slots,
            c.counters, c.counter_slots, c.scalars, *out.values())
        return out

    # -- outputs --------------------------------------------------------------------------
    def outputs(self, batch, enc, out, strings: Strings | None = None):
        """``(priced, rejects)`` of a batch from its encoding and the kernel's arrays
        (``out``); rule ids are codes of ``strings`` (default: this engine's state's)."""
        reason = out["reason"]
        priced_rows = np.flatnonzero(reason == 0)
        reject_rows = np.flatnonzero(reason != 0)
        strings = self.compact.strings if strings is None else strings
        p_schema = priced_schema(batch.schema)
        carried = keep_rows(batch, reason == 0)
        columns = []
        for fld in p_schema:
            name = fld.name
            if name == "ts":
                columns.append(pa.array(out["ts"][priced_rows]).cast(TS_TYPE))
            elif name == "amount":
                columns.append(pa.array(enc.amount[priced_rows], pa.int64(),
                                        mask=~enc.amount_ok[priced_rows]))
            elif name in ("fee_rule", "waiver_rule", "discount_rule", "ruleset"):
                columns.append(strings.decode(out[name][priced_rows]))
            elif name in ("member", "cross_bank", "same_city"):
                columns.append(pa.array(out[name][priced_rows].view(bool)))
            elif name in PRICED_COLUMNS:
                columns.append(pa.array(out[name][priced_rows], fld.type))
            else:
                columns.append(carried.column(name))
        priced = pa.RecordBatch.from_arrays(columns, schema=p_schema)

        # the kernel's rejects passed the stateless checks: their rows validated again,
        # in one call, for the values their details quote
        kernel_rows = reject_rows[reason[reject_rows] > 0]
        txns = dict(zip(kernel_rows.tolist(),
                        validate_batch(batch.take(pa.array(kernel_rows)), self.times)
                        if len(kernel_rows) else []))
        rejects = [enc.rejects[i] if reason[i] < 0 else self._reject(txns[i], int(reason[i]))
                   for i in reject_rows.tolist()]
        return priced, reject_batch(batch, reject_rows, rejects)

    @staticmethod
    def _reject(txn, code: int) -> Reject:
        """The reject of a row the kernel turned away with reason ``code``, its detail
        worded as the reference engine words it (``txn``: the row, validated)."""
        reason = L.KERNEL_REASONS[code]
        if reason == "no_ruleset":
            return Reject(reason, detail("ts", txn.ts.isoformat()))
        if reason == "duplicate_txn_id":
            return Reject(reason, detail("txn_id", txn.txn_id))
        if reason == "already_reversed":
            return Reject(reason, detail("orig_txn_id", txn.orig_txn_id))
        return Reject(reason, detail("card_no", txn.card_no))


class CythonEngine(CompiledEngine):
    name = kernel_name = "cython"


class NumbaEngine(CompiledEngine):
    name = kernel_name = "numba"
