"""The scratch files the tasks of a partitioned run hand on to each other.

Every file is written whole under a temporary name and then renamed
(:func:`written_whole`), so a task run twice (a retry after a lost worker) replaces a
file with the same content, and a task killed half way leaves no half file under the
name.

Objects (dicts of numpy arrays, lists of digest bytes, Arrow tables) are pickled with
protocol 5 and their buffers **out of band** (PEP 574): the file is a small pickle
followed by the arrays' bytes, each 64-byte aligned, written straight from the arrays'
memory.  :func:`load` maps the file and hands the pickle views of it, so an array read
back is a read-only view of the page cache: reading a scratch file copies nothing.
(An in-band pickle copied every byte twice more: into the pickle, and out of it.)

    magic  b"TXSCRAT1"
    u64    length of the pickle
    u64    n, the number of buffers
    n x (u64 offset, u64 length)      each buffer's place in the file
    the pickle, then the buffers
"""
from __future__ import annotations

import os
import pickle
import struct
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

MAGIC = b"TXSCRAT1"
_ALIGN = 64


def scratch_path(job, name: str) -> Path:
    """File ``name`` of the run's scratch folder (``job.scratch``)."""
    return Path(job.scratch) / name


@contextmanager
def written_whole(path: Path):
    """The temporary name to write ``path`` under; renamed to ``path`` once the block
    ends without an error.  A retried task replaces the file with the same content, and
    a task killed half way leaves no half file under the name."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    yield tmp
    os.replace(tmp, path)


def save(path: Path, obj):
    """Write ``obj`` (see the module docstring) whole under a temporary name, then rename."""
    buffers = []
    head = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    at = _pad(len(MAGIC) + 16 + 16 * len(raws) + len(head))
    places = []
    for raw in raws:
        places.append((at, raw.nbytes))
        at = _pad(at + raw.nbytes)
    with written_whole(path) as tmp, open(tmp, "wb") as fh:
        fh.write(MAGIC + struct.pack(f"<{2 + 2 * len(places)}Q", len(head), len(places),
                                     *(v for place in places for v in place)) + head)
        for (offset, _), raw in zip(places, raws):
            fh.write(bytes(offset - fh.tell()))  # zeros up to the buffer's aligned place
            fh.write(raw)


def load(path: Path):
    """What :func:`save` wrote; its arrays are read-only views of the mapped file.

    The file is mapped by Arrow and closed at once: the mapping lives as long as an
    array of it does, without holding a file descriptor (Python's ``mmap`` keeps one per
    map, and a bucket task of a run of thousands of chunks would hold thousands)."""
    with pa.memory_map(str(path)) as src:
        view = memoryview(src.read_buffer())
    if bytes(view[:len(MAGIC)]) != MAGIC:
        raise ValueError(f"{path}: not a scratch file of this txcore")
    head_len, n = struct.unpack_from("<2Q", view, len(MAGIC))
    places = struct.unpack_from(f"<{2 * n}Q", view, len(MAGIC) + 16)
    at = len(MAGIC) + 16 + 16 * n
    return pickle.loads(view[at:at + head_len],
                        buffers=[view[o:o + length] for o, length in zip(places[::2],
                                                                         places[1::2])])


def _pad(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def save_array(path: Path, values: np.ndarray):
    """An array as ``.npy``, written whole then renamed."""
    with written_whole(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, values)


def load_array(path: Path) -> np.ndarray:
    """An array :func:`save_array` wrote, memory-mapped."""
    return np.load(path, mmap_mode="r")


def write_tables(path: Path, counters: pa.Table, index: pa.Table):
    """Two tables as Arrow IPC streams, one after the other."""
    with written_whole(path) as tmp, pa.OSFile(str(tmp), "wb") as fh:
        for table in (counters, index):
            with ipc.new_stream(fh, table.schema) as w:
                w.write_table(table)


def read_tables(path: Path) -> tuple[pa.Table, pa.Table]:
    with pa.memory_map(str(path)) as src:
        counters = ipc.open_stream(src).read_all()
        index = ipc.open_stream(src).read_all()
    return counters, index


def write_batches(path: Path, groups: list[list[pa.RecordBatch]]):
    """Lists of batches as Arrow IPC streams, one after the other, uncompressed."""
    with written_whole(path) as tmp, pa.OSFile(str(tmp), "wb") as fh:
        for batches in groups:
            schema = batches[0].schema if batches else pa.schema([])
            with ipc.new_stream(fh, schema) as w:
                for b in batches:
                    w.write_batch(b)


def read_batches(path: Path) -> list[list[pa.RecordBatch]]:
    """What :func:`write_batches` wrote, memory-mapped (no copy)."""
    groups = []
    with pa.memory_map(str(path)) as src:
        while src.tell() < src.size():
            groups.append(list(ipc.open_stream(src)))
    return groups
