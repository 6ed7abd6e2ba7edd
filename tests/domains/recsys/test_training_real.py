"""Every rating learner runs a meta-training step on real ml-latest-small user episodes;
the item graph encoder embeds every item; `rec train` trains and saves."""

import numpy as np
import pytest
import torch

from fewshot_apps.cli import main
from fewshot_apps.core.domain import load_saved_model
from fewshot_apps.core.learners import build_learner, learner_class, learner_names
from fewshot_apps.core.learners.base import EpisodeBatch
from fewshot_apps.core.tasks import sample_episodes
from fewshot_apps.domains.recsys.dataset import load_recsys_dataset
from fewshot_apps.domains.recsys.encoder import ItemGraphEncoder
from fewshot_apps.domains.recsys.episodes import ColdStartSampler
from fewshot_apps.domains.recsys.graph import SHRINK_RATINGS
from fewshot_apps.errors import FewshotError

REGRESSION = sorted(n for n in learner_names() if "regression" in learner_class(n).SUPPORTED_KINDS)


@pytest.fixture(scope="module")
def ml(data_dir):
    return load_recsys_dataset("movielens-latest-small", data_dir=data_dir)


def test_every_item_gets_an_embedding_new_items_included(ml):
    encoder = ItemGraphEncoder(ml.graph, hidden=16, depth=2, out_dim=8)
    new = torch.as_tensor(ml.new_items.mask.nonzero()[0][:5])
    assert len(new) == 5
    emb = encoder(torch.arange(ml.graph["item"].num_nodes))
    assert emb.shape == (ml.graph["item"].num_nodes, 8) and torch.isfinite(emb).all()
    assert torch.isfinite(encoder(new)).all()


@pytest.mark.parametrize("name", REGRESSION)
def test_one_step_on_movielens(ml, name):
    torch.manual_seed(0)
    learner = build_learner(name, ItemGraphEncoder(ml.graph, hidden=16, depth=1, out_dim=16),
                            "regression")
    episodes = list(sample_episodes(ml.taskset.train, ColdStartSampler(5, 10), 2, seed=0))
    loss = learner.loss(EpisodeBatch.from_episodes(episodes))
    assert torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in learner.parameters())


def test_protonet_refuses_ratings(ml):
    with pytest.raises(FewshotError, match="classification"):
        build_learner("protonet", ItemGraphEncoder(ml.graph, hidden=8, depth=1, out_dim=8),
                      "regression")


def test_cli_rec_train_and_reload(ml, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["rec", "train", "--dataset", "movielens-latest-small", "--learner", "attention",
                 "--set", "steps=2", "--set", "eval_every=2", "--set", "encoder.hidden=8",
                 "--set", "encoder.depth=1", "--device", "cpu", "--out", str(out), "--quiet"])
    assert code == 0 and "trained attention" in capsys.readouterr().out
    model = load_saved_model(out, ml)
    ep = ColdStartSampler(5, 10).sample(ml.taskset.test[0], 0)
    pred = model.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
    assert pred.shape == (10,) and ((pred > -1) & (pred < 7)).all()


def test_a_model_refuses_another_user_split(ml, tmp_path, data_dir):
    """Trained on the seed-1 split: the seed-0 data set is refused (its test users include the
    model's training users); loading by name rebuilds the seed-1 split from the config."""
    from fewshot_apps.api import load_model
    from fewshot_apps.core.fit import train_learner

    other = load_recsys_dataset("movielens-latest-small", data_dir=data_dir, seed=1)
    assert other.split_fingerprint() != ml.split_fingerprint()
    settings = {"steps": 1, "eval_every": 1, "encoder.hidden": 8, "encoder.depth": 1,
                "encoder.out_dim": 8, "device": "cpu"}
    train_learner(other, "cnp", tmp_path / "m", settings, progress=False)
    with pytest.raises(FewshotError, match="another user split"):
        load_saved_model(tmp_path / "m", ml)
    with pytest.raises(FewshotError, match="another user split"):
        load_model(tmp_path / "m", dataset=ml)
    reloaded = load_model(tmp_path / "m")
    assert reloaded.rec_dataset.split_fingerprint() == other.split_fingerprint()
    assert reloaded.rec_dataset.config.seed == 1


@pytest.mark.parametrize("item_ids", [False, True])
def test_item_id_embeddings_are_an_option_that_survives_the_config(ml, item_ids):
    """Default ``item_ids=False``: no per-item parameters; items differ only by features,
    rating statistics and neighbourhood. The setting survives the saved config."""
    kwargs = {"item_ids": True} if item_ids else {}
    encoder = ItemGraphEncoder(ml.graph, hidden=16, depth=1, out_dim=8, **kwargs)
    has_ids = any(name.startswith("item_id") for name, _ in encoder.named_parameters())
    assert has_ids == item_ids
    emb = encoder(torch.arange(20))
    assert emb.shape == (20, 8) and torch.isfinite(emb).all()
    again = ItemGraphEncoder.from_config(encoder.config(), ml.graph)
    assert (again.item_id is not None) == item_ids and again.settings == encoder.settings
    # a model saved before the option existed had id embeddings: it loads with them
    older = {k: v for k, v in encoder.config().items() if k not in ("item_ids", "rating_prior")}
    assert ItemGraphEncoder.from_config(older, ml.graph).item_id is not None


def test_rating_prior_is_each_items_shrunk_mean(ml):
    rates = ml.graph["user", "rates", "item"]
    items = rates.edge_index[1].numpy()
    ratings = rates.edge_attr[:, 0].double().numpy()
    mean = ratings.mean()
    top = int(np.bincount(items).argmax())
    mine = ratings[items == top]
    expected = mean + (mine - mean).sum() / (len(mine) + SHRINK_RATINGS)
    prior = ml.graph["item"].rating_prior
    assert prior[top].item() == pytest.approx(expected, abs=1e-4)
    new = torch.as_tensor(ml.new_items.mask)
    assert new.any() and torch.allclose(prior[new], torch.full_like(prior[new], mean))

    encoder = ItemGraphEncoder(ml.graph, hidden=8, depth=1, out_dim=8)
    assert torch.equal(encoder.label_prior(torch.tensor([top, 0])), prior[[top, 0]])
    # a model saved before the setting existed keeps its behaviour: no prior
    saved = {k: v for k, v in encoder.config().items() if k != "rating_prior"}
    assert ItemGraphEncoder.from_config(saved, ml.graph).label_prior(torch.tensor([top])) is None


def test_hiding_a_meta_train_user_removes_their_ratings_from_the_graph(ml):
    # users only (no simulated new items: their edges would leave too)
    encoder = ItemGraphEncoder(ml.graph, hidden=8, depth=1, out_dim=8, new_item_rate=0.0).eval()
    user = ml.taskset.train[0]
    rated = torch.as_tensor(user.examples)
    before_prior, before = encoder.label_prior(rated), encoder(rated)
    encoder.hide_tasks([user.name, "not-a-graph-user"])
    assert encoder._view["rates"].shape[1] == (
        ml.graph["user", "rates", "item"].edge_index.shape[1] - len(user.examples))
    # the prior of an item they rated is the shrunk mean of the other users' ratings
    rates = ml.graph["user", "rates", "item"]
    node = ml.graph["user"].task_name.index(user.name)
    item = int(user.examples[0])
    others = rates.edge_attr[(rates.edge_index[1] == item) & (rates.edge_index[0] != node), 0]
    mean = ml.graph.rating_mean
    expected = mean + (others.double() - mean).sum().item() / (len(others) + SHRINK_RATINGS)
    assert encoder.label_prior(torch.tensor([item])).item() == pytest.approx(expected, abs=1e-4)
    assert not torch.allclose(encoder(rated), before)
    encoder.hide_tasks(())
    assert torch.equal(encoder.label_prior(rated), before_prior)
    assert torch.equal(encoder(rated), before)
