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


def _mark_suggestion(ax: Axes, result: RangeTestResult, color: str, bracket_label: str = "bracket") -> None:
    lr = result.suggested_lr
    if lr is None:
        return
    # The suggestion may lie between sweep points (min_div_10): mark the curve's value there.
    loss = float(np.interp(np.log(lr), np.log(result.lrs), result.smoothed_losses))
    ax.plot([lr], [loss], marker="o", markersize=8, color=color, markeredgecolor="black", zorder=3)
    ax.axvline(lr, color=color, linestyle=":", linewidth=1)
    if result.suggestion_bracket is not None:
        low, high = result.suggestion_bracket
        ax.axvspan(low, high, color=color, alpha=0.12, linewidth=0, label=bracket_label)


def _axis_limits(ax: Axes, results: list[RangeTestResult], show_raw: bool) -> None:
    """Show up to twice the start level's height above the lowest point, so that a diverging tail does not
    squash the interesting part, but at least all of the curve before the blow-up: a flat curve's wiggles, the
    suggestion marked on them and (with the raw losses shown) the noise it is flat within."""
    values: list[float] = []
    body: list[float] = []  # before the blow-up
    first: list[float] = []
    for result in results:
        smoothed = np.asarray(result.smoothed_losses, dtype=float)
        before = np.asarray(result.lrs, dtype=float) < (result.divergence_lr or np.inf)
        values += smoothed[np.isfinite(smoothed)].tolist()
        body += smoothed[before & np.isfinite(smoothed)].tolist()
        if show_raw:
            raw = np.asarray(result.losses, dtype=float)
            values += raw[np.isfinite(raw)].tolist()
            raw_body = raw[before & np.isfinite(raw)]
            if raw_body.size:  # its noise band; a lone spike does not set the scale
                body += np.percentile(raw_body, [5, 95]).tolist()
        if smoothed.size and np.isfinite(smoothed[0]):
            first.append(float(smoothed[0]))
    if not values:
        return
    low, high = min(values), max(values)
    if first:
        cap = max(first) + (max(first) - low)
        high = min(high, max(cap, max(body, default=cap)))
    if high > low:
        margin = 0.05 * (high - low)
        ax.set_ylim(low - margin, high + margin)


def _finish_axes(ax: Axes, results: list[RangeTestResult], show_raw: bool, ylabel: str, title: str) -> None:
    ax.set_xscale("log")
    _axis_limits(ax, results, show_raw)
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
        # A NaN that ends the curve before any blow-up is marked as what it was: it may not come from the lr.
        nan_ends_it = result.nonfinite_lr is not None and result.divergence_lr >= result.nonfinite_lr
        label = "non-finite loss" if nan_ends_it else "blow-up"
        ax.axvline(result.divergence_lr, color="gray", linestyle="--", linewidth=1, label=label)
    title = f"LR range test ({result.stop_text})"
    if result.suggested_lr is not None:
        confidence = f", {result.confidence} confidence" if result.confidence else ""
        suggested = f"suggested lr {result.suggested_lr:.3g} ({result.suggestion}{confidence})"
        # One line holds about 80 characters at this size; a longer title goes on two rather than off the edge.
        title += (": " if len(title) + len(suggested) < 78 else "\n") + suggested
    _finish_axes(ax, [result], show_raw, "loss", title)
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
        _mark_suggestion(ax, sweep, color, "bracket" if chosen else "_nolegend_")  # one legend entry, not one each
    title = "LR range test per weight decay"
    if result.suggested_lr is not None:
        title += f": lr {result.suggested_lr:.3g}, wd {result.weight_decay:g}"
    _finish_axes(ax, result.sweeps, False, "smoothed loss", title)
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
