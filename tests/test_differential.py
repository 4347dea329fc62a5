"""The compiled backends against the reference engine, row for row, on generated streams.

Every priced and reject column must be identical to the reference's, and so must
the state each leaves behind.  The streams reach the edges (test_properties'
generators): local month boundaries, exhausted free slots, tier and clamp edges,
repeated txn_ids, reversals of priced / rejected / unknown / reversed rows, and
malformed rows; here also a rule-set version change (to another fee, quota and
time zone), text and typed timestamps with and without offsets, retention
edges, and a state handed from one backend to another between runs.
"""
from __future__ import annotations

import datetime as dt
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import CMB_CARD, RULES, batch_of, registry
from test_properties import BOOK, streams
from txcore.engine import BACKENDS, make_engine
from txcore.state.keys import Keyer
from txcore.rules.book import load_book
from txcore.state.memory import State

FAST = [b for b in sorted(BACKENDS) if b != "python"]
KEY = b"differential-test-key-32-bytes!!"
SETTINGS = settings(max_examples=120, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    """The default programme, then from 2013-11-01 a version in Tokyo time with dearer
    cross-bank ATM withdrawals and two free ones a month (same waiver id)."""
    folder = tmp_path_factory.mktemp("rules")
    shutil.copy(RULES / "licheng-2013.toml", folder)
    text = (RULES / "licheng-2013.toml").read_text(encoding="utf-8")
    text = text.replace('id = "licheng-2013"', 'id = "licheng-2013b"') \
        .replace("effective_from = 2013-09-01", "effective_from = 2013-11-01") \
        .replace('timezone = "Asia/Shanghai"', 'timezone = "Asia/Tokyo"') \
        .replace("free_per_month = 3", "free_per_month = 2") \
        .replace("same_city = true\nfixed = 200", "same_city = true\nfixed = 300")
    (folder / "licheng-2013b.toml").write_text(text, encoding="utf-8")
    book = load_book(folder, BOOK.versions[0].merchants)
    assert len(book.versions) == 2
    return book


def run(backend, book, rows, batch_size, state=None):
    state = state if state is not None else State(keyer=Keyer(KEY))
    engine = make_engine(backend, book, registry(), state)
    priced, rejects = [], []
    whole = batch_of(rows)  # one schema for the stream, as in a file
    for start in range(0, max(len(rows), 1), batch_size):
        p, r = engine.price_batch(whole.slice(start, batch_size))
        priced.append(p)
        rejects.append(r)
    return priced, rejects, engine.zero_effect_reversals, state


def state_tables(state):
    counters, index = state.tables()
    return (counters.sort_by([("card", "ascending"), ("waiver_id", "ascending"),
                              ("month", "ascending")]),
            index.sort_by([("txn", "ascending")]), state.latest)


def rows_of(batches):
    return [row for b in batches for row in b.to_pylist()]


def assert_same(fast, ref):
    """Same priced rows, rejects, zero-effect count and state (batches may be cut
    differently)."""
    assert {b.schema for b in fast[0]} == {ref[0][0].schema}
    assert {b.schema for b in fast[1]} == {ref[1][0].schema}
    priced, expect = rows_of(fast[0]), rows_of(ref[0])
    assert len(priced) == len(expect)
    for got, want in zip(priced, expect):
        assert got == want
    assert rows_of(fast[1]) == rows_of(ref[1])
    assert fast[2] == ref[2], "zero-effect reversals"
    f_counters, f_index, f_latest = state_tables(fast[3])
    r_counters, r_index, r_latest = state_tables(ref[3])
    assert f_latest == r_latest
    assert f_counters.to_pylist() == r_counters.to_pylist()
    assert f_index.to_pylist() == r_index.to_pylist()


@st.composite
def shifted(draw, rows):
    """Move some rows later by up to 80 days (past the 45-day window), as text with an
    offset, naive text, or a typed timestamp."""
    out = []
    for r in rows:
        r = dict(r)
        ts = r.get("ts")
        if ts and len(ts) > 10 and draw(st.integers(0, 3)) == 0:
            base = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
            base += dt.timedelta(days=draw(st.sampled_from([0, 30, 46, 47, 80])),
                                 seconds=draw(st.integers(0, 86399)))
            form = draw(st.sampled_from(["text", "naive", "typed"]))
            if form == "text":
                r["ts"] = base.isoformat()
            elif form == "naive":
                r["ts"] = base.replace(tzinfo=None).isoformat(sep=" ")
            else:
                r["ts"] = base.astimezone(dt.timezone.utc)
        out.append(r)
    if any(isinstance(r.get("ts"), dt.datetime) for r in out):  # a typed column: all typed
        for r in out:
            if isinstance(r.get("ts"), str):
                try:
                    t = dt.datetime.fromisoformat(r["ts"].replace("Z", "+00:00"))
                except ValueError:
                    t = None
                r["ts"] = None if t is None or t.tzinfo is None else t.astimezone(dt.timezone.utc)
    return out


@SETTINGS
@pytest.mark.parametrize("backend", FAST)
@given(data=st.data(), batch_size=st.sampled_from([1, 7, 64]))
def test_same_rows_and_state_as_the_reference(backend, two_versions, data, batch_size):
    book = data.draw(st.sampled_from([BOOK, two_versions]))
    rows = data.draw(streams().flatmap(shifted))
    assert_same(run(backend, book, rows, batch_size), run("python", book, rows, len(rows)))


@SETTINGS
@pytest.mark.parametrize("backend", FAST)
@given(data=st.data())
def test_a_state_passes_between_backends(backend, two_versions, data):
    """Run 1 on one backend, run 2 on another, from the same State: as the reference."""
    rows = data.draw(streams().flatmap(shifted))
    cut = data.draw(st.integers(0, len(rows)))
    first, second = data.draw(st.permutations([backend, "python"]))
    state = State(keyer=Keyer(KEY))
    p1 = run(first, two_versions, rows[:cut], 16, state)
    p2 = run(second, two_versions, rows[cut:], 16, state)
    ref = run("python", two_versions, rows, 16)
    assert rows_of(p1[0] + p2[0]) == rows_of(ref[0])
    assert rows_of(p1[1] + p2[1]) == rows_of(ref[1])
    assert state_tables(state)[1].to_pylist() == state_tables(ref[3])[1].to_pylist()


@pytest.mark.parametrize("backend", FAST)
def test_the_bundled_days_price_identically(backend):
    """75,021 fixture rows, partner merchants and all: every column equal to the reference."""
    import pyarrow.parquet as pq

    from conftest import FIXTURES
    from txcore.rules.refdata import load_cards, load_merchants
    book = load_book(RULES, load_merchants(FIXTURES / "merchants.csv"))
    cards = load_cards(FIXTURES / "cards.csv")
    out = {}
    for name in (backend, "python"):
        state = State(keyer=Keyer(KEY))
        engine = make_engine(name, book, cards, state)
        out[name] = [engine.price_batch(b) for f in sorted(FIXTURES.glob("txns-*.parquet"))
                     for b in pq.read_table(f).to_batches(30000)]
        out[name + " state"] = state_tables(state)
    for (p, r), (rp, rr) in zip(out[backend], out["python"]):
        assert p.equals(rp) and r.equals(rr)
    assert out[backend + " state"][0].equals(out["python state"][0])
    assert out[backend + " state"][1].equals(out["python state"][1])


@pytest.fixture(scope="module")
def london(tmp_path_factory):
    """The default programme in a zone with daylight-saving time."""
    folder = tmp_path_factory.mktemp("rules-london")
    text = (RULES / "licheng-2013.toml").read_text(encoding="utf-8")
    (folder / "london.toml").write_text(
        text.replace('timezone = "Asia/Shanghai"', 'timezone = "Europe/London"'),
        encoding="utf-8")
    return load_book(folder)


@pytest.mark.parametrize("backend", FAST)
@pytest.mark.parametrize("typed", [False, True])
def test_naive_times_across_daylight_saving_changes(backend, london, typed):
    """Naive wall times every 10 minutes around London's 2014 changes (a skipped hour
    and a repeated one) and month ends: the same instants, days and months."""
    rows = []
    for start in (dt.datetime(2014, 3, 28), dt.datetime(2014, 10, 24), dt.datetime(2014, 4, 29)):
        for k in range(6 * 24 * 5):
            wall = start + dt.timedelta(minutes=10 * k)
            rows.append({"txn_id": f"T{len(rows)}", "card_no": CMB_CARD,
                         "ts": wall if typed else wall.isoformat(sep=" "),
                         "kind": "withdrawal", "channel": "atm", "amount": 100000,
                         "acq_bank": "ICBC", "city": "350500"})
    assert_same(run(backend, london, rows, 500), run("python", london, rows, len(rows)))
