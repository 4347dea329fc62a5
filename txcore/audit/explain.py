"""``txcore explain TXN_ID``: why a transaction was priced as it was, in words.

The inputs up to the transaction are re-priced with the reference engine (so
the card-month's free-slot count is the one the row saw); at the row itself
every fee rule before the one that matched is shown with the reason it did not
apply, then the waiver and the slot count before and after, then the discount.
"""
from __future__ import annotations

from txcore import cardno, money
from txcore.errors import UsageError
from txcore.engine.reference import ReferenceEngine, facts_of, in_force
from txcore.io.reader import DEFAULT_BATCH_SIZE
from txcore.rules.refdata import load_cards, load_merchants
from txcore.rules.book import load_book
from txcore.runner import business_date_of, open_sources
from txcore.state.memory import State
from txcore.engine.validate import Reject, validate_batch
from txcore.vocab import KINDS_WITH_COUNTERPARTY


def yuan(fen: int) -> str:
    return f"{money.yuan(fen)} CNY"


def explain(txn_id: str, files, *, rules, cards, merchants=None, priced=None,
            business_date=None, institutions=None, iso_spec=None) -> str:
    """The explanation of ``txn_id``; with ``priced`` (a priced file or folder of them,
    as recorded), also the recorded values and whether the re-pricing agrees.
    ``business_date``: as for ``txcore.run`` (docs/business-date.md); ``institutions`` and
    ``iso_spec`` for ``.iso8583`` inputs (docs/iso8583.md)."""
    book = load_book(rules, load_merchants(merchants) if merchants else None)
    registry = load_cards(cards)
    business = business_date_of(business_date, files, book)[0]
    engine = ReferenceEngine(book, registry, State(), business)
    for source in open_sources(files, DEFAULT_BATCH_SIZE, book, institutions, business,
                               iso_spec):
        for batch in source.batches():
            for outcome in validate_batch(source.priceable(batch), engine.times):
                if isinstance(outcome, Reject):
                    continue  # a rejected row has its reason in the reject file
                if outcome.txn_id == txn_id:
                    lines, result = _explain_row(engine, outcome, source.name)
                    if priced is not None:
                        lines.append(_recorded(txn_id, result, priced))
                    # a txn_id (or an original's) that is a card number is printed masked
                    return cardno.mask_names("\n".join(lines))
                engine.price(outcome)
    raise UsageError(f"transaction {txn_id!r} is not among the priced rows of the inputs")


def _recorded(txn_id, result, priced) -> str:
    """Whether the recorded priced row agrees with this re-pricing."""
    import pyarrow.compute as pc

    from txcore.audit.replay import COMPARED, read_recorded
    recorded = read_recorded(priced)
    rows = recorded.filter(pc.equal(pc.cast(recorded["txn_id"], "string"), txn_id)).to_pylist()
    if not rows:
        return f"  Recorded: {txn_id} is not in {priced}."
    if isinstance(result, Reject):
        return f"  Recorded: priced, but re-pricing rejects it ({result.reason})."
    diffs = [f"{c} recorded {rows[0][c]!r}, re-priced {getattr(result, c)!r}" for c in COMPARED
             if c in rows[0] and str(rows[0][c]) != str(getattr(result, c))]
    if not diffs:
        return "  Recorded: the priced output agrees on every priced column."
    return "  Recorded: DIFFERS - " + "; ".join(diffs) + "."


def _explain_row(engine: ReferenceEngine, txn, file_name: str) -> tuple[list[str], object]:
    """The explanation's lines, and the row's outcome (Priced or Reject)."""
    book, state = engine.book, engine.state
    card = engine.cards.get(txn.card_no)
    found = in_force(book, txn.ts)  # what the engine itself derives, so the two cannot drift
    lines = [f"Transaction {txn.txn_id} ({file_name})"]
    if found is None or card is None:
        result = engine.price(txn)
        return lines + [f"  Rejected: {result.reason} ({result.detail})."], result
    version, local_date, instant = found
    local = instant.astimezone(version.zone)
    member = card.is_member(local_date)
    what = f"{txn.kind} by card {cardno.mask(txn.card_no)}"
    if txn.channel:
        what += f" via {txn.channel}"
    if txn.kind in KINDS_WITH_COUNTERPARTY:
        what += f" at bank {txn.acq_bank} in city {txn.city}"
    if txn.merchant_id:
        what += f" at merchant {txn.merchant_id}"
    if txn.fee_item:
        what += f" ({txn.fee_item})"
    lines.append(f"  What: {what}, amount {yuan(txn.amount or 0)}, on "
                 f"{local:%Y-%m-%d %H:%M} local time ({version.timezone}).")
    since = card.member_from.isoformat() if card.member_from else "never"
    lines.append(f"  Card: issued by {card.issuer}, home city {card.home_city}, union unit "
                 f"{card.unit or '-'}, member from {since}"
                 + (f" to {card.member_to}" if card.member_to else "")
                 + f" -> {'a member' if member else 'NOT a member'} on {local_date}.")
    lines.append(f"  Rules: version {version.id} (in force from {version.effective_from}, "
                 f"file {version.source.name}).")
    facts = facts_of(txn, card)
    cross, same = facts.cross_bank, facts.same_city
    if txn.kind in KINDS_WITH_COUNTERPARTY:
        lines.append(f"  So: {'another bank (cross-bank)' if cross else 'the card’s own bank'}, "
                     f"{'the home city' if same else 'another city'}.")
    month = (local_date.year, local_date.month)
    slots_before = {w.id: state.used(state.card_key(txn.card_no), w.id, month)
                    for w in version.waivers if w.free_per_month}
    result = engine.price(txn)
    if isinstance(result, Reject):
        return lines + [f"  Rejected: {result.reason} ({result.detail})."], result
    if txn.kind == "reversal":
        lines.append(f"  A reversal of {txn.orig_txn_id}: it carries the original's amounts "
                     f"negated (fee {yuan(result.fee_standard)}, waived {yuan(result.fee_waived)}"
                     f", charged {yuan(result.fee_charged)}, discount {yuan(result.discount)})"
                     + (", and gives its free slot back." if result.waiver_rule else "."))
        return lines, result
    if txn.kind == "disbursement":
        lines.append("  A benefit paid onto the card: never charged, no fee rule applies.")
        return lines, result
    lines.append("  Standard fee (the first rule that applies decides):")
    for rule in version.fees:
        why = rule.when.mismatches(facts)
        if why:
            lines.append(f"    {rule.id}: does not apply - " + "; ".join(why) + ".")
            continue
        band = next(b for b in rule.bands if b.upto is None or facts.amount <= b.upto)
        parts = [f"fixed {yuan(band.fixed)}"] if band.fixed or not band.pct_bp else []
        if band.pct_bp:
            parts.append(f"{band.pct_bp / 100:g} % of {yuan(facts.amount)}")
        bounds = ([f"at least {yuan(band.min)}"] if band.min else []) + \
                 ([f"at most {yuan(band.max)}"] if band.max else [])
        tier = f" (the band up to {yuan(band.upto)})" if len(rule.bands) > 1 and band.upto \
            else (" (the open top band)" if len(rule.bands) > 1 else "")
        lines.append(f"    {rule.id}: APPLIES{tier}: " + " + ".join(parts)
                     + (f", {' and '.join(bounds)}" if bounds else "")
                     + f" = {yuan(result.fee_standard)}.")
        break
    else:
        lines.append("    no rule applies: standard fee 0.")
    if not member:
        lines.append("  Waiver: none - the card is not a member card on this date.")
    elif result.waiver_rule is None:
        lines.append("  Waiver: no member waiver covers this transaction.")
    else:
        waiver = next(w for w in version.waivers if w.id == result.waiver_rule)
        if waiver.free_per_month is None:
            lines.append(f"  Waiver: {waiver.id} waives the whole fee ({yuan(result.fee_waived)})"
                         f" for members.")
        else:
            before = slots_before[waiver.id]
            after = state.used(state.card_key(txn.card_no), waiver.id, month)
            if result.free_slot:
                lines.append(f"  Waiver: {waiver.id} - {waiver.free_per_month} free a month; "
                             f"this card had used {before} in {month[0]}-{month[1]:02d}, so this "
                             f"one is free slot {result.free_slot} (waived "
                             f"{yuan(result.fee_waived)}); {after} used now.")
            else:
                lines.append(f"  Waiver: {waiver.id} - {waiver.free_per_month} free a month, "
                             f"all {before} already used in {month[0]}-{month[1]:02d}: "
                             f"nothing waived; still {after} used.")
    lines.append(f"  Charged: {yuan(result.fee_charged)}.")
    if txn.kind == "purchase":
        if not member:
            lines.append("  Discount: none - member discounts are for member cards.")
        elif result.discount_rule is None:
            lines.append("  Discount: none - no partner merchant valid that day and no "
                         "category discount applies.")
        else:
            partner = version.merchants.get(txn.merchant_id) if version.merchants else None
            if result.discount_rule.startswith("merchant:") and partner is not None:
                text = (f"partner merchant {partner.merchant_id} ({partner.name}): "
                        f"{partner.discount_bp / 100:g} % of {yuan(txn.amount)}")
                if txn.amount < partner.min_spend:
                    text += f", but the spend is below the minimum {yuan(partner.min_spend)}"
                elif partner.cap:
                    text += f", capped at {yuan(partner.cap)}"
            else:
                text = f"category discount {result.discount_rule}"
            lines.append(f"  Discount: {text} = {yuan(result.discount)}.")
    return lines, result
