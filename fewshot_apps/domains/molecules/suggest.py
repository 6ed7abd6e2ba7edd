"""Which molecules to assay next: a batch of ``budget`` candidates from predicted probabilities.

The probabilities come from the prediction path (:func:`fewshot_apps.api.predict_assay`: the
model adapted to the user's labelled support); this module only chooses. :func:`select` is
the one function that chooses a batch from probabilities, fingerprints and the molecules
already labelled (or picked): ``mol suggest`` calls it through :func:`suggestions_table`, the
``active`` benchmark protocol (:mod:`fewshot_apps.domains.molecules.active`) once per round.
Strategies, ``p`` being a candidate's probability of activity:

* ``greedy``: highest ``p`` first (exploit: measure what is most likely active);
  default ``diversity`` 0.
* ``uncertainty``: ``p`` closest to 0.5 first, score ``p(1-p)`` (learn the most about the
  model's boundary); default ``diversity`` 0.
* ``ucb`` (default): ``p + beta * sqrt(p(1-p))`` (an optimistic bound: likely actives the
  model is unsure about first; ``beta`` 1 by default); default ``diversity`` 0.5.
* ``random`` (the ``active`` protocol's baseline, not offered by ``mol suggest``): a seeded
  uniform score (:func:`select` needs an ``rng``); default ``diversity`` 0.

Picks are made one at a time. With ``diversity`` > 0 each candidate's score is lowered by
``diversity * max Tanimoto similarity`` (ECFP, Morgan radius 2, 2048 bits, RDKit's
``BulkTanimotoSimilarity``) to the support molecules and the molecules already picked, so a
batch spreads over chemistry instead of measuring near-duplicates of one hit.

Never picked: rows whose SMILES RDKit rejects (kept with their error), candidates that are a
support molecule (canonical SMILES compared; their label is known) and a candidate that is
the same molecule as an earlier pick (it would be measured twice). Ties go to the earlier row,
so a batch is the same for the same inputs and seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from rdkit import DataStructs

from fewshot_apps.errors import FewshotError

from .featurizer import FeaturizerConfig
from .predict import AssayMolecules, featurize_assay

#: ``mol suggest``'s strategies.
STRATEGIES = ("greedy", "uncertainty", "ucb")
#: What :func:`select` chooses by: ``random`` (seeded) too, the ``active`` protocol's baseline.
ACQUISITION_STRATEGIES = ("random", *STRATEGIES)
DEFAULT_STRATEGY = "ucb"
#: The diversity weight each strategy uses unless one is given.
DEFAULT_DIVERSITY = {"random": 0.0, "greedy": 0.0, "uncertainty": 0.0, "ucb": 0.5}
DEFAULT_BETA = 1.0
#: The columns this module adds (after the prediction's own ``probability``).
SUGGEST_COLUMNS = ("probability", "uncertainty", "similarity", "score", "pick", "reason",
                   "error", "warning", "model", "calibrated", "strategy")


def check_options(budget, strategy: str, beta: float, diversity: float | None, *,
                  strategies: tuple[str, ...] = STRATEGIES) -> float:
    """Raise :class:`FewshotError` on a bad option; the diversity weight to use.
    ``strategies``: those accepted (``mol suggest``'s by default)."""
    if strategy not in strategies:
        raise FewshotError(f"--strategy {strategy!r}: expected one of {', '.join(strategies)}")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise FewshotError(f"--budget {budget!r}: the number of molecules to measure must "
                           "be a whole number of at least 1")
    if not np.isfinite(beta) or beta < 0:
        raise FewshotError(f"--beta {beta!r}: must be a number >= 0")
    diversity = DEFAULT_DIVERSITY[strategy] if diversity is None else float(diversity)
    if not np.isfinite(diversity) or diversity < 0:
        raise FewshotError(f"--diversity {diversity!r}: must be a number >= 0")
    return diversity


def base_scores(probability: np.ndarray, strategy: str, beta: float = DEFAULT_BETA,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """The strategy's score before the diversity penalty (NaN where ``p`` is NaN); ``random``
    draws uniform scores from ``rng``."""
    p = np.asarray(probability, dtype=np.float64)
    variance = p * (1 - p)
    if strategy == "random":
        if rng is None:
            raise FewshotError("strategy 'random' needs a seeded rng")
        return np.where(np.isfinite(p), rng.random(len(p)), np.nan)
    if strategy == "greedy":
        return p.copy()
    if strategy == "uncertainty":
        return variance
    if strategy == "ucb":
        return p + beta * np.sqrt(np.clip(variance, 0.0, None))
    raise FewshotError(f"strategy {strategy!r}: expected one of {', '.join(STRATEGIES)}")


def fingerprints_of(store, ids) -> tuple[list, list]:
    """``(canonical SMILES or None, RDKit ExplicitBitVect or None)`` per store id (``-1``:
    a molecule RDKit rejected), from the store's ECFP: the molecules ``predict_assay``
    featurized, not featurized again."""
    ids = np.asarray(ids, dtype=np.int64)
    valid = ids >= 0
    bits = np.unpackbits(store.ecfp[ids[valid]].numpy(), axis=1) if valid.any() else None
    canonical: list = [None] * len(ids)
    fps: list = [None] * len(ids)
    for j, i in enumerate(np.flatnonzero(valid)):
        fp = DataStructs.ExplicitBitVect(int(bits.shape[1]))
        fp.SetBitsFromList(np.flatnonzero(bits[j]).tolist())
        canonical[i], fps[i] = store.smiles[ids[i]], fp
    return canonical, fps


def fingerprints(smiles: list[str], config: FeaturizerConfig = FeaturizerConfig()):
    """:func:`fingerprints_of` for SMILES strings (featurized here)."""
    molecules = featurize_assay([], [str(s) for s in smiles], config)
    return fingerprints_of(molecules.store, molecules.query_ids)


@dataclass
class Selection:
    """What :func:`select` returns, one entry per candidate.

    Attributes:
        pick: int64, 1..budget in the order to measure, 0 when not picked.
        similarity: max Tanimoto to the support and the earlier picks when picked (for
            unpicked rows: to the support and all picks); NaN where not a valid molecule.
        score: the base score minus ``diversity * similarity`` (as above).
        excluded: why a valid row can never be picked ("" otherwise).
    """

    pick: np.ndarray
    similarity: np.ndarray
    score: np.ndarray
    excluded: list[str] = field(default_factory=list)


def select(probability, candidate_fps: list, candidate_canonical: list, support_fps: list,
           support_canonical: list, budget: int, *, strategy: str = DEFAULT_STRATEGY,
           beta: float = DEFAULT_BETA, diversity: float | None = None,
           rng: np.random.Generator | None = None) -> Selection:
    """Pick ``budget`` candidates one at a time (see the module docstring).

    ``candidate_fps`` / ``candidate_canonical``: per candidate, ``None`` where the molecule
    is invalid; a candidate without a finite probability is never picked either.
    ``support_fps`` / ``support_canonical``: the molecules whose labels are known (the
    user's support; in the ``active`` protocol, every molecule labelled so far). ``rng``:
    the seeded generator of the ``random`` strategy (any of
    :data:`ACQUISITION_STRATEGIES`).
    """
    diversity = check_options(budget, strategy, beta, diversity,
                              strategies=ACQUISITION_STRATEGIES)
    p = np.asarray(probability, dtype=np.float64)
    n = len(p)
    base = base_scores(p, strategy, beta, rng)
    valid = np.array([fp is not None for fp in candidate_fps], dtype=bool) & np.isfinite(p)
    support = [fp for fp in support_fps if fp is not None]
    known = {c for c in support_canonical if c is not None}
    excluded = [""] * n
    eligible = valid.copy()
    for i in np.flatnonzero(valid):
        if candidate_canonical[i] in known:
            eligible[i] = False
            excluded[i] = "not suggested: a support molecule (its label is known)"
    valid_ids = np.flatnonzero(valid)
    valid_fps = [candidate_fps[i] for i in valid_ids]
    similarity = np.full(n, np.nan)
    similarity[valid_ids] = 0.0  # max Tanimoto to the support (none: 0)
    for fp in support:  # one call per support molecule: supports are the smaller side
        sims = np.asarray(DataStructs.BulkTanimotoSimilarity(fp, valid_fps))
        similarity[valid_ids] = np.maximum(similarity[valid_ids], sims)
    pick = np.zeros(n, dtype=np.int64)
    score = np.full(n, np.nan)
    at_pick = np.full(n, np.nan)
    for order in range(1, int(budget) + 1):
        open_ = np.flatnonzero(eligible & (pick == 0))
        if not len(open_):
            break
        penalized = base[open_] - diversity * similarity[open_]
        best = int(open_[int(np.argmax(penalized))])  # ties: the earlier row
        pick[best] = order
        at_pick[best] = similarity[best]
        score[best] = base[best] - diversity * similarity[best]
        sims = np.asarray(DataStructs.BulkTanimotoSimilarity(candidate_fps[best], valid_fps))
        similarity[valid_ids] = np.maximum(similarity[valid_ids], sims)
        for i in open_:
            if i != best and candidate_canonical[i] == candidate_canonical[best]:
                eligible[i] = False
                excluded[i] = f"not suggested: the same molecule as pick {order}"
    rest = valid & (pick == 0)
    score[rest] = base[rest] - diversity * similarity[rest]
    picked = pick > 0
    similarity[picked] = at_pick[picked]
    return Selection(pick, similarity, score, excluded)


def _reason(p: float, sim: float, strategy: str, beta: float, diversity: float) -> str:
    if strategy == "greedy":
        text = f"p={p:.2f}"
    elif strategy == "uncertainty":
        text = f"p(1-p)={p * (1 - p):.2f} (p={p:.2f})"
    else:
        text = f"p={p:.2f} + {beta:g}*sd={np.sqrt(max(p * (1 - p), 0.0)):.2f}"
    if diversity > 0:
        text += f" - {diversity:g}*sim={sim:.2f}"
    return text


def suggestions_table(predictions: pd.DataFrame, molecules: AssayMolecules, budget: int, *,
                      strategy: str = DEFAULT_STRATEGY, beta: float = DEFAULT_BETA,
                      diversity: float | None = None) -> tuple[pd.DataFrame, list[str]]:
    """A prediction table (:func:`~fewshot_apps.domains.molecules.predict.predictions_table`)
    and the molecules it was scored on (``AssayScores.molecules``: support and candidates in
    one store, rows in the table's order) -> ``(suggestions, report lines)``.

    Every row is kept in input order with its own columns plus ``probability``,
    ``uncertainty`` (``p(1-p)``), ``similarity``, ``score``, ``pick`` (1..budget, empty when
    not picked), ``reason`` (the score's parts), ``error``, ``warning`` (the prediction's,
    plus why a valid row cannot be picked), ``model``, ``calibrated`` (when the prediction
    table has it: whether ``probability`` is calibrated) and ``strategy``.
    """
    diversity = check_options(budget, strategy, beta, diversity)
    p = predictions["probability"].to_numpy(dtype=np.float64)
    errors = predictions["error"].astype(str).tolist()
    canonical, fps = fingerprints_of(molecules.store, molecules.query_ids)
    for i, error in enumerate(errors):  # a row without a probability is no candidate
        if error or not np.isfinite(p[i]):
            canonical[i] = fps[i] = None
    support_canonical, support_fps = fingerprints_of(molecules.store, molecules.support_ids)
    chosen = select(p, fps, canonical, support_fps, support_canonical, budget,
                    strategy=strategy, beta=beta, diversity=diversity)
    out = predictions.drop(columns=["rank"], errors="ignore").copy()
    for column in ("uncertainty", "similarity", "score", "pick", "reason", "strategy"):
        if column in out.columns:  # keep the user's column, ours gets a prefix
            out = out.rename(columns={column: f"input_{column}"})
    out["uncertainty"] = np.round(p * (1 - p), 4)
    out["similarity"] = np.round(chosen.similarity, 4)
    out["score"] = np.round(chosen.score, 4)
    out["pick"] = pd.array([v if v > 0 else None for v in chosen.pick], dtype="Int64")
    out["reason"] = [
        _reason(p[i], chosen.similarity[i], strategy, beta, diversity)
        if np.isfinite(chosen.score[i]) else "" for i in range(len(p))]
    warnings = out["warning"].astype(str).tolist()
    out["warning"] = ["; ".join(w for w in (warnings[i], chosen.excluded[i]) if w)
                      for i in range(len(p))]
    out["strategy"] = strategy
    columns = [c for c in out.columns if c not in SUGGEST_COLUMNS] + [
        c for c in SUGGEST_COLUMNS if c in out.columns]  # calibrated: if the table says
    out = out[columns]
    n_picked = int((chosen.pick > 0).sum())
    n_excluded = sum(1 for e in chosen.excluded if e)
    lines = [f"strategy: {strategy} ({describe(strategy, beta, diversity)})"]
    if n_excluded:
        lines.append(f"{n_excluded} valid candidate(s) not eligible (a support molecule or "
                     "the same molecule as a pick): see the warning column")
    if n_picked < budget:
        lines.append(f"budget {budget} is more than the {n_picked} candidate(s) that can be "
                     f"picked: all {n_picked} picked")
    return out, lines


def describe(strategy: str, beta: float, diversity: float) -> str:
    """One line: what the score is."""
    base = {"greedy": "p, highest first",
            "uncertainty": "p(1-p), closest to 0.5 first",
            "ucb": f"p + {beta:g}*sqrt(p(1-p))"}[strategy]
    if diversity > 0:
        return (f"{base}, minus {diversity:g} x max Tanimoto (ECFP) to the support and "
                "earlier picks")
    return base + ", no diversity penalty"


__all__ = ["ACQUISITION_STRATEGIES", "DEFAULT_DIVERSITY", "DEFAULT_STRATEGY", "STRATEGIES",
           "Selection", "base_scores", "check_options", "describe", "fingerprints",
           "fingerprints_of", "select", "suggestions_table"]
