import json

import click
import pytest
from click.testing import CliRunner

from esomp_core import FieldSpec
from esomp_dbf import encode_record, write_dbf
from esomp_dbf.plugin import register_commands


def make_cli(with_bench=False):
    cli = click.Group("esomp")
    if with_bench:
        @cli.group("bench")
        def bench():
            """Core bench group."""
    register_commands(cli)
    return cli


def test_hook_register_commands_dbf_info_and_cat():
    cli = make_cli()
    assert set(cli.commands["dbf"].commands) == {"info", "cat"}
    assert "dbf" in cli.commands["bench"].commands  # created when the core has no bench group
    existing = make_cli(with_bench=True)
    assert existing.commands["bench"].help == "Core bench group."
    assert "dbf" in existing.commands["bench"].commands


def test_info_json_and_text(realdata):
    path = str(realdata("sjshq.dbf"))
    result = CliRunner().invoke(make_cli(), ["dbf", "info", path, "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert (info["records"], info["deleted"], info["eof_byte"], info["language_driver"]) == (5941, 0, True, 0)
    assert info["fields"][0] == {"name": "HQZQDM", "type": "C", "length": 6, "decimals": 0, "offset": 1}
    text = CliRunner().invoke(make_cli(), ["dbf", "info", str(realdata("show2003.dbf"))]).output
    assert "records         11651 (" in text and "EOF byte        absent" in text and "S33" in text


def test_cat_real_file_with_deleted_flags(realdata):
    path = str(realdata("show2003.dbf"))
    result = CliRunner().invoke(make_cli(), ["dbf", "cat", path, "--json", "--fields", "S1,s2,S3", "--limit", "3"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [list(r) for r in rows] == [["_record", "_deleted", "S1", "S2", "S3"]] * 3
    assert rows[1]["S2"] == "上证指数" and rows[0]["_deleted"] is True and rows[0]["S1"] == "000000"


def test_cat_shows_invalid_values_and_errors(tmp_path):
    fields = [FieldSpec("CODE", "C", 6), FieldSpec("PX", "N", 8, 3), FieldSpec("DT", "D", 8)]
    path = tmp_path / "ODD.DBF"
    write_dbf(path, fields, [encode_record(fields, ["600000", b"   -.---", b"       0"], deleted=True),
                             encode_record(fields, ["600001", 1.5, b"20241301"])])
    out = CliRunner().invoke(make_cli(), ["dbf", "cat", str(path)])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0] == "#\tdeleted\tCODE\tPX\tDT"
    assert lines[1] == "0\t*\t600000\t<invalid '   -.---'>\t"
    assert lines[2] == "1\t\t600001\t1.500\t<invalid '20241301'>"  # N8.3 as stored: exact
    rows = json.loads(CliRunner().invoke(make_cli(), ["dbf", "cat", str(path), "--json"]).output)
    assert rows[0]["PX"] == {"invalid": "   -.---", "reason": "not a plain number for N8.3"} and rows[0]["DT"] is None
    missing = CliRunner().invoke(make_cli(), ["dbf", "cat", str(path), "--fields", "NOPE"])
    assert missing.exit_code != 0 and "no field 'NOPE'; available fields: CODE, PX, DT" in missing.output
    path.write_bytes(path.read_bytes()[:-30])
    broken = CliRunner().invoke(make_cli(), ["dbf", "info", str(path)])
    assert broken.exit_code != 0 and "ODD.DBF: truncated" in broken.output


def test_bench_dbf_json_small(tmp_path):
    disk, ram = tmp_path / "disk", tmp_path / "ram"
    disk.mkdir(), ram.mkdir()
    result = CliRunner().invoke(
        make_cli(), ["bench", "dbf", "--records", "3000", "--accounts", "40", "--destinations", "4,40",
                     "--repeat", "1", "--no-typed", "--json", "--workdir", str(disk), "--ramdisk", str(ram)],
    )
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.output)
    assert report["records"] == 3000 and report["key"] == "MXZQZH" and report["distinct_keys"] == 40
    assert report["bytes"] == 32 + 48 * 32 + 1 + 3000 * 478 + 1
    rows = report["results"]
    expected = {"dbfread raw read", "key scan"}
    for n in (4, 40):
        expected.add(f"split in memory, {n} destinations")
        for where in ("disk", "RAM disk"):
            expected |= {f"split into {n} files, {where}", f"split into {n} files, {where}, temp name per file",
                         f"floor: write the {n} output files, {where}"}
    assert set(rows) == expected
    assert rows["split into 40 files, RAM disk"]["destinations"] == 40
    assert rows["split into 40 files, RAM disk"]["where"] == "RAM disk"
    assert rows["dbfread raw read"]["x_dbfread_raw"] == 1 and report["layout"] == "{dest}/{name}"
    for row in rows.values():
        assert row["seconds"] > 0 and row["records_per_s"] > 0 and row["mb_per_s"] > 0 and row["x_dbfread_raw"] > 0
        assert row["x_dbfread_raw"] == pytest.approx(rows["dbfread raw read"]["seconds"] / row["seconds"])
    assert list(disk.iterdir()) == [] and list(ram.iterdir()) == []  # the files are gone


def test_bench_dbf_rejects_bad_destination_counts():
    result = CliRunner().invoke(make_cli(), ["bench", "dbf", "--destinations", "0,x"])
    assert result.exit_code != 0 and "expected positive counts separated by commas" in result.output


def test_bench_dbf_on_given_file(realdata):
    result = CliRunner().invoke(
        make_cli(), ["bench", "dbf", str(realdata("sjshq.dbf")), "--repeat", "1", "--no-typed", "--destinations", "20",
                     "--ramdisk", "none", "--no-per-file", "--no-floor", "--layout", "flat"]
    )
    assert result.exit_code == 0, result.output
    assert "sjshq.dbf: 5,941 records" in result.output and "x dbfread" in result.output
    assert "dbfread raw read: dbfread.DBF(raw=True)" in result.output  # the header says what each figure is
    assert "files {dest}.dbf" in result.output and "split into 20 files, disk " in result.output
    assert "floor: write the" not in result.output  # --no-floor
