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


# ------------------------------------------------------------------------- Polars

def polars_query(inputs, cards, merchants):
    """The same rules as Polars lazy expressions (free slots by ``int_range().over``)."""
    import polars as pl

    c = pl.col
    card_table = pl.read_csv(cards, infer_schema=False).select(
        "card_no", "issuer", "home_city",
        c.member_from.str.to_date(strict=False), c.member_to.str.to_date(strict=False))
    merchant_table = pl.read_csv(merchants, infer_schema=False).select(
        "merchant_id", c.discount_bp.cast(pl.Int64).alias("bp"), c.cap.cast(pl.Int64),
        c.min_spend.fill_null("0").cast(pl.Int64), c.valid_from.str.to_date(),
        c.valid_to.str.to_date(strict=False))
    kind, channel, amount = c.kind, c.channel, c.amount

    def is_(col, value):
        return col == value

    w_atm = is_(kind, "withdrawal") & is_(channel, "atm")
    tr = is_(kind, "transfer")
    xbank_tiers = (pl.when(amount <= 200000).then(200).when(amount <= 500000).then(500)
                   .when(amount <= 1000000).then(1000).when(amount <= 5000000).then(1500)
                   .otherwise(pl.min_horizontal((amount * 3 + 5000) // 10000, 5000)))
    pct50 = pl.min_horizontal(pl.max_horizontal((amount * 50 + 5000) // 10000, 200), 5000)
    cross, same = c.cross_bank, c.same_city
    fees = [
        ("atm-own-local", w_atm & ~cross & same, pl.lit(0)),
        ("atm-xbank-local", w_atm & cross & same, pl.lit(200)),
        ("atm-own-remote", w_atm & ~cross & ~same, pct50),
        ("atm-xbank-remote", w_atm & cross & ~same,
         pl.min_horizontal(200 + (amount * 50 + 5000) // 10000, 5200)),
        ("counter-withdrawal", is_(kind, "withdrawal") & is_(channel, "counter"), pl.lit(0)),
        ("online-own", tr & is_(channel, "online") & ~cross, pl.lit(0)),
        ("online-xbank", tr & is_(channel, "online") & cross, xbank_tiers),
        ("mobile", tr & is_(channel, "mobile"), pl.lit(0)),
        ("selfservice-own", tr & is_(channel, "self_service") & ~cross, pl.lit(0)),
        ("selfservice-xbank", tr & is_(channel, "self_service") & cross, pct50),
        ("counter-own", tr & is_(channel, "counter") & ~cross, pl.lit(0)),
        ("counter-xbank", tr & is_(channel, "counter") & cross, xbank_tiers),
        ("issuance", is_(kind, "service") & is_(c.fee_item, "issuance"), pl.lit(500)),
        ("loss-report", is_(kind, "service") & is_(c.fee_item, "loss_report"), pl.lit(1000)),
        ("annual", is_(kind, "service") & is_(c.fee_item, "annual"), pl.lit(1000)),
        ("small-account", is_(kind, "service") & is_(c.fee_item, "small_account")
         & (amount < 30000), pl.lit(100)),
    ]
    quota = c.member & w_atm & cross & same
    waivers = [
        ("member-atm-3-free", w_atm & cross & same),
        ("member-online-xbank-local", tr & is_(channel, "online") & cross & same),
        ("member-self-service", tr & is_(channel, "self_service")),
        ("member-service-fees", is_(kind, "service") & c.fee_item.is_in(
            ["issuance", "loss_report", "annual", "small_account"])),
    ]

    def first(pairs, otherwise):
        expr = pl.when(pairs[0][0]).then(pairs[0][1])
        for cond, value in pairs[1:]:
            expr = expr.when(cond).then(value)
        return expr.otherwise(otherwise)

    local_date = c.ts.dt.convert_time_zone("Asia/Shanghai").dt.date()
    counterparty = kind.is_in(["withdrawal", "transfer"])
    lf = (pl.scan_parquet([str(i) for i in inputs])
          .filter(kind.is_in(["withdrawal", "transfer", "purchase", "disbursement", "service"]))
          .join(card_table.lazy(), on="card_no", how="inner", maintain_order="left")
          .with_columns(local_date=local_date)
          .with_columns(
              cross_bank=(counterparty & (c.acq_bank != c.issuer)).fill_null(False),
              same_city=(counterparty & (c.city == c.home_city)).fill_null(False),
              member=(c.member_from.is_not_null() & (c.member_from <= c.local_date)
                      & (c.member_to.is_null() | (c.local_date <= c.member_to))).fill_null(False))
          .with_columns(
              fee_rule=pl.when(is_(kind, "disbursement")).then(None).otherwise(
                  first([(cond, pl.lit(r)) for r, cond, _ in fees], None)),
              fee_standard=pl.when(is_(kind, "disbursement")).then(0).otherwise(
                  first([(cond, v) for _, cond, v in fees], 0)).cast(pl.Int64),
              waiver_rule=pl.when(is_(kind, "disbursement") | ~c.member).then(None).otherwise(
                  first([(cond, pl.lit(r)) for r, cond in waivers], None)),
              quota_n=pl.when(quota).then(pl.int_range(1, pl.len() + 1).over(
                  ["card_no", c.local_date.dt.month_start(), quota])))
          .with_columns(
              fee_waived=pl.when(c.waiver_rule.is_null()).then(0)
              .when((c.waiver_rule == "member-atm-3-free") & (c.quota_n > 3)).then(0)
              .otherwise(c.fee_standard),
              free_slot=pl.when(c.quota_n <= 3).then(c.quota_n).otherwise(0).cast(pl.Int16))
          .join(merchant_table.lazy(), on="merchant_id", how="left", maintain_order="left")
          .with_columns(partner=(is_(kind, "purchase") & c.member & c.bp.is_not_null()
                                 & (c.valid_from <= c.local_date)
                                 & (c.valid_to.is_null() | (c.local_date <= c.valid_to))
                                 ).fill_null(False))
          .with_columns(
              discount=pl.when(~c.partner | (amount < c.min_spend)).then(0)
              .when(c.cap > 0).then(pl.min_horizontal((amount * c.bp + 5000) // 10000, c.cap))
              .otherwise((amount * c.bp + 5000) // 10000),
              discount_rule=pl.when(c.partner).then(pl.lit("merchant:") + c.merchant_id),
              fee_charged=c.fee_standard - c.fee_waived, ruleset=pl.lit("licheng-2013"))
          .drop("issuer", "home_city", "member_from", "member_to", "local_date", "quota_n",
                "bp", "cap", "min_spend", "valid_from", "valid_to", "partner"))
    return lf


def run_polars(inputs, cards, merchants, output):
    polars_query(inputs, cards, merchants).sink_parquet(str(output), compression="zstd")
