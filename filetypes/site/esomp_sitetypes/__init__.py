"""E-SOMP file types declared as data (a site's ``[filetypes.NAME]`` tables), and ``esomp filetypes``."""
from esomp_sitetypes.declare import Declaration, declared_types, file_type, parse_field

__all__ = ["Declaration", "declared_types", "file_type", "parse_field"]
