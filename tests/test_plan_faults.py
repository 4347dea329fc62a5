"""A worker process killed mid-run: the run fails cleanly (exit 4), nothing is committed,
and the rerun gives the uninterrupted output."""
from __future__ import annotations

import json

import pytest

from conftest import FIXTURES
from test_plan import assert_same_run, cli, run_of

DAYS = sorted(FIXTURES.glob("txns-*.parquet"))


@pytest.mark.parametrize("task", ["plan:encode_chunk", "plan:price_bucket",
                                  "plan:assemble_chunk"])
def test_a_killed_worker_fails_the_run_and_commits_nothing(tmp_path, task):
    one = cli(tmp_path, "one", DAYS[:3])
    assert one.returncode == 0, one.stderr
    killed = cli(tmp_path, "two", DAYS[:3], "--workers", "2", "--engine", "processes",
                 env={"TXCORE_KILL_AT": task})
    assert killed.returncode == 4, killed.stderr
    assert "worker process died" in killed.stderr and "nothing of this run was committed" \
        in killed.stderr
    out = tmp_path / "two" / "out"
    assert sorted(p.name for p in out.iterdir()) == []  # no output, no staging left
    current = tmp_path / "two" / "state" / "CURRENT"  # the state is as it was: empty
    assert not current.exists() or json.loads(current.read_text())["generation"] == 0
    rerun = cli(tmp_path, "two", DAYS[:3], "--workers", "2", "--engine", "processes")
    assert rerun.returncode == 0, rerun.stderr
    assert_same_run(run_of(tmp_path, "one"), run_of(tmp_path, "two"))
