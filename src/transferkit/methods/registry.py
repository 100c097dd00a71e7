"""Every method class of the library by its name, filled as each method's module is imported.

Apart from :mod:`~transferkit.methods.base` so that what looks methods up by name (saved models,
transitive transfer's ``base="dann"``, Auto's candidates) needs no import back into it.
"""

from __future__ import annotations

_BY_NAME: dict[str, type] = {}


def register(cls: type) -> None:
    """Record ``cls`` under its ``name``."""
    _BY_NAME[cls.name] = cls


def method_named(name: str) -> type:
    """The library's method class registered as ``name``; a clear error listing the names otherwise.

    Every method module is imported with the package, so the table is complete once
    ``transferkit.methods`` is.
    """
    if name not in _BY_NAME:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(sorted(_BY_NAME))}.")
    return _BY_NAME[name]


def registered(cls: type) -> bool:
    """Whether ``cls`` is one of the library's method classes."""
    return _BY_NAME.get(getattr(cls, "name", None)) is cls
