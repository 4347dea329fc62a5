"""The fixture days as a bank switch would log them: ISO 8583 messages (default_ascii).

``switch_day`` turns one fixture day (txcore columns) into the messages of its
card traffic — withdrawals, transfers and purchases as 0200/0210, reversals as
0420 carrying field 90, plus declined 0210s (field 39 ``51``) and network
management 0800s — and the rows txcore should read back from them (the same
rows as a txcore table: the identifiers the switch gives them, times to the
second, the acquirer's bank and city).  Disbursements and service fees are not
switch traffic and are left out.  ``write_log`` frames messages with their
2-byte big-endian lengths.  See docs/iso8583.md.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import iso8583.specs
import numpy as np
import pyarrow as pa

SPEC = iso8583.specs.default_ascii
PROCESSING = {"withdrawal": "010000", "purchase": "000000", "transfer": "400000"}
#: channel -> (field 18, field 22) for withdrawals and transfers
CHANNEL_FIELDS = {"atm": ("6011", "051"), "counter": ("6010", "051"),
                  "self_service": ("6011", "051"), "online": ("4829", "810"),
                  "mobile": ("4829", "820")}
UNKNOWN_INSTITUTION = "99999999"


def institutions(banks, cities) -> pa.Table:
    """One acquiring institution per bank and city: id ``BBCCCCCC`` (bank number with a
    leading zero, then the city code), so field 32 carries leading zeros."""
    rows = [(f"{b + 1:02d}{city}", bank, city) for b, bank in enumerate(banks) for city in cities]
    return pa.table({"institution_id": [r[0] for r in rows], "bank": [r[1] for r in rows],
                     "city": [r[2] for r in rows]})


def encode(fields: dict) -> bytes:
    """One message in pyiso8583's default_ascii layout (``tests/test_iso8583_input.py``
    holds it equal to ``iso8583.encode``): MTI, hex bitmap(s), fields in order, LL/LLL
    lengths."""
    numbers = sorted(int(k) for k in fields if k != "t")
    if numbers and numbers[-1] > 64:
        numbers.insert(0, 1)
    bitmap = 0
    for n in numbers:
        bitmap |= 1 << (128 - n)
    width = 32 if numbers and numbers[-1] > 64 else 16
    parts = [fields["t"], f"{bitmap >> (128 - 4 * width):0{width}X}"]
    for n in numbers:
        if n == 1:
            continue
        value = fields[str(n)]
        lt = _LEN_TYPE[n]
        if lt:
            parts.append(f"{len(value):0{lt}d}")
        parts.append(value)
    return "".join(parts).encode("ascii")


_LEN_TYPE = {int(k): v["len_type"] for k, v in SPEC.items() if k.isdigit()}


def write_log(messages, path) -> Path:
    path = Path(path)
    with open(path, "wb") as fh:
        for m in messages:
            fh.write(len(m).to_bytes(2, "big"))
            fh.write(m)
    return path


def echo_test(day: dt.date, hour: int, stan: str) -> bytes:
    """A network management message (0800, field 70 ``301``: echo test) on the hour."""
    return encode({"t": "0800", "7": f"{day:%m%d}{hour:02d}0000", "11": stan, "70": "301"})


class Acquirers:
    """Institution ids by (bank, city), from an institutions table."""

    def __init__(self, table: pa.Table):
        self.by_pair = {(b, c): i for i, b, c in zip(*(table.column(n).to_pylist() for n in
                                                       ("institution_id", "bank", "city")))}
        self.by_id = {i.lstrip("0"): (b, c) for (b, c), i in self.by_pair.items()}


def switch_day(table: pa.Table, day: dt.date, acquirers: Acquirers, rng: np.random.Generator,
               known: dict, home_city: str, partner_banks=("CMB", "CIB")):
    """``(messages, rows)`` for one fixture day; ``known`` maps fixture txn ids to the switch's
    ``(acquirer id, field 7, field 11)`` and is updated (reversals reach back a day)."""
    t = {name: table.column(name).to_pylist() for name in table.column_names}
    offset = dt.timedelta(hours=8)  # Asia/Shanghai
    messages, rows = [], []
    serial = 0
    next_netman = 0

    def stan():
        nonlocal serial
        serial += 1
        return f"{serial % 1_000_000:06d}"

    for r in range(table.num_rows):
        kind = t["kind"][r]
        if kind in ("disbursement", "service"):
            continue
        local = (t["ts"][r] + offset).replace(tzinfo=None, microsecond=0)
        while next_netman < 24 and local.hour >= next_netman:  # an echo test on the hour
            messages.append(echo_test(day, next_netman, stan()))
            next_netman += 1
        f13 = f"{local.month:02d}{local.day:02d}"
        f12 = f"{local.hour:02d}{local.minute:02d}{local.second:02d}"
        f7 = f13 + f12
        channel, bank, city = t["channel"][r], t["acq_bank"][r], t["city"][r]
        if kind == "purchase" or kind not in ("withdrawal", "transfer", "reversal"):
            bank, city = partner_banks[int(rng.integers(0, len(partner_banks)))], home_city
        acq = acquirers.by_pair.get((bank, city), UNKNOWN_INSTITUTION)
        target = known.get(t["orig_txn_id"][r]) if kind == "reversal" else None
        if target is not None:  # a reversal comes from the original's acquirer
            acq = target[0]
        fixture_id = t["txn_id"][r]
        if fixture_id in known and kind != "reversal":  # a repeated txn_id: the same keys
            acq, f7, s = known[fixture_id]
        else:
            s = stan()
        fields = {"t": "0200", "3": PROCESSING.get(kind, "200000"), "7": f7, "11": s,
                  "12": f12, "13": f13, "32": acq, "37": f"{day:%y%m%d}{serial:06d}"}
        if t["card_no"][r] is not None:
            fields["2"] = t["card_no"][r]
        amount = t["amount"][r]
        fields["4"] = f"{amount:012d}"[-12:] if amount is not None else "000000000000"
        currency = t["currency"][r]
        if currency is not None:
            fields["49"] = "156" if currency == "CNY" else "840"
        mcc = t["mcc"][r]
        if kind in ("withdrawal", "transfer"):
            f18, f22 = CHANNEL_FIELDS[channel]
            fields["18"], fields["22"] = f18, f22
            channel = {"6011": "atm", "6010": "counter"}.get(f18) if kind == "withdrawal" \
                else channel
            mcc = f18
        elif kind == "purchase":
            channel = "pos"
            if mcc is not None:
                fields["18"] = mcc
            fields["22"] = "051"
        if t["merchant_id"][r] is not None:
            fields["42"] = t["merchant_id"][r].ljust(15)
        orig = None
        if kind == "reversal":
            fields["t"] = "0420"
            fields["3"] = "000000"
            if target is None:  # a reversal of nothing the switch saw
                target = ("99", f7, "999999")
            o_acq, o_f7, o_stan = target
            fields["90"] = f"0200{o_stan}{o_f7}{o_acq.zfill(11)}{'0' * 11}"
            orig = f"{o_acq.lstrip('0')}-{o_f7}-{o_stan}"
            channel = None
        response = None
        if kind != "reversal" and rng.random() < 0.3:
            fields["t"], fields["39"], response = "0210", "00", "00"
        known.setdefault(fixture_id, (acq, f7, s))
        messages.append(encode(fields))
        inst = acquirers.by_id.get(acq.lstrip("0"))
        if inst is not None:
            bank, city = inst
        elif kind not in ("withdrawal", "transfer"):
            bank = city = None
        rows.append({
            "txn_id": f"{acq.lstrip('0')}-{f7}-{s}", "card_no": t["card_no"][r],
            "ts": local - offset, "kind": kind, "channel": channel,
            "amount": amount, "currency": "CNY" if currency in (None, "CNY") else "840",
            "acq_bank": bank, "city": city,
            "merchant_id": t["merchant_id"][r], "mcc": mcc, "orig_txn_id": orig,
            "mti": fields["t"], "stan": s, "rrn": fields["37"], "response": response})
        if kind != "reversal" and rng.random() < 0.01:  # a declined attempt before it
            declined = dict(fields, t="0210", **{"11": stan(), "39": "51"})
            messages.insert(len(messages) - 1, encode(declined))
    while next_netman < 24:
        messages.append(echo_test(day, next_netman, stan()))
        next_netman += 1
    schema = pa.schema([("txn_id", pa.string()), ("card_no", pa.string()),
                        ("ts", pa.timestamp("us", "UTC")), ("kind", pa.string()),
                        ("channel", pa.string()), ("amount", pa.int64()),
                        ("currency", pa.string()), ("acq_bank", pa.string()),
                        ("city", pa.string()), ("merchant_id", pa.string()),
                        ("mcc", pa.string()), ("orig_txn_id", pa.string()),
                        ("mti", pa.string()), ("stan", pa.string()), ("rrn", pa.string()),
                        ("response", pa.string())])
    for row in rows:
        row["ts"] = row["ts"].replace(tzinfo=dt.timezone.utc)
    return messages, pa.Table.from_pylist(rows, schema=schema)
