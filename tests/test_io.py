"""End to end: input formats, output formats, the run summary and the ``txcore`` commands.

docs/input.md (input formats), docs/outputs.md (outputs, summary, masking), docs/cli.md
(command line, exit codes), docs/state.md (atomic commits), docs/input.md and
docs/outputs.md (text timestamps, currency, reject details).  Every
test runs real files through :func:`txcore.run` or the command line, on small
data (one bundled day at most, or a handful of handcrafted rows).
"""
from __future__ import annotations

import concurrent.futures
import csv
import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import fastavro
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.feather as feather
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

import txcore
from conftest import CIB_CARD, CMB_CARD, CMB_CARD2, CMB_CARD3, FIXTURES, RULES, STRANGER
from txcore.cli import main
from txcore.errors import InputRefused
from txcore.io import reader
from txcore.vocab import INPUT_COLUMNS, PRICED_COLUMNS

CARDS = FIXTURES / "cards.csv"
MERCHANTS = FIXTURES / "merchants.csv"
DAY_A = FIXTURES / "txns-2015-10-31.parquet"  # the last day of October ...
DAY_B = FIXTURES / "txns-2015-11-01.parquet"  # ... and the first of November
BUNDLED_DAYS = sorted(FIXTURES.glob("txns-*.parquet"))
CST = dt.timezone(dt.timedelta(hours=8))
UTC = dt.timezone.utc
TS_UTC = pa.timestamp("us", "UTC")
#: what must agree whatever the input format: the id, the normalised ts and amount, the priced columns
COMPARED = ["txn_id", "ts", "amount", *PRICED_COLUMNS]
OUTPUT_NAMES = re.compile(r".*\.(priced|rejects)\.\w+$|summary\.json$|.*\.tmp$")
DIGIT_RUN = re.compile(r"\d{12,19}")


# ----------------------------------------------------------------------------- helpers
def write_cards(path: Path) -> Path:
    """A registry of the conftest cards: two CMB members, a CIB member, a never-member."""
    path.write_text(
        "card_no,member_id,unit,issuer,home_city,member_from,member_to\n"
        f"{CMB_CARD},M1,临江街道工会,CMB,350500,2013-09-01,\n"
        f"{CMB_CARD2},M2,临江街道工会,CMB,350500,2013-09-01,\n"
        f"{CIB_CARD},M3,海滨街道工会,CIB,350500,2013-09-01,\n"
        f"{CMB_CARD3},,临江街道工会,CMB,350500,,\n", encoding="utf-8")
    return path


def write_csv_rows(path: Path, header: list[str], rows: list[list[str]], encoding="utf-8") -> Path:
    with open(path, "w", newline="", encoding=encoding) as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def ts_text(ts: dt.datetime, style: int) -> str:
    """Three ways a CSV writes the same instant: +08:00, Z with fraction, naive local."""
    if style == 0:
        return ts.astimezone(CST).isoformat()
    if style == 1:
        return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return ts.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S.%f")


def to_csv(table: pa.Table, path: Path) -> Path:
    """The table as CSV text: ts as ISO text (mixed styles), amount as text, null as ''."""
    names = table.column_names
    rows = []
    for i, r in enumerate(table.to_pylist()):
        r["ts"] = ts_text(r["ts"], i % 3) if r["ts"] is not None else ""
        rows.append(["" if r[c] is None else str(r[c]) for c in names])
    return write_csv_rows(path, names, rows)


def avro_schema(table: pa.Schema, ts_logical="timestamp-micros") -> dict:
    def typ(f):
        if f.name == "ts":
            return ["null", {"type": "long", "logicalType": ts_logical}]
        if pa.types.is_integer(f.type):
            return ["null", "long"]
        return ["null", "string"]
    return fastavro.parse_schema({"type": "record", "name": "Txn",
                                  "fields": [{"name": f.name, "type": typ(f)} for f in table]})


def to_avro(table: pa.Table, path: Path, local=False) -> Path:
    rows = table.to_pylist()
    if local:  # local-timestamp-micros: wall-clock time in Asia/Shanghai
        for r in rows:
            r["ts"] = r["ts"].astimezone(CST).replace(tzinfo=None)
    schema = avro_schema(table.schema, "local-timestamp-micros" if local else "timestamp-micros")
    with open(path, "wb") as fh:
        fastavro.writer(fh, schema, rows, sync_interval=64 * 1024)
    return path


def to_ipc_file(table: pa.Table, path: Path) -> Path:
    with ipc.new_file(path, table.schema) as w:
        w.write_table(table, max_chunksize=4000)
    return path


def to_ipc_stream(table: pa.Table, path: Path) -> Path:
    with ipc.new_stream(path, table.schema) as w:
        w.write_table(table, max_chunksize=4000)
    return path


def to_feather(table: pa.Table, path: Path) -> Path:
    feather.write_feather(table, path)
    return path


def to_naive_parquet(table: pa.Table, path: Path) -> Path:
    """Parquet whose ts is a timestamp without zone, holding Asia/Shanghai wall time."""
    local = pc.add(table.column("ts").cast(pa.int64()), 8 * 3600 * 10**6).cast(pa.timestamp("us"))
    pq.write_table(table.set_column(table.schema.get_field_index("ts"), "ts", local), path)
    return path


def read_csv_text(path: Path) -> pa.Table:
    """An output CSV with every column as text (so ids keep their digits)."""
    with open(path, encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh))
    return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={c: pa.string() for c in header}))


def read_avro(path: Path) -> tuple[dict, list[dict]]:
    with open(path, "rb") as fh:
        reader = fastavro.reader(fh)
        return reader.writer_schema, list(reader)


def read_output(path: Path) -> tuple[list[str], list[dict]]:
    """``(column names, rows)`` of an output file in any output format."""
    fmt = path.suffix[1:]
    if fmt == "parquet":
        t = pq.read_table(path)
    elif fmt == "arrow":
        with pa.memory_map(str(path)) as src:
            t = ipc.open_file(src).read_all()
    elif fmt == "csv":
        t = read_csv_text(path)
    else:
        schema, rows = read_avro(path)
        return [f["name"] for f in schema["fields"]], rows
    return t.column_names, t.to_pylist()


def run_api(files, out_dir, **kw) -> dict:
    kw.setdefault("rules", RULES)
    kw.setdefault("cards", CARDS)
    kw.setdefault("merchants", MERCHANTS)
    return txcore.run([str(f) for f in files], out_dir=out_dir, progress=False, **kw)


def run_args(files, out_dir, state_dir, cards=CARDS, rules=RULES, merchants=MERCHANTS,
             extra=()) -> list[str]:
    args = ["run", "--rules", str(rules), "--cards", str(cards), "--state", str(state_dir),
            "-o", str(out_dir), "--no-progress", *extra]
    if merchants is not None:
        args += ["--merchants", str(merchants)]
    return args + [str(f) for f in files]


def cli(args, stdin: bytes | None = None, cwd=None) -> subprocess.CompletedProcess:
    """``python -m txcore ARGS`` in a child process (stdin/stdout/stderr are pipes)."""
    env = dict(os.environ)
    env.pop("TXCORE_NO_EXTENSIONS", None)
    return subprocess.run([sys.executable, "-m", "txcore", *args], input=stdin,
                          capture_output=True, cwd=cwd, env=env, timeout=120)


def outputs_in(folder: Path) -> list[str]:
    """Names in ``folder`` that are (or would become) run outputs."""
    if not folder.exists():
        return []
    return sorted(p.name for p in folder.iterdir() if OUTPUT_NAMES.fullmatch(p.name))


NOT_STATE = {"LOCK", "card.key"}  # the run lock and the card key are not committed state


def snapshot(folder: Path) -> dict[str, bytes] | None:
    """The committed files of a folder (for a state folder: without its lock and key)."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in NOT_STATE}


def priced_table(path: Path) -> pa.Table:
    return pq.read_table(path)


def compared(table: pa.Table) -> list[dict]:
    return table.select(COMPARED).to_pylist()


# ---------------------------------------------------------------- 1. same data, every format
@pytest.fixture(scope="module")
def day(tmp_path_factory):
    """One bundled day in every input format, and its Parquet run (the baseline)."""
    folder = tmp_path_factory.mktemp("formats")
    table = pq.read_table(DAY_B)
    files = {
        "parquet": DAY_B,
        "csv": to_csv(table, folder / "day.csv"),
        "avro": to_avro(table, folder / "day.avro"),
        "arrow": to_ipc_file(table, folder / "day.arrow"),
        "arrows": to_ipc_stream(table, folder / "day.arrows"),
        "feather": to_feather(table, folder / "day.feather"),
    }
    for sub in ("naive", "local"):
        (folder / sub).mkdir()
    files["parquet-naive-local-ts"] = to_naive_parquet(table, folder / "naive" / "day.parquet")
    files["avro-local-timestamp"] = to_avro(table, folder / "local" / "day.avro", local=True)
    out = folder / "out-parquet"
    summary = run_api([DAY_B], out)
    return {"table": table, "files": files, "folder": folder, "summary": summary,
            "priced": priced_table(out / f"{DAY_B.stem}.priced.parquet"),
            "rejects": pq.read_table(out / f"{DAY_B.stem}.rejects.parquet")}


def test_the_baseline_day_has_priced_rows_and_rejects(day):
    assert day["priced"].num_rows > 10000
    assert day["rejects"].num_rows > 0
    assert day["priced"].num_rows + day["rejects"].num_rows == day["table"].num_rows


@pytest.mark.parametrize("fmt", ["csv", "avro", "arrow", "arrows", "feather",
                                 "parquet-naive-local-ts", "avro-local-timestamp"])
def test_every_input_format_prices_like_parquet(day, fmt, tmp_path):
    src = day["files"][fmt]
    summary = run_api([src], tmp_path)
    priced = priced_table(tmp_path / f"{src.stem}.priced.parquet")
    rejects = pq.read_table(tmp_path / f"{src.stem}.rejects.parquet")
    assert summary["rows"] == day["summary"]["rows"]
    assert priced.schema.field("ts").type == TS_UTC
    assert priced.schema.field("amount").type == pa.int64()
    assert priced.column_names[-len(PRICED_COLUMNS):] == list(PRICED_COLUMNS)
    assert compared(priced) == compared(day["priced"])
    # the same rows are rejected, for the same reasons
    assert rejects.select(["txn_id", "reject_reason"]).to_pylist() == \
        day["rejects"].select(["txn_id", "reject_reason"]).to_pylist()


def test_csv_input_rejects_keep_the_text_as_written(day, tmp_path):
    src = day["files"]["csv"]
    run_api([src], tmp_path)
    rejects = pq.read_table(tmp_path / "day.rejects.parquet")
    assert all(pa.types.is_string(t) for t in rejects.schema.types)
    with open(src, encoding="utf-8", newline="") as fh:
        written = {r["txn_id"]: r for r in csv.DictReader(fh)}
    for r in rejects.to_pylist():
        assert r["ts"] == written[r["txn_id"]]["ts"]
        assert r["amount"] == written[r["txn_id"]]["amount"]


def test_parquet_output_encodings_and_statistics(day):
    """Dictionary pages for the repetitive columns, plain pages for the all-distinct ones;
    min/max statistics where a reader prunes by them (writer.parquet_options), and
    they are right."""
    path = day["folder"] / "out-parquet" / f"{DAY_B.stem}.priced.parquet"
    meta = pq.read_metadata(path)
    group = meta.row_group(0)
    chunks = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    for name in ("kind", "fee_rule", "ruleset", "fee_charged"):
        assert "RLE_DICTIONARY" in chunks[name].encodings, name
        assert not chunks[name].is_stats_set, name
    for name in ("txn_id", "card_no", "ts", "amount"):
        assert "RLE_DICTIONARY" not in chunks[name].encodings, name
    priced = day["priced"]
    for name in ("ts", "txn_id", "card_no"):
        stats = chunks[name].statistics
        column = priced.column(name).slice(0, group.num_rows)
        assert stats.has_min_max and stats.max == pc.max(column).as_py(), name
    assert priced.schema.field("kind").type == pa.string()


def test_batch_size_does_not_change_the_priced_rows(day, tmp_path):
    summary = run_api([DAY_B], tmp_path, batch_size=997)
    assert summary["rows"] == day["summary"]["rows"]
    assert priced_table(tmp_path / f"{DAY_B.stem}.priced.parquet").equals(day["priced"])


def test_arrow_stream_on_stdin(day, tmp_path):
    stream = day["files"]["arrows"].read_bytes()
    out, state = tmp_path / "out", tmp_path / "state"
    proc = cli(run_args(["-"], out, state), stdin=stream, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr.decode()
    assert (out / "stdin.priced.parquet").is_file()
    assert (out / "stdin.rejects.parquet").is_file()
    priced = priced_table(out / "stdin.priced.parquet")
    assert compared(priced) == compared(day["priced"])
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    (entry,) = summary["inputs"]
    assert entry["rows"] == day["table"].num_rows
    assert entry["sha256"] == hashlib.sha256(stream).hexdigest()
    assert "control totals" in proc.stdout.decode()


def test_garbage_on_stdin_is_refused(tmp_path):
    out = tmp_path / "out"
    proc = cli(run_args(["-"], out, tmp_path / "state"), stdin=b"this is not an arrow stream")
    assert proc.returncode == 3
    assert "stdin" in proc.stderr.decode()
    assert outputs_in(out) == []


def test_csv_with_a_utf8_bom_reads_every_column_as_text(tmp_path):
    """Spreadsheet exports start with a BOM; the first column must still be text."""
    cards = write_cards(tmp_path / "cards.csv")
    header = ["txn_id", "card_no", "ts", "kind", "channel", "amount", "currency", "acq_bank",
              "city"]
    rows = [["000101", CMB_CARD, "2013-10-15T10:00:00+08:00", "withdrawal", "atm", "10000",
             "CNY", "CMB", "350500"],
            ["101", CMB_CARD, "2013-10-15T11:00:00+08:00", "withdrawal", "atm", "10000",
             "CNY", "CMB", "350500"]]
    src = write_csv_rows(tmp_path / "bom.csv", header, rows, encoding="utf-8-sig")
    summary = run_api([src], tmp_path / "out", cards=cards, merchants=None)
    priced = priced_table(tmp_path / "out" / "bom.priced.parquet")
    assert summary["rows"]["rejected"] == 0  # '000101' and '101' are different ids
    assert priced.column("txn_id").to_pylist() == ["000101", "101"]


def test_avro_field_of_an_unsupported_type_is_refused_naming_the_file(tmp_path, capfd):
    """An enum field is either read (as its symbol) or the file is refused by name."""
    schema = fastavro.parse_schema({"type": "record", "name": "T", "fields": [
        {"name": "txn_id", "type": "string"}, {"name": "card_no", "type": "string"},
        {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "kind", "type": {"type": "enum", "name": "Kind",
                                  "symbols": ["withdrawal", "purchase"]}},
        {"name": "channel", "type": "string"}, {"name": "amount", "type": "long"},
        {"name": "acq_bank", "type": "string"}, {"name": "city", "type": "string"}]})
    src = tmp_path / "enum-kind.avro"
    with open(src, "wb") as fh:
        fastavro.writer(fh, schema, [{"txn_id": "T1", "card_no": CMB_CARD,
                                      "ts": dt.datetime(2013, 10, 15, 2, tzinfo=UTC),
                                      "kind": "withdrawal", "channel": "atm", "amount": 10000,
                                      "acq_bank": "CMB", "city": "350500"}])
    cards = write_cards(tmp_path / "cards.csv")
    out = tmp_path / "out"
    rc = main(run_args([src], out, tmp_path / "state", cards=cards, merchants=None))
    err = capfd.readouterr().err
    assert rc in (0, 3), err
    if rc == 3:
        assert "enum-kind.avro" in err
        assert outputs_in(out) == []
    else:
        priced = priced_table(out / "enum-kind.priced.parquet")
        assert priced.column("kind").to_pylist() == ["withdrawal"]


# ------------------------------------------------------------------ 2. every output format
@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory):
    """3000 rows of a bundled day with extra columns, and a file whose rows are all bad."""
    folder = tmp_path_factory.mktemp("small")
    t = pq.read_table(DAY_B).slice(0, 3000)
    n = t.num_rows
    t = t.append_column("branch", pa.array([f"{i % 50:03d}" if i % 7 else None
                                            for i in range(n)], pa.string()))
    t = t.append_column("batch_no", pa.array([i % 5 for i in range(n)], pa.int32()))
    t = t.append_column("posted", pa.array([dt.date(2015, 11, 2)] * n, pa.date32()))
    pq.write_table(t, folder / "small.parquet")
    bad = t.slice(0, 5).set_column(t.schema.get_field_index("ts"), "ts",
                                   pa.array(["not a time"] * 5, pa.string()))
    pq.write_table(bad, folder / "allbad.parquet")
    pq.write_table(t.slice(0, 0), folder / "norows.parquet")
    return folder, t, bad


@pytest.mark.parametrize("fmt", ["parquet", "csv", "avro", "arrow"])
def test_every_output_format_is_written_and_reads_back(small_inputs, fmt, tmp_path):
    folder, table, bad = small_inputs
    files = [folder / "small.parquet", folder / "allbad.parquet", folder / "norows.parquet"]
    out = tmp_path / fmt
    rc = main(run_args(files, out, tmp_path / "state", extra=["--format", fmt]))
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["summary.json"] + [f"{f.stem}.{k}.{fmt}" for f in files for k in ("priced", "rejects")])
    for entry, src in zip(summary["inputs"], files):
        names_p, priced = read_output(out / f"{src.stem}.priced.{fmt}")
        names_r, rejects = read_output(out / f"{src.stem}.rejects.{fmt}")
        assert entry["priced_output"] == f"{src.stem}.priced.{fmt}"
        assert entry["rejects_output"] == f"{src.stem}.rejects.{fmt}"
        assert len(priced) == entry["priced"]
        assert len(rejects) == entry["rejected"]
        assert len(priced) + len(rejects) == pq.ParquetFile(src).metadata.num_rows
        src_names = pq.read_schema(src).names
        assert names_p == src_names + list(PRICED_COLUMNS)
        assert names_r == src_names + ["reject_reason", "reject_detail"]
    assert summary["inputs"][0]["priced"] > 2900 and summary["inputs"][0]["rejected"] > 0
    assert summary["inputs"][1]["priced"] == 0 and summary["inputs"][1]["rejected"] == 5
    assert summary["inputs"][2]["rows"] == 0

    # the values agree with a Parquet run, whatever the output format
    _, priced = read_output(out / f"small.priced.{fmt}")
    ref = run_api([folder / "small.parquet"], tmp_path / "ref")
    assert ref["rows"]["priced"] == len(priced)
    ref_rows = priced_table(tmp_path / "ref" / "small.priced.parquet").to_pylist()
    for got, want in zip(priced, ref_rows):
        for col in ("txn_id", "fee_charged", "free_slot", "discount", "branch", "fee_rule"):
            if fmt == "csv":
                assert got[col] == ("" if want[col] is None else str(want[col]))
            else:
                assert got[col] == want[col]
        ts = got["ts"]
        if fmt == "csv":
            ts = dt.datetime.fromisoformat(ts)
        assert ts == want["ts"] and ts.utcoffset() == dt.timedelta(0)
    _, rejects = read_output(out / f"small.rejects.{fmt}")
    ref_rejects = pq.read_table(tmp_path / "ref" / "small.rejects.parquet")
    assert [r["reject_reason"] for r in rejects] == ref_rejects.column("reject_reason").to_pylist()
    assert all(r["reject_detail"] for r in rejects)


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
def test_typed_outputs_have_utc_microsecond_ts_and_int64_amount(small_inputs, fmt, tmp_path):
    folder, table, bad = small_inputs
    run_api([folder / "small.parquet", folder / "allbad.parquet"], tmp_path, fmt=fmt)
    for stem in ("small", "allbad"):
        path = tmp_path / f"{stem}.priced.{fmt}"
        schema = pq.read_schema(path) if fmt == "parquet" else ipc.open_file(path).schema
        assert schema.field("ts").type == TS_UTC
        assert schema.field("amount").type == pa.int64()
        assert schema.field("free_slot").type == pa.int16()
        for col in ("fee_standard", "fee_waived", "fee_charged", "discount"):
            assert schema.field(col).type == pa.int64()
        assert schema.field("batch_no").type == pa.int32()  # extra columns keep their type
        assert schema.field("posted").type == pa.date32()
    # rejects carry the columns exactly as read, plus reason and detail
    for stem, src_schema in (("small", table.schema), ("allbad", bad.schema)):
        path = tmp_path / f"{stem}.rejects.{fmt}"
        schema = pq.read_schema(path) if fmt == "parquet" else ipc.open_file(path).schema
        want = [(f.name, f.type) for f in src_schema] + \
            [("reject_reason", pa.string()), ("reject_detail", pa.string())]
        assert [(f.name, f.type) for f in schema] == want


def test_avro_output_types(small_inputs, tmp_path):
    folder, _, _ = small_inputs
    run_api([folder / "small.parquet"], tmp_path, fmt="avro")
    schema, rows = read_avro(tmp_path / "small.priced.avro")
    types = {f["name"]: f["type"] for f in schema["fields"]}
    assert {"type": "long", "logicalType": "timestamp-micros"} in types["ts"]
    assert "long" in types["amount"] and "long" in types["fee_charged"]
    assert all(isinstance(r["amount"], int) for r in rows)
    assert all(r["ts"].utcoffset() == dt.timedelta(0) for r in rows)


# ------------------------------------------------------------------- 3. summary.json
def test_summary_balances_and_hashes_the_inputs(small_inputs, tmp_path, capfd):
    folder, _, _ = small_inputs
    day_a = tmp_path / "a.parquet"
    pq.write_table(pq.read_table(DAY_A).slice(0, 4000), day_a)
    day_b_csv = to_csv(pq.read_table(DAY_B).slice(0, 3000), tmp_path / "b.csv")
    files = [day_a, day_b_csv, folder / "allbad.parquet"]
    out = tmp_path / "out"
    rc = main(run_args(files, out, tmp_path / "state"))
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    rows = summary["rows"]
    assert rows["input"] == rows["priced"] + rows["rejected"]
    assert rows["input"] == 4000 + 3000 + 5
    assert [i["file"] for i in summary["inputs"]] == [f.name for f in files]
    priced_total = rejected_total = 0
    money = dict.fromkeys(("amount", "fee_standard", "fee_waived", "fee_charged", "discount"), 0)
    reasons: dict[str, int] = {}
    for entry, src in zip(summary["inputs"], files):
        assert entry["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
        assert entry["rows"] == entry["priced"] + entry["rejected"]
        priced = pq.read_table(out / entry["priced_output"])
        rejects = pq.read_table(out / entry["rejects_output"])
        assert priced.num_rows == entry["priced"]
        assert rejects.num_rows == entry["rejected"]
        priced_total += priced.num_rows
        rejected_total += rejects.num_rows
        for m in money:
            money[m] += pc.sum(priced.column(m)).as_py() or 0
        for reason in rejects.column("reject_reason").to_pylist():
            reasons[reason] = reasons.get(reason, 0) + 1
    assert (priced_total, rejected_total) == (rows["priced"], rows["rejected"])
    assert summary["inputs"][0]["rows"] == 4000 and summary["inputs"][1]["rows"] == 3000

    by_kind, totals = summary["by_kind"], summary["totals"]
    assert sum(k["count"] for k in by_kind.values()) == totals["count"] == rows["priced"]
    for m, value in money.items():
        assert sum(k[m] for k in by_kind.values()) == totals[m] == value
    assert totals["fee_charged"] == totals["fee_standard"] - totals["fee_waived"]
    assert summary["rejected_by_reason"] == dict(sorted(reasons.items()))
    assert sum(summary["rejected_by_reason"].values()) == rows["rejected"]
    assert summary["rejected_by_reason"]["bad_ts"] >= 5
    assert sum(summary["rulesets"].values()) == rows["priced"]
    assert summary["elapsed_seconds"] >= 0 and summary["rows_per_second"] >= 0
    # the terminal table says the same
    printed = capfd.readouterr().out
    assert f"{rows['input']:,} rows in" in printed
    assert f"{rows['priced']:,} priced" in printed
    assert "control totals" in printed


# ------------------------------------------------------------------- 4. the bundled days
def test_run_over_the_bundled_days_accounts_for_every_row(tmp_path, capfd):
    out = tmp_path / "out"
    rc = main(run_args(BUNDLED_DAYS, out, tmp_path / "state"))
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    counted = [pq.ParquetFile(f).metadata.num_rows for f in BUNDLED_DAYS]
    assert [i["rows"] for i in summary["inputs"]] == counted
    assert summary["rows"]["input"] == sum(counted) > 70000
    for f, n in zip(BUNDLED_DAYS, counted):
        priced = pq.ParquetFile(out / f"{f.stem}.priced.parquet").metadata.num_rows
        rejected = pq.ParquetFile(out / f"{f.stem}.rejects.parquet").metadata.num_rows
        assert priced + rejected == n
        assert priced > 0.99 * n
    assert summary["rows"]["priced"] + summary["rows"]["rejected"] == sum(counted)
    assert (tmp_path / "state").is_dir() and any((tmp_path / "state").iterdir())


# --------------------------------------------- 5. refusals: exit codes, nothing committed
@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad")
    good = folder / "good.parquet"
    pq.write_table(pq.read_table(DAY_B).slice(0, 2000), good, row_group_size=500)
    data = good.read_bytes()
    stream = to_ipc_stream(pq.read_table(good), folder / "full.arrows").read_bytes()
    avro = to_avro(pq.read_table(good), folder / "full.avro").read_bytes()
    files = {
        "truncated-parquet": ("truncated.parquet", data[:len(data) // 2]),
        "truncated-arrow-stream": ("truncated.arrows", stream[:len(stream) * 3 // 4]),
        "truncated-avro": ("truncated.avro", avro[:len(avro) * 3 // 4]),
        "unsupported-extension": ("txns.json", b'{"txn_id": "T1"}\n'),
        "missing-file": ("missing.parquet", None),
        "invalid-utf8-csv": ("badutf8.csv",
                             b"txn_id,card_no,ts,kind\n"
                             b"T1,6214851000000005,2013-10-15T10:00:00,withdrawal\n"
                             b"T2,\xff\xfe\xfa,2013-10-15T10:00:00,withdrawal\n"),
        "ragged-csv": ("ragged.csv",
                       b"txn_id,card_no,ts,kind\n"
                       b"T1,6214851000000005,2013-10-15T10:00:00,withdrawal\n"
                       b"T2,6214851000079199,2013-10-15T10:00:00\n"),
        "empty-csv": ("empty.csv", b""),
        "empty-parquet": ("empty.parquet", b""),
    }
    paths = {}
    for key, (name, content) in files.items():
        paths[key] = folder / name
        if content is not None:
            paths[key].write_bytes(content)
    return good, paths


REFUSED_BEFORE_ANY_ROW = ["truncated-parquet", "unsupported-extension", "missing-file",
                          "invalid-utf8-csv", "ragged-csv", "empty-csv", "empty-parquet"]
REFUSED_ANY = REFUSED_BEFORE_ANY_ROW + ["truncated-arrow-stream", "truncated-avro"]


@pytest.mark.parametrize("kind", REFUSED_BEFORE_ANY_ROW)
def test_unreadable_input_alone_exits_3_and_writes_nothing(bad_inputs, kind, tmp_path, capfd):
    _, paths = bad_inputs
    bad = paths[kind]
    out, state = tmp_path / "out", tmp_path / "state"
    rc = main(run_args([bad], out, state))
    captured = capfd.readouterr()
    assert rc == 3
    assert bad.name in captured.err
    assert outputs_in(out) == []
    assert snapshot(state) in (None, {})


@pytest.mark.parametrize("kind", REFUSED_ANY)
def test_unreadable_second_input_commits_nothing_of_the_first(bad_inputs, kind, tmp_path):
    """Child process: the run dies after the first file was priced and partly written."""
    good, paths = bad_inputs
    bad = paths[kind]
    out, state = tmp_path / "out", tmp_path / "state"
    proc = cli(run_args([good, bad], out, state))
    assert proc.returncode == 3, proc.stderr.decode()
    assert bad.name in proc.stderr.decode()
    assert outputs_in(out) == []
    assert snapshot(state) in (None, {})  # the state was empty and stays empty


def test_refused_run_leaves_earlier_outputs_and_state_untouched(bad_inputs, tmp_path):
    good, paths = bad_inputs
    out, state = tmp_path / "out", tmp_path / "state"
    first = tmp_path / "first.parquet"
    pq.write_table(pq.read_table(DAY_A).slice(0, 1500), first)
    proc = cli(run_args([first], out, state))
    assert proc.returncode == 0, proc.stderr.decode()
    before_out, before_state = snapshot(out), snapshot(state)
    assert before_state  # something was committed
    proc = cli(run_args([good, paths["truncated-arrow-stream"]], out, state))
    assert proc.returncode == 3
    assert snapshot(out) == before_out
    assert snapshot(state) == before_state
    # and the same command without the bad file then runs as if nothing had happened
    proc = cli(run_args([good], tmp_path / "out2", state))
    assert proc.returncode == 0, proc.stderr.decode()
    fresh = tmp_path / "fresh-state"
    assert cli(run_args([first], tmp_path / "o3", fresh)).returncode == 0
    assert cli(run_args([good], tmp_path / "o4", fresh)).returncode == 0
    assert pq.read_table(tmp_path / "out2" / "good.priced.parquet").equals(
        pq.read_table(tmp_path / "o4" / "good.priced.parquet"))


@pytest.mark.parametrize("kind", ["truncated-parquet", "truncated-arrow-stream"])
def test_refusal_prints_one_clean_message(bad_inputs, kind, tmp_path):
    """A refused input gives one 'txcore: <file>: ...' line, not a traceback."""
    good, paths = bad_inputs
    bad = paths[kind]
    files = [good, bad] if kind == "truncated-parquet" else [bad]
    proc = cli(run_args(files, tmp_path / "out", tmp_path / "state"))
    err = proc.stderr.decode()
    assert proc.returncode == 3
    assert "Traceback" not in err and "Exception ignored" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"txcore: {bad.name}: "), err


@pytest.mark.parametrize("workers", [1, 2])
def test_rerunning_a_committed_file_is_refused(bad_inputs, tmp_path, workers):
    """docs/state.md#the-ledger-and---skip-committed: a file whose sha256 is in the state's
    ledger is refused (exit 3) — also with --workers 2, where the files are hashed beside
    the pricing, and when the committed file comes after a new one."""
    good, _ = bad_inputs
    state = tmp_path / "state"
    assert cli(run_args([good], tmp_path / "out1", state)).returncode == 0
    committed = snapshot(state)
    again = tmp_path / "again" / "good-copy.parquet"  # same bytes, another name
    again.parent.mkdir()
    again.write_bytes(good.read_bytes())
    new = tmp_path / "new.parquet"
    pq.write_table(pq.read_table(DAY_A).slice(0, 700), new, row_group_size=300)
    for files in ([good], [again], [new, good]):
        proc = cli(run_args(files, tmp_path / "out2", state, extra=("--workers", str(workers))))
        assert proc.returncode == 3, proc.stdout.decode()
        assert f"{files[-1].name}: already committed" in proc.stderr.decode()
        assert outputs_in(tmp_path / "out2") == []
        assert snapshot(state) == committed


def test_a_file_hashed_beside_the_pricing_is_refused_as_soon_as_its_hash_is_known(
        bad_inputs, tmp_path, monkeypatch):
    """With --workers 2 the file is hashed on a thread while its first batches are priced
    (runner.BackgroundHashes); a committed file is refused at the first batch after its
    hash is known — here the second of four — and nothing is written."""
    good, _ = bad_inputs  # 2,000 rows in row groups of 500
    state = tmp_path / "state"
    run_api([good], tmp_path / "out1", state_dir=state)
    release, real_hash = threading.Event(), reader.sha256_of

    def held_hash(path, stop=None):  # done only once the first batch is being priced
        assert release.wait(30)
        return real_hash(path, stop)

    priced, real_price = [], reader.InputSource.price

    def price(self, engine, batch):
        priced.append(batch.num_rows)
        if len(priced) == 1:
            release.set()
            self._hashing.exception(timeout=30)  # the hash is known before the next batch
        return real_price(self, engine, batch)

    monkeypatch.setattr(reader, "sha256_of", held_hash)
    monkeypatch.setattr(reader.InputSource, "price", price)
    with pytest.raises(InputRefused, match="good.parquet: already committed"):
        run_api([good], tmp_path / "out2", state_dir=state, workers=2, batch_size=500)
    assert priced == [500]
    assert outputs_in(tmp_path / "out2") == []
    assert not any(t.name == "txcore-hash" for t in threading.enumerate())


def test_background_hashes_give_each_files_sha256_or_its_error(tmp_path):
    files = []
    for i, size in enumerate((0, 1, (3 << 20) + 5)):
        f = tmp_path / f"f{i}.parquet"
        f.write_bytes(os.urandom(size))
        files.append(f)
    sources = [reader.InputSource(str(f)) for f in files]
    gone = tmp_path / "gone.parquet"
    gone.write_bytes(b"x")
    sources.append(reader.InputSource(str(gone)))
    gone.unlink()  # opened fine, unreadable when hashed
    hashes = reader.BackgroundHashes(sources)
    try:
        for f, s in zip(files, sources):
            assert s.sha256 == hashlib.sha256(f.read_bytes()).hexdigest()
            assert s.hash_ready
        with pytest.raises(InputRefused, match="gone.parquet: cannot be read"):
            sources[-1].sha256
    finally:
        hashes.close()
    # close stops a hash at its next megabyte: nothing is left running, and a hash
    # asked for after that is made then
    big = reader.InputSource(str(files[-1]))
    hashes = reader.BackgroundHashes([big])
    hashes.close()
    assert not any(t.name == "txcore-hash" for t in threading.enumerate())
    assert big.sha256 == hashlib.sha256(files[-1].read_bytes()).hexdigest()
    stopped = threading.Event()
    stopped.set()
    assert reader.sha256_of(files[-1], stopped) is None
    again = reader.InputSource(str(files[-1]))
    again._hashing = concurrent.futures.Future()
    again._hashing.set_result(None)  # as a hash close() stopped leaves it
    assert again.hash_ready and again.sha256 == big.sha256


def test_skip_committed_leaves_a_committed_file_out_and_says_so(bad_inputs, tmp_path):
    good, _ = bad_inputs
    state = tmp_path / "state"
    first = cli(run_args([good], tmp_path / "out1", state))
    assert first.returncode == 0
    run_id = json.loads((tmp_path / "out1" / "summary.json").read_text())["run_id"]
    proc = cli(run_args([good], tmp_path / "out2", state, extra=["--skip-committed"]))
    assert proc.returncode == 0, proc.stderr.decode()
    summary = json.loads((tmp_path / "out2" / "summary.json").read_text())
    assert summary["rows"]["input"] == 0 and summary["inputs"] == []
    assert summary["skipped"] == [{"file": good.name, "sha256": hashlib.sha256(
        good.read_bytes()).hexdigest(), "committed_by": run_id}]
    assert "skipped, already committed" in proc.stdout.decode()


BROKEN_TOML = 'id = "broken"\neffective_from = 2013-09-01\n[[fee]\nid = "x"\n'


@pytest.mark.parametrize("what", ["broken-rules-toml", "rules-unknown-key", "bad-card-registry",
                                  "card-registry-missing-column", "missing-card-registry",
                                  "bad-merchants"])
def test_bad_rules_or_reference_data_exit_2_and_write_nothing(bad_inputs, what, tmp_path, capfd):
    good, _ = bad_inputs
    rules, cards, merchants = RULES, CARDS, MERCHANTS
    if what == "broken-rules-toml":
        rules = tmp_path / "rules"
        rules.mkdir()
        (rules / "broken.toml").write_text(BROKEN_TOML, encoding="utf-8")
    elif what == "rules-unknown-key":
        rules = tmp_path / "rules"
        rules.mkdir()
        text = (RULES / "licheng-2013.toml").read_text(encoding="utf-8")
        (rules / "licheng-2013.toml").write_text(
            text.replace('id = "atm-xbank-local"\n', 'id = "atm-xbank-local"\nfixd = 1\n'),
            encoding="utf-8")
    elif what == "bad-card-registry":
        cards = tmp_path / "cards.csv"
        cards.write_text("card_no,member_id,unit,issuer,home_city,member_from,member_to\n"
                         f"{CMB_CARD},M1,u,CMB,350500,2013-09-01,\n"
                         f"{CMB_CARD},M2,u,CMB,350500,2013-09-01,\n", encoding="utf-8")
    elif what == "card-registry-missing-column":
        cards = tmp_path / "cards.csv"
        cards.write_text(f"card_no,issuer\n{CMB_CARD},CMB\n", encoding="utf-8")
    elif what == "missing-card-registry":
        cards = tmp_path / "nowhere.csv"
    elif what == "bad-merchants":
        merchants = tmp_path / "merchants.csv"
        merchants.write_text("merchant_id,name,discount_bp,cap,min_spend,valid_from,valid_to\n"
                             "QZ1,x,20000,0,0,2013-09-01,\n", encoding="utf-8")
    out, state = tmp_path / "out", tmp_path / "state"
    rc = main(run_args([good], out, state, rules=rules, cards=cards, merchants=merchants))
    err = capfd.readouterr().err
    assert rc == 2, err
    assert err.startswith("txcore: ")
    assert outputs_in(out) == [] and snapshot(out) in (None, {})
    assert snapshot(state) in (None, {})


def test_rules_check_on_a_broken_folder_exits_2(tmp_path, capfd):
    (tmp_path / "broken.toml").write_text(BROKEN_TOML, encoding="utf-8")
    assert main(["rules", "check", str(tmp_path)]) == 2
    assert "broken.toml" in capfd.readouterr().err
    assert main(["rules", "check", str(RULES)]) == 0
    assert "rules OK" in capfd.readouterr().out


def test_usage_errors_exit_2(tmp_path, capfd):
    good = FIXTURES / "txns-2015-10-29.parquet"
    with pytest.raises(SystemExit) as exc:
        main(["run", "--rules", str(RULES), "--state", str(tmp_path / "s"), "-o",
              str(tmp_path / "o"), str(good)])  # no --cards
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(run_args([good], tmp_path / "o", tmp_path / "s", extra=["--format", "xlsx"]))
    assert exc.value.code == 2
    assert main(run_args([good, good], tmp_path / "o", tmp_path / "s")) == 2
    capfd.readouterr()
    assert outputs_in(tmp_path / "o") == []


# ------------------------------------------------ 6. malformed text values in a CSV
CSV_HEADER = [*INPUT_COLUMNS, "branch"]  # every input column of docs/input.md, and an extra one


def atm(txn_id, ts, amount="10000", currency="CNY", card=CMB_CARD, bank="CMB", branch="007"):
    return [txn_id, card, ts, "withdrawal", "atm", amount, currency, bank, "350500", "", "", "",
            "", "", branch]


def test_csv_text_values(tmp_path):
    cards = write_cards(tmp_path / "cards.csv")
    rows = [
        atm("bare-date", "2013-10-15", branch="鲤城支行"),
        atm("decimal-amount", "2013-10-15T10:00:00+08:00", amount="12.50"),
        atm("naive", "2013-10-15 10:00:00", branch=""),
        atm("naive-T", "2013-10-15T10:00:00"),
        atm("zulu", "2013-10-15T10:00:00Z"),
        atm("offset", "2013-10-15T10:00:00+08:00", branch="0042"),
        atm("fraction", "2013-10-15T10:00:00.250+08:00"),
        atm("fraction-zulu", "2013-10-15 02:00:00.000001Z"),
        atm("no-currency", "2013-10-15T10:05:00+08:00", currency=""),
        atm("usd", "2013-10-15T10:05:00+08:00", currency="USD"),
        atm("month-end", "2013-10-31T16:30:00Z"),
        atm("amount-space", "2013-10-15T10:00:00+08:00", amount="1 000"),
        atm("not-a-time", "yesterday at noon"),
    ]
    src = write_csv_rows(tmp_path / "text.csv", CSV_HEADER, rows)
    summary = run_api([src], tmp_path / "out", cards=cards, merchants=None)
    assert summary["rows"] == {"input": 13, "priced": 8, "rejected": 5}
    priced = {r["txn_id"]: r for r in
              priced_table(tmp_path / "out" / "text.priced.parquet").to_pylist()}
    rejects = {r["txn_id"]: r for r in
               pq.read_table(tmp_path / "out" / "text.rejects.parquet").to_pylist()}
    assert {k: r["reject_reason"] for k, r in rejects.items()} == {
        "bare-date": "bad_ts", "decimal-amount": "bad_amount", "usd": "unsupported_currency",
        "amount-space": "bad_amount", "not-a-time": "bad_ts"}
    assert rejects["bare-date"]["reject_detail"] == "ts='2013-10-15'"
    assert rejects["decimal-amount"]["reject_detail"] == "amount='12.50'"
    at = dt.datetime(2013, 10, 15, 2, 0, tzinfo=UTC)
    assert priced["naive"]["ts"] == at  # local Asia/Shanghai wall time
    assert priced["naive-T"]["ts"] == at
    assert priced["offset"]["ts"] == at
    assert priced["zulu"]["ts"] == dt.datetime(2013, 10, 15, 10, 0, tzinfo=UTC)
    assert priced["fraction"]["ts"] == at.replace(microsecond=250000)
    assert priced["fraction-zulu"]["ts"] == at.replace(microsecond=1)
    assert priced["month-end"]["ts"] == dt.datetime(2013, 10, 31, 16, 30, tzinfo=UTC)
    assert priced["no-currency"]["fee_charged"] == 0 and priced["no-currency"]["amount"] == 10000
    assert all(r["amount"] == 10000 and isinstance(r["amount"], int) for r in priced.values())
    assert all(r["ruleset"] == "licheng-2013" for r in priced.values())
    # the extra column is carried through untouched, priced and rejected alike
    assert priced["naive"]["branch"] == "" and priced["offset"]["branch"] == "0042"
    assert priced["zulu"]["branch"] == "007"
    assert rejects["bare-date"]["branch"] == "鲤城支行"
    out_p = priced_table(tmp_path / "out" / "text.priced.parquet")
    out_r = pq.read_table(tmp_path / "out" / "text.rejects.parquet")
    assert out_p.column_names == CSV_HEADER + list(PRICED_COLUMNS)
    assert out_r.column_names == CSV_HEADER + ["reject_reason", "reject_detail"]
    assert out_p.schema.field("ts").type == TS_UTC
    assert out_r.schema.field("ts").type == pa.string()  # rejects keep the text as read
    assert rejects["usd"]["ts"] == "2013-10-15T10:05:00+08:00"


def test_csv_local_time_decides_the_month(tmp_path):
    """Free slots count per local month: 2013-10-31T16:30Z is 1 November in Quanzhou."""
    cards = write_cards(tmp_path / "cards.csv")
    rows = [atm(f"oct-{i}", f"2013-10-{20 + i} 10:00:00", bank="ICBC") for i in range(3)]
    rows += [atm("nov-by-offset", "2013-10-31T16:30:00Z", bank="ICBC"),
             atm("nov-naive", "2013-11-01 00:10:00", bank="ICBC"),
             atm("oct-late", "2013-10-31 23:59:59", bank="ICBC")]
    src = write_csv_rows(tmp_path / "months.csv", CSV_HEADER, rows)
    run_api([src], tmp_path / "out", cards=cards, merchants=None)
    priced = priced_table(tmp_path / "out" / "months.priced.parquet").to_pylist()
    slots = {r["txn_id"]: (r["free_slot"], r["fee_charged"]) for r in priced}
    assert slots == {"oct-0": (1, 0), "oct-1": (2, 0), "oct-2": (3, 0),
                     "nov-by-offset": (1, 0), "nov-naive": (2, 0), "oct-late": (0, 200)}


# -------------------------------------------------------------------------- 7. masking
def bad_luhn(card: str) -> str:
    return card[:-1] + str((int(card[-1]) + 1) % 10)


def test_no_full_card_number_in_terminal_summary_or_details(tmp_path, capfd):
    cards = write_cards(tmp_path / "cards.csv")
    bad16, bad19 = bad_luhn(CMB_CARD), bad_luhn(CIB_CARD)
    too_long = CMB_CARD + "1234"
    rows = [
        atm("ok-1", "2013-10-15T10:00:00+08:00"),
        atm("bad-16", "2013-10-15T10:01:00+08:00", card=bad16),
        atm("bad-19", "2013-10-15T10:02:00+08:00", card=bad19),
        atm("unknown", "2013-10-15T10:03:00+08:00", card=STRANGER),
        atm("too-long", "2013-10-15T10:04:00+08:00", card=too_long),
        atm("spaced", "2013-10-15T10:05:00+08:00", card=" ".join([CMB_CARD2[:8], CMB_CARD2[8:]])),
        [CMB_CARD2, CMB_CARD2, "2013-10-15T10:06:00+08:00", "disbursement", "", "50000", "CNY",
         "", "", "", "", "", "medical_aid", "", ""],
        [CMB_CARD2, CMB_CARD2, "2013-10-15T10:07:00+08:00", "disbursement", "", "50000", "CNY",
         "", "", "", "", "", "medical_aid", "", ""],  # duplicate txn_id that is a card number
        ["non-member", CMB_CARD3, "2013-10-15T10:08:00+08:00", "disbursement", "", "50000",
         "CNY", "", "", "", "", "", "medical_aid", "", ""],
        ["mismatch", CIB_CARD, "2013-10-15T10:09:00+08:00", "reversal", "", "0", "CNY", "", "",
         "", "", "", "", "ok-1", ""],
        atm("amount-card", "2013-10-15T10:10:00+08:00", amount=CMB_CARD + ".5"),
    ]
    src = write_csv_rows(tmp_path / "cards-in.csv", CSV_HEADER, rows)
    out = tmp_path / "out"
    rc = main(run_args([src], out, tmp_path / "state", cards=cards, merchants=None))
    captured = capfd.readouterr()
    assert rc == 0, captured.err
    terminal = captured.out + captured.err
    summary_text = (out / "summary.json").read_text(encoding="utf-8")
    rejects = {r["txn_id"]: r for r in
               pq.read_table(out / "cards-in.rejects.parquet").to_pylist()}
    assert {k: r["reject_reason"] for k, r in rejects.items()} == {
        "bad-16": "bad_card_no", "bad-19": "bad_card_no", "unknown": "unknown_card",
        "too-long": "bad_card_no", "spaced": "bad_card_no", CMB_CARD2: "duplicate_txn_id",
        "non-member": "disbursement_to_non_member", "mismatch": "reversal_mismatch",
        "amount-card": "bad_amount"}
    details = "\n".join(r["reject_detail"] for r in rejects.values())
    full_numbers = {CMB_CARD, CMB_CARD2, CMB_CARD3, CIB_CARD, STRANGER, bad16, bad19, too_long}
    for where, text in (("terminal", terminal), ("summary.json", summary_text),
                        ("reject_detail", details)):
        for number in full_numbers:
            assert number not in text, f"a full card number in the {where}"
        for run in DIGIT_RUN.findall(text):
            assert not any(run in n for n in full_numbers), f"{run} in the {where}"
    for key, card in (("bad-16", bad16), ("bad-19", bad19), ("unknown", STRANGER)):
        assert rejects[key]["reject_detail"] == \
            f"card_no='{card[:6]}{'*' * (len(card) - 10)}{card[-4:]}'"
        assert re.fullmatch(r"card_no='\d{6}\*+\d{4}'", rejects[key]["reject_detail"])
    assert rejects["bad-16"]["reject_detail"] == f"card_no='{bad16[:6]}******{bad16[-4:]}'"
    # the reject file's own columns keep the full row
    assert rejects["bad-16"]["card_no"] == bad16


@pytest.mark.parametrize("case", ["ragged-csv-row", "bad-registry-card", "duplicate-registry-card"])
def test_no_full_card_number_in_error_messages(case, tmp_path):
    cards = write_cards(tmp_path / "cards.csv")
    src = write_csv_rows(tmp_path / "in.csv", CSV_HEADER,
                         [atm("ok", "2013-10-15T10:00:00+08:00")])
    numbers = {CMB_CARD, CMB_CARD2, CIB_CARD, CMB_CARD3}
    if case == "ragged-csv-row":
        src.write_text(src.read_text(encoding="utf-8")
                       + f"T2,{CMB_CARD2},2013-10-15T10:00:00,withdrawal\n", encoding="utf-8")
        want = 3
    elif case == "bad-registry-card":
        numbers.add(bad_luhn(CMB_CARD2))
        cards.write_text(cards.read_text(encoding="utf-8")
                         + f"{bad_luhn(CMB_CARD2)},M9,u,CMB,350500,2013-09-01,\n",
                         encoding="utf-8")
        want = 2
    else:
        cards.write_text(cards.read_text(encoding="utf-8")
                         + f"{CIB_CARD},M9,u,CIB,350500,2013-09-01,\n", encoding="utf-8")
        want = 2
    proc = cli(run_args([src], tmp_path / "out", tmp_path / "state", cards=cards,
                        merchants=None))
    text = proc.stdout.decode() + proc.stderr.decode()
    assert proc.returncode == want, text
    assert text.startswith("txcore: ")
    for number in numbers:
        assert number not in text
    for run in DIGIT_RUN.findall(text):
        assert not any(run in n for n in numbers)


# --------------------------------------------------------------- 8. state carries over
def test_run_a_b_equals_run_a_then_run_b_across_the_month_end(tmp_path):
    together = run_api([DAY_A, DAY_B], tmp_path / "ab", state_dir=tmp_path / "s1")
    first = run_api([DAY_A], tmp_path / "a", state_dir=tmp_path / "s2")
    second = run_api([DAY_B], tmp_path / "b", state_dir=tmp_path / "s2")
    assert together["rows"]["input"] == first["rows"]["input"] + second["rows"]["input"]
    for stem, split_dir in ((DAY_A.stem, "a"), (DAY_B.stem, "b")):
        for kind in ("priced", "rejects"):
            a = pq.read_table(tmp_path / "ab" / f"{stem}.{kind}.parquet")
            b = pq.read_table(tmp_path / split_dir / f"{stem}.{kind}.parquet")
            assert a.equals(b), (stem, kind)
    # the state mattered: day B alone, from an empty state, prices differently
    alone = run_api([DAY_B], tmp_path / "b-alone", state_dir=tmp_path / "s3")
    assert alone["rows"]["input"] == second["rows"]["input"]
    after = {r["txn_id"]: r for r in
             pq.read_table(tmp_path / "b" / f"{DAY_B.stem}.priced.parquet").to_pylist()}
    cold = {r["txn_id"]: r for r in
            pq.read_table(tmp_path / "b-alone" / f"{DAY_B.stem}.priced.parquet").to_pylist()}
    changed = [t for t in after.keys() & cold.keys()
               if (after[t]["free_slot"], after[t]["fee_waived"])
               != (cold[t]["free_slot"], cold[t]["fee_waived"])]
    assert changed


def test_free_slots_carry_over_between_runs(tmp_path):
    """Four cross-bank same-city ATM withdrawals of one member card in one month, 2 + 2."""
    cards = write_cards(tmp_path / "cards.csv")
    part_a = write_csv_rows(tmp_path / "a.csv", CSV_HEADER, [
        atm("W1", "2013-10-03T09:00:00+08:00", bank="ICBC"),
        atm("W2", "2013-10-09T09:00:00+08:00", bank="ICBC")])
    part_b = write_csv_rows(tmp_path / "b.csv", CSV_HEADER, [
        atm("W3", "2013-10-17T09:00:00+08:00", bank="ICBC"),
        atm("W4", "2013-10-25T09:00:00+08:00", bank="ICBC")])
    kw = dict(cards=cards, merchants=None)

    def rows(folder, stem):
        return [(r["txn_id"], r["free_slot"], r["fee_waived"], r["fee_charged"], r["waiver_rule"])
                for r in pq.read_table(folder / f"{stem}.priced.parquet").to_pylist()]

    run_api([part_a, part_b], tmp_path / "ab", state_dir=tmp_path / "s1", **kw)
    run_api([part_a], tmp_path / "a", state_dir=tmp_path / "s2", **kw)
    run_api([part_b], tmp_path / "b", state_dir=tmp_path / "s2", **kw)
    run_api([part_b], tmp_path / "b-alone", state_dir=tmp_path / "s3", **kw)
    waiver = "member-atm-3-free"
    assert rows(tmp_path / "ab", "a") == rows(tmp_path / "a", "a") == [
        ("W1", 1, 200, 0, waiver), ("W2", 2, 200, 0, waiver)]
    assert rows(tmp_path / "ab", "b") == rows(tmp_path / "b", "b") == [
        ("W3", 3, 200, 0, waiver), ("W4", 0, 0, 200, waiver)]
    assert rows(tmp_path / "b-alone", "b") == [("W3", 1, 200, 0, waiver),
                                               ("W4", 2, 200, 0, waiver)]


# ---------------------------------------------------------------------------- 9. demo
def test_demo_prints_the_control_totals_and_writes_the_summary(tmp_path, capfd):
    assert main(["demo", "-o", str(tmp_path)]) == 0
    printed = capfd.readouterr().out
    assert "control totals" in printed
    for word in ("withdrawal", "transfer", "purchase", "total", "licheng-2013"):
        assert word in printed
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["command"] == "demo"
    assert summary["rows"]["input"] > 70000
    assert summary["rows"]["input"] == sum(pq.ParquetFile(f).metadata.num_rows
                                           for f in BUNDLED_DAYS)
    assert summary["rows"]["input"] == summary["rows"]["priced"] + summary["rows"]["rejected"]
    assert f"{summary['rows']['input']:,} rows in" in printed
    assert sorted(p.name for p in tmp_path.glob("*.priced.parquet")) == \
        sorted(f"{f.stem}.priced.parquet" for f in BUNDLED_DAYS)


# ------------------------------------------------------------------------ 10. fixtures
def tables_of(folder: Path) -> dict[str, pa.Table]:
    out = {}
    for f in sorted(folder.iterdir()):
        out[f.name] = pq.read_table(f) if f.suffix == ".parquet" else read_csv_text(f)
    return out


def test_fixtures_are_reproducible(tmp_path):
    one = txcore.make_fixtures(tmp_path / "one", members=300, days=2, seed=7)
    two = txcore.make_fixtures(tmp_path / "two", members=300, days=2, seed=7)
    other = txcore.make_fixtures(tmp_path / "other", members=300, days=2, seed=8)
    assert [p.name for p in one] == [p.name for p in two] == [p.name for p in other] == [
        "cards.csv", "merchants.csv", "txns-2015-10-29.parquet", "txns-2015-10-30.parquet"]
    a, b = tables_of(tmp_path / "one"), tables_of(tmp_path / "two")
    c = tables_of(tmp_path / "other")
    assert a.keys() == b.keys() == c.keys()
    for name in a:
        assert a[name].num_rows > 0
        assert a[name].equals(b[name]), name
    assert any(not a[name].equals(c[name]) for name in a if name.startswith("txns-"))
    assert not a["cards.csv"].equals(c["cards.csv"])


def test_fixtures_command_matches_the_api(tmp_path, capfd):
    rc = main(["fixtures", "-o", str(tmp_path / "cli"), "--members", "300", "--days", "2",
               "--seed", "5"])
    assert rc == 0
    printed = capfd.readouterr().out.split()
    assert [Path(p).name for p in printed] == [
        "cards.csv", "merchants.csv", "txns-2015-10-29.parquet", "txns-2015-10-30.parquet"]
    txcore.make_fixtures(tmp_path / "api", members=300, days=2, seed=5)
    cli_t, api_t = tables_of(tmp_path / "cli"), tables_of(tmp_path / "api")
    assert cli_t.keys() == api_t.keys()
    assert all(cli_t[k].equals(api_t[k]) for k in cli_t)


def test_csv_fixtures_run_and_their_malformed_text_rows_are_rejected(tmp_path, capfd):
    files = txcore.make_fixtures(tmp_path / "fx", members=2000, days=2, seed=3, fmt="csv")
    assert [f.suffix for f in files] == [".csv"] * 4
    cards, merchants, *days = files
    out = tmp_path / "out"
    rc = main(run_args(days, out, tmp_path / "state", cards=cards, merchants=merchants))
    assert rc == 0, capfd.readouterr().err
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["rows"]["input"] == summary["rows"]["priced"] + summary["rows"]["rejected"]
    assert summary["rejected_by_reason"].get("bad_ts", 0) >= 1
    assert summary["rejected_by_reason"].get("bad_amount", 0) >= 1
    for f in days:
        written = read_csv_text(f)
        assert written.num_rows == next(i["rows"] for i in summary["inputs"]
                                        if i["file"] == f.name)
        rejects = pq.read_table(out / f"{f.stem}.rejects.parquet").to_pylist()
        rejected_ids = {r["txn_id"] for r in rejects}
        for r in written.select(["txn_id", "card_no", "ts", "amount"]).to_pylist():
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", r["ts"]) or "." in r["amount"]:
                assert r["txn_id"] in rejected_ids, r["txn_id"]
        for r in rejects:
            if r["reject_reason"] == "bad_ts":
                assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", r["ts"])
            if r["reject_reason"] == "bad_amount":
                assert "." in r["amount"] or r["amount"].startswith("-")
        priced = pq.read_table(out / f"{f.stem}.priced.parquet")
        assert priced.schema.field("ts").type == TS_UTC
        assert priced.schema.field("amount").type == pa.int64()


# -------------------------------------------------------------------------- 11. --help
@pytest.mark.parametrize("argv", [[], ["run"], ["rules"], ["rules", "check"], ["fixtures"],
                                  ["demo"]], ids=lambda a: " ".join(a) or "txcore")
def test_help_for_every_command(argv, capfd):
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    out = capfd.readouterr().out
    assert out.startswith(f"usage: txcore {' '.join(argv)}".rstrip())
    assert "--help" in out


def test_help_from_the_installed_module():
    proc = cli(["run", "--help"])
    assert proc.returncode == 0
    text = proc.stdout.decode()
    for option in ("--rules", "--cards", "--merchants", "--state", "--format", "-o"):
        assert option in text
