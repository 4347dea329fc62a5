"""The partitioned run: the client's side of the plan (docs/parallel.md).

1. the inputs are cut into chunks (windows of Parquet row groups); workers read,
   check and encode them in parallel (:func:`~txcore.plan.tasks.encode_chunk`);
2. the client settles every txn id and reversal original in one pass over the narrow
   id columns (:mod:`txcore.plan.idpass`) and splits the loaded state by card bucket;
3. workers price the card buckets in parallel, each with its part of the state and
   the compiled kernel (:func:`~txcore.plan.tasks.price_bucket`);
4. workers assemble each chunk's priced and reject rows in input order
   (:func:`~txcore.plan.tasks.assemble_chunk`); the client writes them into the
   outputs in order, and hands the runner the new state to commit — one commit, by
   one writer, after every task finished.

Tasks write only into a scratch folder inside the run's staging folder, which is
removed with it; so a failed run leaves nothing, and the commit is the runner's, as
for a run in one process.  The output is byte for byte what one process gives.
"""
from __future__ import annotations

import datetime as dt
import shutil
import time
import uuid

import numpy as np
import pyarrow as pa

from txcore import cardno
from txcore.engine.flatrules import compile_book
from txcore._fast.layout import Strings
from txcore.io.digest import FileDigest, run_digest
from txcore.io.writer import BatchWriter
from txcore.plan import idpass
from txcore._fast import layout as L
from txcore.plan.tasks import (Chunk, Job, assemble_chunk, encode_chunk, load, load_array,
                               price_bucket, read_outputs, scratch_path, write_tables)
from txcore.timeconv import EPOCH_DAY
from txcore.errors import RowsLost
from txcore.state.segments import bucket_of, sort_by_key
from txcore.state.compact import digest_words
from txcore.summary import Totals

#: The backends whose kernel a partitioned run uses (the reference engine prices in
#: one process, row by row).
PLAN_BACKENDS = ("cython", "numba")


def plannable(sources, backend: str) -> bool:
    """Whether a run can take the partitioned plan: a compiled backend, and every input
    a Parquet file (the unit a worker reads by itself is a window of row groups)."""
    return backend in PLAN_BACKENDS and bool(sources) and all(
        s.path is not None and s.format == "parquet" for s in sources)


def price(sources, *, job_options: dict, book, state, load_state, store, staging, fmt: str,
          executor) -> tuple[dict, object]:
    """Price ``sources`` by the plan into ``staging``: ``(summary body, state)`` — the body
    as the runner's ``_price_all`` gives it, the state after the run for the runner to
    commit.  ``load_state(query)`` (or None: ``state`` is whole) loads the state for the
    txn digests the workers found."""
    scratch = staging.dir / "plan-scratch"
    scratch.mkdir()
    # card buckets: the state's own (each task's records are then one segment's), as
    # many times over as it takes to give every worker one
    per = store.buckets if store is not None else 1
    buckets = per * -(-executor.workers // per)
    job = Job(token=uuid.uuid4().hex, key=state.keyer.key, buckets=buckets,
              retention_days=state.retention_days, scratch=str(scratch), **job_options)
    clock = _Clock()
    try:
        chunks = [Chunk(0, s, str(source.path), tuple(window))
                  for s, source in enumerate(sources) for window in source.parquet_windows()]
        chunks = [Chunk(i, c.source, c.path, c.window) for i, c in enumerate(chunks)]
        order = [c.index for c in chunks]
        rows = sum(s.reservable_rows() for s in sources)  # never more than the bytes
        if load_state is None:
            # the state is known already: each chunk is settled as soon as it and those
            # before it are encoded, while the workers encode the next
            counters, index = state.tables()
            settler = idpass.RunSettler(job, rows, index, state.latest)
            encoded = []
            for chunk, result in zip(chunks, executor.imap(encode_chunk, [job] * len(chunks),
                                                           chunks)):
                encoded.append(result)
                settler.settle(chunk.index)
            clock.lap("read_encode_id_pass", encoded)
        else:  # the state's entries are loaded for the digests the workers found
            encoded = executor.map(encode_chunk, [job] * len(chunks), chunks)
            clock.lap("read_encode", encoded)
            state = load_state(lambda: idpass.state_query(job, order))
            counters, index = state.tables()
            clock.lap("load_state")
            settler = idpass.RunSettler(job, rows, index, state.latest)
            for c in order:
                settler.settle(c)
            clock.lap("id_pass")
        latest = settler.latest
        _split_state(job, counters, index)
        clock.lap("split_state")
        start = None if state.latest is None else (state.latest - dt.date(1970, 1, 1)).days
        strings = _state_strings(store, book)
        priced = executor.map(price_bucket, [job] * buckets, range(buckets),
                              [order] * buckets, [start] * buckets, [strings] * buckets,
                              [latest] * buckets)
        clock.lap("price_buckets", priced)
        # the outputs: each chunk written as soon as it and those before it are assembled
        outputs, assembled = _Outputs(job, sources, chunks, encoded, staging, fmt), []
        try:
            for chunk, result in zip(chunks, executor.imap(assemble_chunk,
                                                           [job] * len(chunks), chunks)):
                assembled.append(result)
                outputs.add(chunk, result)
            body = outputs.body()
        except BaseException:
            outputs.discard()
            raise
        clock.lap("assemble_write", assembled)
        body["zero_effect_reversals"] = sum(p["zero_effect"] for p in priced)
        if store is not None:
            _new_state(job, state, store, latest)
            clock.lap("merge_state")
        body["stage_seconds"] = clock.laps
        body["scratch_bytes"] = sum(f.stat().st_size for f in scratch.iterdir())
        return body, state
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _Clock:
    """Each step's wall seconds, and CPU seconds (the client's, plus its tasks' own), for
    the summary (``stage_seconds``): the measured costs the scaling model starts from."""

    def __init__(self):
        self.laps = {}
        self._t, self._cpu = time.perf_counter(), time.process_time()

    def lap(self, name: str, tasks=()):
        now, cpu = time.perf_counter(), time.process_time()
        self.laps[name] = {"wall": round(now - self._t, 3),
                           "cpu": round(cpu - self._cpu + sum(t["cpu"] for t in tasks), 3)}
        self._t, self._cpu = now, cpu


def _split_state(job: Job, counters: pa.Table, index: pa.Table):
    """The loaded state's counters and index entries, one file per card bucket."""
    c_bucket = bucket_of(digest_words(counters.column("card"))[0], job.buckets)
    i_bucket = bucket_of(digest_words(index.column("card"))[0], job.buckets)
    for b in range(job.buckets):
        write_tables(scratch_path(job, f"b{b:03d}.state"),
                     counters.filter(pa.array(c_bucket == b)),
                     index.filter(pa.array(i_bucket == b)))


class _Outputs:
    """The run's output files, written a chunk at a time in input order as the chunks
    are assembled; then the summary's body."""

    def __init__(self, job: Job, sources, chunks, encoded, staging, fmt: str):
        self.job, self.sources, self.encoded = job, sources, encoded
        self.staging, self.fmt = staging, fmt
        self.last = {c.source: c.index for c in chunks}  # each input's last chunk
        self.totals, self.inputs, self.writers = Totals(), [], []
        self._open = None  # (priced writer, rejects writer, digest, counts) of an input

    def add(self, chunk: Chunk, assembled: dict):
        """Write chunk ``chunk``'s rows (chunks come in input order)."""
        self._close_empty(chunk.source)
        priced, rejects = read_outputs(self.job, chunk.index)
        if self._open is None:
            self._open = [None, None, FileDigest(), [0, 0, 0]]
        out = self._open
        if out[0] is None and priced:
            out[0], out[1] = self._writers(self.sources[chunk.source], priced[0].schema,
                                           rejects[0].schema)
        for b in priced:
            out[0].write(b)
        if out[0] is not None:  # a chunk's priced rows: row groups of their own
            out[0].end_group()
        for b in rejects:
            out[1].write(b)
        out[2].add_bytes(load(scratch_path(self.job, f"c{chunk.index:06d}.digest")))
        out[3][0] += self.encoded[chunk.index]["rows"]
        out[3][1] += assembled["priced"]
        out[3][2] += assembled["rejected"]
        self.totals.merge(assembled["totals"])
        if self.last[chunk.source] == chunk.index:
            self._close(self.sources[chunk.source])

    def _writers(self, source, priced_schema, rejects_schema):
        made = (BatchWriter(self.staging.path(f"{source.stem}.priced.{self.fmt}"),
                            priced_schema, self.fmt),
                BatchWriter(self.staging.path(f"{source.stem}.rejects.{self.fmt}"),
                            rejects_schema, self.fmt))
        self.writers.extend(made)
        return made

    def _close(self, source):
        priced_w, rejects_w, digest, (rows, n_priced, n_rejected) = self._open
        self._open = None
        if priced_w is None:  # no rows at all: still write the (empty) outputs
            priced_w, rejects_w = self._writers(source, *source.output_schemas())
        priced_w.close()
        rejects_w.close()
        if rows != n_priced + n_rejected or priced_w.rows != n_priced \
                or rejects_w.rows != n_rejected:
            raise RowsLost(f"{source.name}: {rows} input rows but {priced_w.rows} priced + "
                           f"{rejects_w.rows} rejected; nothing of this run was committed")
        source.rows = rows
        self.inputs.append({"file": source.name, "sha256": source.sha256, "rows": rows,
                            "priced": n_priced, "rejected": n_rejected,
                            "digest": digest.hexdigest(), "priced_output": priced_w.path.name,
                            "rejects_output": rejects_w.path.name})

    def discard(self):
        for w in self.writers:
            w.discard()

    def _close_empty(self, before: int):
        """Write the (empty) outputs of the inputs before input ``before`` that had no
        chunk (a Parquet file without row groups)."""
        while self._open is None and len(self.inputs) < before:
            self._open = [None, None, FileDigest(), [0, 0, 0]]
            self._close(self.sources[len(self.inputs)])

    def body(self) -> dict:
        self._close_empty(len(self.sources))
        totals, inputs = self.totals, self.inputs
        n_in = sum(i["rows"] for i in inputs)
        if n_in != totals.priced + totals.rejected:
            raise RowsLost(f"the run: {n_in} input rows but {totals.priced} priced + "
                           f"{totals.rejected} rejected; nothing of this run was committed")
        return {"finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "backend": self.job.backend, "card_check": cardno.IMPLEMENTATION,
                "inputs": inputs,
                "rows": {"input": n_in, "priced": totals.priced, "rejected": totals.rejected},
                "digest": run_digest([i["digest"] for i in inputs]), **totals.as_dict()}


def _state_strings(store, book) -> list[str] | None:
    """The state folder's string table the commit numbers rule ids by, with the rule
    book's ids added as one process adds them — in their compiled order, before any row
    (so the committed files are byte for byte the same); None without a state folder."""
    if store is None:
        return None
    strings = store.strings_for_commit()
    compile_book(book, strings, Strings())
    return list(strings.values)


def _new_state(job: Job, state, store, latest: int):
    """The state after the run, for the runner's commit: every bucket's counters, and its
    index entries (within the run's window) as one run of records per state bucket,
    sorted by key."""
    per = store.buckets
    runs = []
    for b in range(per):
        parts = [[load_array(scratch_path(job, f"b{q:03d}.{name}.npy"))
                  for name in ("hi", "lo", "recs")] for q in range(b, job.buckets, per)]
        if len(parts) == 1:
            runs.append(tuple(parts[0]))
            continue
        hi, lo, recs = (np.concatenate([p[k] for p in parts]) for k in range(3))
        order = sort_by_key(hi, lo)
        runs.append((hi[order], lo[order], recs[order]))
    counters = pa.concat_tables([load(scratch_path(job, f"b{q:03d}.counters"))
                                 for q in range(job.buckets)])
    day = None if latest == L.NO_LATEST else EPOCH_DAY + dt.timedelta(days=latest)
    state.set_records(counters, runs, day)
