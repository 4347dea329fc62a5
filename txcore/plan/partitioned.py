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
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from txcore import cardno
from txcore._fast import layout as L
from txcore._fast.layout import Strings
from txcore.engine.flatrules import compile_book
from txcore.errors import RowsLost
from txcore.io.digest import FileDigest, run_digest
from txcore.io.stitch import Part, stitch
from txcore.io.writer import BatchWriter
from txcore.plan import idpass
from txcore.plan.executors import InProcess
from txcore.plan.scratch import load, save, scratch_path, write_tables
from txcore.plan.tasks import (Chunk, Job, assemble_chunk, encode_chunk, merge_segment,
                               price_bucket, read_outputs)
from txcore.state.compact import digest_words
from txcore.state.segments import Written, bucket_of
from txcore.summary import Totals
from txcore.timeconv import EPOCH_DAY

#: The backends whose kernel a partitioned run uses (the reference engine prices in
#: one process, row by row).
PLAN_BACKENDS = ("cython", "numba")
#: ``--engine local`` takes the plan when it keeps at least this many worker processes
#: busy (``--workers`` and chunks to read); below, one process on threads is faster.
#: Measured on the 10 M-row month (benchmarks/README.md, sixth pass): the plan spends
#: ~1.5x the CPU of one process (1.7x on two worker processes) moving rows to card buckets
#: and back, so on two cores it gains 1.0-1.2x where threads gain 1.5-2.0x; from three
#: cores its gain passes the threads' ceiling.
LOCAL_PLAN_FROM = 3


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
    # the state segments the tasks write: kept after the scratch is gone, until the commit
    # moves them into the state folder (or the staging folder is dropped with them)
    segments = staging.dir / "plan-segments"
    segments.mkdir()
    # card buckets: the state's own (each task's records are then one segment's), as
    # many times over as it takes to give every worker one
    per = store.buckets if store is not None else 1
    buckets = per * -(-executor.workers // per)
    job = Job(token=uuid.uuid4().hex, key=state.keyer.key, buckets=buckets, fmt=fmt,
              retention_days=state.retention_days, scratch=str(scratch), state_buckets=per,
              generation=0 if store is None else store.manifest["generation"] + 1,
              segments=str(segments), **job_options)
    clock = _Clock(tasks_elsewhere=not isinstance(executor, InProcess))
    try:
        windows = [(s, tuple(w)) for s, source in enumerate(sources)
                   for w in source.parquet_windows()]
        chunks = [Chunk(i, s, str(sources[s].path), w) for i, (s, w) in enumerate(windows)]
        order = [c.index for c in chunks]
        rows = sum(s.reservable_rows() for s in sources)  # never more than the bytes
        if load_state is None:
            # the state is known already: each chunk is settled as soon as it and those
            # before it are encoded, while the workers encode the next
            counters, index = state.tables()
            settler = idpass.RunSettler(job, rows, index, state.latest)
            encoded, settling = [], 0.0
            for chunk, result in zip(chunks, executor.imap(encode_chunk, [job] * len(chunks),
                                                           chunks)):
                encoded.append(result)
                t = time.process_time()
                settler.settle(chunk.index)
                settling += time.process_time() - t
            clock.lap("read_encode_id_pass", encoded, id_pass_cpu=settling)
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
        _split_state(job, counters, index, store)
        clock.lap("split_state")
        start = None if state.latest is None else (state.latest - EPOCH_DAY).days
        strings = _state_strings(store, book)
        priced = executor.map(price_bucket, [job] * buckets, range(buckets),
                              [order] * buckets, [start] * buckets, [strings] * buckets,
                              [latest] * buckets)
        clock.lap("price_buckets", priced)
        if store is not None and buckets != per:  # each state bucket's segment, merged
            written = executor.map(merge_segment, [job] * per, range(per))
            clock.lap("merge_segments", written)
        else:
            written = priced
        # the outputs: each chunk written as soon as it and those before it are assembled
        outputs, assembled, writing = _Outputs(job, sources, chunks, encoded, staging, fmt), \
            [], 0.0
        try:
            for chunk, result in zip(chunks, executor.imap(assemble_chunk,
                                                           [job] * len(chunks), chunks)):
                assembled.append(result)
                t = time.process_time()
                outputs.add(chunk, result)
                writing += time.process_time() - t
            body = outputs.body()
        except BaseException:
            outputs.discard()
            raise
        clock.lap("assemble_write", assembled, write_outputs_cpu=writing)
        body["zero_effect_reversals"] = sum(p["zero_effect"] for p in priced)
        if store is not None:
            _new_state(job, state, [w["segment"] for w in written], latest)
            clock.lap("merge_state")
        body["stage_seconds"] = clock.laps
        body["scratch_bytes"] = outputs.dropped + sum(f.stat().st_size
                                                      for f in scratch.iterdir())
        return body, state
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


class _Clock:
    """Each step's wall seconds, and CPU seconds (the client's, plus its tasks' own), for
    the summary (``stage_seconds``): the measured costs the scaling model starts from."""

    def __init__(self, tasks_elsewhere: bool):
        self.laps, self._elsewhere = {}, tasks_elsewhere
        self._t, self._cpu = time.perf_counter(), time.process_time()

    def lap(self, name: str, tasks=(), **client):
        """End step ``name``; ``tasks``: its tasks' results (their ``cpu``, counted unless
        they ran in this process); ``client``: CPU seconds of parts the client did within
        the step, reported beside it."""
        now, cpu = time.perf_counter(), time.process_time()
        spent = cpu - self._cpu + (sum(t["cpu"] for t in tasks) if self._elsewhere else 0.0)
        self.laps[name] = {"wall": round(now - self._t, 3), "cpu": round(spent, 3),
                           **{k: round(v, 3) for k, v in client.items()}}
        self._t, self._cpu = now, cpu


def _split_state(job: Job, counters: pa.Table, index: pa.Table, store):
    """The loaded state's counters and index entries, one file per card bucket of the
    plan (``b<bucket>.state``, to price with); and, with a state folder, the entries the
    load read as records, one file per state bucket (``s<bucket>.loaded``, what its
    segment is compared with)."""
    c_bucket = bucket_of(digest_words(counters.column("card"))[0], job.buckets)
    i_bucket = bucket_of(digest_words(index.column("card"))[0], job.buckets)
    for b in range(job.buckets):
        write_tables(scratch_path(job, f"b{b:03d}.state"),
                     counters.filter(pa.array(c_bucket == b)),
                     index.filter(pa.array(i_bucket == b)))
    if store is not None:
        for b, run in enumerate(store.loaded_runs()):
            save(scratch_path(job, f"s{b:03d}.loaded"), run)


@dataclass
class _Input:
    """One input's outputs while its chunks come in."""

    source: object
    digest: FileDigest = field(default_factory=FileDigest)
    priced: BatchWriter | None = None   # the priced file (but a Parquet one: parts)
    rejects: BatchWriter | None = None
    parts: list = field(default_factory=list)  # Parquet parts of the priced file
    schema: pa.Schema | None = None     # of the priced rows
    rows: int = 0
    n_priced: int = 0
    n_rejected: int = 0


class _Outputs:
    """The run's output files, written a chunk at a time in input order as the chunks
    are assembled — a Parquet priced file stitched from the chunks' parts when its
    input's last chunk is in; then the summary's body."""

    def __init__(self, job: Job, sources, chunks, encoded, staging, fmt: str):
        self.job, self.sources, self.encoded = job, sources, encoded
        self.staging, self.fmt = staging, fmt
        self.last = {c.source: c.index for c in chunks}  # each input's last chunk
        self.totals, self.inputs, self.writers = Totals(), [], []
        self._open: _Input | None = None
        self.dropped = 0  # bytes of the chunks' scratch files removed once written out

    def add(self, chunk: Chunk, assembled: dict):
        """Write chunk ``chunk``'s rows (chunks come in input order)."""
        self._close_empty(chunk.source)
        source = self.sources[chunk.source]
        out = self._open = self._open or _Input(source)
        priced, rejects = read_outputs(self.job, chunk.index)
        if assembled["schema"] is not None and out.rejects is None:
            out.schema = assembled["schema"]
            out.rejects = self._writer(source, "rejects", rejects[0].schema)
            if self.fmt != "parquet":
                out.priced = self._writer(source, "priced", out.schema)
        if assembled["part"]:  # its footer read now, while the workers assemble the next
            out.parts.append(Part(scratch_path(self.job, f"c{chunk.index:06d}.priced.parquet")))
        for b in priced:
            out.priced.write(b)
        if out.priced is not None:  # a chunk's priced rows: row groups of their own
            out.priced.end_group()
        for b in rejects:
            out.rejects.write(b)
        for rows in load(scratch_path(self.job, f"c{chunk.index:06d}.digest")):
            out.digest.add_bytes(rows)
        out.rows += self.encoded[chunk.index]["rows"]
        out.n_priced += assembled["priced"]
        out.n_rejected += assembled["rejected"]
        self.totals.merge(assembled["totals"])
        self.dropped += _drop_chunk(self.job, chunk.index)
        if self.last[chunk.source] == chunk.index:
            self._close()

    def _writer(self, source, kind: str, schema) -> BatchWriter:
        made = BatchWriter(self.staging.path(f"{source.stem}.{kind}.{self.fmt}"), schema,
                           self.fmt)
        self.writers.append(made)
        return made

    def _close(self):
        out, self._open = self._open, None
        source = out.source
        if out.rejects is None:  # no rows at all: still write the (empty) outputs
            out.schema, rejects_schema = source.output_schemas()
            out.rejects = self._writer(source, "rejects", rejects_schema)
            if self.fmt != "parquet":
                out.priced = self._writer(source, "priced", out.schema)
        if self.fmt == "parquet":
            name = f"{source.stem}.priced.{self.fmt}"
            priced_rows = stitch(out.parts, self.staging.path(name), out.schema)
        else:
            name = out.priced.path.name
            out.priced.close()
            priced_rows = out.priced.rows
        out.rejects.close()
        if out.rows != out.n_priced + out.n_rejected or priced_rows != out.n_priced \
                or out.rejects.rows != out.n_rejected:
            raise RowsLost(f"{source.name}: {out.rows} input rows but {priced_rows} priced + "
                           f"{out.rejects.rows} rejected; nothing of this run was committed")
        source.rows = out.rows
        self.inputs.append({"file": source.name, "sha256": source.sha256, "rows": out.rows,
                            "priced": out.n_priced, "rejected": out.n_rejected,
                            "digest": out.digest.hexdigest(), "priced_output": name,
                            "rejects_output": out.rejects.path.name})

    def _close_empty(self, before: int):
        """Write the (empty) outputs of the inputs before input ``before`` that had no
        chunk (a Parquet file without row groups)."""
        while self._open is None and len(self.inputs) < before:
            self._open = _Input(self.sources[len(self.inputs)])
            self._close()

    def discard(self):
        for w in self.writers:
            w.discard()

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


def _drop_chunk(job: Job, index: int) -> int:
    """Remove chunk ``index``'s scratch files once its outputs are written (no task reads
    them again: the client has every task's result), so the run frees their memory as it
    goes rather than all at its end, when every worker waits; the bytes removed.  Its
    Parquet part stays: the stitch takes it."""
    dropped = 0
    names = [f"c{index:06d}.{kind}" for kind in ("enc", "rows", "ids", "settled", "out",
                                                "digest")]
    names += [f"c{index:06d}.{kind}{b:03d}" for kind in "bp" for b in range(job.buckets)]
    for name in names:
        path = scratch_path(job, name)
        try:
            dropped += path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue  # a bucket without rows of this chunk
    return dropped


def _state_strings(store, book) -> list[str] | None:
    """The state folder's string table the commit numbers rule ids by, with the rule
    book's ids added as one process adds them — in their compiled order, before any row
    (so the committed files are byte for byte the same); None without a state folder."""
    if store is None:
        return None
    strings = store.strings_for_commit()
    compile_book(book, strings, Strings())
    return list(strings.values)


def _new_state(job: Job, state, written: list[dict | None], latest: int):
    """The state after the run, for the runner's commit: every bucket's counters, and
    each state bucket's segment as its task wrote it (``written``: manifest entries, None
    where no entry changed), for the commit to move in."""
    runs = [Written(None, None) if entry is None
            else Written(Path(job.segments) / entry["name"], entry) for entry in written]
    counters = pa.concat_tables([load(scratch_path(job, f"b{q:03d}.counters"))
                                 for q in range(job.buckets)])
    day = None if latest == L.NO_LATEST else EPOCH_DAY + dt.timedelta(days=latest)
    state.set_records(counters, runs, day)
