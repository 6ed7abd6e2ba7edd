import numpy as np
import torch
from rdkit import Chem

from fewshot_apps.domains.molecules.dataset import load_molecule_dataset
from fewshot_apps.domains.molecules.featurizer import (
    ATOM_FEATURES,
    FeaturizerConfig,
    featurize_parallel,
    featurize_smiles,
    parse_smiles,
)
from fewshot_apps.domains.molecules.store import MoleculeStore


def test_graph_shapes_and_ecfp():
    feats = featurize_smiles(["CCO", "c1ccccc1", "not a smiles"])
    assert feats["num_nodes"].tolist() == [3, 6, 0]
    assert feats["num_edges"].tolist() == [4, 12, 0]  # both directions
    assert feats["x"].shape == (9, len(ATOM_FEATURES))
    assert feats["errors"][2] and feats["canonical"][2] is None
    bits = np.unpackbits(feats["ecfp"], axis=1)
    assert bits.shape == (3, 2048) and bits[0].sum() > 0 and bits[2].sum() == 0
    # ECFP equals RDKit's own Morgan generator (radius 2, 2048 bits).
    from rdkit.Chem import rdFingerprintGenerator

    ref = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048).GetFingerprintAsNumPy(
        Chem.MolFromSmiles("c1ccccc1")
    )
    np.testing.assert_array_equal(bits[1], ref)


def test_parallel_equals_serial():
    smiles = ["CCO", "CCN", "C1CC", "c1ccncc1", "CC(=O)O"] * 5
    a = featurize_smiles(smiles)
    b = featurize_parallel(smiles, workers=2, chunk_size=4, progress=False)
    for key in ("x", "edge_index", "edge_attr", "num_nodes", "ecfp"):
        np.testing.assert_array_equal(a[key], b[key])
    assert a["errors"] == b["errors"]


def test_recover_valence_fallback_is_opt_in():
    smiles = "O=[PH](=O)O"
    mol, reason, _ = parse_smiles(smiles)
    assert mol is None and "valence" in reason
    mol, reason, flag = parse_smiles(smiles, FeaturizerConfig(recover_valence=True))
    assert mol is not None and flag == "recovered"


def test_each_rejected_smiles_gets_its_own_reason_after_a_recovery_or_a_failed_one():
    config = FeaturizerConfig(recover_valence=True)
    feats = featurize_smiles(["[PH](=O)(=O)C", "xyz", "C1CC", "abc", "CCO", "qq"], config)
    assert feats["flags"][0] == "recovered" and feats["errors"][0] is None
    assert feats["errors"][1] == "SMILES Parse Error: syntax error while parsing: xyz"
    assert feats["errors"][2] == "SMILES Parse Error: unclosed ring for input: 'C1CC'"
    assert feats["errors"][3] == "SMILES Parse Error: syntax error while parsing: abc"
    assert feats["errors"][4] is None
    assert feats["errors"][5] == "SMILES Parse Error: syntax error while parsing: qq"


def test_store_batch_matches_single_graphs():
    feats = featurize_smiles(["CCO", "c1ccccc1", "CC(=O)N"])
    store = MoleculeStore.from_featurized(feats, np.array([0, 1, 2]))
    batch = store.batch([2, 0, 2])
    assert batch.num_graphs == 3
    assert batch.x.shape[0] == 4 + 3 + 4
    g = store.graph(2)
    torch.testing.assert_close(batch.x[:4], g.x)
    torch.testing.assert_close(batch.edge_index[:, : g.edge_index.shape[1]], g.edge_index)
    # The third graph's edges point into its own node range.
    last = batch.edge_index[:, batch.batch[batch.edge_index[0]] == 2]
    assert last.min() >= 7 and last.max() < 11
    assert store.fingerprints([0, 1]).shape == (2, 2048)


def test_cache_reused_and_invalidated(tmp_path):
    csv = tmp_path / "a.csv"
    csv.write_text("smiles,A,B\nCCO,1,0\nCCN,0,1\nCCC,1,0\n")
    kw = dict(cache_dir=tmp_path / "cache", progress=False, workers=1, test_assays=["B"])
    first = load_molecule_dataset(csv, **kw)
    assert first.timings["all"]["source"] == "featurized"
    assert load_molecule_dataset(csv, **kw).timings["all"]["source"] == "cache"
    # A changed featurizer setting or a changed file never reuses the cache.
    other = load_molecule_dataset(csv, featurizer=FeaturizerConfig(ecfp_bits=1024), **kw)
    assert other.timings["all"]["source"] == "featurized" and other.store.ecfp_bits == 1024
    csv.write_text("smiles,A,B\nCCO,1,0\nCCN,0,1\nCCCC,1,0\n")
    changed = load_molecule_dataset(csv, **kw)
    assert changed.timings["all"]["source"] == "featurized"
    assert "CCCC" in changed.store.smiles
    # A corrupt cache file is rebuilt, not trusted.
    for f in (tmp_path / "cache").rglob("*.pt"):
        f.write_bytes(b"garbage")
    assert load_molecule_dataset(csv, **kw).timings["all"]["source"] == "featurized"
