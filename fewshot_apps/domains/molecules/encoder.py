"""GIN/GINE encoder over molecule graphs, with an optional ECFP branch.

Follows the encoder contract of :mod:`fewshot_apps.core.encoders`: it owns a
:class:`~fewshot_apps.domains.molecules.store.MoleculeStore` and maps molecule ids to
embeddings, so a whole meta-batch is one :meth:`MoleculeStore.batch` and one GNN pass.

Architecture: categorical atom / bond features are embedded (one table per column, summed);
``depth`` GINE layers (Xu et al. 2019; Hu et al. 2020), each followed by LayerNorm or
GraphNorm (no BatchNorm running statistics), ReLU and dropout; a graph readout (mean, sum or
max); optionally concatenated with a fingerprint branch (FS-Mol's best ProtoNet used
GNN + ECFP): an MLP over the ECFP bits (``fingerprint="bits"``, the default) or the sparse
count-ECFP (+ descriptors) branch of
:class:`~fewshot_apps.domains.molecules.fingerprint_encoder.FingerprintBranch`
(``fingerprint="counts"``: the fused encoder); then a last linear layer, the part ``maml``
adapts.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import (
    GINEConv,
    GraphNorm,
    global_add_pool,
    global_max_pool,
    global_mean_pool,
)

from fewshot_apps.core.config import constructor_defaults, settings_like
from fewshot_apps.core.encoders import LastLayerSplit
from fewshot_apps.core.registry import ENCODERS, registered_name
from fewshot_apps.errors import FewshotError

from .assay_profile import AssayProfileInput
from .featurizer import ATOM_FEATURES, BOND_FEATURES
from .similarity import TanimotoSimilarity
from .store import MoleculeStore

POOLING = {"mean": global_mean_pool, "sum": global_add_pool, "max": global_max_pool}


class CategoricalEmbedding(nn.Module):
    """Sum of one embedding per categorical column: ``[n, columns] long -> [n, dim]``."""

    def __init__(self, cardinalities: list[int], dim: int):
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(c, dim) for c in cardinalities)

    def forward(self, x: Tensor) -> Tensor:
        return sum(table(x[:, i]) for i, table in enumerate(self.tables))


class MoleculeEncoder(AssayProfileInput, TanimotoSimilarity, LastLayerSplit, nn.Module):
    """Molecule ids -> embeddings ``[n, out_dim]``.

    Args:
        store: the molecule pool (not saved with the weights; a model is given the store of
            the molecules it is asked about with :meth:`set_store`).
        hidden: node embedding width; depth: GINE layers; pooling: ``mean | sum | max``;
        norm: ``layer | graph``; dropout; use_ecfp: add the fingerprint branch of width
        ``ecfp_hidden``; fingerprint: that branch reads ``bits`` (a dense MLP over the
        store's ECFP bits) or ``counts`` (sparse count-ECFP of radius ``ecfp_radius``, with
        RDKit ``descriptors`` if set); out_dim: embedding width; assay_profile: concatenate
        the molecules' labels in the training assays (:mod:`.assay_profile`;
        ``profile_assays`` is filled in by the data set) through a branch of width
        ``profile_hidden``.
    """

    name = registered_name(ENCODERS)

    def __init__(
        self,
        store: MoleculeStore | None = None,
        hidden: int = 128,
        depth: int = 4,
        out_dim: int = 128,
        pooling: str = "mean",
        norm: str = "layer",
        dropout: float = 0.1,
        use_ecfp: bool = True,
        ecfp_bits: int = 2048,
        ecfp_hidden: int = 256,
        fingerprint: str = "bits",
        ecfp_radius: int = 2,
        descriptors: bool = False,
        assay_profile: bool = False,
        profile_hidden: int = 64,
        profile_assays: list[str] | None = None,
    ):
        super().__init__()
        if pooling not in POOLING:
            raise FewshotError(f"pooling must be one of {sorted(POOLING)}, not {pooling!r}")
        if norm not in ("layer", "graph"):
            raise FewshotError(f"norm must be 'layer' or 'graph', not {norm!r}")
        if fingerprint not in ("bits", "counts"):
            raise FewshotError(f"fingerprint must be 'bits' or 'counts', not {fingerprint!r}")
        if descriptors and not (use_ecfp and fingerprint == "counts"):
            raise FewshotError("descriptors need the count fingerprint branch "
                               "(encoder.use_ecfp=true, encoder.fingerprint=counts)")
        self.store = store
        self.settings = dict(hidden=hidden, depth=depth, out_dim=out_dim, pooling=pooling,
                             norm=norm, dropout=dropout, use_ecfp=use_ecfp,
                             ecfp_bits=ecfp_bits, ecfp_hidden=ecfp_hidden)
        if fingerprint != "bits" or descriptors:  # older saved configs lack these keys
            self.settings.update(fingerprint=fingerprint, ecfp_radius=ecfp_radius,
                                 descriptors=descriptors)
        self.out_dim = out_dim
        self.atom_embedding = CategoricalEmbedding(list(ATOM_FEATURES.values()), hidden)
        self.bond_embeddings = nn.ModuleList(
            CategoricalEmbedding(list(BOND_FEATURES.values()), hidden) for _ in range(depth)
        )
        self.convs = nn.ModuleList(
            GINEConv(nn.Sequential(nn.Linear(hidden, 2 * hidden), nn.ReLU(),
                                   nn.Linear(2 * hidden, hidden)), train_eps=True)
            for _ in range(depth)
        )
        self.norms = nn.ModuleList(
            (nn.LayerNorm(hidden) if norm == "layer" else GraphNorm(hidden)) for _ in range(depth)
        )
        self.dropout = dropout
        self.pool = POOLING[pooling]
        trunk_dim = hidden + (ecfp_hidden if use_ecfp else 0)
        self.ecfp_mlp = self.fingerprint_branch = None
        if use_ecfp and fingerprint == "bits":
            self.ecfp_mlp = nn.Sequential(nn.Linear(ecfp_bits, ecfp_hidden),
                                          nn.LayerNorm(ecfp_hidden), nn.ReLU())
        elif use_ecfp:
            from .fingerprint_encoder import FingerprintBranch

            self.fingerprint_branch = FingerprintBranch(ecfp_bits, ecfp_radius, ecfp_hidden,
                                                        counts=True, descriptors=descriptors,
                                                        dropout=dropout)
        trunk_dim += self._init_assay_profile(assay_profile, profile_assays, profile_hidden)
        self.last = nn.Linear(trunk_dim, out_dim)

    def config(self) -> dict:
        return {"name": self.name, **self.settings}

    @classmethod
    def parse_settings(cls, given: dict) -> dict:
        """The encoder's settings: its defaults overridden by ``given`` (``--set
        encoder.<key>=value`` strings parsed to each default's type); FewshotError on an
        unknown key."""
        return settings_like(constructor_defaults(cls, skip=("store", "profile_assays")), given,
                             "encoder")

    @classmethod
    def from_config(cls, config: dict, store: MoleculeStore | None = None) -> MoleculeEncoder:
        settings = {k: v for k, v in config.items() if k != "name"}
        return cls(store, **settings)

    def set_store(self, store: MoleculeStore) -> None:
        """Encode the molecules of another pool (e.g. a user's support and query sets)."""
        self.store = store

    def fit_normalization(self, ids: Tensor) -> None:
        """Descriptor normalization (fused encoder with descriptors) from the training
        molecules ``ids``; a no-op otherwise."""
        if self.fingerprint_branch is not None and self.store is not None:
            self.fingerprint_branch.fit_normalization(self.store, ids)

    def forward_trunk(self, example_ids: Tensor) -> Tensor:
        """``[n] -> [n, hidden (+ ecfp_hidden) (+ profile_hidden)]``: GNN readout (and ECFP
        branch, assay profile)."""
        if self.store is None:
            raise FewshotError("the molecule encoder has no molecules: call set_store(store)")
        device = self.last.weight.device
        ids = example_ids.detach().cpu()
        batch = self.store.batch(ids).to(device, non_blocking=True)
        h = self.atom_embedding(batch.x)
        for bond_embedding, conv, norm in zip(self.bond_embeddings, self.convs, self.norms):
            edge = bond_embedding(batch.edge_attr)
            h = conv(h, batch.edge_index, edge)
            h = norm(h) if isinstance(norm, nn.LayerNorm) else norm(h, batch.batch)
            h = F.dropout(F.relu(h), p=self.dropout, training=self.training)
        parts = [self.pool(h, batch.batch, size=len(ids))]
        if self.fingerprint_branch is not None:
            parts.append(self.fingerprint_branch(self.store, ids))
        elif self.ecfp_mlp is not None:
            fingerprints = self.store.fingerprints(ids).to(device, non_blocking=True)
            parts.append(self.ecfp_mlp(fingerprints))
        profile = self.profile_features(ids)
        if profile is not None:
            parts.append(profile)
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
