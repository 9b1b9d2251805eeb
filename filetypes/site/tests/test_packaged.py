"""File types a distribution ships as TOML package data, registered from its own register_file_types hook."""
import textwrap
import uuid

import pytest

from esomp_core import ConfigError, Registry, hookimpl

import esomp_sitetypes.plugin as sitetypes
from esomp_sitetypes import packaged_types, register_packaged_types

GOOD = """
[filetypes.PAYIN]
description = "incoming payments"
family = "payments"
channel = "bank"
patterns = ["PAYIN{mmdd}.dbf"]
key = "ZQZH"
market = "SZ"
fields = ["ZQZH C 20", "JE N 17 2", "RQ D 8"]

[filetypes.PAYRATE]
family = "payments"
channel = "bank"
patterns = ["RATE*.dbf"]
fields = ["CODE C 6", "RATE N 9 6"]
"""


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """``shipped(text)``: a package on sys.path whose filetypes.toml holds ``text``."""
    def make(text, resource="filetypes.toml"):
        package = f"shipped_types_{uuid.uuid4().hex[:12]}"  # a fresh name: imported packages are cached
        folder = tmp_path / package
        folder.mkdir()
        (folder / "__init__.py").write_text("")
        if text is not None:
            (folder / resource).write_text(textwrap.dedent(text), encoding="utf-8")
        monkeypatch.syspath_prepend(str(tmp_path))
        return package

    return make


class Shipping:
    """A distribution's plugin: its register_file_types hook registers what its package ships."""

    def __init__(self, package):
        self.package = package

    @hookimpl
    def register_file_types(self, register):
        register_packaged_types(register, self.package)


def test_packaged_types_reads_every_key_of_a_declaration(shipped):
    types, errors = packaged_types(shipped(GOOD))
    assert errors == []
    payin, rate = types
    assert (payin.name, payin.family, payin.channel, payin.market, payin.description) == (
        "PAYIN", "payments", "bank", "SZ", "incoming payments")
    assert payin.key_fields == ("ZQZH",) and payin.split
    assert [(f.name, f.type, f.length, f.decimals) for f in payin.fields] == [
        ("ZQZH", "C", 20, 0), ("JE", "N", 17, 2), ("RQ", "D", 8, 0)]
    assert payin.matches("PAYIN0612.dbf", "20240612") and not payin.matches("PAYIN0613.dbf", "20240612")
    assert not rate.split and rate.key_fields == ()


def test_hook_register_file_types_from_a_distributions_toml(shipped, esomp_pm_factory):
    package = shipped(GOOD)
    registry = Registry.collect(esomp_pm_factory(Shipping(package)), None)
    assert registry.errors == []
    assert {"PAYIN", "PAYRATE"} <= set(registry.file_types)
    assert registry.owners[("file type", "PAYIN")] != registry.owners.get(("file type", "TZXX"))


def test_hook_register_file_types_site_table_replaces_a_packaged_type(shipped, esomp_site_factory,
                                                                      esomp_pm_factory):
    pm = esomp_pm_factory(sitetypes, Shipping(shipped(GOOD)))
    site = esomp_site_factory(pm, filetypes={"PAYRATE": {"patterns": ["RATES*.dbf"], "fields": ["CODE C 8"]}})
    registry = Registry.collect(pm, site)
    assert registry.errors == []
    assert registry.file_types["PAYRATE"].patterns == ("RATES*.dbf",)
    assert registry.file_types["PAYIN"].family == "payments"


def test_hook_register_file_types_bad_packaged_declaration_names_file_and_key(shipped, esomp_pm_factory):
    bad = GOOD.replace('key = "ZQZH"', 'key = "NOPE"').replace('"RATE N 9 6"', '"RATE X 9"')
    package = shipped(bad)
    registry = Registry.collect(esomp_pm_factory(Shipping(package)), None)
    [error] = registry.errors
    assert "filetypes.toml: filetypes.PAYIN.key: key field 'NOPE'" in error
    assert "filetypes.PAYRATE.fields[1]" in error  # both bad declarations are reported at once
    assert "PAYIN" not in registry.file_types


@pytest.mark.parametrize("text, path, words", [
    (None, "(top level)", "listed in the distribution's package_data"),
    ("[filetypes.X\n", "(top level)", "not valid TOML"),
    ("[types.X]\npatterns = ['x']\n", "types", "unknown table"),
    ("title = 'nothing'\n", "title", "unknown table"),
    ("", "filetypes", "at least one"),
    ("[filetypes]\nX = 3\n", "filetypes.X", "expected a table"),
])
def test_packaged_types_refuses_a_bad_file(shipped, text, path, words):
    package = shipped(text)
    try:
        types, errors = packaged_types(package)
    except ConfigError as exc:
        error = exc
    else:
        [error] = errors
    assert f": {path}: " in str(error) and words in str(error) and f"{package}/filetypes.toml" in str(error)
