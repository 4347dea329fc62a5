"""Rule values at and beyond their bounds (docs/rules.md#bounds-of-rule-values): ``rules check`` is the
one gate.  What it refuses, it refuses with the bound in the message; what it accepts,
every backend prices identically to the reference, to the fen."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from conftest import CMB_CARD, QUANZHOU, XIAMEN, price, registry, row
from txcore.cli import main
from txcore.errors import RulesError
from txcore.rules.book import MAX_BP, MAX_FREE_PER_MONTH, MAX_IDS, MAX_MONEY, load_book
from txcore.state.memory import State
from txcore.vocab import MAX_AMOUNT

HEAD = 'id = "v"\neffective_from = 2013-09-01\ntimezone = "Asia/Shanghai"\n'
BIG = 10**30  # tomllib reads any integer; beyond int64 used to fail only at run time


def _book(tmp_path, body: str, name="v.toml"):
    folder = tmp_path / "rules"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(HEAD + body, encoding="utf-8")
    return load_book(folder)


@pytest.mark.parametrize("body,key,bound", [
    ('[[fee]]\nid = "f"\nfixed = 9223372036854775807\npct_bp = 50\n', "fixed",
     f"0..{MAX_MONEY}"),
    (f'[[fee]]\nid = "f"\nfixed = {BIG}\n', "fixed", f"0..{MAX_MONEY}"),
    (f'[[fee]]\nid = "f"\nfixed = {MAX_MONEY + 1}\n', "fixed", f"0..{MAX_MONEY}"),
    (f'[[fee]]\nid = "f"\nmin = {MAX_MONEY + 1}\n', "min", f"0..{MAX_MONEY}"),
    (f'[[fee]]\nid = "f"\nmax = {-BIG}\n', "max", f"0..{MAX_MONEY}"),
    (f'[[fee]]\nid = "f"\npct_bp = {MAX_BP + 1}\n', "pct_bp", f"0..{MAX_BP}"),
    (f'[[fee]]\nid = "f"\namount_below = {MAX_MONEY + 1}\nfixed = 1\n', "amount_below",
     f"0..{MAX_MONEY}"),
    (f'[[fee]]\nid = "f"\ntiers = [{{upto = {BIG}, fixed = 1}}, {{fixed = 2}}]\n', "upto",
     f"0..{MAX_MONEY}"),
    (f'[[fee]]\nid = "f"\ntiers = [{{upto = 5, fixed = {BIG}}}, {{fixed = 2}}]\n', "fixed",
     f"0..{MAX_MONEY}"),
    ('[[waiver]]\nid = "w"\nfree_per_month = 2147483648\n', "free_per_month",
     f"1..{MAX_FREE_PER_MONTH}"),
    ('[[waiver]]\nid = "w"\nfree_per_month = 40000\n', "free_per_month",
     f"1..{MAX_FREE_PER_MONTH}"),
    (f'[[waiver]]\nid = "w"\nfree_per_month = {MAX_FREE_PER_MONTH + 1}\n', "free_per_month",
     f"1..{MAX_FREE_PER_MONTH}"),
    (f'[[discount]]\nid = "d"\ndiscount_bp = 5\ncap = {MAX_MONEY + 1}\n', "cap",
     f"0..{MAX_MONEY}"),
    (f'[[discount]]\nid = "d"\ndiscount_bp = 5\nmin_spend = {BIG}\n', "min_spend",
     f"0..{MAX_MONEY}"),
])
def test_values_beyond_their_bounds_are_refused_naming_the_bound(tmp_path, body, key, bound):
    with pytest.raises(RulesError) as exc:
        _book(tmp_path, body)
    (problem,) = exc.value.problems
    assert f"key '{key}'" in problem and f"(must be {bound})" in problem, problem
    assert len(problem) < 200  # a 31-digit value is shortened


def test_a_toml_nested_2000_deep_is_a_rules_error(tmp_path, capfd):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "v.toml").write_text(HEAD + "x = " + "[" * 2000 + "]" * 2000 + "\n")
    with pytest.raises(RulesError, match="nested too deeply"):
        load_book(folder)
    assert main(["rules", "check", str(folder)]) == 2
    assert "nested too deeply" in capfd.readouterr().err


def _many_ids(n_rules: int) -> str:
    return "".join(f'[[fee]]\nid = "r{i}"\nfixed = 1\nkind = "service"\n'
                   for i in range(n_rules))


def test_more_ids_than_the_compiled_codes_hold_are_refused(tmp_path):
    with pytest.raises(RulesError, match=f"at most {MAX_IDS:,}"):
        _book(tmp_path, _many_ids(MAX_IDS))  # + the version id: one too many


def test_values_at_their_bounds_are_accepted_and_priced_alike(tmp_path):
    book = _book(tmp_path, _many_ids(MAX_IDS - 3) + f"""
[[fee]]
id = "top"
kind = "withdrawal"
fixed = {MAX_MONEY}
pct_bp = {MAX_BP}
max = {MAX_MONEY}
[[waiver]]
id = "w"
kind = "withdrawal"
free_per_month = {MAX_FREE_PER_MONTH}
""")
    rows = [row(txn_id="A", amount=MAX_AMOUNT), row(txn_id="B", amount=1),
            row(txn_id="C", kind="reversal", channel=None, orig_txn_id="A")]
    outcomes = {}
    for backend in ("python", "cython", "numba"):
        priced, rejects = price(rows, book, backend=backend)
        assert not rejects
        outcomes[backend] = priced
        assert [p["fee_standard"] for p in priced] == [MAX_MONEY, MAX_MONEY, -MAX_MONEY]
        assert [p["free_slot"] for p in priced] == [1, 2, 0]
    assert outcomes["cython"] == outcomes["python"] == outcomes["numba"]


# -- Hypothesis: rule values at the limits, every backend against the reference ----------
def _edge(lo, hi):
    return st.one_of(st.sampled_from([lo, lo + 1, hi - 1, hi]), st.integers(lo, hi))


MONEY, BP = _edge(0, MAX_MONEY), _edge(0, MAX_BP)
QUOTA = _edge(1, MAX_FREE_PER_MONTH)
AMOUNT = _edge(1, MAX_AMOUNT)


@st.composite
def formula(draw):
    f = {"fixed": draw(MONEY), "pct_bp": draw(BP)}
    lo, hi = sorted([draw(MONEY), draw(MONEY)])
    f["min"], f["max"] = (lo, hi) if draw(st.booleans()) else (lo, 0)
    return {k: v for k, v in f.items() if draw(st.booleans()) or k == "fixed"}


def _toml_table(d: dict) -> str:
    return "{" + ", ".join(f"{k} = {v}" for k, v in d.items()) + "}"


@st.composite
def rules_text(draw):
    shapes = []
    text = ""
    if draw(st.booleans()):
        uptos = sorted(draw(st.sets(MONEY, min_size=1, max_size=3)))
        bands = [{"upto": u, **draw(formula())} for u in uptos] + [draw(formula())]
        text += ('[[fee]]\nid = "tiered"\nkind = "withdrawal"\n'
                 f'tiers = [{", ".join(_toml_table(b) for b in bands)}]\n')
        shapes.append(f"tiers x{len(bands)}")
    else:
        text += '[[fee]]\nid = "flat"\nkind = "withdrawal"\n' + "".join(
            f"{k} = {v}\n" for k, v in draw(formula()).items())
        if draw(st.booleans()):
            text += f"amount_below = {draw(MONEY)}\n"
            shapes.append("amount_below")
        shapes.append("formula")
    text += '[[fee]]\nid = "pos"\nkind = "purchase"\n' + "".join(
        f"{k} = {v}\n" for k, v in draw(formula()).items())
    text += f'[[waiver]]\nid = "w"\nkind = "withdrawal"\nfree_per_month = {draw(QUOTA)}\n'
    text += ('[[discount]]\nid = "d"\nmcc = ["5411"]\n'
             f"discount_bp = {draw(BP)}\ncap = {draw(MONEY)}\nmin_spend = {draw(MONEY)}\n")
    return text, shapes


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(rules=rules_text(), amounts=st.lists(AMOUNT, min_size=1, max_size=6),
       data=st.data())
def test_rule_values_at_the_limits_price_identically_on_every_backend(
        tmp_path_factory, rules, amounts, data):
    text, shapes = rules
    for s in shapes:
        event(s)
    book = _book(tmp_path_factory.mktemp("rb"), text)  # rules check accepts it
    rows = []
    for i, a in enumerate(amounts):
        if data.draw(st.booleans()):
            rows.append(row(txn_id=f"W{i}", amount=a, acq_bank="CIB",
                            city=data.draw(st.sampled_from([QUANZHOU, XIAMEN]))))
        else:
            rows.append(row(txn_id=f"P{i}", kind="purchase", channel="pos", amount=a,
                            merchant_id="M", mcc="5411", acq_bank=None, city=None))
    rows.append(row(txn_id="R", kind="reversal", channel=None,
                    orig_txn_id=rows[0]["txn_id"]))
    reference = price(rows, book, backend="python")
    for backend in ("cython", "numba"):
        assert price(rows, book, backend=backend) == reference, backend
    priced, rejects = reference
    assert not rejects and all(abs(p["fee_standard"]) <= 2 * MAX_MONEY for p in priced)


def test_control_totals_cannot_wrap(monkeypatch):
    """Arrow's int64 sums wrap silently: totals are summed in slices small enough that the
    largest fees the bounds allow cannot wrap, and added up in Python."""
    import pyarrow as pa
    from txcore import summary
    assert summary.SUM_ROWS * 2 * MAX_MONEY < 2**63
    monkeypatch.setattr(summary, "SUM_ROWS", 1)  # the same, with values near 2**62
    n = 5
    priced = pa.RecordBatch.from_pydict({"kind": ["withdrawal"] * n, "ruleset": ["x"] * n,
                                         "fee_standard": pa.array([2**62] * n, pa.int64())})
    totals = summary.Totals()
    totals.add(priced, pa.RecordBatch.from_pydict({"reject_reason": pa.array([], pa.string())}))
    assert totals.by_kind["withdrawal"]["fee_standard"] == n * 2**62
