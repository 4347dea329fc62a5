"""The state folder on disk, and the atomic commit of a run (SPEC §6).

Layout of ``--state DIR``::

    CURRENT                    the manifest of the committed generation (JSON, checksummed)
    counters.000012.parquet    free-slot counters      } files of generation 12, each
    index.000012.parquet       reversal / txn_id index } with its sha256 in CURRENT
    ledger.000012.json         committed input files   }
    card.key                   the card key, unless kept elsewhere (txcore.state.keys)

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
than SQLite: the state files are columnar tables written whole per run, and
one rename is the simplest commit point that also covers files in OUTDIR.
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
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from txcore import durable, pipeline

from txcore.state import keys
from txcore.errors import StateError
from txcore.state.memory import DEFAULT_RETENTION_DAYS, State

FORMAT = 3  # 3: SipHash-128 digests (2 had BLAKE2b)
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


class StateStore:
    """A state folder: open (verify, roll forward), load, commit."""

    def __init__(self, folder, key_file=None, readonly=False):
        """Open a state folder.  ``readonly`` (a snapshot for replay): it must exist and
        is only read — no key is created, no publication rolled forward, nothing deleted."""
        self.folder = Path(folder)
        path = keys.key_path(self.folder, key_file)
        if readonly and not ((self.folder / MANIFEST).is_file() and path.is_file()):
            raise StateError(f"{self.folder}: not a committed state (with its card key)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.keyer = keys.Keyer(keys.load_or_create(path))
        self.manifest = self._read_manifest()
        self.fresh = self.manifest is None
        if self.fresh:  # a new state: generation 0, written at the first commit
            self.manifest = self._manifest(0, "init", None, self.keyer.fingerprint, {}, {}, None)
        if self.manifest["key_fingerprint"] != self.keyer.fingerprint:
            raise StateError(f"{self.folder}: the card key is not the one this state was "
                             f"written with; use the original key file")
        if not readonly:
            self.recover()

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
        if not isinstance(manifest, dict) \
                or manifest.get("checksum") != _checksum(manifest, self.keyer.key):
            if isinstance(manifest, dict) \
                    and manifest.get("key_fingerprint") != self.keyer.fingerprint:
                raise StateError(f"{self.folder}: the card key is not the one this state was "
                                 f"written with; use the original key file")
            raise StateError(f"{path}: manifest checksum mismatch (edited, corrupt, written "
                             f"by an earlier txcore or under another card key); the state "
                             f"is not used")
        if manifest.get("format") != FORMAT:
            raise StateError(f"{path}: state format {manifest.get('format')!r}, "
                             f"this txcore reads {FORMAT}")
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

    def load(self, retention_days: int = DEFAULT_RETENTION_DAYS) -> State:
        state = State(retention_days, self.keyer)
        if self.manifest["generation"] == 0:
            return state
        try:
            latest = self.manifest.get("latest")
            state.set_tables(_table(self._read_file("counters")),
                             _table(self._read_file("index")),
                             None if latest is None else dt.date.fromisoformat(latest))
            state.ledger = json.loads(self._read_file("ledger"))
        except (KeyError, ValueError, pa.ArrowException) as exc:
            raise StateError(f"{self.folder}: state cannot be read: {exc}") from exc
        return state

    # -- the commit -------------------------------------------------------------------
    def commit(self, state: State, run_id: str, staging: Staging | None = None,
               workers: int = 1):
        """Write generation N+1 and swap the manifest; then publish ``staging``.  With
        ``workers > 1`` the index's next piece is built while the last one is written."""
        if self.fresh:  # first write CURRENT for generation 0, so a CURRENT lost later is
            self._swap_manifest(self.manifest, "init")  # detectable, not an empty state
            self.fresh = False
        gen = self.manifest["generation"] + 1
        counters, index_schema, index_pieces = state.tables_for_commit()
        files, n_index = {}, 0

        def counted(pieces):
            nonlocal n_index
            for piece in pieces:
                n_index += piece.num_rows
                yield piece

        name = f"counters.{gen:06d}.parquet"
        files["counters"] = {"name": name, "sha256": durable.write_parquet(
            self.folder / name, counters.schema, [counters], "state:counters")}
        name = f"index.{gen:06d}.parquet"
        files["index"] = {"name": name, "sha256": durable.write_parquet(
            self.folder / name, index_schema,
            counted(pipeline.prefetched(index_pieces, workers, depth=1)), "state:index")}
        name = f"ledger.{gen:06d}.json"
        data = (json.dumps(state.ledger, indent=1, sort_keys=True) + "\n").encode()
        durable.write_bytes(self.folder / name, data, "state:ledger")
        files["ledger"] = {"name": name, "sha256": _sha256(data)}
        manifest = self._manifest(
            gen, run_id, state.latest.isoformat() if state.latest else None,
            self.keyer.fingerprint, files,
            {"counters": counters.num_rows, "index": n_index, "ledger": len(state.ledger)},
            None if staging is None else {"dir": str(staging.out_dir),
                                          "staging": staging.dir.name, "names": staging.names},
            retention_days=state.retention_days)
        durable.fsync_dir(self.folder)
        durable.step("state-dir-synced")
        self._swap_manifest(manifest, "commit")  # <- the commit point
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
    return name.startswith(("counters.", "index.", "ledger."))
