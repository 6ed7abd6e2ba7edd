"""The seam between the few-shot machinery and a kind of data: the :class:`Domain` protocol.

A domain (molecules, recommendation, or a toy one in the tests) turns a dataset card into a
:class:`DomainDataset`, which gives everything the rest of the toolkit needs: its tasks, an
encoder for learners to adapt on, training episodes, a validation score, its classic
baselines, its evaluation protocols and what a saved model must remember. ``api``, ``cli``
and ``bench`` talk to domains only through this protocol and the registries, never through
a domain's own modules.

Register a domain in a light module (see :mod:`fewshot_apps.core.registry`)::

    DOMAINS.add("toy", "my_package.toy:ToyDomain", summary="sequences of numbers")

and name it in a card (``domain = "toy"``).

One vocabulary for support sets: ``shots`` is K per class of a balanced classification
support (2K examples); ``support_size`` is the number of examples in a support set. Older
names are read through :data:`SETTING_ALIASES`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from fewshot_apps.core.registry import DOMAINS, registered_name
from fewshot_apps.errors import FewshotError

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn

    from fewshot_apps.core.tasks import TaskSet
    from fewshot_apps.sources import Card

#: Older names of episode settings, read as the current ones (saved configs, checkpoints,
#: suite files and ``--set`` written before the vocabulary was unified).
SETTING_ALIASES = {"k_shot": "shots", "k_support": "support_size", "n_support": "support_size"}


def canonical_settings(settings: dict) -> dict:
    """``settings`` with older episode names renamed (``k_shot`` -> ``shots``, ``k_support``
    -> ``support_size``); FewshotError when an old and a new name are both given."""
    out = dict(settings)
    for old, new in SETTING_ALIASES.items():
        if old in out:
            if new in out and out[new] != out[old]:
                raise FewshotError(f"settings give both {old!r} (an older name) and {new!r}; "
                                   f"use {new!r} only")
            out[new] = out.pop(old)
    return out


@runtime_checkable
class DomainDataset(Protocol):
    """What a domain's loaded data set gives the toolkit.

    Attributes:
        name: the data set's name (its card's).
        domain: the registry name of its domain.
        label_kind: ``"classification"`` or ``"regression"``.
        taskset: the few-shot tasks, split into train / valid / test.
        protocols: the evaluation protocols (registry names) that apply to it.
        episode_defaults: default episode settings (``shots`` or ``support_size``,
            ``n_query``, ``valid_draws``).
        validation_metric: what the validation score is, for messages ("ROC-AUC").
        unvalidated_reason: why a run had no model selection, for messages.
    """

    name: str
    domain: str
    label_kind: str
    protocols: tuple[str, ...]
    episode_defaults: dict
    validation_metric: str
    unvalidated_reason: str

    @property
    def taskset(self) -> TaskSet: ...

    def make_encoder(self, settings: dict) -> nn.Module:
        """A new encoder from ``encoder.<key>`` settings (unknown keys: FewshotError)."""

    def train_sampler(self, episode: dict):
        """The episode sampler for meta-training, from the episode settings (``shots`` or
        ``support_size``, and ``n_query``)."""

    def check_trainable(self, episode: dict) -> None:
        """FewshotError, before any model is built, when the training tasks cannot give
        episodes of these settings."""

    def validator(self, episode: dict, seed: int) -> Callable[[Any], float] | None:
        """The model-selection score on validation tasks (higher is better), or None."""

    def build_baseline(self, name: str, seed: int = 0):
        """One of the domain's classic baselines, fitted where it needs fitting."""

    def evaluate(self, protocol: str, model, *, split: str = "test", **options):
        """Results of ``protocol`` on the ``split`` tasks: ``(tidy DataFrame, n_skipped)``
        with columns task, shots, support_size, item_split, draw, seed, metric, value; a
        protocol with acquisition strategies (its PROTOCOLS entry's ``strategies``) takes
        ``strategies=[...]`` and adds a ``strategy`` column."""

    def saved_model_config(self) -> dict:
        """What a saved model must remember of this data set (name, split, settings)."""

    def attach(self, model, path=None) -> None:
        """Give a loaded model the data its encoder reads (checking it is the data the model
        was trained on)."""

    def check_model_split(self, model_path, suite: str) -> bool:
        """FewshotError when the saved model was trained or selected on this data set's test
        tasks; True when that was checked, False (with a warning) for a model saved
        without its split."""


class Domain(ABC):
    """A kind of data: loads its cards and reattaches its saved models.

    Subclasses are registered in :data:`~fewshot_apps.core.registry.DOMAINS`; ``name`` is
    read from there.
    """

    name = registered_name(DOMAINS)

    @abstractmethod
    def load(self, card: Card, **options: Any) -> DomainDataset:
        """The data set a card describes (``options``: the domain's loading options)."""

    @abstractmethod
    def describe(self, card: Card, **options: Any) -> str:
        """The text of ``fewshot-apps data inspect``: counts, tasks, skipped rows."""

    #: What a plain CSV of this domain has, for the message when no domain claims a CSV.
    csv_expectation: str = ""

    def card_for_csv(self, csv) -> Card | None:
        """The in-memory card of a plain CSV whose header is this domain's kind (``csv``: a
        :class:`~fewshot_apps.plain_csv.PlainCSV`), else None; a DataError when the header
        is this domain's kind but the file cannot be used as it is."""
        return None

    def csv_missing(self, csv) -> str | None:
        """What the header lacks to be this domain's kind (for the message), if worth
        saying."""
        return None

    def check_dataset_options(self, options: dict) -> dict:
        """The loading options a benchmark suite passes to :meth:`load` (its
        ``dataset_options``: a variant of the data set), checked: FewshotError saying which
        this domain accepts. A domain accepts none unless it says so."""
        if options:
            noun = getattr(DOMAINS.get(self.name), "domain_noun", None) or self.name
            raise FewshotError(f"dataset options {', '.join(map(repr, sorted(options)))}: "
                               f"{noun} data sets accept none")
        return {}

    def dataset_for_model(self, config: dict, path, dataset=None) -> DomainDataset | None:
        """The data set a loaded model needs before it can predict (None: it needs none).
        ``dataset`` is what the caller passed (a data set, a card name or path, or None)."""
        return None


def get_domain(name: str) -> Domain:
    """The registered domain ``name`` (FewshotError listing the known ones)."""
    return DOMAINS.load(name)()


def domain_of(dataset) -> Domain:
    """The domain a loaded data set belongs to."""
    return get_domain(dataset.domain)


def model_domain(config: dict) -> str | None:
    """The domain a saved model's config belongs to: its ``domain`` key, or for a model
    saved before configs recorded it, its encoder's domain."""
    if config.get("domain"):
        return config["domain"]
    from fewshot_apps.core.registry import ENCODERS

    encoder = (config.get("encoder") or {}).get("name")
    return ENCODERS.get(encoder).domain if encoder in ENCODERS else None


def load_saved_model(path, dataset=None, device: str | None = None,
                     learner_settings: dict | None = None):
    """A saved model (``model.pt`` + ``config.json``) in eval mode, with the data its
    encoder reads attached by its domain: ``dataset`` if given (a loaded data set, a card
    name or path), else the one its config names where the domain needs one (a rating
    model's item graph), checked against what the model was trained on. ``learner_settings``
    replace saved settings of the adaptation (:func:`~fewshot_apps.core.persistence.load_model`).
    A saved ensemble (:mod:`fewshot_apps.core.ensemble`) comes back with each member loaded so."""
    from fewshot_apps.core.ensemble import is_ensemble_config, load_ensemble
    from fewshot_apps.core.persistence import load_model, read_model_config

    config = read_model_config(path)
    domain = model_domain(config)
    if is_dataset(dataset) and domain is not None and dataset.domain != domain:
        # the encoder reads only its own domain's data: refused here, not deep inside it
        raise FewshotError(
            f"{path}: the model is of the {domain} domain (trained on "
            f"{config.get('dataset', 'unrecorded data')}) and cannot score {dataset.name}, a "
            f"data set of the {dataset.domain} domain; give it a {domain} data set or suite")
    if is_ensemble_config(config):  # its members are saved models: each loaded as one
        return load_ensemble(path, config, lambda member: load_saved_model(
            member, dataset=dataset, device=device), learner_settings)
    model = load_model(path, device=device, learner_settings=learner_settings)
    model.model_path = str(path)
    if domain is not None:
        data = get_domain(domain).dataset_for_model(config, path, dataset)
        if data is not None:
            data.attach(model, path)
    return model


def is_dataset(obj: object) -> bool:
    """Whether ``obj`` is a loaded data set of some domain (and not a name or path)."""
    return isinstance(getattr(obj, "domain", None), str) and hasattr(obj, "saved_model_config")


__all__ = ["SETTING_ALIASES", "Domain", "DomainDataset", "canonical_settings", "domain_of",
           "get_domain", "is_dataset", "load_saved_model", "model_domain"]
