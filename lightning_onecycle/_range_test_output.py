"""Where an LR range test's result goes: the log line, the CSV/JSON/PNG files, and the loggers.

Files are written and loggers fed on rank zero only. A Trainer that fits again
tests again, so each test of a callback gets its own label, and with it its own
file names (``lr_range_test_<label>.*``) and tags (``range_test/<label>/...``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only, rank_zero_warn

from lightning_onecycle.plotting import figure_to_array, plot_range_test, plot_weight_decay_sweep, save_figure
from lightning_onecycle.range_test_result import RangeTestResult

FILE_STEM = "lr_range_test"


class ReportLabels:
    """Hands out the label that names each test's files and tags.

    Nothing for the first test, ``step<N>`` for one that starts at global step
    N > 0 (a later fit), and a count besides when that name was taken (a
    test-only fit leaves N at 0 for the next fit).

    Example::

        >>> labels = ReportLabels()
        >>> labels.next(0), labels.next(0), labels.next(16), labels.next(16)
        ('', 'test2', 'step16', 'step16_test2')
    """

    def __init__(self) -> None:
        self._bases: list[str] = []

    def next(self, start_step: int) -> str:
        base = f"step{start_step}" if start_step else ""
        taken = self._bases.count(base)
        self._bases.append(base)
        if not taken:
            return base
        return f"{base}_test{taken + 1}" if base else f"test{taken + 1}"


def announce(result: RangeTestResult) -> None:
    """Say what the test suggests, or warn that it suggests nothing (rank zero)."""
    if result.suggested_lr is None:
        rank_zero_warn(
            f"LRRangeTestCallback: no learning rate suggested (stop reason: {result.stop_reason}): the smoothed"
            " loss has no usable descent. Widen the sweep (lower min_lr, higher max_lr) or run more steps.",
            category=UserWarning,
        )
    else:
        wd = "" if result.weight_decay is None else f" with weight decay {result.weight_decay:g}"
        rank_zero_info(
            f"LRRangeTestCallback: suggested lr {result.suggested_lr:.4g}{wd} ({result.suggestion},"
            f" {result.num_steps_run} steps, {result.stop_reason})."
        )


@rank_zero_only
def write_report(
    trainer: pl.Trainer,
    result: RangeTestResult,
    labels: ReportLabels,
    dirpath: str | None,
    config: Mapping[str, Any],
    save_files: bool = True,
    log_to_loggers: bool = True,
) -> None:
    """Write ``lr_range_test[_<label>].{csv,json,png}`` into ``dirpath`` and log the curve and the plot.

    Scalars ``<root>/lr``, ``<root>/loss`` and ``<root>/smoothed_loss`` go to every logger
    (step = sweep point; one set per weight decay for a weight-decay sweep), the plot as the
    image ``<root>/plot`` to TensorBoard loggers; ``<root>`` is ``range_test[/<label>]``.
    """
    figure = plot_weight_decay_sweep(result) if result.sweeps else plot_range_test(result)
    # A later fit of the same Trainer tests again: its files and tags must not overwrite the first test's.
    label = labels.next(trainer.global_step)
    suffix = f"_{label}" if label else ""
    root = f"range_test/{label}" if label else "range_test"
    if save_files and dirpath is not None:
        os.makedirs(dirpath, exist_ok=True)
        stem = os.path.join(dirpath, FILE_STEM + suffix)
        result.write_csv(stem + ".csv")
        result.write_json(stem + ".json", config)
        save_figure(figure, stem + ".png")
    if log_to_loggers and trainer.loggers:
        for sweep in result.sweeps or [result]:
            prefix = root if not result.sweeps else f"{root}/wd={sweep.weight_decay!r}"
            for step, values in enumerate(zip(sweep.lrs, sweep.losses, sweep.smoothed_losses)):
                metrics = dict(zip((f"{prefix}/lr", f"{prefix}/loss", f"{prefix}/smoothed_loss"), values))
                for logger in trainer.loggers:
                    logger.log_metrics(metrics, step=step)
        image = figure_to_array(figure)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(f"{root}/plot", image, global_step=0, dataformats="HWC")
                logger.experiment.flush()
