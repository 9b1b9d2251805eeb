from __future__ import annotations

import json

import esomp_ledger.plugin
from esomp_ledger import MIGRATIONS


def test_hook_register_migrations_adds_the_ledger_branch(esomp_site_factory, esomp_pm_factory):
    site = esomp_site_factory(esomp_pm_factory(esomp_ledger.plugin))
    registered = []

    site.pm.hook.register_migrations(register=registered.append)
    site.repository.upgrade(MIGRATIONS)

    assert MIGRATIONS in registered
    assert {"ledger_accounts", "ledger_vouchers", "ledger_lines", "ledger_days"} <= set(site.repository.tables())


def test_hook_register_commands_adds_ledger_and_bench_ledger(esomp_site, esomp_cli):
    ledger = esomp_cli(["ledger", "--help"], site=esomp_site, plugins=[esomp_ledger.plugin])
    for name in ("accounts", "journal", "balance", "trial", "close", "export"):
        assert name in ledger.output

    bench = esomp_cli(["bench", "ledger", "--lines", "300", "--orm-lines", "50", "--repeat", "1",
                       "--backend", "sqlite", "--json"], site=esomp_site, plugins=[esomp_ledger.plugin])

    [result] = json.loads(bench.output)
    assert (result["backend"], result["lines"], result["orm_lines_measured"]) == ("sqlite", 300, 50)
    assert result["orm_extrapolated"] is True and len(result["runs"]) == 1
