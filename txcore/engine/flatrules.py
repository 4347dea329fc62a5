"""Rules and reference data compiled to the flat arrays of the pricing kernel.

Each rule-set version becomes a range of ``RULE`` rows (fee, waiver, discount
rules in file order) with conditions as bit masks and lookup tables; the card
registry becomes ``REG`` rows and the partner merchants a ``[version,
merchant]`` grid of ``MERCH`` cells.  Strings (rule ids, bank and city codes)
become small integers through :class:`Strings` tables; the kernel compares
integers only.  Layouts: :mod:`txcore._fast.layout`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from txcore._fast import layout as L
from txcore._fast.layout import Strings
from txcore.engine import zones
from txcore.rules.refdata import Cards
from txcore.rules.book import Conditions, RuleBook
from txcore.timeconv import day_number

ALL = 0xFFFFFFFF


def _mask(values, codes) -> int:
    if values is None:
        return ALL
    out = 0
    for v in values:
        out |= 1 << codes[v]
    return out


@dataclass
class FlatBook:
    versions: np.ndarray        # VERSION
    rules: np.ndarray           # RULE
    bands: np.ndarray           # BAND
    issuer_ok: np.ndarray       # uint8 [rule row, issuer code]
    mcc_ok: np.ndarray          # uint8 [rule row, mcc]
    merch: np.ndarray           # MERCH [version * n_merchants + merchant]
    merch_rule: np.ndarray      # int32: string code of "merchant:<id>"
    merchant_codes: dict        # merchant_id -> merchant code
    zones: list                 # zones.OffsetTable per zone number
    zone_names: list


def compile_book(book: RuleBook, strings: Strings, banks: Strings) -> FlatBook:
    """Flatten every version of ``book``; ``banks`` must already hold every issuer
    of the registry (issuer conditions are a table over its codes)."""
    zone_names = sorted({v.timezone for v in book.versions})
    versions = np.zeros(len(book.versions), L.VERSION)
    rules, bands, issuer_rows, mcc_rows = [], [], [], []
    width = len(banks.values)

    def add(rule_id, when: Conditions, **what):
        r = np.zeros((), L.RULE)
        r["kind_mask"] = _mask(when.kind, L.KIND_CODES)
        r["channel_mask"] = _mask(when.channel, L.CHANNEL_CODES)
        r["fee_item_mask"] = _mask(when.fee_item, L.FEE_ITEM_CODES)
        r["issuer_off"] = r["mcc_off"] = -1
        if when.issuer is not None:
            row = np.zeros(width, np.uint8)
            for code, name in enumerate(banks.values):
                row[code] = name in when.issuer
            r["issuer_off"] = len(issuer_rows) * width
            issuer_rows.append(row)
        if when.mcc is not None:
            row = np.zeros(L.MCC_TABLE, np.uint8)
            row[[int(m) for m in when.mcc]] = 1
            r["mcc_off"] = len(mcc_rows) * L.MCC_TABLE
            mcc_rows.append(row)
        r["cross"] = -1 if when.cross_bank is None else int(when.cross_bank)
        r["same"] = -1 if when.same_city is None else int(when.same_city)
        r["has_below"] = when.amount_below is not None
        r["amount_below"] = when.amount_below or 0
        r["code"] = strings.code(rule_id)
        r["free_per_month"] = -1
        r["band_lo"] = r["band_hi"] = len(bands)
        for key, value in what.items():
            r[key] = value
        rules.append(r)
        return r

    for v, version in enumerate(book.versions):
        row = versions[v]
        row["eff"] = day_number(version.effective_from)
        row["zone"] = zone_names.index(version.timezone)
        row["ruleset"] = strings.code(version.id)
        row["fee_lo"] = len(rules)
        for rule in version.fees:
            r = add(rule.id, rule.when)
            for b in rule.bands:
                bands.append((-1 if b.upto is None else b.upto, b.fixed, b.pct_bp, b.min, b.max))
            r["band_hi"] = len(bands)
        row["fee_hi"] = row["waiver_lo"] = len(rules)
        for rule in version.waivers:
            add(rule.id, rule.when,
                free_per_month=-1 if rule.free_per_month is None else rule.free_per_month)
        row["waiver_hi"] = row["disc_lo"] = len(rules)
        for rule in version.discounts:
            add(rule.id, rule.when, discount_bp=rule.discount_bp, cap=rule.cap,
                min_spend=rule.min_spend)
        row["disc_hi"] = len(rules)
    for r in rules:
        if r["code"] >= 2**15:
            raise ValueError("more than 32767 distinct rule ids and rule-set ids in one state")

    ids = sorted({m for v in book.versions if v.merchants is not None for m in v.merchants})
    merchant_codes = {m: k for k, m in enumerate(ids)}
    merch = np.zeros(max(len(book.versions) * len(ids), 1), L.MERCH)
    merch["valid_from"] = L.NEVER
    for v, version in enumerate(book.versions):
        for m in (version.merchants or {}).values():
            cell = merch[v * len(ids) + merchant_codes[m.merchant_id]]
            cell["valid_from"], cell["valid_to"] = day_number(m.valid_from), \
                day_number(m.valid_to)
            cell["bp"], cell["cap"], cell["min_spend"] = m.discount_bp, m.cap, m.min_spend
    merch_rule = np.array([strings.code(f"merchant:{m}") for m in ids], np.int32)

    def table(rows, width_):
        return np.concatenate(rows) if rows else np.zeros(max(width_, 1), np.uint8)

    return FlatBook(versions, np.array(rules, L.RULE) if rules else np.zeros(0, L.RULE),
                    np.array(bands, L.BAND) if bands else np.zeros(0, L.BAND),
                    table(issuer_rows, width), table(mcc_rows, L.MCC_TABLE), merch, merch_rule,
                    merchant_codes, [zones.table(z) for z in zone_names], zone_names)


def compile_registry(cards: Cards, banks: Strings, cities: Strings) -> tuple[np.ndarray, pa.Array]:
    """``(REG rows, card numbers)`` in registry order, from the registry's columns.

    Issuers and cities are interned distinct value by distinct value, in order of
    first appearance: the codes a card-by-card loop would give.
    """
    table = cards.columns()
    reg = np.zeros(table.num_rows, L.REG)
    reg["member_from"] = _day_numbers(table.column("member_from"))
    reg["member_to"] = _day_numbers(table.column("member_to"))
    reg["issuer"] = _interned(table.column("issuer"), banks)
    reg["city"] = _interned(table.column("home_city"), cities)
    return reg, table.column("card_no").combine_chunks()


def _day_numbers(dates: pa.ChunkedArray) -> np.ndarray:
    """Days since 1970 of a ``date32`` column; NEVER where null."""
    return pc.fill_null(dates.cast(pa.int32()), L.NEVER).to_numpy()


def _interned(texts: pa.ChunkedArray, strings: Strings) -> np.ndarray:
    """The code of each value in ``strings``; new values added in order of first
    appearance (the dictionary of ``dictionary_encode`` is in that order)."""
    encoded = pc.dictionary_encode(texts.combine_chunks(), null_encoding="encode")
    codes = np.array([strings.code(v) for v in encoded.dictionary.to_pylist()], np.int32)
    return codes[encoded.indices.to_numpy()]
