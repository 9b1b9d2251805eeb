"""E-SOMP file types of the Shanghai Stock Exchange: zqye, zqbd, jsmx, the gh family, WDQ, ZQY and show2003."""
from esomp_sse.plugin import FILE_TYPES

__all__ = ["FILE_TYPES"]
