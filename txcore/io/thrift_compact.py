"""Thrift's compact protocol, generically: bytes <-> a tree of fields, and back to the
same bytes.

A Parquet footer (``FileMetaData``) is one compact-protocol struct.  :func:`decode`
turns a struct into a :class:`Struct` — its fields in wire order, each a
``[field id, wire type, value]`` — without knowing what any field means, and
:func:`encode` writes it back.  A caller changes the few fields it knows (by id) and
every other field, including ones added to the format later, is written back as it
was read.  Bytes a writer of the protocol would never produce (a field header in the
long form where the short one fits, a list header likewise, a non-minimal varint) do
not round-trip; :func:`decode_exact` checks the round trip and refuses such input.

Values: integers (byte, i16, i32, i64) as ``int``; a double as its 8 raw bytes; a
binary as ``bytes``; a struct as :class:`Struct`; a list or set as :class:`Seq`
(element type and items; a boolean item is kept as its wire byte); a map as
:class:`Map`; a boolean field as ``True``/``False``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)
_INTEGERS = (BYTE, I16, I32, I64)


class CompactError(ValueError):
    """The bytes are not one well-formed compact-protocol struct."""


class Struct(list):
    """A struct's fields in wire order: ``[field id, wire type, value]`` each."""

    def get(self, fid: int, default=None):
        for f in self:
            if f[0] == fid:
                return f[2]
        return default

    def has(self, fid: int) -> bool:
        return any(f[0] == fid for f in self)

    def set(self, fid: int, value):
        """Change the value of an existing field (its wire type stays)."""
        for f in self:
            if f[0] == fid:
                f[2] = value
                return
        raise KeyError(fid)


@dataclass
class Seq:
    etype: int
    items: list = field(default_factory=list)
    is_set: bool = False


@dataclass
class Map:
    ktype: int
    vtype: int
    items: list = field(default_factory=list)  # [(key, value)]


# ------------------------------------------------------------------------------ decoding
class _Reader:
    def __init__(self, data, pos: int = 0):
        self.data, self.pos = memoryview(data), pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise CompactError("ends in the middle of a struct")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 70:
                raise CompactError("varint longer than 10 bytes")

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def raw(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise CompactError("ends in the middle of a value")
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return out

    def value(self, ttype: int, depth: int):
        if ttype in (TRUE, FALSE):  # only inside a list (a field's bool is in its header)
            return self.byte()
        if ttype == BYTE:
            b = self.byte()
            return b - 256 if b > 127 else b
        if ttype in (I16, I32, I64):
            return self.zigzag()
        if ttype == DOUBLE:
            return self.raw(8)
        if ttype == BINARY:
            return self.raw(self.varint())
        if ttype in (LIST, SET):
            head = self.byte()
            size = head >> 4
            if size == 15:
                size = self.varint()
            etype = head & 0x0F
            return Seq(etype, [self.value(etype, depth + 1) for _ in range(size)], ttype == SET)
        if ttype == MAP:
            size = self.varint()
            if not size:
                return Map(0, 0)
            kv = self.byte()
            return Map(kv >> 4, kv & 0x0F, [(self.value(kv >> 4, depth + 1),
                                             self.value(kv & 0x0F, depth + 1))
                                            for _ in range(size)])
        if ttype == STRUCT:
            return self.struct(depth + 1)
        raise CompactError(f"unknown wire type {ttype}")

    def struct(self, depth: int = 0) -> Struct:
        if depth > 64:
            raise CompactError("structs nested too deep")
        out, last = Struct(), 0
        while True:
            head = self.byte()
            ttype = head & 0x0F
            if ttype == STOP:
                return out
            delta = head >> 4
            fid = last + delta if delta else self.zigzag()
            value = (ttype == TRUE) if ttype in (TRUE, FALSE) else self.value(ttype, depth)
            out.append([fid, ttype, value])
            last = fid


def decode(data, pos: int = 0) -> tuple[Struct, int]:
    """The struct that starts at ``data[pos]``, and the position just after it."""
    reader = _Reader(data, pos)
    return reader.struct(), reader.pos


def decode_exact(data) -> Struct:
    """The struct that ``data`` holds entirely, checked to encode back to ``data``."""
    tree, end = decode(data)
    if end != len(data):
        raise CompactError(f"{len(data) - end} bytes after the struct")
    if encode(tree) != bytes(data):
        raise CompactError("not in the form a Thrift writer gives (would not round-trip)")
    return tree


# ------------------------------------------------------------------------------ encoding
def _varint(n: int, out: bytearray):
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _zigzag(n: int, out: bytearray):
    _varint((n << 1) ^ (n >> 63) if n < 0 else n << 1, out)


def _value(ttype: int, v, out: bytearray):
    if ttype in (TRUE, FALSE):
        out.append(v)
    elif ttype == BYTE:
        out.append(v & 0xFF)
    elif ttype in (I16, I32, I64):
        _zigzag(v, out)
    elif ttype == DOUBLE:
        out += v
    elif ttype == BINARY:
        _varint(len(v), out)
        out += v
    elif ttype in (LIST, SET):
        n = len(v.items)
        if n < 15:
            out.append(n << 4 | v.etype)
        else:
            out.append(0xF0 | v.etype)
            _varint(n, out)
        for item in v.items:
            _value(v.etype, item, out)
    elif ttype == MAP:
        _varint(len(v.items), out)
        if v.items:
            out.append(v.ktype << 4 | v.vtype)
            for key, val in v.items:
                _value(v.ktype, key, out)
                _value(v.vtype, val, out)
    elif ttype == STRUCT:
        _struct(v, out)
    else:
        raise CompactError(f"unknown wire type {ttype}")


def _struct(s: Struct, out: bytearray):
    last = 0
    for fid, ttype, v in s:
        if ttype in (TRUE, FALSE):
            ttype = TRUE if v else FALSE
        delta = fid - last
        if 0 < delta <= 15:
            out.append(delta << 4 | ttype)
        else:
            out.append(ttype)
            _zigzag(fid, out)
        if ttype not in (TRUE, FALSE):
            _value(ttype, v, out)
        last = fid
    out.append(STOP)


def encode(s: Struct) -> bytes:
    out = bytearray()
    _struct(s, out)
    return bytes(out)
