"""Pricing semantics (docs/pricing.md) on hand-made rows, on every backend."""
from __future__ import annotations

import datetime as dt
import textwrap

import pytest

from conftest import (CIB_CARD, CMB_CARD, CMB_CARD2, CMB_CARD3, QUANZHOU, STRANGER, XIAMEN, D,
                      merchants, price, price_one, registry, reject_of, row)
from txcore.rules.refdata import Card, Merchant
from txcore.rules.book import load_book
from txcore.state.memory import State

NON_MEMBER = CMB_CARD3  # a CMB card that never was a member

# ------------------------------------------------------------------ the schedule

SCHEDULE = [
    # (kind, channel, acq_bank, city, amount, fee_item, fee_rule, fee)
    ("withdrawal", "atm", "CMB", QUANZHOU, 100000, None, "atm-own-local", 0),
    ("withdrawal", "atm", "ICBC", QUANZHOU, 100000, None, "atm-xbank-local", 200),
    ("withdrawal", "atm", "CMB", XIAMEN, 100000, None, "atm-own-remote", 500),
    ("withdrawal", "atm", "CMB", XIAMEN, 10000, None, "atm-own-remote", 200),     # min
    ("withdrawal", "atm", "CMB", XIAMEN, 2000000, None, "atm-own-remote", 5000),  # max
    ("withdrawal", "atm", "CIB", XIAMEN, 100000, None, "atm-xbank-remote", 700),
    ("withdrawal", "atm", "CIB", XIAMEN, 1000000, None, "atm-xbank-remote", 5200),  # max
    ("withdrawal", "counter", "ICBC", XIAMEN, 100000, None, "counter-withdrawal", 0),
    ("transfer", "online", "CMB", XIAMEN, 900000, None, "online-own", 0),
    ("transfer", "online", "CIB", XIAMEN, 200000, None, "online-xbank", 200),
    ("transfer", "online", "CIB", XIAMEN, 200001, None, "online-xbank", 500),
    ("transfer", "online", "CIB", XIAMEN, 1000000, None, "online-xbank", 1000),
    ("transfer", "online", "CIB", XIAMEN, 5000000, None, "online-xbank", 1500),
    ("transfer", "online", "CIB", XIAMEN, 6000000, None, "online-xbank", 1800),
    ("transfer", "online", "CIB", XIAMEN, 90000000, None, "online-xbank", 5000),
    ("transfer", "mobile", "CIB", XIAMEN, 900000, None, "mobile", 0),
    ("transfer", "self_service", "CMB", XIAMEN, 900000, None, "selfservice-own", 0),
    ("transfer", "self_service", "CIB", XIAMEN, 100000, None, "selfservice-xbank", 500),
    ("transfer", "self_service", "CIB", XIAMEN, 100, None, "selfservice-xbank", 200),
    ("transfer", "self_service", "CIB", XIAMEN, 9000000, None, "selfservice-xbank", 5000),
    ("transfer", "counter", "CMB", XIAMEN, 900000, None, "counter-own", 0),
    ("transfer", "counter", "ABC", XIAMEN, 500001, None, "counter-xbank", 1000),
    ("service", None, None, None, 0, "issuance", "issuance", 500),
    ("service", None, None, None, 0, "loss_report", "loss-report", 1000),
    ("service", None, None, None, 0, "annual", "annual", 1000),
    ("service", None, None, None, 29999, "small_account", "small-account", 100),
    ("service", None, None, None, 30000, "small_account", None, 0),  # balance high enough
]


@pytest.mark.parametrize("kind, channel, bank, city, amount, item, rule, fee", SCHEDULE)
def test_standard_schedule_for_a_non_member(book, backend, kind, channel, bank, city, amount,
                                            item, rule, fee):
    p = price_one(book, backend=backend, card_no=NON_MEMBER, kind=kind, channel=channel,
                  acq_bank=bank, city=city, amount=amount, fee_item=item)
    assert (p["fee_rule"], p["fee_standard"], p["fee_charged"]) == (rule, fee, fee)
    assert (p["member"], p["fee_waived"], p["waiver_rule"], p["free_slot"]) == (False, 0, None, 0)
    assert p["ruleset"] == "licheng-2013"


def test_cross_bank_and_same_city_are_derived_from_the_registry(book, backend):
    p = price_one(book, backend=backend, card_no=CIB_CARD, acq_bank="CIB", city=XIAMEN)
    assert (p["cross_bank"], p["same_city"]) == (False, False)
    p = price_one(book, backend=backend, card_no=CIB_CARD, acq_bank="CMB", city=QUANZHOU)
    assert (p["cross_bank"], p["same_city"], p["fee_rule"]) == (True, True, "atm-xbank-local")
    p = price_one(book, backend=backend, kind="purchase", channel="pos", acq_bank="ICBC",
                  city=XIAMEN, merchant_id="NP1")
    assert (p["cross_bank"], p["same_city"]) == (False, False)  # purchases have no counterparty


# --------------------------------------------------------------------- waivers

XBANK_LOCAL_ATM = dict(kind="withdrawal", channel="atm", acq_bank="ICBC", city=QUANZHOU,
                       amount=50000)


def withdrawals(times, card=CMB_CARD, prefix="W"):
    return [row(txn_id=f"{prefix}{i}", card_no=card, ts=t, **XBANK_LOCAL_ATM)
            for i, t in enumerate(times)]


def test_first_three_cross_bank_local_atm_withdrawals_a_month_are_free(book, backend):
    times = [f"2013-10-{d:02d}T10:00:00+08:00" for d in (1, 2, 3, 4, 5)]
    priced, rejects = price(withdrawals(times), book, backend=backend)
    assert not rejects
    assert [p["free_slot"] for p in priced] == [1, 2, 3, 0, 0]
    assert [p["fee_waived"] for p in priced] == [200, 200, 200, 0, 0]
    assert [p["fee_charged"] for p in priced] == [0, 0, 0, 200, 200]
    # the deciding waiver is recorded even when it waives nothing
    assert {p["waiver_rule"] for p in priced} == {"member-atm-3-free"}


def test_slots_are_per_card_and_per_month(book, backend):
    rows = (withdrawals([f"2013-10-0{d}T10:00:00+08:00" for d in (1, 2, 3, 4)])
            + withdrawals(["2013-10-05T10:00:00+08:00"], card=CMB_CARD2, prefix="X")
            + withdrawals(["2013-11-01T10:00:00+08:00"], prefix="Y"))
    priced, _ = price(rows, book, backend=backend)
    assert [p["free_slot"] for p in priced] == [1, 2, 3, 0, 1, 1]


def test_month_boundary_is_local_time(book, backend):
    """2013-10-31T16:30:00Z is 1 November in Quanzhou: a fresh month of free slots."""
    times = ["2013-10-02T10:00:00+08:00", "2013-10-03T10:00:00+08:00",
             "2013-10-04T10:00:00+08:00", "2013-10-31T15:59:59Z", "2013-10-31T16:30:00Z"]
    priced, _ = price(withdrawals(times), book, backend=backend)
    assert [p["free_slot"] for p in priced] == [1, 2, 3, 0, 1]
    assert priced[4]["ts"] == dt.datetime(2013, 10, 31, 16, 30, tzinfo=dt.timezone.utc)


def test_non_members_get_no_waiver(book, backend):
    p = price_one(book, backend=backend, card_no=NON_MEMBER, **XBANK_LOCAL_ATM)
    assert (p["member"], p["waiver_rule"], p["fee_charged"]) == (False, None, 200)


@pytest.mark.parametrize("kw, waiver, waived", [
    (dict(kind="transfer", channel="online", acq_bank="ICBC", city=QUANZHOU, amount=300000),
     "member-online-xbank-local", 500),
    (dict(kind="transfer", channel="online", acq_bank="ICBC", city=XIAMEN, amount=300000),
     None, 0),  # remote online transfers are not waived
    (dict(kind="transfer", channel="self_service", acq_bank="ICBC", city=XIAMEN, amount=100000),
     "member-self-service", 500),
    (dict(kind="transfer", channel="self_service", acq_bank="CMB", city=QUANZHOU, amount=100000),
     "member-self-service", 0),  # own bank: fee 0, still the deciding waiver
    (dict(kind="withdrawal", channel="atm", acq_bank="ICBC", city=XIAMEN, amount=100000),
     None, 0),  # remote cross-bank ATM: no waiver
    (dict(kind="service", fee_item="issuance", amount=0), "member-service-fees", 500),
    (dict(kind="service", fee_item="loss_report", amount=0), "member-service-fees", 1000),
    (dict(kind="service", fee_item="annual", amount=0), "member-service-fees", 1000),
    (dict(kind="service", fee_item="small_account", amount=100), "member-service-fees", 100),
])
def test_member_waivers(book, backend, kw, waiver, waived):
    kw = {"channel": None, "acq_bank": None, "city": None, **kw}
    p = price_one(book, backend=backend, **kw)
    assert p["member"] is True
    assert (p["waiver_rule"], p["fee_waived"]) == (waiver, waived)
    assert p["fee_charged"] == p["fee_standard"] - p["fee_waived"]


# ---------------------------------------------------------------- membership

@pytest.mark.parametrize("member_from, member_to, member", [
    (D(2013, 10, 15), None, True),              # from its first day
    (D(2013, 10, 16), None, False),             # not the day before
    (D(2013, 9, 1), D(2013, 10, 15), True),     # member_to is inclusive
    (D(2013, 9, 1), D(2013, 10, 14), False),
    (D(2013, 10, 20), D(2013, 10, 1), False),   # member_to before member_from: never
    (None, None, False),
])
def test_member_from_and_to_edges(book, backend, member_from, member_to, member):
    cards = registry(**{CMB_CARD: Card("M", "u", "CMB", QUANZHOU, member_from, member_to)})
    # 2013-10-14T16:00:00Z is the first instant of 15 October in Quanzhou
    p = price_one(book, cards, backend=backend, ts="2013-10-14T16:00:00Z", **XBANK_LOCAL_ATM)
    assert p["member"] is member
    assert p["fee_charged"] == (0 if member else 200)


# ------------------------------------------------------------------ discounts

SHOP = Merchant("QZ1", "泉州超市", 500, 0, 0, D(2013, 10, 1), D(2013, 10, 31))
CAPPED = Merchant("QZ2", "药房", 1000, 300, 0, D(2013, 9, 1), None)
MIN_SPEND = Merchant("QZ3", "书店", 1000, 0, 5000, D(2013, 9, 1), None)


@pytest.fixture(scope="module")
def book_with_merchants():
    from conftest import RULES
    return load_book(RULES, merchants(SHOP, CAPPED, MIN_SPEND))


def purchase(**kw):
    base = dict(kind="purchase", channel="pos", acq_bank=None, city=None, amount=10001,
                merchant_id="QZ1", mcc="5411", ts="2013-10-15T10:00:00+08:00")
    base.update(kw)
    return base


@pytest.mark.parametrize("kw, discount, rule", [
    (purchase(), 500, "merchant:QZ1"),                                   # 5 % of 100.01, half up
    (purchase(amount=10010), 501, "merchant:QZ1"),
    (purchase(ts="2013-10-01T00:00:00+08:00"), 500, "merchant:QZ1"),     # valid_from inclusive
    (purchase(ts="2013-10-31T23:59:59+08:00"), 500, "merchant:QZ1"),     # valid_to inclusive
    (purchase(ts="2013-11-01T00:00:00+08:00"), 0, None),                 # expired
    (purchase(merchant_id="QZ2", amount=2000), 200, "merchant:QZ2"),
    (purchase(merchant_id="QZ2", amount=100000), 300, "merchant:QZ2"),   # capped
    (purchase(merchant_id="QZ3", amount=4999), 0, "merchant:QZ3"),       # below min_spend
    (purchase(merchant_id="QZ3", amount=5000), 500, "merchant:QZ3"),
    (purchase(merchant_id="NP9"), 0, None),                              # not a partner
])
def test_partner_merchant_discounts(book_with_merchants, backend, kw, discount, rule):
    p = price_one(book_with_merchants, backend=backend, **kw)
    assert (p["discount"], p["discount_rule"]) == (discount, rule)
    assert (p["fee_standard"], p["fee_rule"]) == (0, None)


def test_non_members_get_no_discount(book_with_merchants, backend):
    p = price_one(book_with_merchants, backend=backend, card_no=NON_MEMBER, **purchase())
    assert (p["discount"], p["discount_rule"]) == (0, None)


def write_rules(folder, *files):
    folder.mkdir(parents=True, exist_ok=True)
    for i, text in enumerate(files):
        (folder / f"v{i}.toml").write_text(textwrap.dedent(text))
    return folder


def test_category_discounts_apply_only_without_a_valid_partner(tmp_path, backend):
    book = load_book(write_rules(tmp_path / "r", """
        id = "with-transit"
        effective_from = 2013-09-01
        [[discount]]
        id = "transit"
        mcc = ["4111", "4131"]
        discount_bp = 500
        cap = 100
        """), merchants(SHOP))
    p = price_one(book, backend=backend, **purchase(merchant_id="NP1", mcc="4111", amount=1000))
    assert (p["discount"], p["discount_rule"]) == (50, "transit")
    p = price_one(book, backend=backend, **purchase(merchant_id="NP1", mcc="4111", amount=90000))
    assert p["discount"] == 100  # capped
    p = price_one(book, backend=backend, **purchase(merchant_id="QZ1", mcc="4111", amount=1000))
    assert p["discount_rule"] == "merchant:QZ1"  # the partner decides
    p = price_one(book, backend=backend, **purchase(merchant_id="NP1", mcc="5411", amount=1000))
    assert (p["discount"], p["discount_rule"]) == (0, None)


# ------------------------------------------------------------------- quotas and versions

def test_quota_waiver_uses_a_slot_even_on_a_zero_fee(tmp_path, backend):
    book = load_book(write_rules(tmp_path / "r", """
        id = "zero-fee-quota"
        effective_from = 2013-09-01
        [[fee]]
        id = "free-atm"
        kind = "withdrawal"
        fixed = 0
        [[waiver]]
        id = "two-free"
        kind = "withdrawal"
        free_per_month = 2
        """))
    priced, _ = price(withdrawals([f"2013-10-0{d}T10:00:00+08:00" for d in (1, 2, 3)]), book,
                      backend=backend)
    assert [p["free_slot"] for p in priced] == [1, 2, 0]
    assert [p["fee_charged"] for p in priced] == [0, 0, 0]


def test_a_later_version_keeping_a_waiver_id_continues_the_months_count(tmp_path, backend):
    base = """
        id = "{id}"
        effective_from = {eff}
        [[fee]]
        id = "atm"
        kind = "withdrawal"
        fixed = {fee}
        [[waiver]]
        id = "member-atm-3-free"
        kind = "withdrawal"
        free_per_month = 3
        """
    book = load_book(write_rules(tmp_path / "r", base.format(id="v1", eff="2013-09-01", fee=200),
                                 base.format(id="v2", eff="2013-10-20", fee=300)))
    times = ["2013-10-18T10:00:00+08:00", "2013-10-19T10:00:00+08:00",
             "2013-10-20T10:00:00+08:00", "2013-10-21T10:00:00+08:00"]
    priced, _ = price(withdrawals(times), book, backend=backend)
    assert [p["ruleset"] for p in priced] == ["v1", "v1", "v2", "v2"]
    assert [p["free_slot"] for p in priced] == [1, 2, 3, 0]
    assert [p["fee_charged"] for p in priced] == [0, 0, 0, 300]


def test_version_in_force_follows_the_local_date(tmp_path, backend):
    book = load_book(write_rules(tmp_path / "r", """
        id = "v1"
        effective_from = 2013-09-01
        """, """
        id = "v2"
        effective_from = 2014-01-01
        """))
    priced, rejects = price([row(txn_id="a", ts="2013-12-31T15:59:59Z"),
                             row(txn_id="b", ts="2013-12-31T16:00:00Z"),
                             row(txn_id="c", ts="2013-08-31T15:59:59Z"),
                             row(txn_id="d", ts="2014-01-01 00:00:00")], book, backend=backend)
    assert [p["ruleset"] for p in priced] == ["v1", "v2", "v2"]
    assert [(r["txn_id"], r["reject_reason"]) for r in rejects] == [("c", "no_ruleset")]


def test_naive_timestamps_are_local_time_of_the_rule_set(book, backend):
    p = price_one(book, backend=backend, ts="2013-10-15 10:00:00.123456789")
    assert p["ts"] == dt.datetime(2013, 10, 15, 2, 0, 0, 123456, tzinfo=dt.timezone.utc)
    p = price_one(book, backend=backend, ts=dt.datetime(2013, 10, 15, 10, 0))  # Arrow, no tz
    assert p["ts"] == dt.datetime(2013, 10, 15, 2, 0, tzinfo=dt.timezone.utc)


# ---------------------------------------------------------------- disbursements

def test_disbursements_are_never_charged(book, backend):
    p = price_one(book, backend=backend, kind="disbursement", channel=None, acq_bank=None,
                  city=None, amount=300000, benefit="medical_aid")
    assert (p["fee_standard"], p["fee_waived"], p["fee_charged"], p["discount"]) == (0, 0, 0, 0)
    assert (p["fee_rule"], p["waiver_rule"], p["discount_rule"]) == (None, None, None)


# --------------------------------------------------------------------- reversals

def test_reversal_negates_the_original_and_gives_its_slot_back(book, backend):
    rows = withdrawals([f"2013-10-0{d}T10:00:00+08:00" for d in (1, 2, 3)])
    rows.append(row(txn_id="R", kind="reversal", orig_txn_id="W2", channel=None, amount=None,
                    acq_bank=None, city=None, ts="2013-11-02T10:00:00+08:00"))
    rows += withdrawals(["2013-10-31T12:00:00+08:00", "2013-10-31T13:00:00+08:00"], prefix="L")
    priced, rejects = price(rows, book, backend=backend)
    assert not rejects
    rev = priced[3]
    assert (rev["fee_standard"], rev["fee_waived"], rev["fee_charged"]) == (-200, -200, 0)
    assert (rev["fee_rule"], rev["waiver_rule"], rev["free_slot"]) == (
        "atm-xbank-local", "member-atm-3-free", 0)
    assert (rev["cross_bank"], rev["same_city"], rev["ruleset"]) == (False, False, "licheng-2013")
    # October's third slot is free again for a late October row
    assert [p["free_slot"] for p in priced[4:]] == [3, 0]


def test_reversal_rejects_and_zero_effect(book, backend):
    rows = [row(txn_id="A", **XBANK_LOCAL_ATM),
            row(txn_id="R1", kind="reversal", orig_txn_id="A", card_no=CMB_CARD2),
            row(txn_id="R2", kind="reversal", orig_txn_id="A"),
            row(txn_id="R3", kind="reversal", orig_txn_id="A"),
            row(txn_id="R4", kind="reversal", orig_txn_id="NOPE"),
            row(txn_id="R5", kind="reversal", orig_txn_id="R2")]
    priced, rejects = price(rows, book, backend=backend)
    assert [(r["txn_id"], r["reject_reason"]) for r in rejects] == [
        ("R1", "reversal_mismatch"), ("R3", "already_reversed")]
    assert [p["txn_id"] for p in priced] == ["A", "R2", "R4", "R5"]
    for zero in priced[2:]:  # unknown original, reversal of a reversal
        assert (zero["fee_standard"], zero["fee_charged"], zero["fee_rule"]) == (0, 0, None)


def test_reversal_index_forgets_after_retention(book, backend):
    state = State(retention_days=45)
    rows = [row(txn_id="A", ts="2013-10-01T10:00:00+08:00", **XBANK_LOCAL_ATM),
            row(txn_id="B", ts="2013-11-15T10:00:00+08:00", **XBANK_LOCAL_ATM),  # 45 days on
            row(txn_id="RA", kind="reversal", orig_txn_id="A", ts="2013-11-15T11:00:00+08:00"),
            row(txn_id="C", ts="2013-11-16T10:00:00+08:00", **XBANK_LOCAL_ATM),  # 46 days on
            row(txn_id="A", ts="2013-11-16T11:00:00+08:00", **XBANK_LOCAL_ATM)]  # id free again
    priced, rejects = price(rows, book, state=state, backend=backend)
    assert not rejects
    assert priced[2]["fee_standard"] == -200  # still remembered at 45 days


# --------------------------------------------------------------------- rejects

REJECTS = [
    (dict(txn_id=None), "missing_field", "txn_id=null"),
    (dict(txn_id="x" * 65), "bad_txn_id", "txn_id="),
    (dict(card_no=None), "missing_field", "card_no=null"),
    (dict(card_no="6214851000079198"), "bad_card_no", "card_no='621485******9198'"),
    (dict(card_no="62148510000"), "bad_card_no", "card_no="),
    (dict(ts=None), "missing_field", "ts=null"),
    (dict(ts="2013-10-15"), "bad_ts", "ts='2013-10-15'"),
    (dict(ts="2013-10-15T25:00:00Z"), "bad_ts", "ts="),
    (dict(ts="yesterday"), "bad_ts", "ts="),
    (dict(kind=None), "missing_field", "kind=null"),
    (dict(kind="refund"), "bad_kind", "kind='refund'"),
    (dict(channel=None), "missing_field", "channel=null"),
    (dict(channel="pos"), "bad_channel", "channel='pos'"),
    (dict(amount=None), "missing_field", "amount=null"),
    (dict(amount=0), "bad_amount", "amount='0'"),
    (dict(amount=-5), "bad_amount", "amount='-5'"),
    (dict(amount=10**12 + 1), "bad_amount", "amount="),
    (dict(amount="12.50"), "bad_amount", "amount='12.50'"),
    (dict(currency="USD"), "unsupported_currency", "currency='USD'"),
    (dict(currency="cny"), "unsupported_currency", "currency='cny'"),
    (dict(acq_bank=None), "missing_field", "acq_bank=null"),
    (dict(acq_bank="cmb"), "bad_acq_bank", "acq_bank='cmb'"),
    (dict(city=None), "missing_field", "city=null"),
    (dict(city="35050"), "bad_city", "city='35050'"),
    (dict(kind="purchase", channel="pos"), "missing_field", "merchant_id=null"),
    (dict(mcc="54A1"), "bad_mcc", "mcc='54A1'"),
    (dict(kind="service", channel=None, fee_item=None, amount=0), "missing_field",
     "fee_item=null"),
    (dict(kind="service", channel=None, fee_item="membership", amount=0), "bad_fee_item",
     "fee_item='membership'"),
    (dict(kind="disbursement", benefit="bonus"), "bad_benefit", "benefit='bonus'"),
    (dict(kind="reversal", orig_txn_id=None), "missing_field", "orig_txn_id=null"),
    (dict(ts="2013-08-31T23:59:59+08:00"), "no_ruleset", "ts="),
    (dict(card_no=STRANGER), "unknown_card", "card_no='621485"),
    (dict(kind="disbursement", card_no=NON_MEMBER), "disbursement_to_non_member", "card_no="),
]


@pytest.mark.parametrize("kw, reason, detail", REJECTS, ids=[r[1] + "-" + str(i)
                                                             for i, r in enumerate(REJECTS)])
def test_every_reject_reason(book, backend, kw, reason, detail):
    r = reject_of(book, backend=backend, **kw)
    assert r["reject_reason"] == reason
    assert r["reject_detail"].startswith(detail)
    assert CMB_CARD not in r["reject_detail"] and STRANGER not in r["reject_detail"]


def test_first_failing_check_wins(book, backend):
    r = reject_of(book, backend=backend, card_no="1", ts="bad", kind="refund", currency="USD")
    assert r["reject_reason"] == "bad_card_no"
    r = reject_of(book, backend=backend, ts="2013-08-01T00:00:00Z", card_no=STRANGER)
    assert r["reject_reason"] == "no_ruleset"


def test_columns_a_kind_does_not_need_are_carried_not_checked(book, backend):
    p = price_one(book, backend=backend, kind="purchase", channel="pos", merchant_id="M",
                  acq_bank="not a bank", city="?", fee_item="nonsense", benefit="whatever")
    assert (p["acq_bank"], p["city"], p["fee_item"]) == ("not a bank", "?", "nonsense")


def test_duplicates_and_rejected_rows_take_no_id(book, backend):
    rows = [row(txn_id="A", amount=-1),          # rejected: takes nothing
            row(txn_id="A"),                     # priced
            row(txn_id="A", card_no=CIB_CARD)]   # duplicate
    priced, rejects = price(rows, book, backend=backend)
    assert [p["txn_id"] for p in priced] == ["A"]
    assert [r["reject_reason"] for r in rejects] == ["bad_amount", "duplicate_txn_id"]


def test_counters_outlive_the_retention_window(book, backend):
    """A late row for an old month must not find that month's free slots fresh again."""
    times = [f"2013-10-0{d}T10:00:00+08:00" for d in (1, 2, 3)] + [
        "2014-01-20T10:00:00+08:00", "2013-10-04T10:00:00+08:00"]
    priced, _ = price(withdrawals(times), book, state=State(retention_days=45), backend=backend)
    assert [p["free_slot"] for p in priced] == [1, 2, 3, 1, 0]
