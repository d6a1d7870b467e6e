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

from lightning_onecycle.loss_tracking import MAX_SKIPPED_STEPS
from lightning_onecycle.plotting import figure_to_array, plot_range_test, plot_weight_decay_sweep, save_figure
from lightning_onecycle.range_test_result import RangeTestResult
from lightning_onecycle.suggestions import DIVERGENCE_MARGIN, STRATEGIES

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


def explain(result: RangeTestResult, min_lr: float, max_lr: float, adaptive_auto: bool = False) -> str | None:
    """What the curve showed and what to do, when the suggestion is not a plain one; ``None`` when it is.

    Args:
        result: A sweep's result, its shape and suggestion read.
        min_lr: The sweep's first lr.
        max_lr: The sweep's last lr.
        adaptive_auto: ``suggestion="auto"`` read the curve for an adaptive optimizer (Adam, RMSprop, ...).

    Example::

        >>> result = RangeTestResult(lrs=[1e-3], losses=[2.0], smoothed_losses=[2.0], suggested_lr=None,
        ...     suggestion="divergence", stop_reason="non-finite loss", num_steps_run=1, shape="too-short",
        ...     nonfinite_lr=2e-3)
        >>> print(explain(result, 1e-3, 10.0))  # doctest: +ELLIPSIS
        The loss was NaN or infinite at lr 0.002, after only 1 sweep step(s): ...
    """
    lr, points = result.suggested_lr, result.num_steps_run
    nonfinite = result.nonfinite_lr
    # The NaN itself ended the curve (the reading found no blow-up before it): the lr may not be the cause.
    nan_ends_it = nonfinite is not None and (result.divergence_lr is None or result.divergence_lr >= nonfinite)
    if result.shape == "too-short":
        if nonfinite is not None and points == 0:
            return (
                f"The loss was NaN or infinite at lr {nonfinite:.3g}, after 0 sweep step(s): too"
                " early to read anything. A loss that is not finite before the sweep has trained anything comes"
                " from the model, the data, the loss or the precision (overflow in fp16), not from the lr: check"
                " those. Training keeps the configured lr."
            )
        losses = result.losses
        if nonfinite is not None and len(losses) >= 2 and all(b > a for a, b in zip(losses, losses[1:])):
            return (
                f"The loss rose at every sweep step, from {losses[0]:.4g} to {losses[-1]:.4g}, and was NaN or"
                f" infinite at lr {nonfinite:.3g}, after {points} step(s): the sweep started above the usable"
                f" range. Start it lower (min_lr below {min_lr:g}). Training keeps the configured lr."
            )
        if nonfinite is not None and nan_ends_it:
            return (
                f"The loss was NaN or infinite at lr {nonfinite:.3g}, after only {points} sweep step(s): too few"
                " to read. It had not risen steadily before, so the model, the data, the loss or the precision"
                " (overflow in fp16) are the likelier cause: check those; if the lr is too high from the start,"
                f" start the sweep lower (min_lr below {min_lr:g}). Training keeps the configured lr."
            )
        where = "" if result.divergence_lr is None else f" at lr {result.divergence_lr:.3g}"
        return (
            f"Only {points} sweep points before the loss blew up{where}: too few to read. Start the sweep"
            f" lower (min_lr below {min_lr:g}). Training keeps the configured lr."
        )
    if result.shape == "flat" and lr is not None:
        if nan_ends_it:
            return (
                f"The loss did not fall during the sweep (flat within its noise) until it was NaN or infinite"
                f" at lr {nonfinite:.3g}, where the sweep stopped; the suggestion {lr:.3g} is that lr /"
                f" {DIVERGENCE_MARGIN:g}, of low confidence, as if the lr had made the loss blow up there. If the lr"
                " did not cause it (a bad batch, one process's data under DDP, an overflow in fp16), fix that and"
                " test again."
            )
        return (
            f"The loss did not fall during the sweep (flat within its noise) until it blew up at lr"
            f" {result.divergence_lr:.3g}; the suggestion {lr:.3g} is that lr / {DIVERGENCE_MARGIN:g}, of low"
            " confidence. A network that sits at chance until it blows up (deep, without normalisation, at"
            " default initialisation) does this, and so does a task whose labels the inputs do not predict."
            " Check it with a short run, or pass the schedule's max_lr yourself."
        )
    # AMP's GradScaler gave up (gradients overflowing at every step): the curve ends there, with no blow-up.
    last = result.lrs[-1] if result.lrs else min_lr
    stopped_early = (
        f"stopped early at lr {last:.3g}: under AMP, the GradScaler skipped more than {MAX_SKIPPED_STEPS} steps in"
        " a row (the gradients overflowed in fp16)"
        if result.stop_reason == "gradient overflow"
        else None
    )
    if result.shape == "flat-without-divergence" and lr is None:
        if stopped_early is not None:
            return (
                f"The loss did not fall during the sweep, which {stopped_early}. Nothing to suggest from:"
                f" training keeps the configured lr; pass the schedule's max_lr yourself (below {last:.3g})."
            )
        return (
            f"The loss neither fell nor blew up between lr {min_lr:g} and {max_lr:g}: nothing to read."
            " If the loss cannot depend on what the model learns (random labels, a constant or detached"
            " loss, parameters without gradients), no lr will help; if it has not started to learn by"
            f" {max_lr:g}, raise max_lr. Training keeps the configured lr."
        )
    if lr is None and result.suggestion == "divergence" and result.shape == "descent":
        return (
            "The 'divergence' rule reads only a curve without a descent (one that sits flat until it blows up),"
            " and this one has a descent: pass `suggestion='auto'` (or 'edge', 'minimum') to read it. Training"
            " keeps the configured lr."
        )
    if lr is None and adaptive_auto and result.shape == "flat":
        where = "was NaN or infinite" if nan_ends_it else "blew up"
        return (
            f"The loss did not fall during the sweep (flat within its noise) until it {where} at lr"
            f" {result.divergence_lr:.3g}. With an adaptive optimizer (Adam, RMSprop, ...) the lr where the loss"
            " blows up says nothing about the usable range (each step moves every weight by about the lr), so"
            " there is no suggestion: training keeps the configured lr. If the network learns slowly, a sweep with"
            " more steps (num_steps) may show a descent; if it sits at chance, check its initialisation and"
            " normalisation."
        )
    if lr is None and result.suggestion in STRATEGIES and result.shape == "flat":
        return (
            f"The {result.suggestion!r} rule needs a descent, and the loss did not fall before it"
            f" {'was NaN or infinite' if nan_ends_it else 'blew up'} at lr {result.divergence_lr:.3g}:"
            " `suggestion='auto'` reads such a curve by its blow-up ('divergence', of low confidence). Training"
            " keeps the configured lr."
        )
    if lr is None:
        return (
            f"The {result.suggestion!r} rule suggested nothing for a curve of shape {result.shape!r}"
            " (see the plot). Training keeps the configured lr; pass the schedule's max_lr yourself."
        )
    if result.shape == "descent" and nan_ends_it:
        return (
            f"The loss was NaN or infinite at lr {nonfinite:.3g}, where the sweep stopped, before it had blown"
            f" up: the curve is read as blowing up there, and the suggestion {lr:.3g} follows from that."
            " If the lr did not cause it (a bad batch, one process's data under DDP, an overflow in fp16), the"
            " usable range may go further: fix that and test again."
        )
    if result.still_falling and stopped_early is not None:
        return (
            f"The loss had not turned back up when the sweep {stopped_early}; a higher max_lr will not help. The"
            f" suggestion {lr:.3g} reads that lr as the edge, of low confidence."
        )
    if result.still_falling:
        return (
            f"The loss was still falling at the sweep's last lr {result.lrs[-1]:.3g}: the usable range may go"
            f" further, so the suggestion {lr:.3g} is a lower bound, of low confidence. Raise max_lr for a"
            " better reading."
        )
    return None


def announce(result: RangeTestResult, stem: str | None = None) -> None:
    """Say what the test suggests, how sure it is and where its files are (rank zero); warn when the
    curve needs a word (:func:`explain`).

    Args:
        result: The test's result.
        stem: The files' path without extension, as :func:`write_report` returned it; ``None``: no files.
    """
    where = "" if stem is None else f" Curve and plot: {stem}.{{{','.join(e[1:] for e in FILE_EXTENSIONS)}}}."
    if result.message is not None:
        rank_zero_warn(
            f"LRRangeTestCallback: {result.message}" + ("" if result.suggested_lr is not None else where),
            category=UserWarning,
        )
    if result.suggested_lr is not None:
        wd = "" if result.weight_decay is None else f" with weight decay {result.weight_decay:g}"
        bracket = ""
        if result.suggestion_bracket is not None:
            low, high = result.suggestion_bracket
            bracket = f", bracket {low:.3g}-{high:.3g}"
        rank_zero_info(
            f"LRRangeTestCallback: suggested lr {result.suggested_lr:.4g}{wd} ({result.suggestion},"
            f" {result.confidence} confidence{bracket}; {result.num_steps_run} steps, {result.stop_text}"
            + ("" if result.seconds is None else f", {result.seconds:.1f} s")
            + ")."
            + where
        )


def summary_text(result: RangeTestResult) -> str:
    """The suggestion, its rule, confidence and bracket, and the curve's message, as one paragraph."""
    if result.suggested_lr is None:
        text = f"No suggestion ({result.shape} curve, {result.stop_text})."
    else:
        text = f"Suggested lr {result.suggested_lr:.4g} ({result.suggestion}, {result.confidence} confidence"
        if result.suggestion_bracket is not None:
            text += f", bracket {result.suggestion_bracket[0]:.3g}-{result.suggestion_bracket[1]:.3g}"
        text += f"); {result.shape} curve, {result.num_steps_run} steps, {result.stop_text}."
    return text + ("" if result.message is None else " " + result.message)


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
        if result.suggested_lr is not None:
            summary = {f"{root}/suggested_lr": result.suggested_lr}
            if result.suggestion_bracket is not None:
                summary[f"{root}/suggested_lr_low"], summary[f"{root}/suggested_lr_high"] = result.suggestion_bracket
            for logger in trainer.loggers:
                logger.log_metrics(summary, step=0)
        image = figure_to_array(figure)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image(f"{root}/plot", image, global_step=0, dataformats="HWC")
                logger.experiment.add_text(f"{root}/summary", summary_text(result), global_step=0)
                logger.experiment.flush()
    return stem
