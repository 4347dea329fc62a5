"""Low-cardinality text read as dictionaries (txcore.io.textdict): the reader marks them,
every writer writes them as the text they are, and a run's outputs are those of the
same rows read as plain text."""
from __future__ import annotations

import json

import fastavro
import numpy as np

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import txcore
from conftest import FIXTURES, RULES
from txcore._fast.buffers import text_buffers
from txcore.io import textdict
from txcore.io.reader import InputSource
from txcore.io.stitch import stitch, write_part
from txcore.io.writer import MIN_ROW_GROUP_ROWS, BatchWriter

DEMO = FIXTURES / "txns-2015-11-01.parquet"


def _text_and_marked(values: dict) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    """A batch of text columns, and the same with ``kind`` and ``city`` as marked
    dictionaries; both schemas carry metadata (a footer keeps it beside the Arrow
    schema)."""
    meta = {b"origin": b"test", b"another": b"key"}
    text = pa.record_batch({k: pa.array(v, pa.string()) for k, v in values.items()})
    text = text.replace_schema_metadata(meta)
    names = ["kind", "city"]
    columns = [text.column(n).dictionary_encode() if n in names else text.column(n)
               for n in text.schema.names]
    schema = textdict.marked(pa.schema([pa.field(n, c.type) for n, c in
                                        zip(text.schema.names, columns)], metadata=meta),
                             names)
    return text, pa.RecordBatch.from_arrays(columns, schema=schema)


# --------------------------------------------------------------------------- schemas
def test_contract_unmarks_only_marked_columns():
    plain = pa.schema([pa.field("kind", textdict.DICTIONARY_TYPE, metadata={b"a": b"1"}),
                       pa.field("city", textdict.DICTIONARY_TYPE), ("txn_id", pa.string())],
                      metadata={b"m": b"2"})
    marked = textdict.marked(plain, ["kind"])
    assert textdict.is_marked(marked.field("kind")) and not textdict.is_marked(marked.field("city"))
    back = textdict.contract(marked)
    assert back.field("kind").type == pa.string()
    assert back.field("kind").metadata == {b"a": b"1"}  # its own metadata kept, the mark gone
    assert back.field("city").type == textdict.DICTIONARY_TYPE  # a real dictionary stays one
    assert back.metadata == {b"m": b"2"}
    assert textdict.contract(plain) is plain


def test_a_parquet_inputs_low_cardinality_text_is_read_as_marked_dictionaries(tmp_path):
    table = pq.read_table(DEMO)
    # kind as large_string: not plain string in the file, so read as it is
    odd = table.set_column(table.schema.get_field_index("kind"), "kind",
                           table["kind"].cast(pa.large_string()))
    pq.write_table(odd, tmp_path / "odd.parquet")
    for path, expected in ((DEMO, set(textdict.COLUMNS) & set(table.schema.names)),
                           (tmp_path / "odd.parquet",
                            set(textdict.COLUMNS) & set(table.schema.names) - {"kind"})):
        source = InputSource(str(path))
        batch = next(source.batches())
        got = {f.name for f in batch.schema if textdict.is_marked(f)}
        assert got == expected and expected
        for name in got:
            assert batch.schema.field(name).type == textdict.DICTIONARY_TYPE
        assert batch.schema.field("txn_id").type == pa.string()
        # the outputs' schemas say text
        priced, rejects = source.output_schemas()
        assert all(not textdict.is_marked(f) for f in priced)
        assert textdict.as_text(batch, textdict.contract(batch.schema)).equals(
            pq.read_table(path).slice(0, batch.num_rows).to_batches()[0].cast(
                textdict.contract(batch.schema)))


def test_a_dictionary_index_outside_its_entries_is_refused_before_the_compiled_pass():
    """``text_buffers`` hands raw buffers to ``encode_rows``, which reads the entries
    unchecked: an index past the dictionary (or negative) is refused; the value behind a
    null index is never read, whatever it holds."""
    entries = pa.array(["purchase", "withdrawal"])
    ok = pa.DictionaryArray.from_arrays(pa.array([0, 1, None], pa.int32()), entries)
    assert len(text_buffers(ok)) == 7
    # a null slot's index is undefined in Arrow: 99 there is legal, and never read
    null_slot = pa.DictionaryArray.from_arrays(
        pa.Array.from_buffers(pa.int32(), 3, [pa.array([True, False, True]).buffers()[1],
                                              pa.py_buffer(np.array([1, 99, 0], np.int32))],
                              null_count=1), entries)
    assert text_buffers(null_slot)[4].tolist() == [1, 99, 0]
    for bad in ([0, 2], [-1, 0]):
        arr = pa.DictionaryArray.from_arrays(pa.array(bad, pa.int32()), entries, safe=False)
        with pytest.raises(ValueError, match="outside its 2 entries"):
            text_buffers(arr)


# --------------------------------------------------------------------------- writers
WORDS = st.sampled_from(["purchase", "withdrawal", "", "取现", "a,b", 'q"q', None])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(WORDS, WORDS, st.text(max_size=5)), min_size=1, max_size=30))
def test_every_format_writes_marked_columns_as_the_text_they_are(tmp_path, rows):
    text, marked = _text_and_marked({"kind": [r[0] for r in rows], "city": [r[1] for r in rows],
                                     "txn_id": [r[2] for r in rows]})
    for fmt in ("parquet", "csv", "avro", "arrow"):
        files = []
        for name, batch in (("text", text), ("marked", marked)):
            w = BatchWriter(tmp_path / f"{name}.{fmt}", batch.schema, fmt, sync=False)
            w.write(batch)
            w.close()
            files.append(tmp_path / f"{name}.{fmt}")
        if fmt == "parquet":
            back = [pq.read_table(f) for f in files]
            assert back[1].schema == text.schema  # the footer's Arrow schema is the text one
            assert back[1].equals(back[0])
        elif fmt == "avro":  # the writer decodes them (an Avro file's sync marker is random)
            records = []
            for f in files:
                with open(f, "rb") as fh:
                    records.append(list(fastavro.reader(fh)))
            assert records[0] == records[1]
        else:  # the writer decodes them: the very file the text batch gives
            assert files[0].read_bytes() == files[1].read_bytes(), fmt


def test_a_marked_part_stitches_into_the_text_schemas_file(tmp_path):
    """The footer written for marked columns is the one of the text schema: the stitch,
    which compares every part's footer with the output schema's, takes the part."""
    n = MIN_ROW_GROUP_ROWS
    text, marked = _text_and_marked({"kind": ["purchase", "withdrawal", None, "x"] * (n // 4),
                                     "city": ["350200", "350500", "350200", None] * (n // 4),
                                     "txn_id": [f"T{i}" for i in range(n)]})
    write_part(tmp_path / "p0.parquet", [marked], marked.schema)
    rows = stitch([tmp_path / "p0.parquet"], tmp_path / "out.parquet", text.schema)
    assert rows == n
    back = pq.read_table(tmp_path / "out.parquet")
    assert back.schema == text.schema and back.equals(pa.Table.from_batches([text]))


# --------------------------------------------------------------------------- a run
def test_a_run_prices_a_parquet_input_as_the_same_rows_read_as_plain_text(tmp_path):
    """The demo day as Parquet (its low-cardinality columns read as dictionaries) and as
    an Arrow file of plain text: the same priced and reject rows, schemas and digests."""
    arrow_input = tmp_path / "in" / "txns-2015-11-01.arrow"
    arrow_input.parent.mkdir()
    feather.write_feather(pq.read_table(DEMO), arrow_input, compression="uncompressed")
    with ipc.open_file(arrow_input) as f:
        assert not any(pa.types.is_dictionary(t.type) for t in f.schema)
    out = {}
    for name, path in (("parquet", DEMO), ("arrow", arrow_input)):
        summary = txcore.run([str(path)], out_dir=tmp_path / name, progress=False, rules=RULES,
                             cards=FIXTURES / "cards.csv", merchants=FIXTURES / "merchants.csv")
        priced = pq.read_table(tmp_path / name / "txns-2015-11-01.priced.parquet")
        rejects = pq.read_table(tmp_path / name / "txns-2015-11-01.rejects.parquet")
        out[name] = summary, priced, rejects
    (s1, p1, r1), (s2, p2, r2) = out["parquet"], out["arrow"]
    assert p1.schema == p2.schema and p1.equals(p2)
    assert r1.schema == r2.schema and r1.equals(r2)
    assert p1.schema.field("kind").type == pa.string()
    assert s1["digest"] == s2["digest"] and s1["rows"] == s2["rows"]
    for key in ("by_kind", "totals", "rejected_by_reason", "rulesets"):  # Totals over them
        assert s1[key] == s2[key], key
    assert s1["rows"]["rejected"] > 0 and len(s1["by_kind"]) > 3
    csv_out = tmp_path / "csv"
    txcore.run([str(DEMO)], out_dir=csv_out, progress=False, rules=RULES, fmt="csv",
               cards=FIXTURES / "cards.csv", merchants=FIXTURES / "merchants.csv")
    assert pacsv.read_csv(csv_out / "txns-2015-11-01.priced.csv").num_rows == p1.num_rows
    assert json.loads((csv_out / "summary.json").read_text())["digest"] == s1["digest"]
