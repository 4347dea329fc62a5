"""The state folder's fixed-width files (format 4): index segments and counter files.

An **index segment** holds the txn-id index entries one run wrote for one card bucket,
sorted by txn digest, in a form that is memory-mapped and probed, never decoded whole::

    header   4096 bytes: magic, bucket, generation, entries, day range, file id, the
             section offsets, the crc32 of the hi words and of the block table, and a
             crc32 of the header itself
    hi       entries x u64   the txn digests' high words, sorted (with lo)
    lo       entries x u64   their low words
    recs     entries x REC   card digest, local day, flags, what the row did
    crcs     one crc32 per 4 KiB block of hi, lo and recs

A run reads every ``hi`` word of a live segment (:func:`probe`), and ``lo`` and
``recs`` only where a key matches.  What it reads it checks first: the whole ``hi``
section against its crc32, every touched block of ``lo`` and ``recs`` against the block
table.  The whole file's sha256 (in the manifest) is computed when a file is written and
checked when a state is loaded whole (:func:`read_segment`) and by ``txcore state
verify``.  A run therefore misses a corrupt byte in a block it does not read (a record
no row of the day looks up): it is invisible to that run's results, and caught by the
first run that reads it or by ``verify``.

A **counter file** holds the free-slot counters of one card bucket and one month
(``REC``-like ``CREC`` rows sorted by card digest and waiver), read whole and checked
against its sha256 whenever it is loaded.

Rule ids in both are codes of the state's strings file (``strings.<gen>.json``, a JSON
list, append-only), so a code means the same string in every file of the state.
"""
from __future__ import annotations

import functools
import hashlib
import mmap
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from txcore import durable
from txcore._fast import compiled_or_twin
from txcore._fast import layout as L
from txcore._fast.layout import Strings
from txcore.errors import StateError
from txcore.state import schema
from txcore.state.compact import _codes, digest_array, digest_words
from txcore.state.compact import index_table as compact_index_table

_probe = compiled_or_twin("probe")
_records = compiled_or_twin("records")
if _records.rec_size() != L.REC.itemsize:
    raise ImportError(f"txcore._fast.records: its record is {_records.rec_size()} bytes, "
                      f"txcore._fast.layout.REC {L.REC.itemsize}; rebuild")

HEADER = 4096
BLOCK = 4096
SEG_MAGIC = b"TXSEG\x00\x04\x00"
CTR_MAGIC = b"TXCTR\x00\x04\x00"
# magic, bucket, month, generation, entries, min_day, max_day, file_id, off_lo, off_recs,
# off_crcs, size, hi crc32, block-table crc32
_HEAD = struct.Struct("<8sIIQQii16sQQQQII")

#: An index entry's record (its txn digest is in ``hi``/``lo``): ``layout.REC``.
REC = L.REC
#: A free-slot counter of one month: card digest, waiver id code, used slots.
CREC = np.dtype([("card_hi", "<u8"), ("card_lo", "<u8"), ("waiver", "<i4"), ("used", "<i4")])
_WORDS = np.dtype("<u8")


def bucket_of(card_hi: np.ndarray, buckets: int) -> np.ndarray:
    """The card bucket of each card digest: its keyed, uniformly spread high word mod P."""
    return (np.asarray(card_hi, np.uint64) % np.uint64(buckets)).astype(np.int64)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- records <-> the state's Arrow tables ----------------------------------------------
def index_records(index: pa.Table, strings: Strings):
    """``(hi, lo, recs)`` of an index table (the format of ``State.tables``)."""
    n = index.num_rows
    hi, lo = digest_words(index.column("txn"))
    recs = np.zeros(n, REC)
    recs["card_hi"], recs["card_lo"] = digest_words(index.column("card"))
    recs["day"] = index.column("local_date").cast(pa.int32()).to_numpy(zero_copy_only=False)
    rev = index.column("is_reversal").to_numpy(zero_copy_only=False).astype(bool)
    std = pc.fill_null(index.column("fee_standard"), 0).to_numpy(zero_copy_only=False)
    waived = pc.fill_null(index.column("fee_waived"), 0).to_numpy(zero_copy_only=False)
    slot = index.column("slot_waiver").is_valid().to_numpy(zero_copy_only=False)
    recs["fee_standard"] = std
    recs["discount"] = pc.fill_null(index.column("discount"), 0).to_numpy(zero_copy_only=False)
    for name in ("fee_rule", "waiver_rule", "discount_rule", "ruleset"):
        recs[name] = _codes(strings, index.column(name))
    reversed_ = index.column("reversed").to_numpy(zero_copy_only=False).astype(bool)
    recs["flags"] = (np.where(rev, L.F_REVERSAL, 0) | np.where(reversed_, L.F_REVERSED, 0)
                     | np.where(waived != 0, L.F_WAIVED, 0) | np.where(slot & ~rev, L.F_SLOT, 0))
    return hi, lo, recs


def compact_runs(compact, strings: Strings, buckets: int, latest: int | None = None):
    """Each card bucket's ``(hi, lo, recs)`` of a compact state's index entries within the
    window of ``latest`` (a day number; default the state's own), sorted by key — what
    :func:`bucket_runs` of its tables' records gives, straight from its arrays.  A list
    of functions, one per bucket, that make them when called: one bucket's records in
    memory at a time, or a few made side by side on threads (the compiled steps release
    the GIL)."""
    n = int(compact.scalars[L.N_ENTRIES])
    entries = compact.entries[:n]
    bucket = np.empty(n, np.int32)
    _records.entry_buckets(entries, compact.cards,
                           compact.scalars[L.LATEST] if latest is None else latest,
                           compact.retention_days, buckets, bucket)
    grouped, bounds = np.empty(n, np.int64), np.empty(buckets + 1, np.int64)
    _records.bucket_positions(bucket, buckets, grouped, bounds)
    del bucket
    hi_all, lo_all = entries["key_hi"], entries["key_lo"]  # strided views: no copies
    # the compact state's string codes -> the state folder's (a code per distinct string)
    lookup = np.array([strings.code(v) for v in compact.strings.values], np.int32)

    def records(b):
        mine = grouped[bounds[b]:bounds[b + 1]]
        at = np.empty(len(mine), np.int64)
        _records.sort_positions(hi_all, lo_all, mine, at)
        hi, lo, recs = _in_one_body(len(at))
        _records.entry_records(entries, compact.cards, compact.effects, lookup, at, hi, lo,
                               recs.view(np.uint8))
        return hi, lo, recs

    return [functools.partial(records, b) for b in range(buckets)]


def _layout(n: int) -> tuple[int, int, int]:
    """``(body, size, image)`` bytes of a segment of ``n`` entries: its body (``hi``,
    ``lo``, ``recs``), the file (header, body, a crc32 per block of the body) and the
    file's image in memory (the file rounded up to whole :data:`durable.ALIGN` blocks)."""
    body = (16 + REC.itemsize) * n
    size = HEADER + body + 4 * -(-body // BLOCK)
    return body, size, -(-size // durable.ALIGN) * durable.ALIGN


def _in_one_body(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empty ``(hi, lo, recs)`` of ``n`` entries laid out as a segment's body in the image
    of its file (:func:`_layout`: after the header, with room for the crcs), so
    :func:`write_segment` fills in the rest and writes the file without copying them."""
    body, _, image = _layout(n)
    body = durable.aligned_buffer(image)[HEADER:HEADER + body]
    return (body[:8 * n].view(_WORDS), body[8 * n:16 * n].view(_WORDS),
            body[16 * n:].view(REC))


def _image_of(hi, lo, recs) -> np.ndarray | None:
    """The file image ``hi``, ``lo`` and ``recs`` are the body of (:func:`_in_one_body`),
    or None if they are not."""
    owner = hi.base
    if not (isinstance(owner, np.ndarray) and lo.base is owner and recs.base is owner
            and owner.dtype == np.uint8 and owner.ndim == 1):
        return None
    n, body_at = len(hi), hi.__array_interface__["data"][0]
    at = [a.__array_interface__["data"][0] - body_at for a in (hi, lo, recs)]
    image_at = body_at - HEADER - owner.__array_interface__["data"][0]
    image = _layout(n)[2]
    fits = (hi.dtype == _WORDS and lo.dtype == _WORDS and recs.dtype == REC
            and len(lo) == n and len(recs) == n and at == [0, 8 * n, 16 * n]
            and 0 <= image_at and image_at + image <= owner.nbytes
            and (body_at - HEADER) % durable.ALIGN == 0)
    return owner[image_at:image_at + image] if fits else None


def key_order(hi: np.ndarray, lo: np.ndarray, bucket: np.ndarray | None = None,
              buckets: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(order, bounds)``: the positions sorted by ``bucket`` (int32; those outside
    ``[0, buckets)`` left out), then by key ``(hi, lo)``; bucket ``b``'s part is
    ``order[bounds[b]:bounds[b + 1]]``."""
    n = len(hi)
    if bucket is None:
        bucket = np.zeros(n, np.int32)
    order, bounds = np.empty(n, np.int64), np.empty(buckets + 1, np.int64)
    m = _records.key_order(np.ascontiguousarray(hi, np.uint64),
                           np.ascontiguousarray(lo, np.uint64),
                           np.ascontiguousarray(bucket, np.int32), buckets, order, bounds)
    return order[:m], bounds


def sort_by_key(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """The order that sorts digests by ``(hi, lo)`` (equal keys in position order)."""
    return key_order(hi, lo)[0]


def bucket_runs(hi, lo, recs, buckets: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(hi, lo, recs)`` of each card bucket, sorted by key."""
    order, bounds = key_order(hi, lo, bucket_of(recs["card_hi"], buckets).astype(np.int32),
                              buckets)
    return [(hi[at], lo[at], np.take(recs, at))
            for at in (order[bounds[b]:bounds[b + 1]] for b in range(buckets))]


def changed_only(loaded, hi, lo, recs):
    """``(hi, lo, recs)`` (a bucket's entries after a run, sorted by key) without those
    the run left as the state holds them: ``loaded``, the ``(hi, lo, recs)`` the run's
    load read of that bucket, sorted by key."""
    l_hi, l_lo, l_recs = loaded
    if not (len(hi) and len(l_hi)):
        return hi, lo, recs
    at = np.empty(len(hi), np.int64)
    q_at = np.empty(len(hi), np.int64)
    k = _probe.merge_match(l_hi, l_lo, hi, lo, at, q_at)
    same = same_rows(np.take(l_recs, at[:k]), np.take(recs, q_at[:k]))
    if not same.any():  # every entry changed: the arrays as they are
        return hi, lo, recs
    keep = np.ones(len(hi), bool)
    keep[q_at[:k][same]] = False
    return hi[keep], lo[keep], recs[keep]


@dataclass(frozen=True)
class Written:
    """A bucket's segment of the next generation already written by a partitioned
    run's task, for the commit to move into the state folder: the file and its
    manifest entry (both None: no entry of the bucket changed)."""

    path: Path | None
    entry: dict | None


def index_table(hi: np.ndarray, lo: np.ndarray, recs: np.ndarray, strings: Strings) -> pa.Table:
    """The index table of records (inverse of :func:`index_records`)."""
    return compact_index_table(hi, lo, recs["card_hi"], recs["card_lo"], recs["day"],
                               recs["flags"], recs, strings)


def counter_records(counters: pa.Table, strings: Strings):
    """``(month yyyymm, crecs)`` of a counters table."""
    month = counters.column("month").to_numpy(zero_copy_only=False).astype(np.int64)
    crecs = np.zeros(counters.num_rows, CREC)
    crecs["card_hi"], crecs["card_lo"] = digest_words(counters.column("card"))
    crecs["waiver"] = _codes(strings, counters.column("waiver_id"))
    crecs["used"] = counters.column("used").to_numpy(zero_copy_only=False)
    return month, crecs


def counters_table(months: np.ndarray, crecs: np.ndarray, strings: Strings) -> pa.Table:
    return pa.table({
        "card": digest_array(crecs["card_hi"], crecs["card_lo"]),
        "waiver_id": strings.decode(crecs["waiver"].astype(np.int64)),
        "month": pa.array(np.asarray(months, np.int32), pa.int32()),
        "used": pa.array(crecs["used"], pa.int32()),
    }, schema=schema.COUNTERS)


def empty_index(strings: Strings) -> pa.Table:
    z = np.zeros(0, np.uint64)
    return index_table(z, z, np.zeros(0, REC), strings)


# -- writing ---------------------------------------------------------------------------
def _crcs(data) -> np.ndarray:
    view = memoryview(data).cast("B")
    return np.array([zlib.crc32(view[i:i + BLOCK]) for i in range(0, len(view), BLOCK)],
                    "<u4")


def _header(head: bytes) -> bytes:
    """The 4 KiB header block: the fields, zeros, and a crc32 of all before it."""
    block = head + b"\0" * (HEADER - 4 - len(head))
    return block + struct.pack("<I", zlib.crc32(block))


def segment_name(generation: int, bucket: int) -> str:
    """The file name of a segment of ``generation`` and card ``bucket``."""
    return f"seg.{generation:06d}.b{bucket:02d}.bin"


def write_segment(path: Path, bucket: int, generation: int, hi, lo, recs, step: str) -> dict:
    """Write a segment (``hi, lo`` sorted by the caller, :func:`sort_by_key`), fsync it,
    mark ``step``; its manifest entry.  Arrays from :func:`_in_one_body` are written
    where they are; others are copied into a file image first."""
    n = len(hi)
    days = recs["day"]
    min_day, max_day = (int(days.min()), int(days.max())) if n else (0, 0)
    body_size, size, image_size = _layout(n)
    off_lo = HEADER + 8 * n
    off_recs = off_lo + 8 * n
    off_crcs = HEADER + body_size
    image = _image_of(hi, lo, recs)
    if image is None:  # one copy of each section
        image = durable.aligned_buffer(image_size)
        image[HEADER:off_lo] = np.ascontiguousarray(hi, _WORDS).view(np.uint8)
        image[off_lo:off_recs] = np.ascontiguousarray(lo, _WORDS).view(np.uint8)
        image[off_recs:off_crcs] = np.ascontiguousarray(recs).view(np.uint8)
    body = image[HEADER:off_crcs]
    crcs = _crcs(body)
    image[off_crcs:size] = crcs.view(np.uint8)
    image[size:] = 0  # written, then cut off: not left over memory
    file_id = os.urandom(16)
    head = _HEAD.pack(SEG_MAGIC, bucket, 0, generation, n, min_day, max_day, file_id, off_lo,
                      off_recs, off_crcs, size, zlib.crc32(body[: 8 * n]),
                      zlib.crc32(crcs))
    image[:HEADER] = np.frombuffer(_header(head), np.uint8)
    sha = durable.write_image(path, image, size, step)
    return {"name": path.name, "sha256": sha, "size": size, "file_id": file_id.hex(),
            "bucket": bucket, "generation": generation, "entries": n,
            "min_day": min_day, "max_day": max_day}


def write_counters(path: Path, bucket: int, month: int, generation: int, crecs,
                   step: str) -> dict:
    order = np.lexsort((crecs["waiver"], crecs["card_lo"], crecs["card_hi"]))
    body = np.ascontiguousarray(crecs[order]).tobytes()
    file_id = os.urandom(16)
    size = HEADER + len(body)
    head = _HEAD.pack(CTR_MAGIC, bucket, month, generation, len(crecs), 0, 0, file_id, 0, 0, 0,
                      size, zlib.crc32(body), 0)
    sha = durable.write_chunks(path, [_header(head), body], step)
    return {"name": path.name, "sha256": sha, "size": size, "file_id": file_id.hex(),
            "bucket": bucket, "month": month, "generation": generation, "entries": len(crecs)}


# -- reading ---------------------------------------------------------------------------
def _corrupt(path: Path, what: str) -> StateError:
    return StateError(f"{path}: {what}; the state is corrupt and is not used "
                      f"(restore the folder from a backup)")


def _check_header(path: Path, data, entry: dict, magic: bytes):
    """The header's fields, checked against itself and the manifest ``entry``."""
    if len(data) < HEADER:
        raise _corrupt(path, f"truncated ({len(data)} bytes)")
    head = bytes(data[:_HEAD.size])
    (stored,) = struct.unpack_from("<I", data, HEADER - 4)
    if zlib.crc32(data[:HEADER - 4]) != stored:
        raise _corrupt(path, "header checksum mismatch")
    fields = _HEAD.unpack(head)
    (mg, bucket, month, generation, n, min_day, max_day, file_id, off_lo, off_recs, off_crcs,
     size, hi_crc, table_crc) = fields
    if mg != magic:
        raise _corrupt(path, "not a txcore state file of this kind")
    if len(data) != size or size != entry["size"]:
        raise _corrupt(path, f"truncated or extended: {len(data)} bytes, the manifest says "
                             f"{entry['size']}")
    if (file_id.hex() != entry["file_id"] or generation != entry["generation"]
            or bucket != entry["bucket"] or n != entry["entries"]):
        raise _corrupt(path, "checksum mismatch: not the file this state committed (a file "
                             "of another generation or state swapped in?)")
    return fields


class Segment:
    """One index segment, memory-mapped while in use (``with Segment(...) as s``)."""

    def __init__(self, folder: Path, entry: dict):
        self.path = Path(folder) / entry["name"]
        self.entry = entry
        try:
            self._fh = open(self.path, "rb")
            size = os.fstat(self._fh.fileno()).st_size
            self._mm = mmap.mmap(self._fh.fileno(), 0, prot=mmap.PROT_READ) if size else b""
        except OSError as exc:
            raise StateError(f"{self.path}: committed state file cannot be read (missing?): "
                             f"{exc}") from exc
        try:
            self._open(entry)
        except BaseException:
            self.close()
            raise

    def _open(self, entry: dict):
        (_, _, _, _, self.n, _, _, _, off_lo, off_recs, off_crcs, _, hi_crc,
         table_crc) = _check_header(self.path, self._mm, entry, SEG_MAGIC)
        n = self.n
        if not (off_lo == HEADER + 8 * n and off_recs == off_lo + 8 * n
                and off_crcs == off_recs + REC.itemsize * n):
            raise _corrupt(self.path, "inconsistent section offsets")
        self.crcs = np.frombuffer(self._mm, "<u4", offset=off_crcs)
        if zlib.crc32(self.crcs) != table_crc:
            raise _corrupt(self.path, "block checksum table mismatch")
        self.hi = np.frombuffer(self._mm, _WORDS, n, HEADER)
        if zlib.crc32(self.hi) != hi_crc:
            raise _corrupt(self.path, "checksum mismatch in its txn digests")
        self.lo = np.frombuffer(self._mm, _WORDS, n, off_lo)
        self.recs = np.frombuffer(self._mm, REC, n, off_recs)
        self._checked: set[int] = set()

    def check_rows(self, rows: np.ndarray):
        """Check the blocks holding ``lo`` and ``recs`` of ``rows`` before they are read."""
        starts = np.concatenate([HEADER + 8 * self.n + 8 * rows,
                                 HEADER + 16 * self.n + REC.itemsize * rows])
        first = (starts - HEADER) // BLOCK
        last = (starts + REC.itemsize - 1 - HEADER) // BLOCK
        for block in np.unique(np.concatenate([first, last])):
            block = int(block)
            if block in self._checked:
                continue
            at = HEADER + block * BLOCK
            end = min(at + BLOCK, HEADER + 8 * self.n * 2 + REC.itemsize * self.n)
            if zlib.crc32(self._mm[at:end]) != int(self.crcs[block]):
                raise _corrupt(self.path, f"checksum mismatch in block {block}")
            self._checked.add(block)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.hi = self.lo = self.recs = self.crcs = None
        if isinstance(getattr(self, "_mm", None), mmap.mmap):
            self._mm.close()
        self._fh.close()


def radix_table(q_hi: np.ndarray) -> tuple[np.ndarray, int]:
    """``(table, shift)``: ``table[p]`` is the first query whose ``hi >> shift`` is at least
    ``p``, with about one query per entry (the compiled probe's index of the queries)."""
    bits = min(24, max(8, int(len(q_hi)).bit_length()))
    shift = 64 - bits
    cuts = np.arange(1 << bits, dtype=np.uint64) << np.uint64(shift)
    return np.searchsorted(q_hi, cuts).astype(np.int64), shift


def probe(folder: Path, entries: list[dict], q_hi: np.ndarray, q_lo: np.ndarray):
    """The newest record of each queried txn digest (sorted by ``(q_hi, q_lo)``, each once)
    that the segments ``entries`` hold: ``(q_positions, recs)``, the positions ascending."""
    found_q, found_gen, found_recs = [], [], []
    table, shift = radix_table(q_hi)
    for entry in entries:
        with Segment(folder, entry) as seg:
            seg_at = np.empty(min(seg.n, len(q_hi)), np.int64)
            q_at = np.empty(len(seg_at), np.int64)
            k = _probe.radix_match(seg.hi, seg.lo, q_hi, q_lo, table, shift, seg_at, q_at) \
                if len(seg_at) else 0
            if k:
                rows = seg_at[:k].copy()
                seg.check_rows(rows)
                found_q.append(q_at[:k].copy())
                found_gen.append(np.full(k, entry["generation"], np.int64))
                found_recs.append(np.take(seg.recs, rows))
    if not found_q:
        return np.zeros(0, np.int64), np.zeros(0, REC)
    q = np.concatenate(found_q)
    gen = np.concatenate(found_gen)
    recs = np.concatenate(found_recs)
    order = np.lexsort((gen, q))
    q, recs = q[order], np.take(recs, order)
    last = np.ones(len(q), bool)
    last[:-1] = q[1:] != q[:-1]  # the newest generation of each key: the last of its run
    return q[last], np.compress(last, recs)


def _read_whole(folder: Path, entry: dict, magic: bytes) -> bytes:
    """A state file's bytes, its header and sha256 checked (it is read whole)."""
    path = Path(folder) / entry["name"]
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StateError(f"{path}: committed state file cannot be read (missing?): "
                         f"{exc}") from exc
    _check_header(path, data, entry, magic)
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise _corrupt(path, "checksum mismatch")
    return data


def read_segment(folder: Path, entry: dict):
    """A whole segment ``(hi, lo, recs)``, its sha256 checked (loading a state whole)."""
    data = _read_whole(folder, entry, SEG_MAGIC)
    n = entry["entries"]
    hi = np.frombuffer(data, _WORDS, n, HEADER).copy()
    lo = np.frombuffer(data, _WORDS, n, HEADER + 8 * n).copy()
    recs = np.frombuffer(data, REC, n, HEADER + 16 * n).copy()
    return hi, lo, recs


def read_counters(folder: Path, entry: dict) -> np.ndarray:
    """A counter file's rows, its sha256 checked (they are read whole, every time)."""
    data = _read_whole(folder, entry, CTR_MAGIC)
    return np.frombuffer(data, CREC, entry["entries"], HEADER).copy()


def newest(hi, lo, gen, recs):
    """Of records that may repeat a key, each key's record of the newest generation."""
    order = np.lexsort((gen, lo, hi))
    hi, lo, recs = hi[order], lo[order], np.take(recs, order)
    last = np.ones(len(hi), bool)
    last[:-1] = (hi[1:] != hi[:-1]) | (lo[1:] != lo[:-1])
    return hi[last], lo[last], np.compress(last, recs)


def same_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise equality of two record arrays of one dtype (padding included: it is 0)."""
    width = a.dtype.itemsize
    return np.all(a.view(np.uint8).reshape(-1, width) == b.view(np.uint8).reshape(-1, width),
                  axis=1)

