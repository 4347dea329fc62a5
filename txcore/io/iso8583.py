"""ISO 8583 message logs (``.iso8583``) as txcore input rows (see docs/iso8583.md).

A log is a sequence of frames: a 2-byte big-endian length, then that many bytes
of one ISO 8583 message.  Every message is one input row.  Messages are decoded
against pyiso8583's ``default_ascii`` specification or a bank's own (``--iso-spec``,
a JSON file in pyiso8583's spec-dict form) by the compiled decoder
(``txcore/_fast/iso8583.pyx``) where the specification has a fixed layout, with
pyiso8583 — the reference — deciding every message the compiled loop does not
read plainly; otherwise by pyiso8583 alone.  The decoded fields become txcore's
input columns with Arrow compute, batch by batch, so pricing is unchanged.

Three reject reasons come before every check of the pricing engines, in this
order: ``bad_message`` (pyiso8583 cannot decode it, or a reversal's field 90 is
not 42 characters), ``not_financial`` (an MTI that is not a financial or reversal
message), ``not_approved`` (field 39 present and not ``00``).  The other rows go
to the engine; a row it rejects ``bad_kind``, ``bad_channel`` or ``bad_acq_bank``
because of what the message said gets a detail naming the ISO field.  The reject
file keeps each message as hex (``iso_hex``, field 2's digits masked beyond the
first 6 and last 4) and its byte offset in the log (``iso_offset``).
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import mmap
import os
import re
from dataclasses import dataclass
from pathlib import Path

import iso8583
import iso8583.specs
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from txcore import cardno
from txcore._fast import compiled_or_twin, iso8583_py
from txcore.errors import InputRefused, RefDataError, UsageError
from txcore.io.assemble import priced_schema, rejects_schema
from txcore.io.reader import InputSource

#: the compiled decoder (or, unbuilt or with TXCORE_NO_EXTENSIONS=1, its twin)
_decoder = compiled_or_twin("iso8583")

SUFFIX = ".iso8583"
#: fields read from a message, 0 standing for the MTI
WANTED = (0, 2, 3, 4, 7, 11, 12, 13, 18, 22, 32, 37, 39, 42, 49, 90)
FINANCIAL_MTIS = ("0200", "0210", "0220", "0230")
REVERSAL_MTIS = ("0400", "0410", "0420", "0421", "0430")
#: processing code positions 1-2 -> kind
KIND_BY_PROCESSING = {"01": "withdrawal", "00": "purchase", "40": "transfer"}
FIELD_90_LENGTH = 42
#: what the row holds for a value the message gives but txcore has no word for; the
#: engine rejects it (bad_kind, bad_channel, bad_acq_bank) in its usual order of checks
UNKNOWN = "?"
#: hidden columns: carried through the engine for the reject file, dropped from priced rows
HINTS = ("_iso_kind", "_iso_channel", "_iso_acq")
EXTRA_COLUMNS = ("mti", "stan", "rrn", "response")

_S = pa.string()
ROW_SCHEMA = pa.schema(
    [(name, _S) for name in ("txn_id", "card_no", "ts", "kind", "channel", "amount", "currency",
                             "acq_bank", "city", "merchant_id", "mcc", "orig_txn_id")]
    + [(name, _S) for name in EXTRA_COLUMNS]
    + [("iso_offset", pa.int64())] + [(h, _S) for h in HINTS])
_REJECT_EXTRA = pa.schema([("_iso_reason", _S), ("_iso_detail", _S)])
BATCH_SCHEMA = pa.schema(list(ROW_SCHEMA) + list(_REJECT_EXTRA))


def is_iso_input(spec: str) -> bool:
    return spec != "-" and Path(spec).suffix.lower() == SUFFIX


# -- the specification ----------------------------------------------------------------------
_FIELD_KEYS = {"data_enc", "len_enc", "len_type", "max_len"}


def load_spec(path=None) -> dict:
    """pyiso8583's ``default_ascii``, or a bank's specification from a JSON file
    (exit 2 when it is not one)."""
    if path is None:
        return copy.deepcopy(iso8583.specs.default_ascii)
    path = Path(path)
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path.name}: cannot be read as an ISO 8583 specification: {exc}") \
            from exc
    problems = []
    if not isinstance(spec, dict):
        raise RefDataError([f"{path.name}: an ISO 8583 specification is a JSON object"])
    for key in ("h", "t", "p"):
        if key not in spec:
            problems.append(f"{path.name}: field {key!r} is not defined")
    for key, fs in spec.items():
        if not isinstance(fs, dict) or not _FIELD_KEYS <= fs.keys():
            problems.append(f"{path.name}: field {key!r} needs {', '.join(sorted(_FIELD_KEYS))}")
            continue
        if not isinstance(fs["max_len"], int) or not isinstance(fs["len_type"], int) \
                or fs["max_len"] < 0 or fs["len_type"] < 0:
            problems.append(f"{path.name}: field {key!r}: len_type and max_len are "
                            f"non-negative integers")
        for enc in ("data_enc", "len_enc"):
            if not isinstance(fs[enc], str):
                problems.append(f"{path.name}: field {key!r}: {enc} is a string")
    if problems:
        raise RefDataError(problems)
    return spec


class Layout:
    """A specification as the compiled decoder's per-field arrays (index 0 = header,
    1-192 = fields); ``compiled`` says whether it has the fixed layout that decoder
    reads (ASCII or binary data, ASCII/BCD/binary lengths)."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.len_type = np.zeros(193, np.int16)
        self.max_len = np.zeros(193, np.int32)
        self.data_bin = np.zeros(193, np.uint8)
        self.len_enc = np.zeros(193, np.uint8)
        self.nibbles = np.zeros(193, np.uint8)
        self.lpad = np.zeros(193, np.uint8)
        self.rpad = np.zeros(193, np.uint8)
        self.defined = np.zeros(193, np.uint8)
        ok = True
        for key, fs in spec.items():
            if key in ("t", "p"):
                continue
            f = 0 if key == "h" else int(key) if key.isdigit() and 1 <= int(key) <= 192 else None
            if f is None:
                continue
            ok &= fs["data_enc"] in ("ascii", "b") and fs["len_enc"] in ("ascii", "b", "bcd") \
                and fs["len_type"] <= 4 and fs.get("len_count", "bytes") in ("bytes", "nibbles")
            self.defined[f] = 1
            self.len_type[f], self.max_len[f] = fs["len_type"], min(fs["max_len"], 2**31 - 1)
            self.data_bin[f] = fs["data_enc"] == "b"
            self.len_enc[f] = {"ascii": 0, "bcd": 1, "b": 2}.get(fs["len_enc"], 0)
            self.nibbles[f] = fs.get("len_count", "bytes") == "nibbles"
            for attr, name in ((self.lpad, "left_pad"), (self.rpad, "right_pad")):
                pad = str(fs.get(name, ""))[:1]
                ok &= pad == "" or pad.isascii()
                attr[f] = ord(pad) if pad and pad.isascii() else 0
        self.mti_bin = spec["t"]["data_enc"] == "b"
        self.p_bin = spec["p"]["data_enc"] == "b"
        self.s_bin = spec.get("1", spec["p"])["data_enc"] == "b"
        ok &= spec["t"]["data_enc"] in ("ascii", "b") and spec["p"]["data_enc"] in ("ascii", "b")
        ok &= spec.get("1", spec["p"])["data_enc"] in ("ascii", "b")
        ok &= spec["h"]["max_len"] == 0 or spec["h"]["data_enc"] == "ascii"
        self.compiled = bool(ok)

    def max_chars(self, f: int) -> int:
        """Most characters field ``f`` (0 = MTI) decodes to."""
        if f == 0:
            return 4
        n = int(self.max_len[f])
        if self.nibbles[f]:
            return n if self.data_bin[f] else (n + 1) // 2
        return 2 * n if self.data_bin[f] else n


# -- the year of a date without one ---------------------------------------------------------
def resolve_years(mmdd: pa.Array, business_date: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the year that puts MMDD nearest the business date (the earlier on a tie)
    and whether there is one (MMDD four digits naming a day of that year)."""
    n = len(mmdd)
    digits = pc.fill_null(pc.match_substring_regex(mmdd, r"^[0-9]{4}$"), False) \
        .to_numpy(zero_copy_only=False)
    text = pc.if_else(pa.array(digits), mmdd, "0000")
    num = pc.cast(text, pa.int32()).to_numpy(zero_copy_only=False).astype(np.int64)
    month, day = num // 100, num % 100
    bd = np.datetime64(business_date, "D")
    best_year = np.full(n, business_date.year, np.int64)
    best = np.full(n, np.iinfo(np.int64).max, np.int64)
    ok = np.zeros(n, bool)
    good_month = digits & (month >= 1) & (month <= 12) & (day >= 1)
    m0 = np.clip(month - 1, 0, 11)
    for year in (business_date.year - 1, business_date.year, business_date.year + 1):
        start = (np.datetime64(f"{year:04d}-01", "M") + m0).astype("datetime64[D]")
        length = ((np.datetime64(f"{year:04d}-01", "M") + m0 + 1).astype("datetime64[D]")
                  - start).astype(np.int64)
        valid = good_month & (day <= length)
        dist = np.abs((start + (day - 1)) - bd).astype(np.int64)
        take = valid & (dist < best)  # years in increasing order: a tie keeps the earlier
        best_year[take], best[take] = year, dist[take]
        ok |= valid
    return best_year, ok


# -- messages to rows -----------------------------------------------------------------------
def _ltrim0(a):
    return pc.utf8_ltrim(a, characters="0")


def _codes(a, vocab) -> np.ndarray:
    """Index of each value in ``vocab``, -1 for any other value or null."""
    return pc.fill_null(pc.index_in(a, value_set=pa.array(vocab, _S)), -1) \
        .to_numpy(zero_copy_only=False)


def _words(codes: np.ndarray, vocab) -> pa.Array:
    """``vocab[code]``, null where the code is -1."""
    indices = pa.array(codes.astype(np.int32), mask=codes < 0)
    return pa.DictionaryArray.from_arrays(indices, pa.array(vocab, _S)).dictionary_decode()


def _values(column: pa.Array, rows: np.ndarray) -> list:
    """Python values of ``column`` at ``rows`` (few rows: the ones a detail is written for)."""
    return column.take(pa.array(rows, pa.int64())).to_pylist() if len(rows) else []


def rows_from_fields(f: dict, status: np.ndarray, errors: dict, offsets: np.ndarray,
                     business_date: dt.date, institutions) -> pa.RecordBatch:
    """The batch of rows for decoded messages: txcore's input columns, the extra columns,
    ``iso_offset``, the hints and the message-level reject (``_iso_reason``/``_iso_detail``).
    ``institutions``: :class:`txcore.rules.institutions.Institutions` (ids without leading
    zeros, banks, cities as Arrow arrays)."""
    n = len(status)
    mti = f[0]
    mti_code = _codes(mti, FINANCIAL_MTIS + REVERSAL_MTIS)
    financial = (mti_code >= 0) & (mti_code < len(FINANCIAL_MTIS))
    reversal = mti_code >= len(FINANCIAL_MTIS)
    # kind: by processing code for financial messages, reversal by MTI
    proc = pc.utf8_slice_codeunits(f[3], 0, 2)
    kind_vocab = ("withdrawal", "purchase", "transfer", "reversal", UNKNOWN)
    pcode = _codes(proc, tuple(KIND_BY_PROCESSING))
    kind_code = np.where(pcode >= 0, pcode, 4)
    kind_code = np.where(f[3].is_null().to_numpy(zero_copy_only=False), -1, kind_code)
    kind_code = np.where(reversal, 3, kind_code)
    kind_code = np.where(financial | reversal, kind_code, -1)
    # channel
    f18 = _codes(f[18], ("6011", "6010"))
    f22 = _codes(pc.utf8_slice_codeunits(f[22], 0, 2), ("81", "82"))
    ch_vocab = ("atm", "counter", "pos", "self_service", "online", "mobile", UNKNOWN)
    channel = np.full(n, -1, np.int64)
    w, p, t = kind_code == 0, kind_code == 1, kind_code == 2
    channel[w] = np.where(f18[w] >= 0, f18[w], 6)
    channel[p] = 2
    channel[t] = np.select([f18[t] == 0, f18[t] == 1, f22[t] == 0, f22[t] == 1],
                           [3, 1, 4, 5], 6)
    # institutions
    acq = _ltrim0(f[32])
    inst = pc.fill_null(pc.index_in(acq, value_set=institutions.ids), -1) \
        .to_numpy(zero_copy_only=False)
    counterparty = w | t
    unknown_inst = (inst < 0) & f[32].is_valid().to_numpy(zero_copy_only=False)
    lookup = pa.array(inst.astype(np.int32), mask=inst < 0)
    acq_bank = institutions.banks.take(lookup) if len(institutions.ids) else pa.nulls(n, _S)
    city = institutions.cities.take(lookup) if len(institutions.ids) else pa.nulls(n, _S)
    flagged = unknown_inst & counterparty
    if flagged.any():
        acq_bank = pc.if_else(pa.array(flagged), pa.scalar(UNKNOWN, _S), acq_bank)
    # ts: field 13 MMDD in the year nearest the business date, field 12 hhmmss (a value
    # that is not one joins as it is, and the engine rejects it bad_ts)
    years, _ = resolve_years(f[13], business_date)
    first = business_date.year - 1
    year_text = pa.DictionaryArray.from_arrays(
        pa.array((years - first).astype(np.int32)),
        pa.array([f"{y:04d}" for y in range(first, first + 3)], _S)).dictionary_decode()
    mmdd, hms = f[13], f[12]
    ts = pc.binary_join_element_wise(
        year_text, pc.utf8_slice_codeunits(mmdd, 0, 2), pc.utf8_slice_codeunits(mmdd, 2, 99), "-")
    clock = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(hms, 0, 2), pc.utf8_slice_codeunits(hms, 2, 4),
        pc.utf8_slice_codeunits(hms, 4, 6), ":")
    hms6 = pc.fill_null(pc.match_substring_regex(hms, r"^[0-9]{6}$"), True)
    if not pc.all(hms6).as_py():
        clock = pc.if_else(hms6, clock, hms)
    ts = pc.binary_join_element_wise(ts, clock, "T")  # null where field 12 or 13 is absent
    # identifiers
    txn_id = pc.binary_join_element_wise(acq, f[7], f[11], "-")
    f90 = f[90]
    orig = pc.binary_join_element_wise(_ltrim0(pc.utf8_slice_codeunits(f90, 20, 31)),
                                       pc.utf8_slice_codeunits(f90, 10, 20),
                                       pc.utf8_slice_codeunits(f90, 4, 10), "-")
    if pc.any(pc.and_(pa.array(~reversal), pc.is_valid(orig))).as_py():
        orig = pc.if_else(pa.array(reversal), orig, pa.nulls(n, _S))
    currency = pc.if_else(pc.fill_null(pc.equal(f[49], "156"), False), "CNY",
                          pc.fill_null(f[49], "CNY"))
    if errors:  # a message that could not be decoded says nothing, its currency included
        currency = pc.if_else(pa.array(status == iso8583_py.BAD), pa.nulls(n, _S), currency)
    # message-level rejects, in order: bad_message, not_financial, not_approved
    reason = np.full(n, None, object)
    detail = np.full(n, None, object)
    declined = (f[39].is_valid().to_numpy(zero_copy_only=False)
                & ~pc.fill_null(pc.equal(f[39], "00"), True).to_numpy(zero_copy_only=False))
    f90_len = pc.fill_null(pc.utf8_length(f90), FIELD_90_LENGTH).to_numpy(zero_copy_only=False)
    bad90 = reversal & (f90_len != FIELD_90_LENGTH)
    rows = np.flatnonzero(declined)
    for i, v in zip(rows, _values(f[39], rows)):
        reason[i], detail[i] = "not_approved", f"field 39={_quote(v)}"
    rows = np.flatnonzero(~(financial | reversal))
    for i, v in zip(rows, _values(mti, rows)):
        reason[i], detail[i] = "not_financial", f"mti={_quote(v)}"
    for i in np.flatnonzero(bad90 & (status == 0)):
        reason[i], detail[i] = "bad_message", \
            f"field 90: {f90_len[i]} characters, expecting {FIELD_90_LENGTH}"
    for i, (field, msg) in errors.items():
        reason[i], detail[i] = "bad_message", cardno.redact(f"field {field}: {msg}")
    # hints: the ISO field behind a value the engine may reject
    hint_kind = np.full(n, None, object)
    hint_channel = np.full(n, None, object)
    hint_acq = np.full(n, None, object)
    rows = np.flatnonzero(kind_code == 4)
    for i, v in zip(rows, _values(f[3], rows)):
        hint_kind[i] = f"field 3={_quote(v)}: not a withdrawal, purchase or transfer"
    rows = np.flatnonzero(channel == 6)
    for i, v18, v22 in zip(rows, _values(f[18], rows), _values(f[22], rows)):
        hint_channel[i] = f"field 18={_quote(v18)}, field 22={_quote(v22)}"
    rows = np.flatnonzero(unknown_inst & counterparty)
    for i, v in zip(rows, _values(f[32], rows)):
        hint_acq[i] = f"field 32={_quote(v)}: not in the institutions file"
    columns = {
        "txn_id": txn_id, "card_no": f[2], "ts": ts, "kind": _words(kind_code, kind_vocab),
        "channel": _words(channel, ch_vocab), "amount": f[4], "currency": currency,
        "acq_bank": acq_bank, "city": city, "merchant_id": pc.utf8_rtrim(f[42], characters=" "),
        "mcc": f[18], "orig_txn_id": orig, "mti": mti, "stan": f[11], "rrn": f[37],
        "response": f[39], "iso_offset": pa.array(offsets, pa.int64()),
        "_iso_kind": pa.array(hint_kind, _S), "_iso_channel": pa.array(hint_channel, _S),
        "_iso_acq": pa.array(hint_acq, _S), "_iso_reason": pa.array(reason, _S),
        "_iso_detail": pa.array(detail, _S),
    }
    return pa.RecordBatch.from_arrays([columns[fld.name] for fld in BATCH_SCHEMA],
                                      schema=BATCH_SCHEMA)


def _quote(value) -> str:
    return "null" if value is None else repr(cardno.redact(str(value)))


def decode_frames(data: np.ndarray, starts: np.ndarray, lens: np.ndarray, layout: Layout,
                  decoder=None) -> tuple[np.ndarray, dict, dict]:
    """``(status, {field: column}, errors)`` for the frames: the compiled decoder where the
    layout allows (``decoder``: a module with ``decode_fields``, default the compiled one
    when built), every message it defers decided by pyiso8583."""
    impl = decoder if decoder is not None and layout.compiled else \
        _decoder if layout.compiled else iso8583_py
    status, cols, errors = impl.decode_fields(data, starts, lens, layout, list(WANTED))
    deferred = np.flatnonzero(status == iso8583_py.DEFER)
    if len(deferred):
        errors = dict(errors)
        patch = [[] for _ in WANTED]
        for i in deferred:
            s = int(starts[i]) + 2
            got, err = iso8583_py.decode_one(bytes(data[s:s + int(lens[i])]), layout.spec,
                                             list(WANTED))
            if err is not None:
                status[i], errors[int(i)] = iso8583_py.BAD, err
                got = [None] * len(WANTED)
            else:
                status[i] = iso8583_py.OK
            for k, v in enumerate(got):
                patch[k].append(v)
        mask = np.zeros(len(status), bool)
        mask[deferred] = True
        cols = [pc.replace_with_mask(c, pa.array(mask), pa.array(v, _S))
                for c, v in zip(cols, patch)]
    return status, dict(zip(WANTED, cols)), errors


def masked_hex(message: bytes, spec: dict, layout: Layout | None = None) -> str:
    """The message as upper-case hex with field 2's digits beyond the first 6 and last 4
    shown as ``*``.  Field 2, the first field after the bitmaps, is found from the bitmap
    and its length prefix; where that cannot be read, pyiso8583 places it, and where it
    cannot either, every run of 12 or more digits is masked the same way, so no card
    number is ever shown whole."""
    text = message.hex().upper()
    binary = spec.get("2", {}).get("data_enc") == "b"
    span = _field2_span(message, layout) if layout is not None else None
    if span is None:
        try:
            _, enc = iso8583.decode(message, spec)
            decoded = True
        except iso8583.DecodeError as exc:
            enc, decoded = exc.doc_enc, False
        except KeyError:
            enc, decoded = {}, False
        raw = enc.get("2", {}).get("data", b"")
        if decoded and not raw:
            return text  # a message without a card number
        start = _find_field(enc, "2") if raw else None
        if start is None:
            return _mask_runs(text, message, binary)
        span = (start, len(raw))
    elif span == ():
        return text
    start, size = span
    chars = list(text)
    if binary:  # one digit per hex character
        first, last = 2 * start, 2 * (start + size)
        hidden = range(first + 6, max(last - 4, first + 6))
    else:  # one digit per byte, two hex characters each
        first, last = start, start + size
        hidden = [c for k in range(first + 6, max(last - 4, first + 6)) for c in (2 * k, 2 * k + 1)]
    for c in hidden:
        if c < len(chars):
            chars[c] = "*"
    return "".join(chars)


def _field2_span(message: bytes, layout: Layout):
    """``(start, bytes)`` of field 2's data, ``()`` when the bitmap says there is none, or
    None when the message is too odd to tell without decoding it."""
    if layout.len_type[0] or layout.max_len[0] and layout.data_bin[0]:
        return None
    pos = int(layout.max_len[0]) + (2 if layout.mti_bin else 4)
    try:
        first = message[pos] if layout.p_bin else int(message[pos:pos + 2].decode("ascii"), 16)
    except (IndexError, ValueError, UnicodeDecodeError):
        return None
    if not first & 0x40:
        return ()
    pos += (8 if layout.p_bin else 16) * (2 if first & 0x80 else 1)
    lt = int(layout.len_type[2])
    prefix = message[pos:pos + lt]
    if len(prefix) != lt or not 0 < lt <= 3:
        return None
    if layout.len_enc[2] == 2:
        n = int.from_bytes(prefix, "big")
    elif layout.len_enc[2] == 1:
        digits = prefix.hex()
        if not digits.isdigit():
            return None
        n = int(digits)
    elif prefix.isdigit():
        n = int(prefix)
    else:
        return None
    if layout.nibbles[2]:
        n = (n + 1) // 2
    return pos + lt, min(n, len(message) - pos - lt)


def _mask_runs(text: str, message: bytes, binary: bool) -> str:
    chars = list(text)
    if binary:
        runs = [(m.start(), m.end()) for m in _HEX_DIGITS.finditer(text)]
        hidden = [c for a, b in runs for c in range(a + 6, b - 4)]
    else:
        runs = [(m.start(), m.end()) for m in _DIGITS.finditer(message)]
        hidden = [c for a, b in runs for k in range(a + 6, b - 4) for c in (2 * k, 2 * k + 1)]
    for c in hidden:
        chars[c] = "*"
    return "".join(chars)


_DIGITS = re.compile(rb"[0-9]{12,}")
_HEX_DIGITS = re.compile(r"[0-9]{12,}")


def _find_field(enc: dict, field: str) -> int | None:
    """Byte offset of a field's data: the encoded parts before it, in decode order."""
    pos = 0
    for key, part in enc.items():  # pyiso8583 fills doc_enc in the order it reads
        pos += len(part["len"])
        if key == field:
            return pos
        pos += len(part["data"])
    return None


# -- the input source ------------------------------------------------------------------------
@dataclass
class IsoOptions:
    """What an ``.iso8583`` input needs besides the file."""

    institutions: object  # txcore.rules.institutions.Institutions
    business_date: dt.date
    layout: Layout
    decoder: object = None


class IsoSource(InputSource):
    """An ``.iso8583`` log as record batches of rows (one per message).

    ``batches()`` yields every message's row with the message-level reject columns;
    ``price(engine, batch)`` prices the others and returns the run's priced and reject
    batches; a file that ends inside a frame is refused (exit 3) naming the offset."""

    def __init__(self, spec: str, batch_size: int, options: IsoOptions):
        super().__init__(spec, batch_size)
        self.options = options
        self._data = None

    def _bytes(self) -> np.ndarray:
        if self._data is None:
            try:
                with open(self.path, "rb") as fh:
                    size = os.fstat(fh.fileno()).st_size
                    self._data = np.frombuffer(
                        mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ), np.uint8) \
                        if size else np.zeros(0, np.uint8)
            except OSError as exc:
                raise InputRefused(f"{self.name}: cannot be read: {exc.strerror or exc}") \
                    from exc
        return self._data

    def expected_rows(self) -> int | None:
        if self.total_rows is None:
            data = self._bytes()
            starts = np.empty(1 << 16, np.int64)
            lens = np.empty(1 << 16, np.int32)
            total, pos = 0, 0
            while True:
                k, pos = _frames().frame_index(data, pos, len(starts), starts, lens)
                total += k
                if k < len(starts):
                    break
            self.total_rows = total
        return self.total_rows

    def _read_iso8583(self):
        data = self._bytes()
        self.schema = ROW_SCHEMA
        starts = np.empty(self.batch_size, np.int64)
        lens = np.empty(self.batch_size, np.int32)
        pos = 0
        while True:
            k, pos = _frames().frame_index(data, pos, self.batch_size, starts, lens)
            if k:
                s, n = starts[:k].copy(), lens[:k].copy()
                status, fields, errors = decode_frames(data, s, n, self.options.layout,
                                                       self.options.decoder)
                yield rows_from_fields(fields, status, errors, s, self.options.business_date,
                                       self.options.institutions)
            if k < self.batch_size:
                break
        if pos != len(data):
            left = len(data) - pos
            if left < 2:
                raise InputRefused(f"{self.name}: ends inside a frame: {left} byte of a length "
                                   f"prefix at byte offset {pos}")
            declared = (int(data[pos]) << 8) | int(data[pos + 1])
            raise InputRefused(f"{self.name}: ends inside a frame: the frame at byte offset "
                               f"{pos} declares {declared} bytes, {left - 2} remain")

    def _checked(self, batch):
        return batch

    # the runner's hooks ------------------------------------------------------------------
    def output_schemas(self) -> tuple[pa.Schema, pa.Schema]:
        return _priced_schema(), _rejects_schema()

    def priceable(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The rows that reach the engine (no message-level reject), hidden columns kept."""
        return batch.filter(pc.is_null(batch.column("_iso_reason"))) \
            .select(ROW_SCHEMA.names)

    def price(self, engine, batch: pa.RecordBatch):
        """``(priced, rejects)`` for one batch of messages; rejects in file order."""
        rows = self.priceable(batch)
        if rows.num_rows:
            priced, rejects = engine.price_batch(rows)
        else:
            priced = pa.RecordBatch.from_pylist([], schema=priced_schema(ROW_SCHEMA))
            rejects = pa.RecordBatch.from_pylist([], schema=rejects_schema(ROW_SCHEMA))
        priced = priced.select(_priced_schema().names)
        rejects = _worded(rejects)
        pre = batch.filter(pc.is_valid(batch.column("_iso_reason")))
        pre = pa.RecordBatch.from_arrays(
            [pre.column(n) for n in _rejects_schema().names if n not in ("iso_hex",
                                                                         "reject_reason",
                                                                         "reject_detail")]
            + [pre.column("_iso_reason"), pre.column("_iso_detail")],
            names=[n for n in _rejects_schema().names if n != "iso_hex"])
        both = pa.Table.from_batches([rejects, pre]).combine_chunks()
        both = both.take(pc.sort_indices(both.column("iso_offset")))
        hexes = [self._hex(o) for o in both.column("iso_offset").to_pylist()]
        at = both.schema.get_field_index("iso_offset") + 1
        both = both.add_column(at, "iso_hex", pa.array(hexes, _S))
        out = both.to_batches()
        return priced, (out[0] if out else pa.RecordBatch.from_pylist([],
                                                                     schema=_rejects_schema()))

    def _hex(self, offset: int) -> str:
        data = self._bytes()
        n = (int(data[offset]) << 8) | int(data[offset + 1])
        layout = self.options.layout
        return masked_hex(bytes(data[offset + 2:offset + 2 + n]), layout.spec, layout)


def _frames():
    return _decoder


def _priced_schema() -> pa.Schema:
    return pa.schema([f for f in priced_schema(ROW_SCHEMA)
                      if f.name not in HINTS and f.name != "iso_offset"])


def _rejects_schema() -> pa.Schema:
    fields = []
    for f in rejects_schema(ROW_SCHEMA):
        if f.name in HINTS:
            continue
        fields.append(f)
        if f.name == "iso_offset":
            fields.append(pa.field("iso_hex", _S))
    return pa.schema(fields)


_HINT_BY_REASON = {"bad_kind": "_iso_kind", "bad_channel": "_iso_channel",
                   "bad_acq_bank": "_iso_acq"}


def _worded(rejects: pa.RecordBatch) -> pa.RecordBatch:
    """The engine's rejects with an ISO field named in the detail where the message gave
    a value txcore has no word for; hidden columns dropped."""
    reason = rejects.column("reject_reason")
    detail = rejects.column("reject_detail")
    for r, hint in _HINT_BY_REASON.items():
        use = pc.and_(pc.equal(reason, r), pc.is_valid(rejects.column(hint)))
        detail = pc.if_else(pc.fill_null(use, False), rejects.column(hint), detail)
    names = [n for n in rejects.schema.names if n not in HINTS]
    cols = [detail if n == "reject_detail" else rejects.column(n) for n in names]
    return pa.RecordBatch.from_arrays(cols, names=names)
