"""``--workers``: overlap reading, pricing and writing on one machine.

Pricing is sequential by nature — free slots are counted in posting order and a
txn_id or a reversal can refer to any earlier row of any card — so txcore does
not split the rows between pricing workers; it runs the three stages of a run
side by side instead: a reader thread decodes the next batches (pyarrow releases
the GIL), the calling thread prices (the kernel runs without the GIL) and a
writer thread digests, totals and writes the priced batches, in order.  The
output is the one-worker output by construction; queues are bounded, so memory
stays flat.  With ``workers=1`` everything runs inline.
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor

_DONE = object()
#: The most --workers: threads beyond the stages' three only feed pyarrow's pools.
MAX_WORKERS = 64


def prefetched(batches, workers: int, depth: int = 2):
    """Iterate ``batches`` through a reader thread when ``workers > 1``."""
    if workers <= 1:
        yield from batches
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item) -> bool:
        """Put ``item`` unless the consumer has stopped (then never block on a full queue)."""
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for b in batches:
                if not offer(b):
                    return
            offer(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            offer(exc)

    thread = threading.Thread(target=produce, name="txcore-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


class OrderedJobs:
    """Runs write jobs in order on one thread (inline when ``workers <= 1``); at most
    ``depth`` jobs wait.  A job's exception is raised by the next ``submit`` or ``drain``."""

    def __init__(self, workers: int, depth: int = 2):
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="txcore-writer") \
            if workers > 1 else None
        self.depth = depth
        self.pending: list[Future] = []

    def submit(self, job):
        if self.pool is None:
            job()
            return
        while len(self.pending) >= self.depth:
            self.pending.pop(0).result()
        self.pending.append(self.pool.submit(job))

    def drain(self):
        while self.pending:
            self.pending.pop(0).result()

    def close(self):
        if self.pool is not None:
            for f in self.pending:
                f.cancel()
            self.pool.shutdown(wait=True)
            self.pending = []
