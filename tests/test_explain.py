"""``txcore explain``: the pricing of one transaction in words an auditor can follow."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import CMB_CARD, CMB_CARD3, FIXTURES, RULES, row
from txcore.cli import main
from txcore.errors import UsageError
from txcore.audit.explain import explain
from txcore.fixtures import COLUMNS


@pytest.fixture
def history(tmp_path):
    """Cards from the fixtures' registry do not include CMB_CARD: write our own registry."""
    cards = tmp_path / "cards.csv"
    cards.write_text("card_no,member_id,unit,issuer,home_city,member_from,member_to\n"
                     f"{CMB_CARD},M1,临江街道工会,CMB,350500,2013-09-01,\n"
                     f"{CMB_CARD3},,,CMB,350500,,\n")
    atm = dict(kind="withdrawal", channel="atm", acq_bank="ICBC", city="350500", amount=50000)
    rows = [row(txn_id=f"W{d}", ts=f"2013-10-0{d}T10:00:00+08:00", **atm) for d in (1, 2, 3, 4)]
    rows.append(row(txn_id="T1", ts="2013-10-05T10:00:00+08:00", kind="transfer",
                    channel="online", acq_bank="ICBC", city="350200", amount=300000))
    rows.append(row(txn_id="N1", card_no=CMB_CARD3, ts="2013-10-05T11:00:00+08:00", **atm))
    path = tmp_path / "day.parquet"
    pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in COLUMNS} for r in rows],
                                        schema=pa.schema([(c, pa.int64() if c == "amount"
                                                           else pa.string()) for c in COLUMNS])),
                   path)
    return dict(rules=RULES, cards=cards), path


def test_a_free_slot_and_an_exhausted_quota(history):
    ref, day = history
    third = explain("W3", [day], **ref)
    assert "atm-own-local: does not apply - the rule is for the card's own bank." in third
    assert "atm-xbank-local: APPLIES: fixed 2.00 CNY = 2.00 CNY." in third
    assert "had used 2 in 2013-10, so this one is free slot 3" in third
    assert "Charged: 0.00 CNY." in third
    fourth = explain("W4", [day], **ref)
    assert "all 3 already used in 2013-10: nothing waived; still 3 used." in fourth
    assert "Charged: 2.00 CNY." in fourth
    assert CMB_CARD not in fourth and "621485******" in fourth


def test_a_tier_and_no_waiver_for_a_remote_transfer(history):
    ref, day = history
    text = explain("T1", [day], **ref)
    assert "online-xbank: APPLIES (the band up to 5,000.00 CNY): fixed 5.00 CNY" in text
    assert "Waiver: no member waiver covers this transaction." in text


def test_a_non_member_and_an_unknown_id(history, capfd):
    ref, day = history
    assert "NOT a member" in explain("N1", [day], **ref)
    with pytest.raises(UsageError):
        explain("NOPE", [day], **ref)
    assert main(["explain", "W1", "--rules", str(RULES), "--cards", str(ref["cards"]),
                 str(day)]) == 0
    assert "free slot 1" in capfd.readouterr().out


def test_explains_a_bundled_partner_discount():
    day = sorted(FIXTURES.glob("txns-*.parquet"))[0]
    t = pq.read_table(day).to_pylist()
    purchase = next(r for r in t if r["kind"] == "purchase" and r["merchant_id"].startswith("QZ"))
    text = explain(purchase["txn_id"], [day], rules=RULES, cards=FIXTURES / "cards.csv",
                   merchants=FIXTURES / "merchants.csv")
    assert "Discount:" in text


def test_explain_checks_the_recorded_priced_row(history, tmp_path):
    import txcore
    ref, day = history
    txcore.run([day], out_dir=tmp_path / "out", progress=False, **ref)
    priced = tmp_path / "out" / "day.priced.parquet"
    assert "agrees on every priced column" in explain("W4", [day], priced=priced, **ref)
    t = pq.read_table(priced)
    charged = t["fee_charged"].to_pylist()
    charged[3] += 1  # W4: recorded one fen too much
    pq.write_table(t.set_column(t.schema.get_field_index("fee_charged"), "fee_charged",
                                pa.array(charged, pa.int64())), priced)
    text = explain("W4", [day], priced=priced, **ref)
    assert "Recorded: DIFFERS - fee_charged recorded 201, re-priced 200." in text
