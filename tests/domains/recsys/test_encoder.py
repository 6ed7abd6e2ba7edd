"""domains/recsys/encoder.py: the GNN item encoder over the user–item–attribute graph."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from fewshot_apps.core.encoders import supports_last_layer_split, tasks_hidden
from fewshot_apps.domains.recsys.encoder import ItemGraphEncoder, graph_shape
from fewshot_apps.domains.recsys.features import fit_item_features
from fewshot_apps.domains.recsys.graph import build_graph
from fewshot_apps.errors import FewshotError

# 7 items (item 5 new, item 6 unrated); meta-train users u1, u4, u5 (vocabulary 1, 4, 5).
# Item 3 is rated by u1 only.
EDGE_USER = np.array([1, 1, 1, 4, 4, 5])
EDGE_ITEM = np.array([0, 1, 3, 1, 2, 0])
RATINGS = np.array([4.0, 2.0, 5.0, 5.0, 3.0, 1.0])


def make_graph(ratings=RATINGS):
    items = pd.DataFrame(
        {
            "genres": ["A|B", "B", "", "A", "C", "C", "A"],
            "year": [1990.0, 1991.0, np.nan, 1993.0, 1994.0, 1995.0, 1996.0],
        }
    )
    tags = pd.DataFrame({"item_index": [0, 0, 3, 5], "tag": ["x", "x", "y", "x"]})
    return build_graph(
        np.array([1, 4, 5]), EDGE_USER, EDGE_ITEM, np.asarray(ratings, dtype=np.float64),
        np.arange(len(EDGE_USER), dtype=np.float64), fit_item_features(items, tags, min_tag_count=1),
        np.array([0, 0, 0, 0, 0, 1, 0], dtype=bool), user_names=["u1", "u4", "u5"],
    )  # fmt: skip


def encoder(graph=None, seed=0, **kw):
    torch.manual_seed(seed)
    # no simulated new items unless asked: the hiding tests below hide users only
    settings = {"hidden": 8, "depth": 2, "out_dim": 4, "new_item_rate": 0.0, **kw}
    return ItemGraphEncoder(make_graph() if graph is None else graph, **settings).eval()


ALL = torch.arange(7)


def test_graph_shape_fixes_the_parameters():
    g = make_graph()
    shape = graph_shape(g)
    assert shape == {"n_items": 7, "item_dim": g["item"].x.shape[1], "n_users": 3, "user_dim": 0,
                     "n_genres": 3, "n_tags": 2}  # fmt: skip
    enc = encoder(g)
    assert enc.item_proj.weight.shape == (8, shape["item_dim"])
    assert enc.user_emb.weight.shape == (3, 8)
    assert enc.genre_emb.weight.shape == (3, 8) and enc.tag_emb.weight.shape == (2, 8)
    assert enc.last.weight.shape == (4, 8) and enc.item_id is None and enc.user_proj is None
    assert len(enc.convs) == 2 and len(enc.norms) == 2


def test_every_item_gets_a_unit_length_embedding():
    enc = encoder()
    ids = torch.tensor([0, 5, 6, 6, 2])  # a new item and an unrated one included
    out = enc(ids)
    assert out.shape == (5, 4) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(out[2], out[3])
    assert enc.all_items().shape == (7, 8)
    assert enc.forward_trunk(ids).shape == (5, 8)
    assert enc.out_dim == 4


def test_embeddings_of_items_do_not_depend_on_the_batch():
    enc = encoder()
    full = enc(ALL)
    torch.testing.assert_close(enc(torch.tensor([3, 1])), full[[3, 1]])


def test_last_layer_split():
    enc = encoder()
    assert supports_last_layer_split(enc)
    params = dict(enc.named_parameters())
    assert set(enc.last_layer_names()) <= set(params)
    hidden = enc.forward_trunk(ALL)
    torch.testing.assert_close(enc.forward_last(hidden), enc(ALL))
    own = {n: params[n] for n in enc.last_layer_names()}
    torch.testing.assert_close(enc.forward_last(hidden, own), enc(ALL))
    other = {n: torch.randn_like(p) for n, p in own.items()}
    out = enc.forward_last(hidden, other)
    assert not torch.allclose(out, enc(ALL))
    torch.testing.assert_close(out.norm(dim=1), torch.ones(7))


@pytest.mark.parametrize("item_ids", [False, True])
def test_config_round_trip_gives_identical_outputs(item_ids):
    enc = encoder(item_ids=item_ids, dropout=0.3)
    if item_ids:  # make the (zero-initialized) id embeddings matter
        with torch.no_grad():
            enc.item_id.weight.normal_()
    cfg = enc.config()
    assert json.loads(json.dumps(cfg)) == cfg
    assert cfg["name"] == "item-graph" and cfg["shape"] == graph_shape(make_graph())
    assert (cfg["item_ids"], cfg["rating_prior"], cfg["dropout"]) == (item_ids, True, 0.3)
    rebuilt = ItemGraphEncoder.from_config(json.loads(json.dumps(cfg)), make_graph())
    rebuilt.load_state_dict(enc.state_dict())
    rebuilt.eval()
    assert rebuilt.config() == cfg
    torch.testing.assert_close(rebuilt(ALL), enc(ALL), rtol=0, atol=0)
    torch.testing.assert_close(rebuilt.label_prior(ALL), enc.label_prior(ALL))


def test_a_config_saved_before_the_settings_existed_keeps_its_old_behaviour():
    cfg = encoder().config()
    del cfg["item_ids"], cfg["rating_prior"]
    old = ItemGraphEncoder.from_config(cfg, make_graph())
    assert old.settings["item_ids"] is True and old.item_id is not None
    assert old.label_prior(ALL) is None


def test_the_graph_is_not_in_the_weights_and_must_match_them():
    enc = encoder()
    assert not any("graph" in k for k in enc.state_dict())
    bare = ItemGraphEncoder.from_config(enc.config())  # e.g. a loaded model before set_graph
    for call in (lambda: bare(ALL), lambda: bare.label_prior(ALL), lambda: bare.hide_tasks(["u1"])):
        with pytest.raises(ValueError, match="no graph: call set_graph"):
            call()
    bare.load_state_dict(enc.state_dict())
    bare.set_graph(make_graph())
    bare.eval()
    torch.testing.assert_close(bare(ALL), enc(ALL), rtol=0, atol=0)
    smaller = dict(enc.config()["shape"], n_items=6)
    with pytest.raises(ValueError, match="differ from the encoder's"):
        ItemGraphEncoder(shape=smaller).set_graph(make_graph())
    with pytest.raises(ValueError, match="needs a graph or its shape"):
        ItemGraphEncoder()


def test_label_prior_is_the_graphs_rating_prior():
    enc = encoder()
    g = enc.graph
    ids = torch.tensor([6, 0, 3])
    prior = enc.label_prior(ids)
    assert prior.shape == (3,)
    torch.testing.assert_close(prior, g["item"].rating_prior[ids])
    assert prior[0].item() == pytest.approx(g.rating_mean)  # unrated: the global mean
    assert encoder(rating_prior=False).label_prior(ids) is None


def test_hiding_a_user_removes_their_ratings_then_shows_them_again():
    enc = encoder()
    before, prior = enc(ALL), enc.label_prior(ALL)
    with tasks_hidden(enc, ["u1", "not-a-graph-user"]):
        hidden_prior = enc.label_prior(ALL)
        hidden = enc(ALL)
    # item 3 was rated by u1 only: back at the global mean; items u1 never rated keep theirs
    assert hidden_prior[3].item() == pytest.approx(enc.graph.rating_mean)
    assert prior[3].item() != pytest.approx(enc.graph.rating_mean)
    for i in (2, 4, 5, 6):
        assert hidden_prior[i] == prior[i]
    assert hidden_prior[0] != prior[0] and hidden_prior[1] != prior[1]
    assert not torch.allclose(hidden, before)
    # shown again, exactly as before; the graph itself was never changed
    torch.testing.assert_close(enc(ALL), before, rtol=0, atol=0)
    torch.testing.assert_close(enc.label_prior(ALL), prior, rtol=0, atol=0)
    assert enc.graph["user", "rates", "item"].edge_index.shape == (2, 6)
    # names that are not graph users change nothing
    enc.hide_tasks(["someone-else"])
    torch.testing.assert_close(enc(ALL), before, rtol=0, atol=0)
    enc.hide_tasks(())


def test_new_item_rate_makes_a_seeded_share_of_rated_items_look_new_during_meta_training():
    """With ``new_item_rate``, each meta-batch also hides every rating of some rated items:
    their prior falls back to the global mean as a new item's does; the draw follows torch's
    seed; ``()`` shows everything again; the setting round-trips through the config."""
    enc = encoder(new_item_rate=0.5)
    prior = enc.label_prior(ALL)
    rated = {0, 1, 2, 3}
    draws = []
    for seed in (0, 0, 1, 2, 3):
        torch.manual_seed(seed)
        enc.hide_tasks(["not-a-graph-user"])  # no user hidden: only the simulated new items
        kept = set(enc._view["rates"][1].tolist()) if enc._view is not None else rated
        now_new = rated - kept
        hidden_prior = enc.label_prior(ALL)
        for i in now_new:
            assert hidden_prior[i].item() == pytest.approx(enc.graph.rating_mean)
        for i in kept | {4, 5, 6}:
            assert hidden_prior[i] == prior[i]
        draws.append(frozenset(now_new))
        enc.hide_tasks(())
        torch.testing.assert_close(enc.label_prior(ALL), prior, rtol=0, atol=0)
    assert draws[0] == draws[1]  # the same seed, the same items
    assert len(set(draws)) > 1 and any(draws)  # other seeds, other items
    assert ItemGraphEncoder.from_config(enc.config(), enc.graph).settings["new_item_rate"] == 0.5
    assert ItemGraphEncoder(make_graph()).settings["new_item_rate"] == 0.2  # the default
    saved_before = {k: v for k, v in enc.config().items() if k != "new_item_rate"}
    assert ItemGraphEncoder.from_config(saved_before, enc.graph).settings["new_item_rate"] == 0
    with pytest.raises(FewshotError, match="new_item_rate"):
        encoder(new_item_rate=1.0)


def test_a_hidden_users_ratings_do_not_reach_the_embeddings():
    """Two graphs that differ only in u1's ratings (swapped between u1's items, so that the
    global mean and scale stay the same) give the same embeddings while u1 is hidden."""
    swapped = RATINGS.copy()
    swapped[[0, 1]] = swapped[[1, 0]]
    a, b = encoder(make_graph()), encoder(make_graph(swapped))
    assert not torch.allclose(a(ALL), b(ALL))  # visible, u1's ratings matter
    a.hide_tasks(["u1"])
    b.hide_tasks(["u1"])
    torch.testing.assert_close(a(ALL), b(ALL))
    torch.testing.assert_close(a.label_prior(ALL), b.label_prior(ALL))
    # a new graph clears the hidden view
    a.set_graph(make_graph(swapped))
    b.hide_tasks(())
    torch.testing.assert_close(a(ALL), b(ALL))


def test_dropout_is_active_in_training_only():
    enc = encoder(dropout=0.5)
    enc.train()
    assert not torch.equal(enc(ALL), enc(ALL))
    enc.eval()
    torch.testing.assert_close(enc(ALL), enc(ALL))


def test_support_affinity_is_the_mean_shrunk_cosine_over_the_graphs_raters():
    """By hand on the toy graph (u1: items 0, 1, 3; u4: 1, 2; u5: 0), shrinkage 1: item 0 and
    item 1 share rater u1, item 0 has 2 raters, item 1 has 2, so sim(0, 1) = 1 / (2 + 1)."""
    enc = encoder(affinity_shrinkage=1.0)
    got = enc.support_affinity(torch.tensor([1, 3]), torch.tensor([0, 2, 1, 6]))
    sim_0_1, sim_0_3 = 1 / (2 + 1), 1 / (np.sqrt(2 * 1) + 1)
    sim_2_1, sim_2_3 = 1 / (np.sqrt(1 * 2) + 1), 0.0
    expected = [(sim_0_1 + sim_0_3) / 2, (sim_2_1 + sim_2_3) / 2,
                (0.0 + 1 / (np.sqrt(2 * 1) + 1)) / 2,  # a support item is not its own match
                float("nan")]  # item 6: nobody rated it, no evidence either way
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float32), equal_nan=True)
    # hiding u1 removes every co-rating through u1: nothing is left between 0, 1 and 3
    with tasks_hidden(enc, ["u1"]):
        hidden = enc.support_affinity(torch.tensor([1, 3]), torch.tensor([0, 2]))
    torch.testing.assert_close(hidden, torch.tensor([0.0, (1 / (1 + 1)) / 2]))
    torch.testing.assert_close(enc.support_affinity(torch.tensor([1, 3]), torch.tensor([0, 2, 1, 6])),
                               got, equal_nan=True)  # shown again
    assert encoder(support_affinity=False).support_affinity(torch.tensor([1]), ALL) is None


def test_support_affinity_settings_round_trip_and_old_models_load_without_it():
    enc = encoder(affinity_shrinkage=50.0)
    assert enc.has_support_affinity and enc.settings["affinity_shrinkage"] == 50.0
    assert ItemGraphEncoder.from_config(enc.config(), enc.graph).settings == enc.settings
    saved_before = {k: v for k, v in enc.config().items()
                    if k not in ("support_affinity", "affinity_shrinkage")}
    assert not ItemGraphEncoder.from_config(saved_before, enc.graph).has_support_affinity
    with pytest.raises(FewshotError, match="affinity_shrinkage"):
        encoder(affinity_shrinkage=-1.0)
