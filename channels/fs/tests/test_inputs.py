"""The day's inputs of a channel: one input per name and per file type, files of another date or of no date,
DBFs still being written, the expected files of a channel, and waiting for them until the deadline."""
from __future__ import annotations

import io
import struct
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from esomp_core import FileRow as File, FileType, layout
from esomp_fs import FsChannel, FsOptions
from esomp_fs.inputs import date_of, dbf_shortfall

DATE = "20261120"
MX = FileType(name="SJSMX1", family="szse", channel="szse", fields=layout("MXZQZH C10"), key_fields=("MXZQZH",),
              patterns=("SJSMX1.dbf", "SJSMX1{mmdd}.dbf"))
GF = FileType(name="SJSGF", family="szse", channel="szse", fields=layout("GFGDDM C10"), key_fields=("GFGDDM",),
              patterns=("SJSGF.dbf", "SJSGF{mmdd}.dbf"))
ZQYE = FileType(name="zqye", family="sse", channel="sse", fields=layout("ZQZH C10"), key_fields=("ZQZH",),
                patterns=("zqye{mmdd}.dbf",), case_sensitive=True)
GH = FileType(name="gh", family="sse", channel="sse", fields=layout("GDDM C10"), key_fields=("GDDM",),
              patterns=("GH*.dbf",), case_sensitive=True, many=True)
TYPES = {ft.name: ft for ft in (MX, GF, ZQYE, GH)}


@pytest.fixture(params=["sqlite", "postgresql"])
def site(request, esomp_site_factory):
    """A site whose repository is SQLite, or a PostgreSQL database of its own."""
    if request.param == "sqlite":
        return esomp_site_factory()
    return esomp_site_factory(database={"url": request.getfixturevalue("esomp_postgres_url")})


def dbf(records: int, tag: str = "A", *, cut: int = 0) -> bytes:
    """A one-field (C10) dBase III file of ``records`` records; ``cut`` bytes missing at the end."""
    header = bytearray(32)
    header[0] = 3
    struct.pack_into("<IHH", header, 4, records, 32 + 32 + 1, 11)
    field = bytearray(32)
    field[:6] = b"KEY\0\0\0"
    field[11] = ord("C")
    field[16] = 10
    body = b"".join(b" " + f"{tag}{i:09d}".encode()[:10] for i in range(records))
    data = bytes(header) + bytes(field) + b"\r" + body + b"\x1a"
    return data[:len(data) - cut] if cut else data


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def put(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return folder / name


def channel(url: str, name: str = "szse", **options) -> FsChannel:
    return FsChannel(name, FsOptions(url=url, **options), file_types=TYPES)


def collect(ch: FsChannel, root: Path, **kwargs):
    return ch.collect(DATE, dest_root=root / "collect", unpack_root=root / "unpack", **kwargs)


# --- one input per name and per file type ---------------------------------------------------------------------


def test_an_archive_member_named_like_a_collected_file_fails_naming_both(site, tmp_path):
    source = tmp_path / "in"
    put(source, "SJSMX11120.dbf", dbf(1234))
    put(source, "late.zip", zipped({"SJSMX11120.dbf": dbf(3, "B")}))
    report = collect(channel(str(source), expected=[]), tmp_path, record=site.repository)

    [error] = report.errors
    assert "two different inputs for file name SJSMX11120.dbf" in error
    assert str(source / "SJSMX11120.dbf") in error and "late.zip#SJSMX11120.dbf" in error
    assert report.problem() and not report.complete
    # Both copies are kept, the member in a directory of its own archive.
    assert (tmp_path / "unpack" / DATE / "szse" / "late.zip" / "SJSMX11120.dbf").stat().st_size == len(dbf(3, "B"))
    assert (tmp_path / "collect" / DATE / "szse" / "SJSMX11120.dbf").stat().st_size == len(dbf(1234))


def test_two_archives_with_one_member_fail_naming_both(esomp_site, tmp_path):
    source = tmp_path / "in"
    put(source, "a.zip", zipped({"SJSMX11120.dbf": dbf(5)}))
    put(source, "b.zip", zipped({"SJSMX11120.dbf": dbf(7)}))
    report = collect(channel(str(source), expected=[]), tmp_path, record=esomp_site.repository)
    [error] = report.errors
    assert "a.zip#SJSMX11120.dbf" in error and "b.zip#SJSMX11120.dbf" in error


def test_identical_copies_are_collapsed_visibly(site, tmp_path):
    source = tmp_path / "in"
    put(source, "SJSMX11120.dbf", dbf(10))
    put(source, "again.zip", zipped({"SJSMX11120.dbf": dbf(10)}))
    report = collect(channel(str(source), expected=[]), tmp_path, record=site.repository)
    assert report.errors == [] and report.complete
    [collapsed] = report.collapsed
    assert collapsed.name == "again.zip/SJSMX11120.dbf" and "identical to SJSMX11120.dbf" in collapsed.reason
    assert report.inputs == ["SJSMX11120.dbf"]
    with site.repository.session() as s:
        roles = dict(s.execute(select(File.name, File.role)).all())
    assert roles["again.zip/SJSMX11120.dbf"] == "duplicate" and roles["SJSMX11120.dbf"] == "collected"


def test_case_variants_are_two_inputs_of_one_file_type(esomp_site, tmp_path):
    source = tmp_path / "in"
    put(source, "sjsgf1120.dbf", dbf(4))
    put(source, "SJSGF1120.DBF", dbf(4, "Z"))
    report = collect(channel(str(source), expected=[]), tmp_path, record=esomp_site.repository)
    [error] = report.errors
    assert "two different inputs for file type SJSGF" in error
    assert "SJSGF1120.DBF" in error and "sjsgf1120.dbf" in error


def test_a_type_of_many_files_a_day_keeps_them_all(esomp_site, tmp_path):
    source = tmp_path / "in" / DATE
    put(source, "GH32562.dbf", dbf(2))
    put(source, "GH32563.dbf", dbf(3))
    report = collect(channel(str(tmp_path / "in" / "{date}"), "sse", expected=[]), tmp_path,
                     record=esomp_site.repository)
    assert report.errors == [] and report.inputs == ["GH32562.dbf", "GH32563.dbf"]


def test_removing_the_wrong_file_at_the_source_releases_the_day(site, tmp_path):
    source = tmp_path / "in"
    put(source, "SJSMX11120.dbf", dbf(12))
    wrong = put(source, "SJSMX1.zip", zipped({"SJSMX11120.dbf": dbf(2, "X")}))
    ch = channel(str(source), expected=[])
    assert collect(ch, tmp_path, record=site.repository).errors
    wrong.unlink()
    again = collect(ch, tmp_path, record=site.repository)
    assert again.errors == [] and again.complete
    assert sorted(again.withdrawn) == ["SJSMX1.zip", "SJSMX1.zip/SJSMX11120.dbf"]
    assert again.inputs == ["SJSMX11120.dbf"]


# --- of the day, or not -----------------------------------------------------------------------------------------


def test_a_file_of_another_date_is_ignored_and_reported(esomp_site, tmp_path):
    source = tmp_path / "in"
    put(source, "zqye1119.dbf", dbf(3, "Y"))
    put(source, "zqye1120.dbf", dbf(3))
    report = collect(channel(str(source), "sse", expected=[]), tmp_path, record=esomp_site.repository)
    assert [f.name for f in report.collected] == ["zqye1120.dbf"]
    [ignored] = report.ignored
    assert ignored.name == "zqye1119.dbf" and "of another date than 20261120 (file type zqye)" in ignored.reason
    assert report.as_dict()["ignored"][0]["name"] == "zqye1119.dbf"


def test_an_undated_name_counts_only_in_a_dated_directory(esomp_site, tmp_path):
    put(tmp_path / "flat", "SJSMX1.dbf", dbf(2))
    flat = collect(channel(str(tmp_path / "flat"), expected=[]), tmp_path, record=esomp_site.repository)
    assert flat.collected == [] and "names the day" in flat.ignored[0].reason

    put(tmp_path / "dated" / DATE, "SJSMX1.dbf", dbf(2))
    dated = collect(channel(str(tmp_path / "dated" / "{date}"), expected=[]), tmp_path / "2",
                    record=esomp_site.repository)
    assert [f.name for f in dated.collected] == ["SJSMX1.dbf"] and dated.ignored == []


def test_date_of_tells_dated_undated_other_and_unknown():
    types = TYPES.values()
    assert date_of("SJSMX11120.dbf", DATE, types, False).kind == "dated"
    assert date_of("SJSMX11119.dbf", DATE, types, False).kind == "other-date"
    assert date_of("SJSMX1.dbf", DATE, types, False).kind == "undated"
    assert date_of("SJSMX1.dbf", DATE, types, True).kind == "dated"
    assert date_of("readme.txt", DATE, types, False).kind == "unknown"


# --- complete, or not yet ---------------------------------------------------------------------------------------


def test_a_dbf_still_being_written_is_pending_and_fails_the_collection(esomp_site, tmp_path):
    source = tmp_path / "in"
    half = put(source, "SJSMX11120.dbf", dbf(100, cut=500))
    ch = channel(str(source), expected=["SJSMX1"])
    report = collect(ch, tmp_path, record=esomp_site.repository)
    assert report.collected == [] and report.missing == []  # there, but not complete: pending, not missing
    [pending] = report.pending
    assert pending.name == "SJSMX11120.dbf" and "header declares 100 records" in pending.reason
    assert "files not complete: SJSMX11120.dbf" in report.problem()

    half.write_bytes(dbf(100))  # the writer finished: the next collection takes it
    done = collect(ch, tmp_path, record=esomp_site.repository)
    assert [f.name for f in done.collected] == ["SJSMX11120.dbf"] and done.complete


def test_dbf_shortfall(tmp_path):
    assert dbf_shortfall(put(tmp_path, "whole.dbf", dbf(5))) is None
    assert dbf_shortfall(put(tmp_path, "no-eof.dbf", dbf(5)[:-1])) is None
    assert "5 records" in dbf_shortfall(put(tmp_path, "cut.dbf", dbf(5, cut=3)))
    assert "shorter than a DBF header" in dbf_shortfall(put(tmp_path, "tiny.dbf", b"\x03\x00"))


def test_expected_files_default_to_the_channels_registered_file_types(esomp_site, tmp_path):
    source = tmp_path / "in"
    put(source, "SJSMX11120.dbf", dbf(2))
    report = collect(channel(str(source)), tmp_path, record=esomp_site.repository)
    assert report.missing == ["SJSGF"] and "SJSGF" in report.problem()  # SJSGF is a registered szse type
    optional = collect(channel(str(source), optional=["SJSGF"]), tmp_path, record=esomp_site.repository)
    assert optional.missing == [] and optional.complete


def test_the_collection_job_waits_for_a_late_file_until_it_is_complete(esomp_site, tmp_path):
    source = tmp_path / "in"
    put(source, "SJSMX11120.dbf", dbf(2))
    clock = iter([datetime(2026, 11, 20, 15, 0), datetime(2026, 11, 20, 15, 5), datetime(2026, 11, 20, 15, 10)])
    naps: list[float] = []

    def sleep(seconds: float) -> None:  # the exchange delivers SJSGF while the job waits
        naps.append(seconds)
        put(source, "SJSGF1120.dbf", dbf(1))

    report = collect(channel(str(source), deadline="16:00", poll_interval=60), tmp_path,
                     record=esomp_site.repository, wait=True, clock=lambda: next(clock), sleep=sleep)
    assert naps == [60] and report.complete and sorted(report.inputs) == ["SJSGF1120.dbf", "SJSMX11120.dbf"]


def test_the_collection_job_fails_past_the_deadline_naming_the_missing_files(esomp_site, tmp_path):
    source = tmp_path / "in"
    put(source, "SJSMX11120.dbf", dbf(2))
    moments = iter([datetime(2026, 11, 20, 15, 58), datetime(2026, 11, 20, 16, 1)])
    report = collect(channel(str(source), deadline="16:00", poll_interval=60), tmp_path,
                     record=esomp_site.repository, wait=True, clock=lambda: next(moments), sleep=lambda s: None)
    assert report.overdue and report.missing == ["SJSGF"]
    assert "expected files missing past the deadline (deadline 2026-11-20 16:00): SJSGF" in report.problem()


@pytest.mark.parametrize("wait", [False, True])
def test_without_a_deadline_one_look_decides(esomp_site, tmp_path, wait):
    source = tmp_path / "in"
    put(source, "SJSMX11120.dbf", dbf(2))
    report = collect(channel(str(source)), tmp_path, record=esomp_site.repository, wait=wait,
                     sleep=lambda s: pytest.fail("no deadline: nothing to wait for"))
    assert report.missing == ["SJSGF"] and "not there yet" in report.problem()
