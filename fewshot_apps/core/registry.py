"""Registries: one place that knows every model, encoder, metric, protocol and domain.

A :class:`Registry` maps a name to an :class:`Entry`: the object's import path (``target``,
``"package.module:Attribute"``, imported on first use) and its metadata. Entries are
declared in light *catalogue* modules that import no torch, so the command line can list
choices and answer ``--help`` in milliseconds, while the code behind an entry loads only
when it runs.

::

    MODELS.add("protonet", "fewshot_apps.core.learners.metric:ProtoNet",
               family="metric", label_kinds=("classification",), domain=None)
    MODELS.names(family="metric")          # ['attention', 'protonet']
    MODELS.load("protonet")                # the class (imports its module)
    ProtoNet.name                          # 'protonet': classes read their name back

Who declares what:

* :mod:`fewshot_apps.core.catalog`: the domain-agnostic models (meta-learners, transfer
  baselines), encoders, metrics and protocols;
* each domain package's ``__init__`` (a light module): the domain itself, its classic
  baselines, encoders and protocols.

The built-in domain packages are found through :data:`PLUGINS` (and the
``fewshot_apps.plugins`` entry-point group, for a domain in another package), imported by
name on the first look-up, so ``core`` never imports a domain module.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fewshot_apps.errors import FewshotError

#: Packages that declare registry entries, imported (by name) on the first look-up.
PLUGINS = ("fewshot_apps.core.catalog", "fewshot_apps.domains.molecules",
           "fewshot_apps.domains.recsys")
#: The entry-point group through which another package adds its own.
ENTRY_POINT_GROUP = "fewshot_apps.plugins"

_plugins_loaded = False


def load_plugins() -> None:
    """Import the modules that declare entries (once): :data:`PLUGINS` and the entry-point
    group ``fewshot_apps.plugins``."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True  # first: a plugin's own look-ups must not recurse
    for module in PLUGINS:
        importlib.import_module(module)
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINT_GROUP):
        point.load()


@dataclass(frozen=True)
class Entry:
    """One registered thing: ``name``, where its code is (``target``) and its metadata."""

    name: str
    target: str
    meta: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:
        # entry.family, entry.direction ...: metadata read as attributes
        meta = self.__dict__.get("meta", {})
        if key in meta:
            return meta[key]
        raise AttributeError(f"{self.name!r} has no {key!r}")

    def load(self) -> Any:
        """The registered object (its module is imported the first time)."""
        module, _, attribute = self.target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attribute.split("."):
            obj = getattr(obj, part)
        return obj


class Registry:
    """Names -> entries of one kind (``"model"``, ``"metric"`` ...).

    Args:
        kind: what an entry is, for messages ("unknown model 'x'; known: ...").
        required: metadata keys every entry must give.
    """

    def __init__(self, kind: str, required: tuple[str, ...] = ()):
        self.kind = kind
        self.required = required
        self._entries: dict[str, Entry] = {}
        self._origin: dict[str, str] = {}  # name -> the module that declared it
        self._ordered: dict[str, Entry] | None = None  # _all()'s answer, until a change
        self._by_target: dict[str, str] | None = None  # target -> name, until a change

    def add(self, name: str, target: str, **meta: Any) -> Entry:
        """Declare ``name``; ``target`` is ``"module:attribute"``. A name is declared once."""
        if name in self._entries and self._entries[name].target != target:
            raise ValueError(f"{self.kind} {name!r} is declared twice "
                             f"({self._entries[name].target} and {target})")
        missing = [key for key in self.required if key not in meta]
        if missing:
            raise ValueError(f"{self.kind} {name!r} lacks {missing}")
        if ":" not in target:
            raise ValueError(f"{self.kind} {name!r}: target {target!r} is not 'module:attribute'")
        entry = Entry(name, target, dict(meta))
        self._entries[name] = entry
        self._origin[name] = _declaring_module()
        self._ordered = self._by_target = None
        return entry

    def remove(self, name: str) -> None:
        """Forget ``name`` (a plugin unloaded; a test's temporary entry)."""
        self._entries.pop(name, None)
        self._origin.pop(name, None)
        self._ordered = self._by_target = None

    def _all(self) -> dict[str, Entry]:
        """Every entry, in a fixed order whatever order the plugins were imported in: the
        plugins of :data:`PLUGINS` in their order (then any other), each in declaration
        order."""
        load_plugins()
        if self._ordered is None:
            rank = {name: (_plugin_rank(self._origin.get(name, "")), i)
                    for i, name in enumerate(self._entries)}
            self._ordered = {name: self._entries[name]
                             for name in sorted(self._entries, key=rank.get)}
        return self._ordered

    def get(self, name: str) -> Entry:
        """The entry ``name``; FewshotError naming the known ones otherwise."""
        entries = self._all()
        if name not in entries:
            raise FewshotError(f"unknown {self.kind} {name!r}; known: {', '.join(sorted(entries))}")
        return entries[name]

    def load(self, name: str) -> Any:
        """The object registered as ``name``."""
        return self.get(name).load()

    def names(self, **where: Any) -> list[str]:
        """Names in declaration order whose metadata match ``where``. A value that is a
        tuple or list in the metadata matches when it contains the wanted value; ``None``
        wanted matches ``None`` only."""
        return [e.name for e in self._all().values()
                if all(_matches(e.meta.get(key), value) for key, value in where.items())]

    def entries(self, **where: Any) -> list[Entry]:
        return [self._all()[name] for name in self.names(**where)]

    def name_of(self, obj: Any) -> str:
        """The name an object (a class or function) is registered under."""
        target = f"{obj.__module__}:{obj.__qualname__}"
        if self._by_target is None:  # rebuilt after a change: `.name` is read often
            self._by_target = {e.target: e.name for e in reversed(self._all().values())}
        if target not in self._by_target:
            raise LookupError(f"{target} is not a registered {self.kind}")
        return self._by_target[target]

    def __contains__(self, name: object) -> bool:
        return name in self._all()

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._all()))

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._entries)})"


def _declaring_module() -> str:
    """The module that called :meth:`Registry.add` (for the registry's fixed order)."""
    frame = sys._getframe(2)
    return frame.f_globals.get("__name__", "")


def _plugin_rank(module: str) -> int:
    for i, plugin in enumerate(PLUGINS):
        if module == plugin or module.startswith(plugin + "."):
            return i
    return len(PLUGINS)


def _matches(have: Any, want: Any) -> bool:
    if isinstance(have, (tuple, list, frozenset, set)) and not isinstance(want, (tuple, list)):
        return want in have
    return have == want


class registered_name:  # noqa: N801 (used like a class attribute)
    """A class attribute that reads the class's name from a registry, so the name is written
    once, in the catalogue: ``name = registered_name(MODELS)``.

    A subclass that is not registered itself inherits the name of its nearest registered
    base class (as it would inherit a plain ``name = "..."``); a class that may be used
    unregistered (a learner in a test, say) sets ``name`` itself. Neither registered nor
    below a registered class: ``AttributeError``."""

    def __init__(self, registry: Registry):
        self.registry = registry

    def __get__(self, obj: Any, cls: type) -> str:
        name = _nearest_registered(self.registry, cls)
        if name is None:
            raise AttributeError(f"{cls.__qualname__} is not a registered {self.registry.kind} "
                                 "(and sets no name of its own)")
        return name


_NO_DEFAULT = object()


class registered_meta:  # noqa: N801 (used like a class attribute)
    """A class attribute that reads one metadata value of the class's entry:
    ``SUPPORTED_KINDS = registered_meta(MODELS, "label_kinds", default=KINDS)``.

    As :class:`registered_name`, a subclass that is not registered reads the entry of its
    nearest registered base class; a class below none (a learner used without an entry)
    gets ``default``, or ``AttributeError`` without one (it may set the attribute
    itself)."""

    def __init__(self, registry: Registry, key: str, default: Any = _NO_DEFAULT):
        self.registry = registry
        self.key = key
        self.default = default

    def __get__(self, obj: Any, cls: type) -> Any:
        name = _nearest_registered(self.registry, cls)
        if name is None:
            if self.default is not _NO_DEFAULT:
                return self.default
            raise AttributeError(f"{cls.__qualname__} is not a registered {self.registry.kind}, "
                                 f"so it has no {self.key!r}")
        meta = self.registry.get(name).meta
        if self.key not in meta:
            raise AttributeError(f"{self.registry.kind} {name!r} has no {self.key!r}")
        return meta[self.key]


def _nearest_registered(registry: Registry, cls: type) -> str | None:
    """The name of ``cls`` or of its nearest base class in ``registry`` (None: neither)."""
    for klass in cls.__mro__:
        try:
            return registry.name_of(klass)
        except LookupError:
            continue
    return None


#: Meta-learners, transfer and classic baselines. Metadata: ``family`` (one of
#: :data:`FAMILIES`), ``label_kinds`` (classification, regression), ``domain`` (None: any
#: domain), ``summary`` (one line for help texts); optional: ``default=True`` (the model a
#: command uses when none is named).
MODELS = Registry("model", required=("family", "label_kinds", "domain", "summary"))
#: Encoders (``name`` in a saved model's config). Metadata: ``domain``.
ENCODERS = Registry("encoder", required=("domain",))
#: Metrics. Metadata: ``direction`` ("higher" or "lower" is better), ``bounds`` (low, high),
#: ``label_kind``. The target is the function ``f(labels, scores) -> float``.
METRICS = Registry("metric", required=("direction", "bounds"))
#: Evaluation protocols. Metadata: ``domain`` (None: any), ``main_metrics`` (the headline).
PROTOCOLS = Registry("protocol", required=("domain", "main_metrics"))
#: Domains. Metadata: ``summary``. The target implements :class:`~fewshot_apps.core.domain.Domain`.
DOMAINS = Registry("domain", required=("summary",))

#: Model families: meta-learners (metric, generator, optimizer), baselines pre-trained on
#: the training tasks (transfer) or fitted on the support / training ratings (classic),
#: ``ensemble``: the mean of saved models' predictions (:mod:`fewshot_apps.core.ensemble`),
#: and ``training-free``: ``recommend``'s default scorer, which no benchmark runs.
ENSEMBLE_FAMILY = "ensemble"
FAMILIES = ("metric", "generator", "optimizer", "transfer", "classic", ENSEMBLE_FAMILY,
            "training-free")
META_LEARNING_FAMILIES = ("metric", "generator", "optimizer")
#: The families a benchmark suite can run.
BENCHMARK_FAMILIES = (*META_LEARNING_FAMILIES, "transfer", "classic", ENSEMBLE_FAMILY)


def model_family(name: str) -> str:
    return MODELS.get(name).family


def meta_learners(label_kind: str | None = None) -> list[str]:
    """The meta-learners (the :data:`META_LEARNING_FAMILIES`' models) in declaration order;
    only those supporting ``label_kind`` if given."""
    return [e.name for e in MODELS.entries() if e.family in META_LEARNING_FAMILIES
            and (label_kind is None or label_kind in e.label_kinds)]


def default_model(domain: str) -> str:
    """The model a command of ``domain`` uses when none is named (its ``default=True``
    entry)."""
    names = MODELS.names(domain=domain, default=True)
    if not names:
        raise FewshotError(f"domain {domain!r} declares no default model")
    return names[0]


def models_for(domain: str, label_kind: str | None = None) -> list[str]:
    """The models a benchmark can run on ``domain`` (domain-agnostic ones and the domain's
    own, of the :data:`BENCHMARK_FAMILIES`), optionally only those supporting
    ``label_kind``."""
    names = [e.name for e in MODELS.entries()
             if e.domain in (None, domain) and e.family in BENCHMARK_FAMILIES]
    if label_kind is not None:
        names = [n for n in names if label_kind in MODELS.get(n).label_kinds]
    return names


__all__ = [
    "BENCHMARK_FAMILIES", "DOMAINS", "ENCODERS", "ENSEMBLE_FAMILY", "ENTRY_POINT_GROUP", "Entry",
    "FAMILIES", "META_LEARNING_FAMILIES", "METRICS", "MODELS", "PLUGINS", "PROTOCOLS", "Registry",
    "default_model", "load_plugins", "meta_learners", "model_family", "models_for",
    "registered_meta", "registered_name",
]
