"""The suggestion benchmark's scoring and task suite: the numbers its tables are built from."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import _suite  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)
import suggestion_quality  # noqa: E402


def test_one_run_per_lr_picks_each_seeds_best_lr_and_scores_it_on_the_other_seeds():
    # rows: lrs; columns: seeds. Seed 0's best run is at 1.0 (a lucky 0.95), seeds 1 and 2 pick 0.1.
    scores = np.array([[0.50, 0.52, 0.51], [0.80, 0.90, 0.88], [0.95, 0.60, 0.62]])
    lrs, picked = suggestion_quality.one_run_per_lr([0.01, 0.1, 1.0], scores, higher=True)
    assert lrs == [1.0, 0.1, 0.1]
    # Scored by a fresh run at the chosen lr: the other seeds' mean, never the run that chose it.
    assert picked == pytest.approx([(0.60 + 0.62) / 2, (0.80 + 0.88) / 2, (0.80 + 0.90) / 2])
    # For a loss, the lowest run picks.
    lrs, _ = suggestion_quality.one_run_per_lr([0.01, 0.1, 1.0], scores, higher=False)
    assert lrs == [0.01, 0.01, 0.01]


def test_one_run_per_lr_needs_two_seeds():
    assert suggestion_quality.one_run_per_lr([0.1, 1.0], np.array([[0.5], [0.7]]), higher=True) is None


def test_window_spans_the_lrs_within_the_tolerance_of_the_best():
    lrs = [0.001, 0.01, 0.1, 1.0]
    assert suggestion_quality.window(lrs, [0.80, 0.895, 0.90, 0.70], True, within=0.01) == pytest.approx(1.0)
    assert suggestion_quality.window(lrs, [0.80, 0.88, 0.90, 0.70], True, within=0.01) == pytest.approx(0.0)
    # For a loss: within 1% of the lowest.
    assert suggestion_quality.window(lrs, [2.0, 1.005, 1.0, 3.0], False, within=0.01) == pytest.approx(1.0)


def test_regret_is_points_of_accuracy_or_percent_of_excess_loss_and_a_missing_score_counts_worst():
    accuracy = _suite.TASKS["digits_cnn"]
    assert suggestion_quality.regret(accuracy, 0.9, [0.8, 0.9]) == pytest.approx(5.0)
    assert suggestion_quality.regret(accuracy, 0.9, [0.9, None]) == pytest.approx(45.0)  # None scores 0
    loss = _suite.TASKS["linear_regression_sgd"]
    assert loss.metric == "val_loss" and not loss.higher_is_better
    assert suggestion_quality.regret(loss, 0.1, [0.1, 0.12]) == pytest.approx(10.0)
    assert suggestion_quality.regret(loss, 0.1, [0.1, None]) == math.inf


def test_the_test_set_is_disjoint_from_development_and_every_task_has_a_family():
    splits = {name: task.split for name, task in _suite.TASKS.items()}
    assert set(splits.values()) == {"legacy", "dev", "test", "test2", "test3", "test4", "test5"}
    assert sum(split == "test" for split in splits.values()) == len(_suite.TEST) == 8
    later = {"test2": _suite.TEST2, "test3": _suite.TEST3, "test4": _suite.TEST4, "test5": _suite.TEST5}
    for name, tasks in later.items():
        assert sum(split == name for split in splits.values()) == len(tasks) == 7
    every = _suite.LEGACY + _suite.DEV + _suite.TEST + _suite.TEST2 + _suite.TEST3 + _suite.TEST4 + _suite.TEST5
    assert len(_suite.TASKS) == len(every)  # no name used twice
    assert all(task.family for task in _suite.TASKS.values())


def test_without_a_suggestion_the_task_trains_at_its_optimizers_configured_lr():
    assert _suite.TASKS["mlp_regression_adam"].configured_lr == pytest.approx(1e-3)
    assert _suite.TASKS["bigdata_cnn_sgd"].configured_lr == pytest.approx(0.01)
    assert _suite.TASKS["tabular_adagrad"].configured_lr == pytest.approx(1e-2)


def test_the_distillation_loss_is_hintons_kl_at_the_temperature():
    import torch

    task = _suite.TASKS["distill_mlp_sgd"]
    module = _suite.BenchModule(torch.nn.Identity(), task.optimizer, "distillation", temperature=2.0)
    logits = torch.tensor([[1.0, 2.0, 0.5]])
    assert module.criterion(logits, logits).item() == pytest.approx(0.0, abs=1e-7)  # the teacher itself
    teacher = torch.tensor([[0.0, 3.0, 0.0]])
    p, q = torch.softmax(teacher / 2, -1), torch.softmax(logits / 2, -1)
    expected = float((p * (p.log() - q.log())).sum()) * 4
    assert module.criterion(logits, teacher).item() == pytest.approx(expected, rel=1e-5)
