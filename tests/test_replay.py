"""Audit replay (docs/audit.md#txcore-replay): re-pricing, the digest, --compare, snapshots, rule changes."""
from __future__ import annotations

import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import txcore
from conftest import FIXTURES, RULES
from txcore.cli import main
from txcore.io.digest import run_digest
from txcore.audit.replay import replay

DAYS = sorted(FIXTURES.glob("txns-*.parquet"))
REF = dict(rules=RULES, cards=FIXTURES / "cards.csv", merchants=FIXTURES / "merchants.csv",
           progress=False)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    out = tmp_path_factory.mktemp("replayed")
    return out, replay(DAYS[:3], out_dir=out, **REF)


def test_replay_equals_the_daily_runs(replayed, tmp_path):
    out, summary = replayed
    for i, day in enumerate(DAYS[:3]):
        s = txcore.run([day], out_dir=tmp_path / str(i), state_dir=tmp_path / "state", **REF)
        assert s["inputs"][0]["digest"] == summary["inputs"][i]["digest"]
        name = f"{day.stem}.priced.parquet"
        assert pq.read_table(tmp_path / str(i) / name).equals(pq.read_table(out / name))


def test_the_digest_is_the_same_for_any_batch_size_and_split(replayed, tmp_path):
    _, summary = replayed
    small = replay(DAYS[:3], out_dir=tmp_path / "small", batch_size=777, **REF)
    assert small["digest"] == summary["digest"]
    # split into days, the state carried through a state folder
    digests = [txcore.run([d], out_dir=tmp_path / f"d{i}", state_dir=tmp_path / "st",
                          **REF)["inputs"][0]["digest"] for i, d in enumerate(DAYS[:3])]
    assert run_digest(digests) == summary["digest"]
    # and it changes when a priced value does
    other = replay(DAYS[1:3], out_dir=tmp_path / "other", **REF)
    assert other["inputs"][0]["digest"] != summary["inputs"][1]["digest"]  # no day-1 history


def test_compare_names_a_one_fen_difference_and_exits_1(replayed, tmp_path, capfd):
    out, _ = replayed
    recorded = tmp_path / "recorded"
    recorded.mkdir()
    for day in DAYS[:3]:
        shutil.copy(out / f"{day.stem}.priced.parquet", recorded)
    assert main(["replay", "--rules", str(RULES), "--cards", str(FIXTURES / "cards.csv"),
                 "--merchants", str(FIXTURES / "merchants.csv"), "-o", str(tmp_path / "same"),
                 "--no-progress", "--compare", str(recorded), *map(str, DAYS[:3])]) == 0
    assert "no differences" in capfd.readouterr().out
    victim = recorded / f"{DAYS[1].stem}.priced.parquet"
    t = pq.read_table(victim)
    charged = t["fee_charged"].to_pylist()
    row = next(i for i, v in enumerate(charged) if v > 0)
    charged[row] += 1
    pq.write_table(t.set_column(t.schema.get_field_index("fee_charged"), "fee_charged",
                                pa.array(charged, pa.int64())), victim)
    txn = t["txn_id"][row].as_py()
    rc = main(["replay", "--rules", str(RULES), "--cards", str(FIXTURES / "cards.csv"),
               "--merchants", str(FIXTURES / "merchants.csv"), "-o", str(tmp_path / "diff"),
               "--no-progress", "--compare", str(recorded), *map(str, DAYS[:3])])
    assert rc == 1
    assert "1 rows differ in 1 cells" in capfd.readouterr().out
    diff = pq.read_table(tmp_path / "diff" / "diff.parquet").to_pylist()
    assert diff == [{"txn_id": txn, "column": "fee_charged", "recorded": str(charged[row]),
                     "replayed": str(charged[row] - 1), "fee_rule": t["fee_rule"][row].as_py()}]


def test_compare_reports_rows_missing_on_either_side(replayed, tmp_path):
    out, _ = replayed
    recorded = pq.read_table(out / f"{DAYS[0].stem}.priced.parquet").slice(1)  # first row lost
    pq.write_table(recorded, tmp_path / "rec.priced.parquet")
    s = replay(DAYS[:1], out_dir=tmp_path / "o", compare=tmp_path / "rec.priced.parquet", **REF)
    assert s["compare"]["by_column"] == {"(row)": 1}


def test_replay_from_a_snapshot_touches_no_live_state(tmp_path):
    state = tmp_path / "state"
    txcore.run(DAYS[:1], out_dir=tmp_path / "o1", state_dir=state, **REF)
    before = {p.name: p.read_bytes() for p in state.iterdir()}
    s = replay(DAYS[1:2], out_dir=tmp_path / "r", snapshot=state, **REF)
    assert {p.name: p.read_bytes() for p in state.iterdir()} == before
    live = txcore.run(DAYS[1:2], out_dir=tmp_path / "o2", state_dir=state, **REF)
    assert s["inputs"][0]["digest"] == live["inputs"][0]["digest"]  # the snapshot's history


def two_versions(folder, version_id: str, effective: str):
    """The default rules plus a later version charging 3 yuan for atm-xbank-local."""
    shutil.copytree(RULES, folder)
    text = (RULES / "licheng-2013.toml").read_text()
    changed = (text.replace('id = "licheng-2013"', f'id = "{version_id}"')
               .replace("effective_from = 2013-09-01", f"effective_from = {effective}")
               .replace('fixed = 200\n\n[[fee]]\nid = "atm-own-remote"',
                        'fixed = 300\n\n[[fee]]\nid = "atm-own-remote"'))
    assert changed.count("fixed = 300") == 1
    (folder / f"{version_id}.toml").write_text(changed)
    return folder


def test_replay_across_a_rule_change(tmp_path):
    rules = two_versions(tmp_path / "rules", "licheng-2015-11", "2015-11-01")
    s = replay(DAYS, out_dir=tmp_path / "o", **{**REF, "rules": rules})
    assert set(s["rulesets"]) == {"licheng-2013", "licheng-2015-11"}
    rows = pa.concat_tables([pq.read_table(tmp_path / "o" / f"{d.stem}.priced.parquet")
                             for d in DAYS]).to_pylist()
    xbank = [r for r in rows if r["fee_rule"] == "atm-xbank-local" and r["kind"] == "withdrawal"]
    assert {r["fee_standard"] for r in xbank if r["ruleset"] == "licheng-2013"} == {200}
    assert {r["fee_standard"] for r in xbank if r["ruleset"] == "licheng-2015-11"} == {300}


def test_two_years_of_history_replayed_equal_the_daily_runs(tmp_path):
    """731 daily runs with state from the programme's start == one replay of them all."""
    import datetime as dt

    from txcore.fixtures import make_fixtures

    files = make_fixtures(tmp_path / "fx", members=120, days=731, seed=3,
                          start=dt.date(2013, 9, 1), rate=0.6)
    cards, merchants, days = files[0], files[1], files[2:]
    rules = two_versions(tmp_path / "rules", "licheng-2014-09", "2014-09-01")
    ref = dict(rules=rules, cards=cards, merchants=merchants, progress=False)
    daily = [txcore.run([d], out_dir=tmp_path / "daily", state_dir=tmp_path / "state", **ref)
             for d in days]
    whole = replay(days, out_dir=tmp_path / "replay", **ref)
    assert [s["inputs"][0]["digest"] for s in daily] == [i["digest"] for i in whole["inputs"]]
    assert whole["digest"] == run_digest([s["inputs"][0]["digest"] for s in daily])
    assert whole["rows"]["priced"] == sum(s["rows"]["priced"] for s in daily) > 20000
    for d in days[::30]:
        name = f"{d.stem}.priced.parquet"
        assert pq.read_table(tmp_path / "daily" / name).equals(
            pq.read_table(tmp_path / "replay" / name))
    assert {r for s in daily for r in s["rulesets"]} == {"licheng-2013", "licheng-2014-09"}
