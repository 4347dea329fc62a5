"""Where a partitioned run's tasks run: this process, local worker processes, or Dask.

An executor has ``workers``, ``imap(fn, *iterables)`` (the tasks' results in order, each
as soon as it and those before it are done), ``map`` (the same as a list) and
``close()``.  The plan is the same whichever runs it
(:mod:`txcore.plan.partitioned`); so is its output.

* :class:`InProcess` — one worker, this process (tests, and the plan's reference);
* :class:`LocalProcesses` — ``--workers N``: N processes started by a ``forkserver``
  that has imported txcore once.  A worker that dies (killed, out of memory) fails
  the run cleanly: :class:`WorkerLost`, exit 4, nothing committed — rerun it;
* :class:`DaskCluster` — ``--engine dask``: a ``distributed.LocalCluster`` of N worker
  processes, or an existing cluster at ``--scheduler ADDRESS``.  Dask reruns the tasks
  of a lost worker elsewhere (a task writes only its own scratch files, whole, so a
  rerun changes nothing); when it gives up, the run fails with :class:`WorkerLost`.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from txcore.errors import TxcoreError


#: ``--engine``: ``processes`` (the plan on local worker processes), ``threads`` (one
#: process, its stages on threads), ``local`` (whichever of the two is faster for the
#: run: ``txcore.runner``) or ``dask``.
ENGINES = ("local", "processes", "threads", "dask")


class WorkerLost(TxcoreError):
    """A worker died during the run: nothing was committed (exit 4)."""

    exit_code = 4


class InProcess:
    workers = 1
    name = "in-process"

    def map(self, fn, *iterables) -> list:
        return list(self.imap(fn, *iterables))

    def imap(self, fn, *iterables):
        for args in zip(*iterables):
            yield fn(*args)

    def close(self):
        pass


class LocalProcesses:
    name = "processes"

    def __init__(self, workers: int):
        self.workers = workers
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["txcore.plan.tasks"])
        self._pool = ProcessPoolExecutor(workers, mp_context=context)
        try:
            for _ in range(workers):  # start them now, beside the client's own start
                self._pool.submit(int)
        except BrokenProcessPool as exc:
            self._pool.shutdown(wait=False, cancel_futures=True)
            raise _lost(exc) from None

    def map(self, fn, *iterables) -> list:
        return list(self.imap(fn, *iterables))

    def imap(self, fn, *iterables):
        """The tasks' results in order, each as soon as it and those before it are done."""
        futures = []
        try:
            futures += [self._pool.submit(fn, *args) for args in zip(*iterables)]
            for f in futures:
                yield f.result()
        except BrokenProcessPool as exc:
            raise _lost(exc) from None
        finally:
            for f in futures:
                f.cancel()

    def close(self):
        self._pool.shutdown(wait=True, cancel_futures=True)


def _lost(exc) -> WorkerLost:
    return WorkerLost(f"a worker process died during the run ({exc}); nothing of this run "
                      f"was committed, the last committed state is intact: run it again")


class DaskCluster:
    name = "dask"

    def __init__(self, workers: int | None = None, scheduler: str | None = None,
                 client=None):
        """A ``LocalCluster`` of ``workers`` processes, the cluster at ``scheduler``, or
        an open ``distributed.Client`` (``client``: the caller closes it)."""
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            from txcore.errors import UsageError
            raise UsageError("--engine dask needs the Dask packages: "
                             "pip install 'txcore[dask]'") from None
        self._cluster, self._own = None, client is None
        if client is not None:
            self._client = client
        elif scheduler:
            self._client = Client(scheduler, timeout=30)
        else:
            self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None)
            self._client = Client(self._cluster)
        self.workers = len(self._client.scheduler_info()["workers"]) or (workers or 1)

    def map(self, fn, *iterables) -> list:
        return list(self.imap(fn, *iterables))

    def imap(self, fn, *iterables):
        """The tasks' results in order, each as soon as it and those before it are done."""
        from distributed import KilledWorker
        futures = [self._client.submit(fn, *args, pure=False) for args in zip(*iterables)]
        try:
            for f in futures:
                yield f.result()
        except KilledWorker as exc:
            raise WorkerLost(f"Dask gave up on a task after losing its workers ({exc}); "
                             f"nothing of this run was committed, the last committed state "
                             f"is intact: run it again") from None
        finally:
            self._client.cancel(futures)

    def close(self):
        if self._own:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def make_executor(engine: str, workers: int, scheduler: str | None = None):
    """The executor of the plan on ``local`` processes or on ``dask``, with ``--workers``
    and ``--scheduler`` (dask only: the runner refuses it with any other engine)."""
    if engine == "dask":
        return DaskCluster(workers, scheduler)
    return InProcess() if workers == 1 else LocalProcesses(workers)
