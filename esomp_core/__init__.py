"""E-SOMP core: hookspecs, plugin manager, config, repository and CLI."""
import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("esomp")
"""Decorator for plugin hook implementations: ``@hookimpl def register_file_types(register): ...``"""
