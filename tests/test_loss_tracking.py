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


def test_divergence_is_three_points_above_the_level_by_threshold_times_the_drop_and_they_are_recorded() -> None:
    # num_steps=30: the starting level is the median of the first 3 points (2.0); the noise is the median
    # step between points. The loss falls to 1.0 (drop 1.0), so the line is 2.0 + 4 * 1.0 = 6.0.
    tracker = LossTracker(smoothing=0.0, divergence_threshold=4.0, num_steps=30)
    assert _feed(tracker, [2.0, 2.0, 2.0, 1.0, 1.0, 1.0, 1.0]) == [None] * 7
    assert _feed(tracker, [6.0, 7.0, 7.0]) == [None, None, None]  # 6.0 is on the line, not above: no count
    assert _feed(tracker, [7.0]) == ["diverged"]
    assert tracker.num_points == 11 and tracker.losses[-3:] == [7.0, 7.0, 7.0] and tracker.stop_reason == "diverged"
    assert tracker.divergence_index == 8  # the first of the three points above the line


def test_one_spike_is_no_divergence() -> None:
    tracker = LossTracker(smoothing=0.0, divergence_threshold=4.0, num_steps=30)
    assert _feed(tracker, [2.0, 2.0, 2.0, 1.0, 50.0, 50.0, 1.0, 50.0, 1.0]) == [None] * 9


@pytest.mark.parametrize("offset", [0.0, -100.0, 1e3])
def test_the_stop_depends_on_differences_of_losses_only(offset: float) -> None:
    """Adding a constant to the loss (negative losses included) moves no decision."""
    losses = [2.0, 2.1, 1.9, 2.0, 1.5, 1.0, 0.8, 0.9, 5.0, 9.0, 12.0, 20.0]
    tracker = LossTracker(smoothing=0.0, divergence_threshold=4.0, num_steps=30)
    stops = _feed(tracker, [loss + offset for loss in losses])
    assert stops == [None] * 10 + [None, "diverged"]


def test_no_divergence_stop_before_the_level_is_read_nor_without_a_threshold() -> None:
    early = LossTracker(smoothing=0.0, divergence_threshold=2.0, num_steps=100)  # the level needs 10 points
    assert _feed(early, [1.0] * 3 + [1e6] * 7) == [None] * 10
    never = LossTracker(smoothing=0.0, divergence_threshold=None, num_steps=30)
    assert _feed(never, [1.0] * 3 + [1e9] * 5) == [None] * 8


def test_a_non_finite_loss_stops_without_recording_and_keeps_its_lr() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        tracker = LossTracker(smoothing=0.98, divergence_threshold=4.0)
        _feed(tracker, [1.0, 0.9])
        assert tracker.update(0.5, bad) == "non-finite loss"
        assert tracker.num_points == 2 and tracker.stop_reason == "non-finite loss"
        assert tracker.nonfinite_lr == 0.5


def test_a_non_finite_loss_on_a_skipped_step_counts_as_non_finite() -> None:
    tracker = LossTracker(smoothing=0.0, divergence_threshold=4.0)
    assert tracker.update(0.1, math.nan, skipped=True) == "non-finite loss"


def test_skipped_steps_are_not_recorded_and_too_many_in_a_row_stop_as_a_gradient_overflow() -> None:
    tracker = LossTracker(smoothing=0.0, divergence_threshold=None)
    tracker.update(0.1, 1.0)
    for _ in range(MAX_SKIPPED_STEPS):
        assert tracker.update(0.2, 1.0, skipped=True) is None
    assert tracker.num_points == 1 and tracker.skipped_in_a_row == MAX_SKIPPED_STEPS
    assert tracker.update(0.2, 1.0, skipped=True) == "gradient overflow"
    assert tracker.num_points == 1 and tracker.divergence_index is None


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
