"""Unpacking deliveries: every format round-trips; escapes, links and bombs are refused and write nothing."""
from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
import zstandard

from esomp_fs import UnpackError, UnpackOptions, unpack

FILES = {"SJSMX1.DBF": b"\x03" + bytes(range(256)) * 40, "sub/zqye.dbf": b"zqye" * 1000, "empty.txt": b""}


def _tar_bytes(members: dict[str, bytes], extra: list[tarfile.TarInfo] = ()) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for info in extra:
            tf.addfile(info)
    return buffer.getvalue()


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _all_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("suffix", [".zip", ".tar", ".tar.zst", ".tzst"])
def test_archives_round_trip(tmp_path, suffix):
    archive = tmp_path / f"delivery{suffix}"
    if suffix == ".zip":
        _zip(archive, FILES)
    else:
        data = _tar_bytes(FILES)
        archive.write_bytes(data if suffix == ".tar" else zstandard.ZstdCompressor().compress(data))
    target = tmp_path / "out"
    written = unpack(archive, target, UnpackOptions())
    assert sorted(p.relative_to(target).as_posix() for p in written) == sorted(FILES)
    for name, data in FILES.items():
        assert (target / name).read_bytes() == data
    assert _all_files(target) == set(FILES)  # no staging left behind


def test_single_zst_file(tmp_path):
    archive = tmp_path / "SJSMX1.DBF.zst"
    archive.write_bytes(zstandard.ZstdCompressor().compress(FILES["SJSMX1.DBF"]))
    [path] = unpack(archive, tmp_path / "out", UnpackOptions())
    assert path.name == "SJSMX1.DBF" and path.read_bytes() == FILES["SJSMX1.DBF"]


@pytest.mark.parametrize("member, words", [
    ("../escaped.txt", "escapes the target"),
    ("ok/../../escaped.txt", "escapes the target"),
    ("/tmp/escaped-absolute.txt", "absolute path"),
    ("..\\escaped.txt", "escapes the target"),
])
@pytest.mark.parametrize("fmt", ["zip", "tar", "tar.zst"])
def test_member_escaping_target_refused_and_nothing_written(tmp_path, member, words, fmt):
    sandbox = tmp_path / "sandbox"
    target = sandbox / "unpack" / "20261120" / "in"
    target.mkdir(parents=True)
    members = {"good.txt": b"fine", member: b"evil"}
    archive = sandbox / f"bad.{fmt}"
    if fmt == "zip":
        _zip(archive, members)
    else:
        data = _tar_bytes(members)
        archive.write_bytes(data if fmt == "tar" else zstandard.ZstdCompressor().compress(data))
    before = _all_files(sandbox)
    with pytest.raises(UnpackError) as info:
        unpack(archive, target, UnpackOptions())
    assert str(archive) in str(info.value) and repr(member) in str(info.value) and words in str(info.value)
    assert _all_files(sandbox) == before  # not even the good member
    assert not Path("/tmp/escaped-absolute.txt").exists()
    assert list(target.iterdir()) == []


def test_links_in_archives_refused(tmp_path):
    link = tarfile.TarInfo("passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    hard = tarfile.TarInfo("hard")
    hard.type, hard.linkname = tarfile.LNKTYPE, "good.txt"
    for info, words in ((link, "symbolic link refused"), (hard, "hard link refused")):
        archive = tmp_path / f"{info.name}.tar"
        archive.write_bytes(_tar_bytes({"good.txt": b"x"}, [info]))
        with pytest.raises(UnpackError, match=words):
            unpack(archive, tmp_path / "out", UnpackOptions())
        assert _all_files(tmp_path / "out") == set()

    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        entry = zipfile.ZipInfo("passwd")
        entry.external_attr = (0o120777 << 16)
        zf.writestr(entry, "/etc/passwd")
    with pytest.raises(UnpackError, match="symbolic link refused"):
        unpack(archive, tmp_path / "out", UnpackOptions())


BOMB = b"\0" * (8 << 20)  # 8 MiB of zeros compresses about a thousandfold


@pytest.mark.parametrize("fmt", ["zip", "tar.zst", "zst"])
def test_decompression_bomb_refused_by_ratio(tmp_path, fmt):
    sandbox = tmp_path / "sandbox"
    target = sandbox / "out"
    sandbox.mkdir()
    archive = sandbox / f"bomb.{fmt}"
    if fmt == "zip":
        _zip(archive, {"zeros.bin": BOMB})
    elif fmt == "tar.zst":
        archive.write_bytes(zstandard.ZstdCompressor().compress(_tar_bytes({"zeros.bin": BOMB})))
    else:
        archive.write_bytes(zstandard.ZstdCompressor().compress(BOMB))
    assert archive.stat().st_size * 100 < len(BOMB)
    before = _all_files(sandbox)
    with pytest.raises(UnpackError) as info:
        unpack(archive, target, UnpackOptions(max_ratio=100))
    assert "decompression bomb" in str(info.value) and str(archive) in str(info.value)
    assert _all_files(sandbox) == before
    # The same archive passes with limits that allow it: the limit, not the format, refused it.
    assert unpack(archive, target, UnpackOptions(max_ratio=1e6))


def test_size_and_count_limits(tmp_path):
    archive = _zip(tmp_path / "many.zip", {f"f{i}.txt": b"abc" for i in range(5)})
    with pytest.raises(UnpackError, match="max_files=4"):
        unpack(archive, tmp_path / "a", UnpackOptions(max_files=4))
    with pytest.raises(UnpackError, match="max_bytes=14"):
        unpack(archive, tmp_path / "b", UnpackOptions(max_bytes=14))
    assert len(unpack(archive, tmp_path / "c", UnpackOptions(max_files=5, max_bytes=15))) == 5
    assert not (tmp_path / "a").exists() or _all_files(tmp_path / "a") == set()


def test_corrupt_archive_names_the_archive(tmp_path):
    for name in ("broken.zip", "broken.tar.zst", "broken.zst"):
        archive = tmp_path / name
        archive.write_bytes(b"this is not an archive" * 10)
        with pytest.raises(UnpackError) as info:
            unpack(archive, tmp_path / "out", UnpackOptions())
        assert str(archive) in str(info.value)
    assert os.listdir(tmp_path / "out") == []
