"""domains/recsys/graph.py: build_graph's guard on rating edges' users. An index that is no
meta-train user's (between them, beyond them all, or negative) is refused with the same
ValueError, never read from another user's slot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fewshot_apps.domains.recsys.features import fit_item_features
from fewshot_apps.domains.recsys.graph import build_graph

TRAIN_USERS = np.array([1, 4, 5])
NEW = np.array([False, False, False, True])


def graph(edge_user):
    items = pd.DataFrame(
        {"genres": ["A", "B", "A|B", "B"], "year": [1990.0, 1991.0, 1992.0, 1993.0]}
    )
    n = len(edge_user)
    return build_graph(
        train_user_index=TRAIN_USERS, edge_user_index=np.asarray(edge_user, dtype=np.int64),
        edge_item_index=np.arange(n) % 3, edge_rating=np.full(n, 3.0),
        edge_timestamp=np.arange(n, dtype=np.float64),
        item_features=fit_item_features(items, None), new_items=NEW,
    )  # fmt: skip


@pytest.mark.parametrize("bad", [-1, -3, 0, 2, 6, 100])
def test_an_edge_of_any_index_that_is_no_meta_train_user_is_refused(bad):
    with pytest.raises(ValueError, match="not a meta-train user"):
        graph([1, 4, bad])


def test_the_last_meta_train_user_is_still_a_node():
    g = graph([1, 4, 5])  # 5: the largest index, the table's last slot
    assert g["user", "rates", "item"].edge_index[0].tolist() == [0, 1, 2]
