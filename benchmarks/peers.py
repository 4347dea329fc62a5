"""The peers a bank engineer would reach for: the default Licheng rules written as
DuckDB SQL (free slots by a ``row_number`` window).  Same inputs, Parquet in and out.

This is a benchmark contender, not a second implementation: it prices the
well-formed rows of the default programme (no rejects, no reversals, no
duplicate handling), which is what such a hand-written query would do.
``benchmarks/test_peers.py`` checks it against the reference engine on the
rows both price, so the timings compare like with like.
"""
from __future__ import annotations

from pathlib import Path

XBANK_TIERS = """CASE WHEN amount <= 200000 THEN 200 WHEN amount <= 500000 THEN 500
                      WHEN amount <= 1000000 THEN 1000 WHEN amount <= 5000000 THEN 1500
                      ELSE least((amount * 3 + 5000) // 10000, 5000) END"""
PCT50_MIN200_MAX5000 = "least(greatest((amount * 50 + 5000) // 10000, 200), 5000)"

FEES = [  # (fee_rule, condition, fee) in schedule order: first match wins
    ("atm-own-local", "kind = 'withdrawal' AND channel = 'atm' AND NOT cross_bank AND same_city",
     "0"),
    ("atm-xbank-local", "kind = 'withdrawal' AND channel = 'atm' AND cross_bank AND same_city",
     "200"),
    ("atm-own-remote",
     "kind = 'withdrawal' AND channel = 'atm' AND NOT cross_bank AND NOT same_city",
     PCT50_MIN200_MAX5000),
    ("atm-xbank-remote", "kind = 'withdrawal' AND channel = 'atm' AND cross_bank AND NOT same_city",
     "least(200 + (amount * 50 + 5000) // 10000, 5200)"),
    ("counter-withdrawal", "kind = 'withdrawal' AND channel = 'counter'", "0"),
    ("online-own", "kind = 'transfer' AND channel = 'online' AND NOT cross_bank", "0"),
    ("online-xbank", "kind = 'transfer' AND channel = 'online' AND cross_bank", XBANK_TIERS),
    ("mobile", "kind = 'transfer' AND channel = 'mobile'", "0"),
    ("selfservice-own", "kind = 'transfer' AND channel = 'self_service' AND NOT cross_bank", "0"),
    ("selfservice-xbank", "kind = 'transfer' AND channel = 'self_service' AND cross_bank",
     PCT50_MIN200_MAX5000),
    ("counter-own", "kind = 'transfer' AND channel = 'counter' AND NOT cross_bank", "0"),
    ("counter-xbank", "kind = 'transfer' AND channel = 'counter' AND cross_bank", XBANK_TIERS),
    ("issuance", "kind = 'service' AND fee_item = 'issuance'", "500"),
    ("loss-report", "kind = 'service' AND fee_item = 'loss_report'", "1000"),
    ("annual", "kind = 'service' AND fee_item = 'annual'", "1000"),
    ("small-account", "kind = 'service' AND fee_item = 'small_account' AND amount < 30000", "100"),
]
QUOTA_ROW = "member AND kind = 'withdrawal' AND channel = 'atm' AND cross_bank AND same_city"
WAIVERS = [  # (waiver_rule, condition); the quota waiver is the first
    ("member-atm-3-free", "kind = 'withdrawal' AND channel = 'atm' AND cross_bank AND same_city"),
    ("member-online-xbank-local", "kind = 'transfer' AND channel = 'online' AND cross_bank "
                                  "AND same_city"),
    ("member-self-service", "kind = 'transfer' AND channel = 'self_service'"),
    ("member-service-fees", "kind = 'service' AND fee_item IN ('issuance', 'loss_report', "
                            "'annual', 'small_account')"),
]


def _case(pairs, else_="NULL"):
    return "CASE " + " ".join(f"WHEN {c} THEN {v}" for c, v in pairs) + f" ELSE {else_} END"


def duckdb_sql(inputs: list[str], cards: str, merchants: str, output: str) -> str:
    files = "[" + ", ".join(f"'{f}'" for f in inputs) + "]"
    fee_rule = _case([(c, f"'{r}'") for r, c, _ in FEES])
    fee = _case([(c, v) for _, c, v in FEES], "0")
    waiver_rule = _case([(f"member AND {c}", f"'{r}'") for r, c in WAIVERS])
    return f"""
COPY (
WITH cards AS (
  SELECT card_no, issuer, home_city, TRY_CAST(member_from AS DATE) AS member_from,
         TRY_CAST(member_to AS DATE) AS member_to
  FROM read_csv('{cards}', all_varchar = true)),
merchants AS (
  SELECT merchant_id, CAST(discount_bp AS BIGINT) AS bp, CAST(cap AS BIGINT) AS cap,
         CAST(coalesce(min_spend, '0') AS BIGINT) AS min_spend,
         CAST(valid_from AS DATE) AS valid_from, TRY_CAST(valid_to AS DATE) AS valid_to
  FROM read_csv('{merchants}', all_varchar = true)),
t AS (
  SELECT x.*, c.issuer, c.home_city, c.member_from, c.member_to,
         CAST(timezone('Asia/Shanghai', x.ts) AS DATE) AS local_date
  FROM read_parquet({files}, filename = true, file_row_number = true) x
  JOIN cards c USING (card_no)
  WHERE x.kind IN ('withdrawal', 'transfer', 'purchase', 'disbursement', 'service')),
d AS (
  SELECT *,
    kind IN ('withdrawal', 'transfer') AND acq_bank <> issuer AS cross_bank,
    kind IN ('withdrawal', 'transfer') AND city = home_city AS same_city,
    coalesce(member_from <= local_date AND (member_to IS NULL OR local_date <= member_to),
             false) AS member
  FROM t),
f AS (
  SELECT *, {fee_rule} AS fee_rule,
         CASE WHEN kind = 'disbursement' THEN 0 ELSE {fee} END AS fee_standard,
         CASE WHEN kind = 'disbursement' THEN NULL ELSE {waiver_rule} END AS waiver_rule,
         CASE WHEN {QUOTA_ROW} THEN row_number() OVER (
             PARTITION BY card_no, date_trunc('month', local_date), {QUOTA_ROW}
             ORDER BY filename, file_row_number) END AS quota_n
  FROM d)
SELECT f.* EXCLUDE (issuer, home_city, member_from, member_to, local_date, quota_n, filename,
                    file_row_number),
  CASE WHEN waiver_rule IS NULL THEN 0
       WHEN waiver_rule = 'member-atm-3-free' AND quota_n > 3 THEN 0
       ELSE fee_standard END AS fee_waived,
  CASE WHEN quota_n <= 3 THEN quota_n ELSE 0 END::SMALLINT AS free_slot,
  CASE WHEN f.member AND f.kind = 'purchase' AND m.merchant_id IS NOT NULL THEN
       CASE WHEN f.amount < m.min_spend THEN 0
            WHEN m.cap > 0 THEN least((f.amount * m.bp + 5000) // 10000, m.cap)
            ELSE (f.amount * m.bp + 5000) // 10000 END
       ELSE 0 END AS discount,
  CASE WHEN f.member AND f.kind = 'purchase' AND m.merchant_id IS NOT NULL
       THEN 'merchant:' || m.merchant_id END AS discount_rule,
  'licheng-2013' AS ruleset
FROM f LEFT JOIN merchants m
  ON f.kind = 'purchase' AND f.merchant_id = m.merchant_id
 AND f.local_date >= m.valid_from AND (m.valid_to IS NULL OR f.local_date <= m.valid_to)
ORDER BY filename, file_row_number
) TO '{output}' (FORMAT parquet, COMPRESSION zstd)
"""


def run_duckdb(inputs, cards, merchants, output, threads: int = 1):
    import duckdb
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute(duckdb_sql([str(Path(i)) for i in inputs], str(cards), str(merchants),
                           str(output)))
    con.close()
