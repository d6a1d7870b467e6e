"""``CyclicLRCallback``: Smith's cyclical learning rates (CLR) applied every optimizer step."""

from __future__ import annotations

import math
from typing import Any, Literal

import lightning.pytorch as pl
from lightning.pytorch.callbacks import GradientAccumulationScheduler
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch.optim import Optimizer

from lightning_onecycle._param_scheduler import LRSpec, ParamGroupScheduler, plain_numbers, resolve_group_lrs
from lightning_onecycle.schedules import CyclicMode, CyclicSchedule, Schedule, check_positive_finite


StepSizeUnit = Literal["steps", "epochs"]


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
        super().__init__(cycle_momentum=cycle_momentum, log_every_n_steps=log_every_n_steps)
        base_lr, max_lr, step_size_up, step_size_down, gamma, base_momentum, max_momentum = plain_numbers(
            (base_lr, max_lr, step_size_up, step_size_down, gamma, base_momentum, max_momentum)
        )
        if step_size_unit not in ("steps", "epochs"):
            raise ValueError(f"Expected `step_size_unit` to be 'steps' or 'epochs', but got {step_size_unit!r}.")
        self.step_size_unit = step_size_unit
        self.schedule_kwargs: dict[str, Any] = {
            "step_size_up": step_size_up,
            "step_size_down": step_size_down,
            "mode": mode,
            "gamma": gamma,
            "base_momentum": base_momentum,
            "max_momentum": max_momentum,
        }
        # Validate every setting now, with stand-in bounds (step sizes in epochs are positive numbers too).
        CyclicSchedule(base_lr=1.0, max_lr=2.0, **self.schedule_kwargs)
        for name, spec in (("base_lr", base_lr), ("max_lr", max_lr)):
            if spec is not None:
                for v in [spec] if isinstance(spec, (int, float)) else spec:
                    check_positive_finite(name, v)
        self.base_lr = base_lr
        self.max_lr = max_lr
        self.keep_group_ratios = keep_group_ratios

    def _check_before_training(self, trainer: pl.Trainer) -> None:
        # The bounds now; step sizes in epochs need the epoch's length, known once the fit loop has the data.
        self._resolve_bounds(trainer.optimizers)
        if self.step_size_unit == "epochs":
            _check_fixed_steps_per_epoch(trainer)

    def _ignored_on_resume(self, trainer: pl.Trainer) -> list[str]:
        resolved = self._resolved or {}
        keys = ("mode", "gamma", "base_momentum", "max_momentum")
        ignored = [f"{k}={self.schedule_kwargs[k]!r}" for k in keys if resolved.get(k) != self.schedule_kwargs[k]]
        if self._groups_as_scheduled(trainer):  # else the bounds cannot be compared group by group
            try:
                now = self._resolve_bounds(trainer.optimizers)
            except MisconfigurationException:
                now = None
            if now != (resolved.get("base_lrs"), resolved.get("max_lrs")):
                ignored.append(f"base_lr={self.base_lr!r}, max_lr={self.max_lr!r}")
        if self.step_size_unit == "steps":
            for k in ("step_size_up", "step_size_down"):
                if resolved.get(k) != self.schedule_kwargs[k]:
                    ignored.append(f"{k}={self.schedule_kwargs[k]!r}")
        return ignored

    def _resolve(self, trainer: pl.Trainer, optimizers: list[Optimizer]) -> dict[str, Any]:
        base_lrs, max_lrs = self._resolve_bounds(optimizers)
        return {"base_lrs": base_lrs, "max_lrs": max_lrs, **self.schedule_kwargs, **self._step_sizes(trainer)}

    def _resolve_bounds(self, optimizers: list[Optimizer]) -> tuple[list[list[float]], list[list[float]]]:
        kwargs = {"owner": "CyclicLRCallback", "keep_ratio": self.keep_group_ratios}
        base_lrs = resolve_group_lrs(self.base_lr, optimizers, name="base_lr", **kwargs)
        max_lrs = resolve_group_lrs(self.max_lr, optimizers, name="max_lr", **kwargs)
        for bases, peaks in zip(base_lrs, max_lrs):
            for b, m in zip(bases, peaks):
                if (b == 0) != (m == 0):
                    raise MisconfigurationException(
                        f"CyclicLRCallback: a param group has base_lr {b} and max_lr {m}. Only a frozen group"
                        " (configured lr 0) may have 0, and then both are 0. Give it positive bounds."
                    )
        return base_lrs, max_lrs

    def _step_sizes(self, trainer: pl.Trainer) -> dict[str, int | None]:
        """``step_size_up``/``step_size_down`` in optimizer steps."""
        up, down = self.schedule_kwargs["step_size_up"], self.schedule_kwargs["step_size_down"]
        if self.step_size_unit == "steps":
            return {"step_size_up": up, "step_size_down": down}
        _check_fixed_steps_per_epoch(trainer)
        batches = trainer.num_training_batches  # one epoch as the Trainer runs it: `limit_train_batches`, per process
        if not math.isfinite(batches) or batches < 1:
            raise MisconfigurationException(
                "CyclicLRCallback(step_size_unit='epochs') needs the length of an epoch, but the training data has"
                " none (an IterableDataset). Give the step sizes in optimizer steps (step_size_unit='steps')."
            )
        per_epoch = math.ceil(batches / trainer.accumulate_grad_batches)
        steps = {"step_size_up": up, "step_size_down": down}
        return {k: None if v is None else max(1, round(v * per_epoch)) for k, v in steps.items()}

    def _build(self, resolved: dict[str, Any]) -> list[list[Schedule | None]]:
        kwargs = {k: v for k, v in resolved.items() if k not in ("base_lrs", "max_lrs")}
        return [
            [CyclicSchedule(base_lr=b, max_lr=m, **kwargs) if m > 0 else None for b, m in zip(bases, peaks)]
            for bases, peaks in zip(resolved["base_lrs"], resolved["max_lrs"])
        ]


def _check_fixed_steps_per_epoch(trainer: pl.Trainer) -> None:
    """Step sizes in epochs need the same number of optimizer steps in every epoch."""
    if any(isinstance(c, GradientAccumulationScheduler) for c in trainer.callbacks):
        raise MisconfigurationException(
            "CyclicLRCallback(step_size_unit='epochs') needs the same number of optimizer steps in every epoch,"
            " but a GradientAccumulationScheduler changes it from epoch to epoch. Give the step sizes in"
            " optimizer steps (step_size_unit='steps')."
        )
