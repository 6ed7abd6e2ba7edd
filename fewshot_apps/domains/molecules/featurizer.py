"""RDKit molecules -> graphs (categorical atom and bond features) and ECFP fingerprints.

Features are small integers (as in OGB), so an encoder embeds each column and sums:

* atom columns (:data:`ATOM_FEATURES`): atomic number, chirality, degree, formal charge,
  total H count, radical electrons, hybridization, aromatic, in ring;
* bond columns (:data:`BOND_FEATURES`): bond type, stereo, conjugated.

:func:`featurize_smiles` parses, canonicalizes and featurizes a list of SMILES in one pass and
returns flat arrays (no per-molecule Python objects), which makes the work cheap to ship
between worker processes. A SMILES RDKit rejects yields no graph and RDKit's own message.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from dataclasses import asdict, dataclass

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import rdFingerprintGenerator
from rdkit.Chem.MolStandardize import rdMolStandardize

FEATURIZER_VERSION = 2

_HYBRIDIZATION = {
    Chem.HybridizationType.SP: 1,
    Chem.HybridizationType.SP2: 2,
    Chem.HybridizationType.SP3: 3,
    Chem.HybridizationType.SP3D: 4,
    Chem.HybridizationType.SP3D2: 5,
}
_CHIRALITY = {
    Chem.ChiralType.CHI_UNSPECIFIED: 0,
    Chem.ChiralType.CHI_TETRAHEDRAL_CW: 1,
    Chem.ChiralType.CHI_TETRAHEDRAL_CCW: 2,
}
_BOND_TYPE = {
    Chem.BondType.SINGLE: 0,
    Chem.BondType.DOUBLE: 1,
    Chem.BondType.TRIPLE: 2,
    Chem.BondType.AROMATIC: 3,
}

# name -> number of categories (the last category of each is "other").
ATOM_FEATURES = {
    "atomic_num": 120,
    "chirality": 4,
    "degree": 12,
    "formal_charge": 12,  # -5..+5, other
    "num_hs": 10,
    "radical_electrons": 6,
    "hybridization": 7,
    "aromatic": 2,
    "in_ring": 2,
}
BOND_FEATURES = {"bond_type": 5, "stereo": 7, "conjugated": 2}


@dataclass(frozen=True)
class FeaturizerConfig:
    """Settings that change the featurized output (and so the cache key)."""

    ecfp_radius: int = 2
    ecfp_bits: int = 2048
    standardize: bool = False  # largest fragment + neutralize before featurizing
    recover_valence: bool = False  # see parse_smiles

    def key(self) -> str:
        payload = json.dumps({**asdict(self), "version": FEATURIZER_VERSION}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


class _RDKitLog:
    """Captures what RDKit writes while parsing, so a rejection carries RDKit's own reason.

    RDKit is switched to log through Python's ``sys.stderr``, which is redirected into a
    buffer for the duration of a ``with`` block.
    """

    _routed = False

    def __enter__(self) -> _RDKitLog:
        if not _RDKitLog._routed:
            rdBase.LogToPythonStderr()
            _RDKitLog._routed = True
        self.buffer = io.StringIO()
        self._redirect = contextlib.redirect_stderr(self.buffer)
        self._redirect.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._redirect.__exit__(*exc)

    def take(self) -> str:
        """The messages since the last call, without RDKit's timestamps and caret lines."""
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        lines = [_TIMESTAMP.sub("", line).strip() for line in text.splitlines()]
        lines = [line for line in lines if line and not set(line) <= {"^", " "}]
        # Prefer the error over warnings RDKit printed before it.
        errors = [line for line in lines if not line.startswith("WARNING")]
        return (errors or lines or [""])[0]


_TIMESTAMP = re.compile(r"^\[\d\d:\d\d:\d\d\]\s*")
_INNER_SPACE = re.compile(r"\s")


def whitespace_truncation(smiles) -> str | None:
    """What RDKit reads of a SMILES with whitespace inside it, else ``None``.

    RDKit stops at the first whitespace (the rest is a molecule name in SMILES files), so
    ``"CC O"`` parses as ethane without a word; leading and trailing whitespace is harmless.
    """
    if not isinstance(smiles, str):
        return None
    text = smiles.strip()
    found = _INNER_SPACE.search(text)
    return text[: found.start()] if found else None


def parse_smiles(
    smiles: str, config: FeaturizerConfig = FeaturizerConfig(), log: _RDKitLog | None = None
):
    """Parse one SMILES. Returns ``(mol, None, flag)`` or ``(None, reason, None)``.

    ``reason`` is RDKit's own message. With ``config.recover_valence``, a molecule that fails
    only the valence check (e.g. hypervalent ``[PH](=O)(=O)`` that RDKit >= 2024.09 rejects)
    is kept with partial sanitization and flagged ``"recovered"``; by default it is rejected.
    """
    if not isinstance(smiles, str) or not smiles.strip():
        return None, "empty SMILES", None
    if log is None:
        with _RDKitLog() as own_log:
            return parse_smiles(smiles, config, own_log)
    log.take()  # drop what an earlier molecule left (a recovery's re-check logs again)
    mol = Chem.MolFromSmiles(smiles)
    flag = None
    if mol is None:
        reason = log.take() or "RDKit could not parse the SMILES"
        if not config.recover_valence:
            return None, reason, None
        mol = Chem.MolFromSmiles(smiles, sanitize=False)
        if mol is None:
            return None, reason, None
        problems = Chem.DetectChemistryProblems(mol)
        if any(p.GetType() != "AtomValenceException" for p in problems):
            return None, reason, None
        ops = Chem.SanitizeFlags.SANITIZE_ALL ^ Chem.SanitizeFlags.SANITIZE_PROPERTIES
        if Chem.SanitizeMol(mol, ops, catchErrors=True) != Chem.SanitizeFlags.SANITIZE_NONE:
            return None, reason, None
        mol.UpdatePropertyCache(strict=False)
        flag = "recovered"
    if mol.GetNumAtoms() == 0:
        return None, "SMILES has no atoms", None
    if config.standardize:
        try:
            mol = rdMolStandardize.FragmentParent(mol)
            mol = rdMolStandardize.Uncharger().uncharge(mol)
        except Exception as exc:  # RDKit raises several types here
            return None, f"standardization failed: {exc}", None
    return mol, None, flag


def _clip(value: int, low: int, high: int) -> int:
    return value if low <= value <= high else high + 1


def atom_bond_arrays(mol) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``x [n_atoms, 9] uint8``, ``edge_index [2, 2*n_bonds] int64`` (both directions),
    ``edge_attr [2*n_bonds, 3] uint8``."""
    atoms = mol.GetAtoms()
    x = np.array(
        [
            (
                min(a.GetAtomicNum(), 119),
                _CHIRALITY.get(a.GetChiralTag(), 3),
                min(a.GetDegree(), 11),
                _clip(a.GetFormalCharge(), -5, 5) + 5,
                min(a.GetTotalNumHs(), 9),
                min(a.GetNumRadicalElectrons(), 5),
                _HYBRIDIZATION.get(a.GetHybridization(), 6),
                a.GetIsAromatic(),
                a.IsInRing(),
            )
            for a in atoms
        ],
        dtype=np.uint8,
    ).reshape(-1, len(ATOM_FEATURES))
    bonds = mol.GetBonds()
    if len(bonds) == 0:
        return x, np.zeros((2, 0), dtype=np.int64), np.zeros((0, len(BOND_FEATURES)), np.uint8)
    rows = np.array(
        [
            (
                b.GetBeginAtomIdx(),
                b.GetEndAtomIdx(),
                _BOND_TYPE.get(b.GetBondType(), 4),
                min(int(b.GetStereo()), 6),
                b.GetIsConjugated(),
            )
            for b in bonds
        ],
        dtype=np.int64,
    )
    src, dst = rows[:, 0], rows[:, 1]
    edge_index = np.stack([np.concatenate([src, dst]), np.concatenate([dst, src])])
    attr = rows[:, 2:].astype(np.uint8)
    return x, edge_index, np.concatenate([attr, attr])


def featurize_smiles(smiles_list: list[str], config: FeaturizerConfig = FeaturizerConfig()) -> dict:
    """Featurize SMILES in one process; a picklable dict of flat arrays.

    Keys: ``canonical`` (list[str | None]), ``errors`` (list[str | None]), ``flags``,
    ``x [sum_atoms, 9]``, ``edge_index [2, sum_edges]`` (per-molecule local indices),
    ``edge_attr [sum_edges, 3]``, ``num_nodes [m]``, ``num_edges [m]`` (0 for rejected
    molecules) and ``ecfp [m, bits/8]`` (bit-packed uint8).
    """
    generator = rdFingerprintGenerator.GetMorganGenerator(
        radius=config.ecfp_radius, fpSize=config.ecfp_bits
    )
    m = len(smiles_list)
    canonical: list[str | None] = [None] * m
    errors: list[str | None] = [None] * m
    flags: list[str | None] = [None] * m
    xs, eis, eas = [], [], []
    num_nodes = np.zeros(m, dtype=np.int64)
    num_edges = np.zeros(m, dtype=np.int64)
    ecfp = np.zeros((m, config.ecfp_bits // 8), dtype=np.uint8)
    with _RDKitLog() as log:
        molecules = [parse_smiles(smi, config, log) for smi in smiles_list]
    for i, (mol, reason, flag) in enumerate(molecules):
        if mol is None:
            errors[i] = reason
            continue
        flags[i] = flag
        canonical[i] = Chem.MolToSmiles(mol)
        x, ei, ea = atom_bond_arrays(mol)
        xs.append(x)
        eis.append(ei)
        eas.append(ea)
        num_nodes[i] = x.shape[0]
        num_edges[i] = ei.shape[1]
        ecfp[i] = np.packbits(generator.GetFingerprintAsNumPy(mol).astype(bool))
    width_x, width_e = len(ATOM_FEATURES), len(BOND_FEATURES)
    return {
        "canonical": canonical,
        "errors": errors,
        "flags": flags,
        "x": np.concatenate(xs) if xs else np.zeros((0, width_x), np.uint8),
        "edge_index": np.concatenate(eis, axis=1) if eis else np.zeros((2, 0), np.int64),
        "edge_attr": np.concatenate(eas) if eas else np.zeros((0, width_e), np.uint8),
        "num_nodes": num_nodes,
        "num_edges": num_edges,
        "ecfp": ecfp,
    }


def _featurize_chunk(args: tuple[list[str], FeaturizerConfig]) -> dict:
    return featurize_smiles(*args)


def merge_featurized(parts: list[dict]) -> dict:
    """Concatenate the outputs of :func:`featurize_smiles` on consecutive chunks."""
    return {
        "canonical": [c for p in parts for c in p["canonical"]],
        "errors": [e for p in parts for e in p["errors"]],
        "flags": [f for p in parts for f in p["flags"]],
        "x": np.concatenate([p["x"] for p in parts]),
        "edge_index": np.concatenate([p["edge_index"] for p in parts], axis=1),
        "edge_attr": np.concatenate([p["edge_attr"] for p in parts]),
        "num_nodes": np.concatenate([p["num_nodes"] for p in parts]),
        "num_edges": np.concatenate([p["num_edges"] for p in parts]),
        "ecfp": np.concatenate([p["ecfp"] for p in parts]),
    }


def featurize_parallel(
    smiles_list: list[str],
    config: FeaturizerConfig = FeaturizerConfig(),
    workers: int | None = None,
    chunk_size: int = 1000,
    progress: bool = True,
    desc: str = "featurizing",
) -> dict:
    """:func:`featurize_smiles` over worker processes (``workers=None``: one per core),
    with a progress bar; output order follows the input."""
    import os

    from fewshot_apps.progress import progress_bar

    workers = workers if workers is not None else (os.cpu_count() or 1)
    chunks = [smiles_list[i : i + chunk_size] for i in range(0, len(smiles_list), chunk_size)]
    if not chunks:
        return featurize_smiles([], config)
    bar = progress_bar(total=len(smiles_list), desc=desc, unit="mol", enabled=progress)
    parts = []
    if workers <= 1 or len(chunks) == 1:
        for chunk in chunks:
            parts.append(featurize_smiles(chunk, config))
            bar.update(len(chunk))
    else:
        import multiprocessing as mp

        # fork shares the imported RDKit with the workers; spawn where fork is unavailable.
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        with mp.get_context(method).Pool(workers) as pool:
            for part in pool.imap(_featurize_chunk, [(c, config) for c in chunks]):
                parts.append(part)
                bar.update(len(part["errors"]))
    bar.close()
    return merge_featurized(parts)
