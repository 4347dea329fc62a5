"""A Hypothesis state machine over the life of a state folder (docs/state.md).

Steps: ingest the next day, crash during an ingest at durable step k (the
process 'dies': no cleanup), restart, redeliver a committed file, reverse
committed transactions, move on into the next month.  After every step:

* every committed file's outputs are published and hold every input row
  (input = priced + rejected);
* no transaction is charged twice across all committed outputs;
* the ledger holds exactly the committed files, and the counters equal those
  of the reference engine replayed over the committed history from empty.
"""
from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import txcore
from conftest import RULES
from txcore import durable
from txcore.errors import InputRefused
from txcore.fixtures import make_fixtures
from txcore.engine.reference import ReferenceEngine
from txcore.rules.refdata import load_cards, load_merchants
from txcore.rules.book import load_book
from txcore.state.store import Staging, StateStore

POOL = Path(tempfile.mkdtemp(prefix="txcore-sm-pool-"))
FILES = make_fixtures(POOL, members=150, days=40, seed=11, start=dt.date(2015, 10, 20), rate=1.0)
CARDS, MERCHANTS, DAYS = FILES[0], FILES[1], FILES[2:]
BOOK = load_book(RULES, load_merchants(MERCHANTS))
REGISTRY = load_cards(CARDS)


class SimulatedCrash(BaseException):
    """The process dies here: nothing after this point runs, nothing is cleaned up."""


class StateLife(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="txcore-sm-"))
        self.state_dir, self.out = self.root / "state", self.root / "out"
        self.key = self.root / "card.key"
        self.next_day = 0
        self.delivered: list[Path] = []   # files handed to a run that may have committed
        self.reversals = 0

    def teardown(self):
        shutil.rmtree(self.root, ignore_errors=True)

    # -- helpers ----------------------------------------------------------------------
    def run(self, path: Path):
        return txcore.run([path], rules=RULES, cards=CARDS, merchants=MERCHANTS,
                          out_dir=self.out, state_dir=self.state_dir, key_file=self.key,
                          progress=False)

    def committed(self) -> list[str]:
        """File names in the ledger, in commit order."""
        store = StateStore(self.state_dir, self.key)  # opening it also rolls forward
        runs = store.load().ledger.values()
        return [e["file"] for e in sorted(runs, key=lambda e: e["run_id"])]

    # -- rules ------------------------------------------------------------------------
    @precondition(lambda self: self.next_day < len(DAYS))
    @rule(skip=st.integers(0, 3))
    def ingest_next_day(self, skip):
        """The next day (sometimes a few days on: that moves through month ends)."""
        self.next_day = min(self.next_day + skip, len(DAYS) - 1)
        day = DAYS[self.next_day]
        self.next_day += 1
        self.delivered.append(day)
        self.run(day)

    @precondition(lambda self: self.next_day < len(DAYS))
    @rule(k=st.integers(1, 12), data=st.data())
    def crash_during_ingest(self, k, data):
        day = DAYS[self.next_day]
        self.next_day += 1
        self.delivered.append(day)
        taken = durable.steps_taken()

        def step(name):
            if durable.steps_taken() - taken + 1 >= k:
                raise SimulatedCrash(name)
            real_step(name)

        real_step = durable.step
        mp = pytest.MonkeyPatch()
        mp.setattr(durable, "step", step)
        mp.setattr(Staging, "discard", lambda self: None)  # a dead process deletes nothing
        # (its open files are closed, as the OS would: BatchWriter.discard only closes)
        try:
            self.run(day)
        except SimulatedCrash:
            pass
        finally:
            mp.undo()

    @precondition(lambda self: self.delivered)
    @rule(data=st.data())
    def redeliver(self, data):
        committed = self.committed()
        if not committed:
            return
        name = data.draw(st.sampled_from(committed))
        before = sorted(p.name for p in self.state_dir.iterdir())
        with pytest.raises(InputRefused, match="already committed"):
            self.run(POOL / name if (POOL / name).exists() else self.root / name)
        assert sorted(p.name for p in self.state_dir.iterdir()) == before

    @precondition(lambda self: self.delivered)
    @rule(data=st.data())
    def reverse_some(self, data):
        """Reverse a few transactions priced earlier, at the end of the latest day."""
        committed = [n for n in self.committed() if n.startswith("txns-")]
        if not committed:
            return
        source = pq.read_table(self.out / committed[-1].replace(".parquet", ".priced.parquet"))
        picks = data.draw(st.lists(st.integers(0, source.num_rows - 1), min_size=1, max_size=4))
        last_day = dt.date.fromisoformat(committed[-1][5:15])
        ts = dt.datetime.combine(last_day, dt.time(23, 59), dt.timezone(dt.timedelta(hours=8)))
        self.reversals += 1
        rows = [{"txn_id": f"REV{self.reversals}-{i}", "card_no": source["card_no"][p].as_py(),
                 "ts": ts, "kind": "reversal", "orig_txn_id": source["txn_id"][p].as_py()}
                for i, p in enumerate(picks)]
        path = self.root / f"rev-{self.reversals:03d}.parquet"
        pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema([
            ("txn_id", pa.string()), ("card_no", pa.string()),
            ("ts", pa.timestamp("us", "UTC")), ("kind", pa.string()),
            ("orig_txn_id", pa.string())])), path)
        self.delivered.append(path)
        self.run(path)

    # -- invariants -------------------------------------------------------------------
    @invariant()
    def history_matches_the_reference(self):
        if not self.state_dir.exists():
            return
        committed = self.committed()
        assert [n for n in committed] == [p.name for p in self.delivered if p.name in committed]
        store = StateStore(self.state_dir, self.key)
        state = store.load()
        reference = ReferenceEngine(BOOK, REGISTRY, type(state)(keyer=store.keyer))
        charged = set()
        for name in committed:
            path = POOL / name if (POOL / name).exists() else self.root / name
            stem = path.stem
            priced = pq.read_table(self.out / f"{stem}.priced.parquet")
            rejects = pq.read_table(self.out / f"{stem}.rejects.parquet")
            assert priced.num_rows + rejects.num_rows == pq.read_metadata(path).num_rows
            want_p, want_r = zip(*(reference.price_batch(b)
                                   for b in pq.ParquetFile(path).iter_batches()))
            assert priced.to_pylist() == pa.Table.from_batches(want_p).to_pylist()
            assert rejects.column("reject_reason").to_pylist() == \
                pa.Table.from_batches(want_r).column("reject_reason").to_pylist()
            for txn_id, fee in zip(priced["txn_id"].to_pylist(),
                                   priced["fee_charged"].to_pylist()):
                if fee:
                    assert txn_id not in charged, f"{txn_id} charged twice"
                    charged.add(txn_id)
        assert state.counters == reference.state.counters
        for path in self.delivered:  # a run that did not commit left nothing visible
            if path.name not in committed:
                assert not (self.out / f"{path.stem}.priced.parquet").exists()


StateLife.TestCase.settings = settings(max_examples=12, stateful_step_count=8, deadline=None)
test_state_life = StateLife.TestCase
