"""The compiled card-number check against its pure-Python twin, and masking."""
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from txcore import cardno
from txcore._fast import cardcheck_py

try:
    from txcore._fast import cardcheck as compiled
except ImportError:  # pragma: no cover - the build must provide it
    compiled = None

IMPLS = [pytest.param(cardcheck_py, id="pure-python-module"),
         pytest.param(compiled, id="c-extension-module")]


def test_the_extension_is_built_and_in_use():
    assert compiled is not None and compiled.CYTHON_MODULE == 1
    assert cardcheck_py.CYTHON_MODULE == 0
    assert cardno.IMPLEMENTATION == "cython"


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("value, ok", [
    ("4111111111111111", True),         # the classic test PAN
    ("4111111111111112", False),        # checksum off by one
    ("621485100007919", False),         # 15 digits, bad checksum
    ("000000000000", True),             # 12 zeros: Luhn-valid, minimal length
    ("00000000000", False),             # 11 digits: too short
    ("0" * 19, True),
    ("0" * 20, False),                  # too long
    ("41111111 11111111", False),       # a space
    ("411111111111111１", False),        # a full-width digit
    ("", False),
])
def test_known_values(impl, value, ok):
    arr = pa.array([value])
    assert cardno.check_column(arr, impl).tolist() == [ok]
    assert cardcheck_py.is_card_no(value.encode()) == ok


def luhn_complete(body: str) -> str:
    for d in "0123456789":
        if cardcheck_py.is_card_no((body + d).encode()):
            return body + d
    raise AssertionError(body)


card_like = st.one_of(
    st.text(alphabet="0123456789", min_size=11, max_size=20),
    st.text(alphabet="0123456789", min_size=11, max_size=18).map(luhn_complete),
    st.text(max_size=22),
    st.none(),
)


@settings(max_examples=300, deadline=None)
@given(values=st.lists(card_like, max_size=40), start=st.integers(0, 5),
       large=st.booleans())
def test_compiled_matches_twin_on_arrow_columns(values, start, large):
    """Nulls, sliced arrays (offset) and large_string all agree with the twin."""
    arr = pa.array(values, pa.large_string() if large else pa.string())
    arr = arr.slice(min(start, len(arr)))
    got = cardno.check_column(arr, compiled)
    want = cardno.check_column(arr, cardcheck_py)
    per_value = [v is not None and cardcheck_py.is_card_no(v.encode()) for v in arr.to_pylist()]
    assert got.tolist() == want.tolist() == per_value


def test_chunked_dictionary_and_integer_columns():
    chunked = pa.chunked_array([["4111111111111111"], [None, "1234"]])
    assert cardno.check_column(chunked).tolist() == [True, False, False]
    dictionary = pa.array(["4111111111111111", "x"]).dictionary_encode()
    assert cardno.check_column(dictionary).tolist() == [True, False]
    assert cardno.check_column(pa.array([4111111111111111], pa.int64())).tolist() == [True]
    assert cardno.check_column(pa.array([1.5])).tolist() == [False]


@pytest.mark.parametrize("value, shown", [
    ("6214851000079199", "621485******9199"),
    ("6229091000000395781", "622909*********5781"),
    ("123456789012", "123456**9012"),
    ("12345", "*2345"),
    (None, ""),
])
def test_mask_keeps_at_most_first_6_and_last_4(value, shown):
    assert cardno.mask(value) == shown


def test_redact_masks_every_digit_run_of_card_length():
    text = "card 6214851000079199 and id 20151029000001 and 12345678901 and 12345678901234567890"
    out = cardno.redact(text)
    assert "6214851000079199" not in out and "621485******9199" in out
    assert "201510****0001" in out  # 14 digits: could be a PAN, so masked too
    assert "12345678901 " in out       # 11 digits: too short to be a card number
    assert "12345678901234567890" in out  # 20 digits: too long
