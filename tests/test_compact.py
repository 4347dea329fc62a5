"""The compact state's tables: what a loaded state holds comes back out unchanged.

Entries keep what their row did as a row of an interned effects table
(``txcore/state/compact.py``); these tests load index tables the kernels never made and
check that ``to_tables`` gives them back, on both compiled kernels.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from txcore.state.compact import CompactState
from txcore._fast.layout import N_EFFECTS
from txcore._fast import load_kernel as kernel
from txcore.state import schema as state_schema

KERNELS = ["cython", "numba"]


def _digests(n: int, salt: int) -> pa.Array:
    words = np.arange(2 * n, dtype=">u8").reshape(n, 2) * 7919 + salt
    return pa.FixedSizeBinaryArray.from_buffers(state_schema.KEY, n, [None, pa.py_buffer(words.tobytes())])


def index_table(n: int, discount_rules: list, reversal_every: int = 5) -> pa.Table:
    """``n`` entries, one card each, every ``reversal_every``-th a reversal (no effect)."""
    reversal = np.arange(n) % reversal_every == reversal_every - 1
    std = np.where(reversal, 0, np.arange(n) % 7 * 100)
    discount = np.where(reversal, 0, np.arange(n) % 11)

    def money(values):
        return pa.array(values, pa.int64(), mask=reversal)

    def text(values):
        return pa.array([None if r else v for r, v in zip(reversal, values)], pa.string())

    schema = state_schema.INDEX
    return pa.table({
        "txn": _digests(n, 1), "card": _digests(n, 2),
        "local_date": pa.array([dt.date(2015, 11, 1)] * n, pa.date32()),
        "is_reversal": pa.array(reversal), "reversed": pa.array(np.zeros(n, bool)),
        "fee_standard": money(std), "fee_waived": money(np.zeros(n, np.int64)),
        "fee_charged": money(std), "discount": money(discount),
        "fee_rule": text(["atm-cross" if s else None for s in std]),
        "waiver_rule": text([None] * n),
        "discount_rule": text(discount_rules),
        "ruleset": text(["licheng-2013" if i % 2 else "licheng-2016" for i in range(n)]),
        "slot_waiver": pa.nulls(n, pa.string()), "slot_month": pa.nulls(n, pa.int32()),
    }, schema=schema)


def counters_table() -> pa.Table:
    return pa.table({"card": _digests(1, 2), "waiver_id": ["member-atm-3-free"],
                     "month": pa.array([201511], pa.int32()), "used": pa.array([2], pa.int32())})


@pytest.mark.parametrize("name", KERNELS)
def test_a_loaded_index_comes_back_unchanged(name):
    n = 5000
    index = index_table(n, [f"merchant:M{i % 40}" if i % 3 else None for i in range(n)])
    state = CompactState.from_tables(counters_table(), index, dt.date(2015, 11, 1), 45,
                                     kernel(name))
    counters, again = state.to_tables()
    assert again.equals(index)
    assert counters.equals(counters_table())
    # entries doing the same thing share one effect row: one row per distinct effect
    effects = {tuple(row.values()) for row in index.select(
        ["fee_standard", "discount", "fee_rule", "waiver_rule", "discount_rule", "ruleset"]
    ).to_pylist()}
    assert int(state.scalars[N_EFFECTS]) == len(effects) < n // 2


@pytest.mark.parametrize("name", KERNELS)
def test_many_merchant_rules_do_not_push_rule_ids_past_16_bits(name):
    """40,000 distinct ``merchant:<id>`` discount rules: the rule-set and rule ids, held
    in 16 bits, are coded first and come back right."""
    n = 40_000
    index = index_table(n, [f"merchant:M{i}" for i in range(n)], reversal_every=n + 1)
    state = CompactState.from_tables(counters_table(), index, dt.date(2015, 11, 1), 45,
                                     kernel(name))
    assert state.to_tables()[1].equals(index)
