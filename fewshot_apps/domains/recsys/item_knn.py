"""``item-knn``: item-to-item neighbours, the first recommender an engineer tries.

Two items are similar when the same meta-train users rated them
(:mod:`~fewshot_apps.domains.recsys.co_rating`: cosine of their columns in the binary
user x item matrix, shrunk towards 0 for items rated by few users). A new user's items are ranked
by the summed similarity to the items in their support: what they are likely to watch.
Ratings are predicted as ``item-mean`` predicts them (its shrunk item means plus the user's
shrunk offset), so the rating view of the benchmark shows item-mean's numbers and the
ranking view shows the neighbours'.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from fewshot_apps.errors import FewshotError

from .baselines import ItemMeanBaseline
from .co_rating import item_similarity, rated_matrix


class ItemKNNBaseline(ItemMeanBaseline):
    """``item-knn``. Settings: ``shrinkage=200`` (chosen on validation users of
    ml-latest-small in ``../shared/REFERENCES.md``'s independent run), plus item-mean's."""

    def __init__(self, train, n_items, *, shrinkage: float = 200.0, **kwargs: Any):
        if shrinkage < 0:
            raise FewshotError(f"shrinkage must be >= 0, got {shrinkage}")
        self.shrinkage = float(shrinkage)
        self.similarity = sp.csr_matrix((0, 0))
        super().__init__(train, n_items, **kwargs)

    def settings(self) -> dict:
        return {"shrinkage": self.shrinkage, **super().settings()}

    def _fit(self, users, items, ratings) -> None:
        super()._fit(users, items, ratings)
        _, user_rows = np.unique(users, return_inverse=True)
        rated = rated_matrix(user_rows, items, int(user_rows.max()) + 1, self.n_items)
        self.similarity = item_similarity(rated, self.shrinkage)

    def fit_rank(self, support_ids, support_ratings, query_ids) -> np.ndarray:
        """Ranking scores ``[q]``: each query item's summed similarity to the support items
        (ratings are not used: having rated an item says what the user watches)."""
        support_ids = self._ids(support_ids, "support")
        query_ids = self._ids(query_ids, "query")
        if len(support_ids) == 0:
            return np.zeros(len(query_ids))
        summed = np.asarray(self.similarity[support_ids].sum(axis=0), dtype=np.float64).ravel()
        return summed[query_ids]


__all__ = ["ItemKNNBaseline"]
