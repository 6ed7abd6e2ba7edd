"""core/checkpoints.py, beyond what the training and bad-input tests cover: writing a
checkpoint atomically, the RNG state round trip, and load_checkpoint's checks on
hand-made checkpoints (older ones without a learner spec or tasks, the engine that may
change, which settings may change, and how other tasks are described)."""

from __future__ import annotations

import pytest
import torch

from fewshot_apps.core.checkpoints import (
    load_checkpoint,
    rng_state,
    set_rng_state,
    write_checkpoint,
)
from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.learners import build_learner
from fewshot_apps.core.settings import TrainConfig
from fewshot_apps.errors import FewshotError

torch.set_num_threads(1)

CONFIG = TrainConfig(steps=10, meta_batch_size=2, lr=0.01, seed=3, device="cpu")
TASKS = {"train": ["a", "b", "c"], "valid": ["v1"]}
_DROP = object()  # a key left out of a hand-made checkpoint


def learner(name="maml", **config):
    torch.manual_seed(0)
    return build_learner(name, TableEncoder(torch.randn(12, 3), hidden=4, out_dim=2),
                         "classification", **config)


def checkpoint(model, config=CONFIG, tasks=TASKS, **changes) -> dict:
    ckpt = {"step": 4, "learner": model.state_dict(), "optimizer": {}, "rng": rng_state(
        torch.device("cpu")), "best_valid": 0.7, "best_step": 2, "best_weights": None,
        "bad_evals": 1, "stopped_early": False, "train_config": config.to_dict(),
        "learner_spec": model.describe(), "tasks": tasks}
    ckpt.update(changes)
    return {k: v for k, v in ckpt.items() if v is not _DROP}


def saved(tmp_path, ckpt) -> object:
    path = tmp_path / "checkpoint.pt"
    write_checkpoint(path, ckpt)
    return path


# --------------------------------------------------------------------------- writing


def test_write_checkpoint_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "checkpoint.pt"
    write_checkpoint(path, {"step": 1})
    write_checkpoint(path, {"step": 2})
    assert torch.load(path, weights_only=True) == {"step": 2}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


def test_a_failed_write_leaves_the_previous_checkpoint_whole(tmp_path):
    path = tmp_path / "checkpoint.pt"
    write_checkpoint(path, {"step": 1})
    with pytest.raises(Exception):  # noqa: B017 (pickle's error type varies)
        write_checkpoint(path, {"step": 2, "bad": lambda: None})  # a lambda cannot be saved
    assert torch.load(path, weights_only=True) == {"step": 1}


class _Unpicklable:
    def __reduce__(self):
        raise TypeError("cannot pickle this object")


@pytest.mark.parametrize("make_bad", [lambda: (lambda: None), _Unpicklable],
                         ids=["lambda", "reduce-raises"])
def test_a_failed_write_leaves_no_temporary_file_and_re_raises(tmp_path, make_bad):
    path = tmp_path / "checkpoint.pt"
    write_checkpoint(path, {"step": 1})
    with pytest.raises(Exception):  # noqa: B017 (pickle's error type varies)
        write_checkpoint(path, {"step": 2, "bad": make_bad()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
    assert torch.load(path, weights_only=True) == {"step": 1}


def test_a_failed_first_write_leaves_nothing(tmp_path):
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(Exception):  # noqa: B017 (pickle's error type varies)
        write_checkpoint(path, {"bad": lambda: None})
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- RNG state


def test_rng_state_restores_the_cpu_generator():
    state = rng_state(torch.device("cpu"))
    assert set(state) == {"torch"}  # no CUDA state on the CPU
    first = torch.rand(4)
    set_rng_state(state, torch.device("cpu"))
    assert torch.equal(torch.rand(4), first)


def test_rng_state_survives_a_round_trip_through_a_checkpoint_file(tmp_path):
    path = saved(tmp_path, {"rng": rng_state(torch.device("cpu"))})
    first = torch.rand(3)
    set_rng_state(torch.load(path, weights_only=True)["rng"], torch.device("cpu"))
    assert torch.equal(torch.rand(3), first)


# --------------------------------------------------------------------------- loading


def test_a_matching_checkpoint_is_returned_as_saved(tmp_path):
    model = learner()
    path = saved(tmp_path, checkpoint(model))
    ckpt = load_checkpoint(path, CONFIG, model, TASKS)
    assert (ckpt["step"], ckpt["best_step"], ckpt["best_valid"]) == (4, 2, 0.7)
    assert all(torch.equal(ckpt["learner"][k], v) for k, v in model.state_dict().items())


def test_the_settings_that_may_change_do_not_stop_a_resume(tmp_path):
    model = learner()
    path = saved(tmp_path, checkpoint(model))
    later = TrainConfig(steps=50, meta_batch_size=2, lr=0.01, seed=3, device="auto",
                        eval_every=7, checkpoint_every=9, checkpoint_minutes=None, patience=3,
                        max_minutes=1.0)
    assert load_checkpoint(path, later, model, TASKS)["step"] == 4


@pytest.mark.parametrize("change", [{"meta_batch_size": 4}, {"weight_decay": 0.1},
                                    {"grad_clip": None}, {"seed": 4}])
def test_each_fixed_setting_is_checked(tmp_path, change):
    model = learner()
    path = saved(tmp_path, checkpoint(model))
    (key, value), = change.items()
    other = TrainConfig(**{**CONFIG.to_dict(), **change})
    with pytest.raises(FewshotError, match=rf"other settings \({key} {getattr(CONFIG, key)!r} "
                       rf"-> {value!r}\)"):
        load_checkpoint(path, other, model, TASKS)


def test_an_older_checkpoint_without_learner_spec_or_tasks_is_accepted(tmp_path):
    model = learner()
    path = saved(tmp_path, checkpoint(model, learner_spec=_DROP, tasks=_DROP))
    assert load_checkpoint(path, CONFIG, learner("cnp"), {"train": ["x"]})["step"] == 4


def test_without_this_runs_tasks_the_saved_tasks_are_not_compared(tmp_path):
    model = learner()
    path = saved(tmp_path, checkpoint(model))
    assert load_checkpoint(path, CONFIG, model, None)["step"] == 4


def test_the_engine_may_change_but_not_the_learners_other_settings(tmp_path):
    vmap = learner(engine="vmap")
    path = saved(tmp_path, checkpoint(vmap))
    assert load_checkpoint(path, CONFIG, learner(engine="loop"), TASKS)["step"] == 4
    with pytest.raises(FewshotError, match=r"checkpoint is of learner 'maml' \(classification"):
        load_checkpoint(path, CONFIG, learner(inner_steps=7), TASKS)


def test_a_setting_the_learner_gained_since_the_checkpoint_counts_at_its_default(tmp_path):
    # A checkpoint written before protonet had eval_ridge: the run trained without it, so
    # it resumes as long as the new setting keeps its default; set otherwise, it is refused.
    model = learner("protonet", distance="mahalanobis")
    spec = model.describe()
    del spec["config"]["eval_ridge"]
    path = saved(tmp_path, checkpoint(model, learner_spec=spec))
    assert load_checkpoint(path, CONFIG, model, TASKS)["step"] == 4
    with pytest.raises(FewshotError, match=r"checkpoint is of learner 'protonet' \(classification, "
                                           r"eval_ridge=None\), not 'protonet' \(classification, "
                                           r"eval_ridge=1.0\)"):
        load_checkpoint(path, CONFIG, learner("protonet", distance="mahalanobis",
                                              eval_ridge=1.0), TASKS)


def test_a_checkpoint_that_is_not_a_dict_lists_every_key_it_lacks(tmp_path):
    path = saved(tmp_path, [torch.zeros(2)])
    with pytest.raises(FewshotError, match=r"is not a training checkpoint written by "
                       r"fewshot-apps \(it has no step, learner, optimizer, rng, best_valid, "
                       r"best_step, best_weights, bad_evals, stopped_early\)"):
        load_checkpoint(path, CONFIG, learner(), TASKS)


def test_a_checkpoint_lacking_some_keys_names_those(tmp_path):
    model = learner()
    path = saved(tmp_path, checkpoint(model, optimizer=_DROP, bad_evals=_DROP))
    with pytest.raises(FewshotError, match=r"\(it has no optimizer, bad_evals\); start afresh"):
        load_checkpoint(path, CONFIG, model, TASKS)


def test_the_same_tasks_in_another_order_are_other_tasks(tmp_path):
    model = learner()
    path = saved(tmp_path, checkpoint(model))
    with pytest.raises(FewshotError, match=r"\(train tasks: the same, in another order\)"):
        load_checkpoint(path, CONFIG, model, {"train": ["c", "b", "a"], "valid": ["v1"]})


def test_new_and_gone_tasks_are_counted_per_split(tmp_path):
    model = learner()
    path = saved(tmp_path, checkpoint(model))
    with pytest.raises(FewshotError, match=r"\(train tasks: 1 new \(d\), 1 no longer there "
                       r"\(a\); valid tasks: 1 new \(v2\)\)"):
        load_checkpoint(path, CONFIG, model, {"train": ["b", "c", "d"], "valid": ["v1", "v2"]})


def test_long_lists_of_tasks_are_cut_after_five(tmp_path):
    model = learner()
    path = saved(tmp_path, checkpoint(model))
    now = {"train": TASKS["train"] + [f"n{i}" for i in range(8)], "valid": ["v1"]}
    with pytest.raises(FewshotError, match=r"8 new \(n0, n1, n2, n3, n4, \.\.\. 3 more\)\)"):
        load_checkpoint(path, CONFIG, model, now)
