"""Durable file operations, and the named crash points that test them.

Every step that makes something durable (a file fsynced, a rename, a folder
fsynced) goes through :func:`step`.  With ``TXCORE_CRASH_AT=k`` (a number: the
k-th step of the process; or a step name) the process dies right there with
``os._exit(CRASH_EXIT)`` — no cleanup, as after kill -9 — so the crash tests
can stop a run at every durable step and check what a rerun makes of it.
``TXCORE_FAIL_AT=k:ENOSPC`` (or ``:EIO``) instead raises that ``OSError`` at
step k, as a full or failing disk would.
"""
from __future__ import annotations

import errno
import hashlib
import os
import signal
from pathlib import Path

import numpy as np

CRASH_EXIT = 77
_steps = 0


def step(name: str):
    """Mark a durable step; die here if ``TXCORE_CRASH_AT`` names it, or be killed by
    SIGKILL if ``TXCORE_KILL_AT`` does (``name`` or ``name@FILE``: only while FILE does not
    exist, which the first kill creates — a worker lost once, its task then retried)."""
    global _steps
    _steps += 1
    target = os.environ.get("TXCORE_CRASH_AT")
    if target and (target == name or target == str(_steps)):
        os._exit(CRASH_EXIT)
    kill = os.environ.get("TXCORE_KILL_AT")
    if kill:
        at, _, once = kill.partition("@")
        if at == name and not (once and os.path.exists(once)):
            if once:
                open(once, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
    fail = os.environ.get("TXCORE_FAIL_AT")
    if fail:
        at, _, code = fail.partition(":")
        if at == name or at == str(_steps):
            number = getattr(errno, code or "EIO")
            raise OSError(number, os.strerror(number), name)


def steps_taken() -> int:
    return _steps


def fsync_file(path: Path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path):
    """Make renames and creations in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes(path: Path, data, name: str):
    """Write, fsync and mark a step.  The caller renames or references it later."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    step(name)


def write_chunks(path: Path, chunks, name: str) -> str:
    """Write ``chunks`` (bytes-like, in order) as one file, fsync it, mark a step; its sha256."""
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for chunk in chunks:
            digest.update(chunk)
            fh.write(chunk)
        fh.flush()
        os.fsync(fh.fileno())
    step(name)
    return digest.hexdigest()


#: The alignment of a file image :func:`write_image` writes with ``O_DIRECT``: a page,
#: which is also a whole number of logical blocks on the devices Linux runs on.
ALIGN = 4096
_DIRECT_CHUNK = 64 << 20  # bytes a write() of an image (Linux caps one at ~2 GiB)


def aligned_buffer(size: int) -> np.ndarray:
    """``size`` bytes (uninitialised) starting at an :data:`ALIGN` boundary."""
    raw = np.empty(size + ALIGN, np.uint8)
    skip = -raw.ctypes.data % ALIGN
    return raw[skip:skip + size]


def write_image(path: Path, image: np.ndarray, size: int, name: str) -> str:
    """Write ``image[:size]`` as the file ``path``, fsync it, mark a step; its sha256.

    ``image`` (from :func:`aligned_buffer`) is a whole number of :data:`ALIGN` blocks.
    It is written with ``O_DIRECT`` where the file system takes it — from this buffer
    straight to the device, not copied into the page cache first (on the benchmark VM
    a 180 MB segment takes 0.11 s against 0.5 s buffered) — then cut to ``size``;
    where it does not (tmpfs, some network file systems), buffered.  Its bytes past
    ``size`` reach the disk before the cut, so the caller zeroes them rather than
    leave whatever the memory held."""
    if len(image) % ALIGN or size > len(image) or (len(image) and image.ctypes.data % ALIGN):
        raise ValueError("write_image: the image is not whole aligned blocks")
    view = memoryview(image)
    digest = hashlib.sha256(view[:size]).hexdigest()
    if _write_direct(path, view, size):
        step(name)
    else:
        write_bytes(path, view[:size], name)
    return digest


def _write_direct(path: Path, view: memoryview, size: int) -> bool:
    """Write the aligned ``view`` to ``path`` with ``O_DIRECT``, cut it to ``size`` and
    fsync; False (nothing to keep) where the file system or device refuses that."""
    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return False
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | flag, 0o666)
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # no O_DIRECT on this file system
            return False
        raise
    try:
        done = 0
        while done < len(view):
            done += os.write(fd, view[done:done + _DIRECT_CHUNK])
        os.ftruncate(fd, size)
        os.fsync(fd)
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # a device wanting a larger alignment: rewritten
            return False  # buffered (which truncates what was written here)
        raise
    finally:
        os.close(fd)
    return True


class _HashingFile:
    """A binary file that hashes what is written to it."""

    def __init__(self, fh):
        self.fh, self.hash, self.closed = fh, hashlib.sha256(), False

    def write(self, data) -> int:
        self.hash.update(data)
        return self.fh.write(data)

    def flush(self):
        self.fh.flush()


def write_parquet(path: Path, schema, tables, name: str) -> str:
    """Write ``tables`` (an iterable, one row group or more each) as one zstd Parquet
    file, fsync it and mark a step; its sha256.  Only one table is in memory at a time."""
    import pyarrow.parquet as pq
    with open(path, "wb") as fh:
        sink = _HashingFile(fh)
        with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
            for table in tables:
                writer.write_table(table)
        fh.flush()
        os.fsync(fh.fileno())
    step(name)
    return sink.hash.hexdigest()


def move(src: Path, dst: Path, name: str):
    """Move a written and fsynced file into another folder and mark a step: a rename on
    the same file system, else a copy, fsynced, and the source removed.  The caller
    fsyncs ``dst``'s folder."""
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        import shutil
        shutil.copyfile(src, dst)
        fsync_file(dst)
        os.unlink(src)
    step(name)


def replace(src: Path, dst: Path, name: str):
    os.replace(src, dst)
    step(name)
