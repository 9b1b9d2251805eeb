"""The products master (产品信息 / 股东信息 / 产品分类): batch import, queries, and the account -> product map.

Import file (CSV, header row): ``product,name,institution,institution_name,classification,status,
sz_accounts,sh_accounts``, in UTF-8 (with or without a BOM) or GBK, whichever decodes; the summary says which.
Accounts are separated by spaces or ``;``; listed accounts replace the product's accounts, empty columns leave
them as they are. ``status`` is ``active`` (default) or ``disabled``. An import is all-or-nothing: any bad line
and nothing changes, with every bad line reported. docs/configuration.md has the account formats and their source.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path
from typing import Any, Iterable

import attrs
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from esomp_core.config import name_problem
from esomp_core.repository import Repository
from esomp_core.repository.models import Account, Classification, Institution, Product

COLUMNS = ("product", "name", "institution", "institution_name", "classification", "status",
           "sz_accounts", "sh_accounts")
MARKETS = {"sz_accounts": "SZ", "sh_accounts": "SH"}
# Securities account (证券账户) formats per market, as CSDC issues them (docs/configuration.md gives the source).
ACCOUNT_FORMATS = {
    "SZ": (re.compile(r"[02]\d{9}"),
           "10 digits starting with 0 (A-share and fund accounts: 00, 08 ...) or 2 (B-share)"),
    "SH": (re.compile(r"[A-Z]\d{9}"), "a capital letter and 9 digits (A-share: A individuals, B institutions ...)"),
}


class ImportError_(ValueError):
    """An import refused as a whole; ``errors`` lists every bad line."""

    def __init__(self, source: str, errors: list[str]):
        self.source, self.errors = source, errors
        super().__init__(f"{source}: import refused, nothing changed ({len(errors)} bad line(s)):\n  "
                         + "\n  ".join(errors))


@attrs.define
class ImportSummary:
    created: int = 0
    updated: int = 0
    disabled: int = 0
    accounts: int = 0
    institutions: int = 0
    encoding: str = ""
    """How the file was read: "UTF-8", "UTF-8 with BOM", "GBK", or the encoding asked for."""


def _split_accounts(text: str | None) -> list[str]:
    return [a for a in re.split(r"[\s;,]+", text or "") if a]


def read_products_file(path: str | Path, encoding: str | None = None) -> tuple[str, str]:
    """The file's text and how it was read: ``encoding`` if given, else UTF-8 (BOM or not), else GBK."""
    source, data = str(path), Path(path).read_bytes()
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ImportError_(source, [f"unknown encoding {encoding!r}"]) from None
        return _decode(source, data, encoding, f"not {encoding}"), encoding
    if data.startswith(codecs.BOM_UTF8):
        return _decode(source, data[len(codecs.BOM_UTF8):], "utf-8", "not UTF-8 after its BOM"), "UTF-8 with BOM"
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass  # not UTF-8: the other encoding exchanges and counter systems write
    return _decode(source, data, "gbk", "neither UTF-8 nor GBK", "; save the file as UTF-8"), "GBK"


def _decode(source: str, data: bytes, encoding: str, problem: str, advice: str = "") -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        raise ImportError_(source, [f"line {line}: {problem} (byte 0x{data[exc.start]:02x} at column {column})"
                                    + advice]) from None


def _nul_lines(text: str) -> list[str]:
    return [f"line {i}: contains a NUL character (a binary or damaged file?)"
            for i, line in enumerate(text.split("\n"), start=1) if "\0" in line]


def _account_problem(market: str, account: str) -> str | None:
    pattern, rule = ACCOUNT_FORMATS[market]
    return None if pattern.fullmatch(account) else f"account {market} {account!r} is not {rule}"


def import_products(repo: Repository, path: str | Path, *, text: str | None = None,
                    encoding: str | None = None) -> ImportSummary:
    source = str(path)
    summary = ImportSummary()
    if text is None:
        text, summary.encoding = read_products_file(path, encoding)
    text = text.removeprefix("\ufeff")
    nuls = _nul_lines(text)
    if nuls:
        raise ImportError_(source, nuls)
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("product", "institution") if c not in (reader.fieldnames or [])]
    if missing:
        raise ImportError_(source, [f"line 1: missing column(s) {', '.join(missing)} (columns: {', '.join(COLUMNS)})"])
    unknown = [c for c in reader.fieldnames or [] if c not in COLUMNS]
    if unknown:
        raise ImportError_(source, [f"line 1: unknown column(s) {', '.join(unknown)} (columns: {', '.join(COLUMNS)})"])
    rows = [(i, row) for i, row in enumerate(reader, start=2)]

    errors: list[str] = []
    with repo.session() as s:
        classifications = set(s.scalars(select(Classification.code)))
        owner: dict[tuple[str, str], str] = {(a.market, a.account): a.product_code for a in s.scalars(select(Account))}
        imported_products = {(row.get("product") or "").strip() for _, row in rows}
        seen_in_file: dict[tuple[str, str], tuple[str, int]] = {}
        seen_products: dict[str, int] = {}
        for line, row in rows:
            if None in row:  # DictReader keeps the fields beyond the header under None
                errors.append(f"line {line}: {len(reader.fieldnames) + len(row[None])} fields, the header has "
                              f"{len(reader.fieldnames)} (a comma inside a name needs quotes)")
                continue
            code = (row.get("product") or "").strip()
            inst = (row.get("institution") or "").strip()
            status = (row.get("status") or "active").strip() or "active"
            problem = name_problem(code)
            if problem:
                errors.append(f"line {line}: product code {problem}")
                continue
            if code in seen_products:
                errors.append(f"line {line}: product {code} appears again (first on line {seen_products[code]})")
            seen_products[code] = line
            problem = name_problem(inst)
            if problem:
                errors.append(f"line {line}: product {code}: institution code {problem}")
            if status not in ("active", "disabled"):
                errors.append(f"line {line}: product {code}: status {status!r} is not active or disabled")
            cls = (row.get("classification") or "").strip()
            if cls and cls not in classifications:
                errors.append(f"line {line}: product {code}: unknown classification {cls!r} "
                              "(define it under [classifications] in esomp.toml)")
            for column, market in MARKETS.items():
                for account in _split_accounts(row.get(column)):
                    problem = _account_problem(market, account)
                    if problem:
                        errors.append(f"line {line}: product {code}: {problem}")
                        continue
                    key = (market, account)
                    if key in seen_in_file and seen_in_file[key][0] != code:
                        other, other_line = seen_in_file[key]
                        errors.append(f"line {line}: account {market} {account} is listed for both product {other} "
                                      f"(line {other_line}) and product {code}")
                    seen_in_file[key] = (code, line)
                    current = owner.get(key)
                    # Moving an account is allowed only when its current product is re-imported without it.
                    if current and current != code and current not in imported_products:
                        errors.append(f"line {line}: account {market} {account} belongs to product {current}; "
                                      f"it cannot also belong to product {code}")
        if errors:
            raise ImportError_(source, errors)

        for _, row in rows:
            _apply_row(s, row, summary)
    return summary


def _apply_row(s: Session, row: dict[str, Any], summary: ImportSummary) -> None:
    code = row["product"].strip()
    inst_code = row["institution"].strip()
    institution = s.get(Institution, inst_code)
    if institution is None:
        institution = Institution(code=inst_code, name=(row.get("institution_name") or "").strip())
        s.add(institution)
        summary.institutions += 1
    elif (row.get("institution_name") or "").strip():
        institution.name = row["institution_name"].strip()
    product = s.get(Product, code)
    status = (row.get("status") or "active").strip() or "active"
    if product is None:
        product = Product(code=code, institution_code=inst_code)
        s.add(product)
        summary.created += 1
    else:
        summary.updated += 1
    product.institution_code = inst_code
    product.name = (row.get("name") or product.name or "").strip()
    product.classification_code = (row.get("classification") or "").strip() or product.classification_code
    if status == "disabled" and product.status != "disabled":
        summary.disabled += 1
    product.status = status
    s.flush()
    for column, market in MARKETS.items():
        accounts = _split_accounts(row.get(column))
        if not accounts:
            continue
        for old in s.scalars(select(Account).where(Account.product_code == code, Account.market == market)):
            if old.account not in accounts:
                s.delete(old)
        s.flush()
        for account in accounts:
            existing = s.get(Account, (market, account))
            if existing is None:
                s.add(Account(market=market, account=account, product_code=code))
            else:
                existing.product_code = code
            summary.accounts += 1
        s.flush()


def sync_classifications(repo: Repository, tree: dict[str, Any]) -> int:
    """Store the ``[classifications]`` tree of esomp.toml: nested tables, each with an optional ``name``."""
    nodes: list[tuple[str, str, str | None]] = []

    def walk(table: dict[str, Any], parent: str | None) -> None:
        for code, value in table.items():
            if isinstance(value, dict):
                nodes.append((code, str(value.get("name", code)), parent))
                walk({k: v for k, v in value.items() if k != "name"}, code)

    walk(tree, None)
    with repo.session() as s:
        for code, name, parent in nodes:
            node = s.get(Classification, code) or Classification(code=code)
            node.name, node.parent_code = name, parent
            s.add(node)
            s.flush()
    return len(nodes)


def query_products(repo: Repository, *, text: str | None = None, institution: str | None = None,
                   classification: str | None = None, account: str | None = None,
                   status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    stmt = select(Product).options(selectinload(Product.accounts)).order_by(Product.code)
    if text:
        stmt = stmt.where(or_(Product.code.contains(text), Product.name.contains(text)))
    if institution:
        stmt = stmt.where(Product.institution_code == institution)
    if classification:
        with repo.session() as s:
            codes = _subtree(s, classification)
        stmt = stmt.where(Product.classification_code.in_(codes))
    if account:
        stmt = stmt.where(Product.accounts.any(Account.account == account))
    if status:
        stmt = stmt.where(Product.status == status)
    if limit:
        stmt = stmt.limit(limit)
    with repo.session() as s:
        return [product_dict(p) for p in s.scalars(stmt)]


def _subtree(s: Session, code: str) -> set[str]:
    children: dict[str | None, list[str]] = {}
    for c in s.scalars(select(Classification)):
        children.setdefault(c.parent_code, []).append(c.code)
    found, todo = set(), [code]
    while todo:
        node = todo.pop()
        found.add(node)
        todo.extend(children.get(node, []))
    return found


def product_dict(p: Product) -> dict[str, Any]:
    return {
        "code": p.code, "name": p.name, "institution": p.institution_code,
        "classification": p.classification_code, "status": p.status,
        "accounts": [f"{a.market}:{a.account}" for a in p.accounts],
    }


def account_map(repo: Repository, market: str, products: Iterable[str] | None = None) -> dict[str, str]:
    """account -> product code for one market, active products only (optionally only the given products)."""
    stmt = (select(Account.account, Account.product_code).join(Product)
            .where(Account.market == market, Product.status == "active"))
    if products is not None:
        stmt = stmt.where(Account.product_code.in_(list(products)))
    with repo.session() as s:
        return dict(s.execute(stmt).all())
