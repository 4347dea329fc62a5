"""The audit report: per month and union unit, it adds up to the run's control totals."""
from __future__ import annotations

import pyarrow.csv as pacsv

from conftest import FIXTURES, RULES
from txcore.cli import main


def test_replay_report_adds_up_and_renders(tmp_path, capfd):
    days = sorted(FIXTURES.glob("txns-*.parquet"))
    out = tmp_path / "out"
    rc = main(["replay", "--rules", str(RULES), "--cards", str(FIXTURES / "cards.csv"),
               "--merchants", str(FIXTURES / "merchants.csv"), "-o", str(out), "--no-progress",
               "--report", *map(str, days)])
    assert rc == 0
    assert "report:" in capfd.readouterr().out
    import json
    summary = json.loads((out / "summary.json").read_text())
    report = pacsv.read_csv(out / "report.csv").to_pylist()
    for money in ("fee_standard", "fee_waived", "fee_charged", "discount"):
        assert sum(r[money] for r in report) == summary["totals"][money]
    assert sum(r["rows"] for r in report) == summary["rows"]["priced"]
    assert {r["month"] for r in report} == {"2015-10", "2015-11"}
    assert all(r["benefit"] == r["fee_waived"] + r["discount"] for r in report)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 2
    assert "临江街道工会" in page and "Benefit to members" in page


def test_report_command_on_priced_files(tmp_path):
    days = sorted(FIXTURES.glob("txns-*.parquet"))[:1]
    out = tmp_path / "out"
    assert main(["replay", "--rules", str(RULES), "--cards", str(FIXTURES / "cards.csv"),
                 "-o", str(out), "--no-progress", *map(str, days)]) == 0
    assert main(["report", "--cards", str(FIXTURES / "cards.csv"), "-o", str(tmp_path / "rep"),
                 *map(str, out.glob("*.priced.parquet"))]) == 0
    rows = pacsv.read_csv(tmp_path / "rep" / "report.csv").to_pylist()
    assert {r["month"] for r in rows} == {"2015-10"}
