"""Where an LR range test's result goes: the log line, the CSV/JSON/PNG files, and the loggers.

Files are written and loggers fed on rank zero only. A Trainer that fits again
tests again, so each test of a callback gets its own label, and with it its own
file names (``lr_range_test_<label>.*``) and tags (``range_test/<label>/...``).
Files already in the directory (an earlier run's: ``logger=False`` writes to
``default_root_dir``, a config may reuse a ``dirpath``) are never replaced: the
new ones get the next free name, ``lr_range_test_2.*``, ``_3``... The log line
says where they went.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_only, rank_zero_warn
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_onecycle.plotting import figure_to_array, plot_range_test, plot_weight_decay_sweep, save_figure
from lightning_onecycle.range_test_result import RangeTestResult

FILE_STEM = "lr_range_test"
FILE_EXTENSIONS = (".csv", ".json", ".png")


def check_dirpath(dirpath: object) -> str | os.PathLike[str] | None:
    """``dirpath`` as given, if it can name a directory (``None``: the Trainer's ``log_dir``); else a ``ValueError``."""
    if dirpath is None:
        return None
    path = os.fspath(dirpath) if isinstance(dirpath, (str, os.PathLike)) else None
    if not isinstance(path, str):
        raise ValueError(
            f"Expected `dirpath` to be a directory path (a str or pathlib.Path) or None (the Trainer's log_dir),"
            f" but got {dirpath!r} ({type(dirpath).__name__})."
        )
    if not path.strip():
        raise ValueError(
            "`dirpath` is empty. Pass the directory for the range test's files, or None for the Trainer's log_dir."
        )
    return dirpath  # type: ignore[return-value]  # a str or an os.PathLike of str, checked above


def prepare_directory(trainer: pl.Trainer, dirpath: str) -> None:
    """Create ``dirpath`` and check that a file can be written there, before the sweep (the check on rank zero).

    Raises:
        MisconfigurationException: On every rank, if rank zero cannot write there.
    """
    problem = _directory_problem(dirpath) if trainer.is_global_zero else None
    problem = trainer.strategy.broadcast(problem)
    if problem is not None:
        raise MisconfigurationException(
            f"LRRangeTestCallback(dirpath={dirpath!r}) cannot hold the range test's files: {problem}. Pass a"
            " directory you can write to, dirpath=None (the Trainer's log_dir), or save_files=False."
        )


def _directory_problem(dirpath: str) -> str | None:
    if os.path.exists(dirpath) and not os.path.isdir(dirpath):
        return "it is a file, not a directory"
    try:
        os.makedirs(dirpath, exist_ok=True)
        # Permission bits do not tell (root, read-only mounts, ACLs): writing a file does.
        with tempfile.NamedTemporaryFile(dir=dirpath, prefix=".lr_range_test_probe"):
            pass
    except OSError as error:
        return f"{error.strerror or error} ({type(error).__name__})"
    return None


def free_stem(dirpath: str, name: str) -> str:
    """``dirpath/name``, or the first of ``dirpath/name_2``, ``name_3``... none of whose files exists yet.

    Example::

        >>> free_stem(tempfile.mkdtemp(), FILE_STEM).endswith("lr_range_test")
        True
    """
    stem, n = os.path.join(dirpath, name), 1
    while any(os.path.exists(stem + ext) for ext in FILE_EXTENSIONS):
        n += 1
        stem = os.path.join(dirpath, f"{name}_{n}")
    return stem


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


def announce(result: RangeTestResult, stem: str | None = None) -> None:
    """Say what the test suggests (or warn that it suggests nothing) and where its files are (rank zero).

    Args:
        result: The test's result.
        stem: The files' path without extension, as :func:`write_report` returned it; ``None``: no files.
    """
    where = "" if stem is None else f" Curve and plot: {stem}.{{{','.join(e[1:] for e in FILE_EXTENSIONS)}}}."
    if result.suggested_lr is None:
        rank_zero_warn(
            f"LRRangeTestCallback: no learning rate suggested (stop reason: {result.stop_reason}): the smoothed"
            " loss has no usable descent. Widen the sweep (lower min_lr, higher max_lr) or run more steps." + where,
            category=UserWarning,
        )
    else:
        wd = "" if result.weight_decay is None else f" with weight decay {result.weight_decay:g}"
        rank_zero_info(
            f"LRRangeTestCallback: suggested lr {result.suggested_lr:.4g}{wd} ({result.suggestion},"
            f" {result.num_steps_run} steps, {result.stop_reason})." + where
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
) -> str | None:
    """Write ``lr_range_test[_<label>].{csv,json,png}`` into ``dirpath`` and log the curve and the plot.

    Scalars ``<root>/lr``, ``<root>/loss`` and ``<root>/smoothed_loss`` go to every logger
    (step = sweep point; one set per weight decay for a weight-decay sweep), the plot as the
    image ``<root>/plot`` to TensorBoard loggers; ``<root>`` is ``range_test[/<label>]``.
    Files of that name already there are kept: these get the next free name (:func:`free_stem`).

    Returns:
        The files' path without extension, or ``None`` when none were written (and on other ranks).
    """
    figure = plot_weight_decay_sweep(result) if result.sweeps else plot_range_test(result)
    # A later fit of the same Trainer tests again: its files and tags must not overwrite the first test's.
    label = labels.next(trainer.global_step)
    suffix = f"_{label}" if label else ""
    root = f"range_test/{label}" if label else "range_test"
    stem = None
    if save_files and dirpath is not None:
        os.makedirs(dirpath, exist_ok=True)
        stem = free_stem(dirpath, FILE_STEM + suffix)
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
    return stem
