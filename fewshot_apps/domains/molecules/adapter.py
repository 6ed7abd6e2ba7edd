"""The molecule data set's side of the :class:`~fewshot_apps.core.domain.DomainDataset`
protocol: its tasks, encoder, training episodes, validation score, classic baselines and
evaluation protocols, as :class:`MoleculeTasks`, a base of
:class:`~fewshot_apps.domains.molecules.dataset.MoleculeDataset`.

Heavy modules (torch, the GNN, scikit-learn) load when a method first needs them.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from fewshot_apps.core.tasks import Task, TaskSet, derive_seed
from fewshot_apps.errors import FewshotError

#: Balanced 10-shot training episodes with 16 query molecules; validation: 3 draws per task.
EPISODE_DEFAULTS = {"shots": 10, "support_size": None, "n_query": 16, "valid_draws": 3,
                    "valid_support_size": None}


def limit_task(task: Task, limit: int | None, seed: int) -> Task:
    """A smaller copy of a task (stratified, seeded) for smoke runs."""
    if limit is None or len(task) <= limit:
        return task
    rng = np.random.default_rng(derive_seed(seed, "limit", task.name))
    pos = np.flatnonzero(task.labels == 1)
    neg = np.flatnonzero(task.labels != 1)
    # Enough positives for a 10-shot support plus a query that has both classes.
    n_pos = min(len(pos), max(round(limit * len(pos) / len(task)), 25))
    n_neg = min(len(neg), max(limit - n_pos, 25))
    keep = np.sort(np.concatenate([rng.choice(pos, n_pos, replace=False),
                                   rng.choice(neg, n_neg, replace=False)]))
    return task.subset(keep)


def _can_draw(sampler, task: Task, tries: int = 10) -> bool:
    """Whether ``sampler`` can draw a training episode from ``task``: never when the task is
    too small; a draw unusable by chance (a stratified query with one class) is retried."""
    from fewshot_apps.core.tasks import SamplingError, TaskTooSmallError

    rng = np.random.default_rng(derive_seed("can-draw", task.name))
    for _ in range(tries):
        try:
            sampler.sample(task, rng)
            return True
        except TaskTooSmallError:
            return False
        except SamplingError:
            continue
    return False


def _validation_draw(episode: dict):
    """``(make_sampler, size)`` of the validation draws: the kind of support the model trains
    (and is tested) on. Balanced K-shot (K = ``shots``) for PAR-style training; stratified
    supports of ``support_size`` (the task's own class balance, as FS-Mol's test draws) for
    stratified training: a calibration fitted on balanced supports would expect a half of
    actives that FS-Mol's queries do not have. ``valid_support_size`` (when set) validates on
    stratified supports of that size whatever the training supports, so that runs trained on
    other support sizes are selected and compared on the same draws."""
    from fewshot_apps.core.tasks import BalancedSampler, StratifiedSampler

    if episode.get("valid_support_size") is not None:
        return (lambda n: StratifiedSampler(n)), int(episode["valid_support_size"])
    if episode.get("shots") is not None:
        return (lambda k: BalancedSampler(k)), int(episode["shots"])
    return (lambda n: StratifiedSampler(n)), int(episode["support_size"])


class MoleculeTasks:
    """Few-shot classification over assays. Needs ``name``, ``store`` and ``task_set()``."""

    domain = "molecules"
    label_kind = "classification"
    protocols = ("k-shot", "fsmol", "active")
    episode_defaults = EPISODE_DEFAULTS
    validation_metric = "ROC-AUC"

    @property
    def source_label(self) -> str:
        """How messages name the data: its name (a data set names its file, see
        :class:`~fewshot_apps.domains.molecules.dataset.MoleculeDataset`)."""
        return self.name

    def _own_csv(self) -> bool:
        """Whether the split is the one drawn for a CSV of your own (no card fixes it)."""
        card = getattr(self, "card", None)
        return card is None or card.format == "molecules-csv"

    @property
    def unvalidated_reason(self) -> str:
        """Why a run had no model selection, as it was: validation assays that could not be
        scored, or none held out (and, for a CSV of your own, why none was)."""
        ts = self.taskset
        if ts.valid:
            return (f"none of the {len(ts.valid)} validation assays could be scored (too few "
                    "molecules for the validation draws)")
        if self._own_csv():
            # the rules of splits.random_task_split
            two = sum(bool(t.metadata.get("evaluable", True)) for t in ts.train)
            if len(ts.train) < 3:
                return (f"no validation assay (one is held out of training when 3 or more "
                        f"non-test assays are left, and here {len(ts.train)} are)")
            if two == 0:
                return (f"no validation assay (none of the {len(ts.train)} training assays "
                        "has both classes, which validation needs)")
        return "no validation assay (the data set's split holds none out)"

    @cached_property
    def taskset(self) -> TaskSet:
        """The tasks of the default split (every measurement kept)."""
        return self.task_set()

    @property
    def label_tasks(self) -> list:
        """The tasks whose labels a model may read for a molecule before any test assay is
        seen (``label-prior``, ``label-profile``, the assay profile): the training and
        validation tasks; the training ones alone in the molecule-disjoint variant, whose
        validation tasks hold test-side molecules."""
        if getattr(self, "molecule_split", None) is not None:
            return list(self.taskset.train)
        return [*self.taskset.train, *self.taskset.valid]

    def make_encoder(self, settings: dict):
        """A new encoder from ``encoder.<key>`` settings: ``kind`` picks the GNN (``gnn``, the
        default; with ``fingerprint=counts`` the fused GNN + count-ECFP encoder) or the
        fingerprint MLP (``fingerprint``); descriptors are normalized on the training
        molecules; ``assay_profile`` reads the molecules' labels in the training assays
        (:mod:`~fewshot_apps.domains.molecules.assay_profile`)."""
        from .encoder import MoleculeEncoder
        from .fingerprint_encoder import FingerprintEncoder

        kinds = {"gnn": MoleculeEncoder, "fingerprint": FingerprintEncoder}
        kind = str(settings.get("kind", "gnn")).strip().lower()
        if kind not in kinds:
            raise FewshotError(f"encoder.kind must be one of {sorted(kinds)}, not {kind!r}")
        cls = kinds[kind]
        parsed = cls.parse_settings({k: v for k, v in settings.items() if k != "kind"})
        train = self.taskset.train
        if parsed.get("assay_profile"):
            parsed["profile_assays"] = [task.name for task in train]
        encoder = cls(self.store, **parsed)
        if train and encoder.config().get("descriptors"):  # only descriptors need statistics
            encoder.fit_normalization(np.unique(np.concatenate([t.examples for t in train])))
        self._set_assay_profile(encoder)
        return encoder

    def _set_assay_profile(self, encoder, path=None) -> None:
        """Give an encoder with an assay profile its table for this data set's molecules:
        their labels in the profile's assays, which must be non-test tasks here (a data set
        without them, your own CSV, leaves the profile at "not measured", with a note)."""
        from .assay_profile import profile_table

        branch = getattr(encoder, "profile_branch", None)
        if branch is None:
            return
        known = self.label_tasks
        names = {task.name for task in known}
        if not set(branch.assays) <= names:
            print(f"note: {path or 'the model'} reads the molecules' labels in the assays "
                  f"{', '.join(branch.assays)}; {self.name} has no such training assays, so "
                  "every molecule reads as not measured in them", flush=True)
            return
        encoder.set_assay_profile(self.store,
                                  profile_table(known, branch.assays, len(self.store)))

    def train_sampler(self, episode: dict):
        from fewshot_apps.core.tasks import BalancedSampler, StratifiedSampler

        if episode.get("shots") is not None:
            return BalancedSampler(int(episode["shots"]), episode["n_query"])
        return StratifiedSampler(int(episode["support_size"]), episode["n_query"])

    def check_trainable(self, episode: dict) -> None:
        """FewshotError, before any model is built or anything is written to the run's
        folder, for episodes the training assays cannot give: no shots or support size, or
        no assay large enough for one episode (the training sampler itself decides)."""
        if episode.get("shots") is None and episode.get("support_size") is None:
            raise FewshotError(f"{self.name}: training episodes need shots or support_size")
        sampler = self.train_sampler({"n_query": None, **episode})
        train = self.taskset.train
        if not train or any(_can_draw(sampler, task) for task in train):
            return
        if episode.get("shots") is not None:
            k = int(episode["shots"])
            need = f"{k} actives and {k} inactives (shots {k}) plus at least one query molecule"
        else:
            n = int(episode["support_size"])
            need = (f"a stratified support of {n} molecules (support_size {n}) plus a query "
                    "holding both classes")
        largest = sorted(train, key=len, reverse=True)
        have = ", ".join(f"{t.name} ({t.n_positive} actives, {t.n_negative} inactives)"
                         for t in largest[:5])
        more = f" and {len(largest) - 5} smaller" if len(largest) > 5 else ""
        raise FewshotError(
            f"{self.source_label}: no training assay has the molecules a training episode "
            f"needs: {need}; the {len(train)} training assay(s): {have}{more}. Use more "
            "molecules per assay, or smaller episodes (--shots N, or --support-size N)")

    def validator(self, episode: dict, seed: int):
        """Mean ROC-AUC over ``valid_draws`` draws per validation task, query = every other
        labelled molecule (the test protocol on validation tasks); supports as in training:
        K-shot (``shots``) or stratified (``support_size``), or stratified of
        ``valid_support_size`` when set."""
        from fewshot_apps.core.evaluation import (
            encoded_once,
            evaluate_classification,
            mean_over_tasks,
        )

        tasks = self.taskset.valid
        make_sampler, size = _validation_draw(episode)

        def validate(learner) -> float:
            with encoded_once(learner, tasks):
                results, _ = evaluate_classification(
                    learner, tasks, make_sampler, (size,), draws=episode["valid_draws"],
                    seeds=(derive_seed(seed, "valid"),))
            return mean_over_tasks(results, "roc_auc")

        return validate

    def validation_episodes(self, episode: dict, seed: int) -> list:
        """The episodes :meth:`validator` scores (the same draws of the validation tasks):
        what a trained model's calibration is fitted on."""
        from fewshot_apps.core.evaluation import draw_episodes

        make_sampler, size = _validation_draw(episode)
        return [ep for *_, ep, _ in draw_episodes(self.taskset.valid, make_sampler, (size,),
                                                   episode["valid_draws"],
                                                   (derive_seed(seed, "valid"),))
                if ep is not None]

    def build_baseline(self, name: str, seed: int = 0):
        """A classic baseline: fitted on each support set (``rf`` ...), or built from the
        training tasks (``label-prior``)."""
        from fewshot_apps.core.registry import MODELS

        from .baselines import build_classic_baseline

        if MODELS.get(name).meta.get("support_only", True):
            return build_classic_baseline(name, self.store, seed=seed)
        return MODELS.load(name).from_dataset(self, seed=seed)

    def evaluate(self, protocol: str, model, *, split: str = "test", shots=(10,),
                 support_sizes=(16, 32, 64, 128), draws: int = 10, seeds=(0, 1, 2),
                 max_tasks: int | None = None, query_limit: int | None = None,
                 progress: bool = False, strategies=None) -> tuple[pd.DataFrame, int]:
        """``k-shot`` (K positives + K negatives; ``shots``), ``fsmol`` (stratified supports
        of ``support_sizes``) or ``active`` (acquisition rounds: ``support_sizes`` are the
        labelled molecules after each round, e.g. 8, 16, ..., 64; ``strategies``, default
        all: :mod:`~fewshot_apps.domains.molecules.active`) on the ``split`` tasks;
        ``max_tasks`` and ``query_limit`` shrink smoke runs.

        ``active`` rows carry a ``strategy`` column (the bench runner labels their learner
        ``<model>+<strategy>``) and ``support_size`` = the labelled molecules of the round."""
        from fewshot_apps.core.evaluation import classification_protocol

        if protocol not in self.protocols:
            raise FewshotError(f"protocol {protocol!r} does not apply to {self.name} "
                               f"(molecules: {', '.join(self.protocols)})")
        if strategies is not None and protocol != "active":
            raise FewshotError(f"protocol {protocol!r} has no acquisition strategies")
        tasks = getattr(self.taskset, split)[:max_tasks]
        tasks = [limit_task(t, query_limit, 0) for t in tasks]
        if protocol == "active":
            return self._evaluate_active(model, tasks, support_sizes, strategies, draws,
                                         seeds, progress)
        return classification_protocol(protocol, model, tasks, shots=shots,
                                       support_sizes=support_sizes, draws=draws, seeds=seeds,
                                       progress=progress)

    def _evaluate_active(self, model, tasks, sizes, strategies, draws, seeds,
                         progress) -> tuple[pd.DataFrame, int]:
        from fewshot_apps.core.evaluation import encoded_once_if_encoder

        from .active import STRATEGIES, active_protocol

        with encoded_once_if_encoder(model, tasks):
            rows, skipped = active_protocol(model, tasks, self.store, sizes=sizes,
                                            strategies=strategies or STRATEGIES, draws=draws,
                                            seeds=tuple(seeds), progress=progress)
        out = pd.DataFrame({
            "task": rows["task"], "shots": pd.NA, "support_size": rows["n_labelled"],
            "item_split": pd.NA, "draw": rows["draw"], "seed": rows["seed"],
            "metric": rows["metric"], "value": rows["value"], "strategy": rows["strategy"],
        })
        return out, len(skipped)

    def _molecule_variant(self) -> dict:
        """The data set's name and molecule variant as a saved model records them
        (``shared`` unless the data set has a ``molecule_split``)."""
        split = getattr(self, "molecule_split", None)
        variant = {"dataset": self.name, "molecules": getattr(self, "molecules", "shared")}
        if split is not None:
            variant["molecule_split"] = split.record()
        return variant

    def attach(self, model, path=None) -> None:
        """A molecule model reads the molecules of this data set's store; a saved model of
        this data set trained on its other molecule variant (shared / disjoint) is refused."""
        from .molecule_split import check_model_molecules

        saved = getattr(model, "saved_config", None)
        if saved:
            where = path or getattr(model, "model_path", "the model")
            check_model_molecules(where, "", saved, self._molecule_variant())
            self._check_featurizer(where, saved)
        model.encoder.set_store(self.store)
        self._set_assay_profile(model.encoder, path)

    def _check_featurizer(self, where, saved: dict) -> None:
        """A model reads molecules featurized as in its training (a GNN's atom and bond
        feature widths, the fingerprint settings): another data set's molecules must be
        featurized the same way."""
        theirs = saved.get("featurizer")
        mine = getattr(self, "featurizer", None)
        if theirs is None or mine is None or dict(theirs) == dict(mine.__dict__):
            return
        differ = sorted(k for k in set(theirs) | set(mine.__dict__)
                        if theirs.get(k) != mine.__dict__.get(k))
        raise FewshotError(
            f"{where}: the model was trained on molecules featurized with "
            f"{', '.join(f'{k}={theirs.get(k)!r}' for k in differ)}; {self.name} featurizes "
            f"them with {', '.join(f'{k}={mine.__dict__.get(k)!r}' for k in differ)}. Load "
            "the data set with the model's featurizer settings")

    def check_model_split(self, model_path, suite: str) -> bool:
        """Assay names identify assays in any file (an own CSV too): a model trained or
        selected on any of this data set's test assays is refused; so is a model of this
        data set trained on its other molecule variant (shared / disjoint, or another
        disjoint split)."""
        from fewshot_apps.core.persistence import check_unseen_tasks, read_model_config

        from .molecule_split import check_model_molecules

        config = read_model_config(model_path)
        check_model_molecules(model_path, suite, config, self._molecule_variant())
        return check_unseen_tasks(model_path, suite, self.taskset.test, config)


__all__ = ["EPISODE_DEFAULTS", "MoleculeTasks", "limit_task"]
