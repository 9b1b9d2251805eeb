"""``esomp new-plugin``: names, the files written, and what it refuses."""
import pytest

from esomp_kit import KINDS, Names, ScaffoldError, new_plugin
from esomp_kit import plugin as kit


def test_names_derive_from_the_plugin_name():
    names = Names("bank-transfer")
    assert (names.package, names.distribution, names.type_name, names.class_prefix) == (
        "esomp_bank_transfer", "esomp-bank-transfer", "BANK_TRANSFER", "BankTransfer")


@pytest.mark.parametrize("kind", KINDS)
def test_new_plugin_writes_a_distribution_with_every_placeholder_filled(kind, tmp_path):
    written = new_plugin(kind, "bank-transfer", tmp_path / "out")
    relative = {str(p.relative_to(tmp_path / "out")) for p in written}
    assert {"setup.cfg", "pyproject.toml", "README.md", "esomp_bank_transfer/__init__.py",
            "esomp_bank_transfer/plugin.py", "tests/test_esomp_bank_transfer.py"} <= relative
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert "${" not in text and "__package__/" not in str(path) and not path.name.endswith(".tmpl")
    setup = (tmp_path / "out" / "setup.cfg").read_text()
    assert "name = esomp-bank-transfer" in setup and "bank-transfer = esomp_bank_transfer.plugin" in setup
    for path in written:
        if path.suffix == ".py":
            compile(path.read_text(encoding="utf-8"), str(path), "exec")


@pytest.mark.parametrize("name, words", [
    ("Payments", "lower-case letters"),
    ("1st", "starting with a letter"),
    ("pay ments", "lower-case letters"),
    ("pay--ments", "lower-case letters"),
    ("../x", "lower-case letters"),
    ("kit", "taken by the installed distribution esomp-kit"),
])
def test_new_plugin_refuses_a_bad_or_taken_name(name, words, tmp_path):
    with pytest.raises(ScaffoldError, match=words):
        new_plugin("channel", name, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_new_plugin_refuses_a_directory_that_has_files(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(ScaffoldError, match="exists and is not an empty directory"):
        new_plugin("channel", "drop", tmp_path / "out")
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]


def test_new_plugin_refuses_an_unknown_kind(tmp_path):
    with pytest.raises(ScaffoldError, match="unknown kind 'monitor'"):
        new_plugin("monitor", "drop", tmp_path / "out")


def test_hook_register_commands_new_plugin(esomp_cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = esomp_cli(["new-plugin", "business-type", "payments"], plugins=[kit])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "payments" / "esomp_payments" / "plugin.py").exists()
    assert "business-type plugin payments in payments" in result.output

    again = esomp_cli(["new-plugin", "business-type", "payments"], plugins=[kit])
    assert again.exit_code == 1 and "payments exists and is not an empty directory" in again.output


def test_hook_register_commands_new_plugin_into_dir(esomp_cli, tmp_path):
    result = esomp_cli(["new-plugin", "file-type", "rates", "--dir", tmp_path / "plugins" / "rates"], plugins=[kit])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "plugins" / "rates" / "esomp_rates" / "filetypes.toml").exists()


def test_hook_register_commands_new_plugin_lists_the_kinds(esomp_cli, tmp_path):
    result = esomp_cli(["new-plugin", "monitor", "x", "--dir", tmp_path / "x"], plugins=[kit])
    assert result.exit_code == 2 and "'file-type', 'channel', 'business-type'" in result.output
