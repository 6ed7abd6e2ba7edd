"""What every classic baseline shares, whatever its domain: its registered name, family and
label kind, its seed and settings, and how it describes itself."""

from __future__ import annotations

from typing import ClassVar

from fewshot_apps.core.registry import MODELS, registered_name


class ClassicBaseline:
    """Base of the domains' classic baselines (``rf``, ``mf`` ...): a model fitted without
    meta-learning. Subclasses set ``kind`` and ``self.seed``, and override :meth:`settings`
    when they have hyperparameters."""

    name = registered_name(MODELS)  # the subclass's MODELS entry
    family: ClassVar[str] = "classic"
    kind: ClassVar[str] = "classification"
    seed: int = 0

    def settings(self) -> dict:
        """The fixed hyperparameters (for config files and reports)."""
        return {}

    def describe(self) -> dict:
        """``{"name", "family", "kind", "seed", "settings"}``."""
        return {"name": self.name, "family": self.family, "kind": self.kind,
                "seed": self.seed, "settings": self.settings()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}(seed={self.seed}{', ' if args else ''}{args})"


__all__ = ["ClassicBaseline"]
