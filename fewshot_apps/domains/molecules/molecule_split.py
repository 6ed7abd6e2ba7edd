"""The molecule-disjoint variant of a molecule data set: molecules split by Bemis–Murcko
scaffold into a training side and a test side.

The PAR / Meta-MGNN protocol splits *assays*: a test assay's molecules are labelled in the
training assays too, so a model can score them from their training labels without the
support set (``label-prior`` shows it). With ``molecules="disjoint"`` the data set keeps
its assay split and also splits its molecules: training tasks hold only training-side
molecules, validation and test tasks only test-side ones (their supports and queries), so
that validation scores the question the test asks. Labels a model may read for a molecule
(``label-prior``, ``label-profile``, the assay profile) come from the training tasks there,
never from a validation task, whose molecules are test molecules too.

The split (:func:`scaffold_split`) groups molecules by scaffold (an acyclic molecule, whose
scaffold is empty, is a group of its own), shuffles the groups with the seed and fills the
test side, group by group, up to ``test_fraction`` of the molecules; a group that would
overfill it goes to the training side. Every molecule of a scaffold is on one side.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem.Scaffolds import MurckoScaffold

from fewshot_apps.core.tasks import derive_seed
from fewshot_apps.errors import FewshotError

#: ``molecules=`` of :func:`~fewshot_apps.domains.molecules.dataset.load_molecule_dataset`:
#: ``shared`` (the published protocol: assays split, molecules shared) or ``disjoint``.
MOLECULE_VARIANTS = ("shared", "disjoint")
#: The loading options a benchmark suite may pass to a molecule data set
#: (``dataset_options``), and what each takes.
SUITE_OPTIONS = {"molecules": " | ".join(map(repr, MOLECULE_VARIANTS)),
                 "molecule_seed": "a whole number (the scaffold split's seed, default 0)",
                 "unseen_by": "a molecule data set's name (its training assays' molecules "
                              "are left out)"}
METHOD = "bemis-murcko-scaffold"
TEST_FRACTION = 0.5


def scaffold_key(smiles: str) -> str:
    """The group of a molecule: its Bemis–Murcko scaffold (canonical SMILES, no
    stereochemistry), or ``acyclic:<smiles>`` for a molecule without rings (each its own
    group), ``unparsed:<smiles>`` for one RDKit cannot read."""
    with rdBase.BlockLogs():
        mol = Chem.MolFromSmiles(smiles)
        if mol is None:
            return f"unparsed:{smiles}"
        scaffold = MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False)
    return scaffold if scaffold else f"acyclic:{Chem.MolToSmiles(mol)}"


def scaffold_groups(smiles: list[str]) -> dict[str, list[int]]:
    """Scaffold key -> the positions of its molecules, keys sorted (the order does not
    depend on the order molecules were read in)."""
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(smiles):
        groups.setdefault(scaffold_key(text), []).append(i)
    return dict(sorted(groups.items()))


@dataclass(frozen=True)
class MoleculeSplit:
    """Which molecules of a store are on the test side.

    Attributes:
        test_side: ``[n_molecules]`` bool, True for a test-side molecule (by store id).
        seed: the seed of the split.
        scaffolds: ``(training side, test side)`` numbers of scaffold groups.
        fingerprint: sha256 (16 hex digits) of the test side's sorted SMILES: two splits
            with the same fingerprint put the same molecules on the test side.
    """

    test_side: np.ndarray
    seed: int
    scaffolds: tuple[int, int]
    fingerprint: str

    @property
    def counts(self) -> tuple[int, int]:
        """``(training side, test side)`` numbers of molecules."""
        n_test = int(self.test_side.sum())
        return len(self.test_side) - n_test, n_test

    def record(self) -> dict:
        """What a saved model remembers of the split (``config.json``'s ``molecule_split``)."""
        n_train, n_test = self.counts
        return {"method": METHOD, "seed": self.seed, "test_fraction": TEST_FRACTION,
                "molecules": {"train": n_train, "test": n_test},
                "scaffolds": {"train": self.scaffolds[0], "test": self.scaffolds[1]},
                "fingerprint": self.fingerprint}


def scaffold_split(smiles: list[str], seed: int = 0,
                   test_fraction: float = TEST_FRACTION) -> MoleculeSplit:
    """Split molecules (a store's canonical SMILES) by scaffold: seeded, deterministic,
    about ``test_fraction`` of them on the test side (short of it by less than the smallest
    group that did not fit: typically exact, as acyclic molecules are groups of one)."""
    if not 0 < test_fraction < 1:
        raise FewshotError(f"scaffold split: test fraction {test_fraction} is not between 0 "
                           "and 1")
    groups = list(scaffold_groups(smiles).values())
    order = np.random.default_rng(derive_seed(seed, "scaffold-split")).permutation(len(groups))
    target = int(round(test_fraction * len(smiles)))
    test_side = np.zeros(len(smiles), dtype=bool)
    n_test = test_groups = 0
    for g in order:
        members = groups[g]
        if n_test + len(members) <= target:
            test_side[members] = True
            n_test += len(members)
            test_groups += 1
    digest = hashlib.sha256("\n".join(sorted(s for s, t in zip(smiles, test_side) if t))
                            .encode()).hexdigest()[:16]
    return MoleculeSplit(test_side=test_side, seed=int(seed),
                         scaffolds=(len(groups) - test_groups, test_groups),
                         fingerprint=digest)


def check_variant(molecules: str, molecule_seed) -> None:
    """FewshotError for a ``molecules`` value other than ``shared`` / ``disjoint``, or a
    seed that is not a whole number."""
    if molecules not in MOLECULE_VARIANTS:
        raise FewshotError(f"molecules={molecules!r}: expected one of "
                           f"{', '.join(map(repr, MOLECULE_VARIANTS))} (shared: the published "
                           "assay split; disjoint: test molecules apart by scaffold)")
    if isinstance(molecule_seed, bool) or not isinstance(molecule_seed, (int, np.integer)):
        raise FewshotError(f"molecule_seed={molecule_seed!r}: expected a whole number")


def check_suite_options(options: dict) -> dict:
    """A suite's ``dataset_options`` for a molecule data set, checked (FewshotError naming
    what molecule data sets accept)."""
    accepted = "; ".join(f"{k} = {v}" for k, v in SUITE_OPTIONS.items())
    unknown = sorted(set(options) - set(SUITE_OPTIONS))
    if unknown:
        raise FewshotError(f"dataset options {', '.join(map(repr, unknown))}: molecule data "
                           f"sets accept {accepted}")
    check_variant(options.get("molecules", "shared"), options.get("molecule_seed", 0))
    other = options.get("unseen_by")
    if other is not None and (not isinstance(other, str) or not other.strip()):
        raise FewshotError(f"dataset option unseen_by must be a molecule data set's name, "
                           f"not {other!r}")
    return dict(options)


def _variant(config: dict) -> tuple[str, dict | None]:
    return config.get("molecules", "shared"), config.get("molecule_split")


def check_model_molecules(model_path, suite: str, model_config: dict,
                          data_config: dict) -> None:
    """FewshotError when a saved model (``model_config``) was trained on another molecule
    variant of this data set (``data_config``: its ``saved_model_config()``) than the one it
    is to be scored on: a ``shared`` model has seen labels of the ``disjoint`` variant's test
    molecules; a ``disjoint`` model trained on half the molecules is not comparable with the
    ``shared`` suite's learners; two ``disjoint`` splits with other seeds put other molecules
    on the test side. Models saved before variants were recorded are ``shared``; a model of
    another data set (by name) is not checked here."""
    if model_config.get("dataset") != data_config.get("dataset"):
        return
    (mine, my_split), (theirs, their_split) = _variant(model_config), _variant(data_config)
    name = data_config.get("dataset")
    where = f"{model_path}: " + (f"suite {suite}: " if suite else "")
    if mine == theirs == "shared":
        return
    if mine == "shared":
        raise FewshotError(
            f"{where}the model was trained on {name} with molecules shared between training "
            f"and test assays; this data set is its molecule-disjoint variant, whose test "
            f"molecules that model has seen labelled in training. Train a model on the "
            f"disjoint variant (a suite with dataset_options = {{ molecules = \"disjoint\" }})")
    if theirs == "shared":
        raise FewshotError(
            f"{where}the model was trained on the molecule-disjoint variant of {name} "
            f"(training-side molecules only); this data set is the published variant "
            f"(molecules shared). Score it on a suite of the disjoint variant "
            f"(dataset_options = {{ molecules = \"disjoint\" }})")
    if (my_split or {}).get("fingerprint") != (their_split or {}).get("fingerprint"):
        raise FewshotError(
            f"{where}the model was trained on another molecule-disjoint split of {name} "
            f"(seed {(my_split or {}).get('seed')}) than this data set's (seed "
            f"{(their_split or {}).get('seed')}): some of this split's test molecules may be "
            "among its training molecules")


__all__ = ["METHOD", "MOLECULE_VARIANTS", "SUITE_OPTIONS", "MoleculeSplit",
           "check_model_molecules", "check_suite_options", "check_variant", "scaffold_groups",
           "scaffold_key", "scaffold_split"]
