"""One few-shot task per user: the cold-start :class:`~fewshot_apps.core.tasks.TaskSet`.

A task's ``examples`` are item indices into the item vocabulary, its ``labels`` the ratings
(1.0 for implicit feedback), ``extras["timestamp"]`` (float64 Unix seconds, NaN if unknown)
and ``extras["new_item"]`` (bool: an item-cold-start "new item"). Ratings are ordered by time.

Which users become tasks (``protocol = "cold-start"``, the default):

* meta-train: every meta-train user, without their ratings of new items (a user left with
  none is dropped and counted);
* valid / test: users with at least ``min_eval_ratings`` ratings (all of them, new items
  included, flagged), so every support size is scored on the same users.

With ``protocol = "melu"`` every split keeps the users with ``melu_min_ratings`` to
``melu_max_ratings`` ratings (meta-train counted after dropping new-item ratings).

A fixed split (``split_method = "fixed"``) makes one task per user and split of its rows (a
user with train and test rows has a meta-train task and a test task, both named by its id).
Valid / test rows with roles (support / query) make tasks with ``extras["support"]`` (bool:
a support row), each evaluated on exactly that support and query, whatever its size; users
without roles are kept as above.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from fewshot_apps.core.tasks import Task, TaskSet
from fewshot_apps.domains.recsys.config import ColdStartConfig
from fewshot_apps.domains.recsys.splits import SPLITS


@dataclass
class TaskReport:
    """Who became a task and who did not, and why.

    Attributes:
        users: split -> users in the split.
        tasks: split -> tasks built.
        excluded: split -> reason -> users left out.
        per_size: support size (or ``"melu"``) -> split -> ``(eligible, excluded)`` tasks:
            a task needs ``k + n_query`` ratings for a support of ``k``.
        no_relevant: split -> evaluated users with no rating >= the relevance threshold
            (left out of binary ranking metrics).
        new_item_ratings: split -> ratings of new items (removed from meta-train tasks).
        ratings_per_user: ``(min, median, max)`` over all users.
    """

    users: dict[str, int] = field(default_factory=dict)
    tasks: dict[str, int] = field(default_factory=dict)
    excluded: dict[str, dict[str, int]] = field(default_factory=dict)
    per_size: dict[object, dict[str, tuple[int, int]]] = field(default_factory=dict)
    no_relevant: dict[str, int] = field(default_factory=dict)
    new_item_ratings: dict[str, int] = field(default_factory=dict)
    ratings_per_user: tuple[float, float, float] = (0, 0, 0)


def _user_slices(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted user indices, and start / stop of each (user, split)'s rows in ``frame``
    (sorted by user, then split: a user has one split unless the split is fixed)."""
    users = frame["user_index"].to_numpy()
    if len(users) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    split = frame["split"].to_numpy()
    starts = np.flatnonzero(np.r_[True, (users[1:] != users[:-1]) | (split[1:] != split[:-1])])
    stops = np.r_[starts[1:], len(users)]
    return users[starts], starts, stops


def build_taskset(
    interactions: pd.DataFrame,
    user_ids: list,
    config: ColdStartConfig,
    *,
    name: str,
    implicit: bool = False,
    n_items: int | None = None,
) -> tuple[TaskSet, TaskReport]:
    """The task set of a cold-start split.

    Args:
        interactions: one row per rating with ``user_index``, ``item_index``, ``rating``,
            ``timestamp``, ``split`` ("train" / "valid" / "test") and ``new_item`` (bool).
        user_ids: the user vocabulary's ids (``user_ids[user_index]``), for task names.
    """
    report = TaskReport()
    per_user = interactions.groupby("user_index").size()
    if len(per_user):
        report.ratings_per_user = (
            float(per_user.min()), float(per_user.median()), float(per_user.max())
        )
    order = interactions["split"].map({s: i for i, s in enumerate(SPLITS)})
    frame = (interactions.assign(_split=order)
             .sort_values(["user_index", "_split", "timestamp", "item_index"], kind="stable")
             .reset_index(drop=True))
    role = frame["role"].to_numpy() if "role" in frame else None
    item = frame["item_index"].to_numpy(np.int64)
    rating = frame["rating"].to_numpy(np.float32)
    ts = frame["timestamp"].to_numpy(np.float64)
    new = frame["new_item"].to_numpy(bool)
    split_of = frame["split"].to_numpy()
    users, starts, stops = _user_slices(frame)
    melu = config.protocol == "melu"
    out: dict[str, list[Task]] = {s: [] for s in SPLITS}
    for s in SPLITS:
        report.excluded[s] = {}
        report.new_item_ratings[s] = int((new & (split_of == s)).sum())
    for u, a, b in zip(users, starts, stops):
        split = split_of[a]
        report.users[split] = report.users.get(split, 0) + 1
        rows = np.arange(a, b)
        if split == "train":
            rows = rows[~new[a:b]]
            if len(rows) == 0:
                reason = "all ratings are of new items"
                report.excluded[split][reason] = report.excluded[split].get(reason, 0) + 1
                continue
        n = len(rows)
        extras = {"timestamp": ts[rows], "new_item": new[rows]}
        if role is not None and split != "train" and (role[rows] != "").any():
            extras["support"] = role[rows] == "support"  # a fixed episode: no size rules
        elif melu and not config.melu_min_ratings <= n <= config.melu_max_ratings:
            reason = (
                f"outside MeLU's {config.melu_min_ratings}-{config.melu_max_ratings} ratings"
            )
            report.excluded[split][reason] = report.excluded[split].get(reason, 0) + 1
            continue
        elif not melu and split != "train" and n < config.min_eval_ratings:
            reason = f"fewer than {config.min_eval_ratings} ratings (not evaluated)"
            report.excluded[split][reason] = report.excluded[split].get(reason, 0) + 1
            continue
        uid = user_ids[u]
        out[split].append(
            Task(
                name=str(uid),
                examples=item[rows],
                labels=rating[rows],
                extras=extras,
                metadata={"user": uid, "user_index": int(u), "split": split},
            )
        )
    for s in SPLITS:
        report.users.setdefault(s, 0)
        report.tasks[s] = len(out[s])
        report.no_relevant[s] = (
            sum(1 for t in out[s] if not (t.labels >= config.relevance_threshold).any())
            if not implicit
            else 0
        )
    sizes = {"melu": config.melu_n_query + 1} if melu else {
        k: k + config.n_query for k in config.support_sizes
    }
    drawn = {s: [t for t in out[s] if "support" not in t.extras] for s in SPLITS}
    for key, needed in sizes.items():
        report.per_size[key] = {}
        for s in SPLITS:
            ok = sum(1 for t in drawn[s] if len(t) >= needed)
            report.per_size[key][s] = (ok, len(drawn[s]) - ok)
    if any(len(drawn[s]) < len(out[s]) for s in SPLITS):
        report.per_size["fixed"] = {s: (len(out[s]) - len(drawn[s]), 0) for s in SPLITS}
    taskset = TaskSet(
        name=name,
        kind="classification" if implicit else "regression",
        train=out["train"],
        valid=out["valid"],
        test=out["test"],
        metadata={
            "domain": "recsys",
            "protocol": config.protocol,
            "implicit": implicit,
            "n_items": n_items,
            "relevance_threshold": config.relevance_threshold,
            "config": config.to_dict(),
        },
    )
    return taskset, report
