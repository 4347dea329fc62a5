"""The registry kept as columns: the ``Cards`` mapping, its compilation to REG rows
(against the card-by-card loop it replaces) and the engine built on it."""
from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import pyarrow as pa
import pytest
from conftest import (
    CIB_CARD,
    CMB_CARD,
    CMB_CARD2,
    CMB_CARD3,
    FIXTURES,
    QUANZHOU,
    RULES,
    registry,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import txcore.rules.registry
from txcore._fast import layout as L
from txcore.engine import make_engine
from txcore.state.compact import _first_of_each
from txcore.fixtures import card_numbers
from txcore._fast.layout import Strings
from txcore.engine.flatrules import compile_registry
from txcore.timeconv import day_number
from txcore.state.keys import Keyer
from txcore.rules.refdata import Card, Cards, cards_by_rows, load_cards, read_table
from txcore.rules.book import load_book
from txcore.state.memory import State

D = dt.date
REGISTRY = FIXTURES / "cards.csv"


def loaded() -> Cards:
    cards = load_cards(REGISTRY)
    assert cards.columnar
    return cards


def by_rows() -> Cards:
    cards = cards_by_rows(REGISTRY, read_table(REGISTRY))
    assert not cards.columnar
    return cards


def reg_by_loop(cards, banks: Strings, cities: Strings) -> tuple[np.ndarray, list]:
    """REG rows card by card: ``compile_registry`` as it was, the reference."""
    numbers = list(cards)
    reg = np.zeros(len(numbers), L.REG)
    for i, number in enumerate(numbers):
        card = cards[number]
        reg[i] = (day_number(card.member_from), day_number(card.member_to),
                  banks.code(card.issuer), cities.code(card.home_city))
    return reg, numbers


# ======================================================================= the mapping

class TestColumnarCards:
    def test_same_cards_as_the_row_by_row_load(self):
        cards, reference = loaded(), by_rows()
        assert len(cards) == len(reference) == 5000
        assert list(cards) == list(reference)              # registry order
        assert list(cards.items()) == list(reference.items())
        assert cards == reference and cards.source == reference.source == REGISTRY

    def test_lookups(self):
        cards, reference = loaded(), by_rows()
        number = list(reference)[1234]
        assert cards[number] == reference[number]
        assert cards[number] is cards[number]              # made once, kept
        assert number in cards and cards.get(number) == reference[number]
        assert "0000" not in cards and cards.get("0000") is None and None not in cards
        with pytest.raises(KeyError):
            cards["0000"]
        assert cards.columnar                              # lookups leave the columns

    def test_no_card_is_made_until_asked_for(self, monkeypatch):
        cards = loaded()

        def refuse(*args):
            raise AssertionError("a Card was made")
        monkeypatch.setattr(txcore.rules.registry, "Card", refuse)
        engine = make_engine("cython", load_book(RULES), cards, State())
        assert len(engine.reg) == len(cards) == 5000
        with pytest.raises(AssertionError, match="a Card was made"):
            cards[next(iter(cards))]

    def test_changing_a_card_keeps_its_place(self):
        cards, reference = loaded(), by_rows()
        numbers = list(reference)
        changed = Card("M9", None, "ICBC", "350200", D(2014, 1, 1), None)
        cards[numbers[3]] = changed
        reference[numbers[3]] = changed
        assert not cards.columnar
        assert list(cards.items()) == list(reference.items())
        assert cards[numbers[3]] is changed and cards.source == REGISTRY

    def test_adding_updating_and_deleting(self):
        cards = loaded()
        numbers = list(cards)
        one, two = (str(n) for n in card_numbers(np.array(["CIB"] * 2), np.array([10**6, 10**6 + 1])))
        assert one not in cards and two not in cards
        new = Card(None, None, "CMB", QUANZHOU, None, None)
        cards.update({one: new}, **{two: new})
        del cards[numbers[0]]
        assert list(cards) == numbers[1:] + [one, two]
        assert cards[one] is new and len(cards) == 5001
        with pytest.raises(KeyError):
            del cards[numbers[0]]

    def test_columns_of_a_hand_built_registry(self):
        table = registry().columns()
        assert table.schema == txcore.rules.registry.SCHEMA
        assert table.column("card_no").to_pylist() == [CMB_CARD, CMB_CARD2, CIB_CARD, CMB_CARD3]
        assert table.column("issuer").to_pylist() == ["CMB", "CMB", "CIB", "CMB"]
        assert table.column("member_from").to_pylist() == [D(2013, 9, 1)] * 3 + [None]
        assert Cards.from_columns(table, None) == registry()

    def test_columns_of_a_loaded_registry(self):
        table = loaded().columns()
        assert table.schema == txcore.rules.registry.SCHEMA
        assert table.equals(by_rows().columns())

    def test_wrong_columns_are_refused(self):
        with pytest.raises(TypeError):
            Cards.from_columns(pa.table({"card_no": [CMB_CARD]}))

    def test_repr_shows_no_card_number(self):
        for cards in (loaded(), registry()):
            text = repr(cards)
            assert str(len(cards)) in text
            assert not any(number[:7] in text for number in cards)

    def test_pickles(self):
        cards = loaded()
        again = pickle.loads(pickle.dumps(cards))
        assert again.columnar and again == cards and again.source == REGISTRY


# ========================================================= REG rows from the columns

def assert_same_reg(cards, banks=(), cities=()):
    """compile_registry and the loop give the same rows, numbers and string codes,
    from tables that already hold ``banks`` / ``cities``."""
    new_banks, new_cities = Strings(banks), Strings(cities)
    old_banks, old_cities = Strings(banks), Strings(cities)
    reg, numbers = compile_registry(cards, new_banks, new_cities)
    expected, expected_numbers = reg_by_loop(cards, old_banks, old_cities)
    assert reg.dtype == L.REG
    assert np.array_equal(reg, expected)
    assert isinstance(numbers, pa.Array) and numbers.type == pa.string()
    assert numbers.to_pylist() == expected_numbers
    assert new_banks.values == old_banks.values and new_cities.values == old_cities.values


class TestCompileRegistry:
    def test_loaded(self):
        assert_same_reg(loaded())

    def test_hand_built(self):
        assert_same_reg(registry())

    def test_strings_already_known(self):
        assert_same_reg(loaded(), banks=["ICBC", "CIB"], cities=["350200", "350500", "350100"])

    def test_empty(self):
        reg, numbers = compile_registry(Cards(), Strings(), Strings())
        assert len(reg) == 0 and len(numbers) == 0 and numbers.type == pa.string()

    def test_days_and_never(self):
        cards = registry(**{CMB_CARD: Card("M", "u", "CMB", QUANZHOU, D(1969, 12, 31),
                                           D(2014, 12, 31))})
        reg, _ = compile_registry(cards, Strings(), Strings())
        assert reg["member_from"].tolist() == [-1, 15949, 15949, L.NEVER]
        assert reg["member_to"].tolist() == [16435, L.NEVER, L.NEVER, L.NEVER]

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from(["CMB", "CIB", "ICBC", "B1", None]),
                              st.sampled_from(["350500", "350200", "350100", "110000"]),
                              st.none() | st.dates(D(1900, 1, 1), D(2100, 1, 1)),
                              st.none() | st.dates(D(1900, 1, 1), D(2100, 1, 1))),
                    max_size=12),
           st.lists(st.sampled_from(["CIB", "ABC", "CMB"]), unique=True),
           st.lists(st.sampled_from(["350200", "999999"]), unique=True))
    def test_generated(self, rows, banks, cities):
        numbers = card_numbers(np.array(["CMB"] * len(rows)), np.arange(len(rows)))
        cards = Cards({str(n): Card(None, None, *row) for n, row in zip(numbers, rows)})
        assert_same_reg(cards, banks, cities)
        assert_same_reg(Cards.from_columns(cards.columns()), banks, cities)


class TestEngine:
    def test_same_engine_tables_as_from_the_row_by_row_registry(self):
        book, keyer = load_book(RULES), Keyer()
        columnar = make_engine("cython", book, loaded(), State(keyer=keyer))
        reference = make_engine("cython", book, by_rows(), State(keyer=keyer))
        assert np.array_equal(columnar.reg, reference.reg)
        assert columnar.banks.values == reference.banks.values
        assert columnar.cities.values == reference.cities.values
        c, r = columnar.compact, reference.compact
        assert c.n_cards == r.n_cards == 5000
        assert np.array_equal(c.cards[: c.n_cards], r.cards[: r.n_cards])


# ======================================================== new cards, in first order

@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), max_size=40))
def test_first_of_each_keeps_the_order_of_first_appearance(pairs):
    array = np.array(pairs, np.uint64).reshape(-1, 2)
    expected = list(dict.fromkeys(pairs))
    got = _first_of_each(array)
    assert got.dtype == np.uint64
    assert [tuple(p) for p in got.tolist()] == expected
