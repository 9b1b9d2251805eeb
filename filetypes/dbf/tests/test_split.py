import contextlib
import importlib
import io
import os
import re
import struct
import subprocess
import sys
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esomp_core import FieldSpec
from esomp_dbf import DbfError, DbfFile, encode_record, partition, record_bytes, split, split_to_dir, write_dbf
from esomp_dbf import write_records

splitter = importlib.import_module("esomp_dbf.split")  # the module: the package's ``split`` is the function

FIELDS = [FieldSpec("SEQ", "N", 6), FieldSpec("ZQZH", "C", 10), FieldSpec("NOTE", "C", 4)]
KEYS = ["A1", "A2", "B1", "B2", "C1", "", "证券"]


def make(keys, deleted=()):
    stream = io.BytesIO()
    rows = [encode_record(FIELDS, [i, k, "x"], deleted=i in deleted) for i, k in enumerate(keys)]
    write_dbf(stream, FIELDS, rows)
    return DbfFile(stream.getvalue(), name="SRC.DBF"), rows


def memory_dests():
    outputs = {}

    def open_dest(dest):
        outputs[dest] = io.BytesIO()
        return contextlib.nullcontext(outputs[dest])

    return outputs, open_dest


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(KEYS), max_size=60),
    st.dictionaries(st.sampled_from(KEYS), st.sampled_from(["P1", "P2", "P3"])),
    st.sets(st.integers(0, 59)),
    st.booleans(),
    st.sampled_from([1, 2, 7, 1 << 20]),
)
def test_split_then_concatenate_gives_every_record_once(keys, mapping, deleted, eof, buffer_records):
    source, rows = make(keys, deleted)
    outputs, open_dest = memory_dests()
    with pytest.MonkeyPatch.context() as mp:  # a destination may span several fills of the gather buffer
        mp.setattr(splitter, "GATHER_BYTES", buffer_records * source.record_length)
        result = split(source, "ZQZH", {f" {k} ": d for k, d in mapping.items()}, open_dest, eof=eof)
    seen = []
    for dest, stream in outputs.items():
        out = DbfFile(stream.getvalue())
        assert out.has_eof == eof and out.count == result.counts[dest] > 0
        assert out.header[8:] == source.header[8:] and out.header[:4] == source.header[:4]
        records = [bytes(r) for r in out.records()]
        assert records == [rows[i] for i in result.records[dest]]  # byte for byte, in source order
        assert all(mapping[keys[i]] == dest for i in result.records[dest])
        seen += result.records[dest]
    for key, indices in result.unmatched.items():
        assert key not in mapping and all(keys[i] == key for i in indices)
        seen += indices
    assert sorted(seen) == list(range(len(keys))) and result.total == len(keys)


def test_empty_destinations_and_unmatched_file():
    source, rows = make(["A1", "ZZ", "A1", "ZZ", "QQ"], deleted={3})
    outputs, open_dest = memory_dests()
    result = split(source, "ZQZH", {"A1": "P1", "B1": "P2"}, open_dest, empty=True, unmatched_to="_unmatched")
    assert result.counts == {"P1": 2, "P2": 0}
    assert result.unmatched == {"ZZ": [1, 3], "QQ": [4]} and result.unmatched_count == 3
    empty = DbfFile(outputs["P2"].getvalue())
    assert empty.count == 0 and empty.has_eof and empty.fields == source.fields
    leftovers = DbfFile(outputs["_unmatched"].getvalue())
    assert [bytes(r) for r in leftovers.records()] == [rows[1], rows[3], rows[4]]
    assert leftovers.is_deleted(1)
    outputs, open_dest = memory_dests()
    split(source, "ZQZH", {"A1": "P1", "B1": "P2"}, open_dest)
    assert set(outputs) == {"P1"}  # no empty file unless asked


def test_partition_then_split_each_share_reads_input_once():
    keys = ["A1", "B1", "A2", "B2", "C1", "A1"]
    source, rows = make(keys)
    jobs = partition(source, "ZQZH", {"A1": "job1", "A2": "job1", "B1": "job2", "B2": "job2"})
    assert jobs.records == {"job1": [0, 2, 5], "job2": [1, 3]} and jobs.unmatched == {"C1": [4]}
    outputs, open_dest = memory_dests()
    products = {"A1": "PA", "A2": "PA2", "B1": "PB", "B2": "PB"}
    share = split(source, "ZQZH", products, open_dest, records=jobs.records["job1"])
    assert share.counts == {"PA": 2, "PA2": 1} and share.total == 3 and set(outputs) == {"PA", "PA2"}
    assert [bytes(r) for r in DbfFile(outputs["PA"].getvalue()).records()] == [rows[0], rows[5]]


def test_missing_key_field_is_a_clear_error():
    source, _ = make(["A1"])
    with pytest.raises(DbfError, match=r"SRC\.DBF: no field 'MXZQZH'; available fields: SEQ, ZQZH, NOTE"):
        split(source, "MXZQZH", {"A1": "P1"}, lambda d: contextlib.nullcontext(io.BytesIO()))


def test_split_to_dir_and_traversal(tmp_path):
    source, rows = make(["A1", "B1", "A1"])
    result = split_to_dir(source, "ZQZH", {"A1": "P1", "B1": "P2"}, tmp_path / "out", filename="{dest}/x_{name}")
    assert result.counts == {"P1": 2, "P2": 1}
    assert DbfFile(tmp_path / "out" / "P1" / "x_SRC.DBF").count == 2
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == ["P1", "P2", "x_SRC.DBF", "x_SRC.DBF"]
    with pytest.raises(ValueError, match=r"destination '\.\./evil' gives path .* outside"):
        split_to_dir(source, "ZQZH", {"A1": "P1", "B1": "../evil"}, tmp_path / "safe")
    assert not (tmp_path / "safe").exists() and not (tmp_path / "evil").exists()


@pytest.mark.parametrize("staged", [False, True])
def test_real_files_split_by_first_field(real_file, tmp_path, staged):
    source = DbfFile(real_file)
    original = real_file.read_bytes()
    codes = sorted({k.strip() .decode() for k in source.keys(0)})
    mapping = {code: f"P{int(code) % 7}" for code in codes[: len(codes) // 2]}  # half the codes map nowhere
    result = split_to_dir(source, source.fields[0].name, mapping, tmp_path, filename="{dest}.dbf",
                          unmatched_to="unmatched", staged=staged)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{d}.dbf" for d in [*result.records, "unmatched"])
    concatenated = {}
    for dest in list(result.records) + ["unmatched"]:
        out = DbfFile(tmp_path / f"{dest}.dbf")
        indices = result.records.get(dest) or sorted(i for v in result.unmatched.values() for i in v)
        assert out.has_eof and out.language_driver == source.language_driver
        assert out.header[:4] == original[:4] and out.header[8:] == source.header[8:]
        for i, record in zip(indices, out.records()):
            concatenated[i] = bytes(record)
        assert out.count == len(indices)
    assert len(concatenated) == source.count
    assert b"".join(concatenated[i] for i in range(source.count)) == original[source.header_length:][
        : source.count * source.record_length
    ]
    assert struct.unpack_from("<I", (tmp_path / "P0.dbf").read_bytes(), 4)[0] == result.counts["P0"]
    deleted = sum(DbfFile(tmp_path / f"{d}.dbf").deleted_count() for d in list(result.records) + ["unmatched"])
    assert deleted == source.deleted_count()


def test_records_share_with_empty_and_unmatched_file():
    keys = ["A1", "ZZ", "B1", "A1", "QQ", "B1", "ZZ"]
    source, rows = make(keys)
    outputs, open_dest = memory_dests()
    result = split(source, "ZQZH", {"A1": "P1", "B1": "P2", "C1": "P3"}, open_dest, records=[1, 3, 4, 6],
                   empty=True, unmatched_to="_unmatched")
    assert result.records == {"P1": [3], "P2": [], "P3": []} and result.total == 4
    assert result.unmatched == {"ZZ": [1, 6], "QQ": [4]}
    assert [bytes(r) for r in DbfFile(outputs["_unmatched"].getvalue()).records()] == [rows[1], rows[4], rows[6]]
    assert DbfFile(outputs["P3"].getvalue()).count == 0


def test_more_destinations_than_16_bit_group_numbers():
    fields = [FieldSpec("ZQZH", "C", 6)]
    count = 40_000  # past int16: the grouping falls back to machine-word numbers
    stream = io.BytesIO()
    write_dbf(stream, fields, (b" " + f"{i % count:06d}".encode() for i in range(count + 3)))
    source = DbfFile(stream.getvalue(), name="BIG.DBF")
    mapping = {f"{i:06d}": f"P{i}" for i in range(1, count)}  # key 000000 maps nowhere
    result = partition(source, "ZQZH", mapping)
    assert len(result.records) == count - 1 and result.records["P7"] == [7]
    assert result.records["P1"] == [1, count + 1] and result.unmatched == {"000000": [0, count]}


def test_records_out_of_range_name_the_file():
    source, _ = make(["A1", "B1"])
    for bad in ([0, 2], [-1]):
        with pytest.raises(IndexError, match=rf"SRC\.DBF: record {bad[-1]} out of range 0\.\.1"):
            partition(source, "ZQZH", {"A1": "P1"}, records=bad)
        with pytest.raises(IndexError, match=rf"SRC\.DBF: record {bad[-1]} out of range 0\.\.1"):
            record_bytes(source, bad)


def test_record_bytes_and_write_records_keep_the_order_given():
    source, rows = make(["A1", "B1", "C1"], deleted={1})
    assert record_bytes(source, [2, 0, 2]) == rows[2] + rows[0] + rows[2]
    assert record_bytes(source, []) == b""
    stream = io.BytesIO()
    write_records(stream, source, [1, 0])
    out = DbfFile(stream.getvalue())
    assert [bytes(r) for r in out.records()] == [rows[1], rows[0]] and out.has_eof and out.is_deleted(0)


def test_staged_split_appears_at_once_and_needs_a_fresh_directory(tmp_path):
    source, rows = make(["A1", "B1", "A1", "ZZ"])
    mapping = {"A1": "P1", "B1": "P2"}
    target = tmp_path / "out"
    result = split_to_dir(source, "ZQZH", mapping, target, staged=True, unmatched_to="_unmatched")
    assert result.counts == {"P1": 2, "P2": 1} and result.unmatched == {"ZZ": [3]}
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == ["P1/SRC.DBF", "P2/SRC.DBF", "_unmatched/SRC.DBF"]
    assert [bytes(r) for r in DbfFile(target / "P1" / "SRC.DBF").records()] == [rows[0], rows[2]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging directory left
    with pytest.raises(FileExistsError, match=r"out: a staged split needs a new or empty directory"):
        split_to_dir(source, "ZQZH", mapping, target, staged=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    empty = tmp_path / "empty"
    empty.mkdir()
    split_to_dir(source, "ZQZH", mapping, empty, staged=True, filename="{dest}.dbf")
    assert sorted(p.name for p in empty.iterdir()) == ["P1.dbf", "P2.dbf"]


def test_staged_split_failing_midway_leaves_nothing(tmp_path):
    source, _ = make(["A1", "B1"])
    calls = []

    def failing(dest):
        if calls:
            raise OSError(28, "No space left on device", dest)
        calls.append(dest)
        return contextlib.nullcontext(io.BytesIO())

    with pytest.raises(OSError, match="No space left"):
        split(source, "ZQZH", {"A1": "P1", "B1": "P2"}, failing)
    with pytest.MonkeyPatch.context() as mp:
        real = splitter._RawFile.writelines

        def full_disk(self, buffers):
            if "P2" in self.path:
                raise OSError(28, "No space left on device", self.path)
            real(self, buffers)

        mp.setattr(splitter._RawFile, "writelines", full_disk)
        with pytest.raises(OSError, match=r"No space left on device: '.*P2"):
            split_to_dir(source, "ZQZH", {"A1": "P1", "B1": "P2"}, tmp_path / "out", staged=True)
        assert list(tmp_path.iterdir()) == []
        with pytest.raises(OSError, match=r"No space left on device: '.*P2"):
            split_to_dir(source, "ZQZH", {"A1": "P1", "B1": "P2"}, tmp_path / "out")
    # per file: the finished file stays, the failed one leaves no temporary name
    assert [str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()] == ["out/P1/SRC.DBF"]


def test_short_writes_are_completed(tmp_path, monkeypatch):
    source, rows = make(["A1", "B1", "A1", "C1"] * 50)
    real = os.writev

    def stingy(fd, buffers):  # the kernel may write less than asked: at most 7 bytes here
        return os.write(fd, bytes(memoryview(buffers[0]).cast("B"))[:7])

    monkeypatch.setattr(os, "writev", stingy)
    result = split_to_dir(source, "ZQZH", {"A1": "P1", "B1": "P2"}, tmp_path / "out", filename="{dest}.dbf",
                          staged=True)
    monkeypatch.setattr(os, "writev", real)
    outputs, open_dest = memory_dests()
    split(source, "ZQZH", {"A1": "P1", "B1": "P2"}, open_dest)
    for dest in result.records:
        assert (tmp_path / "out" / f"{dest}.dbf").read_bytes() == outputs[dest].getvalue()


def test_write_error_names_the_file():
    with pytest.raises(OSError, match=r"No space left on device: '/dev/full'"):
        with splitter._RawFile("/dev/full", 0) as raw:
            raw.write(b"x")


KILLED_SPLIT = """
import importlib, os, signal, sys
from esomp_dbf import DbfFile, split_to_dir

splitter = importlib.import_module("esomp_dbf.split")

written = []
real = splitter._RawFile.writelines

def killed_on_third_file(self, buffers):
    written.append(self.path)
    if len(written) == 3:
        real(self, buffers[:1])  # the header only: a half-written file
        os.kill(os.getpid(), signal.SIGKILL)
    real(self, buffers)

splitter._RawFile.writelines = killed_on_third_file
source = DbfFile(sys.argv[1])
mapping = {f"K{i}": f"P{i}" for i in range(6)}
split_to_dir(source, "ZQZH", mapping, sys.argv[2], filename="{dest}.dbf", staged=sys.argv[3] == "staged")
"""


@pytest.mark.parametrize("mode", ["staged", "per file"])
def test_killed_split_leaves_no_half_file_under_a_final_name(tmp_path, mode):
    keys = [f"K{i % 6}" for i in range(60)]
    _, rows = make(keys)
    path = tmp_path / "SRC.DBF"
    write_dbf(path, FIELDS, rows)
    target = tmp_path / "out"
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_SPLIT), str(path), str(target), mode])
    assert run.returncode == -9
    if mode == "staged":
        assert not target.exists()  # nothing under the final name, only the private staging directory
        (staging,) = [p for p in tmp_path.iterdir() if p.name.startswith(".out.staging-")]
        assert len(list(staging.iterdir())) == 3
    else:
        finished = sorted(p.name for p in target.iterdir() if not p.name.startswith("."))
        assert finished == ["P0.dbf", "P1.dbf"]  # complete files only; the third is under its temporary name
        assert all(DbfFile(target / name).count == 10 for name in finished)
        (hidden,) = [p.name for p in target.iterdir() if p.name.startswith(".")]
        assert re.fullmatch(r"\.P2\.dbf\.\d+\.tmp", hidden)
    if mode == "staged":
        result = split_to_dir(DbfFile(path), "ZQZH", {f"K{i}": f"P{i}" for i in range(6)}, target,
                              filename="{dest}.dbf", staged=True)
        assert result.counts == {f"P{i}": 10 for i in range(6)}
        assert sorted(p.name for p in tmp_path.iterdir()) == ["SRC.DBF", "out"]  # the dead run's staging is gone


def test_encoded_keys_partition_like_the_mapping_they_encode():
    from esomp_dbf import EncodedKeys

    source, _ = make(["A1", "证券", "B1 ", "A1", "ZZ"])
    mapping = {"A1": "PA", "证券": "PZ", " B1": "PB"}
    plain = partition(source, "ZQZH", mapping)
    encoded = EncodedKeys.of(mapping, "gbk")
    assert set(encoded) == {b"A1", "证券".encode("gbk"), b"B1"}
    assert partition(source, "ZQZH", encoded) == plain
    assert plain.records == {"PA": [0, 3], "PZ": [1], "PB": [2]} and plain.unmatched == {"ZZ": [4]}
    # Encoded for another encoding: the mapping's keys are not this file's bytes, so they are encoded again.
    utf8 = EncodedKeys.of(mapping, "utf-8")
    assert partition(source, "ZQZH", utf8).records["PZ"] == [1]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(KEYS), max_size=60), st.dictionaries(st.sampled_from(KEYS), st.integers(0, 3)))
def test_partition_codes_agrees_with_partition(keys, mapping):
    from esomp_dbf import EncodedKeys, KeyCodes, partition_codes

    source, _ = make(keys)
    codes = KeyCodes(EncodedKeys.of({f" {k} ": d for k, d in mapping.items()}, source.encoding))
    expected = partition(source, "ZQZH", {f" {k} ": d for k, d in mapping.items()})
    for _ in range(2):  # the second pass answers from the codes the first one filled
        coded = partition_codes(source, "ZQZH", codes, 4)
        got = {d: coded.order[coded.starts[d]:coded.starts[d] + coded.counts[d]].tolist() for d in range(4)}
        assert {d: v for d, v in got.items() if v} == expected.records
        assert coded.unmatched == expected.unmatched and coded.total == len(keys)


def test_partition_codes_refuses_a_code_out_of_range_and_another_encoding():
    from esomp_dbf import EncodedKeys, KeyCodes, partition_codes

    source, _ = make(["A1", "B1"])
    with pytest.raises(ValueError, match="SRC.DBF: a key maps to destination 5, beyond the 2 given"):
        partition_codes(source, "ZQZH", KeyCodes(EncodedKeys.of({"A1": 5}, "gbk")), 2)
    with pytest.raises(ValueError, match="SRC.DBF: encoded gbk, the key codes are utf-8"):
        partition_codes(source, "ZQZH", KeyCodes(EncodedKeys.of({"A1": 0}, "utf-8")), 2)


def test_record_view_holds_the_bytes_record_bytes_gives():
    from esomp_dbf import record_view

    source, _ = make(["A1", "B1", "C1", "A2"])
    for indices in ([3, 0, 2], [], [1, 1]):
        view = record_view(source, indices)
        assert view.format == "B" and view.ndim == 1 and bytes(view) == record_bytes(source, indices)
