"""The card key: identifiers at rest are keyed hashes, never the numbers themselves.

The state keeps cards (and txn_ids) as 16-byte keyed digests: SipHash-2-4-128
(``txcore/_fast/encode.pyx``, which hashes whole Arrow columns in one call) under
a 128-bit key derived from the card key.  The key
is 32 random bytes, base64 in a file the operator controls:

* ``--card-key FILE`` or ``TXCORE_CARD_KEY_FILE``: a key file kept elsewhere
  (a secrets mount, a separate volume); created on first use if absent;
* otherwise ``<state>/card.key``, created on first use with mode 0600.

A state records the key's fingerprint, so a run with another key is refused
instead of silently treating every card as new.
"""
from __future__ import annotations

import base64
import hashlib
import os
import secrets
import struct
from pathlib import Path

from txcore import paths
from txcore.errors import StateError

KEY_BYTES = 32
DIGEST_BYTES = 16


def key_path(state_dir: Path, key_file=None) -> Path:
    chosen = key_file or os.environ.get("TXCORE_CARD_KEY_FILE")
    return Path(chosen) if chosen else Path(state_dir) / "card.key"


def load_or_create(path: Path) -> bytes:
    path = paths.regular_file(path, "card key", StateError, missing_ok=True)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # created meanwhile: read it below
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(base64.b64encode(secrets.token_bytes(KEY_BYTES)) + b"\n")
                fh.flush()
                os.fsync(fh.fileno())
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except (OSError, ValueError) as exc:
        raise StateError(f"card key {path}: cannot be read: {exc}") from exc
    if len(key) != KEY_BYTES:
        raise StateError(f"card key {path}: want {KEY_BYTES} bytes (base64), got {len(key)}")
    return key


class Keyer:
    """``keyer(text) -> 16 bytes``: the keyed digest of an identifier.

    ``k0, k1`` are the SipHash key words, for the column-at-a-time hashing of
    :mod:`txcore.engine.encoder`; the digest is ``hi, lo`` as two big-endian words.
    """

    def __init__(self, key: bytes | None = None):
        self.key = key if key is not None else secrets.token_bytes(KEY_BYTES)
        self.fingerprint = hashlib.blake2b(b"txcore key fingerprint", key=self.key,
                                           digest_size=8).hexdigest()
        words = hashlib.blake2b(b"txcore siphash key", key=self.key, digest_size=16).digest()
        self.k0, self.k1 = struct.unpack("<QQ", words)

    def words(self, text: str) -> tuple[int, int]:
        from txcore._fast import compiled_or_twin
        return compiled_or_twin("encode").siphash128(text.encode("utf-8", "surrogatepass"), self.k0, self.k1)

    def __call__(self, text: str) -> bytes:
        return struct.pack(">QQ", *self.words(text))
