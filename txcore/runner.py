"""Orchestration of ``txcore run``: reader -> validate -> price -> write, with rules and state.

All reference data and rules are loaded and validated before anything is
written.  Outputs are written into a staging folder and the run commits —
state and outputs together — only when every input has been read whole
(:mod:`txcore.state.store`); an input that cannot be read stops the run (exit 3)
and nothing of the run is committed.
"""
from __future__ import annotations

import datetime as dt
import fcntl
import os
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tqdm import tqdm

import txcore
from txcore import cardno, durable, paths, pipeline, summary as summary_mod
from txcore.bounds import check_int
from txcore.pipeline import MAX_WORKERS
from txcore.business_date import parse_option as parse_business_date, resolve_business_date
from txcore.engine import DEFAULT_BACKEND, make_engine
from txcore.engine.prepass import lookup_query
from txcore.io.digest import FileDigest, run_digest
from txcore.errors import InputRefused, RowsLost, StateError, UsageError, WriteError
from txcore.io.reader import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE, BackgroundHashes, InputSource
from txcore.rules.refdata import load_cards, load_merchants
from txcore.rules.book import load_book
from txcore.state.memory import DEFAULT_RETENTION_DAYS, State, check_retention_days
from txcore.state.store import Staging, StateStore
from txcore.io.writer import OUTPUT_FORMATS, BatchWriter
from txcore.plan import partitioned
from txcore.plan.executors import ENGINES, make_executor

#: Where a run's tasks run: this machine's processes, or a Dask cluster (docs/parallel.md).


def run(files, *, rules, cards, out_dir, state_dir=None, merchants=None, fmt="parquet",
        batch_size=DEFAULT_BATCH_SIZE, retention_days=DEFAULT_RETENTION_DAYS,
        backend=DEFAULT_BACKEND, progress=None, command="run", skip_committed=False,
        key_file=None, snapshot=None, workers=1, business_date=None, institutions=None,
        iso_spec=None, engine="local", scheduler=None) -> dict:
    """Price ``files`` in order; return the run summary (also written as summary.json).

    ``state_dir=None`` prices from an empty state and saves none.  ``progress``:
    None shows a progress bar only when stderr is a terminal.  An input whose
    sha256 the state's ledger holds is refused (exit 3), or with
    ``skip_committed`` left out of the run and listed under ``skipped``.
    ``key_file``: the card key (:mod:`txcore.state.keys`), default ``<state>/card.key``.
    ``snapshot`` (without ``state_dir``): start from that committed state, read only,
    ledger ignored — for replay.  ``workers``: threads for the run's stages
    (:mod:`txcore.pipeline`); the output does not depend on it.  ``business_date``
    (a date or ``"YYYY-MM-DD"``): rows dated more than a day after it are rejected bad_ts;
    default the latest date in the input names, else today (docs/business-date.md).
    ``institutions`` and ``iso_spec`` are for ``.iso8583`` inputs (docs/iso8583.md).
    ``engine``: ``"processes"`` — with ``workers`` > 1, Parquet inputs are priced by the
    partitioned plan on that many worker processes (docs/parallel.md); ``"threads"`` —
    one process, its stages on ``workers`` threads; ``"local"`` (default) — processes
    where the plan keeps at least ``partitioned.LOCAL_PLAN_FROM`` of them busy, else
    threads; ``"dask"`` — the plan on a Dask ``LocalCluster`` of ``workers`` processes, or
    on the cluster at ``scheduler``; or an executor of :mod:`txcore.plan.executors`, left
    open.  The output is the same whichever runs it.
    """
    started = time.perf_counter()
    _check_options(files, fmt, batch_size, workers, retention_days)
    # 1. rules and reference data, all validated before anything is written
    book = load_book(rules, load_merchants(merchants) if merchants else None)
    registry = load_cards(cards)
    business = business_date_of(business_date, files, book)
    # 2. inputs, output names and folders
    sources = _open_inputs(files, batch_size, book, institutions, business[0], iso_spec)
    out_dir = paths.usable_folder(out_dir, "output folder", UsageError)
    if state_dir:
        paths.usable_folder(state_dir, "state folder", StateError)
    with ExitStack() as stack:
        # the workers of a partitioned run start now, beside the client's own start
        executor = _plan_executor(stack, sources, backend, engine, workers, scheduler)
        # 3. the state: locked, verified, a crashed run's publication rolled forward;
        #    then OUTDIR locked, so no other run stages or cleans up in it meanwhile.  A
        #    partitioned run loads the rest of the state once its workers have hashed the
        #    rows' ids (load_state)
        store, state, load_state = _open_state(stack, state_dir, snapshot, key_file,
                                               retention_days, sources, executor is not None)
        stack.enter_context(lock(out_dir, None, "output folder"))
        owner = str(Path(state_dir).resolve()) if state_dir else ""
        Staging.clean_stale(out_dir, owner)
        run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
        if executor is None and workers > 1 and not skip_committed:
            # the input files are hashed on a thread beside the pricing, each checked
            # against the ledger as soon as its hash is done (_price_all), not first
            stack.callback(BackgroundHashes(sources).close)
        skipped = _set_aside_committed(sources, state, skip_committed)
        pricer = None if executor else make_engine(backend, book, registry, state, business[0])
        staging = _staging(out_dir, run_id, owner)
        try:
            # 4. price into the staging folder, then commit state and outputs together
            #    (or, without a state, publish the outputs)
            if executor is not None:
                result, state = partitioned.price(
                    sources, job_options=dict(
                        rules=str(Path(rules).resolve()), cards=str(Path(cards).resolve()),
                        merchants=str(Path(merchants).resolve()) if merchants else None,
                        business_date=business[0], backend=backend, batch_size=batch_size),
                    book=book, state=state, load_state=load_state, store=store,
                    staging=staging, fmt=fmt, executor=executor)
                result["workers"] = workers
            else:
                reserve = getattr(pricer, "reserve", None)
                if reserve is not None:  # room in the state for the rows declared, once
                    reserve(sum(s.reservable_rows() for s in sources))
                result = _price_all(sources, pricer, staging, fmt, progress, command, workers)
            result.update(command=command, run_id=run_id, txcore_version=txcore.__version__,
                          skipped=skipped, business_date={"date": business[0].isoformat(),
                                                          "source": business[1]})
            result["elapsed_seconds"] = elapsed = round(time.perf_counter() - started, 3)
            result["rows_per_second"] = round(result["rows"]["input"] / elapsed, 1) \
                if elapsed > 0 else 0.0
            durable.write_bytes(staging.path("summary.json"), summary_mod.to_json(result),
                                "output:summary.json")
            if store is not None:
                for i in result["inputs"]:
                    state.ledger[i["sha256"]] = {"file": i["file"], "rows": i["rows"],
                                                 "run_id": run_id}
                store.commit(state, run_id, staging, workers)
            else:
                staging.publish()
            return result
        except OSError as exc:
            raise _write_failed(exc, store, staging, run_id) from exc
        except BaseException:
            staging.discard()
            raise


def _plan_executor(stack, sources, backend, engine, workers, scheduler):
    """The executor of a partitioned run (closed with ``stack``), or None: the run is
    priced in this process (one worker, or inputs the plan does not take)."""
    if not isinstance(engine, str):  # an executor given through the Python API: the
        if not partitioned.plannable(sources, backend):  # caller closes it
            raise UsageError("the partitioned plan prices Parquet inputs with the cython "
                             "or numba backend (docs/parallel.md)")
        return engine
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r} (choose from {', '.join(ENGINES)})")
    if engine != "dask" and scheduler:
        raise UsageError("--scheduler needs --engine dask")
    plannable = partitioned.plannable(sources, backend)
    if engine in ("dask", "processes") and not plannable:
        raise UsageError(f"--engine {engine} prices Parquet inputs with the cython or numba "
                         f"backend (docs/parallel.md)")
    if engine == "dask":
        return _closed_with(stack, make_executor(engine, workers, scheduler))
    if workers == 1 or engine == "threads" or not plannable:
        return None
    chunks = sum(len(s.parquet_windows()) for s in sources)
    if engine == "local" and min(workers, chunks) < partitioned.LOCAL_PLAN_FROM:
        return None  # the threads of one process are faster here (docs/parallel.md)
    # no more processes than chunks to read (but two, to price the card buckets)
    return _closed_with(stack, make_executor("local", min(workers, max(2, chunks))))


def _closed_with(stack, executor):
    stack.callback(executor.close)
    return executor


def _check_options(files, fmt, batch_size, workers, retention_days):
    """Refuse (exit 2) what no run can use, before anything is read."""
    if fmt not in OUTPUT_FORMATS:
        raise UsageError(f"unknown output format {fmt!r} (choose from {', '.join(OUTPUT_FORMATS)})")
    if not files:
        raise UsageError("no input files given")
    if [str(f) for f in files].count("-") > 1:
        raise UsageError("stdin (-) can be given once")
    try:
        check_int("--batch-size", batch_size, 1, MAX_BATCH_SIZE)
        check_int("--workers", workers, 1, MAX_WORKERS)
        check_retention_days(retention_days)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _open_inputs(files, batch_size, book, institutions, business_day, iso_spec) -> list:
    """The inputs, refused (exit 2) when two would write the same outputs."""
    sources = open_sources(files, batch_size, book, institutions, business_day, iso_spec)
    stems = [s.stem for s in sources]
    dupes = sorted({s for s in stems if stems.count(s) > 1})
    if dupes:
        raise UsageError(f"two inputs would write the same outputs: {', '.join(dupes)}")
    return sources


def _open_state(stack, state_dir, snapshot, key_file, retention_days, sources,
                deferred=False):
    """``(store, state, load_state)``: the state folder locked and loaded for what the
    inputs' rows can look up; a snapshot read only, its ledger ignored (replay); or a new
    empty state (``store`` None for both of those: nothing is committed).

    ``deferred`` (a partitioned run): ``state`` holds only the ledger and the key, and
    ``load_state(query)`` loads the rest for the :class:`~txcore.state.store.Query` that
    ``query()`` makes from the run's workers' digests — unless nothing is committed yet
    (the state is empty, and known); otherwise ``load_state`` is None."""
    folder = state_dir or snapshot
    if not folder:
        return None, State(retention_days), None
    if state_dir:
        stack.enter_context(lock(state_dir))
    store = StateStore(folder, key_file, readonly=not state_dir)

    def load_state(query):
        loaded = store.load(retention_days,
                            query() if store.manifest["generation"] else None)
        if not state_dir:
            loaded.ledger = {}  # a replay re-prices files the snapshot may have committed
        return loaded

    if deferred and store.manifest["generation"]:
        state = State(retention_days, store.keyer)
        state.ledger = store.read_ledger() if state_dir else {}
        return (store if state_dir else None), state, load_state
    return (store if state_dir else None), \
        load_state(lambda: lookup_query(sources, store.keyer)), None


def _set_aside_committed(sources, state, skip_committed) -> list[dict]:
    """Refuse (exit 3) an input the ledger holds, or with ``skip_committed`` take it out
    of ``sources``; the skipped, for the summary.  An input still being hashed
    (:class:`BackgroundHashes`) is checked while it is priced (:func:`_refuse_committed`)."""
    skipped = []
    for source in list(sources):
        if source.path is None and skip_committed and state.ledger:
            source.spool_stdin()  # its hash decides, before any of its rows is priced
        if source.hash_ready and source.sha256 in state.ledger:
            if not skip_committed:
                raise _already_committed(source, state)
            skipped.append({"file": source.name, "sha256": source.sha256,
                            "committed_by": state.ledger[source.sha256]["run_id"]})
            sources.remove(source)
    return skipped


def _staging(out_dir, run_id, owner) -> Staging:
    try:
        return Staging(out_dir, run_id, owner)
    except OSError as exc:
        raise WriteError(f"{out_dir}: cannot create the run's staging folder: "
                         f"{exc.strerror or exc}; nothing of this run was committed") from exc


def _write_failed(exc: OSError, store, staging, run_id) -> WriteError:
    """The exit-4 error of a run whose outputs or state could not be written, after
    removing what it left — unless the run is committed, when the next run publishes."""
    if store is not None and store.committed_run_id() == run_id:
        return WriteError(f"the run is committed but publishing its outputs failed: {exc}; "
                          f"the next txcore run on this state publishes them")
    staging.discard()
    if store is not None:
        try:
            store.remove_uncommitted()
        except OSError:
            pass  # the next run removes them
    return WriteError(f"cannot write the run's outputs or state: {exc}; nothing of this run "
                      f"was committed, the last committed state is intact")


def _price_all(sources, engine, staging, fmt, progress, command, workers=1) -> dict:
    """Read, price and write every source into ``staging``; the summary's body."""
    totals = summary_mod.Totals()
    inputs, writers = [], []
    show = sys.stderr.isatty() if progress is None else progress
    bar = tqdm(total=None, unit="rows", unit_scale=True, disable=not show, file=sys.stderr,
               desc=command)
    stage = pipeline.OrderedJobs(workers)
    try:
        for source in sources:
            if len(sources) == 1:
                bar.total = source.expected_rows()
            out = {}  # this source's writers, made at its first batch
            digest = FileDigest()
            ends, seen = source.window_ends(), [0]

            def write(priced, rejects, n, source=source, out=out, digest=digest, ends=ends,
                      seen=seen):
                digest.add(priced)
                if not out:
                    out["priced"], out["rejects"] = _writers(staging, source, priced.schema,
                                                             rejects.schema, fmt)
                    writers.extend(out.values())
                out["priced"].write(priced)
                out["rejects"].write(rejects)
                seen[0] += n
                if seen[0] in ends:  # the priced rows of a window: row groups of their own
                    out["priced"].end_group()
                totals.add(priced, rejects)
                bar.update(n)

            checked = False
            for batch in pipeline.prefetched(source.batches(), workers):
                if not checked and source.hash_ready:
                    _refuse_committed(source, engine.state)
                    checked = True
                priced, rejects = source.price(engine, batch)
                stage.submit(lambda p=priced, r=rejects, n=batch.num_rows: write(p, r, n))
            stage.drain()
            if not out:  # no rows at all: still write the (empty) outputs
                out["priced"], out["rejects"] = _writers(staging, source,
                                                         *source.output_schemas(), fmt)
                writers.extend(out.values())
            priced_w, rejects_w = out["priced"], out["rejects"]
            _refuse_committed(source, engine.state)  # stdin: its hash is known only now
            _check_rows(source.name, source.rows, priced_w.rows, rejects_w.rows)
            inputs.append({"file": source.name, "sha256": source.sha256, "rows": source.rows,
                           "priced": priced_w.rows, "rejected": rejects_w.rows,
                           "digest": digest.hexdigest(),
                           "priced_output": priced_w.path.name,
                           "rejects_output": rejects_w.path.name})
        for w in writers:
            w.close()
    except BaseException:
        stage.close()
        for w in writers:
            w.discard()
        raise
    finally:
        stage.close()
        bar.close()
    n_in = sum(i["rows"] for i in inputs)
    _check_rows("the run", n_in, totals.priced, totals.rejected)
    return {"finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "backend": engine.name, "card_check": cardno.IMPLEMENTATION, "inputs": inputs,
            "rows": {"input": n_in, "priced": totals.priced, "rejected": totals.rejected},
            "digest": run_digest([i["digest"] for i in inputs]), "workers": workers,
            **totals.as_dict(), "zero_effect_reversals": engine.zero_effect_reversals}


def open_sources(files, batch_size, book, institutions=None, business_day=None, iso_spec=None):
    """The inputs, in order: an ``.iso8583`` log with the institutions, specification and
    business date (``business_day``, resolved) it needs; ``institutions`` is required when
    any input is one."""
    from txcore.io.iso8583 import IsoOptions, IsoSource, Layout, is_iso_input, load_spec
    from txcore.rules.institutions import load_institutions
    specs = [str(f) for f in files]
    if not any(is_iso_input(s) for s in specs):
        return [InputSource(s, batch_size) for s in specs]
    if institutions is None:
        raise UsageError("--institutions FILE is required for .iso8583 inputs")
    options = IsoOptions(load_institutions(institutions), business_day,
                         Layout(load_spec(iso_spec)))
    return [IsoSource(s, batch_size, options) if is_iso_input(s) else InputSource(s, batch_size)
            for s in specs]


def business_date_of(option, files, book) -> tuple[dt.date, str]:
    """``(date, source)`` of a command's business date (``option``: a date, text or None)."""
    if isinstance(option, str):
        try:
            option = parse_business_date(option)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    elif option is not None and (isinstance(option, dt.datetime)
                                 or not isinstance(option, dt.date)):
        raise UsageError(f"business_date must be a date, got {option!r}")
    zone = book.zone_at(dt.datetime.now(dt.timezone.utc))
    return resolve_business_date(option, [str(f) for f in files], zone)


def _check_rows(what: str, n_in: int, priced: int, rejected: int):
    """``input = priced + rejected``, or the run stops before its commit (not an
    ``assert``: it must hold under ``python -O`` too)."""
    if n_in != priced + rejected:
        raise RowsLost(f"{what}: {n_in} input rows but {priced} priced + {rejected} rejected; "
                       f"nothing of this run was committed")


def _writers(staging, source, priced_schema_, rejects_schema_, fmt):
    return (BatchWriter(staging.path(f"{source.stem}.priced.{fmt}"), priced_schema_, fmt),
            BatchWriter(staging.path(f"{source.stem}.rejects.{fmt}"), rejects_schema_, fmt))


@contextmanager
def lock(folder, name="LOCK", what="state"):
    """One run at a time per state folder, and per output folder: an advisory lock on
    ``<state>/LOCK``, and (``name=None``) on the output folder itself, so nothing is
    left behind in OUTDIR.  A second run is refused (exit 2)."""
    path = Path(folder)
    target = path if name is None else path / name
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY if name is None
                     else os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    except OSError as exc:
        raise StateError(cardno.redact(f"{target}: cannot open the {what}'s lock: "
                                       f"{exc.strerror or exc}")) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise StateError(f"{path}: another txcore run is using this {what}") from None
        except OSError as exc:
            raise StateError(cardno.redact(f"{target}: cannot lock: "
                                           f"{exc.strerror or exc}")) from None
        yield
    finally:
        os.close(fd)


def _refuse_committed(source, state):
    """Refuse (exit 3) an input the ledger holds, its hash known now (waited for if not)."""
    if source.sha256 in state.ledger:
        raise _already_committed(source, state)


def _already_committed(source, state) -> InputRefused:
    seen = state.ledger[source.sha256]
    return InputRefused(f"{source.name}: already committed (sha256 {source.sha256[:16]}..., as "
                        f"{seen['file']!r}) by run {seen['run_id']}; it is never priced twice "
                        f"(--skip-committed skips it)")


def bundled_data() -> tuple[Path, Path]:
    """``(rules_dir, fixtures_dir)`` shipped with txcore (wheel) or beside it (checkout)."""
    package = Path(txcore.__file__).parent
    for base in (package / "_bundled", package.parent):
        if (base / "rules").is_dir() and (base / "fixtures" / "cards.csv").is_file():
            return base / "rules", base / "fixtures"
    raise UsageError("the bundled rules and fixtures are not installed with this txcore")


#: How the bundled fixtures were made, from the generator's default start day
#: (``tests/test_fixtures.py`` holds them to it).
DEMO_FIXTURES = {"members": 5000, "days": 5, "seed": 2013}


def demo(out_dir=None, backend=DEFAULT_BACKEND, progress=None, workers=1,
         iso8583=False) -> dict:
    """Price the bundled fixture days with the default rules, from an empty state.

    ``iso8583``: price the same days as the card switch logged them instead — ISO 8583
    message logs written by the fixtures generator (with declined and network
    messages besides the transactions) and the institutions file that maps acquirers
    to banks and cities."""
    rules_dir, fixtures_dir = bundled_data()
    out_dir = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="txcore-demo-"))
    with ExitStack() as stack:
        state_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="txcore-demo-state-"))
        files, extra = sorted(fixtures_dir.glob("txns-*.parquet")), {}
        if iso8583:
            from txcore.fixtures import switch_fixtures
            logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="txcore-demo-iso-")))
            switch_fixtures(logs, **DEMO_FIXTURES)
            files = sorted(logs.glob("switch-*.iso8583"))
            extra = {"institutions": logs / "institutions.csv"}
        return run(files, rules=rules_dir,
                   cards=fixtures_dir / "cards.csv", merchants=fixtures_dir / "merchants.csv",
                   out_dir=out_dir, state_dir=state_dir, backend=backend, progress=progress,
                   command="demo", workers=workers, **extra) | {"out_dir": str(out_dir)}
