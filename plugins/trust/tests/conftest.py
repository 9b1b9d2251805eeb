"""A generated 50-product day, collected, processed and sent once for the module."""
from __future__ import annotations

import pytest

from esomp_trust.testing import new_day, run_plan


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    """50 products, generated, collected, processed and sent once."""
    site, report = new_day(tmp_path_factory.mktemp("trust-day"), 50)
    results = run_plan(site)
    failed = {n: r for n, r in results.items() if isinstance(r, Exception)}
    assert not failed, failed
    return site, report, results
