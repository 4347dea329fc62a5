"""Fuzzing timestamps at and beyond the representable range, in every input format and
type shape, on every backend: no run fails, every backend gives the same rows, and a row
is bad_ts when (and only when) its time cannot be represented or lies in the future.

Shapes: CSV text; Avro text and its four timestamp logical types; Parquet text and
timestamp ms/us/ns, each naive, UTC, Asia/Shanghai and +05:30 (Parquet keeps seconds as
milliseconds); Arrow file and stream, text and s/ms/us/ns each naive, UTC, Asia/Shanghai
and -12:00 — SHAPES below, 53 in all."""
from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from conftest import batch_of, registry, row, write_input
from txcore.engine import make_engine
from txcore.io.reader import InputSource
from txcore.state.memory import State

ZONES = {"parquet": [None, "UTC", "Asia/Shanghai", "+05:30"],
         "arrow": [None, "UTC", "Asia/Shanghai", "-12:00"]}
SHAPES = ([("csv", "text")] + [("avro", t) for t in
                               ("text", "ts-millis", "ts-micros", "local-millis", "local-micros")]
          + [("parquet", "text")] + [("parquet", (u, z)) for u in ("ms", "us", "ns")
                                     for z in ZONES["parquet"]]
          + [(f, "text") for f in ("arrow", "arrows")]
          + [(f, (u, z)) for f in ("arrow", "arrows") for u in ("s", "ms", "us", "ns")
             for z in ZONES["arrow"]])
assert len(SHAPES) == 53
US = 10**6
Y1 = -62135596800 * US          # 0001-01-01T00:00 as microseconds since 1970
Y10000 = 253402300800 * US      # 10000-01-01T00:00
DAY = 86400 * US
AVRO = {"ts-millis": ("ms", "UTC", "timestamp-millis"),
        "ts-micros": ("us", "UTC", "timestamp-micros"),
        "local-millis": ("ms", None, "local-timestamp-millis"),
        "local-micros": ("us", None, "local-timestamp-micros")}


def _in_unit(us: int, unit: str) -> int:
    return {"s": us // US, "ms": us // 1000, "us": us, "ns": us * 1000}[unit]


def typed_values(unit):
    """int64 values of a timestamp unit: at and around years 1 and 9999, the int64
    extremes, anything, and plausible days."""
    lo, hi = -2**63, 2**63 - 1
    edges = [e for e in (Y1, Y10000, Y1 + DAY, Y10000 - DAY, Y1 - DAY, Y10000 + DAY)
             if lo <= _in_unit(e - 3 * DAY, unit) and _in_unit(e + 3 * DAY, unit) <= hi]
    near_2015 = st.integers(1420070400 * US, 1480000000 * US).map(lambda u: _in_unit(u, unit))
    parts = [near_2015, st.integers(lo, hi), st.sampled_from([lo, hi, 0])]
    if edges:  # (int64 nanoseconds reach only 1677-2262)
        parts.append(st.sampled_from(edges).flatmap(
            lambda e: st.integers(-2 * DAY, 2 * DAY).map(lambda d: _in_unit(e + d, unit))))
    return st.one_of(*parts)


@st.composite
def text_ts(draw):
    year = draw(st.one_of(st.sampled_from([0, 1, 2, 9998, 9999, 2015]), st.integers(0, 9999)))
    month, day = draw(st.integers(1, 12)), draw(st.integers(1, 31))
    hh, mm, ss = draw(st.integers(0, 23)), draw(st.integers(0, 59)), draw(st.integers(0, 59))
    off = draw(st.one_of(st.just(""), st.just("Z"), st.builds(
        lambda s, h, m: f"{s}{h:02d}:{m:02d}", st.sampled_from("+-"), st.integers(0, 23),
        st.sampled_from([0, 30, 45, 59]))))
    text = f"{year:04d}-{month:02d}-{day:02d}T{hh:02d}:{mm:02d}:{ss:02d}{off}"
    if draw(st.integers(0, 9)) == 0:  # now and then a full-width or Arabic-Indic digit
        i = draw(st.sampled_from([k for k, c in enumerate(text) if c.isdigit()]))
        text = text[:i] + chr(draw(st.sampled_from([0xFF10, 0x0660, 0x06F0])) + int(text[i])) \
            + text[i + 1:]
    return text


def _text_oracle(text: str):
    """``(wall or instant us, aware)`` of a text timestamp, or None if not a time at all."""
    if not text.isascii():
        return None
    try:
        wall = dt.datetime.fromisoformat(text[:19])
    except ValueError:
        return None
    us = (wall - dt.datetime(1970, 1, 1)) // dt.timedelta(microseconds=1)
    rest = text[19:]
    if rest == "":
        return us, False
    if rest == "Z":
        return us, True
    sign = -1 if rest[0] == "-" else 1
    return us - sign * (int(rest[1:3]) * 3600 + int(rest[4:6]) * 60) * US, True


def _write(path, fmt, shape, values):
    rows = [row(txn_id=f"T{i}", ts=None) for i in range(len(values))]
    t = pa.Table.from_batches([batch_of(rows)]).drop_columns(["ts"])
    if shape == "text":
        typ, col = pa.string(), pa.array(values, pa.string())
    else:
        unit, tz = AVRO[shape][:2] if fmt == "avro" else shape
        typ = pa.timestamp(unit, tz)
        col = pa.array(values, pa.int64()).cast(typ)
    write_input(t.append_column("ts", col), path, fmt)


@st.composite
def values_of(draw, fmt, shape):
    if shape == "text":
        values = draw(st.lists(text_ts(), min_size=1, max_size=8))
    else:
        unit = AVRO[shape][0] if fmt == "avro" else shape[0]
        values = draw(st.lists(typed_values(unit), min_size=1, max_size=8))
    return values


@pytest.mark.parametrize("fmt,shape", SHAPES, ids=[f"{f}-{s}" for f, s in SHAPES])
@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data(),
       business=st.one_of(st.just(dt.date(9999, 12, 31)), st.just(dt.date(2015, 10, 29)),
                          st.dates()))
def test_timestamps_at_and_beyond_the_range_in_every_format_and_backend(
        book, tmp_path_factory, fmt, shape, data, business):
    values = data.draw(values_of(fmt, shape))
    path = tmp_path_factory.mktemp("ts") / f"in.{fmt}"
    _write(path, fmt, shape, values)
    source = InputSource(str(path))
    batches = list(source.batches())  # never refused as a whole for a timestamp
    outcomes = {}
    for backend in ("python", "cython", "numba"):
        engine = make_engine(backend, book, registry(), State(), business)
        priced, rejects = [], []
        for b in batches:
            p, r = engine.price_batch(b)
            priced.append(p)
            rejects.append(r)
        priced, rejects = pa.Table.from_batches(priced), pa.Table.from_batches(rejects)
        assert priced.num_rows + rejects.num_rows == len(values)
        outcomes[backend] = priced, rejects
    for backend in ("cython", "numba"):  # tables, not Python values: a reject row keeps
        for got, want in zip(outcomes[backend], outcomes["python"]):  # its ts as read
            assert got.equals(want), backend
    rejects = outcomes["python"][1]
    reasons = dict(zip(rejects.column("txn_id").to_pylist(),
                       rejects.column("reject_reason").to_pylist()))
    assert set(reasons.values()) <= {"bad_ts", "no_ruleset"}
    for i, v in enumerate(values):
        if shape == "text":
            got = _text_oracle(v)
            if got is None:
                continue  # not a valid time: bad_ts or not, the backends agree
            us, aware = got
        else:
            unit, tz = AVRO[shape][:2] if fmt == "avro" else shape
            us = {"s": v * US, "ms": v * 1000, "us": v, "ns": v // 1000}[unit]
            aware = tz is not None
        reason = reasons.get(f"T{i}")
        if not Y1 <= us < Y10000:  # the instant, or the wall time, is outside years 1-9999
            assert reason == "bad_ts", (v, reason)
            event("beyond the range")
        elif Y1 + 2 * DAY <= us < Y10000 - 2 * DAY:  # representable in any zone
            local = dt.date(1970, 1, 1) + dt.timedelta(microseconds=us + (8 * 3600 * US
                                                                         if aware else 0))
            if (local - business).days > 2:
                assert reason == "bad_ts", (v, reason)
                event("in the future")
            elif (local - business).days < 1 and reason is not None:
                assert reason == "no_ruleset" or (local < dt.date(1901, 1, 2)), (v, reason)
                event("within the range")
        else:
            event("within a day of the range's ends")
