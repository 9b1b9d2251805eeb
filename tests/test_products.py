"""The products master against SQLite and the real PostgreSQL server."""
import pytest

from esomp_core.products import ImportError_, account_map, import_products, query_products, sync_classifications

HEADER = "product,name,institution,institution_name,classification,status,sz_accounts,sh_accounts\n"
GOOD = HEADER + (
    "P001,家族信托一号,INST1,甲信托,family,active,0012345678 0012345679,A123456789\n"
    "P002,集合信托二号,INST1,,collective,,0022345678,B123456789;B123456790\n"
    "P003,三号,INST2,乙信托,,active,,\n"
)
TREE = {"trust": {"name": "信托", "family": {"name": "家族信托"}, "collective": {"name": "集合信托"}}}


def load(repo, text=GOOD):
    sync_classifications(repo, TREE)
    return import_products(repo, "products.csv", text=text)


def test_import_then_query(repository):
    summary = load(repository)
    assert (summary.created, summary.institutions, summary.accounts) == (3, 2, 6)
    assert [p["code"] for p in query_products(repository, text="信托")] == ["P001", "P002"]
    assert [p["code"] for p in query_products(repository, institution="INST2")] == ["P003"]
    assert [p["code"] for p in query_products(repository, classification="trust")] == ["P001", "P002"]
    assert [p["code"] for p in query_products(repository, account="B123456790")] == ["P002"]
    assert account_map(repository, "SZ") == {"0012345678": "P001", "0012345679": "P001", "0022345678": "P002"}


def test_update_and_disable(repository):
    load(repository)
    summary = import_products(repository, "u.csv", text=HEADER + "P002,,INST1,,,disabled,0022345678,\n")
    assert (summary.updated, summary.disabled) == (1, 1)
    assert query_products(repository, status="disabled")[0]["code"] == "P002"
    assert "0022345678" not in account_map(repository, "SZ")  # disabled products take no files


def test_bad_line_changes_nothing_and_names_the_line(repository):
    load(repository)
    bad = HEADER + ("P004,ok,INST1,,,,0099999999,\n"
                    "P../5,bad code,INST1,,,,,\n"
                    "P006,,INST1,,nosuchclass,,,\n")
    with pytest.raises(ImportError_) as info:
        import_products(repository, "bad.csv", text=bad)
    assert info.value.errors[0].startswith("line 3: product code 'P../5'")
    assert info.value.errors[1] == ("line 4: product P006: unknown classification 'nosuchclass' "
                                    "(define it under [classifications] in esomp.toml)")
    assert not query_products(repository, text="P004")


def test_account_conflict_names_both_products(repository):
    load(repository)
    with pytest.raises(ImportError_) as info:
        import_products(repository, "c.csv", text=HEADER + "P009,,INST1,,,,0012345678,\n")
    assert info.value.errors == ["line 2: account SZ 0012345678 belongs to product P001; "
                                 "it cannot also belong to product P009"]
    with pytest.raises(ImportError_, match="listed for both product P010 \\(line 2\\) and product P011"):
        import_products(repository, "d.csv", text=HEADER + "P010,,I,,,,0055000000,\nP011,,I,,,,0055000000,\n")


def test_account_moves_when_its_product_is_reimported_without_it(repository):
    load(repository)
    import_products(repository, "m.csv", text=HEADER + "P001,,INST1,,,,0012345679,\nP003,,INST2,,,,0012345678,\n")
    assert account_map(repository, "SZ")["0012345678"] == "P003"


def test_repository_schema_is_migrated(repository):
    from alembic.script import ScriptDirectory

    assert repository.current_revision() == ScriptDirectory.from_config(repository.alembic_config()).get_current_head()
    assert {"runs", "jobs", "job_events", "files", "products", "institutions", "accounts", "classifications",
            "alerts"} <= set(repository.tables())
    # plugins' tables come from their own migration branches, which a bare repository does not know
    assert not {"packages", "receipts", "deliveries", "dashboard_users", "ledger_entries"} & set(repository.tables())


def test_products_cli(esomp_site_factory, esomp_cli, tmp_path):
    site = esomp_site_factory(classifications=TREE)
    csv = tmp_path / "p.csv"
    csv.write_text(GOOD, encoding="utf-8")
    result = esomp_cli(["products", "import", csv], site=site)
    assert result.exit_code == 0, result.output
    assert "3 created" in result.output
    shown = esomp_cli(["products", "show", "P001", "--json"], site=site)
    assert '"SZ:0012345678"' in shown.output
    listed = esomp_cli(["products", "list", "--account", "A123456789", "--json"], site=site)
    assert '"P001"' in listed.output and '"P002"' not in listed.output
    csv.write_text(HEADER + "P007,,INST1,,,wrong,,\n", encoding="utf-8")
    refused = esomp_cli(["products", "import", csv], site=site)
    assert refused.exit_code == 1 and "line 2: product P007: status 'wrong'" in refused.output
