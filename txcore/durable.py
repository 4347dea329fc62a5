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
import os
from pathlib import Path

CRASH_EXIT = 77
_steps = 0


def step(name: str):
    """Mark a durable step; die here if ``TXCORE_CRASH_AT`` names it."""
    global _steps
    _steps += 1
    target = os.environ.get("TXCORE_CRASH_AT")
    if target and (target == name or target == str(_steps)):
        os._exit(CRASH_EXIT)
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


def write_bytes(path: Path, data: bytes, name: str):
    """Write, fsync and mark a step.  The caller renames or references it later."""
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    step(name)


def replace(src: Path, dst: Path, name: str):
    os.replace(src, dst)
    step(name)
