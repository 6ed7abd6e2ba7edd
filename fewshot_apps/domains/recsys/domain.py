"""The recommendation domain: rating data cards -> :class:`RecsysDataset`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fewshot_apps.core.domain import Domain, is_dataset
from fewshot_apps.errors import FewshotError


class RecsysDomain(Domain):
    """Cold-start recommendation: one task per user, ratings as labels."""

    csv_expectation = ("user, item and rating columns (user or userId, item or movieId, "
                       "rating[, timestamp][, split[, role]]) for ratings")

    def card_for_csv(self, csv):
        """A CSV with user, item and rating columns (format ``interactions-csv`` with the
        columns found, the file's delimiter, and the observed rating range as the scale).
        User and item columns alone (and a timestamp) are implicit feedback, every row a
        positive (the learners then train their implicit objective only); user and item
        columns with other columns but no rating are refused. A ``split`` column (train / valid / test, and optionally ``role``:
        support / query) makes it a fixed split
        (:mod:`~fewshot_apps.domains.recsys.readers.fixed_split`)."""
        from fewshot_apps.errors import DataError
        from fewshot_apps.plain_csv import DELIMITERS
        from fewshot_apps.sources import Card

        from .recommend import ITEM_COLUMN_NAMES, RATING_COLUMN_NAMES, USER_COLUMN_NAMES

        user, item = csv.find(USER_COLUMN_NAMES), csv.find(ITEM_COLUMN_NAMES)
        if user is None or item is None:
            return None
        rating = csv.find(RATING_COLUMN_NAMES)
        timestamp = csv.find(("timestamp",))
        if rating is None:
            # Only bare pairs are implicit feedback: another column (clicked, bought, a 0/1
            # flag) may say that some rows are NOT positives, which a pair cannot carry.
            others = [c for c in csv.columns if c not in (user, item, timestamp)]
            if others:
                raise DataError(
                    csv.path,
                    f"user and item columns but no rating column (columns: {csv.shown}); a "
                    f"plain ratings CSV needs one named {' or '.join(RATING_COLUMN_NAMES)}, "
                    "or only user, item [and timestamp] columns for implicit feedback (every "
                    "row a positive); other columns need a card", row=1)
            return Card(
                name=csv.name, domain="recsys", format="interactions-csv",
                root=csv.path.parent, files={"ratings": csv.path.name}, source=csv.path,
                title=f"{csv.path.name} (plain CSV, implicit feedback: user {user!r}, item "
                      f"{item!r}" + (f", timestamp {timestamp!r}" if timestamp
                                     else ", no timestamp") + ")",
                options={"user_col": user, "item_col": item, "rating_col": "",
                         "implicit": True, "timestamp_col": timestamp or "",
                         "delimiter": csv.delimiter})
        split, role = csv.find(("split",)), csv.find(("role",))
        if role and not split:
            raise DataError(
                csv.path, f"a {role!r} column (support / query) but no split column (columns: "
                f"{csv.shown}); a fixed split needs a column named split (train, valid or test) "
                "on every row", row=1)
        where = "" if csv.delimiter == "," else f"; {DELIMITERS[csv.delimiter]}-separated"
        if split:
            where += f"; fixed split from {split!r}" + (f", roles from {role!r}" if role else "")
        return Card(
            name=csv.name, domain="recsys", format="interactions-csv", root=csv.path.parent,
            files={"ratings": csv.path.name}, source=csv.path,
            title=f"{csv.path.name} (plain CSV: user {user!r}, item {item!r}, rating {rating!r}"
                  + (f", timestamp {timestamp!r}" if timestamp else ", no timestamp") + where
                  + ")",
            options={"user_col": user, "item_col": item, "rating_col": rating,
                     "timestamp_col": timestamp or "", "delimiter": csv.delimiter,
                     **({"split_col": split, "role_col": role or ""} if split else {})})

    def csv_missing(self, csv) -> str | None:
        from .recommend import ITEM_COLUMN_NAMES, USER_COLUMN_NAMES

        lacking = [what for what, names in (("user", USER_COLUMN_NAMES),
                                            ("item", ITEM_COLUMN_NAMES)) if not csv.find(names)]
        return f"no {' and '.join(lacking)} column" if lacking else None

    def check_dataset_options(self, options: dict) -> dict:
        """A suite may run one fold of a cross-validation over users: ``folds = N`` and
        ``fold = f`` (a preset's ``folds = N`` sets both, one variant per fold), read as the
        cold-start settings ``user_folds`` and ``user_fold``."""
        from .config import ColdStartConfig

        unknown = sorted(set(options) - {"folds", "fold"})
        if unknown:
            raise FewshotError(f"dataset options {', '.join(map(repr, unknown))}: rating data "
                               "sets accept none but folds and fold (set by a suite preset's "
                               "folds = N: cross-validation over users)")
        if not options:
            return {}
        if set(options) != {"folds", "fold"}:
            raise FewshotError("dataset options folds and fold go together: folds = N user "
                               "folds, fold = the one tested (0 .. N - 1)")
        config = ColdStartConfig(user_folds=options["folds"], user_fold=options["fold"])
        return {"user_folds": config.user_folds, "user_fold": config.user_fold}

    def load(self, source, **options: Any):
        """A card name, a card (or card.toml path) or a plain ratings CSV; ``options`` go to
        :func:`~fewshot_apps.domains.recsys.dataset.load_recsys_dataset` (cold-start
        settings, ``seed``, ``data_dir``)."""
        from .dataset import load_recsys_dataset

        options.pop("progress", None)  # loading rating tables shows no progress
        return load_recsys_dataset(source, **options)

    def describe(self, source, **options: Any) -> str:
        from .inspect import inspect_dataset

        options.pop("progress", None)
        given = sorted(k for k, v in options.items() if v is not None)
        if given:
            raise FewshotError(f"{', '.join(given)}: molecule split options; they do not "
                               "apply to rating data")
        from fewshot_apps.plain_csv import load_card_or_csv

        return inspect_dataset(load_card_or_csv(source))

    def dataset_for_model(self, config: dict, path, dataset=None):
        """The data set a rating model predicts over: ``dataset`` if given, else the one its
        config names, rebuilt as it was at training time (user-split seed and fractions
        included)."""
        if dataset is None:
            dataset = saved_data_source(config, path)
            if not dataset:
                raise FewshotError(f"{path}: the model's config names no data set; pass dataset=")
        if not is_dataset(dataset):
            dataset = self.load(dataset, **config.get("cold_start", {}))
        return dataset


def saved_data_source(config: dict, where) -> str | None:
    """The data set a model's config names: the user's card or plain CSV it was trained on
    (``dataset_source``, a path), else the card name. FewshotError when that file has moved,
    saying to pass the data set."""
    source = config.get("dataset_source")
    if not source:
        return config.get("dataset")
    if not Path(source).exists():
        raise FewshotError(f"{where}: the model was trained on {source}, which is not there any "
                           "more; pass its data set (--dataset, or dataset=)")
    return source
