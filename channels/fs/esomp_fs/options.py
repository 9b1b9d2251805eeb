"""The options of a ``[channels.NAME]`` table of kind "fs", checked when the site opens the channel.

Validators raise ValueError starting with the key name; the core's ``structure`` adds the file and table path,
so an error reads ``esomp.toml: channels.szse: url: ...``.
"""
from __future__ import annotations

import re
import string
from urllib.parse import urlsplit, urlunsplit

import attrs

from esomp_core import env_name, hhmm

SCHEMES = ("", "file", "memory", "ftp", "sftp")
REMOTE_SCHEMES = ("ftp", "sftp")
TRANSFERS = ("copy", "link")
TEMPLATE_FIELDS = {"institution", "date", "name", "mdd", "mmdd"}
GiB = 1 << 30


def mask_url(url: str) -> str:
    """The URL with any password replaced by ``***``: safe for logs, reports and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _url(instance, attribute, value: str) -> None:
    if not value.strip():
        raise ValueError(f"{attribute.name}: expected a path or a URL (file://, memory://, ftp://, sftp://), got ''")
    if re.match(r"^[A-Za-z]:[\\/]", value):  # a Windows drive path, not a scheme
        return
    parts = urlsplit(value)
    shown = mask_url(value)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"{attribute.name}: unsupported scheme {parts.scheme!r} in {shown!r} "
                         f"(expected a path, file://, memory://, ftp:// or sftp://)")
    if parts.password is not None:
        raise ValueError(f"{attribute.name}: a password in the URL {shown!r} is not allowed: put it in an "
                         f"environment variable and name that variable in password_env")
    if parts.scheme in REMOTE_SCHEMES:
        if not parts.hostname:
            raise ValueError(f"{attribute.name}: no host in {shown!r} (expected {parts.scheme}://HOST[:PORT]/PATH)")
        try:
            parts.port
        except ValueError:
            raise ValueError(f"{attribute.name}: bad port in {shown!r} (expected a number 1-65535)") from None
    elif parts.scheme == "file" and parts.netloc:
        raise ValueError(f"{attribute.name}: file URLs take no host: write file:///absolute/path, got {shown!r}")


def _patterns(instance, attribute, value: list[str]) -> None:
    for pattern in value:
        if not pattern or "/" in pattern or "\\" in pattern:
            raise ValueError(f"{attribute.name}: expected file-name wildcards without directories, got {pattern!r}")


def _optional_patterns(instance, attribute, value: list[str] | None) -> None:
    if value is not None:
        _patterns(instance, attribute, value)


def _pattern(instance, attribute, value: str | None) -> None:
    if value is not None:
        _patterns(instance, attribute, [value])


def _positive(instance, attribute, value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name}: expected a number above 0, got {value!r}")


def _not_negative(instance, attribute, value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name}: expected a number of 0 or more, got {value!r}")


def template_fields(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}


def _template(instance, attribute, value: str | None) -> None:
    if value is None:
        return
    try:
        fields = template_fields(value)
    except ValueError as exc:
        raise ValueError(f"{attribute.name}: not a valid template {value!r}: {exc}") from None
    unknown = sorted(fields - TEMPLATE_FIELDS)
    if unknown:
        raise ValueError(f"{attribute.name}: unknown placeholder {{{unknown[0]}}} in {value!r} "
                         f"(expected: {', '.join('{%s}' % f for f in sorted(TEMPLATE_FIELDS))})")
    if value.startswith("/") or ".." in value.split("/") or "\\" in value:
        raise ValueError(f"{attribute.name}: expected a relative path without '..', got {value!r}")
    if attribute.name == "path_template" and "name" not in fields:
        raise ValueError(f"{attribute.name}: must contain {{name}} (the delivered file's name), got {value!r}")


def _transfer(instance, attribute, value: str) -> None:
    if value not in TRANSFERS:
        raise ValueError(f"{attribute.name}: expected one of {', '.join(map(repr, TRANSFERS))}, got {value!r}")


@attrs.frozen
class UnpackOptions:
    """``[channels.NAME.unpack]``: limits that refuse decompression bombs."""

    enabled: bool = True
    max_bytes: int = attrs.field(default=8 * GiB, validator=_positive)
    max_files: int = attrs.field(default=100_000, validator=_positive)
    max_ratio: float = attrs.field(default=200.0, validator=_positive)


@attrs.frozen
class FsOptions:
    """``[channels.NAME]`` with ``kind = "fs"``; docs.md describes every option with an example."""

    url: str = attrs.field(validator=_url)
    patterns: list[str] = attrs.field(factory=lambda: ["*"], validator=_patterns)
    case_sensitive: bool = False
    # Completeness: any combination of a flag file, a stable size and a DBF's declared record count, and the
    # day's expected files (by default every file type registered for this channel) with a deadline.
    ready: str | None = attrs.field(default=None, validator=_pattern)
    stable: bool = False
    check_records: bool = True
    poll_interval: float = attrs.field(default=5.0, validator=_not_negative)
    expected: list[str] | None = attrs.field(default=None, validator=_optional_patterns)
    optional: list[str] = attrs.field(factory=list, validator=_patterns)
    deadline: str | None = attrs.field(default=None, validator=hhmm)
    # Connection.
    retries: int = attrs.field(default=3, validator=_not_negative)
    backoff: float = attrs.field(default=2.0, validator=_not_negative)
    timeout: float = attrs.field(default=30.0, validator=_positive)
    username: str | None = None
    password_env: str | None = attrs.field(default=None, validator=env_name)
    key_file_env: str | None = attrs.field(default=None, validator=env_name)
    known_hosts: str | None = None
    # Sending.
    path_template: str = attrs.field(default="{institution}/{date}/{name}", validator=_template)
    flag: str | None = attrs.field(default=None, validator=_template)
    verify_sha256: bool = True
    transfer: str = attrs.field(default="copy", validator=_transfer)
    # Unpacking of collected archives.
    unpack: UnpackOptions = UnpackOptions()

    def __attrs_post_init__(self) -> None:
        if self.expected is not None and self.optional:
            raise ValueError("optional: give either `expected` (the whole list) or `optional` (file types the "
                             "default list leaves out), not both")
        scheme = urlsplit(self.url).scheme
        if scheme not in REMOTE_SCHEMES:
            for key in ("username", "password_env", "key_file_env", "known_hosts"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key}: only ftp:// and sftp:// channels take credentials")
        if self.transfer == "link" and scheme not in ("", "file") and not re.match(r"^[A-Za-z]:[\\/]", self.url):
            raise ValueError(f"transfer: 'link' needs a local directory as the url, not {scheme}://; "
                             f"use transfer = \"copy\"")
        if scheme == "ftp" and (self.key_file_env or self.known_hosts):
            raise ValueError("key_file_env: FTP has no keys; key_file_env and known_hosts are for sftp://")
