"""Card numbers: the column check (compiled, with a pure-Python twin) and masking.

``check_column`` validates a whole Arrow column in one call through the
compiled ``txcore._fast.cardcheck``; set ``TXCORE_NO_EXTENSIONS=1`` (or leave
the extension unbuilt) to use the pure-Python twin instead.

No full card number may reach a log, a message or a summary: everything that
prints a value goes through :func:`mask` or :func:`redact`.
"""
from __future__ import annotations

import re

import numpy as np
import pyarrow as pa

from txcore._fast import cardcheck_py, compiled_or_twin, is_compiled
from txcore._fast.buffers import string_buffers

_impl = compiled_or_twin("cardcheck")

#: ``"cython"`` when the compiled module is in use, else ``"python"``.
IMPLEMENTATION = "cython" if is_compiled(_impl) else "python"


def is_card_no(value: str) -> bool:
    """One value: 12-19 ASCII digits, Luhn-valid."""
    return cardcheck_py.is_card_no(value.encode("utf-8", "surrogatepass"))


def check_column(column: pa.Array | pa.ChunkedArray, impl=None) -> np.ndarray:
    """Boolean numpy array: which rows of ``column`` hold a valid card number.

    Strings are checked through their Arrow buffers with no per-row Python
    work; integer columns are first cast to text; other types are invalid.
    """
    impl = impl or _impl
    if isinstance(column, pa.ChunkedArray):
        parts = [check_column(chunk, impl) for chunk in column.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    if pa.types.is_integer(column.type):
        column = column.cast(pa.string())
    if pa.types.is_string_view(column.type):
        column = column.cast(pa.string())
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        return np.zeros(len(column), dtype=bool)
    out = np.zeros(len(column), dtype=np.uint8)
    if len(column) == 0:
        return out.view(bool)
    impl.check_card_numbers(*string_buffers(column), out)
    return out.view(bool)


def mask(value: object) -> str:
    """A card number shown as its first 6 and last 4 digits at most.

    Values too short to be a card number keep only their last 4 characters.
    """
    text = "" if value is None else str(value)
    if len(text) >= 12:
        return text[:6] + "*" * (len(text) - 10) + text[-4:]
    if len(text) > 4:
        return "*" * (len(text) - 4) + text[-4:]
    return text


_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9]{12,19}(?![0-9])")
_CARD_RUN = re.compile(r"(?<![0-9])[0-9]{13,19}(?![0-9])")


def redact(text: str) -> str:
    """Mask every run of 12-19 digits in a message, whatever column it came from.

    For messages (errors, reject details): any such run is masked, Luhn-valid or not."""
    return _DIGIT_RUN.sub(lambda m: mask(m.group(0)), text)


def mask_names(text: str) -> str:
    """Mask every Luhn-valid run of 13-19 digits in a name txcore prints or stores.

    For names and identifiers that are not messages: input and output file names (in
    stdout, ``summary.json``, the ledger, ``CURRENT``), a txn_id ``explain`` prints.
    Only what could be a card number is masked, so a date-stamped name such as
    ``txns-20151101.parquet`` keeps its digits.
    """
    return _CARD_RUN.sub(lambda m: mask(m.group(0)) if is_card_no(m.group(0)) else m.group(0),
                         text)
