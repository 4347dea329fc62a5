"""Arrow arrays as the raw buffers the compiled encoders read (no copy, no libarrow).

Every function of ``encode`` and ``cardcheck`` that walks strings takes
``(offsets, data, validity, offset)``: the array's offsets (int32, or int64 for
``large_string``), its UTF-8 bytes, its validity bitmap (empty when nothing is null)
and the array's own offset into those buffers (a slice shares its parent's buffers).
``encode_rows`` also takes a ``dictionary<int32, string>`` column as its dictionary's
four followed by the indices, their validity and offset (:func:`text_buffers`).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_NO_BYTES = np.zeros(0, np.uint8)


def validity(arr: pa.Array) -> np.ndarray:
    """The validity bitmap as bytes, or an empty array when no value is null."""
    buf = arr.buffers()[0]
    return np.frombuffer(buf, np.uint8) if buf is not None and arr.null_count else _NO_BYTES


def string_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(offsets, data, validity, offset)`` of a ``string`` or ``large_string`` array."""
    offset_dtype = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, offset_dtype) if offsets_buf is not None \
        else np.zeros(len(arr) + 1, offset_dtype)
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else _NO_BYTES
    return offsets, data, validity(arr), arr.offset


_NO_INDEX = np.zeros(0, np.int32)


def text_buffers(arr: pa.Array) -> tuple:
    """What ``encode.encode_rows`` takes of a text column: :func:`string_buffers` of a
    ``string`` array; of a ``dictionary<int32, string>`` array, those of its dictionary
    followed by ``(indices, validity, offset)`` of the array itself."""
    if not pa.types.is_dictionary(arr.type):
        return string_buffers(arr)
    if len(arr) - arr.null_count:  # the compiled pass reads the entries unchecked
        bounds = pc.min_max(arr.indices)
        if bounds["min"].as_py() < 0 or bounds["max"].as_py() >= len(arr.dictionary):
            raise ValueError(f"a dictionary index outside its {len(arr.dictionary)} entries")
    index = arr.buffers()[1]
    indices = np.frombuffer(index, np.int32) if index is not None else _NO_INDEX
    return (*string_buffers(arr.dictionary), indices, validity(arr), arr.offset)
