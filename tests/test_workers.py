"""``--workers``: the stages of a run side by side give the one-worker output."""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest

import txcore
from conftest import FIXTURES, RULES
from txcore.errors import InputRefused

DAYS = sorted(FIXTURES.glob("txns-*.parquet"))


def run(tmp_path, name, files, workers, backend="cython"):
    return txcore.run(files, rules=RULES, cards=FIXTURES / "cards.csv",
                      merchants=FIXTURES / "merchants.csv", out_dir=tmp_path / name / "out",
                      state_dir=tmp_path / name / "state", progress=False, workers=workers,
                      batch_size=4096, backend=backend)


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
    # the state committed with the index built beside its writing is the same state (but
    # for the card and txn digests: each new state folder draws its own key)
    for table in ("index", "counters"):
        (a,), (b,) = [sorted((tmp_path / n / "state").glob(f"{table}.*.parquet"))[-1:]
                      for n in ("one", "two")]
        a, b = (pq.read_table(f).drop_columns([c for c in ("txn", "card")
                                               if c in pq.read_schema(f).names])
                for f in (a, b))
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
