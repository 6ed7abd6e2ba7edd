"""Classic rating baselines for cold-start users: global mean, item mean, popularity, biased MF.

Every baseline is fitted once on **meta-train users' ratings of existing items**
(:meth:`RecsysDataset.train_interactions`, the same rows the graph and item statistics see;
valid / test users and new-item ratings never enter a fit) and then answers, for each new
user, the interface of the learners::

    fit_predict(support_item_ids [s], support_ratings [s], query_item_ids [q]) -> [q] float64

(predicted ratings; the ranking metrics rank by them), with ``name``, ``family = "classic"``
and ``kind = "regression"``. Ids are item-vocabulary indices. Hyperparameters are fixed and
documented (chosen once on validation users of ml-latest-small, never per episode):

* ``global-mean``: the mean meta-train rating for every item and user. Ignores the support.
* ``item-mean``: each item's Bayesian average ``(sum_i + m * mu) / (n_i + m)`` with prior
  weight ``m = prior_weight`` ratings at the global mean ``mu`` (an item with 1 rating of 5
  is not ranked above one with 200 ratings averaging 4.5); items without meta-train ratings
  (new items included) get ``mu``. Plus the user's **shrunk support offset**
  ``sum_s (r_s - base_s) / (s + user_prior)``: the mean residual of the support ratings,
  pulled toward 0 by ``user_prior`` pseudo-ratings, so a 5-shot user moves less than a
  20-shot one (``user_offset=False`` turns it off).
* ``popularity``: ranks items by their meta-train rating count. As ratings it predicts
  ``c + a * log1p(count_i)`` (least squares of the meta-train ratings on ``log1p`` of the
  rated item's count, slope floored at ``min_slope > 0`` so the order stays "more ratings
  first" whatever the data), plus the same shrunk user offset as ``item-mean``. A constant
  per-user offset changes no ranking.
* ``mf``: biased matrix factorization ``mu + b_u + b_i + p_u . q_i`` fitted by alternating
  least squares (exact ridge solves, so the regularized loss never increases; item factors
  start from a seeded normal draw). A new user's ``[p_u, b_u]`` is the ridge solution on the
  support with the item factors and biases fixed. Items without meta-train ratings (new
  items) end with ``b_i = 0`` and ``q_i = 0`` (ALS solves them on no data), so they fall
  back to ``mu + b_u``.

Predictions are not clipped to the rating scale by default (``clip=True`` clips): clipping
ties every item above the top of the scale, which would blur the all-item ranking.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp

from fewshot_apps.core.classic import ClassicBaseline
from fewshot_apps.core.registry import MODELS
from fewshot_apps.errors import FewshotError

__all__ = [
    "GlobalMeanBaseline",
    "ItemMeanBaseline",
    "MatrixFactorizationBaseline",
    "PopularityBaseline",
    "RatingBaseline",
    "build_rec_baseline",
    "rec_baseline_names",
]


class RatingBaseline(ClassicBaseline):
    """Base class: fits on meta-train ratings, checks the episode inputs, clips if asked.

    Args:
        train: meta-train ratings, one row per rating with ``user_index``, ``item_index``
            (vocabulary indices) and ``rating``; e.g. ``dataset.train_interactions()``.
        n_items: size of the item vocabulary (ids are ``0 .. n_items - 1``).
        seed: fixes everything random in the fit.
        rating_range: ``(low, high)`` of the rating scale, used by ``clip``.
        clip: clip predictions to ``rating_range``.

    Subclasses implement ``_fit(users [m], items [m], ratings [m])`` and
    ``_predict(support_ids [s], support_ratings [s], query_ids [q]) -> [q]``.
    """

    kind: ClassVar[str] = "regression"

    def __init__(
        self,
        train: pd.DataFrame,
        n_items: int,
        *,
        seed: int = 0,
        rating_range: tuple[float, float] | None = None,
        clip: bool = False,
    ):
        self.n_items = int(n_items)
        self.seed = int(seed)
        self.rating_range = None if rating_range is None else tuple(map(float, rating_range))
        self.clip = bool(clip)
        if self.clip and self.rating_range is None:
            raise FewshotError(f"{self.name}: clip=True needs a rating_range")
        users = train["user_index"].to_numpy(np.int64)
        items = train["item_index"].to_numpy(np.int64)
        ratings = train["rating"].to_numpy(np.float64)
        if len(ratings) == 0:
            raise FewshotError(f"{self.name}: no meta-train ratings to fit on")
        if items.min() < 0 or items.max() >= self.n_items:
            raise FewshotError(f"{self.name}: item indices outside 0..{self.n_items - 1}")
        self.n_train_ratings = len(ratings)
        self.global_mean = float(ratings.mean())
        self._fit(users, items, ratings)

    @classmethod
    def from_dataset(cls, dataset, seed: int = 0, **settings: Any) -> RatingBaseline:
        """Fit on ``dataset.train_interactions()`` (meta-train users, existing items only)."""
        scale = dataset.scale
        return cls(
            dataset.train_interactions(),
            len(dataset.item_vocab),
            seed=seed,
            rating_range=None if scale is None else (scale.low, scale.high),
            **settings,
        )

    # -- to override ------------------------------------------------------------------------

    def settings(self) -> dict:
        """The fixed hyperparameters (for config files and reports)."""
        return {"clip": self.clip}

    def _fit(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> None:
        pass

    def _predict(self, support_ids, support_ratings, query_ids) -> np.ndarray:
        raise NotImplementedError

    # -- common -------------------------------------------------------------------------------

    def _ids(self, ids, what: str) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) and (ids.min() < 0 or ids.max() >= self.n_items):
            raise FewshotError(f"{self.name}: {what} item ids outside 0..{self.n_items - 1}")
        return ids

    def fit_predict(self, support_ids, support_ratings, query_ids) -> np.ndarray:
        """Adapt to the support ratings, predict the query ratings: ``[q]`` float64."""
        support_ids = self._ids(support_ids, "support")
        query_ids = self._ids(query_ids, "query")
        y = np.asarray(support_ratings, dtype=np.float64).reshape(-1)
        if y.shape != support_ids.shape:
            raise FewshotError(
                f"{self.name}: {len(support_ids)} support ids but {len(y)} support ratings"
            )
        if np.isnan(y).any():
            raise FewshotError(f"{self.name}: support ratings contain NaN")
        if len(query_ids) == 0:
            return np.zeros(0)
        out = np.asarray(self._predict(support_ids, y, query_ids), dtype=np.float64)
        if self.clip:
            out = np.clip(out, *self.rating_range)
        return out


class GlobalMeanBaseline(RatingBaseline):
    """``global-mean``: the mean meta-train rating, for everyone and every item."""

    def _predict(self, support_ids, support_ratings, query_ids) -> np.ndarray:
        return np.full(len(query_ids), self.global_mean)


class _OffsetBaseline(RatingBaseline):
    """An item score ``base [n_items]`` fixed at fit time, plus the user's shrunk offset.

    ``offset = sum_s (r_s - base[i_s]) / (s + user_prior)``: the support's mean residual,
    shrunk toward 0 as if ``user_prior`` more ratings had residual 0.
    """

    def __init__(self, train, n_items, *, user_offset: bool = True, user_prior: float = 3.0,
                 **kwargs: Any):
        if user_prior < 0:
            raise FewshotError(f"user_prior must be >= 0, got {user_prior}")
        self.user_offset = bool(user_offset)
        self.user_prior = float(user_prior)
        self.base = np.zeros(0)
        super().__init__(train, n_items, **kwargs)

    def settings(self) -> dict:
        return {"user_offset": self.user_offset, "user_prior": self.user_prior,
                **super().settings()}

    def offset(self, support_ids: np.ndarray, support_ratings: np.ndarray) -> float:
        """The user's shrunk support offset (0 when turned off or the support is empty)."""
        if not self.user_offset or len(support_ids) == 0:
            return 0.0
        residual = support_ratings - self.base[support_ids]
        return float(residual.sum() / (len(residual) + self.user_prior))

    def _predict(self, support_ids, support_ratings, query_ids) -> np.ndarray:
        return self.base[query_ids] + self.offset(support_ids, support_ratings)


class ItemMeanBaseline(_OffsetBaseline):
    """``item-mean``: Bayesian average of each item's meta-train ratings + the user offset.

    Settings: ``prior_weight=5`` pseudo-ratings at the global mean (a 1-rating item moves a
    sixth of the way from the global mean to its rating), ``user_offset=True``,
    ``user_prior=3``. On validation users of ml-latest-small, MAE at support 5/10/20 varies
    by < 0.003 for ``prior_weight`` 2 to 10 and ``user_prior`` 1 to 3 (20 and 10 are worse);
    the offset itself is worth ~0.06 to 0.08 MAE.
    """

    def __init__(self, train, n_items, *, prior_weight: float = 5.0, **kwargs: Any):
        if prior_weight < 0:
            raise FewshotError(f"prior_weight must be >= 0, got {prior_weight}")
        self.prior_weight = float(prior_weight)
        super().__init__(train, n_items, **kwargs)

    def settings(self) -> dict:
        return {"prior_weight": self.prior_weight, **super().settings()}

    def _fit(self, users, items, ratings) -> None:
        self.count = np.bincount(items, minlength=self.n_items).astype(np.int64)
        total = np.bincount(items, weights=ratings, minlength=self.n_items)
        m = self.prior_weight
        # count 0 (new or never-rated items) gives exactly the global mean (if m > 0).
        with np.errstate(invalid="ignore", divide="ignore"):
            base = (total + m * self.global_mean) / (self.count + m)
        self.base = np.where(self.count + m > 0, base, self.global_mean)


class PopularityBaseline(_OffsetBaseline):
    """``popularity``: more meta-train ratings rank higher; ratings ``c + a * log1p(count)``.

    ``a``, ``c``: least squares of each meta-train rating on ``log1p`` of its item's count
    (popular films are rated a little higher on MovieLens), ``a`` floored at ``min_slope``
    (1e-3) so that the ranking is by count even on data where the fit slopes down. Items
    without meta-train ratings get ``c`` (the bottom of the ranking). Plus the user offset
    (``user_offset=True``, ``user_prior=3``), which shifts but never reorders.
    """

    def __init__(self, train, n_items, *, min_slope: float = 1e-3, **kwargs: Any):
        if min_slope <= 0:
            raise FewshotError(f"min_slope must be > 0 (else the ranking is not by count), got {min_slope}")
        self.min_slope = float(min_slope)
        super().__init__(train, n_items, **kwargs)

    def settings(self) -> dict:
        return {"min_slope": self.min_slope, **super().settings()}

    def _fit(self, users, items, ratings) -> None:
        self.count = np.bincount(items, minlength=self.n_items).astype(np.int64)
        x = np.log1p(self.count[items].astype(np.float64))
        var = float(x.var())
        slope = float(np.mean((x - x.mean()) * (ratings - ratings.mean())) / var) if var > 0 else 0.0
        self.slope = max(slope, self.min_slope)
        self.intercept = float(ratings.mean() - self.slope * x.mean())
        self.base = self.intercept + self.slope * np.log1p(self.count.astype(np.float64))


class _Ratings:
    """The meta-train ratings as two sparse incidence matrices (users x items, items x
    users) whose ``data`` can be refilled with any per-rating values."""

    def __init__(self, users: np.ndarray, items: np.ndarray, n_users: int, n_items: int):
        self.by_user = np.lexsort((items, users))  # rating order of the user-major CSR
        self.by_item = np.lexsort((users, items))
        self.shape = (n_users, n_items)
        self._users, self._items = users, items

    def matrix(self, values: np.ndarray, rows: str) -> sp.csr_matrix:
        """``[n_users, n_items]`` (``rows="user"``) or its transpose holding ``values [m]``."""
        if rows == "user":
            order, r, c, shape = self.by_user, self._users, self._items, self.shape
        else:
            order, r, c, shape = self.by_item, self._items, self._users, self.shape[::-1]
        indptr = np.r_[0, np.cumsum(np.bincount(r, minlength=shape[0]))]
        return sp.csr_matrix((values[order], c[order], indptr), shape=shape)


def _ridge_rows(incidence: sp.csr_matrix, weighted: sp.csr_matrix, other: np.ndarray,
                reg: np.ndarray) -> np.ndarray:
    """Per-entity ridge solutions in one batched solve.

    Entity ``e`` (a row of ``incidence [n, n_other]``, 1 where it has a rating) solves
    ``argmin_x sum_o (t_eo - other_o . x)^2 + sum_j reg_j x_j^2`` over its rated ``o``, where
    ``weighted`` holds the targets ``t_eo`` in the same pattern, ``other [n_other, d]`` the
    fixed side and ``reg [d]``. Returns ``[n, d]`` (an entity without ratings gets 0).

    The Gram matrices are ``incidence @ (outer products of the rows of other)``: a sparse
    product over the ``n_other`` distinct outer products, never one per rating.
    """
    d = other.shape[1]
    outer = (other[:, :, None] * other[:, None, :]).reshape(len(other), d * d)
    gram = np.asarray(incidence @ outer).reshape(-1, d, d) + np.diag(reg)
    rhs = np.asarray(weighted @ other)
    return np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]


class MatrixFactorizationBaseline(RatingBaseline):
    """``mf``: biased MF ``mu + b_u + b_i + p_u . q_i`` by alternating least squares.

    Objective (sums over meta-train ratings and entities)::

        sum (r_ui - mu - b_u - b_i - p_u . q_i)^2
            + reg_factors * (|p_u|^2 + |q_i|^2) + reg_bias * (b_u^2 + b_i^2)

    ``mu`` is the global mean. Each epoch solves every user's ``[p_u, b_u]`` exactly with the
    items fixed, then every item's ``[q_i, b_i]`` with the users fixed, so the objective
    never increases (``losses`` holds it per epoch, divided by the number of ratings;
    ``train_rmse`` the plain fit error).

    Settings: ``factors=16``, ``reg_factors=10``, ``reg_bias=2``, ``epochs=15`` (the
    objective changes by < 0.1% per epoch after ~10), ``init_std=0.1`` (the seeded draw of
    the starting item factors). A new user: ridge on the support with ``user_reg_factors``
    (default ``reg_factors``) and ``user_reg_bias`` (default ``reg_bias``); 5 ratings cannot
    pin 16 factors, so the penalty keeps ``p_u`` near 0 and the bias does most of the work.
    Chosen on validation users of ml-latest-small (MAE at support 5/10/20): 8 to 32 factors
    and ``reg_factors`` 10 to 30 differ by < 0.005; ``reg_factors=3`` overfits (train RMSE
    0.42, validation MAE +0.01); ``reg_bias=5`` costs 0.005. About 2 s on 70k ratings.
    """

    def __init__(
        self,
        train,
        n_items,
        *,
        factors: int = 16,
        reg_factors: float = 10.0,
        reg_bias: float = 2.0,
        epochs: int = 15,
        init_std: float = 0.1,
        user_reg_factors: float | None = None,
        user_reg_bias: float | None = None,
        **kwargs: Any,
    ):
        if factors < 0 or epochs < 1 or min(reg_factors, reg_bias) <= 0:
            raise FewshotError(
                "mf needs factors >= 0, epochs >= 1 and positive regularization, got "
                f"factors={factors}, epochs={epochs}, reg_factors={reg_factors}, reg_bias={reg_bias}"
            )
        self.factors = int(factors)
        self.reg_factors = float(reg_factors)
        self.reg_bias = float(reg_bias)
        self.epochs = int(epochs)
        self.init_std = float(init_std)
        self.user_reg_factors = float(reg_factors if user_reg_factors is None else user_reg_factors)
        self.user_reg_bias = float(reg_bias if user_reg_bias is None else user_reg_bias)
        super().__init__(train, n_items, **kwargs)

    def settings(self) -> dict:
        return {"factors": self.factors, "reg_factors": self.reg_factors,
                "reg_bias": self.reg_bias, "epochs": self.epochs, "init_std": self.init_std,
                "user_reg_factors": self.user_reg_factors, "user_reg_bias": self.user_reg_bias,
                **super().settings()}

    def _reg(self, factors: float, bias: float) -> np.ndarray:
        return np.r_[np.full(self.factors, factors), bias]

    def _objective(self, users, items, ratings) -> tuple[float, float]:
        pred = self._score(users, items)
        sq = float(np.sum((ratings - pred) ** 2))
        penalty = self.reg_factors * (np.sum(self.user_factors**2) + np.sum(self.item_factors**2))
        penalty += self.reg_bias * (np.sum(self.user_bias**2) + np.sum(self.item_bias**2))
        return (sq + float(penalty)) / len(ratings), float(np.sqrt(sq / len(ratings)))

    def _score(self, users, items) -> np.ndarray:
        dot = np.einsum("md,md->m", self.user_factors[users], self.item_factors[items])
        return self.global_mean + self.user_bias[users] + self.item_bias[items] + dot

    def _fit(self, users, items, ratings) -> None:
        # Users are renumbered 0..U-1: only meta-train users exist here.
        _, users = np.unique(users, return_inverse=True)
        n_users = int(users.max()) + 1
        k = self.factors
        rng = np.random.default_rng(self.seed)
        self.item_factors = rng.normal(0.0, self.init_std, size=(self.n_items, k))
        self.item_bias = np.zeros(self.n_items)
        self.user_factors = np.zeros((n_users, k))
        self.user_bias = np.zeros(n_users)
        pairs = _Ratings(users, items, n_users, self.n_items)
        ones = np.ones(len(ratings))
        user_items, item_users = pairs.matrix(ones, "user"), pairs.matrix(ones, "item")
        centred = ratings - self.global_mean
        reg = self._reg(self.reg_factors, self.reg_bias)
        self.losses: list[float] = []
        self.train_rmse: list[float] = []
        for _ in range(self.epochs):
            # [q_i, 1] . [p_u, b_u] = r - mu - b_i, then [p_u, 1] . [q_i, b_i] = r - mu - b_u.
            x = _ridge_rows(user_items, pairs.matrix(centred - self.item_bias[items], "user"),
                            np.c_[self.item_factors, np.ones(self.n_items)], reg)
            self.user_factors, self.user_bias = x[:, :k], x[:, k]
            x = _ridge_rows(item_users, pairs.matrix(centred - self.user_bias[users], "item"),
                            np.c_[self.user_factors, np.ones(n_users)], reg)
            # Items without ratings solve "reg * x = 0": factors and bias exactly 0.
            self.item_factors, self.item_bias = x[:, :k], x[:, k]
            loss, fit_rmse = self._objective(users, items, ratings)
            self.losses.append(loss)
            self.train_rmse.append(fit_rmse)

    def fit_user(self, support_ids: np.ndarray, support_ratings: np.ndarray) -> tuple[np.ndarray, float]:
        """A new user's ``(p_u [factors], b_u)``: ridge on the support, items fixed."""
        k = self.factors
        design = np.hstack([self.item_factors[support_ids], np.ones((len(support_ids), 1))])
        target = support_ratings - self.global_mean - self.item_bias[support_ids]
        gram = design.T @ design + np.diag(self._reg(self.user_reg_factors, self.user_reg_bias))
        x = np.linalg.solve(gram, design.T @ target)
        return x[:k], float(x[k])

    def _predict(self, support_ids, support_ratings, query_ids) -> np.ndarray:
        p, b = self.fit_user(support_ids, support_ratings)
        return self.global_mean + b + self.item_bias[query_ids] + self.item_factors[query_ids] @ p


def rec_baseline_names() -> list[str]:
    """The rating baselines: the ``classic`` entries of
    :data:`~fewshot_apps.core.registry.MODELS` for the recsys domain."""
    return MODELS.names(domain="recsys", family="classic")


def build_rec_baseline(name: str, dataset, seed: int = 0, **options: Any) -> RatingBaseline:
    """Rating baseline ``name`` (:func:`rec_baseline_names`) fitted on ``dataset``'s
    meta-train ratings.

    ``options`` are the baseline's settings (e.g. ``prior_weight``, ``factors``, ``clip``);
    FewshotError on an unknown name or setting, or on implicit-feedback data (every rating
    is 1: a rating baseline has nothing to fit).
    """
    known = rec_baseline_names()
    if name not in known:
        raise FewshotError(
            f"unknown recommendation baseline {name!r}; known: {', '.join(sorted(known))}"
        )
    if getattr(dataset, "scale", None) is None:
        raise FewshotError(f"{dataset.name}: rating baselines need explicit ratings, not implicit feedback")
    try:
        return MODELS.load(name).from_dataset(dataset, seed=seed, **options)
    except TypeError as err:
        raise FewshotError(f"recommendation baseline {name!r}: {err}") from None
