"""Checks on the paths a user gives txcore, made before anything is opened.

Input, card registry, merchants, rules and card-key files must be regular files:
``/dev/zero``, a FIFO or a device would be read forever, block, or exhaust memory.
Output and state folders must be folders txcore can create and write in.  Each check
raises the caller's error class with a message naming the path and what is wrong.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from txcore.cardno import redact


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def regular_file(path, what: str, error, missing_ok: bool = False) -> Path:
    """``path`` if it is a regular file (symlinks followed); else raise ``error(message)``.

    ``missing_ok``: a path that does not exist passes (the caller creates it)."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if missing_ok and not os.path.lexists(path):
            return path
        raise error(redact(f"{what} {path}: no such file")) from None
    except OSError as exc:
        raise error(redact(f"{what} {path}: cannot be read: {exc.strerror or exc}")) from None
    if not stat.S_ISREG(st.st_mode):
        raise error(redact(f"{what} {path}: is {_kind(st.st_mode)}, not a regular file"))
    return path


def usable_folder(path, what: str, error) -> Path:
    """Create the folder ``path`` if absent; raise ``error(message)`` if it cannot be a
    folder txcore writes in (a file, a dangling symlink, under a file, not writable)."""
    path = Path(path)
    if os.path.islink(path) and not os.path.exists(path):
        raise error(redact(f"{what} {path}: is a dangling symbolic link"))
    if os.path.exists(path) and not os.path.isdir(path):
        raise error(redact(f"{what} {path}: exists and is not a folder"))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise error(redact(f"{what} {path}: cannot be created: {exc.strerror or exc}")) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise error(redact(f"{what} {path}: is not writable"))
    return path
