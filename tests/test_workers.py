"""``--workers``: the stages of a run side by side give the one-worker output."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest

import txcore
from conftest import FIXTURES, RULES
from txcore.errors import InputRefused
from txcore.state.store import StateStore

DAYS = sorted(FIXTURES.glob("txns-*.parquet"))


def key(tmp_path):
    """One card key for every run of a test (a state folder draws its own otherwise)."""
    return tmp_path / "card.key"


def run(tmp_path, name, files, workers, backend="cython"):
    return txcore.run(files, rules=RULES, cards=FIXTURES / "cards.csv",
                      merchants=FIXTURES / "merchants.csv", out_dir=tmp_path / name / "out",
                      state_dir=tmp_path / name / "state", progress=False, workers=workers,
                      batch_size=4096, backend=backend, key_file=key(tmp_path))


@pytest.mark.parametrize("backend", ["cython", "python"])
def test_two_workers_give_the_one_worker_outputs(tmp_path, backend):
    files = DAYS[:2] if backend == "python" else DAYS
    one, two = run(tmp_path, "one", files, 1, backend), run(tmp_path, "two", files, 2, backend)
    assert one["digest"] == two["digest"] and one["rows"] == two["rows"]
    assert one["by_kind"] == two["by_kind"]
    for i in one["inputs"]:
        for kind in ("priced_output", "rejects_output"):
            a = pq.read_table(tmp_path / "one" / "out" / i[kind])
            b = pq.read_table(tmp_path / "two" / "out" / i[kind])
            assert a.equals(b), i[kind]
    # the state committed by a two-worker run is the same state (both runs share a card
    # key, so their digests agree)
    tables = []
    for n in ("one", "two"):
        counters, index = StateStore(tmp_path / n / "state", key(tmp_path)).load().tables()
        tables.append((counters.sort_by([("card", "ascending"), ("waiver_id", "ascending"),
                                         ("month", "ascending")]),
                       index.sort_by([("txn", "ascending")])))
    for (a, b), table in zip(zip(*tables), ("counters", "index")):
        assert a.num_rows > 0 and a.equals(b), table


def test_a_bad_file_read_by_the_reader_thread_stops_the_run(tmp_path):
    """A file found corrupt while being read in the background: exit 3, nothing committed."""
    bad = tmp_path / "bad.parquet"
    data = DAYS[0].read_bytes()
    bad.write_bytes(data[: len(data) // 2] + data[-2000:])  # a hole in the middle
    with pytest.raises(InputRefused):
        run(tmp_path, "bad", [DAYS[1], bad], 2)
    assert not list((tmp_path / "bad" / "out").glob("*.parquet"))
    # nothing of the good day was committed either: it is accepted now, not refused
    ok = run(tmp_path, "bad", [DAYS[1]], 2)
    assert ok["rows"]["input"] == pq.read_metadata(DAYS[1]).num_rows
