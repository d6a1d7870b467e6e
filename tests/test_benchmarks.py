"""The suggestion benchmark's scoring: the numbers its tables are built from."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
import suggestion_quality  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)


def test_one_run_per_lr_picks_each_seeds_best_lr_and_scores_it_on_the_other_seeds():
    grid = {
        "lrs": [0.01, 0.1, 1.0],
        # rows: lrs; columns: seeds. Seed 0's best run is at 1.0 (a lucky 0.95), seeds 1 and 2 pick 0.1.
        "accs": [[0.50, 0.52, 0.51], [0.80, 0.90, 0.88], [0.95, 0.60, 0.62]],
    }
    picked = suggestion_quality.one_run_per_lr(grid)
    assert picked["lrs"] == [1.0, 0.1, 0.1]
    # Scored by a fresh run at the chosen lr: the other seeds' mean, never the run that chose it.
    assert picked["accs"] == pytest.approx([(0.60 + 0.62) / 2, (0.80 + 0.88) / 2, (0.80 + 0.90) / 2])


def test_one_run_per_lr_needs_two_seeds():
    assert suggestion_quality.one_run_per_lr({"lrs": [0.1, 1.0], "accs": [[0.5], [0.7]]}) is None


def test_window_spans_the_lrs_within_the_tolerance_of_the_best():
    lrs = [0.001, 0.01, 0.1, 1.0]
    assert suggestion_quality.window(lrs, [0.80, 0.895, 0.90, 0.70], within=0.01) == pytest.approx(1.0)
    assert suggestion_quality.window(lrs, [0.80, 0.88, 0.90, 0.70], within=0.01) == pytest.approx(0.0)


def test_paired_difference_is_the_mean_and_standard_error_over_seeds_with_no_suggestion_as_zero():
    mean, se = suggestion_quality.paired_difference([0.9, 0.8, None], [0.7, 0.8, 0.1])
    diffs = [20.0, 0.0, -10.0]
    assert mean == pytest.approx(sum(diffs) / 3)
    spread = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    assert se == pytest.approx(spread / math.sqrt(3))


def test_loss_recorder_scores_a_run_by_the_mean_of_its_last_quarter_and_a_diverged_run_as_inf():
    recorder = suggestion_quality.LossRecorder()
    recorder.losses = [9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0]
    assert recorder.final_loss() == pytest.approx(2.5)
    recorder.losses = [1.0, float("nan"), 0.5, 0.4]
    assert recorder.final_loss() == math.inf
