"""domains/molecules/store.py: featurized molecules as flat (CSR) tensors, batched into one
PyG Batch with vectorized indexing."""

from __future__ import annotations

import gzip
import io

import numpy as np
import pandas as pd
import pytest
import torch

from fewshot_apps.domains.molecules.featurizer import (
    ATOM_FEATURES,
    BOND_FEATURES,
    FeaturizerConfig,
    featurize_smiles,
)
from fewshot_apps.domains.molecules.store import MoleculeStore

# Chains, rings, charges, stereo, a salt (two fragments), single atoms (no bonds), and one
# SMILES that RDKit rejects.
SMILES = [
    "CCO", "c1ccccc1O", "not a smiles", "C", "[Na+].[Cl-]", "C[C@H](N)C(=O)O",
    "F/C=C/F", "CC(=O)Oc1ccccc1C(=O)O", "[NH4+]", "O=[N+]([O-])c1ccccc1",
]  # fmt: skip


@pytest.fixture(scope="module")
def feats():
    return featurize_smiles(SMILES)


@pytest.fixture(scope="module")
def store(feats):
    keep = np.flatnonzero([e is None for e in feats["errors"]])
    return MoleculeStore.from_featurized(feats, keep)


# The SMILES as written, in store order (the store holds canonical SMILES, whose atom order,
# and so chirality tags relative to neighbour order, may differ from the input's).
KEPT = [s for s in SMILES if s != "not a smiles"]


def alone(smiles: str) -> dict:
    """The featurization of one molecule by itself."""
    return featurize_smiles([smiles])


def test_from_featurized_keeps_the_chosen_molecules_in_order(feats, store):
    assert len(store) == len(SMILES) - 1
    assert store.smiles == [c for c in feats["canonical"] if c is not None]
    assert store.x.dtype == torch.uint8 and store.x.shape == (int(feats["num_nodes"].sum()), 9)
    assert store.x.shape[1] == len(ATOM_FEATURES) and store.edge_attr.shape[1] == len(BOND_FEATURES)
    assert store.edge_index.dtype == torch.int64 and store.edge_attr.dtype == torch.uint8
    assert store.node_ptr.dtype == store.edge_ptr.dtype == torch.int64
    assert store.node_ptr.shape == store.edge_ptr.shape == (len(store) + 1,)
    assert (
        store.node_ptr[-1] == store.x.shape[0] and store.edge_ptr[-1] == store.edge_index.shape[1]
    )
    assert store.ecfp.shape == (len(store), 2048 // 8) and store.ecfp_bits == 2048
    # a subset in another order
    sub = MoleculeStore.from_featurized(feats, np.array([7, 0]))
    assert sub.smiles == [feats["canonical"][7], feats["canonical"][0]]
    assert torch.diff(sub.node_ptr).tolist() == [feats["num_nodes"][7], feats["num_nodes"][0]]
    torch.testing.assert_close(sub.batch([1]).x, store.batch([0]).x)


def test_batch_equals_per_molecule_featurization(store):
    ids = [4, 0, 2, 2, 8, 3, 1]  # repeats, bond-less molecules, any order
    batch = store.batch(ids)
    assert batch.num_graphs == len(ids)
    assert batch.x.dtype == torch.long and batch.edge_attr.dtype == torch.long
    assert batch.ptr.tolist()[0] == 0 and batch.ptr.shape == (len(ids) + 1,)
    for g, i in enumerate(ids):
        one = alone(KEPT[i])
        lo, hi = batch.ptr[g].item(), batch.ptr[g + 1].item()
        np.testing.assert_array_equal(batch.x[lo:hi].numpy(), one["x"])
        assert (batch.batch[lo:hi] == g).all()
        mine = (batch.batch[batch.edge_index[0]] == g).numpy()
        np.testing.assert_array_equal(batch.edge_index[:, mine].numpy() - lo, one["edge_index"])
        np.testing.assert_array_equal(batch.edge_attr[mine].numpy(), one["edge_attr"])
        fp = store.fingerprints([i])[0].numpy()
        np.testing.assert_array_equal(fp, np.unpackbits(one["ecfp"][0]).astype(np.float32))
    # edges never cross molecules
    src, dst = batch.edge_index
    assert torch.equal(batch.batch[src], batch.batch[dst])


def test_batch_accepts_tensors_arrays_and_lists_alike(store):
    ref = store.batch([5, 1])
    for ids in (torch.tensor([5, 1]), np.array([5, 1], dtype=np.int32), (5, 1)):
        b = store.batch(ids)
        for key in ("x", "edge_index", "edge_attr", "batch", "ptr"):
            assert torch.equal(getattr(b, key), getattr(ref, key)), key


def test_empty_batch_and_molecules_without_bonds(store):
    b = store.batch([])
    assert b.x.shape == (0, 9) and b.edge_index.shape == (2, 0) and b.ptr.tolist() == [0]
    salt = store.smiles.index("[Cl-].[Na+]")
    b = store.batch([salt, salt])
    assert b.x.shape == (4, 9) and b.edge_index.shape == (2, 0) and b.batch.tolist() == [0, 0, 1, 1]


def test_graph_is_one_molecule_with_its_smiles(store):
    g = store.graph(1)
    one = alone(KEPT[1])
    assert g.smiles == store.smiles[1]
    np.testing.assert_array_equal(g.x.numpy(), one["x"])
    np.testing.assert_array_equal(g.edge_index.numpy(), one["edge_index"])


def test_fingerprints_unpack_to_float_bits(store):
    fp = store.fingerprints([0, 3, 0])
    assert fp.shape == (3, 2048) and fp.dtype == torch.float32
    assert set(fp.unique().tolist()) <= {0.0, 1.0} and fp[0].sum() > 0
    torch.testing.assert_close(fp[0], fp[2])
    small = featurize_smiles(["CCO", "CCN"], FeaturizerConfig(ecfp_bits=1024))
    s = MoleculeStore.from_featurized(small, np.array([0, 1]))
    assert s.ecfp_bits == 1024 and s.fingerprints([1]).shape == (1, 1024)


def test_concat_equals_one_store_of_all_molecules(feats, store):
    keep = np.flatnonzero([e is None for e in feats["errors"]])
    a = MoleculeStore.from_featurized(feats, keep[:4])
    b = MoleculeStore.from_featurized(feats, keep[4:])
    both = MoleculeStore.concat([a, b])
    for key in ("x", "edge_index", "edge_attr", "node_ptr", "edge_ptr", "ecfp"):
        assert torch.equal(getattr(both, key), getattr(store, key)), key
    assert both.smiles == store.smiles
    ids = [len(store) - 1, 0, 5]
    assert torch.equal(both.batch(ids).edge_index, store.batch(ids).edge_index)


def test_to_dict_round_trips_through_a_torch_file(store):
    buffer = io.BytesIO()
    torch.save(store.to_dict(), buffer)
    buffer.seek(0)
    back = MoleculeStore.from_dict(torch.load(buffer, weights_only=True))
    assert back.smiles == store.smiles
    for key in ("x", "edge_index", "edge_attr", "node_ptr", "edge_ptr", "ecfp"):
        assert torch.equal(getattr(back, key), getattr(store, key)), key


def test_real_tox21_molecules_batch_like_their_own_featurization(data_dir):
    """Real chemistry (charges, stereo, metals, phosphates): the first 60 Tox21 molecules."""
    with gzip.open(data_dir / "moleculenet" / "tox21.csv.gz", "rt") as f:
        smiles = pd.read_csv(f, nrows=60)["smiles"].tolist()
    feats = featurize_smiles(smiles)
    keep = np.flatnonzero([e is None for e in feats["errors"]])
    assert len(keep) >= 55
    store = MoleculeStore.from_featurized(feats, keep)
    ids = np.arange(len(store))[::-1].copy()
    batch = store.batch(ids)
    singles = [alone(smiles[keep[i]]) for i in ids]
    np.testing.assert_array_equal(batch.x.numpy(), np.concatenate([s["x"] for s in singles]))
    offsets = np.repeat(
        np.r_[0, np.cumsum([s["x"].shape[0] for s in singles])[:-1]],
        [s["edge_index"].shape[1] for s in singles],
    )
    np.testing.assert_array_equal(
        batch.edge_index.numpy(),
        np.concatenate([s["edge_index"] for s in singles], axis=1) + offsets,
    )
    np.testing.assert_array_equal(
        batch.edge_attr.numpy(), np.concatenate([s["edge_attr"] for s in singles])
    )
    np.testing.assert_array_equal(
        store.fingerprints(ids).numpy(),
        np.unpackbits(np.concatenate([s["ecfp"] for s in singles]), axis=1).astype(np.float32),
    )
