"""Meta-learners behind one interface (``adapt`` / ``predict`` / ``loss``).

``build_learner(name, encoder, kind, **config)`` makes one of the meta-learners of
:data:`~fewshot_apps.core.registry.MODELS` (``learner_names()``: ``protonet``, ``attention``
(metric), ``cnp``, ``hypernet`` (generator), ``maml``, ``anil``, ``metasgd``, ``lstm``
(optimization)).
"""

from fewshot_apps.core.learners.base import (
    KINDS,
    AdaptedState,
    EpisodeBatch,
    LearnerConfig,
    MetaLearner,
    build_learner,
    default_config,
    learner_class,
    learner_names,
)
from fewshot_apps.core.learners.generator import CNP, HyperNetwork
from fewshot_apps.core.learners.metric import AttentionLearner, ProtoNet
from fewshot_apps.core.learners.optimizer import ANIL, MAML, LSTMOptimizer, MetaSGD

__all__ = [
    "ANIL",
    "CNP",
    "KINDS",
    "MAML",
    "AdaptedState",
    "AttentionLearner",
    "EpisodeBatch",
    "HyperNetwork",
    "LSTMOptimizer",
    "LearnerConfig",
    "MetaLearner",
    "MetaSGD",
    "ProtoNet",
    "build_learner",
    "default_config",
    "learner_class",
    "learner_names",
]
