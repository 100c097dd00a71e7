"""The library version, in one place (the package, run records and saved models read it)."""

__version__ = "0.1.0"
