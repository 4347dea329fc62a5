"""The state folder on disk, and the atomic commit of a run (user guide: docs/state.md).

Layout of ``--state DIR`` (format 4)::

    CURRENT                          the manifest of the committed generation (JSON,
                                     checksummed): every file below with its sha256
    seg.000012.b03.bin               index segment: the entries run 12 wrote for card
                                     bucket 3 (txcore.state.segments), dropped whole once its
                                     newest day leaves the retention window
    ctr.201511.000012.b03.bin        free-slot counters of bucket 3, November 2015, as
                                     run 12 left them (rewritten whole when they change)
    strings.000012.json              rule / waiver id strings the files' codes refer to
    ledger.000012.json               committed input files
    card.key                         the card key, unless kept elsewhere (txcore.state.keys)

A run reads only what the day's rows need: the txn digests of its rows are probed
against every live segment's sorted keys (memory-mapped), only the hits are loaded,
and only the counter files of the months its rows can touch; it writes one segment
per bucket and the counter files that changed.  Files a commit does not rewrite are
carried forward by the new manifest.  The card buckets (P, fixed when the state is
created, in the manifest) partition segments and counter files by a keyed hash of
the card, so a worker can own a bucket's files; txn-id uniqueness is global, so a
txn id is probed against every bucket's segment keys.

A run's outputs are written under ``OUTDIR/.txcore-staging-<run_id>/`` and its
new state as generation N+1 files, each fsynced.  The **commit point** is the
rename of ``CURRENT.tmp`` over ``CURRENT`` (then the folder is fsynced): before
it, the last committed state is untouched and no output of the run is visible;
after it, the run is committed and its outputs are published by renaming them
out of the staging folder.  That publication is rolled forward by whichever
txcore process opens the state next, so a crash between the two loses nothing.
Files of other generations and stale staging folders are removed.

A manifest or state file whose checksum does not match is reported
(:class:`StateError`) and never used.  Why a manifest swapped by rename rather
than SQLite: the state files are immutable, written once each, and one rename is
the simplest commit point that also covers files in OUTDIR.
"""
from __future__ import annotations

import datetime as dt
import errno
import hashlib
import hmac
import json
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from txcore import durable
from txcore._fast import compiled_or_twin
from txcore._fast.layout import Strings
from txcore.errors import StateError
from txcore.state import keys, segments
from txcore.state.memory import DEFAULT_RETENTION_DAYS, State

_probe = compiled_or_twin("probe")

OLD_FORMAT = 3
FORMAT = 4  # 4: segments and counter files by card bucket; 3: one Parquet index and counters
DEFAULT_BUCKETS = 4
MANIFEST = "CURRENT"
STAGING_PREFIX = ".txcore-staging-"
_PLAIN_NAME = re.compile(r"[^/\\\x00]+")


#: A staging folder's name: the prefix and a run id (``YYYYmmdd-HHMMSS-ffffff``).
STAGING_NAME = re.compile(re.escape(STAGING_PREFIX) + r"[0-9]{8}-[0-9]{6}-[0-9]{6}")
#: ``<state>/PUBLISHED``: the run id whose outputs were last published out of staging.
PUBLISHED = "PUBLISHED"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _checksum(manifest: dict, key: bytes) -> str:
    """HMAC-SHA256 of the manifest's body under a key derived from the card key: with the
    key kept outside the state (``--card-key``), whoever can write the state folder still
    cannot forge a manifest (one that points recovery somewhere else, say)."""
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    mac_key = hashlib.blake2b(b"txcore manifest key", key=key, digest_size=32).digest()
    return "hmac-sha256:" + hmac.new(mac_key, json.dumps(body, sort_keys=True).encode(),
                                     "sha256").hexdigest()


def _legacy_format3(manifest) -> bool:
    """A format-3 manifest as txcore wrote it before manifests carried a MAC: its checksum
    the plain sha256 of its body.  Read only to be upgraded."""
    if not isinstance(manifest, dict) or manifest.get("format") != OLD_FORMAT:
        return False
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return manifest.get("checksum") == _sha256(json.dumps(body, sort_keys=True).encode())


class Staging:
    """Where one run's outputs wait, unseen, until the run commits.

    ``owner`` names the state folder the run commits to ("" without state); it is
    kept in the staging folder so that only that state's leftovers are cleaned
    up — another state's committed-but-unpublished outputs are never touched.
    """

    OWNER_FILE = ".owner"

    def __init__(self, out_dir: Path, run_id: str, owner: str = ""):
        self.out_dir = Path(out_dir).resolve()
        self.dir = self.out_dir / f"{STAGING_PREFIX}{run_id}"
        self.dir.mkdir(parents=True, exist_ok=False)
        (self.dir / self.OWNER_FILE).write_text(owner)
        self.names: list[str] = []

    def path(self, name: str) -> Path:
        self.names.append(name)
        return self.dir / name

    def publish(self):
        publish(self.out_dir, self.dir, self.names)

    def discard(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    @classmethod
    def clean_stale(cls, out_dir: Path, owner: str = ""):
        """Remove ``owner``'s staging folders of runs that never committed.

        Call it after the owner's state was opened (which publishes a committed
        run's outputs): what is left of that owner then never committed.
        """
        for stale in Path(out_dir).glob(f"{STAGING_PREFIX}*"):
            marker = stale / cls.OWNER_FILE
            try:
                theirs = marker.read_text()
            except OSError:
                theirs = None  # died before writing its marker: it never committed
            if theirs is None or theirs == owner:
                shutil.rmtree(stale, ignore_errors=True)


def publish(out_dir: Path, staging_dir: Path, names: list[str], published=None):
    """Rename staged outputs into ``out_dir`` (idempotent: a rerun finishes the job).

    A missing staging folder is an error (``FileNotFoundError``), never a silent no-op:
    its outputs would be lost.  ``published()``, if given, is called once every output
    is in place and before the staging folder is removed (the state records it)."""
    if not staging_dir.is_dir():
        raise FileNotFoundError(errno.ENOENT, "the staging folder to publish is missing",
                                str(staging_dir))
    for name in names:
        src = staging_dir / name
        if src.exists():
            durable.replace(src, out_dir / name, f"publish:{name}")
    durable.fsync_dir(out_dir)
    if published is not None:
        published()
    shutil.rmtree(staging_dir, ignore_errors=True)
    durable.step("staging-removed")


@dataclass
class Query:
    """What a run's rows can look up: their txn digests (txn_id and orig_txn_id, sorted by
    ``(hi, lo)``, each once) and the earliest local date among them (None: unknown, every
    month's counters are read)."""

    hi: np.ndarray
    lo: np.ndarray
    earliest: dt.date | None

    @classmethod
    def of(cls, hi: np.ndarray, lo: np.ndarray, earliest: dt.date | None) -> Query:
        hi, lo = np.asarray(hi, np.uint64), np.asarray(lo, np.uint64)
        order = segments.sort_by_key(hi, lo)
        hi, lo = hi[order], lo[order]
        first = np.ones(len(hi), bool)  # each key once
        first[1:] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
        return cls(hi[first], lo[first], earliest)


@dataclass
class _Loaded:
    """What :meth:`StateStore.load` read, so a commit writes only what changed."""

    strings: Strings  # the state's string table, to which a run adds the ids it meets
    hi: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    lo: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    recs: np.ndarray = field(default_factory=lambda: np.zeros(0, segments.REC))
    months: set | None = None  # counter months read (None: all)
    counters: dict = field(default_factory=dict)  # (bucket, month) -> CREC rows, sorted
    stored_strings: int = 0  # how many strings the committed strings file holds


class StateStore:
    """A state folder: open (verify, roll forward), load, commit."""

    def __init__(self, folder, key_file=None, readonly=False, upgrading=False,
                 buckets: int = DEFAULT_BUCKETS):
        """Open a state folder.  ``readonly`` (a snapshot for replay): it must exist and
        is only read — no key is created, no publication rolled forward, nothing deleted.
        ``upgrading``: a format-3 state is opened (for :meth:`upgrade`) instead of refused.
        ``buckets``: the card buckets of a state created here (an existing one keeps its own)."""
        self.folder = Path(folder)
        path = keys.key_path(self.folder, key_file)
        if readonly and not ((self.folder / MANIFEST).is_file() and path.is_file()):
            raise StateError(f"{self.folder}: not a committed state (with its card key)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.keyer = keys.Keyer(keys.load_or_create(path))
        self.upgrading = upgrading
        self.manifest = self._read_manifest()
        self.fresh = self.manifest is None
        if self.fresh:  # a new state: generation 0, written at the first commit
            self.manifest = self._manifest(0, "init", None, self.keyer.fingerprint, {}, {}, None,
                                           buckets=buckets)
        if self.manifest["key_fingerprint"] != self.keyer.fingerprint:
            raise StateError(f"{self.folder}: the card key is not the one this state was "
                             f"written with; use the original key file")
        self._loaded: _Loaded | None = None
        if not readonly:
            self.recover()

    @property
    def buckets(self) -> int:
        return int(self.manifest.get("buckets", DEFAULT_BUCKETS))

    # -- reading --------------------------------------------------------------------
    def _read_manifest(self) -> dict | None:
        path = self.folder / MANIFEST
        if not path.exists():
            if any(_generation_file(p.name) for p in self.folder.iterdir()):
                raise StateError(f"{self.folder}: state files without a manifest ({MANIFEST}); "
                                 f"the state is incomplete and is not used")
            return None
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise StateError(f"{path}: torn or corrupt manifest: {exc}") from exc
        legacy = _legacy_format3(manifest)
        if not legacy and (not isinstance(manifest, dict)
                           or manifest.get("checksum") != _checksum(manifest, self.keyer.key)):
            if isinstance(manifest, dict) \
                    and manifest.get("key_fingerprint") != self.keyer.fingerprint:
                raise StateError(f"{self.folder}: the card key is not the one this state was "
                                 f"written with; use the original key file")
            raise StateError(f"{path}: manifest checksum mismatch (edited, corrupt, written "
                             f"by an earlier txcore or under another card key); the state "
                             f"is not used")
        if manifest.get("format") == OLD_FORMAT and not getattr(self, "upgrading", False):
            raise StateError(f"{path}: state format {OLD_FORMAT} (an older txcore's); convert "
                             f"it once with `txcore state upgrade {self.folder}`")
        if manifest.get("format") not in (FORMAT, OLD_FORMAT):
            raise StateError(f"{path}: state format {manifest.get('format')!r}, "
                             f"this txcore reads {FORMAT}")
        if legacy and manifest.get("outputs"):
            # its checksum is no MAC: it must not point a recovery at any folder
            raise StateError(f"{path}: the last run on this format-{OLD_FORMAT} state did not "
                             f"finish publishing its outputs; finish it with the txcore that "
                             f"wrote the state (run it again), then upgrade")
        return manifest

    def _read_file(self, kind: str) -> bytes:
        entry = self.manifest["files"][kind]
        path = self.folder / entry["name"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise StateError(f"{path}: committed state file cannot be read: {exc}") from exc
        if _sha256(data) != entry["sha256"]:
            raise StateError(f"{path}: checksum mismatch; the state is corrupt and is not used")
        return data

    def recover(self):
        """Finish a committed run's publication; drop what no commit refers to."""
        out = self.manifest.get("outputs")
        run_id = self.manifest["run_id"]
        if out and self._published() != run_id:
            out_dir, staging_dir, names = self._staged_outputs(out)
            publish(out_dir, staging_dir, names, lambda: self._mark_published(run_id))
        self.remove_uncommitted()

    def _staged_outputs(self, out) -> tuple[Path, Path, list[str]]:
        """The manifest's outputs, checked before anything is moved or deleted: the staging
        folder must be a real folder directly in OUTDIR, named as txcore names them and
        marked as this state's; every output a plain name.  Else :class:`StateError`."""
        where = f"{self.folder / MANIFEST}: committed outputs"
        try:
            out_dir, staging, names = Path(out["dir"]), out["staging"], list(out["names"])
        except (KeyError, TypeError) as exc:
            raise StateError(f"{where}: malformed ({exc})") from None
        if not out_dir.is_absolute() or ".." in out_dir.parts:
            raise StateError(f"{where}: OUTDIR {out_dir} is not an absolute, normalised path")
        if not isinstance(staging, str) or not STAGING_NAME.fullmatch(staging):
            raise StateError(f"{where}: {staging!r} is not a txcore staging folder name")
        bad = [n for n in names if not isinstance(n, str) or not _PLAIN_NAME.fullmatch(n)
               or n in (".", "..")]
        if bad:
            raise StateError(f"{where}: output names that are not plain file names: {bad}")
        staging_dir = out_dir / staging
        if not staging_dir.is_dir() or staging_dir.is_symlink():
            raise StateError(
                f"{where}: the staging folder {staging_dir} of committed run "
                f"{self.manifest['run_id']} is missing, so its outputs were never published. "
                f"Restore it (or the outputs) and rerun; to go on without them, write the run "
                f"id into {self.folder / PUBLISHED}")
        try:
            owner = (staging_dir / Staging.OWNER_FILE).read_text()
        except OSError:
            owner = None
        if owner != str(self.folder.resolve()):
            raise StateError(f"{where}: the staging folder {staging_dir} is not this state's "
                             f"(its owner mark names {owner!r}); nothing was moved")
        return out_dir, staging_dir, names

    def _published(self) -> str | None:
        try:
            return (self.folder / PUBLISHED).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None

    def _mark_published(self, run_id: str):
        tmp = self.folder / (PUBLISHED + ".tmp")
        durable.write_bytes(tmp, (run_id + "\n").encode(), "published")
        os.replace(tmp, self.folder / PUBLISHED)
        durable.fsync_dir(self.folder)

    def remove_uncommitted(self):
        """Delete state files no commit refers to (a failed or crashed run's)."""
        current = {f["name"] for f in self.manifest["files"].values()}
        for path in self.folder.iterdir():
            if (_generation_file(path.name) and path.name not in current) \
                    or path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)

    def committed_run_id(self) -> str | None:
        """The run id in CURRENT on disk (after a failure, whether it got there)."""
        try:
            return self._read_manifest()["run_id"]
        except (StateError, TypeError, KeyError):
            return None

    def files_of(self, kind: str) -> list[dict]:
        """The manifest entries of the segments (``"segment"``) or counter files
        (``"counters"``), oldest generation first."""
        found = [f for f in self.manifest["files"].values() if f.get("kind") == kind]
        return sorted(found, key=lambda f: (f["generation"], f["name"]))

    def _strings(self) -> Strings:
        if "strings" not in self.manifest["files"]:
            return Strings()
        try:
            return Strings(json.loads(self._read_file("strings")))
        except ValueError as exc:
            raise StateError(f"{self.folder}: state cannot be read: {exc}") from exc

    def load(self, retention_days: int = DEFAULT_RETENTION_DAYS,
             query: Query | None = None) -> State:
        """The committed state: whole (``query`` None: replay, tests, upgrade — every file's
        sha256 checked), or only what a run's rows can look up (``query``)."""
        state = State(retention_days, self.keyer)
        if self.manifest["generation"] == 0:
            self._loaded = _Loaded(Strings(), months=set())
            return state
        if self.manifest["format"] == OLD_FORMAT:
            return self._load_format3(state)
        self._check_sizes()
        strings = self._strings()
        loaded = _Loaded(strings, stored_strings=len(strings.values))
        seg_files = self.files_of("segment")
        if query is None:
            parts = [(segments.read_segment(self.folder, f), f["generation"]) for f in seg_files]
            if parts:
                hi, lo, recs = segments.newest(
                    np.concatenate([p[0][0] for p in parts]),
                    np.concatenate([p[0][1] for p in parts]),
                    np.concatenate([np.full(len(p[0][0]), p[1]) for p in parts]),
                    np.concatenate([p[0][2] for p in parts]))
                loaded.hi, loaded.lo, loaded.recs = hi, lo, recs
        else:
            at, recs = segments.probe(self.folder, seg_files, query.hi, query.lo)
            loaded.hi, loaded.lo, loaded.recs = query.hi[at], query.lo[at], recs
        latest = self.manifest.get("latest")
        first = self._first_month(query, latest, retention_days)
        loaded.months = None if first is None else _FromMonth(first)
        months, rows = [], []
        for f in self.files_of("counters"):
            if first is not None and f["month"] < first:
                continue  # no row of this run can touch that month
            crecs = segments.read_counters(self.folder, f)
            loaded.counters[(f["bucket"], f["month"])] = crecs
            months.append(np.full(len(crecs), f["month"], np.int64))
            rows.append(crecs)
        crecs = np.concatenate(rows) if rows else np.zeros(0, segments.CREC)
        months = np.concatenate(months) if months else np.zeros(0, np.int64)
        try:
            state.set_tables(segments.counters_table(months, crecs, strings),
                             segments.index_table(loaded.hi, loaded.lo, loaded.recs, strings),
                             None if latest is None else dt.date.fromisoformat(latest))
            state.ledger = json.loads(self._read_file("ledger"))
        except (KeyError, ValueError, pa.ArrowException) as exc:
            raise StateError(f"{self.folder}: state cannot be read: {exc}") from exc
        self._loaded = loaded
        return state

    def read_ledger(self) -> dict:
        """The committed ledger alone (a run that loads the rest later, :meth:`load`)."""
        if self.manifest["generation"] == 0:
            return {}
        try:
            return json.loads(self._read_file("ledger"))
        except ValueError as exc:
            raise StateError(f"{self.folder}: state cannot be read: {exc}") from exc

    def loaded_runs(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The index entries the load read, ``(hi, lo, recs)`` per card bucket, sorted by
        key: what a commit compares each bucket's entries with, to write only those the
        run changed."""
        loaded = self._loaded
        if loaded is None:
            raise StateError(f"{self.folder}: no state loaded")  # a bug, not data
        bucket = segments.bucket_of(loaded.recs["card_hi"], self.buckets)
        return [(loaded.hi[mine], loaded.lo[mine], loaded.recs[mine])
                for mine in (bucket == b for b in range(self.buckets))]

    def strings_for_commit(self) -> Strings:
        """The string table the next commit numbers rule and waiver ids by (ids met for
        the first time are added at the end, in the order they are met)."""
        if self._loaded is None:
            raise StateError(f"{self.folder}: no state loaded")  # a bug, not data
        return self._loaded.strings

    def _check_sizes(self):
        """Every committed file is there with its committed size (a stat each: a file
        deleted or truncated is refused even where this run would not read it)."""
        for entry in self.manifest["files"].values():
            path = self.folder / entry["name"]
            try:
                size = path.stat().st_size
            except OSError as exc:
                raise StateError(f"{path}: committed state file missing: {exc}; the state "
                                 f"is corrupt and is not used") from exc
            if "size" in entry and size != entry["size"]:
                raise StateError(f"{path}: checksum mismatch: {size} bytes, the manifest "
                                 f"says {entry['size']} (truncated?); the state is corrupt "
                                 f"and is not used")

    @staticmethod
    def _first_month(query, latest, retention_days) -> int | None:
        """The first month (yyyymm) whose counters a run of ``query`` can touch: its rows'
        own months, and a reversal's original's (within the window before ``latest``)."""
        if query is None or query.earliest is None:
            return None
        first = query.earliest
        if latest is not None:
            first = min(first, dt.date.fromisoformat(latest) - dt.timedelta(days=retention_days))
        return first.year * 100 + first.month

    def _load_format3(self, state: State) -> State:
        """A format-3 state whole (its two Parquet tables), for :meth:`upgrade`."""
        try:
            latest = self.manifest.get("latest")
            state.set_tables(_table(self._read_file("counters")),
                             _table(self._read_file("index")),
                             None if latest is None else dt.date.fromisoformat(latest))
            state.ledger = json.loads(self._read_file("ledger"))
        except (KeyError, ValueError, pa.ArrowException) as exc:
            raise StateError(f"{self.folder}: state cannot be read: {exc}") from exc
        self._loaded = _Loaded(Strings(), months=None)
        return state

    # -- the commit -------------------------------------------------------------------
    def commit(self, state: State, run_id: str, staging: Staging | None = None,
               workers: int = 1):
        """Write generation N+1 — one segment per bucket with the run's new and changed
        index entries, the counter files that changed, ledger (and strings if new ones
        came) — and swap the manifest; drop expired segments; publish ``staging``.  With
        ``workers`` > 1, that many segments are made and written at a time, on threads."""
        if self.fresh:  # first write CURRENT for generation 0, so a CURRENT lost later is
            self._swap_manifest(self.manifest, "init")  # detectable, not an empty state
            self.fresh = False
        if self._loaded is None:
            if self.manifest["generation"]:
                raise StateError(f"{self.folder}: commit without a load")  # a bug, not data
            self._loaded = _Loaded(Strings(), months=set())
        loaded, gen, buckets = self._loaded, self.manifest["generation"] + 1, self.buckets
        strings = loaded.strings
        upgrade = self.manifest["format"] == OLD_FORMAT
        carried = {} if upgrade else {k: v for k, v in self.manifest["files"].items()
                                      if v.get("kind") in ("segment", "counters")}
        files = {}

        # the index: entries the run added or changed (reversed, a forgotten id taken again),
        # one run per bucket sorted by key
        if state.records is not None:  # a partitioned run's, sorted by its tasks (txcore.plan)
            counters, runs = state.records
        else:
            if state.compact is not None:  # a compiled engine's arrays, without Arrow tables
                runs = segments.compact_runs(state.compact, strings, buckets)
                counters = state.compact.counters_table()
            else:
                counters, _, index_pieces = state.tables_for_commit()
                parts = [segments.index_records(p, strings) for p in index_pieces]
                hi = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.uint64)
                lo = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.uint64)
                recs = np.concatenate([p[2] for p in parts]) if parts \
                    else np.zeros(0, segments.REC)
                del parts, index_pieces
                runs = segments.bucket_runs(hi, lo, recs, buckets)
                del hi, lo, recs
        loaded_runs = self.loaded_runs()

        def segment(b: int, run) -> tuple[str, dict] | None:
            """Bucket ``b``'s segment: written here, or moved in as a task wrote it."""
            if isinstance(run, segments.Written):  # written by a partitioned run's task
                if run.entry is None:
                    return None
                if (run.entry["generation"], run.entry["bucket"]) != (gen, b):
                    raise StateError(f"{self.folder}: a segment written for generation "
                                     f"{run.entry['generation']}, bucket "
                                     f"{run.entry['bucket']}, offered as {gen}, {b}")
                durable.move(run.path, self.folder / run.entry["name"],
                             f"state:segment:b{b:02d}")
                return run.entry["name"], run.entry
            hi, lo, recs = segments.changed_only(loaded_runs[b],
                                                 *(run() if callable(run) else run))
            if not len(hi):
                return None
            name = segments.segment_name(gen, b)
            return name, segments.write_segment(self.folder / name, b, gen, hi, lo, recs,
                                                f"state:segment:b{b:02d}")

        if workers > 1 and len(runs) > 1:
            with ThreadPoolExecutor(min(workers, len(runs))) as pool:
                made = list(pool.map(segment, range(len(runs)), runs))
        else:
            made = [segment(b, run) for b, run in enumerate(runs)]
        for name, entry in filter(None, made):
            files[name] = {"kind": "segment", **entry}
        del runs, made

        # counters: each (bucket, month) file whose rows changed, rewritten whole
        months, crecs = segments.counter_records(counters, strings)
        bucket = segments.bucket_of(crecs["card_hi"], buckets)
        old = {(f["bucket"], f["month"]): k for k, f in carried.items() if f["kind"] == "counters"}
        for b, month in sorted(set(zip(bucket.tolist(), months.tolist()))):
            rows = crecs[(bucket == b) & (months == month)]
            rows = rows[np.lexsort((rows["waiver"], rows["card_lo"], rows["card_hi"]))]
            before = loaded.counters.get((b, month))
            if before is None and (b, month) in old and loaded.months is not None \
                    and month not in loaded.months:
                raise StateError(f"{self.folder}: counters of {month} were not loaded but "
                                 f"changed")  # a bug: refuse rather than lose counters
            if before is not None and len(before) == len(rows) \
                    and segments.same_rows(before, rows).all():
                continue
            name = f"ctr.{month:06d}.{gen:06d}.b{b:02d}.bin"
            entry = segments.write_counters(self.folder / name, b, month, gen, rows,
                                            f"state:counters:b{b:02d}:{month}")
            carried.pop(old.get((b, month)), None)
            files[name] = {"kind": "counters", **entry}

        # retention: a segment whose newest day left the window is dropped whole
        expired = []
        if state.latest is not None:
            oldest = (state.latest - dt.timedelta(days=state.retention_days)
                      - dt.date(1970, 1, 1)).days
            expired = [k for k, f in carried.items()
                       if f["kind"] == "segment" and f["max_day"] < oldest]
        for k in expired:
            carried.pop(k)
        files.update(carried)

        name = f"ledger.{gen:06d}.json"
        data = (json.dumps(state.ledger, indent=1, sort_keys=True) + "\n").encode()
        durable.write_bytes(self.folder / name, data, "state:ledger")
        files["ledger"] = {"name": name, "sha256": _sha256(data), "size": len(data)}
        # strings the run added — while pricing (a partitioned run numbers the book's ids
        # before its tasks run) or in this commit — are in a new strings file
        if len(strings.values) != loaded.stored_strings or upgrade \
                or "strings" not in self.manifest["files"]:
            name = f"strings.{gen:06d}.json"
            data = (json.dumps(strings.values, ensure_ascii=False) + "\n").encode()
            durable.write_bytes(self.folder / name, data, "state:strings")
            files["strings"] = {"name": name, "sha256": _sha256(data), "size": len(data)}
        else:
            files["strings"] = self.manifest["files"]["strings"]
        seg = [f for f in files.values() if f.get("kind") == "segment"]
        ctr = [f for f in files.values() if f.get("kind") == "counters"]
        manifest = self._manifest(
            gen, run_id, state.latest.isoformat() if state.latest else None,
            self.keyer.fingerprint, files,
            {"segments": len(seg), "index_records": sum(f["entries"] for f in seg),
             "counter_files": len(ctr), "counters": sum(f["entries"] for f in ctr),
             "ledger": len(state.ledger)},
            None if staging is None else {"dir": str(staging.out_dir),
                                          "staging": staging.dir.name, "names": staging.names},
            retention_days=state.retention_days, buckets=buckets)
        durable.fsync_dir(self.folder)
        durable.step("state-dir-synced")
        old_files = self.manifest["files"]
        self._swap_manifest(manifest, "commit")  # <- the commit point
        self._loaded = None
        for k in expired:  # out of the manifest now: deleting them is cleanup
            (self.folder / old_files[k]["name"]).unlink(missing_ok=True)
            durable.step("state:expire-segment")
        self.recover()  # publish the outputs, drop the previous generation

    @staticmethod
    def _manifest(gen, run_id, latest, fingerprint, files, counts, outputs, **extra) -> dict:
        manifest = {"format": FORMAT, "generation": gen, "run_id": run_id, "latest": latest,
                    "key_fingerprint": fingerprint, "files": files, "counts": counts,
                    "outputs": outputs, **extra}
        return manifest

    def _swap_manifest(self, manifest: dict, name: str):
        """Write ``CURRENT.tmp``, rename it over ``CURRENT``, fsync the folder."""
        manifest["checksum"] = _checksum(manifest, self.keyer.key)
        tmp = self.folder / (MANIFEST + ".tmp")
        durable.write_bytes(tmp, (json.dumps(manifest, indent=1) + "\n").encode(),
                            f"{name}:manifest")
        os.replace(tmp, self.folder / MANIFEST)
        self.manifest = manifest  # committed from here on, whatever fails next
        durable.step(name)
        durable.fsync_dir(self.folder)
        durable.step(f"{name}:synced")

    # -- upgrade, info, verify ----------------------------------------------------------
    def upgrade(self) -> bool:
        """Convert a format-3 state to this format: one commit like a run's (the old files
        are dropped once the new manifest is in place).  False if nothing to do."""
        if self.manifest["format"] == FORMAT:
            return False
        retention = int(self.manifest.get("retention_days", DEFAULT_RETENTION_DAYS))
        state = self.load(retention)
        self.manifest["buckets"] = self.buckets
        self.commit(state, f"upgrade-from-{OLD_FORMAT}")
        return True

    def verify(self) -> dict:
        """Check every file of the committed state against its sha256 (and each segment's
        header and block checksums); the counts checked."""
        self._check_sizes()
        if self.manifest["format"] == OLD_FORMAT:
            for kind in ("counters", "index", "ledger"):
                self._read_file(kind)
            return {"files": 3, "generation": self.manifest["generation"]}
        self._strings()
        self._read_file("ledger")
        n = 0
        for f in self.files_of("segment"):
            segments.read_segment(self.folder, f)
            with segments.Segment(self.folder, f) as seg:
                seg.check_rows(np.arange(seg.n))
            n += 1
        for f in self.files_of("counters"):
            segments.read_counters(self.folder, f)
            n += 1
        return {"files": n + 2, "generation": self.manifest["generation"]}

    def info(self) -> str:
        """A plain-text description of the committed state (no card number: none is held)."""
        m = self.manifest
        epoch = dt.date(1970, 1, 1)
        size = sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())
        lines = [f"state {self.folder}", f"  format      {m['format']}",
                 f"  generation  {m['generation']} (run {m['run_id']})",
                 f"  latest day  {m.get('latest')}",
                 f"  retention   {m.get('retention_days', DEFAULT_RETENTION_DAYS)} days",
                 f"  buckets     {self.buckets}",
                 f"  size        {size:,} bytes on disk"]
        if m["format"] == OLD_FORMAT:
            lines.append(f"  (format {OLD_FORMAT}: run `txcore state upgrade {self.folder}`)")
            return "\n".join(lines)
        seg = self.files_of("segment")
        lines.append(f"  segments    {len(seg)}, {sum(f['entries'] for f in seg):,} records")
        for f in seg:
            lines.append(f"    {f['name']}  bucket {f['bucket']}  "
                         f"{epoch + dt.timedelta(days=f['min_day'])} .. "
                         f"{epoch + dt.timedelta(days=f['max_day'])}  {f['entries']:,} entries  "
                         f"{f['size']:,} bytes")
        ctr = self.files_of("counters")
        lines.append(f"  counters    {sum(f['entries'] for f in ctr):,} in {len(ctr)} files")
        by_month: dict[int, int] = {}
        for f in ctr:
            by_month[f["month"]] = by_month.get(f["month"], 0) + f["entries"]
        for month, count in sorted(by_month.items()):
            lines.append(f"    {month // 100}-{month % 100:02d}  {count:,}")
        lines.append(f"  ledger      {m['counts'].get('ledger', 0)} committed input files")
        return "\n".join(lines)


class _FromMonth:
    """The months loaded: every month (yyyymm) from ``first`` on."""

    def __init__(self, first: int):
        self.first = first

    def __contains__(self, month) -> bool:
        return month >= self.first


def _table(data: bytes) -> pa.Table:
    """A Parquet file's table, read from an Arrow-owned copy of its (verified) bytes.

    Not from the Python ``bytes`` themselves: pyarrow's reader threads may drop the last
    reference to such a buffer after the call returns, and releasing a Python object
    needs the interpreter — when that happens as the process exits, it aborts.
    """
    buf = pa.allocate_buffer(len(data))
    memoryview(buf).cast("B")[:] = data
    return pq.read_table(pa.BufferReader(buf))


def _generation_file(name: str) -> bool:
    return name.startswith(("counters.", "index.", "ledger.", "seg.", "ctr.", "strings."))
