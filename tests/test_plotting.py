"""Range-test figures: log x axis, suggestion marked, no pyplot state."""

from __future__ import annotations

import sys

import matplotlib
import numpy as np
import pytest

from lightning_onecycle.plotting import figure_to_array, plot_range_test, plot_weight_decay_sweep, save_figure
from lightning_onecycle.range_test import RangeTestResult

from helpers import range_test_result as _result


def test_range_test_plot_has_log_x_curves_and_the_suggestion() -> None:
    result = _result()
    fig = plot_range_test(result)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    lines = {line.get_label(): line for line in ax.get_lines()}
    np.testing.assert_array_equal(lines["smoothed loss"].get_ydata(), result.smoothed_losses)
    np.testing.assert_array_equal(lines["loss"].get_ydata(), result.losses)
    markers = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert len(markers) == 1
    assert markers[0].get_xdata()[0] == result.suggested_lr
    assert "0.01" in ax.get_title()


def test_plot_without_suggestion_has_no_marker() -> None:
    fig = plot_range_test(_result(suggested=None), show_raw=False)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["smoothed loss"]


def test_weight_decay_plot_has_one_curve_per_weight_decay() -> None:
    sweeps = [_result(1e-2, wd=1e-4), _result(3e-2, wd=1e-3, shift=0.2)]
    result = RangeTestResult(**{**sweeps[1].__dict__, "sweeps": sweeps})
    fig = plot_weight_decay_sweep(result)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert labels == ["wd=0.0001", "wd=0.001 (chosen)"]
    assert sorted(line.get_xdata()[0] for line in ax.get_lines() if line.get_marker() == "o") == [1e-2, 3e-2]
    with pytest.raises(ValueError, match="no weight-decay sweeps"):
        plot_weight_decay_sweep(_result())


def test_png_and_array_without_touching_pyplot(tmp_path) -> None:
    backend = matplotlib.get_backend()
    had_pyplot = "matplotlib.pyplot" in sys.modules
    fig = plot_range_test(_result())
    path = tmp_path / "curve.png"
    save_figure(fig, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = figure_to_array(fig)
    assert image.dtype == np.uint8
    assert image.shape == (420, 640, 3)
    assert matplotlib.get_backend() == backend
    if had_pyplot:
        import matplotlib.pyplot as plt

        assert plt.get_fignums() == []
    else:
        assert "matplotlib.pyplot" not in sys.modules


def test_the_bracket_is_a_band_and_the_blow_up_a_dashed_line_with_the_confidence_in_the_title() -> None:
    import dataclasses

    result = dataclasses.replace(_result(), suggestion_bracket=[5e-3, 2e-2], confidence="medium", divergence_lr=0.3)
    ax = plot_range_test(result).axes[0]
    bands = [p for p in ax.patches if p.get_label() == "bracket"]
    assert len(bands) == 1
    band = bands[0]  # a Rectangle from matplotlib 3.9 on, a Polygon before
    if hasattr(band, "get_width"):
        x0, x1 = band.get_x(), band.get_x() + band.get_width()
    else:
        x0, x1 = band.get_xy()[:, 0].min(), band.get_xy()[:, 0].max()
    assert (x0, x1) == pytest.approx((5e-3, 2e-2))
    blow_up = [line for line in ax.get_lines() if line.get_label() == "blow-up"]
    assert blow_up and blow_up[0].get_xdata()[0] == 0.3 and blow_up[0].get_linestyle() == "--"
    assert "medium confidence" in ax.get_title()


def _flat_then_blow_up() -> RangeTestResult:
    """A flat, noisy curve (random labels) that blows up at lr 2, with the divergence rule's suggestion."""
    lrs = [float(lr) for lr in np.geomspace(1e-5, 3.0, 60)]
    noise = 0.1 * np.random.default_rng(0).standard_normal(60)
    losses = [1.4 + n + (50.0 * (lr - 2.0) if lr > 2.0 else 0.0) for lr, n in zip(lrs, noise)]
    smoothed = [1.4 + 0.5 * n for n in noise[:57]] + losses[57:]  # the blow-up's points as recorded
    return RangeTestResult(
        lrs=lrs,
        losses=losses,
        smoothed_losses=smoothed,
        suggested_lr=lrs[56] / 40,
        suggestion="divergence",
        stop_reason="diverged",
        num_steps_run=60,
        shape="flat",
        confidence="low",
        suggestion_bracket=[lrs[40] / 40, lrs[56] / 40],
        divergence_lr=lrs[57],
    )


def test_a_flat_curve_shows_its_suggestion_and_its_noise() -> None:
    """The y axis of a curve without descent spans what it shows before the blow-up: the suggestion's marker and
    the raw losses' noise (the curve is flat *within* it), not only the smoothed curve's first point and minimum."""
    result = _flat_then_blow_up()
    ax = plot_range_test(result).axes[0]
    low, high = ax.get_ylim()
    marker = next(line for line in ax.get_lines() if line.get_marker() == "o")
    assert low <= marker.get_ydata()[0] <= high
    before = [loss for lr, loss in zip(result.lrs, result.losses) if lr < result.divergence_lr]
    assert sum(low <= loss <= high for loss in before) >= 0.9 * len(before)
    assert high < max(result.losses)  # the blow-up itself still does not squash the rest


def test_a_curve_that_ends_in_a_nan_marks_the_nan_not_a_blow_up() -> None:
    import dataclasses

    result = dataclasses.replace(_result(), stop_reason="non-finite loss", divergence_lr=1.2, nonfinite_lr=1.2)
    labels = [line.get_label() for line in plot_range_test(result).axes[0].get_lines()]
    assert "non-finite loss" in labels and "blow-up" not in labels
    assert "at lr 1.2" in plot_range_test(result).axes[0].get_title()


def test_a_weight_decay_plot_names_the_bracket_once() -> None:
    import dataclasses

    sweeps = [dataclasses.replace(_result(1e-2, wd=wd), suggestion_bracket=[5e-3, 2e-2]) for wd in (1e-4, 1e-3, 1e-2)]
    result = RangeTestResult(**{**sweeps[1].__dict__, "sweeps": sweeps})
    _, labels = plot_weight_decay_sweep(result).axes[0].get_legend_handles_labels()
    assert labels.count("bracket") == 1
