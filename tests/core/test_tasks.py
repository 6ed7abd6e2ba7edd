import numpy as np
import pytest

from fewshot_apps.core.tasks import (
    BalancedSampler,
    RandomSampler,
    StratifiedSampler,
    Task,
    TaskTooSmallError,
    UnusableDrawError,
    derive_seed,
    sample_episodes,
)


def make_task(n_pos: int, n_neg: int, name: str = "t") -> Task:
    labels = np.array([1] * n_pos + [0] * n_neg, dtype=np.float32)
    return Task(name, np.arange(100, 100 + len(labels)), labels)


def test_random_sampler_sizes_and_disjoint():
    task = make_task(20, 30)
    ep = RandomSampler(5, 10).sample(task, 0)
    assert len(ep.support_index) == 5 and len(ep.query_index) == 10
    assert not set(ep.support_index) & set(ep.query_index)
    np.testing.assert_array_equal(ep.support_examples, task.examples[ep.support_index])
    rest = RandomSampler(5).sample(task, 0)
    assert len(rest.query_index) == 45


def test_balanced_sampler_k_of_each_class_query_rest():
    task = make_task(12, 40)
    ep = BalancedSampler(10).sample(task, 1)
    assert ep.support_labels.sum() == 10 and len(ep.support_labels) == 20
    assert len(ep.query_index) == len(task) - 20
    with pytest.raises(TaskTooSmallError, match="'t' has 12 positives"):
        BalancedSampler(13).sample(task, 1)


def test_stratified_keeps_ratio_and_skips_one_class_query():
    task = make_task(30, 70)
    ep = StratifiedSampler(16).sample(task, 3)
    assert abs(ep.support_labels.sum() - 16 * 0.3) <= 1
    assert len(ep.query_index) == 84
    tiny = make_task(2, 30)  # support takes 1 positive, query keeps 1: fine
    StratifiedSampler(16).sample(tiny, 0)
    with pytest.raises(TaskTooSmallError, match="too small"):
        StratifiedSampler(16).sample(make_task(0, 30), 0)
    # The only positive goes to the support: the query has one class, the draw is skipped.
    with pytest.raises(UnusableDrawError):
        StratifiedSampler(16).sample(make_task(1, 30), 0)
    # Support of 16 from a 17-example task leaves a one-example query: one class only.
    small = make_task(8, 9)
    with pytest.raises(UnusableDrawError):
        StratifiedSampler(16).sample(small, 0)


def test_same_seed_same_episode_different_seed_differs():
    task = make_task(50, 150)
    a = StratifiedSampler(32).sample(task, 7)
    b = StratifiedSampler(32).sample(task, 7)
    c = StratifiedSampler(32).sample(task, 8)
    np.testing.assert_array_equal(a.support_index, b.support_index)
    assert not np.array_equal(a.support_index, c.support_index)


def test_derive_seed_is_stable():
    assert derive_seed(0, "CHEMBL1", 16, 3) == derive_seed(0, "CHEMBL1", 16, 3)
    assert derive_seed(0, "CHEMBL1", 16, 3) != derive_seed(0, "CHEMBL1", 16, 4)
    assert 0 <= derive_seed("a") < 2**63


def test_sample_episodes_skips_too_small_tasks():
    tasks = [make_task(1, 2, "small"), make_task(20, 20, "big")]
    eps = list(sample_episodes(tasks, BalancedSampler(5, 8), 5, seed=0))
    assert len(eps) == 5 and all(e.task == "big" for e in eps)


def test_task_validates_shapes():
    with pytest.raises(ValueError, match="same length"):
        Task("x", np.arange(3), np.zeros(4))
