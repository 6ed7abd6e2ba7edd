"""Every learner runs a meta-training step on real Tox21 episodes; the CLI trains and saves."""

import numpy as np
import pytest
import torch

from fewshot_apps.cli import main
from fewshot_apps.core.domain import load_saved_model
from fewshot_apps.core.learners import build_learner, learner_names
from fewshot_apps.core.learners.base import EpisodeBatch
from fewshot_apps.core.tasks import BalancedSampler, sample_episodes
from fewshot_apps.domains.molecules.dataset import load_molecule_dataset
from fewshot_apps.domains.molecules.encoder import MoleculeEncoder


@pytest.fixture(scope="module")
def tox21(data_dir):
    return load_molecule_dataset("tox21", data_dir=data_dir, progress=False)


@pytest.mark.parametrize("name", sorted(learner_names()))
def test_one_step_on_tox21(tox21, name):
    torch.manual_seed(0)
    encoder = MoleculeEncoder(tox21.store, hidden=16, depth=2, out_dim=16, ecfp_hidden=16)
    learner = build_learner(name, encoder, "classification")
    episodes = list(sample_episodes(tox21.task_set().train, BalancedSampler(5, 8), 2, seed=0))
    before = [p.detach().clone() for p in learner.parameters()]
    optimizer = torch.optim.Adam(learner.parameters(), lr=1e-3)
    loss = learner.loss(EpisodeBatch.from_episodes(episodes))
    assert torch.isfinite(loss)
    loss.backward()
    optimizer.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, learner.parameters()))


def test_cli_train_save_load_predict(tox21, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["mol", "train", "--dataset", "tox21", "--learner", "protonet", "--set",
                 "steps=3", "--set", "eval_every=3", "--set", "encoder.hidden=16",
                 "--set", "encoder.depth=1", "--set", "valid_draws=1", "--device", "cpu",
                 "--out", str(out), "--quiet"])
    assert code == 0 and "trained protonet" in capsys.readouterr().out
    for name in ("model.pt", "config.json", "train_log.jsonl"):
        assert (out / name).exists()
    model = load_saved_model(out, tox21)
    task = tox21.task_set().test[0]
    ep = BalancedSampler(5).sample(task, 0)
    a = model.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples[:50])
    b = load_saved_model(out, tox21).fit_predict(
        ep.support_examples, ep.support_labels, ep.query_examples[:50])
    np.testing.assert_array_equal(a, b)
    assert ((a >= 0) & (a <= 1)).all()


def test_unknown_setting_is_a_clear_error(tmp_path, capsys):
    code = main(["mol", "train", "--dataset", "tox21", "--learner", "protonet", "--set",
                 "stepz=3", "--out", str(tmp_path / "x"), "--quiet"])
    assert code == 2 and "unknown setting 'stepz'" in capsys.readouterr().err
