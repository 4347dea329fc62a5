"""Row validation (docs/input.md; reasons in docs/outputs.md#reject-reasons): the checks that need no state.

``validate_batch`` turns a record batch into, per row, either a parsed
:class:`Txn` or a :class:`Reject` with the reason code of the *first* failing
check in the order of docs/outputs.md#reject-reasons and the column and value at fault.  The checks
that need the rules, the registry or the run's history (no_ruleset,
unknown_card, duplicate_txn_id, ...) come after, in :mod:`txcore.engine.reference`.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

import pyarrow as pa

from txcore import cardno
from txcore.timeconv import EPOCH
from txcore.rules.book import RuleBook
from txcore.vocab import (BANK_RE, BENEFITS, CHANNELS_BY_KIND, CITY_RE, FEE_ITEMS, INPUT_COLUMNS,
                          KINDS, KINDS_POSITIVE_AMOUNT, KINDS_WITH_COUNTERPARTY, MAX_AMOUNT, MCC_RE)

# ASCII digits only: Python's \d and int() also take full-width and Arabic-Indic digits
_TS_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2})"
    r"(?::([0-9]{2})(?:[.,]([0-9]{1,9}))?)?(Z|[+-][0-9]{2}:[0-9]{2})?")
_INT_RE = re.compile(r"[+-]?[0-9]+")
_MAX_DETAIL = 80


class TimeCheck:
    """What a parsed timestamp must also satisfy: its instant and its local date in every
    zone of the rules lie within years 1-9999 (what every engine can represent), and, with
    a business date, its local date is at most one day after it (docs/business-date.md).

    The local date is the wall date of a naive time, else the date in the zone of the
    version in force (of the first version when none is).
    """

    def __init__(self, book: RuleBook, business_date: dt.date | None = None):
        self.book, self.business_date = book, business_date
        self.zones = list({v.timezone: v.zone for v in book.versions}.values())

    def problem(self, ts: dt.datetime) -> str | None:
        """None when ``ts`` passes, else what is wrong with it, in words."""
        # UTC offsets are less than a day: a time in years 2-9998 is in years 1-9999 in
        # every zone, so only the first and last years need the zones tried
        if not 2 <= ts.year <= 9998:
            try:
                if ts.tzinfo is None:
                    for zone in self.zones:
                        ts.replace(tzinfo=zone).astimezone(dt.timezone.utc)
                else:
                    ts.astimezone(dt.timezone.utc)
                    for zone in self.zones:
                        ts.astimezone(zone)
            except OverflowError:
                return "lies outside years 1-9999 in UTC or in the rules' time zone"
        if self.business_date is None:
            return None
        if ts.tzinfo is None:
            local = ts.date()
        elif (ts.astimezone(dt.timezone.utc).date() - self.business_date).days <= 0:
            return None  # its local date is at most a day later, in any zone
        else:
            found = self.book.for_instant(ts)
            local = found[1] if found else ts.astimezone(self.book.versions[0].zone).date()
        if (local - self.business_date).days > 1:
            return (f"lies in the future: local date {local} is more than one day after the "
                    f"business date {self.business_date}")
        return None


@dataclass(slots=True)
class Reject:
    reason: str
    detail: str


@dataclass(slots=True)
class Txn:
    """An input row that passed the stateless checks, with parsed values."""

    txn_id: str
    card_no: str
    ts: dt.datetime          # aware (instant) or naive (local time of the rule set)
    kind: str
    channel: str | None
    amount: int | None       # None only on a reversal whose amount is unreadable
    acq_bank: str | None
    city: str | None
    merchant_id: str | None
    mcc: str | None
    fee_item: str | None
    benefit: str | None
    orig_txn_id: str | None


def detail(column: str, value) -> str:
    """``column='value'``, card numbers masked, long values cut."""
    if value is None:
        return f"{column}=null"
    text = cardno.mask(value) if column == "card_no" else str(value)
    if len(text) > _MAX_DETAIL:
        text = text[:_MAX_DETAIL] + "..."
    return f"{column}='{cardno.redact(text)}'"


def parse_ts(value) -> dt.datetime | None:
    """An instant (aware) or local wall time (naive) from text or a timestamp; None if bad."""
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        return None
    m = _TS_RE.fullmatch(value)
    if m is None:
        return None
    y, mo, d, hh, mm, ss, frac, off = m.groups()
    micro = int((frac or "0").ljust(6, "0")[:6])
    tz = None
    if off == "Z":
        tz = dt.timezone.utc
    elif off:
        sign = -1 if off[0] == "-" else 1
        oh, om = int(off[1:3]), int(off[4:6])
        if oh > 23 or om > 59:
            return None
        tz = dt.timezone(sign * dt.timedelta(hours=oh, minutes=om))
    try:
        return dt.datetime(int(y), int(mo), int(d), int(hh), int(mm), int(ss or 0), micro, tz)
    except ValueError:
        return None


def text_of(value) -> str | None:
    """Text of a string-like value; integers are accepted as their decimal text."""
    if value is None or isinstance(value, bool):
        return None if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) else str(value)


def parse_amount(value) -> int | None:
    """An integer amount, or None when unreadable (also beyond int64: such a value on a
    reversal, which is not range-checked, must not reach the int64 columns)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _INT_RE.fullmatch(value):
        value = int(value)
    if isinstance(value, int):
        return value if -2**63 <= value < 2**63 else None
    return None


def column_values(batch: pa.RecordBatch, name: str) -> list:
    """Python values of an input column (all None when the column is absent)."""
    if name not in batch.schema.names:
        return [None] * batch.num_rows
    col = batch.column(name)
    if pa.types.is_dictionary(col.type):
        col = col.dictionary_decode()
    if pa.types.is_timestamp(col.type):
        return _timestamps(col)
    if name == "amount" and not (pa.types.is_integer(col.type) or pa.types.is_string(col.type)
                                 or pa.types.is_large_string(col.type)):
        # money is integer fen: any other type is unreadable as an amount
        return [None if v is None else _Unreadable(v) for v in col.to_pylist()]
    return col.to_pylist()


_PER_SECOND = {"s": 1, "ms": 1000, "us": 10**6, "ns": 10**9}


def _timestamps(col) -> list:
    """Timestamps as datetimes; one outside Python's range (year 0, 10000) stays
    unreadable, so its row is rejected as bad_ts instead of stopping the run.  An
    Arrow timestamp with a zone holds a UTC instant whatever the zone's name."""
    aware = col.type.tz is not None
    per = _PER_SECOND[col.type.unit]
    out = []
    for v in col.cast(pa.int64()).to_pylist():
        if v is None:
            out.append(None)
            continue
        try:
            t = EPOCH.replace(tzinfo=None) + dt.timedelta(microseconds=v * 10**6 // per)
            out.append(t.replace(tzinfo=dt.timezone.utc) if aware else t)
        except OverflowError:
            out.append(_Unreadable(v))
    return out


class _Unreadable:
    """Wraps an amount of a non-integer type so it can be reported but never priced."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __str__(self):
        return str(self.value)


def validate_batch(batch: pa.RecordBatch, times: TimeCheck | None = None) -> list[Txn | Reject]:
    """One :class:`Txn` or :class:`Reject` per row of ``batch``; ``times`` (the engines
    always pass one) also rejects timestamps out of range or in the future as bad_ts."""
    cols = {name: column_values(batch, name) for name in INPUT_COLUMNS}
    card_ok = (cardno.check_column(batch.column("card_no"))
               if "card_no" in batch.schema.names else [False] * batch.num_rows)
    out = []
    for i in range(batch.num_rows):
        out.append(validate_row({name: cols[name][i] for name in INPUT_COLUMNS},
                                 bool(card_ok[i]), times))
    return out


def validate_row(raw: dict, card_ok: bool, times: TimeCheck | None = None) -> Txn | Reject:
    """The stateless checks on one row, in the order of docs/outputs.md#reject-reasons.

    ``card_ok`` is the column-level card-number check for this row
    (12-19 digits, Luhn), computed for the whole batch at once.
    """
    def missing(column):
        v = raw[column]
        return v is None or v == ""

    def reject(reason, column):
        return Reject(reason, detail(column, raw[column]))

    if missing("txn_id"):
        return reject("missing_field", "txn_id")
    txn_id = text_of(raw["txn_id"])
    if len(txn_id) > 64:
        return reject("bad_txn_id", "txn_id")
    if missing("card_no"):
        return reject("missing_field", "card_no")
    if not card_ok:
        return reject("bad_card_no", "card_no")
    card_no = text_of(raw["card_no"])
    if missing("ts"):
        return reject("missing_field", "ts")
    ts = parse_ts(raw["ts"])
    if ts is None:
        return reject("bad_ts", "ts")
    if times is not None:
        problem = times.problem(ts)
        if problem is not None:
            return Reject("bad_ts", f"{detail('ts', raw['ts'])} {problem}")
    if missing("kind"):
        return reject("missing_field", "kind")
    kind = raw["kind"]
    if kind not in KINDS:
        return reject("bad_kind", "kind")
    channel = text_of(raw["channel"]) or None
    if kind in CHANNELS_BY_KIND:
        if channel is None:
            return reject("missing_field", "channel")
        if channel not in CHANNELS_BY_KIND[kind]:
            return reject("bad_channel", "channel")
    amount = parse_amount(raw["amount"])
    if kind != "reversal":
        if missing("amount"):
            return reject("missing_field", "amount")
        if (amount is None or amount > MAX_AMOUNT
                or amount < (1 if kind in KINDS_POSITIVE_AMOUNT else 0)):
            return reject("bad_amount", "amount")
    if not missing("currency") and raw["currency"] != "CNY":
        return reject("unsupported_currency", "currency")
    acq_bank = text_of(raw["acq_bank"]) or None
    city = text_of(raw["city"]) or None
    if kind in KINDS_WITH_COUNTERPARTY:
        if acq_bank is None:
            return reject("missing_field", "acq_bank")
        if not BANK_RE.fullmatch(acq_bank):
            return reject("bad_acq_bank", "acq_bank")
        if city is None:
            return reject("missing_field", "city")
        if not CITY_RE.fullmatch(city):
            return reject("bad_city", "city")
    merchant_id = text_of(raw["merchant_id"]) or None
    if kind == "purchase" and merchant_id is None:
        return reject("missing_field", "merchant_id")
    mcc = text_of(raw["mcc"]) or None
    if mcc is not None and not MCC_RE.fullmatch(mcc):
        return reject("bad_mcc", "mcc")
    fee_item = text_of(raw["fee_item"]) or None
    if kind == "service":
        if fee_item is None:
            return reject("missing_field", "fee_item")
        if fee_item not in FEE_ITEMS:
            return reject("bad_fee_item", "fee_item")
    benefit = text_of(raw["benefit"]) or None
    if kind == "disbursement" and benefit is not None and benefit not in BENEFITS:
        return reject("bad_benefit", "benefit")
    orig_txn_id = text_of(raw["orig_txn_id"]) or None
    if kind == "reversal":
        if orig_txn_id is None:
            return reject("missing_field", "orig_txn_id")
        if len(orig_txn_id) > 64:
            return reject("bad_txn_id", "orig_txn_id")
    return Txn(txn_id, card_no, ts, kind, channel, amount, acq_bank, city, merchant_id, mcc,
               fee_item, benefit, orig_txn_id)
