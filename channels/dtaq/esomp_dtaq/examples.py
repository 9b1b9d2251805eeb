"""The seed's service table (3.2.4) as example services, plus ECHO for the bench.

They are examples, not the bank's programs: each reads its interface area as GBK text fields separated by ``|``
and answers with real checks (account digits, positive amounts, Luhn card numbers) so that routing, CUTOFF and
error codes can be seen end to end. A site's own services are registered by its own plugin under their own keys.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from esomp_core import Service
from esomp_direct import ENCODING, REPLY_HEADER_LEN, REPLY_MAXLEN, Request, ServiceError

REPLY_DATA_MAX = REPLY_MAXLEN - REPLY_HEADER_LEN
RC_INVALID = "1001"


def fields(request: Request, count: int) -> list[str]:
    text = request.interface.decode(ENCODING, errors="replace").rstrip(" \x00")
    parts = [p.strip() for p in text.split("|")] if text else []
    if len(parts) < count:
        raise ServiceError(RC_INVALID, f"接口需要{count}个字段,收到{len(parts)}个")
    return parts


def account(value: str) -> str:
    if not re.fullmatch(r"\d{6,32}", value):
        raise ServiceError(RC_INVALID, f"账号无效: {value}")
    return value


def amount(value: str) -> Decimal:
    try:
        result = Decimal(value)
    except InvalidOperation:
        raise ServiceError(RC_INVALID, f"金额无效: {value}") from None
    if result <= 0 or result.as_tuple().exponent < -2:
        raise ServiceError(RC_INVALID, f"金额无效: {value}")
    return result


def luhn_ok(number: str) -> bool:
    digits = [int(d) for d in number]
    total = sum(digits[-1::-2]) + sum(sum(divmod(2 * d, 10)) for d in digits[-2::-2])
    return number.isdigit() and total % 10 == 0


def counter_financial(request: Request) -> str:
    """CTR 01: a counter posting: ``account|amount`` -> ``POSTED|account|amount``."""
    acct, amt = fields(request, 2)[:2]
    return f"POSTED|{account(acct)}|{amount(amt):.2f}"


def counter_enquiry(request: Request) -> str:
    """CTR 02: a non-financial enquiry: ``account`` -> ``ACCOUNT|account|ACTIVE``."""
    return f"ACCOUNT|{account(fields(request, 1)[0])}|ACTIVE"


def card_replace(request: Request) -> str:
    """CTR 03: old card for new card: ``old|new``, both Luhn-valid and different."""
    old, new = fields(request, 2)[:2]
    for card in (old, new):
        if not (13 <= len(card) <= 19 and luhn_ok(card)):
            raise ServiceError(RC_INVALID, f"卡号无效: {card}")
    if old == new:
        raise ServiceError(RC_INVALID, "新旧卡号相同")
    return f"REPLACED|{old}|{new}"


def batch_open(request: Request) -> str:
    """BOA 01: batch account opening: ``name|name|...`` -> how many were opened."""
    names = [n for n in fields(request, 1) if n]
    return f"OPENED|{len(names)}"


def batch_debit_credit(request: Request) -> str:
    """FLT 01: batch debit/credit: ``amount|amount|...`` (negative = debit) -> count and net total."""
    total = Decimal(0)
    items = fields(request, 1)
    for item in items:
        try:
            total += Decimal(item)
        except InvalidOperation:
            raise ServiceError(RC_INVALID, f"金额无效: {item}") from None
    return f"POSTED|{len(items)}|{total:.2f}"


def report_print(request: Request) -> str:
    """PRT 01: a report line for printing: the fields laid out in 20-column cells."""
    return "".join(f"{f:<20}" for f in fields(request, 1))[:REPLY_DATA_MAX]


def treasury(request: Request) -> str:
    """TPS 01: treasury posting: ``account|amount``, like CTR 01."""
    acct, amt = fields(request, 2)[:2]
    return f"TPS-POSTED|{account(acct)}|{amount(amt):.2f}"


def echo(request: Request) -> bytes:
    """ECHO ECHO 01: the request data back (cut to the reply's room, 1190 bytes)."""
    return request.data[:REPLY_DATA_MAX]


SERVICES = (
    Service("YHT", "CTR", "01", counter_financial, True, "一户通柜台联机金融交易"),
    Service("YHT", "CTR", "02", counter_enquiry, False, "一户通柜台联机非金融交易"),
    Service("YHT", "CTR", "03", card_replace, False, "一户通旧卡换新卡交易"),
    Service("YHT", "BOA", "01", batch_open, False, "一户通批量开户交易"),
    Service("YHT", "FLT", "01", batch_debit_credit, True, "一户通通代批量扣入帐处理"),
    Service("YHT", "PRT", "01", report_print, False, "一户通联机报表打印服务"),
    Service("YHT", "TPS", "01", treasury, True, "国库信息处理系统帐务服务"),
    Service("ECHO", "ECHO", "01", echo, False, "echo (bench and smoke tests)"),
)
