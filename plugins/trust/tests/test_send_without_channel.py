"""Institutions without a delivery channel are reported once, with a count and a few examples, not per package."""
from __future__ import annotations

from pathlib import Path

from esomp_core import InstitutionRow as Institution, create_site as make_site
from esomp_gen import generate_day
from esomp_trust.testing import DATE, run_plan, site_tables


def day_without_delivery_channel(root: Path, products: int, **trust):
    tables = site_tables(**trust)
    del tables["business"]["trust"]["delivery_channel"]
    site = make_site(root, **tables)
    generate_day(site, DATE, products, seed=7)
    return site


def send_failures(results: dict) -> dict[str, Exception]:
    return {name: r for name, r in results.items() if name.startswith("trust-send") and isinstance(r, Exception)}


def test_send_names_institutions_without_a_channel_once_with_a_count(tmp_path):
    site = day_without_delivery_channel(tmp_path / "site", 12, products_per_job=20)
    failures = send_failures(run_plan(site))
    assert list(failures) == ["trust-send-b1-j1"]
    message = str(failures["trust-send-b1-j1"])
    assert message.count("no delivery channel") == 1
    assert "12 institutions have no delivery channel (T001, T002, T003, ...)" in message
    assert "T004" not in message and "P000" not in message
    assert "set [business.trust] delivery_channel" in message


def test_send_delivers_to_institutions_with_a_channel_and_counts_the_others(tmp_path):
    site = day_without_delivery_channel(tmp_path / "site", 4, products_per_job=4, package_by="institution")
    with site.repository.session() as s:
        s.get(Institution, "T002").channel = "out"
    failures = send_failures(run_plan(site))
    message = str(failures["trust-send-b1-j1"])
    assert message.startswith("3 of 4 package(s) not delivered: 3 institutions have no delivery channel "
                              "(T001, T003, T004)")
    assert (Path(site.root) / "outbox" / "T002" / DATE / f"T002_{DATE}.tar.zst").is_file()


def test_send_names_the_one_institution_without_a_channel(tmp_path):
    site = day_without_delivery_channel(tmp_path / "site", 2, products_per_job=2)
    with site.repository.session() as s:
        s.get(Institution, "T002").channel = "out"
    message = str(send_failures(run_plan(site))["trust-send-b1-j1"])
    assert "institution T001 has no delivery channel: set [business.trust] delivery_channel" in message
