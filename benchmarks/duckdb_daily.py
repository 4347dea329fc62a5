"""The DuckDB daily peer: one day's job against a persistent ``.duckdb`` file.

What a bank engineer would write instead of txcore's state folder: the taken txn ids
and the free-slot counters as two tables of one database file; per day one SQL job —
the day's rows priced by the peer query of ``peers.py``, its duplicates found by an
anti-join against the taken ids, its fresh ids inserted, its free slots upserted into
the counters, ids older than the retention window deleted, a checkpoint.  Ids and
cards are stored as 64-bit hashes (spread over the whole id range, as txcore's keyed
digests are, so DuckDB cannot skip the id table by its min/max statistics).

Run as a script (one process per day, so its peak RSS is the day's):
``python benchmarks/duckdb_daily.py DB DAY.parquet CARDS MERCHANTS OUT.parquet RETENTION``
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import duckdb_sql  # noqa: E402


def run_day(db: str, day: str, cards: str, merchants: str, out: str, retention: int,
            threads: int = 1) -> dict:
    import duckdb
    con = duckdb.connect(db)
    con.execute(f"SET threads = {threads}")
    con.execute("CREATE TABLE IF NOT EXISTS taken (id UBIGINT, day DATE)")
    con.execute("CREATE TABLE IF NOT EXISTS counters (card UBIGINT, waiver VARCHAR, "
                "month DATE, used INTEGER, PRIMARY KEY (card, waiver, month))")
    con.execute(f"""CREATE TEMP TABLE d AS
        SELECT hash(txn_id) AS id, CAST(timezone('Asia/Shanghai', ts) AS DATE) AS day
        FROM read_parquet('{day}') WHERE txn_id IS NOT NULL""")
    duplicates = con.execute("SELECT count(*) FROM d SEMI JOIN taken USING (id)").fetchone()[0]
    con.execute(duckdb_sql([day], cards, merchants, out))  # price the day
    con.execute("INSERT INTO taken SELECT id, any_value(day) FROM d ANTI JOIN taken USING (id) "
                "GROUP BY id")
    con.execute(f"""INSERT INTO counters
        SELECT hash(card_no), waiver_rule,
               CAST(date_trunc('month', timezone('Asia/Shanghai', ts)) AS DATE), count(*)
        FROM read_parquet('{out}') WHERE free_slot > 0 GROUP BY ALL
        ON CONFLICT DO UPDATE SET used = least(counters.used + excluded.used, 3)""")
    con.execute(f"DELETE FROM taken WHERE day < (SELECT max(day) FROM taken) - "
                f"INTERVAL {int(retention)} DAY")
    con.execute("CHECKPOINT")
    taken = con.execute("SELECT count(*) FROM taken").fetchone()[0]
    counters = con.execute("SELECT count(*) FROM counters").fetchone()[0]
    con.close()
    return {"duplicates": duplicates, "taken": taken, "counters": counters}


if __name__ == "__main__":
    import json
    db, day, cards, merchants, out, retention = sys.argv[1:7]
    print(json.dumps(run_day(db, day, cards, merchants, out, int(retention))))
