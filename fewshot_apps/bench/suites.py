"""Benchmark suites (``benchmarks/*.toml``): which data set, protocol, learners and budgets.

A suite names a data set (a card), a protocol (``k-shot``, ``fsmol`` or ``cold-start``), the
learners to compare, the baseline for paired comparisons, and presets (``smoke``, ``fast``,
``full``; optionally ``published``) that set training budgets and evaluation draws. A
composite suite (``demo``) lists ``parts``: other suites with overrides.

``[learner_settings.<learner>]`` tables give one learner settings of its own (chosen by
model selection on validation tasks: its learning rate, encoder kind ...), applied over the
preset's ``settings`` for that learner only.

``dataset_options`` (a table) are loading options passed through to the data set's domain,
which checks them (a variant of the data set: ``{ molecules = "disjoint" }``). A suite with
options labels its rows' ``dataset`` column ``<dataset>:<options>`` (:attr:`Suite.label`), so
that two variants of one data set stay apart in one results folder. A composite suite's part
may be another suite under a name of its own (``[part.<name>] suite = "tox21"``), so that one
suite can be a part twice, with other ``dataset_options`` (and ``published`` rows, and
``settings`` over the preset's for that part).

A protocol with acquisition strategies (``active``: its PROTOCOLS entry's ``strategies``)
runs each learner with each of the suite's ``strategies`` (default: all of the protocol's);
its rows' ``learner`` is ``<learner>+<strategy>`` (:func:`learner_label`), and the suite's
``baseline`` names the strategy the others are compared with (default: the protocol's
``baseline_strategy``, ``random``).

A preset's ``folds = N`` cross-validates: the suite becomes N variants, one per fold, with the
dataset options ``folds = N`` and ``fold = f`` (the domain decides what a fold is: for rating
data, a fold of the users); each variant is trained and evaluated on its own (rows labelled
``<dataset>:folds=N,fold=f``), and the summary and report pool the folds' test tasks under
:attr:`Suite.pooled_label` (``<dataset>:folds=N``; :mod:`fewshot_apps.bench.folds`).

``train_suite = "<suite>"`` trains elsewhere: every learner that trains (meta-learners and
transfer baselines) is trained as that suite trains it (its data set, its preset's steps and
settings, its ``learner_settings`` and training episodes), then reads this suite's molecules
and is scored by this suite's protocol on this suite's test tasks; classic baselines are
fitted on this suite's data as usual (``muv-fsmol``: learners meta-trained on FS-Mol's
training assays, tested on MUV's).
"""

from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from fewshot_apps.core.registry import MODELS, PROTOCOLS
from fewshot_apps.errors import CardError
from fewshot_apps.sources import bundled_folder

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

# ``published`` is optional: a suite defines it where its training budget can match the
# episode counts of the published counterparts of its learners (``fsmol``).
PRESETS = ("smoke", "fast", "full", "published")
# The keys a suite file may have (a typo is an error, not a silently ignored setting).
SUITE_KEYS = {"name", "dataset", "protocol", "learners", "shots", "support_sizes", "train_shots",
              "train_support_size", "strategies", "train_suite",
              "baseline", "published", "presets", "dataset_options", "learner_settings"}
COMPOSITE_KEYS = {"name", "parts", "part", "presets"}
PART_KEYS = {"learners", "shots", "suite", "dataset_options", "published", "settings"}
PRESET_KEYS = {"steps", "pretrain_steps", "draws", "seeds", "settings", "max_test_tasks",
               "query_limit", "support_sizes", "folds"}
#: The dataset options of one fold of a cross-validated suite (a preset's ``folds``).
FOLD_OPTIONS = ("folds", "fold")


#: Between a learner and its acquisition strategy in a row's ``learner``: ``protonet+ucb``.
STRATEGY_SEPARATOR = "+"


def learner_label(name: str, strategy: str | None = None) -> str:
    """A row's ``learner``: the learner's name, with ``+<strategy>`` for a protocol with
    acquisition strategies (``protonet+ucb``)."""
    return name if strategy is None else f"{name}{STRATEGY_SEPARATOR}{strategy}"


def split_learner_label(label: str) -> tuple[str, str | None]:
    """``(learner, strategy or None)`` of a row's ``learner`` (:func:`learner_label`): what
    trained and timed the rows is the learner, whatever its strategy."""
    name, sep, strategy = str(label).partition(STRATEGY_SEPARATOR)
    return name, (strategy if sep else None)


def file_slug(name: str) -> str:
    """``name`` (a data set, a metric) made safe as part of a file name. A data set given as a
    card's path becomes the card's stem and a short hash of the whole path, so that two cards
    with the same file name stay apart."""
    text = str(name)
    if "/" in text or "\\" in text or text.endswith(".toml"):
        stem = Path(text.replace("\\", "/")).stem
        text = f"{stem}-{hashlib.sha1(str(name).encode()).hexdigest()[:8]}"
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip(".-") or "unnamed"


@dataclass
class Preset:
    """Budgets: meta-training ``steps``, transfer ``pretrain_steps``, evaluation ``draws`` x
    ``seeds``; smoke runs may cap the test tasks and query sizes."""

    steps: int
    pretrain_steps: int
    draws: int
    seeds: list[int]
    settings: dict = field(default_factory=dict)
    max_test_tasks: int | None = None
    query_limit: int | None = None
    support_sizes: list[int] | None = None
    folds: int | None = None


@dataclass
class Suite:
    name: str
    dataset: str
    protocol: str
    learners: list[str]
    preset: Preset
    shots: list[int] = field(default_factory=lambda: [10])
    support_sizes: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    train_shots: int | None = None
    train_support_size: int | None = None
    baseline: str | None = None
    published: str = "none"
    source: str = ""
    dataset_options: dict = field(default_factory=dict)
    learner_settings: dict = field(default_factory=dict)
    #: The acquisition strategies of a protocol that has them (``active``), else None.
    strategies: list[str] | None = None
    #: Another suite whose data set and settings the learners that train are trained with
    #: (``train_suite``), or None: this suite's own.
    train_suite: str | None = None

    def settings_for(self, learner: str) -> dict:
        """The settings ``learner`` trains with: the preset's, then its own
        ``[learner_settings.<learner>]`` over them."""
        return {**self.preset.settings, **self.learner_settings.get(learner, {})}

    @property
    def label(self) -> str:
        """The ``dataset`` of its rows: the data set's name, and with ``dataset_options``
        their values after a colon (``tox21:disjoint``; a value that is not text as
        ``key=value``). Without options, the name alone."""
        if not self.dataset_options:
            return self.dataset
        return f"{self.dataset}:" + ",".join(
            value if isinstance(value, str) else f"{key}={value}"
            for key, value in self.dataset_options.items())

    @property
    def fold(self) -> int | None:
        """The fold of a cross-validated suite's variant (its dataset option), else None."""
        return self.dataset_options.get("fold") if "folds" in self.dataset_options else None

    @property
    def pooled_label(self) -> str:
        """The ``dataset`` of its rows in the summary and the report: :attr:`label`, without
        the fold of a cross-validated suite's variant (``movielens-latest-small:folds=5``:
        every fold's rows pooled)."""
        return self.without_fold().label

    def without_fold(self) -> Suite:
        """This suite with its fold's dataset option dropped (itself when it has none)."""
        if self.fold is None:
            return self
        return replace(self, dataset_options={k: v for k, v in self.dataset_options.items()
                                              if k != "fold"})

    def train_episode(self, learner: str | None = None) -> dict:
        """The meta-training episode settings the suite asks for (``shots`` or
        ``support_size``; none: the data set's defaults). A learner whose own
        ``learner_settings`` give ``shots`` or ``support_size`` chooses its episodes itself:
        the suite's are dropped, so that a 16-support learner of a K-shot suite trains on
        stratified supports rather than on both at once."""
        if learner is not None and chooses_episodes(self.learner_settings.get(learner, {})):
            return {}
        out = {}
        if self.train_shots is not None:
            out["shots"] = self.train_shots
        if self.train_support_size is not None:
            out["support_size"] = self.train_support_size
        return out


def chooses_episodes(settings: dict) -> bool:
    """Whether ``settings`` choose their own training episodes (``shots`` or
    ``support_size``), in place of a suite's."""
    return "shots" in settings or "support_size" in settings


def _suite_text(name_or_path: str) -> tuple[str, str]:
    path = Path(name_or_path)
    if path.suffix == ".toml":
        if not path.is_file():
            raise CardError(f"{path}: no such suite file")
        return path.read_text(encoding="utf-8"), str(path)
    resource = bundled_folder("fewshot_apps.suites", "benchmarks") / f"{name_or_path}.toml"
    if not resource.is_file():
        raise CardError(
            f"unknown suite {name_or_path!r}; known: {', '.join(suite_names())} (or a .toml path)"
        )
    return resource.read_text(encoding="utf-8"), f"suite {name_or_path}"


def suite_names() -> list[str]:
    folder = bundled_folder("fewshot_apps.suites", "benchmarks")
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def _check_keys(table, allowed: set[str], where: str, required: tuple[str, ...] = ()) -> None:
    """A table of a suite file has only ``allowed`` keys and every ``required`` one."""
    if not isinstance(table, dict):
        raise CardError(f"{where} must be a table, not {table!r}")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise CardError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} "
                        f"{', '.join(map(repr, unknown))}; allowed: {', '.join(sorted(allowed))}")
    missing = [key for key in required if key not in table]
    if missing:
        raise CardError(f"{where}: missing {', '.join(map(repr, missing))}")


def _preset(raw: dict, preset: str, origin: str) -> Preset:
    presets = raw.get("presets", {})
    if preset not in presets:
        raise CardError(f"{origin}: no preset {preset!r} (has {sorted(presets)})")
    p = dict(presets[preset])
    _check_keys(p, PRESET_KEYS, f"{origin}: [presets.{preset}]", ("steps", "draws", "seeds"))
    folds = _optional_int(p, "folds", f"{origin}: [presets.{preset}]")
    try:
        return Preset(
            steps=int(p["steps"]), pretrain_steps=int(p.get("pretrain_steps", p["steps"])),
            draws=int(p["draws"]), seeds=[int(s) for s in p["seeds"]],
            settings=dict(p.get("settings", {})), max_test_tasks=p.get("max_test_tasks"),
            query_limit=p.get("query_limit"), support_sizes=p.get("support_sizes"),
            folds=folds,
        )
    except (TypeError, ValueError) as exc:
        raise CardError(f"{origin}: [presets.{preset}]: steps, pretrain_steps and draws must be "
                        f"whole numbers, seeds a list of them, settings a table ({exc})") from None


def _optional_int(raw: dict, key: str, origin: str) -> int | None:
    if key not in raw:
        return None
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CardError(f"{origin}: {key} must be a positive whole number, not {value!r}")
    return value


def _train_suite(raw: dict, preset: str, origin: str) -> str | None:
    """``train_suite``: a plain suite (not composite, not itself trained elsewhere) that has
    this preset; checked here so that a typo fails before any training."""
    name = raw.get("train_suite")
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip():
        raise CardError(f"{origin}: train_suite must be a suite's name, not {name!r}")
    try:
        parts = _load_suites(name, preset)
    except CardError as err:
        raise CardError(f"{origin}: train_suite {name!r}: {err}") from None
    if len(parts) != 1 or parts[0].train_suite is not None:
        raise CardError(f"{origin}: train_suite {name!r} must be a suite that trains on its "
                        "own data set (not a composite suite, nor one with a train_suite)")
    return name


def _dataset_options(raw: dict, where: str) -> dict:
    """A ``dataset_options`` table: option names -> text, numbers or booleans (which ones a
    data set accepts, its domain checks)."""
    options = raw.get("dataset_options", {})
    if not isinstance(options, dict) or not all(
            isinstance(v, str | int | float | bool) for v in options.values()):
        raise CardError(f"{where}: dataset_options must be a table of option = value (text, "
                        f"numbers, true / false), not {options!r}")
    return dict(options)


def _learner_settings(raw: dict, learners: list[str], where: str) -> dict:
    """``[learner_settings.<learner>]`` tables: each names one of the suite's learners and
    holds settings (``key = value``; the budget, ``steps``, stays the preset's)."""
    tables = raw.get("learner_settings", {})
    if not isinstance(tables, dict):
        raise CardError(f"{where}: learner_settings must be a table of [learner_settings.<name>]")
    for name, table in tables.items():
        if name not in learners:
            raise CardError(f"{where}: [learner_settings.{name}] names no learner of the suite "
                            f"({', '.join(learners)})")
        if not isinstance(table, dict) or not all(
                isinstance(v, str | int | float | bool) for v in table.values()):
            raise CardError(f"{where}: [learner_settings.{name}] must be a table of "
                            f"key = value (text, numbers, true / false), not {table!r}")
        if "steps" in table:
            raise CardError(f"{where}: [learner_settings.{name}]: steps is the preset's budget")
    return {name: dict(table) for name, table in tables.items()}


def _strategies(raw: dict, origin: str) -> tuple[list[str] | None, str | list[str] | None]:
    """The suite's acquisition ``strategies`` and the ``baseline`` strategy, for a protocol
    with strategies (its PROTOCOLS entry's ``strategies``; default all of them, the baseline
    the entry's ``baseline_strategy``); ``(None, baseline)`` for another protocol, where
    ``baseline`` may name several learners (each learner is compared with every one)."""
    known = PROTOCOLS.get(raw["protocol"]).meta.get("strategies")
    if not known:
        if "strategies" in raw:
            raise CardError(f"{origin}: strategies: the {raw['protocol']} protocol has no "
                            "acquisition strategies")
        baseline = raw.get("baseline")
        if isinstance(baseline, list):  # several named baselines: compared with each
            if not baseline or not all(isinstance(b, str) for b in baseline):
                raise CardError(f"{origin}: baseline must be a learner's name or a non-empty "
                                "list of names")
            baseline = list(dict.fromkeys(baseline))
        return None, baseline
    strategies = raw.get("strategies", list(known))
    if (not isinstance(strategies, list) or not strategies
            or not all(isinstance(s, str) for s in strategies)):
        raise CardError(f"{origin}: strategies must be a non-empty list of names "
                        f"({', '.join(known)})")
    unknown = [s for s in strategies if s not in known]
    if unknown:
        raise CardError(f"{origin}: unknown strategies {unknown}; the {raw['protocol']} "
                        f"protocol has {', '.join(known)}")
    default = PROTOCOLS.get(raw["protocol"]).meta.get("baseline_strategy")
    baseline = raw.get("baseline", default if default in strategies else None)
    if baseline is not None and baseline not in strategies:
        raise CardError(f"{origin}: baseline {baseline!r}: with the {raw['protocol']} "
                        f"protocol, the strategy the others are compared with (one of "
                        f"{', '.join(strategies)})")
    return list(dict.fromkeys(strategies)), baseline


def with_folds(parts: list[Suite]) -> list[Suite]:
    """Each part whose preset has ``folds = N`` as N variants, dataset options ``folds = N``
    and ``fold = 0 .. N - 1``; other parts as they are."""
    out = []
    for part in parts:
        n = part.preset.folds
        if not n:
            out.append(part)
            continue
        if n < 2:
            raise CardError(f"{part.source or part.name}: folds must be 2 or more, not {n}")
        given = sorted(set(FOLD_OPTIONS) & set(part.dataset_options))
        if given:
            raise CardError(f"{part.source or part.name}: dataset_options {', '.join(given)} "
                            "are set by the preset's folds; give one or the other")
        out += [replace(part, dataset_options={**part.dataset_options, "folds": n, "fold": f})
                for f in range(n)]
    return out


def without_folds(parts: list[Suite]) -> list[Suite]:
    """The parts with the folds of a cross-validated suite dropped: one part per data set
    variant, as without ``folds`` (what a saved model, trained on one split, is scored on)."""
    out: list[Suite] = []
    for part in parts:
        if part.fold is not None:
            options = {k: v for k, v in part.dataset_options.items() if k not in FOLD_OPTIONS}
            part = replace(part, dataset_options=options)
        if all((p.name, p.label) != (part.name, part.label) for p in out):
            out.append(part)
    return out


def load_suites(name_or_path: str, preset: str = "full") -> list[Suite]:
    """The suite (a list of one), or the parts of a composite suite, at ``preset``; a preset
    with ``folds = N`` gives N variants of each (:func:`with_folds`)."""
    return with_folds(_load_suites(name_or_path, preset))


def _load_suites(name_or_path: str, preset: str) -> list[Suite]:
    if preset not in PRESETS:
        raise CardError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    text, origin = _suite_text(name_or_path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CardError(f"{origin}: not valid TOML: {exc}") from None
    if "parts" in raw:
        _check_keys(raw, COMPOSITE_KEYS, origin, ("name", "parts", "presets"))
        for part, override in raw.get("part", {}).items():
            if part not in raw["parts"]:
                raise CardError(f"{origin}: [part.{part}] names no part of {raw['parts']}")
            _check_keys(override, PART_KEYS, f"{origin}: [part.{part}]")
        out = []
        for part in raw["parts"]:
            override = raw.get("part", {}).get(part, {})
            if not isinstance(override.get("suite", part), str):
                raise CardError(f"{origin}: [part.{part}]: suite must be a suite's name")
            (base,) = _load_suites(override.get("suite", part), preset)
            base.learners = list(override.get("learners", base.learners))
            base.shots = list(override.get("shots", base.shots))
            if "dataset_options" in override:
                base.dataset_options = _dataset_options(override, f"{origin}: [part.{part}]")
            base.published = override.get("published", base.published)
            base.preset = _preset(raw, preset, origin)
            if "settings" in override:  # over the preset's settings, for this part only
                if not isinstance(override["settings"], dict):
                    raise CardError(f"{origin}: [part.{part}]: settings must be a table")
                base.preset = replace(base.preset,
                                      settings={**base.preset.settings, **override["settings"]})
            base.name = raw["name"]
            unknown = [name for name in base.learners if name not in MODELS]
            if unknown:
                raise CardError(f"{origin}: [part.{part}]: unknown learners {unknown}; known: "
                                f"{', '.join(MODELS)}")
            out.append(base)
        labels = [p.label for p in out]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            raise CardError(f"{origin}: parts {', '.join(repeated)} would write the same rows "
                            "(give each its own dataset_options)")
        return out
    _check_keys(raw, SUITE_KEYS, origin, ("name", "dataset", "protocol", "learners", "presets"))
    if raw["protocol"] not in PROTOCOLS:
        raise CardError(f"{origin}: unknown protocol {raw['protocol']!r}; expected one of "
                        f"{', '.join(PROTOCOLS)}")
    if not isinstance(raw["learners"], list) or not raw["learners"]:
        raise CardError(f"{origin}: learners must be a non-empty list of names")
    pre = _preset(raw, preset, origin)
    strategies, baseline = _strategies(raw, origin)
    suite = Suite(
        name=raw["name"], dataset=raw["dataset"], protocol=raw["protocol"],
        learners=list(raw["learners"]), preset=pre, shots=list(raw.get("shots", [10])),
        support_sizes=list(pre.support_sizes or raw.get("support_sizes", [16, 32, 64, 128])),
        train_shots=_optional_int(raw, "train_shots", origin),
        train_support_size=_optional_int(raw, "train_support_size", origin),
        baseline=baseline,
        published=raw.get("published", "none"), source=origin,
        dataset_options=_dataset_options(raw, origin),
        learner_settings=_learner_settings(raw, list(raw["learners"]), origin),
        strategies=strategies,
        train_suite=_train_suite(raw, preset, origin),
    )
    unknown = [name for name in suite.learners if name not in MODELS]
    if unknown:
        raise CardError(f"{origin}: unknown learners {unknown}; known: {', '.join(MODELS)}")
    return [suite]
