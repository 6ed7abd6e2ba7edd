"""domains/molecules/domain.py: MoleculeDomain claims a plain CSV by its SMILES header
(comma-separated only), leaves any other CSV to another domain, and lends a passed data set
to a loaded model."""

from __future__ import annotations

from pathlib import Path

import pytest

from fewshot_apps.core.domain import get_domain
from fewshot_apps.domains.molecules.domain import MoleculeDomain
from fewshot_apps.errors import DataError
from fewshot_apps.plain_csv import PlainCSV


def plain(columns: list[str], delimiter: str = ",", name: str = "assays") -> PlainCSV:
    return PlainCSV(path=Path("/work/data") / f"{name}.csv", name=name, columns=columns,
                    delimiter=delimiter, shown=", ".join(repr(c) for c in columns))


def test_it_is_the_registered_molecules_domain():
    domain = get_domain("molecules")
    assert isinstance(domain, MoleculeDomain) and domain.name == "molecules"
    assert "SMILES" in domain.csv_expectation


@pytest.mark.parametrize("column", ["smiles", "SMILES", "canonical_smiles", "Smi", "mol"])
def test_a_smiles_header_is_claimed_as_a_molecule_csv(column):
    card = MoleculeDomain().card_for_csv(plain([column, "assay", "label"]))
    assert (card.name, card.domain, card.format) == ("assays", "molecules", "molecules-csv")
    assert card.root == Path("/work/data") and card.files == {"data": "assays.csv"}
    assert card.source == Path("/work/data/assays.csv") and card.path("data") == card.source
    assert card.title == f"assays.csv (plain CSV of molecules, SMILES column {column!r})"


def test_a_wide_header_is_claimed_too():
    card = MoleculeDomain().card_for_csv(plain(["mol_id", "smiles", "NR-AR", "SR-MMP"]))
    assert card is not None and card.format == "molecules-csv"


@pytest.mark.parametrize("delimiter,name", [(";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_a_smiles_header_with_another_delimiter_is_refused(delimiter, name):
    csv = plain(["smiles", "assay", "label"], delimiter=delimiter)
    with pytest.raises(DataError) as caught:
        MoleculeDomain().card_for_csv(csv)
    err = caught.value
    assert err.path == csv.path and err.row == 1
    assert err.problem == (f"{name}-separated columns ('smiles', 'assay', 'label'); a molecule "
                           "CSV must be comma-separated")


@pytest.mark.parametrize("columns", [["user", "item", "rating"], ["compound", "activity"], []])
def test_any_other_header_is_not_claimed(columns):
    assert MoleculeDomain().card_for_csv(plain(columns)) is None
    assert MoleculeDomain().card_for_csv(plain(columns, delimiter=";")) is None


def test_nothing_to_say_about_what_another_csv_lacks():
    assert MoleculeDomain().csv_missing(plain(["user", "item"])) is None


def test_a_model_gets_a_passed_data_set_and_nothing_else():
    class Loaded:
        domain = "molecules"

        def saved_model_config(self):
            return {}

    ds = Loaded()
    domain = MoleculeDomain()
    assert domain.dataset_for_model({}, "model", ds) is ds
    assert domain.dataset_for_model({"dataset": "tox21"}, "model", None) is None
    assert domain.dataset_for_model({}, "model", "tox21") is None  # a name is not loaded
