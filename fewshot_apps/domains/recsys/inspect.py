"""``fewshot-apps data inspect <recsys card>``: the printable report of a data set."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pandas as pd

from fewshot_apps.domains.recsys.dataset import RecsysDataset, check_expected, load_recsys_dataset
from fewshot_apps.sources import Card, load_card


def _n(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


def _date(ts: float) -> str:
    return pd.Timestamp(ts, unit="s").strftime("%Y-%m-%d")


def _row(label: str, value: str) -> str:
    return f"  {label:<22} {value}"


def format_report(ds: RecsysDataset, *, title: str | None = None) -> str:
    """The inspect report of a built data set."""
    data, cfg, tr = ds.data, ds.config, ds.task_report
    counts = data.counts()
    lines: list[str] = []
    card = ds.card
    head = f"{ds.name}" + (f": {card.title}" if card is not None and card.title else "")
    lines.append(title or head)
    order = {"ratings": 0, "items": 1, "movies": 1, "users": 2, "tags": 3}
    files = [p for _, p in sorted(data.report.files.items(), key=lambda kv: order.get(kv[0], 9))]
    if files:
        folder = Path(files[0]).parent
        lines.append(_row("files", f"{folder} ({', '.join(Path(f).name for f in files)})"))
    lines.append(_row("format", data.format))

    lines.append("")
    lines.append("Content")
    lines.append(_row("users", _n(counts["users"])))
    lines.append(
        _row("items", f"{_n(counts['rated_items'])} rated / {_n(counts['listed_items'])} listed")
    )
    lines.append(_row("ratings", _n(counts["ratings"])))
    scale = "implicit feedback (every row a positive)" if data.implicit else f"{data.scale}"
    lines.append(_row("rating scale", scale))
    lo, med, hi = tr.ratings_per_user
    lines.append(_row("ratings per user", f"min {_n(lo)} / median {_n(med)} / max {_n(hi)}"))
    if data.tags is not None:
        lines.append(
            _row(
                "tags",
                f"{_n(len(data.tags))} applications, {_n(data.tags['tag'].nunique())} distinct",
            )
        )
    cov = ds.item_features.coverage()
    n_items = len(ds.item_vocab)
    missing_year = n_items - cov["year"]
    parts = [
        f"genres {_n(cov['genres'])}",
        f"release year {_n(cov['year'])} ({_n(missing_year)} unknown)",
    ]
    if data.tags is not None:
        parts.append(
            f"tags {_n(cov['tags'])} ({len(ds.item_features.tag_names)}-tag vocabulary of "
            "meta-train users)"
        )
    if "extra" in cov:
        parts.append(f"other columns {_n(cov['extra'])}")
    lines.append(_row("items with features", " / ".join(parts) + f" (of {_n(n_items)})"))
    if ds.user_features is not None:
        lines.append(
            _row(
                "user features",
                f"{', '.join(data.user_feature_columns)} ({ds.user_features.matrix.shape[1]} "
                "columns)",
            )
        )
    else:
        lines.append(_row("user features", "none in this data set"))
    skipped = data.report.skipped
    if skipped:
        lines.append(_row("skipped rows", f"{_n(sum(skipped.values()))} by reason:"))
        for reason, count in skipped.items():
            lines.append(f"    {reason}: {_n(count)}")
            for example in data.report.examples.get(reason, [])[:2]:
                lines.append(f"      e.g. {example}")
    else:
        lines.append(_row("skipped rows", "none"))
    if card is not None and card.expected:
        problems = check_expected(data, card.expected, str(card.source or f"card {card.name}"))
        checked = [k.replace("_", " ") for k in card.expected if k in counts]
        lines.append(
            _row(
                "content check",
                "MISMATCH: " + "; ".join(problems)
                if problems
                else f"matches the card ({', '.join(checked)})",
            )
        )
    if data.report.notes:
        lines.append("  notes")
        lines.extend(f"    - {note}" for note in data.report.notes)

    lines.append("")
    fr = "/".join(f"{round(f * 100):g}" for f in cfg.split_fractions)
    if cfg.split_method == "fixed":
        lines.append(f"Cold-start protocol: {cfg.protocol} (fixed split: the ratings' split "
                     "column; users with rows in each split)")
    elif cfg.user_folds:
        lines.append(f"Cold-start protocol: {cfg.protocol} (seed {cfg.seed}, user fold "
                     f"{cfg.user_fold} of {cfg.user_folds}: its users tested, validation users "
                     f"drawn from the other folds' ({fr} split shares))")
    else:
        lines.append(f"Cold-start protocol: {cfg.protocol} (seed {cfg.seed}, {cfg.split_method} "
                     f"user split {fr})")  # fmt: skip
    users = tr.users
    lines.append(
        _row("users", f"meta-train {users['train']} / valid {users['valid']} / test {users['test']}")
    )
    if cfg.protocol == "melu":
        lines.append(
            _row(
                "tasks",
                f"meta-train {tr.tasks['train']} / valid {tr.tasks['valid']} / test "
                f"{tr.tasks['test']} (users with {cfg.melu_min_ratings}-{cfg.melu_max_ratings} "
                f"ratings)",
            )
        )
        lines.append(
            _row("episodes", f"query {cfg.melu_n_query} random ratings, support = the rest")
        )
    else:
        excl = [sum(tr.excluded[s].values()) for s in ("valid", "test")]
        fixed = {s: tr.per_size.get("fixed", {}).get(s, (0, 0))[0] for s in ("valid", "test")}
        given = " with given support and query rows"
        if any(fixed.values()) and all(fixed[s] == tr.tasks[s] for s in fixed):
            lines.append(_row("evaluated users", f"valid {tr.tasks['valid']} / test "
                              f"{tr.tasks['test']}{given}"))
            lines.append(_row("episodes", "one per user: its support rows, its query rows; "
                              "held-out = the query"))
        else:
            lines.append(
                _row(
                    "evaluated users",
                    f"valid {tr.tasks['valid']} / test {tr.tasks['test']} (>= "
                    f"{cfg.min_eval_ratings} ratings; {excl[0]} / {excl[1]} have fewer"
                    + (f"; {fixed['valid']} / {fixed['test']}{given}" if any(fixed.values())
                       else "") + ")",
                )
            )
            lines.append(
                _row(
                    "episodes",
                    f"support {', '.join(map(str, cfg.support_sizes))} + query {cfg.n_query}; "
                    "held-out = all non-support ratings",
                )
            )
    for key, per in tr.per_size.items():
        parts = []
        for s in ("train", "valid", "test"):
            ok, bad = per[s]
            parts.append(f"{s} {ok}" + (f" ({bad} too few)" if bad else ""))
        label = key if key in ("melu", "fixed") else f"k = {key}"
        lines.append(_row(f"  {label}", ", ".join(parts)))
    if sum(sum(v.values()) for v in tr.excluded.values()) and cfg.protocol == "melu":
        for s, reasons in tr.excluded.items():
            for reason, count in reasons.items():
                lines.append(_row(f"  excluded ({s})", f"{count}: {reason}"))
    if not data.implicit:
        lines.append(
            _row(
                "no relevant rating",
                f"valid {tr.no_relevant['valid']} / test {tr.no_relevant['test']} evaluated users "
                f"have no rating >= {cfg.relevance_threshold:g} (left out of binary ranking "
                "metrics)",
            )
        )
    ni = ds.new_items
    if ni.fixed:
        lines.append(
            _row(
                "new items",
                f"{_n(ni.count)} items rated in valid or test rows only (no train row): valid "
                f"{_n(tr.new_item_ratings['valid'])} / test {_n(tr.new_item_ratings['test'])} "
                "ratings flagged",
            )
        )
    elif ni.cutoff is not None:
        lines.append(
            _row(
                "new items",
                f"{_n(ni.count)} items first rated after {_date(ni.cutoff)} (the "
                f"{ni.quantile:.0%} time): {_n(tr.new_item_ratings['train'])} meta-train "
                f"ratings removed; valid {_n(tr.new_item_ratings['valid'])} / test "
                f"{_n(tr.new_item_ratings['test'])} ratings flagged",
            )
        )
    else:
        lines.append(_row("new items", "no item cold start"))
    st = ds.item_stats
    lines.append(
        _row(
            "item statistics",
            f"{_n(st.n_ratings)} meta-train ratings of {_n((st.count > 0).sum())} items, "
            f"mean {st.global_mean:.2f}",
        )
    )

    lines.append("")
    g = ds.graph
    lines.append("Graph (meta-train users only)")
    lines.append(
        _row("nodes", ", ".join(f"{t} {_n(g[t].num_nodes)}" for t in g.node_types))
    )
    edges = [
        ("user", "rates", "item"),
        ("item", "has_genre", "genre"),
        ("item", "has_tag", "tag"),
    ]
    lines.append(
        _row(
            "edges",
            ", ".join(f"{s}-{r}-{d} {_n(g[s, r, d].num_edges)}" for s, r, d in edges)
            + " (each with its reverse)",
        )
    )
    unrated = int(((g["item"].n_ratings.numpy() == 0)).sum())
    lines.append(
        _row(
            "item nodes",
            f"{g['item'].x.shape[1]} feature columns; {_n(unrated)} items have no rating edge "
            f"({_n(int(ni.mask.sum()))} new)",
        )
    )

    lines.append("")
    t = ds.timings
    read = t.get("read", float("nan"))
    lines.append("Timings")
    lines.append(_row("read", f"{read:.2f} s" + (" (from the cache)" if ds.read_cached else "")))
    lines.append(
        _row(
            "tasks and graph",
            f"{t['build']:.2f} s (split {t['split']:.2f}, features {t['features']:.2f}, "
            f"tasks {t['tasks']:.2f}, graph {t['graph']:.2f})",
        )
    )
    return "\n".join(lines)


def inspect_dataset(
    card: Card | str | Path, data_dir: str | Path | None = None, cache_dir: str | Path | None = None
) -> str:
    """Read and build a recsys data set with its card's defaults; return the printable report.

    A content mismatch with the card's ``[expected]`` counts is reported, not raised.
    """
    if not isinstance(card, Card):
        card = load_card(card, data_dir)
    elif data_dir is not None and card.source is None:
        card = dataclasses.replace(card, root=Path(data_dir).expanduser())
    start = time.perf_counter()
    ds = load_recsys_dataset(card, cache_dir=cache_dir, check_content=False)
    total = time.perf_counter() - start
    report = format_report(ds)
    return report + "\n" + _row("total", f"{total:.2f} s") + "\n"


__all__ = ["format_report", "inspect_dataset"]
