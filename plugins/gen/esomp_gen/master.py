"""The synthetic product master: products, trust companies, and 1 to 3 SZ and 1 to 3 SH accounts per product.

Depends on the seed and the number of products only (not the date), so consecutive days share one master.
"""
from __future__ import annotations

import csv
import io
import random

import attrs

from esomp_core import PRODUCT_COLUMNS as COLUMNS

CITIES = ("北京", "上海", "天津", "重庆", "广州", "深圳", "杭州", "南京", "苏州", "厦门", "福州", "成都", "西安",
          "武汉", "长沙", "郑州", "济南", "青岛", "大连", "沈阳", "哈尔滨", "长春", "昆明", "贵阳", "南宁", "海口",
          "合肥", "南昌", "太原", "石家庄", "呼和浩特", "兰州", "西宁", "银川", "乌鲁木齐", "拉萨", "宁波", "无锡",
          "佛山", "东莞")
STYLES = ("稳健", "增利", "安享", "鑫泰", "恒远", "丰裕", "臻选", "传家")
MODULUS = 10**9
# Account numbers are a bijection of (product, slot): unique, but not visibly sequential.
SZ_FACTOR, SH_FACTOR = 7919, 104729
UNOWNED_BASE = 5 * 10**8  # slots from here on belong to no product


@attrs.frozen
class Product:
    code: str
    name: str
    institution: str
    institution_name: str
    sz_accounts: tuple[str, ...]
    sh_accounts: tuple[str, ...]


def sz_account(slot: int, seed: int) -> str:
    return f"0{(slot * SZ_FACTOR + seed * 7 + 12345) % MODULUS:09d}"


def sh_account(slot: int, seed: int) -> str:
    return f"A{(slot * SH_FACTOR + seed * 11 + 54321) % MODULUS:09d}"


def unowned_accounts(market: str, seed: int, count: int = 64) -> list[str]:
    """Accounts that belong to no product (records on them end up in the splitter's unmatched report)."""
    make = sz_account if market == "SZ" else sh_account
    return [make(UNOWNED_BASE + i, seed) for i in range(count)]


def make_products(count: int, seed: int, institutions: int = 40) -> list[Product]:
    rng = random.Random(f"esomp-gen master {seed}")
    institutions = max(1, min(institutions, count))
    names = {f"T{i + 1:03d}": f"{CITIES[i % len(CITIES)]}{'' if i < len(CITIES) else i // len(CITIES) + 1}"
             f"国际信托有限公司" for i in range(institutions)}
    codes = list(names)
    products = []
    for i in range(count):
        institution = codes[i % institutions] if i < institutions else rng.choice(codes)
        sz = tuple(sz_account(i * 8 + k, seed) for k in range(rng.randint(1, 3)))
        sh = tuple(sh_account(i * 8 + 4 + k, seed) for k in range(rng.randint(1, 3)))
        name = f"{names[institution][:2]}{rng.choice(STYLES)}{i + 1}号集合资金信托计划"
        products.append(Product(f"P{i + 1:05d}", name, institution, names[institution], sz, sh))
    return products


def products_csv(products: list[Product]) -> str:
    """The master in esomp_core.products' import format."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for p in products:
        writer.writerow([p.code, p.name, p.institution, p.institution_name, "", "active",
                         " ".join(p.sz_accounts), " ".join(p.sh_accounts)])
    return out.getvalue()
