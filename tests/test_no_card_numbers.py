"""No card number at rest or on screen outside the bank's own input and output files.

Scans terminal output, error messages, summary.json and every byte of the
state folder for tokens of 12-19 digits that are Luhn-valid.  (A token: a run
of digits not inside a longer run of letters and digits, so the hex of a
sha256 is not mistaken for a card number.)
"""
from __future__ import annotations

import re
import subprocess
import sys

import pyarrow.parquet as pq

from conftest import FIXTURES, RULES
from txcore._fast.cardcheck_py import is_card_no

TOKEN = re.compile(rb"(?<![0-9A-Za-z])[0-9]{12,19}(?![0-9A-Za-z])")


def card_numbers_in(data: bytes) -> set[bytes]:
    return {m for m in TOKEN.findall(data) if is_card_no(m)}


def txcore(*args):
    return subprocess.run([sys.executable, "-m", "txcore", *map(str, args)],
                          capture_output=True, timeout=300)


def test_the_scanner_finds_card_numbers():
    day = pq.read_table(sorted(FIXTURES.glob("txns-*.parquet"))[0])
    card = day["card_no"][0].as_py().encode()
    assert card_numbers_in(b"paid by " + card + b".") == {card}
    assert card_numbers_in(b"sha " + b"ab" + card + b"cd") == set()


def test_runs_leave_no_card_number_in_output_messages_summary_or_state(tmp_path):
    days = sorted(FIXTURES.glob("txns-*.parquet"))
    state, out = tmp_path / "state", tmp_path / "out"
    common = ["--rules", RULES, "--cards", FIXTURES / "cards.csv", "--merchants",
              FIXTURES / "merchants.csv", "--state", state, "--no-progress"]
    seen = []
    for i, day in enumerate(days):
        proc = txcore("run", *common, "-o", out / str(i), day)
        assert proc.returncode == 0, proc.stderr
        seen += [proc.stdout, proc.stderr, (out / str(i) / "summary.json").read_bytes()]
    again = txcore("run", *common, "-o", out / "again", days[0])  # refused: already committed
    assert again.returncode == 3
    seen += [again.stdout, again.stderr]
    # reference data errors quote rows: still no full card number
    bad_cards = tmp_path / "cards.csv"
    text = (FIXTURES / "cards.csv").read_text().splitlines()
    bad_cards.write_text("\n".join([text[0], text[1], text[1], text[2][:-3] + "999"]) + "\n")
    proc = txcore("run", *common[:2], "--cards", bad_cards, "--state", tmp_path / "s2",
                  "-o", tmp_path / "o2", days[0])
    assert proc.returncode == 2
    seen += [proc.stdout, proc.stderr]
    state_bytes = [p.read_bytes() for p in state.rglob("*") if p.is_file()]
    assert len(state_bytes) >= 4
    # the inputs do hold card numbers, so the scan can find them where they are
    assert card_numbers_in(days[0].read_bytes()) or card_numbers_in(
        (FIXTURES / "cards.csv").read_bytes())
    for blob in seen + state_bytes:
        assert card_numbers_in(blob) == set()


class _Recording:
    """An executor that runs tasks here, but only on what a pickle carries (as a worker
    process would see them), and keeps every task's arguments and result as bytes, and
    the scratch folder's files after each stage."""

    workers = 2
    name = "recording"

    def __init__(self):
        self.messages: list[bytes] = []
        self.scratch: dict[str, bytes] = {}

    def map(self, fn, *iterables):
        return list(self.imap(fn, *iterables))

    def imap(self, fn, *iterables):
        import pickle
        from pathlib import Path
        for args in zip(*iterables):
            sent = pickle.dumps(args, protocol=5)
            self.messages.append(sent)
            result = fn(*pickle.loads(sent))
            back = pickle.dumps(result, protocol=5)
            self.messages.append(back)
            folder = Path(args[0].scratch)
            for f in folder.iterdir():
                self.scratch[f.name] = f.read_bytes()
            yield pickle.loads(back)

    def close(self):
        pass


def test_a_partitioned_run_hands_workers_no_card_number(tmp_path):
    """What crosses between the client and its workers (task arguments and results), and
    the scratch files between tasks, hold digests and masked values only; the card
    numbers are in the input rows a worker reads itself and the output rows it writes
    back (``*.rows``, ``*.out``: the staging folder, as the outputs)."""
    import txcore
    days = sorted(FIXTURES.glob("txns-*.parquet"))[:2]
    cards = set()
    for d in days:
        cards |= {c.encode() for c in pq.read_table(d, columns=["card_no"])["card_no"]
                  .to_pylist() if c}
    recording = _Recording()
    txcore.run(days, rules=RULES, cards=FIXTURES / "cards.csv",
               merchants=FIXTURES / "merchants.csv", out_dir=tmp_path / "out",
               state_dir=tmp_path / "state", progress=False, batch_size=8192,
               engine=recording)
    assert recording.messages and recording.scratch

    def holds_one(data: bytes) -> bool:  # any input's card number, anywhere in the bytes
        return any(card in data for card in cards)

    for message in recording.messages:
        assert not card_numbers_in(message) and not holds_one(message)
    rows_files = 0
    for name, data in recording.scratch.items():
        if name.endswith((".rows", ".out")):
            rows_files += 1
            assert holds_one(data)  # the rows themselves: they do hold them
        else:
            assert not holds_one(data), name
    assert rows_files
