"""Benchmark suites (``benchmarks/*.toml``): which data set, protocol, learners and budgets.

A suite names a data set (a card), a protocol (``k-shot``, ``fsmol`` or ``cold-start``), the
learners to compare, the baseline for paired comparisons, and presets (``smoke``, ``fast``,
``full``) that set training budgets and evaluation draws. A composite suite (``demo``) lists
``parts``: other suites with overrides.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from fewshot_apps.errors import CardError
from fewshot_apps.sources import bundled_folder

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FAMILIES = {
    "protonet": "metric", "attention": "metric",
    "cnp": "generator", "hypernet": "generator",
    "maml": "optimizer", "anil": "optimizer", "metasgd": "optimizer", "lstm": "optimizer",
    "finetune": "transfer", "linear-probe": "transfer",
    "rf": "classic", "knn": "classic", "logreg": "classic",
    "global-mean": "classic", "item-mean": "classic", "popularity": "classic", "mf": "classic",
}
PRESETS = ("smoke", "fast", "full")


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


@dataclass
class Suite:
    name: str
    dataset: str
    protocol: str
    learners: list[str]
    preset: Preset
    shots: list[int] = field(default_factory=lambda: [10])
    support_sizes: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    train_shots: int = 10
    baseline: str | None = None
    published: str = "none"
    source: str = ""


def _suite_text(name_or_path: str) -> tuple[str, str]:
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():
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


def _preset(raw: dict, preset: str, origin: str) -> Preset:
    presets = raw.get("presets", {})
    if preset not in presets:
        raise CardError(f"{origin}: no preset {preset!r} (has {sorted(presets)})")
    p = dict(presets[preset])
    return Preset(
        steps=int(p["steps"]), pretrain_steps=int(p.get("pretrain_steps", p["steps"])),
        draws=int(p["draws"]), seeds=[int(s) for s in p["seeds"]],
        settings=dict(p.get("settings", {})), max_test_tasks=p.get("max_test_tasks"),
        query_limit=p.get("query_limit"), support_sizes=p.get("support_sizes"),
    )


def load_suites(name_or_path: str, preset: str = "full") -> list[Suite]:
    """The suite (a list of one), or the parts of a composite suite, at ``preset``."""
    if preset not in PRESETS:
        raise CardError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    text, origin = _suite_text(name_or_path)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CardError(f"{origin}: not valid TOML: {exc}") from None
    if "parts" in raw:
        out = []
        for part in raw["parts"]:
            (base,) = load_suites(part, preset)
            override = raw.get("part", {}).get(part, {})
            base.learners = list(override.get("learners", base.learners))
            base.shots = list(override.get("shots", base.shots))
            base.preset = _preset(raw, preset, origin)
            base.name = raw["name"]
            out.append(base)
        return out
    pre = _preset(raw, preset, origin)
    suite = Suite(
        name=raw["name"], dataset=raw["dataset"], protocol=raw["protocol"],
        learners=list(raw["learners"]), preset=pre, shots=list(raw.get("shots", [10])),
        support_sizes=list(pre.support_sizes or raw.get("support_sizes", [16, 32, 64, 128])),
        train_shots=int(raw.get("train_shots", 10)), baseline=raw.get("baseline"),
        published=raw.get("published", "none"), source=origin,
    )
    unknown = [name for name in suite.learners if name not in FAMILIES]
    if unknown:
        raise CardError(f"{origin}: unknown learners {unknown}")
    return [suite]
