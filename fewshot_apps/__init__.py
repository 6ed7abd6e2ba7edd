"""fewshot-apps: few-shot meta-learning for cold-start recommendation and molecules.

The public API (see :mod:`fewshot_apps.api`)::

    import fewshot_apps as fa
    preds = fa.predict_assay(None, "examples/assay_support.csv", "examples/candidates.csv")
    recs = fa.recommend(None, "examples/new_user_ratings.csv", k=10)

Names load on first use (module ``__getattr__``), so ``import fewshot_apps`` and
``fewshot-apps --version`` stay fast: torch, RDKit and PyG are imported only when needed.
"""

__version__ = "0.1.0"

# public name -> the module that defines it
_LAZY = {
    "load_dataset": "fewshot_apps.api",
    "load_tasks": "fewshot_apps.api",
    "train_learner": "fewshot_apps.api",
    "load_model": "fewshot_apps.api",
    "predict_assay": "fewshot_apps.api",
    "suggest_assays": "fewshot_apps.api",
    "recommend": "fewshot_apps.api",
    "onboard": "fewshot_apps.api",
    "run_suite": "fewshot_apps.api",
    "save_ensemble": "fewshot_apps.api",
    "FewshotError": "fewshot_apps.errors",
    "DataError": "fewshot_apps.errors",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
