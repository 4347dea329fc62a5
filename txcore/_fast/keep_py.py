"""Pure-Python twin of ``keep.pyx``: the rows of a batch a run keeps, copied a run of
consecutive rows at a time, in numpy (the readable version, and the fallback when the
extension is not built).  Same functions, same arguments, same results."""
from __future__ import annotations

import numpy as np

CYTHON_MODULE = 0


def _rows(starts, ends) -> np.ndarray:
    """The rows of the runs, in order."""
    if not len(starts):
        return np.zeros(0, np.int64)
    return np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in zip(starts, ends)])


def _check_runs(starts, ends, n, what):
    last = 0
    if len(ends) != len(starts):
        raise ValueError(f"{what}: runs not ascending and within the column")
    for a, b in zip(starts.tolist(), ends.tolist()):
        if not last <= a <= b <= n:
            raise ValueError(f"{what}: runs not ascending and within the column")
        last = b


def kept_bytes(offsets, size, offset, starts, ends) -> int:
    """See ``keep.pyx``."""
    n = len(offsets) - 1 - offset
    if offset < 0 or n < 0:
        raise ValueError("kept_bytes: offsets, offset and runs do not match")
    _check_runs(starts, ends, n, "kept_bytes")
    a = offsets[offset + starts].astype(np.int64)
    b = offsets[offset + ends].astype(np.int64)
    if not ((0 <= a) & (a <= b) & (b <= size)).all():
        raise ValueError("kept_bytes: runs not ascending and within the column")
    return int((b - a).sum())


def keep_strings(offsets, data, offset, starts, ends, out_offsets, out_data):
    """See ``keep.pyx``."""
    need = kept_bytes(offsets, len(data), offset, starts, ends)
    rows = _rows(starts, ends) + offset
    if len(out_offsets) != len(rows) + 1 or len(out_data) != need:
        raise ValueError("keep_strings: output buffers of the wrong size")
    out_offsets[0] = 0
    out_offsets[1:] = np.cumsum(offsets[rows + 1].astype(np.int64) - offsets[rows])
    pieces = [data[offsets[offset + a]:offsets[offset + b]]
              for a, b in zip(starts.tolist(), ends.tolist())]
    out_data[:] = np.concatenate(pieces) if pieces else out_data[:0]


def keep_bits(bits, offset, starts, ends, out) -> int:
    """See ``keep.pyx``."""
    n = len(bits) * 8 - offset
    if offset < 0 or n < 0:
        raise ValueError("keep_bits: runs not ascending and within the bitmap")
    _check_runs(starts, ends, n, "keep_bits")
    rows = _rows(starts, ends)
    if len(out) != (len(rows) + 7) // 8:
        raise ValueError("keep_bits: output bitmap of the wrong size")
    kept = np.unpackbits(np.asarray(bits, np.uint8), bitorder="little")[offset + rows]
    out[:] = np.packbits(kept, bitorder="little")
    return int(kept.sum())
