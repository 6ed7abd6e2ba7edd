"""The domain seam works: a third domain, defined here with only the public registry and
the Domain protocol, trains two learners and runs a smoke bench suite end to end without
touching any file of the package.

The toy domain: each example is a sequence of 8 numbers; each task has its own threshold,
and an example is active (1) when its sum exceeds it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import fewshot_apps as fa
from fewshot_apps.core.domain import Domain, DomainDataset, load_saved_model
from fewshot_apps.core.encoders import TableEncoder
from fewshot_apps.core.evaluation import (
    classification_protocol,
    encoded_once,
    k_shot_protocol,
    mean_over_tasks,
)
from fewshot_apps.core.persistence import check_unseen_tasks, read_model_config, task_record
from fewshot_apps.core.registry import DOMAINS, MODELS
from fewshot_apps.core.tasks import BalancedSampler, Task, TaskSet, derive_seed
from fewshot_apps.plain_csv import load_card_or_csv

N_EXAMPLES, LENGTH = 600, 8


class ToyDataset:
    """Sequences of numbers; one task per threshold."""

    domain = "toy"
    label_kind = "classification"
    protocols = ("k-shot",)
    episode_defaults = {"shots": 5, "support_size": None, "n_query": 10, "valid_draws": 1}
    validation_metric = "ROC-AUC"
    unvalidated_reason = "no validation task"

    def __init__(self, name: str, n_tasks: int, seed: int):
        rng = np.random.default_rng(seed)
        self.name = name
        self.sequences = rng.normal(size=(N_EXAMPLES, LENGTH)).astype(np.float32)
        sums = self.sequences.sum(axis=1)
        tasks = []
        for t in range(n_tasks):
            ids = np.sort(rng.choice(N_EXAMPLES, size=80, replace=False))
            threshold = float(np.quantile(sums[ids], rng.uniform(0.3, 0.7)))
            tasks.append(Task(name=f"threshold-{t}", examples=ids,
                              labels=(sums[ids] > threshold).astype(np.float32)))
        self.taskset = TaskSet(name=name, kind="classification", train=tasks[:-4],
                               valid=tasks[-4:-2], test=tasks[-2:])

    def make_encoder(self, settings: dict):
        return TableEncoder(torch.from_numpy(self.sequences), **{
            k: int(v) for k, v in settings.items()})

    def train_sampler(self, episode: dict):
        return BalancedSampler(int(episode["shots"]), episode["n_query"])

    def check_trainable(self, episode: dict) -> None:
        pass

    def validator(self, episode: dict, seed: int):
        tasks = self.taskset.valid

        def validate(learner) -> float:
            with encoded_once(learner, tasks):
                results, _ = k_shot_protocol(learner, tasks, shots=(episode["shots"],),
                                             draws=1, seeds=(derive_seed(seed, "valid"),))
            return mean_over_tasks(results, "roc_auc")

        return validate

    def build_baseline(self, name: str, seed: int = 0):
        return MODELS.load(name)(self.sequences)

    def evaluate(self, protocol, model, *, split="test", shots=(5,), draws=2, seeds=(0,),
                 max_tasks=None, progress=False, **unused):
        tasks = getattr(self.taskset, split)[:max_tasks]
        return classification_protocol(protocol, model, tasks, shots=shots, draws=draws,
                                       seeds=seeds, progress=progress)

    def saved_model_config(self) -> dict:
        return {"dataset": self.name, "domain": self.domain,
                "tasks": task_record(self.taskset.train, self.taskset.valid)}

    def attach(self, model, path=None) -> None:
        pass  # the table encoder stores the sequences in its weights

    def check_model_split(self, model_path, suite: str) -> bool:
        return check_unseen_tasks(model_path, suite, self.taskset.test,
                                  read_model_config(model_path))


class ToyDomain(Domain):
    csv_expectation = "nothing (toy data is made, not read)"

    def load(self, source, **options):
        card = load_card_or_csv(source)
        return ToyDataset(card.name, int(card.options.get("n_tasks", 12)),
                          int(options.get("seed", 0)))

    def describe(self, source, **options) -> str:
        ds = self.load(source, **options)
        return f"{ds.name}: {len(ds.taskset.train)} training tasks"


class SumBaseline:
    """A classic baseline of the toy domain: the support's sums, by a logistic fit."""

    def __init__(self, sequences: np.ndarray):
        self.sums = sequences.sum(axis=1)

    def fit_predict(self, support_ids, support_labels, query_ids, seed=0):
        from sklearn.linear_model import LogisticRegression

        fit = LogisticRegression().fit(self.sums[support_ids, None], support_labels)
        return fit.predict_proba(self.sums[query_ids, None])[:, 1]


@pytest.fixture(scope="module")
def toy_card(tmp_path_factory):
    """The toy domain and its baseline registered (and forgotten afterwards), and a card."""
    DOMAINS.add("toy", f"{__name__}:ToyDomain", summary="sums of sequences",
                command="toy", domain_noun="toy")
    MODELS.add("sum-threshold", f"{__name__}:SumBaseline", family="classic",
               label_kinds=("classification",), domain="toy",
               summary="logistic regression on each sequence's sum")
    folder = tmp_path_factory.mktemp("toy")
    card = folder / "toy.toml"
    card.write_text('name = "toy-sums"\ndomain = "toy"\nformat = "made"\n[files]\n'
                    '[options]\nn_tasks = 12\n')
    yield card
    DOMAINS.remove("toy")
    MODELS.remove("sum-threshold")


SETTINGS = {"steps": 30, "eval_every": 10, "encoder.hidden": 16, "encoder.out_dim": 8,
            "encoder.depth": 2, "device": "cpu", "valid_draws": 1}


def test_the_toy_data_set_meets_the_protocol(toy_card):
    ds = fa.load_dataset(toy_card)
    assert isinstance(ds, DomainDataset)
    assert fa.load_tasks(toy_card).name == "toy-sums" and len(ds.taskset.test) == 2


@pytest.mark.parametrize("learner", ["protonet", "maml"])
def test_two_learners_train_save_and_reload(toy_card, tmp_path, learner):
    ds = fa.load_dataset(toy_card)
    model = fa.train_learner(ds, learner, tmp_path / learner, SETTINGS)
    assert model.train_result.steps_run == 30 and model.train_result.best_valid is not None
    test = ds.taskset.test[0]
    support, query = test.examples[:20], test.examples[20:]
    labels = test.labels[:20]
    before = model.fit_predict(support, labels, query)
    again = load_saved_model(tmp_path / learner)
    assert read_model_config(tmp_path / learner)["domain"] == "toy"
    np.testing.assert_allclose(again.fit_predict(support, labels, query), before, atol=1e-5)
    # it learned something about sums: better than chance on the test tasks
    results, _ = ds.evaluate("k-shot", model, shots=(5,), draws=3)
    assert mean_over_tasks(results, "roc_auc") > 0.6


def test_a_smoke_bench_suite_runs_end_to_end(toy_card, tmp_path):
    suite = tmp_path / "toy-suite.toml"
    suite.write_text(f'''name = "toy"
dataset = "{toy_card}"
protocol = "k-shot"
shots = [5]
learners = ["protonet", "cnp", "finetune", "sum-threshold"]
baseline = "sum-threshold"

[presets.smoke]
steps = 20
pretrain_steps = 20
draws = 2
seeds = [0]
settings = {{ "encoder.hidden" = 16, "encoder.out_dim" = 8, "eval_every" = 10, "valid_draws" = 1 }}
''')
    summary = fa.run_suite(str(suite), tmp_path / "out", preset="smoke", device="cpu")
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    assert set(results["learner"]) == {"protonet", "cnp", "finetune", "sum-threshold"}
    assert set(results["family"]) == {"metric", "generator", "transfer", "classic"}
    roc = summary[summary["metric"] == "roc_auc"].set_index("learner")["mean"]
    assert roc["sum-threshold"] > 0.8  # the sum is the whole story
    assert (tmp_path / "out" / "report.html").exists()


def test_a_learner_of_another_domain_is_refused(toy_card, tmp_path):
    with pytest.raises(fa.FewshotError, match="'rf' is a model for molecules data"):
        from fewshot_apps.core.fit import build_model

        build_model(fa.load_dataset(toy_card), "rf", tmp_path / "rf")
