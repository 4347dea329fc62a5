"""One Parquet output from parts written in parallel, :func:`stitch` once, in input order.

A partitioned run's worker writes its chunk's part with a
:class:`~txcore.io.writer.BatchWriter` (``sync=False``), which groups small batches into
row groups as the one writer of a one-process run does; :func:`write_part` writes pieces
that are row groups already.

pyarrow's Parquet writer encodes and compresses on one thread.  A partitioned run
spreads that work: each worker writes the rows of its chunk as a standalone *part*
(one row group per piece, the options of every txcore Parquet file), and
:func:`stitch` joins the parts into one file without decoding a value — ``PAR1``, then
each part's column chunks byte for byte, then one footer whose row groups are the
parts' row groups with their file offsets moved to where the bytes now lie.  The file
is the one a single :class:`~txcore.io.writer.BatchWriter` writes from the same
batches (each of at least ``MIN_ROW_GROUP_ROWS`` rows: the writer coalesces smaller
ones, a part cannot see its neighbours), whatever the number of workers.

The footer is a Thrift compact-protocol struct, read and written with the generic
codec of :mod:`txcore.io.thrift_compact`, which keeps every field it does not touch as
read.  Chosen over the libraries: ``fastparquet``'s Thrift objects come with pandas,
cramjam and fsspec for one struct; ``thriftpy2`` needs the ``parquet.thrift`` file
shipped with the project and drops fields its copy does not declare (a footer field
added by a newer pyarrow would vanish).  The codec checks that each footer it reads
writes back to the same bytes, so a footer it would misrepresent is refused, not
rewritten.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from txcore import durable
from txcore.errors import OutputRefused
from txcore.io import thrift_compact as tc
from txcore.io.textdict import contract
from txcore.io.writer import ParquetPrep, open_parquet, refusing, unwritable

MAGIC = b"PAR1"

# Field ids of the Parquet footer (parquet-format's parquet.thrift)
_FILE_NUM_ROWS, _FILE_ROW_GROUPS, _FILE_CREATED_BY = 3, 4, 6
_FILE_ENCRYPTION = (8, 9)  # encryption_algorithm, footer_signing_key_metadata
_RG_COLUMNS, _RG_NUM_ROWS, _RG_FILE_OFFSET, _RG_ORDINAL = 1, 3, 5, 7
_CC_FILE_PATH, _CC_FILE_OFFSET, _CC_META = 1, 2, 3
_CC_INDEXES = (4, 5, 6, 7)  # offset index and column index: offset, length
_CC_ENCRYPTION = (8, 9)
_CM_TOTAL_COMPRESSED, _CM_DATA_PAGE, _CM_INDEX_PAGE, _CM_DICTIONARY_PAGE = 7, 9, 10, 11
_CM_BLOOM = (14, 15)
_MAX_ROW_GROUPS = 2**15 - 1  # RowGroup.ordinal is an i16


class PartRefused(ValueError):
    """A part cannot be stitched (corrupt, truncated, another schema, a feature the
    stitch does not move); the message names the file."""


# ------------------------------------------------------------------------------ parts
def write_part(path: Path, pieces, schema: pa.Schema) -> int:
    """Write ``pieces`` to ``path`` as a standalone Parquet file; the rows written.

    ``pieces`` is one ``pa.Table`` or ``pa.RecordBatch`` (one row group), or an iterable
    of them (one row group each, in order; empty ones add nothing).  A piece is written
    as ``BatchWriter`` writes a batch of ``MIN_ROW_GROUP_ROWS`` rows or more: the same
    options, the same preparation (dictionary nulls, timestamp[s] check), and so the
    same bytes (a piece of more than 1 Mi rows is split there by pyarrow, as a batch
    given to BatchWriter is).  The part is not fsynced: it lives in the run's staging folder, and
    only the stitched file has to survive a crash."""
    path = Path(path)
    problems = unwritable(contract(schema), "parquet")
    if problems:
        raise OutputRefused(f"{path.name}: cannot be written as parquet: "
                            + "; ".join(problems) + "; --format arrow writes them")
    if isinstance(pieces, (pa.Table, pa.RecordBatch)):
        pieces = [pieces]
    prepare, rows = ParquetPrep(schema), 0
    with pa.OSFile(str(path), "wb") as fh, \
            open_parquet(fh, schema) as writer:
        for piece in pieces:
            batches = piece.to_batches() if isinstance(piece, pa.Table) else [piece]
            batches = [prepare(b, path.name) for b in batches if b.num_rows]
            if not batches:
                continue
            table = pa.Table.from_batches(batches, schema=schema)
            with refusing(path.name, "parquet"):
                writer.write_table(table)
            rows += table.num_rows
    return rows


# ------------------------------------------------------------------------------ stitch
class Part:
    """A part's footer, read and checked, and the span of its column-chunk bytes.

    A partitioned run reads each part as its chunk comes in, so the :func:`stitch` after
    the last one only moves offsets and writes the one footer.  (A footer holds the
    part's column statistics, card numbers among them: it is read where the outputs are
    written, never handed between client and workers.)"""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            with open(self.path, "rb") as fh:
                self.size = os.fstat(fh.fileno()).st_size
                if self.size < 12:
                    raise self.refused(f"{self.size} bytes, too short for a Parquet file")
                head = fh.read(4)
                fh.seek(self.size - 8)
                tail = fh.read(8)
                (length,) = struct.unpack("<I", tail[:4])
                if head != MAGIC or tail[4:] != MAGIC:
                    raise self.refused("not a plain Parquet file (no PAR1 at both ends: "
                                       "truncated, encrypted or not Parquet)")
                if length > self.size - 12:
                    raise self.refused(f"footer length {length} runs past the start of "
                                       f"the file (truncated?)")
                self.data_end = self.size - 8 - length
                fh.seek(self.data_end)
                footer = fh.read(length)
        except OSError as exc:
            raise PartRefused(f"{self.path}: cannot be read: {exc}") from exc
        try:
            self.meta = tc.decode_exact(footer)
        except tc.CompactError as exc:
            raise self.refused(f"footer is not readable: {exc}") from exc
        try:
            self._check()
        except (AttributeError, TypeError, KeyError) as exc:  # a field of the wrong type
            raise self.refused(f"footer is not a Parquet footer ({exc})") from exc

    def refused(self, why: str) -> PartRefused:
        return PartRefused(f"{self.path}: {why}")

    @property
    def row_groups(self) -> list:
        groups = self.meta.get(_FILE_ROW_GROUPS)
        return groups.items if isinstance(groups, tc.Seq) else []

    @property
    def num_rows(self) -> int:
        return self.meta.get(_FILE_NUM_ROWS, 0)

    def _check(self):
        """The footer is one this module can move: unencrypted, every column chunk in
        this file, no page index or bloom filter, and the column chunks exactly fill
        the bytes between the leading PAR1 and the footer."""
        meta = self.meta
        if not isinstance(meta.get(_FILE_ROW_GROUPS), tc.Seq) \
                or not isinstance(meta.get(_FILE_NUM_ROWS), int):
            raise self.refused("footer lacks its row count or row groups")
        if any(meta.has(f) for f in _FILE_ENCRYPTION):
            raise self.refused("is encrypted; parts are written by write_part")
        position, rows = len(MAGIC), 0
        for group in self.row_groups:
            rows += group.get(_RG_NUM_ROWS, 0)
            for chunk in group.get(_RG_COLUMNS, tc.Seq(tc.STRUCT)).items:
                if any(chunk.has(f) for f in (_CC_FILE_PATH, *_CC_INDEXES, *_CC_ENCRYPTION)):
                    raise self.refused("has a column chunk in another file, a page index "
                                       "or encryption; parts are written by write_part")
                cm = chunk.get(_CC_META)
                if not isinstance(cm, tc.Struct) or any(cm.has(f) for f in _CM_BLOOM):
                    raise self.refused("has a column chunk without metadata or with a "
                                       "bloom filter; parts are written by write_part")
                start = cm.get(_CM_DICTIONARY_PAGE) or cm.get(_CM_DATA_PAGE)
                if start != position:
                    raise self.refused(f"column chunk at byte {start}, expected {position} "
                                       f"(corrupt footer?)")
                position += cm.get(_CM_TOTAL_COMPRESSED, 0)
        if position != self.data_end:
            raise self.refused(f"column chunks end at byte {position}, the footer starts "
                               f"at {self.data_end} (truncated or corrupt?)")
        if rows != self.num_rows:
            raise self.refused(f"footer says {self.num_rows} rows, its row groups "
                               f"{rows} (corrupt footer?)")

    def file_fields(self) -> bytes:
        return _file_fields(self.meta)


def _file_fields(meta: tc.Struct) -> bytes:
    """Everything of a footer but its rows: schema, key-value metadata (the Arrow
    schema), created_by, column orders — what every part of one file shares."""
    return tc.encode(tc.Struct(f for f in meta if f[0] not in (_FILE_NUM_ROWS,
                                                               _FILE_ROW_GROUPS)))


def _shift(group: tc.Struct, delta: int, ordinal: int):
    """Move a row group's offsets by ``delta`` bytes and renumber it ``ordinal``."""
    if group.has(_RG_FILE_OFFSET):
        group.set(_RG_FILE_OFFSET, group.get(_RG_FILE_OFFSET) + delta)
    if group.has(_RG_ORDINAL):
        group.set(_RG_ORDINAL, ordinal)
    for chunk in group.get(_RG_COLUMNS).items:
        # parquet-cpp leaves the deprecated ColumnChunk.file_offset at 0 ("unset")
        if chunk.get(_CC_FILE_OFFSET):
            chunk.set(_CC_FILE_OFFSET, chunk.get(_CC_FILE_OFFSET) + delta)
        cm = chunk.get(_CC_META)
        for fid in (_CM_DATA_PAGE, _CM_INDEX_PAGE, _CM_DICTIONARY_PAGE):
            if cm.has(fid):
                cm.set(fid, cm.get(fid) + delta)


def _empty_footer_fields(schema: pa.Schema) -> bytes:
    """The shared footer fields of a txcore Parquet file of ``schema``."""
    sink = pa.BufferOutputStream()
    open_parquet(sink, schema).close()
    data = sink.getvalue().to_pybytes()
    (length,) = struct.unpack("<I", data[-8:-4])
    return _file_fields(tc.decode_exact(data[-8 - length:-8]))


def _mismatch(part: Part, reference: Part | None, expected: bytes) -> PartRefused:
    """Why ``part`` cannot join the output (of ``reference``'s schema, or the one given)."""
    created = tc.decode_exact(expected).get(_FILE_CREATED_BY)
    if part.meta.get(_FILE_CREATED_BY) != created:  # workers with another pyarrow
        why = (f"written by {part.meta.get(_FILE_CREATED_BY, b'?').decode(errors='replace')}"
               f", not {(created or b'?').decode(errors='replace')}")
    elif reference is not None:
        why = _schema_difference(reference.path, part.path)
    else:
        why = "its schema differs from the output's"
    return PartRefused(f"{part.path}: not the schema of "
                       f"{reference.path if reference else 'the output'}: {why}")


def _schema_difference(first: Path, other: Path) -> str:
    try:
        a, b = pq.read_schema(first), pq.read_schema(other)
    except (pa.ArrowException, OSError):
        return "its Parquet schema or metadata differs"
    if a.equals(b, check_metadata=False):
        return "its schema metadata differs"
    names = [n for n in dict.fromkeys(a.names + b.names)
             if n not in a.names or n not in b.names
             or a.field(n).type != b.field(n).type or a.field(n).nullable != b.field(n).nullable]
    return "its columns differ: " + ", ".join(
        f"{n!r} ({a.field(n).type if n in a.names else 'absent'} vs "
        f"{b.field(n).type if n in b.names else 'absent'})" for n in names[:5]) \
        if names else "its column order differs"


def _copy(src: Path, start: int, end: int, dst_fd: int):
    """Append ``src[start:end]`` to ``dst_fd``: in the kernel where it can, else in 8 MiB
    reads."""
    with open(src, "rb") as fh:
        fd, left, pos = fh.fileno(), end - start, start
        try:
            while left:
                n = os.copy_file_range(fd, dst_fd, left, pos)
                if n == 0:
                    raise PartRefused(f"{src}: shorter than when it was read (changed?)")
                pos, left = pos + n, left - n
            return
        except (AttributeError, OSError):
            pass  # no copy_file_range here (or across these filesystems): plain reads
        fh.seek(pos)
        while left:
            block = fh.read(min(left, 8 << 20))
            if not block:
                raise PartRefused(f"{src}: shorter than when it was read (changed?)")
            _write_all(dst_fd, block)
            pos, left = pos + len(block), left - len(block)


def stitch(parts: Iterable[Path | Part], out_path: Path, schema: pa.Schema | None = None,
           *, remove_parts: bool = True) -> int:
    """Join the parts (paths, or :class:`Part` read already), in order, into the one
    Parquet file ``out_path``; its rows.

    Every part must have been written by :func:`write_part` with one schema (else
    :class:`PartRefused`, naming the part); with ``schema`` given, that schema.  With no
    parts (or only empty ones) the file is the empty output of ``schema`` (required
    then).  ``out_path`` is fsynced and marked a durable step, as ``BatchWriter.close``
    does; the parts are deleted afterwards unless ``remove_parts`` is false."""
    out_path = Path(out_path)
    parts = [p if isinstance(p, Part) else Part(p) for p in parts]
    if not parts:
        if schema is None:
            raise ValueError("stitch: no parts and no schema to write an empty file of")
        rows = write_part(out_path, [], schema)
    else:
        expected = _empty_footer_fields(schema) if schema is not None \
            else parts[0].file_fields()
        for part in parts:
            if part.file_fields() != expected:
                raise _mismatch(part, parts[0] if schema is None else None, expected)
        groups, position = [], len(MAGIC)
        for part in parts:
            delta = position - len(MAGIC)
            for group in part.row_groups:
                _shift(group, delta, len(groups))
                groups.append(group)
            position += part.data_end - len(MAGIC)
        if len(groups) > _MAX_ROW_GROUPS:
            raise PartRefused(f"{out_path.name}: {len(groups)} row groups, more than "
                              f"Parquet numbers ({_MAX_ROW_GROUPS}): write bigger parts")
        meta, rows = parts[0].meta, sum(p.num_rows for p in parts)
        meta.set(_FILE_NUM_ROWS, rows)
        meta.set(_FILE_ROW_GROUPS, tc.Seq(tc.STRUCT, groups))
        footer = tc.encode(meta)
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, MAGIC)
            for part in parts:
                _copy(part.path, len(MAGIC), part.data_end, fd)
            _write_all(fd, footer + struct.pack("<I", len(footer)) + MAGIC)
        finally:
            os.close(fd)
    durable.fsync_file(out_path)
    durable.step(f"output:{out_path.name}")
    if remove_parts:
        for part in parts:
            part.path.unlink()
    return rows


def _write_all(fd: int, data: bytes):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
