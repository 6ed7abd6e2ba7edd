"""Bad-input corpus: saved models and training checkpoints.

Each case spoils one file of a tiny run (meta-trained for 2 steps on synthetic tasks, no data
set needed) or resumes it wrongly, and checks the FewshotError the user gets: it names the
file and says what is wrong and what to do. Self-contained: a second or two in all.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.learners import build_learner
from fewshot_apps.core.persistence import check_unseen_tasks, load_model
from fewshot_apps.core.settings import TrainConfig
from fewshot_apps.core.synthetic import PlantedProblem
from fewshot_apps.core.tasks import BalancedSampler
from fewshot_apps.core.training import meta_train, seed_everything
from fewshot_apps.errors import FewshotError

torch.set_num_threads(1)

PROBLEM = PlantedProblem.make("classification", n_examples=60, n_features=5, seed=0)
TRAIN = PROBLEM.tasks(6, examples_per_task=20, seed=1, prefix="assay")
VALID = PROBLEM.tasks(2, examples_per_task=20, seed=2, prefix="valid")
SAMPLER = BalancedSampler(3, n_query=6)


def learner(name="protonet"):
    seed_everything(0)
    return build_learner(name, TableEncoder(PROBLEM.features, hidden=8, out_dim=4),
                         "classification")


def train(out: Path, model=None, resume=False, tasks=TRAIN, **changes):
    config = TrainConfig(**{"steps": 2, "meta_batch_size": 2, "eval_every": 2, "seed": 3,
                            "device": "cpu", **changes})
    return meta_train(model or learner(), tasks, VALID, SAMPLER, config=config, out_dir=out,
                      resume=resume, progress=False)


@pytest.fixture
def run(tmp_path) -> Path:
    out = tmp_path / "run"
    train(out)
    return out


CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


# Each case spoils ``run`` and returns (the call that must fail, fragments of its message).


@case
def corrupt_checkpoint(run):
    (run / "checkpoint.pt").write_bytes(b"\x00garbage, not a torch file" * 10)
    return lambda: train(run, resume=True), [
        f"{run / 'checkpoint.pt'}: cannot be read", "truncated or corrupted"]


@case
def truncated_checkpoint(run):
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    return lambda: train(run, resume=True), [
        f"{run / 'checkpoint.pt'}: cannot be read", "truncated or corrupted"]


class Payload:
    """Pickled into a file, an object runs code when loaded: it must never be loaded."""


@case
def checkpoint_with_a_pickled_object(run):
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    torch.save({**ckpt, "extra": Payload()}, run / "checkpoint.pt")
    return lambda: train(run, resume=True), [
        f"{run / 'checkpoint.pt'}: cannot be read", "not plain tensors, safe to load",
        "Payload"]


@case
def weights_with_a_pickled_object(run):
    torch.save({"weight": Payload()}, run / "model.pt")
    return lambda: load_model(run), [
        f"{run / 'model.pt'}: cannot be read", "not plain tensors, safe to load", "Payload"]


@case
def weights_saved_as_checkpoint(run):
    torch.save(learner().state_dict(), run / "checkpoint.pt")  # a state_dict, not a checkpoint
    return lambda: train(run, resume=True), [
        f"{run / 'checkpoint.pt'}: is not a training checkpoint written by fewshot-apps",
        "step", "start afresh without resume"]


@case
def resume_without_checkpoint(run):
    (run / "checkpoint.pt").unlink()
    return lambda: train(run, resume=True), [
        f"{run / 'checkpoint.pt'}: no checkpoint to resume from", "run without resume"]


@case
def resume_with_changed_settings(run):
    return lambda: train(run, resume=True, lr=0.5, seed=4), [
        f"{run / 'checkpoint.pt'}: the checkpoint was written with other settings",
        "lr 0.001 -> 0.5", "seed 3 -> 4", "resume with the same settings"]


@case
def resume_with_another_learner(run):
    return lambda: train(run, model=learner("cnp"), resume=True), [
        f"{run / 'checkpoint.pt'}: the checkpoint is of learner 'protonet'",
        "resume with the same learner or start afresh"]


@case
def resume_with_other_tasks(run):
    return lambda: train(run, resume=True, tasks=TRAIN[1:]), [
        f"{run / 'checkpoint.pt'}: the checkpoint was trained on other tasks than this run's",
        "train tasks: 1 no longer there (assay0)", "resume with the same data set and split"]


@case
def truncated_weights(run):
    data = (run / "model.pt").read_bytes()
    (run / "model.pt").write_bytes(data[: len(data) // 3])
    return lambda: load_model(run), [
        f"{run / 'model.pt'}: cannot be read", "truncated, corrupted or not a state_dict"]


@case
def empty_weights(run):
    (run / "model.pt").write_bytes(b"")
    return lambda: load_model(run), [f"{run / 'model.pt'}: cannot be read"]


@case
def missing_weights(run):
    (run / "model.pt").unlink()
    return lambda: load_model(run), [f"{run / 'model.pt'}: file not found"]


@case
def config_not_json(run):
    (run / "config.json").write_text('{"learner": {"name": "protonet",', encoding="utf-8")
    return lambda: load_model(run), [f"{run / 'config.json'}: not valid JSON"]


@case
def config_without_learner(run):
    (run / "config.json").write_text(json.dumps(["protonet"]), encoding="utf-8")
    return lambda: load_model(run), [
        f"{run / 'config.json'}: has no 'learner' entry with 'name' and 'kind'"]


@case
def config_of_another_learner(run):
    config = json.loads((run / "config.json").read_text())
    other = learner("cnp")
    config["learner"] = other.describe()  # e.g. the config.json of another run copied over
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return lambda: load_model(run), [
        f"{run / 'model.pt'}: does not match the model described by {run / 'config.json'}",
        "missing", "unexpected"]


@case
def config_of_an_unknown_learner(run):
    config = json.loads((run / "config.json").read_text())
    config["learner"]["name"] = "protonet-v9"
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return lambda: load_model(run), [f"{run / 'config.json'}: ", "protonet-v9"]


def edit_config(run: Path, section: str, **values) -> None:
    config = json.loads((run / "config.json").read_text())
    config[section] = {**config.get(section, {}), **values}
    (run / "config.json").write_text(json.dumps(config), encoding="utf-8")


@case
def encoder_setting_of_the_wrong_type(run):
    # was a ValueError from int() (a TypeError in torch for the molecule encoders)
    edit_config(run, "encoder", hidden="eight")
    return lambda: load_model(run), [
        f"{run / 'config.json'}: encoder.hidden='eight': expected an integer"]


@case
def encoder_width_below_one(run):
    edit_config(run, "encoder", out_dim=-4)
    return lambda: load_model(run), [f"{run / 'config.json'}: encoder.out_dim=-4: must be at "
                                     "least 1"]


@case
def featurizer_setting_of_the_wrong_type(run):
    # A molecule model's featurizer settings: RDKit refused the string with a dump of its
    # C++ signatures.
    from types import SimpleNamespace

    from fewshot_apps.domains.molecules.predict import featurizer_of

    edit_config(run, "featurizer", ecfp_bits="many")
    model = SimpleNamespace(saved_config=json.loads((run / "config.json").read_text()),
                            model_path=str(run))
    return lambda: featurizer_of(model), [
        f"{run / 'config.json'}: featurizer.ecfp_bits='many': expected an integer"]


@case
def training_into_a_file(run):
    (run / "not-a-folder").write_text("")
    return lambda: train(run / "not-a-folder"), [
        f"out_dir {run / 'not-a-folder'} is a file, not a folder"]


@case
def model_trained_on_the_suites_test_tasks(run):
    # The suite's test tasks are assay0..assay2: the model trained on all of them.
    test = ["assay0", "assay1", "assay2", "other"]
    return lambda: check_unseen_tasks(run, "planted", test), [
        f"{run}: was trained on 3 of the suite planted's 4 test tasks (assay0, assay1, "
        "assay2)", "Evaluate it on a suite whose test tasks it has not seen"]


@case
def model_selected_on_the_suites_test_tasks(run):
    return lambda: check_unseen_tasks(run, "planted", ["valid1"]), [
        f"{run}: was selected (validated) on 1 of the suite planted's 1 test tasks (valid1)"]


@case
def tasks_json_missing(run):
    (run / "tasks.json").unlink()
    return lambda: check_unseen_tasks(run, "planted", ["x"]), [
        f"{run / 'tasks.json'}: file not found", "6 training, 2 validation tasks",
        "Copy it along with the model"]


@case
def tasks_json_not_json(run):
    (run / "tasks.json").write_text("train: assay0\n", encoding="utf-8")
    return lambda: check_unseen_tasks(run, "planted", ["x"]), [
        f"{run / 'tasks.json'}: not valid JSON"]


@case
def tasks_json_edited(run):
    # Someone drops the leaked tasks from the list: the fingerprint in config.json catches it.
    data = json.loads((run / "tasks.json").read_text())
    data["train"] = data["train"][3:]
    (run / "tasks.json").write_text(json.dumps(data), encoding="utf-8")
    return lambda: check_unseen_tasks(run, "planted", ["assay0"]), [
        f"{run / 'tasks.json'}: does not match the sha256 in config.json"]


@case
def tasks_json_without_lists(run):
    (run / "tasks.json").write_text(json.dumps({"train": "assay0"}), encoding="utf-8")
    return lambda: check_unseen_tasks(run, "planted", ["x"]), [
        f"{run / 'tasks.json'}: has no 'train' and 'valid' lists of task names"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_model_input(name, run):
    call, fragments = CASES[name](run)
    with pytest.raises(FewshotError) as caught:
        call()
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "weights_only" not in message  # torch's advice to load unsafely is not passed on
    assert len(message) < 600


def test_saved_settings_that_read_as_their_type_load():
    """Like a learner's options, a saved encoder or featurizer value that reads as its type
    (``"8"``) is taken as that type."""
    from types import SimpleNamespace

    from fewshot_apps.domains.molecules.featurizer import FeaturizerConfig
    from fewshot_apps.domains.molecules.predict import featurizer_of

    saved = {"featurizer": {"ecfp_bits": "1024", "standardize": "true", "unknown": 1}}
    assert featurizer_of(SimpleNamespace(saved_config=saved)) == FeaturizerConfig(
        ecfp_bits=1024, standardize=True)


def test_corpus_size():
    assert len(CASES) >= 5
