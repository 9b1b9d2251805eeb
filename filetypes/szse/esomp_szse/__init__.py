"""E-SOMP file types of the Shenzhen Stock Exchange: the SJS* settlement files, LOFJS, SJSXX and SJSHQ."""
from esomp_szse.plugin import FILE_TYPES

__all__ = ["FILE_TYPES"]
