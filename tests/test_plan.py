"""The partitioned plan prices exactly as one process: outputs, digests and state, byte for byte.

Streams are generated with the cases where cards meet: txn ids repeated across cards
(and so across card buckets), reversals naming another card's row, reversals of
reversals, reversals of rows an earlier run left in the state, a rejected row whose id
a later row reuses, duplicates within a batch and across batches and files, month ends
inside a batch.  Each is priced by one process (``workers=1``) and by the plan on 1
(in this process), 2 and 3 worker processes, and in this process as if for 5 workers
(8 card buckets over the state's 4: each state segment merged from two buckets'
records); the Dask cluster is tested in ``test_dask.py``.
"""
from __future__ import annotations

import csv
import filecmp
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv  # noqa: F401  (pa.csv)
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import txcore
from conftest import FIXTURES, RULES, batch_of, registry
from test_properties import atm_burst, txn
from txcore._fast import idpass as idpass_compiled
from txcore._fast import idpass_py
from txcore.plan.executors import InProcess, LocalProcesses

CARDS = registry()


def write_cards(path: Path) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["card_no", "member_id", "unit", "issuer", "home_city", "member_from",
                    "member_to"])
        for no, c in CARDS.items():
            w.writerow([no, c.member_id or "", c.unit or "", c.issuer, c.home_city,
                        c.member_from or "", c.member_to or ""])
    return path


@st.composite
def crossing_streams(draw):
    """``(earlier, rows)``: rows an earlier run prices into the state, and the run's rows,
    their ids and reversal originals drawn so that cards meet."""
    earlier = draw(st.lists(st.one_of(txn(), atm_burst()), max_size=12))
    rows = draw(st.lists(st.one_of(txn(), atm_burst()), min_size=1, max_size=45))
    for i, r in enumerate(earlier):
        r["txn_id"] = f"P{i}"
    taken = [r["txn_id"] for r in earlier]
    for i, r in enumerate(rows):
        pick = draw(st.integers(0, 9))
        if pick == 0 and taken:      # an id any earlier row (any card, any run) had
            r["txn_id"] = draw(st.sampled_from(taken))
        else:
            r["txn_id"] = f"T{i}"
        if r["kind"] == "reversal":  # of any earlier row: another card's, a reversal's,
            r["orig_txn_id"] = draw(st.sampled_from(taken + ["NOPE"]))  # the state's
        taken.append(r["txn_id"])
    return earlier, rows


def write_parquet(rows, path: Path, row_group_size: int) -> Path:
    table = pa.Table.from_batches([batch_of(rows)])  # named inside: no two files alike
    table = table.replace_schema_metadata({"file": path.name})
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


#: The business date of the generated streams (2013-2014); the bundled demo days
#: (2015-10-29 to 2015-11-02) are priced with theirs, DEMO_DATE (rows dated later than
#: the day after the business date are rejected bad_ts: every demo row, with the former).
STREAM_DATE, DEMO_DATE = "2014-02-01", "2015-11-02"


def price_with(tmp: Path, name: str, files, earlier_state: Path | None, engine, workers,
               batch_size, cards, backend="cython",
               business_date=STREAM_DATE) -> tuple[Path, Path, dict]:
    out, state = tmp / name / "out", tmp / name / "state"
    if earlier_state is not None:
        os.makedirs(state.parent, exist_ok=True)
        _copy_tree(earlier_state, state)
    summary = txcore.run(files, rules=RULES, cards=cards, out_dir=out, state_dir=state,
                         key_file=tmp / "card.key", progress=False, batch_size=batch_size,
                         business_date=business_date, workers=workers, engine=engine,
                         backend=backend)
    return out, state, summary


def _copy_tree(src: Path, dst: Path):
    import shutil
    shutil.copytree(src, dst)


def assert_same_run(a, b):
    """Outputs byte for byte; state files with the same bodies (a segment's header holds a
    random file id; the manifest and ledger the run id); the same summary."""
    (out_a, state_a, sum_a), (out_b, state_b, sum_b) = a, b
    names = sorted(os.listdir(out_a))
    assert names == sorted(os.listdir(out_b))
    for n in names:
        if n != "summary.json":
            assert filecmp.cmp(out_a / n, out_b / n, shallow=False), n
    files_a = sorted(p for p in os.listdir(state_a) if p not in ("LOCK",))
    assert files_a == sorted(p for p in os.listdir(state_b) if p not in ("LOCK",))
    for n in files_a:
        x, y = (state_a / n).read_bytes(), (state_b / n).read_bytes()
        if n.endswith(".bin"):
            assert x[4096:] == y[4096:], n
        elif n.startswith("strings."):
            assert x == y, n
    cur_a, cur_b = (json.loads((s / "CURRENT").read_text()) for s in (state_a, state_b))
    assert cur_a["latest"] == cur_b["latest"] and cur_a["counts"] == cur_b["counts"]
    volatile = {"elapsed_seconds", "rows_per_second", "run_id", "finished_at", "workers",
                "stage_seconds", "scratch_bytes", "backend"}
    assert {k: v for k, v in sum_a.items() if k not in volatile} == \
        {k: v for k, v in sum_b.items() if k not in volatile}


class WideInProcess(InProcess):
    """Tasks in this process, planned as for 5 workers: 8 card buckets over the state's
    4, so each state segment is merged from two buckets' records (``merge_segment``)."""

    workers = 5


@pytest.fixture(scope="module")
def pools():
    """Worker processes shared by the examples (each run would start its own)."""
    made = {1: InProcess(), 2: LocalProcesses(2), 3: LocalProcesses(3), 5: WideInProcess()}
    yield made
    for executor in made.values():
        executor.close()


SETTINGS = settings(max_examples=int(os.environ.get("TXCORE_PLAN_EXAMPLES", 25)),
                    deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                          HealthCheck.too_slow])


def stream_run(tmp: Path, data, cut: int, group: int):
    """``(files, earlier state or None, cards)`` of a generated stream: the earlier rows
    priced into a state by one process, the run's rows cut into one or two files of row
    groups of ``group`` rows."""
    earlier, rows = data
    cards = write_cards(tmp / "cards.csv")
    first = None
    if earlier:  # an earlier run leaves its rows in the state
        write_parquet(earlier, tmp / "earlier.parquet", 4)
        first = price_with(tmp, "first", [tmp / "earlier.parquet"], None, "local", 1, 64,
                           cards)[1]
    files = [write_parquet(rows[:cut] or rows, tmp / "a.parquet", group)]
    if rows[cut:] and cut:
        files.append(write_parquet(rows[cut:], tmp / "b.parquet", group))
    return files, first, cards


def cli(tmp_path, name, days, *extra, env=None):
    """``txcore run`` on ``days`` as a user starts it, into ``tmp_path/name``."""
    return subprocess.run(
        [sys.executable, "-m", "txcore", "run", "--rules", str(RULES),
         "--cards", str(FIXTURES / "cards.csv"), "--merchants", str(FIXTURES / "merchants.csv"),
         "-o", str(tmp_path / name / "out"), "--state", str(tmp_path / name / "state"),
         "--card-key", str(tmp_path / "card.key"), "--batch-size", "8192", "--no-progress",
         *extra, *map(str, days)],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300)


def run_of(tmp_path, name):
    """``(outputs, state, summary)`` of the run :func:`cli` made into ``tmp_path/name``."""
    return (tmp_path / name / "out", tmp_path / name / "state",
            json.loads((tmp_path / name / "out" / "summary.json").read_text()))


@SETTINGS
@given(data=crossing_streams(), cut=st.integers(0, 45), group=st.integers(1, 6),
       batch_size=st.integers(1, 8))
def test_the_plan_prices_exactly_as_one_process(tmp_path_factory, pools, data, cut, group,
                                                batch_size):
    tmp = tmp_path_factory.mktemp("plan")
    files, first, cards = stream_run(tmp, data, cut, group)
    one = price_with(tmp, "one", files, first, "local", 1, batch_size, cards)
    for n, executor in pools.items():
        planned = price_with(tmp, f"plan{n}", files, first, executor, n, batch_size, cards)
        assert_same_run(one, planned)
        assert ("merge_segments" in planned[2]["stage_seconds"]) == (n > 4)


def test_the_numba_kernel_in_the_plan(tmp_path):
    """The numba backend's kernel in two worker processes (each compiles it once)."""
    days = sorted(FIXTURES.glob("txns-*.parquet"))[:2]
    one = price_with(tmp_path, "one", days, None, "local", 1, 8192, FIXTURES / "cards.csv",
                     business_date=DEMO_DATE)
    two = price_with(tmp_path, "numba", days, None, "processes", 2, 8192,
                     FIXTURES / "cards.csv", "numba", DEMO_DATE)
    assert one[2]["rows"]["priced"] > 20_000
    assert two[2]["backend"] == "numba"
    assert_same_run(one, two)


def test_the_bundled_days_with_two_and_three_workers(tmp_path):
    """The run's own path (``--workers N`` starts its processes) on the five demo days,
    and ``--engine local`` choosing: threads for two workers, the plan for three."""
    days = sorted(FIXTURES.glob("txns-*.parquet"))
    runs = [price_with(tmp_path, f"{engine}{n}", days, None, engine, n, 4096,
                       FIXTURES / "cards.csv", business_date=DEMO_DATE)
            for engine, n in (("local", 1), ("processes", 2), ("processes", 3),
                              ("threads", 2), ("local", 2), ("local", 3))]
    assert runs[0][2]["rows"]["priced"] > 50_000
    for other in runs[1:]:
        assert_same_run(runs[0], other)
    planned = ["stage_seconds" in summary for _, _, summary in runs]
    assert planned == [False, True, True, False, False, True]


# -- the id pass: compiled and its twin ------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(data=st.data(), n=st.integers(0, 60), m=st.integers(0, 12),
       retention=st.integers(0, 5), latest=st.one_of(st.none(), st.integers(0, 20)),
       cuts=st.lists(st.integers(0, 60), max_size=3))
def test_the_compiled_id_pass_agrees_with_its_twin(data, n, m, retention, latest, cuts):
    small = st.integers(0, 6)  # few distinct ids and cards: they collide often

    def words(k):
        return np.array(data.draw(st.lists(small, min_size=k, max_size=k)), np.uint64)
    rows = [words(n) for _ in range(6)]
    day = np.array(data.draw(st.lists(st.integers(0, 20), min_size=n, max_size=n)), np.int32)
    flags = np.array(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), np.uint8)
    state = [words(m) for _ in range(4)]
    s_day = np.array(data.draw(st.lists(st.integers(0, 20), min_size=m, max_size=m)), np.int32)
    s_flags = np.array(data.draw(st.lists(st.integers(0, 3), min_size=m, max_size=m)), np.uint8)
    # the state holds each txn digest once
    _, first = np.unique(np.stack([state[0], state[1]]), axis=1, return_index=True)
    keep = np.sort(first)
    state = [s[keep] for s in state]
    s_day, s_flags = s_day[keep], s_flags[keep]
    start = idpass_py.NO_LATEST if latest is None else latest
    bounds = [0, *sorted(c for c in cuts if c <= n), n]  # fed a chunk at a time
    got = []
    for module in (idpass_compiled, idpass_py):
        settler = module.Settler(n, *state, s_day, s_flags, start, retention)
        reason, now = np.zeros(n, np.int8), np.zeros(n, np.int32)
        for a, b in zip(bounds, bounds[1:]):
            part = [np.ascontiguousarray(x[a:b]) for x in (*rows, day, flags)]
            r, t = np.zeros(b - a, np.int8), np.zeros(b - a, np.int32)
            settler.settle(*part, r, t)
            reason[a:b], now[a:b] = r, t
        got.append((reason.tolist(), now.tolist(), int(settler.latest)))
    assert got[0] == got[1]


def test_an_input_without_row_groups_between_two_days(tmp_path):
    """A Parquet file with no row group (no chunk) keeps its place among the outputs."""
    days = sorted(FIXTURES.glob("txns-*.parquet"))[:2]
    empty = tmp_path / "empty.parquet"
    pq.write_table(pq.read_table(days[0]).slice(0, 0), empty)
    files = [days[0], empty, days[1]]
    one = price_with(tmp_path, "one", files, None, "local", 1, 8192, FIXTURES / "cards.csv",
                     business_date=DEMO_DATE)
    two = price_with(tmp_path, "two", files, None, InProcess(), 1, 8192, FIXTURES / "cards.csv",
                     business_date=DEMO_DATE)
    assert one[2]["rows"]["priced"] > 20_000
    assert [i["file"] for i in two[2]["inputs"]] == [f.name for f in files]
    assert two[2]["inputs"][1]["rows"] == 0
    assert_same_run(one, two)


def test_rule_ids_new_to_the_state_are_committed_by_a_planned_run(tmp_path):
    """A state whose strings file lacks the book's rule ids (here: a first day priced by
    the reference engine, which numbers only the ids its entries use, with every row
    rejected — dated after its business date; in life, a new rule-set version brings
    new ids): the plan numbers the book's ids before its commit, and the commit must
    still write them, or the next run cannot read the segments that use them."""
    days = sorted(FIXTURES.glob("txns-*.parquet"))
    cards = FIXTURES / "cards.csv"
    first = price_with(tmp_path, "first", days[:1], None, "local", 1, 8192, cards, "python",
                       STREAM_DATE)
    assert first[2]["rows"]["priced"] == 0
    first = first[1]
    one = price_with(tmp_path, "one", days[1:2], first, "local", 1, 8192, cards,
                     business_date=DEMO_DATE)
    plan = price_with(tmp_path, "plan", days[1:2], first, InProcess(), 1, 8192, cards,
                      business_date=DEMO_DATE)
    assert one[2]["rows"]["priced"] > 10_000
    assert "stage_seconds" in plan[2]
    assert_same_run(one, plan)
    after_one = price_with(tmp_path, "after-one", days[2:3], one[1], "local", 1, 8192, cards,
                           business_date=DEMO_DATE)
    after_plan = price_with(tmp_path, "after-plan", days[2:3], plan[1], "local", 1, 8192,
                            cards, business_date=DEMO_DATE)
    assert_same_run(after_one, after_plan)


def test_engine_choices_the_run_cannot_take_are_refused(tmp_path):
    """``--engine processes`` on an input the plan does not read (CSV) and ``--scheduler``
    without ``--engine dask`` stop before anything is read (exit 2)."""
    day = sorted(FIXTURES.glob("txns-*.parquet"))[0]
    csv_day = tmp_path / "day.csv"
    pa.csv.write_csv(pq.read_table(day).slice(0, 100), csv_day)
    refused = cli(tmp_path, "csv", [csv_day], "--engine", "processes", "--workers", "2")
    assert refused.returncode == 2 and "--engine processes prices Parquet" in refused.stderr
    threads = cli(tmp_path, "sched", [day], "--engine", "threads", "--scheduler", "tcp://x:1")
    assert threads.returncode == 2 and "--scheduler needs --engine dask" in threads.stderr
    assert not (tmp_path / "csv" / "out").exists() or not any((tmp_path / "csv" / "out").iterdir())


def test_segments_move_into_a_state_on_another_file_system(tmp_path, monkeypatch):
    """OUTDIR and the state folder on two file systems: the segments the bucket tasks
    wrote cannot be renamed into the state folder (EXDEV), so the commit copies them —
    and the state is the one a one-process run commits."""
    import errno

    from txcore import durable
    rename = os.replace
    crossed = []

    def replace(src, dst):  # out of the staging folder's segments: another file system
        if Path(src).parent.name == "plan-segments" != Path(dst).parent.name:
            crossed.append(Path(src).name)
            raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(src))
        return rename(src, dst)

    monkeypatch.setattr(durable.os, "replace", replace)
    days = sorted(FIXTURES.glob("txns-*.parquet"))[:2]
    one = price_with(tmp_path, "one", days, None, "local", 1, 8192, FIXTURES / "cards.csv",
                     business_date=DEMO_DATE)
    plan = price_with(tmp_path, "plan", days, None, InProcess(), 1, 8192,
                      FIXTURES / "cards.csv", business_date=DEMO_DATE)
    assert one[2]["rows"]["priced"] > 20_000
    assert sorted(crossed) == sorted(p.name for p in (tmp_path / "plan" / "state").glob("seg.*"))
    assert crossed
    assert_same_run(one, plan)
    from txcore.state.store import StateStore  # every copied file as committed
    assert StateStore(plan[1], tmp_path / "card.key", readonly=True).verify()["files"] > 2


def test_the_pure_python_twins_commit_the_same_state(tmp_path):
    """``TXCORE_NO_EXTENSIONS=1``: every compiled helper replaced by its twin (the commit's
    records among them, ``records_py``), the numba kernel pricing; the outputs and the
    state are the compiled build's, byte for byte."""
    day = sorted(FIXTURES.glob("txns-*.parquet"))[:1]
    built = cli(tmp_path, "built", day, "--backend", "numba")
    twins = cli(tmp_path, "twins", day, "--backend", "numba",
                env={"TXCORE_NO_EXTENSIONS": "1"})
    assert built.returncode == 0 and twins.returncode == 0, built.stderr + twins.stderr
    runs = [run_of(tmp_path, name) for name in ("built", "twins")]
    assert runs[0][2]["rows"]["priced"] > 10_000
    assert [r[2].pop("card_check") for r in runs] == ["cython", "python"]  # which, named
    assert_same_run(*runs)
