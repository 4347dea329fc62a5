"""The reader thread of ``--workers`` never outlives a consumer that stopped."""
from __future__ import annotations

import threading

import pytest

from txcore import pipeline


def _consume_then_fail(batches, depth, errors, read_all):
    """Take one item, then fail as pricing or a full disk would — once the reader
    thread has read the whole source, so the queue is full when it ends."""
    try:
        for _ in pipeline.prefetched(batches, workers=2, depth=depth):
            read_all.wait(timeout=5)
            raise RuntimeError("pricing failed")
    except RuntimeError as exc:
        errors.append(exc)


def _source(n, read_all=None, fail=False):
    yield from range(n)
    if read_all is not None:
        read_all.set()
    if fail:
        raise OSError("read error")


def _source_that_fails_after(n):
    return _source(n, fail=True)


@pytest.mark.parametrize("n, fail", [
    (2, False),   # the reader ends in put(_DONE) with the queue full
    (2, True),    # the reader ends in put(exc) with the queue full
    (50, False),  # the reader blocks on a full queue mid-stream
], ids=["done-on-full-queue", "error-on-full-queue", "mid-stream"])
def test_a_consumer_that_raises_does_not_hang(n, fail):
    errors: list = []
    read_all = threading.Event()
    if n > 2:
        read_all.set()  # fail at once: the reader is still mid-stream
    consumer = threading.Thread(target=_consume_then_fail,
                                args=(_source(n, read_all, fail), 1, errors, read_all),
                                daemon=True)
    consumer.start()
    consumer.join(timeout=10)
    assert not consumer.is_alive(), "prefetched() hangs after its consumer stopped"
    assert len(errors) == 1 and str(errors[0]) == "pricing failed"
    assert not [t for t in threading.enumerate() if t.name == "txcore-reader"]


def test_every_item_arrives_in_order_and_a_source_error_reaches_the_consumer():
    assert list(pipeline.prefetched(iter(range(100)), workers=2, depth=3)) == list(range(100))
    with pytest.raises(OSError, match="read error"):
        list(pipeline.prefetched(_source_that_fails_after(5), workers=2))


def test_ordered_jobs_run_in_order_and_raise_a_jobs_error():
    done: list[int] = []
    jobs = pipeline.OrderedJobs(workers=2, depth=2)
    for i in range(20):
        jobs.submit(lambda i=i: done.append(i))
    jobs.drain()
    assert done == list(range(20))

    def fail():
        raise OSError("disk full")
    jobs.submit(fail)
    with pytest.raises(OSError, match="disk full"):
        jobs.drain()
    jobs.close()
