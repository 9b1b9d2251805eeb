"""E-SOMP file types declared as data (a site's ``[filetypes.NAME]`` tables, or a TOML file a distribution ships),
and ``esomp filetypes``."""
from esomp_sitetypes.declare import (
    Declaration, declared_types, file_type, packaged_types, parse_field, register_packaged_types,
)

__all__ = ["Declaration", "declared_types", "file_type", "packaged_types", "parse_field", "register_packaged_types"]
