"""Pure schedule math: values as functions of the optimizer step.

Nothing here imports Lightning or touches an optimizer. A schedule answers
"what is the learning rate (and momentum) for optimizer step ``step``?", where
``step`` counts optimizer steps from 0. The callbacks (``OneCycleCallback``,
``CyclicLRCallback``, the range test's sweep) apply these values to param groups.

The 1cycle and cyclical schedules reproduce :class:`torch.optim.lr_scheduler.OneCycleLR`
and :class:`torch.optim.lr_scheduler.CyclicLR` value for value: the value that
PyTorch's scheduler has set when the optimizer takes its ``step``-th step is
``schedule.lr(step)``. Unlike ``OneCycleLR`` they never raise past the last
step: :meth:`OneCycleSchedule.lr` holds the final value.

References:
    - L. N. Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017.
    - L. N. Smith and N. Topin, "Super-Convergence: Very Fast Training of Neural
      Networks Using Large Learning Rates", 2017.
    - L. N. Smith, "A disciplined approach to neural network hyper-parameters:
      Part 1", 2018.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol

import numpy as np

__all__ = [
    "AnnealStrategy",
    "CyclicMode",
    "CyclicSchedule",
    "CyclicShape",
    "LRSweep",
    "OneCycleSchedule",
    "OneCycleShape",
    "Schedule",
    "SweepMode",
    "anneal_cos",
    "anneal_linear",
    "check_bool",
]

AnnealStrategy = Literal["cos", "linear"]
CyclicMode = Literal["triangular", "triangular2", "exp_range"]
SweepMode = Literal["exponential", "linear"]


def anneal_cos(start: float, end: float, pct: float) -> float:
    """Cosine interpolation from ``start`` (``pct=0``) to ``end`` (``pct=1``).

    Example::

        >>> anneal_cos(1.0, 0.0, 0.5)
        0.5
    """
    cos_out = math.cos(math.pi * pct) + 1
    return end + (start - end) / 2.0 * cos_out


def anneal_linear(start: float, end: float, pct: float) -> float:
    """Linear interpolation from ``start`` (``pct=0``) to ``end`` (``pct=1``).

    Example::

        >>> anneal_linear(0.0, 2.0, 0.25)
        0.5
    """
    return (end - start) * pct + start


_ANNEALERS: dict[str, Callable[[float, float, float], float]] = {
    "cos": anneal_cos,
    "linear": anneal_linear,
}


class Schedule(Protocol):
    """What the callbacks need from a schedule."""

    @property
    def total_steps(self) -> int | None:
        """Number of optimizer steps the schedule is defined for (``None``: unbounded)."""
        ...

    def lr(self, step: int) -> float: ...

    def momentum(self, step: int) -> float | None: ...


def check_positive_finite(name: str, value: float) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a positive finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"Expected a positive finite number for `{name}`, but got {value!r}.")


def check_bool(name: str, value: object, accepted: str = "True or False") -> bool:
    """``value`` as a bool (NumPy's ``np.bool_`` too); raise ``ValueError`` naming ``name`` for anything else.

    A quoted ``"False"`` (from a config, say) is a non-empty string, which Python
    takes as true, and ``1``/``0`` are easily a typo for another argument: refused.

    Example::

        >>> check_bool("three_phase", np.bool_(True))
        True
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    word = value.strip().lower() if isinstance(value, str) else None
    if word in ("true", "false"):
        fix = f" Pass the bool {name}={word.capitalize()}, not a string (in a YAML config: {word}, unquoted)."
    else:
        fix = f" Pass {name}=True or {name}=False."
    raise ValueError(f"Expected `{name}` to be {accepted}, but got {value!r} ({type(value).__name__}).{fix}")


def check_positive_int(name: str, value: int) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"Expected a positive integer `{name}`, but got {value!r}.")


def _check_momentum(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0.0 <= value < 1.0):
        raise ValueError(f"Expected `{name}` in [0, 1), but got {value!r}.")


class _Phase(NamedTuple):
    """One piece of a piecewise schedule, in PyTorch's ``OneCycleLR`` convention."""

    end_step: float
    start_lr: float
    end_lr: float
    start_momentum: float
    end_momentum: float


@dataclass(frozen=True, kw_only=True)
class OneCycleShape:
    """1cycle's shape: ``OneCycleLR``'s settings other than its peak lr and length (keyword-only).

    Args:
        pct_start: Fraction of the cycle spent increasing the lr, in (0, 1).
        anneal_strategy: ``"cos"`` or ``"linear"`` interpolation within a phase.
        div_factor: ``initial_lr = max_lr / div_factor``.
        final_div_factor: ``min_lr = initial_lr / final_div_factor``.
        three_phase: Use the three-phase variant (up, down to ``initial_lr``, anneal).
        base_momentum: Momentum (or Adam's beta1) at the peak lr.
        max_momentum: Momentum at the start and end of the cycle.

    Raises:
        ValueError: If a setting is out of range; the message names it.
    """

    pct_start: float = 0.3
    anneal_strategy: AnnealStrategy = "cos"
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    three_phase: bool = False
    base_momentum: float = 0.85
    max_momentum: float = 0.95

    def __post_init__(self) -> None:
        pct_start = self.pct_start
        if isinstance(pct_start, bool) or not isinstance(pct_start, (int, float)) or not (0 < pct_start < 1):
            raise ValueError(f"Expected `pct_start` strictly between 0 and 1, but got {pct_start!r}.")
        if self.anneal_strategy not in _ANNEALERS:
            raise ValueError(f"Expected `anneal_strategy` to be 'cos' or 'linear', but got {self.anneal_strategy!r}.")
        check_positive_finite("div_factor", self.div_factor)
        check_positive_finite("final_div_factor", self.final_div_factor)
        object.__setattr__(self, "three_phase", check_bool("three_phase", self.three_phase))
        _check_momentum("base_momentum", self.base_momentum)
        _check_momentum("max_momentum", self.max_momentum)


@dataclass(frozen=True)
class OneCycleSchedule(OneCycleShape):
    """Smith's 1cycle policy: lr warms up to ``max_lr`` and anneals far below the start.

    Defaults equal :class:`torch.optim.lr_scheduler.OneCycleLR`'s. The learning rate
    starts at ``max_lr / div_factor``, rises to ``max_lr`` over the first
    ``pct_start`` of the steps and falls to ``max_lr / div_factor / final_div_factor``
    at step ``total_steps - 1``; momentum moves the opposite way between
    ``max_momentum`` and ``base_momentum``. With ``three_phase=True`` the lr first
    returns symmetrically to its start, then anneals to the minimum.

    Args:
        max_lr: Peak learning rate.
        total_steps: Number of optimizer steps in the cycle.
        **shape: :class:`OneCycleShape`'s settings (``pct_start``, ``anneal_strategy``,
            ``div_factor``, ``final_div_factor``, ``three_phase``, ``base_momentum``,
            ``max_momentum``), keyword-only.

    Raises:
        ValueError: If a setting is out of range; the message names it.

    Example::

        >>> s = OneCycleSchedule(max_lr=0.1, total_steps=100)
        >>> round(s.lr(0), 6), round(s.lr(29), 6), round(s.momentum(29), 6)
        (0.004, 0.1, 0.85)
        >>> s.lr(500) == s.lr(99)  # holds the final value past the end
        True
    """

    max_lr: float
    total_steps: int
    _phases: tuple[_Phase, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_positive_finite("max_lr", self.max_lr)
        check_positive_int("total_steps", self.total_steps)
        super().__post_init__()
        initial_lr = self.max_lr / self.div_factor
        min_lr = initial_lr / self.final_div_factor
        hi, lo = self.max_momentum, self.base_momentum
        up_end = float(self.pct_start * self.total_steps) - 1
        last = float(self.total_steps - 1)
        phases: tuple[_Phase, ...]
        if self.three_phase:
            phases = (
                _Phase(up_end, initial_lr, self.max_lr, hi, lo),
                _Phase(float(2 * self.pct_start * self.total_steps) - 2, self.max_lr, initial_lr, lo, hi),
                _Phase(last, initial_lr, min_lr, hi, hi),
            )
        else:
            phases = (
                _Phase(up_end, initial_lr, self.max_lr, hi, lo),
                _Phase(last, self.max_lr, min_lr, lo, hi),
            )
        object.__setattr__(self, "_phases", phases)

    @property
    def initial_lr(self) -> float:
        return self.max_lr / self.div_factor

    @property
    def min_lr(self) -> float:
        return self.initial_lr / self.final_div_factor

    def _locate(self, step: int) -> tuple[_Phase, float]:
        step = min(max(step, 0), self.total_steps - 1)
        start_step = 0.0
        for i, phase in enumerate(self._phases):
            if step <= phase.end_step or i == len(self._phases) - 1:
                span = phase.end_step - start_step
                # A phase shorter than one step (tiny total_steps) is already at its end.
                pct = (step - start_step) / span if span > 0 else 1.0
                return phase, pct
            start_step = phase.end_step
        raise AssertionError("unreachable")  # pragma: no cover

    def lr(self, step: int) -> float:
        """Learning rate for optimizer step ``step`` (clamped to the last step)."""
        phase, pct = self._locate(step)
        return _ANNEALERS[self.anneal_strategy](phase.start_lr, phase.end_lr, pct)

    def momentum(self, step: int) -> float:
        """Momentum (or beta1) for optimizer step ``step`` (clamped to the last step)."""
        phase, pct = self._locate(step)
        return _ANNEALERS[self.anneal_strategy](phase.start_momentum, phase.end_momentum, pct)


@dataclass(frozen=True, kw_only=True)
class CyclicShape:
    """CLR's shape: ``CyclicLR``'s settings other than its bounds (keyword-only).

    Args:
        step_size_up: Steps from ``base_lr`` to ``max_lr`` (any positive number, as ``CyclicLR`` takes).
        step_size_down: Steps back down; defaults to ``step_size_up``.
        mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
        gamma: Decay base for ``"exp_range"``.
        base_momentum: Momentum at the lr peak; ``None`` disables momentum cycling.
        max_momentum: Momentum at ``base_lr``; ``None`` disables momentum cycling.

    Raises:
        ValueError: If a setting is out of range; the message names it.
    """

    step_size_up: float = 2000
    step_size_down: float | None = None
    mode: CyclicMode = "triangular"
    gamma: float = 1.0
    base_momentum: float | None = 0.8
    max_momentum: float | None = 0.9

    def __post_init__(self) -> None:
        # Any positive number of steps, as torch's CyclicLR takes (a config may well give 2000.0).
        check_positive_finite("step_size_up", self.step_size_up)
        if self.step_size_down is not None:
            check_positive_finite("step_size_down", self.step_size_down)
        if self.mode not in ("triangular", "triangular2", "exp_range"):
            raise ValueError(
                f"Expected `mode` to be 'triangular', 'triangular2' or 'exp_range', but got {self.mode!r}."
            )
        check_positive_finite("gamma", self.gamma)
        if self.base_momentum is None or self.max_momentum is None:
            if self.base_momentum is not None or self.max_momentum is not None:
                raise ValueError(
                    "Give both `base_momentum` and `max_momentum`, or neither to disable momentum cycling."
                )
            return
        _check_momentum("base_momentum", self.base_momentum)
        _check_momentum("max_momentum", self.max_momentum)


@dataclass(frozen=True)
class CyclicSchedule(CyclicShape):
    """Smith's cyclical learning rate (CLR), with optional cyclical momentum.

    The lr moves linearly between ``base_lr`` and ``max_lr`` in cycles of
    ``step_size_up + step_size_down`` steps; ``mode`` shrinks the amplitude:
    ``"triangular"`` (constant), ``"triangular2"`` (halved each cycle) or
    ``"exp_range"`` (scaled by ``gamma ** step``). Momentum, when both momentum
    bounds are given, moves opposite to the lr. Equal to
    :class:`torch.optim.lr_scheduler.CyclicLR` for the same settings.

    Args:
        base_lr: Lower lr bound.
        max_lr: Upper lr bound (reached only in the first cycle for decaying modes).
        total_steps: Optional length, keyword-only, only used to warn when training runs past it.
        **shape: :class:`CyclicShape`'s settings (``step_size_up``, ``step_size_down``,
            ``mode``, ``gamma``, ``base_momentum``, ``max_momentum``), keyword-only.

    Raises:
        ValueError: If a setting is out of range; the message names it.

    Example::

        >>> s = CyclicSchedule(base_lr=0.001, max_lr=0.006, step_size_up=4)
        >>> [round(s.lr(k), 5) for k in range(0, 9, 2)]
        [0.001, 0.0035, 0.006, 0.0035, 0.001]
    """

    base_lr: float
    max_lr: float
    total_steps: int | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        check_positive_finite("base_lr", self.base_lr)
        check_positive_finite("max_lr", self.max_lr)
        super().__post_init__()
        if self.total_steps is not None:
            check_positive_int("total_steps", self.total_steps)

    def _position(self, step: int) -> tuple[float, float]:
        """(scale_factor within the cycle, amplitude scale) for ``step``."""
        up = float(self.step_size_up)
        down = float(self.step_size_down) if self.step_size_down is not None else up
        total_size = up + down
        step_ratio = up / total_size
        cycle = math.floor(1 + step / total_size)
        x = 1.0 + step / total_size - cycle
        scale_factor = x / step_ratio if x <= step_ratio else (x - 1) / (step_ratio - 1)
        if self.mode == "triangular":
            amplitude = 1.0
        elif self.mode == "triangular2":
            amplitude = 1 / (2.0 ** (cycle - 1))
        else:
            amplitude = self.gamma**step
        return scale_factor, amplitude

    def lr(self, step: int) -> float:
        """Learning rate for optimizer step ``step``."""
        scale_factor, amplitude = self._position(max(step, 0))
        base_height = (self.max_lr - self.base_lr) * scale_factor
        return self.base_lr + base_height * amplitude

    def momentum(self, step: int) -> float | None:
        """Momentum for optimizer step ``step``, or ``None`` when not cycled."""
        if self.base_momentum is None or self.max_momentum is None:
            return None
        scale_factor, amplitude = self._position(max(step, 0))
        base_height = (self.max_momentum - self.base_momentum) * scale_factor
        return self.max_momentum - base_height * amplitude


@dataclass(frozen=True)
class LRSweep:
    """The LR range test's sweep: ``min_lr`` at step 0 to ``max_lr`` at step ``num_steps - 1``.

    Args:
        min_lr: First learning rate.
        max_lr: Last learning rate.
        num_steps: Number of sweep points (optimizer steps), at least 2.
        mode: ``"exponential"`` (geometric spacing, the default for range tests) or ``"linear"``.

    Raises:
        ValueError: If ``min_lr >= max_lr``, a bound is not positive, or ``num_steps < 2``.

    Example::

        >>> s = LRSweep(1e-4, 1.0, num_steps=5)
        >>> [f"{s.lr(k):.0e}" for k in range(5)]
        ['1e-04', '1e-03', '1e-02', '1e-01', '1e+00']
    """

    min_lr: float
    max_lr: float
    num_steps: int
    mode: SweepMode = "exponential"

    def __post_init__(self) -> None:
        check_positive_finite("min_lr", self.min_lr)
        check_positive_finite("max_lr", self.max_lr)
        if self.min_lr >= self.max_lr:
            raise ValueError(
                f"Expected `min_lr` < `max_lr`, but got min_lr={self.min_lr!r} and max_lr={self.max_lr!r}."
            )
        if isinstance(self.num_steps, bool) or not isinstance(self.num_steps, int) or self.num_steps < 2:
            raise ValueError(f"Expected an integer `num_steps` >= 2, but got {self.num_steps!r}.")
        if self.mode not in ("exponential", "linear"):
            raise ValueError(f"Expected `mode` to be 'exponential' or 'linear', but got {self.mode!r}.")

    @property
    def total_steps(self) -> int:
        return self.num_steps

    def lr(self, step: int) -> float:
        """Learning rate at sweep point ``step`` (clamped to the sweep)."""
        pct = min(max(step, 0), self.num_steps - 1) / (self.num_steps - 1)
        if self.mode == "exponential":
            return self.min_lr * (self.max_lr / self.min_lr) ** pct
        return anneal_linear(self.min_lr, self.max_lr, pct)

    def momentum(self, step: int) -> None:
        """The sweep leaves momentum as configured."""
        return None
