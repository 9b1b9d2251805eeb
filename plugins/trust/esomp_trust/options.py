"""``[business.trust]`` options, and the safe formatting of output paths from them."""
from __future__ import annotations

import os
import string
from typing import Literal

import attrs

from esomp_core import ConfigError, check_name, structure

SPLIT_PATH_FIELDS = {"clearing_root", "date", "institution", "product", "name", "mmdd"}


def _positive(instance, attribute, value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name}: expected a whole number of 1 or more, got {value!r}")


def _split_path(instance, attribute, value: str) -> None:
    try:
        parsed = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise ValueError(f"{attribute.name}: not a valid template {value!r}: {exc}") from None
    fields = {f for _, f, _, _ in parsed if f is not None}
    unknown = sorted(fields - SPLIT_PATH_FIELDS)
    if unknown:
        raise ValueError(f"{attribute.name}: unknown placeholder {{{unknown[0]}}} in {value!r} (expected: "
                         + ", ".join("{%s}" % f for f in sorted(SPLIT_PATH_FIELDS)) + ")")
    if any(spec or conversion for _, f, spec, conversion in parsed if f is not None):
        # a fill or a conversion could add separators or quotes to a code: placeholders are written bare
        raise ValueError(f"{attribute.name}: placeholders take no format spec or conversion, got {value!r}")
    for needed in ("product", "name"):
        if needed not in fields:
            raise ValueError(f"{attribute.name}: must contain {{{needed}}} so products and files get their own "
                             f"paths, got {value!r}")
    if not value.startswith("{clearing_root}/") or value.count("{clearing_root}") != 1:
        raise ValueError(f"{attribute.name}: must start with {{clearing_root}}/ and name it once (outputs stay "
                         f"under the clearing-file root), got {value!r}")
    for segment in value[len("{clearing_root}/"):].split("/"):
        if segment in ("", ".", "..") or "\\" in segment or "\0" in segment:
            raise ValueError(f"{attribute.name}: segment {segment!r} could leave the clearing-file root or its "
                             f"product's directory (no empty, '.', '..', '\\' or NUL segments), got {value!r}")


def _compression_level(instance, attribute, value: int) -> None:
    if not 1 <= value <= 22:  # zstd's levels; zip's deflate is narrower, checked with the format
        raise ValueError(f"{attribute.name}: expected a level from 1 to 22, got {value!r}")


def _names(instance, attribute, value: list[str]) -> None:
    for name in value:
        check_name(name, f"{attribute.name}: channel name")


@attrs.frozen
class TrustOptions:
    """``[business.trust]`` in esomp.toml; docs.md describes each option."""

    collect_channels: list[str] = attrs.field(factory=lambda: ["szse", "sse", "site"], validator=_names)
    products_per_job: int = attrs.field(default=200, validator=_positive)
    jobs_per_batch: int = attrs.field(default=5, validator=_positive)
    package_by: Literal["product", "institution"] = "product"
    package_format: Literal["tar.zst", "zip"] = "tar.zst"
    delivery_channel: str | None = None
    split_path: str = attrs.field(default="{clearing_root}/{date}/{institution}/{product}/{name}",
                                  validator=_split_path)
    bcp_types: list[str] = attrs.field(factory=list)
    stagger: Literal["previous", "none"] = "previous"
    compression_level: int = attrs.field(default=3, validator=_compression_level)

    def __attrs_post_init__(self):
        if self.package_format == "zip" and self.compression_level > 9:
            raise ValueError(f"compression_level: zip packages take a level from 1 to 9, "
                             f"got {self.compression_level!r}")


def load_options(site) -> TrustOptions:
    """``[business.trust]``, with the channels and file types it names checked against the site."""
    source = site.config.source
    options = structure(TrustOptions, site.section("business").get("trust", {}), path="business.trust",
                        source=source)
    check_references(site, options)
    return options


def check_references(site, options: TrustOptions) -> None:
    """The names the options refer to exist: the delivery channel in [channels], BCP types as file types."""
    source, channels = site.config.source, site.config.channels
    if options.delivery_channel is not None and options.delivery_channel not in channels:
        raise ConfigError(source, "business.trust.delivery_channel",
                          f"no such channel {options.delivery_channel!r} (configured: {', '.join(channels) or 'none'})")
    registered = site.registry.file_types
    unknown = [t for t in options.bcp_types if t not in registered]
    if unknown:
        raise ConfigError(source, "business.trust.bcp_types", f"unknown file type {unknown[0]!r} "
                          f"(registered: {', '.join(sorted(registered))})")


class PathTraversal(ValueError):
    """A product or institution code, or a template, that would put output outside its root."""


def _check_code(what: str, value: str, product: str) -> None:
    if not value or value in (".", "..") or "/" in value or "\\" in value or "\0" in value:
        raise PathTraversal(f"product {product}: {what} {value!r} cannot be used in an output path "
                            "(no '/', '\\', NUL or '..')")


def inside(root: str, path: str, what: str) -> str:
    """``path`` normalised, refused when it leaves ``root``."""
    root = os.path.normpath(root)
    path = os.path.normpath(path)
    if not path.startswith(root.rstrip(os.sep) + os.sep):
        raise PathTraversal(f"{what}: path {path} is outside {root}")
    return path


def split_path(template: str, *, clearing_root: str, date: str, institution: str, product: str,
               name: str) -> str:
    """Where a product's file goes: the ``split_path`` template, kept inside the clearing root."""
    _check_code("product code", product, product)
    _check_code("institution code", institution, product)
    _check_code("file name", name, product)
    path = template.format(clearing_root=clearing_root, date=date, institution=institution, product=product,
                           name=name, mmdd=date[4:])
    return inside(clearing_root, path, f"product {product}, file {name}")


class OutputPaths:
    """``split_path`` for every file of every product of a job. When ``{name}`` is the template's last segment
    (the default), the template is formatted and checked once per product and each file name only once."""

    def __init__(self, template: str, *, clearing_root: str, date: str, institution: dict[str, str]):
        self.template, self.clearing_root, self.date, self.institution = template, clearing_root, date, institution
        self.name_last = template.endswith("/{name}") and template.count("{name}") == 1
        self.directories: dict[str, str] = {}
        self.names: set[str] = set()

    def __call__(self, product: str, name: str) -> str:
        if not self.name_last:
            return split_path(self.template, clearing_root=self.clearing_root, date=self.date,
                              institution=self.institution[product], product=product, name=name)
        directory = self.directories.get(product)
        if directory is None:
            probe = split_path(self.template, clearing_root=self.clearing_root, date=self.date,
                               institution=self.institution[product], product=product, name="_")
            directory = self.directories[product] = probe[:-2]
        if name not in self.names:
            _check_code("file name", name, product)  # no separator, no '..': it stays in the product's directory
            self.names.add(name)
        return f"{directory}/{name}"
