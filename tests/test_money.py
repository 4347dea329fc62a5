"""Integer-fen arithmetic and its display."""
import pytest

from txcore.money import clamp, pct, yuan


@pytest.mark.parametrize("amount, bp, want", [(100, 50, 1), (99, 50, 0), (10001, 500, 500),
                                              (10010, 500, 501), (0, 10000, 0),
                                              (10**12, 10000, 10**12)])
def test_pct_rounds_half_up_to_the_fen(amount, bp, want):
    assert pct(amount, bp) == want


def test_clamp_max_zero_means_no_upper_bound():
    assert clamp(50, 200, 0) == 200 and clamp(9000, 200, 0) == 9000 and clamp(9000, 0, 5000) == 5000


@pytest.mark.parametrize("fen, text", [(0, "0.00"), (5, "0.05"), (-5, "-0.05"),
                                       (123456789, "1,234,567.89"), (-100, "-1.00")])
def test_yuan(fen, text):
    assert yuan(fen) == text
