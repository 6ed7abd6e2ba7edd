"""A pool of featurized molecules held as flat tensors, with fast batching.

Graphs are stored back to back (CSR style): node features of molecule ``i`` are
``x[node_ptr[i]:node_ptr[i+1]]`` and its edges ``edge_index[:, edge_ptr[i]:edge_ptr[i+1]]``
(indices local to the molecule). :meth:`MoleculeStore.batch` gathers any list of molecules
into one PyG :class:`~torch_geometric.data.Batch` with vectorized indexing (no per-molecule
Python objects), so a whole meta-batch is encoded in one GNN pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch_geometric.data import Batch, Data


def _ptr(counts: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.concatenate([[0], np.cumsum(counts)]).astype(np.int64))


@dataclass
class MoleculeStore:
    """Featurized molecules.

    Attributes:
        smiles: canonical SMILES, ``len == m``.
        x: ``[num_atoms, 9] uint8`` categorical atom features.
        edge_index: ``[2, num_edges] int64``, local to each molecule.
        edge_attr: ``[num_edges, 3] uint8`` categorical bond features.
        node_ptr, edge_ptr: ``[m + 1] int64`` offsets.
        ecfp: ``[m, bits / 8] uint8`` bit-packed ECFP.
    """

    smiles: list[str]
    x: torch.Tensor
    edge_index: torch.Tensor
    edge_attr: torch.Tensor
    node_ptr: torch.Tensor
    edge_ptr: torch.Tensor
    ecfp: torch.Tensor

    def __len__(self) -> int:
        return len(self.smiles)

    @property
    def ecfp_bits(self) -> int:
        return self.ecfp.shape[1] * 8

    @classmethod
    def from_featurized(cls, feats: dict, keep: np.ndarray) -> MoleculeStore:
        """Keep the molecules at positions ``keep`` of a :func:`featurize_smiles` output."""
        nodes, edges = feats["num_nodes"], feats["num_edges"]
        node_start = np.concatenate([[0], np.cumsum(nodes)])
        edge_start = np.concatenate([[0], np.cumsum(edges)])
        node_sel = _ranges(node_start[keep], nodes[keep])
        edge_sel = _ranges(edge_start[keep], edges[keep])
        return cls(
            smiles=[feats["canonical"][i] for i in keep],
            x=torch.from_numpy(np.ascontiguousarray(feats["x"][node_sel])),
            edge_index=torch.from_numpy(np.ascontiguousarray(feats["edge_index"][:, edge_sel])),
            edge_attr=torch.from_numpy(np.ascontiguousarray(feats["edge_attr"][edge_sel])),
            node_ptr=_ptr(nodes[keep]),
            edge_ptr=_ptr(edges[keep]),
            ecfp=torch.from_numpy(np.ascontiguousarray(feats["ecfp"][keep])),
        )

    @classmethod
    def concat(cls, stores: list[MoleculeStore]) -> MoleculeStore:
        return cls(
            smiles=[s for store in stores for s in store.smiles],
            x=torch.cat([s.x for s in stores]),
            edge_index=torch.cat([s.edge_index for s in stores], dim=1),
            edge_attr=torch.cat([s.edge_attr for s in stores]),
            node_ptr=_ptr(np.concatenate([np.diff(s.node_ptr.numpy()) for s in stores])),
            edge_ptr=_ptr(np.concatenate([np.diff(s.edge_ptr.numpy()) for s in stores])),
            ecfp=torch.cat([s.ecfp for s in stores]),
        )

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    @classmethod
    def from_dict(cls, d: dict) -> MoleculeStore:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})

    def batch(self, ids: torch.Tensor | np.ndarray | list[int]) -> Batch:
        """One PyG ``Batch`` of the given molecules, in order (repeats allowed).

        ``x [sum_nodes, 9] long``, ``edge_index [2, sum_edges]``, ``edge_attr [sum_edges, 3]
        long``, ``batch [sum_nodes]``, ``ptr [len(ids) + 1]``.
        """
        ids = torch.as_tensor(ids, dtype=torch.long)
        n_nodes = self.node_ptr[ids + 1] - self.node_ptr[ids]
        n_edges = self.edge_ptr[ids + 1] - self.edge_ptr[ids]
        node_sel = _torch_ranges(self.node_ptr[ids], n_nodes)
        edge_sel = _torch_ranges(self.edge_ptr[ids], n_edges)
        new_node_start = torch.cumsum(n_nodes, 0) - n_nodes
        shift = torch.repeat_interleave(new_node_start, n_edges)
        graph_of_node = torch.repeat_interleave(torch.arange(len(ids)), n_nodes)
        return Batch(
            x=self.x[node_sel].long(),
            edge_index=self.edge_index[:, edge_sel] + shift,
            edge_attr=self.edge_attr[edge_sel].long(),
            batch=graph_of_node,
            ptr=torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(n_nodes, 0)]),
        )

    def graph(self, i: int) -> Data:
        """Molecule ``i`` as a PyG ``Data`` (with its ``smiles``)."""
        b = self.batch([i])
        return Data(x=b.x, edge_index=b.edge_index, edge_attr=b.edge_attr, smiles=self.smiles[i])

    def fingerprints(self, ids: torch.Tensor | np.ndarray | list[int]) -> torch.Tensor:
        """ECFP bits of the given molecules: ``[len(ids), bits] float32`` (0/1)."""
        packed = self.ecfp[torch.as_tensor(ids, dtype=torch.long)].numpy()
        return torch.from_numpy(np.unpackbits(packed, axis=1).astype(np.float32))


def _ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Concatenation of ``arange(s, s + c)`` for each (s, c), vectorized."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.cumsum(counts) - counts
    return np.arange(total) - np.repeat(offsets, counts) + np.repeat(starts, counts)


def _torch_ranges(starts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    total = int(counts.sum())
    if total == 0:
        return torch.zeros(0, dtype=torch.long)
    offsets = torch.cumsum(counts, 0) - counts
    return (
        torch.arange(total)
        - torch.repeat_interleave(offsets, counts)
        + torch.repeat_interleave(starts, counts)
    )
