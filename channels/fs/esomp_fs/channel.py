"""FsChannel: collect a business date's files from a channel, and deliver packages to it."""
from __future__ import annotations

import contextlib
import fnmatch
import os
import re
import stat
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import attrs
from sqlalchemy import select

from esomp_core import Finding, expand_date_tokens
from esomp_core.repository import models
from esomp_fs import remote, transfer
from esomp_fs.inputs import DayInput, date_of, dbf_shortfall, has_date_token, identify
from esomp_fs.options import FsOptions
from esomp_fs.unpack import UnpackError, archive_kind, unpack



class DeliveryError(RuntimeError):
    """A delivery that failed for good: names the target (password masked) and the reason."""

    def __init__(self, target: str, reason: str, attempts: int = 0):
        self.target, self.reason, self.attempts = target, reason, attempts
        tries = f" after {attempts} attempt(s)" if attempts else ""
        super().__init__(f"delivery to {target} failed{tries}: {reason}")


class CollectError(RuntimeError):
    """A collection that cannot count as done: errors, or expected files missing."""


class TransferMismatch(OSError):
    """The bytes that arrived are not the bytes sent (size or sha256): worth another attempt."""


class DigestMismatch(ValueError):
    """The digest a caller gave is not the file's: another attempt would not help."""


SHA256_HEX = frozenset("0123456789abcdef")
INPUT_ROLES = ("collected", "unpacked")
TEMP_NAME = re.compile(r"\.(.+)\.[0-9a-f]{12}\.part")  # .NAME.RANDOM.part, as _send names them


@attrs.define
class FileRecord:
    """One file collected or unpacked, as recorded in the repository's ``files`` table."""

    name: str
    path: str
    size: int
    sha256: str
    mtime: datetime | None
    source: str
    channel: str
    date: str
    role: str = "collected"
    status: str = "new"


@attrs.define
class Skip:
    name: str
    reason: str


@attrs.define
class CollectReport:
    channel: str
    date: str
    source: str
    collected: list[FileRecord] = attrs.field(factory=list)
    unpacked: list[FileRecord] = attrs.field(factory=list)
    skipped: list[Skip] = attrs.field(factory=list)
    pending: list[Skip] = attrs.field(factory=list)
    ignored: list[Skip] = attrs.field(factory=list)
    """Files of another date, or whose day nothing tells: never collected."""
    collapsed: list[Skip] = attrs.field(factory=list)
    """Identical copies of an input (same sha256) under another name or source: recorded, not used."""
    withdrawn: list[str] = attrs.field(factory=list)
    """Inputs recorded earlier whose source is gone: no longer inputs of the day."""
    inputs: list[str] = attrs.field(factory=list)
    """The channel's inputs of the day after this collection (names; an archive's members as ARCHIVE/MEMBER)."""
    missing: list[str] = attrs.field(factory=list)
    deadline: datetime | None = None
    overdue: bool = False
    errors: list[str] = attrs.field(factory=list)
    attempts: int = 1

    @property
    def bytes(self) -> int:
        return sum(f.size for f in self.collected)

    @property
    def complete(self) -> bool:
        return not (self.errors or self.missing or self.pending)

    def problem(self) -> str | None:
        """Why this collection cannot count as done, or None."""
        lines = list(self.errors)
        if self.pending:
            lines.append(f"channel {self.channel}: files not complete: "
                         + "; ".join(f"{s.name} ({s.reason})" for s in self.pending))
        if self.missing:
            when = f" (deadline {self.deadline:%Y-%m-%d %H:%M})" if self.deadline else ""
            state = "missing past the deadline" if self.overdue else "not there yet"
            lines.append(f"channel {self.channel}: expected files {state}{when}: {', '.join(self.missing)}")
        return "; ".join(lines) or None

    def findings(self) -> list[Finding]:
        """Monitor findings: expected files overdue, and refused archives."""
        found = []
        if self.overdue:
            found.append(Finding("fs.missing_files", f"{self.date}/{self.channel}", "error",
                                 f"channel {self.channel}: expected files missing past the deadline "
                                 f"{self.deadline:%H:%M}: {', '.join(self.missing)}"))
        for error in self.errors:
            found.append(Finding("fs.collect_error", f"{self.date}/{self.channel}", "error", error))
        return found

    def as_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel, "date": self.date, "source": self.source, "attempts": self.attempts,
            "collected": [{"name": f.name, "size": f.size, "sha256": f.sha256, "status": f.status}
                          for f in self.collected],
            "unpacked": [{"name": f.name, "size": f.size, "source": f.source} for f in self.unpacked],
            "skipped": [attrs.asdict(s) for s in self.skipped],
            "pending": [attrs.asdict(s) for s in self.pending],
            "ignored": [attrs.asdict(s) for s in self.ignored],
            "collapsed": [attrs.asdict(s) for s in self.collapsed], "withdrawn": self.withdrawn,
            "inputs": self.inputs,
            "missing": self.missing, "overdue": self.overdue,
            "deadline": self.deadline.isoformat(timespec="minutes") if self.deadline else None,
            "errors": self.errors, "bytes": self.bytes,
        }


@attrs.define
class Receipt:
    """Proof of one delivery; ``as_row(package_id)`` gives the columns of a receipts row (whoever records it)."""

    target: str
    remote_path: str
    size: int
    sha256: str | None
    attempts: int
    delivered_at: datetime
    manifest_path: str | None = None
    flag_path: str | None = None

    def as_row(self, package_id: int) -> dict[str, Any]:
        return {"package_id": package_id, "target": self.target, "remote_path": self.remote_path,
                "size": self.size, "sha256": self.sha256, "attempts": self.attempts,
                "delivered_at": self.delivered_at}


# --- what was collected before: the repository, or the local copies -------------------------------------------


@attrs.define
class Previous:
    path: str
    size: int
    mtime: datetime | None
    sha256: str | None

    def digest(self) -> str:
        if self.sha256 is None:
            self.sha256 = remote.sha256_file(self.path)
        return self.sha256


class RepositoryLedger:
    """Earlier collections and new records in the repository's ``files`` table."""

    def __init__(self, repository: Any, channel: str, date: str, job_id: int | None = None):
        self.repository, self.channel, self.date, self.job_id = repository, channel, date, job_id

    def _row(self, session: Any, name: str, role: str) -> models.File | None:
        return session.scalars(select(models.File).where(
            models.File.date == self.date, models.File.channel == self.channel, models.File.role == role,
            models.File.name == name).order_by(models.File.id.desc()).limit(1)).first()

    def previous(self, name: str) -> Previous | None:
        with self.repository.session() as session:
            row = self._row(session, name, "collected")
            return Previous(row.path, row.size, row.mtime, row.sha256) if row else None

    def unpacked_from(self, archive_path: str) -> bool:
        with self.repository.session() as session:
            return session.scalars(select(models.File.id).where(
                models.File.date == self.date, models.File.channel == self.channel,
                models.File.role == "unpacked", models.File.source.like(archive_path + "#%")).limit(1)).first() \
                is not None

    def day_inputs(self, report: CollectReport) -> list[DayInput]:
        """Every input of the channel's day recorded so far, collected files first, in name order."""
        with self.repository.session() as session:
            rows = session.scalars(select(models.File).where(
                models.File.date == self.date, models.File.channel == self.channel,
                models.File.role.in_(INPUT_ROLES))).all()
            found = [DayInput(r.name, r.path, r.channel, r.source or r.path, r.sha256 or "", r.role) for r in rows]
        return sorted(found, key=lambda i: (INPUT_ROLES.index(i.role), i.name))

    def set_role(self, item: DayInput, role: str) -> None:
        """Take an input out of the day (``duplicate``, ``withdrawn``), keeping its row to show what happened."""
        with self.repository.session() as session:
            row = self._row(session, item.name, item.role)
            if row is not None:
                row.role = role

    def record(self, file: FileRecord) -> None:
        with self.repository.session() as session:
            row = self._row(session, file.name, file.role) or models.File(date=self.date, channel=self.channel,
                                                                          role=file.role, name=file.name)
            row.path, row.size, row.sha256 = file.path, file.size, file.sha256
            row.mtime, row.source, row.collected_at = file.mtime, file.source, datetime.now()
            # The engine's job may not be in this repository (a CLI run): only link to a job that exists.
            if self.job_id is not None and session.get(models.Job, self.job_id) is not None:
                row.job_id = self.job_id
            session.add(row)


class LocalLedger:
    """Without a repository: the local copies (kept with the source's mtime) tell what was collected."""

    def __init__(self, callback: Callable[[FileRecord], Any] | None, dest: Path):
        self.callback, self.dest = callback, dest

    def previous(self, name: str) -> Previous | None:
        path = self.dest / name
        if not path.is_file():
            return None
        st = path.stat()
        return Previous(str(path), st.st_size, remote.mtime_of({"mtime": st.st_mtime}), None)

    def unpacked_from(self, archive_path: str) -> bool:
        return True  # nothing says otherwise; an unchanged archive is not unpacked again

    def day_inputs(self, report: CollectReport) -> list[DayInput]:
        """Without a repository the day is what this collection saw: new files, unchanged ones, unpacked ones."""
        found = [DayInput(f.name, f.path, f.channel, f.source, f.sha256, f.role) for f in report.collected]
        for skip in report.skipped:
            path = self.dest / skip.name
            found.append(DayInput(skip.name, str(path), report.channel, str(path), remote.sha256_file(path)))
        found += [DayInput(f.name, f.path, f.channel, f.source, f.sha256, f.role) for f in report.unpacked]
        return sorted(found, key=lambda i: (INPUT_ROLES.index(i.role), i.name))

    def set_role(self, item: DayInput, role: str) -> None:
        pass  # nothing is kept between collections

    def record(self, file: FileRecord) -> None:
        if self.callback is not None:
            self.callback(file)


def _same_second(a: datetime | None, b: datetime | None) -> bool:
    return a is not None and b is not None and abs((a - b).total_seconds()) < 1


def _check_segment(what: str, value: str) -> None:
    if not value or value in (".", "..") or "/" in value or "\\" in value or "\0" in value:
        raise ValueError(f"{what} {value!r} cannot be used in a remote path (no '/', '\\' or '..')")


class FsChannel:
    """A configured channel of kind "fs". ``file_types`` lets ``expected`` name registered file types."""

    def __init__(self, name: str, options: FsOptions, *, base: str | os.PathLike = ".",
                 file_types: dict[str, Any] | None = None):
        self.name, self.options = name, options
        self.endpoint = remote.Endpoint.parse(options.url, Path(base))
        self.file_types = file_types or {}
        self.key_path = f"channels.{name}"
        self._local = transfer.LocalFiles() if self.endpoint.protocol == "file" else None
        self._temp_names: dict[str, dict[str, set[str]]] = {}  # folder -> name -> its temporary names seen

    @property
    def url(self) -> str:
        """The channel's URL, safe to show."""
        return self.endpoint.shown

    def __repr__(self) -> str:
        return f"FsChannel({self.name!r}, {self.url!r})"

    def _redact(self, text: str) -> str:
        password = os.environ.get(self.options.password_env or "") if self.options.password_env else None
        return text.replace(password, "***") if password else text

    def _matches(self, pattern: str, name: str, date: str) -> bool:
        file_type = self.file_types.get(pattern)
        if file_type is not None:
            return file_type.matches(name, date)
        pattern = expand_date_tokens(pattern, date)
        if self.options.case_sensitive:
            return fnmatch.fnmatchcase(name, pattern)
        return fnmatch.fnmatchcase(name.lower(), pattern.lower())

    def _source_dir(self, date: str) -> str:
        return expand_date_tokens(self.endpoint.root, date)

    # --- check --------------------------------------------------------------------------------------------------
    def check(self, date: str | None = None) -> list[dict[str, Any]]:
        """Connect and list the source directory: [{name, size, mtime}] (the date fills {date} in the URL)."""
        def listing(fs: Any) -> list[dict[str, Any]]:
            files = remote.list_files(fs, self._source_dir(date) if date else self.endpoint.root)
            return [{"name": n, "size": int(i.get("size") or 0), "mtime": remote.mtime_of(i)}
                    for n, i in sorted(files.items())]
        try:
            return remote.retrying(listing, self.endpoint, self.options, self.key_path)[0]
        except Exception as exc:
            raise CollectError(f"channel {self.name}: listing {self.url} failed after "
                               f"{getattr(exc, 'attempts', 1)} attempt(s): "
                               f"{self._redact(f'{type(exc).__name__}: {exc}')}") from None

    # --- collect ------------------------------------------------------------------------------------------------
    def collect(self, date: str, *, dest_root: str | os.PathLike, unpack_root: str | os.PathLike,
                record: Any = None, now: datetime | None = None, job_id: int | None = None,
                sleep: Callable[[float], None] = time.sleep, wait: bool = False,
                clock: Callable[[], datetime] = datetime.now) -> CollectReport:
        """Fetch ``date``'s complete files into ``{dest_root}/{date}/{channel}/``, unpack archives into
        ``{unpack_root}/{date}/{channel}/{archive}/``, and record every file. ``record`` is the site's repository
        (or anything with ``session()``), a callable taking each FileRecord, or None. With ``wait`` (the collection
        job) it collects again every ``poll_interval`` until the day's inputs are complete or the deadline passed."""
        for label, root in (("collection root", dest_root), ("unpack temp", unpack_root)):
            if "://" in str(root):
                raise CollectError(f"channel {self.name}: the {label} must be a local directory (a RAM disk is "
                                   f"mounted as one), got {root}")
        dest = Path(dest_root) / date / self.name
        unpack_dir = Path(unpack_root) / date / self.name
        dest.mkdir(parents=True, exist_ok=True)
        ledger = RepositoryLedger(record, self.name, date, job_id) if hasattr(record, "session") \
            else LocalLedger(record, dest)
        while True:
            report = self._collect_pass(date, dest, unpack_dir, ledger, now or clock(), sleep)
            if not wait or report.complete or report.deadline is None or report.overdue:
                return report
            sleep(self.options.poll_interval)

    def _collect_pass(self, date: str, dest: Path, unpack_dir: Path, ledger: Any, now: datetime,
                      sleep: Callable[[float], None]) -> CollectReport:
        report = CollectReport(self.name, date, self.url)
        try:
            listed, report.attempts = remote.retrying(
                lambda fs: self._collect_once(fs, date, dest, ledger, report, sleep),
                self.endpoint, self.options, self.key_path, sleep=sleep)
        except Exception as exc:
            raise CollectError(f"channel {self.name}: collecting from {self.url} failed after "
                               f"{getattr(exc, 'attempts', 1)} attempt(s): "
                               f"{self._redact(f'{type(exc).__name__}: {exc}')}") from None
        self._unpack(report, dest, unpack_dir, ledger)
        self._identify(report, ledger, listed)
        self._check_expected(report, now)
        return report

    @property
    def dated_source(self) -> bool:
        """The channel's url names the day (``{date}``): files in it are of that day whatever their names."""
        return has_date_token(self.endpoint.root)

    def _dating(self, name: str, date: str, dated_source: bool) -> Any:
        return date_of(name, date, self.file_types.values(), dated_source)

    def _accepts(self, name: str, date: str, report: CollectReport, dated_source: bool,
                 shown: str | None = None) -> bool:
        """False (and the file reported as ignored) when its name says it is of another day, or nothing does."""
        dating = self._dating(name, date, dated_source)
        types = ", ".join(ft.name for ft in dating.file_types)
        if dating.kind == "other-date":
            report.ignored.append(Skip(shown or name, f"of another date than {date} (file type {types})"))
        elif dating.kind == "undated":
            report.ignored.append(Skip(shown or name, f"file type {types}: the name carries no date and neither "
                                                      f"the channel's url nor the archive names the day"))
        return dating.kind in ("dated", "unknown")

    def _collect_once(self, fs: Any, date: str, dest: Path, ledger: Any, report: CollectReport,
                      sleep: Callable[[float], None]) -> set[str] | None:
        """One look at the source: returns the names listed there (None when the directory is not there yet)."""
        # A retry starts over; files fetched by a failed attempt are already recorded and will be skipped.
        report.skipped.clear()
        report.pending.clear()
        report.ignored.clear()
        source = self._source_dir(date)
        try:
            listing = remote.list_files(fs, source)
        except FileNotFoundError:
            report.pending.append(Skip(source, "source directory does not exist (yet)"))
            return None
        opts = self.options
        flags = {n for n in listing if opts.ready and self._matches(opts.ready, n, date)}
        names = sorted(n for n in listing if n not in flags and not n.endswith(".part")
                       and any(self._matches(p, n, date) for p in opts.patterns)
                       and self._accepts(n, date, report, self.dated_source))
        candidates: list[str] = []
        fetched = {f.name for f in report.collected}  # by an attempt that failed later on
        for name in (n for n in names if n not in fetched):
            info = listing[name]
            prev = ledger.previous(name)
            if prev is not None and Path(prev.path).is_file() and prev.size == int(info["size"]) \
                    and _same_second(prev.mtime, remote.mtime_of(info)):
                report.skipped.append(Skip(name, "already collected; source unchanged (same size and mtime)"))
            elif opts.ready and not self._ready(name, flags, date):
                report.pending.append(Skip(name, f"waiting for its ready flag ({opts.ready})"))
            else:
                candidates.append(name)
        if opts.stable and candidates:
            sleep(opts.poll_interval)
            second = remote.list_files(fs, source)
            growing = [n for n in candidates if n not in second or second[n]["size"] != listing[n]["size"]
                       or remote.mtime_of(second[n]) != remote.mtime_of(listing[n])]
            for name in growing:
                after = second.get(name, {}).get("size", "gone")
                report.pending.append(Skip(name, f"not stable yet: size {listing[name]['size']} -> {after} "
                                                 f"within {opts.poll_interval:g}s"))
            candidates = [n for n in candidates if n not in growing]
        self._fetch(fs, source, candidates, listing, dest, ledger, report, date)
        return set(listing)

    def _ready(self, name: str, flags: set[str], date: str) -> bool:
        pattern = self.options.ready or ""
        if "*" not in pattern:
            return bool(flags)  # a named trigger file makes every file ready
        stem = name.rsplit(".", 1)[0]
        wanted = {pattern.replace("*", name, 1), pattern.replace("*", stem, 1)}
        return any(self._matches(w, flag, date) for w in wanted for flag in flags)

    def _shortfall(self, name: str, path: Path, date: str) -> str | None:
        """A DBF of a registered type whose header declares more records than arrived is still being written."""
        if not self.options.check_records:
            return None
        dating = self._dating(name, date, True)
        if not any(ft.format == "dbf" for ft in dating.file_types):
            return None
        return dbf_shortfall(path)

    def _fetch(self, fs: Any, source: str, names: list[str], listing: dict[str, Any], dest: Path, ledger: Any,
               report: CollectReport, date: str) -> None:
        temps: dict[str, Path] = {}
        try:
            for name in names:
                temp = dest / f".{name}.{uuid.uuid4().hex[:12]}.part"
                temps[name] = temp
                remote.fetch(fs, remote.join(source, name), str(temp))
            after = remote.list_files(fs, source) if names else {}
            for name in names:
                info, temp = listing[name], temps[name]
                size, mtime = int(info["size"]), remote.mtime_of(info)
                now_info = after.get(name)
                if now_info is None or int(now_info["size"]) != size or remote.mtime_of(now_info) != mtime:
                    report.pending.append(Skip(name, "changed while being copied; fetched again next time"))
                    continue
                got = temp.stat().st_size
                if got != size:
                    raise TransferMismatch(f"{name}: copied {got} bytes, the source has {size}")
                shortfall = self._shortfall(name, temp, date)
                if shortfall:
                    report.pending.append(Skip(name, f"not complete yet: {shortfall}"))
                    continue
                digest = remote.sha256_file(temp)
                prev = ledger.previous(name)
                if prev is not None and Path(prev.path).is_file() and prev.size == size and mtime is None \
                        and prev.digest() == digest:
                    report.skipped.append(Skip(name, "already collected; source unchanged (same sha256)"))
                    continue
                final = dest / name
                os.replace(temp, final)
                if mtime is not None:  # keep the source's mtime, so the local copy tells if the source changed
                    stamp = (mtime - datetime(1970, 1, 1)).total_seconds()
                    os.utime(final, (stamp, stamp))
                file = FileRecord(name, str(final), size, digest, mtime,
                                  self.endpoint.show(remote.join(source, name)), self.name, date,
                                  status="changed" if prev is not None else "new")
                ledger.record(file)
                report.collected.append(file)
        finally:
            for temp in temps.values():
                temp.unlink(missing_ok=True)

    def _unpack(self, report: CollectReport, dest: Path, unpack_dir: Path, ledger: Any) -> None:
        """Each archive into a directory of its own: two archives holding one member name keep both copies, and
        the identity rule decides between them."""
        if not self.options.unpack.enabled:
            return
        archives = [f.path for f in report.collected if archive_kind(f.name)]
        archives += [str(dest / s.name) for s in report.skipped
                     if archive_kind(s.name) and not ledger.unpacked_from(str(dest / s.name))]
        for archive in archives:
            target = unpack_dir / Path(archive).name
            try:
                written = unpack(archive, target, self.options.unpack)
            except (UnpackError, OSError) as exc:
                report.errors.append(f"channel {self.name}: cannot unpack {exc}" if isinstance(exc, UnpackError)
                                     else f"channel {self.name}: cannot unpack {archive}: {exc}")
                continue
            # The archive's own name may carry the day for members whose names do not.
            dated = self.dated_source or report.date in Path(archive).name
            for path in written:
                member = path.relative_to(target).as_posix()
                if not self._accepts(path.name, report.date, report, dated, f"{Path(archive).name}#{member}"):
                    path.unlink()
                    continue
                st = path.stat()
                file = FileRecord(f"{Path(archive).name}/{member}", str(path), st.st_size,
                                  remote.sha256_file(path), remote.mtime_of({"mtime": st.st_mtime}),
                                  f"{archive}#{member}", self.name, report.date, role="unpacked")
                ledger.record(file)
                report.unpacked.append(file)

    def _identify(self, report: CollectReport, ledger: Any, listed: set[str] | None) -> None:
        """The identity rule over the channel's whole day: inputs whose source is gone are withdrawn, identical
        copies collapsed, and two different inputs for one name or file type fail the collection."""
        inputs = ledger.day_inputs(report)
        if listed is not None:
            for item in inputs:
                origin = item.name if item.role == "collected" else item.name.split("/", 1)[0]
                if origin not in listed:
                    ledger.set_role(item, "withdrawn")
                    report.withdrawn.append(item.name)
        inputs = [i for i in inputs if i.name not in report.withdrawn and not archive_kind(i.name)]
        type_of = {i.name: self._dating(i.base, report.date, True).file_type for i in inputs}
        outcome = identify(inputs, type_of)
        for kept, dropped in outcome.collapsed:
            ledger.set_role(dropped, "duplicate")
            report.collapsed.append(Skip(dropped.name, f"identical to {kept.name} (sha256 {kept.sha256[:12]}): "
                                                       f"collapsed, the day uses {kept.name}"))
        report.errors += [f"channel {self.name}: {conflict}" for conflict in outcome.conflicts]
        dropped = {i.name for i in outcome.dropped}
        report.inputs = [i.name for i in inputs if i.name not in dropped]

    def expected(self) -> list[str]:
        """What a day of this channel must bring: ``expected`` if set, else every registered file type of the
        channel (``FileType.channel``) that is not ``optional``."""
        if self.options.expected is not None:
            return list(self.options.expected)
        return sorted(name for name, ft in self.file_types.items()
                      if ft.channel == self.name and name not in self.options.optional)

    def expectations(self) -> tuple[list[str], str] | None:
        """What a day must bring and by when (``HH:MM``), for monitors of missing files; None without both."""
        expected = self.expected()
        return (expected, self.options.deadline) if expected and self.options.deadline else None

    def _check_expected(self, report: CollectReport, now: datetime) -> None:
        opts = self.options
        expected = self.expected()
        if not expected:
            return
        # A file that is there but not complete is reported as pending, not also as missing.
        have = [name.rsplit("/", 1)[-1] for name in report.inputs] + [s.name for s in report.pending]
        report.missing = [p for p in expected if not any(self._matches(p, n, report.date) for n in have)]
        if opts.deadline:
            day = datetime.strptime(report.date, "%Y%m%d")
            hours, minutes = map(int, opts.deadline.split(":"))
            report.deadline = day + timedelta(hours=hours, minutes=minutes)
            report.overdue = bool(report.missing or report.pending) and now >= report.deadline

    # --- deliver ------------------------------------------------------------------------------------------------
    def target_path(self, *, institution: str, date: str, name: str) -> str:
        """The remote path a package is delivered to (``path_template`` under the channel's directory)."""
        for what, value in (("institution", institution), ("date", date), ("name", name)):
            _check_segment(what, value)
        fields = {"institution": institution, "date": date, "name": name,
                  "mmdd": date[4:], "mdd": expand_date_tokens("{mdd}", date)}
        return remote.join(self.endpoint.root, self.options.path_template.format(**fields))

    def deliver(self, package_path: str | os.PathLike, *, institution: str, date: str,
                manifest_path: str | os.PathLike | None = None, name: str | None = None,
                sha256: str | None = None, manifest_sha256: str | None = None,
                sleep: Callable[[float], None] = time.sleep) -> Receipt:
        """Upload a package (and its manifest) under temporary names, verify, rename, then write the flag file.
        ``sha256``/``manifest_sha256``: the files' digests if the caller knows them (they are then not hashed
        here; a wrong one is caught when the copy is read back). Transient failures are retried ``retries`` times
        with ``backoff``; a failure raises DeliveryError."""
        package = Path(package_path)
        name = name or package.name
        try:
            target = self.target_path(institution=institution, date=date, name=name)
        except ValueError as exc:
            raise DeliveryError(f"{self.url} (channel {self.name})", str(exc)) from None
        shown = f"{self.url} (channel {self.name}) {target}"
        folder = target.rsplit("/", 1)[0]
        opts = self.options
        flag = opts.flag.format(institution=institution, date=date, name=name, mmdd=date[4:],
                                mdd=expand_date_tokens("{mdd}", date)) if opts.flag else None
        flag_path = remote.join(folder, flag) if flag else None
        try:
            uploads = []
            if manifest_path is not None:
                manifest = Path(manifest_path)
                _check_segment("manifest name", manifest.name)
                uploads.append(_Upload.of("manifest", manifest, remote.join(folder, manifest.name),
                                          manifest_sha256, "manifest_sha256", hashed=opts.verify_sha256))
            sent = _Upload.of("package", package, target, sha256, "sha256",
                              hashed=opts.verify_sha256 or flag is not None)
        except (ValueError, OSError) as exc:
            raise DeliveryError(shown, str(exc)) from None
        uploads.append(sent)
        digest = sent.sha256
        if flag_path:
            content = f"{digest}  {name}\n".encode()
            uploads.append(_Upload(None, flag_path, len(content), None, content=content))
        stale: list[str] = []  # temporary names left by a failed attempt, removed by the next one

        def attempt(fs: Any) -> None:
            files = self._local if self._local is not None else transfer.RemoteFiles(fs)
            for leftover in list(stale):
                try:
                    files.remove(leftover)
                except Exception:
                    pass  # it may never have been created
                stale.remove(leftover)
            self._remove_orphans(files, folder, [upload.path for upload in uploads])
            files.prepare(folder)
            for upload in uploads:
                self._send(files, upload, stale)

        try:
            _, attempts = remote.retrying(attempt, self.endpoint, opts, self.key_path, sleep=sleep)
        except Exception as exc:
            if self._local is not None:  # a remote one's connection may be gone: the rerun removes them as orphans
                for leftover in stale:
                    with contextlib.suppress(OSError):  # must not hide why the delivery failed
                        self._local.remove(leftover)
            raise DeliveryError(shown, self._redact(f"{type(exc).__name__}: {exc}"),
                                getattr(exc, "attempts", 0)) from None
        return Receipt(self.url, target, sent.size, digest if opts.verify_sha256 else None, attempts,
                       datetime.now(), manifest_path=uploads[0].path if manifest_path is not None else None,
                       flag_path=flag_path)

    def _remove_orphans(self, files: Any, folder: str, paths: list[str]) -> None:
        """Remove the temporary names of these files left by a delivery whose process died (a killed worker): one
        job delivers a package at a time, so any such name is an orphan. A folder is listed once per channel
        object (a job opens its channel once; a rerun opens a new one, after the worker died), not per package."""
        if folder not in self._temp_names:
            temps: dict[str, set[str]] = {}
            for entry in files.names(folder):
                match = TEMP_NAME.fullmatch(entry)
                if match:
                    temps.setdefault(match[1], set()).add(entry)
            self._temp_names[folder] = temps
        for path in paths:
            for orphan in self._temp_names[folder].pop(path.rsplit("/", 1)[1], ()):
                files.remove(remote.join(folder, orphan))

    def _send(self, files: Any, upload: _Upload, stale: list[str]) -> None:
        """One file to its final name: hard-linked straight to it when the name is free (link(2) makes the name
        appear at once, with the whole file behind it), else through a temporary name, hard-linked or copied and
        checked, and renamed over the old one."""
        link = upload.content is None and self.options.transfer == "link"
        if link and files.link_new(upload.local, upload.path):
            return
        folder, base = upload.path.rsplit("/", 1)
        temp = remote.join(folder, f".{base}.{os.urandom(6).hex()}.part")
        stale.append(temp)
        linked = False
        if upload.content is not None:
            files.write(upload.content, temp)
        else:
            # A hard link is the very file we hold: there is nothing to read back.
            linked = link and files.link(upload.local, temp)
            if not linked:
                files.copy(upload.local, temp)
                self._check(files, upload, temp)
        files.rename(temp, upload.path, linked=linked)
        stale.remove(temp)

    def _check(self, files: Any, upload: _Upload, temp: str) -> None:
        base = upload.path.rsplit("/", 1)[1]
        got = files.size(temp)
        if got != upload.size:
            raise TransferMismatch(f"{base}: {got} bytes arrived, {upload.size} sent")
        if upload.sha256 and self.options.verify_sha256 and files.sha256(temp) != upload.sha256:
            actual = remote.sha256_file(upload.local) if upload.given else upload.sha256
            if actual != upload.sha256:
                raise DigestMismatch(f"{upload.local}: {upload.given}={upload.sha256} was given, but the file's "
                                     f"sha256 is {actual}; not delivered")
            raise TransferMismatch(f"{base}: the sha256 read back differs from the one sent")


@attrs.define
class _Upload:
    """One file of a delivery: a local file (or the flag's content), its final path, size and digest."""

    local: Path | None
    path: str
    size: int
    sha256: str | None
    given: str | None = None  # the keyword the digest came from, when the caller gave it
    content: bytes | None = None

    @classmethod
    def of(cls, what: str, local: Path, path: str, given: str | None, keyword: str, *, hashed: bool) -> "_Upload":
        try:
            st = local.stat()
        except FileNotFoundError:
            raise ValueError(f"{what} {local} does not exist") from None
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{what} {local} is not a regular file")
        if given is not None:
            digest = given.lower()
            if len(digest) != 64 or not set(digest) <= SHA256_HEX:
                raise ValueError(f"{keyword}: expected 64 hex digits, got {given!r}")
            return cls(local, path, st.st_size, digest, given=keyword)
        return cls(local, path, st.st_size, remote.sha256_file(local) if hashed else None)
