"""Fixed molecule representations, computed once per molecule and settings: sparse count-ECFP
and RDKit 2D descriptors.

The GNN learns from graphs; the fingerprint encoder
(:class:`~fewshot_apps.domains.molecules.fingerprint_encoder.FingerprintEncoder`) and the
fingerprint branch of the fused encoder read these instead. They are computed from a
:class:`~fewshot_apps.domains.molecules.store.MoleculeStore`'s canonical SMILES, held on the
store (so every learner of a run shares one copy) and cached on disk under the data set's
cache folder (``molecules/features/``), keyed by the molecules, the kind, its settings and
the RDKit version: a changed pool or setting never reuses a stale file.

* :func:`count_ecfp` -> :class:`SparseCounts`: Morgan/ECFP counts folded to ``bits``, as CSR
  rows (``index``, ``count``, ``ptr``). About 50 set bits per molecule against 2,048 columns,
  so a sparse first layer (``nn.EmbeddingBag``) costs per set bit.
* :func:`descriptors` -> ``[m, 43] float32``: RDKit's fast 2D property set
  (``rdMolDescriptors.Properties``: weights, logP, TPSA, H-bond donors/acceptors, ring and
  atom counts, Kappa/Chi shape indices ...), about 0.6 ms per molecule; RDKit's full list
  (``Descriptors.CalcMolDescriptors``, 217 values) costs 4.5 ms, too much for FS-Mol's 400k
  molecules on two cores. A molecule RDKit cannot re-parse gets an empty fingerprint row and
  NaN descriptors (counted in :attr:`SparseCounts.unparsed`); encoders normalize and zero
  NaNs.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rdkit
import torch
from rdkit import Chem, RDLogger
from rdkit.Chem import rdFingerprintGenerator, rdMolDescriptors

from fewshot_apps.progress import progress_bar

from .cache import write_cache
from .store import MoleculeStore, _torch_ranges

#: Bump when the computed values change (part of every cache key).
REPRESENTATIONS_VERSION = 2  # 2: int16 index and counts (a quarter of the memory)
_CHUNK = 5000  # molecules per progress step


@dataclass
class SparseCounts:
    """Folded count-ECFP of ``m`` molecules as CSR rows.

    Attributes:
        index: ``[nnz] int16`` (``int32`` above 32,767 bits) set bits, row after row.
        count: ``[nnz] int16`` how often each bit's substructures occur (capped at 32,767).
        ptr: ``[m + 1] int64`` row offsets: molecule ``i`` is ``index[ptr[i]:ptr[i+1]]``.
        bits: fingerprint width.
        unparsed: molecules RDKit could not re-parse (empty rows).
    """

    index: torch.Tensor
    count: torch.Tensor
    ptr: torch.Tensor
    bits: int
    unparsed: int = 0

    def __len__(self) -> int:
        return len(self.ptr) - 1

    def rows(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The rows of molecules ``ids`` (repeats allowed) as ``nn.EmbeddingBag`` input:
        ``(index [k] int64, count [k] float32, offsets [len(ids)] int64)``."""
        ids = torch.as_tensor(ids, dtype=torch.long)
        starts, ends = self.ptr[ids], self.ptr[ids + 1]
        lengths = ends - starts
        take = _torch_ranges(starts, lengths)
        offsets = torch.cumsum(lengths, 0) - lengths
        return self.index[take].long(), self.count[take].float(), offsets

    def dense(self, ids: torch.Tensor) -> torch.Tensor:
        """``[len(ids), bits]`` float counts (tests and small pools)."""
        index, count, offsets = self.rows(ids)
        out = torch.zeros(len(offsets), self.bits)
        row = torch.repeat_interleave(torch.arange(len(offsets)),
                                      torch.diff(torch.cat([offsets, torch.tensor([len(index)])])))
        out.index_put_((row, index), count, accumulate=True)
        return out

    def to_dict(self) -> dict:
        return {"index": self.index, "count": self.count, "ptr": self.ptr,
                "bits": self.bits, "unparsed": self.unparsed}

    @classmethod
    def from_dict(cls, d: dict) -> SparseCounts:
        return cls(d["index"], d["count"], d["ptr"], int(d["bits"]), int(d["unparsed"]))


def _molecules(smiles: list[str], desc: str, progress: bool):
    """``(position, RDKit molecule or None)`` for each SMILES, with progress per chunk."""
    RDLogger.DisableLog("rdApp.*")  # a re-parse failure is counted, not printed per molecule
    try:
        bar = progress_bar(total=len(smiles), desc=desc, unit="mol",
                           enabled=progress and len(smiles) > _CHUNK)
        for start in range(0, len(smiles), _CHUNK):
            for i, s in enumerate(smiles[start:start + _CHUNK], start):
                yield i, Chem.MolFromSmiles(s)
            bar.update(min(_CHUNK, len(smiles) - start))
        bar.close()
    finally:
        RDLogger.EnableLog("rdApp.*")


def count_ecfp(smiles: list[str], radius: int = 2, bits: int = 2048,
               progress: bool = False) -> SparseCounts:
    """Folded Morgan count fingerprints (ECFP of diameter ``2 * radius``) of ``smiles``."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    index_type = np.int16 if bits <= np.iinfo(np.int16).max + 1 else np.int32
    index: list[np.ndarray] = []
    count: list[np.ndarray] = []
    lengths = np.zeros(len(smiles), dtype=np.int64)
    unparsed = 0
    for i, mol in _molecules(smiles, "count-ECFP", progress):
        if mol is None:
            unparsed += 1
            continue
        elements = generator.GetCountFingerprint(mol).GetNonzeroElements()
        keys = np.fromiter(elements.keys(), dtype=np.int64, count=len(elements))
        order = np.argsort(keys)
        index.append(keys[order].astype(index_type))
        values = np.fromiter(elements.values(), dtype=np.int64, count=len(elements))[order]
        count.append(np.minimum(values, np.iinfo(np.int16).max).astype(np.int16))
        lengths[i] = len(elements)
    ptr = torch.from_numpy(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
    return SparseCounts(_flat(index, torch.from_numpy(np.zeros(0, index_type)).dtype),
                        _flat(count, torch.int16), ptr, bits, unparsed)


def _flat(parts: list[np.ndarray], dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(np.concatenate(parts)) if parts else torch.zeros(0, dtype=dtype)


def descriptor_names() -> list[str]:
    """Names of the :func:`descriptors` columns, in order."""
    return list(rdMolDescriptors.Properties.GetAvailableProperties())


def descriptors(smiles: list[str], progress: bool = False) -> torch.Tensor:
    """``[m, len(descriptor_names())] float32`` RDKit 2D properties; NaN rows for molecules
    RDKit cannot re-parse."""
    properties = rdMolDescriptors.Properties(descriptor_names())
    out = np.full((len(smiles), len(descriptor_names())), np.nan, dtype=np.float64)
    for i, mol in _molecules(smiles, "descriptors", progress):
        if mol is not None:
            out[i] = list(properties.ComputeProperties(mol))
    return torch.from_numpy(out.astype(np.float32))


def _cache_path(store: MoleculeStore, kind: str, settings: dict) -> Path | None:
    folder = getattr(store, "feature_cache", None)
    if folder is None:
        return None
    h = hashlib.sha256()
    for s in store.smiles:
        h.update(s.encode())
        h.update(b"\n")
    h.update(repr((kind, sorted(settings.items()), rdkit.__version__,
                   REPRESENTATIONS_VERSION)).encode())
    return Path(folder) / f"{kind}-{len(store)}-{h.hexdigest()[:32]}.pt"


def _cached(store: MoleculeStore, kind: str, settings: dict, compute, to_dict, from_dict):
    """The representation ``kind`` of ``store``'s molecules: from the store's memory, the disk
    cache, or computed (and kept in both)."""
    memory = store.__dict__.setdefault("_representations", {})
    key = (kind, tuple(sorted(settings.items())))
    if key in memory:
        return memory[key]
    path = _cache_path(store, kind, settings)
    value = None
    if path is not None and path.is_file():
        try:
            value = from_dict(torch.load(path, weights_only=True))
        except Exception as exc:  # a corrupt entry is recomputed, never trusted
            print(f"note: the cache file {path} was unusable ({type(exc).__name__}); "
                  "recomputing it", file=sys.stderr)
    if value is None:
        value = compute()
        if path is not None:
            write_cache(path, to_dict(value))
    memory[key] = value
    return value


def store_count_ecfp(store: MoleculeStore, radius: int = 2, bits: int = 2048,
                     progress: bool = True) -> SparseCounts:
    """:func:`count_ecfp` of the store's molecules, computed once (memory and disk cache)."""
    return _cached(store, "count-ecfp", {"radius": radius, "bits": bits},
                   lambda: count_ecfp(store.smiles, radius, bits, progress),
                   SparseCounts.to_dict, SparseCounts.from_dict)


def store_descriptors(store: MoleculeStore, progress: bool = True) -> torch.Tensor:
    """:func:`descriptors` of the store's molecules, computed once (memory and disk cache)."""
    return _cached(store, "descriptors", {},
                   lambda: descriptors(store.smiles, progress),
                   lambda t: {"values": t}, lambda d: d["values"])


__all__ = ["REPRESENTATIONS_VERSION", "SparseCounts", "count_ecfp", "descriptor_names",
           "descriptors", "store_count_ecfp", "store_descriptors"]
