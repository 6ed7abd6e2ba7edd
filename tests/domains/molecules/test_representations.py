"""domains/molecules/representations.py: count-ECFP and descriptors, computed once."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rdkit import Chem
from rdkit.Chem import rdFingerprintGenerator

from fewshot_apps.domains.molecules import representations as reps
from fewshot_apps.domains.molecules.featurizer import FeaturizerConfig, featurize_smiles
from fewshot_apps.domains.molecules.store import MoleculeStore

SMILES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C", "CCN(CC)CC"]


def make_store(smiles=SMILES) -> MoleculeStore:
    feats = featurize_smiles(list(smiles), FeaturizerConfig(ecfp_bits=512))
    return MoleculeStore.from_featurized(feats, np.arange(len(smiles)))


def rdkit_dense(smiles: str, radius=2, bits=1024) -> np.ndarray:
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    return generator.GetCountFingerprintAsNumPy(Chem.MolFromSmiles(smiles)).astype(np.float32)


@pytest.mark.parametrize("radius,bits", [(2, 1024), (3, 256)])
def test_count_ecfp_equals_rdkits_dense_counts(radius, bits):
    counts = reps.count_ecfp(SMILES, radius=radius, bits=bits)
    assert len(counts) == len(SMILES) and counts.bits == bits and counts.unparsed == 0
    dense = counts.dense(torch.arange(len(SMILES))).numpy()
    expected = np.stack([rdkit_dense(s, radius, bits) for s in SMILES])
    np.testing.assert_array_equal(dense, expected)
    assert dense[2].sum() > dense[0].sum() > 0  # counts, not bits: a larger molecule has more


def test_rows_follow_the_ids_in_order_with_repeats():
    counts = reps.count_ecfp(SMILES, bits=512)
    ids = torch.tensor([3, 1, 1, 0])
    index, count, offsets = counts.rows(ids)
    full = counts.dense(torch.arange(len(SMILES)))
    np.testing.assert_array_equal(counts.dense(ids).numpy(), full[ids].numpy())
    assert offsets.tolist()[0] == 0 and len(index) == len(count) == int((full[ids] > 0).sum())


def test_a_molecule_rdkit_cannot_parse_gets_an_empty_row_and_is_counted():
    counts = reps.count_ecfp(["CCO", "not a smiles", "C"], bits=128)
    assert counts.unparsed == 1
    assert counts.dense(torch.tensor([1])).sum() == 0
    values = reps.descriptors(["CCO", "not a smiles"])
    assert values.shape == (2, len(reps.descriptor_names()))
    assert torch.isfinite(values[0]).all() and torch.isnan(values[1]).all()


def test_descriptors_are_rdkits_properties():
    values = reps.descriptors(["CCO", "c1ccccc1O"])
    names = reps.descriptor_names()
    weight = values[:, names.index("exactmw")]
    assert weight[0] == pytest.approx(46.0419, abs=1e-3)  # ethanol
    assert values[1, names.index("NumAromaticRings")] == 1


def test_store_representations_are_computed_once_and_cached_on_disk(tmp_path, monkeypatch):
    store = make_store()
    store.feature_cache = tmp_path
    first = reps.store_count_ecfp(store, bits=256, progress=False)
    assert reps.store_count_ecfp(store, bits=256) is first  # memory
    assert len(list(tmp_path.glob("count-ecfp-*.pt"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(reps, "count_ecfp", fail)
    again = make_store()  # the same molecules, a new store: read from disk
    again.feature_cache = tmp_path
    torch.testing.assert_close(reps.store_count_ecfp(again, bits=256).index, first.index)
    other = make_store(SMILES[:3])  # other molecules: another key, so computed
    other.feature_cache = tmp_path
    with pytest.raises(AssertionError, match="recomputed"):
        reps.store_count_ecfp(other, bits=256)


def test_a_corrupt_cache_file_is_recomputed(tmp_path, capsys):
    store = make_store()
    store.feature_cache = tmp_path
    reps.store_descriptors(store, progress=False)
    (path,) = tmp_path.glob("descriptors-*.pt")
    path.write_bytes(b"not a torch file")
    again = make_store()
    again.feature_cache = tmp_path
    values = reps.store_descriptors(again, progress=False)
    assert values.shape == (len(SMILES), len(reps.descriptor_names()))
    assert "unusable" in capsys.readouterr().err


def test_no_cache_folder_means_memory_only(tmp_path):
    store = make_store()
    assert getattr(store, "feature_cache", None) is None
    reps.store_count_ecfp(store, progress=False)
    assert list(tmp_path.iterdir()) == []
