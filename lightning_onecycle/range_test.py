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

The callback only wires Lightning's hooks to its parts: the engine that steps
and restores through Lightning's internals (``_sweep_engine``), the loss
bookkeeping and stop rules (:mod:`~lightning_onecycle.loss_tracking`), the
result (:mod:`~lightning_onecycle.range_test_result`) and where it goes
(``_range_test_output``).

References:
    - L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017.
    - L. N. Smith, "A disciplined approach to neural network hyper-parameters:
      Part 1", 2018 (weight-decay sweep).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.strategies import DeepSpeedStrategy, FSDPStrategy, ModelParallelStrategy
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.parsing import lightning_hasattr, lightning_setattr
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from torch.optim import Optimizer

from lightning_onecycle import _param_groups, _range_test_output, _sweep_engine, _trainer
from lightning_onecycle._param_scheduler import (
    accumulation_factor,
    lr_argument,
    resolve_group_lrs,
    suggestion_goes_unused,
    training_batches_left,
)
from lightning_onecycle._settings import plain_numbers
from lightning_onecycle.loss_tracking import LossTracker, StopReason
from lightning_onecycle.range_test_result import RangeTestResult
from lightning_onecycle.schedules import LRSweep, SweepMode, check_bool, check_positive_finite
from lightning_onecycle.suggestions import (
    DEFAULT_STRATEGY,
    DIVERGENCE_RISE,
    StrategyName,
    SuggestionFn,
    read_curve,
    resolve_strategy,
    suggest_from,
)

__all__ = ["LRRangeTestCallback", "RangeTestResult", "StopReason", "is_range_test_running"]

MIN_NUM_STEPS = 10
"""Fewer sweep points than this leave too little curve to suggest from."""
COSTLY_SHARE = 0.25
"""A sweep that trains on more batches than this share of the fit's says so before it starts."""
FLAT_SHAPES = ("flat", "flat-without-divergence")
"""Curve shapes without a descent: what a sweep too short for the network to start learning shows."""


class LRRangeTestCallback(Callback):
    """Leslie Smith's LR range test, run at the start of ``trainer.fit`` through the Trainer's training step.

    Sweeps every param group's learning rate from ``min_lr`` to ``max_lr`` over
    ``num_steps`` optimizer steps (keeping the ratio between groups: the group
    with the largest configured lr follows the sweep), records the raw and
    smoothed loss, stops early when the loss blows up or is not finite, reads
    the curve's shape (a descent, or a flat curve that only blows up) and
    suggests a learning rate with a bracket and a confidence
    (:mod:`~lightning_onecycle.suggestions`). Then it restores model, optimizer, precision
    plugin (AMP's GradScaler) and the random number generators, so that the
    training that follows (``stop_after_test=False``) is bit-identical to a run
    without the test. :class:`~lightning_onecycle.OneCycleCallback` with
    ``max_lr=None`` or ``"auto"`` takes its peak lr from :attr:`suggested_lr`.

    The sweep draws batches from ``trainer.train_dataloader``, starting it again
    after each epoch's worth (``limit_train_batches`` applies), so short epochs
    and ``max_epochs`` do not cut it short. Mixed precision, gradient clipping,
    ``accumulate_grad_batches`` (each sweep point is one optimizer step over that
    many batches; with a ``GradientAccumulationScheduler``, its factor for the
    epoch the fit starts at) and DDP (the loss is averaged across ranks, so all
    ranks stop together and agree) apply as in training. Steps that AMP's GradScaler skips are retried at the same lr.
    During the sweep ``self.log`` calls are ignored and torchmetrics metrics of
    the module are reset afterwards; callbacks' ``on_before_backward``,
    ``on_after_backward`` and ``on_before_optimizer_step`` hooks do run (check
    :attr:`is_running` to tell sweep steps from training steps).

    The restore covers what the sweep changes in tensors (parameters, buffers,
    optimizer and GradScaler state) and the random number generators, not plain
    Python attributes that ``training_step`` changes (a step counter, a warm-up
    weight): leave those alone while :func:`is_range_test_running` is true, as
    for ``trainer.sanity_checking``, or save and restore them in the module's
    optional hooks ``on_lr_range_test_start()`` (called before the first sweep
    step, the flag true) and ``on_lr_range_test_end()`` (called after the
    restore, the flag false). The hooks wrap the whole test: between its sweeps
    (one per weight decay, and a longer one after a flat curve) only tensors
    and random number generators are restored.

    The result is written on rank zero to ``dirpath`` (default ``trainer.log_dir``)
    as ``lr_range_test.csv``, ``lr_range_test.json`` and ``lr_range_test.png``,
    logged as scalars ``range_test/loss``, ``range_test/smoothed_loss`` and
    ``range_test/lr`` (step = sweep point) to all loggers, and as the image
    ``range_test/plot`` to TensorBoard loggers. It is kept in checkpoints: a fit
    resumed from a checkpoint that holds a result does not run the test again,
    nor does one whose resumed :class:`~lightning_onecycle.OneCycleCallback` keeps
    the checkpoint's peak lr (its suggestion would go unused; one line says so)
    unless ``stop_after_test`` or ``weight_decays`` ask for the test itself.

    Args:
        min_lr: First learning rate of the sweep.
        max_lr: Last learning rate of the sweep.
        num_steps: Number of sweep points (optimizer steps), at least 10. A sweep that
            will train on more than a quarter (:data:`COSTLY_SHARE`) of the fit's
            training batches says so (a ``PossibleUserWarning``) before it starts.
        mode: ``"exponential"`` (geometric spacing) or ``"linear"``.
        smoothing: Beta of the bias-corrected running average of the loss shown in the
            progress bar and the CSV, in [0, 1); 0 is the raw loss. The suggestion reads a
            lag-free smoothing of the whole curve instead.
        divergence_threshold: Stop when the loss blows up: when it stands above its starting
            level by this many times its scale (how far it has fallen so far, at least three
            standard deviations of its noise) at three points in a row. Differences of losses
            only, so an offset of the loss changes nothing. ``None`` never stops early (a
            non-finite loss always does).
        suggestion: ``"auto"`` (default: for a curve with a descent, ``"edge"`` for SGD-style
            optimizers, ``"minimum"`` for adaptive ones such as Adam or RMSprop,
            ``"minimum_nadam"`` for NAdam; for a curve without one that blows up,
            ``"divergence"`` with SGD-style optimizers and no suggestion with adaptive ones), a
            strategy name in :data:`lightning_onecycle.suggestions.STRATEGIES` or a callable
            ``(lrs, smoothed_losses) -> lr | None``.
        longer_sweep: With ``suggestion="auto"``, a curve without a descent (flat within its
            noise, whether or not it blew up) is swept again from the restored start over the
            same lrs with ``longer_sweep`` times ``num_steps`` steps: a network that needs more
            steps than the sweep gives each lr shows no descent in a short sweep. The longer
            sweep's result is kept when it shows a descent; otherwise the first one's (and
            its message says the longer sweep showed none either). With ``weight_decays``, a
            flat curve for any of them sweeps all of them again, and the longer sweeps are
            compared (one length for all). ``None`` or 1: never.
        stop_after_test: ``False``: test, then train. ``True``: the fit ends after
            the test, without a training step.
        weight_decays: Run one sweep per weight decay from the same starting point
            (Smith's weight-decay search) and choose the one whose smoothed curve
            reaches the lowest minimum among those with a suggestion (none when no
            sweep has one: the optimizer's weight decay stays). The value is
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
            ``trainer.log_dir`` (``default_root_dir`` without a logger). Created at
            ``setup``; files of an earlier run there are kept, the new ones get the
            next free name (``lr_range_test_2.*``, ...), and the log line says where.
        save_files: Write the CSV, JSON and PNG files.
        log_to_loggers: Log the curve as scalars and the plot as an image.

    Raises:
        ValueError: If a setting is invalid; the message says which and how to fix it.
        MisconfigurationException: At ``setup``, if ``dirpath`` cannot be created or
            written to. Before the first batch, if the module uses manual
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
        suggestion: StrategyName | SuggestionFn = DEFAULT_STRATEGY,
        longer_sweep: int | None = 3,
        stop_after_test: bool = False,
        weight_decays: Sequence[float] | None = None,
        update_attr: bool | str = False,
        progress_bar: bool = True,
        dirpath: str | os.PathLike | None = None,
        save_files: bool = True,
        log_to_loggers: bool = True,
    ) -> None:
        min_lr, max_lr, num_steps, smoothing, divergence_threshold, weight_decays, longer_sweep = plain_numbers(
            (min_lr, max_lr, num_steps, smoothing, divergence_threshold, weight_decays, longer_sweep)
        )
        min_lr = lr_argument("min_lr", min_lr, "a positive number", per_group=False)
        max_lr = lr_argument("max_lr", max_lr, "a positive number", per_group=False)
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
            # A multiple of the loss's scale above its starting level: any positive number.
            check_positive_finite("divergence_threshold", divergence_threshold)
        resolve_strategy(suggestion)  # fail now on an unknown name
        self.suggestion = suggestion
        if longer_sweep is not None and (
            isinstance(longer_sweep, bool) or not isinstance(longer_sweep, int) or longer_sweep < 1
        ):
            raise ValueError(
                f"Expected `longer_sweep` to be an integer >= 1 (how many times longer the second sweep of a flat"
                f" curve is) or None (never sweep again), but got {longer_sweep!r}."
            )
        self.longer_sweep = longer_sweep
        self.weight_decays = _check_weight_decays(weight_decays)
        self.sweep = LRSweep(min_lr, max_lr, num_steps, mode)
        self.smoothing = float(smoothing)
        self.divergence_threshold = divergence_threshold
        self.stop_after_test = check_bool("stop_after_test", stop_after_test)
        self.update_attr = _check_update_attr(update_attr)
        self.progress_bar = check_bool("progress_bar", progress_bar)
        self.dirpath = _range_test_output.check_dirpath(dirpath)
        self.save_files = check_bool("save_files", save_files)
        self.log_to_loggers = check_bool("log_to_loggers", log_to_loggers)
        self.result: RangeTestResult | None = None
        self._attr_name: str | None = None
        self._running = False
        self._restored = False
        self._labels = _range_test_output.ReportLabels()  # names each test's files and tags apart

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
            if self.save_files and self.dirpath is not None:
                # A directory that cannot take the files fails now, not after the whole sweep.
                _range_test_output.prepare_directory(trainer, os.fspath(self.dirpath))

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _check_strategy(trainer.strategy)
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
            if self.result.suggested_lr is None:
                # Said again: what reads the suggestion (1cycle) points at this warning for the reason.
                why = self.result.message or f"its curve gave none (stop reason: {self.result.stop_reason})."
                rank_zero_warn(
                    f"LRRangeTestCallback: the range test result from the checkpoint has no suggestion: {why}",
                    category=UserWarning,
                )
        elif _trainer.fast_dev_run(trainer):
            self.result = None
            rank_zero_warn("LRRangeTestCallback: skipping the range test because `fast_dev_run` is enabled.")
        elif not (self.stop_after_test or self.weight_decays) and suggestion_goes_unused(self, trainer):
            # Neither the curve alone (stop_after_test) nor a chosen weight decay is asked for: nothing would use it.
            self.result = None
            rank_zero_info(
                "LRRangeTestCallback: skipping the range test: this fit resumes a checkpoint whose 1cycle schedule"
                " keeps its peak lr, so a new suggestion would go unused. To test again and start a new cycle, load"
                " the checkpoint's weights and fit without `ckpt_path`."
            )
        else:
            self.result = None  # until this fit's test has a result: a failed sweep leaves none
            self._warn_if_costly(trainer)
            self.result = self._run(trainer, pl_module)
            self._report(trainer, self.result)
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
        began = time.perf_counter()
        optimizer = trainer.optimizers[0]
        wd_groups = _decayed_groups(optimizer) if self.weight_decays else []
        snapshot = _sweep_engine.Snapshot(trainer, pl_module, optimizer)
        sweeps: list[RangeTestResult] = []
        self._running = True
        try:
            _call_module_hook(pl_module, "on_lr_range_test_start")
            with _sweep_engine.ignored_logging(pl_module):
                weight_decays: Sequence[float | None] = self.weight_decays or [None]

                def sweep_each(sweep: LRSweep, restore_first: bool) -> list[RangeTestResult]:
                    found = []
                    for i, wd in enumerate(weight_decays):
                        if i > 0 or restore_first:
                            snapshot.restore()  # every sweep starts from the same point
                        if wd is not None:
                            _set_weight_decay(optimizer, wd_groups, wd)
                        found.append(self._sweep(trainer, pl_module, optimizer, wd, sweep))
                    return found

                sweeps = sweep_each(self.sweep, restore_first=False)
                # Every rank asks about every sweep (no short-circuit): each question is a broadcast.
                if any([self._sweeps_again(trainer, found) for found in sweeps]):
                    longer = self._longer()
                    # All weight decays again, so that they are compared on sweeps of one length.
                    sweeps = [
                        _after_longer_sweep(first, again, longer.num_steps, keep_longer=len(sweeps) > 1)
                        for first, again in zip(sweeps, sweep_each(longer, restore_first=True))
                    ]
        finally:
            self._running = False
            snapshot.restore()
            _sweep_engine.reset_metrics(pl_module)
            _call_module_hook(pl_module, "on_lr_range_test_end")
        if self.weight_decays:
            chosen = _choose_weight_decay(sweeps)
            result = RangeTestResult(**{**asdict(chosen), "sweeps": sweeps})
            if chosen.suggested_lr is None:
                # No curve read anything, so the lowest minimum is noise: nothing to choose a weight decay by.
                result.weight_decay = None
                result.message = (
                    ("" if result.message is None else result.message + " ")
                    + f"No sweep of weight_decays={self.weight_decays} suggested an lr, so none is chosen: the"
                    " weight decay stays the optimizer's."
                )
        else:
            result = sweeps[0]
        result.seconds = time.perf_counter() - began
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

    @property
    def _may_sweep_again(self) -> bool:
        """Whether a flat curve gets a longer sweep: ``longer_sweep`` above 1 and ``suggestion="auto"``."""
        return self.longer_sweep is not None and self.longer_sweep > 1 and self.suggestion == DEFAULT_STRATEGY

    def _sweeps_again(self, trainer: pl.Trainer, result: RangeTestResult) -> bool:
        """Whether a curve without a descent gets a longer sweep; every rank takes rank zero's decision."""
        if not self._may_sweep_again:
            return False
        flat = result.shape in FLAT_SHAPES and result.stop_reason != "gradient overflow"
        return bool(trainer.strategy.broadcast(flat))

    def _longer(self) -> LRSweep:
        steps = self.sweep.num_steps * (self.longer_sweep or 1)
        return LRSweep(self.sweep.min_lr, self.sweep.max_lr, steps, self.sweep.mode)

    def _sweep(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        optimizer: Optimizer,
        weight_decay: float | None,
        sweep: LRSweep,
    ) -> RangeTestResult:
        ratios = _lr_ratios(optimizer)
        accumulation = accumulation_factor(trainer)  # the first epoch's, as training will have it
        batches = _sweep_engine.Batches(trainer, pl_module)
        tracker = LossTracker(self.smoothing, self.divergence_threshold, num_steps=sweep.num_steps)
        desc = "LR range test" if weight_decay is None else f"LR range test (wd={weight_decay:g})"
        if sweep.num_steps != self.sweep.num_steps:
            desc += ", longer"
        bar = _sweep_engine.progress_bar(trainer, sweep.num_steps, desc) if self.progress_bar else None
        try:
            while tracker.num_points < sweep.num_steps:
                lr = sweep.lr(tracker.num_points)
                for group, ratio in zip(optimizer.param_groups, ratios):
                    _param_groups.set_lr(group, lr * ratio)
                loss, skipped = _sweep_engine.sweep_step(trainer, pl_module, optimizer, batches, accumulation)
                recorded = tracker.num_points
                stop = tracker.update(lr, loss, skipped)
                if bar is not None and tracker.num_points > recorded:
                    bar.update(1)
                    bar.set_postfix(lr=f"{lr:.2e}", loss=f"{tracker.running_losses[-1]:.4g}")
                if stop is not None:
                    break
        finally:
            batches.close()
            if bar is not None:
                bar.close()
        lrs, losses = tracker.lrs, tracker.losses
        # The point whose loss was not finite is not recorded, but the curve is read as ending there.
        ending = [] if tracker.nonfinite_lr is None else [tracker.nonfinite_lr]
        rise = self.divergence_threshold or DIVERGENCE_RISE
        reading = read_curve(
            lrs + ending,
            losses + [math.nan] * len(ending),
            divergence_rise=rise,
            level_points=tracker.head,  # as the divergence stop read them, so the two agree on the curve
            divergence_at=tracker.divergence_index,
        )
        adaptive = _param_groups.uses_adaptive_steps(optimizer)
        found = suggest_from(
            reading, self.suggestion, adaptive=adaptive, nadam=isinstance(optimizer, torch.optim.NAdam)
        )
        result = RangeTestResult(
            lrs=lrs,
            losses=losses,
            smoothed_losses=reading.smoothed[: len(lrs)].tolist(),
            running_losses=tracker.running_losses,
            suggested_lr=found.lr,
            suggestion=found.strategy,
            stop_reason=tracker.stop_reason or "completed",
            num_steps_run=tracker.num_points,
            weight_decay=weight_decay,
            shape=reading.shape,
            confidence=found.confidence,
            suggestion_bracket=None if found.bracket is None else list(found.bracket),
            divergence_lr=reading.divergence_lr,
            nonfinite_lr=tracker.nonfinite_lr,
            still_falling=reading.still_falling,
        )
        adaptive_auto = adaptive and self.suggestion == DEFAULT_STRATEGY
        result.message = _range_test_output.explain(result, sweep.min_lr, sweep.max_lr, adaptive_auto)
        return result

    def _warn_if_costly(self, trainer: pl.Trainer) -> None:
        """Say up front when the sweep trains on more than :data:`COSTLY_SHARE` of the fit's batches.

        A sweep step costs about what a training step does, so the share of batches is
        the share of training time the test adds, which a long sweep before a short fit
        hides until it hurts. Nothing to say when the test is all the fit does.
        """
        if self.stop_after_test:
            return
        fit_batches = training_batches_left(trainer)
        accumulation = accumulation_factor(trainer)
        sweeps = len(self.weight_decays or [None])
        sweep_batches = self.sweep.num_steps * accumulation * sweeps
        if not fit_batches or sweep_batches <= COSTLY_SHARE * fit_batches:
            return
        of = [f"{self.sweep.num_steps} steps"]
        if accumulation > 1:
            of[0] += f" of {accumulation} batches"
        if sweeps > 1:
            of.append(f"for each of {sweeps} weight decays")
        share = f"{sweep_batches / fit_batches:.0%}"
        enough = int(COSTLY_SHARE * fit_batches / (accumulation * sweeps))
        if enough >= MIN_NUM_STEPS:
            shorter = f"pass a smaller `num_steps` (num_steps={enough} keeps it within {COSTLY_SHARE:.0%})"
        elif self.sweep.num_steps > MIN_NUM_STEPS:
            shorter = (
                f"pass a smaller `num_steps` (at least {MIN_NUM_STEPS}), or test once with stop_after_test=True"
                " and pass the suggestion as the peak lr"
            )
        else:  # already the shortest sweep there is: only testing apart from this fit can save its cost
            shorter = "test once with stop_after_test=True and pass the suggestion as the peak lr"
        again = (
            f" ({(self.longer_sweep or 1) + 1} times that in all if its curve shows no descent and it sweeps again"
            f" with longer_sweep={self.longer_sweep} times the steps)"
            if self._may_sweep_again
            else ""
        )
        rank_zero_warn(
            f"LRRangeTestCallback: the range test will train on {sweep_batches} batches ({' '.join(of)}) before"
            f" training starts, {share} of this fit's {fit_batches} training batches, so it adds about {share} to the"
            f" training time{again}. To shorten it, {shorter}.",
            category=PossibleUserWarning,
        )

    # --- reporting ---------------------------------------------------------------------

    def _report(self, trainer: pl.Trainer, result: RangeTestResult) -> None:
        # `trainer.log_dir` broadcasts, so every rank must ask for it, not only rank zero.
        dirpath = os.fspath(self.dirpath) if self.dirpath is not None else trainer.log_dir
        stem = _range_test_output.write_report(
            trainer, result, self._labels, dirpath, self._config(), self.save_files, self.log_to_loggers
        )
        _range_test_output.announce(result, stem)

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
            "longer_sweep": self.longer_sweep,
        }


def is_range_test_running(trainer: pl.Trainer | None) -> bool:
    """Whether an :class:`LRRangeTestCallback` of ``trainer`` is sweeping now (``False`` for ``None``).

    What ``trainer.sanity_checking`` is for validation: the sweep calls the
    module's ``training_step``, whose plain Python state (a step counter, a
    warm-up weight, a curriculum stage) the restore after the sweep cannot know
    of. Leave such state alone while this is true, or save and restore it in the
    module's ``on_lr_range_test_start``/``on_lr_range_test_end`` hooks.

    Example::

        >>> import lightning.pytorch as pl
        >>> class Model(pl.LightningModule):
        ...     def training_step(self, batch, batch_idx):
        ...         if not is_range_test_running(self.trainer):
        ...             self.steps_seen += 1  # training steps only
        ...         ...
        >>> is_range_test_running(pl.Trainer(callbacks=[LRRangeTestCallback()], logger=False))
        False
    """
    if trainer is None:
        return False
    return any(isinstance(c, LRRangeTestCallback) and c.is_running for c in _trainer.callbacks(trainer))


# --- small helpers -------------------------------------------------------------------------


def _after_longer_sweep(
    first: RangeTestResult, longer: RangeTestResult, steps: int, keep_longer: bool = False
) -> RangeTestResult:
    """The longer sweep's (``steps`` planned) result if it shows a descent or ``keep_longer`` (the sweeps of a
    weight-decay search, compared at one length), else the first one's; either says what happened in its message."""
    kept = longer if longer.shape == "descent" or keep_longer else first
    if first.shape == "descent":
        note = f"Swept again with {steps} steps, as another weight decay's curve showed no descent."
    elif longer.shape == "descent":
        note = (
            f"The first sweep ({first.num_steps_run} steps) showed no descent; a sweep of {steps} steps from"
            f" the same start did, and the suggestion reads it (pass num_steps={steps} to skip the short sweep"
            " next time)."
        )
    else:
        note = f"A sweep of {steps} steps from the same start showed no descent either."
    message = f"{kept.message} {note}" if kept.message else note
    return replace(kept, swept_again=True, message=message)


def _check_strategy(strategy: object) -> None:
    """Sharded strategies shard parameters and optimizer state: the sweep's snapshot cannot restore them."""
    if isinstance(strategy, (FSDPStrategy, DeepSpeedStrategy, ModelParallelStrategy)):
        raise MisconfigurationException(
            f"LRRangeTestCallback does not support {type(strategy).__name__}: it shards parameters and optimizer"
            " state across processes, which the test's snapshot and restore do not handle. Run the range test"
            " with strategy='ddp' (or on one device) and pass its suggestion as the peak lr."
        )


def _call_module_hook(pl_module: pl.LightningModule, name: str) -> None:
    """Call the module's optional range-test hook ``name`` (no arguments) if it defines one."""
    hook = getattr(pl_module, name, None)
    if callable(hook):
        hook()


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


def _check_update_attr(value: object) -> bool | str:
    """``update_attr`` as a bool or an attribute name; a bool written as a string is neither."""
    if isinstance(value, str) and value.strip() and value.strip().lower() not in ("true", "false", "none"):
        return value
    if not isinstance(value, str):
        try:
            return check_bool("update_attr", value)
        except ValueError:
            pass
    word = value.strip().lower() if isinstance(value, str) else None
    fix = f" Pass the bool {word.capitalize()}, not a string." if word in ("true", "false") else ""
    raise ValueError(
        f"Expected `update_attr` to be True, False or the attribute's name (such as 'lr'), but got {value!r}"
        f" ({type(value).__name__}).{fix}"
    )


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
