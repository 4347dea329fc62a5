"""``durable.write_image``: a file image written with ``O_DIRECT`` where the file system
takes it, buffered where it does not — the same bytes, size and sha256 either way, and
the durable step marked after the fsync (a crash there leaves the file whole)."""
from __future__ import annotations

import errno
import hashlib
import os

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from txcore import durable


def _image(size: int, seed: int) -> np.ndarray:
    image = durable.aligned_buffer(-(-size // durable.ALIGN) * durable.ALIGN)
    image[:size] = np.random.default_rng(seed).integers(0, 256, size, np.uint8)
    image[size:] = 0
    return image


def _refuse_direct_open(monkeypatch):
    """``open(..., O_DIRECT)`` fails as on tmpfs."""
    real = os.open

    def fake(path, flags, *args):
        if flags & getattr(os, "O_DIRECT", 0):
            raise OSError(errno.EINVAL, "Invalid argument", str(path))
        return real(path, flags, *args)
    monkeypatch.setattr(os, "open", fake)


def _refuse_direct_write(monkeypatch):
    """An ``O_DIRECT`` file takes one short write, then fails with EINVAL, as a device
    whose blocks are larger than the image's alignment would."""
    real_open, real_write, direct = os.open, os.write, {}

    def fake_open(path, flags, *args):
        fd = real_open(path, flags, *args)
        if flags & getattr(os, "O_DIRECT", 0):
            direct[fd] = 0
        return fd

    def fake_write(fd, data):
        if fd not in direct:
            return real_write(fd, data)
        direct[fd] += 1
        if direct[fd] > 1:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data[:durable.ALIGN])
    monkeypatch.setattr(os, "open", fake_open)
    monkeypatch.setattr(os, "write", fake_write)


@settings(max_examples=25, deadline=None)
@given(size=st.sampled_from([0, 1, 4095, 4096, 4097, 3 * 4096 + 17, 70_000]),
       seed=st.integers(0, 2**16))
def test_an_image_is_written_as_its_bytes(tmp_path_factory, size, seed):
    folder = tmp_path_factory.mktemp("img")
    image = _image(size, seed)
    sha = durable.write_image(folder / "f.bin", image, size, "test")
    data = (folder / "f.bin").read_bytes()
    assert data == image[:size].tobytes()
    assert sha == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("refuse", [_refuse_direct_open, _refuse_direct_write])
def test_where_o_direct_is_refused_the_image_is_written_buffered(tmp_path, monkeypatch,
                                                                  refuse):
    size = 5 * durable.ALIGN + 123
    image = _image(size, 7)
    (tmp_path / "f.bin").write_bytes(b"x" * (9 * durable.ALIGN))  # an older, longer file
    refuse(monkeypatch)
    sha = durable.write_image(tmp_path / "f.bin", image, size, "test")
    monkeypatch.undo()
    data = (tmp_path / "f.bin").read_bytes()
    assert data == image[:size].tobytes()
    assert sha == hashlib.sha256(data).hexdigest()


@pytest.mark.skipif(not hasattr(os, "O_DIRECT"), reason="no O_DIRECT on this platform")
def test_o_direct_is_used_where_the_file_system_takes_it(tmp_path):
    """On a file system that takes ``O_DIRECT`` (probed here), the image goes that way."""
    try:
        os.close(os.open(tmp_path / "probe", os.O_WRONLY | os.O_CREAT | os.O_DIRECT))
    except OSError:
        pytest.skip(f"{tmp_path}'s file system does not take O_DIRECT")
    image = _image(2 * durable.ALIGN + 5, 3)
    assert durable._write_direct(tmp_path / "f.bin", memoryview(image), 2 * durable.ALIGN + 5)
    assert (tmp_path / "f.bin").read_bytes() == image[:2 * durable.ALIGN + 5].tobytes()


def test_a_misaligned_image_is_refused(tmp_path):
    raw = durable.aligned_buffer(2 * durable.ALIGN + 1)
    with pytest.raises(ValueError):
        durable.write_image(tmp_path / "f.bin", raw[1:durable.ALIGN + 1], 10, "test")
    with pytest.raises(ValueError):
        durable.write_image(tmp_path / "f.bin", raw[:durable.ALIGN + 1], 10, "test")
    assert not (tmp_path / "f.bin").exists()


def test_a_crash_at_the_step_leaves_the_file_whole(tmp_path):
    """The step is marked after the fsync: a process killed there (``TXCORE_CRASH_AT``)
    has written the whole file."""
    import subprocess
    import sys
    code = ("import numpy as np; from pathlib import Path; from txcore import durable\n"
            "im = durable.aligned_buffer(3 * durable.ALIGN); im[:] = 7\n"
            f"durable.write_image(Path({str(tmp_path / 'f.bin')!r}), im, 9000, 'img')\n")
    done = subprocess.run([sys.executable, "-c", code],
                          env={**os.environ, "TXCORE_CRASH_AT": "img"})
    assert done.returncode == durable.CRASH_EXIT
    assert (tmp_path / "f.bin").read_bytes() == b"\x07" * 9000
