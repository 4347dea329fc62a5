"""Money arithmetic: integer fen and basis points only, never a float (docs/pricing.md#money-and-rounding)."""


def pct(amount: int, bp: int) -> int:
    """``amount * bp / 10000`` rounded half up to the fen."""
    return (amount * bp + 5000) // 10000


def clamp(fee: int, lo: int, hi: int) -> int:
    """Clamp to ``[lo, hi]``; ``hi == 0`` means no upper bound."""
    fee = max(fee, lo)
    if hi > 0:
        fee = min(fee, hi)
    return fee


def formula(amount: int, fixed: int, pct_bp: int, lo: int, hi: int) -> int:
    """The fee formula of a rule or band: ``clamp(fixed + pct(amount, pct_bp), min, max)``."""
    return clamp(fixed + pct(amount, pct_bp), lo, hi)


def yuan(fen: int) -> str:
    """Fen as yuan text for people: ``-1234567`` -> ``-12,345.67`` (exact, no float)."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"
