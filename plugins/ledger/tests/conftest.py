from __future__ import annotations

import pytest

import esomp_ledger.plugin
from esomp_ledger import Account, add_accounts

CHART = [
    Account("1001", "客户资金", "customer_fund"),
    Account("1002", "银行存管", "custody"),
    Account("1101", "清算备付金 深圳", "clearing_reserve", market="SZ"),
    Account("2001", "产品 A", "product"),
    Account("3001", "公司自有", "company"),
    Account("6001", "手续费", "fees"),
    Account("1001U", "客户资金 美元", "customer_fund", currency="USD"),
    Account("1002U", "银行存管 美元", "custody", currency="USD"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_site(request, esomp_site_factory, esomp_pm_factory):
    """A site with the ledger's tables and the test chart of accounts, on SQLite and on PostgreSQL."""
    tables = {}
    if request.param == "postgresql":
        tables["database"] = {"url": request.getfixturevalue("esomp_postgres_url")}
    site = esomp_site_factory(esomp_pm_factory(esomp_ledger.plugin), **tables)
    site.repository.upgrade()
    add_accounts(site, CHART)
    yield site
    site.repository.dispose()


@pytest.fixture
def sqlite_ledger_site(esomp_site_factory, esomp_pm_factory):
    site = esomp_site_factory(esomp_pm_factory(esomp_ledger.plugin))
    site.repository.upgrade()
    add_accounts(site, CHART)
    return site
