"""The use cases, as a small Python API (re-exported from :mod:`fewshot_apps`).

::

    import fewshot_apps as fa

    tasks = fa.load_tasks("tox21")                     # a TaskSet: train / valid / test
    ds = fa.load_dataset("tox21")                      # the featurized data set
    model = fa.train_learner(ds, "protonet", "runs/tox21-protonet", {"steps": 200})
    model = fa.load_model("runs/tox21-protonet")       # later, in another process
    preds = fa.predict_assay(model, "examples/assay_support.csv", "examples/candidates.csv")

    recs = fa.recommend(None, "examples/new_user_ratings.csv", k=10)   # training-free
    ask = fa.onboard("movielens-latest-small", n=10)   # which films to ask a new user about
    summary = fa.run_suite("demo", "runs/demo", preset="smoke")

The command line (``fewshot-apps mol predict``, ``fewshot-apps rec recommend``) is a thin
layer over :func:`predict_assay` and :func:`recommend`. Both return a DataFrame whose
``attrs`` say which model ran and what was skipped (``attrs["report"]`` holds the lines the
CLI prints). Heavy modules (torch, RDKit, PyG) load on first use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fewshot_apps.core.registry import MODELS
from fewshot_apps.domains.recsys.domain import saved_data_source
from fewshot_apps.errors import FewshotError

log = logging.getLogger("fewshot_apps")

#: The data set ``recommend`` uses when neither a model nor a data set names one.
DEFAULT_REC_DATASET = "movielens-latest-small"
#: What ``predict_assay`` fits when no model is given (the molecules' default model).
DEFAULT_MOL_BASELINE = MODELS.names(domain="molecules", default=True)[0]


# --------------------------------------------------------------------------------------------
# data sets


def load_dataset(name, **options: Any):
    """A data set by card name, card path, or your own CSV (molecules, or ratings as
    ``user,item,rating[,timestamp]``: the header decides).

    Returns the domain's data set (a
    :class:`~fewshot_apps.domains.molecules.dataset.MoleculeDataset`, a
    :class:`~fewshot_apps.domains.recsys.dataset.RecsysDataset`, ...: see
    :class:`~fewshot_apps.core.domain.DomainDataset`); ``options`` go to the domain's
    loader (``load_molecule_dataset`` / ``load_recsys_dataset``).
    """
    from fewshot_apps.core.domain import get_domain
    from fewshot_apps.plain_csv import load_card_or_csv

    card = load_card_or_csv(name) if isinstance(name, (str, Path)) else name
    return get_domain(card.domain).load(name, **options)


def describe_dataset(name, **options: Any) -> str:
    """The report of ``fewshot-apps data inspect``: what was read, the tasks and their
    split, what was skipped and why (``options``: the domain's loading options)."""
    from fewshot_apps.core.domain import get_domain
    from fewshot_apps.plain_csv import load_card_or_csv

    return get_domain(load_card_or_csv(name).domain).describe(name, **options)


def check_command(source, command: str) -> None:
    """FewshotError, before anything loads, when the data set ``source`` (a card name, card
    path or plain CSV) belongs to another command group than ``command`` (``mol`` /
    ``rec``: each domain names its own in the registry)."""
    from fewshot_apps.core.registry import DOMAINS
    from fewshot_apps.plain_csv import load_card_or_csv

    card = load_card_or_csv(source)
    mine = DOMAINS.get(card.domain)
    if mine.command != command:
        wanted = next(DOMAINS.get(n) for n in DOMAINS if DOMAINS.get(n).command == command)
        raise FewshotError(f"{card.source or card.name}: {mine.domain_noun} data; "
                           f"`fewshot-apps {command}` works on {wanted.domain_noun} data (use "
                           f"`fewshot-apps {mine.command} ...`)")


def evaluate(model, dataset, protocol: str | None = None, **options: Any):
    """Score ``model`` on the data set's test tasks with ``protocol`` (default: the data
    set's first); ``options`` (``shots``, ``support_sizes``, ``draws``, ``seeds`` ...) go
    to the data set's ``evaluate``. Returns ``(tidy results, skipped draws)``."""
    return dataset.evaluate(protocol or dataset.protocols[0], model, split="test", **options)


def mean_by_support(results: pd.DataFrame) -> pd.DataFrame:
    """Each metric's mean over tasks (draws averaged within a task first) per support
    size: the short table ``--evaluate`` prints."""
    rows = results[results["item_split"].isna() | (results["item_split"] == "all")]
    per_task = rows.groupby(["support_size", "metric", "task"])["value"].mean()
    return per_task.groupby(["support_size", "metric"]).mean().unstack("metric").reset_index()


def load_tasks(name_or_dataset, **options: Any):
    """The few-shot :class:`~fewshot_apps.core.tasks.TaskSet` of a data set (one task per
    assay or per user; train / valid / test by the card's default split)."""
    from fewshot_apps.core.domain import is_dataset

    ds = name_or_dataset if is_dataset(name_or_dataset) else load_dataset(name_or_dataset,
                                                                           **options)
    return ds.taskset


def _is_rec_dataset(obj) -> bool:
    from fewshot_apps.core.domain import is_dataset

    return is_dataset(obj) and obj.label_kind == "regression"


# --------------------------------------------------------------------------------------------
# models


def train_learner(dataset, learner: str, out_dir: str | Path,
                  settings: Mapping[str, Any] | None = None, *, resume: bool = False,
                  progress: bool = False):
    """Build ``learner`` (a meta-learner: ``protonet``, ``attention``, ``cnp``,
    ``hypernet``, ``maml``, ``anil``, ``metasgd``, ``lstm``) on the data set's encoder and
    meta-train it on its training tasks; the model is saved in ``out_dir`` (``model.pt`` +
    ``config.json``).

    ``settings`` are the flat settings of ``fewshot-apps mol train --set`` (``steps``,
    ``lr``, ``shots`` or ``support_size``, ``encoder.hidden``, ``learner.inner_steps``
    ...). Returns the trained learner, ready for :func:`predict_assay` / :func:`recommend`;
    the training summary is ``model.train_result``.
    """
    from fewshot_apps.core.domain import is_dataset
    from fewshot_apps.core.fit import train_learner as train
    from fewshot_apps.core.persistence import read_model_config

    if not is_dataset(dataset):
        dataset = load_dataset(dataset)
    model, result = train(dataset, learner, out_dir, dict(settings or {}), resume=resume,
                          progress=progress)
    model.train_result = result
    model.saved_config = read_model_config(out_dir)
    dataset.attach(model, out_dir)
    return model.eval()


def load_model(path: str | Path, dataset=None, device: str | None = None,
               learner_settings: dict | None = None):
    """A saved model (a folder with ``model.pt`` and ``config.json``), in eval mode.

    A model that reads its data set's structure (a recommendation model's item graph) gets
    it from ``dataset`` (a data set, card name or path; default: the data set named in its
    config, rebuilt with the model's saved settings), checked against what it was trained
    on (item vocabulary, meta-train user split). A molecule model needs nothing more:
    :func:`predict_assay` gives it the molecules it scores. ``learner_settings`` replace the
    saved settings of a meta-learner's adaptation, with the same weights (``{"fit_steps": 30}``
    for ``dkt``, ``{"inner_steps": 10}`` for ``maml``); a setting that the weights do not fit is
    an error.
    """
    from fewshot_apps.core.domain import load_saved_model

    return load_saved_model(path, dataset=dataset, device=device,
                            learner_settings=learner_settings)


def _with_report(table: pd.DataFrame, lines: list[str], **attrs) -> pd.DataFrame:
    """Log what a use case has to tell its user and keep it, with ``attrs``, on the table
    (``table.attrs["report"]``: the lines the CLI prints)."""
    for line in lines:
        log.info(line)
    table.attrs.update(**attrs, report=lines)
    return table


def _molecule_model(model):
    """``None`` -> the default baseline; a saved model's folder -> the loaded model; a
    baseline name or a model object -> itself."""
    baselines = MODELS.names(domain="molecules", family="classic", support_only=True)
    if model is None:
        return DEFAULT_MOL_BASELINE
    if isinstance(model, (str, Path)):
        if Path(model).is_dir():
            return load_model(model)
        if str(model) not in baselines:
            raise FewshotError(
                f"model {str(model)!r}: no saved model folder there (model.pt + config.json) "
                f"and not a training-free baseline ({', '.join(sorted(baselines))})")
    return model


# --------------------------------------------------------------------------------------------
# molecules


def _query_frame(query) -> tuple[pd.DataFrame, str]:
    from fewshot_apps.domains.molecules.predict import read_candidates
    from fewshot_apps.domains.molecules.readers import find_smiles_column

    if isinstance(query, (str, Path)):
        return read_candidates(query)
    if isinstance(query, pd.DataFrame):
        return query, find_smiles_column(query, Path("<query>"))
    if isinstance(query, pd.Series):
        return query.to_frame(name=query.name or "smiles"), query.name or "smiles"
    if isinstance(query, Iterable):
        return pd.DataFrame({"smiles": list(query)}), "smiles"
    raise FewshotError(f"query: expected a file, DataFrame or list of SMILES, not "
                       f"{type(query).__name__}")


def predict_assay(
    model,
    support_df,
    query_smiles,
    *,
    smiles_column: str | None = None,
    label_column: str | None = None,
    query_smiles_column: str | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Probability of activity for new molecules, from a few labelled ones.

    Args:
        model: a molecule model (loaded, freshly trained, or a saved model's folder) that
            adapts to the support set; or ``None`` / ``"rf"`` (also ``"knn"``, ``"logreg"``, ``"gp"``)
            for a training-free baseline on ECFP fingerprints fitted on the support set.
        support_df: the labelled molecules: a DataFrame or CSV path with a SMILES column and
            a 0/1 label column (detected by name, or ``smiles_column`` / ``label_column``).
        query_smiles: the candidates: a list of SMILES, a DataFrame or CSV (extra columns
            kept; SMILES column detected or ``query_smiles_column``), or a ``.smi`` file.

    Returns:
        The candidates (every row, input order, every column) plus ``probability`` (of
        activity; a meta-trained model's is calibrated on its validation assays by
        temperature or Platt scaling), ``rank`` (1 = most likely active), ``error``
        (RDKit's reason where the SMILES is invalid, else ""), ``warning`` (else "": a
        SMILES with whitespace inside, of which RDKit reads only the part before it; a
        candidate that is a support molecule), ``model`` and ``calibrated`` (whether the
        probability is calibrated). ``attrs``: ``model``, ``description``, ``n_support``,
        ``skipped_support``, ``warnings``, ``calibrated``, ``calibration`` (how, or why
        not) and ``report`` (lines to show a user: skipped
        support rows, support molecules given twice, with conflicting labels or not (all
        kept), and the warnings, naming rows: ``row N`` of a CSV or DataFrame (header =
        row 1), ``line N`` of a ``.smi`` file, ``item N`` (from 0) of a list).

    Raises:
        DataError: a support set with one class, fewer than 2 valid molecules, only invalid
            SMILES, or labels that are not 0/1 (before any model runs). The files are read
            and checked before torch or a saved model loads.
    """
    table, lines, scores = _assay_predictions(
        model, support_df, query_smiles, smiles_column=smiles_column, label_column=label_column,
        query_smiles_column=query_smiles_column, seed=seed)
    return _with_report(table, lines, model=scores.model, description=scores.description,
                        n_support=scores.n_support, skipped_support=scores.skipped_support,
                        warnings=scores.warnings, calibrated=scores.calibrated,
                        calibration=scores.calibration)


def _assay_predictions(model, support_df, query_smiles, *, smiles_column, label_column,
                       query_smiles_column, seed):
    """:func:`predict_assay`'s work: ``(predictions table, report lines, AssayScores)``."""
    # Light modules only until the inputs are checked: torch loads with the model or the
    # molecule store, after a bad file has had its error.
    from fewshot_apps.domains.molecules.predict import (
        check_support,
        featurizer_of,
        predictions_table,
        read_support,
        score_assay,
        support_from_frame,
    )
    from fewshot_apps.domains.molecules.readers import find_smiles_column

    if isinstance(support_df, (str, Path)):
        support_path = Path(support_df)
        support = read_support(support_path, smiles_column, label_column)
    else:
        support_path = Path("<support>")
        support = support_from_frame(pd.DataFrame(support_df), smiles_column, label_column,
                                     path=support_path)
    # Labels alone can rule the support out (one class, one row): before the candidates load.
    check_support(support, np.zeros(len(support), dtype=np.int64), [None] * len(support),
                  support_path)
    if isinstance(query_smiles, (str, Path)):
        from fewshot_apps.domains.molecules.predict import read_candidates

        query, column = read_candidates(query_smiles, query_smiles_column)
    else:
        query, column = _query_frame(query_smiles)
        if query_smiles_column is not None:
            column = find_smiles_column(query, Path("<query>"), query_smiles_column)
    smiles = [("" if not isinstance(s, str) and pd.isna(s) else str(s).strip())
              for s in query[column]]
    model = _molecule_model(model)
    featurizer = None if isinstance(model, str) else featurizer_of(model)
    scores = score_assay(model, support, smiles, featurizer=featurizer, seed=seed,
                         support_path=support_path,
                         query_where=_query_where(query, query_smiles))
    table = predictions_table(query, scores)  # the caller's index is kept too
    lines = [f"model: {scores.model} ({scores.description})",
             scores.calibration,
             f"support: {scores.n_support} molecules ({scores.n_active} active, "
             f"{scores.n_inactive} inactive)"]
    lines += [f"support row {row} skipped: invalid SMILES {smi!r}: {why}"
              for row, smi, why in scores.skipped_support]
    lines += scores.warnings
    n_bad = int((table["error"] != "").sum())
    if n_bad:
        lines.append(f"{n_bad} of {len(table)} candidate(s) have SMILES RDKit cannot parse: "
                     "kept with an error and no probability")
    n_warned = int((table["warning"] != "").sum())
    if n_warned:
        lines.append(f"{n_warned} of {len(table)} candidate(s) have a warning (the warning "
                     "column): scored, but check them")
    return table, lines, scores


def suggest_assays(
    model,
    support_df,
    candidates,
    budget: int,
    *,
    strategy: str = "ucb",
    beta: float = 1.0,
    diversity: float | None = None,
    smiles_column: str | None = None,
    label_column: str | None = None,
    query_smiles_column: str | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Which ``budget`` candidates to measure next, from a few labelled molecules.

    Scores the candidates as :func:`predict_assay` does (same inputs, checks and warnings),
    then picks a batch with ``strategy`` (``greedy``, ``uncertainty`` or ``ucb``; ``beta``:
    the ucb exploration weight; ``diversity``: the weight of the max-Tanimoto penalty, default
    0 for greedy and uncertainty, 0.5 for ucb): see
    :mod:`fewshot_apps.domains.molecules.suggest`.

    Returns:
        Every candidate row (input order, its columns) plus ``probability``, ``uncertainty``,
        ``similarity``, ``score``, ``pick`` (1..budget, empty when not picked), ``reason``,
        ``error``, ``warning``, ``model`` and ``strategy``; ``attrs["report"]``: the lines to
        show a user.

    Raises:
        FewshotError: a bad option (budget < 1, unknown strategy, negative beta/diversity),
            before any file is read; DataError: as :func:`predict_assay`.
    """
    from fewshot_apps.domains.molecules.suggest import check_options, suggestions_table

    check_options(budget, strategy, beta, diversity)
    predictions, report, scores = _assay_predictions(
        model, support_df, candidates, smiles_column=smiles_column, label_column=label_column,
        query_smiles_column=query_smiles_column, seed=seed)
    table, lines = suggestions_table(predictions, scores.molecules, budget, strategy=strategy,
                                     beta=beta, diversity=diversity)
    n_picked = int(table["pick"].notna().sum())
    lines = [*report, *lines,
             f"suggested {n_picked} of {len(table)} candidate(s) to measure next"]
    return _with_report(table, lines, model=scores.model, description=scores.description,
                        n_support=scores.n_support, strategy=strategy, n_picked=n_picked,
                        calibrated=scores.calibrated, calibration=scores.calibration)


def _query_where(query: pd.DataFrame, given) -> list[str]:
    """How report lines name each candidate: ``line N`` of a .smi file, ``row N`` of a CSV
    or DataFrame (header = row 1, as a spreadsheet shows it), ``item N`` of a list."""
    if "line" in query.attrs:
        return [f"line {n}" for n in query.attrs["line"]]
    if isinstance(given, (str, Path, pd.DataFrame)):
        return [f"row {i + 2}" for i in range(len(query))]
    return [f"item {i}" for i in range(len(query))]


# --------------------------------------------------------------------------------------------
# recommendation


def _rec_dataset_for(model, dataset):
    if dataset is not None:
        return dataset if _is_rec_dataset(dataset) else load_dataset(dataset)
    attached = getattr(model, "rec_dataset", None)
    if attached is not None:
        return attached
    saved = getattr(model, "saved_config", None) or {}
    return load_dataset(saved_data_source(saved, getattr(model, "model_path", "the model"))
                        or DEFAULT_REC_DATASET)


def _scorer(model, dataset):
    from fewshot_apps.domains.recsys.recommend import (
        PopularitySimilarity,
        default_scorer,
        model_scorer,
    )

    if model is None or (isinstance(model, str) and model in ("default", PopularitySimilarity.name)):
        return default_scorer(_rec_dataset_for(None, dataset))
    if isinstance(model, str) and not Path(model).is_dir():
        ds = _rec_dataset_for(None, dataset)
        return model_scorer(_named_baseline(model, ds), ds)
    if isinstance(model, (str, Path)):
        model = load_model(model, dataset)
    if not callable(getattr(model, "fit_predict", None)):
        raise FewshotError(f"{type(model).__name__} cannot recommend: expected a saved "
                           "recommendation model, a learner, or a baseline with fit_predict")
    if getattr(model, "kind", "regression") != "regression":
        raise FewshotError(f"model {getattr(model, 'name', '?')!r} predicts {model.kind}, "
                           "not ratings: it is not a recommendation model")
    ds = _rec_dataset_for(model, dataset)
    encoder = getattr(model, "encoder", None)
    if encoder is not None and callable(getattr(encoder, "set_graph", None)) and \
            getattr(encoder, "graph", None) is not ds.graph:
        try:
            encoder.set_graph(ds.graph)
        except ValueError as err:
            raise FewshotError(f"{err}; use the data set the model was trained on") from None
    return model_scorer(model, ds)


def _check_baseline_name(name: str) -> None:
    baselines = MODELS.names(domain="recsys", family="classic")
    if name not in baselines:
        raise FewshotError(f"model {name!r}: no saved model folder there, nor one of "
                           f"default, {', '.join(sorted(baselines))}")


def _named_baseline(name: str, dataset):
    """A classic rating baseline fitted on ``dataset``, with its 90% rating interval fitted on
    the validation users (cached on the data set object: ``mf`` takes seconds to fit)."""
    from fewshot_apps.core.calibration import calibrate
    from fewshot_apps.core.fit import episode_settings
    from fewshot_apps.domains.recsys.baselines import build_rec_baseline

    _check_baseline_name(name)
    cache = dataset.__dict__.setdefault("_fewshot_baselines", {})
    if name not in cache:
        cache[name] = build_rec_baseline(name, dataset)
        # its 90% rating interval, fitted on the validation users as a benchmark run does
        calibrate(cache[name], dataset, episode_settings(dataset, {}), seed=0)
    model = cache[name]
    model.rec_dataset = dataset
    return model


def _saved_dataset(model) -> str | None:
    """The data set a saved model's ``config.json`` names (None when unreadable: loading
    the model reports that). FewshotError for a saved model of another domain: its data set
    is no ratings data set to look for."""
    import json

    config_path = Path(model) / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return None
    domain = config.get("domain")
    if isinstance(domain, str) and domain != "recsys":
        learner = config.get("learner")
        name = learner.get("name", "?") if isinstance(learner, dict) else "?"
        raise FewshotError(f"{model}: model {name!r} was trained on {domain} data, not "
                           "ratings: it is not a recommendation model")
    return saved_data_source(config, model)


def _check_before_loading(model, dataset, ratings: pd.DataFrame, path, k: int,
                          min_item_ratings: int) -> None:
    """What ``recommend`` can check in milliseconds, before torch and the data set load
    (seconds): the options, a baseline's name, that the data set is there, and the ratings
    against the rating scale its card declares. Anything it cannot know here (a plain CSV's
    observed scale, unknown item ids) is checked after loading."""
    from fewshot_apps.domains.recsys.readers import declared_scale
    from fewshot_apps.domains.recsys.recommend import (
        PopularitySimilarity,
        check_options,
        check_rating_scale,
    )
    from fewshot_apps.plain_csv import load_card_or_csv

    check_options(k, min_item_ratings)
    if dataset is None and getattr(model, "rec_dataset", None) is not None:
        dataset = model.rec_dataset
    if _is_rec_dataset(dataset):
        check_rating_scale(ratings, dataset.scale, dataset.name, path)
        return
    source = dataset
    if source is None:
        if model is None or isinstance(model, str) and not Path(model).is_dir():
            if model not in (None, "default", PopularitySimilarity.name):
                _check_baseline_name(model)
            source = DEFAULT_REC_DATASET
        elif isinstance(model, (str, Path)):
            source = _saved_dataset(model)
        else:
            saved = getattr(model, "saved_config", None) or {}
            source = saved_data_source(saved, getattr(model, "model_path", "the model"))
    if not source:
        return
    card = load_card_or_csv(source)
    if card.domain != "recsys":
        return  # loading it says so
    card.require_present()
    reader = {key.replace("-", "_"): value
              for table in (card.split, card.options) for key, value in table.items()}
    check_rating_scale(ratings, declared_scale(card.format, reader), card.name, path)


def recommend(model, ratings_df, k: int = 10, *, dataset=None,
              exclude_rated: bool = True, min_item_ratings: int = 0,
              item_column: str | None = None,
              rating_column: str | None = None, user_column: str | None = None) -> pd.DataFrame:
    """Top-``k`` items for a new user from a few ratings (one list per user if the ratings
    have a user column).

    Args:
        model: a recommendation model (loaded, freshly trained, or a saved model's folder),
            a baseline name (``"mf"``, ``"popularity"``, ...), any object with
            ``fit_predict`` over item indices, or ``None`` / ``"default"``: the training-free
            item popularity blended with item-feature similarity to the rated items.
        ratings_df: a DataFrame or CSV path: item ids of the data set (``item`` / ``movieId``
            ...) and ratings (``rating``), optionally ``user``.
        dataset: a RecsysDataset, card name, card.toml or plain ratings CSV (default: the
            model's, else ``movielens-latest-small``).
        exclude_rated: leave out the items each user rated.
        min_item_ratings: recommend only items with at least this many training ratings
            (rating models rank films rated once or twice too high; 0: no filter).

    Returns:
        ``[user,] rank, item, [title,] score, [rating_low, rating_high,] model``; ``score``
        is the predicted rating (models) or the blended score (default); ``rating_low`` /
        ``rating_high``: the 90% prediction interval of the predicted rating (split
        conformal, fitted on the model's validation users), for a model that has one. ``attrs``: ``model``, ``description``,
        ``unknown_items`` (``(user, row, item)`` ids the model does not know: reported,
        not used), ``skipped_users``, ``report`` (lines to show a user).
    """
    from fewshot_apps.domains.recsys.recommend import (
        ratings_from_frame,
        read_ratings,
        recommend_items,
    )

    path = None
    if isinstance(ratings_df, (str, Path)):
        path = Path(ratings_df)
        ratings = read_ratings(path, item_column, rating_column, user_column)
    else:
        ratings = ratings_from_frame(pd.DataFrame(ratings_df), item_column, rating_column,
                                     user_column, path="<ratings>")
    _check_before_loading(model, dataset, ratings, path, int(k), int(min_item_ratings))
    scorer = _scorer(model, dataset)
    table, report = recommend_items(scorer, ratings, int(k), exclude_rated=exclude_rated,
                                    min_item_ratings=int(min_item_ratings), path=path)
    return _with_report(table, report.lines(), model=report.model,
                        description=report.description, unknown_items=report.unknown_items,
                        skipped_users=report.skipped_users)


def onboard(dataset=None, n: int = 10, *, model=None, strategy: str = "informative",
            seed: int = 0, redundancy_weight: float = 1.0) -> pd.DataFrame:
    """Which ``n`` items to ask a brand-new user to rate first (``fewshot-apps rec
    onboard``): items many users know whose ratings tell users apart, unlike each other.

    Args:
        dataset: a RecsysDataset, card name, card.toml or plain ratings CSV (default: the
            model's data set, else ``movielens-latest-small``).
        n: how many items (1 .. the number of items).
        model: optional; a saved model's folder, a trained learner, or ``mf`` / ``item-knn``:
            its item embeddings (or factors, or item-to-item similarity) measure how alike
            two items are. Default: item-knn's co-rating similarity of the data set's
            meta-train users.
        strategy: ``informative`` (greedy: log popularity x rating spread, minus
            ``redundancy_weight`` x the largest similarity to the items above), ``divisive``
            (log popularity x rating spread), ``popular`` (most rated) or ``random``
            (seeded by ``seed``): see :mod:`fewshot_apps.domains.recsys.onboard`.

    Returns:
        One row per item, in the order to ask: ``rank, item, [title,] n_ratings,
        popularity, spread, redundancy, score, strategy``; ``attrs``: ``strategy``,
        ``dataset``, ``similarity`` (what redundancy measures) and ``report`` (the lines to
        show a user). FewshotError for ``n`` below 1 or above the number of items, an
        unknown strategy or data set, or a model without item embeddings (checked before
        anything heavy loads where it can be).
    """
    from fewshot_apps.domains.recsys.onboard import (
        check_options,
        co_rating_similarity,
        model_similarity,
        onboarding_table,
    )

    check_options(n, strategy, redundancy_weight)
    if isinstance(dataset, (str, Path)):
        check_command(dataset, "rec")
    if isinstance(model, str) and model == "default":  # as in recommend: no model
        model = None
    if model is None:
        ds = _rec_dataset_for(None, dataset)
        similarity = co_rating_similarity(ds)
    else:
        if isinstance(model, str) and not Path(model).is_dir():
            _check_baseline_name(model)
        scorer = _scorer(model, dataset)
        ds = scorer.dataset
        similarity = model_similarity(scorer.model, ds, name=scorer.name)
    table, lines = onboarding_table(ds, int(n), strategy, similarity=similarity, seed=seed,
                                    redundancy_weight=redundancy_weight)
    return _with_report(table, lines, strategy=strategy, dataset=ds.name,
                        similarity=similarity.description)


def check_run_folder(out_dir: str | Path, resume: bool = False) -> None:
    """FewshotError, in milliseconds, for an ``out_dir`` that cannot take a new training run:
    a file, or (unless ``resume``) a folder that already holds a trained model."""
    from fewshot_apps.core.persistence import check_new_run
    from fewshot_apps.paths import check_output_folder

    check_output_folder(out_dir)
    check_new_run(out_dir, resume)


def train_from_source(source, learner: str, out_dir: str | Path, settings: Mapping[str, Any],
                      *, resume: bool = False, progress: bool = True,
                      load_options: Mapping[str, Any] | None = None, report=None):
    """Load ``source`` and meta-train ``learner`` on it, also under ``torchrun``: the process
    group spans loading and training, rank 0 builds the data cache first, and only rank 0
    calls ``report(dataset, model)``. Returns the model."""
    from fewshot_apps.core import distributed

    settings = dict(settings)
    check_train_settings(learner, settings)  # in milliseconds, not after minutes of featurizing
    with distributed.process_group(settings.get("device", "auto")):
        with distributed.main_process_first():
            ds = load_dataset(source, progress=progress and distributed.is_main_process(),
                              **dict(load_options or {}))
        model = train_learner(ds, learner, out_dir, settings, resume=resume, progress=progress)
        if report is not None and distributed.is_main_process():
            report(ds, model)
    return model


def check_train_settings(learner: str, settings: Mapping[str, Any]) -> None:
    """FewshotError, before any data set loads, for what training would refuse only after it:
    an unknown meta-learner, an unknown ``learner.<key>``, or a learner or training setting of
    the wrong kind or out of range (``learner.inner_lr=-1``, ``lr=0``). Episode and encoder
    settings depend on the data set and are checked when it is loaded."""
    from fewshot_apps.core.learners import learner_class
    from fewshot_apps.core.settings import TrainConfig, prefixed, train_keys

    learner_class(learner).Config.from_dict(prefixed(settings, "learner."), learner=learner)
    known = train_keys()
    TrainConfig.from_dict({key: value for key, value in settings.items() if key in known})


def read_name_list(path: str | Path) -> list[str]:
    """Names from a text file, one per line (``#`` comments and blank lines skipped): the
    ``--test-assays-file`` of a molecule CSV's split."""
    from fewshot_apps.domains.molecules.readers import read_name_list as read

    return read(path)


def save_ensemble(members: list[str | Path], out_dir: str | Path) -> Path:
    """Save an ensemble of trained models (their folders: ``mol train``, ``rec train`` or a
    suite's ``models/``) to ``out_dir``: it predicts the mean of their predictions (each
    member's calibrated probabilities, or ratings), and loads, evaluates and predicts as any
    saved model does. The members are copied into ``out_dir/members/``; they must be trained
    on the same data set, read the same way. Returns ``out_dir``."""
    from fewshot_apps.core.ensemble import save_ensemble as save

    return save(members, out_dir)


def evaluate_saved_model(model: str | Path, suite: str, out: str | Path, **options: Any):
    """Score a saved model with a suite's protocol on its test tasks (no training); see
    :func:`fewshot_apps.bench.runner.evaluate_saved_model`. Returns the summary."""
    from fewshot_apps.bench.runner import evaluate_saved_model as run

    return run(model, suite, out, **options)


def run_suite(suite: str, out: str | Path, learners: list[str] | None = None,
              preset: str = "fast", **options: Any) -> pd.DataFrame:
    """Run a benchmark suite (``demo``, ``tox21``, ... or a ``.toml``) into ``out`` and
    return its summary DataFrame (also ``out/summary.csv``); see
    :func:`fewshot_apps.bench.runner.run_suite` for ``seeds``, ``device``, ``progress``."""
    from fewshot_apps.bench.runner import run_suite as run

    options.setdefault("progress", False)
    return run(suite, out, learners=learners, preset=preset, **options)


__all__ = [
    "DEFAULT_MOL_BASELINE", "DEFAULT_REC_DATASET", "describe_dataset", "evaluate",
    "load_dataset", "load_model", "load_tasks", "onboard", "predict_assay", "recommend",
    "run_suite", "train_learner",
]
