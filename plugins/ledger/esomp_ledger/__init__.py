"""E-SOMP ledger: a double-entry journal that business types post balanced vouchers to from their ``post`` stage.

Money is exact: Decimal at this API, integer fen in the database; floats are refused.
"""
from esomp_ledger.errors import DayClosed, LedgerError, UnbalancedVoucher
from esomp_ledger.journal import (
    ACCOUNT_KINDS,
    CREDIT,
    DEBIT,
    Account,
    Line,
    Posted,
    Voucher,
    accounts,
    add_accounts,
    close_day,
    credit,
    debit,
    is_closed,
    post_vouchers,
    reverse,
)
from esomp_ledger.models import MIGRATIONS
from esomp_ledger.money import fen_text, from_fen, to_fen
from esomp_ledger.reports import DBF_LAYOUT, EXPORT_COLUMNS, balances, export_csv, export_dbf, journal, trial_balance

__version__ = "0.1.0"

__all__ = [
    "ACCOUNT_KINDS",
    "CREDIT",
    "DBF_LAYOUT",
    "DEBIT",
    "EXPORT_COLUMNS",
    "MIGRATIONS",
    "Account",
    "DayClosed",
    "LedgerError",
    "Line",
    "Posted",
    "UnbalancedVoucher",
    "Voucher",
    "accounts",
    "add_accounts",
    "balances",
    "close_day",
    "credit",
    "debit",
    "export_csv",
    "export_dbf",
    "fen_text",
    "from_fen",
    "is_closed",
    "journal",
    "post_vouchers",
    "reverse",
    "to_fen",
    "trial_balance",
]
