"""Suites pass ``dataset_options`` through to the domain's loader: the composite suite
``tox21-disjoint`` runs Tox21's k-shot suite on the published split and on its
molecule-disjoint variant, whose rows, models, plots and report sections stay apart
(``dataset`` ``tox21`` / ``tox21:disjoint``); a model is scored on the variant it was
trained on only."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import fewshot_apps as fa
from fewshot_apps.bench.runner import evaluate_saved_model, run_suite
from fewshot_apps.bench.suites import load_suites
from fewshot_apps.errors import CardError, FewshotError

LEARNERS = ["rf", "label-prior", "protonet"]
VARIANTS = {"tox21", "tox21:disjoint"}

SMOKE = """
[presets.smoke]
steps = 2
draws = 1
seeds = [0]
max_test_tasks = 1
query_limit = 300
settings = { "encoder.hidden" = 8, "encoder.depth" = 1, "encoder.out_dim" = 8, "eval_every" = 2, "valid_draws" = 1 }
"""


def suite_file(path, body: str):
    path.write_text(body + SMOKE)
    return path


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    out = tmp_path_factory.mktemp("tox21-disjoint")
    run_suite("tox21-disjoint", out, learners=LEARNERS, preset="smoke", device="cpu",
              progress=False)
    return out


def test_the_suite_has_the_published_part_and_its_disjoint_variant():
    shared, disjoint = load_suites("tox21-disjoint", "full")
    tox21 = load_suites("tox21", "full")[0]
    assert (shared.label, disjoint.label) == ("tox21", "tox21:disjoint")
    assert shared.dataset == disjoint.dataset == "tox21"
    assert disjoint.dataset_options == {"molecules": "disjoint"} and not shared.dataset_options
    assert shared.learners == disjoint.learners == tox21.learners
    assert "label-prior" in tox21.learners
    assert shared.shots == disjoint.shots == tox21.shots and shared.protocol == "k-shot"
    assert (shared.published, disjoint.published) == ("par", "none")
    assert "label-profile" in tox21.learners
    for preset in ("smoke", "fast", "full"):
        published, variant = (part.preset for part in load_suites("tox21-disjoint", preset))
        assert published == load_suites("tox21", preset)[0].preset
        # the disjoint part's own settings: no assay profile (its test molecules have none)
        assert variant.settings == {**published.settings, "encoder.assay_profile": False}
        assert (variant.steps, variant.draws, variant.seeds) == (published.steps,
                                                                 published.draws,
                                                                 published.seeds)


def test_tox21_compares_with_several_named_baselines(tmp_path):
    assert load_suites("tox21", "full")[0].baseline == ["label-prior", "finetune", "rf"]
    bad = suite_file(tmp_path / "bad.toml", 'name = "b"\ndataset = "tox21"\n'
                     'protocol = "k-shot"\nlearners = ["rf"]\nbaseline = []\n')
    with pytest.raises(CardError, match="baseline must be a learner's name or a non-empty"):
        load_suites(str(bad), "smoke")


def test_a_part_overrides_preset_settings_and_rejects_a_non_table(tmp_path):
    body = 'name = "two"\nparts = ["tox21", "other"]\n[part.other]\nsuite = "tox21"\n' \
           'dataset_options = { molecules = "disjoint" }\n'
    good = suite_file(tmp_path / "two.toml", body + 'settings = { "lr" = 0.01 }\n')
    first, second = load_suites(str(good), "smoke")
    assert "lr" not in first.preset.settings and second.preset.settings["lr"] == 0.01
    assert second.preset.settings["encoder.hidden"] == 8  # the preset's, kept
    bad = suite_file(tmp_path / "bad.toml", body + 'settings = "lr=0.01"\n')
    with pytest.raises(CardError, match=r"\[part.other\]: settings must be a table"):
        load_suites(str(bad), "smoke")


def test_both_variants_write_their_rows(both):
    results = pd.read_csv(both / "results.csv")
    assert set(results["dataset"]) == VARIANTS
    for label in VARIANTS:
        assert set(results.loc[results["dataset"] == label, "learner"]) == set(LEARNERS)
    auc = results[(results["metric"] == "roc_auc") & (results["learner"] == "label-prior")]
    # the disjoint variant's test molecules were never labelled in training: one score each
    assert (auc.loc[auc["dataset"] == "tox21:disjoint", "value"] == 0.5).all()
    assert (auc.loc[auc["dataset"] == "tox21", "value"] > 0.6).all()
    summary = pd.read_csv(both / "summary.csv")
    assert set(zip(summary["dataset"], summary["learner"])) == {
        (d, n) for d in VARIANTS for n in LEARNERS}
    timings = json.loads((both / "timings.json").read_text())
    assert {"tox21-disjoint|tox21:disjoint|rf", "tox21-disjoint|tox21|rf"} <= set(timings)
    parts = json.loads((both / "run.json").read_text())["parts"]
    assert [(p["dataset"], p.get("dataset_options")) for p in parts] == [
        ("tox21", None), ("tox21:disjoint", {"molecules": "disjoint"})]


def test_the_report_shows_both_and_quotes_published_rows_for_the_published_one(both):
    report = (both / "report.md").read_text()
    shared_at = report.index("## tox21 (k-shot protocol)")
    disjoint_at = report.index(
        "## tox21:disjoint (k-shot protocol; data set tox21 loaded with molecules = disjoint)")
    assert report.count("### Published (not measured here)") == 1
    assert shared_at < report.index("### Published (not measured here)") < disjoint_at
    assert (both / "plot_tox21_roc_auc.png").exists()
    assert (both / "plot_tox21-disjoint_roc_auc.png").exists()
    assert "tox21:disjoint (k-shot protocol" in (both / "report.html").read_text()
    comparisons = pd.read_csv(both / "comparisons.csv")
    assert set(comparisons["dataset"]) == VARIANTS
    # the suite names label-prior, finetune and rf; this run has no finetune: each heading
    # names the ones it compares with besides the best
    headings = [line for line in report.splitlines() if line.startswith("### Paired")]
    assert len(headings) == 2 and all("finetune" not in h for h in headings)
    assert all(h.startswith("### Paired comparison with the best baseline and with `")
               for h in headings)
    assert set(comparisons["baseline"]) == {"rf", "label-prior"}


def test_models_of_each_variant_have_their_folder_and_record_it(both):
    for folder, variant in (("tox21", "shared"), ("tox21-disjoint", "disjoint")):
        config = json.loads((both / "models" / folder / "protonet" / "config.json").read_text())
        assert config["molecules"] == variant


def test_a_rerun_continues_by_variant(both):
    before = (both / "results.csv").read_text()
    run_suite("tox21-disjoint", both, learners=LEARNERS, preset="smoke", device="cpu",
              progress=False)
    assert (both / "results.csv").read_text() == before


def test_a_model_is_scored_on_its_own_variant_only(both, tmp_path):
    disjoint_suite = suite_file(tmp_path / "tox21-mol-disjoint.toml", """
name = "tox21-mol-disjoint"
dataset = "tox21"
protocol = "k-shot"
shots = [10]
learners = ["protonet"]
dataset_options = { molecules = "disjoint" }
""")
    shared_model = both / "models" / "tox21" / "protonet"
    disjoint_model = both / "models" / "tox21-disjoint" / "protonet"
    with pytest.raises(FewshotError, match="trained on tox21 with molecules shared"):
        evaluate_saved_model(shared_model, str(disjoint_suite), tmp_path / "a", preset="smoke")
    with pytest.raises(FewshotError, match="trained on the molecule-disjoint variant"):
        evaluate_saved_model(disjoint_model, "tox21", tmp_path / "b", preset="smoke")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    summary = evaluate_saved_model(disjoint_model, str(disjoint_suite), tmp_path / "c",
                                   preset="smoke")
    assert set(summary["dataset"]) == {"tox21:disjoint"}
    # loading a model with a data set of the other variant is refused too
    ds = fa.load_dataset("tox21", molecules="disjoint")
    with pytest.raises(FewshotError, match="trained on tox21 with molecules shared"):
        fa.load_model(shared_model, dataset=ds)
    assert fa.load_model(disjoint_model, dataset=ds).encoder.store is ds.store


def test_options_are_checked_by_the_domain_before_anything_is_written(tmp_path):
    typo = suite_file(tmp_path / "typo.toml", """
name = "typo"
dataset = "tox21"
protocol = "k-shot"
learners = ["rf"]
dataset_options = { molecule = "disjoint" }
""")
    with pytest.raises(FewshotError, match="'molecule': molecule data sets accept molecules = "
                                           "'shared' | 'disjoint'"):
        run_suite(str(typo), tmp_path / "out", preset="smoke", device="cpu", progress=False)
    ratings = suite_file(tmp_path / "ratings.toml", """
name = "ratings"
dataset = "movielens-latest-small"
protocol = "cold-start"
learners = ["mf"]
dataset_options = { molecules = "disjoint" }
""")
    with pytest.raises(FewshotError, match="'molecules': rating data sets accept none"):
        run_suite(str(ratings), tmp_path / "out", preset="smoke", device="cpu", progress=False)
    assert not (tmp_path / "out").exists()


def test_suite_files_with_bad_dataset_options_are_refused(tmp_path):
    nested = suite_file(tmp_path / "nested.toml", """
name = "nested"
dataset = "tox21"
protocol = "k-shot"
learners = ["rf"]
dataset_options = { molecules = { kind = "disjoint" } }
""")
    with pytest.raises(CardError, match="dataset_options must be a table of option = value"):
        load_suites(str(nested), "smoke")
    twice = suite_file(tmp_path / "twice.toml", """
name = "twice"
parts = ["tox21", "again"]

[part.again]
suite = "tox21"
""")
    with pytest.raises(CardError, match="parts tox21 would write the same rows"):
        load_suites(str(twice), "smoke")
