"""Column type shapes x output formats x backends, each through a real run.

Every Arrow type shape below (scalars at their extremes, temporal types of every unit,
decimals, dictionaries, nested lists, structs and maps, unions, intervals) is put into
an input file twice: as an extra column, carried to both outputs, and in place of one
of the transaction's own columns (round robin).  Each file is run with every output
format on the ``cython`` and ``python`` backends.  A run must either succeed with every
row accounted for (input = priced + rejected, and the outputs read back with those row
counts), or stop with exit 2 (the output format cannot hold the column) or exit 3 (a
transaction column of a type txcore does not read), naming the column.  Any other
exception is a bug.  The counts per format are printed (``pytest -s``) and checked.
"""
from __future__ import annotations

import decimal
import json
from collections import Counter
from pathlib import Path

import fastavro
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

import txcore
from conftest import FIXTURES, RULES
from txcore.errors import InputRefused, OutputRefused

DAY = FIXTURES / "txns-2015-11-01.parquet"
ROWS = 24
FORMATS = ("parquet", "csv", "avro", "arrow")
BACKENDS = ("cython", "python")
DOMAIN = ("txn_id", "card_no", "ts", "kind", "amount", "channel", "city", "mcc",
          "orig_txn_id", "currency")

I64 = (-2**63, 2**63 - 1)


def _ints(t: pa.DataType) -> list:
    bits = t.bit_width
    lo, hi = (0, 2**bits - 1) if pa.types.is_unsigned_integer(t) else (-2**(bits - 1),
                                                                        2**(bits - 1) - 1)
    return [lo, hi, 0, None, 1, min(hi, 1200)]


def _pattern(values: list, n: int) -> list:
    return [values[i % len(values)] for i in range(n)]


SCALARS = [
    pa.null(), pa.bool_(),
    pa.int8(), pa.int16(), pa.int32(), pa.int64(),
    pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64(),
    pa.float16(), pa.float32(), pa.float64(),
    pa.decimal128(10, 2), pa.decimal128(38, 0), pa.decimal256(50, 5),
    pa.string(), pa.large_string(), pa.string_view(),
    pa.binary(), pa.large_binary(), pa.binary_view(), pa.binary(3),
    pa.date32(), pa.date64(),
    pa.time32("s"), pa.time32("ms"), pa.time64("us"), pa.time64("ns"),
    *(pa.timestamp(u, tz) for u in ("s", "ms", "us", "ns") for tz in (None, "UTC", "+08:00")),
    *(pa.duration(u) for u in ("s", "ms", "us", "ns")),
    pa.month_day_nano_interval(),
]
NESTED = [
    pa.dictionary(pa.int32(), pa.string()), pa.dictionary(pa.int8(), pa.int64()),
    pa.dictionary(pa.int32(), pa.null()),
    pa.list_(pa.int64()), pa.large_list(pa.string()), pa.list_(pa.int32(), 2),
    pa.list_(pa.list_(pa.string())),
    pa.struct([("a", pa.int64()), ("b", pa.string())]),
    pa.struct([("s", pa.struct([("x", pa.bool_()), ("t", pa.timestamp("us", "UTC"))]))]),
    pa.list_(pa.struct([("d", pa.decimal128(12, 3)), ("u", pa.uint64())])),
    pa.map_(pa.string(), pa.int64()),
    pa.sparse_union([pa.field("i", pa.int64()), pa.field("s", pa.string())]),
    pa.dense_union([pa.field("i", pa.int64()), pa.field("s", pa.string())]),
]
SHAPES = SCALARS + NESTED


def column(t: pa.DataType, n: int) -> pa.Array:
    """``n`` values of type ``t``: extremes, zero, null, and ordinary values."""
    T = pa.types
    if T.is_null(t):
        return pa.nulls(n)
    if T.is_dictionary(t):
        values = column(t.value_type, 3)
        indices = pa.array(_pattern([0, 1, None, 2], n), t.index_type)
        return pa.DictionaryArray.from_arrays(indices, values)
    if T.is_struct(t):
        return pa.StructArray.from_arrays([column(f.type, n) for f in t], fields=list(t))
    if T.is_fixed_size_list(t):
        return pa.FixedSizeListArray.from_arrays(column(t.value_type, n * t.list_size),
                                                 t.list_size)
    if T.is_list(t) or T.is_large_list(t):
        sizes = _pattern([0, 1, 2, 3], n)
        offsets = [0]
        for s in sizes:
            offsets.append(offsets[-1] + s)
        cls = pa.LargeListArray if T.is_large_list(t) else pa.ListArray
        return cls.from_arrays(pa.array(offsets, pa.int64() if T.is_large_list(t)
                                        else pa.int32()), column(t.value_type, offsets[-1]))
    if T.is_map(t):
        sizes = _pattern([0, 1, 2], n)
        offsets = [0]
        for s in sizes:
            offsets.append(offsets[-1] + s)
        keys = pa.array([f"k{i}" for i in range(offsets[-1])], t.key_type)
        return pa.MapArray.from_arrays(pa.array(offsets, pa.int32()), keys,
                                       column(t.item_type, offsets[-1]))
    if T.is_union(t):
        type_ids = pa.array(_pattern([0, 1], n), pa.int8())
        if t.mode == "sparse":
            return pa.UnionArray.from_sparse(type_ids, [column(pa.int64(), n),
                                                        column(pa.string(), n)], ["i", "s"])
        offsets = pa.array([i // 2 for i in range(n)], pa.int32())
        return pa.UnionArray.from_dense(type_ids, offsets, [column(pa.int64(), n),
                                                            column(pa.string(), n)], ["i", "s"])
    if T.is_boolean(t):
        return pa.array(_pattern([True, False, None], n))
    if T.is_integer(t):
        return pa.array(_pattern(_ints(t), n), t)
    if T.is_floating(t):
        values = _pattern([0.0, -1.5, None, 1e30, float("nan"), 12.0], n)
        if T.is_float16(t):
            return pa.array(values, pa.float32()).cast(t)
        return pa.array(values, t)
    if T.is_decimal(t):
        big = decimal.Decimal("9" * (t.precision - t.scale - 1) or "0")
        values = [decimal.Decimal(0), None, big, -big]
        return pa.array(_pattern([v if v is None else v.scaleb(0) for v in values], n), t)
    if T.is_string(t) or T.is_large_string(t) or T.is_string_view(t):
        return pa.array(_pattern(["", "x", None, "千" * 40, "1200", "6214851136365181"], n),
                        pa.string()).cast(t)
    if T.is_fixed_size_binary(t):
        return pa.array(_pattern([b"abc", None, b"\x00\xff\x00"], n), t)
    if T.is_binary(t) or T.is_large_binary(t) or T.is_binary_view(t):
        return pa.array(_pattern([b"", b"\x00\xff", None, b"x" * 100], n),
                        pa.binary()).cast(t)
    if T.is_date32(t):
        return pa.array(_pattern([0, -719162, 2932896, None], n), pa.int32()).cast(t)
    if T.is_date64(t):
        return pa.array(_pattern([0, 86_400_000, None], n), pa.int64()).cast(t)
    if T.is_time32(t):
        top = 86_399 if t.unit == "s" else 86_399_999
        return pa.array(_pattern([0, top, None], n), pa.int32()).cast(t)
    if T.is_time64(t):
        top = 86_399_999_999 if t.unit == "us" else 86_399_999_999_999
        return pa.array(_pattern([0, top, None], n), pa.int64()).cast(t)
    if T.is_timestamp(t):
        # the first and last instants Python's datetime holds, in the column's unit
        per_s = {"s": 1, "ms": 1000, "us": 10**6, "ns": 10**9}[t.unit]
        lo, hi = (-2**63 + 1, 2**63 - 1) if t.unit == "ns" else (-62135596800 * per_s,
                                                                  253402300799 * per_s)
        return pa.array(_pattern([0, lo, hi, None, 1446336000 * per_s], n), pa.int64()
                        ).cast(t)
    if T.is_duration(t):
        return pa.array(_pattern([0, *I64, None], n), pa.int64()).cast(t)
    if T.is_interval(t):
        return pa.array(_pattern([(1, 2, 3), None, (0, 0, -1)], n), t)
    raise AssertionError(f"no values for {t}")


def read_back(path: Path, fmt: str) -> int:
    if fmt == "parquet":
        return pq.read_table(path).num_rows
    if fmt == "csv":
        return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
            column_types={}, strings_can_be_null=True)).num_rows if path.stat().st_size else 0
    if fmt == "avro":
        with open(path, "rb") as fh:
            return sum(1 for _ in fastavro.reader(fh))
    with pa.memory_map(str(path)) as src:
        return ipc.open_file(src).read_all().num_rows


def placements():
    """``(shape id, type, column)`` for every shape: as ``extra`` and in a domain column."""
    for i, t in enumerate(SHAPES):
        yield f"{t}@extra", t, "extra"
        yield f"{t}@{DOMAIN[i % len(DOMAIN)]}", t, DOMAIN[i % len(DOMAIN)]


CASES = list(placements())


@pytest.fixture(scope="module")
def outcomes():
    return Counter()


@pytest.fixture(scope="module")
def base():
    return pq.read_table(DAY).slice(0, ROWS)


def _input(base: pa.Table, t: pa.DataType, col: str, folder: Path) -> Path:
    arr = column(t, ROWS)
    assert arr.type == t and len(arr) == ROWS
    if col in base.column_names:
        table = base.set_column(base.schema.get_field_index(col), col, arr)
    else:
        table = base.append_column(col, arr)
    path = folder / "in.arrow"  # Arrow IPC holds every shape (Parquet not the interval)
    with ipc.new_file(path, table.schema) as w:
        w.write_table(table)
    return path


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_shape_is_written_or_refused_cleanly_in_every_format(case, backend, base,
                                                                   outcomes, tmp_path):
    _, t, col = case
    src = _input(base, t, col, tmp_path)
    for fmt in FORMATS:
        out = tmp_path / f"out-{fmt}"
        try:
            result = txcore.run([src], rules=RULES, cards=FIXTURES / "cards.csv",
                                merchants=FIXTURES / "merchants.csv", out_dir=out,
                                fmt=fmt, backend=backend, progress=False)
        except OutputRefused as exc:
            assert f"'{col}'" in str(exc), exc
            outcomes[fmt, "refused (exit 2)"] += 1
            assert not any(out.glob("*.priced.*")), "nothing published"
            continue
        except InputRefused as exc:
            assert col != "extra" and f"'{col}'" in str(exc), exc
            outcomes[fmt, "input refused (exit 3)"] += 1
            continue
        rows = result["rows"]
        assert rows["input"] == ROWS == rows["priced"] + rows["rejected"]
        (entry,) = result["inputs"]
        assert read_back(out / entry["priced_output"], fmt) == rows["priced"]
        assert read_back(out / entry["rejects_output"], fmt) == rows["rejected"]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["rows"] == rows
        outcomes[fmt, "written"] += 1


def test_shape_counts(outcomes, capfd):
    """Runs after the parametrized test in file order: how many shapes each format wrote
    or refused (over both backends).  Every case must have been decided."""
    if not outcomes:
        pytest.skip("run with the shape test (whole file) to see the counts")
    lines = [f"{len(SHAPES)} type shapes, {len(CASES)} placements, backends "
             f"{', '.join(BACKENDS)}:"]
    for fmt in FORMATS:
        got = {k[1]: v for k, v in outcomes.items() if k[0] == fmt}
        assert sum(got.values()) == len(CASES) * len(BACKENDS), (fmt, got)
        lines.append(f"  {fmt}: " + ", ".join(f"{v} {k}" for k, v in sorted(got.items())))
    with capfd.disabled():
        print("\n" + "\n".join(lines))
    # Arrow holds every Arrow type: only a transaction column of an unread type refuses
    assert ("arrow", "refused (exit 2)") not in outcomes
    assert outcomes["parquet", "written"] >= 0.75 * len(CASES) * len(BACKENDS)


assert len(SHAPES) == 59, len(SHAPES)  # the count the closing note quotes
