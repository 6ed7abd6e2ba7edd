"""Few-shot molecular property prediction: per-assay molecule files -> few-shot tasks.

This module is light (no torch, no RDKit): it declares the domain's registry entries (its
classic baselines and encoder); the code behind them loads on first use.
"""

from __future__ import annotations

from fewshot_apps.core.registry import DOMAINS, ENCODERS, MODELS, PROTOCOLS

DOMAINS.add("molecules", "fewshot_apps.domains.molecules.domain:MoleculeDomain",
            command="mol", domain_noun="molecule",
            summary="few-shot molecular property prediction: one task per assay")

# Classic baselines on ECFP fingerprints: name, class, is `mol predict`'s default, summary.
for _name, _class, _default, _summary in (
    ("rf", "RandomForestBaseline", True,
     "random forest on ECFP fingerprints, fitted on the support set"),
    ("knn", "TanimotoKNNBaseline", False, "Tanimoto nearest neighbours on ECFP fingerprints"),
    ("logreg", "LogisticRegressionBaseline", False, "logistic regression on ECFP fingerprints"),
    ("gp", "TanimotoGPBaseline", False,
     "Gaussian process with the Tanimoto kernel on ECFP fingerprints"),
):
    MODELS.add(_name, f"fewshot_apps.domains.molecules.baselines:{_class}", family="classic",
               label_kinds=("classification",), domain="molecules", default=_default,
               support_only=True, summary=_summary)
# Needs the data set's training tasks: for benchmarks, not for `mol predict` on your assay.
MODELS.add("label-prior", "fewshot_apps.domains.molecules.label_prior:LabelPriorBaseline",
           family="classic", label_kinds=("classification",), domain="molecules",
           support_only=False, summary="each molecule's mean label over the training tasks, "
           "ignoring the support set (what assay-split protocols reward)")
MODELS.add("label-profile", "fewshot_apps.domains.molecules.label_profile:LabelProfileBaseline",
           family="classic", label_kinds=("classification",), domain="molecules",
           support_only=False, summary="logistic regression on each molecule's labels in the "
           "training tasks, fitted on the support set (reads no structure)")

ENCODERS.add("molecule-gin", "fewshot_apps.domains.molecules.encoder:MoleculeEncoder",
             domain="molecules")
ENCODERS.add("molecule-fingerprint",
             "fewshot_apps.domains.molecules.fingerprint_encoder:FingerprintEncoder",
             domain="molecules")

# The strategies of fewshot_apps.domains.molecules.active (random first: the baseline).
PROTOCOLS.add("active", "fewshot_apps.domains.molecules.active:active_protocol",
              domain="molecules", main_metrics=("actives_found", "delta_auprc"),
              label_kind="classification", support="support_size",
              strategies=("random", "greedy", "uncertainty", "ucb"), baseline_strategy="random",
              support_noun="labelled",
              strategy_note="support_size = labelled molecules after the round (the first: "
                            "the initial stratified support). `actives_found` counts the "
                            "initial support's actives, `actives_acquired` (summary.csv) does "
                            "not; ΔAUPRC and ROC-AUC score the model adapted on the labelled "
                            "molecules on the molecules that strategy never acquired.",
              summary="acquisition rounds: a stratified support of 8, then batches of 8 chosen "
                      "by each strategy up to 64 labelled; actives found and the model's "
                      "ΔAUPRC on the never-acquired rest after each round")
