"""The one callback shell that applies schedules to param groups every optimizer step.

:class:`ParamGroupScheduler` knows *who writes what where*: at every
``on_train_batch_start`` it asks its schedules for the values of the optimizer
step about to happen (derived from ``trainer.global_step``, so it is right after
a resume and changes once per ``accumulate_grad_batches`` batches), writes lr
and momentum into every param group of every optimizer, and logs them to all of
the Trainer's loggers. A subclass only says *what the values are*: its
settings (a frozen dataclass, validated when built) and how they resolve, at
the first batch, into a plan (another frozen dataclass) that builds one
:class:`~lightning_onecycle.schedules.Schedule` per param group.

Private: the public callbacks are :class:`~lightning_onecycle.OneCycleCallback`
and :class:`~lightning_onecycle.CyclicLRCallback`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, fields
from typing import Any, ClassVar, Protocol

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, GradientAccumulationScheduler, LearningRateMonitor
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch.optim import Optimizer

from lightning_onecycle import _param_groups, _trainer
from lightning_onecycle.schedules import Schedule, check_bool
from lightning_onecycle.suggestion_provider import SuggestionProvider

LRSpec = float | Sequence[float]


class SchedulePlan(Protocol):
    """The numbers that fix a run's schedules: resolved at the first batch, kept in checkpoints.

    Implemented by frozen dataclasses whose fields are plain Python values, so that
    ``dataclasses.asdict(plan)`` loads with ``torch.load(weights_only=True)`` and
    ``type(plan)(**that_dict)`` rebuilds the plan.
    """

    __dataclass_fields__: ClassVar[dict[str, Any]]

    def schedules(self) -> list[list[Schedule | None]]:
        """One schedule per param group per optimizer (``None``: a frozen group, left alone)."""
        ...


class ParamGroupScheduler(Callback):
    """Base callback: apply one schedule per param group at every optimizer step.

    A subclass passes its validated ``settings`` (a frozen dataclass) to
    ``__init__``, names its plan's class in ``plan_type`` and implements
    :meth:`_resolve` (settings plus the Trainer into a plan). It may also
    override :meth:`_check_before_training` and :meth:`_length_is_explicit`.

    A resumed fit keeps the checkpoint's plan, as the interrupted run would have
    continued, and warns which of the settings passed now differ from those the
    plan was made from (compared field by field) and whether the run's length
    differs from the plan's.

    Args:
        settings: The subclass's settings, a frozen dataclass of plain values.
        cycle_momentum: ``True`` requires every param group to have momentum (or
            Adam-style betas) and cycles it; ``None`` (default) cycles it where the
            optimizer has it and warns once for groups that don't (Adagrad, SGD
            without momentum); ``False`` leaves momentum alone.
        log_every_n_steps: Log lr and momentum of every group every this many
            optimizer steps to all of the Trainer's loggers, as ``lr-<Optimizer>[/<group>]``
            and ``lr-<Optimizer>[/<group>]-momentum`` (``LearningRateMonitor``'s names with
            ``log_momentum=True``); ``0`` disables logging.

    Raises:
        ValueError: If ``log_every_n_steps`` is negative.
    """

    plan_type: ClassVar[Callable[..., SchedulePlan]]
    """Rebuilds the plan from ``dataclasses.asdict(plan)`` (a checkpoint's)."""

    def __init__(self, settings: Any, cycle_momentum: bool | None = None, log_every_n_steps: int = 1) -> None:
        if isinstance(log_every_n_steps, bool) or not isinstance(log_every_n_steps, int) or log_every_n_steps < 0:
            raise ValueError(f"Expected a non-negative integer `log_every_n_steps`, but got {log_every_n_steps!r}.")
        if cycle_momentum is not None:
            accepted = "True or False (or None: cycle where the optimizer has momentum)"
            cycle_momentum = check_bool("cycle_momentum", cycle_momentum, accepted)
        self.settings = settings
        self.cycle_momentum = cycle_momentum
        self.log_every_n_steps = log_every_n_steps
        self._plan: SchedulePlan | None = None
        self._plan_settings: Any = None  # the settings the plan was made from (a checkpoint's, on resume)
        self._schedules: list[list[Schedule | None]] | None = None
        self._momentum_on: list[list[bool]] = []
        self._names: list[list[str]] = []
        self._last_logged_step = -1
        self._warned_past_end = False
        self._warned_new_groups: set[int] = set()
        self._start_step = 0  # the optimizer step at which this fit's schedule starts (its step 0)

    # --- what subclasses provide -------------------------------------------------

    def _resolve(self, trainer: pl.Trainer) -> SchedulePlan:
        """The plan for this run from the settings and the trainer (at the first batch, optimizers set up)."""
        raise NotImplementedError

    def _check_before_training(self, trainer: pl.Trainer) -> None:
        """Raise at ``on_fit_start``, optimizers known, for what would otherwise fail at the first batch
        (after an LR range test's sweep)."""

    def _length_is_explicit(self) -> bool:
        """Whether the resumed plan's length is the one the settings ask for now, not the Trainer's."""
        return False

    def _suggestion_provider(self, trainer: pl.Trainer) -> SuggestionProvider | None:
        """The LR finder whose suggestion the plan would take its peak from (``None``: none)."""
        return None

    # --- public state --------------------------------------------------------------

    @property
    def schedule_kwargs(self) -> dict[str, Any]:
        """The settings as a dict of plain values (a copy)."""
        return asdict(self.settings)

    @property
    def schedules(self) -> list[list[Schedule | None]] | None:
        """One schedule per param group per optimizer (``None``: a frozen group), once training has started."""
        return self._schedules

    @property
    def total_steps(self) -> int | None:
        """Optimizer steps the schedule spans, once resolved."""
        return None if self._schedules is None else _length(self._schedules)

    @property
    def total_steps_resolved(self) -> int | None:
        """The schedule's length from the resolved plan (also before the schedules are built)."""
        return None if self._plan is None else _length(self._plan.schedules())

    # --- hooks --------------------------------------------------------------------

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            # A new fit resolves afresh; a resumed one gets its plan back from
            # `load_state_dict`, which Lightning calls after `setup`.
            self._plan = None
            self._plan_settings = None
            self._start_step = 0
            others = [
                type(c).__name__
                for c in _trainer.callbacks(trainer)
                if isinstance(c, ParamGroupScheduler) and c is not self
            ]
            if others:
                raise MisconfigurationException(
                    f"{type(self).__name__} and {', '.join(others)} would both set the learning rate every step,"
                    " and the last one would silently win. Keep one of them in the Trainer's callbacks."
                )
            if self.log_every_n_steps and any(isinstance(c, LearningRateMonitor) for c in _trainer.callbacks(trainer)):
                rank_zero_warn(
                    f"{type(self).__name__} logs lr and momentum itself, under LearningRateMonitor's names: with a"
                    " LearningRateMonitor as well, each lr tag gets two values per step, one of them a step late."
                    f" Remove the LearningRateMonitor, or pass log_every_n_steps=0 to {type(self).__name__}.",
                    category=UserWarning,
                )

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        name = type(self).__name__
        # With no optimizer from `configure_optimizers`, Lightning substitutes a mock with no param groups.
        if not any(group.get("params") for opt in trainer.optimizers for group in opt.param_groups):
            raise MisconfigurationException(
                f"{name} needs an optimizer, but `configure_optimizers` returned none. Return an optimizer from it."
            )
        if trainer.lr_scheduler_configs:
            schedulers = ", ".join(type(c.scheduler).__name__ for c in trainer.lr_scheduler_configs)
            raise MisconfigurationException(
                f"{name} sets the learning rate itself, but `configure_optimizers` also returned a scheduler"
                f" ({schedulers}). Return only the optimizer(s), or remove {name} from the Trainer's callbacks."
            )
        _param_groups.prepare_for_scheduling(trainer.optimizers, name)
        self._momentum_on = []
        missing: list[str] = []
        # Names of the groups the schedule covers: on resume, those in the checkpoint's plan (a group added
        # during the run, e.g. by BackboneFinetuning, is back already but is not scheduled, and must not rename them).
        counts = None if self._plan is None else [len(s) for s in self._plan.schedules()]
        self._names = _param_groups.group_names(trainer.optimizers, counts)
        for opt_names, optimizer in zip(self._names, trainer.optimizers):
            flags = []
            for group_name, group in zip(opt_names, optimizer.param_groups):
                has = _param_groups.momentum_key(group) is not None
                if not has:
                    missing.append(group_name)
                flags.append(has and self.cycle_momentum is not False)
            self._momentum_on.append(flags)
        if missing and self.cycle_momentum:
            raise MisconfigurationException(
                f"{name}(cycle_momentum=True) needs momentum to cycle, but param group(s) {missing} have no"
                " `momentum` > 0 or `betas`. Use an optimizer with momentum (SGD(momentum=0.9), Adam, AdamW, ...)"
                " or pass cycle_momentum=None/False."
            )
        if self._plan is None and not _training_is_off(trainer):  # a resumed fit has its plan back
            self._check_before_training(trainer)
        if missing and self.cycle_momentum is None:
            rank_zero_warn(
                f"{name}: param group(s) {missing} have no momentum or betas; only their learning rate is cycled."
                " Pass cycle_momentum=False to silence this warning.",
                category=UserWarning,
            )

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Again: a checkpoint's optimizer state, restored after `on_fit_start`, brings a shared tensor lr back.
        _param_groups.prepare_for_scheduling(trainer.optimizers, type(self).__name__)
        if self._plan is not None:
            # Not at `on_fit_start`: counting the run's steps sets up the training data, and before the
            # checkpoint's loop state is restored that would keep a stateful loader from getting its state back.
            self._warn_resumed_schedule(trainer)
        self._warned_past_end = False
        self._warned_new_groups = set()
        self._last_logged_step = -1
        self._schedules = None

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        if self._schedules is None:
            if self._plan is None:
                # A second `fit` of the same Trainer starts a new cycle where the first one stopped.
                self._start_step = self._optimizer_step(trainer)
                self._plan = self._resolve(trainer)
                self._plan_settings = self.settings
            self._schedules = self._plan.schedules()
        step = self._optimizer_step(trainer) - self._start_step
        total = self.total_steps
        if total is not None and step >= total and not self._warned_past_end:
            self._warned_past_end = True
            rank_zero_warn(
                f"{type(self).__name__}: training has run past the schedule's {total} steps (now at its step"
                f" {step}); holding the final values. A schedule's length is fixed when it starts (and kept on"
                " resume): set `total_steps`, or max_epochs/max_steps, for the whole run before it starts.",
                category=UserWarning,
            )
        log = self.log_every_n_steps > 0 and step != self._last_logged_step and step % self.log_every_n_steps == 0
        metrics: dict[str, float] = {}
        for optimizer, schedules, flags, names in zip(
            trainer.optimizers, self._schedules, self._momentum_on, self._names
        ):
            if len(optimizer.param_groups) != len(schedules):
                self._groups_changed(optimizer, len(schedules))
            for group, schedule, momentum_on, name in zip(optimizer.param_groups, schedules, flags, names):
                if schedule is None:  # a frozen group (lr 0): left alone
                    continue
                lr = schedule.lr(step)
                _param_groups.set_lr(group, lr)
                if log:
                    metrics[f"lr-{name}"] = lr
                if momentum_on:
                    momentum = schedule.momentum(step)
                    if momentum is not None:
                        _param_groups.set_momentum(group, momentum)
                        if log:
                            metrics[f"lr-{name}-momentum"] = momentum  # LearningRateMonitor's name for it
        if log:
            self._last_logged_step = step
            # Lightning's own x-axis (that of `self.log` and LearningRateMonitor): batches that stepped,
            # which under manual optimization with several optimizers is not `global_step`.
            x = getattr(trainer.fit_loop.epoch_loop, "_batches_that_stepped", trainer.global_step)
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=x)

    def _groups_changed(self, optimizer: Optimizer, scheduled: int) -> None:
        """Param groups added during training (gradual unfreezing) are left alone; removed ones are an error."""
        name, count = type(self).__name__, len(optimizer.param_groups)
        if count < scheduled:
            raise MisconfigurationException(
                f"{name} scheduled {scheduled} param groups of {type(optimizer).__name__}, but it now has {count}:"
                " with groups removed during training, the schedules no longer know which group is which."
                " Keep the param groups, or freeze parameters with requires_grad=False instead."
            )
        if id(optimizer) not in self._warned_new_groups:
            self._warned_new_groups.add(id(optimizer))
            rank_zero_warn(
                f"{name}: {count - scheduled} param group(s) were added to {type(optimizer).__name__} during"
                f" training (groups {list(range(scheduled, count))}). They are not scheduled: their lr and"
                " momentum stay as whoever added them (e.g. BackboneFinetuning) sets them.",
                category=UserWarning,
            )

    @staticmethod
    def _optimizer_step(trainer: pl.Trainer) -> int:
        return optimizer_steps_done(trainer)

    # --- resuming -------------------------------------------------------------------

    def _ignored_settings(self) -> tuple[list[str], str]:
        """The settings passed now that differ from those the resumed plan was made from (``name=value``),
        and a note on them for the warning (a subclass's; here none).

        A checkpoint written before settings were stored holds none to compare with.
        """
        saved = self._plan_settings
        if saved is None:
            return [], ""
        now = self.settings
        ignored = [
            f"{f.name}={_shown(getattr(now, f.name))}"
            for f in fields(now)
            if getattr(now, f.name) != getattr(saved, f.name)
        ]
        return ignored, ""

    def _warn_resumed_schedule(self, trainer: pl.Trainer) -> None:
        """A resumed fit keeps its checkpoint's schedule: say so when this run's settings disagree with it."""
        name, total = type(self).__name__, self.total_steps_resolved
        ignored, note = self._ignored_settings()
        run = None
        if total is not None and not self._length_is_explicit():
            try:  # where this run ends, in optimizer steps (the loops' restored epoch may be one behind)
                run = total_steps_from_trainer(trainer, name, whole_run=True)
            except MisconfigurationException:
                pass
        end = self._start_step + total if total is not None else None
        what = []
        if ignored:
            what.append(f"it ignores {', '.join(ignored)} passed now{note}")
        if end is not None and run is not None and run != end:
            after = "holds the final values after it" if run > end else "stops before the cycle ends"
            what.append(f"its cycle ends at optimizer step {end} while this run has {run} steps, so training {after}")
        if not what:
            return
        rank_zero_warn(
            f"{name}: resuming with the checkpoint's schedule, as the interrupted run would have continued; "
            + "; ".join(what)
            + ". For a new cycle (other settings or more epochs), load the checkpoint's weights and fit again"
            " without `ckpt_path`.",
            category=UserWarning,
        )

    # --- checkpointing --------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        # Plain Python only: checkpoints load with `torch.load(weights_only=True)`.
        return {
            "resolved": None if self._plan is None else asdict(self._plan),
            "settings": None if self._plan_settings is None else asdict(self._plan_settings),
            "start_step": self._start_step,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        resolved, settings = state_dict.get("resolved"), state_dict.get("settings")
        self._plan = None if resolved is None else self.plan_type(**resolved)
        # Checkpoints written before the settings were stored (0.1.0) have only "resolved" and "start_step".
        self._plan_settings = None if settings is None else type(self.settings)(**settings)
        self._start_step = state_dict.get("start_step", 0)
        self._schedules = None


def suggestion_goes_unused(provider: SuggestionProvider, trainer: pl.Trainer) -> bool:
    """Whether every schedule callback that would take its peak from ``provider`` keeps a checkpoint's plan this fit.

    A resumed fit continues the checkpoint's schedule, so a suggestion made now would
    go unused. ``False`` when no schedule callback takes the suggestion. Meaningful
    from ``on_fit_start`` (the checkpoint's plans are back) to the first batch (where
    a new fit makes its plan).
    """
    readers = [
        c
        for c in _trainer.callbacks(trainer)
        if isinstance(c, ParamGroupScheduler) and c._suggestion_provider(trainer) is provider
    ]
    return bool(readers) and all(c._plan is not None for c in readers)


def _length(schedules: list[list[Schedule | None]]) -> int | None:
    return next(s for groups in schedules for s in groups if s is not None).total_steps


def _shown(value: Any) -> str:
    """A setting as it would be passed: a tuple (how sequences are stored) as a list."""
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def optimizer_steps_done(trainer: pl.Trainer) -> int:
    """Optimizer steps taken so far, in the schedules' unit (batches that step every optimizer).

    With manual optimization every ``optimizer.step()`` bumps ``global_step``; each
    optimizer is assumed to step once per batch.
    """
    if trainer.lightning_module.automatic_optimization:
        return trainer.global_step
    return trainer.global_step // max(len(trainer.optimizers), 1)


def _training_is_off(trainer: pl.Trainer) -> bool:
    """Whether this fit runs no training batch at all (``limit_train_batches=0``, ``max_steps=0``)."""
    return trainer.limit_train_batches == 0 or trainer.max_steps == 0


def _accumulation_scheduler(trainer: pl.Trainer) -> GradientAccumulationScheduler | None:
    return next((c for c in _trainer.callbacks(trainer) if isinstance(c, GradientAccumulationScheduler)), None)


def accumulation_factor(trainer: pl.Trainer, epoch: int | None = None) -> int:
    """Batches per optimizer step in ``epoch`` (default: the current one).

    A ``GradientAccumulationScheduler`` sets ``trainer.accumulate_grad_batches`` only
    at ``on_train_epoch_start``: before that (at ``on_train_start``, where the range
    test sweeps) and for later epochs its own schedule tells.
    """
    scheduler = _accumulation_scheduler(trainer)
    if scheduler is None:
        return trainer.accumulate_grad_batches
    return scheduler.get_accumulate_grad_batches(trainer.current_epoch if epoch is None else epoch)


def total_steps_from_trainer(trainer: pl.Trainer, owner: str, whole_run: bool = False) -> int:
    """The optimizer steps this fit has left to run, or a clear error when they are unknown.

    Counted epoch by epoch from the current one to ``max_epochs`` (each epoch
    with its accumulation factor, which a ``GradientAccumulationScheduler`` may
    change; Lightning's ``estimated_stepping_batches`` uses the current factor for
    all), capped by the ``max_steps`` left. A second ``fit`` of the same Trainer
    thus gets the steps it will run, from the epoch it starts at. Without an
    epoch bound, ``max_steps`` less the steps taken. With manual optimization and
    several optimizers, ``max_steps`` (which counts every ``optimizer.step()``) is
    converted to batches, the unit of the schedules. 0 when the fit trains nothing.

    Args:
        trainer: The Trainer, its training data set up or not.
        owner: The callback's name, for messages.
        whole_run: Count the whole run from epoch 0 and step 0 instead (what a
            resumed fit's schedule was made for).

    Raises:
        MisconfigurationException: If the run's length is unknown (an
            IterableDataset without ``max_steps``, or no max_epochs/max_steps bound).
    """
    estimated = trainer.estimated_stepping_batches  # also sets up the training data, for `num_training_batches`
    manual = not trainer.lightning_module.automatic_optimization
    per_batch = max(len(trainer.optimizers), 1) if manual else 1  # `global_step` ticks per batch
    first_epoch, done = (0, 0) if whole_run else (trainer.current_epoch, trainer.global_step)
    steps_left = None if trainer.max_steps == -1 else math.ceil(max(trainer.max_steps - done, 0) / per_batch)
    batches = trainer.num_training_batches
    if trainer.max_epochs not in (None, -1) and math.isfinite(batches):
        epochs = range(first_epoch, trainer.max_epochs)
        remaining = sum(math.ceil(batches / accumulation_factor(trainer, epoch)) for epoch in epochs)
        return remaining if steps_left is None else min(remaining, steps_left)
    if steps_left is not None:
        return steps_left
    raise MisconfigurationException(
        f"{owner} could not tell how many optimizer steps this run has (the Trainer estimates {estimated}):"
        " the training data has no length (an IterableDataset), or no max_epochs/max_steps bounds the run"
        " (max_epochs=-1, or only max_time). Set"
        " `Trainer(max_steps=...)` or pass `total_steps=...` to the callback."
    )


def lr_argument(name: str, value: Any, accepted: str, *, per_group: bool = True) -> Any:
    """An lr-like argument as plain Python numbers, or a ``ValueError`` that names it and says what is accepted.

    A 0-d tensor or a NumPy number is taken as its number; with ``per_group``, a
    list, tuple, 1-d tensor or array becomes a list of numbers (one per param
    group). Whether the numbers are in range (positive, finite) is for the caller
    to check, as is what ``None`` or a name such as ``"auto"`` means.

    Args:
        name: The argument's name, for the message.
        value: What was passed.
        accepted: What the argument accepts, for the message.
        per_group: Accept a sequence of numbers.

    Raises:
        ValueError: For anything else: a string, a class, a bool, a dict, a tensor of more dimensions...

    Example::

        >>> lr_argument("max_lr", torch.tensor(0.5), "a number"), lr_argument("max_lr", (np.float32(0.5), 1), "numbers")
        (0.5, [0.5, 1])
    """
    number = _number(value)
    if number is not None:
        return number
    if per_group:
        items: list[Any] | None = None
        if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 1:
            items = value.tolist()
        elif isinstance(value, (list, tuple)):
            items = list(value)
        if items is not None:
            numbers = [_number(v) for v in items]
            bad = next((i for i, v in enumerate(numbers) if v is None), None)
            if bad is None:
                return numbers
            item = items[bad]
            raise ValueError(
                f"Expected `{name}` to be {accepted}, but got {value!r}: its item {bad} is {item!r}"
                f" ({type(item).__name__}).{_fix(name, item)}"
            )
    if isinstance(value, type):
        given = f"the class {value.__name__}, not an instance"
    elif isinstance(value, (torch.Tensor, np.ndarray)):
        given = f"a {type(value).__name__.lower()} of shape {tuple(value.shape)}"
    else:
        given = f"{value!r} ({type(value).__name__})"
    raise ValueError(f"Expected `{name}` to be {accepted}, but got {given}.{_fix(name, value)}")


def _number(value: Any) -> int | float | None:
    """``value`` as a plain int or float (from a 0-d tensor or a NumPy number too), or ``None``; a bool is no number."""
    if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim == 0:
        value = value.item()
    elif isinstance(value, np.generic):
        value = value.item()
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _fix(name: str, value: Any) -> str:
    """What to pass instead of ``value``, where that can be told."""
    if isinstance(value, type) and hasattr(value, "suggested_lr"):
        return f" Pass an instance, {value.__name__}(), the same one as in the Trainer's callbacks."
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return ""
        return f" Pass the number {name}={value.strip()}, not a string."
    return ""


def training_batches_left(trainer: pl.Trainer) -> int | None:
    """Training batches (one process's) this fit has left to run, or ``None`` when that is unknown.

    Epoch by epoch from the current one to ``max_epochs``, each of
    ``num_training_batches``, until the optimizer steps left under ``max_steps``
    (at each epoch's accumulation factor) run out. Needs the training data set up
    (as it is from ``on_train_start``).
    """
    batches = trainer.num_training_batches
    steps_left = math.inf if trainer.max_steps == -1 else max(trainer.max_steps - trainer.global_step, 0)
    if trainer.max_epochs in (None, -1) or not math.isfinite(batches):
        return None if math.isinf(steps_left) else int(steps_left * accumulation_factor(trainer))
    total = 0
    for epoch in range(trainer.current_epoch, trainer.max_epochs):
        factor = accumulation_factor(trainer, epoch)
        steps = math.ceil(batches / factor)
        if steps >= steps_left:
            return total + int(min(batches, steps_left * factor))
        total += int(batches)
        steps_left -= steps
    return total


def resolve_group_lrs(
    value: LRSpec | None,
    optimizers: list[Optimizer],
    *,
    name: str,
    owner: str,
    keep_ratio: bool,
) -> list[list[float]]:
    """Expand an lr spec to one finite value per param group per optimizer: positive, or 0 for a frozen group.

    A group configured at lr 0 is frozen: with ``keep_ratio`` (or ``value=None``) it
    stays at 0 and the schedulers leave it alone.

    Args:
        value: ``None`` (each group's configured lr), a float (for the group with the
            largest configured lr; others keep their ratio to it when ``keep_ratio``,
            else all get the float), or a sequence with one value per param group
            (all optimizers' groups in order).
        optimizers: The trainer's optimizers.
        name: The argument's name, for messages.
        owner: The callback's name, for messages.
        keep_ratio: Keep the configured ratio between groups for a float ``value``.

    Raises:
        MisconfigurationException: On a wrong-length list, negative or non-finite lrs, or all lrs 0.
    """
    configured = [[_param_groups.get_lr(g) for g in opt.param_groups] for opt in optimizers]
    flat = [lr for lrs in configured for lr in lrs]
    if value is None:
        values = flat
    elif isinstance(value, bool):
        raise TypeError(f"{owner}: `{name}` must be a number or one number per param group, but got {value!r}.")
    elif isinstance(value, (int, float)):
        top = max(flat)
        if keep_ratio and top > 0 and all(math.isfinite(v) and v >= 0 for v in flat):
            values = [float(value) * (lr / top) for lr in flat]  # a group at lr 0 (frozen) stays at 0
        else:
            values = [float(value)] * len(flat)
    else:
        values = [float(v) for v in value]
        if len(values) != len(flat):
            raise MisconfigurationException(
                f"{owner}: `{name}` has {len(values)} values, but the optimizer(s) have {len(flat)} param groups."
                f" Give one value per param group, or a single float."
            )
    bad = [v for v in values if not (math.isfinite(v) and v >= 0)]
    if bad or not any(values):
        source = "the optimizer's configured lr" if value is None else f"`{name}`"
        raise MisconfigurationException(
            f"{owner}: learning rates must be finite and positive (0 only for a frozen param group, which is"
            f" left alone), but {source} gives {values}. Fix {source}."
        )
    out, i = [], 0
    for lrs in configured:
        out.append(values[i : i + len(lrs)])
        i += len(lrs)
    return out
