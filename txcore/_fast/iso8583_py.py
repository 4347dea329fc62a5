"""Pure-Python twin of ``iso8583.pyx``: same functions, same buffers, decoded by pyiso8583.

pyiso8583 is the reference decoder: this twin hands every frame to
``iso8583.decode`` and keeps the fields txcore maps.  The compiled module must
agree with it on every message (``tests/test_iso8583.py``): it decodes the
messages it can read plainly and hands every other one (any error, any unusual
byte) to :func:`decode_one` here, so a reject's wording is always pyiso8583's.
"""
from __future__ import annotations

import iso8583
import numpy as np
import pyarrow as pa

CYTHON_MODULE = 0

#: ``status`` values: the message was decoded / is a ``bad_message`` reject /
#: was left to the reference decoder (compiled module only)
OK, BAD, DEFER = 0, 1, 2


def frame_index(data, pos: int, max_frames: int, starts: np.ndarray, lens: np.ndarray):
    """Index up to ``max_frames`` frames from byte ``pos``: each is a 2-byte big-endian
    length and that many bytes.  ``starts[k]`` is the offset of frame k's length prefix,
    ``lens[k]`` its message length.  Returns ``(frames, next_pos)``; a frame that does
    not fit in ``data`` is not indexed (``next_pos`` stays at its prefix)."""
    end, pos = len(data), int(pos)
    count = 0
    while count < max_frames and pos + 2 <= end:
        n = (int(data[pos]) << 8) | int(data[pos + 1])
        if pos + 2 + n > end:
            break
        starts[count], lens[count] = pos, n
        count += 1
        pos += 2 + n
    return count, pos


def decode_one(message: bytes, spec, wanted) -> tuple[list | None, tuple[str, str] | None]:
    """One message: ``(values of the wanted fields, None)`` or ``(None, (field, reason))``.

    ``wanted`` holds field numbers, 0 for the MTI; an absent field is None."""
    try:
        doc, _ = iso8583.decode(message, spec)
    except iso8583.DecodeError as exc:
        return None, (exc.field, exc.msg)
    except KeyError as exc:  # a bitmap bit for a field the specification does not define
        return None, (str(exc.args[0]), "field not in the specification")
    return [doc.get("t" if w == 0 else str(w)) for w in wanted], None


def decode_fields(data, starts: np.ndarray, lens: np.ndarray, layout, wanted):
    """Decode the frames ``starts``/``lens`` of ``data``.

    Returns ``(status, columns, errors)``: per frame an int8 status (``OK``, ``BAD``),
    one Arrow string array per wanted field (null where absent or not decoded) and
    ``{frame: (field, reason)}`` for the ``BAD`` ones."""
    n = len(starts)
    status = np.zeros(n, np.int8)
    values = [[None] * n for _ in wanted]
    errors = {}
    view = memoryview(data)
    for i in range(n):
        start = int(starts[i]) + 2
        got, err = decode_one(bytes(view[start:start + int(lens[i])]), layout.spec, wanted)
        if err is not None:
            status[i] = BAD
            errors[i] = err
            continue
        for k, v in enumerate(got):
            values[k][i] = v
    return status, [pa.array(v, pa.string()) for v in values], errors
