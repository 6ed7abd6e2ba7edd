"""domains/molecules/label_prior.py: scoring molecules by their labels in the non-test
tasks, without the support set."""

from __future__ import annotations

import numpy as np
import pytest

import fewshot_apps as fa
from fewshot_apps.core.evaluation import mean_over_tasks
from fewshot_apps.domains.molecules.label_prior import LabelPriorBaseline


def test_scores_are_the_training_label_means_and_ignore_the_support(tmp_path):
    csv = tmp_path / "assays.csv"
    # a: CCO active in A and B; CCN inactive in A, active in B; CCC only in test assay T
    csv.write_text("smiles,assay,label\nCCO,A,1\nCCN,A,0\nCCO,B,1\nCCN,B,1\nCCCl,B,0\n"
                   "CCO,T,1\nCCN,T,0\nCCC,T,1\nCCCl,T,0\n")
    ds = fa.load_dataset(csv, test_assays=["T"], workers=1)
    model = ds.build_baseline("label-prior")
    ids = {smi: i for smi, i in zip(ds.measurements["smiles"], ds.measurements["mol"])}
    query = [ids["CCO"], ids["CCN"], ids["CCC"], ids["CCCl"]]
    scores = model.fit_predict([ids["CCO"]], [0], query)
    # CCC was never measured outside T: the non-test labels' mean (3 of 5 active)
    np.testing.assert_allclose(scores, [1.0, 0.5, 0.6, 0.0])
    again = model.fit_predict([ids["CCN"], ids["CCO"]], [1, 0], query)  # another support
    np.testing.assert_array_equal(scores, again)


def test_it_is_a_benchmark_baseline_not_a_predict_model():
    from fewshot_apps.domains.molecules.baselines import classic_baseline_names

    assert "label-prior" not in classic_baseline_names()  # `mol predict` has no training tasks
    with pytest.raises(fa.FewshotError, match="molecule ids outside"):
        LabelPriorBaseline(np.zeros(3)).fit_predict([], [], [5])


def test_tox21_published_split_is_scored_well_without_any_support(data_dir):
    """The assay-split protocol rewards the prior: 10-shot ROC-AUC ~0.767 on Tox21's three
    test assays (published ProtoNet: 0.750), with no support set and no model."""
    ds = fa.load_dataset("tox21", data_dir=data_dir)
    results, _ = ds.evaluate("k-shot", ds.build_baseline("label-prior"), shots=(10,),
                             draws=3, seeds=(0,))
    per_task = results[results["metric"] == "roc_auc"].groupby("task")["value"].mean()
    assert set(per_task.index) == {"SR-HSE", "SR-MMP", "SR-p53"}
    assert 0.76 < mean_over_tasks(results, "roc_auc") < 0.775
