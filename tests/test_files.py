"""The file-system primitives every plugin writes its outputs with (esomp_core.files)."""
import hashlib
import os

import pytest

from esomp_core import atomic_open, atomic_write, replace_directory, sha256_file, temp_name


def test_atomic_open_replaces_only_on_success_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "out.dbf"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write(b"half")
            raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.dbf"]
    with atomic_open(target) as fh:
        fh.write(b"new")
        assert target.read_bytes() == b"old"  # not visible before the block ends
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.dbf"]


def test_atomic_write_creates_the_directory_and_encodes_text(tmp_path):
    atomic_write(tmp_path / "a" / "b.json", "{\"产品\": 1}\n")
    assert (tmp_path / "a" / "b.json").read_bytes() == "{\"产品\": 1}\n".encode("utf-8")


def test_temp_name_is_hidden_beside_the_target(tmp_path):
    name = temp_name(tmp_path / "x.dbf")
    assert os.path.dirname(name) == str(tmp_path)
    assert os.path.basename(name) == f".x.dbf.{os.getpid()}.tmp"


@pytest.mark.parametrize("before", ["absent", "empty", "full"])
def test_replace_directory_swaps_the_staged_one_in(tmp_path, before):
    final, staging = tmp_path / "P001", tmp_path / ".P001.staging"
    if before != "absent":
        final.mkdir()
    if before == "full":
        (final / "old.dbf").write_bytes(b"old")
    staging.mkdir()
    (staging / "new.dbf").write_bytes(b"new")
    replace_directory(staging, final)
    assert os.listdir(final) == ["new.dbf"] and sorted(os.listdir(tmp_path)) == ["P001"]


def test_replace_directory_removes_what_a_killed_swap_left(tmp_path):
    final, staging, left = tmp_path / "P001", tmp_path / ".P001.staging", tmp_path / ".P001.old"
    for directory in (final, staging, left):
        directory.mkdir()
        (directory / "f").write_bytes(directory.name.encode())
    replace_directory(staging, final)
    assert (final / "f").read_bytes() == b".P001.staging" and sorted(os.listdir(tmp_path)) == ["P001"]


def test_sha256_file_reads_in_chunks(tmp_path):
    data = os.urandom(3 << 20) + b"tail"
    (tmp_path / "big").write_bytes(data)
    assert sha256_file(tmp_path / "big") == hashlib.sha256(data).hexdigest()
