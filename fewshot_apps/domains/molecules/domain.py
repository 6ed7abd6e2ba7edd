"""The molecule domain: dataset cards of assays -> :class:`MoleculeDataset`."""

from __future__ import annotations

from typing import Any

from fewshot_apps.core.domain import Domain, is_dataset


class MoleculeDomain(Domain):
    """Few-shot molecular property prediction: one task per assay, 0/1 labels."""

    csv_expectation = "a SMILES column (smiles) for molecules"

    def card_for_csv(self, csv):
        """A CSV with a SMILES column: ``smiles,assay,label`` rows, or one 0/1 column per
        assay (format ``molecules-csv``)."""
        from fewshot_apps.errors import DataError
        from fewshot_apps.plain_csv import DELIMITERS
        from fewshot_apps.sources import Card

        from .readers import SMILES_COLUMN_NAMES

        smiles = csv.find(SMILES_COLUMN_NAMES)
        if smiles is None:
            return None
        if csv.delimiter != ",":
            raise DataError(csv.path, f"{DELIMITERS[csv.delimiter]}-separated columns "
                            f"({csv.shown}); a molecule CSV must be comma-separated", row=1)
        return Card(name=csv.name, domain="molecules", format="molecules-csv",
                    root=csv.path.parent, files={"data": csv.path.name}, source=csv.path,
                    title=f"{csv.path.name} (plain CSV of molecules, SMILES column {smiles!r})")

    def load(self, source, **options: Any):
        """A card name, a card (or card.toml path) or a plain CSV of molecules; ``options``
        go to :func:`~fewshot_apps.domains.molecules.dataset.load_molecule_dataset`."""
        from .dataset import load_molecule_dataset

        options.setdefault("progress", False)
        return load_molecule_dataset(source, **options)

    def check_dataset_options(self, options: dict) -> dict:
        """A suite may ask for the molecule-disjoint variant: ``molecules = "shared" |
        "disjoint"`` and ``molecule_seed`` (see
        :mod:`~fewshot_apps.domains.molecules.molecule_split`)."""
        from .molecule_split import check_suite_options

        return check_suite_options(options)

    def describe(self, source, **options: Any) -> str:
        from .inspect import describe

        return describe(self.load(source, **options))

    def dataset_for_model(self, config: dict, path, dataset=None):
        """A molecule model scores the molecules it is given; a data set, when passed, lends
        it its store."""
        return dataset if is_dataset(dataset) else None
