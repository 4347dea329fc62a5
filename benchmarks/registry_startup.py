"""Startup cost of the card registry: load + validate, then the compiled engine built on it.

    python benchmarks/registry_startup.py [RUNS]      (default 3)

Each run is a fresh process (so RSS is its own): it times ``load_cards`` on the
120,000-card benchmark registry and the ``cython`` engine's construction over it, and
reads VmRSS from ``/proc/self/status`` before, after loading and after the engine.
Prints every run and the medians.  Uses the benchmarks' cached data
(``TXCORE_BENCH_DATA``, default ``~/.cache/txcore-bench``; ``test_daily_runs.py``
makes it).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("TXCORE_BENCH_DATA", Path.home() / ".cache" / "txcore-bench"))
REGISTRY = DATA / "members-120000-days-30"


def rss_mib() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def one_run() -> dict:
    from txcore.engine import make_engine
    from txcore.rules.refdata import load_cards, load_merchants
    from txcore.rules.book import load_book
    from txcore.state.memory import State

    book = load_book(REPO / "rules", load_merchants(REGISTRY / "merchants.csv"))
    rss0 = rss_mib()
    t0 = time.perf_counter()
    cards = load_cards(REGISTRY / "cards.csv")
    t1 = time.perf_counter()
    rss1 = rss_mib()
    engine = make_engine("cython", book, cards, State())
    t2 = time.perf_counter()
    rss2 = rss_mib()
    assert len(cards) == len(engine.reg) == 120_000
    return {"load_s": t1 - t0, "engine_s": t2 - t1, "total_s": t2 - t0,
            "rss_before_mib": rss0, "rss_loaded_mib": rss1, "rss_engine_mib": rss2,
            "rss_added_mib": rss2 - rss0}


def main(runs: int):
    results = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, __file__, "--one"], check=True,
                             capture_output=True, text=True).stdout
        results.append(json.loads(out))
        print(" ".join(f"{k}={v:.3f}" for k, v in results[-1].items()))
    print("median " + " ".join(f"{k}={statistics.median(r[k] for r in results):.3f}"
                               for k in results[0]))


if __name__ == "__main__":
    if sys.argv[1:] == ["--one"]:
        print(json.dumps(one_run()))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
