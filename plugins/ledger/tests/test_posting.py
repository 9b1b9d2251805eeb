from __future__ import annotations

from decimal import Decimal

import pytest

from esomp_ledger import (
    Account,
    DayClosed,
    LedgerError,
    UnbalancedVoucher,
    Voucher,
    add_accounts,
    balances,
    close_day,
    credit,
    debit,
    journal,
    post_vouchers,
    reverse,
    trial_balance,
)
from esomp_core import Job

DAY = "20260105"


def job(job_id: int = 1) -> Job:
    return Job(id=job_id, date=DAY, name="post", stage="post", business_type="test")


def subscription(amount: str, memo: str = "申购") -> Voucher:
    return Voucher([debit("1001", amount, memo="客户"), credit("2001", Decimal(amount) - Decimal("1.00")),
                    credit("6001", "1.00")], memo=memo)


def by_account(site, date=DAY):
    return {row["account"]: row for row in balances(site, date)}


def test_balanced_voucher_is_posted_in_order(ledger_site):
    posted = post_vouchers(ledger_site, job(), [subscription("100.10"), subscription("1.20", "second")])

    assert (posted.vouchers, posted.lines, posted.replaced) == (2, 6, 0)
    lines = journal(ledger_site, DAY)
    assert [(r["voucher"], r["line"], r["account"], r["side"], r["amount"]) for r in lines] == [
        ("00000001-000001", 1, "1001", "D", "100.10"), ("00000001-000001", 2, "2001", "C", "99.10"),
        ("00000001-000001", 3, "6001", "C", "1.00"), ("00000001-000002", 1, "1001", "D", "1.20"),
        ("00000001-000002", 2, "2001", "C", "0.20"), ("00000001-000002", 3, "6001", "C", "1.00")]
    assert by_account(ledger_site)["1001"]["closing"] == Decimal("101.30")


def test_unbalanced_voucher_is_refused_naming_it_and_nothing_is_posted(ledger_site):
    short = Voucher([debit("1001", "10.00"), credit("2001", "9.99")], memo="赎回 P001")

    with pytest.raises(UnbalancedVoucher, match=r"voucher 00000001-000002 \(赎回 P001\) does not balance in CNY: "
                                                r"debits exceed credits by 0.01"):
        post_vouchers(ledger_site, job(), [subscription("5.00"), short])
    assert journal(ledger_site, DAY) == []


def test_balance_is_checked_per_currency(ledger_site):
    mixed = Voucher([debit("1001", "7.00"), credit("1002U", "7.00", currency="USD")], memo="mixed")

    with pytest.raises(UnbalancedVoucher, match="does not balance in CNY"):
        post_vouchers(ledger_site, job(), [mixed])


@pytest.mark.parametrize("line, problem", [
    (debit("1001", 0.1), "is a float"),
    (debit("1001", "0.001"), "not a whole number of fen"),
    (debit("1001", "-1"), "negative"),
    (debit("9999", "1"), "unknown account '9999'"),
    (debit("1001", "1", currency="USD"), "account 1001 is in CNY, not USD"),
])
def test_bad_lines_are_refused_naming_voucher_and_line(sqlite_ledger_site, line, problem):
    with pytest.raises(LedgerError, match=f"voucher 00000001-000001 line 1: .*{problem}"):
        post_vouchers(sqlite_ledger_site, job(), [Voucher([line, credit("2001", "1")])])


def test_rerun_replaces_the_jobs_vouchers_and_export_is_byte_identical(ledger_site, tmp_path):
    post_vouchers(ledger_site, job(7), [subscription("3.00")])
    vouchers = [subscription("100.10"), subscription("1.30", "二")]
    post_vouchers(ledger_site, job(1), vouchers)
    ledger_site_export(ledger_site, tmp_path / "first")

    again = post_vouchers(ledger_site, job(1), vouchers)

    assert again.replaced == 2
    ledger_site_export(ledger_site, tmp_path / "second")
    for name in ("day.csv", "day.dbf"):
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes()
    assert by_account(ledger_site)["1001"]["closing"] == Decimal("104.40")


def ledger_site_export(site, folder):
    from esomp_ledger import export_csv, export_dbf

    folder.mkdir()
    export_csv(site, DAY, folder / "day.csv")
    export_dbf(site, DAY, folder / "day.dbf")


def test_closed_day_refuses_postings_and_reruns_but_accepts_reversals(ledger_site):
    post_vouchers(ledger_site, job(1), [subscription("50.00")])
    assert close_day(ledger_site, DAY, by="ops") is True
    assert close_day(ledger_site, "2026-01-05") is False

    with pytest.raises(DayClosed, match="ledger day 20260105 is closed"):
        post_vouchers(ledger_site, job(2), [subscription("1.00")])
    with pytest.raises(DayClosed):
        post_vouchers(ledger_site, job(1), [subscription("1.00")])

    original = journal(ledger_site, DAY)[0]["voucher_id"]
    reverse(ledger_site, original, "wrong product")

    assert by_account(ledger_site)["1001"]["closing"] == 0
    assert [r["reverses"] for r in journal(ledger_site, DAY)][-3:] == ["00000001-000001"] * 3


def test_reversal_points_at_the_original_on_another_day_and_only_once(ledger_site):
    post_vouchers(ledger_site, job(1), [subscription("20.00")])
    original = journal(ledger_site, DAY)[0]["voucher_id"]

    reverse(ledger_site, original, "duplicate", date="2026-01-06")

    next_day = journal(ledger_site, "20260106")
    assert [(r["voucher"], r["account"], r["side"], r["amount"], r["reverses"]) for r in next_day] == [
        ("R00000001-000001", "1001", "C", "20.00", "00000001-000001"),
        ("R00000001-000001", "2001", "D", "19.00", "00000001-000001"),
        ("R00000001-000001", "6001", "D", "1.00", "00000001-000001")]
    assert by_account(ledger_site, "20260106")["1001"]["opening"] == Decimal("20.00")
    assert by_account(ledger_site, "20260106")["1001"]["closing"] == 0
    with pytest.raises(LedgerError, match="already been reversed by R00000001-000001"):
        reverse(ledger_site, original, "again")
    with pytest.raises(LedgerError, match="has been reversed; its job cannot be posted again"):
        post_vouchers(ledger_site, job(1), [subscription("20.00")])
    with pytest.raises(LedgerError, match="needs a reason"):
        reverse(ledger_site, original, " ")


def test_trial_balance_per_currency(ledger_site):
    post_vouchers(ledger_site, job(1), [
        subscription("10.00"),
        Voucher([debit("1001U", "3.50", currency="USD"), credit("1002U", "3.50", currency="USD")]),
        Voucher([debit("1101", "8.00"), credit("1002", "8.00")], memo="备付金划拨")])

    rows = {row["currency"]: row for row in trial_balance(ledger_site, DAY)}

    assert rows["CNY"] == {"currency": "CNY", "debit": Decimal("18.00"), "credit": Decimal("18.00"),
                           "debit_balances": Decimal("18.00"), "credit_balances": Decimal("18.00"), "balanced": True}
    assert (rows["USD"]["debit"], rows["USD"]["credit"], rows["USD"]["balanced"]) == (Decimal("3.50"),
                                                                                      Decimal("3.50"), True)


def test_accounts_need_a_known_kind_and_a_reserve_its_market(sqlite_ledger_site):
    with pytest.raises(LedgerError, match="unknown kind 'cash'"):
        add_accounts(sqlite_ledger_site, [Account("X", "x", "cash")])
    with pytest.raises(LedgerError, match="names its market"):
        add_accounts(sqlite_ledger_site, [Account("X", "x", "clearing_reserve")])


def test_a_million_lines_of_tenths_sum_to_the_fen(sqlite_ledger_site):
    # 0.1 + 0.2 in floats is 0.30000000000000004; a million of them would drift by whole fen.
    vouchers = [Voucher([debit("1001", "0.10"), debit("1002", "0.20"), credit("2001", "0.30")])] * 333_334
    posted = post_vouchers(sqlite_ledger_site, job(), vouchers)

    assert posted.lines == 1_000_002
    rows = by_account(sqlite_ledger_site)
    assert (rows["1001"]["debit"], rows["1002"]["debit"], rows["2001"]["credit"]) == (
        Decimal("33333.40"), Decimal("66666.80"), Decimal("100000.20"))
    assert trial_balance(sqlite_ledger_site, DAY)[0]["balanced"] is True


def test_memos_keep_tabs_newlines_and_backslashes(ledger_site):
    memo = "申购\tA\\B\nC"
    post_vouchers(ledger_site, job(), [Voucher([debit("1001", "1", memo=memo), credit("2001", "1")], memo=memo)])

    [first, _] = journal(ledger_site, DAY)
    assert (first["memo"], first["voucher_memo"]) == (memo, memo)
