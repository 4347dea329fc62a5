"""Shared test helpers: the default rules, small registries, and pricing rows in memory."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import fastavro
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest

from txcore.engine import BACKENDS, make_engine
from txcore.fixtures import card_numbers
from txcore.rules.refdata import Card, Cards, Merchant, Merchants
from txcore.rules.book import load_book
from txcore.state.memory import State
from txcore.vocab import INPUT_COLUMNS

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules"
FIXTURES = REPO / "fixtures"
import numpy as np  # noqa: E402

# Luhn-valid card numbers made by the fixtures' own generator
CMB_CARD, CMB_CARD2, CMB_CARD3 = card_numbers(np.array(["CMB"] * 3), np.array([1, 2, 3]))
CIB_CARD, = card_numbers(np.array(["CIB"]), np.array([4]))
STRANGER = card_numbers(np.array(["CMB"]), np.array([999]))[0]  # valid, not in the registry
QUANZHOU, XIAMEN = "350500", "350200"
D = dt.date


def registry(**overrides) -> Cards:
    """CMB_CARD / CMB_CARD2: CMB members since 2013-09-01; CIB_CARD: CIB member;
    CMB_CARD3: a CMB card that never was a member.  ``overrides``: card_no -> Card."""
    cards = Cards()
    cards[CMB_CARD] = Card("M1", "临江街道工会", "CMB", QUANZHOU, D(2013, 9, 1), None)
    cards[CMB_CARD2] = Card("M2", "临江街道工会", "CMB", QUANZHOU, D(2013, 9, 1), None)
    cards[CIB_CARD] = Card("M3", "海滨街道工会", "CIB", QUANZHOU, D(2013, 9, 1), None)
    cards[CMB_CARD3] = Card(None, None, "CMB", QUANZHOU, None, None)
    cards.update(overrides)
    return cards


def merchants(*items: Merchant) -> Merchants:
    m = Merchants()
    for item in items:
        m[item.merchant_id] = item
    return m


@pytest.fixture(scope="session")
def book():
    """The default Licheng 2013 rules."""
    return load_book(RULES)


def batch_of(rows: list[dict]) -> pa.RecordBatch:
    """A record batch of input rows; missing keys are null.  ``amount`` is int64 unless any
    row gives it as text; ``ts`` may be text or an aware/naive datetime."""
    cols = {}
    for name in INPUT_COLUMNS:
        values = [r.get(name) for r in rows]
        if name == "amount" and not any(isinstance(v, str) for v in values):
            cols[name] = pa.array(values, pa.int64())
        elif name == "ts" and any(isinstance(v, dt.datetime) for v in values):
            aware = any(v.tzinfo for v in values if v is not None)
            cols[name] = pa.array(values, pa.timestamp("us", "UTC" if aware else None))
        else:
            cols[name] = pa.array(values, pa.string())
    return pa.RecordBatch.from_pydict(cols)


def row(**kw) -> dict:
    """A valid member ATM withdrawal at its own bank in Quanzhou, with ``kw`` changed."""
    base = {"txn_id": "T1", "card_no": CMB_CARD, "ts": "2013-10-15T10:00:00+08:00",
            "kind": "withdrawal", "channel": "atm", "amount": 100000, "currency": "CNY",
            "acq_bank": "CMB", "city": QUANZHOU}
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request):
    """Every pricing backend; pricing tests take this fixture to run on all of them."""
    return request.param


def price(rows, book, cards=None, state=None, backend="python", batch_size=None, *,
          business_date=None):
    """Price ``rows`` in order; returns ``(priced, rejects)`` as lists of dicts."""
    engine = make_engine(backend, book, cards if cards is not None else registry(),
                         state if state is not None else State(), business_date)
    priced, rejects = [], []
    size = batch_size or max(len(rows), 1)
    for start in range(0, max(len(rows), 1), size):
        p, r = engine.price_batch(batch_of(rows[start:start + size]))
        priced += p.to_pylist()
        rejects += r.to_pylist()
    return priced, rejects


def price_one(book, cards=None, state=None, backend="python", **kw) -> dict:
    """Price a single row built by :func:`row`; fails the test if it is rejected."""
    priced, rejects = price([row(**kw)], book, cards, state, backend)
    assert not rejects, rejects
    return priced[0]


def reject_of(book, cards=None, backend="python", **kw) -> dict:
    priced, rejects = price([row(**kw)], book, cards, None, backend)
    assert not priced, priced
    return rejects[0]


def write_input(table: pa.Table, path, fmt: str):
    """Write ``table`` as an input file of format ``fmt`` (csv, parquet, arrow, arrows,
    avro: timestamps as their logical types, int64 as long, the rest as strings)."""
    if fmt == "csv":
        pacsv.write_csv(table, path)
    elif fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "arrow":
        feather.write_feather(table, path)
    elif fmt == "arrows":
        with pa.ipc.new_stream(path, table.schema) as w:
            w.write_table(table)
    elif fmt == "avro":
        schema = {"type": "record", "name": "t", "fields": [
            {"name": f.name, "type": ["null", _avro(f.type)]} for f in table.schema]}
        with open(path, "wb") as fh:
            fastavro.writer(fh, fastavro.parse_schema(schema), _avro_rows(table))


def _avro(t):
    if pa.types.is_timestamp(t):
        local = "" if t.tz else "local-"
        unit = {"ms": "millis", "us": "micros"}[t.unit]
        return {"type": "long", "logicalType": f"{local}timestamp-{unit}"}
    return "long" if pa.types.is_int64(t) else "string"


def _avro_rows(table):
    cols = {}
    for f in table.schema:
        col = table.column(f.name)
        cols[f.name] = col.cast(pa.int64()).to_pylist() if pa.types.is_timestamp(f.type) \
            else col.to_pylist()
    return [dict(zip(cols, vals)) for vals in zip(*cols.values())]



@pytest.fixture(autouse=True)
def _no_swallowed_exceptions(capfd):
    """Fail a test whose stderr shows an exception swallowed inside compiled code."""
    yield
    err = capfd.readouterr().err
    assert "Exception ignored" not in err, err
