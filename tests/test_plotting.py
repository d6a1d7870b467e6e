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
