"""The cold-start protocol's settings: every number of the protocol is a default here.

A dataset card's ``[split]`` and ``[options]`` tables and keyword options override them
(:meth:`ColdStartConfig.from_mapping`); unknown keys are an error, not ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

from fewshot_apps.errors import CardError

Protocol = Literal["cold-start", "melu"]
SplitMethod = Literal["random", "time"]


@dataclass(frozen=True)
class ColdStartConfig:
    """Cold-start few-shot protocol.

    Attributes:
        protocol: ``"cold-start"`` (support sizes ``support_sizes``, a 10-item query, the rest
            of the user's ratings held out for all-item ranking) or ``"melu"`` (users with
            ``melu_min_ratings``..``melu_max_ratings`` ratings, query = ``melu_n_query``
            random items, support = the rest).
        seed: seeds the user split (and nothing else; episodes take their own seeds).
        split_fractions: meta-train / valid / test share of users.
        split_method: ``"random"`` (seeded) or ``"time"`` (users ordered by their first rating:
            the earliest are meta-train, the latest test).
        support_sizes: k of the k-shot cold-start episodes.
        n_query: ratings in the query (the "10-item" view).
        min_eval_ratings: valid / test users need this many ratings to be evaluated, so that
            every support size is scored on the same users.
        new_item_quantile: item cold start: items first rated after the time by which this
            share of all ratings was made are "new items" (None: no item cold start).
        relevance_threshold: a rating >= this is relevant in binary ranking metrics.
        max_tags / min_tag_count: the tag vocabulary (meta-train users' tags only).
        max_categories: string columns of a user's feature CSV with more distinct values
            than this are not one-hot encoded (reported instead).
    """

    protocol: Protocol = "cold-start"
    seed: int = 0
    split_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    split_method: SplitMethod = "random"
    support_sizes: tuple[int, ...] = (5, 10, 20)
    n_query: int = 10
    min_eval_ratings: int = 30
    melu_min_ratings: int = 13
    melu_max_ratings: int = 100
    melu_n_query: int = 10
    new_item_quantile: float | None = 0.8
    relevance_threshold: float = 4.0
    max_tags: int = 100
    min_tag_count: int = 2
    max_categories: int = 50

    def __post_init__(self) -> None:
        object.__setattr__(self, "split_fractions", tuple(float(f) for f in self.split_fractions))
        object.__setattr__(self, "support_sizes", tuple(int(k) for k in self.support_sizes))
        if self.protocol not in ("cold-start", "melu"):
            raise CardError(f"protocol must be 'cold-start' or 'melu', not {self.protocol!r}")
        if self.split_method not in ("random", "time"):
            raise CardError(f"split_method must be 'random' or 'time', not {self.split_method!r}")
        fr = self.split_fractions
        if len(fr) != 3 or any(f < 0 for f in fr) or abs(sum(fr) - 1) > 1e-6:
            raise CardError(f"split_fractions must be 3 shares summing to 1, not {list(fr)}")
        if not self.support_sizes or min(self.support_sizes) < 1:
            raise CardError(f"support_sizes must be positive, not {list(self.support_sizes)}")
        if self.n_query < 1 or self.melu_n_query < 1:
            raise CardError("n_query and melu_n_query must be at least 1")
        if self.new_item_quantile is not None and not 0 < self.new_item_quantile < 1:
            raise CardError(
                f"new_item_quantile must be in (0, 1) or None, not {self.new_item_quantile}"
            )

    @classmethod
    def from_mapping(cls, *mappings: Mapping | None, **overrides: object) -> ColdStartConfig:
        """Defaults, then each mapping in turn (card ``[split]``, ``[options]``), then overrides.

        Keys that are not fields are an error (keys the reader uses are filtered out by the
        caller). ``new_item_quantile = false`` (TOML has no null) turns item cold start off.
        """
        known = {f.name for f in fields(cls)}
        values: dict = {}
        for mapping in (*mappings, overrides):
            for key, value in (mapping or {}).items():
                key = key.replace("-", "_")
                if key not in known:
                    raise CardError(
                        f"unknown cold-start option {key!r}; known: {', '.join(sorted(known))}"
                    )
                values[key] = value
        if values.get("new_item_quantile") is False:
            values["new_item_quantile"] = None
        return cls(**values)

    def with_(self, **changes: object) -> ColdStartConfig:
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["split_fractions"] = list(self.split_fractions)
        d["support_sizes"] = list(self.support_sizes)
        return d

    @property
    def max_support(self) -> int:
        return max(self.support_sizes)


CONFIG_KEYS = frozenset(f.name for f in fields(ColdStartConfig))
