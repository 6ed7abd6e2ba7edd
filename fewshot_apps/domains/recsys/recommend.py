"""Recommend for new users: a few ratings -> the top-k items they have not rated.

* :func:`read_ratings` / :func:`ratings_from_frame`: a user's ratings (item ids of the data
  set and ratings; an optional user column gives one list per user) -> ``user, item,
  rating, row``. Column names are detected (``movieId``, ``item``, ``rating`` ...) or given.
* Scorers map one user's rated items to a score for every item of the vocabulary:

  - :class:`PopularitySimilarity`: the training-free default, item popularity blended with
    the cosine similarity of each item's features to the user's taste profile;
  - :class:`ModelScorer`: a meta-learned model (or any ``fit_predict`` baseline such as
    ``mf``) adapted to the user's ratings; predicted ratings are the scores. The item
    graph's embeddings are computed once per model and reused for every user. A model with
    a prediction interval (the 90% split-conformal one fitted on validation users,
    :mod:`fewshot_apps.core.calibration`) gives ``rating_low`` / ``rating_high`` too.

* :func:`recommend_items`: ranks, per user, every item the user has not rated. Item ids the
  vocabulary does not know are reported (:class:`RecommendReport`), never silently dropped.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fewshot_apps.core.registry import MODELS, registered_name
from fewshot_apps.errors import DataError, FewshotError, missing_file

#: Column names tried in order (case-insensitive) when none is given.
ITEM_COLUMN_NAMES = ("item", "item_id", "itemid", "movieid", "movie_id", "movie", "id")
RATING_COLUMN_NAMES = ("rating", "ratings", "score", "stars")
USER_COLUMN_NAMES = ("user", "user_id", "userid")


# --------------------------------------------------------------------------------------------
# reading


def _pick(frame: pd.DataFrame, names: tuple[str, ...], given: str | None, path: Path | None,
          what: str, required: bool) -> str | None:
    if given is not None:
        if given not in frame.columns:
            raise DataError(path, f"no column {given!r}; columns are {list(frame.columns)}")
        return given
    lowered = {str(c).lower().strip(): c for c in frame.columns}
    for name in names:
        if name in lowered:
            return lowered[name]
    if required:
        raise DataError(path, f"no {what} column: expected one named {' or '.join(names[:4])} "
                        f"(columns are {list(frame.columns)[:12]}); pass the column name "
                        f"explicitly (--{what}-column)")
    return None


def ratings_from_frame(
    frame: pd.DataFrame,
    item_column: str | None = None,
    rating_column: str | None = None,
    user_column: str | None = None,
    *,
    path: str | Path | None = None,
    rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """A ratings table -> ``user`` (str; "" without a user column), ``item`` (str, as
    written), ``rating`` (float64), ``row`` (the row errors cite; default spreadsheet rows).

    Other columns (titles, notes) are ignored. Without a rating column every listed item
    counts as liked (``rating`` NaN, filled with the top of the scale by the recommender).
    A blank item or user id or a rating that is not a number raises :class:`DataError`
    naming the row. A repeated (user, item) keeps its last rating.
    """
    path = None if path is None else Path(path)
    if frame.empty:
        raise DataError(path, "the ratings table has no rows")
    item_col = _pick(frame, ITEM_COLUMN_NAMES, item_column, path, "item", True)
    rating_col = _pick(frame, RATING_COLUMN_NAMES, rating_column, path, "rating", False)
    user_col = _pick(frame, USER_COLUMN_NAMES, user_column, path, "user", False)
    rows = np.arange(2, len(frame) + 2) if rows is None else np.asarray(rows)

    def text(col) -> pd.Series:
        # A list comprehension: pandas string methods cost ms per call on tiny frames.
        values = frame[col].tolist()
        return pd.Series(["" if v is None or v != v else str(v).strip() for v in values],
                         dtype=object)

    items = text(item_col)
    blank = np.flatnonzero(items.eq("").to_numpy())
    if len(blank):
        raise DataError(path, f"blank item id in column {item_col!r}", row=int(rows[blank[0]]))
    if rating_col is None:
        ratings = np.full(len(frame), np.nan)
    else:
        raw = text(rating_col)
        ratings = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(ratings))
        if len(bad):
            raise DataError(path, f"rating {raw.iat[bad[0]]!r} in column {rating_col!r} is not "
                            "a number", row=int(rows[bad[0]]))
    users = text(user_col) if user_col is not None else pd.Series([""] * len(frame))
    blank = np.flatnonzero(users.eq("").to_numpy()) if user_col is not None else []
    if len(blank):  # "" stands for "no user column": a blank id would pass for one
        raise DataError(path, f"blank user id in column {user_col!r}", row=int(rows[blank[0]]))
    out = pd.DataFrame({"user": users.to_numpy(dtype=object), "item": items.to_numpy(dtype=object),
                        "rating": ratings, "row": rows.astype(np.int64)})
    out = out.drop_duplicates(["user", "item"], keep="last").reset_index(drop=True)
    out.attrs["implicit"] = rating_col is None
    out.attrs["duplicates"] = len(frame) - len(out)
    return out


def read_ratings(path: str | Path, item_column: str | None = None,
                 rating_column: str | None = None, user_column: str | None = None) -> pd.DataFrame:
    """A ratings CSV (comma, tab or semicolon separated; gzipped or not; UTF-8) -> see
    :func:`ratings_from_frame`. Errors name the file."""
    import csv
    import gzip
    import io
    import zlib

    path = Path(path)
    if not path.is_file():
        raise DataError(path, missing_file(path))
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise DataError(path, f"truncated or corrupt gzip file ({exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(path, f"byte 0x{raw[exc.start]:02x} is not valid UTF-8; expected UTF-8 "
                        "text (a latin-1 file? save it as UTF-8)",
                        row=raw.count(b"\n", 0, exc.start) + 1) from None
    if not text.strip():
        raise DataError(path, "the file is empty")
    header = text.lstrip().splitlines()[0]
    sep = max((",", "\t", ";"), key=header.count)  # the separator the header uses most
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                            skip_blank_lines=True, quoting=csv.QUOTE_MINIMAL)
    except pd.errors.ParserError as exc:
        raise DataError(path, f"malformed CSV: {exc}") from None
    return ratings_from_frame(frame, item_column, rating_column, user_column, path=path)


def check_options(k: int, min_item_ratings: int) -> None:
    """FewshotError for a ``k`` below 1 or a negative ``min_item_ratings``."""
    if k < 1:
        raise FewshotError(f"k (--top-k) must be at least 1, not {k}")
    if min_item_ratings < 0:
        raise FewshotError(f"min_item_ratings must be 0 or more, not {min_item_ratings}")


def check_rating_scale(ratings: pd.DataFrame, scale, dataset_name: str,
                       path: str | Path | None) -> None:
    """:class:`DataError` naming the row of the first rating outside ``scale`` (a
    :class:`~fewshot_apps.domains.recsys.readers.RatingScale`; None, or ratings without a
    rating column: nothing to check)."""
    if scale is None or ratings.attrs.get("implicit") or ratings["rating"].isna().all():
        return
    bad = np.flatnonzero(scale.invalid(ratings["rating"].to_numpy()))
    if len(bad):
        i = bad[0]
        raise DataError(path, f"rating {ratings['rating'].iat[i]:g} is outside "
                        f"{dataset_name}'s rating scale {scale}", row=int(ratings["row"].iat[i]))


# --------------------------------------------------------------------------------------------
# scorers


def item_titles(dataset) -> np.ndarray | None:
    """Titles in vocabulary order, or None when the data set has none."""
    items = getattr(getattr(dataset, "data", None), "items", None)
    if items is None or "title" not in items.columns:
        return None
    titles = items.drop_duplicates("item").set_index("item")["title"]
    titles = titles.reindex(pd.Index(dataset.item_vocab.ids)).fillna("").astype(str)
    return None if not titles.str.strip().ne("").any() else titles.to_numpy(dtype=object)


class PopularitySimilarity:
    """The training-free default: ``(1 - w) * popularity + w * similarity``.

    * popularity: ``log1p(count) / log1p(max count)`` of meta-train ratings per item, in
      [0, 1]; the log keeps a blockbuster from burying everything else.
    * similarity: cosine between each item's feature row (genres, year, tags; L2-normalized)
      and the user's taste profile ``sum_i (r_i - neutral) * f_i``, with ``neutral`` the
      middle of the rating scale, so liked items pull toward their genres and disliked ones
      push away. In [-1, 1]; 0 when the profile is empty.

    Args:
        dataset: a :class:`~fewshot_apps.domains.recsys.dataset.RecsysDataset`.
        similarity_weight: ``w`` above.
    """

    name = registered_name(MODELS)
    family = "training-free"

    def __init__(self, dataset, similarity_weight: float = 0.5):
        if not 0.0 <= similarity_weight <= 1.0:
            raise FewshotError(f"similarity_weight must be in [0, 1], not {similarity_weight}")
        self.dataset = dataset
        self.weight = float(similarity_weight)
        count = np.asarray(dataset.item_stats.count, dtype=np.float64)
        top = np.log1p(count.max()) if count.size and count.max() > 0 else 1.0
        self.popularity = np.log1p(count) / top
        features = dataset.item_features.matrix().astype(np.float64)
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        self.features = np.divide(features, norms, out=np.zeros_like(features), where=norms > 0)
        scale = dataset.scale
        self.neutral = 0.0 if scale is None else (scale.low + scale.high) / 2
        self.titles = item_titles(dataset)

    def describe(self) -> str:
        return (f"training-free default: item popularity blended with item-feature similarity "
                f"to the rated items (similarity weight {self.weight:g}) on {self.dataset.name}")

    def scores(self, item_index: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """float64 ``[n_items]`` for a user who rated ``item_index`` with ``ratings``."""
        weights = np.asarray(ratings, dtype=np.float64) - self.neutral
        profile = weights @ self.features[np.asarray(item_index, dtype=np.int64)]
        norm = np.linalg.norm(profile)
        similarity = self.features @ (profile / norm) if norm > 0 else 0.0
        return (1 - self.weight) * self.popularity + self.weight * similarity


def default_scorer(dataset, similarity_weight: float = 0.5) -> PopularitySimilarity:
    """The training-free scorer of ``dataset``, built once per data set object."""
    cached = getattr(dataset, "_fewshot_default_scorer", None)
    if cached is not None and cached.weight == similarity_weight:
        return cached
    scorer = PopularitySimilarity(dataset, similarity_weight)
    with contextlib.suppress(AttributeError):
        dataset._fewshot_default_scorer = scorer
    return scorer


@contextlib.contextmanager
def _one_torch_thread():
    """Per-user work is tiny (adapt on a few ratings, one pass over the cached item table):
    torch's intra-op threads cost more in wake-ups than they save. Measured on 2 shared
    cores: 170 ms per user with 2 threads, 7 ms with 1. Switching costs < 1 us."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _param_version(model) -> tuple:
    """Changes whenever a parameter is updated in place (optimizer steps, load_state_dict)."""
    params = getattr(model, "parameters", None)
    return tuple(p._version for p in params()) if callable(params) else ()


class ModelScorer:
    """A model with ``fit_predict(support_item_indices, ratings, query_item_indices)``.

    For a meta-learner whose encoder splits into trunk and last layer, the trunk outputs of
    every item are computed once here (one pass over the item graph) and looked up for every
    user; the meta-learner then adapts only on cached embeddings (~ms per user).
    """

    def __init__(self, model, dataset):
        self.model = model
        self.dataset = dataset
        self.name = getattr(model, "name", type(model).__name__)
        self.all_items = np.arange(len(dataset.item_vocab), dtype=np.int64)
        self._frozen = None
        self.version = _param_version(model)
        self.titles = item_titles(dataset)
        encoder = getattr(model, "encoder", None)
        if encoder is not None and callable(getattr(encoder, "forward_trunk", None)):
            from fewshot_apps.core.evaluation import FrozenTrunk

            was_training = model.training
            model.eval()
            try:
                self._frozen = FrozenTrunk(encoder, self.all_items,
                                           batch_size=max(len(self.all_items), 1))
            finally:
                model.train(was_training)

    def describe(self) -> str:
        saved = getattr(self.model, "saved_config", None) or {}
        if getattr(self.model, "family", None) == "classic":
            return f"classic {self.name} baseline fitted on {self.dataset.name}"
        where = saved.get("dataset") or self.dataset.name
        return f"meta-learned {self.name} trained on {where}, adapted to the user's ratings"

    def interval(self, item_index: np.ndarray, ratings: np.ndarray, items: np.ndarray,
                 scores: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """``(low, high)``: the model's 90% prediction interval of its predicted ratings of
        ``items`` (clipped to the rating scale), or None when it has none. ``scores``: what
        :meth:`scores` gave for this user (the predicted ratings, unless the model ranks
        by ``fit_rank``)."""
        from fewshot_apps.core.calibration import model_calibration

        calibration = model_calibration(self.model)
        if not calibration.has_interval:
            return None
        items = np.asarray(items, dtype=np.int64)
        if not self.ranks_by_own_score:
            predicted = np.asarray(scores, dtype=np.float64)[items]
        else:
            predicted = np.asarray(self.model.fit_predict(item_index, ratings, items),
                                   dtype=np.float64)
        low, high = calibration.interval(predicted)
        scale = self.dataset.scale
        if scale is not None:
            low, high = np.clip(low, scale.low, scale.high), np.clip(high, scale.low, scale.high)
        return low, high

    def interval_note(self) -> str | None:
        """The report line about ``rating_low`` / ``rating_high`` (None without them)."""
        from fewshot_apps.core.calibration import model_calibration

        calibration = model_calibration(self.model)
        if not calibration.has_interval:
            return None
        return (f"rating_low, rating_high: the {calibration.describe()} (clipped to the "
                "rating scale)")

    @property
    def ranks_by_own_score(self) -> bool:
        """Whether :meth:`scores` are the model's own ranking scores (``fit_rank``) rather
        than its predicted ratings: a model with ``fit_rank`` (item-knn, a meta-learner
        with an implicit head) unless it ranks by rating alone (``rank_share`` 1: a
        meta-learner trained without the implicit objective, or saved before it existed)."""
        if getattr(self.model, "fit_rank", None) is None:
            return False
        return float(getattr(self.model, "rank_share", 0.0)) < 1.0

    def ranked_by(self) -> str:
        """What the ``score`` column is, for the report."""
        if not self.ranks_by_own_score:
            return "score: the predicted rating"
        a = getattr(self.model, "rank_share", None)
        if a is None:
            return f"score: {self.name}'s own ranking score (fit_rank), not a rating"
        text = (f"score: {1 - a:g} x the standardized who-watches score + {a:g} x the "
                f"standardized predicted rating (rank_rating_weight {a:g}), not a rating")
        head = getattr(self.model, "implicit", None)
        if head is not None and head.uses_affinity and a < 1.0:
            text += (f"; the who-watches score includes the films' co-rating affinity to "
                     f"your rated films (rank_affinity_scale {self.model.affinity_scale:g}, "
                     f"rank_liking {self.model.liking:g}: films you rated higher count more)")
        return text

    def scores(self, item_index: np.ndarray, ratings: np.ndarray) -> np.ndarray:
        """The ranking score of every item, float64 ``[n_items]``: the model's own
        (``fit_rank``, e.g. item-knn's neighbour similarity, a meta-learner's mix of
        who-watches score and predicted rating; :attr:`ranks_by_own_score`) where it has
        one, else the predicted rating."""
        own = self.ranks_by_own_score
        if self._frozen is None:
            if own:
                return np.asarray(self.model.fit_rank(item_index, ratings, self.all_items),
                                  dtype=np.float64)
            return np.asarray(self.model.fit_predict(item_index, ratings, self.all_items))
        score = self.model.fit_rank if own else self.model.fit_predict
        original = self.model.encoder
        self.model.encoder = self._frozen
        try:
            with _one_torch_thread():
                # One chunk: the item table is small, and each chunk re-runs the last layer.
                return np.asarray(score(item_index, ratings, self.all_items, chunk_size=None),
                                  dtype=np.float64)
        finally:
            self.model.encoder = original


def model_scorer(model, dataset) -> ModelScorer:
    """A :class:`ModelScorer`, cached on ``model`` while its parameters and data set stay
    the same (so the item embeddings are computed once per loaded model)."""
    cached = getattr(model, "_fewshot_scorer", None)
    if (cached is not None and cached.dataset is dataset
            and cached.version == _param_version(model)):
        return cached
    scorer = ModelScorer(model, dataset)
    # A plain attribute, not part of the state_dict; objects with __slots__ go uncached.
    with contextlib.suppress(AttributeError):
        model._fewshot_scorer = scorer
    return scorer


# --------------------------------------------------------------------------------------------
# recommending


@dataclass
class RecommendReport:
    """What :func:`recommend_items` could not use, and what ran.

    Attributes:
        model / description: the scorer's name and one line about it.
        unknown_items: ``(user, row, item)`` of ids the item vocabulary does not know.
        skipped_users: ``(user, reason)`` of users with no usable rating.
        notes: other facts (implicit feedback, repeated items).
    """

    model: str
    description: str
    dataset: str = "the data set"
    unknown_items: list[tuple[str, int, str]] = field(default_factory=list)
    skipped_users: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable lines (the CLI prints them)."""
        out = [f"model: {self.model} ({self.description})"]
        if self.unknown_items:
            ids = ", ".join(f"{item!r} (row {row}{f', user {u}' if u else ''})"
                            for u, row, item in self.unknown_items[:10])
            more = f" and {len(self.unknown_items) - 10} more" if len(self.unknown_items) > 10 else ""
            out.append(f"{len(self.unknown_items)} item id(s) unknown to {self.dataset} "
                       f"(not used): {ids}{more}")
        out += [f"user {u or '(the only user)'}: skipped: {why}" for u, why in self.skipped_users]
        return out + self.notes


def _top_k(scores: np.ndarray, exclude: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores outside ``exclude``; ties go to the lower index."""
    scores = np.asarray(scores, dtype=np.float64).copy()
    scores[np.isnan(scores)] = -np.inf
    allowed = np.ones(len(scores), dtype=bool)
    allowed[exclude] = False
    candidates = np.flatnonzero(allowed)
    k = min(k, len(candidates))
    if k == 0:
        return np.zeros(0, dtype=np.int64)
    values = scores[candidates]
    if k < len(candidates):
        part = np.argpartition(-values, k - 1)[:k]
        # argpartition may cut inside a tie: take every candidate as good as the k-th
        threshold = values[part].min()
        part = np.flatnonzero(values >= threshold)
    else:
        part = np.arange(len(candidates))
    order = np.lexsort((candidates[part], -values[part]))[:k]
    return candidates[part][order]


def recommend_items(
    scorer,
    ratings: pd.DataFrame,
    k: int = 10,
    *,
    exclude_rated: bool = True,
    min_item_ratings: int = 0,
    path: str | Path | None = None,
) -> tuple[pd.DataFrame, RecommendReport]:
    """Top-``k`` items per user.

    Args:
        scorer: :class:`PopularitySimilarity` or :class:`ModelScorer` (``scorer.dataset``
            gives the item vocabulary, titles and rating scale).
        ratings: :func:`ratings_from_frame` output.
        exclude_rated: leave out the items each user rated.
        min_item_ratings: recommend only items with at least this many meta-train ratings.
            A model's predicted rating of a film rated once or twice mostly echoes those
            ratings, so rating models left unfiltered fill the top of the list with obscure
            films (0: no filter, so new items can be recommended too).
        path: the ratings file, for error messages.

    Returns:
        ``(table, report)``: ``[user,] rank, item, [title,] score, [rating_low,
        rating_high,] model`` (one block per user, in the order users first appear;
        ``score`` is what the items were ranked by: the predicted rating, or the model's
        own ranking score, ``fit_rank``, which a line of the report's notes names;
        ``user`` only when the input had one; the 90% interval of the predicted rating only
        for a model that has one) and a :class:`RecommendReport`. Raises :class:`FewshotError` when no user has a usable
        rating, and :class:`DataError` for a rating outside the data set's scale.
    """
    check_options(k, min_item_ratings)
    dataset = scorer.dataset
    vocab = dataset.item_vocab
    report = RecommendReport(scorer.name, scorer.describe(), dataset.name)
    scale = dataset.scale
    ratings = ratings.copy()
    if ratings.attrs.get("implicit") or ratings["rating"].isna().all():
        top = 1.0 if scale is None else scale.high
        ratings["rating"] = ratings["rating"].fillna(top)
        report.notes.append(f"no ratings given: every listed item counts as liked ({top:g})")
    else:
        check_rating_scale(ratings, scale, dataset.name, path)
    if ratings.attrs.get("duplicates"):
        report.notes.append(f"{ratings.attrs['duplicates']} repeated item(s): the last rating "
                            "of each was used")
    index = vocab.indices(ratings["item"].to_numpy())
    ratings["item_index"] = index
    for u, row, item in ratings.loc[index < 0, ["user", "row", "item"]].itertuples(index=False):
        report.unknown_items.append((u, int(row), item))
    too_rare = np.flatnonzero(dataset.item_stats.count < min_item_ratings)
    if len(too_rare) == len(vocab):
        raise FewshotError(
            f"min_item_ratings={min_item_ratings}: no item of {dataset.name} has that many "
            f"training ratings (the most: {int(np.max(dataset.item_stats.count, initial=0))}), "
            "so there is nothing to recommend; lower it")
    if min_item_ratings:
        report.notes.append(f"{len(too_rare)} items with fewer than {min_item_ratings} "
                            "training ratings were not considered")
    titles = getattr(scorer, "titles", None)
    has_users = bool(ratings["user"].ne("").any())
    blocks = []
    for user, group in ratings.groupby("user", sort=False):
        known = group[group["item_index"] >= 0]
        if known.empty:
            report.skipped_users.append(
                (user, f"none of its {len(group)} item id(s) is known to the model"))
            continue
        # np.array copies: pandas may hand out read-only views, which torch warns about
        item_index = np.array(known["item_index"], dtype=np.int64)
        scores = scorer.scores(item_index, np.array(known["rating"], dtype=np.float64))
        exclude = item_index if exclude_rated else np.zeros(0, dtype=np.int64)
        exclude = np.concatenate([exclude, too_rare])
        top = _top_k(scores, exclude, k)
        block = {"rank": np.arange(1, len(top) + 1), "item": [vocab.ids[i] for i in top]}
        if titles is not None:
            block["title"] = titles[top]
        block["score"] = np.asarray(scores, dtype=np.float64)[top]
        interval = getattr(scorer, "interval", None)
        bounds = interval(item_index, np.array(known["rating"], dtype=np.float64), top,
                          scores) if callable(interval) else None
        if bounds is not None:
            block["rating_low"], block["rating_high"] = bounds
        frame = pd.DataFrame(block)
        if has_users:
            frame.insert(0, "user", user)
        frame["model"] = scorer.name
        blocks.append(frame)
    if not blocks:
        what = "the ratings" if not has_users else "any user's ratings"
        raise FewshotError(
            f"{path or 'ratings'}: no item id in {what} is known to the model "
            f"({len(report.unknown_items)} unknown, e.g. {report.unknown_items[0][2]!r}); "
            f"item ids must be {dataset.name} ids (e.g. {vocab.ids[:3]})")
    table = pd.concat(blocks, ignore_index=True)
    ranked_by = getattr(scorer, "ranked_by", None)
    if callable(ranked_by):
        report.notes.append(ranked_by())
    note = getattr(scorer, "interval_note", None)
    note = note() if callable(note) else None
    if note and "rating_low" in table.columns:
        report.notes.append(note)
    return table, report


__all__ = [
    "ITEM_COLUMN_NAMES", "ModelScorer", "check_options", "check_rating_scale",
    "default_scorer", "item_titles", "PopularitySimilarity", "RATING_COLUMN_NAMES",
    "RecommendReport", "USER_COLUMN_NAMES", "model_scorer", "ratings_from_frame",
    "read_ratings", "recommend_items",
]
