"""A worker process killed mid-run: the run fails cleanly (exit 4), nothing is committed,
and the rerun gives the uninterrupted output."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import FIXTURES, RULES
from test_plan import assert_same_run

DAYS = sorted(FIXTURES.glob("txns-*.parquet"))


def cli(tmp_path, name, *extra, env=None):
    return subprocess.run(
        [sys.executable, "-m", "txcore", "run", "--rules", str(RULES),
         "--cards", str(FIXTURES / "cards.csv"), "--merchants", str(FIXTURES / "merchants.csv"),
         "-o", str(tmp_path / name / "out"), "--state", str(tmp_path / name / "state"),
         "--card-key", str(tmp_path / "card.key"), "--batch-size", "8192", "--no-progress",
         *extra, *map(str, DAYS[:3])],
        capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=300)


def run_of(tmp_path, name):
    return (tmp_path / name / "out", tmp_path / name / "state",
            json.loads((tmp_path / name / "out" / "summary.json").read_text()))


@pytest.mark.parametrize("task", ["plan:encode_chunk", "plan:price_bucket",
                                  "plan:assemble_chunk"])
def test_a_killed_worker_fails_the_run_and_commits_nothing(tmp_path, task):
    one = cli(tmp_path, "one")
    assert one.returncode == 0, one.stderr
    killed = cli(tmp_path, "two", "--workers", "2", env={"TXCORE_KILL_AT": task})
    assert killed.returncode == 4, killed.stderr
    assert "worker process died" in killed.stderr and "nothing of this run was committed" \
        in killed.stderr
    out = tmp_path / "two" / "out"
    assert sorted(p.name for p in out.iterdir()) == []  # no output, no staging left
    current = tmp_path / "two" / "state" / "CURRENT"  # the state is as it was: empty
    assert not current.exists() or json.loads(current.read_text())["generation"] == 0
    rerun = cli(tmp_path, "two", "--workers", "2")
    assert rerun.returncode == 0, rerun.stderr
    assert_same_run(run_of(tmp_path, "one"), run_of(tmp_path, "two"))
