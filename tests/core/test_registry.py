"""The generic Registry: declaring entries, looking them up, filtering, and the class
attributes that read a class's name and metadata back from its entry."""

from __future__ import annotations

import pytest

from fewshot_apps.core.registry import (
    MODELS,
    Registry,
    default_model,
    meta_learners,
    models_for,
    registered_meta,
    registered_name,
)
from fewshot_apps.errors import FewshotError

WIDGETS = Registry("widget", required=("color",))


class Gadget:
    name = registered_name(WIDGETS)
    sizes = registered_meta(WIDGETS, "sizes")


class Gizmo(Gadget):
    pass


class SubGizmo(Gizmo):  # not registered: inherits Gizmo's name
    pass


class Loose:  # registered nowhere
    name = registered_name(WIDGETS)


class Outer:
    class Inner:
        pass


def helper():
    return 42


WIDGETS.add("gadget", f"{__name__}:Gadget", color="red", sizes=("s", "m"), domain=None)
WIDGETS.add("gizmo", f"{__name__}:Gizmo", color="blue", sizes=("l",), domain="kitchen")
WIDGETS.add("helper", f"{__name__}:helper", color="red", domain="kitchen")
WIDGETS.add("inner", f"{__name__}:Outer.Inner", color="green", domain=None)


def test_add_get_and_load():
    entry = WIDGETS.get("gadget")
    assert (entry.name, entry.target) == ("gadget", f"{__name__}:Gadget")
    assert entry.color == "red" and entry.meta["sizes"] == ("s", "m")  # metadata as attributes
    with pytest.raises(AttributeError, match="'gadget' has no 'weight'"):
        entry.weight  # noqa: B018
    assert WIDGETS.load("gadget") is Gadget and entry.load() is Gadget
    assert WIDGETS.load("helper")() == 42
    assert WIDGETS.load("inner") is Outer.Inner  # a dotted attribute path
    assert "gizmo" in WIDGETS and "nope" not in WIDGETS
    assert list(WIDGETS) == ["gadget", "gizmo", "helper", "inner"] and len(WIDGETS) == 4


def test_names_filter_on_metadata_in_declaration_order():
    assert WIDGETS.names() == ["gadget", "gizmo", "helper", "inner"]
    assert WIDGETS.names(color="red") == ["gadget", "helper"]
    assert WIDGETS.names(color="red", domain="kitchen") == ["helper"]
    assert WIDGETS.names(sizes="l") == ["gizmo"]  # a tuple value contains the wanted one
    assert WIDGETS.names(sizes=("l",)) == ["gizmo"]  # a tuple wanted: equality
    assert WIDGETS.names(domain=None) == ["gadget", "inner"]  # None matches None only
    assert WIDGETS.names(color="purple") == []
    assert [e.name for e in WIDGETS.entries(domain="kitchen")] == ["gizmo", "helper"]


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(FewshotError, match=r"^unknown widget 'nope'; known: gadget, gizmo, "
                       r"helper, inner$"):
        WIDGETS.get("nope")
    with pytest.raises(FewshotError, match="unknown widget 'nope'"):
        WIDGETS.load("nope")


def test_a_name_is_declared_once():
    registry = Registry("thing")
    registry.add("a", f"{__name__}:Gadget")
    registry.add("a", f"{__name__}:Gadget")  # the same declaration again (a re-import)
    with pytest.raises(ValueError, match=r"thing 'a' is declared twice \(.*:Gadget and "
                       r".*:Gizmo\)"):
        registry.add("a", f"{__name__}:Gizmo")
    assert registry.load("a") is Gadget


def test_required_metadata_and_target_form():
    with pytest.raises(ValueError, match=r"widget 'bad' lacks \['color'\]"):
        WIDGETS.add("bad", f"{__name__}:Gadget", domain=None)
    with pytest.raises(ValueError, match="not 'module:attribute'"):
        WIDGETS.add("bad", "no_colon_here", color="red")
    assert "bad" not in WIDGETS


def test_name_of_and_registered_name():
    assert WIDGETS.name_of(Gadget) == "gadget" and WIDGETS.name_of(helper) == "helper"
    with pytest.raises(LookupError, match="not a registered widget"):
        WIDGETS.name_of(SubGizmo)
    assert Gadget.name == "gadget" and Gizmo.name == "gizmo"
    assert Gizmo().name == "gizmo"  # on instances too
    assert SubGizmo.name == "gizmo"  # the nearest registered base class's name
    with pytest.raises(AttributeError, match="Loose is not a registered widget"):
        Loose.name  # noqa: B018
    assert not hasattr(Loose(), "name")

    class Named(Gadget):  # an unregistered class may set its own name
        name = "custom"

    assert Named.name == "custom"


def test_registered_meta_reads_the_entry_of_the_class_or_its_registered_base():
    assert Gadget.sizes == ("s", "m") and Gizmo().sizes == ("l",)
    assert SubGizmo.sizes == ("l",)  # Gizmo's entry

    class Named(Gizmo):  # its own name, Gizmo's metadata (as a class attribute would be)
        name = "custom"

    assert Named.sizes == ("l",)

    class Bare:  # registered nowhere
        sizes = registered_meta(WIDGETS, "sizes")
        colors = registered_meta(WIDGETS, "color", default=("any",))

    with pytest.raises(AttributeError, match="Bare is not a registered widget, so it has no "
                       "'sizes'"):
        Bare.sizes  # noqa: B018
    assert Bare.colors == ("any",)
    # a class at the target of "helper", an entry without 'sizes'
    helper_like = type("helper", (), {"sizes": registered_meta(WIDGETS, "sizes")})
    helper_like.__module__, helper_like.__qualname__ = __name__, "helper"
    with pytest.raises(AttributeError, match="widget 'helper' has no 'sizes'"):
        helper_like.sizes  # noqa: B018


def test_model_helpers_read_the_catalogue():
    assert meta_learners() == ["protonet", "attention", "dkt", "cnp", "hypernet", "maml",
                               "anil", "metasgd", "lstm"]
    assert "protonet" not in meta_learners("regression")
    assert set(meta_learners()) == set(MODELS.names(family="metric")
                                       + MODELS.names(family="generator")
                                       + MODELS.names(family="optimizer"))
    assert default_model("molecules") == "rf"
    assert default_model("recsys") == "popularity-similarity"
    with pytest.raises(FewshotError, match="declares no default model"):
        default_model("astronomy")
    molecules = models_for("molecules", "classification")
    assert {"protonet", "finetune", "rf", "knn", "logreg"} <= set(molecules)
    assert not {"mf", "popularity-similarity"} & set(molecules)
    assert "protonet" not in models_for("recsys", "regression")
    assert "mf" in models_for("recsys", "regression")
