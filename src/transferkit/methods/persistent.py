"""What every method class shares for saving: registration by name, ``save``, and the network rebuild hook."""

from __future__ import annotations

from transferkit.methods.registry import register


class Persistent:
    """Registers each library method class by its ``name``; ``save(path)`` writes it without pickle."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name") and cls.__module__.startswith("transferkit.methods."):
            register(cls)

    def save(self, path):
        """Save the fitted model to the folder ``path``, without pickle; :func:`transferkit.load` reads it back."""
        from transferkit.persist import save

        return save(self, path)

    def _rebuild_module(self, name: str):
        """The architecture of the fitted network ``name``, from the settings and the other fitted attributes,
        to load saved weights into; None when it cannot be rebuilt (the network is then not saved)."""
        return None
