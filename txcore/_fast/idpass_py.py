"""Pure-Python twin of ``idpass.pyx``: the id pass of a partitioned run, one row at a time.

This is the readable version (and the fallback when the extension is not built);
``tests/test_plan.py`` checks the two against each other with Hypothesis.  See
:mod:`txcore.plan.idpass` for what the pass decides and why it is all a partitioned
run needs to know across cards.
"""
from __future__ import annotations

import numpy as np

# Codes as in txcore/_fast/layout.py (KERNEL_ENUMS): the kernel's reject reasons and
# an index entry's flags.
R_DUPLICATE, R_DISB_NON_MEMBER, R_MISMATCH, R_ALREADY = 3, 4, 5, 6
F_REVERSAL, F_REVERSED = 1, 2
#: ``flags`` of a row: bit 0 a reversal, bit 1 a disbursement to a card not a member
#: that day (rejected unless the row is a duplicate first)
ROW_REVERSAL, ROW_DISB_NON_MEMBER = 1, 2
NO_LATEST = np.iinfo(np.int64).min


class Settler:
    """The txn ids taken so far (with the state's entries the rows can name: card digest,
    local day, flags), for settling a run's rows a chunk at a time, in input order.

    ``rows``: how many rows will be settled in all; ``latest``: the state's latest day
    (NO_LATEST: none); ``retention``: the window in days."""

    def __init__(self, rows, s_txn_hi, s_txn_lo, s_card_hi, s_card_lo, s_day, s_flags,
                 latest: int, retention: int):
        self.room, self.latest, self.retention = rows, int(latest), int(retention)
        self.index = {}
        for k in range(len(s_txn_hi)):
            self.index[(int(s_txn_hi[k]), int(s_txn_lo[k]))] = [
                (int(s_card_hi[k]), int(s_card_lo[k])), int(s_day[k]), int(s_flags[k])]

    def settle(self, txn_hi, txn_lo, orig_hi, orig_lo, card_hi, card_lo, day, flags,
               reason, now):
        """Settle the next rows in order: fill ``reason`` (0: the row is accepted and takes
        its txn id; else the reject's code) and ``now`` (the latest local day once the
        row is priced)."""
        if len(txn_hi) > self.room:
            raise ValueError(f"{len(txn_hi)} rows, room for {self.room}")
        self.room -= len(txn_hi)
        index, latest, retention = self.index, self.latest, self.retention
        for i in range(len(txn_hi)):
            d = int(day[i])
            t = latest if latest != NO_LATEST and latest > d else d
            key = (int(txn_hi[i]), int(txn_lo[i]))
            card = (int(card_hi[i]), int(card_lo[i]))
            e = index.get(key)
            code = 0
            if e is not None and t - e[1] <= retention:
                code = R_DUPLICATE
            elif flags[i] & ROW_DISB_NON_MEMBER:
                code = R_DISB_NON_MEMBER
            elif flags[i] & ROW_REVERSAL:
                o = index.get((int(orig_hi[i]), int(orig_lo[i])))
                if o is not None and (t - o[1] > retention or o[2] & F_REVERSAL):
                    o = None  # forgotten, or a reversal of a reversal: zero-effect
                if o is not None and o[0] != card:
                    code = R_MISMATCH
                elif o is not None and o[2] & F_REVERSED:
                    code = R_ALREADY
                elif o is not None:
                    o[2] |= F_REVERSED
            reason[i] = code
            now[i] = t
            if code == 0:
                index[key] = [card, d, F_REVERSAL if flags[i] & ROW_REVERSAL else 0]
                latest = t
        self.latest = latest
