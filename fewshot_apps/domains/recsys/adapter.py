"""The rating data set's side of the :class:`~fewshot_apps.core.domain.DomainDataset`
protocol: its encoder, training episodes, validation score, classic baselines, the
cold-start protocol and what a loaded model needs, as :class:`RecsysTasks`, a base of
:class:`~fewshot_apps.domains.recsys.dataset.RecsysDataset`.

Heavy modules (torch, PyG) load when a method first needs them.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from fewshot_apps.errors import FewshotError

#: Training episodes: 10 support and 10 query ratings per user; validation: one draw;
#: ``popular_negatives``: the share of the implicit objective's negatives drawn by
#: popularity (:class:`~fewshot_apps.domains.recsys.episodes.ColdStartSampler`).
EPISODE_DEFAULTS = {"shots": None, "support_size": 10, "n_query": 10, "valid_draws": 1,
                    "n_negatives": 50, "popular_negatives": 0.5}
#: Unrated items drawn per training episode as the implicit objective's negatives (the
#: default of the ``n_negatives`` episode setting).
N_NEGATIVES = EPISODE_DEFAULTS["n_negatives"]
#: What the learners train on ratings unless told otherwise: the implicit objective (who
#: rates what) next to the rating loss, at equal weight (``learner.rank_loss_weight``).
LEARNER_DEFAULTS = {"rank_loss_weight": 1.0}
#: On implicit feedback (every rating 1.0) the ratings carry nothing: the implicit
#: objective alone, and ranking by its score alone.
IMPLICIT_LEARNER_DEFAULTS = {"rank_loss_weight": 1.0, "label_loss_weight": 0.0,
                             "rank_rating_weight": 0.0}
RESULT_COLUMNS = ["task", "shots", "support_size", "item_split", "draw", "seed", "metric",
                  "value"]


class RecsysTasks:
    """Few-shot rating regression over users. Needs ``name``, ``graph``, ``taskset``,
    ``card`` and ``evaluation_episodes``."""

    domain = "recsys"
    label_kind = "regression"
    protocols = ("cold-start", "onboarding")
    episode_defaults = EPISODE_DEFAULTS

    @property
    def unvalidated_reason(self) -> str:
        """Why a run had no model selection (no validation user could be scored)."""
        return f"no validation user has {self.config.min_eval_ratings} ratings"

    def make_encoder(self, settings: dict):
        from .encoder import ItemGraphEncoder

        return ItemGraphEncoder(self.graph, **ItemGraphEncoder.parse_settings(settings))

    @property
    def implicit(self) -> bool:
        """Implicit feedback: user-item pairs without ratings (every rating 1.0)."""
        return bool(self.taskset.metadata.get("implicit", False))

    @property
    def learner_defaults(self) -> dict:
        """Learner settings this domain's meta-learners default to: :data:`LEARNER_DEFAULTS`,
        or :data:`IMPLICIT_LEARNER_DEFAULTS` on implicit feedback."""
        return dict(IMPLICIT_LEARNER_DEFAULTS if self.implicit else LEARNER_DEFAULTS)

    @property
    def validation_metric(self) -> str:
        """-RMSE of the query ratings; all-item nDCG@10 on implicit feedback."""
        return "all-item nDCG@10" if self.implicit else "-RMSE"

    def train_sampler(self, episode: dict):
        """Cold-start episodes with :data:`N_NEGATIVES` unrated items each (negatives of the
        learners' implicit objective)."""
        from .episodes import ColdStartSampler

        n_items = len(self.item_vocab)
        counts = np.bincount(np.concatenate([np.asarray(t.examples, dtype=np.int64)
                                             for t in self.taskset.train] or [[]]).astype(np.int64),
                             minlength=n_items)
        return ColdStartSampler(int(episode["support_size"]), episode["n_query"],
                                n_negatives=int(episode.get("n_negatives", N_NEGATIVES)),
                                n_items=n_items,
                                popular_negatives=float(episode.get("popular_negatives", 0.0)),
                                item_counts=counts)

    def choose_rank_weight(self, learner, episode: dict, seed: int) -> dict | None:
        """Choose ``learner``'s ``rank_rating_weight`` on the validation users (all-item
        nDCG@10, :func:`~fewshot_apps.domains.recsys.rank_weight.choose_rank_weight`) and
        set it; the choice's record for the model's config, or None without validation
        users."""
        from .rank_weight import choose_rank_weight

        episodes = self.validation_episodes(episode, seed) if self.taskset.valid else []
        return choose_rank_weight(learner, episodes, len(self.item_vocab))

    def check_trainable(self, episode: dict) -> None:
        """FewshotError, before any model is built, for episodes a rating data set cannot
        give: ``shots`` (ratings have no classes), or more ratings than any meta-train user
        has (a small ratings CSV of your own)."""
        if episode.get("shots") is not None:
            raise FewshotError(f"{self.name}: ratings have no classes, so no shots; give the "
                               "support size instead (--support-size N, support_size=N)")
        k, n_query = int(episode["support_size"]), int(episode["n_query"])
        needed = k + n_query
        sizes = [len(t) for t in self.taskset.train]
        if any(n >= needed for n in sizes):
            return
        where = self.card.source if self.card is not None and self.card.source else None
        have = (f"its {len(sizes)} meta-train users have {min(sizes)} to {max(sizes)} ratings"
                if sizes else "it has no meta-train users")
        raise FewshotError(
            f"{where or self.name}: no meta-train user has the {needed} ratings a training "
            f"episode needs (support_size {k} + n_query {n_query}); {have}. Use more ratings "
            "per user, or smaller episodes (--set support_size=... --set n_query=...)")

    def validator(self, episode: dict, seed: int):
        """Minus the RMSE on the query ratings of validation users (every support size of
        the protocol), items encoded once per evaluation; on implicit feedback, where
        ratings are all 1, the mean all-item nDCG@10 of ``fit_rank`` instead."""
        from fewshot_apps.core.evaluation import encoded_once
        from fewshot_apps.core.metrics import rmse

        episodes = self.validation_episodes(episode, seed)
        if not episodes:
            raise FewshotError(f"{self.name}: no validation user has enough ratings")
        if self.implicit:
            from .rank_weight import ranking_validator

            return ranking_validator(episodes, len(self.item_vocab))
        tasks = self.taskset.valid

        def validate(learner) -> float:
            with encoded_once(learner, tasks):
                predictions = np.concatenate([
                    learner.fit_predict(ep.support_examples, ep.support_labels,
                                        ep.query_examples) for ep in episodes])
            if np.isnan(predictions).any():  # NaN, as training's own check expects
                return float("nan")
            return -rmse(np.concatenate([ep.query_labels for ep in episodes]), predictions)

        return validate

    def validation_episodes(self, episode: dict, seed: int) -> list:
        """The episodes :meth:`validator` scores (the cold-start episodes of the validation
        users, ``valid_draws`` per support size): what a trained model's rating interval is
        fitted on."""
        return self.evaluation_episodes("valid", seed=seed, n_draws=episode["valid_draws"])

    def build_baseline(self, name: str, seed: int = 0):
        from .baselines import build_rec_baseline

        return build_rec_baseline(name, self, seed=seed)

    def evaluate(self, protocol: str, model, *, split: str = "test", draws: int = 1,
                 seeds=(0,), max_tasks: int | None = None, progress: bool = False,
                 support_sizes=None, strategies=None, **unused) -> tuple[pd.DataFrame, int]:
        """The cold-start protocol on the ``split`` users (supports of 5 / 10 / 20 ratings;
        the 10-item query view and the all-item view; existing and new items), or the
        onboarding protocol (:mod:`~fewshot_apps.domains.recsys.onboarding`: supports of
        ``support_sizes`` answers, default 5 and 10, to the interview of each of
        ``strategies``, default all; its rows carry a ``strategy`` column, which the bench
        runner puts in the learner's label, ``<model>+<strategy>``)."""
        from .evaluation import evaluate_cold_start

        if not self.evaluation_episodes(split, seed=0, n_draws=1):
            raise FewshotError(
                f"{self.name}: no {split} user has the {self.config.min_eval_ratings} ratings "
                "evaluation needs, so there is nothing to score (a trained model is saved; "
                "`fewshot-apps data inspect` shows how many ratings users have)")
        if protocol not in self.protocols:
            raise FewshotError(f"protocol {protocol!r} does not apply to {self.name} "
                               f"(ratings: {', '.join(self.protocols)})")
        ds = self
        if max_tasks is not None:
            ds = copy.copy(self)
            ds.taskset = copy.copy(self.taskset)
            setattr(ds.taskset, split, getattr(self.taskset, split)[:max_tasks])
        if strategies is not None and protocol != "onboarding":
            raise FewshotError(f"protocol {protocol!r} has no onboarding strategies")
        if protocol == "onboarding":
            from .onboarding import COMPARED, DEFAULT_SIZES, evaluate_onboarding

            results, skipped = evaluate_onboarding(
                model, ds, split=split, seeds=tuple(seeds), draws=draws,
                support_sizes=tuple(support_sizes or DEFAULT_SIZES),
                strategies=tuple(strategies or COMPARED), progress=progress)
            return results.assign(shots=pd.NA)[[*RESULT_COLUMNS, "strategy"]], len(skipped)
        results, skipped = evaluate_cold_start(model, ds, split=split, seeds=tuple(seeds),
                                               draws=draws, progress=progress)
        return results.assign(shots=pd.NA)[RESULT_COLUMNS], len(skipped)

    def attach(self, model, path=None) -> None:
        """Give a loaded model this data set's graph (``model.rec_dataset``) after checking
        that it is the data the model was trained on: the same item vocabulary and the same
        meta-train users (another user split would put the model's training users among
        the test users), and the same rating scale (where the model saved one).
        FewshotError naming ``path`` otherwise."""
        from .readers.base import RatingScale
        from .vocab import Vocabulary

        path = path or getattr(model, "model_path", "the model")
        config = getattr(model, "saved_config", None) or {}
        saved_split = config.get("train_users_sha256")
        if saved_split and saved_split != self.split_fingerprint():
            trained_on = config.get("dataset")
            if trained_on and trained_on != self.name:
                # another data set altogether (a renamed copy of the model's own one would
                # have the same split fingerprint and not get here)
                source = config.get("dataset_source")
                raise FewshotError(
                    f"{path}: the model was trained on {trained_on}"
                    f"{f' ({source})' if source and source != trained_on else ''}, not on "
                    f"{self.name}: its users differ. Pass that data set, or no dataset to "
                    "rebuild it from the model's config")
            raise FewshotError(
                f"{path}: the model was trained on another user split of {self.name} than "
                f"this one (cold-start settings at training: {config.get('cold_start')}); its "
                "training users would be among the test users. Load the data set with those "
                "settings (e.g. the same seed), or pass no dataset to rebuild it from the "
                "model's config")
        saved_scale = config.get("rating_scale")
        if isinstance(saved_scale, dict) and self.scale is not None:
            trained = RatingScale(**saved_scale)
            if (trained.low, trained.high) != (self.scale.low, self.scale.high):
                raise FewshotError(
                    f"{path}: the model predicts ratings on a scale of {trained}, "
                    f"{self.name}'s scale is {self.scale}: use the data set the model was "
                    "trained on")
        saved_vocab = config.get("item_vocab")
        if saved_vocab:
            vocab = Vocabulary.from_dict(saved_vocab, origin=path)
            if vocab.fingerprint() != self.item_vocab.fingerprint():
                raise FewshotError(
                    f"{path}: the model's item vocabulary ({len(vocab)} items) differs from "
                    f"{self.name}'s ({len(self.item_vocab)} items): use the data set the "
                    "model was trained on")
        try:
            model.encoder.set_graph(self.graph)
        except ValueError as err:
            raise FewshotError(f"{path}: {err}; use the data set the model was trained on") from None
        model.rec_dataset = self

    def check_model_split(self, model_path, suite: str) -> bool:
        """User ids name the same people only within one data set: a model of this data set
        trained or selected on its test users is refused (another data set's model is
        refused when loaded, by its item vocabulary). A recorded user-split fingerprint is
        checked on loading too, so an older model with one is not warned about."""
        from fewshot_apps.core.persistence import check_unseen_tasks, read_model_config

        config = read_model_config(model_path)
        test = self.taskset.test if config.get("dataset") == self.name else []
        if self.config.split_method == "fixed":
            # a published split may test users on other rows than they train on (MeLU's
            # item-cold state): those users are meant to be seen in training
            own = {t.name for t in self.taskset.train}
            test = [t for t in test if t.name not in own]
        fingerprint = bool(config.get("train_users_sha256"))
        return check_unseen_tasks(model_path, suite, test, config, what="users",
                                  warn=not fingerprint) or fingerprint


__all__ = ["EPISODE_DEFAULTS", "IMPLICIT_LEARNER_DEFAULTS", "LEARNER_DEFAULTS", "N_NEGATIVES", "RESULT_COLUMNS",
           "RecsysTasks"]
