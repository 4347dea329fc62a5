"""Command-line options at and beyond their bounds: refused with exit 2 stating the range,
never a traceback, and within them every backend agrees (docs/business-date.md)."""
from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

import txcore
from conftest import FIXTURES, RULES, batch_of, row
from txcore.cli import main
from txcore.io.reader import MAX_BATCH_SIZE as MAX_BATCH
from txcore.pipeline import MAX_WORKERS
from txcore.state.memory import RETENTION_DAYS_RANGE

LO, HI = RETENTION_DAYS_RANGE
COMMON = ["--rules", str(RULES), "--cards", str(FIXTURES / "cards.csv"), "--no-progress"]


def _input(tmp_path, rows, name="in.parquet"):
    path = tmp_path / name
    pq.write_table(pa.Table.from_batches([batch_of(rows)]), path)
    return path


@pytest.mark.parametrize("value", ["-1", "0", str(HI + 1), "999999", "2147483648",
                                   "9223372036854775808", "４５", "4.5", "", "1e3"])
def test_retention_days_out_of_range_is_refused_with_the_range(tmp_path, capfd, value):
    day = _input(tmp_path, [row()])
    with pytest.raises(SystemExit) as exc:
        main(["run", *COMMON, "--state", str(tmp_path / "st"), "-o", str(tmp_path / "o"),
              f"--retention-days={value}", str(day)])
    assert exc.value.code == 2
    assert f"from {LO} to {HI:,}" in capfd.readouterr().err
    assert not (tmp_path / "st").exists()  # refused before anything was touched
    with pytest.raises(txcore.errors.UsageError, match=f"from {LO} to {HI:,}"):
        txcore.run([day], rules=RULES, cards=FIXTURES / "cards.csv", out_dir=tmp_path / "o",
                   retention_days=int(value) if value.lstrip("-").isascii()
                   and value.lstrip("-").isdigit() else value, progress=False)


@pytest.mark.parametrize("engine", ["python", "cython", "numba"])
def test_retention_at_its_bounds_on_every_backend(tmp_path, engine):
    """A txn_id seen exactly ``retention`` days before is still a duplicate; one day more
    and it is free again.  (-1 used to price both rows of a txn_id.)"""
    for days in (LO, HI):
        first = dt.date(2015, 10, 29)
        rows = [row(txn_id="A", ts=f"{first}T10:00+08:00"),
                row(txn_id="A", ts=f"{first + dt.timedelta(days=days)}T10:00+08:00"),
                row(txn_id="B", ts=f"{first}T11:00+08:00"),
                row(txn_id="B", ts=f"{first + dt.timedelta(days=days + 1)}T11:00+08:00")]
        s = txcore.run([_input(tmp_path, rows)], rules=RULES, cards=FIXTURES / "cards.csv",
                       out_dir=tmp_path / f"o{engine}{days}", retention_days=days,
                       backend=engine, business_date=dt.date(2030, 1, 1), progress=False)
        assert s["rejected_by_reason"] == {"duplicate_txn_id": 1}, days


OPTIONS = {
    "--retention-days": st.one_of(st.integers(LO - 2, LO + 1), st.integers(HI - 1, HI + 2),
                                  st.integers(-2**64, 2**64)),
    "--batch-size": st.one_of(st.integers(-2, 3), st.integers(MAX_BATCH - 1, MAX_BATCH + 1),
                              st.integers(-2**64, 2**64)),
    "--workers": st.one_of(st.integers(-2, 3), st.integers(62, 66), st.integers(-2**64, 2**64)),
    "--business-date": st.one_of(st.dates(), st.sampled_from(["0000-01-01", "10000-01-01",
                                                              "2015-02-29", "2015-10-32"])),
}


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_option_values_at_and_beyond_their_bounds_exit_0_or_2(tmp_path_factory, data):
    """Random values of each numeric or date option, run through the command line: exit 0
    when the value is within its bounds, exit 2 when not — never a traceback."""
    tmp = tmp_path_factory.mktemp("opt")
    day = _input(tmp, [row(), row(txn_id="T2", ts="2015-10-30T10:00+08:00")])
    name = data.draw(st.sampled_from(sorted(OPTIONS)))
    value = data.draw(OPTIONS[name])
    engine = data.draw(st.sampled_from(["python", "cython", "numba"]))
    event(f"option {name}")
    args = ["run", *COMMON, "--backend", engine, "--state", str(tmp / "st"), "-o",
            str(tmp / "o"), f"{name}={value}", str(day)]
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    if name == "--retention-days":
        ok = LO <= value <= HI
    elif name == "--batch-size":
        ok = 1 <= value <= MAX_BATCH
    elif name == "--workers":
        ok = 1 <= value <= MAX_WORKERS
    else:
        ok = isinstance(value, dt.date)
    event(f"{'within' if ok else 'beyond'} bounds")
    assert code == (0 if ok else 2), (name, value)
