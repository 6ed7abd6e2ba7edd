"""The cold-start protocol's settings: every number of the protocol is a default here.

A dataset card's ``[split]`` and ``[options]`` tables and keyword options override them
(:meth:`ColdStartConfig.from_mapping`); unknown keys are an error, not ignored.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Literal

from fewshot_apps.errors import CardError

Protocol = Literal["cold-start", "melu"]
SplitMethod = Literal["random", "time", "fixed"]


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
            the earliest are meta-train, the latest test); ``"fixed"``: the ratings' own
            ``split`` column (a published split; set when the data has one).
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
        user_folds: cross-validation over users (None: off): the users with enough ratings
            to be evaluated are dealt, seeded by ``seed``, into this many folds; fold
            ``user_fold``'s users are the test users, validation users are drawn from the
            other folds' (``split_fractions[1] / (split_fractions[0] + split_fractions[1])``
            of them), everyone else is meta-train. Only with the random split.
        user_fold: the fold whose users are tested (0 .. ``user_folds - 1``).
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
    user_folds: int | None = None
    user_fold: int = 0

    def __post_init__(self) -> None:
        """Check every field and store it in its type; values come from TOML cards, keyword
        options and command lines, so numbers may be strings (``"3"``) and lists may be
        comma-separated strings (``"5,10,20"``). CardError naming the option and the value."""
        if self.protocol not in ("cold-start", "melu"):
            raise CardError(f"protocol must be 'cold-start' or 'melu', not {self.protocol!r}")
        if self.split_method not in ("random", "time", "fixed"):
            raise CardError(f"split_method must be 'random', 'time' or 'fixed' (a split column "
                            f"in the ratings), not {self.split_method!r}")
        values = {
            "seed": _whole("seed", self.seed),
            "split_fractions": _shares(self.split_fractions),
            "support_sizes": _sizes(self.support_sizes),
            "n_query": _whole("n_query", self.n_query, low=1),
            "min_eval_ratings": _whole("min_eval_ratings", self.min_eval_ratings, low=0),
            "melu_min_ratings": _whole("melu_min_ratings", self.melu_min_ratings, low=1),
            "melu_max_ratings": _whole("melu_max_ratings", self.melu_max_ratings, low=1),
            "melu_n_query": _whole("melu_n_query", self.melu_n_query, low=1),
            "new_item_quantile": _quantile(self.new_item_quantile),
            "relevance_threshold": _number("relevance_threshold", self.relevance_threshold),
            "max_tags": _whole("max_tags", self.max_tags, low=0),
            "min_tag_count": _whole("min_tag_count", self.min_tag_count, low=1),
            "max_categories": _whole("max_categories", self.max_categories, low=0),
            "user_folds": None if self.user_folds in (None, False)
            else _whole("user_folds", self.user_folds, low=2),
            "user_fold": _whole("user_fold", self.user_fold, low=0),
        }
        for key, value in values.items():
            object.__setattr__(self, key, value)
        if self.user_fold >= (self.user_folds or 1):
            raise CardError(
                f"user_fold must be below user_folds ({self.user_folds}), not {self.user_fold}"
                if self.user_folds else "user_fold needs user_folds (cross-validation over "
                f"users), which is not set; user_fold = {self.user_fold}")
        if self.user_folds and self.split_method != "random":
            raise CardError(f"user_folds deals users into folds at random; split_method "
                            f"{self.split_method!r} does not go with it")
        if self.melu_min_ratings > self.melu_max_ratings:
            raise CardError(
                f"melu_min_ratings ({self.melu_min_ratings}) must not exceed melu_max_ratings "
                f"({self.melu_max_ratings}): no user could qualify"
            )
        if self.melu_n_query >= self.melu_max_ratings:
            raise CardError(
                f"melu_n_query ({self.melu_n_query}) must be below melu_max_ratings "
                f"({self.melu_max_ratings}): a MeLU support needs at least one rating"
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

_NONE_WORDS = ("none", "null", "false")


def _whole(name: str, value: object, low: int | None = None) -> int:
    """``value`` as an int (``3``, ``3.0`` and ``"3"`` alike) of at least ``low``."""
    number = None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        number = int(value)
    elif _as_float(value).is_integer():
        number = int(_as_float(value))
    if number is None or (low is not None and number < low):
        what = {None: "a whole number", 0: "a whole number >= 0",
                1: "a positive whole number"}.get(low, f"a whole number >= {low}")
        raise CardError(f"{name} must be {what}, not {value!r}")
    return number


def _number(name: str, value: object) -> float:
    """``value`` as a finite float (``4``, ``4.0`` and ``"4"`` alike)."""
    number = _as_float(value)
    if not math.isfinite(number):
        raise CardError(f"{name} must be a number, not {value!r}")
    return number


def _as_float(value: object) -> float:
    """A number or a number's text as a float; NaN for anything else (booleans too)."""
    if isinstance(value, (numbers.Real, str)) and not isinstance(value, bool):
        try:
            return float(value.strip() if isinstance(value, str) else value)
        except ValueError:
            pass
    return math.nan


def _items(value: object) -> list | None:
    """The entries of a list option: a list or tuple, a comma-separated string
    (``"5,10,20"``, brackets allowed) or one number; None for anything else."""
    if isinstance(value, str):
        text = value.strip().strip("[]()")
        return [part for part in re.split(r"[,\s]+", text) if part]
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return [value]
    return None


def _shown(value: object) -> str:
    return str(list(value)) if isinstance(value, (list, tuple)) else repr(value)


def _shares(value: object) -> tuple[float, float, float]:
    """Three finite shares >= 0 summing to 1 (within rounding)."""
    items = _items(value)
    try:
        shares = tuple(_number("split_fractions", f) for f in items or ())
    except CardError:
        shares = ()
    if len(shares) != 3 or any(f < 0 for f in shares) or abs(sum(shares) - 1) > 1e-6:
        raise CardError(f"split_fractions must be 3 shares summing to 1, not {_shown(value)}")
    return shares


def _sizes(value: object) -> tuple[int, ...]:
    """One or more positive whole support sizes."""
    items = _items(value)
    try:
        sizes = tuple(_whole("support_sizes", k, low=1) for k in items or ())
    except CardError:
        sizes = ()
    if not sizes:
        raise CardError(
            f"support_sizes must be positive whole numbers (e.g. [5, 10, 20]), not {_shown(value)}"
        )
    return sizes


def _quantile(value: object) -> float | None:
    """None (item cold start off; ``false`` / ``"none"`` too) or a share in (0, 1)."""
    if value is None or value is False:
        return None
    if isinstance(value, str) and value.strip().lower() in _NONE_WORDS:
        return None
    try:
        number = _number("new_item_quantile", value)
    except CardError:
        number = math.nan
    if not 0 < number < 1:
        raise CardError(f"new_item_quantile must be in (0, 1) or None, not {value!r}")
    return number
