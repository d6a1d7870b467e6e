"""``OneCycleCallback``: Smith's 1cycle policy applied every optimizer step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, Union

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch.optim import Optimizer

from lightning_onecycle._param_scheduler import (
    LRSpec,
    ParamGroupScheduler,
    plain_numbers,
    resolve_group_lrs,
    total_steps_from_trainer,
)
from lightning_onecycle.schedules import AnnealStrategy, OneCycleSchedule, Schedule, check_positive_finite

if TYPE_CHECKING:
    from lightning_onecycle.range_test import LRRangeTestCallback

MaxLR = Union[float, list[float], Literal["auto"], "LRRangeTestCallback", None]


def find_range_test(trainer: pl.Trainer) -> LRRangeTestCallback | None:
    """The Trainer's ``LRRangeTestCallback``, or ``None``."""
    from lightning_onecycle.range_test import LRRangeTestCallback

    for callback in trainer.callbacks:
        if isinstance(callback, LRRangeTestCallback):
            return callback
    return None


def suggested_max_lr(range_test: LRRangeTestCallback, factor: float, owner: str) -> float:
    """The range test's suggestion times ``factor``, or a clear error when there is none."""
    suggestion = range_test.suggested_lr
    if suggestion is None:
        raise MisconfigurationException(
            f"{owner} takes its max LR from the LR range test, but the test gave no suggestion"
            f" (stop reason: {getattr(range_test.result, 'stop_reason', 'the test has not run')})."
            " Pass `max_lr=...` explicitly, or widen the range test (min_lr, max_lr, num_steps)."
        )
    return suggestion * factor


class OneCycleCallback(ParamGroupScheduler):
    """Leslie Smith's 1cycle policy for every param group, changed every optimizer step.

    Replaces ``torch.optim.lr_scheduler.OneCycleLR`` in ``configure_optimizers``
    (return only the optimizer). Values are identical to ``OneCycleLR``'s for the
    same settings (with several param groups, ``keep_group_ratios=False`` gives a
    float ``max_lr`` to every group as ``OneCycleLR`` does); defaults are
    ``OneCycleLR``'s. Unlike ``OneCycleLR`` it finds the number of steps itself,
    survives resume, holds the final value if training runs past the last step,
    and takes its peak lr from an :class:`~lightning_onecycle.LRRangeTestCallback`
    when one runs first.

    Args:
        max_lr: Peak learning rate. ``None`` (default): the range test's suggestion
            when an ``LRRangeTestCallback`` is among the Trainer's callbacks, else each
            group's lr from ``configure_optimizers``. ``"auto"`` or the range-test
            callback itself: the suggestion (an error if there is no range test).
            A float: the peak of the group with the largest configured lr; other
            groups keep their ratio to it (discriminative LRs) unless
            ``keep_group_ratios=False``. A list: one peak per param group.
        total_steps: Optimizer steps in the cycle; ``None`` uses
            ``trainer.estimated_stepping_batches`` (max_epochs, max_steps,
            limit_train_batches, accumulation, a ``GradientAccumulationScheduler``
            and devices all count). A second ``fit`` of the same Trainer starts a
            new cycle over the steps it has left; a resumed fit keeps the
            checkpoint's cycle (and warns if this run's settings differ).
        pct_start: Fraction of the cycle spent raising the lr, in (0, 1).
        anneal_strategy: ``"cos"`` or ``"linear"``.
        div_factor: Start lr is ``max_lr / div_factor``.
        final_div_factor: Final lr is ``max_lr / div_factor / final_div_factor``.
        three_phase: Use the three-phase variant.
        base_momentum: Momentum (Adam's beta1) at the peak lr.
        max_momentum: Momentum at the start and end.
        cycle_momentum: ``True`` requires momentum/betas in every group, ``None``
            cycles where available and warns once, ``False`` leaves momentum alone.
        keep_group_ratios: With a float ``max_lr``, scale groups by their configured ratio.
            A group configured at lr 0 is then frozen and left alone (``False``, or a list, gives it an lr).
        max_lr_factor: Multiplies the range test's suggestion (e.g. ``0.5`` for margin).
        log_every_n_steps: Log lr and momentum every this many steps (``0``: never).

    Raises:
        ValueError: If a setting is out of range; the message names it.
        MisconfigurationException: Before the first batch, if ``configure_optimizers``
            also returns a scheduler, the lrs are not positive and finite, a ``max_lr``
            list has the wrong length, the step count is unknown, or ``"auto"`` is
            asked for without a range test.

    Example::

        >>> import lightning.pytorch as pl
        >>> from lightning_onecycle import LRRangeTestCallback, OneCycleCallback
        >>> trainer = pl.Trainer(callbacks=[LRRangeTestCallback(), OneCycleCallback()])
    """

    def __init__(
        self,
        max_lr: MaxLR = None,
        total_steps: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: AnnealStrategy = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
        cycle_momentum: bool | None = None,
        keep_group_ratios: bool = True,
        max_lr_factor: float = 1.0,
        log_every_n_steps: int = 1,
    ) -> None:
        super().__init__(cycle_momentum=cycle_momentum, log_every_n_steps=log_every_n_steps)
        max_lr, total_steps, max_lr_factor = plain_numbers((max_lr, total_steps, max_lr_factor))
        pct_start, div_factor, final_div_factor, base_momentum, max_momentum = plain_numbers(
            (pct_start, div_factor, final_div_factor, base_momentum, max_momentum)
        )
        # Validate every number now by building a schedule with a stand-in lr and length.
        OneCycleSchedule(
            max_lr=1.0,
            total_steps=total_steps if total_steps is not None else 100,
            pct_start=pct_start,
            anneal_strategy=anneal_strategy,
            div_factor=div_factor,
            final_div_factor=final_div_factor,
            three_phase=three_phase,
            base_momentum=base_momentum,
            max_momentum=max_momentum,
        )
        _validate_max_lr(max_lr, "OneCycleCallback")
        check_positive_finite("max_lr_factor", max_lr_factor)
        self.max_lr = max_lr
        self.requested_total_steps = total_steps
        self.keep_group_ratios = keep_group_ratios
        self.max_lr_factor = max_lr_factor
        self.schedule_kwargs: dict[str, Any] = {
            "pct_start": pct_start,
            "anneal_strategy": anneal_strategy,
            "div_factor": div_factor,
            "final_div_factor": final_div_factor,
            "three_phase": three_phase,
            "base_momentum": base_momentum,
            "max_momentum": max_momentum,
        }

    def _range_test(self, trainer: pl.Trainer) -> LRRangeTestCallback | None:
        from lightning_onecycle.range_test import LRRangeTestCallback

        if isinstance(self.max_lr, LRRangeTestCallback):
            return self.max_lr
        if self.max_lr in (None, "auto"):
            return find_range_test(trainer)
        return None

    def _check_trainer(self, trainer: pl.Trainer) -> None:
        from lightning_onecycle.range_test import LRRangeTestCallback

        range_test = self._range_test(trainer)
        if self.max_lr == "auto" and range_test is None:
            raise MisconfigurationException(
                "OneCycleCallback(max_lr='auto') takes its max LR from an LR range test, but the Trainer has no"
                " LRRangeTestCallback. Add `LRRangeTestCallback()` to the Trainer's callbacks or pass a number."
            )
        if isinstance(self.max_lr, LRRangeTestCallback) and self.max_lr not in trainer.callbacks:
            raise MisconfigurationException(
                "OneCycleCallback was given an LRRangeTestCallback as `max_lr` that is not among the Trainer's"
                " callbacks, so it will never run. Add the same instance to `Trainer(callbacks=[...])`."
            )

    def _check_before_training(self, trainer: pl.Trainer) -> None:
        # What can fail without the range test's result fails now, before its sweep.
        if self.requested_total_steps is None:
            total_steps_from_trainer(trainer, "OneCycleCallback")
        if self._range_test(trainer) is None:
            kwargs = {"name": "max_lr", "owner": "OneCycleCallback", "keep_ratio": self.keep_group_ratios}
            resolve_group_lrs(self.max_lr, trainer.optimizers, **kwargs)  # type: ignore[arg-type]

    def _ignored_on_resume(self, trainer: pl.Trainer) -> list[str]:
        resolved = self._resolved or {}
        ignored = [f"{k}={v!r}" for k, v in self.schedule_kwargs.items() if k in resolved and resolved[k] != v]
        if self.requested_total_steps is not None and self.requested_total_steps != resolved.get("total_steps"):
            ignored.append(f"total_steps={self.requested_total_steps}")
        if self._range_test(trainer) is None and self.max_lr is not None and self._groups_as_scheduled(trainer):
            kwargs = {"name": "max_lr", "owner": "OneCycleCallback", "keep_ratio": self.keep_group_ratios}
            try:
                now = resolve_group_lrs(self.max_lr, trainer.optimizers, **kwargs)  # type: ignore[arg-type]
            except MisconfigurationException:
                now = None
            if now != resolved.get("max_lrs"):
                ignored.append(f"max_lr={self.max_lr!r}")
        return ignored

    def _length_is_explicit(self) -> bool:
        # The same `total_steps` again: that length was asked for, whatever the run's.
        return self.requested_total_steps is not None and self.requested_total_steps == self.total_steps_resolved

    def _resolve(self, trainer: pl.Trainer, optimizers: list[Optimizer]) -> dict[str, Any]:
        # At least 1: a batch is running, whatever the Trainer's estimate said.
        total_steps = self.requested_total_steps or max(1, total_steps_from_trainer(trainer, "OneCycleCallback"))
        range_test = self._range_test(trainer)
        spec: LRSpec | None
        if range_test is not None and range_test.result is None and trainer.fast_dev_run:
            rank_zero_warn(
                "OneCycleCallback: the LR range test was skipped (`fast_dev_run`), so this smoke run peaks at the"
                " optimizer's configured lr.",
                category=UserWarning,
            )
            spec = None
        elif range_test is not None:
            spec = suggested_max_lr(range_test, self.max_lr_factor, "OneCycleCallback")
        else:
            spec = self.max_lr  # type: ignore[assignment]
        max_lrs = resolve_group_lrs(
            spec, optimizers, name="max_lr", owner="OneCycleCallback", keep_ratio=self.keep_group_ratios
        )
        return {"total_steps": total_steps, "max_lrs": max_lrs, **self.schedule_kwargs}

    def _build(self, resolved: dict[str, Any]) -> list[list[Schedule | None]]:
        kwargs = {k: v for k, v in resolved.items() if k != "max_lrs"}
        # A group at lr 0 is frozen: no schedule, left alone.
        return [
            [OneCycleSchedule(max_lr=lr, **kwargs) if lr > 0 else None for lr in lrs] for lrs in resolved["max_lrs"]
        ]


def _validate_max_lr(max_lr: Any, owner: str) -> None:
    from lightning_onecycle.range_test import LRRangeTestCallback

    if max_lr is None or max_lr == "auto" or isinstance(max_lr, LRRangeTestCallback):
        return
    if isinstance(max_lr, str):
        raise ValueError(f"{owner}: `max_lr` must be a number, a list, 'auto' or None, but got {max_lr!r}.")
    values = [max_lr] if isinstance(max_lr, (int, float)) else list(max_lr)
    for v in values:
        check_positive_finite("max_lr", v)
