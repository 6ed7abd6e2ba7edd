"""core/classic.py: what every classic baseline shares. A subclass reads its name from its
MODELS entry (a subclass of it inherits the name), and describes and prints itself from
its kind, seed and settings."""

from __future__ import annotations

import pytest

from fewshot_apps.core.classic import ClassicBaseline
from fewshot_apps.core.registry import MODELS


class Plain(ClassicBaseline):
    """No hyperparameters."""

    def __init__(self, seed: int = 0):
        self.seed = seed


class Tuned(ClassicBaseline):
    """Regression, with hyperparameters."""

    kind = "regression"

    def __init__(self, seed: int = 0, depth: int = 3):
        self.seed = seed
        self.depth = depth

    def settings(self) -> dict:
        return {"depth": self.depth, "criterion": "gini"}


class TunedVariant(Tuned):
    """Not registered itself: reads its base's entry."""


class Unregistered(ClassicBaseline):
    pass


@pytest.fixture(scope="module", autouse=True)
def entries():
    MODELS.add("classic-plain", f"{__name__}:Plain", family="classic",
               label_kinds=("classification",), domain=None, summary="a test baseline")
    MODELS.add("classic-tuned", f"{__name__}:Tuned", family="classic",
               label_kinds=("regression",), domain=None, summary="a test baseline")
    yield
    MODELS.remove("classic-plain")
    MODELS.remove("classic-tuned")


def test_the_name_is_read_from_the_registry_on_the_class_and_the_instance():
    assert Plain.name == "classic-plain" and Plain(seed=1).name == "classic-plain"
    assert Tuned.name == "classic-tuned"
    assert TunedVariant.name == "classic-tuned" and TunedVariant().name == "classic-tuned"


def test_an_unregistered_subclass_has_no_name():
    with pytest.raises(AttributeError, match="Unregistered is not a registered model"):
        Unregistered().name  # noqa: B018


def test_describe_gives_name_family_kind_seed_and_settings():
    assert Plain(seed=4).describe() == {"name": "classic-plain", "family": "classic",
                                        "kind": "classification", "seed": 4, "settings": {}}
    assert Tuned(seed=2, depth=5).describe() == {
        "name": "classic-tuned", "family": "classic", "kind": "regression", "seed": 2,
        "settings": {"depth": 5, "criterion": "gini"}}


def test_the_defaults_of_the_base():
    assert ClassicBaseline.family == "classic" and ClassicBaseline.kind == "classification"
    assert ClassicBaseline.seed == 0 and ClassicBaseline().settings() == {}
    assert Unregistered().seed == 0  # a subclass that sets no seed reads the base's


def test_repr_names_the_class_seed_and_settings():
    assert repr(Plain(seed=7)) == "Plain(seed=7)"
    assert repr(Tuned(seed=1, depth=2)) == "Tuned(seed=1, depth=2, criterion='gini')"
    assert repr(TunedVariant()) == "TunedVariant(seed=0, depth=3, criterion='gini')"


def test_the_packages_classic_baselines_share_the_base():
    for name in MODELS.names(family="classic"):
        if name.startswith("classic-"):
            continue
        cls = MODELS.load(name)
        assert issubclass(cls, ClassicBaseline), name
        assert cls.name == name and cls.family == "classic"
