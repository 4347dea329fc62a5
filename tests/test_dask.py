"""The plan on Dask: a real ``distributed.LocalCluster`` of worker processes.

The same streams as ``test_plan.py`` priced on the cluster must give what one process
gives, byte for byte; ``--engine dask`` starts (and closes) its own cluster; a worker
lost mid-run has its task rerun elsewhere, and the output is the uninterrupted one.
"""
from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, RULES
from test_plan import (SETTINGS, assert_same_run, cli, crossing_streams, price_with, run_of,
                       stream_run)

distributed = pytest.importorskip("distributed")  # the [dask] extra: README's test command

from txcore.plan.executors import DaskCluster  # noqa: E402

DAYS = sorted(FIXTURES.glob("txns-*.parquet"))


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes, one thread each; closed (and its processes gone) after."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as lc, distributed.Client(lc) as client:
        pids = [w.process.pid for w in lc.workers.values()]
        assert len(pids) == 2 and all(pids)
        executor = DaskCluster(client=client)
        executor.address = lc.scheduler_address
        yield executor
    for pid in pids:  # nothing the test started outlives it
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@settings(SETTINGS, max_examples=int(os.environ.get("TXCORE_PLAN_EXAMPLES", 25)) // 2 + 1)
@given(data=crossing_streams(), cut=st.integers(0, 45), group=st.integers(1, 6),
       batch_size=st.integers(1, 8))
def test_dask_prices_exactly_as_one_process(tmp_path_factory, cluster, data, cut, group,
                                            batch_size):
    tmp = tmp_path_factory.mktemp("dask")
    files, first, cards = stream_run(tmp, data, cut, group)
    one = price_with(tmp, "one", files, first, "local", 1, batch_size, cards)
    assert_same_run(one, price_with(tmp, "dask", files, first, cluster, 2, batch_size, cards))


def test_engine_dask_starts_its_cluster_and_gives_the_one_worker_output(tmp_path):
    one = cli(tmp_path, "one", DAYS[:3])
    assert one.returncode == 0, one.stderr
    dask = cli(tmp_path, "dask", DAYS[:3], "--engine", "dask", "--workers", "2")
    assert dask.returncode == 0, dask.stderr
    assert_same_run(run_of(tmp_path, "one"), run_of(tmp_path, "dask"))


def test_a_lost_dask_worker_has_its_task_rerun(tmp_path):
    """SIGKILL of the worker pricing a card bucket: Dask reruns the task on a worker the
    nanny restarts; the run commits the uninterrupted output."""
    one = cli(tmp_path, "one", DAYS[:3])
    assert one.returncode == 0, one.stderr
    marker = tmp_path / "killed-once"
    lost = cli(tmp_path, "lost", DAYS[:3], "--engine", "dask", "--workers", "2",
               env={"TXCORE_KILL_AT": f"plan:price_bucket@{marker}"})
    assert marker.exists()  # a worker was killed
    assert lost.returncode == 0, lost.stderr
    assert_same_run(run_of(tmp_path, "one"), run_of(tmp_path, "lost"))


def test_scheduler_address_runs_on_an_existing_cluster(tmp_path, cluster):
    """``--scheduler ADDRESS``: the run uses the cluster there and leaves it running."""
    one = cli(tmp_path, "one", DAYS[:3])
    assert one.returncode == 0, one.stderr
    there = cli(tmp_path, "there", DAYS[:3], "--engine", "dask", "--scheduler", cluster.address)
    assert there.returncode == 0, there.stderr
    assert_same_run(run_of(tmp_path, "one"), run_of(tmp_path, "there"))
    assert len(cluster._client.scheduler_info()["workers"]) == 2  # still up


def test_replay_on_dask_gives_the_one_process_digest(tmp_path, cluster):
    from txcore.audit.replay import replay
    days = DAYS[:2]
    kw = dict(rules=RULES, cards=FIXTURES / "cards.csv", merchants=FIXTURES / "merchants.csv",
              progress=False, batch_size=8192)
    one = replay(days, out_dir=tmp_path / "one", **kw)
    on_dask = replay(days, out_dir=tmp_path / "dask", engine=cluster, **kw)
    assert on_dask["stage_seconds"] and on_dask["digest"] == one["digest"]
    for i in one["inputs"]:
        assert (tmp_path / "one" / i["priced_output"]).read_bytes() == \
            (tmp_path / "dask" / i["priced_output"]).read_bytes()
