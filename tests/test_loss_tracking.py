"""LossTracker: the running average, the divergence, non-finite and skipped-step stops, directly."""

from __future__ import annotations

import math

import pytest

from lightning_onecycle.loss_tracking import MAX_SKIPPED_STEPS, LossTracker


def _feed(tracker: LossTracker, losses: list[float]) -> list[str | None]:
    return [tracker.update(0.01 * (i + 1), loss) for i, loss in enumerate(losses)]


def test_the_running_average_is_bias_corrected() -> None:
    beta = 0.9
    tracker = LossTracker(smoothing=beta, divergence_threshold=None)
    losses = [2.0, 1.0, 3.0, 0.5]
    assert _feed(tracker, losses) == [None] * 4
    average, expected = 0.0, []
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        expected.append(average / (1 - beta ** (i + 1)))
    assert tracker.running_losses == pytest.approx(expected, rel=1e-15)
    assert tracker.running_losses[0] == 2.0  # the first point is the loss itself, not beta-shrunk towards 0
    assert tracker.lrs == pytest.approx([0.01, 0.02, 0.03, 0.04]) and tracker.losses == losses
    assert tracker.num_points == 4 and tracker.stop_reason is None


def test_no_smoothing_tracks_the_raw_loss() -> None:
    tracker = LossTracker(smoothing=0.0, divergence_threshold=None)
    _feed(tracker, [3.0, 1.0, 2.0])
    assert tracker.running_losses == [3.0, 1.0, 2.0]


def test_divergence_is_above_threshold_times_the_best_and_the_point_is_recorded() -> None:
    tracker = LossTracker(smoothing=0.0, divergence_threshold=4.0)
    assert _feed(tracker, [1.0, 0.5, 2.0]) == [None, None, None]  # 2.0 is exactly 4 x 0.5: not above
    assert tracker.update(0.04, 2.0001) == "diverged"
    assert tracker.num_points == 4 and tracker.losses[-1] == 2.0001 and tracker.stop_reason == "diverged"


def test_divergence_needs_two_points_and_a_positive_best() -> None:
    first = LossTracker(smoothing=0.0, divergence_threshold=2.0)
    assert first.update(0.01, 100.0) is None  # one point: nothing to compare with
    negative = LossTracker(smoothing=0.0, divergence_threshold=2.0)
    assert _feed(negative, [-1.0, 50.0, 1e6]) == [None, None, None]  # a negative best: the ratio means nothing
    never = LossTracker(smoothing=0.0, divergence_threshold=None)
    assert _feed(never, [1.0, 1e9]) == [None, None]


def test_a_non_finite_loss_stops_without_recording() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        tracker = LossTracker(smoothing=0.98, divergence_threshold=4.0)
        _feed(tracker, [1.0, 0.9])
        assert tracker.update(0.5, bad) == "non-finite loss"
        assert tracker.num_points == 2 and tracker.stop_reason == "non-finite loss"


def test_a_non_finite_loss_on_a_skipped_step_counts_as_non_finite() -> None:
    tracker = LossTracker(smoothing=0.0, divergence_threshold=4.0)
    assert tracker.update(0.1, math.nan, skipped=True) == "non-finite loss"


def test_skipped_steps_are_not_recorded_and_too_many_in_a_row_count_as_divergence() -> None:
    tracker = LossTracker(smoothing=0.0, divergence_threshold=None)
    tracker.update(0.1, 1.0)
    for _ in range(MAX_SKIPPED_STEPS):
        assert tracker.update(0.2, 1.0, skipped=True) is None
    assert tracker.num_points == 1 and tracker.skipped_in_a_row == MAX_SKIPPED_STEPS
    assert tracker.update(0.2, 1.0, skipped=True) == "diverged"
    assert tracker.num_points == 1


def test_a_recorded_step_resets_the_skip_count() -> None:
    tracker = LossTracker(smoothing=0.0, divergence_threshold=None, max_skipped_steps=2)
    for _ in range(3):  # two skips in a row are tolerated, every time, once a step gets through between them
        assert tracker.update(0.1, 1.0, skipped=True) is None
        assert tracker.update(0.1, 1.0, skipped=True) is None
        assert tracker.update(0.1, 1.0) is None
        assert tracker.skipped_in_a_row == 0
    assert tracker.num_points == 3


def test_a_stopped_tracker_takes_no_more_points() -> None:
    tracker = LossTracker(smoothing=0.0, divergence_threshold=None)
    tracker.update(0.1, math.nan)
    with pytest.raises(RuntimeError, match="has stopped"):
        tracker.update(0.2, 1.0)


def test_the_recorded_lists_are_copies() -> None:
    tracker = LossTracker(smoothing=0.0, divergence_threshold=None)
    tracker.update(0.1, 1.0)
    tracker.lrs.append(5.0)
    tracker.losses.clear()
    assert tracker.lrs == [0.1] and tracker.losses == [1.0]
