"""``.iso8583`` inputs end to end: the switch-log fixtures price as their Parquet twins do,
message-level rejects, bad files, the business date, masked card numbers, replay and explain."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import iso8583
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from iso8583.specs import default_ascii

import txcore
from txcore import switchlog
from txcore.audit.explain import explain
from txcore.business_date import resolve_business_date
from txcore.errors import InputRefused, RefDataError, UsageError
from txcore.fixtures import switch_fixtures
from txcore.io.iso8583 import Layout, masked_hex, resolve_years

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "rules"
CARD = "6214851028745979"  # replaced by a member card of the fixture registry


def member_card(cards_csv: Path) -> str:
    import pyarrow.csv as pacsv
    cards = pacsv.read_csv(cards_csv, convert_options=pacsv.ConvertOptions(
        column_types={"card_no": pa.string(), "member_from": pa.string()}))
    rows = [r for r in cards.to_pylist() if r["issuer"] == "CMB" and r["member_from"]
            and r["member_from"] <= "2015-01-01" and not r.get("member_to")]
    return rows[0]["card_no"]


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    """Three fixture days as switch logs, and the rows each carries as Parquet."""
    global CARD
    folder = tmp_path_factory.mktemp("switch")
    written = switch_fixtures(folder, members=800, days=3, seed=3)
    CARD = member_card(folder / "cards.csv")
    logs = [(p, rows) for p, rows in written if rows is not None]
    parquet = []
    for path, rows in logs:
        target = folder / "parquet" / f"{path.stem}.parquet"
        target.parent.mkdir(exist_ok=True)
        pq.write_table(rows, target)
        parquet.append(target)
    return folder, [p for p, _ in logs], parquet, [r for _, r in logs]


def price(folder, files, out, **kw):
    return txcore.run(files, rules=RULES, cards=folder / "cards.csv",
                      merchants=folder / "merchants.csv", out_dir=out, state_dir=out / "state",
                      progress=False, **kw)


def test_the_same_days_price_the_same_from_parquet_and_from_iso8583(days, tmp_path):
    folder, logs, parquet, rows = days
    from_iso = price(folder, logs, tmp_path / "iso", institutions=folder / "institutions.csv")
    from_pq = price(folder, parquet, tmp_path / "pq")
    for log, pq_file in zip(logs, parquet):
        a = pq.read_table(tmp_path / "iso" / f"{log.stem}.priced.parquet")
        b = pq.read_table(tmp_path / "pq" / f"{pq_file.stem}.priced.parquet")
        assert a.num_rows > 1000
        assert a.schema.names == b.schema.names
        a, b = (t.sort_by("txn_id") for t in (a, b))
        for name in a.schema.names:
            assert a.column(name).to_pylist() == b.column(name).to_pylist(), name
    # every message is a row: the switch also logged declined attempts and echo tests
    for i, log in zip(from_iso["inputs"], logs):
        rejects = pq.read_table(tmp_path / "iso" / f"{log.stem}.rejects.parquet")
        reasons = Counter(rejects.column("reject_reason").to_pylist())
        assert reasons["not_financial"] >= 10 and reasons["not_approved"] >= 1
        assert i["rows"] == i["priced"] + i["rejected"]
        mtis = Counter(rejects.column("mti").to_pylist())
        assert mtis["0800"] == reasons["not_financial"]
    assert from_iso["rows"]["priced"] == from_pq["rows"]["priced"]
    assert from_iso["totals"] == from_pq["totals"] and from_iso["by_kind"] == from_pq["by_kind"]
    # reversals carried by field 90 found their originals
    priced = pa.concat_tables(pq.read_table(tmp_path / "iso" / f"{log.stem}.priced.parquet")
                              for log in logs)
    assert pc.sum(pc.equal(priced.column("kind"), "reversal")).as_py() > 5


def message(**fields) -> bytes:
    base = {"t": "0200", "2": CARD, "3": "010000", "4": "000000010000", "7": "1029101010",
            "11": "000001", "12": "101010", "13": "1029", "18": "6011", "22": "051",
            "32": "01350500", "37": "151029000001", "49": "156"}
    base.update(fields)
    return bytes(iso8583.encode({k: v for k, v in base.items() if v is not None},
                                default_ascii)[0])


def write_log(path: Path, messages) -> Path:
    return switchlog.write_log(messages, path)


@pytest.fixture
def refdata(days):
    return days[0]


def run_log(refdata, tmp_path, messages, name="switch-20151029.iso8583", **kw):
    log = write_log(tmp_path / name, messages)
    out = tmp_path / "out"
    result = txcore.run([log], rules=RULES, cards=refdata / "cards.csv", out_dir=out,
                        progress=False, institutions=kw.pop("institutions",
                                                            refdata / "institutions.csv"), **kw)
    stem = Path(name).stem
    return (result, pq.read_table(out / f"{stem}.priced.parquet"),
            pq.read_table(out / f"{stem}.rejects.parquet"))


def test_message_level_rejects_and_their_order(refdata, tmp_path):
    messages = [
        message(),                                             # priced
        message(t="0800", **{"11": "000002"}),                 # not_financial
        message(t="0210", **{"11": "000003", "39": "51"}),     # not_approved
        message(t="0810", **{"11": "000004", "39": "51"}),     # not_financial before not_approved
        message(**{"11": "000005"})[:-3],                      # bad_message (field 49 short)
        message(t="0420", **{"11": "000006", "90": "0" * 42}),  # a reversal of nothing: no effect
        message(**{"11": "000007", "3": "990000"}),            # bad_kind, naming field 3
        message(**{"11": "000008", "18": "5999"}),             # bad_channel, naming field 18
        message(**{"11": "000009", "32": "77777"}),            # bad_acq_bank, naming field 32
        message(**{"11": "000010", "3": "000000", "32": "77777", "42": "NP000001".ljust(15),
                   "18": "5411"}),                             # a purchase: no bank needed
    ]
    result, priced, rejects = run_log(refdata, tmp_path, messages)
    assert result["rows"] == {"input": 10, "priced": 3, "rejected": 7}
    assert result["zero_effect_reversals"] == 1
    got = dict(zip(rejects.column("stan").to_pylist(), zip(
        rejects.column("reject_reason").to_pylist(), rejects.column("reject_detail").to_pylist())))
    assert got["000002"] == ("not_financial", "mti='0800'")
    assert got["000003"] == ("not_approved", "field 39='51'")
    assert got["000004"][0] == "not_financial"
    assert got["000007"] == ("bad_kind",
                             "field 3='990000': not a withdrawal, purchase or transfer")
    assert got["000008"] == ("bad_channel", "field 18='5999', field 22='051'")
    assert got["000009"] == ("bad_acq_bank", "field 32='77777': not in the institutions file")
    bad = rejects.filter(pc.equal(rejects.column("reject_reason"), "bad_message"))
    assert bad.column("reject_detail").to_pylist() == ["field 49: Field data is 0 bytes, "
                                                       "expecting 3"]
    assert bad.column("currency").to_pylist() == [None] and bad.column("iso_hex")[0].as_py()
    # reject rows in file order, each with its offset and the message as hex
    offsets = rejects.column("iso_offset").to_pylist()
    assert offsets == sorted(offsets)
    data = (tmp_path / "switch-20151029.iso8583").read_bytes()
    for off, hx in zip(offsets, rejects.column("iso_hex").to_pylist()):
        n = int.from_bytes(data[off:off + 2], "big")
        raw = data[off + 2:off + 2 + n].hex().upper()
        assert len(hx) == len(raw)
        assert all(a == b or a == "*" for a, b in zip(hx, raw))
    assert set(priced.column("stan").to_pylist()) == {"000001", "000006", "000010"}
    reversal = priced.filter(pc.equal(priced.column("stan"), "000006")).to_pylist()[0]
    assert reversal["orig_txn_id"] == "-0000000000-000000"  # field 90 all zeros
    assert priced.column("txn_id").to_pylist()[0] == "1350500-1029101010-000001"
    assert "iso_hex" not in priced.schema.names and "iso_offset" not in priced.schema.names
    assert {"mti", "stan", "rrn", "response"} <= set(priced.schema.names)


def test_no_card_number_in_the_reject_file_or_summary(refdata, tmp_path):
    messages = [message(t="0210", **{"39": "05"}), message(**{"4": "00000000000X"}),
                message()[:-1], message(t="0800")]
    result, _, rejects = run_log(refdata, tmp_path, messages)
    text = json.dumps(result) + json.dumps(rejects.to_pylist(), default=str)
    assert CARD.encode().hex().upper() not in text
    assert CARD not in json.dumps(result)
    for hx in rejects.column("iso_hex").to_pylist():
        assert CARD.encode().hex().upper() not in hx
    shown = masked_hex(message(), default_ascii)
    assert CARD[:6].encode().hex().upper() + "**" in shown
    assert "**" + CARD[-4:].encode().hex().upper() in shown


def test_masked_hex_in_a_bcd_message_and_an_undecodable_one():
    from test_iso8583_decoder import bcd_spec
    spec = bcd_spec()
    raw = bytes(iso8583.encode({"t": "0200", "2": CARD, "3": "010000"}, spec)[0])
    shown = masked_hex(raw, spec)
    assert CARD not in shown and CARD[:6] in shown and CARD[-4:] in shown
    broken = message()[:-2]  # pyiso8583 still places field 2 before the error
    assert CARD.encode().hex().upper() not in masked_hex(broken, default_ascii)
    garbage = b"XXXX" + CARD.encode()  # no bitmap at all: digit runs are masked
    assert CARD.encode().hex().upper() not in masked_hex(garbage, default_ascii)
    # field 2 found from the bitmap and its length (the fast way) = placed by pyiso8583
    for sp, m in ((spec, raw), (default_ascii, message()), (default_ascii, broken),
                  (default_ascii, message(t="0800", **{"2": None})),
                  (spec, bytes(iso8583.encode({"t": "0200", "2": CARD[:-1], "70": "301"},
                                              spec)[0]))):
        assert masked_hex(m, sp, Layout(sp)) == masked_hex(m, sp)


def test_the_fixture_encoder_writes_what_pyiso8583_writes():
    samples = [{"t": "0200", "2": CARD, "3": "010000", "4": "000000010000", "32": "01350500",
                "42": "QZ000001".ljust(15)},
               {"t": "0420", "2": CARD, "11": "000001", "90": "0" * 42},
               {"t": "0800", "7": "1029100000", "11": "000002", "70": "301"},
               {"t": "0210", "39": "51", "128": "0123456789ABCDEF"}]
    for fields in samples:
        assert switchlog.encode(fields) == bytes(iso8583.encode(dict(fields), default_ascii)[0])


@pytest.mark.parametrize("tail, where", [
    (b"\x00", "1 byte of a length prefix at byte offset"),
    (b"\x00\x40" + b"0200", "declares 64 bytes, 4 remain"),
    (b"\xff\xff", "declares 65535 bytes, 0 remain"),
])
def test_a_log_that_ends_inside_a_frame_is_refused_naming_the_offset(refdata, tmp_path, tail,
                                                                     where):
    good = message()
    log = tmp_path / "switch-20151029.iso8583"
    log.write_bytes(len(good).to_bytes(2, "big") + good + tail)
    with pytest.raises(InputRefused, match=where) as exc:
        txcore.run([log], rules=RULES, cards=refdata / "cards.csv", out_dir=tmp_path / "o",
                   state_dir=tmp_path / "st", progress=False,
                   institutions=refdata / "institutions.csv")
    assert f"offset {len(good) + 2}" in str(exc.value)
    assert exc.value.exit_code == 3
    assert not list((tmp_path / "o").glob("*.parquet"))


def test_cli_refuses_a_truncated_log_with_exit_3(refdata, tmp_path):
    log = tmp_path / "switch-20151029.iso8583"
    log.write_bytes(b"\x00\x10" + message()[:5])
    p = subprocess.run([sys.executable, "-m", "txcore", "run", "--rules", str(RULES),
                        "--cards", str(refdata / "cards.csv"), "--institutions",
                        str(refdata / "institutions.csv"), "--state", str(tmp_path / "st"),
                        "-o", str(tmp_path / "o"), "--no-progress", str(log)],
                       capture_output=True, text=True)
    assert p.returncode == 3, p.stderr
    assert "ends inside a frame" in p.stderr and "offset 0" in p.stderr


def test_institutions_are_required_and_checked(refdata, tmp_path):
    log = write_log(tmp_path / "switch-20151029.iso8583", [message()])
    with pytest.raises(UsageError, match="--institutions"):
        txcore.run([log], rules=RULES, cards=refdata / "cards.csv", out_dir=tmp_path / "o",
                   progress=False)
    bad = tmp_path / "inst.csv"
    bad.write_text("institution_id,bank,city\n01350500,cmb,350500\nX1,CMB,3505\n")
    with pytest.raises(RefDataError) as exc:
        txcore.run([log], rules=RULES, cards=refdata / "cards.csv", out_dir=tmp_path / "o",
                   progress=False, institutions=bad)
    text = "\n".join(exc.value.problems)
    assert "row 1, bank" in text and "row 2, institution_id" in text and "row 2, city" in text


def test_field_90_of_the_wrong_length(refdata, tmp_path):
    """Under the default spec field 90 is fixed at 42: a shorter one misplaces what follows
    (bad_message from pyiso8583); under a spec with a variable field 90, txcore checks
    the length itself."""
    short = message(t="0420", **{"90": "0" * 42})
    short = short[:-4] + short[-3:]  # one byte less inside field 90 (+ field 49 after it)
    spec = json.loads(json.dumps(default_ascii))
    spec["90"].update(len_type=2, max_len=99)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(spec))
    var = bytes(iso8583.encode({"t": "0420", "2": CARD, "3": "000000", "7": "1029101010",
                                "11": "000002", "12": "101010", "13": "1029",
                                "32": "01350500", "90": "0" * 41}, spec)[0])
    _, _, rejects = run_log(refdata, tmp_path, [short])
    assert rejects.column("reject_reason").to_pylist() == ["bad_message"]
    _, _, rejects = run_log(refdata, tmp_path, [var], iso_spec=spec_file)
    assert rejects.column("reject_reason").to_pylist() == ["bad_message"]
    assert rejects.column("reject_detail").to_pylist() == ["field 90: 41 characters, "
                                                           "expecting 42"]


def test_a_spec_file_that_is_not_one_stops_the_run(refdata, tmp_path):
    log = write_log(tmp_path / "switch-20151029.iso8583", [message()])
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({"t": {"data_enc": "ascii"}}))
    with pytest.raises(RefDataError, match="field 'h' is not defined"):
        txcore.run([log], rules=RULES, cards=refdata / "cards.csv", out_dir=tmp_path / "o",
                   progress=False, institutions=refdata / "institutions.csv",
                   iso_spec=spec_file)


# -- the business date -----------------------------------------------------------------------
def test_year_nearest_the_business_date():
    mmdd = pa.array(["0101", "1231", "1029", "0229", "1340", "12ab", None])
    years, ok = resolve_years(mmdd, dt.date(2014, 12, 31))
    # 0229: no 29 February within a year of the date: no year (bad_ts)
    assert list(years[:3]) == [2015, 2014, 2014] and list(ok) == [True] * 3 + [False] * 4
    years, ok = resolve_years(pa.array(["0229"]), dt.date(2015, 12, 31))
    assert list(years) == [2016] and list(ok) == [True]
    years, _ = resolve_years(pa.array(["1231", "0701"]), dt.date(2015, 1, 1))
    assert list(years) == [2014, 2015]
    # a tie (183 days either way in a leap span) takes the earlier year
    years, _ = resolve_years(pa.array(["0101"]), dt.date(2016, 7, 2))
    assert list(years) == [2016]


def test_business_date_from_option_file_name_or_today():
    zone = txcore.load_book(RULES).versions[-1].zone
    assert resolve_business_date(dt.date(2015, 1, 2), ["switch-20141231.iso8583"], zone) == \
        (dt.date(2015, 1, 2), "option")
    assert resolve_business_date(None, ["a/switch-20141230.iso8583", "b-2014-12-31.iso8583"],
                                 zone) == (dt.date(2014, 12, 31), "file name")
    assert resolve_business_date(None, ["switch.iso8583"], zone)[1] == "today"


def test_a_log_of_new_years_eve_holds_messages_of_the_new_year(refdata, tmp_path):
    messages = [message(**{"13": "1231", "7": "1231235959", "12": "235959"}),
                message(**{"13": "0101", "7": "0101000001", "11": "000002", "12": "000001"})]
    _, priced, _ = run_log(refdata, tmp_path, messages, name="switch-20141231.iso8583")
    ts = priced.column("ts").to_pylist()
    assert [t.date() for t in ts] == [dt.date(2014, 12, 31), dt.date(2014, 12, 31)]  # UTC
    assert [t.year for t in ts] == [2014, 2014] and ts[1].hour == 16  # 2015-01-01 00:00 +8
    _, priced, _ = run_log(refdata, tmp_path, messages, name="switch.iso8583",
                           business_date=dt.date(2014, 7, 1))
    local = [t + dt.timedelta(hours=8) for t in priced.column("ts").to_pylist()]
    assert [t.date() for t in local] == [dt.date(2013, 12, 31), dt.date(2014, 1, 1)]


def test_replay_and_explain_read_iso8583(days, tmp_path):
    folder, logs, _, _ = days
    from txcore.audit.replay import replay
    kw = dict(rules=RULES, cards=folder / "cards.csv", merchants=folder / "merchants.csv",
              institutions=folder / "institutions.csv")
    recorded = price(folder, logs[:1], tmp_path / "run", institutions=folder / "institutions.csv")
    result = replay(logs[:1], out_dir=tmp_path / "replay", compare=tmp_path / "run",
                    progress=False, **kw)
    assert result["compare"]["cells"] == 0
    assert result["rows"] == recorded["rows"]
    priced = pq.read_table(tmp_path / "run" / f"{logs[0].stem}.priced.parquet")
    withdrawal = priced.filter(pc.equal(priced.column("kind"), "withdrawal"))
    txn_id = withdrawal.column("txn_id")[0].as_py()
    text = explain(txn_id, logs[:1], priced=tmp_path / "run", **kw)
    assert txn_id in text and "agrees on every priced column" in text


def test_cli_fixtures_write_switch_logs_that_price(tmp_path):
    out = tmp_path / "demo"
    p = subprocess.run([sys.executable, "-m", "txcore", "fixtures", "-o", str(out),
                        "--members", "300", "--days", "2", "--format", "iso8583"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    logs = sorted(out.glob("switch-*.iso8583"))
    assert [f.name for f in logs] == ["switch-20151029.iso8583", "switch-20151030.iso8583"]
    assert (out / "institutions.csv").is_file() and (out / "cards.csv").is_file()
    p = subprocess.run([sys.executable, "-m", "txcore", "run", "--rules", str(RULES),
                        "--cards", str(out / "cards.csv"), "--merchants",
                        str(out / "merchants.csv"), "--institutions",
                        str(out / "institutions.csv"), "--state", str(tmp_path / "st"),
                        "-o", str(tmp_path / "o"), "--no-progress", *map(str, logs)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["rows"]["priced"] > 500
    assert summary["rejected_by_reason"]["not_financial"] == 48  # an echo test an hour


def test_the_reference_engine_and_the_compiled_one_agree_on_a_log(days, tmp_path):
    """Priced and reject files alike, the ISO-field details included."""
    folder, logs, _, _ = days
    for backend in ("python", "cython"):
        price(folder, logs[:1], tmp_path / backend, institutions=folder / "institutions.csv",
              backend=backend)
    for kind in ("priced", "rejects"):
        a, b = (pq.read_table(tmp_path / backend / f"{logs[0].stem}.{kind}.parquet")
                for backend in ("python", "cython"))
        assert a.num_rows > 0 and a.equals(b), kind


def test_the_demo_prices_the_bundled_days_as_switch_logs(tmp_path, capfd):
    from txcore.cli import main
    assert main(["demo", "--iso8583", "-o", str(tmp_path)]) == 0
    assert "control totals" in capfd.readouterr().out
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert [i["file"].rsplit("/", 1)[-1] for i in summary["inputs"]] == [
        f"switch-201510{d}.iso8583" for d in (29, 30, 31)] + [
        f"switch-201511{d:02d}.iso8583" for d in (1, 2)]
    rows = summary["rows"]
    assert rows["input"] == rows["priced"] + rows["rejected"] and rows["priced"] > 50_000
    reasons = Counter()
    for f in tmp_path.glob("*.rejects.parquet"):
        reasons.update(pq.read_table(f, columns=["reject_reason"]).column(0).to_pylist())
    assert reasons["not_financial"] == 5 * 24  # the switch's echo tests, every one a row
    assert reasons["not_approved"] > 0
    assert {"withdrawal", "transfer", "purchase", "reversal"} <= set(summary["by_kind"])
