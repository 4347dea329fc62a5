"""Whole-number options checked against their range, one wording for every option."""
from __future__ import annotations


def check_int(option: str, value, lo: int, hi: int) -> int:
    """``value`` if it is a whole number from ``lo`` to ``hi``; else ValueError saying so."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{option} must be a whole number from {lo:,} to {hi:,}, "
                         f"got {value!r}")
    return value
