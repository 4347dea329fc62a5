"""Hardening of inputs, outputs and the folders a run touches (issue 11, I/O items).

Each test here failed on the code before the fix it covers: output formats that died on
legal column types, a forged Parquet footer, a forged manifest, two runs in one OUTDIR,
tiny row groups, tracebacks where an exit code was promised, Avro unions and enums,
``--skip-committed`` on stdin, and card numbers in file names and ``explain``.
The wider fuzz of column types per output format is in ``test_type_shapes.py``.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import fastavro
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

import txcore
from conftest import CMB_CARD, FIXTURES, RULES
from txcore import cardno
from txcore.cli import main
from txcore.runner import lock
from txcore.state.store import PUBLISHED, STAGING_PREFIX, Staging, _checksum
from txcore.state import keys

CARDS = FIXTURES / "cards.csv"
MERCHANTS = FIXTURES / "merchants.csv"
DAY = FIXTURES / "txns-2015-11-01.parquet"
LUHN_NAME = "6214851136365181"  # a Luhn-valid 16-digit number (a card number's shape)
assert cardno.is_card_no(LUHN_NAME)


def small_day(rows: int = 40) -> pa.Table:
    return pq.read_table(DAY).slice(0, rows)


def run_args(files, out, state=None, extra=()):
    args = ["run" if state else "replay", "--rules", str(RULES), "--cards", str(CARDS),
            "--merchants", str(MERCHANTS), "-o", str(out), "--no-progress", *extra]
    if state:
        args += ["--state", str(state)]
    return args + [str(f) for f in files]


def cli(args, stdin: bytes | None = None, env=None):
    full = dict(os.environ)
    full.pop("TXCORE_NO_EXTENSIONS", None)
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "txcore", *args], input=stdin,
                          capture_output=True, env=full, timeout=300)


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()} if folder.exists() else {}


# ----------------------------------------------------------- 3. every output format
def with_column(table: pa.Table, name: str, column) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.schema.get_field_index(name), name, column)
    return table.append_column(name, column)


@pytest.mark.parametrize("fmt", ["parquet", "csv", "avro", "arrow"])
def test_uint64_card_numbers_are_written_in_every_format(fmt, tmp_path, capfd):
    """A uint64 card_no used to die in the Avro writer quoting the full number."""
    t = small_day()
    cards = pa.array([int(c) for c in t["card_no"].to_pylist()], pa.uint64())
    src = tmp_path / "u64.parquet"
    pq.write_table(with_column(t, "card_no", cards), src)
    rc = main(run_args([src], tmp_path / "out", extra=["--format", fmt]))
    err = capfd.readouterr().err
    assert rc == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["rows"]["input"] == t.num_rows
    assert summary["rows"]["priced"] > 0
    if fmt == "avro":
        with open(tmp_path / "out" / "u64.priced.avro", "rb") as fh:
            got = [r["card_no"] for r in fastavro.reader(fh)]
        assert {str(g) for g in got} <= {str(c) for c in cards.to_pylist()}


def test_a_column_the_format_cannot_hold_is_refused_before_anything_is_written(tmp_path, capfd):
    """A struct column and --format csv: exit 2 naming the column, nothing in OUTDIR."""
    t = with_column(small_day(), "extra", pa.array([{"a": i} for i in range(40)]))
    src = tmp_path / "nested.parquet"
    pq.write_table(t, src)
    out = tmp_path / "out"
    rc = main(run_args([src], out, tmp_path / "state", extra=["--format", "csv"]))
    err = capfd.readouterr().err
    assert rc == 2, err
    assert "'extra'" in err and "csv" in err and "Traceback" not in err
    assert [p.name for p in out.iterdir()] == []
    assert not (tmp_path / "state" / "CURRENT").exists()


def test_an_unexpected_error_is_printed_masked(tmp_path, capfd, monkeypatch):
    """Whatever goes wrong, no full card number reaches the terminal."""
    from txcore.io import writer

    def boom(self, batch):
        raise RuntimeError(f"cannot write {CMB_CARD}")
    monkeypatch.setattr(writer.BatchWriter, "write", boom)
    rc = main(run_args([DAY], tmp_path / "out"))
    err = capfd.readouterr().err
    assert rc == 1
    assert "internal error" in err and CMB_CARD not in err and cardno.mask(CMB_CARD) in err


# ------------------------------------------------------------ 4. a forged Parquet footer
def _forge_num_rows(src: Path, dst: Path, rows: int, everywhere: bool):
    """Rewrite the footer's row count (thrift compact: field 3 i64 after the schema list)
    to ``rows``; ``everywhere``: every row group's count too."""
    data = src.read_bytes()
    (footer_len,) = struct.unpack("<I", data[-8:-4])
    footer = data[-8 - footer_len:-8]
    n = pq.ParquetFile(src).metadata.num_rows

    def varint(v):
        out = bytearray()
        while True:
            b, v = v & 0x7F, v >> 7
            out.append(b | (0x80 if v else 0))
            if not v:
                return bytes(out)
    old, new = b"\x16" + varint(2 * n), b"\x16" + varint(2 * rows)
    assert footer.count(old) >= 2, "the file's count and one row group's"
    forged = footer.replace(old, new) if everywhere else footer.replace(old, new, 1)
    dst.write_bytes(data[:-8 - footer_len] + forged + struct.pack("<I", len(forged)) + b"PAR1")
    md = pq.ParquetFile(dst).metadata
    assert md.num_rows == rows
    assert (md.row_group(0).num_rows == rows) == everywhere


@pytest.mark.parametrize("everywhere", [False, True], ids=["file-count", "every-count"])
def test_a_footer_declaring_2_31_rows_is_refused_without_reserving_room(everywhere, tmp_path):
    src, forged = tmp_path / "small.parquet", tmp_path / "forged.parquet"
    pq.write_table(small_day(50), src, row_group_size=50)
    _forge_num_rows(src, forged, 2**31, everywhere)
    from txcore.io.reader import InputSource
    source = InputSource(str(forged))
    if everywhere:  # consistent in itself: reserved by the bytes there, not the rows declared
        assert source.reservable_rows() <= forged.stat().st_size
    state = tmp_path / "state"
    # in a child: the old code reserved 64 GiB here
    proc = cli(run_args([forged], tmp_path / "out", state),
               env={"PYTHONFAULTHANDLER": "0"})
    err = proc.stderr.decode()
    assert proc.returncode == 3, err
    assert "Traceback" not in err and "forged.parquet" in err
    assert "declares" in err


# -------------------------------------------------------------- 5. a forged manifest
def _committed(tmp_path) -> tuple[Path, Path, Path]:
    state, out, key = tmp_path / "state", tmp_path / "out", tmp_path / "secret" / "card.key"
    assert main(run_args([DAY], out, state, extra=["--card-key", str(key)])) == 0
    return state, out, key


def _rewrite_manifest(state: Path, key_file: Path, change, keyed=True):
    manifest = json.loads((state / "CURRENT").read_text())
    change(manifest)
    if keyed:
        manifest["checksum"] = _checksum(manifest, keys.load_or_create(key_file))
    else:  # as the old code checked it: an unkeyed sha256 anyone can recompute
        import hashlib
        body = {k: v for k, v in manifest.items() if k != "checksum"}
        manifest["checksum"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()
                                              ).hexdigest()
    (state / "CURRENT").write_text(json.dumps(manifest, indent=1))


def _next_run_refused(state: Path, out: Path, key: Path, capfd) -> str:
    """The next day's run on the forged state: exit 2; its stderr."""
    capfd.readouterr()
    rc = main(run_args([FIXTURES / "txns-2015-11-02.parquet"], out, state,
                       extra=["--card-key", str(key)]))
    err = capfd.readouterr().err
    assert rc == 2, err
    return err


def _victim(tmp_path) -> Path:
    victim = tmp_path / "neighbour"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    return victim


@pytest.mark.parametrize("keyed", [False, True], ids=["unkeyed-sha256", "with-the-key"])
def test_a_manifest_pointing_recovery_outside_outdir_is_refused(keyed, tmp_path, capfd):
    """The attack of the issue: outputs.staging = '../neighbour' made recovery move a file
    out of a neighbouring folder and delete the folder.  Without the card key the forged
    manifest fails its keyed checksum; even with the key (kept in the state, say) recovery
    only touches a staging folder directly in OUTDIR, named and marked as this state's."""
    state, out, key = _committed(tmp_path)
    victim = _victim(tmp_path)

    def forge(m):
        m["outputs"] = {"dir": str(out.resolve()), "staging": "../neighbour",
                        "names": ["precious.txt"]}
        m["run_id"] = "forged"
    _rewrite_manifest(state, key, forge, keyed)
    before = tree(tmp_path)
    err = _next_run_refused(state, out, key, capfd)
    assert ("checksum" in err) if not keyed else ("staging folder name" in err), err
    assert tree(tmp_path) == before, "nothing moved or deleted"
    assert (victim / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("how", ["absolute-elsewhere", "name-with-slash", "not-ours"])
def test_recovery_touches_only_this_states_staging_folder(how, tmp_path, capfd):
    state, out, key = _committed(tmp_path)
    victim = _victim(tmp_path)
    staging = STAGING_PREFIX + "20990101-000000-000000"
    if how == "absolute-elsewhere":  # a folder named like staging, in another folder
        (victim / staging).mkdir()
        (victim / staging / "precious.txt").write_text("x")
        outputs = {"dir": str(victim), "staging": staging, "names": ["precious.txt"]}
    elif how == "name-with-slash":
        (out / staging).mkdir()
        (out / staging / Staging.OWNER_FILE).write_text(str(state.resolve()))
        outputs = {"dir": str(out.resolve()), "staging": staging,
                   "names": ["../neighbour/precious.txt"]}
    else:  # another state's staging folder in OUTDIR
        (out / staging).mkdir()
        (out / staging / Staging.OWNER_FILE).write_text("/some/other/state")
        (out / staging / "x.priced.parquet").write_text("theirs")
        outputs = {"dir": str(out.resolve()), "staging": staging, "names": ["x.priced.parquet"]}

    def forge(m):
        m["outputs"], m["run_id"] = outputs, "forged"
    _rewrite_manifest(state, key, forge)
    before = tree(tmp_path)
    _next_run_refused(state, out, key, capfd)
    assert tree(tmp_path) == before, "nothing moved or deleted"


# --------------------------------------------------------------- 6. OUTDIR is locked
def test_a_second_run_into_a_busy_outdir_is_refused(tmp_path, capfd):
    out = tmp_path / "out"
    with lock(out, None, "output folder"):  # another txcore run holds OUTDIR
        rc = main(run_args([DAY], out))
        err = capfd.readouterr().err
    assert rc == 2 and "another txcore run is using this output folder" in err, err
    assert [p.name for p in out.iterdir()] == []
    assert main(run_args([DAY], out)) == 0  # free again


def test_publishing_a_missing_staging_folder_is_an_error(tmp_path):
    staging = Staging(tmp_path / "out", "20990101-000000-000000")
    (staging.path("a.priced.parquet")).write_text("x")
    shutil.rmtree(staging.dir)  # e.g. another run's stale-folder cleanup took it
    with pytest.raises(FileNotFoundError, match="staging folder"):
        staging.publish()


def test_a_committed_run_whose_staging_folder_vanished_is_reported(tmp_path, capfd):
    """Before: recovery silently published nothing.  Now exit 2 saying what to do; writing
    the run id into PUBLISHED (as the message says) lets the state go on."""
    state, out, key = _committed(tmp_path)
    staging = STAGING_PREFIX + "20990101-000000-000000"

    def forge(m):  # a committed run whose outputs never got out of staging
        m["outputs"] = {"dir": str(out.resolve()), "staging": staging,
                        "names": ["lost.priced.parquet"]}
        m["run_id"] = "20990101-000000-000000"
    _rewrite_manifest(state, key, forge)
    capfd.readouterr()
    nxt = FIXTURES / "txns-2015-11-02.parquet"
    rc = main(run_args([nxt], out, state, extra=["--card-key", str(key)]))
    err = capfd.readouterr().err
    assert rc == 2 and "missing" in err and PUBLISHED in err, err
    (state / PUBLISHED).write_text("20990101-000000-000000\n")
    assert main(run_args([nxt], out, state, extra=["--card-key", str(key)])) == 0


# --------------------------------------------------- 7. tiny row groups are coalesced
def test_one_row_row_groups_are_read_and_written_in_big_groups(tmp_path):
    t = small_day(8000)
    src = tmp_path / "tiny.parquet"
    pq.write_table(t, src, row_group_size=1)
    assert pq.ParquetFile(src).metadata.num_row_groups == 8000
    out = tmp_path / "out"
    result = txcore.run([src], rules=RULES, cards=CARDS, merchants=MERCHANTS, out_dir=out,
                        progress=False)
    for name in ("tiny.priced.parquet", "tiny.rejects.parquet"):
        assert pq.ParquetFile(out / name).metadata.num_row_groups == 1
    ref = txcore.run([DAY], rules=RULES, cards=CARDS, merchants=MERCHANTS,
                     out_dir=tmp_path / "ref", progress=False)
    del ref
    whole = tmp_path / "whole.parquet"
    pq.write_table(t, whole)
    same = txcore.run([whole], rules=RULES, cards=CARDS, merchants=MERCHANTS,
                      out_dir=tmp_path / "whole", progress=False)
    assert result["inputs"][0]["digest"] == same["inputs"][0]["digest"]


def test_small_reject_batches_make_few_row_groups(tmp_path):
    """Batches of 7 rows (--batch-size 7): the outputs still come in big row groups."""
    out = tmp_path / "out"
    txcore.run([DAY], rules=RULES, cards=CARDS, merchants=MERCHANTS, out_dir=out,
               progress=False, batch_size=7)
    rows = pq.ParquetFile(out / f"{DAY.stem}.priced.parquet").metadata
    assert rows.num_row_groups <= rows.num_rows // 32_768 + 1
    assert pq.ParquetFile(out / f"{DAY.stem}.rejects.parquet").metadata.num_row_groups == 1


# ---------------------------------------- 10. exit codes instead of tracebacks
def _one_clean_line(err: str, code: int, rc: int):
    assert rc == code, err
    assert "Traceback" not in err, err
    # one line; rules and reference data problems come as a heading and one line each
    assert err.startswith("txcore: ") and len(err.strip().splitlines()) <= 2, err


@pytest.mark.parametrize("how", ["a-file", "dangling-symlink", "under-a-file"])
def test_an_unusable_output_folder_exits_2(how, tmp_path, capfd):
    out = tmp_path / "out"
    if how == "a-file":
        out.write_text("x")
    elif how == "dangling-symlink":
        out.symlink_to(tmp_path / "nowhere")
    else:  # as close as root gets to "not writable": a path under a regular file
        (tmp_path / "f").write_text("x")
        out = tmp_path / "f" / "out"
    rc = main(run_args([DAY], out, tmp_path / "state"))
    _one_clean_line(capfd.readouterr().err, 2, rc)
    assert not (tmp_path / "state" / "CURRENT").exists()


@pytest.mark.parametrize("how", ["a-file", "parent-a-file", "lock-a-folder"])
def test_an_unusable_state_folder_exits_2(how, tmp_path, capfd):
    state = tmp_path / "state"
    if how == "a-file":
        state.write_text("x")
    elif how == "parent-a-file":
        (tmp_path / "f").write_text("x")
        state = tmp_path / "f" / "state"
    else:  # a LOCK that cannot be opened as a file
        (state / "LOCK").mkdir(parents=True)
    rc = main(run_args([DAY], tmp_path / "out", state))
    _one_clean_line(capfd.readouterr().err, 2, rc)


def _special(kind: str, path: Path) -> Path:
    if kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/null")  # a character device
    return path


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "device"])
@pytest.mark.parametrize("what", ["input", "cards", "card-key", "rules-file"])
def test_non_regular_files_are_refused_up_front(what, kind, tmp_path, capfd):
    """Before: "no such file" for an input, memory exhaustion or a hang for the others."""
    rules, cards, key, files = RULES, CARDS, tmp_path / "card.key", [DAY]
    if what == "input":
        files = [_special(kind, tmp_path / "odd.parquet")]
    elif what == "cards":
        cards = _special(kind, tmp_path / "cards.csv")
    elif what == "card-key":
        key = _special(kind, tmp_path / "card.key")
    else:
        rules = tmp_path / "rules"
        shutil.copytree(RULES, rules)
        _special(kind, rules / "zz.toml")
    args = ["run", "--rules", str(rules), "--cards", str(cards), "-o", str(tmp_path / "out"),
            "--state", str(tmp_path / "state"), "--card-key", str(key), "--no-progress",
            *map(str, files)]
    rc = main(args)
    err = capfd.readouterr().err
    _one_clean_line(err, 3 if what == "input" else 2, rc)
    assert "not a regular file" in err


@pytest.mark.parametrize("how", ["stray-quote-over-128k", "header-cell-over-131072"])
def test_csv_headers_the_csv_module_rejects_are_refused(how, tmp_path, capfd):
    rows = small_day().to_pylist()
    lines = [",".join(rows[0])] + [",".join("" if v is None else str(v) for v in r.values())
                                   for r in rows] * 100
    text = "\n".join(lines) + "\n"
    assert '"' not in text and len(text) > 140_000
    src = tmp_path / "odd.csv"
    if how == "stray-quote-over-128k":
        src.write_text('"' + text)
    else:
        src.write_text("a" * 140_000 + "," + text)
    rc = main(run_args([src], tmp_path / "out", tmp_path / "state"))
    err = capfd.readouterr().err
    _one_clean_line(err, 3, rc)
    assert "odd.csv" in err


@pytest.mark.parametrize("shape", ["struct", "list", "map"])
def test_a_txn_id_of_a_nested_type_is_refused_naming_the_column(shape, tmp_path, capfd):
    n = 40
    column = {"struct": pa.array([{"a": str(i)} for i in range(n)]),
              "list": pa.array([[str(i)] for i in range(n)]),
              "map": pa.array([[("k", str(i))] for i in range(n)],
                              pa.map_(pa.string(), pa.string()))}[shape]
    src = tmp_path / "nested.parquet"
    pq.write_table(with_column(small_day(n), "txn_id", column), src)
    rc = main(run_args([src], tmp_path / "out", tmp_path / "state"))
    err = capfd.readouterr().err
    _one_clean_line(err, 3, rc)
    assert "'txn_id'" in err and "nested.parquet" in err


@pytest.mark.parametrize("column", ["txn_id", "kind", "amount", "extra"])
def test_a_dictionary_of_nulls_column_is_read(column, tmp_path, capfd):
    n = 40
    nulls = pa.DictionaryArray.from_arrays(pa.array([0] * n, pa.int32()),
                                           pa.nulls(1, pa.null()))
    t = with_column(small_day(n), column, nulls)
    src = tmp_path / "dictnull.arrow"
    with ipc.new_file(src, t.schema) as w:
        w.write_table(t)
    for fmt in ("parquet", "csv", "avro", "arrow"):
        rc = main(run_args([src], tmp_path / f"out-{fmt}", extra=["--format", fmt]))
        err = capfd.readouterr().err
        assert rc == 0, err
        summary = json.loads((tmp_path / f"out-{fmt}" / "summary.json").read_text())
        assert summary["rows"]["input"] == n


def test_a_uint64_amount_beyond_int64_is_a_reject_not_a_crash(tmp_path, capfd):
    t = small_day()
    t = with_column(t, "amount", pa.array([2**64 - 1] * t.num_rows, pa.uint64()))
    src = tmp_path / "huge.parquet"
    pq.write_table(t, src)
    assert main(run_args([src], tmp_path / "out")) == 0, capfd.readouterr().err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["rows"]["input"] == t.num_rows and summary["rows"]["rejected"] > 0


# ------------------------------------------------------------------- 11. Avro inputs
def _avro_day(tmp_path, amount_type, kind_type, extra=None) -> tuple[Path, int]:
    rows = small_day().to_pylist()
    fields = []
    for name in rows[0]:
        t = {"amount": amount_type, "kind": kind_type}.get(name, ["null", "string"])
        fields.append({"name": name, "type": t})
    if extra:
        fields.append({"name": "extra", "type": extra[0]})
    schema = fastavro.parse_schema({"type": "record", "name": "Txn", "fields": fields})
    records = []
    for i, r in enumerate(rows):
        r = dict(r)
        r["ts"] = r["ts"].isoformat() if hasattr(r["ts"], "isoformat") else r["ts"]
        if r["amount"] is not None and i % 2:
            r["amount"] = str(r["amount"])
        if extra:
            r["extra"] = extra[1](i)
        records.append(r)
    path = tmp_path / "in.avro"
    with open(path, "wb") as fh:
        fastavro.writer(fh, schema, records)
    return path, len(rows)


KINDS_ENUM = {"type": "enum", "name": "Kind", "symbols": [
    "withdrawal", "transfer", "purchase", "disbursement", "service", "reversal"]}


def test_avro_long_string_unions_enum_kinds_and_nested_fields_are_read(tmp_path, capfd):
    nested = ({"type": "record", "name": "Extra", "fields": [
        {"name": "a", "type": "long"}, {"name": "tags", "type": {"type": "array",
                                                                  "items": "string"}}]},
              lambda i: {"a": i, "tags": ["x"] * (i % 3)})
    src, n = _avro_day(tmp_path, ["null", "long", "string"], ["null", KINDS_ENUM], nested)
    out = tmp_path / "out"
    assert main(run_args([src], out, extra=["--format", "parquet"])) == 0, \
        capfd.readouterr().err
    # the same rows from Parquet price the same
    ref = tmp_path / "ref.parquet"
    pq.write_table(small_day(), ref)
    assert main(run_args([ref], tmp_path / "ref")) == 0
    got = pq.read_table(out / "in.priced.parquet")
    want = pq.read_table(tmp_path / "ref" / "ref.priced.parquet")
    assert got.num_rows == want.num_rows
    for c in ("txn_id", "fee_charged", "discount", "fee_rule"):
        assert got[c].to_pylist() == want[c].to_pylist()
    assert got.schema.field("extra").type == pa.struct([("a", pa.int64()),
                                                        ("tags", pa.list_(pa.string()))])


def test_an_avro_union_txcore_cannot_read_is_refused_naming_file_and_column(tmp_path, capfd):
    src, _ = _avro_day(tmp_path, ["null", "long", "string"], ["null", "string"],
                       (["null", "long", {"type": "array", "items": "long"}], lambda i: i))
    rc = main(run_args([src], tmp_path / "out"))
    err = capfd.readouterr().err
    _one_clean_line(err, 3, rc)
    assert "in.avro" in err and "'extra'" in err


# ---------------------------------------------------- 12. --skip-committed on stdin
def test_skip_committed_leaves_out_a_committed_stdin_and_commits_the_rest(tmp_path):
    t = small_day()
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, t.schema) as w:
        w.write_table(t)
    stream = sink.getvalue().to_pybytes()
    state = tmp_path / "state"
    first = cli(run_args(["-"], tmp_path / "out1", state), stdin=stream)
    assert first.returncode == 0, first.stderr.decode()
    nxt = FIXTURES / "txns-2015-11-02.parquet"
    proc = cli(run_args(["-", nxt], tmp_path / "out2", state, extra=["--skip-committed"]),
               stdin=stream)
    assert proc.returncode == 0, proc.stderr.decode()
    summary = json.loads((tmp_path / "out2" / "summary.json").read_text())
    assert [s["file"] for s in summary["skipped"]] == ["<stdin>"]
    assert [i["file"] for i in summary["inputs"]] == [nxt.name]
    assert not (tmp_path / "out2" / "stdin.priced.parquet").exists()
    again = cli(run_args([nxt], tmp_path / "out3", state))  # the new file was committed
    assert again.returncode == 3 and "already committed" in again.stderr.decode()


# --------------------------------------------------- 15. card numbers in names
def test_a_card_number_as_a_file_name_is_masked_wherever_it_is_printed_or_stored(tmp_path):
    src = tmp_path / f"{LUHN_NAME}.parquet"
    shutil.copy(DAY, src)
    state, out = tmp_path / "state", tmp_path / "out"
    proc = cli(run_args([src], out, state))
    assert proc.returncode == 0, proc.stderr.decode()
    masked = cardno.mask(LUHN_NAME)
    assert LUHN_NAME not in proc.stdout.decode() and masked in proc.stdout.decode()
    for p in list(state.iterdir()) + list(out.iterdir()):
        assert LUHN_NAME not in p.name
        if p.suffix in (".json", "") and p.is_file():
            assert LUHN_NAME not in p.read_text(errors="replace"), p.name
    assert (out / f"{masked}.priced.parquet").is_file()
    again = cli(run_args([src], tmp_path / "out2", state))  # refused: the message too
    assert again.returncode == 3 and LUHN_NAME not in again.stderr.decode()


def test_explain_masks_a_txn_id_that_is_a_card_number(tmp_path, capfd):
    t = small_day(5)
    ids = t["txn_id"].to_pylist()
    ids[2] = LUHN_NAME
    src = tmp_path / "day.parquet"
    pq.write_table(with_column(t, "txn_id", pa.array(ids)), src)
    rc = main(["explain", LUHN_NAME, "--rules", str(RULES), "--cards", str(CARDS),
               "--merchants", str(MERCHANTS), str(src)])
    cap = capfd.readouterr()
    assert rc == 0, cap.err
    assert LUHN_NAME not in cap.out and cardno.mask(LUHN_NAME) in cap.out


def test_mask_names_masks_only_luhn_valid_runs():
    assert cardno.mask_names(f"x{LUHN_NAME}.parquet") == f"x{cardno.mask(LUHN_NAME)}.parquet"
    assert cardno.mask_names("txns-20151101093001.parquet") in (
        "txns-20151101093001.parquet", f"txns-{cardno.mask('20151101093001')}.parquet")
    assert cardno.mask_names("txns-2015-11-01.parquet") == "txns-2015-11-01.parquet"
    not_luhn = LUHN_NAME[:-1] + str((int(LUHN_NAME[-1]) + 1) % 10)
    assert cardno.mask_names(not_luhn) == not_luhn
