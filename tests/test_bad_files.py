"""Bad input files: refused by name, nothing of the run committed; and a fuzz of the readers.

docs/input.md (input formats), docs/state.md (a run commits atomically), docs/cli.md (exit 3: input refused).
Whatever a file holds, reading it through :class:`txcore.io.reader.InputSource` either
yields every row (and then pricing accounts for every one: priced + rejected == rows
read) or raises :class:`txcore.errors.InputRefused` naming the file.  Any other
exception, a hang or a crash of the interpreter is a bug.

1. Named bad files (empty, truncated, corrupt sync markers and footers, ragged or
   invalid-UTF-8 CSV after the first 4 MiB block, a Parquet decompression bomb): refused
   by the reader, and through :func:`txcore.run` with a state: InputRefused, nothing in
   OUTDIR, the committed state byte for byte as it was.
2. Odd but well-formed files (timestamps outside Python's datetime range, string_view
   columns, duplicate column names, corrupt Arrow buffers): priced with every row
   accounted, or refused; never another exception.
3. A fuzz: >= 10,000 mutated copies (truncations, bit and byte flips, insertions,
   deletions, duplicated blocks, length fields overwritten) of small seed files of every
   format, plus every single-bit flip of a small Parquet file's footer.

Cases that can take the interpreter down (pyarrow segfaults on unvalidated Arrow buffers
and aborts on some corrupt Parquet footers) run in child processes that execute this
file as a script, so a crash is reported with its case number instead of killing pytest.
To replay one fuzz case in the foreground, with its traceback::

    python tests/test_bad_files.py --reproduce random 1234 [OUTFILE]
"""
from __future__ import annotations

import collections
import io
import json
import os
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

import txcore
from conftest import FIXTURES, RULES
from txcore.errors import InputRefused
from txcore.engine.reference import ReferenceEngine
from txcore.io.reader import MAX_UNCOMPRESSED, InputSource
from txcore.rules.refdata import load_cards, load_merchants
from txcore.rules.book import load_book
from txcore.state.memory import State

CARDS = FIXTURES / "cards.csv"
MERCHANTS = FIXTURES / "merchants.csv"
DAY = FIXTURES / "txns-2015-11-01.parquet"
EARLIER_DAY = FIXTURES / "txns-2015-10-31.parquet"
THIS_FILE = Path(__file__).resolve()
CSV_BLOCK = 1 << 22  # the CSV reader's block size (txcore.io.reader)

FUZZ_FILES = 20_000      # mutated files in the random campaign (10,000 at least)
FUZZ_WORKERS = 2         # child processes (this machine has 2 cores)
PER_FILE_SECONDS = 5     # the alarm on each fuzzed file: longer is a hang
STALL_SECONDS = 60       # a worker silent this long is stuck in C code: killed, reported


# ------------------------------------------------------------------------ writers
def write_parquet(table: pa.Table, path: Path, **kw) -> Path:
    pq.write_table(table, path, **kw)
    return path


def write_csv(table: pa.Table, path: Path) -> Path:
    pacsv.write_csv(table, path)
    return path


def avro_schema(schema: pa.Schema) -> dict:
    """Nullable unions throughout; timestamps as timestamp-micros."""
    def typ(f):
        if pa.types.is_timestamp(f.type):
            return ["null", {"type": "long", "logicalType": "timestamp-micros"}]
        if pa.types.is_integer(f.type):
            return ["null", "long"]
        return ["null", "string"]
    return fastavro.parse_schema({"type": "record", "name": "Txn",
                                  "fields": [{"name": f.name, "type": typ(f)} for f in schema]})


def write_avro(table: pa.Table, path: Path, sync_interval: int = 16 * 1024) -> Path:
    """A fixed sync marker, so the same table always gives the same bytes."""
    with open(path, "wb") as fh:
        fastavro.writer(fh, avro_schema(table.schema), table.to_pylist(),
                        sync_interval=sync_interval, sync_marker=b"txcore-fuzz-sync")
    return path


def write_arrow_file(table: pa.Table, path: Path, chunk: int = 500) -> Path:
    with ipc.new_file(path, table.schema) as w:
        w.write_table(table, max_chunksize=chunk)
    return path


def write_arrow_stream(table: pa.Table, path: Path, chunk: int = 500) -> Path:
    with ipc.new_stream(path, table.schema) as w:
        w.write_table(table, max_chunksize=chunk)
    return path


def write_feather(table: pa.Table, path: Path, chunk: int = 500) -> Path:
    feather.write_feather(table, path, chunksize=chunk)  # lz4-compressed IPC file
    return path


# ---------------------------------------------------------------- reading and pricing
def load_pricing():
    """``(book, cards)``: the default rules with the bundled merchants and registry."""
    return load_book(RULES, load_merchants(MERCHANTS)), load_cards(CARDS)


def read_and_price(path: Path, book, cards, batch_size: int = 97) -> dict:
    """Read ``path`` whole and price it from an empty state; InputRefused propagates.

    Returns the counts and, per txn_id (when the column is text), the reject reason.
    """
    source = InputSource(str(path), batch_size)
    engine = ReferenceEngine(book, cards, State())
    priced = rejected = 0
    reasons = {}
    for batch in source.batches():
        p, r = engine.price_batch(batch)
        assert p.num_rows + r.num_rows == batch.num_rows, "a row of the batch was lost"
        priced += p.num_rows
        rejected += r.num_rows
        if "txn_id" in r.schema.names and "reject_reason" in r.schema.names:
            for tid, why in zip(r.column("txn_id").to_pylist(),
                                r.column("reject_reason").to_pylist()):
                reasons[str(tid)] = why
    return {"rows": source.rows, "priced": priced, "rejected": rejected,
            "total_rows": source.total_rows, "reasons": reasons}


def drain(path: Path, batch_size: int = 97) -> int:
    source = InputSource(str(path), batch_size)
    for _ in source.batches():
        pass
    return source.rows


def refused_or_accounted(path: Path, book, cards) -> str:
    """Reading and pricing ``path`` ends in one of the two allowed ways; which one."""
    try:
        got = read_and_price(path, book, cards)
    except InputRefused as exc:
        assert path.name in str(exc)
        return "refused"
    assert got["priced"] + got["rejected"] == got["rows"]
    return "read"


@pytest.fixture(scope="module")
def pricing():
    return load_pricing()


# ------------------------------------------------------------- runs with a state folder
NOT_STATE = {"LOCK"}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a folder but the run lock, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in NOT_STATE}


def run_with_state(files, out_dir: Path, state_dir: Path) -> dict:
    return txcore.run([str(f) for f in files], rules=RULES, cards=CARDS, merchants=MERCHANTS,
                      out_dir=out_dir, state_dir=state_dir, progress=False)


@pytest.fixture(scope="module")
def committed(tmp_path_factory):
    """A state folder with one committed run, and a good file not yet in its ledger."""
    folder = tmp_path_factory.mktemp("committed")
    first = write_parquet(pq.read_table(EARLIER_DAY).slice(0, 600), folder / "first.parquet")
    second = write_parquet(pq.read_table(DAY).slice(0, 300), folder / "second.parquet")
    summary = run_with_state([first], folder / "out", folder / "state")
    assert summary["rows"]["input"] == 600
    return {"state": folder / "state", "second": second}


def refused_run_commits_nothing(bad: Path, committed, tmp_path: Path) -> InputRefused:
    """Run ``second`` then ``bad`` on a copy of the committed state: refused, no trace."""
    state, out = tmp_path / "state", tmp_path / "out"
    shutil.copytree(committed["state"], state)
    before = snapshot(state)
    assert any(name.startswith("ledger") for name in before)
    with pytest.raises(InputRefused) as refused:
        run_with_state([committed["second"], bad], out, state)
    assert bad.name in str(refused.value)
    assert refused.value.exit_code == 3
    assert sorted(p.name for p in out.rglob("*")) == []  # no outputs, no staging left
    assert snapshot(state) == before
    return refused.value


# ================================================================ 1. named bad files
def _parquet_cases(table: pa.Table, folder: Path) -> dict[str, tuple[str, bytes]]:
    src = write_parquet(table, folder / "src.parquet", row_group_size=500)
    data = src.read_bytes()
    md = pq.ParquetFile(src).metadata
    assert md.num_row_groups == 4
    footer_len = struct.unpack("<i", data[-8:-4])[0]
    footer_start = len(data) - 8 - footer_len

    def chunk_start(rg):
        c = md.row_group(rg).column(0)
        return min(o for o in (c.dictionary_page_offset, c.data_page_offset) if o is not None)
    rg1_start, rg2_start = chunk_start(1), chunk_start(2)
    return {
        "parquet-header-only": ("header-only.parquet", data[:4]),
        "parquet-cut-mid-row-group": ("cut-mid-row-group.parquet",
                                      data[:(rg1_start + rg2_start) // 2]),
        "parquet-cut-before-footer": ("cut-before-footer.parquet", data[:footer_start]),
        "parquet-footer-cut-in-metadata": ("footer-cut-in-metadata.parquet",
                                           data[:footer_start + footer_len // 2]),
        "parquet-footer-length-cut": ("footer-length-cut.parquet", data[:-6]),
        "parquet-trailing-magic-cut": ("trailing-magic-cut.parquet", data[:-1]),
    }


def avro_blocks(data: bytes) -> tuple[bytes, list]:
    """``(sync marker, blocks)`` of an Avro container file held in ``data``."""
    blocks = list(fastavro.block_reader(io.BytesIO(data)))
    sync = data[blocks[0].offset - 16:blocks[0].offset]
    return sync, blocks


def _avro_cases(table: pa.Table, folder: Path) -> dict[str, tuple[str, bytes]]:
    data = write_avro(table, folder / "src.avro").read_bytes()
    sync, blocks = avro_blocks(data)
    assert len(blocks) >= 4
    after_first = blocks[0].offset + blocks[0].size - 16  # the marker closing block 0
    assert data[after_first:after_first + 16] == sync
    all_flipped = bytearray(data)
    all_flipped[after_first:after_first + 16] = bytes(b ^ 0xFF for b in sync)
    one_flipped = bytearray(data)
    one_flipped[after_first + 7] ^= 0x01
    last = blocks[-1].offset + blocks[-1].size - 16
    assert last == len(data) - 16 and data[last:] == sync
    last_flipped = bytearray(data)
    last_flipped[last + 15] ^= 0x80
    return {
        "avro-sync-marker-flipped": ("sync-flipped.avro", bytes(all_flipped)),
        "avro-sync-marker-one-bit": ("sync-one-bit.avro", bytes(one_flipped)),
        "avro-last-sync-marker-flipped": ("last-sync-flipped.avro", bytes(last_flipped)),
        "avro-truncated-mid-block": ("cut-mid-block.avro",
                                     data[:blocks[1].offset + blocks[1].size // 2]),
        "avro-truncated-in-sync-marker": ("cut-in-sync.avro",
                                          data[:blocks[2].offset + blocks[2].size - 8]),
        "avro-truncated-in-header": ("cut-in-header.avro", data[:blocks[0].offset // 2]),
    }


def _big_csv(table: pa.Table, folder: Path) -> bytes:
    """> 4 MiB of valid CSV: the rows with a long extra ``note`` column."""
    note = pa.array([f"{i:06d}" + "y" * 2300 for i in range(table.num_rows)])
    data = write_csv(table.append_column("note", note), folder / "big.csv").read_bytes()
    assert len(data) > CSV_BLOCK + 300_000
    return data


def _csv_cases(table: pa.Table, folder: Path) -> dict[str, tuple[str, bytes]]:
    lines = write_csv(table.slice(0, 40), folder / "small.csv").read_bytes().split(b"\n")
    short, long_ = list(lines), list(lines)
    short[20] = b",".join(short[20].split(b",")[:-3])
    long_[20] = long_[20] + b",extra,fields"
    big = _big_csv(table, folder)
    # a byte that is not UTF-8, in a note well past the first block
    bad_at = big.index(b"y" * 100, CSV_BLOCK + 200_000)
    invalid = big[:bad_at] + b"\xff\xfe" + big[bad_at + 2:]
    big_lines = big.split(b"\n")
    ragged_late = list(big_lines)
    cut_row = len(big_lines) - 20
    ragged_late[cut_row] = b",".join(ragged_late[cut_row].split(b",")[:4])
    late = b"\n".join(ragged_late)
    assert late.index(ragged_late[cut_row]) > CSV_BLOCK
    return {
        "csv-ragged-short-row": ("ragged-short.csv", b"\n".join(short)),
        "csv-ragged-long-row": ("ragged-long.csv", b"\n".join(long_)),
        "csv-ragged-row-after-first-block": ("ragged-late.csv", late),
        "csv-invalid-utf8-after-first-block": ("invalid-utf8-late.csv", invalid),
    }


def _arrow_cases(table: pa.Table, folder: Path) -> dict[str, tuple[str, bytes]]:
    data = write_arrow_file(table, folder / "src.arrow").read_bytes()
    assert data[-6:] == b"ARROW1"
    footer_len = struct.unpack("<i", data[-10:-6])[0]
    footer_start = len(data) - 10 - footer_len
    flipped = bytearray(data)
    for i in range(footer_start, footer_start + footer_len, 7):
        flipped[i] ^= 0xFF
    # the footer's record-batch blocks pointed 8 bytes past their messages
    shifted = bytearray(data)
    starts = [m.start() for m in re.finditer(b"\xff\xff\xff\xff", data[:footer_start])]
    moved = 0
    for s in starts:
        at = data.find(struct.pack("<q", s), footer_start)
        if at > 0:
            shifted[at:at + 8] = struct.pack("<q", s + 8)
            moved += 1
    assert moved >= 2
    feather_data = write_feather(table, folder / "src.feather").read_bytes()
    stream = write_arrow_stream(table, folder / "src.arrows").read_bytes()
    return {
        "arrow-footer-flipped": ("footer-flipped.arrow", bytes(flipped)),
        "arrow-footer-length-huge": ("footer-length-huge.arrow",
                                     data[:-10] + struct.pack("<i", 0x7FFFFFFF) + data[-6:]),
        "arrow-footer-length-zero": ("footer-length-zero.arrow",
                                     data[:-10] + struct.pack("<i", 0) + data[-6:]),
        "arrow-footer-magic-broken": ("footer-magic.arrow", data[:-6] + b"ARROW0"),
        "arrow-footer-cut": ("footer-cut.arrow", data[:footer_start + footer_len // 2]),
        "arrow-footer-blocks-shifted": ("blocks-shifted.arrow", bytes(shifted)),
        "feather-footer-cut": ("footer-cut.feather", feather_data[:-3]),
        "arrows-cut-in-schema": ("cut-in-schema.arrows", stream[:40]),
    }


def make_bomb(path: Path) -> Path:
    """One string column of 270 identical 1 MiB values, zstd, no dictionary: a few KB
    of file declaring ~270 MiB of data (> MAX_UNCOMPRESSED and > 100x its size)."""
    n, length = 270, 1 << 20
    offsets = pa.py_buffer(np.arange(0, (n + 1) * length, length, dtype=np.int32).tobytes())
    values = pa.py_buffer(np.full(n * length, ord("x"), dtype=np.uint8))
    column = pa.StringArray.from_buffers(n, offsets, values)
    pq.write_table(pa.table({"txn_id": column}), path, compression="zstd",
                   compression_level=1, use_dictionary=False, write_statistics=False)
    return path


EMPTY = [f"empty-{ext}" for ext in ("parquet", "csv", "avro", "arrow", "feather", "arrows")]
REFUSED = EMPTY + [
    "parquet-header-only", "parquet-cut-mid-row-group", "parquet-cut-before-footer",
    "parquet-footer-cut-in-metadata", "parquet-footer-length-cut", "parquet-trailing-magic-cut",
    "parquet-decompression-bomb",
    "avro-sync-marker-flipped", "avro-sync-marker-one-bit", "avro-last-sync-marker-flipped",
    "avro-truncated-mid-block", "avro-truncated-in-sync-marker", "avro-truncated-in-header",
    "csv-ragged-short-row", "csv-ragged-long-row", "csv-ragged-row-after-first-block",
    "csv-invalid-utf8-after-first-block",
    "arrow-footer-flipped", "arrow-footer-length-huge", "arrow-footer-length-zero",
    "arrow-footer-magic-broken", "arrow-footer-cut", "arrow-footer-blocks-shifted",
    "feather-footer-cut", "arrows-cut-in-schema",
]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad-files")
    work = folder / "src"
    work.mkdir()
    table = pq.read_table(DAY).slice(0, 2000)
    cases = {f"empty-{ext}": (f"empty.{ext}", b"") for ext in
             ("parquet", "csv", "avro", "arrow", "feather", "arrows")}
    cases.update(_parquet_cases(table, work))
    cases.update(_avro_cases(table, work))
    cases.update(_csv_cases(table, work))
    cases.update(_arrow_cases(table, work))
    paths = {}
    for key, (name, content) in cases.items():
        paths[key] = folder / name
        paths[key].write_bytes(content)
    paths["parquet-decompression-bomb"] = make_bomb(folder / "bomb.parquet")
    assert len(set(p.name for p in paths.values())) == len(paths)
    assert sorted(paths) == sorted(REFUSED)
    return paths


@pytest.mark.parametrize("key", REFUSED)
def test_bad_file_is_refused_by_the_reader_naming_it(bad_files, key):
    path = bad_files[key]
    with pytest.raises(InputRefused) as refused:
        drain(path)
    assert path.name in str(refused.value)
    if key == "parquet-decompression-bomb":
        assert "decompression bomb" in str(refused.value)


@pytest.mark.parametrize("key", ["csv-invalid-utf8-after-first-block",
                                 "csv-ragged-row-after-first-block",
                                 "avro-sync-marker-flipped", "avro-truncated-mid-block"])
def test_bad_file_is_refused_after_its_first_rows_were_read(bad_files, key):
    """The fault is past the first batch: the reader yields rows, then refuses the file."""
    path = bad_files[key]
    source = InputSource(str(path), batch_size=64)
    batches = source.batches()
    assert next(batches).num_rows > 0
    with pytest.raises(InputRefused) as refused:
        for _ in batches:
            pass
    assert path.name in str(refused.value)


@pytest.mark.parametrize("key", REFUSED)
def test_bad_file_refuses_the_run_and_commits_nothing(bad_files, committed, key, tmp_path):
    refused = refused_run_commits_nothing(bad_files[key], committed, tmp_path)
    if key == "parquet-decompression-bomb":
        assert "decompression bomb" in str(refused)


def test_decompression_bomb_is_refused_before_its_data_is_allocated(bad_files):
    """In a fresh interpreter, so Arrow's peak allocation is this read's alone."""
    bomb = bad_files["parquet-decompression-bomb"]
    declared = pq.ParquetFile(bomb).metadata.row_group(0).column(0).total_uncompressed_size
    assert declared > MAX_UNCOMPRESSED and declared > 100 * bomb.stat().st_size
    got = outcome_in_child(bomb)
    assert got["outcome"] == "refused", got
    assert "decompression bomb" in got["message"] and bomb.name in got["message"]
    assert 0 <= got["max_memory"] < MAX_UNCOMPRESSED // 8, got


# ------------------------------------------------- a flipped byte in a Parquet data page
def _column_chunk(md, name: str):
    rg = md.row_group(0)
    return next(rg.column(j) for j in range(md.num_columns)
                if rg.column(j).path_in_schema == name)


def _flipped_parquet(table: pa.Table, folder: Path, flip: str) -> Path:
    plain = flip != "zstd-compressed-page"
    src = write_parquet(table, folder / f"src-{flip}.parquet",
                        compression="none" if plain else "zstd", use_dictionary=False,
                        write_statistics=False)
    data = bytearray(src.read_bytes())
    md = pq.ParquetFile(src).metadata
    if flip == "string-value-invalid-utf8":
        at = data.index(table.column("txn_id")[57].as_py().encode())
        data[at + 5] = 0xFF
    elif flip in ("amount-value", "ts-value"):
        c = _column_chunk(md, "amount" if flip == "amount-value" else "ts")
        end = c.data_page_offset + c.total_compressed_size  # the last value's last byte
        data[end - 1] ^= 0x40
    elif flip == "zstd-compressed-page":
        c = _column_chunk(md, "card_no")
        data[c.data_page_offset + c.total_compressed_size // 2] ^= 0x5A
    else:  # the page header
        c = _column_chunk(md, "kind")
        data[c.data_page_offset + 1] ^= 0x0F
    path = folder / f"flipped-{flip}.parquet"
    path.write_bytes(bytes(data))
    return path


FLIPS = ["string-value-invalid-utf8", "amount-value", "ts-value", "zstd-compressed-page",
         "page-header"]


@pytest.mark.parametrize("flip", FLIPS)
def test_parquet_with_a_flipped_byte_in_a_data_page_is_refused_or_fully_priced(
        flip, pricing, committed, tmp_path):
    table = pq.read_table(DAY).slice(0, 200)
    path = _flipped_parquet(table, tmp_path, flip)
    book, cards = pricing
    try:
        got = read_and_price(path, book, cards)
    except InputRefused as exc:
        assert path.name in str(exc)
        refused_run_commits_nothing(path, committed, tmp_path / "run")
        return
    assert got["rows"] == table.num_rows, "read 'whole' without all the rows it declares"
    assert got["priced"] + got["rejected"] == got["rows"]
    if flip == "ts-value":  # the last ts is now ~ year 37000 or before year 1
        assert got["reasons"][table.column("txn_id")[-1].as_py()] == "bad_ts"
    state = tmp_path / "state"
    shutil.copytree(committed["state"], state)
    summary = run_with_state([path], tmp_path / "out", state)
    assert summary["rows"]["input"] == table.num_rows
    assert summary["rows"]["priced"] + summary["rows"]["rejected"] == table.num_rows


# ================================================== 2. odd but well-formed files
def _with_column(table: pa.Table, name: str, column) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, column)


YEAR_10000_US = 253_402_300_800_000_000  # 10000-01-01T00:00:00Z in microseconds
BEFORE_YEAR_1_US = -62_135_596_800_000_000 - 86_400_000_000  # 0000-12-31


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "arrows", "feather"])
def test_timestamps_outside_pythons_range_are_rejected_as_bad_ts(fmt, pricing, tmp_path):
    """A ts that Arrow holds but datetime cannot (year 10000, year 0) is a bad row
    (reject ``bad_ts``), not an error: the other rows are priced as usual."""
    table = pq.read_table(DAY).slice(0, 60)
    micros = table.column("ts").cast(pa.int64()).to_pylist()
    micros[5], micros[9] = YEAR_10000_US + 1, BEFORE_YEAR_1_US
    table = _with_column(table, "ts", pa.array(micros, pa.int64()).cast(
        pa.timestamp("us", "UTC")))
    writer = {"parquet": write_parquet, "arrow": write_arrow_file,
              "arrows": write_arrow_stream, "feather": write_feather}[fmt]
    path = writer(table, tmp_path / f"far-ts.{fmt}")
    book, cards = pricing
    got = read_and_price(path, book, cards)
    assert got["rows"] == 60 and got["priced"] + got["rejected"] == 60
    ids = table.column("txn_id").to_pylist()
    assert got["reasons"].get(ids[5]) == "bad_ts"
    assert got["reasons"].get(ids[9]) == "bad_ts"
    if fmt == "parquet":  # and the whole run goes through, writing the two rejects
        summary = txcore.run([str(path)], rules=RULES, cards=CARDS, merchants=MERCHANTS,
                             out_dir=tmp_path / "out", progress=False)
        assert summary["rows"]["input"] == 60
        assert summary["rejected_by_reason"].get("bad_ts", 0) >= 2


def test_avro_timestamp_outside_pythons_range_is_refused_or_rejected(pricing, tmp_path):
    """timestamp-micros of year 10000 (fastavro writes a long as it is, but cannot read it
    back as a datetime): the row is rejected, or the file refused; never a crash."""
    table = pq.read_table(DAY).slice(0, 60)
    rows = table.to_pylist()
    rows[5]["ts"] = YEAR_10000_US + 1
    path = tmp_path / "far-ts.avro"
    with open(path, "wb") as fh:
        fastavro.writer(fh, avro_schema(table.schema), rows)
    book, cards = pricing
    if refused_or_accounted(path, book, cards) == "read":
        got = read_and_price(path, book, cards)
        assert got["reasons"].get(table.column("txn_id")[5].as_py()) == "bad_ts"


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_string_view_columns_are_priced_like_string_columns(fmt, pricing, tmp_path):
    table = pq.read_table(DAY).slice(0, 300)
    views = pa.table({name: col.cast(pa.string_view()) if pa.types.is_string(col.type) else col
                      for name, col in zip(table.column_names, table.columns)})
    writer = write_parquet if fmt == "parquet" else write_arrow_file
    path = writer(views, tmp_path / f"views.{fmt}")
    book, cards = pricing
    plain = read_and_price(write_parquet(table, tmp_path / "plain.parquet"), book, cards)
    got = read_and_price(path, book, cards)
    assert (got["rows"], got["priced"], got["rejected"]) == \
        (plain["rows"], plain["priced"], plain["rejected"])
    assert got["reasons"] == plain["reasons"]


def test_unknown_time_zone_on_ts_is_refused_or_rejected(pricing, tmp_path):
    table = pq.read_table(DAY).slice(0, 40)
    table = _with_column(table, "ts", table.column("ts").cast(pa.int64()).cast(
        pa.timestamp("us", "Mars/Olympus_Mons")))
    path = write_parquet(table, tmp_path / "mars.parquet")
    book, cards = pricing
    refused_or_accounted(path, book, cards)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "arrow"])
def test_duplicate_column_names_are_refused_or_priced(fmt, pricing, tmp_path):
    table = pq.read_table(DAY).slice(0, 40)
    dup = pa.Table.from_arrays([*table.columns, table.column("city")],
                               names=[*table.column_names, "city"])
    writer = {"csv": write_csv, "parquet": write_parquet, "arrow": write_arrow_file}[fmt]
    path = writer(dup, tmp_path / f"dup-columns.{fmt}")
    book, cards = pricing
    refused_or_accounted(path, book, cards)


def test_csv_with_two_empty_column_names_is_refused_or_priced(pricing, tmp_path):
    path = tmp_path / "empty-names.csv"
    lines = write_csv(pq.read_table(DAY).slice(0, 10), tmp_path / "t.csv").read_text(
        encoding="utf-8").splitlines()
    path.write_text("\n".join([lines[0] + ',"",""'] + [x + ",a,b" for x in lines[1:]]) + "\n",
                    encoding="utf-8")
    book, cards = pricing
    refused_or_accounted(path, book, cards)


def _corrupt_string_offsets(table: pa.Table, path: Path, writer) -> Path:
    """An IPC file or stream whose txn_id offsets buffer points far past its data."""
    writer(table, path, chunk=table.num_rows)
    data = bytearray(path.read_bytes())
    lengths = [len(v) for v in table.column("txn_id").to_pylist()[:3]]
    offsets = struct.pack("<4i", 0, lengths[0], sum(lengths[:2]), sum(lengths[:3]))
    at = data.index(offsets)
    data[at + 8:at + 12] = struct.pack("<i", 0x7FFF0000)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("fmt", ["arrow", "arrows"])
def test_arrow_batch_with_corrupt_offsets_is_refused_not_a_crash(fmt, tmp_path):
    """Flatbuffers metadata intact, a buffer's content corrupt: Arrow does not validate
    IPC batches unless asked, so unvalidated data reaches pricing (in a child process:
    this has segfaulted the interpreter)."""
    table = pq.read_table(DAY).slice(0, 200)
    writer = write_arrow_file if fmt == "arrow" else write_arrow_stream
    path = _corrupt_string_offsets(table, tmp_path / f"bad-offsets.{fmt}", writer)
    got = outcome_in_child(path)
    assert got["outcome"] in ("refused", "read"), got
    if got["outcome"] == "refused":
        assert path.name in got["message"]
    else:
        assert got["priced"] + got["rejected"] == got["rows"], got


# ============================================================ 3. the fuzz of the readers
SEED_ROWS = 50
SEED_FORMATS = ("parquet", "csv", "avro", "arrow", "arrows", "feather")


def make_seed_files(folder: Path) -> dict[str, Path]:
    """Small valid files of every format: the first 50 rows of a bundled day, in
    several row groups / blocks / record batches (so block duplication means something)."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pq.read_table(DAY).slice(0, SEED_ROWS)
    seeds = {
        "parquet": write_parquet(table, folder / "seed.parquet", row_group_size=20,
                                 data_page_size=512),
        "csv": write_csv(table, folder / "seed.csv"),
        "avro": write_avro(table, folder / "seed.avro", sync_interval=1024),
        "arrow": write_arrow_file(table, folder / "seed.arrow", chunk=20),
        "arrows": write_arrow_stream(table, folder / "seed.arrows", chunk=20),
        "feather": write_feather(table, folder / "seed.feather", chunk=20),
    }
    # the footer sweep's seed: small enough to flip every footer byte
    seeds["footer"] = write_parquet(table.slice(0, 10).select(["txn_id", "card_no", "ts",
                                                               "amount"]),
                                    folder / "footer.parquet")
    return seeds


_INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000,
                0xFFFFFFFF, (1 << 63) - 1, (1 << 64) - 1)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def mutate(rng: random.Random, data: bytes) -> bytes:
    """One to three mutations: truncation, bit/byte flips, insertion, deletion, a block
    copied elsewhere or repeated in place, an integer or varint written over bytes."""
    buf = bytearray(data)
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        n = len(buf)
        if n == 0:
            buf.append(rng.randrange(256))
            continue
        op = rng.randrange(8)
        if op == 0:
            del buf[rng.randrange(n):]
        elif op == 1:
            for _ in range(rng.randint(1, 4)):
                buf[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif op == 2:
            for _ in range(rng.randint(1, 4)):
                buf[rng.randrange(n)] = rng.randrange(256)
        elif op == 3:
            at = rng.randrange(n + 1)
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 4:
            at = rng.randrange(n)
            del buf[at:at + rng.randint(1, 16)]
        elif op == 5:
            start = rng.randrange(n)
            block = bytes(buf[start:start + rng.randint(1, 512)])
            at = rng.randrange(n + 1)
            buf[at:at] = block
        elif op == 6:
            start = rng.randrange(n)
            block = bytes(buf[start:start + rng.randint(1, 512)])
            buf[start:start] = block * rng.randint(1, 3)
        else:
            value = rng.choice(_INTERESTING)
            if rng.random() < 0.3:
                raw = _varint(value)
            else:
                width = rng.choice((1, 2, 4, 8))
                raw = (value & ((1 << (8 * width)) - 1)).to_bytes(width, "little")
            at = rng.randrange(n)
            buf[at:at + len(raw)] = raw
    return bytes(buf)


_EXT = {"parquet": ".parquet", "csv": ".csv", "avro": ".avro", "arrow": ".arrow",
        "arrows": ".arrows", "feather": ".feather", "footer": ".parquet"}
FOOTER_BITS = tuple(range(8))


def fuzz_case(campaign: str, case: int, seeds: dict[str, bytes]) -> tuple[str, bytes]:
    """``(format, bytes)`` of one case: deterministic in ``campaign`` and ``case``."""
    if campaign == "random":
        fmt = SEED_FORMATS[case % len(SEED_FORMATS)]
        return fmt, mutate(random.Random(case), seeds[fmt])
    data = bytearray(seeds["footer"])  # "footer": one bit of the Parquet footer flipped
    footer_len = struct.unpack("<i", data[-8:-4])[0]
    byte = len(data) - 8 - footer_len + case // len(FOOTER_BITS)
    data[byte] ^= 1 << FOOTER_BITS[case % len(FOOTER_BITS)]
    return "footer", bytes(data)


def footer_cases(seeds: dict[str, bytes]) -> int:
    return struct.unpack("<i", seeds["footer"][-8:-4])[0] * len(FOOTER_BITS)


class _Hang(BaseException):
    """Raised by the per-file alarm (a BaseException, so no ``except Exception`` eats it)."""


def _on_alarm(signum, frame):
    raise _Hang(f"no result within {PER_FILE_SECONDS} s")


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "txcore" in f.filename and "tests" not in f.filename]
    picked = ([ours[-1]] if ours else []) + ([frames[-1]] if frames else [])
    return " <- ".join(dict.fromkeys(f"{Path(f.filename).name}:{f.lineno} in {f.name}"
                                     for f in reversed(picked)))


def check_case(path: Path, book, cards) -> dict:
    """Read and price one file under the alarm; the outcome, never an exception."""
    signal.setitimer(signal.ITIMER_REAL, PER_FILE_SECONDS)
    try:
        try:
            got = read_and_price(path, book, cards, batch_size=16)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except InputRefused as exc:
        if path.name not in str(exc):
            return {"outcome": "bug", "type": "InputRefused without the file's name",
                    "message": str(exc)[:300], "where": _where(exc)}
        return {"outcome": "refused"}
    except (Exception, _Hang) as exc:  # noqa: BLE001 - every other exception is the finding
        kind = "hang" if isinstance(exc, _Hang) else \
            f"{type(exc).__module__}.{type(exc).__qualname__}"
        return {"outcome": "bug", "type": kind, "message": str(exc)[:300], "where": _where(exc)}
    if got["priced"] + got["rejected"] != got["rows"]:
        return {"outcome": "bug", "type": "rows lost in pricing", "where": "",
                "message": f"rows {got['rows']} != priced {got['priced']} + rejected "
                           f"{got['rejected']}"}
    if got["total_rows"] is not None and got["total_rows"] != got["rows"]:
        return {"outcome": "bug", "type": "read without error but not whole", "where": "",
                "message": f"the file declares {got['total_rows']} rows, "
                           f"{got['rows']} were read"}
    return {"outcome": "read"}


def _load_seeds(seeds_dir: Path) -> dict[str, bytes]:
    return {p.stem if p.stem != "seed" else p.suffix[1:]: p.read_bytes()
            for p in Path(seeds_dir).iterdir()}


def _run_cases(campaign, seeds, book, cards, start: int, stop: int, log: str, work: str):
    """Check cases [start, stop), logging ``S case`` before and ``D case {...}`` after
    each, so the parent knows which case a crash or a stall happened on."""
    signal.signal(signal.SIGALRM, _on_alarm)
    folder = Path(work)
    folder.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as out:
        for case in range(start, stop):
            out.write(f"S {case}\n")
            out.flush()
            fmt, data = fuzz_case(campaign, case, seeds)
            path = folder / f"{campaign}-{case}{_EXT[fmt]}"
            path.write_bytes(data)
            result = check_case(path, book, cards)
            path.unlink()
            result["fmt"] = fmt
            out.write(f"D {case} {json.dumps(result)}\n")
            out.flush()


def _fork_server(campaign: str, seeds_dir: str) -> int:
    """Child of the test: imports and loads everything once, then for each request line
    ``START STOP LOG WORK STDERR`` on stdin forks a worker (a crash costs a fork, not a
    fresh interpreter) and answers ``PID pid`` then ``EXIT code`` (-signal if killed)."""
    warnings.simplefilter("error")  # as pytest's filterwarnings = error
    seeds = _load_seeds(Path(seeds_dir))
    book, cards = load_pricing()
    for line in sys.stdin:
        start, stop, log, work, err = line.split()
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # the worker: its own stderr file, for the crash report
            code = 0
            try:
                fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(fd, 2)
                _run_cases(campaign, seeds, book, cards, int(start), int(stop), log, work)
            except BaseException:  # noqa: BLE001 - reported through the exit code
                traceback.print_exc()
                code = 70
            finally:
                sys.stderr.flush()
                os._exit(code)
        print(f"PID {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"EXIT {os.waitstatus_to_exitcode(status)}", flush=True)
    return 0


def _crash_summary(rc: int, stderr: str) -> str:
    """The signal, a C++ ``what():`` if any, and the innermost Python frame."""
    try:
        what = signal.Signals(-rc).name
    except ValueError:
        what = f"exit code {rc}"
    lines = stderr.splitlines()
    detail = [x.strip() for x in lines if "what():" in x or x.startswith("Fatal Python error")]
    frame = next((x.strip() for x in lines if x.strip().startswith("File ")), "")
    return "; ".join([what, *detail[:2], frame])


class _Lane:
    """One fork server and the worker it is running."""

    def __init__(self, campaign: str, seeds_dir: Path, folder: Path, name: str):
        self.folder, self.name = folder, name
        self.err = open(folder / f"{name}-server.stderr", "w+", encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-X", "faulthandler", str(THIS_FILE), "--fork-server", campaign,
             str(seeds_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err,
            cwd=str(folder))
        self.buf, self.launches, self.job = b"", 0, None

    def launch(self, start: int, stop: int):
        self.launches += 1
        tag = f"{self.name}-{self.launches}"
        job = {"start": start, "stop": stop, "log": self.folder / f"{tag}.log",
               "stderr": self.folder / f"{tag}.stderr", "pid": None, "rc": None,
               "seen": 0, "quiet_since": time.monotonic(), "stalled": False}
        self.proc.stdin.write(f"{start} {stop} {job['log']} {self.folder / tag} "
                              f"{job['stderr']}\n".encode())
        self.proc.stdin.flush()
        self.job = job

    def poll(self):
        """Read what the server said; raises if it died."""
        fd = self.proc.stdout.fileno()
        while select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                self.err.seek(0)
                raise RuntimeError(f"fuzz fork server {self.name} died:\n{self.err.read()[-3000:]}")
            self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            word, value = line.decode().split()
            self.job["pid" if word == "PID" else "rc"] = int(value)

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # the server this test started, by its handle
                self.proc.wait()
        self.proc.stdout.close()
        self.err.close()


def run_campaign(campaign: str, cases: int, folder: Path, seeds_dir: Path,
                 workers: int = FUZZ_WORKERS) -> dict:
    """Run cases [0, cases) in ``workers`` forked workers; after a crash or a stall,
    fork a new worker from the case after the one the last died on."""
    folder.mkdir(parents=True, exist_ok=True)
    bounds = [cases * k // workers for k in range(workers + 1)]
    outcomes = collections.Counter()
    bugs: dict[tuple, list] = {}
    done_cases: set[int] = set()

    def note_bug(key, case, example):
        bugs.setdefault(key, [example, []])[1].append(case)

    def collect(job) -> int | None:
        """Record the finished cases of a job's log; the case started but not finished."""
        started = None
        if job["log"].exists():
            for line in job["log"].read_text(encoding="utf-8").splitlines():
                tag, _, rest = line.partition(" ")
                if tag == "S":
                    started = int(rest)
                elif tag == "D" and rest:
                    case_text, _, payload = rest.partition(" ")
                    try:
                        result = json.loads(payload)
                    except json.JSONDecodeError:  # a line cut short by the crash
                        continue
                    case = int(case_text)
                    started = None if started == case else started
                    done_cases.add(case)
                    outcomes[result["outcome"]] += 1
                    if result["outcome"] == "bug":
                        note_bug((result["fmt"], result["type"], result["where"]), case,
                                 result["message"])
        return started

    lanes = [_Lane(campaign, seeds_dir, folder, f"lane{k}") for k in range(workers)]
    try:
        for k, lane in enumerate(lanes):
            lane.launch(bounds[k], bounds[k + 1])
        active = [lane for k, lane in enumerate(lanes) if bounds[k] < bounds[k + 1]]
        while active:
            time.sleep(0.02)
            for lane in list(active):
                lane.poll()
                job = lane.job
                if job["rc"] is None:
                    size = job["log"].stat().st_size if job["log"].exists() else 0
                    if size != job["seen"]:
                        job["seen"], job["quiet_since"] = size, time.monotonic()
                    elif (job["pid"] is not None and not job["stalled"]
                          and time.monotonic() - job["quiet_since"] > STALL_SECONDS):
                        os.kill(job["pid"], signal.SIGKILL)  # our own worker, by its pid
                        job["stalled"] = True
                    continue
                unfinished = collect(job)
                if job["rc"] == 0 and not job["stalled"]:
                    active.remove(lane)
                    continue
                stderr = job["stderr"].read_text(encoding="utf-8", errors="replace") \
                    if job["stderr"].exists() else ""
                if unfinished is None:
                    raise RuntimeError(f"fuzz worker failed outside any case (exit "
                                       f"{job['rc']}):\n{stderr[-3000:]}")
                fmt = SEED_FORMATS[unfinished % len(SEED_FORMATS)] \
                    if campaign == "random" else "footer"
                if job["stalled"]:
                    key = (fmt, f"hang (no progress for {STALL_SECONDS} s, killed)", "")
                else:
                    key = (fmt, "crash", _crash_summary(job["rc"], stderr))
                marks = [stderr.find(m) for m in ("terminate called", "Fatal Python error")]
                note_bug(key, unfinished, stderr[min([m for m in marks if m >= 0],
                                                     default=0):][:600])
                done_cases.add(unfinished)
                outcomes["bug"] += 1
                if unfinished + 1 < job["stop"]:
                    lane.launch(unfinished + 1, job["stop"])
                else:
                    active.remove(lane)
    finally:
        for lane in lanes:
            lane.close()
    return {"cases": len(done_cases), "outcomes": outcomes, "bugs": bugs,
            "launches": sum(lane.launches for lane in lanes)}


def bug_report(campaign: str, result: dict) -> str:
    lines = [f"{campaign} fuzz: {result['cases']} files, outcomes "
             f"{dict(result['outcomes'])}, {len(result['bugs'])} distinct bugs "
             f"(reproduce one: python tests/test_bad_files.py --reproduce {campaign} CASE):"]
    for (fmt, kind, where), (example, cases) in sorted(result["bugs"].items(),
                                                       key=lambda kv: -len(kv[1][1])):
        lines.append(f"- [{fmt}] {kind} x{len(cases)} at {where or '?'}\n"
                     f"    e.g. cases {cases[:5]}: {example.strip()[:400]}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def seed_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("fuzz-seeds")
    make_seed_files(folder)
    return folder


def test_seed_files_are_read_whole_and_priced(seed_dir, pricing):
    """The fuzz starts from files that are fine: every seed is read and priced whole."""
    book, cards = pricing
    for path in sorted(seed_dir.iterdir()):
        got = read_and_price(path, book, cards, batch_size=16)
        want = 10 if path.stem == "footer" else SEED_ROWS
        assert got["rows"] == want, path.name
        assert got["priced"] + got["rejected"] == want
        if path.stem != "footer":
            assert got["priced"] > 0


def test_fuzz_every_reader_with_mutated_files(seed_dir, tmp_path):
    assert FUZZ_FILES >= 10_000
    result = run_campaign("random", FUZZ_FILES, tmp_path / "random", seed_dir)
    assert result["cases"] == FUZZ_FILES
    assert sum(result["outcomes"].values()) >= FUZZ_FILES
    assert result["outcomes"]["read"] > 0 and result["outcomes"]["refused"] > 0
    assert not result["bugs"], bug_report("random", result)


def test_every_bit_flip_of_a_parquet_footer_is_refused_or_read(seed_dir, tmp_path):
    seeds = {"footer": (seed_dir / "footer.parquet").read_bytes()}
    cases = footer_cases(seeds)
    result = run_campaign("footer", cases, tmp_path / "footer", seed_dir)
    assert result["cases"] == cases
    assert not result["bugs"], bug_report("footer", result)


# ====================================================== child-process entry points
def outcome_in_child(path: Path) -> dict:
    """Read and price ``path`` in a fresh interpreter; its outcome, or the crash."""
    proc = subprocess.run([sys.executable, "-X", "faulthandler", str(THIS_FILE), "--outcome",
                           str(path)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        return {"outcome": "crash", "returncode": proc.returncode,
                "summary": _crash_summary(proc.returncode, proc.stderr),
                "stderr": proc.stderr[-2000:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _outcome(path: str) -> int:
    book, cards = load_pricing()
    try:
        got = read_and_price(Path(path), book, cards)
        result = {"outcome": "read", **{k: got[k] for k in ("rows", "priced", "rejected")}}
    except InputRefused as exc:
        result = {"outcome": "refused", "message": str(exc)}
    except Exception as exc:  # noqa: BLE001
        result = {"outcome": "error", "type": type(exc).__qualname__, "message": str(exc),
                  "where": _where(exc)}
    result["max_memory"] = pa.default_memory_pool().max_memory()
    print(json.dumps(result))
    return 0


def _reproduce(campaign: str, case: int, out: str | None) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        seeds = {k: p.read_bytes() for k, p in make_seed_files(Path(tmp)).items()}
    fmt, data = fuzz_case(campaign, case, seeds)
    path = Path(out or f"fuzz-{campaign}-{case}{_EXT[fmt]}")
    path.write_bytes(data)
    print(f"{path} ({fmt}, {len(data)} bytes)", flush=True)
    book, cards = load_pricing()
    print(read_and_price(path, book, cards, batch_size=16))
    return 0


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--fork-server"]:
        sys.exit(_fork_server(args[1], args[2]))
    if args[:1] == ["--outcome"]:
        sys.exit(_outcome(args[1]))
    if args[:1] == ["--reproduce"]:
        sys.exit(_reproduce(args[1], int(args[2]), args[3] if len(args) > 3 else None))
    sys.exit(f"usage: {sys.argv[0]} --reproduce random|footer CASE [OUTFILE]")
