"""What a worker runs: the tasks of a partitioned run (docs/parallel.md).

Each task is a plain function of a :class:`Job` (what every task of one run shares)
and one item — a chunk of an input or a card bucket.  It reads its inputs from the
input files and from the run's scratch folder, writes its results into that folder
(a state segment into the run's segments folder beside it), and returns only a small
summary, so the same functions run in this process, in local worker processes or on
Dask workers.  A result file is written whole under a temporary name and renamed, so
a task run twice (a retry after a lost worker) leaves the same files (a segment with a
new random file id in its header, which the entry it returns names): tasks never
touch the state folder or the published outputs.

1. :func:`encode_chunk` — read a window of row groups of an input, run the
   stateless checks and the encoder, settle what needs no state (the version in
   force, the card's registry entry, a disbursement to a non-member), and write
   ``c<chunk>.ids`` (the narrow id columns for the id pass), ``c<chunk>.b<bucket>`` (the
   encoded rows of each card bucket), ``c<chunk>.enc`` (what the outputs need) and
   ``c<chunk>.rows`` (the rows as read, uncompressed Arrow);
2. the client's id pass writes ``c<chunk>.settled`` and the state's part of each bucket,
   ``b<bucket>.state``;
3. :func:`price_bucket` — every accepted row of one card bucket, in input order, through
   the compiled kernel with the bucket's part of the state; writes the priced columns
   per chunk (``c<chunk>.p<bucket>``), the bucket's counters (``b<bucket>.counters``)
   and its index segment of the new generation (into ``Job.segments``, outside the
   scratch folder: the commit moves it into the state folder) — or, when the state's
   bucket is split over several, its records (``b<bucket>.*.npy``), which
   :func:`merge_segment` makes into the state bucket's segment;
4. :func:`assemble_chunk` — gather the chunk's rows' prices from every bucket and write
   its priced rows (a Parquet part, ``c<chunk>.priced.parquet``, the client stitches;
   other formats in ``c<chunk>.out``), its reject rows (``c<chunk>.out``), digest bytes
   and totals.

Card numbers: a worker reads them from the input files itself (by path, as the client
would) and writes them only into the chunk's output pieces in the staging folder; what
tasks return to the client and what the scratch files between tasks hold are keyed
digests, codes, money and masked reject details.
"""
from __future__ import annotations

import datetime as dt
import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from txcore import durable
from txcore._fast import layout as L
from txcore._fast.layout import Strings
from txcore.engine import make_engine
from txcore.engine.compiled import compile_cards
from txcore.engine.encoder import Encoded
from txcore.errors import TxcoreError
from txcore.io.digest import row_bytes
from txcore.io.reader import InputSource
from txcore.io.writer import BatchWriter
from txcore.plan.scratch import (load, load_array, read_batches, read_tables, save,
                                  save_array, scratch_path, write_batches, written_whole)
from txcore.rules.book import load_book
from txcore.rules.refdata import load_cards, load_merchants
from txcore.state.keys import Keyer
from txcore.state.memory import State
from txcore.state.segments import (bucket_of, changed_only, compact_runs, segment_name,
                                     sort_by_key, write_segment)
from txcore.summary import Totals
from txcore.timeconv import EPOCH_DAY

#: The kernel's per-row input arrays and their types, as
#: :class:`~txcore.engine.encoder.Encoded` holds them (in its field order).
ROW_ARRAYS = {"card_hi": np.uint64, "card_lo": np.uint64, "txn_hi": np.uint64,
              "txn_lo": np.uint64, "orig_hi": np.uint64, "orig_lo": np.uint64,
              "kind": np.int8, "channel": np.int8, "fee_item": np.int8, "mcc": np.int16,
              "bank": np.int32, "city": np.int32, "merchant": np.int32, "amount": np.int64}
ID_ARRAYS = ("txn_hi", "txn_lo", "orig_hi", "orig_lo", "card_hi", "card_lo")
ZONE_ARRAYS = ("day", "inst")  # [zone, row]
#: The kernel's per-row outputs carried from the bucket tasks to the chunk's outputs.
OUT_ARRAYS = ("member", "cross_bank", "same_city", "ts", "fee_rule", "fee_standard",
              "fee_waived", "fee_charged", "waiver_rule", "free_slot", "discount",
              "discount_rule", "ruleset")
RULE_CODES = ("fee_rule", "waiver_rule", "discount_rule", "ruleset")
#: A plan bucket's index records, when a state bucket is merged from several.
RECORDS = ("hi", "lo", "recs")


class PlanError(TxcoreError):
    """The partitioned run found its parts disagreeing (a bug, not bad data): the run
    stops before its commit (exit 4)."""

    exit_code = 4


@dataclass(frozen=True)
class Job:
    """What every task of one partitioned run shares (picklable, small)."""

    token: str                 # unique per run: the key of a worker's cached setup
    rules: str
    cards: str
    merchants: str | None
    business_date: dt.date
    backend: str               # "cython" or "numba"
    key: bytes                 # the card key: digests must be the state's
    batch_size: int
    fmt: str                   # the output format
    retention_days: int
    buckets: int               # card buckets of the plan: the state's, or a multiple
    scratch: str               # the run's scratch folder, inside its staging folder
    state_buckets: int = 1     # card buckets of the state folder
    generation: int = 0        # the generation the run commits (its segments' number)
    segments: str = ""         # where the state segments go, kept until the commit


@dataclass(frozen=True)
class Chunk:
    """A window of row groups of one Parquet input: the unit of reading and writing."""

    index: int                 # in input order over the whole run
    source: int                # which input
    path: str
    window: tuple[int, ...]    # its row groups


# -- a worker's setup, made once per run and process -----------------------------------
_SETUP: dict[str, tuple] = {}


def _setup(job: Job):
    """``(book, registry, engine, compiled registry)``: the rules, the card registry, an
    engine over an empty state for encoding, and the registry as the kernel takes it
    (loaded once per process and run)."""
    got = _SETUP.get(job.token)
    if got is None:
        _SETUP.clear()  # one run's setup at a time
        if multiprocessing.parent_process() is not None:  # a worker process: one core's
            pa.set_cpu_count(1)  # work (N workers fill N cores; pyarrow threads of its own
            pa.set_io_thread_count(1)  # would only oversubscribe them)
        book = load_book(job.rules, load_merchants(job.merchants) if job.merchants else None)
        registry = load_cards(job.cards)
        keyer = Keyer(job.key)
        compiled = compile_cards(registry, keyer)  # once: every engine here shares it
        engine = make_engine(job.backend, book, registry, State(job.retention_days, keyer),
                             job.business_date, registry=compiled)
        got = _SETUP[job.token] = (book, registry, engine, compiled)
    return got


# -- 1. read and encode a chunk ------------------------------------------------------------
def verdicts(engine, enc: Encoded) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(code, day, flags)`` per row: what pricing settles without the state, as the
    kernel does (``kernel.verdicts``): -1 rejected by the stateless checks, 1 no rule-set
    version in force, 2 a card not in the registry, else 0; the local day in the
    version's zone; its flags for the id pass (``layout.ROW_REVERSAL``, ...)."""
    n = enc.n
    code, day, flags = np.empty(n, np.int8), np.empty(n, np.int32), np.empty(n, np.uint8)
    compact = engine.compact
    engine.kernel.verdicts(enc.pre, enc.card_hi, enc.card_lo, enc.day, enc.kind,
                           engine.flat.versions, compact.cards, compact.card_slots,
                           code, day, flags)
    return code, day, flags


def encode_chunk(job: Job, chunk: Chunk) -> dict:
    """Stage 1: see the module docstring.  Returns ``{"rows", "candidates", "slow_rows"}``."""
    durable.step("plan:encode_chunk")
    cpu = time.process_time()
    _, _, engine, _ = _setup(job)
    pieces, batches = [], []
    ids = {name: [] for name in (*ID_ARRAYS, "day", "flags")}
    mine = [{name: [] for name in ("cand", *ROW_ARRAYS, *ZONE_ARRAYS)}
            for _ in range(job.buckets)]
    rows = slow = candidates = 0
    for batch in InputSource(chunk.path, job.batch_size).window_batches(list(chunk.window)):
        batches.append(batch)
        enc = engine.encoder.encode(batch)
        code, day, flags = verdicts(engine, enc)
        cand = np.flatnonzero(code == 0)
        pieces.append({"n": enc.n, "code": code, "amount": enc.amount,
                       "amount_ok": enc.amount_ok, "rejects": enc.rejects})
        # the candidates, in row order: their id columns for the id pass, and each card
        # bucket's rows (numbered by candidate within the chunk) for pricing
        for name in ID_ARRAYS:
            ids[name].append(getattr(enc, name)[cand])
        ids["day"].append(day[cand])
        ids["flags"].append(flags[cand])
        # one gather per array: the candidates ordered by bucket (stably), then sliced;
        # a zone array's slices one zone at a time (each contiguous: saved as it is)
        bucket = bucket_of(ids["card_hi"][-1], job.buckets)
        at = np.argsort(bucket, kind="stable")
        bounds = np.searchsorted(bucket[at], np.arange(job.buckets + 1))
        rows_b = cand[at]
        gathered = {"cand": at + candidates,
                    **{name: getattr(enc, name)[rows_b] for name in ROW_ARRAYS}}
        zoned = {name: getattr(enc, name)[:, rows_b] for name in ZONE_ARRAYS}
        for b in range(job.buckets):
            lo, hi = bounds[b], bounds[b + 1]
            for name, values in gathered.items():
                mine[b][name].append(values[lo:hi])
            for name, values in zoned.items():
                mine[b][name].append(tuple(zone[lo:hi] for zone in values))
        rows += enc.n
        slow += enc.slow_rows
        candidates += len(cand)
    save(scratch_path(job, f"c{chunk.index:06d}.enc"), pieces)
    # the rows as read, for the chunk's outputs: an uncompressed Arrow file is mapped back
    # in for nothing, where decoding the Parquet again would cost a third of the encoding
    write_batches(scratch_path(job, f"c{chunk.index:06d}.rows"), [batches])
    types = {**ROW_ARRAYS, "day": np.int32, "flags": np.uint8}
    save(scratch_path(job, f"c{chunk.index:06d}.ids"),
         {k: np.concatenate(v) if v else np.zeros(0, types[k]) for k, v in ids.items()})
    for b in range(job.buckets):  # each batch's slices as they are: price_bucket joins them
        save(scratch_path(job, f"c{chunk.index:06d}.b{b:03d}"), mine[b])
    return {"rows": rows, "candidates": candidates, "slow_rows": slow,
            "cpu": time.process_time() - cpu}


# -- 2. price a card bucket ----------------------------------------------------------------
def price_bucket(job: Job, bucket: int, chunks: list[int], latest: int | None,
                 state_strings: list[str] | None, final: int) -> dict:
    """Stage 2: price every row of card bucket ``bucket`` the id pass accepted, in input
    order, against the bucket's part of the state (``b<bucket>.state``, written by the
    client), the latest day of each row as the id pass settled it.  With
    ``state_strings`` (the state folder's string table), write the bucket's index
    entries within the window of the run's ``final`` latest day — as its state
    segment (:func:`write_state_segment`), or as records sorted by key
    (``b<bucket>.{hi,lo,recs}.npy``) for :func:`merge_segment` — and its counters
    (``b<bucket>.counters``).  Returns ``{"rows", "zero_effect", "segment"}``."""
    durable.step("plan:price_bucket")
    cpu = time.process_time()
    book, registry, _, compiled = _setup(job)
    counters, index = read_tables(scratch_path(job, f"b{bucket:03d}.state"))
    state = State(job.retention_days, Keyer(job.key))
    state.set_tables(counters, index, None if latest is None
                     else EPOCH_DAY + dt.timedelta(days=latest))
    engine = make_engine(job.backend, book, registry, state, job.business_date,
                         registry=compiled.only(bucket_of(compiled.hi, job.buckets) == bucket))
    # every batch's slice of this bucket's candidates, with the id pass's verdicts: a
    # mask of the rows it accepted (None: all of them) and their count
    pieces, now, owners, segment = [], [], [], None
    for c in chunks:
        rows = load(scratch_path(job, f"c{c:06d}.b{bucket:03d}"))
        if not rows["cand"]:  # a chunk without rows
            continue
        settled = load(scratch_path(job, f"c{c:06d}.settled"))
        cand = np.concatenate(rows["cand"])
        taken = settled["reason"][cand] == 0
        start = 0
        for i, part in enumerate(rows["cand"]):
            mask = taken[start:start + len(part)]
            start += len(part)
            k = int(np.count_nonzero(mask))
            pieces.append((rows, i, None if k == len(part) else mask, k))
        cand = cand[taken]
        now.append(settled["now"][cand])
        owners.append((c, cand))
    n = sum(k for *_, k in pieces)
    nz = len(engine.flat.zone_names)
    names = list(ROW_ARRAYS)
    enc = Encoded(n, np.zeros(n, np.int8),
                  *[_joined(pieces, name, n, ROW_ARRAYS[name]) for name in names[:6]],
                  _joined(pieces, "day", n, np.int32, nz),
                  _joined(pieces, "inst", n, np.int64, nz),
                  *[_joined(pieces, name, n, ROW_ARRAYS[name]) for name in names[6:]],
                  np.ones(n, bool))
    engine.reserve(n)
    out = engine.price_encoded(enc, np.concatenate(now) if now else np.zeros(0, np.int32))
    if np.any(out["reason"] != 0):
        i = int(np.flatnonzero(out["reason"] != 0)[0])
        raise PlanError(f"card bucket {bucket}: the kernel rejected a row the id pass "
                        f"accepted ({L.KERNEL_REASONS.get(int(out['reason'][i]))}); "
                        f"nothing of this run was committed")
    strings = list(engine.compact.strings.values)
    start = 0
    for c, cand in owners:
        stop = start + len(cand)
        save(scratch_path(job, f"c{c:06d}.p{bucket:03d}"),
             {"cand": cand, "strings": strings,
              **{k: out[k][start:stop] for k in OUT_ARRAYS}})
        start = stop
    if state_strings is not None:
        strings = Strings(state_strings)
        # the index entries within the run's window (wider than this bucket's own)
        hi, lo, recs = compact_runs(engine.compact, strings, 1,
                                    None if final == L.NO_LATEST else final)[0]()
        if len(strings.values) != len(state_strings):  # every id is the book's or the state's
            raise PlanError(f"card bucket {bucket}: rule ids the client did not number: "
                            f"{strings.values[len(state_strings):]}")
        if job.buckets == job.state_buckets:  # this bucket is a whole segment: write it
            segment = write_state_segment(job, bucket, hi, lo, recs)
        else:  # a part of one: merge_segment writes it
            for name, values in (("hi", hi), ("lo", lo), ("recs", recs)):
                save_array(scratch_path(job, f"b{bucket:03d}.{name}.npy"), values)
        save(scratch_path(job, f"b{bucket:03d}.counters"), engine.compact.counters_table())
    return {"rows": n, "zero_effect": engine.zero_effect_reversals, "segment": segment,
            "cpu": time.process_time() - cpu}


def merge_segment(job: Job, bucket: int) -> dict:
    """Stage 2b, when the plan has more card buckets than the state: the state bucket
    ``bucket``'s segment from the records of its plan buckets (``b<q>.*.npy``, q = bucket
    mod the state's buckets).  Returns ``{"segment", "cpu"}``."""
    durable.step("plan:merge_segment")
    cpu = time.process_time()
    parts = [[load_array(scratch_path(job, f"b{q:03d}.{name}.npy")) for name in RECORDS]
             for q in range(bucket, job.buckets, job.state_buckets)]
    hi, lo, recs = (np.concatenate([p[k] for p in parts]) for k in range(3))
    order = sort_by_key(hi, lo)
    segment = write_state_segment(job, bucket, hi[order], lo[order], np.take(recs, order))
    return {"segment": segment, "cpu": time.process_time() - cpu}


def write_state_segment(job: Job, bucket: int, hi, lo, recs) -> dict | None:
    """Write state bucket ``bucket``'s segment of the run's generation into the run's
    segments folder (``Job.segments``), for the commit to move into the state folder:
    its entries after the run (sorted by key) but those the run left as the state holds
    them (``s<bucket>.loaded``, from the client).  Its manifest entry, or None if no
    entry changed.  Written whole under a temporary name, then renamed (``written_whole``)."""
    hi, lo, recs = changed_only(load(scratch_path(job, f"s{bucket:03d}.loaded")), hi, lo, recs)
    if not len(hi):
        return None
    path = Path(job.segments) / segment_name(job.generation, bucket)
    with written_whole(path) as tmp:
        entry = write_segment(tmp, bucket, job.generation, hi, lo, recs, "plan:segment")
    return {**entry, "name": path.name}


def _joined(pieces, name: str, n: int, dtype, zones: int | None = None) -> np.ndarray:
    """Array ``name`` of the rows the id pass accepted, in order, from ``pieces`` (see
    :func:`price_bucket`): each batch's slice copied, or compressed by its mask, straight
    into place — one copy.  With ``zones``, a ``(zones, n)`` array of per-zone slices."""
    out = np.empty(n if zones is None else (zones, n), dtype)
    at = 0
    for rows, i, mask, k in pieces:
        parts = rows[name][i]
        for dst, part in (zip(out[:, at:at + k], parts) if zones is not None
                          else [(out[at:at + k], parts)]):
            if mask is None:
                dst[...] = part
            else:
                np.compress(mask, part, out=dst)
        at += k
    return out


# -- 3. the chunk's outputs ----------------------------------------------------------------
def assemble_chunk(job: Job, chunk: Chunk) -> dict:
    """Stage 3: the chunk's priced and reject batches in input order (``c<chunk>.out``),
    with their digest bytes and totals.  Returns ``{"priced", "rejected", "totals"}``."""
    durable.step("plan:assemble_chunk")
    cpu = time.process_time()
    _, _, engine, _ = _setup(job)
    pieces = load(scratch_path(job, f"c{chunk.index:06d}.enc"))
    settled = load(scratch_path(job, f"c{chunk.index:06d}.settled"))
    n_rows = sum(p["n"] for p in pieces)
    code = np.concatenate([p["code"] for p in pieces]) if pieces else np.zeros(0, np.int8)
    cand = np.flatnonzero(code == 0)
    reason = code.copy()
    reason[cand] = settled["reason"]
    out = {k: np.zeros(n_rows, d) for k, d in (
        ("member", np.uint8), ("cross_bank", np.uint8), ("same_city", np.uint8),
        ("ts", np.int64), ("fee_standard", np.int64), ("fee_waived", np.int64),
        ("fee_charged", np.int64), ("free_slot", np.int16), ("discount", np.int64))}
    for name in RULE_CODES:
        out[name] = np.full(n_rows, -1, np.int32)
    strings = Strings()
    for b in range(job.buckets):
        path = scratch_path(job, f"c{chunk.index:06d}.p{b:03d}")
        if not path.exists():
            continue  # no row of this chunk in that bucket was priced
        got = load(path)
        at = cand[got["cand"]]
        for name in OUT_ARRAYS:
            values = got[name]
            if name in RULE_CODES:  # the bucket's string codes -> this chunk's
                lookup = np.array([strings.code(s) for s in got["strings"]] + [-1], np.int32)
                values = lookup[np.where(values < 0, -1, values)]
            out[name][at] = values
    out["reason"] = reason
    priced_out, reject_out = [], []
    totals = Totals()
    digest = []
    start = 0
    # a Parquet output: the chunk's priced rows encoded here, as a part the client
    # stitches into the file (the row groups one writer makes of them); else as Arrow
    part = None  # its writer, made at the first batch
    for piece, batch in zip(pieces, read_batches(scratch_path(job, f"c{chunk.index:06d}.rows"))[0]):
        stop = start + piece["n"]
        enc = _OutputsOf(piece)
        rows_out = {k: v[start:stop] for k, v in out.items()}
        priced, rejects = engine.outputs(batch, enc, rows_out, strings)
        if job.fmt == "parquet":
            if part is None:
                part = BatchWriter(scratch_path(job, f"c{chunk.index:06d}.priced.parquet"),
                                   priced.schema, "parquet", sync=False)
            part.write(priced)
        else:
            priced_out.append(priced)
        reject_out.append(rejects)
        totals.add(priced, rejects)
        digest.append(row_bytes(priced))
        start = stop
    if part is not None:
        part.close()
    write_batches(scratch_path(job, f"c{chunk.index:06d}.out"), [priced_out, reject_out])
    # the digest bytes as arrays: written out of band, straight from each batch's bytes
    save(scratch_path(job, f"c{chunk.index:06d}.digest"),
         [np.frombuffer(rows, np.uint8) for rows in digest])
    return {"priced": part.rows if part is not None
            else sum(b.num_rows for b in priced_out),
            "part": part is not None,
            "schema": part.schema if part is not None
            else (priced_out[0].schema if priced_out else None),
            "rejected": sum(b.num_rows for b in reject_out), "totals": totals,
            "cpu": time.process_time() - cpu}


class _OutputsOf:
    """What :meth:`CompiledEngine.outputs` reads of an encoding, from a chunk's piece."""

    def __init__(self, piece: dict):
        self.amount, self.amount_ok, self.rejects = piece["amount"], piece["amount_ok"], \
            piece["rejects"]


def read_outputs(job: Job, index: int) -> tuple[list[pa.RecordBatch], list[pa.RecordBatch]]:
    """The priced and reject batches :func:`assemble_chunk` wrote for chunk ``index``."""
    priced, rejects = read_batches(scratch_path(job, f"c{index:06d}.out"))
    return priced, rejects
