"""The programme report on a year of the fixtures' full programme (issue 15, item 4).

A year of priced files (120,000 members, 365 daily files from 2014-10-02; made by
``txcore fixtures`` and priced by ``txcore replay`` once, cached in
``$TXCORE_BENCH_DATA``, default ``~/.cache/txcore-bench``).  Each round runs
``txcore report`` in a child process over the first half of the year and over the
whole year, and reports the seconds and the child's peak RSS (VmHWM): the memory
should not grow with the number of files (one row group at a time, running sums).

    TXCORE_BENCH_RATE [0.1]  transactions per card per day (0.1: ~5 M priced rows a year)
    TXCORE_BENCH_ROUNDS [3]

Run: ``pytest benchmarks/test_report.py -p no:cacheprovider -s``
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("TXCORE_BENCH_DATA", Path.home() / ".cache" / "txcore-bench"))
RATE = os.environ.get("TXCORE_BENCH_RATE", "0.1")
ROUNDS = int(os.environ.get("TXCORE_BENCH_ROUNDS", 3))
RESULTS: dict = {}

CHILD = """
import json, resource, sys, time
from txcore.audit.report import build_report
files = json.loads(sys.argv[1])
t = time.perf_counter()
result = build_report(files, sys.argv[2], sys.argv[3])
seconds = time.perf_counter() - t
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
use = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": seconds, "cpu_seconds": use.ru_utime + use.ru_stime,
                  "rows": result["rows"], "peak_rss_mib": hwm / 1024}))
"""


@pytest.fixture(scope="session")
def year():
    """``(cards.csv, [priced files])`` of a year of the full programme."""
    data = DATA / f"report-year-rate-{RATE}"
    priced = data / "priced"
    if not (priced / "summary.json").exists():
        subprocess.run([sys.executable, "-m", "txcore", "fixtures", "-o", str(data / "fx"),
                        "--members", "120000", "--days", "365", "--start", "2014-10-02",
                        "--rate", RATE, "--seed", "15"], check=True, stdout=subprocess.DEVNULL)
        days = sorted(str(p) for p in (data / "fx").glob("txns-*.parquet"))
        subprocess.run([sys.executable, "-m", "txcore", "replay", "--rules", str(REPO / "rules"),
                        "--cards", str(data / "fx" / "cards.csv"),
                        "--merchants", str(data / "fx" / "merchants.csv"), "-o", str(priced),
                        "--no-progress", *days], check=True, stdout=subprocess.DEVNULL)
    return data / "fx" / "cards.csv", sorted(priced.glob("*.priced.parquet"))


@pytest.mark.parametrize("share", ["half", "year"])
def test_report_on_a_year(benchmark, year, share, tmp_path):
    cards, files = year
    files = files[: len(files) // 2] if share == "half" else files
    runs = []

    def once():
        out = subprocess.run([sys.executable, "-c", CHILD, json.dumps([str(f) for f in files]),
                              str(cards), str(tmp_path / "report")],
                             check=True, capture_output=True, text=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))

    benchmark.pedantic(once, rounds=ROUNDS, iterations=1)
    seconds = statistics.median(r["seconds"] for r in runs)
    cpu = statistics.median(r["cpu_seconds"] for r in runs)
    rss = max(r["peak_rss_mib"] for r in runs)
    RESULTS[share] = (len(files), runs[0]["rows"], seconds, cpu, rss)
    benchmark.extra_info.update(files=len(files), rows=runs[0]["rows"], seconds=seconds,
                                cpu_seconds=cpu, peak_rss_mib=round(rss))
    assert runs[0]["rows"] > 0


def teardown_module(module):
    if RESULTS:
        print(f"\n\nmedian of {ROUNDS}; wall and CPU seconds of the child (interpreter start-up "
              "and imports included in CPU); peak RSS of the child")
        print("| period | files | priced rows | seconds | CPU seconds | rows/s | peak RSS MiB |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for share, (files, rows, seconds, cpu, rss) in RESULTS.items():
            print(f"| {share} | {files} | {rows:,} | {seconds:.2f} | {cpu:.2f} "
                  f"| {rows / seconds / 1e6:.2f} M | {rss:.0f} |")
