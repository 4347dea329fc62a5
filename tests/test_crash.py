"""Crash safety of ``txcore run`` (docs/state.md): atomic commits, recovery, corruption, the lock.

What a bank's batch team relies on: whatever happens to a run — the process dies
at any durable step (``TXCORE_CRASH_AT``), is killed with SIGKILL at a random
moment, or the disk fills up or fails (``TXCORE_FAIL_AT``) — the state is the
last committed one, no partial output is visible in OUTDIR, and running the
same command again gives exactly what an uninterrupted run gives (outputs,
state, and the next day's run on top of it).  A damaged state is refused, never
used; leftovers of dead runs are cleaned; two runs never share a state.

Every run is a real ``python -m txcore`` child process.  All runs of this file
share one card key (``TXCORE_CARD_KEY_FILE``), so the states of different runs
hold the same digests and can be compared as loaded ``State`` objects.  To stay
fast, the bundled days are thinned to every ``STRIDE``-th row (whole day, all
kinds, month-end assessments included), and independent trials run in parallel.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import FIXTURES, RULES
from txcore.state import keys
from txcore.errors import StateError
from txcore.fixtures import make_fixtures
from txcore.state.segments import HEADER
from txcore.state.store import StateStore

CRASH_EXIT = 77  # txcore.durable.CRASH_EXIT
STRIDE = 8       # keep every 8th row of a bundled day: ~1,700-2,400 rows a day
BUNDLED_DAYS = ["2015-10-30", "2015-10-31", "2015-11-01", "2015-11-02"]  # DAY0..DAY3
WORKERS = min(6, (os.cpu_count() or 2) + 1)
#: summary.json fields that differ between two runs of the same inputs
VOLATILE = {"run_id", "finished_at", "elapsed_seconds", "rows_per_second"}
NOT_STATE = {"LOCK", "card.key"}  # the run lock and the card key are not committed state
STAGING = ".txcore-staging-"
CLAIMS_NOT_COMMITTED = re.compile(r"nothing of this run was committed|not committed|"
                                  r"uncommitted", re.I)
#: what the child may print as the last stderr line to report its durable steps
STEP_COUNTER = """\
import json, sys
from txcore import cli, durable
names = []
_step = durable.step
def step(name):
    names.append(name)
    _step(name)
durable.step = step
rc = cli.main(sys.argv[1:])
print("TXCORE_STEPS " + json.dumps(names), file=sys.stderr)
sys.exit(rc)
"""


# ----------------------------------------------------------------------------- data
@dataclass
class Data:
    """Reference data and four consecutive days: DAY0 (committed before), DAY1 and DAY2
    (the run under test), DAY3 (the next day's run on the resulting state)."""

    cards: Path
    merchants: Path
    days: list[Path]
    key: Path

    @property
    def prior(self):
        return self.days[:1]

    @property
    def run(self):
        return self.days[1:3]

    @property
    def next(self):
        return self.days[3:4]


@pytest.fixture(scope="module")
def card_key(tmp_path_factory) -> Path:
    """One card key for every run of this file (kept outside the state folders)."""
    path = tmp_path_factory.mktemp("key") / "card.key"
    keys.load_or_create(path)
    return path


@pytest.fixture(scope="module")
def bundled(tmp_path_factory, card_key) -> Data:
    folder = tmp_path_factory.mktemp("bundled")
    days = []
    for day in BUNDLED_DAYS:
        table = pq.read_table(FIXTURES / f"txns-{day}.parquet")
        path = folder / f"txns-{day}.parquet"
        pq.write_table(table.take(pa.array(range(0, table.num_rows, STRIDE))), path)
        days.append(path)
    return Data(FIXTURES / "cards.csv", FIXTURES / "merchants.csv", days, card_key)


@pytest.fixture(scope="module")
def big(tmp_path_factory, card_key) -> Data:
    """A bigger data set (3,000 members, ~8,000 rows a day): a run of two days takes ~1 s."""
    folder = tmp_path_factory.mktemp("big")
    files = make_fixtures(folder, members=3000, days=4, seed=5)
    return Data(files[0], files[1], files[2:], card_key)


# ------------------------------------------------------------------------- processes
def child_env(key: Path, **extra) -> dict:
    env = dict(os.environ)
    for name in ("TXCORE_CRASH_AT", "TXCORE_FAIL_AT", "TXCORE_NO_EXTENSIONS",
                 "TXCORE_CARD_KEY_FILE"):
        env.pop(name, None)
    env["TXCORE_CARD_KEY_FILE"] = str(key)
    env.setdefault("OMP_NUM_THREADS", "1")  # trials run side by side: one Arrow thread each
    env.update(extra)
    return env


def run_args(data: Data, files, state_dir: Path, out_dir: Path, extra=()) -> list[str]:
    return ["run", "--rules", str(RULES), "--cards", str(data.cards), "--merchants",
            str(data.merchants), "--state", str(state_dir), "-o", str(out_dir), "--no-progress",
            *extra, *[str(f) for f in files]]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def cli(data: Data, args, **env) -> Result:
    """``python -m txcore ARGS`` in a child process."""
    p = subprocess.run([sys.executable, "-m", "txcore", *args], capture_output=True,
                       env=child_env(data.key, **env), timeout=300)
    return Result(p.returncode, p.stdout.decode(errors="replace"),
                  p.stderr.decode(errors="replace"))


def ok(result: Result, what="run") -> Result:
    assert result.returncode == 0, f"{what}: exit {result.returncode}\n{result.stderr}"
    return result


def in_parallel(fn, items) -> dict:
    """``{item: fn(item)}``, run on a thread pool; every failure reported, with its item."""
    results, failures = {}, []
    with ThreadPoolExecutor(WORKERS) as pool:
        futures = {item: pool.submit(fn, item) for item in items}
        for item, future in futures.items():
            try:
                results[item] = future.result()
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                failures.append(f"--- {item!r}: {type(exc).__name__}: {exc}")
    assert not failures, f"{len(failures)} of {len(futures)} trials failed:\n" + \
        "\n".join(failures)
    return results


# --------------------------------------------------------------- folders and their contents
def summary_view(path: Path) -> dict:
    return {k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items()
            if k not in VOLATILE}


def read_output(path: Path):
    if path.is_dir():
        return "<folder>"
    if path.name == "summary.json":
        return summary_view(path)
    if path.suffix == ".parquet":
        return pq.read_table(path)
    return path.read_bytes()


def contents(folder: Path) -> dict:
    """Every entry of OUTDIR (hidden ones too), outputs read as tables / summary dicts."""
    return {p.name: read_output(p) for p in sorted(folder.iterdir())}


def raw(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def same_output(actual, expected) -> bool:
    if isinstance(expected, pa.Table):
        return isinstance(actual, pa.Table) and actual.equals(expected)
    return actual == expected


def assert_same_contents(actual: dict, expected: dict, what: str):
    assert sorted(actual) == sorted(expected), f"{what}: OUTDIR holds other files than " \
                                               f"the uninterrupted run's"
    differ = [name for name in expected if not same_output(actual[name], expected[name])]
    details = {name: {k: (actual[name].get(k), v) for k, v in expected[name].items()
                      if actual[name].get(k) != v}
               for name in differ if isinstance(expected[name], dict)
               and isinstance(actual[name], dict)}
    assert not differ, f"{what}: {differ} differ from the uninterrupted run's {details or ''}"


def copy_tree(src: Path, dst: Path):
    dst.mkdir(parents=True, exist_ok=True)
    if src.exists():
        shutil.copytree(src, dst, dirs_exist_ok=True)


def snapshot(folder: Path) -> dict[str, bytes] | None:
    """The committed files of a state folder (without its lock and key)."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in NOT_STATE}


def generation(state_dir: Path) -> int:
    """The committed generation (0 when there is none yet)."""
    path = state_dir / "CURRENT"
    return json.loads(path.read_bytes())["generation"] if path.exists() else 0


def manifest_files(manifest_bytes: bytes | None) -> set[str]:
    if manifest_bytes is None:
        return set()
    return {f["name"] for f in json.loads(manifest_bytes)["files"].values()}


def state_view(state_dir: Path, key: Path) -> dict:
    """The committed state, loaded: comparable across runs that share the card key."""
    store = StateStore(state_dir, key_file=key)
    state = store.load()
    return {"generation": store.manifest["generation"], "latest": state.latest,
            "retention_days": state.retention_days, "counters": state.counters,
            "index": state.index,
            "ledger": {sha: {k: v for k, v in entry.items() if k != "run_id"}
                       for sha, entry in state.ledger.items()}}


def assert_same_state(actual: dict, expected: dict, what: str):
    for part, exp in expected.items():
        act = actual[part]
        if isinstance(exp, dict) and act != exp:
            wrong = sum(act.get(k) != v for k, v in exp.items()) + len(set(act) - set(exp))
            raise AssertionError(f"{what}: state {part} differs from the uninterrupted run's "
                                 f"({len(act)} vs {len(exp)} entries, {wrong} differ)")
        assert act == exp, f"{what}: state {part} is {act!r}, uninterrupted: {exp!r}"


def assert_clean_state_dir(state_dir: Path, what: str):
    """Only CURRENT, the files it names and PUBLISHED (the run id whose outputs were
    published): no *.tmp, no stale generation files."""
    names = {p.name for p in state_dir.iterdir()} - NOT_STATE - {"PUBLISHED"}
    wanted = {"CURRENT"} | manifest_files((state_dir / "CURRENT").read_bytes())
    assert names == wanted, f"{what}: leftovers in the state folder: {sorted(names - wanted)}"


# ------------------------------------------------------------------------ the references
@dataclass
class Reference:
    """An uninterrupted history: ``prior`` days, then the run under test, then ``next``."""

    data: Data
    base: Path                               # state/ and out/ after the prior days
    prior: list[Path]
    run_files: list[Path]
    after_run: dict = field(repr=False)      # OUTDIR after the run
    state_run: dict = field(repr=False)      # the state after the run
    after_next: dict = field(repr=False)     # OUTDIR after the next day's run
    state_next: dict = field(repr=False)
    steps: list[str]                         # the run's durable steps, in order
    seconds: float                           # the run's wall time (child process)


def build_reference(data: Data, folder: Path, prior) -> Reference:
    base = folder / "base"
    for day in prior:
        ok(cli(data, run_args(data, [day], base / "state", base / "out")), "prior day")
    (base / "out").mkdir(parents=True, exist_ok=True)
    copy_tree(base, folder / "ref")
    state_dir, out_dir = folder / "ref" / "state", folder / "ref" / "out"
    started = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", STEP_COUNTER,
                        *run_args(data, data.run, state_dir, out_dir)],
                       capture_output=True, env=child_env(data.key), timeout=300)
    seconds = time.perf_counter() - started
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0, err
    steps = json.loads(err.strip().splitlines()[-1].removeprefix("TXCORE_STEPS "))
    after_run, state_run = contents(out_dir), state_view(state_dir, data.key)
    ok(cli(data, run_args(data, data.next, state_dir, out_dir)), "reference next day")
    return Reference(data, base, list(prior), data.run, after_run, state_run, contents(out_dir),
                     state_view(state_dir, data.key), steps, seconds)


@pytest.fixture(scope="module")
def ref(bundled, tmp_path_factory) -> Reference:
    """DAY0, then DAY1 DAY2 (the run under test), then DAY3 — no crash."""
    return build_reference(bundled, tmp_path_factory.mktemp("ref"), bundled.prior)


@pytest.fixture(scope="module")
def ref_first(bundled, tmp_path_factory) -> Reference:
    """DAY1 DAY2 as the very first run into an empty state, then DAY3."""
    return build_reference(bundled, tmp_path_factory.mktemp("ref-first"), [])


@pytest.fixture(scope="module")
def ref_big(big, tmp_path_factory) -> Reference:
    return build_reference(big, tmp_path_factory.mktemp("ref-big"), big.prior)


# --------------------------------------------------------------------------- one trial
@dataclass
class Trial:
    """A fresh state and OUTDIR with the reference's prior days committed, no crash."""

    ref: Reference
    state_dir: Path
    out_dir: Path
    gen_before: int = 0
    state_before: dict | None = None
    out_before: dict | None = None

    @classmethod
    def start(cls, ref: Reference, folder: Path) -> Trial:
        """A copy of the reference's folders as they were after the prior days (committed
        by an uninterrupted run, without a crash)."""
        copy_tree(ref.base, folder)
        t = cls(ref, folder / "state", folder / "out")
        t.gen_before = generation(t.state_dir)
        t.state_before = snapshot(t.state_dir) or {}
        t.out_before = raw(t.out_dir)
        return t

    def args(self, files=None, extra=()):
        return run_args(self.ref.data, self.ref.run_files if files is None else files,
                        self.state_dir, self.out_dir, extra)

    def run(self, **env) -> Result:
        return cli(self.ref.data, self.args(), **env)

    def committed(self) -> bool:
        return generation(self.state_dir) > self.gen_before

    def check_interrupted(self, what: str) -> bool:
        """After a crash (before any other process touched the folders): the last committed
        state is intact unless the run committed; no partial output is visible.  Returns
        whether the run committed."""
        committed = self.committed()
        visible = {p.name: p for p in self.out_dir.iterdir() if not p.name.startswith(".")}
        assert not [n for n in visible if n.endswith(".tmp")], f"{what}: temp file in OUTDIR"
        if not committed:
            current = self.state_before.get("CURRENT")
            now = (self.state_dir / "CURRENT").read_bytes() \
                if (self.state_dir / "CURRENT").exists() else None
            if current is not None:
                assert now == current, f"{what}: not committed, yet CURRENT changed"
            for name in manifest_files(current):
                assert (self.state_dir / name).read_bytes() == self.state_before[name], \
                    f"{what}: committed state file {name} changed"
            seen = {n: p.read_bytes() for n, p in visible.items()}
            assert seen == self.out_before, (
                f"{what}: uncommitted run left visible outputs: "
                f"{sorted(n for n in seen if seen[n] != self.out_before.get(n))}")
        else:  # published by rename: what is visible of the run is whole and right
            for name, path in visible.items():
                if self.out_before.get(name) == path.read_bytes():
                    continue  # an earlier run's output (summary.json: until it is replaced)
                assert name in self.ref.after_run, f"{what}: unexpected output {name}"
                assert same_output(read_output(path), self.ref.after_run[name]), \
                    f"{what}: visible output {name} is not the uninterrupted run's"
        return committed

    def rerun_and_check(self, committed: bool, what: str, next_day=True):
        """The same command again, then (optionally) the next day: as if never interrupted."""
        r = self.run()
        if committed:
            assert r.returncode == 3 and "already committed" in r.stderr, \
                f"{what}: rerun after a committed run: exit {r.returncode}\n{r.stderr}"
        else:
            ok(r, f"{what}: rerun")
        self.check_like_reference(self.ref.after_run, self.ref.state_run, what)
        if next_day:
            ok(cli(self.ref.data, self.args(self.ref.data.next)), f"{what}: next day")
            self.check_like_reference(self.ref.after_next, self.ref.state_next,
                                      f"{what} + next day")

    def check_like_reference(self, outputs, state, what):
        assert_same_contents(contents(self.out_dir), outputs, what)
        assert_clean_state_dir(self.state_dir, what)
        assert_same_state(state_view(self.state_dir, self.ref.data.key), state, what)


# ----------------------------------------------------------- 1. a crash at every durable step
def crash_at_every_step(ref: Reference, folder: Path, skip=(), next_day=True):
    """Crash at step k = 1, 2, ... until a run goes through (k past the last step).

    ``skip``: prefixes of step names to leave out (steps another test covers already)."""
    n = len(ref.steps)
    assert n >= 5, ref.steps
    ks = [k for k in range(1, n + 1) if not ref.steps[k - 1].startswith(tuple(skip))] + [n + 1]

    def trial(k):
        what = f"crash at step {k} ({ref.steps[k - 1] if k <= n else 'none'})"
        t = Trial.start(ref, folder / f"k{k}")
        r = t.run(TXCORE_CRASH_AT=str(k))
        assert r.returncode in (CRASH_EXIT, 0), f"{what}: exit {r.returncode}\n{r.stderr}"
        committed = t.check_interrupted(what)
        assert r.returncode == CRASH_EXIT or committed, f"{what}: exit 0 without a commit"
        t.rerun_and_check(committed, what, next_day)
        return r.returncode, committed

    results = in_parallel(trial, ks)
    exits = [results[k][0] for k in ks]
    assert exits == [CRASH_EXIT] * (len(ks) - 1) + [0], \
        f"the run has {n} durable steps {ref.steps}, yet the exits were {exits}"
    committed = [results[k][1] for k in ks[:-1]]
    point = committed.index(True) if True in committed else len(committed)
    assert committed == [False] * point + [True] * (len(committed) - point), \
        f"commit is not one point in the run: {list(zip(ks, committed))}"
    assert 0 < point < len(committed), f"no step before or after the commit point: {ref.steps}"


def test_crash_at_every_durable_step_after_a_committed_day(ref, tmp_path):
    """The state holds a committed day (DAY0); the run of DAY1 DAY2 dies at each step."""
    crash_at_every_step(ref, tmp_path)


def test_crash_at_every_state_step_of_the_first_run_into_an_empty_state(ref_first, tmp_path):
    """The very first run into a new state folder dies at each step that touches the state
    (writing outputs and publishing them are as in the test above)."""
    crash_at_every_step(ref_first, tmp_path, next_day=False,
                        skip=("output:", "publish:", "staging-removed", "commit:synced"))


def test_crash_at_a_named_step(ref, tmp_path):
    """``TXCORE_CRASH_AT`` also takes a step's name: the commit point itself."""
    name = "commit" if "commit" in ref.steps else ref.steps[len(ref.steps) // 2]
    t = Trial.start(ref, tmp_path)
    r = t.run(TXCORE_CRASH_AT=name)
    assert r.returncode == CRASH_EXIT, r.stderr
    t.rerun_and_check(t.check_interrupted(f"crash at {name}"), f"crash at {name}",
                      next_day=False)


def test_a_committed_runs_outputs_are_published_by_whatever_runs_next(ref, tmp_path):
    """Killed while publishing: the next day's run (not a rerun) finishes the publication."""
    publishing = [k for k, name in enumerate(ref.steps, 1) if name.startswith("publish:")]
    k = publishing[0] if publishing else len(ref.steps)
    t = Trial.start(ref, tmp_path)
    assert t.run(TXCORE_CRASH_AT=str(k)).returncode == CRASH_EXIT
    assert t.check_interrupted(f"crash at step {k}"), "the crash was after the commit point"
    ok(cli(ref.data, t.args(ref.data.next)), "the next day's run")
    t.check_like_reference(ref.after_next, ref.state_next, "next day after a crash")


# ----------------------------------------------------------- 2. SIGKILL at random moments
def test_sigkill_at_random_moments_under_load(ref_big, tmp_path):
    rng = random.Random(20151031)
    trials = 6
    # stratified over the run's wall time (interpreter start-up included), jittered
    # (up to 1.5 times it: trials run side by side and slow each other down; a run that
    # finished before its kill must pass the same checks)
    delays = [ref_big.seconds * (0.2 + 1.3 * (i + rng.random()) / trials)
              for i in range(trials)]
    one_at_a_time = threading.Lock()  # the killed runs do not share the CPU with each other

    def trial(i):
        delay = delays[i]
        what = f"SIGKILL after {delay:.2f} s"
        t = Trial.start(ref_big, tmp_path / f"t{i}")
        with one_at_a_time:
            p = subprocess.Popen([sys.executable, "-m", "txcore", *t.args()],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env=child_env(ref_big.data.key))
            try:
                p.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
            rc = p.wait()
        assert rc in (0, -signal.SIGKILL), f"{what}: exit {rc}"
        committed = t.check_interrupted(what)
        assert rc != 0 or committed, f"{what}: exit 0 without a commit"
        t.rerun_and_check(committed, what)
        return rc, committed

    results = in_parallel(trial, range(trials))
    assert any(rc == -signal.SIGKILL for rc, _ in results.values()), results


# ------------------------------------------------------------------- 3. disk full, I/O error
def fail_at(ref: Reference, folder: Path, k: int, code: str):
    what = f"{code} at step {k} ({ref.steps[k - 1]})"
    t = Trial.start(ref, folder / f"{code}-{k}")
    r = t.run(TXCORE_FAIL_AT=f"{k}:{code}")
    err = r.stderr.strip()
    assert r.returncode == 4, f"{what}: exit {r.returncode}\n{r.stderr}"
    assert "Traceback" not in err and len(err.splitlines()) == 1, f"{what}: stderr:\n{err}"
    assert err.startswith("txcore: ") and os.strerror(getattr(errno, code)) in err, err
    committed = t.committed()
    if not committed:
        after = snapshot(t.state_dir)
        changed = sorted(n for n in set(after) | set(t.state_before)
                         if after.get(n) != t.state_before.get(n))
        assert not changed, f"{what}: the failed run changed the state folder: {changed}"
        left = sorted(p.name for p in t.out_dir.iterdir())
        assert raw(t.out_dir) == t.out_before and len(left) == len(t.out_before), \
            f"{what}: the failed run left files in OUTDIR: {left}"
        assert "is committed" not in err, f"{what}: {err}"
    t.rerun_and_check(committed, what, next_day=False)
    if committed:
        assert re.search(r"\bcommitted\b", err) and not CLAIMS_NOT_COMMITTED.search(err), \
            f"{what}: the run committed, but the message says otherwise: {err}"
    return committed


def test_disk_full_or_io_error_at_every_durable_step(ref, tmp_path):
    n = len(ref.steps)
    cases = [(k, "ENOSPC") for k in range(1, n + 1)]
    cases += [(k, "EIO") for k in sorted({1, n // 2, n})]
    results = in_parallel(lambda case: fail_at(ref, tmp_path, *case), cases)
    committed = [results[(k, "ENOSPC")] for k in range(1, n + 1)]
    assert True in committed and False in committed, list(zip(ref.steps, committed))


def test_a_failure_past_the_last_step_is_no_failure(ref, tmp_path):
    t = Trial.start(ref, tmp_path)
    ok(t.run(TXCORE_FAIL_AT=f"{len(ref.steps) + 1}:ENOSPC"))
    t.check_like_reference(ref.after_run, ref.state_run, "no failure")


# ----------------------------------------------------------------- 4. a damaged state
@pytest.fixture(scope="module")
def committed_state(bundled, tmp_path_factory) -> Path:
    """A state with two committed runs (DAY0, then DAY1)."""
    folder = tmp_path_factory.mktemp("committed")
    for day in bundled.days[:2]:
        ok(cli(bundled, run_args(bundled, [day], folder / "state", folder / "out")))
    return folder / "state"


@pytest.fixture
def damaged(committed_state, tmp_path) -> Path:
    """A copy of :func:`committed_state` to damage."""
    return Path(shutil.copytree(committed_state, tmp_path / "state"))


#: the state folder's kinds of files: index segments, counter files, strings, ledger
KINDS = ["seg", "ctr", "strings", "ledger"]


def state_file(state_dir: Path, kind: str) -> Path:
    """The state's file of ``kind`` (of segments and counter files: the oldest, first
    bucket — a file every run of this module reads)."""
    if kind == "CURRENT":
        return state_dir / "CURRENT"
    found = sorted(p for p in state_dir.iterdir() if p.name.startswith(f"{kind}."))
    assert found, kind
    return found[0]


def inside(path: Path) -> int | None:
    """Where a flipped byte of ``path`` is read by every run: in a segment, among the txn
    digests every run merges with its own (the header + 8 bytes); elsewhere the middle."""
    return HEADER + 8 if path.name.startswith("seg.") else None


def flip(path: Path, offset: int | None = None):
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if offset is None else offset] ^= 0x01
    path.write_bytes(bytes(data))


def assert_refused(bundled, state_dir, tmp_path, pattern, name=None, extra=()) -> str:
    """``txcore run`` on ``state_dir`` exits 2 with a one-line message; writes nothing."""
    before = snapshot(state_dir)
    out = tmp_path / "out"
    r = cli(bundled, run_args(bundled, bundled.days[2:3], state_dir, out, extra))
    err = r.stderr.strip()
    assert r.returncode == 2, f"exit {r.returncode}\n{r.stderr}"
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert re.search(pattern, err, re.I), err
    if name:
        assert name in err, f"the message does not name {name}: {err}"
    assert not out.exists() or not list(out.iterdir()), sorted(p.name for p in out.iterdir())
    assert snapshot(state_dir) == before, "the refused state was changed"
    return err


@pytest.mark.parametrize("kind", [*KINDS, "CURRENT"])
def test_a_flipped_byte_in_the_state_is_refused(bundled, damaged, kind, tmp_path):
    path = state_file(damaged, kind)
    flip(path, inside(path))
    assert_refused(bundled, damaged, tmp_path, r"checksum|corrupt", path.name)


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_generation_file_is_refused(bundled, damaged, kind, tmp_path):
    path = state_file(damaged, kind)
    path.unlink()
    assert_refused(bundled, damaged, tmp_path,
                   r"checksum|corrupt|missing|cannot be read|no such file", path.name)


def test_a_torn_manifest_is_refused(bundled, damaged, tmp_path):
    path = damaged / "CURRENT"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    assert_refused(bundled, damaged, tmp_path, r"checksum|corrupt|torn", "CURRENT")


@pytest.mark.parametrize("generations", [1, 2])
def test_generation_files_without_a_manifest_are_refused(ref, committed_state, tmp_path,
                                                         generations):
    """CURRENT lost: the state is incomplete, not new (a new state would price files twice)."""
    state_dir = tmp_path / "state"
    shutil.copytree(ref.base / "state" if generations == 1 else committed_state, state_dir)
    (state_dir / "CURRENT").unlink()
    assert_refused(ref.data, state_dir, tmp_path, r"CURRENT|manifest")


def test_another_card_key_is_refused(bundled, damaged, tmp_path):
    other = tmp_path / "other.key"
    keys.load_or_create(other)
    assert_refused(bundled, damaged, tmp_path, r"card key", extra=["--card-key", str(other)])


def undetected_flips(bundled, damaged, path, offsets) -> list[int]:
    """Offsets of ``path`` where a flipped byte is NOT refused when the state is opened."""
    good = path.read_bytes()
    missed = []
    for offset in offsets:
        flip(path, offset)
        try:
            StateStore(damaged, key_file=bundled.key).load()
        except StateError:
            pass
        else:
            missed.append(offset)
        path.write_bytes(good)
    return missed


def test_every_flipped_byte_of_the_manifest_is_detected(bundled, damaged):
    path = damaged / "CURRENT"
    missed = undetected_flips(bundled, damaged, path, range(len(path.read_bytes())))
    assert not missed, f"flips at {missed} of CURRENT went unnoticed"


@pytest.mark.parametrize("kind", KINDS)
def test_flipped_bytes_anywhere_in_a_state_file_are_detected(bundled, damaged, kind):
    path = state_file(damaged, kind)
    size = len(path.read_bytes())
    missed = undetected_flips(bundled, damaged, path,
                              sorted({0, size - 1, *range(0, size, max(1, size // 40))}))
    assert not missed, f"flips at {missed} of {path.name} went unnoticed"


@pytest.mark.parametrize("kind", KINDS)
def test_a_truncated_state_file_is_refused(bundled, damaged, kind, tmp_path):
    path = state_file(damaged, kind)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert_refused(bundled, damaged, tmp_path, r"checksum|corrupt|truncated", path.name)


@pytest.mark.parametrize("kind", ["seg", "ctr"])
def test_a_file_swapped_in_from_another_generation_is_refused(bundled, damaged, kind,
                                                              tmp_path):
    """A segment or counter file of an older generation, renamed to a committed one's name
    (same bucket, well-formed, its own checksums right) is not the file committed."""
    older = {p.name: p.read_bytes() for p in damaged.iterdir() if p.name.startswith(kind)}
    ok(cli(bundled, run_args(bundled, bundled.days[2:3], damaged, tmp_path / "day2")))
    current = json.loads((damaged / "CURRENT").read_text())
    newest = max((f for f in current["files"].values() if f["name"].startswith(kind)
                  and f["generation"] == current["generation"]), key=lambda f: f["name"])
    bucket_part = newest["name"].rsplit(".", 2)[-2]  # "b02"
    old_name = next(n for n in sorted(older) if f".{bucket_part}." in n)
    (damaged / newest["name"]).write_bytes(older[old_name])
    assert_refused(bundled, damaged, tmp_path, r"checksum|corrupt|another generation",
                   newest["name"])


def test_a_corrupt_record_is_refused_by_the_run_that_reads_it_and_by_verify(
        bundled, damaged, tmp_path):
    """A flipped byte among a segment's records (not its txn digests, which every run
    reads): ``txcore state verify`` refuses the state, and so does any run whose rows look
    that record up — here a file repeating DAY1's txn ids, every one a duplicate."""
    manifest = json.loads((damaged / "CURRENT").read_text())
    seg = max((f for f in manifest["files"].values() if f.get("kind") == "segment"
               and f["generation"] == 2), key=lambda f: f["entries"])
    path = damaged / seg["name"]
    flip(path, HEADER + 16 * seg["entries"] + 56 * (seg["entries"] // 2) + 3)
    r = cli(bundled, ["state", "verify", str(damaged)])
    assert r.returncode == 2 and seg["name"] in r.stderr and "Traceback" not in r.stderr, \
        r.stderr
    again = tmp_path / "txns-again.parquet"
    table = pq.read_table(bundled.days[1])
    pq.write_table(table.slice(1), again)  # another file (new sha256), DAY1's txn ids
    before = snapshot(damaged)
    r = cli(bundled, run_args(bundled, [again], damaged, tmp_path / "out"))
    assert r.returncode == 2 and seg["name"] in r.stderr and "checksum" in r.stderr, r.stderr
    assert snapshot(damaged) == before


def test_state_info_and_verify(bundled, committed_state, tmp_path):
    r = ok(cli(bundled, ["state", "info", str(committed_state)]), "state info")
    for word in ("generation  2", "buckets     4", "segments", "counters", "bytes on disk",
                 "2015-10-30 .. 2015-10-30", "2015-10-31 .. 2015-10-31"):
        assert word in r.stdout, r.stdout
    assert not re.search(r"\d{13,}", r.stdout), "a long digit run (a card number?) in info"
    r = ok(cli(bundled, ["state", "verify", str(committed_state)]), "state verify")
    assert "match their checksums" in r.stdout


def _as_format3(state_dir: Path, key: Path):
    """Rewrite a state folder as txcore wrote it before format 4 (two Parquet tables, a
    ledger, a format-3 manifest), from its whole loaded state."""
    import hashlib
    store = StateStore(state_dir, key_file=key)
    state = store.load()
    counters, index = state.tables()
    gen = store.manifest["generation"]
    files = {}
    for kind, table in (("counters", counters), ("index", index)):
        name = f"{kind}.{gen:06d}.parquet"
        pq.write_table(table, state_dir / name, compression="zstd")
        files[kind] = {"name": name,
                       "sha256": hashlib.sha256((state_dir / name).read_bytes()).hexdigest()}
    name = f"ledger.{gen:06d}.json"
    (state_dir / name).write_bytes(
        (json.dumps(state.ledger, indent=1, sort_keys=True) + "\n").encode())
    files["ledger"] = {"name": name,
                       "sha256": hashlib.sha256((state_dir / name).read_bytes()).hexdigest()}
    for p in state_dir.iterdir():
        if p.name.startswith(("seg.", "ctr.", "strings.")) or (
                p.name.startswith("ledger.") and p.name != name):
            p.unlink()
    manifest = {"format": 3, "generation": gen, "run_id": store.manifest["run_id"],
                "latest": store.manifest["latest"],
                "key_fingerprint": store.manifest["key_fingerprint"], "files": files,
                "counts": {"counters": counters.num_rows, "index": index.num_rows,
                           "ledger": len(state.ledger)}, "outputs": None,
                "retention_days": state.retention_days}
    body = json.dumps({k: v for k, v in manifest.items()}, sort_keys=True).encode()
    manifest["checksum"] = hashlib.sha256(body).hexdigest()
    (state_dir / "CURRENT").write_text(json.dumps(manifest, indent=1) + "\n")


def test_a_format3_state_is_refused_until_upgraded_and_upgrade_survives_a_crash_anywhere(
        bundled, committed_state, tmp_path):
    expected = state_view(committed_state, bundled.key)
    old = tmp_path / "old"
    shutil.copytree(committed_state, old)
    _as_format3(old, bundled.key)
    assert_refused(bundled, old, tmp_path, r"txcore state upgrade", "CURRENT")
    r = ok(cli(bundled, ["state", "info", str(old)]))
    assert "format      3" in r.stdout
    step = 1
    while True:  # crash the upgrade at its 1st, 2nd, ... durable step; then upgrade again
        trial = tmp_path / f"crash{step}"
        shutil.copytree(old, trial)
        r = cli(bundled, ["state", "upgrade", str(trial)], TXCORE_CRASH_AT=str(step))
        if r.returncode == 0:
            break
        assert r.returncode == CRASH_EXIT, r.stderr
        fmt = json.loads((trial / "CURRENT").read_text())["format"]
        assert fmt in (3, 4)
        ok(cli(bundled, ["state", "upgrade", str(trial)]), f"upgrade after crash at {step}")
        got = state_view(trial, bundled.key)
        assert_same_state({**got, "generation": 3}, {**expected, "generation": 3},
                          f"upgraded after a crash at step {step}")
        assert not [p for p in trial.iterdir() if p.suffix == ".parquet"]
        step += 1
    assert step > 5, "the upgrade took fewer durable steps than it writes files"
    assert "upgraded from state format 3 to 4" in r.stdout
    got = state_view(trial, bundled.key)
    assert got["generation"] == 3
    assert_same_state({**got, "generation": 2}, expected, "upgraded")
    assert "nothing to do" in ok(cli(bundled, ["state", "upgrade", str(trial)])).stdout
    # the next day on the upgraded state prices as on the state that was never format 3
    plain = tmp_path / "plain"
    shutil.copytree(committed_state, plain)
    ok(cli(bundled, run_args(bundled, bundled.days[2:3], trial, tmp_path / "a")))
    ok(cli(bundled, run_args(bundled, bundled.days[2:3], plain, tmp_path / "b")))
    assert raw(tmp_path / "a")["txns-2015-11-01.priced.parquet"] == \
        raw(tmp_path / "b")["txns-2015-11-01.priced.parquet"]
    assert_same_state({**state_view(trial, bundled.key), "generation": 0},
                      {**state_view(plain, bundled.key), "generation": 0}, "the day after")


def test_a_format3_manifest_without_a_mac_may_not_point_a_recovery_anywhere(
        bundled, committed_state, tmp_path):
    """Format 3's checksum was a plain sha256 (anyone can recompute it): such a manifest
    is read only to be upgraded, and not when it names outputs to publish."""
    import hashlib
    old = tmp_path / "old"
    shutil.copytree(committed_state, old)
    _as_format3(old, bundled.key)
    manifest = json.loads((old / "CURRENT").read_text())
    manifest["outputs"] = {"dir": str(tmp_path / "elsewhere"), "staging": "x", "names": ["y"]}
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    manifest["checksum"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    (old / "CURRENT").write_text(json.dumps(manifest))
    r = cli(bundled, ["state", "upgrade", str(old)])
    assert r.returncode == 2 and "did not finish publishing" in r.stderr, r.stderr
    assert json.loads((old / "CURRENT").read_text())["format"] == 3


def test_expired_segments_are_dropped_and_a_crash_while_dropping_them_loses_nothing(
        bundled, tmp_path):
    """With a 1-day window, DAY0's segments leave the window at DAY2; dropping them is
    cleanup after the commit point: a crash there leaves only unreferenced files, which
    the next run removes."""
    def three_days(folder, **env):
        for i, day in enumerate(bundled.days[:3]):
            r = cli(bundled, run_args(bundled, [day], folder, tmp_path / f"o-{folder.name}-{i}",
                                      ["--retention-days", "1"]), **(env if i == 2 else {}))
        return r

    plain, crashed = tmp_path / "plain", tmp_path / "crashed"
    ok(three_days(plain))
    manifest = json.loads((plain / "CURRENT").read_text())
    assert {f["generation"] for f in manifest["files"].values() if f.get("kind") == "segment"} \
        == {2, 3}, "DAY0's segments are not dropped"
    assert not [p for p in plain.iterdir() if p.name.startswith("seg.000001.")]
    assert three_days(crashed, TXCORE_CRASH_AT="state:expire-segment").returncode == CRASH_EXIT
    assert [p for p in crashed.iterdir() if p.name.startswith("seg.000001.")]
    ok(cli(bundled, run_args(bundled, bundled.days[3:4], crashed, tmp_path / "c3",
                             ["--retention-days", "1"])))
    ok(cli(bundled, run_args(bundled, bundled.days[3:4], plain, tmp_path / "p3",
                             ["--retention-days", "1"])))
    assert not [p for p in crashed.iterdir() if p.name.startswith("seg.000001.")]
    assert_same_state({**state_view(crashed, bundled.key), "generation": 0},
                      {**state_view(plain, bundled.key), "generation": 0}, "after expiry")


# ------------------------------------------------------------ 5. leftovers of dead runs
def test_leftover_temp_files_are_cleaned_by_the_next_run(ref, tmp_path):
    t = Trial.start(ref, tmp_path)
    stale = t.out_dir / f"{STAGING}zzz"
    stale.mkdir()
    (stale / "txns-2015-10-31.priced.parquet").write_bytes(b"half a file")
    (t.state_dir / "CURRENT.tmp").write_bytes(b'{"torn": ')
    (t.state_dir / "counters.999999.parquet").write_bytes(b"never committed")
    ok(t.run())
    assert not stale.exists()
    assert not (t.state_dir / "CURRENT.tmp").exists()
    assert not (t.state_dir / "counters.999999.parquet").exists()
    t.check_like_reference(ref.after_run, ref.state_run, "after leftovers")


# ----------------------------------------------------------------- 6. one run per state
def test_a_second_run_on_a_locked_state_is_refused(ref, tmp_path):
    t = Trial.start(ref, tmp_path)
    with open(t.state_dir / "LOCK", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        r = t.run()
        assert r.returncode == 2 and "another txcore run" in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
        assert snapshot(t.state_dir) == t.state_before
        assert raw(t.out_dir) == t.out_before and len(list(t.out_dir.iterdir())) == \
            len(t.out_before)
    ok(t.run(), "once the lock is released")
    t.check_like_reference(ref.after_run, ref.state_run, "after the lock")
