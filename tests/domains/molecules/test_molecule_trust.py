"""Molecule inputs one can trust: `data inspect` on data sets RDKit rejects nothing of, the
ToxCast validation split its card describes, `mol train`'s split options for your own CSV,
and light commands that answer before torch loads."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from fewshot_apps.cli import main
from fewshot_apps.domains.molecules import dataset as dataset_module
from fewshot_apps.domains.molecules.dataset import load_molecule_dataset
from fewshot_apps.sources import load_card

COMMA_TASK = "Injury, poisoning and procedural complications"
CARDS = Path(__file__).resolve().parents[3] / "datasets"


def test_inspect_a_card_whose_smiles_rdkit_all_accepts(tmp_path, capsys):
    """SIDER and ToxCast hit a KeyError: with nothing rejected the table had no columns."""
    (tmp_path / "mini.csv").write_text(
        f'smiles,Eye disorders,"{COMMA_TASK}",Cardiac disorders\n'
        "CCO,1,0,1\nCCN,0,1,0\nCCC,1,1,0\nCCCl,0,0,1\n")
    card = tmp_path / "mini.toml"
    card.write_text('name = "mini"\ndomain = "molecules"\nformat = "moleculenet-csv"\n'
                    '[files]\ndata = "mini.csv"\n'
                    '[split]\nmethod = "task-index"\ntrain = "0"\ntest = "1-2"\n')
    assert main(["data", "inspect", str(card), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "rejected by RDKit: 0 rows (0 unique SMILES)" in out
    assert f'test tasks: "{COMMA_TASK}", Cardiac disorders' in out  # its comma is not a list's
    assert "validation tasks (held out of training): none" in out


def _toxcast_like(folder, n_rows=160):
    """A file shaped like MoleculeNet's ToxCast: 617 assay columns, 99 of them with fewer
    than 150 labels: 88 below index 450, 32 of those in 414-449 (as in the public file, where
    the sparse NVS assays sit just below 450), and 11 from 450 on."""
    sparse = set(range(414, 446)) | set(range(0, 56)) | set(range(450, 461))
    rng = np.random.default_rng(0)
    smiles = [("C" * i) + end for end in ("O", "N") for i in range(1, n_rows // 2 + 1)]
    columns = []
    for task in range(617):
        labels = rng.integers(0, 2, n_rows).astype(str).astype(object)
        if task in sparse:
            labels[100:] = ""  # 100 labels: dropped by min_labels = 150
        columns.append(labels)
    header = ",".join(f"TOX_{i:03d}" for i in range(617)) + ",smiles"
    lines = [header] + [",".join(col[r] for col in columns) + f",{smiles[r]}"
                        for r in range(n_rows)]
    path = folder / "moleculenet" / "toxcast_data.csv.gz"
    path.parent.mkdir(parents=True)
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return sparse


def test_toxcast_card_holds_out_the_validation_tasks_its_comment_counts(tmp_path):
    sparse = _toxcast_like(tmp_path)
    text = (CARDS / "toxcast.toml").read_text()
    found = re.search(r"< 450 train \((\d+) tasks\), >= 450 test \((\d+) tasks\)\. The (\d+) "
                      r"kept training tasks of\s*#?\s*highest index are held out", text)
    assert found, "the card's comment no longer states the split's counts"
    n_train, n_test, n_valid = map(int, found.groups())
    ds = load_molecule_dataset(load_card("toxcast", data_dir=tmp_path), progress=False,
                               workers=1)
    split = ds.split
    assert len(split["train"]) + len(split["valid"]) == n_train == 362
    assert len(split["test"]) == n_test == 156
    assert len(split["valid"]) == n_valid == 36  # not the 4 kept tasks of index 414-449
    index = {f"TOX_{i:03d}": i for i in range(617)}
    kept_train = [i for i in range(450) if i not in sparse]
    assert sorted(index[t] for t in split["valid"]) == kept_train[-36:]
    assert max(index[t] for t in split["train"]) < min(index[t] for t in split["valid"])


def test_mol_train_takes_the_split_of_your_own_csv(tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(1)
    names = ["A1", "A2", COMMA_TASK, "A4", "A5", "A6"]
    rows = [f"{'C' * i}{end}," + ",".join(str(v) for v in rng.integers(0, 2, len(names)))
            for end in ("O", "N") for i in range(1, 13)]
    own = tmp_path / "own.csv"
    own.write_text("smiles," + ",".join(f'"{n}"' for n in names) + "\n" + "\n".join(rows) + "\n")
    loaded = []

    def spy(*args, **kwargs):
        loaded.append(load_molecule_dataset(*args, **kwargs))
        return loaded[-1]

    monkeypatch.setattr(dataset_module, "load_molecule_dataset", spy)
    settings = ["--set", "steps=1", "--set", "eval_every=1", "--set", "encoder.hidden=8",
                "--set", "encoder.depth=1", "--set", "encoder.out_dim=8"]
    assert main(["mol", "train", "--dataset", str(own), "--learner", "protonet", "--out",
                 str(tmp_path / "run"), "--device", "cpu", "--quiet", *settings,
                 "--test-assay", COMMA_TASK, "--test-assay", "A6", "--split-seed", "3"]) == 0
    assert loaded[-1].split["test"] == [COMMA_TASK, "A6"]
    assert main(["mol", "train", "--dataset", str(own), "--learner", "protonet", "--out",
                 str(tmp_path / "run2"), "--device", "cpu", "--quiet", *settings,
                 "--test-fraction", "0.5"]) == 0
    assert len(loaded[-1].split["test"]) == 3
    capsys.readouterr()
    # A card's split is fixed: naming test assays for it is an error, not silently ignored.
    assert main(["mol", "train", "--dataset", "tox21", "--learner", "protonet", "--out",
                 str(tmp_path / "run3"), "--test-assays", "SR-p53"]) == 2
    assert "not for 'tox21': its card fixes the split" in capsys.readouterr().err


LIGHT = r"""
import json, sys
from fewshot_apps.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    try:
        rc = main(argv)
    except SystemExit as exc:  # --help
        rc = exc.code
    results.append([rc, "torch" in sys.modules])
print(json.dumps(results))
"""


def test_light_commands_answer_before_torch_loads(tmp_path):
    files = {"empty.csv": "", "one_class.csv": "smiles,label\nCCO,1\nCCN,1\n",
             "label2.csv": "smiles,label\nCCO,1\nCCN,2\n", "no_smiles.csv": "name,label\nx,1\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    query = tmp_path / "q.csv"
    query.write_text("smiles\nCCO\n")
    runs = [["mol", "predict", "--support", str(tmp_path / "nonexistent.csv"),
             "--query", str(query)]]
    runs += [["mol", "predict", "--support", str(tmp_path / name), "--query", str(query)]
             for name in files]
    runs += [["mol", "predict", "--support", str(tmp_path / "one_class.csv"),
              "--query", str(tmp_path / "nonexistent.csv")]]
    runs += [["--help"], ["data", "list"], ["mol", "predict", "--help"]]
    out = subprocess.run([sys.executable, "-c", LIGHT, json.dumps(runs)], capture_output=True,
                         text=True, check=True)
    results = json.loads(out.stdout.strip().splitlines()[-1])
    assert [rc for rc, _ in results] == [2] * 6 + [0] * 3, out.stderr
    assert not any(torch for _, torch in results), "torch was imported"
    assert out.stderr.count("error: ") == 6 and "Traceback" not in out.stderr
