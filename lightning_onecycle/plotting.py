"""Figures of LR range test curves: loss versus learning rate on a log axis.

Figures are built with :class:`matplotlib.figure.Figure` on the Agg canvas and
never through ``pyplot``, so plotting neither changes the user's backend nor
leaves figures open in pyplot's global registry.
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lightning_onecycle.range_test_result import RangeTestResult

__all__ = ["figure_to_array", "plot_range_test", "plot_weight_decay_sweep", "save_figure"]


def _new_figure() -> Figure:
    fig = Figure(figsize=(6.4, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _mark_suggestion(ax: Axes, result: RangeTestResult, color: str) -> None:
    lr = result.suggested_lr
    if lr is None:
        return
    # The suggestion may lie between sweep points (min_div_10): mark the curve's value there.
    loss = float(np.interp(np.log(lr), np.log(result.lrs), result.smoothed_losses))
    ax.plot([lr], [loss], marker="o", markersize=8, color=color, markeredgecolor="black", zorder=3)
    ax.axvline(lr, color=color, linestyle=":", linewidth=1)
    if result.suggestion_bracket is not None:
        low, high = result.suggestion_bracket
        ax.axvspan(low, high, color=color, alpha=0.12, linewidth=0, label="bracket")


def _axis_limits(ax: Axes, curves: list[list[float]]) -> None:
    # A diverging tail would squash the interesting part; show up to twice the start level.
    values = np.array([v for curve in curves for v in curve if np.isfinite(v)])
    if values.size == 0:
        return
    first = [curve[0] for curve in curves if curve and np.isfinite(curve[0])]
    low, high = float(values.min()), float(values.max())
    if first:
        high = min(high, max(first) + (max(first) - low))
    if high > low:
        margin = 0.05 * (high - low)
        ax.set_ylim(low - margin, high + margin)


def _finish_axes(ax: Axes, curves: list[list[float]], ylabel: str, title: str) -> None:
    ax.set_xscale("log")
    _axis_limits(ax, curves)
    ax.set_xlabel("learning rate")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="best", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)


def plot_range_test(result: RangeTestResult, show_raw: bool = True) -> Figure:
    """Loss versus learning rate (log x), the smoothed curve and the suggestion marked.

    Args:
        result: The range test's result.
        show_raw: Also draw the raw (unsmoothed) losses, faintly.

    Example::

        >>> from lightning_onecycle.range_test_result import RangeTestResult
        >>> result = RangeTestResult(lrs=[1e-3, 1e-2, 1e-1], losses=[1.0, 0.5, 2.0],
        ...     smoothed_losses=[1.0, 0.6, 1.5], suggested_lr=1e-2, suggestion="edge",
        ...     stop_reason="diverged", num_steps_run=3)
        >>> fig = plot_range_test(result)
        >>> fig.axes[0].get_xscale()
        'log'
    """
    fig = _new_figure()
    ax = fig.add_subplot()
    if show_raw:
        ax.plot(result.lrs, result.losses, color="tab:blue", alpha=0.3, linewidth=1, label="loss")
    ax.plot(result.lrs, result.smoothed_losses, color="tab:blue", linewidth=2, label="smoothed loss")
    _mark_suggestion(ax, result, "tab:red")
    if result.divergence_lr is not None:
        ax.axvline(result.divergence_lr, color="gray", linestyle="--", linewidth=1, label="blow-up")
    title = f"LR range test ({result.stop_reason})"
    if result.suggested_lr is not None:
        confidence = f", {result.confidence} confidence" if result.confidence else ""
        title += f": suggested lr {result.suggested_lr:.3g} ({result.suggestion}{confidence})"
    _finish_axes(ax, [result.smoothed_losses], "loss", title)
    return fig


def plot_weight_decay_sweep(result: RangeTestResult) -> Figure:
    """One smoothed curve per weight decay on shared axes, each suggestion marked.

    Args:
        result: A range test result with one sub-result per weight decay in ``result.sweeps``.

    Raises:
        ValueError: If ``result.sweeps`` is empty.
    """
    if not result.sweeps:
        raise ValueError("This result has no weight-decay sweeps to plot; use `plot_range_test`.")
    fig = _new_figure()
    ax = fig.add_subplot()
    colors = [f"C{i % 10}" for i in range(len(result.sweeps))]
    for sweep, color in zip(result.sweeps, colors):
        chosen = sweep.weight_decay == result.weight_decay
        label = f"wd={sweep.weight_decay:g}" + (" (chosen)" if chosen else "")
        ax.plot(sweep.lrs, sweep.smoothed_losses, color=color, linewidth=2.5 if chosen else 1.5, label=label)
        _mark_suggestion(ax, sweep, color)
    title = "LR range test per weight decay"
    if result.suggested_lr is not None:
        title += f": lr {result.suggested_lr:.3g}, wd {result.weight_decay:g}"
    _finish_axes(ax, [s.smoothed_losses for s in result.sweeps], "smoothed loss", title)
    return fig


def figure_to_array(fig: Figure) -> np.ndarray:
    """The rendered figure as an ``(H, W, 3)`` ``uint8`` RGB array (for ``add_image``)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_figure(fig: Figure, path: str | os.PathLike) -> None:
    """Write ``fig`` to ``path`` (format from the extension, e.g. ``.png``)."""
    FigureCanvasAgg(fig)
    fig.savefig(path)
