"""Recommendation domain: per-user interaction histories -> cold-start few-shot tasks.

Modules, one job each:

* ``readers``: MovieLens latest / 100K / 1M and a user's CSVs -> validated tables
  (:class:`~fewshot_apps.domains.recsys.readers.RecsysData`) and a report of skipped rows.
* ``vocab``: stable id -> index vocabularies, saved as JSON with a model.
* ``config``: :class:`~fewshot_apps.domains.recsys.config.ColdStartConfig`, every number of
  the protocol.
* ``splits``: the user split and item cold start ("new items"), random, by time or fixed
  (a published split: ``readers.fixed_split``).
* ``features``: item / user features and item statistics, fitted on meta-train users.
* ``tasks``: one :class:`~fewshot_apps.core.tasks.Task` per user.
* ``episodes``: cold-start and MeLU episode samplers, and the onboarding interview's episode.
* ``onboard``: which items to ask a new user about first (``rec onboard``); ``onboarding``:
  the protocol that compares those strategies.
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

# Rating models (the code behind each entry loads on first use): name, "module:class",
# family, is `rec recommend`'s default, summary.
for _name, _target, _family, _default, _summary in (
    ("global-mean", "baselines:GlobalMeanBaseline", "classic", False,
     "the mean training rating, plus the user's shrunk offset"),
    ("item-mean", "baselines:ItemMeanBaseline", "classic", False,
     "each item's shrunk mean rating, plus the user's shrunk offset"),
    ("popularity", "baselines:PopularityBaseline", "classic", False,
     "items ranked by how often they were rated"),
    ("mf", "baselines:MatrixFactorizationBaseline", "classic", False,
     "matrix factorization; a new user's factors fitted on the support"),
    ("item-knn", "item_knn:ItemKNNBaseline", "classic", False,
     "item-to-item neighbours: ranks by similarity to the rated items (co-raters' cosine), "
     "predicts ratings as item-mean"),
    ("popularity-similarity", "recommend:PopularitySimilarity", "training-free", True,
     "training-free default of recommend: popularity blended with item-feature similarity "
     "to the rated items"),
):
    MODELS.add(_name, f"fewshot_apps.domains.recsys.{_target}", family=_family,
               label_kinds=("regression",), domain="recsys", default=_default,
               summary=_summary)
ENCODERS.add("item-graph", "fewshot_apps.domains.recsys.encoder:ItemGraphEncoder",
             domain="recsys")
PROTOCOLS.add("cold-start", "fewshot_apps.domains.recsys.evaluation:evaluate_cold_start",
              domain="recsys", main_metrics=("mae", "recall@10", "ndcg@10", "ndcg@3"),
              label_kind="regression", support="support_size",
              summary="new users with supports of 5/10/20 ratings (or a published split's "
                      "own); query ratings and all items; nDCG@3 for a published split")
# The strategies of fewshot_apps.domains.recsys.onboarding (random first: the baseline).
PROTOCOLS.add("onboarding", "fewshot_apps.domains.recsys.onboarding:evaluate_onboarding",
              domain="recsys", main_metrics=("recall@10", "ndcg@10", "mae"),
              label_kind="regression", support="support_size",
              strategies=("random", "popular", "divisive", "informative"),
              baseline_strategy="random", support_noun="answers",
              strategy_note="support_size = the answers of a simulated interview (the first n "
                            "items of the strategy's ranking of all items that the user "
                            "rated); every strategy of a user, seed and draw is scored on the "
                            "same held-out 30% of the user's ratings, never asked about.",
              summary="new users interviewed: each strategy (random, popular, divisive, "
                      "informative) ranks all items, the support is the first 5/10 the user "
                      "rated; all-item recall@10 / nDCG@10 and MAE on held-out ratings")

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
