"""A generated day with injected input faults: collection finds exactly the injected problems, nothing more and
nothing less, and the trust processing refuses two inputs for one file even when collection was bypassed."""
from __future__ import annotations

import pytest

from esomp_core import create_site as make_site
from esomp_fs.plugin import collect_channel
from esomp_gen import generate_day
from esomp_gen.faults import FAULTS
from esomp_trust.inputs import InputError, collected_inputs
from esomp_trust.testing import CHANNELS, DATE, site_tables


def problems(report) -> set[str]:
    """Every problem a collection reports, one line each."""
    found = {f"error: {e}" for e in report.errors}
    found |= {f"pending: {s.name}" for s in report.pending}
    found |= {f"missing: {m}" for m in report.missing}
    found |= {f"ignored: {s.name}" for s in report.ignored}
    return found


def explained(fault: dict, found: set[str]) -> set[str]:
    """The lines of ``found`` that the injected ``fault`` accounts for."""
    kind = fault["fault"]
    if kind in ("shadow-member", "case-variant"):
        return {line for line in found if line.startswith("error: ") and fault["found_as"] in line}
    if kind == "half-written":
        return {f"pending: {fault['file']}"} & found
    if kind == "missing-file":
        return {line for line in found if line.startswith("missing: ")}
    return {f"ignored: {fault['extra']}"} & found


def test_collection_finds_exactly_the_injected_faults(tmp_path):
    site = make_site(tmp_path / "faulty", **site_tables())
    report = generate_day(site, DATE, 20, seed=7, faults=sorted(FAULTS))
    assert sorted(f["fault"] for f in report.faults) == sorted(FAULTS)
    found = {c: problems(collect_channel(site, c, DATE)) for c in CHANNELS}
    for fault in report.faults:
        lines = explained(fault, found[fault["channel"]])
        assert len(lines) == 1, (fault, found[fault["channel"]])
        found[fault["channel"]] -= lines
    assert found == {c: set() for c in CHANNELS}  # nothing else was found


def test_a_day_without_faults_is_complete_with_every_generated_file_an_input(tmp_path):
    site = make_site(tmp_path / "site", **site_tables())
    report = generate_day(site, DATE, 5, seed=7)
    reports = [collect_channel(site, c, DATE) for c in CHANNELS]
    assert [problems(r) for r in reports] == [set(), set(), set()]
    inputs = sorted(name.rsplit("/", 1)[-1] for r in reports for name in r.inputs)
    assert inputs == sorted(f["name"] for f in report.files)


def test_processing_refuses_two_inputs_for_one_file_even_past_collection(tmp_path):
    site = make_site(tmp_path / "site", **site_tables())
    report = generate_day(site, DATE, 10, seed=7, faults=["shadow-member"])
    [fault] = report.faults
    collect_channel(site, fault["channel"], DATE)  # fails; its files are recorded all the same
    for channel in CHANNELS:
        collect_channel(site, channel, DATE)
    with pytest.raises(InputError) as caught:
        collected_inputs(site, DATE, CHANNELS)
    assert f"two different inputs for file name {fault['file']}" in str(caught.value)
    assert f"{fault['extra']}#{fault['file']}" in str(caught.value)


def test_a_conflict_in_one_channel_holds_only_that_channels_partition(tmp_path):
    site = make_site(tmp_path / "site", **site_tables())
    report = generate_day(site, DATE, 10, seed=7, faults=["shadow-member"])
    [fault] = report.faults
    for channel in CHANNELS:
        collect_channel(site, channel, DATE)
    others = [c for c in CHANNELS if c != fault["channel"]]
    for channel in others:
        inputs, _ = collected_inputs(site, DATE, CHANNELS, for_channel=channel)
        assert inputs and {i.channel for i in inputs} >= {channel}
    with pytest.raises(InputError, match="two different inputs"):
        collected_inputs(site, DATE, CHANNELS, for_channel=fault["channel"])
