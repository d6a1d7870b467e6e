"""``CyclicLRCallback``: Smith's cyclical learning rates (CLR) applied every optimizer step.

Its settings (:class:`CyclicSettings`) are checked when the callback is built;
at the first batch they resolve, with the Trainer's param groups (and for step
sizes in epochs, its epoch length), into a :class:`CyclicPlan`, the numbers the
checkpoint keeps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import lightning.pytorch as pl
from lightning.pytorch.callbacks import GradientAccumulationScheduler
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_onecycle import _trainer
from lightning_onecycle._param_scheduler import LRSpec, ParamGroupScheduler, lr_argument, resolve_group_lrs
from lightning_onecycle._settings import PlainFields, field_values, frozen_numbers, settings_from
from lightning_onecycle.schedules import (
    CyclicMode,
    CyclicSchedule,
    CyclicShape,
    Schedule,
    check_bool,
    check_positive_finite,
)

__all__ = ["CyclicLRCallback", "CyclicPlan", "CyclicSettings"]

StepSizeUnit = Literal["steps", "epochs"]


@dataclass(frozen=True, kw_only=True)
class CyclicSettings(PlainFields, CyclicShape):
    """What a :class:`CyclicLRCallback` was given that fixes its schedule (see its arguments); lists as tuples.

    Raises:
        ValueError: If a value is out of range; the message names it.
    """

    base_lr: float | Sequence[float]
    max_lr: float | Sequence[float] | None = None
    keep_group_ratios: bool = True
    step_size_unit: StepSizeUnit = "steps"

    def __post_init__(self) -> None:
        if self.step_size_unit not in ("steps", "epochs"):
            raise ValueError(f"Expected `step_size_unit` to be 'steps' or 'epochs', but got {self.step_size_unit!r}.")
        accepted = "a positive number or a list of them (one per param group)"
        object.__setattr__(self, "base_lr", lr_argument("base_lr", self.base_lr, accepted))
        if self.max_lr is not None:
            accepted += ", or None (each group's lr from `configure_optimizers`)"
            object.__setattr__(self, "max_lr", lr_argument("max_lr", self.max_lr, accepted))
        super().__post_init__()  # plain values, then the shape's checks
        for name, spec in (("base_lr", self.base_lr), ("max_lr", self.max_lr)):
            if spec is not None:
                for v in spec if isinstance(spec, tuple) else (spec,):
                    check_positive_finite(name, v)
        object.__setattr__(self, "keep_group_ratios", check_bool("keep_group_ratios", self.keep_group_ratios))


@dataclass(frozen=True, kw_only=True)
class CyclicPlan(PlainFields, CyclicShape):
    """A run's CLR: the shape (step sizes in optimizer steps) and each param group's bounds (0: a frozen group)."""

    base_lrs: tuple[tuple[float, ...], ...]
    max_lrs: tuple[tuple[float, ...], ...]

    def schedules(self) -> list[list[Schedule | None]]:
        shape = field_values(self, CyclicShape)
        return [
            [CyclicSchedule(base_lr=b, max_lr=m, **shape) if m > 0 else None for b, m in zip(bases, peaks)]
            for bases, peaks in zip(self.base_lrs, self.max_lrs)
        ]


class CyclicLRCallback(ParamGroupScheduler):
    """Cyclical learning rate (and optionally momentum) for every param group.

    Replaces ``torch.optim.lr_scheduler.CyclicLR`` in ``configure_optimizers``;
    values are identical for the same settings (with several param groups, pass
    ``keep_group_ratios=False`` for ``CyclicLR``'s one float for all groups). The
    cycle runs for as long as training does.

    Args:
        base_lr: Lower lr bound: a float (kept in ratio across groups unless
            ``keep_group_ratios=False``) or one value per param group.
        max_lr: Upper lr bound, same forms as ``base_lr``; ``None`` uses each
            group's lr from ``configure_optimizers``.
        step_size_up: Optimizer steps (or epochs, see ``step_size_unit``) from ``base_lr`` to ``max_lr``.
        step_size_down: Steps (or epochs) back down; defaults to ``step_size_up``.
        mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
        gamma: Decay base for ``"exp_range"`` (``gamma ** step``).
        base_momentum: Momentum at the lr peak.
        max_momentum: Momentum at ``base_lr``.
        cycle_momentum: ``True`` requires momentum/betas in every group, ``None``
            (default) cycles where available and warns once, ``False`` leaves it alone.
        keep_group_ratios: Scale float bounds by each group's configured lr ratio.
        log_every_n_steps: Log lr and momentum every this many steps (``0``: never).
        step_size_unit: ``"steps"`` (``CyclicLR``'s) or ``"epochs"``: the step sizes are
            epochs, possibly fractional (Smith suggests 2 to 10), turned into optimizer
            steps at the start of training from the epoch the Trainer runs
            (``limit_train_batches``, accumulation, one process's share under DDP).

    Raises:
        ValueError: If a setting is out of range; the message names it.
        MisconfigurationException: Before the first batch, if ``configure_optimizers``
            also returns a scheduler or a bound list has the wrong length.

    Example::

        >>> import lightning.pytorch as pl
        >>> from lightning_onecycle import CyclicLRCallback
        >>> clr = CyclicLRCallback(base_lr=1e-3, max_lr=6e-3, step_size_up=2000)
        >>> trainer = pl.Trainer(callbacks=[clr])
    """

    plan_type = CyclicPlan
    settings: CyclicSettings

    def __init__(
        self,
        base_lr: LRSpec,
        max_lr: LRSpec | None = None,
        step_size_up: float = 2000,
        step_size_down: float | None = None,
        mode: CyclicMode = "triangular",
        gamma: float = 1.0,
        base_momentum: float = 0.8,
        max_momentum: float = 0.9,
        cycle_momentum: bool | None = None,
        keep_group_ratios: bool = True,
        log_every_n_steps: int = 1,
        step_size_unit: StepSizeUnit = "steps",
    ) -> None:
        settings = settings_from(CyclicSettings, locals())
        super().__init__(settings, cycle_momentum=cycle_momentum, log_every_n_steps=log_every_n_steps)

    def _check_before_training(self, trainer: pl.Trainer) -> None:
        # What can fail fails now, before a range test's sweep: the bounds, and for step sizes in epochs the epoch.
        self._bounds(trainer)
        if self.settings.step_size_unit == "epochs":
            _steps_per_epoch(trainer, type(self).__name__)

    def _resolve(self, trainer: pl.Trainer) -> CyclicPlan:
        base_lrs, max_lrs = self._bounds(trainer)
        shape = field_values(self.settings, CyclicShape)
        shape.update(self._step_sizes(trainer))
        return CyclicPlan(base_lrs=base_lrs, max_lrs=max_lrs, **shape)

    def _bounds(self, trainer: pl.Trainer) -> tuple[tuple[tuple[float, ...], ...], tuple[tuple[float, ...], ...]]:
        """Each param group's (base lr, max lr), checked: only a frozen group (lr 0) has 0, and then both."""
        name, settings = type(self).__name__, self.settings
        keep = settings.keep_group_ratios
        base_lrs = resolve_group_lrs(settings.base_lr, trainer.optimizers, name="base_lr", owner=name, keep_ratio=keep)
        max_lrs = resolve_group_lrs(settings.max_lr, trainer.optimizers, name="max_lr", owner=name, keep_ratio=keep)
        for bases, peaks in zip(base_lrs, max_lrs):
            for b, m in zip(bases, peaks):
                if (b == 0) != (m == 0):
                    raise MisconfigurationException(
                        f"{name}: a param group has base_lr {b} and max_lr {m}. Only a frozen group"
                        " (configured lr 0) may have 0, and then both are 0. Give it positive bounds."
                    )
        return frozen_numbers(base_lrs), frozen_numbers(max_lrs)

    def _step_sizes(self, trainer: pl.Trainer) -> dict[str, float | None]:
        """``step_size_up``/``step_size_down`` in optimizer steps."""
        settings = self.settings
        steps = {"step_size_up": settings.step_size_up, "step_size_down": settings.step_size_down}
        if settings.step_size_unit == "steps":
            return steps
        per_epoch = _steps_per_epoch(trainer, type(self).__name__)
        return {k: None if v is None else max(1, round(v * per_epoch)) for k, v in steps.items()}


def _steps_per_epoch(trainer: pl.Trainer, owner: str) -> int:
    """Optimizer steps in one epoch as the Trainer runs it (``limit_train_batches``, accumulation, one process's
    share), or an error where epochs have no fixed number of them.

    Sets up the training data if the fit loop has not yet (at ``on_fit_start``).
    """
    _check_fixed_steps_per_epoch(trainer)
    if trainer.train_dataloader is None:  # as `estimated_stepping_batches` does, which skips it without max_epochs
        trainer.fit_loop.setup_data()
    batches = trainer.num_training_batches
    if not math.isfinite(batches) or batches < 1:
        raise MisconfigurationException(
            f"{owner}(step_size_unit='epochs') needs the length of an epoch, but the training data"
            " has none (an IterableDataset). Give the step sizes in optimizer steps (step_size_unit='steps')."
        )
    return math.ceil(batches / trainer.accumulate_grad_batches)


def _check_fixed_steps_per_epoch(trainer: pl.Trainer) -> None:
    """Step sizes in epochs need the same number of optimizer steps in every epoch."""
    if any(isinstance(c, GradientAccumulationScheduler) for c in _trainer.callbacks(trainer)):
        raise MisconfigurationException(
            "CyclicLRCallback(step_size_unit='epochs') needs the same number of optimizer steps in every epoch,"
            " but a GradientAccumulationScheduler changes it from epoch to epoch. Give the step sizes in"
            " optimizer steps (step_size_unit='steps')."
        )
