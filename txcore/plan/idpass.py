"""The id pass: the one step of a partitioned run that reads every card's rows.

Pricing a card needs only that card's rows and its part of the state — except for
two facts that cross cards: a txn id is taken by whichever row of any card comes
first (a later row with the same id is ``duplicate_txn_id``), and a reversal names an
original that may belong to another card (``reversal_mismatch``) or may already have
been reversed (``already_reversed``).  Which rows take their id also moves the run's
latest local day, which decides what the retention window still shows.

None of that depends on money or free slots: it depends only on which rows are
accepted.  So the client makes one sequential pass, in input order, over the narrow
columns of the rows that passed every check needing no state (txn, original and card
digests, local day, two flags) and the state's index entries those rows can name, and
settles for each row whether it is accepted and the latest day once it is priced.
Rows of one card are then priced by card bucket, anywhere, exactly as the single
process would: an accepted row is no duplicate in its bucket either, and an accepted
reversal's original (the same card, so the same bucket) is the one the pass found.
The kernel is handed the settled latest day (``settled_now``) and checks it agrees.

Measured against partitioning by txn-id hash (which needs rounds between the txn
and original partitions), one sequential pass over ~60 bytes a row is simpler and
fast: see benchmarks/README.md.
"""
from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from txcore._fast import compiled_or_twin
from txcore._fast import layout as L
from txcore.plan.scratch import load, save, scratch_path
from txcore.plan.tasks import Job
from txcore.state.compact import digest_words
from txcore.state.store import Query
from txcore.timeconv import EPOCH_DAY, day_number

_idpass = compiled_or_twin("idpass")
L.check_enums(_idpass, _idpass.enums())


def state_entries(index: pa.Table) -> tuple[np.ndarray, ...]:
    """The narrow columns of the state's index entries: txn and card digests, local
    day, flags (a reversal; reversed)."""
    hi, lo = digest_words(index.column("txn"))
    c_hi, c_lo = digest_words(index.column("card"))
    day = index.column("local_date").cast(pa.int32()).to_numpy(zero_copy_only=False)
    flags = (np.where(index.column("is_reversal").to_numpy(zero_copy_only=False),
                      L.F_REVERSAL, 0)
             | np.where(index.column("reversed").to_numpy(zero_copy_only=False),
                        L.F_REVERSED, 0)).astype(np.uint8)
    return hi, lo, c_hi, c_lo, np.ascontiguousarray(day, np.int32), flags


def state_query(job: Job, chunks: list[int]) -> Query:
    """What the run's rows can look up in the state, from the workers' digests: every
    candidate's txn id and a reversal's original, and the earliest local day."""
    ids = [load(scratch_path(job, f"c{c:06d}.ids")) for c in chunks]
    his, los, first = [], [], None
    for x in ids:
        reversal = (x["flags"] & L.ROW_REVERSAL) != 0
        his += [x["txn_hi"], x["orig_hi"][reversal]]
        los += [x["txn_lo"], x["orig_lo"][reversal]]
        if len(x["day"]):
            low = int(x["day"].min())
            first = low if first is None else min(first, low)
    empty = np.zeros(0, np.uint64)
    return Query.of(np.concatenate(his) if his else empty, np.concatenate(los) if los else empty,
                    None if first is None else EPOCH_DAY + dt.timedelta(days=first))


class RunSettler:
    """The id pass over one run: :meth:`settle` each chunk's candidates (its
    ``c<chunk>.ids``, in input order), which writes ``c<chunk>.settled`` (reason and
    latest day per candidate); :attr:`latest` is the latest day after the run (or
    NO_LATEST)."""

    def __init__(self, job: Job, rows: int, index: pa.Table, latest):
        self.job = job
        start = L.NO_LATEST if latest is None else day_number(latest)
        self._settler = _idpass.Settler(rows, *state_entries(index), start,
                                        job.retention_days)

    @property
    def latest(self) -> int:
        return int(self._settler.latest)

    def settle(self, chunk: int):
        ids = load(scratch_path(self.job, f"c{chunk:06d}.ids"))
        n = len(ids["day"])
        reason, now = np.zeros(n, np.int8), np.zeros(n, np.int32)
        if n:
            self._settler.settle(*(np.ascontiguousarray(ids[k]) for k in (
                "txn_hi", "txn_lo", "orig_hi", "orig_lo", "card_hi", "card_lo", "day",
                "flags")), reason, now)
        save(scratch_path(self.job, f"c{chunk:06d}.settled"), {"reason": reason, "now": now})
