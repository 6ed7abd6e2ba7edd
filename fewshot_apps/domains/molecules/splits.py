"""Task splits: a card's ``task-index`` split, the assays a user names as test assays (or a
seeded random test fraction) for a CSV of their own, and FS-Mol's split file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from fewshot_apps.core.tasks import derive_seed
from fewshot_apps.errors import CardError, ContentCheckError, DataError
from fewshot_apps.sources import Card


def parse_index_ranges(spec: str | list[int], n: int, where: str = "[split]") -> list[int]:
    """``"0-8"``, ``"9,10"``, ``"450-"`` or a list of ints -> sorted indices < n.

    A negative index, a range without a start or ending before it starts, or anything that
    is not a whole number is a :class:`CardError` naming ``where`` (the card key) and ``spec``.
    """
    if isinstance(spec, list):
        bad = [i for i in spec if isinstance(i, bool) or not isinstance(i, int) or i < 0]
        if bad:
            raise CardError(f"{where} = {spec!r}: task indices must be whole numbers >= 0, "
                            f"not {bad[0]!r}")
        return sorted(i for i in spec if i < n)
    out: set[int] = set()
    for part in str(spec).split(","):
        part = part.strip()
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        lo, hi = lo.strip(), hi.strip()
        if not lo.isdecimal() or (dash and hi and not hi.isdecimal()):
            raise CardError(
                f"{where} = {spec!r}: {part!r} is not a task index or a range of them "
                '(e.g. "0-8", "9", "450-"; indices count from 0)'
            )
        if dash and hi and int(hi) < int(lo):
            raise CardError(f"{where} = {spec!r}: the range {part!r} ends before it starts")
        if dash:
            out.update(range(int(lo), (int(hi) + 1) if hi else n))
        else:
            out.add(int(lo))
    return sorted(i for i in out if i < n)


def task_index_split(card: Card, task_order: list[str], label_counts: pd.Series) -> dict:
    """Train / valid / test task names from a card's ``[split]`` of method ``task-index``.

    Indices refer to the card's task list (the public file's column order) when it has one,
    so a reordered copy splits the same way. ``min_labels`` drops sparse tasks first.
    Validation tasks are either ``valid`` (index ranges, as ``train``) or ``valid_last = N``:
    the N *kept* training tasks of highest index, a fixed count however many tasks of an
    index range ``min_labels`` drops. ``expect_train`` counts train and validation tasks
    together; ``expect_valid`` and ``expect_test`` count their own.
    """
    spec = card.split
    order = list(card.expected.get("tasks", task_order))
    kept = order
    if "min_labels" in spec:
        kept = [t for t in order if label_counts.get(t, 0) >= spec["min_labels"]]
    index = {t: i for i, t in enumerate(order)}
    n = len(order)
    where = f"card {card.name!r}: [split]"
    train_idx = set(parse_index_ranges(spec["train"], n, f"{where} train"))
    test_idx = set(parse_index_ranges(spec["test"], n, f"{where} test"))
    if "valid" in spec and "valid_last" in spec:
        raise CardError(f"card {card.name!r}: [split] has both valid and valid_last")
    valid_idx = set(parse_index_ranges(spec.get("valid", []), n, f"{where} valid"))
    if "valid_last" in spec:
        kept_train = [index[t] for t in kept if index[t] in train_idx]
        last = spec["valid_last"]
        if isinstance(last, bool) or not isinstance(last, int) or last < 0:
            raise CardError(f"{where} valid_last = {last!r}: expected a whole number >= 0 "
                            "(how many of the kept training tasks of highest index validate)")
        valid_idx = set(kept_train[max(0, len(kept_train) - last):]) if last > 0 else set()
    split = {
        "train": [t for t in kept if index[t] in train_idx and index[t] not in valid_idx],
        "valid": [t for t in kept if index[t] in valid_idx],
        "test": [t for t in kept if index[t] in test_idx],
    }
    for key, want in (("train", spec.get("expect_train")), ("valid", spec.get("expect_valid")),
                      ("test", spec.get("expect_test"))):
        got = len(split[key]) + (len(split["valid"]) if key == "train" else 0)
        if want is not None and got != want:
            what = "train (validation included)" if key == "train" else key
            dropped = (f" after dropping tasks with < {spec['min_labels']} labels"
                       if "min_labels" in spec else "")
            raise ContentCheckError(
                card.path("data"), f"split of {card.name!r}: expected {want} {what} tasks"
                f"{dropped}, found {got}"
            )
    return split


def _close_matches(name: str, known: list[str], n: int = 5) -> list[str]:
    """Known names like ``name`` (case-insensitive; difflib's similarity)."""
    import difflib

    lowered: dict[str, str] = {}
    for k in known:
        lowered.setdefault(k.lower().strip(), k)
    hits = difflib.get_close_matches(name.lower().strip(), list(lowered), n=n, cutoff=0.6)
    return [lowered[h] for h in hits]


def _unknown_assay(name: str, tasks: list[str], path) -> DataError:
    close = _close_matches(name, tasks)
    hint = (f"close matches: {', '.join(map(repr, close))}" if close
            else f"the {len(tasks)} assays are {tasks[:10]}" + (" ..." if len(tasks) > 10 else ""))
    return DataError(path, f"test assay {name!r} is not in the data; {hint}")


def resolve_test_assays(spec: str | list[str], tasks: list[str], path=None) -> list[str]:
    """The test assays a user named, checked against the data's assay names.

    A list holds exact names (a name may contain commas: SIDER's "Injury, poisoning and
    procedural complications"). A string is a comma-separated list; a comma inside a known
    name is read as part of it when that reading is the only one (``"A,B"`` is ambiguous
    when the data has assays ``A``, ``B`` and ``A,B``: an error asks for names one by one).
    Unknown names are a :class:`DataError` listing close matches.
    """
    known = set(tasks)
    stripped = {t.strip(): t for t in tasks}

    def match(text: str) -> str | None:
        return text if text in known else stripped.get(text.strip())

    if not isinstance(spec, str):
        names = []
        for name in spec:
            hit = match(str(name))
            if hit is None:
                raise _unknown_assay(str(name), tasks, path)
            names.append(hit)
        return names
    pieces = spec.split(",")
    n = len(pieces)
    # parses[i]: the readings of pieces[i:] as known names (at most 2 kept: 2 = ambiguous).
    parses: list[list[list[str]]] = [[] for _ in range(n)] + [[[]]]
    for i in range(n - 1, -1, -1):
        for j in range(i + 1, n + 1):
            hit = match(",".join(pieces[i:j]))
            if hit is not None and parses[j]:
                parses[i].extend([hit, *rest] for rest in parses[j][:2])
        parses[i] = parses[i][:2]
    if len(parses[0]) == 1:
        return parses[0][0]
    if len(parses[0]) > 1:
        a, b = parses[0]
        raise DataError(path, f"test assays {spec!r} can be read as {a} or as {b}; name them "
                        "one by one (--test-assay NAME, repeated, or --test-assays-file)")
    # No reading: the first piece that starts no known name (from a readable prefix) is unknown.
    i = 0
    while i < n:
        ends = [j for j in range(n, i, -1) if match(",".join(pieces[i:j])) is not None]
        if not ends:
            raise _unknown_assay(pieces[i].strip(), tasks, path)
        i = ends[0]
    raise DataError(path, f"test assays {spec!r}: no reading as known assay names")


def random_task_split(
    tasks: list[str],
    seed: int,
    test_tasks: str | list[str] | None = None,
    test_fraction: float = 0.2,
    valid_fraction: float = 0.1,
    path=None,
    evaluable: list[str] | None = None,
) -> dict:
    """Split a user's assays: the given test assays (see :func:`resolve_test_assays`), or a
    seeded ``test_fraction`` of them; ``valid_fraction`` of the rest (at least one when there
    are 3 or more) for selection. ``path`` is the file errors name.

    ``evaluable``: the assays with both classes (None: all). Only they are drawn as test or
    validation assays, since a one-class assay cannot be scored; the others train. With
    every assay evaluable the draws are those of a split without the argument."""
    if not 0 < float(test_fraction) < 1:
        raise DataError(path, f"test fraction {test_fraction} is not between 0 and 1")
    scorable = set(tasks if evaluable is None else evaluable)
    if test_tasks:
        wanted = set(resolve_test_assays(test_tasks, tasks, path))
        test = [t for t in tasks if t in wanted]
        if len(test) == len(tasks):
            raise DataError(path, f"every assay ({len(tasks)}) is a test assay: none is left "
                            "to train on")
    else:
        rng = np.random.default_rng(derive_seed(seed, "test-split"))
        n_test = max(1, int(round(test_fraction * len(tasks)))) if len(tasks) > 1 else 0
        test = _draw(rng, tasks, n_test, scorable)
    rest = [t for t in tasks if t not in set(test)]
    rng = np.random.default_rng(derive_seed(seed, "valid-split"))
    n_valid = max(1, int(round(valid_fraction * len(rest)))) if len(rest) >= 3 else 0
    valid = _draw(rng, rest, n_valid, scorable)
    train = [t for t in rest if t not in set(valid)]
    return {"train": train, "valid": valid, "test": test}


def _draw(rng: np.random.Generator, tasks: list[str], n: int, scorable: set[str]) -> list[str]:
    """``n`` of the ``scorable`` ``tasks`` (fewer when fewer are), in the tasks' order, at
    least one task left undrawn to train on."""
    pool = [t for t in tasks if t in scorable]
    n = min(n, len(pool), len(tasks) - 1)
    if n <= 0:
        return []
    return sorted(rng.choice(pool, size=n, replace=False).tolist(), key=tasks.index)


def read_fsmol_split(split_file: Path) -> dict:
    """FS-Mol's split file: fold name -> the task names it lists."""
    try:
        return json.loads(split_file.read_text())
    except FileNotFoundError:
        raise DataError(split_file, "the split file (the task names of each fold) is "
                        "missing; fetch the data set again or fix the card's [files] split "
                        "path") from None
    except OSError as exc:
        raise DataError(split_file, f"cannot read the split file: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(split_file, f"not a valid split file: {exc}") from None
