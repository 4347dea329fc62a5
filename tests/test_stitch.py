"""Parts written apart and stitched (txcore.io.stitch) make the file one BatchWriter
makes: byte for byte, row groups in order, statistics and all; bad parts are refused
naming the file.  The footer codec (txcore.io.thrift_compact) round-trips any tree."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import txcore
from conftest import FIXTURES, RULES
from txcore.errors import OutputRefused
from txcore.io import textdict, thrift_compact as tc
from txcore.io.stitch import Part, PartRefused, stitch, write_part
from txcore.io.writer import MIN_ROW_GROUP_ROWS, BatchWriter, parquet_options

MIN = MIN_ROW_GROUP_ROWS


# ------------------------------------------------------------------------------ data
def money_batch(n: int, seed: int) -> pa.RecordBatch:
    """Strings, a dictionary with nulls inside the dictionary and in the indices,
    zoned timestamps, int64 money with nulls, booleans."""
    rng = np.random.default_rng(seed)
    status = pa.DictionaryArray.from_arrays(
        pa.array(np.where(rng.random(n) < 0.05, None, rng.integers(0, 4, n)).tolist(), pa.int8()),
        pa.array(["ok", None, "rejected", "reversed"]))
    fee = rng.integers(-10**12, 10**12, n)
    return pa.record_batch({
        "txn_id": pa.array([f"T{seed:03d}-{k:07d}" for k in range(n)], pa.string()),
        "card_no": pa.array([f"6225{x:012d}" for x in rng.integers(0, 10**12, n)], pa.string()),
        "ts": pa.array(rng.integers(1_300_000_000_000, 1_500_000_000_000, n),
                       pa.timestamp("ms", "Asia/Shanghai")),
        "local": pa.array(rng.integers(0, 10**9, n), pa.timestamp("s", "Europe/Paris")),
        "fee": pa.array(np.where(rng.random(n) < 0.1, None, fee).tolist(), pa.int64()),
        "status": status,
        "city": pa.array(rng.choice(["350500", "350200", None], n).tolist(), pa.string()),
        "member": pa.array(rng.random(n) < 0.7),
    })


def strings_batch(n: int, seed: int) -> pa.RecordBatch:
    rng = np.random.default_rng(seed)
    words = np.array(["", "é", "工会", "a" * 300, "x"])
    return pa.record_batch({"name": pa.array(rng.choice(words, n).tolist()),
                            "note": pa.array([None if k % 7 else f"n{k}" for k in range(n)],
                                             pa.large_string())})


def assert_reads_back(path: Path, batches, schema):
    """pyarrow reads ``path`` as the batches in order (as Parquet stores them: a
    dictionary's nulls in the validity, timestamp[s] in milliseconds)."""
    read = pq.read_table(path)
    whole = pa.Table.from_batches(batches, schema=schema)
    assert read.num_rows == whole.num_rows
    for f in schema:
        got, want = read.column(f.name), whole.column(f.name)
        if pa.types.is_dictionary(f.type):
            got, want = got.cast(f.type.value_type), want.cast(f.type.value_type)
        if pa.types.is_timestamp(f.type) and f.type.unit == "s":
            want = want.cast(pa.timestamp("ms", f.type.tz))
        assert got.equals(want), f.name


def batch_writer_bytes(path: Path, batches, schema) -> bytes:
    w = BatchWriter(path, schema, "parquet")
    for b in batches:
        w.write(b)
    w.close()
    return path.read_bytes()


def stitched_bytes(folder: Path, parts: list[list], schema, name="out.parquet",
                   read_first=False) -> bytes:
    """The file stitched from parts of ``parts``; with ``read_first``, each part read
    (``Part``) as it is written, as a partitioned run does, and the stitch given those."""
    paths = []
    for i, pieces in enumerate(parts):
        paths.append(folder / f"part-{i:04d}.parquet")
        write_part(paths[-1], pieces, schema)
    handed = [Part(p) for p in paths] if read_first else paths
    stitch(handed, folder / name, schema)
    assert not any(p.exists() for p in paths)  # removed once stitched
    return (folder / name).read_bytes()


# ------------------------------------------------------------------------------ identity
@pytest.mark.parametrize("make", [money_batch, strings_batch])
@pytest.mark.parametrize("layout", [[3], [1, 1, 1], [1, 0, 2], [0, 3, 0]],
                         ids=["one-part", "many-parts", "an-empty-part", "empty-ends"])
@pytest.mark.parametrize("read_first", [False, True], ids=["paths", "parts-read-first"])
def test_stitched_file_is_what_one_batch_writer_writes(tmp_path, make, layout, read_first):
    batches = [make(MIN + 1000 * i, seed=i) for i in range(sum(layout))]
    schema = batches[0].schema
    expected = batch_writer_bytes(tmp_path / "one.parquet", batches, schema)
    parts, k = [], 0
    for n in layout:
        parts.append(batches[k:k + n])
        k += n
    assert stitched_bytes(tmp_path, parts, schema, read_first=read_first) == expected
    assert_reads_back(tmp_path / "out.parquet", batches, schema)
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.num_row_groups == len(batches)


def test_a_part_given_as_one_table_is_one_row_group(tmp_path):
    table = pa.Table.from_batches([money_batch(MIN, 1), money_batch(MIN, 2)])
    write_part(tmp_path / "p", table, table.schema)
    stitch([tmp_path / "p"], tmp_path / "out.parquet")
    assert pq.ParquetFile(tmp_path / "out.parquet").metadata.num_row_groups == 1
    assert_reads_back(tmp_path / "out.parquet", table.to_batches(), table.schema)


def test_row_group_statistics_are_those_of_each_group(tmp_path):
    batches = [money_batch(MIN + 17 * i, seed=10 + i) for i in range(4)]
    schema = batches[0].schema
    stitched_bytes(tmp_path, [batches[:1], batches[1:3], batches[3:]], schema)
    meta = pq.ParquetFile(tmp_path / "out.parquet").metadata
    for i, batch in enumerate(batches):
        group = meta.row_group(i)
        assert group.num_rows == batch.num_rows
        for j, name in enumerate(schema.names):
            column = group.column(j)
            if name not in parquet_options(schema)["write_statistics"]:
                assert not column.is_stats_set
                continue
            values = batch.column(name)
            bounds = pc.min_max(values)
            assert column.statistics.min == bounds["min"].as_py()
            assert column.statistics.max == bounds["max"].as_py()
            assert column.statistics.null_count == values.null_count


def test_empty_outputs_are_the_batch_writers_empty_file(tmp_path):
    schema = money_batch(1, 0).schema
    expected = batch_writer_bytes(tmp_path / "one.parquet", [], schema)
    assert stitched_bytes(tmp_path, [], schema, "none.parquet") == expected
    assert stitched_bytes(tmp_path, [[]], schema, "empty.parquet") == expected
    assert stitched_bytes(tmp_path, [[], [money_batch(0, 1)], []], schema,
                          "empties.parquet") == expected
    assert pq.read_table(tmp_path / "empties.parquet").num_rows == 0
    with pytest.raises(ValueError, match="no parts and no schema"):
        stitch([], tmp_path / "x.parquet")


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.one_of(st.just(0), st.integers(MIN, MIN + 300)), max_size=3),
                max_size=4))
def test_any_partition_of_full_batches_stitches_to_the_batch_writers_file(tmp_path_factory, sizes):
    folder = tmp_path_factory.mktemp("parts")
    seeds = iter(range(1000))
    parts = [[money_batch(n, next(seeds)) for n in part] for part in sizes]
    schema = money_batch(1, 0).schema
    expected = batch_writer_bytes(folder / "one.parquet", [b for p in parts for b in p], schema)
    assert stitched_bytes(folder, parts, schema) == expected


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.integers(0, 2000), max_size=4), max_size=5))
def test_small_pieces_keep_their_row_groups_and_rows(tmp_path_factory, sizes):
    """Pieces of any size: the stitched file is what one writer gives when every piece
    is its own row group, and reads back as the pieces in order."""
    folder = tmp_path_factory.mktemp("small")
    seeds = iter(range(1000))
    parts = [[money_batch(n, next(seeds)) for n in part] for part in sizes]
    schema = money_batch(1, 0).schema
    with pq.ParquetWriter(folder / "one.parquet", schema, **parquet_options(schema)) as w:
        for b in (b for p in parts for b in p if b.num_rows):
            w.write_table(pa.Table.from_batches([_prepared(b)]))
    assert stitched_bytes(folder, parts, schema) == (folder / "one.parquet").read_bytes()
    pieces = [b for p in parts for b in p]
    assert_reads_back(folder / "out.parquet", pieces, schema)
    meta = pq.ParquetFile(folder / "out.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == \
        [b.num_rows for b in pieces if b.num_rows]


def _prepared(batch):
    from txcore.io.writer import ParquetPrep
    return ParquetPrep(batch.schema)(batch, "reference")


# ------------------------------------------------------------------------------ a real run
@pytest.fixture(scope="module")
def priced_file(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    txcore.run([str(FIXTURES / "txns-2015-11-01.parquet")], out_dir=out, progress=False,
               rules=RULES, cards=FIXTURES / "cards.csv", merchants=FIXTURES / "merchants.csv")
    return out / "txns-2015-11-01.priced.parquet"


def test_the_priced_schema_of_a_demo_run_stitches_like_the_batch_writer(priced_file, tmp_path):
    day = pq.read_table(priced_file)
    assert day.num_rows > 10_000
    table = pa.concat_tables([day] * (3 * MIN // day.num_rows + 1))  # real rows, enough
    schema = table.schema
    # the run's rows again, in pieces of at least MIN rows, cut at arbitrary places
    cuts = [0, MIN, 2 * MIN + 123, table.num_rows]
    pieces = [b for a, z in zip(cuts, cuts[1:]) for b in
              table.slice(a, z - a).combine_chunks().to_batches(max_chunksize=z - a)]
    expected = batch_writer_bytes(tmp_path / "one.parquet", pieces, schema)
    assert stitched_bytes(tmp_path, [pieces[:1], pieces[1:]], schema) == expected
    assert stitched_bytes(tmp_path, [[p] for p in pieces], schema, "each.parquet") == expected
    assert pq.read_table(tmp_path / "out.parquet").equals(table.combine_chunks())


def test_the_demo_runs_own_file_comes_back_from_its_row_groups(priced_file, tmp_path):
    """Each row group of the run's output, written as a part and stitched: the run's
    file again, byte for byte.  Its low-cardinality text is read as the run read it, as
    dictionaries (io.textdict): a dictionary page is written from the dictionary given."""
    names = textdict.read_as_dictionary(pq.read_schema(priced_file))
    assert names  # kind, channel, ... (the test would not show the dictionary path)
    parquet = pq.ParquetFile(priced_file, read_dictionary=names)
    schema = textdict.marked(parquet.schema_arrow, names)
    parts = [[pa.Table.from_batches(parquet.read_row_group(i).combine_chunks().to_batches(),
                                    schema=schema)]
             for i in range(parquet.metadata.num_row_groups)]
    assert stitched_bytes(tmp_path, parts, schema) == priced_file.read_bytes()
    # the file holds text: its schema is the run's, whatever the reader
    assert pq.read_schema(priced_file) == textdict.contract(schema)
    assert pq.read_schema(priced_file).field("kind").type == pa.string()


# ------------------------------------------------------------------------------ refusals
def _part(folder: Path, name: str, batch) -> Path:
    write_part(folder / name, batch, batch.schema)
    return folder / name


def test_parts_of_another_schema_are_refused_naming_the_part(tmp_path):
    a = _part(tmp_path, "a", money_batch(10, 1))
    other = money_batch(10, 2)
    b = _part(tmp_path, "b", other.set_column(4, "fee", other.column(4).cast(pa.int32(), safe=False)))
    with pytest.raises(PartRefused, match=r"/b: not the schema of .*/a: its columns differ: "
                                          r"'fee' \(int64 vs int32\)"):
        stitch([a, b], tmp_path / "out.parquet")
    c = _part(tmp_path, "c", strings_batch(10, 1))
    with pytest.raises(PartRefused, match=r"/c: not the schema of the output"):
        stitch([c], tmp_path / "out.parquet", money_batch(1, 0).schema)
    assert a.exists() and b.exists() and not (tmp_path / "out.parquet").exists()


def test_a_part_from_another_parquet_writer_is_refused_saying_so(tmp_path):
    batch = money_batch(10, 1)
    a = _part(tmp_path, "a", batch)
    data = a.read_bytes()
    stamp = f"parquet-cpp-arrow version {pa.__version__}".encode()
    assert data.count(stamp) == 1
    other = tmp_path / "b"
    forged = b"parquet-cpp-arrow version 99".ljust(len(stamp), b"9")  # same length: same layout
    other.write_bytes(data.replace(stamp, forged))
    with pytest.raises(PartRefused, match=r"/b: not the schema of .*/a: written by "
                                          r"parquet-cpp-arrow version 999"):
        stitch([a, other], tmp_path / "out.parquet")
    with pytest.raises(PartRefused, match=r"/b: not the schema of the output: written by"):
        stitch([other], tmp_path / "out.parquet", batch.schema)


def test_same_columns_other_metadata_are_refused(tmp_path):
    batch = money_batch(10, 1)
    a = _part(tmp_path, "a", batch)
    b = _part(tmp_path, "b", batch.replace_schema_metadata({"k": "v"}))
    with pytest.raises(PartRefused, match=r"/b: .* its schema metadata differs"):
        stitch([a, b], tmp_path / "out.parquet")


@pytest.mark.parametrize("damage", ["truncated", "cut-tail", "footer-bytes", "no-magic",
                                    "empty", "chunk-offsets", "missing"])
def test_a_corrupt_or_truncated_part_is_refused_naming_it(tmp_path, damage):
    good = _part(tmp_path, "good.parquet", money_batch(5000, 1))
    bad = _part(tmp_path, "bad.parquet", money_batch(5000, 2))
    data = bad.read_bytes()
    length = int.from_bytes(data[-8:-4], "little")
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "cut-tail":
        data = data[:-1]
    elif damage == "footer-bytes":
        start = len(data) - 8 - length
        data = data[:start + 10] + bytes([0xFF] * 6) + data[start + 16:]
    elif damage == "no-magic":
        data = b"XXXX" + data[4:]
    elif damage == "empty":
        data = b""
    elif damage == "chunk-offsets":  # a column chunk removed from the middle of the data
        data = data[:4] + data[104:]
    if damage == "missing":
        bad.unlink()
    else:
        bad.write_bytes(data)
    with pytest.raises(PartRefused, match=r"bad\.parquet: "):
        stitch([good, bad], tmp_path / "out.parquet")
    assert good.exists()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_damaged_footer_is_refused_or_stitched_never_a_crash(tmp_path, data):
    """Any bytes of a part's footer changed: the part is refused naming it, or (a change
    the checks cannot see, e.g. a statistic) stitched as it is."""
    path = tmp_path / "part.parquet"
    write_part(path, strings_batch(50, 1), strings_batch(1, 1).schema)
    good = path.read_bytes()
    length = int.from_bytes(good[-8:-4], "little")
    start = len(good) - 8 - length
    at = data.draw(st.integers(start, len(good) - 9))
    new = data.draw(st.binary(min_size=1, max_size=4))
    path.write_bytes(good[:at] + new + good[at + len(new):] if at + len(new) <= len(good) - 8
                     else good[:at] + new[: len(good) - 8 - at] + good[-8:])
    try:
        stitch([path], tmp_path / "out.parquet", remove_parts=False)
    except PartRefused as exc:
        assert str(exc).startswith(f"{path}: ")


def test_parts_with_page_indexes_or_bloom_filters_are_refused(tmp_path):
    batch = strings_batch(100, 1)
    for name, extra in [("index", {"write_page_index": True}),
                        ("bloom", {"bloom_filter_options": {"name": True}})]:
        with pq.ParquetWriter(tmp_path / name, batch.schema, **extra) as w:
            w.write_batch(batch)
        with pytest.raises(PartRefused, match=rf"/{name}: .*parts are written by write_part"):
            stitch([tmp_path / name], tmp_path / "out.parquet")


def test_a_part_refuses_values_and_types_parquet_cannot_hold(tmp_path):
    far = pa.record_batch({"t": pa.array([2**62], pa.timestamp("s"))})
    with pytest.raises(OutputRefused, match=r"p: column 't' holds a timestamp\[s\] beyond"):
        write_part(tmp_path / "p", far, far.schema)
    unions = pa.schema([("u", pa.dense_union([pa.field("a", pa.int8())]))])
    with pytest.raises(OutputRefused, match=r"q: cannot be written as parquet: column 'u'"):
        write_part(tmp_path / "q", [], unions)


def test_a_seconds_timestamp_is_stored_as_the_batch_writer_stores_it(tmp_path):
    batch = pa.record_batch({"t": pa.array([dt.datetime(2015, 11, 1, 8, 0, 1)] * MIN,
                                           pa.timestamp("s", "Asia/Shanghai"))})
    expected = batch_writer_bytes(tmp_path / "one.parquet", [batch], batch.schema)
    assert stitched_bytes(tmp_path, [[batch]], batch.schema) == expected


# ------------------------------------------------------------------------------ the codec
_leaf = st.one_of(
    st.tuples(st.just(tc.BYTE), st.integers(-128, 127)),
    st.tuples(st.just(tc.I16), st.integers(-2**15, 2**15 - 1)),
    st.tuples(st.just(tc.I32), st.integers(-2**31, 2**31 - 1)),
    st.tuples(st.just(tc.I64), st.integers(-2**63, 2**63 - 1)),
    st.tuples(st.just(tc.DOUBLE), st.binary(min_size=8, max_size=8)),
    st.tuples(st.just(tc.BINARY), st.binary(max_size=40)))


def _structs(values):
    field = st.tuples(st.integers(1, 40), st.one_of(
        _leaf, st.tuples(st.sampled_from([tc.TRUE, tc.FALSE]), st.booleans()), values))
    return st.lists(field, max_size=5, unique_by=lambda f: f[0]).map(
        lambda fs: tc.Struct([fid, t, v] for fid, (t, v) in sorted(fs)))


_lists = st.sampled_from([tc.I32, tc.BINARY, tc.TRUE]).flatmap(
    lambda t: st.lists(st.integers(1, 2) if t == tc.TRUE else
                       st.integers(-2**31, 2**31 - 1) if t == tc.I32 else
                       st.binary(max_size=5), max_size=20)
    .map(lambda items: (tc.LIST, tc.Seq(t, items))))
# a value: a leaf, a list (of 15 or more items: the long list header), or a nested struct
_values = st.deferred(lambda: st.one_of(_leaf, _lists,
                                        _structs(_values).map(lambda s: (tc.STRUCT, s))))


@settings(max_examples=300, deadline=None)
@given(_structs(_values))
def test_the_compact_codec_round_trips_any_struct(tree):
    data = tc.encode(tree)
    back = tc.decode_exact(data)
    assert tc.encode(back) == data
    assert _plain(back) == _plain(tree)


def _plain(v):
    if isinstance(v, tc.Struct):
        return [(fid, t in (tc.TRUE, tc.FALSE) or t, _plain(x)) for fid, t, x in v]
    if isinstance(v, tc.Seq):
        return (v.etype, [_plain(x) for x in v.items])
    return v


def test_the_codec_refuses_what_it_would_not_write_back(tmp_path):
    long_form = bytes([tc.I32, 2, 2, 0])  # field 1 in the long form: a writer uses the short one
    assert tc.decode(long_form)[0] == [[1, tc.I32, 1]]
    with pytest.raises(tc.CompactError, match="would not round-trip"):
        tc.decode_exact(long_form)
    with pytest.raises(tc.CompactError, match="ends in the middle"):
        tc.decode_exact(bytes([0x15]))
