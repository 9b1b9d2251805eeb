"""E-SOMP integrator's kit: ``esomp new-plugin KIND NAME`` writes a new plugin distribution from templates."""
from esomp_kit.scaffold import KINDS, Names, ScaffoldError, new_plugin

__all__ = ["KINDS", "Names", "ScaffoldError", "new_plugin"]
