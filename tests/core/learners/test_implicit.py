"""The implicit-feedback head and objective every learner gets (rank_loss_weight), and
``fit_rank``'s documented combination of implicit score and predicted label."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.learners import EpisodeBatch, build_learner
from fewshot_apps.core.learners.implicit import ImplicitHead, standardized
from fewshot_apps.core.persistence import load_model, save_model
from fewshot_apps.core.tasks import Episode, Task
from fewshot_apps.errors import FewshotError

torch.set_num_threads(1)

REGRESSION = ["attention", "dkt", "cnp", "hypernet", "maml", "anil", "metasgd", "lstm"]
N_ITEMS, N_CLUSTERS, PER_CLUSTER = 60, 6, 10


def clustered_items(seed: int = 0) -> torch.Tensor:
    """``[N_ITEMS, 8]`` features: items ``c * 10 .. c * 10 + 9`` sit around centre ``c``."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((N_CLUSTERS, 8)) * 3
    x = np.repeat(centres, PER_CLUSTER, axis=0) + 0.3 * rng.standard_normal((N_ITEMS, 8))
    return torch.tensor(x, dtype=torch.float32)


def watching_episode(rng: np.random.Generator, n_negatives: int = 20) -> Episode:
    """A user who watches one cluster's items only: 4 support and 4 query items of it (random
    ratings), negatives drawn uniformly from every other item."""
    cluster = int(rng.integers(N_CLUSTERS))
    own = np.arange(cluster * PER_CLUSTER, (cluster + 1) * PER_CLUSTER)
    watched = rng.choice(own, size=8, replace=False)
    labels = rng.uniform(1, 5, size=8).astype(np.float32)
    task = Task(f"user{cluster}", watched, labels)
    others = np.setdiff1d(np.arange(N_ITEMS), watched)
    return Episode.from_positions(task, np.arange(4), np.arange(4, 8),
                                  negatives=rng.choice(others, n_negatives, replace=False))


def make(name: str, seed: int = 0, **config) -> torch.nn.Module:
    torch.manual_seed(seed)
    encoder = TableEncoder(clustered_items(), hidden=16, out_dim=8, depth=2)
    return build_learner(name, encoder, "regression", **config)


def test_head_scores_have_the_documented_shapes():
    head = ImplicitHead(5)
    support, mask = torch.randn(3, 4, 5), torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0]],
                                                       dtype=torch.bool)
    u = head.task_vectors(support, mask)
    assert u.shape == (3, 5)
    assert head.scores(u, torch.randn(3, 7, 5)).shape == (3, 7)
    # padding rows do not change a task's vector
    changed = support.clone()
    changed[0, 2:] = 100.0
    assert torch.allclose(head.task_vectors(changed, mask)[0], u[0])
    assert head.score_examples(torch.randn(4, 5), torch.randn(9, 5)).shape == (9,)


def test_both_losses_match_a_hand_computation_and_ignore_padding():
    torch.manual_seed(0)
    head = ImplicitHead(3)
    emb = torch.randn(9, 3)
    support = [torch.tensor([0, 1]), torch.tensor([2])]
    positive = [torch.tensor([3]), torch.tensor([4, 5])]
    negative = [torch.tensor([6, 7, 8]), torch.tensor([6])]
    want_bpr, want_softmax = [], []
    for s_i, p_i, n_i in zip(support, positive, negative):
        scores = head.score_examples(emb[s_i], emb)
        pos, neg = scores[p_i], scores[n_i]
        want_bpr.append(torch.nn.functional.softplus(neg[None, :] - pos[:, None]).mean())
        lse = torch.logsumexp(torch.cat([pos[:, None], neg[None, :].expand(len(pos), -1)], 1), 1)
        want_softmax.append((lse - pos).mean())
    got = head.loss(emb, support, positive, negative)
    assert torch.allclose(got, torch.stack(want_bpr).mean(), atol=1e-6)
    got = head.loss(emb, support, positive, negative, kind="softmax")
    assert torch.allclose(got, torch.stack(want_softmax).mean(), atol=1e-6)
    with pytest.raises(FewshotError, match="unknown implicit loss 'hinge'"):
        head.loss(emb, support, positive, negative, kind="hinge")


def test_batch_carries_the_negatives():
    rng = np.random.default_rng(0)
    episodes = [watching_episode(rng) for _ in range(3)]
    batch = EpisodeBatch.from_episodes(episodes)
    assert batch.negative_index is not None and len(batch.negative_index) == 3
    for ep, idx in zip(episodes, batch.negative_index):
        assert np.array_equal(batch.example_ids[idx].numpy(), ep.extras["negatives"])
    plain = [Episode(e.task, e.support_index, e.query_index, e.support_examples,
                     e.support_labels, e.query_examples, e.query_labels) for e in episodes]
    assert EpisodeBatch.from_episodes(plain).negative_index is None


@pytest.mark.parametrize("rank_loss", ["bpr", "softmax"])
def test_implicit_objective_learns_who_watches_what(rank_loss):
    """On clustered items, training the implicit head ranks a user's unseen items of their
    cluster above items of other clusters (AUC near 1 after training, near 0.5 before)."""
    learner = make("cnp", rank_loss_weight=1.0, rank_loss=rank_loss)
    rng = np.random.default_rng(1)
    test = [watching_episode(np.random.default_rng(100 + i)) for i in range(20)]

    def auc() -> float:
        wins = []
        for ep in test:
            scores = learner.implicit_scores(ep.support_examples, np.arange(N_ITEMS)).numpy()
            pos, neg = scores[ep.query_examples], scores[ep.extras["negatives"]]
            wins.append((pos[:, None] > neg[None, :]).mean())
        return float(np.mean(wins))

    def rank_loss() -> float:
        batch = EpisodeBatch.from_episodes(test)
        with torch.no_grad():
            return float(learner.implicit_loss(learner.encode(batch.example_ids), batch))

    before, loss_before = auc(), rank_loss()
    opt = torch.optim.Adam(learner.parameters(), lr=1e-2)
    for _ in range(60):
        opt.zero_grad()
        learner.loss(EpisodeBatch.from_episodes([watching_episode(rng) for _ in range(8)])).backward()
        opt.step()
    after = auc()
    assert rank_loss() < loss_before
    assert after > 0.9 and after > before + 0.2


@pytest.mark.parametrize("name", REGRESSION)
def test_every_learner_trains_the_head_and_ranks(name):
    """The implicit loss reaches the head through each learner's own loss (loop or vmap
    engine), and fit_rank gives one finite score per candidate."""
    learner = make(name, rank_loss_weight=1.0)
    batch = EpisodeBatch.from_episodes([watching_episode(np.random.default_rng(i))
                                        for i in range(3)])
    learner.loss(batch).backward()
    grads = [p.grad for p in learner.implicit.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(float(g.abs().sum()) > 0 for g in grads)
    ep = watching_episode(np.random.default_rng(5))
    candidates = np.setdiff1d(np.arange(N_ITEMS), ep.support_examples)
    scores = learner.fit_rank(ep.support_examples, ep.support_labels, candidates)
    assert scores.shape == candidates.shape and np.isfinite(scores).all()


@pytest.mark.parametrize("name", ["cnp", "metasgd"])
def test_without_the_head_fit_rank_ranks_by_rating(name):
    learner = make(name)  # rank_loss_weight 0: no head, no extra parameters
    assert learner.implicit is None
    assert not any(k.startswith("implicit.") for k in learner.state_dict())
    ep = watching_episode(np.random.default_rng(3))
    candidates = np.setdiff1d(np.arange(N_ITEMS), ep.support_examples)
    batch = EpisodeBatch.from_episodes([ep])
    assert torch.isfinite(learner.loss(batch))  # negatives in the batch are ignored
    ranked = learner.fit_rank(ep.support_examples, ep.support_labels, candidates)
    predicted = learner.fit_predict(ep.support_examples, ep.support_labels, candidates)
    np.testing.assert_allclose(ranked, predicted, rtol=1e-6)


def test_rank_rating_weight_mixes_standardized_scores():
    learner = make("cnp", rank_loss_weight=1.0)
    ep = watching_episode(np.random.default_rng(4))
    candidates = np.setdiff1d(np.arange(N_ITEMS), ep.support_examples)
    predicted = torch.as_tensor(learner.fit_predict(ep.support_examples, ep.support_labels,
                                                    candidates))
    implicit = learner.implicit_scores(ep.support_examples, candidates).double()
    for a in (0.0, 0.3, 1.0):
        learner.config.rank_rating_weight = a
        got = learner.fit_rank(ep.support_examples, ep.support_labels, candidates)
        want = predicted.numpy() if a == 1.0 else (
            (1 - a) * standardized(implicit) + a * standardized(predicted)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        # ratings already predicted (the cold-start evaluation's) give the same ranking
        handed = learner.fit_rank(ep.support_examples, ep.support_labels, candidates,
                                  predicted=predicted.numpy())
        np.testing.assert_allclose(handed, got, rtol=1e-6, atol=1e-9)
    learner.config.rank_rating_weight = None
    assert learner.rank_share == 0.5


def test_save_and_load_keep_the_head_and_the_weight(tmp_path):
    learner = make("cnp", rank_loss_weight=0.5, rank_rating_weight=0.25)
    save_model(learner, tmp_path / "m")
    loaded = load_model(tmp_path / "m", build_encoder=lambda c: TableEncoder(
        clustered_items(), hidden=16, out_dim=8, depth=2))
    assert loaded.config.rank_loss_weight == 0.5 and loaded.rank_share == 0.25
    ep = watching_episode(np.random.default_rng(6))
    candidates = np.setdiff1d(np.arange(N_ITEMS), ep.support_examples)
    learner.eval()
    np.testing.assert_allclose(
        loaded.fit_rank(ep.support_examples, ep.support_labels, candidates),
        learner.fit_rank(ep.support_examples, ep.support_labels, candidates), rtol=1e-5)


def test_a_config_without_the_new_keys_loads_and_ranks_by_rating(tmp_path):
    """A model saved before the implicit head existed: no rank_* keys in its config."""
    import json

    learner = make("cnp")
    save_model(learner, tmp_path / "old")
    path = tmp_path / "old" / "config.json"
    config = json.loads(path.read_text())
    for key in ("rank_loss_weight", "rank_rating_weight"):
        del config["learner"]["config"][key]
    path.write_text(json.dumps(config))
    loaded = load_model(tmp_path / "old", build_encoder=lambda c: TableEncoder(
        clustered_items(), hidden=16, out_dim=8, depth=2))
    assert loaded.implicit is None and loaded.rank_share == 1.0


@pytest.mark.parametrize("bad", [{"rank_loss_weight": -1}, {"rank_loss_weight": "nan"},
                                 {"rank_loss_weight": "lots"}, {"rank_rating_weight": 1.5},
                                 {"rank_rating_weight": -0.1}, {"label_loss_weight": -1},
                                 {"label_loss_weight": 0}, {"rank_loss": "hinge"}])
def test_bad_rank_settings_are_refused(bad):
    with pytest.raises(FewshotError, match="rank_|label_loss_weight"):
        make("cnp", **bad)


def test_label_loss_weight_0_trains_the_implicit_objective_alone():
    """No gradient reaches the rating path (cnp's decoder) from the labels."""
    learner = make("cnp", rank_loss_weight=1.0, label_loss_weight=0.0)
    batch = EpisodeBatch.from_episodes([watching_episode(np.random.default_rng(i))
                                        for i in range(3)])
    learner.loss(batch).backward()
    decoder = [p.grad for n, p in learner.named_parameters() if n.startswith("decoder")]
    assert decoder and all(g is None or float(g.abs().sum()) == 0.0 for g in decoder)
    assert float(next(learner.implicit.parameters()).grad.abs().sum()) > 0


def test_implicit_scores_without_a_head_is_a_clear_error():
    learner = make("cnp")
    with pytest.raises(FewshotError, match="no implicit head"):
        learner.implicit_scores([0, 1], [2, 3])


def test_a_head_with_affinity_adds_its_weighted_log_and_asks_for_it():
    from fewshot_apps.core.learners.implicit import AFFINITY_FLOOR

    torch.manual_seed(0)
    plain, with_affinity = ImplicitHead(4), ImplicitHead(4, affinity=True)
    with_affinity.load_state_dict({**plain.state_dict(), "affinity_weight": torch.tensor(0.5),
                                   "unknown_affinity": torch.tensor(-3.0)})
    support, candidates = torch.randn(3, 4), torch.randn(5, 4)
    affinity = torch.tensor([0.0, 0.01, 0.1, 0.2, 1.0])
    expected = plain.score_examples(support, candidates) + 0.5 * torch.log(affinity + AFFINITY_FLOOR)
    torch.testing.assert_close(with_affinity.score_examples(support, candidates, affinity), expected)
    with pytest.raises(FewshotError, match="support affinity"):
        with_affinity.score_examples(support, candidates)
    # an example the affinity knows nothing about (NaN) gets the learned log-affinity
    unknown = affinity.clone()
    unknown[1] = float("nan")
    got = with_affinity.score_examples(support, candidates, unknown)
    torch.testing.assert_close(got[1], plain.score_examples(support, candidates)[1] + 0.5 * -3.0)
    torch.testing.assert_close(got[[0, 2, 3, 4]], expected[[0, 2, 3, 4]])
    # the loss takes per-episode affinities, padded as the indices are
    embeddings = torch.randn(10, 4)
    idx = [torch.tensor([0, 1]), torch.tensor([2, 3, 4])]
    pos = [torch.tensor([5]), torch.tensor([6, 7])]
    neg = [torch.tensor([8, 9]), torch.tensor([9])]
    high = [torch.full((len(p),), 1.0) for p in pos]
    low = [torch.full((len(n),), 1e-3) for n in neg]
    # positives that go with the support far more than the negatives: a smaller loss
    assert with_affinity.loss(embeddings, idx, pos, neg, positive_affinity=high,
                              negative_affinity=low) < with_affinity.loss(
        embeddings, idx, pos, neg, positive_affinity=low, negative_affinity=high)
