"""``load_recsys_dataset``: a card -> interactions, vocabularies, features, graph, task set.

::

    ds = load_recsys_dataset("movielens-latest-small", seed=0)
    ds.taskset.test            # one Task per evaluated test user
    ds.graph                   # HeteroData from meta-train users only
    ds.item_vocab.indices([1, 2, 3])

Options (keyword arguments, or a card's ``[split]`` / ``[options]`` tables) are either
:class:`ColdStartConfig` fields (``protocol``, ``support_sizes``, ``split_method`` ...) or
reader settings (``errors``, ``rating_scale``, ``rating_step``, and for ``interactions-csv``
cards the column names, ``delimiter``, ``encoding``, ``implicit``). Unknown keys are an error.

The read step is cached in the cache directory under a key of the raw files' sha256, the
reader settings and the reader version, so a changed file never reuses a stale cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from torch_geometric.data import HeteroData

from fewshot_apps.core.persistence import task_record
from fewshot_apps.core.tasks import Episode, TaskSet
from fewshot_apps.domains.recsys import cache as read_cache
from fewshot_apps.domains.recsys.adapter import RecsysTasks
from fewshot_apps.domains.recsys.config import CONFIG_KEYS, ColdStartConfig
from fewshot_apps.domains.recsys.episodes import evaluation_episodes, samplers_for
from fewshot_apps.domains.recsys.features import (
    ItemFeatures,
    ItemStats,
    UserFeatures,
    fit_item_features,
    fit_item_stats,
    fit_user_features,
)
from fewshot_apps.domains.recsys.graph import build_graph
from fewshot_apps.domains.recsys.readers import (
    RatingScale,
    RecsysData,
    declared_scale,
    read_interactions_csv,
    read_movielens_1m,
    read_movielens_100k,
    read_movielens_latest,
)
from fewshot_apps.domains.recsys.splits import (
    NewItems,
    find_new_items,
    fixed_new_items,
    fixed_user_split,
    split_users,
)
from fewshot_apps.domains.recsys.tasks import TaskReport, build_taskset
from fewshot_apps.domains.recsys.vocab import Vocabulary, save_vocabularies
from fewshot_apps.errors import CardError, ContentCheckError
from fewshot_apps.paths import cache_dir as default_cache_dir
from fewshot_apps.paths import cache_file
from fewshot_apps.plain_csv import load_card_or_csv
from fewshot_apps.sources import Card

READER_VERSION = 2  # 2: an interactions CSV's split / role columns (a fixed split)
FORMATS = ("movielens-latest", "movielens-100k", "movielens-1m", "interactions-csv")
READER_KEYS = frozenset(
    {
        "errors", "rating_scale", "rating_step", "user_col", "item_col", "rating_col",
        "timestamp_col", "item_id_col", "user_id_col", "implicit", "delimiter", "encoding",
        "split_col", "role_col",
    }
)  # fmt: skip
_CSV_ONLY = READER_KEYS - {"errors", "rating_scale", "rating_step"}
#: ``[expected]`` keys checked against :meth:`RecsysData.counts`.
EXPECTED_KEYS = ("ratings", "users", "rated_items", "listed_items", "tags")


@dataclass
class RecsysDataset(RecsysTasks):
    """Everything the recommendation learners and benchmarks need from one data set.

    Attributes:
        interactions: one row per rating: ``user``, ``item`` (ids), ``user_index``,
            ``item_index`` (vocabulary indices), ``rating``, ``timestamp``, ``split``,
            ``new_item``.
        item_vocab / user_vocab: id -> index (items: every listed item).
        user_split: split of each user id.
        new_items: item cold start (``new_items.mask`` bool ``[n_items]``).
        item_features, user_features (None without user data), item_stats (meta-train).
        graph: the user–item–attribute ``HeteroData`` (meta-train users only).
        taskset: one task per user; task_report: who became a task.
        timings: seconds per build step (``read``, ``split``, ``features``, ``tasks``,
            ``graph``; ``build`` = all but ``read``); ``read_cached``: whether the read came
            from the cache.
    """

    name: str
    config: ColdStartConfig
    data: RecsysData
    interactions: pd.DataFrame
    item_vocab: Vocabulary
    user_vocab: Vocabulary
    user_split: pd.Series
    new_items: NewItems
    item_features: ItemFeatures
    user_features: UserFeatures | None
    item_stats: ItemStats
    graph: HeteroData
    taskset: TaskSet
    task_report: TaskReport
    card: Card | None = None
    timings: dict[str, float] = field(default_factory=dict)
    read_cached: bool = False

    @property
    def report(self):
        """The read report (skipped rows by reason, notes)."""
        return self.data.report

    @property
    def scale(self) -> RatingScale | None:
        return self.data.scale

    def split_fingerprint(self) -> str:
        """sha256 of the meta-train user ids: a saved model checks it against the data set it
        is used with, since the same item vocabulary with another user split would put the
        model's training users among the test users."""
        train = sorted(str(u) for u in self.user_split.index[self.user_split == "train"])
        return hashlib.sha256(json.dumps(train).encode()).hexdigest()

    def saved_model_config(self) -> dict:
        """What a model trained on this data set saves to be used on it again: the data
        set's name (and ``dataset_source``, the path of a user's card or plain CSV), item
        vocabulary, rating scale, cold-start settings (user-split seed included) and
        :meth:`split_fingerprint`; and the users it is trained on (``tasks``: the names of the
        training and validation users' tasks, which ``save_model`` writes to ``tasks.json``)."""
        saved = {"dataset": self.name, "domain": self.domain,
                 "item_vocab": self.item_vocab.to_dict(),
                 "cold_start": self.config.to_dict(),
                 "train_users_sha256": self.split_fingerprint(),
                 "tasks": task_record(self.taskset.train, self.taskset.valid)}
        if self.scale is not None:  # predictions are on it: attach refuses another one
            saved["rating_scale"] = dataclasses.asdict(self.scale)
        if self.card is not None and self.card.source is not None:
            # a user's card.toml or plain CSV: its path finds it again (its name would not)
            saved["dataset_source"] = str(self.card.source.expanduser().absolute())
        return saved

    def train_interactions(self) -> pd.DataFrame:
        """Meta-train users' ratings of existing items: what the graph and statistics see."""
        i = self.interactions
        return i.loc[(i["split"] == "train") & ~i["new_item"]]

    def samplers(self) -> dict:
        return samplers_for(self.config)

    def evaluation_episodes(
        self, split: str = "test", *, seed: int = 0, n_draws: int = 1
    ) -> list[Episode]:
        """The protocol's episodes of the ``valid`` or ``test`` tasks."""
        if split not in ("valid", "test"):
            raise ValueError(f"evaluation episodes come from 'valid' or 'test', not {split!r}")
        return list(
            evaluation_episodes(self.taskset.split(split), self.config, seed=seed, n_draws=n_draws)
        )

    def save_vocabularies(self, path: str | Path) -> Path:
        return save_vocabularies(path, self.item_vocab, self.user_vocab)


# --------------------------------------------------------------------------------------
# options


def _resolve_options(card: Card | None, options: dict) -> tuple[ColdStartConfig, dict]:
    config_values: dict = {}
    reader: dict = {}
    sources = []
    if card is not None:
        sources += [(f"card {card.name} [split]", card.split), (f"card {card.name} [options]", card.options)]
    sources.append(("options", options))
    for origin, mapping in sources:
        for key, value in (mapping or {}).items():
            k = key.replace("-", "_")
            if k == "method":  # [split] method = "random" | "time"
                k = "split_method"
            if k == "fractions":
                k = "split_fractions"
            if k in CONFIG_KEYS:
                config_values[k] = value
            elif k in READER_KEYS:
                reader[k] = value
            else:
                raise CardError(
                    f"{origin}: unknown option {key!r}; known: "
                    + ", ".join(sorted(CONFIG_KEYS | READER_KEYS))
                )
    return ColdStartConfig.from_mapping(config_values), reader


def read_card(card: Card, reader: dict | None = None) -> RecsysData:
    """Read a recsys card's files with its format's reader (no cache)."""
    reader = dict(reader or {})
    if card.domain != "recsys":
        raise CardError(f"card {card.name!r} is a {card.domain!r} card, not 'recsys'")
    card.require_present()
    errors = reader.pop("errors", "raise")
    fmt = card.format
    stray = set(reader) & _CSV_ONLY
    if fmt != "interactions-csv" and stray:
        raise CardError(f"card {card.name!r}: {sorted(stray)} apply to interactions-csv cards only")
    optional = {k: (card.path(k) if k in card.files else None) for k in ("tags", "users")}
    if fmt == "movielens-latest":
        return read_movielens_latest(
            card.path("ratings"), card.path("items"), optional["tags"], errors=errors,
            scale=declared_scale(fmt, reader), name=card.name,
        )  # fmt: skip
    if fmt == "movielens-100k":
        return read_movielens_100k(
            card.path("ratings"), card.path("items"), optional["users"], errors=errors,
            scale=declared_scale(fmt, reader), name=card.name,
        )  # fmt: skip
    if fmt == "movielens-1m":
        return read_movielens_1m(
            card.path("ratings"), card.path("items"), optional["users"], errors=errors,
            scale=declared_scale(fmt, reader), name=card.name,
        )  # fmt: skip
    if fmt == "interactions-csv":
        kwargs = {k: v for k, v in reader.items() if k in _CSV_ONLY | {"rating_scale", "rating_step"}}
        for key in ("rating_col", "timestamp_col", "split_col", "role_col"):
            if kwargs.get(key) == "":  # TOML has no null
                kwargs[key] = None
        return read_interactions_csv(
            card.path("ratings"),
            items_path=card.path("items") if "items" in card.files else None,
            users_path=optional["users"],
            errors=errors,
            name=card.name,
            **kwargs,
        )
    raise CardError(f"card {card.name!r}: unknown recsys format {fmt!r}; known: {', '.join(FORMATS)}")


def _cache_key(card: Card, reader: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps([READER_VERSION, card.format, sorted(reader.items())], default=str).encode())
    for key in sorted(card.files):
        path = card.path(key)
        h.update(key.encode())
        with open(path, "rb") as f:
            while block := f.read(1 << 20):
                h.update(block)
    return h.hexdigest()


def _read_cached(card: Card, reader: dict, cache_dir: str | Path | None, use_cache: bool):
    if not use_cache:
        return read_card(card, reader), False
    card.require_present()
    folder = default_cache_dir(cache_dir) / "recsys"
    key = _cache_key(card, reader)
    target = cache_file(folder, card.name, key, suffix=".npz")
    broken = None
    if target.is_file():
        try:
            return read_cache.decode(target, key), True
        except read_cache.CacheFileError as exc:  # rebuilt below, never trusted
            broken = f"the cache file {target} was unusable ({exc}); rebuilt it"
    data = read_card(card, reader)
    if broken:
        data.report.note(broken)
    raw = read_cache.to_bytes(data, key)
    if raw is None:
        data.report.note("these tables hold values the read cache cannot store; not cached")
        return data, False
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, delete=False, prefix=".", suffix=".tmp") as f:
            tmp = Path(f.name)
            f.write(raw)
        os.replace(tmp, target)
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        data.report.note(f"could not write the cache in {folder}: {exc}")
    return data, False


def check_expected(data: RecsysData, expected: dict, origin: str = "the card") -> list[str]:
    """Mismatches between the data's counts and a card's ``[expected]`` table (``origin``
    names the card in the error for a value that is not a count)."""
    counts = data.counts()
    out = []
    for key in EXPECTED_KEYS:
        if key not in expected or key not in counts:
            continue
        value = expected[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise CardError(f"{origin}: [expected] {key} must be a whole number, not {value!r}")
        if value != counts[key]:
            out.append(f"expected {value:,} {key.replace('_', ' ')}, found {counts[key]:,}")
    return out


# --------------------------------------------------------------------------------------
# building


def _implicit_config(data: RecsysData, config: ColdStartConfig) -> ColdStartConfig:
    """``config`` with ``relevance_threshold`` 1 for implicit feedback (every rating is 1.0):
    every held-out item the user interacted with is relevant to the all-item metrics."""
    if not data.implicit or config.relevance_threshold == 1.0:
        return config
    data.report.note("implicit feedback: every held-out interaction is relevant "
                     "(relevance_threshold 1)")
    return dataclasses.replace(config, relevance_threshold=1.0)


def _split_config(data: RecsysData, config: ColdStartConfig) -> ColdStartConfig:
    """``config`` with ``split_method = "fixed"`` when the ratings carry their own split (a
    ``split`` column); CardError when the settings ask for another split of such data, or for
    a fixed split of data without one."""
    fixed = "split" in data.ratings.columns
    if not fixed:
        if config.split_method == "fixed":
            raise CardError(f"{data.name}: split_method = 'fixed' needs a split column "
                            "(train / valid / test) in the ratings, and these have none")
        return config
    if config.split_method == "time":
        raise CardError(f"{data.name}: the ratings give their own split (a split column); "
                        "split_method = 'time' does not apply to them")
    if config.new_item_quantile not in (None, ColdStartConfig().new_item_quantile):
        data.report.note("a fixed split's new items are those no train row rates; "
                         "new_item_quantile does not apply")
    return config.with_(split_method="fixed")


def build_recsys_dataset(
    data: RecsysData,
    config: ColdStartConfig | None = None,
    *,
    card: Card | None = None,
) -> RecsysDataset:
    """Split, features, statistics, task set and graph from validated tables."""
    config = config or ColdStartConfig()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    items = data.items.sort_values("item", kind="stable").reset_index(drop=True)
    item_vocab = Vocabulary("item", items["item"].tolist())
    user_vocab = Vocabulary.from_ids("user", data.ratings["user"].unique())
    ratings = data.ratings
    user_index = user_vocab.indices(ratings["user"].to_numpy())
    item_index = item_vocab.indices(ratings["item"].to_numpy())
    if (item_index < 0).any() or (user_index < 0).any():
        raise ValueError("ratings refer to ids missing from the vocabularies (reader bug)")
    config = _split_config(data, config)
    config = _implicit_config(data, config)
    ts = ratings["timestamp"].to_numpy(np.float64)
    if config.split_method == "fixed":
        user_split = fixed_user_split(ratings)
        row_split = ratings["split"].to_numpy(dtype=object)
        new_items = fixed_new_items(item_index, row_split, ts, len(item_vocab))
    else:
        user_split = split_users(ratings, config)
        row_split = user_split.reindex(user_vocab.ids).to_numpy()[user_index]
        new_items = find_new_items(item_index, ts, len(item_vocab), config.new_item_quantile)
        if config.new_item_quantile is not None and new_items.cutoff is None:
            data.report.note("no timestamps: no item cold start")
    split_of_user = user_split.reindex(user_vocab.ids).to_numpy()
    interactions = pd.DataFrame(
        {
            "user": ratings["user"].to_numpy(),
            "item": ratings["item"].to_numpy(),
            "user_index": user_index,
            "item_index": item_index,
            "rating": ratings["rating"].to_numpy(np.float32),
            "timestamp": ts,
            "split": row_split,
            "new_item": new_items.mask[item_index],
        }
    )
    if config.split_method == "fixed":
        interactions["role"] = ratings["role"].to_numpy(dtype=object)
    timings["split"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    train = interactions.loc[(interactions["split"] == "train") & ~interactions["new_item"]]
    item_stats = fit_item_stats(
        train["item_index"].to_numpy(), train["rating"].to_numpy(), len(item_vocab)
    )
    train_users = set(user_split.index[user_split == "train"].tolist())
    train_tags = None
    if data.tags is not None:
        tags = data.tags.loc[data.tags["user"].isin(train_users)]
        train_tags = tags.assign(item_index=item_vocab.indices(tags["item"].to_numpy()))
        train_tags = train_tags.loc[train_tags["item_index"] >= 0]
    item_features = fit_item_features(
        items,
        train_tags,
        max_tags=config.max_tags,
        min_tag_count=config.min_tag_count,
        extra_columns=data.item_feature_columns,
        max_categories=config.max_categories,
    )
    for note in item_features.notes:
        data.report.note(note)
    user_features = None
    train_mask = split_of_user == "train"
    if data.users is not None and data.user_feature_columns:
        users = data.users.drop_duplicates("user").set_index("user").reindex(user_vocab.ids)
        user_features = fit_user_features(
            users, train_mask, data.user_feature_columns, max_categories=config.max_categories
        )
        for note in user_features.notes:
            data.report.note(note)
    timings["features"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    taskset, task_report = build_taskset(
        interactions, user_vocab.ids, config, name=data.name, implicit=data.implicit,
        n_items=len(item_vocab),
    )  # fmt: skip
    taskset.metadata["item_vocab_sha256"] = item_vocab.fingerprint()
    timings["tasks"] = time.perf_counter() - t2

    t3 = time.perf_counter()
    graph = build_graph(
        np.flatnonzero(train_mask),
        train["user_index"].to_numpy(),
        train["item_index"].to_numpy(),
        train["rating"].to_numpy(),
        train["timestamp"].to_numpy(),
        item_features,
        new_items.mask,
        user_features,
        user_names=[str(user_vocab.ids[u]) for u in np.flatnonzero(train_mask)],
    )
    timings["graph"] = time.perf_counter() - t3
    timings["build"] = time.perf_counter() - t0
    return RecsysDataset(
        name=data.name,
        config=config,
        data=data,
        interactions=interactions,
        item_vocab=item_vocab,
        user_vocab=user_vocab,
        user_split=user_split,
        new_items=new_items,
        item_features=item_features,
        user_features=user_features,
        item_stats=item_stats,
        graph=graph,
        taskset=taskset,
        task_report=task_report,
        card=card,
        timings=timings,
    )


def load_recsys_dataset(
    card_or_name: Card | str | Path,
    data_dir: str | Path | None = None,
    seed: int | None = None,
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    check_content: bool = True,
    **options: object,
) -> RecsysDataset:
    """Read, validate and build a recommendation data set.

    Args:
        card_or_name: a :class:`Card`, a built-in card name, a path to a user's card, or
            a plain ratings CSV (``user,item,rating[,timestamp]``; see
            :mod:`fewshot_apps.plain_csv`).
        data_dir: the data directory of a built-in card (default: ``$FEWSHOT_DATA_DIR``).
        seed: the user split's seed (None: the card's ``[split] seed``, else 0).
        cache_dir: where the read step is cached (default: ``$FEWSHOT_CACHE_DIR``).
        check_content: compare the counts with the card's ``[expected]`` table; a mismatch
            raises :class:`ContentCheckError`.
        options: :class:`ColdStartConfig` fields and reader settings.
    """
    card = load_card_or_csv(card_or_name, data_dir)
    if card.domain != "recsys":
        raise CardError(f"{card.source or card.name}: a {card.domain} data set, not ratings "
                        "(use the `mol` commands)")
    if isinstance(card_or_name, Card) and data_dir is not None and card.source is None:
        card = dataclasses.replace(card, root=Path(data_dir).expanduser())
    config, reader = _resolve_options(card, dict(options))
    if seed is not None:
        config = config.with_(seed=seed)
    t = time.perf_counter()
    data, cached = _read_cached(card, reader, cache_dir, use_cache)
    read_s = time.perf_counter() - t
    if check_content and card.expected:
        problems = check_expected(data, card.expected, str(card.source or f"card {card.name}"))
        if problems:
            raise ContentCheckError(
                card.path("ratings"),
                "content does not match the card "
                f"{card.name!r}: " + "; ".join(problems)
                + " (the data set may have changed; pass check_content=False to use it anyway)",
            )
    ds = build_recsys_dataset(data, config, card=card)
    ds.timings["read"] = read_s
    ds.read_cached = cached
    return ds
