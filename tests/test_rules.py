"""Rule sets (docs/rules.md): the default programme, fee formulas, validation, versions, CLI."""
from __future__ import annotations

import datetime as dt
import re
import textwrap
from pathlib import Path

import pytest

from conftest import RULES
from txcore import money
from txcore.cli import main
from txcore.errors import RulesError
from txcore.rules.refdata import Merchants, load_merchants
from txcore.rules.book import FeeRule, RuleBook, describe, load_book

UTC = dt.timezone.utc
SHANGHAI_TZ = "Asia/Shanghai"

# A valid version header; every invalid case below adds to (or replaces) it.
HEAD = 'id = "v1"\neffective_from = 2013-09-01\ntimezone = "Asia/Shanghai"\n'

MERCHANTS_CSV = ("merchant_id,name,discount_bp,cap,min_spend,valid_from,valid_to\n"
                 "QZ1,shop one,500,1000,0,2013-09-01,\n"
                 "QZ2,shop two,300,0,10000,2013-09-01,2014-12-31\n")


def write_rules(folder: Path, **files: str) -> Path:
    """Write ``name=text`` TOML files (``name`` without ``.toml``) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.toml").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(RulesError) as info:
        load_book(folder)
    problems = info.value.problems
    assert problems, "a refused rules folder must list its problems"
    return problems


def names(text: str, word: str) -> bool:
    """``word`` appears in ``text`` as a whole word (rule ids, keys, file names)."""
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


def fee_rule(book: RuleBook, rule_id: str) -> FeeRule:
    (version,) = book.versions
    return next(r for r in version.fees if r.id == rule_id)


# =================================================================== the default rules

FEE_IDS = [
    "atm-own-local", "atm-xbank-local", "atm-own-remote", "atm-xbank-remote",
    "counter-withdrawal", "online-own", "online-xbank", "mobile", "selfservice-own",
    "selfservice-xbank", "counter-own", "counter-xbank", "issuance", "loss-report",
    "annual", "small-account",
]
WAIVER_IDS = ["member-atm-3-free", "member-online-xbank-local", "member-self-service",
              "member-service-fees"]


class TestDefaultRules:
    def test_one_version_licheng_2013(self, book):
        assert len(book.versions) == 1
        (v,) = book.versions
        assert v.id == "licheng-2013"
        assert v.effective_from == dt.date(2013, 9, 1)
        assert v.timezone == SHANGHAI_TZ
        assert v.source.name == "licheng-2013.toml"

    def test_fee_rule_ids_in_spec_order(self, book):
        assert [r.id for r in book.versions[0].fees] == FEE_IDS

    def test_waiver_ids_in_spec_order(self, book):
        assert [r.id for r in book.versions[0].waivers] == WAIVER_IDS

    def test_no_discount_rules_and_no_merchants_table(self, book):
        v = book.versions[0]
        assert v.discounts == ()
        assert v.merchants is None  # partner merchants come from --merchants

    @pytest.mark.parametrize("rule_id, cross_bank, same_city", [
        ("atm-own-local", False, True),
        ("atm-xbank-local", True, True),
        ("atm-own-remote", False, False),
        ("atm-xbank-remote", True, False),
    ])
    def test_atm_conditions(self, book, rule_id, cross_bank, same_city):
        when = fee_rule(book, rule_id).when
        assert when.kind == {"withdrawal"}
        assert when.channel == {"atm"}
        assert when.cross_bank is cross_bank
        assert when.same_city is same_city

    def test_small_account_condition(self, book):
        when = fee_rule(book, "small-account").when
        assert when.kind == {"service"} and when.fee_item == {"small_account"}
        assert when.amount_below == 30000
        assert fee_rule(book, "small-account").fee(0) == 100

    @pytest.mark.parametrize("rule_id, fee", [
        ("issuance", 500), ("loss-report", 1000), ("annual", 1000),
        ("atm-own-local", 0), ("atm-xbank-local", 200), ("counter-withdrawal", 0),
        ("online-own", 0), ("mobile", 0), ("selfservice-own", 0), ("counter-own", 0),
    ])
    def test_fixed_fees(self, book, rule_id, fee):
        assert fee_rule(book, rule_id).fee(123456) == fee

    def test_waiver_quotas(self, book):
        quotas = {w.id: w.free_per_month for w in book.versions[0].waivers}
        assert quotas == {"member-atm-3-free": 3, "member-online-xbank-local": None,
                          "member-self-service": None, "member-service-fees": None}

    def test_describe_lists_version_and_every_rule(self, book):
        text = describe(book)
        assert "licheng-2013" in text and "2013-09-01" in text and SHANGHAI_TZ in text
        for rule_id in FEE_IDS + WAIVER_IDS:
            assert names(text, rule_id), rule_id


# ======================================================================== fee formulas

class TestFees:
    @pytest.mark.parametrize("rule_id", ["online-xbank", "counter-xbank"])
    @pytest.mark.parametrize("amount, fee", [
        (1, 200),
        (200000, 200),       # upto is inclusive
        (200001, 500),
        (500000, 500),
        (500001, 1000),
        (1000000, 1000),
        (1000001, 1500),
        (5000000, 1500),
        (5000001, 1500),     # open band: pct 3 bp = 1500.0003 -> 1500
        (10000000, 3000),
        (16666667, 5000),    # 5000.0001 -> 5000, the cap
        (20000000, 5000),    # 6000 capped
        (10**12, 5000),
    ])
    def test_xbank_transfer_tiers(self, book, rule_id, amount, fee):
        assert fee_rule(book, rule_id).fee(amount) == fee

    @pytest.mark.parametrize("amount, fee", [
        (1, 200),            # min
        (39999, 200),        # 199.995 -> 200
        (40000, 200),        # exactly the min
        (40100, 201),        # 200.5 rounds half up
        (100000, 500),       # 0.5 % in the middle
        (999999, 5000),      # 4999.995 -> 5000
        (1000000, 5000),     # exactly the max
        (1000100, 5000),     # 5000.5 -> 5001, clamped
        (2000000, 5000),
    ])
    def test_atm_own_remote_clamp(self, book, amount, fee):
        assert fee_rule(book, "atm-own-remote").fee(amount) == fee

    @pytest.mark.parametrize("amount, fee", [
        (1, 200),            # 200 + 0
        (99, 200),           # 0.495 -> 0
        (100, 201),          # 0.5 -> 1
        (100000, 700),
        (1000000, 5200),     # exactly the max
        (1000100, 5200),     # 5201 clamped
        (5000000, 5200),
    ])
    def test_atm_xbank_remote_clamp(self, book, amount, fee):
        assert fee_rule(book, "atm-xbank-remote").fee(amount) == fee

    def test_selfservice_xbank_same_as_own_remote(self, book):
        for amount in (1, 40000, 100000, 1000000, 2000000):
            assert (fee_rule(book, "selfservice-xbank").fee(amount)
                    == fee_rule(book, "atm-own-remote").fee(amount))

    @pytest.mark.parametrize("amount, bp, expected", [
        (100, 50, 1),        # 0.5 fen rounds up
        (99, 50, 0),         # 0.495 fen rounds down
        (150, 100, 2),       # 1.5 -> 2
        (149, 100, 1),
        (0, 50, 0),
        (12345, 0, 0),
        (12345, 10000, 12345),
        (10**12, 10000, 10**12),
        (10**12, 3, 300000000),
    ])
    def test_pct_rounds_half_up(self, amount, bp, expected):
        result = money.pct(amount, bp)
        assert result == expected
        assert type(result) is int

    @pytest.mark.parametrize("fixed, pct_bp, lo, hi, amount, expected", [
        (0, 50, 300, 0, 100, 300),       # max 0 = no upper bound, min still applies
        (0, 50, 0, 0, 10**9, 5000000),   # no bound at all
        (100, 0, 0, 50, 1, 50),          # fixed above max is clamped
        (0, 0, 0, 0, 1, 0),
    ])
    def test_formula_clamp(self, fixed, pct_bp, lo, hi, amount, expected):
        assert money.formula(amount, fixed, pct_bp, lo, hi) == expected

    def test_rule_without_formula_keys_is_zero(self, tmp_path):
        book = load_book(write_rules(tmp_path, v1=HEAD + '[[fee]]\nid = "free"\n'))
        assert fee_rule(book, "free").fee(10**9) == 0


# ========================================================================== validation

def rule_set(body: str) -> str:
    return HEAD + textwrap.dedent(body)


# (case id, toml text, rule id named in the message or None, key named, message fragment)
REFUSED = [
    ("unknown-top-level-key", HEAD + "colour = 'red'\n", None, "colour", "unknown key"),
    ("unknown-rule-key", rule_set("""
        [[fee]]
        id = "bad-rule"
        fixd = 200
        """), "bad-rule", "fixd", "unknown key"),
    ("unknown-waiver-key", rule_set("""
        [[waiver]]
        id = "bad-rule"
        fixed = 200
        """), "bad-rule", "fixed", "unknown key"),
    ("wrong-type-fixed-string", rule_set("""
        [[fee]]
        id = "bad-rule"
        fixed = "2"
        """), "bad-rule", "fixed", "integer"),
    ("wrong-type-fixed-float", rule_set("""
        [[fee]]
        id = "bad-rule"
        fixed = 2.0
        """), "bad-rule", "fixed", "integer"),
    ("wrong-type-amount-below-bool", rule_set("""
        [[fee]]
        id = "bad-rule"
        amount_below = true
        """), "bad-rule", "amount_below", "integer"),
    ("duplicate-fee-id", rule_set("""
        [[fee]]
        id = "bad-rule"
        fixed = 1
        [[fee]]
        id = "bad-rule"
        fixed = 2
        """), "bad-rule", "id", "duplicate"),
    ("duplicate-id-across-fee-and-waiver", rule_set("""
        [[fee]]
        id = "bad-rule"
        fixed = 1
        [[waiver]]
        id = "bad-rule"
        """), "bad-rule", "id", "duplicate"),
    ("duplicate-id-across-waiver-and-discount", rule_set("""
        [[waiver]]
        id = "bad-rule"
        [[discount]]
        id = "bad-rule"
        discount_bp = 100
        """), "bad-rule", "id", "duplicate"),
    ("negative-fixed", rule_set("""
        [[fee]]
        id = "bad-rule"
        fixed = -1
        """), "bad-rule", "fixed", "negative"),
    ("negative-min", rule_set("""
        [[fee]]
        id = "bad-rule"
        min = -1
        """), "bad-rule", "min", "negative"),
    ("negative-max", rule_set("""
        [[fee]]
        id = "bad-rule"
        max = -1
        """), "bad-rule", "max", "negative"),
    ("negative-cap", rule_set("""
        [[discount]]
        id = "bad-rule"
        discount_bp = 100
        cap = -1
        """), "bad-rule", "cap", "negative"),
    ("negative-min-spend", rule_set("""
        [[discount]]
        id = "bad-rule"
        discount_bp = 100
        min_spend = -5
        """), "bad-rule", "min_spend", "negative"),
    ("negative-money-in-band", rule_set("""
        [[fee]]
        id = "bad-rule"
        tiers = [{upto = 100, fixed = -1}, {fixed = 2}]
        """), "bad-rule", "fixed", "negative"),
    ("pct-bp-above-10000", rule_set("""
        [[fee]]
        id = "bad-rule"
        pct_bp = 10001
        """), "bad-rule", "pct_bp", "10001"),
    ("pct-bp-negative", rule_set("""
        [[fee]]
        id = "bad-rule"
        pct_bp = -1
        """), "bad-rule", "pct_bp", "-1"),
    ("discount-bp-negative", rule_set("""
        [[discount]]
        id = "bad-rule"
        discount_bp = -1
        """), "bad-rule", "discount_bp", "-1"),
    ("discount-bp-above-10000", rule_set("""
        [[discount]]
        id = "bad-rule"
        discount_bp = 10001
        """), "bad-rule", "discount_bp", "10001"),
    ("discount-bp-missing", rule_set("""
        [[discount]]
        id = "bad-rule"
        cap = 100
        """), "bad-rule", "discount_bp", "required"),
    ("tiers-equal-upto", rule_set("""
        [[fee]]
        id = "bad-rule"
        tiers = [{upto = 100, fixed = 1}, {upto = 100, fixed = 2}, {fixed = 3}]
        """), "bad-rule", "upto", "increasing"),
    ("tiers-decreasing-upto", rule_set("""
        [[fee]]
        id = "bad-rule"
        tiers = [{upto = 500, fixed = 1}, {upto = 200, fixed = 2}, {fixed = 3}]
        """), "bad-rule", "upto", "increasing"),
    ("last-band-not-open", rule_set("""
        [[fee]]
        id = "bad-rule"
        tiers = [{upto = 100, fixed = 1}, {upto = 200, fixed = 2}]
        """), "bad-rule", "upto", "open"),
    ("band-without-upto", rule_set("""
        [[fee]]
        id = "bad-rule"
        tiers = [{fixed = 1}, {fixed = 2}]
        """), "bad-rule", "upto", "required"),
    ("unknown-band-key", rule_set("""
        [[fee]]
        id = "bad-rule"
        tiers = [{upto = 100, fixed = 1, cap = 5}, {fixed = 2}]
        """), "bad-rule", "cap", "unknown key"),
    ("tiers-and-formula", rule_set("""
        [[fee]]
        id = "bad-rule"
        fixed = 100
        tiers = [{upto = 100, fixed = 1}, {fixed = 2}]
        """), "bad-rule", "tiers", "not both"),
    ("tiers-empty", rule_set("""
        [[fee]]
        id = "bad-rule"
        tiers = []
        """), "bad-rule", "tiers", "non-empty"),
    ("min-above-max", rule_set("""
        [[fee]]
        id = "bad-rule"
        min = 300
        max = 200
        """), "bad-rule", "min", "greater"),
    ("min-above-max-in-band", rule_set("""
        [[fee]]
        id = "bad-rule"
        tiers = [{upto = 100, fixed = 1}, {pct_bp = 3, min = 300, max = 200}]
        """), "bad-rule", "min", "greater"),
    ("unknown-kind", rule_set("""
        [[fee]]
        id = "bad-rule"
        kind = "withdrawl"
        """), "bad-rule", "kind", "withdrawl"),
    ("unknown-kind-in-list", rule_set("""
        [[fee]]
        id = "bad-rule"
        kind = ["withdrawal", "refund"]
        """), "bad-rule", "kind", "refund"),
    ("unknown-channel", rule_set("""
        [[fee]]
        id = "bad-rule"
        channel = ["atm", "bus"]
        """), "bad-rule", "channel", "bus"),
    ("unknown-fee-item", rule_set("""
        [[waiver]]
        id = "bad-rule"
        fee_item = ["membership"]
        """), "bad-rule", "fee_item", "membership"),
    ("issuer-lowercase", rule_set("""
        [[fee]]
        id = "bad-rule"
        issuer = ["cmb"]
        """), "bad-rule", "issuer", "cmb"),
    ("bad-mcc", rule_set("""
        [[discount]]
        id = "bad-rule"
        mcc = ["41a1"]
        discount_bp = 500
        """), "bad-rule", "mcc", "41a1"),
    ("mcc-as-string", rule_set("""
        [[discount]]
        id = "bad-rule"
        mcc = "4111"
        discount_bp = 500
        """), "bad-rule", "mcc", "list"),
    ("channel-as-string", rule_set("""
        [[fee]]
        id = "bad-rule"
        channel = "atm"
        """), "bad-rule", "channel", "list"),
    ("empty-channel-list", rule_set("""
        [[fee]]
        id = "bad-rule"
        channel = []
        """), "bad-rule", "channel", "list"),
    ("bool-condition-as-string", rule_set("""
        [[fee]]
        id = "bad-rule"
        cross_bank = "true"
        """), "bad-rule", "cross_bank", "true or false"),
    ("bool-condition-as-int", rule_set("""
        [[waiver]]
        id = "bad-rule"
        same_city = 1
        """), "bad-rule", "same_city", "true or false"),
    ("free-per-month-zero", rule_set("""
        [[waiver]]
        id = "bad-rule"
        free_per_month = 0
        """), "bad-rule", "free_per_month", "0"),
    ("free-per-month-string", rule_set("""
        [[waiver]]
        id = "bad-rule"
        free_per_month = "3"
        """), "bad-rule", "free_per_month", "integer"),
    ("bad-timezone", HEAD.replace(SHANGHAI_TZ, "Asia/Quanzhou"), None, "timezone",
     "Asia/Quanzhou"),
    ("empty-timezone", HEAD.replace(SHANGHAI_TZ, ""), None, "timezone", "time zone"),
    ("effective-from-string", HEAD.replace("2013-09-01", '"2013-09-01"'), None,
     "effective_from", "date"),
    ("effective-from-datetime", HEAD.replace("2013-09-01", "2013-09-01T00:00:00"), None,
     "effective_from", "date"),
    ("effective-from-missing", 'id = "v1"\n', None, "effective_from", "date"),
    ("version-id-missing", "effective_from = 2013-09-01\n", None, "id", "string"),
    ("merchants-not-a-string", HEAD + "merchants = 5\n", None, "merchants", "file"),
    ("fee-not-an-array-of-tables", HEAD + "[fee]\nid = 'x'\n", None, "fee", "array"),
    ("rule-without-id", rule_set("""
        [[fee]]
        fixed = 1
        """), None, "id", "string"),
]


class TestRefused:
    @pytest.mark.parametrize("text, rule_id, key, fragment",
                             [pytest.param(*case[1:], id=case[0]) for case in REFUSED])
    def test_problem_names_file_rule_and_key(self, tmp_path, text, rule_id, key, fragment):
        folder = write_rules(tmp_path / "rules", bad_version=text)
        problems = problems_of(folder)
        assert len(problems) == 1, problems
        (message,) = problems
        assert "bad_version.toml" in message
        if rule_id is not None:
            assert names(message, rule_id), message
        assert names(message, key), message
        assert fragment.lower() in message.lower(), message

    def test_error_text_lists_the_problem(self, tmp_path):
        folder = write_rules(tmp_path, v1=HEAD + "colour = 'red'\n")
        with pytest.raises(RulesError) as info:
            load_book(folder)
        assert "v1.toml" in str(info.value) and "colour" in str(info.value)
        assert info.value.exit_code == 2

    def test_toml_syntax_error(self, tmp_path):
        folder = write_rules(tmp_path, broken='id = "v1\neffective_from = 2013-09-01\n')
        (message,) = problems_of(folder)
        assert "broken.toml" in message
        assert "line 1" in message

    def test_not_utf8(self, tmp_path):
        (tmp_path / "latin.toml").write_bytes(HEAD.encode() + b'# caf\xe9\n')
        (message,) = problems_of(tmp_path)
        assert "latin.toml" in message

    def test_empty_folder(self, tmp_path):
        (tmp_path / "README.txt").write_text("no rules here")
        (message,) = problems_of(tmp_path)
        assert str(tmp_path) in message

    def test_missing_folder(self, tmp_path):
        (message,) = problems_of(tmp_path / "nowhere")
        assert "nowhere" in message

    def test_two_versions_with_same_effective_from(self, tmp_path):
        folder = write_rules(tmp_path, a=HEAD, b=HEAD.replace('"v1"', '"v2"'))
        (message,) = problems_of(folder)
        assert "effective_from" in message
        assert "a.toml" in message and "b.toml" in message

    def test_two_versions_with_same_id(self, tmp_path):
        folder = write_rules(tmp_path, a=HEAD, b=HEAD.replace("2013-09-01", "2014-01-01"))
        (message,) = problems_of(folder)
        assert names(message, "id") and "v1" in message

    def test_several_problems_are_all_listed(self, tmp_path):
        folder = write_rules(tmp_path, first=rule_set("""
            [[fee]]
            id = "fee-one"
            fixed = "2"
            max = -1
            [[fee]]
            id = "fee-two"
            channel = "atm"
            tiers = [{upto = 100, fixed = 1}, {upto = 50, fixed = 2}]
            [[waiver]]
            id = "waiver-one"
            free_per_month = 0
            cross_bank = "yes"
            """), second=HEAD.replace("2013-09-01", "2014-01-01").replace('"v1"', '"v2"')
            + textwrap.dedent("""
            [[discount]]
            id = "disc-one"
            mcc = ["41a1"]
            discount_bp = 10001
            [[waiver]]
            id = "disc-one"
            """))
        expected = [
            ("first.toml", "fee-one", "fixed"),
            ("first.toml", "fee-one", "max"),
            ("first.toml", "fee-two", "channel"),
            ("first.toml", "fee-two", "upto"),
            ("first.toml", "waiver-one", "free_per_month"),
            ("first.toml", "waiver-one", "cross_bank"),
            ("second.toml", "disc-one", "mcc"),
            ("second.toml", "disc-one", "discount_bp"),
            ("second.toml", "disc-one", "id"),
        ]
        problems = problems_of(folder)
        assert len(problems) == len(expected), problems
        unmatched = list(problems)
        for file, rule_id, key in expected:
            hit = next((p for p in unmatched
                        if file in p and names(p, rule_id) and names(p, key)), None)
            assert hit is not None, (file, rule_id, key, problems)
            unmatched.remove(hit)
        assert not unmatched

    def test_good_and_bad_files_refuse_the_whole_folder(self, tmp_path):
        folder = write_rules(tmp_path, good=HEAD,
                             bad=HEAD.replace("2013-09-01", "2014-01-01")
                             .replace('"v1"', '"v2"') + "extra = 1\n")
        (message,) = problems_of(folder)
        assert "bad.toml" in message and "extra" in message


class TestAccepted:
    def test_kind_as_list_or_string(self, tmp_path):
        book = load_book(write_rules(tmp_path, v1=rule_set("""
            [[fee]]
            id = "listed"
            kind = ["withdrawal", "transfer"]
            fixed = 1
            [[fee]]
            id = "single"
            kind = "service"
            fixed = 2
            """)))
        fees = {r.id: r for r in book.versions[0].fees}
        assert fees["listed"].when.kind == {"withdrawal", "transfer"}
        assert fees["single"].when.kind == {"service"}

    def test_min_above_max_zero_is_no_upper_bound(self, tmp_path):
        book = load_book(write_rules(tmp_path, v1=rule_set("""
            [[fee]]
            id = "floor"
            pct_bp = 50
            min = 300
            max = 0
            """)))
        rule = fee_rule(book, "floor")
        assert rule.fee(100) == 300
        assert rule.fee(10**8) == 500000

    @pytest.mark.parametrize("body", [
        "pct_bp = 10000\n", "pct_bp = 0\n", "fixed = 0\nmin = 0\nmax = 0\n",
        "min = 200\nmax = 200\n",
    ], ids=["bp-10000", "bp-0", "zeros", "min-equals-max"])
    def test_bounds_inclusive(self, tmp_path, body):
        load_book(write_rules(tmp_path, v1=HEAD + '[[fee]]\nid = "ok"\n' + body))

    def test_every_condition_and_discount(self, tmp_path):
        book = load_book(write_rules(tmp_path, v1=rule_set("""
            [[fee]]
            id = "all-conditions"
            kind = "transfer"
            channel = ["online", "counter"]
            fee_item = ["annual"]
            issuer = ["CMB", "CIB"]
            mcc = ["4111"]
            cross_bank = true
            same_city = false
            amount_below = 100
            fixed = 1
            [[waiver]]
            id = "quota"
            free_per_month = 1
            [[discount]]
            id = "transit"
            mcc = ["4111", "4131"]
            discount_bp = 500
            cap = 0
            """)))
        v = book.versions[0]
        when = v.fees[0].when
        assert when.channel == {"online", "counter"} and when.issuer == {"CMB", "CIB"}
        assert when.cross_bank is True and when.same_city is False
        assert when.amount_below == 100
        assert v.waivers[0].free_per_month == 1
        (disc,) = v.discounts
        assert (disc.id, disc.when.mcc, disc.discount_bp, disc.cap) == \
            ("transit", {"4111", "4131"}, 500, 0)

    def test_timezone_defaults_to_shanghai(self, tmp_path):
        book = load_book(write_rules(tmp_path, v1='id = "v1"\neffective_from = 2013-09-01\n'))
        assert book.versions[0].timezone == SHANGHAI_TZ

    def test_other_files_in_the_folder_are_ignored(self, tmp_path):
        (tmp_path / "notes.txt").write_text("not toml = [")
        (tmp_path / "merchants.csv").write_text(MERCHANTS_CSV)
        book = load_book(write_rules(tmp_path, v1=HEAD))
        assert [v.id for v in book.versions] == ["v1"]


# ================================================================== version selection

V1 = """\
id = "v1"
effective_from = 2013-09-01
timezone = "Asia/Shanghai"
[[fee]]
id = "atm"
fixed = 200
"""
V2 = """\
id = "v2"
effective_from = 2014-01-01
timezone = "Asia/Shanghai"
[[fee]]
id = "atm"
fixed = 300
"""


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


class TestVersions:
    @pytest.fixture
    def two(self, tmp_path):
        # file names sort opposite to the dates: order comes from effective_from
        return load_book(write_rules(tmp_path, a_later=V2, b_earlier=V1))

    def test_ordered_by_effective_from(self, two):
        assert [v.id for v in two.versions] == ["v1", "v2"]

    @pytest.mark.parametrize("ts, version, local_date", [
        ("2013-08-31T15:59:59+00:00", None, None),           # 2013-08-31 23:59:59 local
        ("2013-08-31T16:00:00+00:00", "v1", dt.date(2013, 9, 1)),
        ("2013-12-31T15:59:59+00:00", "v1", dt.date(2013, 12, 31)),
        ("2013-12-31T16:00:00+00:00", "v2", dt.date(2014, 1, 1)),
        ("2014-01-01T00:00:00+08:00", "v2", dt.date(2014, 1, 1)),
        ("2013-12-31T23:59:59+08:00", "v1", dt.date(2013, 12, 31)),
        ("2020-06-01T00:00:00+00:00", "v2", dt.date(2020, 6, 1)),
    ])
    def test_for_instant_uses_local_date(self, two, ts, version, local_date):
        found = two.for_instant(instant(ts))
        if version is None:
            assert found is None
        else:
            ruleset, day = found
            assert (ruleset.id, day) == (version, local_date)
            assert ruleset.fees[0].fee(1) == {"v1": 200, "v2": 300}[version]

    @pytest.mark.parametrize("wall, version", [
        ("2013-08-31T23:59:59", None),
        ("2013-09-01T00:00:00", "v1"),
        ("2013-12-31T23:59:59", "v1"),
        ("2014-01-01T00:00:00", "v2"),
        # a naive time is wall-clock local time, never read as UTC
        ("2013-12-31T20:00:00", "v1"),
    ])
    def test_for_naive_uses_the_wall_date(self, two, wall, version):
        found = two.for_naive(dt.datetime.fromisoformat(wall))
        if version is None:
            assert found is None
            return
        ruleset, aware = found
        assert ruleset.id == version
        assert aware.tzinfo is not None
        assert aware.replace(tzinfo=None) == dt.datetime.fromisoformat(wall)
        assert aware.utcoffset() == dt.timedelta(hours=8)

    def test_each_version_in_its_own_zone(self, tmp_path):
        book = load_book(write_rules(tmp_path, v1=V1, v2=V2.replace(SHANGHAI_TZ, "UTC")))
        # 16:00Z on Dec 31 is Jan 1 in Shanghai but still Dec 31 in UTC: v2 not yet in force
        ruleset, day = book.for_instant(instant("2013-12-31T16:00:00+00:00"))
        assert ruleset.id == "v1"
        assert day == dt.date(2014, 1, 1)  # v1's local date, in v1's zone
        ruleset, day = book.for_instant(instant("2013-12-31T23:59:59+00:00"))
        assert (ruleset.id, day) == ("v1", dt.date(2014, 1, 1))
        ruleset, day = book.for_instant(instant("2014-01-01T00:00:00+00:00"))
        assert (ruleset.id, day) == ("v2", dt.date(2014, 1, 1))

    def test_later_version_in_an_eastern_zone(self, tmp_path):
        book = load_book(write_rules(tmp_path, v1=V1.replace(SHANGHAI_TZ, "UTC"), v2=V2))
        ruleset, day = book.for_instant(instant("2013-12-31T16:00:00+00:00"))
        assert (ruleset.id, day) == ("v2", dt.date(2014, 1, 1))
        ruleset, day = book.for_instant(instant("2013-12-31T15:59:59+00:00"))
        assert (ruleset.id, day) == ("v1", dt.date(2013, 12, 31))

    def test_naive_takes_the_zone_of_the_chosen_version(self, tmp_path):
        book = load_book(write_rules(tmp_path, v1=V1, v2=V2.replace(SHANGHAI_TZ, "UTC")))
        ruleset, aware = book.for_naive(dt.datetime(2013, 12, 31, 12, 0))
        assert ruleset.id == "v1" and aware.utcoffset() == dt.timedelta(hours=8)
        ruleset, aware = book.for_naive(dt.datetime(2014, 1, 1, 12, 0))
        assert ruleset.id == "v2" and aware.utcoffset() == dt.timedelta(0)
        assert aware == dt.datetime(2014, 1, 1, 12, 0, tzinfo=UTC)

    def test_single_version_before_its_date(self, book):
        assert book.for_instant(instant("2013-08-31T15:59:59+00:00")) is None
        ruleset, day = book.for_instant(instant("2013-08-31T16:00:00+00:00"))
        assert (ruleset.id, day) == ("licheng-2013", dt.date(2013, 9, 1))
        # docs/pricing.md#local-dates-months-and-time-zones: 2013-10-31T16:30:00Z is 1 November in Quanzhou
        assert book.for_instant(instant("2013-10-31T16:30:00+00:00"))[1] == dt.date(2013, 11, 1)


# ===================================================================== merchants tables

def with_merchants(version: str, name: str) -> str:
    """``version`` text with a top-level ``merchants = name`` (before any [[table]])."""
    return version.replace("\n[[", f'\nmerchants = "{name}"\n[[', 1)


class TestMerchantsTables:
    def test_named_table_is_relative_to_the_toml_file(self, tmp_path, monkeypatch):
        rules = tmp_path / "rules"
        (rules / "data").mkdir(parents=True)
        (rules / "data" / "m.csv").write_text(MERCHANTS_CSV, encoding="utf-8")
        write_rules(rules, v1=HEAD + 'merchants = "data/m.csv"\n')
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        monkeypatch.chdir(elsewhere)  # the path must not depend on the working directory
        book = load_book(rules)
        table = book.versions[0].merchants
        assert isinstance(table, Merchants)
        assert sorted(table) == ["QZ1", "QZ2"]
        assert table["QZ1"].discount_bp == 500 and table["QZ2"].valid_to == dt.date(2014, 12, 31)
        assert "2 partner merchants" in describe(book)

    def test_each_version_uses_its_own_table(self, tmp_path):
        (tmp_path / "m.csv").write_text(MERCHANTS_CSV, encoding="utf-8")
        book = load_book(write_rules(tmp_path, v1=with_merchants(V1, "m.csv"), v2=V2))
        v1, v2 = book.versions
        assert sorted(v1.merchants) == ["QZ1", "QZ2"]
        assert v2.merchants is None

    @pytest.mark.parametrize("csv_text, fragment", [
        (MERCHANTS_CSV + "QZ3,bad,0,0,0,2013-09-01,\n", "discount_bp"),
        (MERCHANTS_CSV + "QZ1,again,100,0,0,2013-09-01,\n", "merchant_id"),
        ("merchant_id,name\nQZ1,x\n", "valid_from"),
    ], ids=["bad-bp", "duplicate-id", "missing-columns"])
    def test_bad_named_table_refuses_the_rules(self, tmp_path, csv_text, fragment):
        (tmp_path / "m.csv").write_text(csv_text, encoding="utf-8")
        folder = write_rules(tmp_path, v1=HEAD + 'merchants = "m.csv"\n')
        problems = problems_of(folder)
        assert any("v1.toml" in p and "merchants" in p and "m.csv" in p and fragment in p
                   for p in problems), problems

    def test_missing_named_table_refuses_the_rules(self, tmp_path):
        folder = write_rules(tmp_path, v1=HEAD + 'merchants = "absent.csv"\n')
        (message,) = problems_of(folder)
        assert "v1.toml" in message and "merchants" in message and "absent.csv" in message

    def test_override_replaces_every_versions_table(self, tmp_path):
        (tmp_path / "m.csv").write_text(MERCHANTS_CSV, encoding="utf-8")
        other = tmp_path / "other.csv"
        other.write_text("merchant_id,name,discount_bp,cap,valid_from\n"
                         "XM9,override,800,0,2013-01-01\n", encoding="utf-8")
        override = load_merchants(other)
        folder = write_rules(tmp_path, v1=with_merchants(V1, "m.csv"), v2=V2)
        book = load_book(folder, override)
        assert len(book.versions) == 2
        for v in book.versions:
            assert v.merchants is override
            assert sorted(v.merchants) == ["XM9"]


# ================================================================================== CLI

class TestRulesCheckCli:
    def test_default_rules_ok(self, capfd):
        code = main(["rules", "check", str(RULES)])
        out, err = capfd.readouterr()
        assert code == 0
        assert "licheng-2013" in out
        assert names(out, "atm-xbank-local")
        assert names(out, "member-atm-3-free")
        assert err == ""

    def test_with_merchants_option(self, capfd, tmp_path):
        (tmp_path / "m.csv").write_text(MERCHANTS_CSV, encoding="utf-8")
        code = main(["rules", "check", str(RULES), "--merchants", str(tmp_path / "m.csv")])
        out, _ = capfd.readouterr()
        assert code == 0
        assert "2 partner merchants" in out

    def test_bad_folder_exits_2_naming_file_rule_and_key(self, capfd, tmp_path):
        folder = write_rules(tmp_path, broken=rule_set("""
            [[fee]]
            id = "bad-rule"
            fixed = "2"
            [[waiver]]
            id = "other-rule"
            channel = ["bus"]
            """))
        code = main(["rules", "check", str(folder)])
        out, err = capfd.readouterr()
        assert code == 2
        assert "broken.toml" in err
        assert names(err, "bad-rule") and names(err, "fixed")
        assert names(err, "other-rule") and names(err, "channel")
        assert "rules OK" not in out

    def test_empty_folder_exits_2(self, capfd, tmp_path):
        code = main(["rules", "check", str(tmp_path)])
        _, err = capfd.readouterr()
        assert code == 2
        assert str(tmp_path) in err

    def test_bad_merchants_table_exits_2(self, capfd, tmp_path):
        (tmp_path / "m.csv").write_text(MERCHANTS_CSV + "QZ3,bad,10001,0,0,2013-09-01,\n")
        folder = write_rules(tmp_path, v1=HEAD + 'merchants = "m.csv"\n')
        code = main(["rules", "check", str(folder)])
        _, err = capfd.readouterr()
        assert code == 2
        assert "m.csv" in err and "discount_bp" in err
