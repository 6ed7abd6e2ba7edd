"""Fingerprint encoders: sparse count-ECFP (and RDKit descriptors) through an MLP.

:class:`FingerprintBranch` is the shared part: a sparse first layer over count-ECFP
(``nn.EmbeddingBag`` with ``log1p(count)`` weights, so its cost is per set bit, about 50 per
molecule, not per 2,048 columns), plus an optional linear map of normalized descriptors added
into the same hidden layer, then LayerNorm, ReLU and dropout. It is the whole trunk of
:class:`FingerprintEncoder` (``encoder.kind=fingerprint``) and the fingerprint branch of the
fused GNN encoder (``encoder.fingerprint=counts``).

Descriptors are standardized with the median and inter-quartile range of the *training*
molecules (:meth:`FingerprintBranch.fit_normalization`, called by the data set when it builds
the encoder), kept as buffers so a saved model normalizes a user's molecules the same way;
normalized values are clipped to ``[-6, 6]`` and a NaN (a molecule RDKit cannot re-parse)
becomes 0, the training median.

The design follows the prototypical network of ``../shared/REFERENCES.md`` (count-ECFP,
2048 -> 1024 -> 512, LayerNorm, ReLU, dropout 0.1), which meta-trains at about 300 episodes
per second on two cores.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fewshot_apps.core.config import constructor_defaults, settings_like
from fewshot_apps.core.encoders import LastLayerSplit
from fewshot_apps.core.registry import ENCODERS, registered_name
from fewshot_apps.errors import FewshotError

from .assay_profile import AssayProfileInput
from .representations import descriptor_names, store_count_ecfp, store_descriptors
from .similarity import TanimotoSimilarity
from .store import MoleculeStore

_CLIP = 6.0


class FingerprintBranch(nn.Module):
    """Molecule ids of a store -> ``[n, hidden]`` from count-ECFP (and descriptors).

    Args:
        bits, radius: the count-ECFP folding width and Morgan radius.
        hidden: output width.
        counts: weight each set bit by ``log1p(count)`` (True) or 1 (bits only).
        descriptors: add RDKit 2D descriptors (:func:`~.representations.descriptors`).
        dropout: after the ReLU.
    """

    def __init__(self, bits: int = 2048, radius: int = 2, hidden: int = 1024,
                 counts: bool = True, descriptors: bool = False, dropout: float = 0.1):
        super().__init__()
        self.bits, self.radius, self.counts, self.dropout = bits, radius, counts, dropout
        self.bag = nn.EmbeddingBag(bits, hidden, mode="sum")
        self.bias = nn.Parameter(torch.zeros(hidden))
        # nn.Linear's initialization (fan-in = bits), not EmbeddingBag's N(0, 1).
        bound = 1.0 / math.sqrt(bits)
        nn.init.uniform_(self.bag.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)
        if descriptors:
            width = len(descriptor_names())
            self.descriptor_layer = nn.Linear(width, hidden, bias=False)
            self.register_buffer("descriptor_center", torch.zeros(width))
            self.register_buffer("descriptor_scale", torch.ones(width))
        else:
            self.descriptor_layer = None
        self.norm = nn.LayerNorm(hidden)

    def fit_normalization(self, store: MoleculeStore, ids: Tensor) -> None:
        """Set the descriptor center and scale from molecules ``ids`` (the training ones)."""
        if self.descriptor_layer is None:
            return
        values = store_descriptors(store)[torch.as_tensor(ids, dtype=torch.long)]
        center = torch.nanquantile(values, 0.5, dim=0)
        spread = torch.nanquantile(values, 0.75, dim=0) - torch.nanquantile(values, 0.25, dim=0)
        std = torch.from_numpy(_nanstd(values.numpy()))
        # IQR / 1.349 estimates sigma robustly; constant-ish columns fall back to the std.
        scale = torch.where(spread > 1e-6, spread / 1.349, std)
        scale = torch.where(torch.isfinite(scale) & (scale > 1e-6), scale, torch.ones_like(scale))
        self.descriptor_center.copy_(torch.nan_to_num(center, nan=0.0))
        self.descriptor_scale.copy_(scale)

    def forward(self, store: MoleculeStore, ids: Tensor) -> Tensor:
        """``[n] -> [n, hidden]``."""
        device = self.bag.weight.device
        ids = ids.detach().cpu()
        index, count, offsets = store_count_ecfp(store, self.radius, self.bits).rows(ids)
        weights = torch.log1p(count) if self.counts else torch.ones_like(count)
        h = self.bag(index.to(device), offsets.to(device),
                     per_sample_weights=weights.to(device)) + self.bias
        if self.descriptor_layer is not None:
            values = store_descriptors(store)[ids].to(device)
            z = (values - self.descriptor_center) / self.descriptor_scale
            h = h + self.descriptor_layer(torch.nan_to_num(z, nan=0.0).clamp(-_CLIP, _CLIP))
        return F.dropout(F.relu(self.norm(h)), p=self.dropout, training=self.training)


def _nanstd(values: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.nan_to_num(np.nanstd(values, axis=0), nan=1.0).astype(np.float32)


class FingerprintEncoder(AssayProfileInput, TanimotoSimilarity, LastLayerSplit, nn.Module):
    """Molecule ids -> embeddings ``[n, out_dim]`` from count-ECFP (and descriptors) alone.

    :class:`FingerprintBranch` (``bits -> hidden``), ``depth - 1`` more blocks of Linear,
    LayerNorm, ReLU and dropout (``hidden -> hidden``), then a last linear layer (the part
    ``maml`` adapts). No graph is read: about ten times cheaper per episode than the GNN.

    Args:
        store: the molecule pool (set again with :meth:`set_store` for a user's molecules).
        bits, radius: count-ECFP settings; hidden: hidden width; depth: hidden layers (1: the
        sparse layer alone); out_dim: embedding width; dropout; counts: log1p counts (True)
        or bits; descriptors: add RDKit 2D descriptors; assay_profile: concatenate the
        molecules' labels in the training assays (:mod:`.assay_profile`; ``profile_assays``
        is filled in by the data set) through a branch of width ``profile_hidden``.
    """

    name = registered_name(ENCODERS)

    def __init__(self, store: MoleculeStore | None = None, bits: int = 2048, radius: int = 2,
                 hidden: int = 1024, depth: int = 1, out_dim: int = 512, dropout: float = 0.1,
                 counts: bool = True, descriptors: bool = False, assay_profile: bool = False,
                 profile_hidden: int = 64, profile_assays: list[str] | None = None):
        super().__init__()
        if depth < 1:
            raise FewshotError(f"encoder.depth must be at least 1, not {depth}")
        self.store = store
        self.settings = dict(bits=bits, radius=radius, hidden=hidden, depth=depth,
                             out_dim=out_dim, dropout=dropout, counts=counts,
                             descriptors=descriptors)
        self.out_dim = out_dim
        self.branch = FingerprintBranch(bits, radius, hidden, counts, descriptors, dropout)
        self.blocks = nn.Sequential(*(
            nn.Sequential(nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.ReLU(),
                          nn.Dropout(dropout))
            for _ in range(depth - 1)))
        profile_width = self._init_assay_profile(assay_profile, profile_assays, profile_hidden)
        self.last = nn.Linear(hidden + profile_width, out_dim)

    def config(self) -> dict:
        return {"name": self.name, **self.settings}

    @classmethod
    def parse_settings(cls, given: dict) -> dict:
        """Defaults overridden by ``given`` (strings parsed to each default's type);
        FewshotError on an unknown key."""
        return settings_like(constructor_defaults(cls, skip=("store", "profile_assays")), given,
                             "encoder")

    @classmethod
    def from_config(cls, config: dict, store: MoleculeStore | None = None) -> FingerprintEncoder:
        return cls(store, **{k: v for k, v in config.items() if k != "name"})

    def set_store(self, store: MoleculeStore) -> None:
        self.store = store

    def fit_normalization(self, ids: Tensor) -> None:
        """Descriptor normalization from the training molecules ``ids`` of the store."""
        self.branch.fit_normalization(self._store(), ids)

    def _store(self) -> MoleculeStore:
        if self.store is None:
            raise FewshotError("the fingerprint encoder has no molecules: call set_store(store)")
        return self.store

    def forward_trunk(self, example_ids: Tensor) -> Tensor:
        """``[n] -> [n, hidden (+ profile_hidden)]``."""
        trunk = self.blocks(self.branch(self._store(), example_ids))
        profile = self.profile_features(example_ids)
        return trunk if profile is None else torch.cat([trunk, profile], dim=1)


__all__ = ["FingerprintBranch", "FingerprintEncoder"]
