"""Memory layouts shared by the Python layer and both compiled kernels.

The pricing kernel (``txcore/_fast/kernel.pyx`` and its numba twin
``kernel_numba.py``) works on numpy structured arrays with these dtypes.  They
are declared ``align=True`` so that each matches, field for field, the C
struct of the same name in ``txcore/_fast/kernel.pxd``; :func:`check_compiled` holds the
compiled module's struct sizes and enum values to these when it loads
(:func:`txcore._fast.load_kernel`).

Days are days since 1970-01-01 (``int32``); instants are microseconds since
the epoch (``int64``); money is fen (``int64``); ``*_rule`` / ``ruleset`` are
codes into the engine's string table (-1 = null).
"""
import numpy as np
import pyarrow as pa

from txcore.timeconv import NEVER  # noqa: F401 (re-exported: a day that never comes)

#: Flags of an index entry.
F_REVERSAL, F_REVERSED, F_WAIVED, F_SLOT = 1, 2, 4, 8

#: Flags of a row for the id pass of a partitioned run (``kernel.verdicts``): a reversal;
#: a disbursement to a card that is not a member that day.
ROW_REVERSAL, ROW_DISB_NON_MEMBER = 1, 2

#: Reason codes the kernel returns per row (0 = priced, -1 = rejected before pricing).
KERNEL_REASONS = {1: "no_ruleset", 2: "unknown_card", 3: "duplicate_txn_id",
                  4: "disbursement_to_non_member", 5: "reversal_mismatch",
                  6: "already_reversed"}

#: State scalars, one int64 array: entries used, counters used, latest day, retention,
#: zero-effect reversals, effects used.
N_ENTRIES, N_COUNTERS, LATEST, RETENTION, ZERO_EFFECT, N_EFFECTS = range(6)
NO_LATEST = np.iinfo(np.int64).min


def _dtype(fields):
    return np.dtype(fields, align=True)


#: A priced transaction of the reversal / txn_id index (one per txn_id in the window):
#: its txn digest, card slot, local day, flags and what it did, as a row of the interned
#: ``EFFECT`` table (-1 for a reversal, whose effect no later row reads).  32 bytes.
ENTRY = _dtype([("key_hi", "u8"), ("key_lo", "u8"), ("card", "i4"), ("day", "i4"),
                ("effect", "i4"), ("flags", "u1")])
#: What a priced row did, as a reversal must undo it: money and rule-id codes.  Rows
#: doing the same thing share one effect (most rows do one of a few hundred thousand
#: things), so the index holds 32 bytes a txn_id instead of 56.
EFFECT = _dtype([("fee_standard", "i8"), ("discount", "i8"), ("discount_rule", "i4"),
                 ("fee_rule", "i2"), ("waiver_rule", "i2"), ("ruleset", "i2")])
#: A slot of the index's hash table: the entry's position (-1 = empty) and the high half
#: of its key's low word, so that most probes settle without touching the entry.
SLOT = _dtype([("fp", "u4"), ("idx", "i4")])
#: Slot tables are at most this full (linear probing, 8 slots a cache line).
MAX_LOAD = 0.7
#: A card known to the state or the registry; ``reg`` is its registry row or -1, and the
#: registry's facts are copied beside it (one cache line holds all a row needs).
CARD = _dtype([("key_hi", "u8"), ("key_lo", "u8"), ("reg", "i4"), ("member_from", "i4"),
               ("member_to", "i4"), ("issuer", "i4"), ("city", "i4")])
#: An index entry's record in the state folder's segments (``txcore.state.segments``;
#: its txn digest is stored apart, in ``hi``/``lo``): the card digest, the money and
#: rule-id codes a reversal would undo (codes of the state's strings file, -1 = null),
#: the local day and flags (``F_*``).  Packed: 56 bytes, as written to disk.
REC = np.dtype([("card_hi", "<u8"), ("card_lo", "<u8"), ("fee_standard", "<i8"),
                ("discount", "<i8"), ("day", "<i4"), ("fee_rule", "<i4"),
                ("waiver_rule", "<i4"), ("discount_rule", "<i4"), ("ruleset", "<i4"),
                ("flags", "u1"), ("pad", "V3")])
#: A free-slot counter: key = card << 36 | waiver id code << 20 | year * 12 + month - 1
#: (cards < 2**28, string codes < 2**16, months < 2**20).
COUNTER = _dtype([("key", "u8"), ("used", "i4")])
#: A registry card: member_from / member_to days (NEVER = none / open), issuer and
#: home city codes.
REG = _dtype([("member_from", "i4"), ("member_to", "i4"), ("issuer", "i4"), ("city", "i4")])
#: A rule-set version: its effective day, zone number, id code and rule ranges.
VERSION = _dtype([("eff", "i4"), ("zone", "i4"), ("ruleset", "i4"), ("fee_lo", "i4"),
                  ("fee_hi", "i4"), ("waiver_lo", "i4"), ("waiver_hi", "i4"),
                  ("disc_lo", "i4"), ("disc_hi", "i4")])
#: A [[fee]], [[waiver]] or [[discount]] rule: conditions as bit masks / tables, then
#: what it does.  ``cross``/``same``: -1 any; ``issuer_off``/``mcc_off``: -1 any,
#: else the start of the rule's row in the issuer / mcc tables.
RULE = _dtype([("amount_below", "i8"), ("cap", "i8"), ("min_spend", "i8"),
               ("kind_mask", "u4"), ("channel_mask", "u4"), ("fee_item_mask", "u4"),
               ("issuer_off", "i4"), ("mcc_off", "i4"), ("code", "i4"), ("band_lo", "i4"),
               ("band_hi", "i4"), ("free_per_month", "i4"), ("discount_bp", "i4"),
               ("cross", "i1"), ("same", "i1"), ("has_below", "u1")])
#: One amount band of a fee rule; ``upto`` -1 = open.
BAND = _dtype([("upto", "i8"), ("fixed", "i8"), ("pct_bp", "i8"), ("min", "i8"), ("max", "i8")])
#: A partner merchant in one version's table (``valid_from`` NEVER = not in it).
MERCH = _dtype([("cap", "i8"), ("min_spend", "i8"), ("valid_from", "i4"), ("valid_to", "i4"),
                ("bp", "i4")])

#: Codes of the per-row columns.
KIND_CODES = {"withdrawal": 0, "transfer": 1, "purchase": 2, "disbursement": 3, "service": 4,
              "reversal": 5}
WITHDRAWAL, TRANSFER, PURCHASE, DISBURSEMENT, SERVICE, REVERSAL_KIND = range(6)
#: channel and fee_item: 0 = none, 1.. = the vocabulary, last = any other text.
CHANNEL_CODES = {"atm": 1, "pos": 2, "online": 3, "mobile": 4, "self_service": 5, "counter": 6}
OTHER_CHANNEL = 7
FEE_ITEM_CODES = {"issuance": 1, "loss_report": 2, "annual": 3, "small_account": 4}
OTHER_FEE_ITEM = 5
MCC_TABLE = 10000  # mcc codes are the 4-digit number; -1 = none

#: The kernel's ``cdef enum`` values (``kernel.pyx``): checked against the compiled
#: module when it loads (:func:`check_compiled`), as the struct sizes are.
KERNEL_ENUMS = {
    "F_REVERSAL": F_REVERSAL, "F_REVERSED": F_REVERSED, "F_WAIVED": F_WAIVED, "F_SLOT": F_SLOT,
    **{"R_" + name: code for name, code in (("NO_RULESET", 1), ("UNKNOWN_CARD", 2),
                                             ("DUPLICATE", 3), ("DISB_NON_MEMBER", 4),
                                             ("MISMATCH", 5), ("ALREADY", 6))},
    "K_WITHDRAWAL": WITHDRAWAL, "K_TRANSFER": TRANSFER, "K_PURCHASE": PURCHASE,
    "K_DISBURSEMENT": DISBURSEMENT, "K_REVERSAL": REVERSAL_KIND,
    "S_N_ENTRIES": N_ENTRIES, "S_N_COUNTERS": N_COUNTERS, "S_LATEST": LATEST,
    "S_RETENTION": RETENTION, "S_ZERO_EFFECT": ZERO_EFFECT, "S_N_EFFECTS": N_EFFECTS,
    "ROW_REVERSAL": ROW_REVERSAL, "ROW_DISB_NON_MEMBER": ROW_DISB_NON_MEMBER,
}
assert [KERNEL_ENUMS["R_" + n] for n in ("NO_RULESET", "UNKNOWN_CARD", "DUPLICATE",
        "DISB_NON_MEMBER", "MISMATCH", "ALREADY")] == sorted(KERNEL_REASONS)

_STRUCTS = ("ENTRY", "EFFECT", "CARD", "COUNTER", "REG", "VERSION", "RULE", "BAND", "MERCH", "SLOT")


def check_compiled(kernel) -> None:
    """Refuse a compiled kernel whose structs or enums differ from this layout (a stale
    build): its sizes and enum values must be the ones declared here."""
    sizes = kernel.sizes()
    for name in _STRUCTS:
        if globals()[name].itemsize != sizes.get(name):
            raise ImportError(f"txcore._fast.kernel: struct {name} is {sizes.get(name)} bytes, "
                              f"txcore._fast.layout says {globals()[name].itemsize}; rebuild")
    enums = kernel.enums()
    if enums != KERNEL_ENUMS or kernel.NO_LATEST_VALUE != NO_LATEST:
        differ = sorted(k for k in set(enums) | set(KERNEL_ENUMS) if enums.get(k) != KERNEL_ENUMS.get(k))
        raise ImportError(f"txcore._fast.kernel: enum values {differ or ['NO_LATEST']} differ from "
                          "txcore._fast.layout; rebuild")


def check_enums(module, names) -> None:
    """Refuse a compiled module (``txcore._fast.idpass``) whose ``enums()`` differ from
    :data:`KERNEL_ENUMS` for ``names`` (a stale build)."""
    enums = module.enums()
    differ = sorted(n for n in names if enums.get(n) != KERNEL_ENUMS[n])
    if differ:
        raise ImportError(f"{module.__name__}: enum values {differ} differ from "
                          f"txcore._fast.layout; rebuild")


class Strings:
    """Interned strings: ``code(text) -> int``, ``values[code] -> text``."""

    def __init__(self, values=()):
        self.values: list[str] = []
        self.codes: dict[str, int] = {}
        self._arrow = None
        for v in values:
            self.code(v)

    def code(self, text: str) -> int:
        c = self.codes.get(text)
        if c is None:
            c = self.codes[text] = len(self.values)
            self.values.append(text)
            self._arrow = None
        return c

    def arrow(self) -> pa.Array:
        if self._arrow is None:
            self._arrow = pa.array(self.values, pa.string())
        return self._arrow

    def decode(self, codes: np.ndarray) -> pa.Array:
        """A string array from codes (-1 = null), with no per-row Python work."""
        indices = pa.array(codes.astype(np.int32, copy=False), mask=codes < 0)
        return pa.DictionaryArray.from_arrays(indices, self.arrow()).cast(pa.string())
