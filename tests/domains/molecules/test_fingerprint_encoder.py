"""domains/molecules/fingerprint_encoder.py: the sparse count-ECFP (+ descriptor) encoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fewshot_apps.core.encoders import supports_last_layer_split
from fewshot_apps.domains.molecules.encoder import MoleculeEncoder
from fewshot_apps.domains.molecules.fingerprint_encoder import FingerprintEncoder
from fewshot_apps.domains.molecules.representations import (
    descriptors,
    store_count_ecfp,
    store_descriptors,
)
from fewshot_apps.errors import FewshotError

from .test_representations import SMILES, make_store

SMALL = dict(bits=256, hidden=32, out_dim=8)


def encoder(store=None, seed=0, **kw) -> FingerprintEncoder:
    torch.manual_seed(seed)
    return FingerprintEncoder(make_store() if store is None else store, **{**SMALL, **kw}).eval()


def test_the_sparse_layer_equals_a_dense_layer_over_log_counts():
    enc = encoder()
    ids = torch.tensor([4, 0, 2, 2])
    counts = store_count_ecfp(enc.store, bits=256).dense(ids)
    first = torch.log1p(counts) @ enc.branch.bag.weight + enc.branch.bias
    expected = enc.last(torch.relu(enc.branch.norm(first)))
    torch.testing.assert_close(enc(ids), expected)
    assert enc(ids).shape == (4, 8) and supports_last_layer_split(enc)


def test_depth_adds_hidden_blocks():
    shallow, deep = encoder(), encoder(depth=3)
    assert len(shallow.blocks) == 0 and len(deep.blocks) == 2
    assert deep(torch.arange(3)).shape == (3, 8)
    with pytest.raises(FewshotError, match="depth"):
        encoder(depth=0)


def test_bits_mode_ignores_counts():
    enc = encoder(counts=False)
    ids = torch.tensor([2])
    bits = (store_count_ecfp(enc.store, bits=256).dense(ids) > 0).float()
    first = bits @ enc.branch.bag.weight + enc.branch.bias
    torch.testing.assert_close(enc.forward_trunk(ids), torch.relu(enc.branch.norm(first)))


def test_the_first_layer_gradient_touches_only_set_bits():
    enc = encoder()
    enc(torch.tensor([0])).sum().backward()
    touched = enc.branch.bag.weight.grad.abs().sum(1) > 0
    set_bits = store_count_ecfp(enc.store, bits=256).dense(torch.tensor([0]))[0] > 0
    assert torch.equal(touched, set_bits)


def test_descriptors_are_normalized_on_the_given_training_molecules_only():
    enc = encoder(descriptors=True)
    train = torch.tensor([0, 1, 2])
    enc.fit_normalization(train)
    values = descriptors(SMILES)
    expected = torch.nanquantile(values[train], 0.5, dim=0)
    torch.testing.assert_close(enc.branch.descriptor_center, expected)
    # The unseen molecules moved nothing: refitting on all of them changes the center.
    enc.fit_normalization(torch.arange(len(SMILES)))
    assert not torch.allclose(enc.branch.descriptor_center, expected)


def test_descriptors_change_the_embedding():
    plain, with_descriptors = encoder(seed=1), encoder(seed=1, descriptors=True)
    with_descriptors.fit_normalization(torch.arange(len(SMILES)))
    with torch.no_grad():
        with_descriptors.branch.descriptor_layer.weight.normal_()
    ids = torch.arange(len(SMILES))
    assert not torch.allclose(plain(ids), with_descriptors(ids))


def test_config_round_trip_keeps_weights_and_normalization(tmp_path):
    enc = encoder(descriptors=True)
    enc.fit_normalization(torch.tensor([0, 1, 2, 3]))
    torch.save(enc.state_dict(), tmp_path / "w.pt")
    again = FingerprintEncoder.from_config(enc.config(), make_store()).eval()
    again.load_state_dict(torch.load(tmp_path / "w.pt", weights_only=True))
    ids = torch.arange(len(SMILES))
    torch.testing.assert_close(again(ids), enc(ids))
    assert again.config() == enc.config() and enc.config()["name"] == "molecule-fingerprint"


def test_a_store_of_other_molecules_is_encoded():
    enc = encoder()
    enc.set_store(make_store(["CCCC", "c1ccncc1"]))
    assert enc(torch.tensor([0, 1])).shape == (2, 8)
    enc.set_store(None)
    with pytest.raises(FewshotError, match="set_store"):
        enc(torch.tensor([0]))


def test_settings_are_parsed_and_a_typo_is_refused():
    settings = FingerprintEncoder.parse_settings({"hidden": "64", "descriptors": "true"})
    assert settings["hidden"] == 64 and settings["descriptors"] is True
    with pytest.raises(FewshotError, match="hiden"):
        FingerprintEncoder.parse_settings({"hiden": "64"})


def test_fused_encoder_concatenates_the_count_branch():
    torch.manual_seed(0)
    store = make_store()
    enc = MoleculeEncoder(store, hidden=16, depth=1, out_dim=8, ecfp_hidden=12, ecfp_bits=256,
                          fingerprint="counts", descriptors=True).eval()
    enc.fit_normalization(torch.arange(len(SMILES)))
    assert enc.ecfp_mlp is None and enc.fingerprint_branch is not None
    assert enc.forward_trunk(torch.arange(3)).shape == (3, 16 + 12)
    config = enc.config()
    assert config["fingerprint"] == "counts" and config["descriptors"] is True
    again = MoleculeEncoder.from_config(config, store).eval()
    again.load_state_dict(enc.state_dict())
    torch.testing.assert_close(again(torch.arange(5)), enc(torch.arange(5)))


def test_the_default_gnn_config_is_unchanged():
    """Saved models of the default encoder keep their config keys (no new ones)."""
    enc = MoleculeEncoder(make_store())
    assert set(enc.config()) == {"name", "hidden", "depth", "out_dim", "pooling", "norm",
                                 "dropout", "use_ecfp", "ecfp_bits", "ecfp_hidden"}


@pytest.mark.parametrize("bad, match", [
    (dict(fingerprint="dense"), "fingerprint must be"),
    (dict(descriptors=True), "descriptors need the count"),
    (dict(use_ecfp=False, fingerprint="counts", descriptors=True), "descriptors need"),
])
def test_bad_fused_settings_are_refused(bad, match):
    with pytest.raises(FewshotError, match=match):
        MoleculeEncoder(make_store(), **bad)


def test_make_encoder_picks_the_kind_and_fits_on_training_molecules(data_dir):
    from fewshot_apps.domains.molecules.dataset import load_molecule_dataset

    ds = load_molecule_dataset("tox21", progress=False)
    enc = ds.make_encoder({"kind": "fingerprint", "descriptors": "true", "hidden": "32",
                           "out_dim": "8"})
    assert isinstance(enc, FingerprintEncoder)
    train = np.unique(np.concatenate([t.examples for t in ds.taskset.train]))
    values = store_descriptors(ds.store)[torch.as_tensor(train)]
    torch.testing.assert_close(enc.branch.descriptor_center,
                               torch.nanquantile(values, 0.5, dim=0).nan_to_num(0.0))
    assert isinstance(ds.make_encoder({}), MoleculeEncoder)
    with pytest.raises(FewshotError, match="encoder.kind"):
        ds.make_encoder({"kind": "transformer"})
    # The descriptors were cached beside the data set's units.
    assert list(ds.store.feature_cache.glob("descriptors-*.pt"))
