"""The ISO 8583 decoders: the compiled ``iso8583.pyx`` against pyiso8583 (its twin,
``iso8583_py.py``), on messages pyiso8583's own encoder makes — well formed and
malformed — over the default ASCII specification and a BCD one, and on mutated logs.

Both must agree on every message: the same status, the same field values, the same
reject (field and reason), so the same rows reach the engine."""
from __future__ import annotations

import copy
import datetime as dt
import random

import iso8583
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iso8583.specs import default_ascii

from txcore._fast import iso8583_py
from txcore.io import iso8583 as iso
from txcore.rules.institutions import Institutions

compiled = pytest.importorskip("txcore._fast.iso8583", reason="compiled extension not built")


def bcd_spec() -> dict:
    """Binary MTI and bitmaps; the numeric fields BCD, left-padded, BCD lengths."""
    spec = copy.deepcopy(default_ascii)
    for key in ("t", "p", "1"):
        spec[key]["data_enc"] = "b"
    for key in ("2", "3", "4", "7", "11", "12", "13", "18", "22", "32", "49"):
        fs = spec[key]
        fs.update(data_enc="b", len_count="nibbles", left_pad="0")
        if fs["len_type"]:
            fs.update(len_enc="bcd", len_type=1)
    return spec


def primary_only_spec() -> dict:
    """A specification without field 1: a message with a secondary bitmap is bad."""
    spec = copy.deepcopy(default_ascii)
    del spec["1"]
    return spec


SPECS = {"ascii": default_ascii, "bcd": bcd_spec(), "primary-only": primary_only_spec()}
LAYOUTS = {name: iso.Layout(spec) for name, spec in SPECS.items()}
INSTITUTIONS = Institutions(pa.array(["12345", "350500"]), pa.array(["CMB", "CIB"]),
                            pa.array(["350500", "350200"]))
BUSINESS_DATE = dt.date(2015, 10, 30)


def test_both_specs_have_the_compiled_layout():
    assert compiled.CYTHON_MODULE == 1 and iso8583_py.CYTHON_MODULE == 0
    assert all(layout.compiled for layout in LAYOUTS.values())
    odd = copy.deepcopy(default_ascii)
    odd["2"]["data_enc"] = "cp500"  # EBCDIC: pyiso8583 alone decodes it
    assert not iso.Layout(odd).compiled


def framed(messages) -> bytes:
    return b"".join(len(m).to_bytes(2, "big") + m for m in messages)


def index(data: bytes, impl):
    arr = np.frombuffer(data, np.uint8)
    starts, lens = np.empty(len(data) + 1, np.int64), np.empty(len(data) + 1, np.int32)
    k, pos = impl.frame_index(arr, 0, len(starts), starts, lens)
    return arr, starts[:k].copy(), lens[:k].copy(), pos


def decode_both(data: bytes, spec_name: str):
    """Decode a log with each decoder; assert they agree; return the compiled result."""
    layout = LAYOUTS[spec_name]
    arr, starts, lens, pos = index(data, compiled)
    arr2, starts2, lens2, pos2 = index(data, iso8583_py)
    assert pos == pos2 and np.array_equal(starts, starts2) and np.array_equal(lens, lens2)
    got_c = iso.decode_frames(arr, starts.copy(), lens.copy(), layout, decoder=compiled)
    got_p = iso.decode_frames(arr, starts.copy(), lens.copy(), layout, decoder=iso8583_py)
    (sc, fc, ec), (sp, fp, ep) = got_c, got_p
    assert np.array_equal(sc, sp)
    assert ec == ep
    for k in iso.WANTED:
        assert fc[k].to_pylist() == fp[k].to_pylist(), f"field {k}"
    rows_c = iso.rows_from_fields(fc, sc, ec, starts, BUSINESS_DATE, INSTITUTIONS)
    rows_p = iso.rows_from_fields(fp, sp, ep, starts, BUSINESS_DATE, INSTITUTIONS)
    assert rows_c.equals(rows_p)
    return got_c, starts


# -- messages from pyiso8583's encoder ------------------------------------------------------
DIGITS = "0123456789"
PRINTABLE = st.characters(min_codepoint=32, max_codepoint=126)


def numeric(n, bcd):
    """n digits; in the ASCII spec sometimes non-digits (pyiso8583 does not check)."""
    good = st.text(DIGITS, min_size=n, max_size=n)
    return good if bcd else st.one_of(good, good, st.text(PRINTABLE, min_size=n, max_size=n))


@st.composite
def message_fields(draw, bcd: bool):
    fields = {"t": draw(st.sampled_from(["0200", "0210", "0220", "0420", "0421", "0800",
                                         "0100", "0430"])) if not draw(st.booleans()) or bcd
              else draw(st.text(DIGITS, min_size=4, max_size=4))}
    optional = {
        "2": st.text(DIGITS, min_size=1, max_size=19),
        "3": st.sampled_from(["010000", "000000", "400000", "200000", "990000"]),
        "4": numeric(12, bcd), "7": numeric(10, bcd), "11": numeric(6, bcd),
        "12": numeric(6, bcd),
        "13": st.sampled_from(["1029", "0101", "1231", "0229", "1340"]) | numeric(4, bcd),
        "18": st.sampled_from(["6011", "6010", "5411", "4829"]),
        "22": st.sampled_from(["051", "810", "820"]),
        "32": st.text(DIGITS, min_size=1, max_size=11),
        "37": st.text(PRINTABLE, min_size=12, max_size=12),
        "39": st.sampled_from(["00", "05", "51"]),
        "42": st.text(PRINTABLE, min_size=15, max_size=15),
        "49": st.sampled_from(["156", "840"]),
        "90": st.text(DIGITS, min_size=42, max_size=42),
        "70": st.just("301"),
        "128": st.text("0123456789ABCDEF", min_size=16, max_size=16),
    }
    for key, strategy in optional.items():
        if draw(st.integers(0, 4)):
            fields[key] = draw(strategy)
    return fields


def encode(fields, spec) -> bytes:
    msg, _ = iso8583.encode(dict(fields), spec)
    return bytes(msg)


def set_bitmap_bit(message: bytes, spec_name: str, bit: int) -> bytes:
    """Turn on a primary-bitmap bit for a field the message does not carry."""
    if spec_name == "bcd":
        bits = int.from_bytes(message[2:10], "big") | (1 << (64 - bit))
        return message[:2] + bits.to_bytes(8, "big") + message[10:]
    bits = int(message[4:20], 16) | (1 << (64 - bit))
    return message[:4] + f"{bits:016X}".encode() + message[20:]


@st.composite
def malformed(draw, message: bytes, spec_name: str):
    how = draw(st.sampled_from(["none", "none", "truncate", "extra", "bit", "byte", "length"]))
    if how == "truncate" and len(message) > 1:
        return message[:draw(st.integers(0, len(message) - 1))]
    if how == "extra":
        return message + draw(st.binary(min_size=1, max_size=5))
    if how == "bit":
        return set_bitmap_bit(message, spec_name, draw(st.integers(2, 64)))
    if how == "byte" and message:
        i = draw(st.integers(0, len(message) - 1))
        return message[:i] + bytes([draw(st.integers(0, 255))]) + message[i + 1:]
    if how == "length":  # an LL length that lies: field 2's, just after the bitmap(s)
        at = 10 if spec_name == "bcd" else 20
        if len(message) > at + 1:
            return message[:at] + draw(st.binary(min_size=1, max_size=1)) + message[at + 1:]
    return message


@pytest.mark.parametrize("spec_name", ["ascii", "bcd"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_decoders_agree_on_encoded_messages(spec_name, data):
    spec = SPECS[spec_name]
    messages = []
    for _ in range(data.draw(st.integers(1, 6))):
        fields = data.draw(message_fields(spec_name == "bcd"))
        try:
            message = encode(fields, spec)
        except iso8583.EncodeError:
            continue  # a value this specification cannot carry: not a message
        messages.append(data.draw(malformed(message, spec_name)))
    log = framed(messages)
    if data.draw(st.booleans()) and log:  # a log cut anywhere: the frames before agree too
        log = log[:data.draw(st.integers(0, len(log)))]
    decode_both(log, spec_name)


def test_well_formed_messages_decode_to_pyiso8583s_fields():
    fields = {"t": "0200", "2": "6225880000000001", "3": "010000", "4": "000000010000",
              "7": "1029101010", "11": "000001", "12": "101010", "13": "1029", "18": "6011",
              "32": "12345", "37": "RRN000000001", "42": "MERCHANT1      ", "49": "156",
              "90": "0" * 42, "128": "ABCDEF0123456789"}
    for name in ("ascii", "bcd"):
        spec = SPECS[name]
        (status, cols, errors), _ = decode_both(framed([encode(fields, spec)] * 3), name)
        assert list(status) == [0, 0, 0] and errors == {}
        for k in iso.WANTED:
            want = fields.get("t" if k == 0 else str(k))
            assert cols[k].to_pylist() == [want] * 3, (name, k)


def test_every_malformation_is_a_bad_message_with_pyiso8583s_reason():
    good = encode({"t": "0200", "2": "6225880000000001", "3": "010000", "4": "000000010000",
                   "11": "000001"}, default_ascii)
    cases = {
        "truncated": good[:-2],
        "bit without field": set_bitmap_bit(good, "ascii", 7),
        "bad LL length": good[:20] + b"X" + good[21:],
        "not ASCII": good[:30] + b"\xff" + good[31:],
        "extra data": good + b"00",
        "empty": b"",
        "non-hex bitmap": good[:4] + b"Z" + good[5:],
    }
    (status, _, errors), _ = decode_both(framed(cases.values()), "ascii")
    assert list(status) == [iso8583_py.BAD] * len(cases)
    reasons = [errors[i] for i in range(len(cases))]
    assert reasons[0] == ("11", "Field data is 4 bytes, expecting 6")
    assert reasons[3] == ("2", "Failed to decode field, invalid data")
    assert reasons[4][1] == "Extra data after last field"


def test_a_secondary_bitmap_the_specification_does_not_define_is_a_bad_message():
    with_secondary = encode({"t": "0800", "11": "000001", "70": "301"}, default_ascii)
    plain = encode({"t": "0800", "11": "000002"}, default_ascii)
    (status, _, errors), _ = decode_both(framed([with_secondary, plain]), "primary-only")
    assert list(status) == [iso8583_py.BAD, iso8583_py.OK]
    assert errors == {0: ("1", "field not in the specification")}


# -- fuzzing: mutated logs -------------------------------------------------------------------
def base_logs():
    """Small logs of realistic traffic (as the fixture switch writes it), ASCII and BCD."""
    fields = [
        {"t": "0200", "2": "6214851028745979", "3": "010000", "4": "000000010000",
         "7": "1029101010", "11": "000001", "12": "101010", "13": "1029", "18": "6011",
         "22": "051", "32": "01350500", "37": "151029000001", "49": "156"},
        {"t": "0210", "2": "6229091234567890123", "3": "000000", "4": "000000001234",
         "7": "1029111111", "11": "000002", "12": "111111", "13": "1029", "18": "5411",
         "32": "02350500", "37": "151029000002", "39": "00", "42": "QZ000123       "},
        {"t": "0420", "2": "6214851028745979", "3": "000000", "4": "000000010000",
         "7": "1029121212", "11": "000003", "12": "121212", "13": "1029", "32": "01350500",
         "90": "0200000001102910101000001350500" + "0" * 11},
        {"t": "0800", "7": "1029130000", "11": "000004", "70": "301"},
    ]
    return {name: [encode(f, SPECS[name]) for f in fields] for name in ("ascii", "bcd")}


def mutate(log: bytes, rng: random.Random) -> bytes:
    out = bytearray(log)
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        i = rng.randrange(len(out) + 1)
        if op < 0.45 and out:
            out[min(i, len(out) - 1)] = rng.randrange(256)
        elif op < 0.6 and out:
            out[min(i, len(out) - 1)] ^= 1 << rng.randrange(8)
        elif op < 0.75:
            out[i:i] = bytes([rng.choice(b"0123456789ABCDEF\x00\xff ")])
        elif op < 0.9 and out:
            del out[min(i, len(out) - 1)]
        else:
            del out[i:]
    return bytes(out)


FUZZ_LOGS = 10_000


def test_fuzz_mutated_logs_never_crash_and_decoders_agree():
    """10,000 mutated logs (deterministic): both decoders frame each log alike, agree on
    every frame, and every frame is a decoded row or a bad_message — never an exception.
    The frames of all logs are decoded in one call per specification (a decoder takes
    any frame positions in a buffer), the rows built from both results compared."""
    rng = random.Random(8583)
    logs = base_logs()
    for name in ("ascii", "bcd"):
        messages = logs[name]
        buffer, all_starts, all_lens = bytearray(), [], []
        for _ in range(FUZZ_LOGS // 2):
            log = mutate(framed(rng.sample(messages, rng.randint(1, len(messages)))), rng)
            _, starts, lens, pos = index(log, compiled)
            _, starts2, lens2, pos2 = index(log, iso8583_py)
            assert pos == pos2 and np.array_equal(starts, starts2) \
                and np.array_equal(lens, lens2)
            all_starts.append(starts + len(buffer))
            all_lens.append(lens)
            buffer += log
        arr = np.frombuffer(bytes(buffer), np.uint8)
        starts, lens = np.concatenate(all_starts), np.concatenate(all_lens)
        layout = LAYOUTS[name]
        sc, fc, ec = iso.decode_frames(arr, starts.copy(), lens.copy(), layout, compiled)
        sp, fp, ep = iso.decode_frames(arr, starts.copy(), lens.copy(), layout, iso8583_py)
        assert np.array_equal(sc, sp) and ec == ep
        for k in iso.WANTED:
            assert fc[k].equals(fp[k]), f"field {k}"
        assert set(ec) == set(np.flatnonzero(sc == iso8583_py.BAD).tolist())
        rows_c = iso.rows_from_fields(fc, sc, ec, starts, BUSINESS_DATE, INSTITUTIONS)
        assert rows_c.equals(iso.rows_from_fields(fp, sp, ep, starts, BUSINESS_DATE,
                                                  INSTITUTIONS))
        assert rows_c.num_rows == len(starts)
        # the mutations reach both outcomes, and the compiled loop decodes many frames itself
        assert (sc == iso8583_py.OK).sum() > 1000 and len(ec) > 1000
        raw = compiled.decode_fields(arr, starts, lens, layout, list(iso.WANTED))[0]
        assert (raw == iso8583_py.OK).sum() > 1000
