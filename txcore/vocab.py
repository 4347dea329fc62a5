"""The fixed vocabularies of docs/input.md and the reject codes of docs/outputs.md#reject-reasons.

Shared by every backend, by rules validation and by the fixtures generator.
"""
import re

KINDS = ("withdrawal", "transfer", "purchase", "disbursement", "service", "reversal")
CHANNELS = ("atm", "pos", "online", "mobile", "self_service", "counter")
FEE_ITEMS = ("issuance", "loss_report", "annual", "small_account")
BENEFITS = ("medical_aid", "hardship", "school_aid")

#: Channels allowed per kind; kinds absent here carry channel unchecked.
CHANNELS_BY_KIND = {
    "withdrawal": ("atm", "counter"),
    "transfer": ("online", "mobile", "self_service", "counter"),
    "purchase": ("pos",),
}
#: Kinds whose rows have a terminal/payee bank and city (and so cross_bank/same_city).
KINDS_WITH_COUNTERPARTY = ("withdrawal", "transfer")
#: Kinds whose amount must be > 0 (service: >= 0; reversal: not checked).
KINDS_POSITIVE_AMOUNT = ("withdrawal", "transfer", "purchase", "disbursement")
MAX_AMOUNT = 10**12

BANK_RE = re.compile(r"[A-Z0-9]{2,8}")
CITY_RE = re.compile(r"[0-9]{6}")
MCC_RE = re.compile(r"[0-9]{4}")

#: Input columns by name (docs/input.md).  Others are carried through untouched.
INPUT_COLUMNS = (
    "txn_id", "card_no", "ts", "kind", "channel", "amount", "currency", "acq_bank",
    "city", "merchant_id", "mcc", "fee_item", "benefit", "orig_txn_id",
)

#: Output columns appended to every priced row (docs/outputs.md), in order.
PRICED_COLUMNS = (
    "member", "cross_bank", "same_city", "fee_rule", "fee_standard", "fee_waived",
    "fee_charged", "waiver_rule", "free_slot", "discount", "discount_rule", "ruleset",
)
REJECT_COLUMNS = ("reject_reason", "reject_detail")

#: Reject reason codes, in the order the checks run (docs/pricing.md#settled-edge-cases).
#: ISO 8583 message logs only (docs/iso8583.md): before every other check, in this order.
MESSAGE_REJECT_REASONS = ("bad_message", "not_financial", "not_approved")
REJECT_REASONS = MESSAGE_REJECT_REASONS + (
    "missing_field", "bad_txn_id", "bad_card_no", "bad_ts", "bad_kind", "bad_channel",
    "bad_amount", "unsupported_currency", "bad_acq_bank", "bad_city", "bad_mcc",
    "bad_fee_item", "bad_benefit", "no_ruleset", "unknown_card", "duplicate_txn_id",
    "disbursement_to_non_member", "reversal_mismatch", "already_reversed",
)
