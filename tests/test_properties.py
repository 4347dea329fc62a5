"""Properties of the pricing of generated streams (docs/pricing.md), on every backend.

The streams reach the edges: month boundaries in local time, exhausted free
slots, tier and clamp edges, repeated txn_ids, reversals (of priced, rejected,
unknown and reversed rows) and malformed rows mixed in.
"""
from __future__ import annotations

import tempfile
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CIB_CARD, CMB_CARD, CMB_CARD2, CMB_CARD3, RULES, STRANGER, merchants, price
from txcore.rules.refdata import Merchant
from txcore.rules.book import load_book
from txcore.state.store import StateStore
from conftest import D, registry

BOOK = load_book(RULES, merchants(Merchant("QZ1", "店", 800, 500, 3000, D(2013, 10, 1), None),
                                  Merchant("QZ2", "店", 10000, 0, 0, D(2013, 9, 1),
                                           D(2013, 10, 31))))
CARDS = registry()
QUOTA = {w.id: w.free_per_month for v in BOOK.versions for w in v.waivers if w.free_per_month}

TIMES = st.sampled_from([
    "2013-08-31T23:00:00+08:00",                       # before the programme: no_ruleset
    "2013-09-30T15:59:59Z", "2013-09-30T16:00:00Z",     # September / October in Quanzhou
    "2013-10-15T10:00:00+08:00", "2013-10-15 10:00:00", "2013-10-20T10:00:00+08:00",
    "2013-10-25T10:00:00+08:00", "2013-10-30T10:00:00+08:00",
    "2013-10-31T15:59:59Z", "2013-10-31T16:30:00Z",     # October / November
    "2013-11-30T23:59:59+08:00", "2013-12-01T00:00:00+08:00", "2014-01-20T12:00:00Z",
    "2013-10-15",                                       # bare date: bad_ts
])
AMOUNTS = st.one_of(
    st.sampled_from([1, 99, 100, 199, 200, 10000, 29999, 30000, 40000, 200000, 200001, 500000,
                     1000000, 1000001, 5000000, 5000001, 16666667, 10**12, 0, -1, 10**12 + 1]),
    st.integers(1, 10**8))


@st.composite
def atm_burst(draw):
    """A member's cross-bank same-city ATM withdrawal: these exhaust the monthly free slots."""
    return {"card_no": draw(st.sampled_from([CMB_CARD, CMB_CARD, CMB_CARD2])),
            "ts": draw(st.sampled_from(["2013-10-15T10:00:00+08:00", "2013-10-31T15:59:59Z",
                                        "2013-10-31T16:30:00Z", "2013-11-30T23:59:59+08:00"])),
            "kind": "withdrawal", "channel": "atm", "amount": draw(AMOUNTS),
            "acq_bank": "ICBC", "city": "350500"}


@st.composite
def txn(draw):
    kind = draw(st.sampled_from(["withdrawal"] * 3 + ["transfer"] * 2 + ["purchase"] * 2 +
                                ["service", "disbursement", "reversal", "refund"]))
    r = {"card_no": draw(st.sampled_from([CMB_CARD] * 6 + [CMB_CARD2, CIB_CARD, CMB_CARD3,
                                                           STRANGER, "1234"])),
         "ts": draw(TIMES), "kind": kind, "amount": draw(AMOUNTS)}
    if kind == "withdrawal":
        r["channel"] = draw(st.sampled_from(["atm"] * 6 + ["counter", "pos"]))
    elif kind == "transfer":
        r["channel"] = draw(st.sampled_from(["online", "mobile", "self_service", "counter"]))
    elif kind == "purchase":
        r["channel"] = "pos"
        r["merchant_id"] = draw(st.sampled_from(["QZ1", "QZ2", "NP1", None]))
        r["mcc"] = draw(st.sampled_from([None, "5411", "4111"]))
    elif kind == "service":
        r["fee_item"] = draw(st.sampled_from(["issuance", "loss_report", "annual",
                                              "small_account", "small_account"]))
        r["amount"] = draw(st.sampled_from([0, 100, 29999, 30000, 500000]))
    elif kind == "disbursement":
        r["benefit"] = draw(st.sampled_from([None, "medical_aid", "hardship", "school_aid"]))
    if kind in ("withdrawal", "transfer"):
        r["acq_bank"] = draw(st.sampled_from(["CIB", "ICBC", "CMB"]))
        r["city"] = draw(st.sampled_from(["350500", "350500", "350500", "350200"]))
    return r


@st.composite
def streams(draw):
    """Rows with unique txn_ids but for some repeats; reversals mostly of earlier rows."""
    rows = draw(st.lists(st.one_of(txn(), atm_burst()), min_size=1, max_size=60))
    for i, r in enumerate(rows):
        earlier = [x["txn_id"] for x in rows[:i]]
        repeat = earlier and draw(st.integers(0, 9)) == 0
        r["txn_id"] = draw(st.sampled_from(earlier)) if repeat else f"T{i}"
        if r["kind"] == "reversal":
            r["orig_txn_id"] = (draw(st.sampled_from(earlier)) if earlier and draw(st.booleans())
                                else draw(st.sampled_from(earlier + ["T0", "NOPE"])))
    return rows
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(rows=streams())
def test_accounting_and_bounds(backend, rows):
    priced, rejects = price(rows, BOOK, backend=backend)
    assert len(priced) + len(rejects) == len(rows)  # input = priced + rejected
    originals = {}
    net_slots = Counter()
    for p in priced:
        assert p["fee_charged"] == p["fee_standard"] - p["fee_waived"]
        if p["kind"] == "reversal":
            orig = originals.get(p["orig_txn_id"])
            if orig is not None and p["fee_rule"] == orig["fee_rule"] and p["fee_standard"]:
                assert p["fee_standard"] == -orig["fee_standard"]
            if orig is not None and orig["free_slot"] and p["waiver_rule"] == orig["waiver_rule"]:
                net_slots[orig["_slot_key"]] -= 1
            continue
        assert 0 <= p["fee_waived"] <= p["fee_standard"]
        assert 0 <= p["discount"] <= p["amount"]
        assert p["free_slot"] >= 0
        if p["free_slot"]:
            month = p["ts"].astimezone(BOOK.versions[0].zone).strftime("%Y-%m")
            key = (p["card_no"], p["waiver_rule"], month)
            p["_slot_key"] = key
            net_slots[key] += 1
            assert p["free_slot"] <= QUOTA[p["waiver_rule"]]
            assert net_slots[key] <= QUOTA[p["waiver_rule"]]  # at most N in use at once
        if not p["member"]:
            assert p["fee_waived"] == 0 and p["waiver_rule"] is None and p["discount"] == 0
        originals[p["txn_id"]] = p


@SETTINGS
@given(rows=streams(), batch_size=st.integers(1, 7))
def test_any_batch_size_gives_the_same_rows(backend, rows, batch_size):
    assert price(rows, BOOK, backend=backend, batch_size=batch_size) == \
        price(rows, BOOK, backend=backend)


@SETTINGS
@given(rows=streams(), cuts=st.lists(st.integers(0, 60), max_size=3))
def test_any_split_into_consecutive_runs_gives_the_same_rows(backend, rows, cuts):
    """``run A B`` == ``run A`` then ``run B``, the state going through disk between runs."""
    whole = price(rows, BOOK, backend=backend)
    bounds = [0, *sorted(c for c in cuts if c <= len(rows)), len(rows)]
    priced, rejects = [], []
    with tempfile.TemporaryDirectory() as folder:
        for start, stop in zip(bounds, bounds[1:]):
            if start == stop:
                continue
            store = StateStore(folder)
            state = store.load()
            p, r = price(rows[start:stop], BOOK, state=state, backend=backend)
            store.commit(state, run_id=f"run{start}")
            priced += p
            rejects += r
    assert (priced, rejects) == whole
