"""domains/molecules/similarity.py: the molecule encoders' fixed similarity (Tanimoto of ECFP
bits), and ``dkt`` with ``fixed_kernel`` on a molecule encoder."""

from __future__ import annotations

import numpy as np
import torch

from fewshot_apps.core.learners import build_learner
from fewshot_apps.core.learners.gp import DeepKernelGP
from fewshot_apps.domains.molecules.baselines import tanimoto
from fewshot_apps.domains.molecules.encoder import MoleculeEncoder
from fewshot_apps.domains.molecules.fingerprint_encoder import FingerprintEncoder

from .test_representations import SMILES, make_store

torch.set_num_threads(1)


def test_both_encoders_offer_the_tanimoto_of_the_stores_ecfp_bits():
    store = make_store()
    ids = torch.arange(len(SMILES))
    bits = store.fingerprints(ids).numpy()
    expected = tanimoto(bits, bits)
    for enc in (FingerprintEncoder(store, bits=256, hidden=16, out_dim=8),
                MoleculeEncoder(store, hidden=16, depth=1, out_dim=8)):
        assert enc.has_similarity
        got = enc.similarity(ids[:3], ids).numpy()
        np.testing.assert_allclose(got, expected[:3], rtol=1e-6)
        np.testing.assert_array_equal(enc.self_similarity(ids).numpy(), np.ones(len(SMILES)))


def test_dkt_with_the_fixed_kernel_adapts_on_molecules_and_fits_its_weight():
    store = make_store()
    torch.manual_seed(0)
    learner = build_learner("dkt", FingerprintEncoder(store, bits=256, hidden=16, out_dim=8),
                            "classification", fixed_kernel=True, fit_steps=5)
    n = len(SMILES)
    support, query = np.arange(0, n, 2), np.arange(1, n, 2)
    labels = (np.arange(len(support)) % 2).astype(np.float32)
    probs = learner.fit_predict(support, labels, query)
    assert probs.shape == (len(query),) and np.isfinite(probs).all()
    raw = learner.adapt(support, labels).inner.raw
    assert raw.shape == (1, 5) and "fixed_scale" in DeepKernelGP.hyperparameters(raw)
