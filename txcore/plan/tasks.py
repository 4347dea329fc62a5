"""What a worker runs: the three kinds of task of a partitioned run (docs/parallel.md).

Each task is a plain function of a :class:`Job` (what every task of one run shares)
and one item — a chunk of an input or a card bucket.  It reads its inputs from the
input files and from the run's scratch folder, writes its results into that folder,
and returns only a small summary, so the same functions run in this process, in
local worker processes or on Dask workers.  A result file is written whole under a
temporary name and renamed, so a task run twice (a retry after a lost worker) leaves
the same files: tasks never touch the state folder or the published outputs.

1. :func:`encode_chunk` — read a window of row groups of an input, run the
   stateless checks and the encoder, settle what needs no state (the version in
   force, the card's registry entry, a disbursement to a non-member), and write
   ``c<chunk>.ids`` (the narrow id columns for the id pass), ``c<chunk>.b<bucket>`` (the
   encoded rows of each card bucket) and ``c<chunk>.enc`` (what the outputs need);
2. :func:`price_bucket` — every accepted row of one card bucket, in input order, through
   the compiled kernel with the bucket's part of the state; writes the priced columns
   per chunk and the bucket's new state tables;
3. :func:`assemble_chunk` — read the chunk again, gather its rows' prices from every
   bucket and write the chunk's priced and reject batches, digest bytes and totals.

Card numbers: a worker reads them from the input files itself (by path, as the client
would) and writes them only into the chunk's output pieces in the staging folder; what
tasks return to the client and what the scratch files between tasks hold are keyed
digests, codes, money and masked reject details.
"""
from __future__ import annotations

import datetime as dt
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from txcore._fast import layout as L
from txcore._fast.layout import Strings
from txcore.engine import make_engine
from txcore.engine.encoder import Encoded
from txcore.errors import TxcoreError
from txcore.io.digest import row_bytes
from txcore.io.reader import InputSource
from txcore.rules.book import load_book
from txcore.rules.refdata import load_cards, load_merchants
from txcore.state.keys import Keyer
from txcore.state.memory import State
from txcore.state.segments import bucket_of
from txcore.summary import Totals

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
#: Flags of a row for the id pass (txcore/_fast/idpass_py.py).
ROW_REVERSAL, ROW_DISB_NON_MEMBER = 1, 2


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
    retention_days: int
    buckets: int
    scratch: str               # the run's scratch folder, inside its staging folder


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
    """``(book, registry, engine)``: the rules, the card registry and an engine over an
    empty state, for encoding (loaded once per process and run)."""
    got = _SETUP.get(job.token)
    if got is None:
        _SETUP.clear()  # one run's setup at a time
        book = load_book(job.rules, load_merchants(job.merchants) if job.merchants else None)
        registry = load_cards(job.cards)
        engine = make_engine(job.backend, book, registry,
                             State(job.retention_days, Keyer(job.key)), job.business_date)
        got = _SETUP[job.token] = (book, registry, engine)
    return got


def _source(job: Job, chunk: Chunk) -> InputSource:
    return InputSource(chunk.path, job.batch_size)


# -- scratch files -------------------------------------------------------------------------
def scratch_path(job: Job, name: str) -> Path:
    return Path(job.scratch) / name


def save(path: Path, obj):
    """Write ``obj`` whole under a temporary name, then rename: a retried task replaces
    the file with the same content, a killed one leaves no half file under the name."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(obj, fh, protocol=5)
    os.replace(tmp, path)


def load(path: Path):
    with open(path, "rb") as fh:
        return pickle.load(fh)


# -- 1. read and encode a chunk ------------------------------------------------------------
def verdicts(engine, enc: Encoded) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(code, day, member)`` per row, what pricing settles without the state, as the
    kernel does: -1 rejected by the stateless checks, 1 no rule-set version in force,
    2 a card not in the registry, else 0; the local day in the version's zone; whether
    the card is a member that day."""
    n = enc.n
    versions = engine.flat.versions
    v = np.full(n, -1, np.int64)
    for k in range(len(versions) - 1, -1, -1):  # the latest version in force
        v = np.where((v < 0) & (versions["eff"][k] <= enc.day[versions["zone"][k]]), k, v)
    zone = np.where(v >= 0, versions["zone"][np.maximum(v, 0)], 0)
    day = enc.day[zone, np.arange(n)] if n else np.zeros(0, np.int32)
    c = np.empty(n, np.int64)
    compact = engine.compact
    engine.kernel.find_cards(compact.cards, compact.card_slots, enc.card_hi, enc.card_lo, c)
    cards = compact.cards[np.maximum(c, 0)]
    known = (c >= 0) & (cards["reg"] >= 0)
    member = known & (cards["member_from"] <= day) & (day <= cards["member_to"])
    code = np.where(enc.pre != 0, -1, np.where(v < 0, 1, np.where(known, 0, 2)))
    return code.astype(np.int8), day.astype(np.int32), member


def encode_chunk(job: Job, chunk: Chunk) -> dict:
    """Stage 1: see the module docstring.  Returns ``{"rows", "candidates", "slow_rows"}``."""
    _, _, engine = _setup(job)
    pieces, cand_parts = [], []
    rows = slow = 0
    for batch in _source(job, chunk).window_batches(list(chunk.window)):
        enc = engine.encoder.encode(batch)
        code, day, member = verdicts(engine, enc)
        cand = np.flatnonzero(code == 0)
        flags = (np.where(enc.kind == L.REVERSAL_KIND, ROW_REVERSAL, 0)
                 | np.where((enc.kind == L.DISBURSEMENT) & ~member, ROW_DISB_NON_MEMBER, 0))
        cand_parts.append((enc, cand, day[cand], flags[cand].astype(np.uint8)))
        pieces.append({"n": enc.n, "code": code, "amount": enc.amount,
                       "amount_ok": enc.amount_ok, "rejects": enc.rejects})
        rows += enc.n
        slow += enc.slow_rows
    save(scratch_path(job, f"c{chunk.index:06d}.enc"), pieces)

    # the candidates of the whole chunk, in row order: for the id pass, and by bucket
    def cat(name):
        arrays = [getattr(e, name)[c] for e, c, _, _ in cand_parts]
        return np.concatenate(arrays) if arrays else np.zeros(0, ROW_ARRAYS[name])

    ids = {name: cat(name) for name in ID_ARRAYS}
    ids["day"] = np.concatenate([d for _, _, d, _ in cand_parts]) if cand_parts \
        else np.zeros(0, np.int32)
    ids["flags"] = np.concatenate([f for _, _, _, f in cand_parts]) if cand_parts \
        else np.zeros(0, np.uint8)
    save(scratch_path(job, f"c{chunk.index:06d}.ids"), ids)

    rows_of = {name: cat(name) for name in ROW_ARRAYS}
    for name in ZONE_ARRAYS:
        parts = [getattr(e, name)[:, c] for e, c, _, _ in cand_parts]
        rows_of[name] = np.concatenate(parts, axis=1) if parts else None
    bucket = bucket_of(ids["card_hi"], job.buckets)
    for b in range(job.buckets):
        mine = np.flatnonzero(bucket == b)  # candidate numbers, in row order
        save(scratch_path(job, f"c{chunk.index:06d}.b{b:03d}"),
             {"cand": mine, **{k: (None if v is None else v[..., mine])
                               for k, v in rows_of.items()}})
    return {"rows": rows, "candidates": len(bucket), "slow_rows": slow}


# -- 2. price a card bucket ----------------------------------------------------------------
def price_bucket(job: Job, bucket: int, chunks: list[int], latest: int | None) -> dict:
    """Stage 2: price every row of card bucket ``bucket`` the id pass accepted, in input
    order, against the bucket's part of the state (``b<bucket>.state``, written by the
    client), the latest day of each row as the id pass settled it.  Returns
    ``{"rows", "zero_effect"}``."""
    book, registry, _ = _setup(job)
    counters, index = read_tables(scratch_path(job, f"b{bucket:03d}.state"))
    state = State(job.retention_days, Keyer(job.key))
    state.set_tables(counters, index, None if latest is None
                     else dt.date(1970, 1, 1) + dt.timedelta(days=latest))
    engine = make_engine(job.backend, book, registry, state, job.business_date)
    parts, now, owners = [], [], []
    for c in chunks:
        rows = load(scratch_path(job, f"c{c:06d}.b{bucket:03d}"))
        settled = load(scratch_path(job, f"c{c:06d}.settled"))
        cand = rows["cand"]
        taken = settled["reason"][cand] == 0
        parts.append({k: (v[..., taken] if isinstance(v, np.ndarray) else v)
                      for k, v in rows.items()})
        now.append(settled["now"][cand][taken])
        owners.append((c, cand[taken]))
    n = sum(len(p["cand"]) for p in parts)
    nz = len(engine.flat.zone_names)
    names = list(ROW_ARRAYS)
    enc = Encoded(n, np.zeros(n, np.int8),
                  *[_joined(parts, name, (0,), ROW_ARRAYS[name]) for name in names[:6]],
                  _joined(parts, "day", (nz, 0), np.int32),
                  _joined(parts, "inst", (nz, 0), np.int64),
                  *[_joined(parts, name, (0,), ROW_ARRAYS[name]) for name in names[6:]],
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
    write_tables(scratch_path(job, f"b{bucket:03d}.priced-state"), *state.tables())
    return {"rows": n, "zero_effect": engine.zero_effect_reversals}


def _joined(parts, name, empty_shape, dtype):
    arrays = [p[name] for p in parts if p[name] is not None]
    if not arrays:
        return np.zeros(empty_shape, dtype)
    return np.ascontiguousarray(np.concatenate(arrays, axis=-1), dtype)


def write_tables(path: Path, counters: pa.Table, index: pa.Table):
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with pa.OSFile(str(tmp), "wb") as fh:
        for table in (counters, index):
            with ipc.new_stream(fh, table.schema) as w:
                w.write_table(table)
    os.replace(tmp, path)


def read_tables(path: Path) -> tuple[pa.Table, pa.Table]:
    with pa.memory_map(str(path)) as src:
        counters = ipc.open_stream(src).read_all()
        index = ipc.open_stream(src).read_all()
    return counters, index


# -- 3. the chunk's outputs ----------------------------------------------------------------
def assemble_chunk(job: Job, chunk: Chunk) -> dict:
    """Stage 3: the chunk's priced and reject batches in input order (``c<chunk>.out``),
    with their digest bytes and totals.  Returns ``{"priced", "rejected", "totals"}``."""
    _, _, engine = _setup(job)
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
    source = _source(job, chunk)
    for piece, batch in zip(pieces, source.window_batches(list(chunk.window))):
        stop = start + piece["n"]
        enc = _OutputsOf(piece)
        part = {k: v[start:stop] for k, v in out.items()}
        priced, rejects = engine.outputs(batch, enc, part, strings)
        priced_out.append(priced)
        reject_out.append(rejects)
        totals.add(priced, rejects)
        digest.append(row_bytes(priced))
        start = stop
    path = scratch_path(job, f"c{chunk.index:06d}.out")
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with pa.OSFile(str(tmp), "wb") as fh:
        for batches in (priced_out, reject_out):
            schema = batches[0].schema if batches else pa.schema([])
            with ipc.new_stream(fh, schema) as w:
                for b in batches:
                    w.write_batch(b)
    os.replace(tmp, path)
    save(scratch_path(job, f"c{chunk.index:06d}.digest"), b"".join(digest))
    return {"priced": sum(b.num_rows for b in priced_out),
            "rejected": sum(b.num_rows for b in reject_out), "totals": totals}


class _OutputsOf:
    """What :meth:`CompiledEngine.outputs` reads of an encoding, from a chunk's piece."""

    def __init__(self, piece: dict):
        self.amount, self.amount_ok, self.rejects = piece["amount"], piece["amount_ok"], \
            piece["rejects"]


def read_outputs(job: Job, index: int) -> tuple[list[pa.RecordBatch], list[pa.RecordBatch]]:
    """The priced and reject batches :func:`assemble_chunk` wrote for chunk ``index``."""
    with pa.memory_map(str(scratch_path(job, f"c{index:06d}.out"))) as src:
        priced = list(ipc.open_stream(src))
        rejects = list(ipc.open_stream(src))
    return priced, rejects

