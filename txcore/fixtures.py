"""Synthetic data shaped by the Licheng 2013 notice (docs/cli.md#txcore-fixtures), vectorised with numpy.

``make_fixtures`` writes ``cards.csv``, ``merchants.csv`` and one transaction
file per day (``txns-YYYY-MM-DD.parquet`` or ``.csv``).  Everything is drawn
from ``numpy.random.default_rng`` seeded by ``seed`` (per day: ``[seed, day]``),
so the same arguments give the same data.  No per-row Python loops: 10 million
rows take seconds.

What it models:

* members in the district's 8 sub-district unions (临江, 鲤中, 江南, 金龙 issued
  by CMB; 海滨, 开元, 浮桥, 常泰 by CIB) and its system unions (education by CIB,
  the rest by CMB), home city Quanzhou (350500);
* the rollout timetable: the medical mutual-aid members (25,000 of 120,000)
  by 2013-12-31, key enterprises by 2014-03-01, enterprises over 50 staff by
  2014-10-01, everyone by 2015-10-01; ``member_from`` is the issue date, a few
  members leave (``member_to``) and a few registry cards never were members;
* withdrawals, transfers and purchases over both issuers and other banks,
  mostly in Quanzhou; partner merchants with discounts; medical-aid
  disbursements (from 2013-10-01) to the mutual-aid members; issuance fees on
  issue days; month-end small-account assessments; reversals; and a few
  malformed rows of every kind of fault.
"""
from __future__ import annotations

import calendar
import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from txcore import programme
from txcore.vocab import INPUT_COLUMNS as COLUMNS, KINDS

HOME_CITY = "350500"  # Quanzhou
UNITS = [(u.name, u.issuer, u.weight) for u in programme.UNITS]  # (name, issuer, share)
BIN = {"CMB": ("621485", 9), "CIB": ("622909", 12)}  # prefix, account digits (16 / 19 total)
OTHER_BANKS = ["ICBC", "ABC", "BOC", "CCB", "BOCOM", "PSBC", "FJRCU"]
CITIES = ["350500", "350200", "350100", "350600", "110100", "310100", "440300"]
CITY_P = [0.80, 0.10, 0.05, 0.02, 0.01, 0.01, 0.01]
MCCS = ["5411", "5812", "5912", "4111", "5311", "5541", "5999", "7011", "8062", "5732"]
MERCHANT_KINDS = ["超市", "药房", "餐厅", "书店", "家电", "加油站", "酒店", "医院", "百货", "眼镜"]
# rollout timetable: (share of members, first issue date, last issue date)
ROLLOUT = [(25000 / 120000, dt.date(2013, 9, 1), dt.date(2013, 12, 31)),
           (0.25, dt.date(2014, 1, 1), dt.date(2014, 3, 1)),
           (0.30, dt.date(2014, 3, 2), dt.date(2014, 10, 1)),
           (None, dt.date(2014, 10, 2), dt.date(2015, 10, 1))]
DISBURSEMENTS_FROM = programme.MEDICAL_AID_FROM
TZ_OFFSET_US = 8 * 3600 * 1_000_000  # Asia/Shanghai has no DST since 1991
KIND_P = [0.25, 0.22, 0.505, 0.01, 0.01, 0.005]
DEFAULT_START = dt.date(2015, 10, 29)


def _luhn_digit(digits: np.ndarray) -> np.ndarray:
    """Check digit making each row of ``digits`` (n x L, most significant first) Luhn-valid."""
    rev = digits[:, ::-1].astype(np.int64)
    doubled = rev[:, 0::2] * 2  # positions 1, 3, ... from the right once the check digit is on
    doubled = np.where(doubled > 9, doubled - 9, doubled)
    total = doubled.sum(axis=1) + rev[:, 1::2].sum(axis=1)
    return (10 - total % 10) % 10


def card_numbers(issuers: np.ndarray, serial: np.ndarray) -> np.ndarray:
    """Luhn-valid card numbers: issuer BIN + account number (a permutation of serial) + check."""
    out = np.empty(len(serial), dtype=object)
    for issuer, (prefix, width) in BIN.items():
        sel = issuers == issuer
        modulus = 9 * 10 ** (width - 1)
        account = 10 ** (width - 1) + (serial[sel].astype(np.int64) * 7919) % modulus
        digits = np.column_stack(
            [np.full((sel.sum(), len(prefix)), [int(c) for c in prefix])]
            + [(account // 10 ** p) % 10 for p in range(width - 1, -1, -1)])
        check = _luhn_digit(digits)
        body = np.char.add(prefix, account.astype(str))
        out[sel] = np.char.add(body, check.astype(str))
    return out


def _days(a: dt.date, b: dt.date) -> int:
    return (b - a).days


def make_cards(members: int, rng: np.random.Generator) -> pa.Table:
    shares = np.array([u[2] for u in UNITS], dtype=float)
    unit_idx = rng.choice(len(UNITS), size=members, p=shares / shares.sum())
    issuers = np.array([u[1] for u in UNITS])[unit_idx]
    issue = np.empty(members, dtype="datetime64[D]")
    start = 0
    for share, first, last in ROLLOUT:
        n = members - start if share is None else int(round(members * share))
        span = _days(first, last) + 1
        issue[start:start + n] = np.datetime64(first) + rng.integers(0, span, n)
        start += n
    member_from = issue.astype(str).astype(object)
    leavers = rng.random(members) < 0.015
    member_to = np.full(members, None, dtype=object)
    leave_day = issue[leavers] + rng.integers(30, 900, leavers.sum())
    member_to[leavers] = leave_day.astype(str)
    never = rng.random(members) < 0.005
    member_from[never] = None
    member_to[never] = None
    cards = card_numbers(issuers, np.arange(members))
    return pa.table({
        "card_no": pa.array(cards, pa.string()),
        "member_id": pa.array(_numbered("M", np.arange(1, members + 1), 7),
                              pa.string()),
        "unit": pa.array(np.array([u[0] for u in UNITS])[unit_idx], pa.string()),
        "issuer": pa.array(issuers, pa.string()),
        "home_city": pa.array(np.full(members, HOME_CITY), pa.string()),
        "member_from": pa.array(member_from, pa.string()),
        "member_to": pa.array(member_to, pa.string()),
    }), issue, unit_idx


def make_merchants(members: int, rng: np.random.Generator) -> pa.Table:
    n = int(min(400, max(40, members // 100)))
    ids = _numbered("QZ", np.arange(1, n + 1), 6).astype(str)
    kinds = np.array(MERCHANT_KINDS)[rng.integers(0, len(MERCHANT_KINDS), n)]
    names = np.char.add(_numbered("泉州", np.arange(1, n + 1), 3).astype(str), kinds)
    valid_from = np.datetime64("2013-09-01") + rng.integers(0, 700, n)
    ends = valid_from + rng.integers(60, 900, n)
    open_ended = rng.random(n) < 0.8
    valid_to = np.where(open_ended, None, ends.astype(str).astype(object))
    return pa.table({
        "merchant_id": pa.array(ids, pa.string()),
        "name": pa.array(names, pa.string()),
        "discount_bp": pa.array(rng.choice([200, 300, 500, 800, 1000, 1500], n), pa.int64()),
        "cap": pa.array(rng.choice([0, 0, 2000, 5000, 10000], n), pa.int64()),
        "min_spend": pa.array(rng.choice([0, 0, 0, 5000, 10000], n), pa.int64()),
        "valid_from": pa.array(valid_from.astype(str), pa.string()),
        "valid_to": pa.array(valid_to, pa.string()),
    })


def _numbered(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """``prefix`` + zero-padded numbers, as an object array (empty in, empty out)."""
    if len(numbers) == 0:
        return np.empty(0, dtype=object)
    return np.char.add(prefix, np.char.zfill(numbers.astype(str), width)).astype(object)


def _pick(rng, options, p, n) -> np.ndarray:
    return np.array(options, dtype=object)[rng.choice(len(options), size=n, p=p)]


def make_day(day: dt.date, day_no: int, cards: pa.Table, issue: np.ndarray, unit_idx,
             merchant_ids: np.ndarray, rate: float, seed: int, prev_ids=None) -> pa.Table:
    """One day's transactions, in posting (time) order."""
    rng = np.random.default_rng([seed, day_no])
    card_no = np.asarray(cards.column("card_no").to_numpy(zero_copy_only=False), dtype=object)
    issuers = np.asarray(cards.column("issuer").to_numpy(zero_copy_only=False), dtype=object)
    d64 = np.datetime64(day)
    active = np.flatnonzero(issue <= d64)
    counts = rng.poisson(rate, len(active))
    who = np.repeat(active, counts)
    n = len(who)
    kind = _pick(rng, KINDS, KIND_P, n)
    # disbursements only to the medical mutual-aid cohort, and only from 2013-10-01
    mutual_aid_cutoff = int(round(len(card_no) * ROLLOUT[0][0]))
    bad_disb = (kind == "disbursement") & ((who >= mutual_aid_cutoff) | (day < DISBURSEMENTS_FROM))
    kind[bad_disb] = "purchase"
    none = np.full(n, None, dtype=object)
    channel, acq_bank, city = none.copy(), none.copy(), none.copy()
    merchant, mcc, fee_item, benefit = none.copy(), none.copy(), none.copy(), none.copy()
    amount = np.zeros(n, dtype=np.int64)

    w = kind == "withdrawal"
    channel[w] = _pick(rng, ["atm", "counter"], [0.9, 0.1], w.sum())
    amount[w] = rng.choice([10000, 20000, 30000, 50000, 100000, 200000, 300000], w.sum(),
                           p=[0.15, 0.2, 0.15, 0.2, 0.2, 0.07, 0.03])
    t = kind == "transfer"
    channel[t] = _pick(rng, ["online", "mobile", "self_service", "counter"],
                       [0.35, 0.35, 0.15, 0.15], t.sum())
    amount[t] = np.clip(rng.lognormal(np.log(100000), 1.4, t.sum()), 100, 9_000_000).astype(np.int64)
    wt = w | t
    own = rng.random(n)
    other_partner = np.where(issuers[who] == "CMB", "CIB", "CMB")
    bank = np.where(own < 0.5, issuers[who], np.where(own < 0.7, other_partner,
                    np.array(OTHER_BANKS, dtype=object)[rng.integers(0, len(OTHER_BANKS), n)]))
    acq_bank[wt] = bank[wt]
    city[wt] = _pick(rng, CITIES, CITY_P, wt.sum())
    p = kind == "purchase"
    channel[p] = "pos"
    partner = rng.random(n) < 0.35
    merchant[p & partner] = merchant_ids[rng.integers(0, len(merchant_ids), (p & partner).sum())]
    merchant[p & ~partner] = _numbered("NP", rng.integers(1, 50000, (p & ~partner).sum()), 6)
    mcc[p] = _pick(rng, MCCS, None, p.sum())
    amount[p] = np.clip(rng.lognormal(np.log(8000), 1.1, p.sum()), 100, 5_000_000).astype(np.int64)
    db = kind == "disbursement"
    benefit[db] = _pick(rng, ["medical_aid", "hardship", "school_aid"], [0.8, 0.1, 0.1], db.sum())
    amount[db] = rng.integers(20, 5000, db.sum()) * 100
    s = kind == "service"
    fee_item[s] = _pick(rng, ["loss_report", "annual"], [0.4, 0.6], s.sum())
    ts_local = rng.integers(6 * 3600, 23 * 3600, n) * 1_000_000 + rng.integers(0, 1_000_000, n)

    # cards issued today pay (and members are waived) the issuance fee
    issued_today = np.flatnonzero(issue == d64)
    extra = [(issued_today, "issuance", np.zeros(len(issued_today), np.int64), 9 * 3600)]
    # month end: small-account assessment on the month's average daily balance
    if day.day == calendar.monthrange(day.year, day.month)[1]:
        balance = np.clip(rng.lognormal(np.log(80000), 1.2, len(active)), 0, 10**9).astype(np.int64)
        extra.append((active, "small_account", balance, 23 * 3600 + 30 * 60))
    cols = dict(who=who, kind=kind, channel=channel, acq_bank=acq_bank, city=city,
                merchant=merchant, mcc=mcc, fee_item=fee_item, benefit=benefit, amount=amount,
                ts_local=ts_local)
    for idx, item, amt, at in extra:
        m = len(idx)
        added = {name: np.full(m, None, dtype=object) for name in cols}
        added.update(who=idx, kind=np.full(m, "service", dtype=object),
                     fee_item=np.full(m, item, dtype=object), amount=amt,
                     ts_local=at * 1_000_000 + rng.integers(0, 600_000_000, m))
        cols = {name: np.concatenate([cols[name], added[name]]) for name in cols}
    n = len(cols["who"])
    order = np.argsort(cols["ts_local"], kind="stable")
    cols = {k: v[order] for k, v in cols.items()}
    prefix = day.strftime("%Y%m%d")
    txn_id = _numbered(prefix, np.arange(1, n + 1), 7)
    cno = card_no[cols["who"]]
    orig = np.full(n, None, dtype=object)

    # reversals: of an earlier priced-kind row today (same card), now and then of yesterday's
    rev = np.flatnonzero(cols["kind"] == "reversal")
    targets = np.flatnonzero(np.isin(cols["kind"], ["withdrawal", "transfer", "purchase"]))
    for r in rev:  # few rows (0.5 %): a plain loop is clearest
        n_earlier = np.searchsorted(targets, r)  # targets is sorted: those before row r
        if n_earlier and (prev_ids is None or rng.random() < 0.9):
            j = targets[rng.integers(0, n_earlier)]
            orig[r], cno[r] = txn_id[j], cno[j]
        elif prev_ids is not None and len(prev_ids[0]):
            j = rng.integers(0, len(prev_ids[0]))
            orig[r], cno[r] = prev_ids[0][j], prev_ids[1][j]
        else:
            orig[r] = "UNKNOWN" + txn_id[r]
    cols["amount"][rev] = 0

    day_start_utc = (np.datetime64(day, "us").astype(np.int64)) - TZ_OFFSET_US
    ts = pa.array(day_start_utc + cols["ts_local"], pa.int64()).cast(pa.timestamp("us", "UTC"))
    currency = np.where(rng.random(n) < 0.9, "CNY", None).astype(object)
    table = {
        "txn_id": txn_id, "card_no": cno, "ts": ts, "kind": cols["kind"],
        "channel": cols["channel"], "amount": cols["amount"], "currency": currency,
        "acq_bank": cols["acq_bank"], "city": cols["city"], "merchant_id": cols["merchant"],
        "mcc": cols["mcc"], "fee_item": cols["fee_item"], "benefit": cols["benefit"],
        "orig_txn_id": orig,
    }
    _malform(rng, table, n)
    return pa.table({name: (table[name] if isinstance(table[name], pa.Array)
                            else pa.array(table[name], pa.int64() if name == "amount"
                                          else pa.string()))
                     for name in COLUMNS})


MALFORMATIONS = ["bad_card_no", "unknown_card", "bad_amount", "unsupported_currency", "bad_kind",
                 "bad_channel", "bad_city", "bad_acq_bank", "missing_merchant", "duplicate_txn_id",
                 "bad_mcc", "missing_card_no"]


def _malform(rng, t: dict, n: int):
    """Spoil about 0.2 % of the rows, each with one fault the validator must catch."""
    rows = np.flatnonzero(rng.random(n) < 0.002)
    faults = np.array(MALFORMATIONS)[rng.integers(0, len(MALFORMATIONS), len(rows))]
    for r, fault in zip(rows, faults):
        kind = t["kind"][r]
        if fault == "bad_card_no":
            c = t["card_no"][r]
            t["card_no"][r] = c[:-1] + str((int(c[-1]) + 1) % 10)
        elif fault == "unknown_card":
            t["card_no"][r] = card_numbers(np.array(["CMB"]), np.array([10_000_000 + r]))[0]
        elif fault == "bad_amount" and kind != "reversal":
            t["amount"][r] = -t["amount"][r] - 1
        elif fault == "unsupported_currency":
            t["currency"][r] = "USD"
        elif fault == "bad_kind":
            t["kind"][r] = "refund"
        elif fault == "bad_channel" and kind == "purchase":
            t["channel"][r] = "atm"
        elif fault == "bad_city" and t["city"][r] is not None:
            t["city"][r] = t["city"][r][:5]
        elif fault == "bad_acq_bank" and t["acq_bank"][r] is not None:
            t["acq_bank"][r] = t["acq_bank"][r].lower()
        elif fault == "missing_merchant" and kind == "purchase":
            t["merchant_id"][r] = None
        elif fault == "duplicate_txn_id" and r > 0:
            t["txn_id"][r] = t["txn_id"][r - 1]
        elif fault == "bad_mcc":
            t["mcc"][r] = "54A1"
        elif fault == "missing_card_no":
            t["card_no"][r] = None


def _to_csv_day(table: pa.Table, rng) -> pa.Table:
    """CSV flavour: local wall-clock text timestamps, text amounts, a few text-level faults."""
    local = pc.add(table.column("ts").cast(pa.int64()), TZ_OFFSET_US).cast(pa.timestamp("us"))
    ts = pc.strftime(local, format="%Y-%m-%d %H:%M:%S").to_numpy(zero_copy_only=False).astype(object)
    amount = table.column("amount").cast(pa.string()).to_numpy(zero_copy_only=False).astype(object)
    n = table.num_rows
    for r in np.flatnonzero(rng.random(n) < 0.001):
        if rng.random() < 0.5:
            ts[r] = ts[r][:10]  # a bare date: bad_ts
        else:
            amount[r] = amount[r] + ".50" if amount[r] else "1.50"  # not integer fen
    table = table.set_column(table.schema.get_field_index("ts"), "ts", pa.array(ts, pa.string()))
    return table.set_column(table.schema.get_field_index("amount"), "amount",
                            pa.array(amount, pa.string()))


def make_fixtures(out_dir, members: int = 120_000, days: int = 3, seed: int = 0,
                  start: dt.date = DEFAULT_START, rate: float = 2.8, fmt: str = "parquet"):
    """Write the data set; return the list of files written.  ``fmt="iso8583"``: the days as
    switch logs (``switch-YYYYMMDD.iso8583``) plus ``institutions.csv``."""
    if fmt == "iso8583":
        return [p for p, _ in switch_fixtures(out_dir, members, days, seed, start, rate)]
    return list(iter_fixtures(out_dir, members, days, seed, start, rate, fmt))


def iter_fixtures(out_dir, members: int = 120_000, days: int = 3, seed: int = 0,
                  start: dt.date = DEFAULT_START, rate: float = 2.8, fmt: str = "parquet"):
    """Write the data set a file at a time, yielding each path once it is written (cards,
    merchants, then the days in order: a long benchmark need not hold every day on disk;
    ``fmt="rows"``: each day as ``(day, table)``, not written)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cards, issue, unit_idx = make_cards(members, np.random.default_rng([seed, 1_000_000]))
    merchants = make_merchants(members, np.random.default_rng([seed, 1_000_001]))
    written = [out / "cards.csv", out / "merchants.csv"]
    pacsv.write_csv(cards, written[0])
    pacsv.write_csv(merchants, written[1])
    yield from written
    merchant_ids = np.asarray(merchants.column("merchant_id").to_numpy(zero_copy_only=False))
    prev = None
    for k in range(days):
        day = start + dt.timedelta(days=k)
        table = make_day(day, k, cards, issue, unit_idx, merchant_ids, rate, seed, prev)
        priced_like = pc.is_in(table.column("kind"),
                               pa.array(["withdrawal", "transfer", "purchase"]))
        kept = table.filter(pc.and_(priced_like, pc.is_valid(table.column("card_no"))))
        prev = (kept.column("txn_id").to_numpy(zero_copy_only=False),
                kept.column("card_no").to_numpy(zero_copy_only=False))
        # the day in the file's metadata: two quiet days are still two different files
        table = table.replace_schema_metadata({"txcore.fixtures.day": day.isoformat()})
        if fmt == "rows":
            yield day, table
            continue
        path = out / f"txns-{day.isoformat()}.{fmt}"
        if fmt == "csv":
            pacsv.write_csv(_to_csv_day(table, np.random.default_rng([seed, day.toordinal()])),
                            path)
        else:
            pq.write_table(table, path, compression="zstd")
        yield path


def switch_fixtures(out_dir, members: int = 120_000, days: int = 3, seed: int = 0,
                    start: dt.date = DEFAULT_START, rate: float = 2.8):
    """Write cards, merchants, ``institutions.csv`` and each day's switch log; return
    ``[(path, rows)]``: each file written with, for a log, the txcore rows it carries
    (:func:`txcore.switchlog.switch_day`), else None."""
    from txcore import switchlog
    out = Path(out_dir)
    written = make_fixtures(out, members, days, seed, start, rate, fmt="rows")
    table = switchlog.institutions(["CMB", "CIB", *OTHER_BANKS], CITIES)
    pacsv.write_csv(table, out / "institutions.csv")
    acquirers = switchlog.Acquirers(table)
    result = [(written[0], None), (written[1], None), (out / "institutions.csv", None)]
    known: dict = {}
    for k, (day, day_table) in enumerate(written[2:]):
        rng = np.random.default_rng([seed, 2_000_000 + k])
        # known: every fixture txn id the switch has carried (a reversal reaches back a day)
        messages, rows = switchlog.switch_day(day_table, day, acquirers, rng, known, HOME_CITY)
        path = switchlog.write_log(messages, out / f"switch-{day:%Y%m%d}.iso8583")
        result.append((path, rows))
    return result
