"""Predict a new assay: a user's labelled support CSV and candidate molecules -> scores.

Three steps, each usable on its own:

* :func:`read_support` / :func:`support_from_frame`: the labelled molecules (a SMILES column
  and a 0/1 label column, both detected by name or given) -> ``smiles, label, row``. A label
  that is not 0/1 is an error naming the file and row.
* :func:`read_candidates`: the molecules to score, a CSV (any extra columns are kept) or a
  ``.smi`` file (``SMILES [name]`` per line).
* :func:`score_assay`: featurizes support and candidates into one
  :class:`~fewshot_apps.domains.molecules.store.MoleculeStore`, fits the model on the valid
  support molecules and scores every valid candidate. A candidate RDKit rejects gets ``NaN``
  and RDKit's reason; it is never dropped.

Support problems that leave nothing to learn from (fewer than 2 valid molecules, one class,
only invalid SMILES) raise :class:`~fewshot_apps.errors.DataError` before any model runs.

Inputs that run but may not mean what the user wrote are kept and warned about (report lines,
and a ``warning`` per candidate): a SMILES with whitespace inside (RDKit reads only the part
before it: ``"CC O"`` is ethane), a molecule in the support twice (canonical SMILES compared;
with conflicting 0 and 1 labels both rows are kept, as data sets keep repeated measurements:
the user decides which is right), and a candidate that is a support molecule.

Reading and checking the inputs needs neither torch nor a model: the light modules load
first, so a bad file is an error in well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from fewshot_apps.core.table_reader import read_text
from fewshot_apps.errors import DataError, FewshotError

from .featurizer import FeaturizerConfig, featurize_parallel, whitespace_truncation
from .readers import find_smiles_column, read_csv_table

if TYPE_CHECKING:  # torch (via the store) loads when molecules are featurized, not before
    from .store import MoleculeStore

#: Label column names tried in order (case-insensitive) when none is given.
LABEL_COLUMN_NAMES = ("label", "active", "activity", "is_active", "y", "class", "target",
                      "outcome")
_TRUE = {"1", "1.0", "true", "yes", "active"}
_FALSE = {"0", "0.0", "false", "no", "inactive"}
#: Above this many unique SMILES, featurization runs in worker processes.
PARALLEL_ABOVE = 4000


def _source(path: str | Path | None) -> Path | None:
    return None if path is None else Path(path)


def _find_label_column(frame: pd.DataFrame, smiles_col: str, path: Path | None,
                       given: str | None) -> str:
    """The label column: ``given``, else a known name, else the only 0/1 column."""
    if given is not None:
        if given not in frame.columns:
            raise DataError(path, f"no column {given!r}; columns are {list(frame.columns)}")
        return given
    others = [c for c in frame.columns if c != smiles_col]
    lowered = {str(c).lower().strip(): c for c in others}
    for name in LABEL_COLUMN_NAMES:
        if name in lowered:
            return lowered[name]
    binary = [
        c for c in others
        if (values := frame[c].astype(str).str.strip().str.lower()).ne("").any()
        and values[values.ne("")].isin(_TRUE | _FALSE).all()
    ]
    if len(binary) == 1:
        return binary[0]
    raise DataError(
        path,
        f"no label column: expected one named {' or '.join(LABEL_COLUMN_NAMES[:3])} with 0/1 "
        f"values (columns are {list(frame.columns)[:12]}); pass the column name explicitly "
        "(--label-column)",
    )


def support_from_frame(
    frame: pd.DataFrame,
    smiles_column: str | None = None,
    label_column: str | None = None,
    *,
    path: str | Path | None = None,
    rows: np.ndarray | None = None,
) -> pd.DataFrame:
    """A labelled table -> ``smiles`` (str), ``label`` (float 0/1), ``row``.

    ``rows`` are the row numbers errors cite (default: spreadsheet rows, header = row 1).
    Labels may be 0/1, true/false, yes/no or active/inactive; anything else (a blank
    included) is a :class:`DataError` naming the file and row.
    """
    path = _source(path)
    if frame.empty:
        raise DataError(path, "the support set has no rows")
    smiles_col = find_smiles_column(frame, path, smiles_column, option="--smiles-column")
    label_col = _find_label_column(frame, smiles_col, path, label_column)
    rows = np.arange(2, len(frame) + 2) if rows is None else np.asarray(rows)
    text = frame[label_col].astype(str).str.strip()
    lowered = text.str.lower()
    labels = np.where(lowered.isin(_TRUE), 1.0, np.where(lowered.isin(_FALSE), 0.0, np.nan))
    bad = np.flatnonzero(np.isnan(labels))
    if len(bad):
        i = bad[0]
        more = f" ({len(bad) - 1} more rows like it)" if len(bad) > 1 else ""
        raise DataError(path, f"label {text.iat[i]!r} in column {label_col!r} is not 0 or 1"
                        f"{more}", row=int(rows[i]))
    smiles = frame[smiles_col].map(lambda s: "" if pd.isna(s) else str(s).strip())
    return pd.DataFrame({"smiles": smiles.to_numpy(dtype=object), "label": labels,
                         "row": rows.astype(np.int64)})


def read_support(path: str | Path, smiles_column: str | None = None,
                 label_column: str | None = None) -> pd.DataFrame:
    """A labelled CSV (gzipped or not) -> ``smiles, label, row`` (see :func:`support_from_frame`)."""
    path = Path(path)
    return support_from_frame(read_csv_table(path), smiles_column, label_column, path=path)


def read_smi(path: str | Path) -> pd.DataFrame:
    """A ``.smi`` file: one ``SMILES [name ...]`` per line -> ``smiles, name`` (blank lines and
    ``#`` comments skipped; a first line ``smiles ...`` is a header)."""
    path = Path(path)
    records, line_numbers = [], []
    for number, line in enumerate(read_text(path).splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = stripped.split(maxsplit=1)
        if not records and parts[0].lower() == "smiles":
            continue  # a header line
        records.append((parts[0], parts[1] if len(parts) > 1 else ""))
        line_numbers.append(number)
    if not records:
        raise DataError(path, "the file has no SMILES lines")
    frame = pd.DataFrame(records, columns=["smiles", "name"])
    frame.attrs["line"] = line_numbers  # where each molecule is, for warnings
    return frame


def read_candidates(path: str | Path, smiles_column: str | None = None) -> tuple[pd.DataFrame, str]:
    """The molecules to score -> ``(table, smiles column)``; every column and row is kept.

    ``.smi`` / ``.smiles`` files give columns ``smiles, name``; anything else is read as a CSV.
    """
    path = Path(path)
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".smi", ".smiles")):
        frame = read_smi(path)
        return frame, "smiles"
    frame = read_csv_table(path)
    if frame.empty:
        raise DataError(path, "the file has a header but no rows")
    return frame, find_smiles_column(frame, path, smiles_column)


# --------------------------------------------------------------------------------------------
# featurizing and scoring


@dataclass
class AssayMolecules:
    """Support and candidates featurized into one store.

    Attributes:
        store: the valid molecules (unique SMILES strings once each).
        support_ids / query_ids: int64 store index per input row, ``-1`` where RDKit
            rejected the SMILES.
        support_errors / query_errors: RDKit's reason per row (``None`` when valid).
    """

    store: MoleculeStore
    support_ids: np.ndarray
    query_ids: np.ndarray
    support_errors: list[str | None]
    query_errors: list[str | None]


def featurize_assay(support_smiles: list[str], query_smiles: list[str],
                    config: FeaturizerConfig = FeaturizerConfig()) -> AssayMolecules:
    """Featurize every distinct SMILES string once (support and query share the store)."""
    from .store import MoleculeStore

    all_smiles = [str(s) for s in list(support_smiles) + list(query_smiles)]
    unique, inverse = np.unique(np.asarray(all_smiles, dtype=object), return_inverse=True)
    feats = featurize_parallel(
        list(unique), config, progress=False,
        # Worker processes pay off only for large candidate files (fork + pickling cost).
        workers=None if len(unique) > PARALLEL_ABOVE else 1, chunk_size=2000,
    )
    valid = np.array([e is None for e in feats["errors"]], dtype=bool)
    keep = np.flatnonzero(valid)
    store = MoleculeStore.from_featurized(feats, keep)
    position = np.full(len(unique), -1, dtype=np.int64)
    position[keep] = np.arange(len(keep))
    ids = position[inverse]
    errors = [feats["errors"][j] for j in inverse]
    n = len(support_smiles)
    return AssayMolecules(store, ids[:n], ids[n:], errors[:n], errors[n:])


@dataclass
class AssayScores:
    """What :func:`score_assay` returns.

    Attributes:
        probability: float64 ``[n_query]``, NaN where the SMILES is invalid.
        errors: per query row, RDKit's reason or ``None``.
        model: the name of the model that ran; description: one line saying what it is.
        n_support / n_active / n_inactive: valid support molecules used.
        skipped_support: ``(row, smiles, reason)`` of support rows RDKit rejected.
        warnings: report lines about inputs that ran but may not mean what was written
            (:func:`input_warnings`).
        query_warnings: per query row, its warnings ("" when none).
        molecules: the support and candidates as featurized (one store), for steps that
            follow the scoring (``mol suggest``'s similarities).
        calibrated: whether ``probability`` is calibrated (a meta-trained model's
            temperature or Platt scaling, fitted on its validation assays);
            calibration: one line saying how, or why not.
    """

    probability: np.ndarray
    errors: list[str | None]
    model: str
    description: str
    n_support: int
    n_active: int
    n_inactive: int
    skipped_support: list[tuple[int, str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    query_warnings: list[str] = field(default_factory=list)
    molecules: AssayMolecules | None = None
    calibrated: bool = False
    calibration: str = ""


#: At most this many report lines per kind of warning (the ``warning`` column has them all).
MAX_WARNING_LINES = 10


def _capped(lines: list[str], what: str) -> list[str]:
    if len(lines) <= MAX_WARNING_LINES:
        return lines
    return lines[:MAX_WARNING_LINES] + [f"... and {len(lines) - MAX_WARNING_LINES} more "
                                        f"{what} (see the warning column)"]


def _rows_text(rows) -> str:
    """``row 3`` or ``rows 3, 7``."""
    return ("row " if len(rows) == 1 else "rows ") + ", ".join(str(int(r)) for r in rows)


def input_warnings(support: pd.DataFrame, query_smiles: list[str], mols: AssayMolecules,
                   query_where: list[str] | None = None) -> tuple[list[str], list[str]]:
    """What the inputs say that the user may not have meant: ``(report lines, per query
    row warnings)``. Nothing is dropped; molecules are compared by canonical SMILES.

    * a SMILES with whitespace inside: RDKit reads only the part before it;
    * support molecules given twice: with the same label (it weighs twice) or with both
      labels (conflicting: both kept, the user decides);
    * candidates that are support molecules (their label is known).

    ``query_where``: how to name each query row (default ``"row N"``, spreadsheet rows).
    """
    smiles_of = mols.store.smiles
    where = query_where or [f"row {i + 2}" for i in range(len(query_smiles))]
    lines: list[str] = []
    per_query: list[list[str]] = [[] for _ in query_smiles]

    def parsed(ids, i) -> str:
        return f"used as {smiles_of[ids[i]]!r}" if ids[i] >= 0 else "rejected"

    rows = support["row"].to_numpy()
    labels = support["label"].to_numpy()
    for i, smi in enumerate(support["smiles"]):
        head = whitespace_truncation(smi)
        if head is not None:
            lines.append(f"support row {int(rows[i])}: SMILES {smi!r} has whitespace inside; "
                         f"RDKit reads only {head!r} ({parsed(mols.support_ids, i)})")
    # Rows RDKit rejected (id -1) are skipped, not molecules: they take no part in the
    # duplicate check. (A list, not a Series: pandas 3 turns None into NaN, which matched.)
    by_molecule: dict[str, list[int]] = {}
    for i, j in enumerate(mols.support_ids):
        if j >= 0:
            by_molecule.setdefault(smiles_of[j], []).append(i)
    dup_lines = []
    for c, members in by_molecule.items():
        if len(members) < 2:
            continue
        actives = [int(rows[i]) for i in members if labels[i] == 1]
        inactives = [int(rows[i]) for i in members if labels[i] == 0]
        if actives and inactives:
            dup_lines.append(
                f"support {_rows_text(sorted(actives + inactives))}: the same molecule "
                f"{c!r} labelled 1 ({_rows_text(actives)}) and 0 ({_rows_text(inactives)}): "
                "conflicting labels, all kept")
        else:
            dup_lines.append(
                f"support {_rows_text(sorted(actives + inactives))}: the same molecule "
                f"{c!r} {len(members)} times (label {int(labels[members[0]])}): all kept, it "
                f"counts {len(members)} times")
    lines += _capped(dup_lines, "repeated support molecules")
    space_lines, same_lines = [], []
    for i, smi in enumerate(query_smiles):
        head = whitespace_truncation(smi)
        if head is not None:
            per_query[i].append(f"SMILES has whitespace inside; RDKit reads only {head!r} "
                                f"({parsed(mols.query_ids, i).replace('used', 'scored')})")
            space_lines.append(f"query {where[i]}: SMILES {smi!r} has whitespace inside; "
                               f"RDKit reads only {head!r} "
                               f"({parsed(mols.query_ids, i).replace('used', 'scored')})")
        j = mols.query_ids[i]
        if j >= 0 and smiles_of[j] in by_molecule:
            members = by_molecule[smiles_of[j]]
            known = ", ".join(f"row {int(rows[m])} labelled {int(labels[m])}" for m in members)
            per_query[i].append(f"the same molecule as support {known}")
            same_lines.append(f"query {where[i]}: the same molecule as support {known}")
    lines += _capped(space_lines, "candidates with whitespace")
    lines += _capped(same_lines, "candidates that are support molecules")
    return lines, ["; ".join(w) for w in per_query]


def check_support(support: pd.DataFrame, ids: np.ndarray, errors: list[str | None],
                  path: str | Path | None = None) -> None:
    """Raise :class:`DataError` when the valid support cannot train a classifier."""
    path = _source(path)
    valid = ids >= 0
    labels = support["label"].to_numpy()[valid]
    if not valid.any():
        first = int(np.flatnonzero(~valid)[0])
        raise DataError(
            path, f"none of the {len(support)} support SMILES could be parsed by RDKit "
            f"(row {int(support['row'].iat[first])}: {errors[first]})")
    if valid.sum() < 2:
        raise DataError(path, f"the support set has {int(valid.sum())} valid molecule; "
                        "at least 2 are needed (one active, one inactive)")
    if labels.min() == labels.max():
        which = "active (1)" if labels[0] == 1 else "inactive (0)"
        raise DataError(path, f"every valid support molecule is {which}: a classifier needs "
                        "at least one active and one inactive molecule")


def _is_classic(model) -> bool:
    return isinstance(model, str)


def score_assay(
    model,
    support: pd.DataFrame,
    query_smiles: list[str],
    *,
    featurizer: FeaturizerConfig | None = None,
    seed: int = 0,
    support_path: str | Path | None = None,
    query_where: list[str] | None = None,
) -> AssayScores:
    """Fit ``model`` on the support and score the candidates.

    Args:
        model: a classic baseline name (``"rf"``, ``"knn"``, ``"logreg"``, ``"gp"``; fitted on the
            support, no training data needed) or a molecule meta-learner (its encoder reads
            the user's molecules for this call only; its previous store is put back).
        support: ``smiles, label, row`` (:func:`support_from_frame`).
        query_smiles: the candidates, in order.
        featurizer: the featurizer settings (a saved model's ``config["featurizer"]``).
        query_where: how warnings name each candidate (default ``"row N"``).
    """
    featurizer = featurizer or FeaturizerConfig()
    # Labels alone can already rule the support out: say so before featurizing candidates.
    check_support(support, np.zeros(len(support), dtype=np.int64), [None] * len(support),
                  support_path)
    mols = featurize_assay(support["smiles"].tolist(), list(query_smiles), featurizer)
    check_support(support, mols.support_ids, mols.support_errors, support_path)
    ok = mols.support_ids >= 0
    support_ids = mols.support_ids[ok]
    labels = support["label"].to_numpy(dtype=np.float64)[ok]
    query_ok = mols.query_ids >= 0
    skipped = [(int(r), s, e) for r, s, e, good in
               zip(support["row"], support["smiles"], mols.support_errors, ok) if not good]
    probability = np.full(len(mols.query_ids), np.nan)
    if _is_classic(model):
        from .baselines import build_classic_baseline

        baseline = build_classic_baseline(model, mols.store, seed=seed)
        name = baseline.name
        trees = baseline.settings().get("n_estimators")
        what = baseline.title + (f", {trees} trees" if trees else "")
        description = f"training-free {what}, fitted on the support set"
        scores = baseline.fit_predict(support_ids, labels, mols.query_ids[query_ok])
        calibrated, calibration = False, ("probabilities not calibrated: a training-free "
                                          "baseline has no validation assays to fit a "
                                          "calibration on")
    else:
        from fewshot_apps.core.calibration import model_calibration

        name, description, scores = _meta_scores(model, mols.store, support_ids, labels,
                                                 mols.query_ids[query_ok], seed)
        members = list(getattr(model, "members", None) or [model])
        fitted = [model_calibration(member) for member in members]
        calibrated = all(f.calibrated for f in fitted)
        calibration = "probabilities " + fitted[0].describe() if len(members) == 1 else (
            "probabilities: the mean of the members' (" + "; ".join(
                f"{name} {f.describe()}" for name, f in zip(model.member_names, fitted,
                                                            strict=True)) + ")")
    probability[query_ok] = scores
    warnings, query_warnings = input_warnings(support, list(query_smiles), mols, query_where)
    return AssayScores(probability, mols.query_errors, name, description, int(ok.sum()),
                       int((labels == 1).sum()), int((labels == 0).sum()), skipped,
                       warnings, query_warnings, molecules=mols, calibrated=calibrated,
                       calibration=calibration)


def _meta_scores(model, store: MoleculeStore, support_ids, labels, query_ids, seed: int):
    import torch

    # an ensemble's members each have an encoder (model.encoders); a learner has one
    encoders = list(getattr(model, "encoders", None) or [getattr(model, "encoder", None)])
    if not all(callable(getattr(encoder, "set_store", None)) for encoder in encoders):
        raise FewshotError(
            f"{type(model).__name__} is not a molecule model (its encoder cannot read "
            "molecules); pass a model trained with `fewshot-apps mol train` or 'rf'")
    if getattr(model, "kind", "classification") != "classification":
        raise FewshotError(f"model {model.name!r} predicts {model.kind}, not activity")
    previous = [encoder.store for encoder in encoders]
    for encoder in encoders:
        encoder.set_store(store)
    try:
        # Seeded: learners with sampling inside (none today) stay reproducible per call.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            scores = model.fit_predict(support_ids, labels, query_ids) if len(query_ids) else (
                np.zeros(0))
    finally:
        for encoder, store_before in zip(encoders, previous, strict=True):
            encoder.set_store(store_before)
    saved = getattr(model, "saved_config", {}) or {}
    where = f" meta-trained on {saved['dataset']}" if saved.get("dataset") else ""
    # The profile's table belongs to the training data set's molecules, not to this file's.
    profile = ("; the assay-profile input reads every molecule as not measured in the "
               "training assays" if any(getattr(encoder, "profile_branch", None) is not None
                                        for encoder in encoders) else "")
    members = getattr(model, "member_names", None)
    what = f"{model.name} of {' + '.join(members)}" if members else model.name
    return model.name, (f"meta-learned {what}{where}, adapted to the support set"
                        f"{profile}"), scores


def featurizer_of(model) -> FeaturizerConfig:
    """The featurizer settings a (saved) molecule model was trained with; FewshotError naming
    its config.json for a value of the wrong type (``"ecfp_bits": "many"``), which RDKit
    would otherwise reject with a dump of its C++ signatures."""
    from dataclasses import fields

    from fewshot_apps.core.config import parse_like
    from fewshot_apps.core.persistence import config_path

    saved = getattr(model, "saved_config", None) or {}
    settings = saved.get("featurizer") or {}
    defaults = {f.name: f.default for f in fields(FeaturizerConfig)}
    path = getattr(model, "model_path", None)
    where = f"{config_path(path)}: featurizer" if path else "featurizer"
    return FeaturizerConfig(**parse_like({k: v for k, v in settings.items() if k in defaults},
                                         defaults, where))


def predictions_table(query: pd.DataFrame, scores: AssayScores) -> pd.DataFrame:
    """``query`` (every column, every row, input order) + ``probability``, ``rank`` (1 = most
    likely active; empty for invalid rows), ``error`` ("" when valid), ``warning`` ("" when
    none; see :func:`input_warnings`), ``model`` and ``calibrated`` (whether the
    probabilities are calibrated on the model's validation assays)."""
    out = query.copy()
    out.attrs.pop("line", None)
    for column in ("probability", "rank", "error", "warning", "model", "calibrated"):
        if column in out.columns:  # keep the user's column, ours gets a prefix
            out = out.rename(columns={column: f"input_{column}"})
    prob = pd.Series(scores.probability, index=out.index)
    out["probability"] = prob
    # Ties share the best rank ("min"), so equal scores are not ordered arbitrarily.
    out["rank"] = prob.rank(ascending=False, method="min").astype("Int64")
    out["error"] = [e or "" for e in scores.errors]
    out["warning"] = scores.query_warnings or [""] * len(out)
    out["model"] = scores.model
    out["calibrated"] = bool(scores.calibrated)
    return out


__all__ = [
    "AssayMolecules", "AssayScores", "LABEL_COLUMN_NAMES", "check_support", "featurize_assay",
    "featurizer_of", "input_warnings", "predictions_table", "read_candidates", "read_smi",
    "read_support",
    "score_assay", "support_from_frame",
]
