"""The file operations a delivery needs, on a local directory (os functions) or through fsspec (remote, memory://).

fsspec's LocalFileSystem normalises every path and stats every entry it lists; for a package of a few hundred KB
that costs more than the copy itself, so local directories go straight to the os."""
from __future__ import annotations

import errno
import io
import os
import shutil
from pathlib import Path
from typing import Any, Callable

from esomp_fs import remote

# os.link refuses across devices (EXDEV), on file systems without hard links (EPERM, ENOTSUP), past the link limit
# (EMLINK), and under fs.protected_hardlinks for files we may not write (EPERM): the file is copied instead.
NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}


class LocalFiles:
    """A local directory. A missing folder is made when a file is first written into it (and again if it was
    removed since), instead of a makedirs per delivery."""

    local = True

    def names(self, folder: str) -> list[str]:
        try:
            return os.listdir(folder)
        except FileNotFoundError:
            return []

    def prepare(self, folder: str) -> None:
        pass  # folders are made on demand: see _into

    @staticmethod
    def _into(path: str, write: Callable[[], Any]) -> Any:
        try:
            return write()
        except FileNotFoundError:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            return write()

    def copy(self, local: Path, temp: str) -> None:
        self._into(temp, lambda: shutil.copyfile(local, temp))  # sendfile/copy_file_range: no bytes through Python

    def link(self, local: Path, temp: str) -> bool:
        """Hard-link ``temp`` to ``local``; False where a link is not possible (then the caller copies)."""
        try:
            self._into(temp, lambda: os.link(local, temp))
        except OSError as exc:
            if exc.errno in NO_LINK:
                return False
            raise
        return True

    def link_new(self, local: Path, path: str) -> bool:
        """Hard-link the new name ``path`` to ``local``; False when ``path`` exists or no link is possible."""
        try:
            self._into(path, lambda: os.link(local, path))
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno in NO_LINK:
                return False
            raise
        return True

    def write(self, content: bytes, temp: str) -> None:
        def create() -> None:
            with open(temp, "xb") as out:
                out.write(content)
        self._into(temp, create)

    def size(self, path: str) -> int:
        return os.stat(path).st_size

    def sha256(self, path: str) -> str:
        return remote.sha256_file(path)

    def rename(self, temp: str, path: str, *, linked: bool = False) -> None:
        os.replace(temp, path)
        # rename(2) does nothing when both names are links to one file (a package linked again): drop the temp.
        if linked and os.path.lexists(temp):
            os.unlink(temp)

    def remove(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class RemoteFiles:
    """Any fsspec filesystem: FTP, SFTP, memory://."""

    local = False

    def __init__(self, fs: Any):
        self.fs = fs

    def names(self, folder: str) -> list[str]:
        self.fs.invalidate_cache(folder)
        try:
            return [entry.rstrip("/").rsplit("/", 1)[-1] for entry in self.fs.ls(folder, detail=False)]
        except FileNotFoundError:
            return []

    def prepare(self, folder: str) -> None:
        remote.makedirs(self.fs, folder)

    def copy(self, local: Path, temp: str) -> None:
        with open(local, "rb") as stream:
            remote.put(self.fs, stream, temp)

    def link(self, local: Path, temp: str) -> bool:
        return False

    def link_new(self, local: Path, path: str) -> bool:
        return False

    def write(self, content: bytes, temp: str) -> None:
        remote.put(self.fs, io.BytesIO(content), temp)

    def size(self, path: str) -> int:
        return remote.size_of(self.fs, path)

    def sha256(self, path: str) -> str:
        return remote.remote_sha256(self.fs, path)

    def rename(self, temp: str, path: str, *, linked: bool = False) -> None:
        self.fs.mv(temp, path)

    def remove(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass
