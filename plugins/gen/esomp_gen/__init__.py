"""E-SOMP exchange-day generator: ``generate_day(site, date, products)`` and ``esomp gen``."""
from esomp_gen.generator import PROFILES, GenError, GenReport, channel_directory, generate_day

__all__ = ["PROFILES", "GenError", "GenReport", "channel_directory", "generate_day"]
