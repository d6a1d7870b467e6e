"""Learning-rate suggestions from an LR range test's curve.

The sweep records one raw training loss per learning rate. :func:`read_curve`
turns that curve into a :class:`CurveReading`: the loss's starting *level*, how
far it falls (its *drop*) against the curve's own *noise*, the lr at its
*minimum*, the *edge* past the minimum where the loss is back up half its drop,
and the lr where it *diverges*. A strategy turns a reading into a learning rate.

Every reading compares differences of losses with the drop or with the noise of
the same curve, never the loss's value or its logarithm. Adding a constant to
the loss, which changes no gradient, changes no suggestion; multiplying the loss
by a positive constant changes none either (for SGD that multiplies every
gradient, which moves the whole curve along the lr axis and the suggestion with
it; Adam-style optimizers normalise it away).

The default, ``"auto"``, reads the optimizer and the shape of the curve:

- the curve has a descent (the loss falls clearly beyond its noise):
  plain-gradient optimizers (SGD) get ``"edge"``, the edge divided by
  :data:`EDGE_MARGIN`; adaptive ones (Adam, RMSprop, ...) get ``"minimum"``,
  the minimum's lr divided by :data:`MINIMUM_MARGIN` (NAdam: ``"minimum_nadam"``,
  :data:`NADAM_FACTOR` times that);
- no descent, but the loss blew up: for plain-gradient optimizers,
  ``"divergence"``, the lr where it blew up divided by :data:`DIVERGENCE_MARGIN`
  (a network that sits at chance during the whole sweep: the blow-up, where the
  lr passes what the curvature allows, is all the curve says about the usable
  range); for adaptive ones, no suggestion (their step is about lr per weight
  whatever the gradient, so their blow-up says nothing about the curvature);
- neither: no suggestion.

Pure functions of numbers: no Lightning and no optimizer here. The callback
and the benchmark call the same functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "AUTO",
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "Confidence",
    "CurveReading",
    "CurveShape",
    "StrategyName",
    "Suggestion",
    "SuggestionFn",
    "divergence_index",
    "read_curve",
    "resolve_strategy",
    "smooth_losses",
    "strategy_for",
    "suggest",
    "suggest_from",
]

SMOOTHING_DECADES = 0.15
"""Width (standard deviation, decades of lr) of the lag-free Gaussian smoothing of the curve."""
LEVEL_FRACTION = 0.1
"""The starting level is the median of the raw losses of the first tenth of the points (at least 3)."""
MIN_POINTS = 8
"""A curve with fewer usable points has no shape to read."""
SKIP_FRACTION = 0.05
"""Points at the very start where the minimum is not looked for (the level is measured there)."""
DESCENT_NOISE = 4.0
"""A descent: the smoothed loss falls by more than this many standard deviations of its own noise (about
the 95th percentile of that fall on curves of pure noise: one such sweep in 25 reads a descent)."""
LAST_GASP_DECADES = 0.25
"""A fall that exists only in the last points before the loss blows up, shorter than this, is no descent."""
EDGE_RISE = 0.5
"""The edge: past the minimum, where the smoothed loss is back up this share of its drop."""
DIVERGENCE_RISE = 4.0
"""The loss diverges where it rises above its starting level by this many times its scale (the drop so
far, at least three noise standard deviations) and stays there for :data:`DIVERGENCE_CONFIRM` points (or up
to the end of a curve, at least two)."""
DIVERGENCE_CONFIRM = 3
"""Consecutive points above the divergence line that make a blow-up (one spike does not)."""
EDGE_MARGIN = 3.0
"""``"edge"``: the edge divided by this."""
MINIMUM_MARGIN = 1.8
"""``"minimum"``: the minimum's lr divided by this (2.5 until step 9 of ``benchmarks/README.md``, which
left the grid's best max LR 1.4 times above the suggestion on the median adaptive run)."""
NADAM_FACTOR = 2.0
"""``"minimum_nadam"``: NAdam trains best at about twice what ``"minimum"`` reads from its curve."""
DIVERGENCE_MARGIN = 40.0
"""``"divergence"``: the lr where the loss blew up divided by this (a curve without descent; ``"auto"`` uses it
for plain-gradient optimizers only)."""
FLOOR_SHARE = 0.1
"""The bracket of ``"minimum"``: the lrs around the minimum where the smoothed loss is within this share of the
drop from its bottom."""
RISE_BAND = (0.25, 0.75)
"""The bracket of ``"edge"``: from where the loss, past its minimum, is back up the first share of its drop to
where it is back up the second."""
WIDE_BRACKET_DECADES = 0.5
"""A bracket wider than this makes a descent's suggestion only of ``"medium"`` confidence."""

CurveShape = Literal["descent", "flat", "flat-without-divergence", "too-short"]
Confidence = Literal["high", "medium", "low"]
SuggestionFn = Callable[[Sequence[float], Sequence[float]], float | None]
StrategyName = Literal["auto", "edge", "minimum", "minimum_nadam", "divergence", "steepest", "min_div_10", "valley"]
"""``"auto"`` and the names in :data:`STRATEGIES`, spelled out for type checkers and LightningCLI configs."""


# --- smoothing ----------------------------------------------------------------------------------


def smooth_losses(lrs: Sequence[float], losses: Sequence[float], decades: float | None = None) -> np.ndarray:
    """Zero-phase Gaussian smoothing of a range-test curve over ``decades`` of lr: no lag, and linear.

    Each point becomes a weighted mean of the losses around it (weights that sum
    to one), so ``smooth(a * losses + b) == a * smooth(losses) + b``: smoothing
    commutes with an offset and a scale of the loss. A running average instead
    trails the raw loss by about ``1 / (1 - beta)`` points, four decades of a
    100-step sweep at beta 0.98. Non-finite losses and what follows them are
    returned unchanged.

    Args:
        lrs: Learning rates, increasing.
        losses: Raw losses, one per lr.
        decades: Kernel width; defaults to :data:`SMOOTHING_DECADES`.

    Raises:
        ValueError: If ``lrs`` and ``losses`` differ in length.

    Example::

        >>> lrs = np.geomspace(1e-4, 1.0, 41)
        >>> noisy = 1.0 + 0.1 * (-1.0) ** np.arange(41)
        >>> bool(np.ptp(smooth_losses(lrs, noisy)) < 0.05)
        True
    """
    x, y = _as_arrays(lrs, losses)
    y = y.copy()
    n = _finite_prefix(y)
    width = SMOOTHING_DECADES if decades is None else decades
    if n >= 2 and width > 0:
        y[:n] = _gaussian_weights(np.log10(x[:n]), width) @ y[:n]
    return y


def _gaussian_weights(x: np.ndarray, width: float) -> np.ndarray:
    d = (x[:, None] - x[None, :]) / width
    weights = np.exp(-0.5 * d * d)
    return weights / weights.sum(axis=1, keepdims=True)


def _as_arrays(lrs: Sequence[float], losses: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(lrs, dtype=float)
    y = np.asarray(losses, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"Expected as many losses as lrs, but got {y.size} losses and {x.size} lrs.")
    return x, y


def _finite_prefix(values: np.ndarray) -> int:
    finite = np.isfinite(values)
    return int(np.argmin(finite)) if not finite.all() else int(values.size)


# --- reading a curve --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurveReading:
    """What a range-test curve shows, read without regard to the loss's offset or scale.

    Attributes:
        lrs: The sweep's learning rates.
        losses: The raw losses (non-finite ones included).
        smoothed: :func:`smooth_losses` of the usable points; the rest as recorded.
        usable: Points before the loss diverged or went non-finite.
        level: The starting level: median raw loss of the first tenth of the points.
        bottom: The smoothed curve's minimum.
        noise: Standard deviation of the raw losses around the curve (from successive differences).
        smoothed_noise: Standard deviation of a smoothed point that the noise alone causes.
        min_index: Index of the minimum.
        edge_index: Past the minimum, the last point before the smoothed loss is back up
            :data:`EDGE_RISE` of the drop (the last usable point if it never is).
        divergence_index: First point of the blow-up (or the first non-finite loss); ``None`` if none.
        nonfinite_index: First point whose loss is NaN or infinite; ``None`` if none.
        shape: ``"descent"``: the loss falls by more than :data:`DESCENT_NOISE` noise deviations, and
            not only in its last points before a blow-up; ``"flat"``: no such fall, but the loss blew up;
            ``"flat-without-divergence"``: neither; ``"too-short"``: under :data:`MIN_POINTS` usable points.
        rises: The smoothed loss turned back up past its minimum, or blew up, within the sweep (a non-finite
            loss alone does not count: the sweep was cut short of what the loss would have done).
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    usable: int
    level: float
    bottom: float
    noise: float
    smoothed_noise: float
    min_index: int
    edge_index: int
    divergence_index: int | None
    nonfinite_index: int | None
    shape: CurveShape
    rises: bool

    @property
    def drop(self) -> float:
        """How far the smoothed loss fell from the starting level to its minimum."""
        return self.level - self.bottom

    @property
    def min_lr(self) -> float:
        return float(self.lrs[self.min_index])

    @property
    def edge_lr(self) -> float:
        return float(self.lrs[self.edge_index])

    @property
    def divergence_lr(self) -> float | None:
        return None if self.divergence_index is None else float(self.lrs[self.divergence_index])

    @property
    def nonfinite_lr(self) -> float | None:
        return None if self.nonfinite_index is None else float(self.lrs[self.nonfinite_index])

    @property
    def still_falling(self) -> bool:
        """A descent whose loss never turned back up: the sweep ended before the usable range did."""
        return self.shape == "descent" and not self.rises


def divergence_index(
    losses: Sequence[float] | np.ndarray, level: float, noise: float, rise: float = DIVERGENCE_RISE, start: int = 0
) -> int | None:
    """First point of a blow-up: the raw loss above ``level`` by :data:`DIVERGENCE_RISE` times the scale
    (the drop so far, at least three ``noise`` deviations) there and at the next
    :data:`DIVERGENCE_CONFIRM` ``- 1`` points, from point ``start`` on (the points the level was read
    from are not searched), or the first non-finite loss; ``None`` without either.

    The range test's divergence stop applies the same rule while the sweep runs.

    Example::

        >>> divergence_index([2.0, 1.5, 1.0, 1.1, 9.0, 30.0, 99.0], level=2.0, noise=0.05)
        4
        >>> divergence_index([2.0, 1.5, 1.0, 9.0, 1.1, 1.2], level=2.0, noise=0.05) is None  # one spike
        True
    """
    y = np.asarray(losses, dtype=float)
    n = _finite_prefix(y)
    if n == 0:
        return None if y.size == 0 else 0
    running_min = np.minimum.accumulate(y[:n])
    line = level + rise * np.maximum(level - running_min, 3 * noise)
    above = y[:n] > line
    for j in np.flatnonzero(above[start:]) + start:
        window = above[j : j + DIVERGENCE_CONFIRM]
        # Confirmed by the next points, or by the sweep ending there (non-finite, or at least two points
        # above the line up to its last point).
        if window.all() and (window.size == DIVERGENCE_CONFIRM or n < y.size or window.size >= 2):
            return int(j)
    return n if n < y.size else None


def read_curve(
    lrs: Sequence[float],
    losses: Sequence[float],
    divergence_rise: float = DIVERGENCE_RISE,
    level_points: int | None = None,
    divergence_at: int | None = None,
) -> CurveReading:
    """Read a range-test curve: its level, drop, noise, minimum, edge, divergence and shape.

    Args:
        lrs: Learning rates of the sweep, increasing.
        losses: Raw losses, one per lr.
        divergence_rise: The :data:`DIVERGENCE_RISE` to read the blow-up with (the sweep's own stop rule).
        level_points: How many first points give the starting level; ``None``: a tenth of the finite
            points (at least 3). The callback passes what its divergence stop used: a tenth of the planned sweep.
        divergence_at: Where the sweep's divergence stop found the blow-up, if it did: the reading
            takes it as is, so that the stop and the reading never disagree on the same curve.

    Raises:
        ValueError: If ``lrs`` and ``losses`` differ in length.

    Example::

        >>> lrs = np.geomspace(1e-5, 10.0, 61)
        >>> loss = 2.0 - np.tanh(np.log10(lrs) + 3) + np.exp(3 * (np.log10(lrs) - 0.5))
        >>> reading = read_curve(lrs, loss)
        >>> reading.shape, round(float(np.log10(reading.min_lr)), 1)
        ('descent', -0.9)
        >>> read_curve(lrs, loss + 100.0).edge_lr == reading.edge_lr  # an offset changes nothing
        True
    """
    x, y = _as_arrays(lrs, losses)
    nonfinite = _finite_prefix(y)
    nonfinite_index = None if nonfinite == y.size else nonfinite
    head = level_points if level_points is not None else max(3, int(round(LEVEL_FRACTION * nonfinite)))
    if nonfinite < max(MIN_POINTS, head + 2):
        return _too_short(x, y, nonfinite_index)
    level = float(np.median(y[:head]))
    # Noise of one raw loss, from successive differences (a trend of the curve hardly enters, nor does a
    # blow-up at its end).
    noise = 1.4826 * float(np.median(np.abs(np.diff(y[:nonfinite])))) / math.sqrt(2)
    div = divergence_at if divergence_at is not None else divergence_index(y, level, noise, divergence_rise, start=head)
    n = nonfinite if div is None else div
    if n < max(MIN_POINTS, head + 2):
        return _too_short(x, y, nonfinite_index, div)
    weights = _gaussian_weights(np.log10(x[:n]), SMOOTHING_DECADES)
    smoothed = y.copy()
    smoothed[:n] = level + weights @ (y[:n] - level)  # about the level: a constant curve stays exactly constant
    smoothed_noise = noise * float(np.median(np.sqrt((weights**2).sum(axis=1))))
    skip = max(1, int(SKIP_FRACTION * n))
    i_min = skip + int(np.argmin(smoothed[skip:n]))
    bottom = float(smoothed[i_min])
    drop = level - bottom
    # The run of points below the middle of the drop that holds the minimum.
    below = smoothed[:n] < level - 0.5 * drop
    start = end = i_min
    while start > 0 and below[start - 1]:
        start -= 1
    while end < n - 1 and below[end + 1]:
        end += 1
    logs = np.log10(x)
    last_gasp = div is not None and n - 1 - end <= 2 and logs[end] - logs[start] < LAST_GASP_DECADES
    if drop > DESCENT_NOISE * smoothed_noise and not last_gasp:
        shape: CurveShape = "descent"
    else:
        shape = "flat" if div is not None else "flat-without-divergence"
    back_up = np.flatnonzero(smoothed[i_min:n] > bottom + EDGE_RISE * max(drop, 0.0))
    edge = i_min + int(back_up[0]) - 1 if back_up.size else n - 1
    return CurveReading(
        lrs=x,
        losses=y,
        smoothed=smoothed,
        usable=n,
        level=level,
        bottom=bottom,
        noise=noise,
        smoothed_noise=smoothed_noise,
        min_index=i_min,
        edge_index=max(edge, i_min),
        divergence_index=div,
        nonfinite_index=nonfinite_index,
        shape=shape,
        # A NaN alone does not say the loss turned up: the sweep may have been cut short of it.
        rises=bool(back_up.size) or (div is not None and div != nonfinite_index),
    )


def _too_short(x: np.ndarray, y: np.ndarray, nonfinite_index: int | None, div: int | None = None) -> CurveReading:
    n = _finite_prefix(y) if div is None else div
    return CurveReading(
        lrs=x,
        losses=y,
        smoothed=y.copy(),
        usable=n,
        level=math.nan,
        bottom=math.nan,
        noise=math.nan,
        smoothed_noise=math.nan,
        min_index=0,
        edge_index=0,
        divergence_index=div if div is not None else nonfinite_index,
        nonfinite_index=nonfinite_index,
        shape="too-short",
        rises=False,
    )


# --- strategies: a reading in, a learning rate (or None) out -----------------------------------------


def edge(reading: CurveReading) -> float | None:
    """The edge divided by :data:`EDGE_MARGIN`, for plain-gradient optimizers (a descent is needed).

    Past its minimum the loss of an SGD sweep turns up sharply once the lr passes
    what the curvature allows: the edge, where it is back up half its drop, is
    Smith's "largest lr at which the loss still improves" with a clear reading
    even on a long flat floor, and the best 1cycle peak sits a few times below it.
    """
    if reading.shape != "descent":
        return None
    return max(reading.edge_lr / EDGE_MARGIN, float(reading.lrs[1]))


def minimum(reading: CurveReading) -> float | None:
    """The minimum's lr divided by :data:`MINIMUM_MARGIN`, for adaptive optimizers (a descent is needed).

    With normalised steps (Adam, RMSprop, ...) the loss climbs gradually past its
    minimum, so the edge can lie decades above the usable range while the minimum
    stays close to it.
    """
    if reading.shape != "descent":
        return None
    return max(reading.min_lr / MINIMUM_MARGIN, float(reading.lrs[1]))


def minimum_nadam(reading: CurveReading) -> float | None:
    """:func:`minimum` times :data:`NADAM_FACTOR`, at most the edge: for NAdam.

    NAdam's momentum starts at about half its ``beta1`` (its ``momentum_decay``
    schedule raises it over thousands of steps) and its Nesterov step weighs the
    current gradient by the other half, so its sweep turns up at a lower lr than
    the one it trains best at.
    """
    found = minimum(reading)
    return None if found is None else min(found * NADAM_FACTOR, reading.edge_lr)


def divergence(reading: CurveReading) -> float | None:
    """The lr where the loss blew up divided by :data:`DIVERGENCE_MARGIN`: for a curve without descent.

    A network that sits at chance through the whole sweep (a deep plain stack at
    default initialisation, say) shows no minimum and no edge; the blow-up is
    the one landmark, and it comes late because the plateau's curvature is tiny.
    """
    lr = reading.divergence_lr
    return None if lr is None or reading.shape != "flat" else lr / DIVERGENCE_MARGIN


def steepest(reading: CurveReading) -> float | None:
    """The lr where the smoothed loss falls fastest per decade (what Lightning's ``lr_find`` and
    torch-lr-finder look for, per lr instead of per decade), between the start of the descent and the minimum."""
    if reading.shape != "descent":
        return None
    start = _descent_start(reading)
    y = reading.smoothed[start : reading.min_index + 1]
    if y.size < 3:
        return reading.min_lr
    slopes = np.gradient(y, np.log10(reading.lrs[start : reading.min_index + 1]))
    return float(reading.lrs[start + int(np.argmin(slopes))])


def min_div_10(reading: CurveReading) -> float | None:
    """A tenth of the minimum's lr (fastai's ``minimum``)."""
    return None if reading.shape != "descent" else reading.min_lr / 10


def valley(reading: CurveReading) -> float | None:
    """fastai's ``valley``: about half way down the longest decreasing stretch of the smoothed curve."""
    if reading.shape != "descent":
        return None
    y = reading.smoothed[: reading.min_index + 1]
    n = len(y)
    lds = np.ones(n, dtype=int)  # longest decreasing subsequence ending at each point (n is small)
    for i in range(1, n):
        before = lds[:i][y[:i] > y[i]]
        if before.size:
            lds[i] = int(before.max()) + 1
    end = int(np.argmax(lds))
    start = end - int(lds[end])
    sections = (end - start) / 3
    return float(reading.lrs[max(0, start + int(sections) + int(sections / 2))])


def _descent_start(reading: CurveReading) -> int:
    """The last point still within a tenth of the drop from the starting level, before the minimum."""
    y = reading.smoothed[: reading.min_index + 1]
    above = np.flatnonzero(y > reading.level - 0.1 * reading.drop)
    return int(above[-1]) if above.size else 0


STRATEGIES: dict[str, Callable[[CurveReading], float | None]] = {
    "edge": edge,
    "minimum": minimum,
    "minimum_nadam": minimum_nadam,
    "divergence": divergence,
    "steepest": steepest,
    "min_div_10": min_div_10,
    "valley": valley,
}
"""Built-in strategies by name: functions of a :class:`CurveReading`."""

AUTO = "auto"
"""The strategy that picks by optimizer and by the curve's shape (see the module's docstring)."""

DEFAULT_STRATEGY: StrategyName = "auto"


def strategy_for(adaptive: bool, nadam: bool = False, shape: CurveShape = "descent") -> str:
    """The strategy ``"auto"`` uses for an optimizer and a curve shape.

    Example::

        >>> strategy_for(adaptive=False), strategy_for(adaptive=True), strategy_for(True, nadam=True)
        ('edge', 'minimum', 'minimum_nadam')
        >>> strategy_for(adaptive=True, shape="flat")
        'divergence'

    With an adaptive optimizer, ``"auto"`` suggests nothing from a curve without a descent
    (:func:`suggest`): the configured lr stays.
    """
    if shape != "descent":
        return "divergence"
    if nadam:
        return "minimum_nadam"
    return "minimum" if adaptive else "edge"


def resolve_strategy(
    strategy: str | SuggestionFn,
    adaptive: bool = False,
    nadam: bool = False,
    shape: CurveShape = "descent",
) -> tuple[str, Callable[..., float | None]]:
    """The ``(name, function)`` of a strategy given by name or as a callable.

    Built-in functions take a :class:`CurveReading`; a callable of yours takes
    ``(lrs, smoothed_losses)`` (see :func:`suggest`).

    Raises:
        ValueError: If ``strategy`` is neither a known name nor callable.

    Example::

        >>> resolve_strategy("valley")[0], resolve_strategy("auto", adaptive=True)[0]
        ('valley', 'minimum')
    """
    if isinstance(strategy, str):
        name = strategy_for(adaptive, nadam, shape) if strategy == AUTO else strategy
        if name not in STRATEGIES:
            raise ValueError(
                f"Unknown suggestion strategy {strategy!r}. Use {AUTO!r}, one of {sorted(STRATEGIES)}"
                " or a callable `(lrs, smoothed_losses) -> lr | None`."
            )
        return name, STRATEGIES[name]
    if callable(strategy):
        return getattr(strategy, "__name__", type(strategy).__name__), strategy
    raise ValueError(
        f"Expected `suggestion` to be {AUTO!r}, a strategy name {sorted(STRATEGIES)} or a callable"
        f" `(lrs, smoothed_losses) -> lr | None`, but got {strategy!r}."
    )


def suggest(
    lrs: Sequence[float],
    losses: Sequence[float],
    strategy: str | SuggestionFn = DEFAULT_STRATEGY,
    adaptive: bool = False,
    nadam: bool = False,
) -> float | None:
    """The learning rate ``strategy`` suggests for a sweep's raw losses; ``None`` when there is none.

    Args:
        lrs: Learning rates of the sweep, increasing.
        losses: The raw losses, one per lr (the callback's ``result.losses``).
        strategy: ``"auto"``, a name in :data:`STRATEGIES`, or a callable
            ``(lrs, smoothed_losses) -> lr | None`` that gets the usable part of the
            curve smoothed by :func:`smooth_losses`.
        adaptive: For ``"auto"``: whether the optimizer is adaptive (Adam, RMSprop, ...).
        nadam: For ``"auto"``: whether the optimizer is NAdam.

    Raises:
        ValueError: If ``strategy`` is unknown.

    Example::

        >>> lrs = np.geomspace(1e-5, 10.0, 61)
        >>> loss = 2.0 - np.tanh(np.log10(lrs) + 3) + np.exp(3 * (np.log10(lrs) - 0.5))
        >>> lr = suggest(lrs, loss)
        >>> suggest(lrs, 10 * loss + 3) == lr
        True
        >>> suggest(lrs, np.full(61, 2.3)) is None  # flat, no blow-up: nothing to read
        True
    """
    return _suggest(read_curve(lrs, losses), strategy, adaptive, nadam)[1]


def _suggest(
    reading: CurveReading, strategy: str | SuggestionFn, adaptive: bool, nadam: bool
) -> tuple[str, float | None]:
    name, fn = resolve_strategy(strategy, adaptive, nadam, reading.shape)
    if strategy == AUTO and adaptive and reading.shape != "descent":
        # An adaptive optimizer's step is about lr per weight whatever the gradient, so its blow-up comes
        # from the weights' scale, not from the curvature that bounds the usable lrs: nothing to read.
        return name, None
    if isinstance(strategy, str):
        value = fn(reading)
    else:
        n = reading.usable
        value = fn(reading.lrs[:n], reading.smoothed[:n]) if n >= 2 else None
    if value is None:
        return name, None
    value = float(value)
    return name, (value if math.isfinite(value) and value > 0 else None)


@dataclass(frozen=True)
class Suggestion:
    """A suggested learning rate, the rule that made it, and how sure it is.

    Attributes:
        lr: The suggestion; ``None`` when the curve shows nothing to suggest from.
        strategy: The rule that made it (for ``"auto"``, the one it chose).
        bracket: ``(low, high)``: the lrs the same rule reads anywhere in the curve's ambiguous
            stretch (the floor around a minimum, the rise around an edge, the climb before a
            blow-up); how far another sweep's suggestion may plausibly lie. ``None`` without a suggestion,
            and for rules no stretch of the curve defines (a callable of yours, ``"steepest"``, ``"valley"``).
        confidence: ``"high"``: a descent that turns back up within the sweep, bracket wider than a
            point and at most :data:`WIDE_BRACKET_DECADES` wide; ``"medium"``: the same with a wider
            bracket, or none; ``"low"``: a curve without descent (read from its blow-up), or one that had
            not turned up when the sweep ended (still falling, or cut short by a non-finite loss).
            ``None`` without a suggestion.
        reading: The :class:`CurveReading` it came from.
    """

    lr: float | None
    strategy: str
    bracket: tuple[float, float] | None
    confidence: Confidence | None
    reading: CurveReading


def suggest_from(
    reading: CurveReading,
    strategy: str | SuggestionFn = DEFAULT_STRATEGY,
    adaptive: bool = False,
    nadam: bool = False,
) -> Suggestion:
    """The :class:`Suggestion` of ``strategy`` for a reading (see :func:`suggest` for the arguments).

    Example::

        >>> lrs = np.geomspace(1e-5, 10.0, 61)
        >>> loss = 2.0 - np.tanh(np.log10(lrs) + 3) + np.exp(3 * (np.log10(lrs) - 0.5))
        >>> found = suggest_from(read_curve(lrs, loss))
        >>> found.strategy, found.confidence, found.bracket[0] <= found.lr <= found.bracket[1]
        ('edge', 'high', True)
    """
    name, lr = _suggest(reading, strategy, adaptive, nadam)
    if lr is None:
        return Suggestion(None, name, None, None, reading)
    bracket = _bracket(reading, name, lr)
    if reading.shape != "descent" or reading.still_falling:
        confidence: Confidence = "low"
    elif bracket is None or bracket[1] <= bracket[0]:
        confidence = "medium"  # no stretch of the curve to judge the landmark by
    else:
        wide = math.log10(bracket[1] / bracket[0]) > WIDE_BRACKET_DECADES
        confidence = "medium" if wide else "high"
    return Suggestion(lr, name, bracket, confidence, reading)


def _bracket(reading: CurveReading, name: str, lr: float) -> tuple[float, float] | None:
    """The lrs ``name`` reads anywhere in the curve's ambiguous stretch, scaled as ``lr`` is from its landmark."""
    sm, n, lrs = reading.smoothed, reading.usable, reading.lrs
    if name in ("minimum", "minimum_nadam", "min_div_10"):
        landmark = reading.min_lr
        floor = reading.bottom + FLOOR_SHARE * reading.drop
        low = high = reading.min_index
        while low > 0 and sm[low - 1] <= floor:
            low -= 1
        while high < n - 1 and sm[high + 1] <= floor:
            high += 1
    elif name == "edge":
        landmark = reading.edge_lr
        low = reading.min_index
        while low < n - 1 and sm[low + 1] <= reading.bottom + RISE_BAND[0] * reading.drop:
            low += 1
        high = low
        while high < n - 1 and sm[high + 1] < reading.bottom + RISE_BAND[1] * reading.drop:
            high += 1
    elif name == "divergence" and reading.divergence_index is not None:
        landmark = float(lrs[reading.divergence_index])
        usable = sm[:n] if n else sm[:0]
        climbing = np.flatnonzero(usable > reading.level + 3 * reading.smoothed_noise) if n else np.array([])
        low = int(climbing[0]) if climbing.size else max(reading.divergence_index - 1, 0)
        high = reading.divergence_index
    else:  # a callable of yours, steepest, valley: no stretch of the curve defines them
        return None
    scale = lr / landmark
    return min(float(lrs[low]) * scale, lr), max(float(lrs[high]) * scale, lr)
