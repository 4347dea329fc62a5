"""Pure-Python twin of ``encode.pyx``: the same functions over the same buffers.

It is the readable statement of the digests and text parsers, and the fallback
when the extension is not built; ``tests/test_encode.py`` holds the two equal.
"""
import datetime as dt

from txcore._fast.cardcheck_py import is_card_no
from txcore.timeconv import day_number

CYTHON_MODULE = 0
_M = (1 << 64) - 1


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & _M


def _rounds(v, n):
    for _ in range(n):
        v[0] = (v[0] + v[1]) & _M; v[1] = _rotl(v[1], 13); v[1] ^= v[0]; v[0] = _rotl(v[0], 32)
        v[2] = (v[2] + v[3]) & _M; v[3] = _rotl(v[3], 16); v[3] ^= v[2]
        v[0] = (v[0] + v[3]) & _M; v[3] = _rotl(v[3], 21); v[3] ^= v[0]
        v[2] = (v[2] + v[1]) & _M; v[1] = _rotl(v[1], 17); v[1] ^= v[2]; v[2] = _rotl(v[2], 32)


def siphash128(data, k0, k1):
    """SipHash-2-4 with 128-bit output: ``(hi, lo)``."""
    data = bytes(data)
    v = [k0 ^ 0x736f6d6570736575, k1 ^ 0x646f72616e646f6d ^ 0xee,
         k0 ^ 0x6c7967656e657261, k1 ^ 0x7465646279746573]
    n = len(data)
    end = n - n % 8
    for i in range(0, end, 8):
        m = int.from_bytes(data[i:i + 8], "little")
        v[3] ^= m
        _rounds(v, 2)
        v[0] ^= m
    m = ((n & 0xff) << 56) | int.from_bytes(data[end:], "little")
    v[3] ^= m
    _rounds(v, 2)
    v[0] ^= m
    v[2] ^= 0xee
    _rounds(v, 4)
    hi = v[0] ^ v[1] ^ v[2] ^ v[3]
    v[1] ^= 0xdd
    _rounds(v, 4)
    return hi, v[0] ^ v[1] ^ v[2] ^ v[3]


def _valid(validity, j) -> bool:
    """Whether slot ``j`` of a validity bitmap (empty: no nulls) is set."""
    return not len(validity) or bool((validity[j >> 3] >> (j & 7)) & 1)


def _values(offsets, data, validity, offset, n):
    data = bytes(data)
    for i in range(n):
        j = i + offset
        yield i, data[offsets[j]:offsets[j + 1]] if _valid(validity, j) else None


def hash_strings(offsets, data, validity, offset, k0, k1, hi, lo, length):
    for i, raw in _values(offsets, data, validity, offset, len(hi)):
        if raw is None:
            hi[i], lo[i], length[i] = 0, 0, -1
        else:
            (hi[i], lo[i]), length[i] = siphash128(raw, k0, k1), len(raw)


def _ascii_int(raw: bytes):
    return int(raw) if raw and all(48 <= b <= 57 for b in raw) else None


def _mcc(raw: bytes) -> int:
    """0..9999 for exactly four ASCII digits, -1 for "", -2 for anything else."""
    if not raw:
        return -1
    value = _ascii_int(raw) if len(raw) == 4 else None
    return -2 if value is None else value


def _integer(raw: bytes):
    """``[+-]?[0-9]{1,18}`` as a number, or None."""
    sign, body = (-1, raw[1:]) if raw[:1] == b"-" else (1, raw[1:] if raw[:1] == b"+" else raw)
    v = _ascii_int(body) if 1 <= len(body) <= 18 else None
    return None if v is None else sign * v


def parse_ts(raw: bytes):
    """``(status, wall_us, offset_s)``: status 1 naive, 2 with offset, 0 not parsed."""
    if len(raw) < 16 or raw[4:5] != b"-" or raw[7:8] != b"-" or raw[13:14] != b":" \
            or raw[10:11] not in (b"T", b" "):
        return 0, 0, 0
    parts = [_ascii_int(raw[a:b]) for a, b in ((0, 4), (5, 7), (8, 10), (11, 13), (14, 16))]
    if None in parts:
        return 0, 0, 0
    y, mo, d, hh, mi = parts
    ss, micro, p = 0, 0, 16
    if raw[p:p + 1] == b":":
        ss = _ascii_int(raw[p + 1:p + 3]) if len(raw) - p >= 3 else None
        if ss is None or ss > 59:
            return 0, 0, 0
        p += 3
        if raw[p:p + 1] in (b".", b","):
            p += 1
            k = 0
            while p < len(raw) and k < 9 and 48 <= raw[p] <= 57:
                k += 1
                p += 1
            if k == 0:
                return 0, 0, 0
            micro = int(raw[p - k:p][:6].ljust(6, b"0"))
    status, off = 1, 0
    rest = raw[p:]
    if rest == b"Z":
        status = 2
    elif len(rest) == 6 and rest[:1] in (b"+", b"-") and rest[3:4] == b":":
        oh, om = _ascii_int(rest[1:3]), _ascii_int(rest[4:6])
        if oh is None or om is None or oh > 23 or om > 59:
            return 0, 0, 0
        off, status = (oh * 3600 + om * 60) * (-1 if rest[:1] == b"-" else 1), 2
    elif rest:
        return 0, 0, 0
    try:
        day = day_number(dt.date(y, mo, d))
        dt.time(hh, mi, ss)
    except ValueError:
        return 0, 0, 0
    return status, ((day * 86400 + hh * 3600 + mi * 60 + ss) * 1_000_000 + micro), off


def parse_timestamps(offsets, data, validity, offset, wall, off, status):
    for i, raw in _values(offsets, data, validity, offset, len(wall)):
        status[i], wall[i], off[i] = (0, 0, 0) if raw is None else parse_ts(raw)


def parse_integers(offsets, data, validity, offset, value, status):
    for i, raw in _values(offsets, data, validity, offset, len(value)):
        v = None if raw is None else _integer(raw)
        value[i], status[i] = (0, 0) if v is None else (v, 1)


def match_words(offsets, data, validity, offset, word_offsets, words, codes, other, none, out):
    """See ``encode.pyx``: each value's code in a small fixed vocabulary."""
    vocab = {bytes(words[word_offsets[k]:word_offsets[k + 1]]): int(codes[k])
             for k in range(len(codes))}
    for i, raw in _values(offsets, data, validity, offset, len(out)):
        out[i] = none if not raw else vocab.get(raw, other)


def parse_mccs(offsets, data, validity, offset, out):
    """See ``encode.pyx``: 0..9999, -1 null or "", -2 malformed."""
    for i, raw in _values(offsets, data, validity, offset, len(out)):
        out[i] = -1 if raw is None else _mcc(raw)


def digest_rows(columns, n):
    """See ``encode.pyx``: the canonical rows, or None when text needs escaping."""
    decoded = []
    for kind, offsets, data, values, validity, offset in columns:
        vals = []
        for i in range(n):
            j = i + offset
            if not _valid(validity, j):
                vals.append(b"null")
            elif kind == 0:
                raw = bytes(data[offsets[j]:offsets[j + 1]])
                if any(b < 32 or b in (34, 92) for b in raw):
                    return None
                vals.append(b'"' + raw + b'"')
            elif kind == 3:
                vals.append(b"true" if (data[j >> 3] >> (j & 7)) & 1 else b"false")
            else:
                vals.append(str(int(values[j])).encode())
        decoded.append(vals)
    return bytearray(b"".join(b"[" + b",".join(row) + b"]\n" for row in zip(*decoded)))


# -- the fused pass ------------------------------------------------------------------------
FUSED_TEXT = ("txn_id", "orig_txn_id", "card_no", "kind", "channel", "fee_item", "currency",
              "benefit", "mcc", "amount", "acq_bank", "city", "merchant_id")
FUSED_WORDS = ("kind", "channel", "fee_item", "currency", "benefit")
FUSED_TABLES = ("acq_bank", "city", "merchant_id")
NOT_IN_TABLE = -3
R_COUNTERPARTY, R_FEE_ITEM, R_MERCHANT, R_BENEFIT, R_REVERSAL = 1, 2, 4, 8, 16


def _row_values(text, n):
    """Each row's bytes (None for null) of one ``(offsets, data, validity, offset)``, of
    a dictionary (those of its strings, then ``(indices, validity, offset)``), or of an
    absent column (None: every value null)."""
    if text is None:
        return [None] * n
    if len(text) == 7:
        offsets, data, validity, offset, index, index_validity, index_offset = text
        data, rows = bytes(data), []
        for j in range(index_offset, index_offset + n):
            k = int(index[j]) + offset if _valid(index_validity, j) else None
            rows.append(None if k is None or not _valid(validity, k)
                        else data[offsets[k]:offsets[k + 1]])
        return rows
    return [raw for _, raw in _values(*text, n)]


def encode_rows(texts, words, tables, k0, k1, kind_rules, channel_ok, min_amount, max_amount,
                parse_amount, bank, city, merchant, txn_hi, txn_lo, orig_hi, orig_lo, card_hi,
                card_lo, kind, channel, fee_item, mcc, amount, amount_ok, slow, other_channel,
                other_fee_item):
    """See ``encode.pyx``: every per-row text job of the encoder, row by row."""
    n = len(slow)
    col = dict(zip(FUSED_TEXT, (_row_values(t, n) for t in texts)))
    vocab = {name: {bytes(w[word_offsets[k]:word_offsets[k + 1]]): int(codes[k])
                    for k in range(len(codes))}
             for name, (word_offsets, w, codes) in zip(FUSED_WORDS + FUSED_TABLES,
                                                       words + tables)}

    def code(name, i, other, none):
        raw = col[name][i]
        return none if not raw else vocab[name].get(raw, other)

    def digest(name, i):
        raw = col[name][i]
        return (0, 0, -1) if raw is None else (*siphash128(raw, k0, k1), len(raw))

    for i in range(n):
        txn_hi[i], txn_lo[i], txn_len = digest("txn_id", i)
        orig_hi[i], orig_lo[i], orig_len = digest("orig_txn_id", i)
        card_hi[i], card_lo[i], _ = digest("card_no", i)
        card = col["card_no"][i]
        kd = code("kind", i, -1, -1)
        ch = code("channel", i, other_channel, 0)
        fe = code("fee_item", i, other_fee_item, 0)
        kind[i], channel[i], fee_item[i] = kd, ch, fe
        mcc[i] = -1 if col["mcc"][i] is None else _mcc(col["mcc"][i])
        if parse_amount:
            raw = col["amount"][i]
            value = None if raw is None else _integer(raw)
            amount[i], amount_ok[i] = (0, 0) if value is None else (value, 1)
        bank[i] = code("acq_bank", i, NOT_IN_TABLE, -1)
        city[i] = code("city", i, NOT_IN_TABLE, -1)
        me = code("merchant_id", i, -1, -2)
        rules = int(kind_rules[kd]) if kd >= 0 else 0
        bad = (
            card is None or not is_card_no(card)
            or kd < 0 or not channel_ok[kd, ch]
            or code("currency", i, 0, 1) == 0
            or mcc[i] == -2
            or not 0 < txn_len <= 64
            or rules & R_COUNTERPARTY and -1 in (bank[i], city[i])
            or rules & R_FEE_ITEM and fe in (0, other_fee_item)
            or rules & R_MERCHANT and me == -2
            or rules & R_BENEFIT and code("benefit", i, 0, 1) == 0
            or not amount_ok[i]
            or (not 0 < orig_len <= 64 if rules & R_REVERSAL
                else not min_amount[kd] <= amount[i] <= max_amount))
        slow[i] = slow[i] or bad
        merchant[i] = max(me, -1)
