"""Recommendation domain: per-user interaction histories -> cold-start few-shot tasks.

Modules, one job each:

* ``readers``: MovieLens latest / 100K / 1M and a user's CSVs -> validated tables
  (:class:`~fewshot_apps.domains.recsys.readers.RecsysData`) and a report of skipped rows.
* ``vocab``: stable id -> index vocabularies, saved as JSON with a model.
* ``config``: :class:`~fewshot_apps.domains.recsys.config.ColdStartConfig`, every number of
  the protocol.
* ``splits``: the user split and item cold start ("new items").
* ``features``: item / user features and item statistics, fitted on meta-train users.
* ``tasks``: one :class:`~fewshot_apps.core.tasks.Task` per user.
* ``episodes``: cold-start and MeLU episode samplers.
* ``graph``: the user–item–attribute ``HeteroData``.
* ``dataset``: :func:`load_recsys_dataset`, the entry point.
* ``inspect``: the report of ``fewshot-apps data inspect``.

The heavy modules (torch, PyG) load on first use: ``from fewshot_apps.domains.recsys import
load_recsys_dataset`` works, and importing ``readers`` alone stays light.
"""

from __future__ import annotations

from fewshot_apps.core.registry import DOMAINS, ENCODERS, MODELS, PROTOCOLS

DOMAINS.add("recsys", "fewshot_apps.domains.recsys.domain:RecsysDomain",
            command="rec", domain_noun="rating",
            summary="cold-start recommendation: one task per user")
# The domain's registry entries (the code behind them loads on first use).
_BASELINES = "fewshot_apps.domains.recsys.baselines"
_RATINGS = dict(family="classic", label_kinds=("regression",), domain="recsys")
MODELS.add("global-mean", f"{_BASELINES}:GlobalMeanBaseline", **_RATINGS,
           summary="the mean training rating, plus the user's shrunk offset")
MODELS.add("item-mean", f"{_BASELINES}:ItemMeanBaseline", **_RATINGS,
           summary="each item's shrunk mean rating, plus the user's shrunk offset")
MODELS.add("popularity", f"{_BASELINES}:PopularityBaseline", **_RATINGS,
           summary="items ranked by how often they were rated")
MODELS.add("mf", f"{_BASELINES}:MatrixFactorizationBaseline", **_RATINGS,
           summary="matrix factorization; a new user's factors fitted on the support")
MODELS.add("popularity-similarity", "fewshot_apps.domains.recsys.recommend:PopularitySimilarity",
           **{**_RATINGS, "family": "training-free"}, default=True,
           summary="training-free default of recommend: popularity blended with "
           "item-feature similarity to the rated items")
ENCODERS.add("item-graph", "fewshot_apps.domains.recsys.encoder:ItemGraphEncoder",
             domain="recsys")
PROTOCOLS.add("cold-start", "fewshot_apps.domains.recsys.evaluation:evaluate_cold_start",
              domain="recsys", main_metrics=("mae", "recall@10"), label_kind="regression",
              support="support_size",
              summary="new users with supports of 5/10/20 ratings; query ratings and all items")

_LAZY = {
    "load_recsys_dataset": "fewshot_apps.domains.recsys.dataset",
    "build_recsys_dataset": "fewshot_apps.domains.recsys.dataset",
    "RecsysDataset": "fewshot_apps.domains.recsys.dataset",
    "inspect_dataset": "fewshot_apps.domains.recsys.inspect",
    "ColdStartConfig": "fewshot_apps.domains.recsys.config",
    "ColdStartSampler": "fewshot_apps.domains.recsys.episodes",
    "MeLUSampler": "fewshot_apps.domains.recsys.episodes",
    "Vocabulary": "fewshot_apps.domains.recsys.vocab",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
