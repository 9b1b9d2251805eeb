"""`esomp demo`: create a site, generate an exchange day, run it, show the table."""
from esomp_demo.plugin import create_demo_site

__all__ = ["create_demo_site"]
