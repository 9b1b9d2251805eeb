"""`esomp demo` end to end: a fresh site, a generated day, the whole plan through the engine."""


def test_hook_register_commands_demo_runs_a_whole_day(tmp_path, esomp_cli):
    site = tmp_path / "demo"
    result = esomp_cli(["demo", "--dir", site, "--products", 20, "--date", "20261120", "--workers", 2])
    assert result.exit_code == 0, result.output
    assert "clearing day 20261120: succeeded" in result.output
    for group in ("szse", "sse", "batch 1", "batch 4", "total"):
        assert group in result.output
    packages = sorted((site / "outbox").rglob("*.tar.zst"))
    assert len(packages) == 20  # one per product
    flags = sorted((site / "outbox").rglob("*.ok"))
    assert len(flags) >= 20
    products = sorted(p.name for p in (site / "data" / "clearing" / "20261120").glob("*/*") if p.is_dir())
    assert len(products) == 20
    for product in (site / "data" / "clearing" / "20261120").glob("*/P*"):
        assert len([f for f in product.iterdir() if f.is_file()]) == 32


def test_demo_refuses_a_directory_that_is_not_a_site(tmp_path, esomp_cli):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "notes.txt").write_text("keep me")
    result = esomp_cli(["demo", "--dir", tmp_path / "precious", "--products", 5])
    assert result.exit_code == 1 and "is not an E-SOMP site" in result.output
    assert (tmp_path / "precious" / "notes.txt").read_text() == "keep me"
