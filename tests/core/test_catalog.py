"""The catalogue: every registered model, encoder, metric and protocol loads and agrees with
its code, and each model / encoder name is written once in the package (in the catalogue)."""

from __future__ import annotations

import ast
import importlib
import math
from pathlib import Path

import numpy as np
import pytest

from fewshot_apps.core.metrics import (
    higher_is_better,
    metric_bounds,
    metric_function,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)
from fewshot_apps.core.registry import (
    ENCODERS,
    FAMILIES,
    META_LEARNING_FAMILIES,
    METRICS,
    MODELS,
    PLUGINS,
    PROTOCOLS,
)
from fewshot_apps.errors import FewshotError

PACKAGE = Path(importlib.import_module("fewshot_apps").__file__).parent
KINDS = ("classification", "regression")


@pytest.mark.parametrize("name", MODELS.names())
def test_every_model_loads_and_reads_its_name_back(name):
    entry = MODELS.get(name)
    assert entry.family in FAMILIES
    assert entry.label_kinds and set(entry.label_kinds) <= set(KINDS)
    assert isinstance(entry.summary, str) and entry.summary
    if entry.domain is not None:  # a domain's model lives in that domain's package
        assert entry.target.startswith(f"fewshot_apps.domains.{entry.domain}.")
    cls = MODELS.load(name)
    assert isinstance(cls, type) and cls.name == name
    assert MODELS.name_of(cls) == name
    if entry.family in META_LEARNING_FAMILIES:
        assert tuple(cls.SUPPORTED_KINDS) == tuple(entry.label_kinds)
    else:  # baselines also say their family (saved configs and reports use it)
        assert cls.family == entry.family
    if isinstance(getattr(cls, "kind", None), str):  # classic baselines have a fixed kind
        assert (cls.kind,) == tuple(entry.label_kinds)


def test_each_domain_has_one_default_model():
    for domain in ("molecules", "recsys"):
        assert len(MODELS.names(domain=domain, default=True)) == 1
    assert MODELS.names(default=True, domain=None) == []


@pytest.mark.parametrize("name", ENCODERS.names())
def test_every_encoder_loads_and_can_be_rebuilt_from_a_config(name):
    cls = ENCODERS.load(name)
    assert cls.name == name
    assert callable(getattr(cls, "from_config", None))


# A tiny example with known values: positives score .9 .7 .6, negatives .8 .3 .1.
LABELS = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
SCORES = np.array([0.9, 0.8, 0.7, 0.3, 0.6, 0.1])
KNOWN = {
    "roc_auc": 7 / 9,  # 7 of the 9 positive-negative pairs are ordered right
    "mae": 2.0 / 6,  # |errors| .1 .8 .3 .3 .4 .1
    "rmse": math.sqrt(1.0 / 6),  # squares .01 .64 .09 .09 .16 .01
    "precision@3": 2 / 3, "recall@3": 2 / 3,  # top 3: .9 (1) .8 (0) .7 (1)
    "precision@5": 3 / 5, "recall@5": 1.0,
    "precision@10": 3 / 6, "recall@10": 1.0,  # fewer items than k: all 6 count
    # interval metrics, on SCORES -/+ 0.25: only the labels at .9 (1) and .1 (0) inside
    "coverage@90": 2 / 6, "interval_width": 0.5,
}


@pytest.mark.parametrize("name", METRICS.names())
def test_every_metric_computes_in_its_bounds(name):
    entry = METRICS.get(name)
    if entry.meta.get("inputs") == "interval":  # f(targets, low, high)
        value = metric_function(name)(LABELS, SCORES - 0.25, SCORES + 0.25)
    else:
        value = metric_function(name)(LABELS, SCORES)
    assert isinstance(value, float)
    low, high = entry.bounds
    assert low <= value <= high
    assert metric_bounds(name) == (low, high)
    assert higher_is_better(name) == (entry.direction == "higher")
    if name in KNOWN:
        assert value == pytest.approx(KNOWN[name])
    k = entry.meta.get("k")
    if k is not None:  # the @k metrics have their k bound
        base = {"ndcg": ndcg_at_k, "precision": precision_at_k, "recall": recall_at_k}
        assert value == base[name.split("@")[0]](LABELS, SCORES, k=k)
        assert name == f"{name.split('@')[0]}@{k}"


def test_metric_look_ups():
    assert not higher_is_better("mae") and higher_is_better("delta_auprc")
    assert higher_is_better("ndcg@20")  # an unregistered k: its name's direction
    assert metric_bounds("recall@20") == (0.0, 1.0)
    assert metric_bounds("rmse") == (0.0, math.inf)
    assert metric_bounds("delta_auprc") == (-1.0, 1.0)
    assert metric_bounds("made_up") == (-math.inf, math.inf)
    with pytest.raises(FewshotError, match="unknown metric 'made_up'; known: "
                       "actives_acquired, actives_found, auprc"):
        higher_is_better("made_up")
    with pytest.raises(FewshotError, match="unknown metric 'ndcg@20'"):
        metric_function("ndcg@20")


def test_protocols_name_registered_metrics():
    for entry in PROTOCOLS.entries():
        assert entry.main_metrics and set(entry.main_metrics) <= set(METRICS)
        assert entry.label_kind in KINDS


def test_the_report_reads_directions_ranges_and_headlines_from_the_registry():
    from fewshot_apps.bench import report

    assert {"mae", "rmse", "brier", "ece", "ece_floor", "interval_width"} == report.LOWER_IS_BETTER
    expected = {"k-shot": ["roc_auc"], "fsmol": ["delta_auprc"],
                "active": ["actives_found", "delta_auprc"],
                "cold-start": ["mae", "recall@10", "ndcg@10", "ndcg@3"],
                "onboarding": ["recall@10", "ndcg@10", "mae"]}
    assert {name: report.MAIN_METRICS[name] for name in expected} == expected
    assert {m for ms in report.MAIN_METRICS.values() for m in ms} == report.HEADLINE_METRICS
    assert {"roc_auc", "delta_auprc", "actives_found", "mae", "recall@10",
            "ndcg@3"} <= report.HEADLINE_METRICS
    assert report.METRIC_BOUNDS["ndcg"] == (0.0, 1.0)
    assert report.METRIC_BOUNDS["delta_auprc"] == (-1.0, 1.0)


# ------------------------------------------------------------------------------------------
# each name written once


def _module_file(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, module
    return Path(spec.origin).resolve()


def _name_constants(path: Path, names: set[str]) -> set[str]:
    """The string constants of ``path`` equal to one of ``names``, docstrings left out."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return {node.value for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
            and node.value in names and id(node) not in docstrings}


def test_each_model_and_encoder_name_is_written_once_in_the_catalogue():
    # Entries of the package itself (a plugin's names live in its own package); "table", an
    # encoder's name, is also an ordinary word (a buffer name), so it is left out.
    names = {e.name for e in MODELS.entries() + ENCODERS.entries()
             if e.target.startswith("fewshot_apps.")} - {"table"}
    catalogues = {_module_file(m) for m in PLUGINS}
    found: dict[str, set[Path]] = {name: set() for name in names}
    for path in sorted(PACKAGE.rglob("*.py")):
        for name in _name_constants(path.resolve(), names):
            found[name].add(path.resolve())
    offenders = {name: sorted(str(p.relative_to(PACKAGE.parent)) for p in paths)
                 for name, paths in found.items() if len(paths) != 1 or not paths <= catalogues}
    assert not offenders, f"model / encoder names outside the catalogue: {offenders}"


def test_the_scan_finds_names_outside_docstrings(tmp_path):
    path = tmp_path / "sample.py"
    path.write_text('"""protonet in a docstring."""\n\ndef f():\n    """rf too."""\n'
                    '    return "protonet", "about rf", ("knn",)\n')
    assert _name_constants(path, {"protonet", "rf", "knn"}) == {"protonet", "knn"}
