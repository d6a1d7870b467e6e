"""``LRRangeTestCallback``: Leslie Smith's LR range test, run through the Trainer's own training step.

At ``on_train_start`` the callback sweeps the learning rate from ``min_lr`` to
``max_lr`` over ``num_steps`` optimizer steps, records the loss at each step,
suggests a learning rate, and puts the model, optimizer, precision plugin and
random number generators back exactly as they were, so that the training that
follows is the one that would have run without the test. Each sweep step goes
through ``trainer.strategy`` (``training_step``, ``backward``,
``optimizer_step``), so mixed precision, gradient clipping, gradient
accumulation and DDP apply as they do in training; the Trainer's loops, their
progress counters and checkpoints on disk are never touched.

References:
    - L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017.
    - L. N. Smith, "A disciplined approach to neural network hyper-parameters:
      Part 1", 2018 (weight-decay sweep).
"""

from __future__ import annotations

import copy
import csv
import json
import math
import os
import random
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Union

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.strategies import ParallelStrategy
from lightning.pytorch.utilities import CombinedLoader, rank_zero_info, rank_zero_only, rank_zero_warn
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.model_helpers import is_overridden
from lightning.pytorch.utilities.parsing import lightning_hasattr, lightning_setattr
from lightning_utilities.core.apply_func import apply_to_collection
from torch.optim import Optimizer
from torch.utils.data import DataLoader

from lightning_onecycle import _param_groups
from lightning_onecycle.param_scheduler import plain_numbers, resolve_group_lrs
from lightning_onecycle.plotting import figure_to_array, plot_range_test, plot_weight_decay_sweep, save_figure
from lightning_onecycle.schedules import LRSweep, SweepMode, check_positive_finite
from lightning_onecycle.suggestions import (
    DEFAULT_STRATEGY,
    StrategyName,
    SuggestionFn,
    resolve_strategy,
    smooth_losses,
    suggest,
)

__all__ = ["LRRangeTestCallback", "RangeTestResult", "StopReason"]

StopReason = Literal["completed", "diverged", "non-finite loss"]

MIN_NUM_STEPS = 10
"""Fewer sweep points than this leave too little curve to suggest from."""
MAX_SKIPPED_STEPS = 50
"""Consecutive steps AMP's GradScaler may skip (overflowing gradients) before the sweep counts as diverged."""
FILE_STEM = "lr_range_test"


@dataclass
class RangeTestResult:
    """What an LR range test measured and suggests.

    Attributes:
        lrs: Learning rate of the group with the largest configured lr at each sweep point.
        losses: Raw training loss at each point (averaged over ranks and accumulated batches).
        smoothed_losses: ``losses`` smoothed without lag
            (:func:`~lightning_onecycle.suggestions.smooth_losses`): the curve the
            suggestion is made from and the plot shows.
        running_losses: Bias-corrected exponential moving average of ``losses``
            (beta ``smoothing``), the running value the divergence stop compares.
        suggested_lr: The suggestion, or ``None`` when the curve has no usable descent.
        suggestion: Name of the strategy that made the suggestion (for ``"auto"``, the one it chose).
        stop_reason: ``"completed"``, ``"diverged"`` (smoothed loss above
            ``divergence_threshold`` times its best) or ``"non-finite loss"``.
            The point with a non-finite loss is not recorded.
        num_steps_run: Number of recorded sweep points.
        weight_decay: The weight decay of this sweep (the chosen one for a
            weight-decay sweep), ``None`` when the optimizer's own was used.
        sweeps: For a weight-decay sweep, one result per weight decay; the fields
            above are then those of the chosen sweep.
    """

    lrs: list[float]
    losses: list[float]
    smoothed_losses: list[float]
    suggested_lr: float | None
    suggestion: str
    stop_reason: StopReason
    num_steps_run: int
    weight_decay: float | None = None
    sweeps: list[RangeTestResult] = field(default_factory=list)
    running_losses: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values only (JSON-able and safe for ``torch.load(weights_only=True)``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RangeTestResult:
        """The result from :meth:`to_dict`'s values; other keys (the JSON file's ``config``) are ignored."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["sweeps"] = [cls.from_dict(s) for s in values.get("sweeps", [])]
        return cls(**values)

    @classmethod
    def load(cls, path: str | os.PathLike) -> RangeTestResult:
        """Read the ``lr_range_test.json`` the callback wrote (e.g. from ``ddp_spawn`` workers).

        Example::

            >>> result = RangeTestResult.load("lightning_logs/version_0/lr_range_test.json")  # doctest: +SKIP
            >>> result.suggested_lr  # doctest: +SKIP
            0.0123
        """
        with open(path) as f:
            return cls.from_dict(json.load(f))

    def write_csv(self, path: str | os.PathLike) -> None:
        """One row per sweep point (``weight_decay, step, lr, loss, smoothed_loss, running_loss``), all sweeps."""
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["weight_decay", "step", "lr", "loss", "smoothed_loss", "running_loss"])
            for sweep in self.sweeps or [self]:
                wd = "" if sweep.weight_decay is None else repr(sweep.weight_decay)
                for i, row in enumerate(zip(sweep.lrs, sweep.losses, sweep.smoothed_losses, sweep.running_losses)):
                    writer.writerow([wd, i, *map(repr, row)])


class LRRangeTestCallback(Callback):
    """Leslie Smith's LR range test, run at the start of ``trainer.fit`` through the Trainer's training step.

    Sweeps every param group's learning rate from ``min_lr`` to ``max_lr`` over
    ``num_steps`` optimizer steps (keeping the ratio between groups: the group
    with the largest configured lr follows the sweep), records the raw and
    smoothed loss, stops early when the loss diverges or is not finite, and
    suggests a learning rate. Then it restores model, optimizer, precision
    plugin (AMP's GradScaler) and the random number generators, so that the
    training that follows (``stop_after_test=False``) is bit-identical to a run
    without the test. :class:`~lightning_onecycle.OneCycleCallback` with
    ``max_lr=None`` or ``"auto"`` takes its peak lr from :attr:`suggested_lr`.

    The sweep draws batches from ``trainer.train_dataloader``, starting it again
    after each epoch's worth (``limit_train_batches`` applies), so short epochs
    and ``max_epochs`` do not cut it short. Mixed precision, gradient clipping,
    ``accumulate_grad_batches`` (each sweep point is one optimizer step over that
    many batches) and DDP (the loss is averaged across ranks, so all ranks stop
    together and agree) apply as in training. Steps that AMP's GradScaler skips are retried at the same lr.
    During the sweep ``self.log`` calls are ignored and torchmetrics metrics of
    the module are reset afterwards; callbacks' ``on_before_backward``,
    ``on_after_backward`` and ``on_before_optimizer_step`` hooks do run (check
    :attr:`is_running` to tell sweep steps from training steps).

    The result is written on rank zero to ``dirpath`` (default ``trainer.log_dir``)
    as ``lr_range_test.csv``, ``lr_range_test.json`` and ``lr_range_test.png``,
    logged as scalars ``range_test/loss``, ``range_test/smoothed_loss`` and
    ``range_test/lr`` (step = sweep point) to all loggers, and as the image
    ``range_test/plot`` to TensorBoard loggers. It is kept in checkpoints: a fit
    resumed from a checkpoint that holds a result does not run the test again.

    Args:
        min_lr: First learning rate of the sweep.
        max_lr: Last learning rate of the sweep.
        num_steps: Number of sweep points (optimizer steps), at least 10.
        mode: ``"exponential"`` (geometric spacing) or ``"linear"``.
        smoothing: Beta of the bias-corrected running average of the loss that
            the divergence stop watches, in [0, 1); 0 disables it. The suggestion
            is made from a lag-free smoothing of the whole curve instead.
        divergence_threshold: Stop when the running average of the loss exceeds this multiple of
            its best value (checked when the best value is positive); ``None`` never stops early.
        suggestion: ``"auto"`` (default: ``"edge"`` for SGD-style optimizers, ``"minimum"`` for
            adaptive ones such as Adam or RMSprop, ``"minimum_nadam"`` for NAdam), a strategy
            name in :data:`lightning_onecycle.suggestions.STRATEGIES` (``"edge"``, ``"minimum"``,
            ``"minimum_nadam"``, ``"steepest"``, ``"min_div_10"``, ``"valley"``) or a callable
            ``(lrs, smoothed_losses) -> lr | None``.
        stop_after_test: ``False``: test, then train. ``True``: the fit ends after
            the test, without a training step.
        weight_decays: Run one sweep per weight decay from the same starting point
            (Smith's weight-decay search) and choose the one whose smoothed curve
            reaches the lowest minimum among those with a suggestion. The value is
            written to the param groups that have a non-zero weight decay (to all
            groups when none has). With ``stop_after_test=False`` the chosen weight
            decay stays set for training.
        update_attr: ``True`` sets the module's ``lr`` or ``learning_rate``
            attribute (or ``hparams`` entry), a string sets the attribute of that
            name, to the suggestion. With ``stop_after_test=False`` the optimizer's
            param groups also start training at the suggestion (ratios kept).
        progress_bar: Show a progress bar during the sweep when the Trainer has an
            enabled progress bar.
        dirpath: Directory for the CSV, JSON and PNG files; ``None`` uses
            ``trainer.log_dir``.
        save_files: Write the CSV, JSON and PNG files.
        log_to_loggers: Log the curve as scalars and the plot as an image.

    Raises:
        ValueError: If a setting is invalid; the message says which and how to fix it.
        MisconfigurationException: Before the first batch, if the module uses manual
            optimization, has no optimizer, its param groups lack ``weight_decay``
            for a weight-decay sweep, or ``update_attr`` names no attribute.

    Example::

        >>> import lightning.pytorch as pl
        >>> from lightning_onecycle import LRRangeTestCallback, OneCycleCallback
        >>> range_test = LRRangeTestCallback(min_lr=1e-6, max_lr=1.0, num_steps=100)
        >>> trainer = pl.Trainer(callbacks=[range_test, OneCycleCallback()], max_epochs=5)
        >>> # trainer.fit(model); range_test.suggested_lr is the 1cycle's peak lr
    """

    def __init__(
        self,
        min_lr: float = 1e-7,
        max_lr: float = 10.0,
        num_steps: int = 100,
        mode: SweepMode = "exponential",
        smoothing: float = 0.98,
        divergence_threshold: float | None = 4.0,
        # A name first (a config saves it as written), then a callable (a config's dotted path imports).
        suggestion: Union[StrategyName, SuggestionFn] = DEFAULT_STRATEGY,
        stop_after_test: bool = False,
        weight_decays: Sequence[float] | None = None,
        update_attr: bool | str = False,
        progress_bar: bool = True,
        dirpath: str | os.PathLike | None = None,
        save_files: bool = True,
        log_to_loggers: bool = True,
    ) -> None:
        min_lr, max_lr, num_steps, smoothing, divergence_threshold, weight_decays = plain_numbers(
            (min_lr, max_lr, num_steps, smoothing, divergence_threshold, weight_decays)
        )
        check_positive_finite("min_lr", min_lr)
        check_positive_finite("max_lr", max_lr)
        if min_lr >= max_lr:
            raise ValueError(
                f"Expected `min_lr` < `max_lr`, but got min_lr={min_lr!r} and max_lr={max_lr!r}."
                " The sweep goes from min_lr up to max_lr; swap them or widen the range."
            )
        if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < MIN_NUM_STEPS:
            raise ValueError(
                f"Expected an integer `num_steps` >= {MIN_NUM_STEPS}, but got {num_steps!r}: a shorter sweep is too"
                " short to suggest a learning rate from. Use 100 or more for a reliable curve."
            )
        if mode not in ("exponential", "linear"):
            raise ValueError(f"Expected `mode` to be 'exponential' or 'linear', but got {mode!r}.")
        if isinstance(smoothing, bool) or not isinstance(smoothing, (int, float)) or not 0 <= smoothing < 1:
            raise ValueError(
                f"Expected `smoothing` in [0, 1) (the EMA beta; 0 disables smoothing), but got {smoothing!r}."
            )
        if divergence_threshold is not None:
            check_positive_finite("divergence_threshold", divergence_threshold)
            if divergence_threshold <= 1:
                raise ValueError(
                    f"Expected `divergence_threshold` > 1 (a multiple of the best smoothed loss) or None to never"
                    f" stop early, but got {divergence_threshold!r}."
                )
        resolve_strategy(suggestion)  # fail now on an unknown name
        self.suggestion = suggestion
        self.weight_decays = _check_weight_decays(weight_decays)
        if not isinstance(update_attr, (bool, str)) or update_attr == "":
            raise ValueError(
                f"Expected `update_attr` to be True, False or an attribute name, but got {update_attr!r}."
            )
        self.sweep = LRSweep(min_lr, max_lr, num_steps, mode)
        self.smoothing = float(smoothing)
        self.divergence_threshold = divergence_threshold
        self.stop_after_test = stop_after_test
        self.update_attr = update_attr
        self.progress_bar = progress_bar
        self.dirpath = dirpath
        self.save_files = save_files
        self.log_to_loggers = log_to_loggers
        self.result: RangeTestResult | None = None
        self._attr_name: str | None = None
        self._running = False
        self._restored = False
        self._report_bases: list[str] = []  # the names earlier tests of this callback wrote under

    # --- public state ---------------------------------------------------------------

    @property
    def suggested_lr(self) -> float | None:
        """The suggested learning rate, or ``None`` before the test or when there is none."""
        return None if self.result is None else self.result.suggested_lr

    @property
    def is_running(self) -> bool:
        """``True`` while the sweep runs (for callbacks whose hooks see its steps)."""
        return self._running

    # --- hooks ------------------------------------------------------------------------

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            # A new fit tests afresh at `on_train_start`; a resumed one gets the result back from
            # `load_state_dict`, which Lightning calls after `setup`. A fit that never reaches
            # `on_train_start` (already finished) keeps the last result.
            self._restored = False

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not pl_module.automatic_optimization:
            raise MisconfigurationException(
                "LRRangeTestCallback needs automatic optimization, but the module sets"
                " `self.automatic_optimization = False`. Run the range test with automatic optimization,"
                " or remove the callback."
            )
        if not trainer.optimizers or not any(g.get("params") for g in trainer.optimizers[0].param_groups):
            raise MisconfigurationException(
                "LRRangeTestCallback needs an optimizer, but `configure_optimizers` returned none."
                " Return an optimizer from `configure_optimizers`."
            )
        optimizer = trainer.optimizers[0]
        _param_groups.prepare_for_scheduling([optimizer], "LRRangeTestCallback")
        if self.weight_decays and any("weight_decay" not in g for g in optimizer.param_groups):
            raise MisconfigurationException(
                f"LRRangeTestCallback(weight_decays=...) sets `weight_decay` in the param groups, but"
                f" {type(optimizer).__name__} has no `weight_decay`. Use an optimizer with weight decay"
                " (SGD, Adam, AdamW, ...) or drop `weight_decays`."
            )
        if self.update_attr:
            self._attr_name = _lr_attr_name(pl_module, self.update_attr)
        if self.stop_after_test and (trainer.fit_loop.min_epochs or trainer.fit_loop.min_steps):
            rank_zero_warn(
                "LRRangeTestCallback(stop_after_test=True) asks the fit to stop after the test, but `min_epochs` or"
                " `min_steps` make the Trainer train anyway.",
                category=UserWarning,
            )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._restored and self.result is not None:
            rank_zero_info(
                f"LRRangeTestCallback: reusing the range test result from the checkpoint"
                f" (suggested lr {self.result.suggested_lr})."
            )
            if self._attr_name is not None and self.result.suggested_lr is not None:
                lightning_setattr(pl_module, self._attr_name, self.result.suggested_lr)
        elif trainer.fast_dev_run:
            self.result = None
            rank_zero_warn("LRRangeTestCallback: skipping the range test because `fast_dev_run` is enabled.")
        else:
            self.result = None  # until this fit's test has a result: a failed sweep leaves none
            self.result = self._run(trainer, pl_module)
            self._report(trainer)
        if self.stop_after_test:
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"result": None if self.result is None else self.result.to_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        result = state_dict.get("result")
        self.result = None if result is None else RangeTestResult.from_dict(result)
        self._restored = True

    # --- the test ---------------------------------------------------------------------

    def _run(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> RangeTestResult:
        optimizer = trainer.optimizers[0]
        wd_groups = _decayed_groups(optimizer) if self.weight_decays else []
        snapshot = _Snapshot(trainer, pl_module, optimizer)
        sweeps: list[RangeTestResult] = []
        self._running = True
        try:
            with _ignored_logging(pl_module):
                for i, wd in enumerate(self.weight_decays or [None]):
                    if i > 0:
                        snapshot.restore()  # every weight decay starts from the same point
                    if wd is not None:
                        _set_weight_decay(optimizer, wd_groups, wd)
                    sweeps.append(self._sweep(trainer, pl_module, optimizer, wd))
        finally:
            self._running = False
            snapshot.restore()
            _reset_metrics(pl_module)
        if self.weight_decays:
            chosen = _choose_weight_decay(sweeps)
            result = RangeTestResult(**{**asdict(chosen), "sweeps": sweeps})
        else:
            result = sweeps[0]
        # The loss was averaged across ranks, so every rank holds the same curve; rank zero's is authoritative.
        result = RangeTestResult.from_dict(trainer.strategy.broadcast(result.to_dict()))
        if not self.stop_after_test:
            self._apply(optimizer, wd_groups, result)
        if self._attr_name is not None and result.suggested_lr is not None:
            lightning_setattr(pl_module, self._attr_name, result.suggested_lr)
        return result

    def _apply(self, optimizer: Optimizer, wd_groups: list[int], result: RangeTestResult) -> None:
        """Carry the chosen weight decay (and with ``update_attr`` the suggested lr) into training."""
        if result.weight_decay is not None:
            _set_weight_decay(optimizer, wd_groups, result.weight_decay)
        if self._attr_name is not None and result.suggested_lr is not None:
            for group, ratio in zip(optimizer.param_groups, _lr_ratios(optimizer)):
                _param_groups.set_lr(group, result.suggested_lr * ratio)

    def _sweep(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer, weight_decay: float | None
    ) -> RangeTestResult:
        ratios = _lr_ratios(optimizer)
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        batches = _Batches(trainer, pl_module)
        lrs: list[float] = []
        losses: list[float] = []
        running: list[float] = []
        average, best, skipped = 0.0, math.inf, 0
        stop_reason: StopReason = "completed"
        desc = "LR range test" if weight_decay is None else f"LR range test (wd={weight_decay:g})"
        bar = self._progress_bar(trainer, desc)
        try:
            while len(lrs) < self.sweep.num_steps:
                lr = self.sweep.lr(len(lrs))
                for group, ratio in zip(optimizer.param_groups, ratios):
                    _param_groups.set_lr(group, lr * ratio)
                scale = scaler.get_scale() if scaler is not None else None
                loss = _optimizer_step(trainer, pl_module, optimizer, batches)
                was_skipped = scale is not None and scaler.get_scale() < scale
                # One collective for both: every rank sees the same mean loss and the same skip decision.
                stats = torch.stack([loss.float(), loss.new_tensor(float(was_skipped), dtype=torch.float32)])
                stats = trainer.strategy.reduce(stats, reduce_op="mean")
                value, was_skipped = float(stats[0]), float(stats[1]) > 0
                if not math.isfinite(value):
                    stop_reason = "non-finite loss"
                    break
                if was_skipped:
                    # AMP's GradScaler found inf/NaN gradients and skipped the step: retry this lr.
                    skipped += 1
                    if skipped > MAX_SKIPPED_STEPS:
                        stop_reason = "diverged"
                        break
                    continue
                skipped = 0
                beta = self.smoothing
                average = beta * average + (1 - beta) * value
                smooth = average / (1 - beta ** (len(lrs) + 1))
                lrs.append(lr)
                losses.append(value)
                running.append(smooth)
                best = min(best, smooth)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(lr=f"{lr:.2e}", loss=f"{smooth:.4g}")
                threshold = self.divergence_threshold
                if threshold is not None and len(lrs) > 1 and best > 0 and smooth > threshold * best:
                    stop_reason = "diverged"
                    break
        finally:
            batches.close()
            if bar is not None:
                bar.close()
        smoothed = smooth_losses(lrs, losses).tolist()
        name, fn = resolve_strategy(
            self.suggestion,
            adaptive=_param_groups.uses_adaptive_steps(optimizer),
            nadam=isinstance(optimizer, torch.optim.NAdam),
        )
        return RangeTestResult(
            lrs=lrs,
            losses=losses,
            smoothed_losses=smoothed,
            running_losses=running,
            suggested_lr=suggest(lrs, smoothed, fn),
            suggestion=name,
            stop_reason=stop_reason,
            num_steps_run=len(lrs),
            weight_decay=weight_decay,
        )

    def _progress_bar(self, trainer: pl.Trainer, desc: str) -> Tqdm | None:
        bar = trainer.progress_bar_callback
        if not (self.progress_bar and trainer.is_global_zero and bar is not None and getattr(bar, "is_enabled", True)):
            return None
        return Tqdm(
            total=self.sweep.num_steps, desc=desc, leave=False, dynamic_ncols=True, file=sys.stdout, smoothing=0
        )

    # --- reporting ---------------------------------------------------------------------

    def _report(self, trainer: pl.Trainer) -> None:
        assert self.result is not None
        result = self.result
        # `trainer.log_dir` broadcasts, so every rank must ask for it, not only rank zero.
        dirpath = os.fspath(self.dirpath) if self.dirpath is not None else trainer.log_dir
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
        self._write(trainer, dirpath)

    @rank_zero_only
    def _write(self, trainer: pl.Trainer, dirpath: str | None) -> None:
        assert self.result is not None
        result = self.result
        figure = plot_weight_decay_sweep(result) if result.sweeps else plot_range_test(result)
        # A later fit of the same Trainer tests again: its files and tags must not overwrite the first test's.
        label = self._report_label(trainer.global_step)
        suffix = f"_{label}" if label else ""
        root = f"range_test/{label}" if label else "range_test"
        if self.save_files and dirpath is not None:
            os.makedirs(dirpath, exist_ok=True)
            stem = os.path.join(dirpath, FILE_STEM + suffix)
            result.write_csv(stem + ".csv")
            summary = {"config": self._config(), **result.to_dict()}
            with open(stem + ".json", "w") as f:
                json.dump(summary, f, indent=2)
            save_figure(figure, stem + ".png")
        if self.log_to_loggers and trainer.loggers:
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

    def _report_label(self, start: int) -> str:
        """What names this test's files and tags: nothing for the first, ``step<N>`` for one that starts at global
        step N > 0 (a later fit), and a count besides when that name was taken (a test-only fit leaves N at 0)."""
        base = f"step{start}" if start else ""
        taken = self._report_bases.count(base)
        self._report_bases.append(base)
        if not taken:
            return base
        return f"{base}_test{taken + 1}" if base else f"test{taken + 1}"

    def _config(self) -> dict[str, Any]:
        return {
            "min_lr": self.sweep.min_lr,
            "max_lr": self.sweep.max_lr,
            "num_steps": self.sweep.num_steps,
            "mode": self.sweep.mode,
            "smoothing": self.smoothing,
            "divergence_threshold": self.divergence_threshold,
            "suggestion": resolve_strategy(self.suggestion)[0] if callable(self.suggestion) else self.suggestion,
            "weight_decays": self.weight_decays,
        }


# --- one sweep step through the strategy --------------------------------------------------


class _Batches:
    """Batches of ``trainer.train_dataloader`` on the device, started again after each epoch's worth.

    An epoch's worth is ``trainer.num_training_batches``: the loader's length, or
    fewer with ``limit_train_batches``, so the sweep sees the batches training sees.
    """

    def __init__(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        iterables = trainer.train_dataloader
        if iterables is None:
            raise MisconfigurationException(
                "LRRangeTestCallback found no training data (`trainer.train_dataloader` is None)."
            )
        self.trainer = trainer
        # The same wrapper the fit loop uses, so the batches have the same structure as in training.
        self.loader = CombinedLoader(apply_to_collection(iterables, DataLoader, _own_workers), "max_size_cycle")
        self.convert_input = trainer.precision_plugin.convert_input
        datamodule = trainer.datamodule
        # `batch_to_device` applies `transfer_batch_to_device` and `on_after_batch_transfer`; the
        # loop applies `on_before_batch_transfer` itself, from the datamodule when it overrides it.
        if datamodule is not None and is_overridden("on_before_batch_transfer", datamodule):
            self.before_transfer = datamodule.on_before_batch_transfer
        else:
            self.before_transfer = pl_module.on_before_batch_transfer
        self.iterator: Iterator | None = None
        limit = trainer.num_training_batches  # inf for a loader without a length
        self.per_epoch = int(limit) if math.isfinite(limit) and limit > 0 else None
        self.taken = 0

    def next(self) -> tuple[Any, int]:
        for _ in range(2):
            if self.iterator is None or (self.per_epoch is not None and self.taken >= self.per_epoch):
                self.iterator, self.taken = iter(self.loader), 0
            try:
                batch, batch_idx, _ = next(self.iterator)
                break
            except StopIteration:
                self.iterator = None
        else:
            raise MisconfigurationException("LRRangeTestCallback: the training dataloader yields no batches.")
        self.taken += 1
        # As the fit loop does: the precision plugin's dtype first (`*-true` precision), then the hooks.
        batch = self.before_transfer(self.convert_input(batch), 0)
        return self.trainer.strategy.batch_to_device(batch, dataloader_idx=0), batch_idx

    def close(self) -> None:
        self.iterator = None


def _own_workers(loader: DataLoader) -> DataLoader:
    """``loader``, or for persistent workers a copy that starts its own workers on every pass.

    A DataLoader with persistent workers hands every ``iter()`` the one iterator that
    the fit loop already holds, its first epoch's order drawn and maybe a batch
    prefetched: the sweep must not restart it. The copy shares dataset, sampler and
    generator, so the RNG snapshot covers it.
    """
    if not (loader.persistent_workers and loader.num_workers > 0):
        return loader
    copied = copy.copy(loader)
    # DataLoader refuses to change `persistent_workers` after construction; this copy is the sweep's own.
    object.__setattr__(copied, "persistent_workers", False)
    object.__setattr__(copied, "_iterator", None)
    return copied


def _optimizer_step(
    trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer, batches: _Batches
) -> torch.Tensor:
    """One optimizer step over ``accumulate_grad_batches`` batches, as the automatic loop does it.

    Returns the mean raw loss of those batches (detached).
    """
    strategy = trainer.strategy
    k = trainer.accumulate_grad_batches
    raw: list[torch.Tensor] = []

    def forward(batch: Any, batch_idx: int) -> torch.Tensor:
        loss = _loss(strategy.training_step(batch, batch_idx))
        raw.append(loss.detach().float())
        return loss

    batch, batch_idx = batches.next()
    if k > 1:
        pl_module.optimizer_zero_grad(trainer.current_epoch, batch_idx, optimizer)
        for _ in range(k - 1):
            # No DDP gradient sync until the last batch, as in training.
            block = strategy.block_backward_sync() if isinstance(strategy, ParallelStrategy) else nullcontext()
            with block:
                strategy.backward(forward(batch, batch_idx) / k, optimizer)
            batch, batch_idx = batches.next()
    first_call = len(raw)

    def closure() -> torch.Tensor:
        # Optimizers such as LBFGS call the closure several times; record only the first loss.
        if k == 1:
            pl_module.optimizer_zero_grad(trainer.current_epoch, batch_idx, optimizer)
        loss = forward(batch, batch_idx)
        del raw[first_call + 1 :]
        strategy.backward(loss / k, optimizer)
        return loss.detach()

    strategy.optimizer_step(optimizer, closure)
    return torch.stack(raw).mean()


def _loss(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) and isinstance(output.get("loss"), torch.Tensor):
        return output["loss"]
    raise MisconfigurationException(
        "LRRangeTestCallback needs `training_step` to return the loss (a tensor, or a dict with a 'loss' tensor),"
        f" but it returned {type(output).__name__}. Return the loss for every batch."
    )


# --- saving and restoring the training state --------------------------------------------


class _Snapshot:
    """Everything the sweep changes, held in memory, and put back in place.

    Parameters and buffers are copied back in place (``load_state_dict``), so the
    optimizer's and the DDP wrapper's references stay valid.
    """

    def __init__(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer) -> None:
        self.trainer, self.pl_module, self.optimizer = trainer, pl_module, optimizer
        self.model = copy.deepcopy(pl_module.state_dict())
        # Non-persistent buffers are not in the state dict but change with training all the same.
        self.buffers = {name: b.detach().clone() for name, b in pl_module.named_buffers()}
        self.optimizer_state = copy.deepcopy(optimizer.state_dict())
        self.precision = copy.deepcopy(trainer.precision_plugin.state_dict())
        self.rng = _rng_state()
        self.generators = _loader_generators(trainer)
        self.generator_states = [g.get_state() for g in self.generators]

    def restore(self) -> None:
        self.pl_module.load_state_dict(self.model)
        with torch.no_grad():
            for name, buffer in self.pl_module.named_buffers():
                if name in self.buffers:
                    buffer.copy_(self.buffers[name])
        for param in self.pl_module.parameters():
            param.grad = None
        self.optimizer.load_state_dict(self.optimizer_state)
        self.trainer.precision_plugin.load_state_dict(copy.deepcopy(self.precision))
        _set_rng_state(self.rng)
        for generator, state in zip(self.generators, self.generator_states):
            generator.set_state(state)


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def _loader_generators(trainer: pl.Trainer) -> list[torch.Generator]:
    """The DataLoaders' own generators (``DataLoader(generator=...)``), which the sweep's shuffling advances."""
    found: dict[int, torch.Generator] = {}
    iterables = trainer.train_dataloader
    if iterables is None:
        return []
    for loader in CombinedLoader(iterables).flattened:
        batch_sampler = getattr(loader, "batch_sampler", None)
        for owner in (loader, getattr(loader, "sampler", None), getattr(batch_sampler, "sampler", None)):
            generator = getattr(owner, "generator", None)
            if isinstance(generator, torch.Generator):
                found[id(generator)] = generator
    return list(found.values())


@contextmanager
def _ignored_logging(pl_module: pl.LightningModule) -> Iterator[None]:
    """Make ``self.log``/``self.log_dict`` no-ops: the sweep must not reach epoch metrics (nor raise
    because logging is not allowed in ``on_train_start``)."""

    def ignore(*args: Any, **kwargs: Any) -> None:
        return None

    names = ("log", "log_dict")
    shadowed = {name: pl_module.__dict__[name] for name in names if name in pl_module.__dict__}
    for name in names:
        setattr(pl_module, name, ignore)
    try:
        yield
    finally:
        for name in names:
            if name in shadowed:
                setattr(pl_module, name, shadowed[name])
            else:
                delattr(pl_module, name)


def _reset_metrics(pl_module: pl.LightningModule) -> None:
    try:
        from torchmetrics import Metric
    except ImportError:  # pragma: no cover - torchmetrics is a dependency of lightning
        return
    for module in pl_module.modules():
        if isinstance(module, Metric):
            module.reset()


# --- small helpers -------------------------------------------------------------------------


def _lr_ratios(optimizer: Optimizer) -> list[float]:
    """Each group's lr relative to the largest, so the sweep keeps discriminative lrs."""
    return resolve_group_lrs(1.0, [optimizer], name="lr", owner="LRRangeTestCallback", keep_ratio=True)[0]


def _decayed_groups(optimizer: Optimizer) -> list[int]:
    """Indices of the groups that take the swept weight decay: those with one, or all when none has one.

    Indices, not the group dicts: ``Optimizer.load_state_dict`` replaces the dicts.
    """
    groups = optimizer.param_groups
    decayed = [i for i, g in enumerate(groups) if float(g.get("weight_decay", 0.0)) > 0]
    return decayed or list(range(len(groups)))


def _set_weight_decay(optimizer: Optimizer, indices: list[int], value: float) -> None:
    for i in indices:
        optimizer.param_groups[i]["weight_decay"] = value


def _choose_weight_decay(sweeps: list[RangeTestResult]) -> RangeTestResult:
    """The sweep whose smoothed loss reaches the lowest minimum, among those with a suggestion."""
    candidates = [s for s in sweeps if s.suggested_lr is not None] or sweeps
    return min(candidates, key=lambda s: min(s.smoothed_losses, default=math.inf))


def _check_weight_decays(weight_decays: Sequence[float] | None) -> list[float] | None:
    if weight_decays is None:
        return None
    if isinstance(weight_decays, (str, bytes)) or not isinstance(weight_decays, Sequence):
        raise ValueError(
            f"Expected `weight_decays` to be a list of weight decays such as [1e-4, 1e-3, 1e-2], but got"
            f" {weight_decays!r}."
        )
    if len(weight_decays) == 0:
        raise ValueError("`weight_decays` is empty. Give at least one value, e.g. [1e-4, 1e-3, 1e-2], or None.")
    for wd in weight_decays:
        if isinstance(wd, bool) or not isinstance(wd, (int, float)) or not math.isfinite(wd) or wd < 0:
            raise ValueError(
                f"Expected every weight decay to be a finite number >= 0, but `weight_decays` contains {wd!r}."
            )
    values = [float(wd) for wd in weight_decays]
    if len(set(values)) != len(values):
        raise ValueError(f"`weight_decays` lists a value twice: {weight_decays!r}. Give each weight decay once.")
    return values


def _lr_attr_name(pl_module: pl.LightningModule, update_attr: bool | str) -> str:
    candidates = (update_attr,) if isinstance(update_attr, str) else ("lr", "learning_rate")
    for name in candidates:
        if lightning_hasattr(pl_module, name):
            return name
    raise MisconfigurationException(
        f"LRRangeTestCallback(update_attr={update_attr!r}) sets the learning rate attribute, but neither the module"
        f" nor its `hparams` has {' or '.join(repr(c) for c in candidates)}. Add the attribute, pass its name as"
        " `update_attr='...'`, or use update_attr=False."
    )
