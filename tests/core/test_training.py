"""meta_train: resume reaches the same weights, early stopping, NaN handling, files written."""

from __future__ import annotations

import json
import signal

import numpy as np
import pytest
import torch

from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.learners import build_learner
from fewshot_apps.core.persistence import load_model
from fewshot_apps.core.settings import TrainConfig
from fewshot_apps.core.synthetic import PlantedProblem
from fewshot_apps.core.tasks import BalancedSampler
from fewshot_apps.core.training import TrainingInterrupted, meta_train, seed_everything
from fewshot_apps.core.validation import episode_validator
from fewshot_apps.errors import FewshotError

torch.set_num_threads(1)

PROBLEM = PlantedProblem.make("classification", n_examples=80, n_features=6, seed=0)
TRAIN = PROBLEM.tasks(8, examples_per_task=20, seed=1, prefix="train")
VALID = PROBLEM.tasks(4, examples_per_task=20, seed=2, prefix="valid")
SAMPLER = BalancedSampler(3, n_query=6)


@pytest.fixture(autouse=True)
def python_sigint_handler():
    """Python's own Ctrl-C handler for each test. A shell that starts pytest in the background
    (`make test &`) hands it SIGINT ignored, and training rightly leaves an ignored signal
    alone: the Ctrl-C tests would then see no signal at all."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def learner(seed=0, name="attention", features=None):
    # Dropout makes the run depend on the torch RNG, which a resume must restore.
    seed_everything(seed)
    encoder = TableEncoder(
        PROBLEM.features if features is None else features, hidden=8, out_dim=4, dropout=0.2
    )
    return build_learner(name, encoder, "classification")


def config(**changes):
    base = dict(
        steps=10, meta_batch_size=2, lr=1e-2, eval_every=3, checkpoint_every=5, seed=7, device="cpu"
    )
    return TrainConfig(**{**base, **changes})


def run(out_dir, model, cfg, resume=False, valid_fn=None, **kwargs):
    return meta_train(
        model,
        TRAIN,
        VALID,
        SAMPLER,
        valid_fn,
        cfg,
        out_dir,
        resume=resume,
        progress=False,
        **kwargs,
    )


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def log_lines(out_dir):
    return [json.loads(line) for line in (out_dir / "train_log.jsonl").read_text().splitlines()]


def drop_timing(records):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in records]


def test_resume_after_an_interruption_reaches_the_same_weights(tmp_path):
    validate = episode_validator(VALID, SAMPLER, seed=0)
    straight = learner()
    result = run(tmp_path / "a", straight, config(), valid_fn=validate)
    assert result.steps_run == 10 and result.best_step is not None

    class Interrupt(Exception):
        pass

    calls = []

    def crashing(model):  # killed during the third validation (step 9), after the step-5 checkpoint
        calls.append(1)
        if len(calls) == 3:
            raise Interrupt
        return validate(model)

    with pytest.raises(Interrupt):
        run(tmp_path / "b", learner(), config(), valid_fn=crashing)
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["step"] == 5

    resumed = learner(seed=123)  # other initial weights: everything must come from the checkpoint
    again = run(tmp_path / "b", resumed, config(), resume=True, valid_fn=validate)
    assert (again.steps_run, again.best_step, again.best_valid) == (
        10,
        result.best_step,
        result.best_valid,
    )
    assert same_state(straight.state_dict(), resumed.state_dict())  # the selected (best) weights
    last_a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    last_b = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert same_state(last_a["learner"], last_b["learner"])  # the last weights
    assert drop_timing(log_lines(tmp_path / "a")) == drop_timing(log_lines(tmp_path / "b"))


def test_extending_a_finished_run_matches_a_longer_run(tmp_path):
    long = learner()
    run(tmp_path / "a", long, config(eval_every=5))
    short = learner()
    run(tmp_path / "b", short, config(steps=5, eval_every=5))
    extended = learner(seed=99)
    run(tmp_path / "b", extended, config(eval_every=5), resume=True)
    assert same_state(long.state_dict(), extended.state_dict())


def test_same_seed_same_run_other_seed_other_run(tmp_path):
    a, b, c = learner(), learner(), learner()
    run(tmp_path / "a", a, config(steps=4))
    run(tmp_path / "b", b, config(steps=4))
    run(tmp_path / "c", c, config(steps=4, seed=8))
    assert same_state(a.state_dict(), b.state_dict())
    assert not same_state(a.state_dict(), c.state_dict())


def test_files_written(tmp_path):
    model = learner()
    result = run(
        tmp_path,
        model,
        config(steps=6),
        extra_config={"dataset": "planted", "encoder": model.encoder.config()},
    )
    resolved = json.loads((tmp_path / "config.json").read_text())
    assert resolved["learner"]["name"] == "attention" and resolved["dataset"] == "planted"
    assert resolved["train"]["steps"] == 6 and resolved["sampler"] == {
        "type": "BalancedSampler",
        "shots": 3,
        "n_query": 6,
    }
    lines = log_lines(tmp_path)
    assert [r["step"] for r in lines] == list(range(1, 7))
    assert all(np.isfinite(r["loss"]) for r in lines)
    assert [r["step"] for r in lines if "valid" in r] == [3, 6]
    assert result.best_valid == max(r["valid"] for r in lines if "valid" in r)
    loaded = load_model(tmp_path)
    ep = BalancedSampler(3).sample(VALID[0], 0)
    assert np.array_equal(
        loaded.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples),
        model.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples),
    )


def test_early_stopping_and_model_selection(tmp_path):
    scores = iter([0.9, 0.5, 0.4, 0.3, 0.2])
    snapshots = []

    def valid_fn(model):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(scores)

    model = learner()
    result = run(tmp_path, model, config(steps=100, eval_every=2, patience=2), valid_fn=valid_fn)
    assert result.stopped_early and result.steps_run == 6
    assert (result.best_step, result.best_valid) == (2, 0.9)
    assert same_state(model.state_dict(), snapshots[0])  # the best, not the last, weights


def test_nan_loss_names_the_step_and_what_to_try(tmp_path):
    features = PROBLEM.features.clone()
    features[:] = float("nan")
    with pytest.raises(
        FewshotError, match=r"step 1: the meta-training loss is nan.*lower lr.*grad_clip"
    ):
        run(tmp_path, learner(features=features), config())


def test_resume_needs_a_matching_checkpoint(tmp_path):
    with pytest.raises(FewshotError, match="no checkpoint to resume from"):
        run(tmp_path, learner(), config(), resume=True)
    run(tmp_path, learner(), config(steps=5))
    with pytest.raises(FewshotError, match=r"other settings \(lr 0.01 -> 0.1\)"):
        run(tmp_path, learner(), config(lr=0.1), resume=True)


def test_train_config_from_dict():
    cfg = TrainConfig.from_dict(
        {"steps": "50", "grad_clip": "none", "patience": "3", "device": "cpu"}
    )
    assert (cfg.steps, cfg.grad_clip, cfg.patience) == (50, None, 3)
    with pytest.raises(FewshotError, match="unknown option"):
        TrainConfig.from_dict({"step": 3})


# Every device this machine has (CI: the CPU only; a GPU machine adds CUDA), never skipped.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", ["protonet", "cnp", "maml", "lstm"])
def test_trains_and_resumes_on_device(tmp_path, name, device):
    model = learner(name=name)
    result = run(tmp_path, model, config(steps=4, device=device))
    assert result.steps_run == 4 and model.device.type == device
    resumed = learner(name=name, seed=5)
    run(tmp_path, resumed, config(steps=6, device=device), resume=True)
    ep = BalancedSampler(3).sample(VALID[0], 0)
    out = resumed.fit_predict(ep.support_examples, ep.support_labels, ep.query_examples)
    assert np.isfinite(out).all()


def test_resume_refuses_another_learner(tmp_path):
    run(tmp_path, learner(), config(steps=5))
    other = learner()
    other.config.temperature = 0.5  # same shapes, other settings
    with pytest.raises(FewshotError, match="checkpoint is of learner 'attention'"):
        run(tmp_path, other, config(), resume=True)


def test_time_budget_validates_and_stops(tmp_path):
    result = run(tmp_path, learner(), config(steps=50, max_minutes=1e-9))
    assert result.steps_run == 1 and result.stopped_early
    (record,) = log_lines(tmp_path)
    assert record["out_of_time"] and "valid" in record


def test_each_meta_batch_hides_its_own_tasks_from_an_encoder_that_can(tmp_path):
    model = learner()
    calls, losses = [], []
    model.encoder.hide_tasks = lambda names: calls.append(list(names))
    loss = model.loss

    def recording_loss(batch):
        losses.append(list(batch.tasks))
        assert calls[-1] == list(batch.tasks)  # hidden while its loss is computed
        return loss(batch)

    model.loss = recording_loss
    run(tmp_path / "run", model, config(steps=3, eval_every=100))
    assert len(losses) == 3 and all(len(names) == 2 for names in losses)
    assert calls == [x for names in losses for x in (names, [])]  # shown again after each


def signal_at_step(model, step, *signums):
    """``model`` sends itself ``signums`` while computing the loss of ``step`` (mid-step)."""
    import os

    calls = []
    loss = model.loss

    def loss_then_signal(batch):
        calls.append(1)
        if len(calls) == step:
            for signum in signums:
                os.kill(os.getpid(), signum)
        return loss(batch)

    model.loss = loss_then_signal
    return model


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_checkpoints_the_step_and_resume_reaches_the_same_run(tmp_path, signum):
    validate = episode_validator(VALID, SAMPLER, seed=0)
    cfg = config(steps=20, eval_every=3, checkpoint_every=500, patience=4)
    straight = learner()
    result = run(tmp_path / "a", straight, cfg, valid_fn=validate)
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)

    with pytest.raises(TrainingInterrupted) as caught:
        run(tmp_path / "b", signal_at_step(learner(), 7, signum), cfg, valid_fn=validate)
    ckpt_path = tmp_path / "b" / "checkpoint.pt"
    assert isinstance(caught.value, KeyboardInterrupt)  # Ctrl-C handlers see it as one
    assert (caught.value.signum, caught.value.step, caught.value.checkpoint) == (
        signum, 7, ckpt_path)
    assert str(caught.value) == (
        f"interrupted at step 7 ({signal.Signals(signum).name}); checkpoint written to "
        f"{ckpt_path}; continue with --resume (resume=True)")
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    assert not (tmp_path / "b" / "model.pt").exists()
    # The step under way was finished: its log line, and the validation state of step 7.
    ckpt = torch.load(ckpt_path, weights_only=True)
    at_6 = log_lines(tmp_path / "a")[5]
    assert ckpt["step"] == 7 and [r["step"] for r in log_lines(tmp_path / "b")] == list(
        range(1, 8))
    assert (ckpt["best_step"], ckpt["best_valid"]) == (at_6["best_step"], at_6["best_valid"])
    evals = [r for r in log_lines(tmp_path / "a")[:7] if "valid" in r]
    assert ckpt["bad_evals"] == sum(r["step"] > at_6["best_step"] for r in evals)

    resumed = learner(seed=123)  # everything must come from the checkpoint
    again = run(tmp_path / "b", resumed, cfg, resume=True, valid_fn=validate)
    assert (again.steps_run, again.best_step, again.best_valid, again.stopped_early) == (
        result.steps_run, result.best_step, result.best_valid, result.stopped_early)
    assert same_state(straight.state_dict(), resumed.state_dict())  # the selected weights
    last_a = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)
    last_b = torch.load(ckpt_path, weights_only=True)
    assert same_state(last_a["learner"], last_b["learner"])  # the last weights
    assert drop_timing(log_lines(tmp_path / "a")) == drop_timing(log_lines(tmp_path / "b"))


def test_a_second_signal_stops_at_once(tmp_path):
    cfg = config(steps=20, checkpoint_every=500)
    with pytest.raises(KeyboardInterrupt) as caught:
        run(tmp_path, signal_at_step(learner(), 3, signal.SIGINT, signal.SIGINT), cfg)
    assert not isinstance(caught.value, TrainingInterrupted)
    assert not (tmp_path / "checkpoint.pt").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_checkpoints_by_time_as_well_as_by_steps(tmp_path):
    def crash_at_step_4(model):
        loss, calls = model.loss, []

        def crashing(batch):
            calls.append(1)
            if len(calls) == 4:
                raise RuntimeError("killed")
            return loss(batch)

        model.loss = crashing
        return model

    with pytest.raises(RuntimeError):
        run(tmp_path / "a", crash_at_step_4(learner()), config(checkpoint_every=500,
                                                               checkpoint_minutes=None))
    assert not (tmp_path / "a" / "checkpoint.pt").exists()
    with pytest.raises(RuntimeError):
        run(tmp_path / "b", crash_at_step_4(learner()), config(checkpoint_every=500,
                                                               checkpoint_minutes=1e-9))
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)["step"] == 3
    assert TrainConfig().checkpoint_minutes == 10


def test_meta_train_outside_the_main_thread_installs_no_handler(tmp_path):
    import threading

    outcome = []
    thread = threading.Thread(
        target=lambda: outcome.append(run(tmp_path, learner(), config(steps=2))))
    thread.start()
    thread.join()
    assert outcome and outcome[0].steps_run == 2


def test_the_model_and_checkpoint_record_the_tasks(tmp_path):
    from fewshot_apps.core.persistence import read_model_tasks

    run(tmp_path, learner(), config(steps=2))
    record = {"train": [t.name for t in TRAIN], "valid": [t.name for t in VALID]}
    assert read_model_tasks(tmp_path) == record
    saved = json.loads((tmp_path / "config.json").read_text())["tasks"]
    assert (saved["file"], saved["n_train"], saved["n_valid"]) == ("tasks.json", 8, 4)
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["tasks"] == record


def test_resume_refuses_other_tasks(tmp_path):
    run(tmp_path, learner(), config(steps=2))
    with pytest.raises(FewshotError, match=r"checkpoint was trained on other tasks than this "
                       r"run's \(train tasks: 1 no longer there \(train7\)\)"):
        meta_train(learner(), TRAIN[:7], VALID, SAMPLER, None, config(), tmp_path,
                   resume=True, progress=False)


@pytest.mark.parametrize("signum,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_mol_train_interrupted_says_what_was_saved_and_resumes(tmp_path, monkeypatch, capsys,
                                                               signum, code):
    import os

    import fewshot_apps.core.training as training
    from fewshot_apps.cli import main

    smiles = ["C" * n + "O" for n in range(1, 16)] + ["C" * n + "N" for n in range(1, 16)]
    rows = ["smiles,a1,a2,a3,a4"] + [
        f"{s},{i % 2},{(i // 2) % 2},{(i // 3) % 2},{(i + 1) % 2}" for i, s in enumerate(smiles)]
    (tmp_path / "assays.csv").write_text("\n".join(rows) + "\n")
    sample = training.sample_episodes

    def sample_then_signal(tasks, sampler, n, seed):
        if seed == training.derive_seed(0, "episodes", 2):  # during step 2
            os.kill(os.getpid(), signum)
        return sample(tasks, sampler, n, seed=seed)

    monkeypatch.setattr(training, "sample_episodes", sample_then_signal)
    out = tmp_path / "run"
    args = ["mol", "train", "--dataset", str(tmp_path / "assays.csv"), "--learner", "protonet",
            "--set", "steps=3", "--set", "eval_every=1", "--set", "k_shot=2", "--set",
            "n_query=4", "--set", "meta_batch_size=2", "--set", "encoder.hidden=8", "--set",
            "encoder.depth=1", "--set", "valid_draws=1", "--device", "cpu", "--out", str(out),
            "--quiet"]
    assert main(args) == code
    err = capsys.readouterr().err
    assert (f"interrupted at step 2 ({signal.Signals(signum).name}); checkpoint written to "
            f"{out / 'checkpoint.pt'}; continue with --resume") in err
    assert "Traceback" not in err
    monkeypatch.setattr(training, "sample_episodes", sample)
    assert main(args + ["--resume"]) == 0
    assert [r["step"] for r in log_lines(out)] == [1, 2, 3]
    assert (out / "model.pt").exists() and (out / "tasks.json").exists()
