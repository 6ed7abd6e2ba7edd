"""The domain-agnostic entries of the registries: meta-learners, transfer baselines, the
table encoder, metrics and the classification protocols.

A light module (no torch): the command line lists these names without loading the code
behind them. Each domain package declares its own entries in its ``__init__``.
"""

from __future__ import annotations

import math

from fewshot_apps.core.registry import ENCODERS, METRICS, MODELS, PROTOCOLS

BOTH = ("classification", "regression")
CLASSIFICATION = ("classification",)
LEARNERS = "fewshot_apps.core.learners"

# ------------------------------------------------------------------------------ models
MODELS.add("protonet", f"{LEARNERS}.metric:ProtoNet", family="metric",
           label_kinds=CLASSIFICATION, domain=None,
           summary="prototypical network: distance to each class's mean embedding")
MODELS.add("attention", f"{LEARNERS}.metric:AttentionLearner", family="metric",
           label_kinds=BOTH, domain=None,
           summary="attention of each query over the support embeddings")
MODELS.add("dkt", f"{LEARNERS}.gp:DeepKernelGP", family="metric", label_kinds=BOTH,
           domain=None, summary="deep-kernel GP: exact GP head over the encoder's embeddings, "
           "kernel fit per support set by marginal likelihood (DKT / ADKF-IFT style)")
MODELS.add("cnp", f"{LEARNERS}.generator:CNP", family="generator", label_kinds=BOTH,
           domain=None, summary="conditional neural process: a set encoding of the support "
           "conditions the head")
MODELS.add("hypernet", f"{LEARNERS}.generator:HyperNetwork", family="generator",
           label_kinds=BOTH, domain=None,
           summary="hypernetwork: the support set generates the head's weights")
MODELS.add("maml", f"{LEARNERS}.optimizer:MAML", family="optimizer", label_kinds=BOTH,
           domain=None, summary="MAML: gradient steps on the support from a learned start")
MODELS.add("anil", f"{LEARNERS}.optimizer:ANIL", family="optimizer", label_kinds=BOTH,
           domain=None, summary="ANIL: MAML's inner loop on the head only")
MODELS.add("metasgd", f"{LEARNERS}.optimizer:MetaSGD", family="optimizer", label_kinds=BOTH,
           domain=None, summary="Meta-SGD: MAML with learned per-parameter step sizes")
MODELS.add("lstm", f"{LEARNERS}.optimizer:LSTMOptimizer", family="optimizer",
           label_kinds=BOTH, domain=None,
           summary="a coordinate-wise LSTM learns the update rule")
MODELS.add("finetune", "fewshot_apps.core.baselines:FinetuneBaseline", family="transfer",
           label_kinds=BOTH, domain=None,
           summary="multitask pre-training, then fine-tuning on the support set")
MODELS.add("linear-probe", "fewshot_apps.core.baselines:LinearProbeBaseline",
           family="transfer", label_kinds=BOTH, domain=None,
           summary="multitask pre-training, then a linear head fitted on the support set")
MODELS.add("mean-ensemble", "fewshot_apps.core.ensemble:Ensemble", family="ensemble",
           label_kinds=BOTH, domain=None,
           summary="the mean of saved models' predictions (its 'members': learners of the "
           "same run or model folders)")

# ------------------------------------------------------------------------------ encoders
ENCODERS.add("table", "fewshot_apps.core.encoders:TableEncoder", domain=None)

# ------------------------------------------------------------------------------ metrics
METRICS_MODULE = "fewshot_apps.core.metrics"
UNIT = (0.0, 1.0)
NON_NEGATIVE = (0.0, math.inf)
METRICS.add("roc_auc", f"{METRICS_MODULE}:roc_auc", direction="higher", bounds=UNIT,
            label_kind="classification")
METRICS.add("auprc", f"{METRICS_MODULE}:auprc", direction="higher", bounds=UNIT,
            label_kind="classification")
METRICS.add("delta_auprc", f"{METRICS_MODULE}:delta_auprc", direction="higher",
            bounds=(-1.0, 1.0), label_kind="classification")  # AUPRC minus the positive rate
METRICS.add("brier", f"{METRICS_MODULE}:brier", direction="lower", bounds=UNIT,
            label_kind="classification")
METRICS.add("ece", f"{METRICS_MODULE}:ece", direction="lower", bounds=UNIT,
            label_kind="classification")  # expected calibration error, 15 equal-width bins
# The ece a perfectly calibrated model would show on the same query (finite-sample bias):
# a reference to read ece against, not a goal of its own.
METRICS.add("ece_floor", f"{METRICS_MODULE}:ece_floor", direction="lower", bounds=UNIT,
            label_kind="classification")
# Counts of the `active` protocol: actives among the labelled molecules (the initial support's
# included) / among those acquired after it. f(labels, selected): actives among the selected.
METRICS.add("actives_found", f"{METRICS_MODULE}:actives_among", direction="higher",
            bounds=NON_NEGATIVE, label_kind="classification")
METRICS.add("actives_acquired", f"{METRICS_MODULE}:actives_among", direction="higher",
            bounds=NON_NEGATIVE, label_kind="classification")
METRICS.add("mae", f"{METRICS_MODULE}:mae", direction="lower", bounds=NON_NEGATIVE,
            label_kind="regression")
METRICS.add("rmse", f"{METRICS_MODULE}:rmse", direction="lower", bounds=NON_NEGATIVE,
            label_kind="regression")
# The 90% prediction interval of ratings (split conformal, fewshot_apps.core.calibration):
# f(targets, low, high). Coverage should reach its nominal 0.9; past it, only width is lost.
METRICS.add("coverage@90", f"{METRICS_MODULE}:interval_coverage", direction="higher",
            bounds=UNIT, label_kind="regression", inputs="interval")
METRICS.add("interval_width", f"{METRICS_MODULE}:interval_width", direction="lower",
            bounds=NON_NEGATIVE, label_kind="regression", inputs="interval")
for k in (3, 5, 10):
    METRICS.add(f"ndcg@{k}", f"{METRICS_MODULE}:ndcg_at_k", direction="higher", bounds=UNIT,
                label_kind="regression", k=k)
    METRICS.add(f"precision@{k}", f"{METRICS_MODULE}:precision_at_k", direction="higher",
                bounds=UNIT, label_kind="regression", k=k)
    METRICS.add(f"recall@{k}", f"{METRICS_MODULE}:recall_at_k", direction="higher",
                bounds=UNIT, label_kind="regression", k=k)

# ------------------------------------------------------------------------------ protocols
PROTOCOLS.add("k-shot", "fewshot_apps.core.evaluation:k_shot_protocol", domain=None,
              main_metrics=("roc_auc",), label_kind="classification", support="shots",
              summary="K positives + K negatives per draw; query: the task's other molecules")
PROTOCOLS.add("fsmol", "fewshot_apps.core.evaluation:fsmol_protocol", domain=None,
              main_metrics=("delta_auprc",), label_kind="classification",
              support="support_size",
              summary="stratified supports of given sizes; query: the rest (FS-Mol)")
