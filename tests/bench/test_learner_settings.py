"""bench/suites.py: ``[learner_settings.<learner>]`` gives one learner of a suite its own
settings (what model selection chose for it) over the preset's."""

from __future__ import annotations

import json

import pytest

from fewshot_apps.bench.runner import run_suite
from fewshot_apps.bench.suites import load_suites
from fewshot_apps.errors import CardError

SUITE = """
name = "mine"
dataset = "tox21"
protocol = "k-shot"
learners = ["protonet", "anil"]
train_shots = 3
{extra}

[presets.smoke]
steps = 2
draws = 1
seeds = [0]
max_test_tasks = 1
query_limit = 200
settings = {{ "encoder.hidden" = 8, "encoder.depth" = 1, "encoder.out_dim" = 8, "eval_every" = 2, "valid_draws" = 1, "lr" = 0.001 }}
"""

OWN = """
[learner_settings.protonet]
"encoder.kind" = "fingerprint"
"encoder.hidden" = 16
lr = 0.0003
shots = 2
"""


def write(tmp_path, extra: str):
    path = tmp_path / "mine.toml"
    path.write_text(SUITE.format(extra=extra))
    return path


def test_a_learners_own_settings_override_the_presets_for_it_only(tmp_path):
    (suite,) = load_suites(str(write(tmp_path, OWN)), "smoke")
    own = suite.settings_for("protonet")
    assert own["encoder.kind"] == "fingerprint" and own["lr"] == 0.0003
    assert own["encoder.hidden"] == 16 and own["encoder.out_dim"] == 8  # preset's, kept
    assert suite.settings_for("anil") == suite.preset.settings  # untouched


@pytest.mark.parametrize("extra, match", [
    ('[learner_settings.maml]\nlr = 0.1\n', "names no learner"),
    ('[learner_settings.protonet]\nsteps = 10\n', "steps is the preset's"),
    ('[learner_settings.protonet]\nlr = [1, 2]\n', "must be a table of"),
    ('learner_settings = 3\n', "must be a table"),
])
def test_bad_learner_settings_are_refused(tmp_path, extra, match):
    with pytest.raises(CardError, match=match):
        load_suites(str(write(tmp_path, extra)), "smoke")


def test_the_run_trains_each_learner_with_its_settings(tmp_path):
    out = tmp_path / "run"
    run_suite(str(write(tmp_path, OWN)), preset="smoke", out=out, progress=False)
    configs = {name: json.loads((out / "models" / name / "config.json").read_text())
               for name in ("protonet", "anil")}
    assert configs["protonet"]["encoder"]["name"] == "molecule-fingerprint"
    assert configs["protonet"]["encoder"]["hidden"] == 16
    assert configs["anil"]["encoder"]["name"] == "molecule-gin"
    assert configs["protonet"]["train"]["lr"] == 0.0003
    assert configs["anil"]["train"]["lr"] == 0.001
    # its own training episodes over the suite's (train_shots = 3)
    assert configs["protonet"]["episode"]["shots"] == 2
    assert configs["anil"]["episode"]["shots"] == 3


def test_a_learners_support_size_replaces_the_suites_shots(tmp_path):
    # train_shots = 3 in the suite; the learner asks for stratified supports of 6: its episodes
    # are those alone (balanced 3-shot would otherwise win over support_size)
    own = '[learner_settings.protonet]\nsupport_size = 6\nvalid_support_size = 6\n'
    (suite,) = load_suites(str(write(tmp_path, own)), "smoke")
    assert suite.train_episode("protonet") == {}
    assert suite.train_episode("anil") == {"shots": 3}
    out = tmp_path / "run"
    run_suite(str(write(tmp_path, own)), preset="smoke", out=out, progress=False)
    episode = json.loads((out / "models" / "protonet" / "config.json").read_text())["episode"]
    assert episode["support_size"] == 6 and episode["shots"] is None
