import contextlib
import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from esomp_core.model import FieldSpec
from esomp_dbf import DbfError, DbfFile, encode_record, partition, split, split_to_dir, write_dbf

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
)
def test_split_then_concatenate_gives_every_record_once(keys, mapping, deleted, eof):
    source, rows = make(keys, deleted)
    outputs, open_dest = memory_dests()
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


def test_real_files_split_by_first_field(real_file, tmp_path):
    source = DbfFile(real_file)
    original = real_file.read_bytes()
    codes = sorted({k.strip() .decode() for k in source.keys(0)})
    mapping = {code: f"P{int(code) % 7}" for code in codes[: len(codes) // 2]}  # half the codes map nowhere
    result = split_to_dir(source, source.fields[0].name, mapping, tmp_path, filename="{dest}.dbf",
                          unmatched_to="unmatched")
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
