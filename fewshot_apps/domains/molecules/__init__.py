"""Few-shot molecular property prediction: per-assay molecule files -> few-shot tasks.

This module is light (no torch, no RDKit): it declares the domain's registry entries (its
classic baselines and encoder); the code behind them loads on first use.
"""

from __future__ import annotations

from fewshot_apps.core.registry import DOMAINS, ENCODERS, MODELS

DOMAINS.add("molecules", "fewshot_apps.domains.molecules.domain:MoleculeDomain",
            command="mol", domain_noun="molecule",
            summary="few-shot molecular property prediction: one task per assay")

_BASELINES = "fewshot_apps.domains.molecules.baselines"
_ECFP = dict(family="classic", label_kinds=("classification",), domain="molecules")

MODELS.add("rf", f"{_BASELINES}:RandomForestBaseline", **_ECFP, default=True,
           summary="random forest on ECFP fingerprints, fitted on the support set")
MODELS.add("knn", f"{_BASELINES}:TanimotoKNNBaseline", **_ECFP,
           summary="Tanimoto nearest neighbours on ECFP fingerprints")
MODELS.add("logreg", f"{_BASELINES}:LogisticRegressionBaseline", **_ECFP,
           summary="logistic regression on ECFP fingerprints")

ENCODERS.add("molecule-gin", "fewshot_apps.domains.molecules.encoder:MoleculeEncoder",
             domain="molecules")
