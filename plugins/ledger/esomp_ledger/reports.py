"""Reading the journal: a day's postings, balances per account, the trial balance (试算平衡) and the exports
for the counter system (CSV and DBF, stable order, exact amounts)."""
from __future__ import annotations

import csv
from collections import defaultdict
from typing import Any, Iterator

from sqlalchemy import case, func, select

from esomp_core import FieldSpec, atomic_open, layout, parse_date

from esomp_ledger.journal import ACCOUNTS, DEBIT, LINES, VOUCHERS, day_key
from esomp_ledger.money import fen_text, from_fen

EXPORT_COLUMNS = ("date", "voucher", "line", "account", "side", "amount", "currency", "memo", "reverses")
DBF_LAYOUT: tuple[FieldSpec, ...] = layout(
    "RQ D8, PZH C40, HH N6, KMDM C32, JDBZ C1, JE N19.2, BZ C3, ZY C80, CZPZH C40")


def _postings(conn, day: str) -> Iterator[Any]:
    original = VOUCHERS.alias("original")
    query = (select(VOUCHERS.c.date, VOUCHERS.c.number, LINES.c.line_no, LINES.c.account, LINES.c.side,
                    LINES.c.amount_fen, LINES.c.currency, LINES.c.memo, original.c.number.label("reverses"),
                    VOUCHERS.c.id.label("voucher_id"), VOUCHERS.c.memo.label("voucher_memo"))
             .join(LINES, LINES.c.voucher_id == VOUCHERS.c.id)
             .outerjoin(original, original.c.id == VOUCHERS.c.reverses_id)
             .where(VOUCHERS.c.date == day)
             .order_by(VOUCHERS.c.number, LINES.c.line_no))
    return conn.execution_options(yield_per=50_000).execute(query)


def journal(site, date) -> list[dict[str, Any]]:
    """The day's lines in voucher-number order, amounts as exact text."""
    with site.repository.engine.connect() as conn:
        return [{"voucher_id": r.voucher_id, "date": r.date, "voucher": r.number, "line": r.line_no,
                 "account": r.account, "side": r.side, "amount": fen_text(r.amount_fen), "currency": r.currency,
                 "memo": r.memo, "reverses": r.reverses or "", "voucher_memo": r.voucher_memo}
                for r in _postings(conn, day_key(date))]


def _signed():
    return case((LINES.c.side == DEBIT, LINES.c.amount_fen), else_=-LINES.c.amount_fen)


def balances(site, date) -> list[dict[str, Any]]:
    """Per account: the balance before the day, the day's debits and credits, and the balance after it
    (debits minus credits)."""
    day = day_key(date)
    debit_today = case((LINES.c.side == DEBIT, LINES.c.amount_fen), else_=0)
    credit_today = case((LINES.c.side == DEBIT, 0), else_=LINES.c.amount_fen)
    today = VOUCHERS.c.date == day
    query = (select(LINES.c.account,
                    func.sum(case((VOUCHERS.c.date < day, _signed()), else_=0)),
                    func.sum(case((today, debit_today), else_=0)),
                    func.sum(case((today, credit_today), else_=0)))
             .join(VOUCHERS, VOUCHERS.c.id == LINES.c.voucher_id)
             .where(VOUCHERS.c.date <= day)
             .group_by(LINES.c.account))
    with site.repository.engine.connect() as conn:
        sums = {account: (int(opening), int(debits), int(credits))
                for account, opening, debits, credits in conn.execute(query)}
        chart = conn.execute(select(ACCOUNTS).order_by(ACCOUNTS.c.code)).all()
    rows = []
    for account in chart:
        opening, debits, credits = sums.get(account.code, (0, 0, 0))
        rows.append({"account": account.code, "name": account.name, "kind": account.kind,
                     "currency": account.currency, "opening": from_fen(opening), "debit": from_fen(debits),
                     "credit": from_fen(credits), "closing": from_fen(opening + debits - credits)})
    return rows


def trial_balance(site, date) -> list[dict[str, Any]]:
    """Per currency: the day's debits and credits, and the closing debit and credit balances of every account;
    ``balanced`` when both pairs are equal."""
    zero = from_fen(0)
    totals: dict[str, dict[str, Any]] = defaultdict(lambda: {"debit": zero, "credit": zero, "debit_balances": zero,
                                                              "credit_balances": zero})
    for row in balances(site, date):
        total = totals[row["currency"]]
        total["debit"] += row["debit"]
        total["credit"] += row["credit"]
        if row["closing"] > 0:
            total["debit_balances"] += row["closing"]
        else:
            total["credit_balances"] -= row["closing"]
    return [{"currency": currency, **total,
             "balanced": total["debit"] == total["credit"] and total["debit_balances"] == total["credit_balances"]}
            for currency, total in sorted(totals.items())]


def export_csv(site, date, path) -> int:
    """Write the day's postings as UTF-8 CSV (header, voucher-number order, amounts with two decimals)."""
    count = 0
    with site.repository.engine.connect() as conn, atomic_open(path, "w", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(EXPORT_COLUMNS)
        for r in _postings(conn, day_key(date)):
            writer.writerow((r.date, r.number, r.line_no, r.account, r.side, fen_text(r.amount_fen), r.currency,
                             r.memo, r.reverses or ""))
            count += 1
    return count


def export_dbf(site, date, path) -> int:
    """Write the day's postings as a dBase III file (GBK text) in the same order as the CSV; the header's date is
    the business day, so the same postings give the same bytes."""
    from esomp_dbf import encode_record, write_dbf

    day = day_key(date)
    with site.repository.engine.connect() as conn:
        records = (encode_record(DBF_LAYOUT, (r.date, r.number, r.line_no, r.account, r.side,
                                              from_fen(r.amount_fen), r.currency, r.memo, r.reverses or ""),
                                 overflow="truncate")
                   for r in _postings(conn, day))
        return write_dbf(path, DBF_LAYOUT, records, updated=parse_date(day))
