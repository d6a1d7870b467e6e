"""``OneCycleCallback``: Smith's 1cycle policy applied every optimizer step.

Its settings (:class:`OneCycleSettings`) are checked when the callback is
built; at the first batch they resolve, with the Trainer's run length and
param groups, into a :class:`OneCyclePlan`, the numbers the checkpoint keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_onecycle import _trainer
from lightning_onecycle._param_scheduler import (
    LRSpec,
    ParamGroupScheduler,
    lr_argument,
    resolve_group_lrs,
    total_steps_from_trainer,
)
from lightning_onecycle._settings import PlainFields, field_values, frozen_numbers, settings_from
from lightning_onecycle.schedules import (
    AnnealStrategy,
    OneCycleSchedule,
    OneCycleShape,
    Schedule,
    check_bool,
    check_positive_finite,
    check_positive_int,
)
from lightning_onecycle.suggestion_provider import SuggestionProvider, find_suggestion_provider

__all__ = ["OneCycleCallback", "OneCyclePlan", "OneCycleSettings"]

# A name or a provider instance first (a config saves it as written), numbers after.
MaxLR = float | list[float] | Literal["auto"] | SuggestionProvider | None
_MAX_LR_ACCEPTED = (
    "a positive number (the peak lr), a list of them (one per param group), 'auto' (the range test's suggestion),"
    " an LR finder callback such as LRRangeTestCallback() (an instance), or None"
)


@dataclass(frozen=True, kw_only=True)
class OneCycleSettings(PlainFields, OneCycleShape):
    """What a :class:`OneCycleCallback` was given that fixes its schedule (see its arguments).

    ``max_lr`` holds ``"auto"`` for a suggestion provider passed as ``max_lr``, and a list as a tuple.

    Raises:
        ValueError: If a value is out of range; the message names it.
    """

    total_steps: int | None = None
    max_lr: float | Sequence[float] | str | None = None
    keep_group_ratios: bool = True
    max_lr_factor: float = 1.0

    def __post_init__(self) -> None:
        if self.max_lr is not None and not (isinstance(self.max_lr, str) and self.max_lr == "auto"):
            object.__setattr__(self, "max_lr", lr_argument("max_lr", self.max_lr, _MAX_LR_ACCEPTED))
        super().__post_init__()  # plain values, then the shape's checks
        if self.total_steps is not None:
            check_positive_int("total_steps", self.total_steps)
        if self.max_lr is not None and self.max_lr != "auto":
            for v in self.max_lr if isinstance(self.max_lr, tuple) else (self.max_lr,):
                check_positive_finite("max_lr", v)
        check_positive_finite("max_lr_factor", self.max_lr_factor)
        object.__setattr__(self, "keep_group_ratios", check_bool("keep_group_ratios", self.keep_group_ratios))


@dataclass(frozen=True, kw_only=True)
class OneCyclePlan(PlainFields, OneCycleShape):
    """A run's 1cycle: the shape, the length and each param group's peak lr (0: a frozen group, left alone)."""

    total_steps: int
    max_lrs: tuple[tuple[float, ...], ...]

    def schedules(self) -> list[list[Schedule | None]]:
        shape = field_values(self, OneCycleShape)
        return [
            [OneCycleSchedule(max_lr=lr, total_steps=self.total_steps, **shape) if lr > 0 else None for lr in lrs]
            for lrs in self.max_lrs
        ]


class OneCycleCallback(ParamGroupScheduler):
    """Leslie Smith's 1cycle policy for every param group, changed every optimizer step.

    Replaces ``torch.optim.lr_scheduler.OneCycleLR`` in ``configure_optimizers``
    (return only the optimizer). Values are identical to ``OneCycleLR``'s for the
    same settings (with several param groups, ``keep_group_ratios=False`` gives a
    float ``max_lr`` to every group as ``OneCycleLR`` does); defaults are
    ``OneCycleLR``'s. Unlike ``OneCycleLR`` it finds the number of steps itself,
    survives resume, holds the final value if training runs past the last step,
    and takes its peak lr from an :class:`~lightning_onecycle.LRRangeTestCallback`
    (or another :class:`~lightning_onecycle.SuggestionProvider`) when one runs first.

    Args:
        max_lr: Peak learning rate. ``None`` (default): the range test's suggestion
            when an ``LRRangeTestCallback`` (a suggestion provider) is among the Trainer's
            callbacks, else each group's lr from ``configure_optimizers``. ``"auto"`` or
            the provider itself: the suggestion (an error if there is no provider).
            A float: the peak of the group with the largest configured lr; other
            groups keep their ratio to it (discriminative LRs) unless
            ``keep_group_ratios=False``. A list: one peak per param group. A 0-d
            tensor or NumPy number counts as its number (a 1-d one as a list).
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

    plan_type = OneCyclePlan
    settings: OneCycleSettings

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
        provider = max_lr if isinstance(max_lr, SuggestionProvider) else None
        settings = settings_from(OneCycleSettings, locals(), max_lr="auto" if provider is not None else max_lr)
        super().__init__(settings, cycle_momentum=cycle_momentum, log_every_n_steps=log_every_n_steps)
        self.max_lr = max_lr
        self._provider = provider
        self._unused_provider: SuggestionProvider | None = None  # one whose new suggestion a resumed plan ignores

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_fit_start(trainer, pl_module)
        # A resumed plan keeps its peak: a provider with no result from the checkpoint would suggest anew,
        # for nothing (the range test then skips itself). Told now, before any provider runs.
        provider = self._suggestion_provider(trainer)
        fresh = provider is not None and provider.result is None
        self._unused_provider = provider if self._plan is not None and fresh else None

    def _ignored_settings(self) -> tuple[list[str], str]:
        ignored, note = super()._ignored_settings()
        provider, plan = self._unused_provider, self._plan
        if provider is None or not isinstance(plan, OneCyclePlan):
            return ignored, note
        # max_lr=None reads the provider now, and may have read none in the checkpoint's run: name it all the same.
        max_lr = f"max_lr={self.settings.max_lr!r}"
        ignored = [s for s in ignored if not s.startswith("max_lr=")] + [max_lr]
        peak = max(lr for lrs in plan.max_lrs for lr in lrs)
        return ignored, f" (the peak stays the checkpoint's {peak:.4g}, not {type(provider).__name__}'s suggestion)"

    def _suggestion_provider(self, trainer: pl.Trainer) -> SuggestionProvider | None:
        """The provider whose suggestion is the peak: the one passed as ``max_lr``, or for None/"auto" the Trainer's."""
        if self._provider is not None:
            return self._provider
        if self.settings.max_lr in (None, "auto"):
            return find_suggestion_provider(trainer)
        return None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().setup(trainer, pl_module, stage)
        if stage != "fit":
            return
        name = type(self).__name__
        if self.settings.max_lr == "auto" and self._suggestion_provider(trainer) is None:
            raise MisconfigurationException(
                f"{name}(max_lr='auto') takes its max LR from an LR range test, but the Trainer has no callback that"
                " suggests one. Add `LRRangeTestCallback()` to the Trainer's callbacks or pass a number."
            )
        provider: object = self._provider  # any object: the protocol is structural, the callbacks are Callbacks
        if provider is not None and not any(c is provider for c in _trainer.callbacks(trainer)):
            raise MisconfigurationException(
                f"{name} was given a {type(provider).__name__} as `max_lr` that is not among the Trainer's"
                " callbacks, so it will never run. Add the same instance to `Trainer(callbacks=[...])`."
            )
        if self.settings.max_lr_factor != 1.0 and self._suggestion_provider(trainer) is None:
            rank_zero_warn(
                f"{name}(max_lr_factor={self.settings.max_lr_factor:g}) multiplies a range test's suggestion, but"
                f" this peak comes from {'max_lr' if self.settings.max_lr is not None else 'the configured lrs'}"
                " (no LRRangeTestCallback among the Trainer's callbacks): the factor does nothing. Scale max_lr"
                " itself, or add the range test.",
                category=UserWarning,
            )

    def _check_before_training(self, trainer: pl.Trainer) -> None:
        # What can fail without the range test's result fails now, before its sweep.
        if self.settings.total_steps is None:
            total_steps_from_trainer(trainer, type(self).__name__)
        if self._suggestion_provider(trainer) is None:
            max_lr = self.settings.max_lr
            assert not isinstance(max_lr, str)  # "auto" needs a provider, `setup` made sure of it
            self._max_lrs(max_lr, trainer)

    def _length_is_explicit(self) -> bool:
        # The same `total_steps` again: that length was asked for, whatever the run's.
        requested = self.settings.total_steps
        return requested is not None and requested == self.total_steps_resolved

    def _resolve(self, trainer: pl.Trainer) -> OneCyclePlan:
        name, settings = type(self).__name__, self.settings
        # At least 1: a batch is running, whatever the Trainer's estimate said.
        total_steps = settings.total_steps or max(1, total_steps_from_trainer(trainer, name))
        provider = self._suggestion_provider(trainer)
        spec: LRSpec | None
        if provider is not None and provider.result is None and _trainer.fast_dev_run(trainer):
            rank_zero_warn(
                f"{name}: the LR range test was skipped (`fast_dev_run`), so this smoke run peaks at the"
                " optimizer's configured lr.",
                category=UserWarning,
            )
            spec = None
        elif provider is not None:
            spec = _suggested_max_lr(provider, settings.max_lr_factor, name)
        else:
            assert not isinstance(settings.max_lr, str)  # "auto" needs a provider, `setup` made sure of it
            spec = settings.max_lr
        shape = field_values(settings, OneCycleShape)
        return OneCyclePlan(total_steps=total_steps, max_lrs=self._max_lrs(spec, trainer), **shape)

    def _max_lrs(self, spec: LRSpec | None, trainer: pl.Trainer) -> tuple[tuple[float, ...], ...]:
        lrs = resolve_group_lrs(
            spec,
            trainer.optimizers,
            name="max_lr",
            owner=type(self).__name__,
            keep_ratio=self.settings.keep_group_ratios,
        )
        return frozen_numbers(lrs)


def _suggested_max_lr(provider: SuggestionProvider, factor: float, owner: str) -> float | None:
    """The provider's suggestion times ``factor``; without one, ``None`` (the configured lrs) and one warning.

    A fit never fails after the sweep for want of a suggestion: the provider has said why it has none.
    """
    suggestion = provider.suggested_lr
    if suggestion is None:
        why = "its test did not run" if provider.result is None else f"stop reason: {provider.result.stop_reason}"
        rank_zero_warn(
            f"{owner}: {type(provider).__name__} suggested no learning rate ({why}; its warning above says what"
            " the curve showed), so the cycle peaks at the optimizer's configured lr. Pass `max_lr=...` to"
            " choose the peak yourself.",
            category=UserWarning,
        )
        return None
    return suggestion * factor
