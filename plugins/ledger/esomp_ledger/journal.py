"""Posting: accounts, balanced vouchers per job (idempotent), reversals (冲正) and the day's close (日终)."""
from __future__ import annotations

import io
from collections import defaultdict
from datetime import datetime
from typing import Iterable, Sequence

import attrs
from sqlalchemy import delete, insert, select

from esomp_core import parse_date, ymd

from esomp_ledger.errors import DayClosed, LedgerError, UnbalancedVoucher
from esomp_ledger.models import LedgerAccount, LedgerDay, LedgerLine, LedgerVoucher
from esomp_ledger.money import fen_text, to_fen

DEBIT, CREDIT = "D", "C"
SIDES = (DEBIT, CREDIT)
ACCOUNT_KINDS = {
    "customer_fund": "客户资金",
    "product": "产品",
    "company": "公司",
    "clearing_reserve": "清算备付金",
    "fees": "费用",
    "custody": "存管",
}

ACCOUNTS = LedgerAccount.__table__
VOUCHERS = LedgerVoucher.__table__
LINES = LedgerLine.__table__
DAYS = LedgerDay.__table__
LINE_COLUMNS = ("voucher_id", "line_no", "account", "side", "amount_fen", "currency", "memo")


@attrs.frozen
class Account:
    code: str
    name: str
    kind: str
    currency: str = "CNY"
    market: str = ""  # the market of a clearing reserve account (SZ, SH ...)

    def check(self) -> None:
        if self.kind not in ACCOUNT_KINDS:
            raise LedgerError(f"account {self.code}: unknown kind {self.kind!r} (one of {', '.join(ACCOUNT_KINDS)})")
        if self.kind == "clearing_reserve" and not self.market:
            raise LedgerError(f"account {self.code}: a clearing reserve account names its market")
        if not (self.code and len(self.code) <= 32 and len(self.currency) == 3):
            raise LedgerError(f"account {self.code!r}: a code of 1 to 32 characters and a 3-letter currency")


@attrs.frozen
class Line:
    account: str
    side: str  # DEBIT or CREDIT
    amount: object  # Decimal, int or numeral text; never float
    currency: str = "CNY"
    memo: str = ""


def debit(account: str, amount, currency: str = "CNY", memo: str = "") -> Line:
    return Line(account, DEBIT, amount, currency, memo)


def credit(account: str, amount, currency: str = "CNY", memo: str = "") -> Line:
    return Line(account, CREDIT, amount, currency, memo)


@attrs.frozen
class Voucher:
    lines: Sequence[Line]
    memo: str = ""


@attrs.frozen
class Posted:
    """What ``post_vouchers`` wrote: the job's vouchers and lines (a rerun's replace the earlier ones)."""

    date: str
    vouchers: int
    lines: int
    replaced: int = 0


def day_key(date) -> str:
    """CCYYMMDD from a date, or from YYYYMMDD / YYYY-MM-DD text."""
    return ymd(date) if hasattr(date, "strftime") else ymd(parse_date(str(date)))


def add_accounts(site, accounts: Iterable[Account]) -> int:
    """Create or update accounts by code; return how many. An account already in use keeps its currency."""
    accounts = list(accounts)
    for account in accounts:
        account.check()
    with site.repository.session() as s:
        for account in accounts:
            row = s.get(LedgerAccount, account.code)
            if row is None:
                s.add(LedgerAccount(**attrs.asdict(account)))
                continue
            if row.currency != account.currency and _account_used(s, account.code):
                raise LedgerError(f"account {account.code}: has postings in {row.currency}, "
                                  f"cannot change its currency to {account.currency}")
            row.name, row.kind, row.currency, row.market = (account.name, account.kind, account.currency,
                                                            account.market)
    return len(accounts)


def _account_used(session, code: str) -> bool:
    return session.execute(select(LINES.c.account).where(LINES.c.account == code).limit(1)).first() is not None


def accounts(site) -> list[Account]:
    with site.repository.session() as s:
        rows = s.scalars(select(LedgerAccount).order_by(LedgerAccount.code)).all()
        return [Account(r.code, r.name, r.kind, r.currency, r.market) for r in rows]


def _currencies(conn) -> dict[str, str]:
    return dict(conn.execute(select(ACCOUNTS.c.code, ACCOUNTS.c.currency)).all())


def _check_lines(number: str, voucher: Voucher, currencies: dict[str, str]) -> list[tuple]:
    """The voucher's lines as (line_no, account, side, fen, currency, memo); refuses an unknown account, a
    currency other than the account's, a bad amount and, per currency, debits that differ from credits."""
    if not voucher.lines:
        raise LedgerError(f"voucher {number} ({voucher.memo}) has no lines")
    net: dict[str, int] = defaultdict(int)
    rows = []
    for line_no, line in enumerate(voucher.lines, 1):
        currency = currencies.get(line.account)
        try:
            fen = to_fen(line.amount)
        except LedgerError as exc:
            raise LedgerError(f"voucher {number} line {line_no}: {exc}") from None
        if currency is None or line.currency != currency or line.side not in SIDES:
            raise LedgerError(f"voucher {number} line {line_no}: {_line_problem(line, currency)}")
        net[currency] += fen if line.side == DEBIT else -fen
        rows.append((line_no, line.account, line.side, fen, currency, line.memo))
    for currency, difference in sorted(net.items()):
        if difference:
            raise UnbalancedVoucher(f"voucher {number} ({voucher.memo}) does not balance in {currency}: "
                                    f"debits exceed credits by {fen_text(difference)}")
    return rows


def _line_problem(line: Line, currency: str | None) -> str:
    if currency is None:
        return f"unknown account {line.account!r}"
    if line.currency != currency:
        return f"account {line.account} is in {currency}, not {line.currency}"
    return f"side {line.side!r} is neither D (debit) nor C (credit)"


def job_voucher_number(job_id: int, seq: int) -> str:
    return f"{job_id:08d}-{seq:06d}"


def _refuse_closed(conn, date: str) -> None:
    if conn.execute(select(DAYS.c.date).where(DAYS.c.date == date)).first() is not None:
        raise DayClosed(f"ledger day {date} is closed (日终): only reversals may be posted to it")


def post_vouchers(site, job, vouchers: Iterable[Voucher], *, date=None) -> Posted:
    """Post ``job``'s vouchers on ``date`` (default: the job's date), replacing what an earlier run of the same job
    posted, in one transaction: a rerun leaves the journal as if it had run once. Refused as a whole when one
    voucher does not balance, the day is closed, or one of the job's earlier vouchers has been reversed."""
    day = day_key(date if date is not None else job.date)
    engine = site.repository.engine
    posted_at = datetime.now()
    with engine.begin() as conn:
        currencies = _currencies(conn)
        voucher_rows, line_rows = [], []
        for seq, voucher in enumerate(vouchers, 1):
            number = job_voucher_number(job.id, seq)
            voucher_rows.append({"number": number, "date": day, "job_id": job.id, "seq": seq,
                                 "memo": voucher.memo, "reverses_id": None, "reason": "", "posted_at": posted_at})
            line_rows.append(_check_lines(number, voucher, currencies))
        _refuse_closed(conn, day)
        replaced = _remove_job_vouchers(conn, job.id)
        ids = _insert_vouchers(conn, voucher_rows)
        insert_lines(conn, ((vid, *line) for vid, lines in zip(ids, line_rows) for line in lines))
    return Posted(day, len(voucher_rows), sum(map(len, line_rows)), replaced)


def _remove_job_vouchers(conn, job_id: int) -> int:
    earlier = select(VOUCHERS.c.id, VOUCHERS.c.date, VOUCHERS.c.number).where(VOUCHERS.c.job_id == job_id)
    rows = conn.execute(earlier).all()
    if not rows:
        return 0
    ids = select(VOUCHERS.c.id).where(VOUCHERS.c.job_id == job_id).scalar_subquery()
    for date in sorted({r.date for r in rows}):
        _refuse_closed(conn, date)  # a rerun may not rewrite a closed day either
    reversed_ = conn.execute(select(VOUCHERS.c.number).where(VOUCHERS.c.id.in_(
        select(VOUCHERS.c.reverses_id).where(VOUCHERS.c.reverses_id.in_(ids))))).scalars().first()
    if reversed_ is not None:
        raise LedgerError(f"job {job_id}: voucher {reversed_} has been reversed; its job cannot be posted again")
    conn.execute(delete(LINES).where(LINES.c.voucher_id.in_(ids)))
    conn.execute(delete(VOUCHERS).where(VOUCHERS.c.job_id == job_id))
    return len(rows)


def _insert_vouchers(conn, rows: list[dict]) -> list[int]:
    if not rows:
        return []
    if conn.dialect.name == "postgresql" and rows[0]["job_id"] is not None:
        return _copy_job_vouchers(conn, rows)
    statement = insert(VOUCHERS).returning(VOUCHERS.c.id, sort_by_parameter_order=True)
    return list(conn.execute(statement, rows).scalars())


def insert_lines(conn, rows: Iterable[tuple]) -> int:
    """Bulk insert of line tuples in LINE_COLUMNS order: COPY on PostgreSQL, executemany in batches elsewhere."""
    if conn.dialect.name == "postgresql":
        return _copy_lines(conn, rows)
    sql = (f"INSERT INTO ledger_lines ({', '.join(LINE_COLUMNS)}) "
           f"VALUES ({', '.join('?' for _ in LINE_COLUMNS)})")
    cursor = conn.connection.driver_connection.cursor()
    total = 0
    for batch in _batches(rows, 50_000):
        cursor.executemany(sql, batch)
        total += len(batch)
    return total


def _batches(rows: Iterable[tuple], size: int):
    batch = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_lines(conn, rows: Iterable[tuple]) -> int:
    cursor = conn.connection.driver_connection.cursor()
    total = 0
    for batch in _batches(rows, 200_000):
        buffer = io.StringIO()
        buffer.writelines(f"{v}\t{n}\t{a.translate(_COPY_ESCAPES)}\t{s}\t{f}\t{c}\t{m.translate(_COPY_ESCAPES)}\n"
                          for v, n, a, s, f, c, m in batch)
        buffer.seek(0)
        cursor.copy_expert(f"COPY ledger_lines ({', '.join(LINE_COLUMNS)}) FROM STDIN", buffer)
        total += len(batch)
    return total


def _copy_text(value: str) -> str:
    return value.translate(_COPY_ESCAPES)


def _copy_optional(value: int | None) -> str:
    return "\\N" if value is None else str(value)


def _copy_job_vouchers(conn, rows: list[dict]) -> list[int]:
    """COPY one job's vouchers (the table's sequence numbers them), then read their ids back in ``seq`` order."""
    buffer = io.StringIO()
    buffer.writelines(
        f"{_copy_text(r['number'])}\t{r['date']}\t{r['job_id']}\t{r['seq']}\t{_copy_text(r['memo'])}\t"
        f"{_copy_optional(r['reverses_id'])}\t{_copy_text(r['reason'])}\t{r['posted_at'].isoformat()}\n"
        for r in rows)
    buffer.seek(0)
    conn.connection.driver_connection.cursor().copy_expert(
        "COPY ledger_vouchers (number, date, job_id, seq, memo, reverses_id, reason, posted_at) FROM STDIN", buffer)
    return list(conn.execute(select(VOUCHERS.c.id).where(VOUCHERS.c.job_id == rows[0]["job_id"])
                             .order_by(VOUCHERS.c.seq)).scalars())


def reverse(site, voucher_id: int, reason: str, *, date=None) -> int:
    """Post the reversal (冲正) of a voucher: the same lines on the other side, pointing at the original, on
    ``date`` (default: the original's date; a closed day accepts it). Return the reversal's id."""
    if not reason or not reason.strip():
        raise LedgerError(f"voucher {voucher_id}: a reversal needs a reason")
    with site.repository.engine.begin() as conn:
        original = conn.execute(select(VOUCHERS).where(VOUCHERS.c.id == voucher_id)).first()
        if original is None:
            raise LedgerError(f"no voucher {voucher_id}")
        if original.reverses_id is not None:
            raise LedgerError(f"voucher {original.number} is a reversal itself: post a new voucher instead")
        done = conn.execute(select(VOUCHERS.c.number).where(VOUCHERS.c.reverses_id == voucher_id)).scalar()
        if done is not None:
            raise LedgerError(f"voucher {original.number} has already been reversed by {done}")
        lines = conn.execute(select(LINES).where(LINES.c.voucher_id == voucher_id).order_by(LINES.c.line_no)).all()
        [new_id] = _insert_vouchers(conn, [{
            "number": f"R{original.number}", "date": day_key(date) if date is not None else original.date,
            "job_id": None, "seq": 0, "memo": f"冲正 {original.number}: {original.memo}", "reverses_id": voucher_id,
            "reason": reason.strip(), "posted_at": datetime.now()}])
        insert_lines(conn, [(new_id, line.line_no, line.account, CREDIT if line.side == DEBIT else DEBIT,
                             line.amount_fen, line.currency, line.memo) for line in lines])
    return new_id


def close_day(site, date, *, by: str = "") -> bool:
    """Close a day (日终) once its trial balance holds; return False when it was closed already."""
    from esomp_ledger.reports import trial_balance

    day = day_key(date)
    broken = [row for row in trial_balance(site, day) if not row["balanced"]]
    if broken:
        raise LedgerError(f"ledger day {day} cannot be closed: the trial balance fails in "
                          f"{', '.join(row['currency'] for row in broken)}")
    with site.repository.engine.begin() as conn:
        if conn.execute(select(DAYS.c.date).where(DAYS.c.date == day)).first() is not None:
            return False
        conn.execute(insert(DAYS).values(date=day, closed_at=datetime.now(), closed_by=by))
    return True


def is_closed(site, date) -> bool:
    with site.repository.engine.connect() as conn:
        return conn.execute(select(DAYS.c.date).where(DAYS.c.date == day_key(date))).first() is not None
