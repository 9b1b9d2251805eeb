"""What the ledger refuses."""
from __future__ import annotations


class LedgerError(ValueError):
    """A posting, reversal or close the ledger refuses; the message names the voucher, account or day."""


class UnbalancedVoucher(LedgerError):
    """A voucher whose debits and credits differ in some currency."""


class DayClosed(LedgerError):
    """A posting to a day closed by 日终 (only reversals are accepted there)."""
