from __future__ import annotations

import csv
import json
from decimal import Decimal

import pytest

import esomp_ledger.plugin
from esomp_core import Job
from esomp_dbf import DbfFile
from esomp_ledger import Voucher, credit, debit, export_csv, export_dbf, post_vouchers

DAY = "20260105"
VOUCHERS = [
    Voucher([debit("1001", "1234567.89", memo="客户 申购"), credit("2001", "1234567.89")], memo="申购"),
    Voucher([debit("1101", "0.01"), credit("1002", "0.01", memo="tab\there")], memo="备付金"),
]


def post(site, job_id=1):
    return post_vouchers(site, Job(id=job_id, date=DAY, name="post", stage="post", business_type="test"), VOUCHERS)


def test_export_csv_reads_back_exact_amounts_in_order(ledger_site, tmp_path):
    post(ledger_site)

    assert export_csv(ledger_site, DAY, tmp_path / "day.csv") == 4

    with open(tmp_path / "day.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["voucher"], r["line"], r["account"], r["side"], r["amount"], r["memo"]) for r in rows] == [
        ("00000001-000001", "1", "1001", "D", "1234567.89", "客户 申购"),
        ("00000001-000001", "2", "2001", "C", "1234567.89", ""),
        ("00000001-000002", "1", "1101", "D", "0.01", ""),
        ("00000001-000002", "2", "1002", "C", "0.01", "tab\there")]
    assert {r["date"] for r in rows} == {DAY}


def test_export_dbf_reads_back_the_same_postings(ledger_site, tmp_path):
    post(ledger_site)

    assert export_dbf(ledger_site, DAY, tmp_path / "day.dbf") == 4

    with DbfFile(tmp_path / "day.dbf") as dbf:
        rows = [dbf.row(i) for i in range(len(dbf))]
    assert [(r["PZH"], r["HH"], r["KMDM"], r["JDBZ"], r["JE"], r["ZY"]) for r in rows] == [
        ("00000001-000001", 1, "1001", "D", Decimal("1234567.89"), "客户 申购"),
        ("00000001-000001", 2, "2001", "C", Decimal("1234567.89"), ""),
        ("00000001-000002", 1, "1101", "D", Decimal("0.01"), ""),
        ("00000001-000002", 2, "1002", "C", Decimal("0.01"), "tab\there")]


def cli(esomp_cli, site, *args):
    result = esomp_cli(["ledger", *args], site=site, plugins=[esomp_ledger.plugin])
    return result


def test_cli_json_reports(ledger_site, esomp_cli, tmp_path):
    post(ledger_site)

    accounts = json.loads(cli(esomp_cli, ledger_site, "accounts", "--json").output)
    journal = json.loads(cli(esomp_cli, ledger_site, "journal", "--date", DAY, "--json").output)
    balance = json.loads(cli(esomp_cli, ledger_site, "balance", "--date", "2026-01-05", "--json").output)
    trial = cli(esomp_cli, ledger_site, "trial", "--date", DAY, "--json")

    assert {"code": "1101", "name": "清算备付金 深圳", "kind": "clearing_reserve", "currency": "CNY",
            "market": "SZ"} in accounts
    assert [(r["voucher"], r["amount"]) for r in journal][:2] == [("00000001-000001", "1234567.89")] * 2
    assert {r["account"]: r["closing"] for r in balance}["1001"] == "1234567.89"
    assert trial.exit_code == 0
    assert json.loads(trial.output)[0]["debit"] == "1234567.90"


def test_cli_loads_accounts_closes_the_day_and_exports(ledger_site, esomp_cli, tmp_path):
    chart = tmp_path / "chart.csv"
    chart.write_text("code,name,kind,currency,market\n1102,清算备付金 上海,clearing_reserve,CNY,SH\n",
                     encoding="utf-8")
    loaded = cli(esomp_cli, ledger_site, "accounts", "--load", chart, "--json")
    assert "1102" in [a["code"] for a in json.loads(loaded.output)]
    post(ledger_site)

    closed = json.loads(cli(esomp_cli, ledger_site, "close", "--date", DAY, "--by", "ops", "--json").output)
    again = cli(esomp_cli, ledger_site, "close", "--date", DAY)
    exported = json.loads(cli(esomp_cli, ledger_site, "export", "--date", DAY, "--format", "dbf",
                              "--output", tmp_path / "out.dbf", "--json").output)

    assert closed == {"date": DAY, "closed": True, "already_closed": False}
    assert "closed already" in again.output
    assert exported["lines"] == 4 and (tmp_path / "out.dbf").exists()


def test_cli_refusal_is_an_error_message(ledger_site, esomp_cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,kind\nX,x,cash\n", encoding="utf-8")

    result = cli(esomp_cli, ledger_site, "accounts", "--load", bad)

    assert result.exit_code == 1
    assert "unknown kind 'cash'" in result.output


def test_a_tampered_journal_fails_the_trial_balance_and_cannot_be_closed(ledger_site, esomp_cli):
    from sqlalchemy import text

    from esomp_ledger import LedgerError, close_day

    post(ledger_site)
    with ledger_site.repository.engine.begin() as conn:  # a line slipped in behind the ledger's back
        conn.execute(text("INSERT INTO ledger_lines (voucher_id, line_no, account, side, amount_fen, currency, memo)"
                          " SELECT MIN(id), 9, '1001', 'D', 1, 'CNY', '' FROM ledger_vouchers"))

    trial = cli(esomp_cli, ledger_site, "trial", "--date", DAY, "--json")

    assert trial.exit_code == 1
    assert json.loads(trial.output)[0]["balanced"] is False
    with pytest.raises(LedgerError, match="ledger day 20260105 cannot be closed: the trial balance fails in CNY"):
        close_day(ledger_site, DAY)
