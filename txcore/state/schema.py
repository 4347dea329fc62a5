"""The state folder's tables, defined once: every engine writes and reads exactly these.

Cards and txn_ids are 16-byte keyed digests (:mod:`txcore.state.keys`); months are
``yyyymm`` integers; money is fen.  A reversal's index entry has null money and rule
ids (no later row reads what a reversal did).
"""
import pyarrow as pa

#: A keyed digest of a card number or a txn_id.
KEY = pa.binary(16)

#: Free-slot counters: per card, quota waiver and local month, the slots used.
COUNTERS = pa.schema([
    ("card", KEY), ("waiver_id", pa.string()), ("month", pa.int32()), ("used", pa.int32()),
])

#: The txn-id / reversal index: one entry per priced txn_id within the retention window,
#: with what its row did (so a reversal can undo it) and the free slot it used, if any.
INDEX = pa.schema([
    ("txn", KEY), ("card", KEY), ("local_date", pa.date32()),
    ("is_reversal", pa.bool_()), ("reversed", pa.bool_()),
    ("fee_standard", pa.int64()), ("fee_waived", pa.int64()), ("fee_charged", pa.int64()),
    ("discount", pa.int64()),
    ("fee_rule", pa.string()), ("waiver_rule", pa.string()), ("discount_rule", pa.string()),
    ("ruleset", pa.string()), ("slot_waiver", pa.string()), ("slot_month", pa.int32()),
])
