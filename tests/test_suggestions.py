"""Suggestion strategies on synthetic range-test curves."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from lightning_onecycle.suggestions import (
    DEFAULT_STRATEGY,
    EDGE_DROP_EXPONENT,
    EDGE_MARGIN,
    MINIMUM_DROP_EXPONENT,
    MINIMUM_MARGIN,
    STRATEGIES,
    edge,
    edge_at,
    edge_point,
    min_div_10,
    minimum,
    minimum_nadam,
    resolve_strategy,
    smooth_losses,
    steepest,
    strategy_for,
    suggest,
    usable_descent,
    valley,
)

LRS = np.geomspace(1e-6, 10.0, 100)
LOG = np.log10(LRS)


def _ema(values: np.ndarray, beta: float = 0.98) -> np.ndarray:
    """The callback's bias-corrected smoothing."""
    out, avg = [], 0.0
    for i, v in enumerate(values, start=1):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta**i))
    return np.array(out)


def typical_curve() -> np.ndarray:
    """Flat at 2.3 until 1e-4, falls to 0.3 (steepest at 1e-3), minimum near 3e-2, then diverges."""
    descent = 2.3 - 2.0 * (1 + np.tanh(2 * (LOG + 3))) / 2
    divergence = np.where(LOG > -1.5, 8.0 * (LOG + 1.5) ** 2, 0.0)
    return descent + divergence


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_typical_curve_suggests_inside_the_descent(name: str) -> None:
    losses = typical_curve()
    lr = STRATEGIES[name](LRS, losses)
    assert lr is not None
    start_of_descent = LRS[np.argmax(losses < 2.3 - 0.1 * 2.0)]
    minimum = LRS[np.argmin(losses)]
    assert start_of_descent <= lr <= minimum


def test_steepest_finds_the_steepest_point_per_decade() -> None:
    lr = steepest(LRS, typical_curve())
    assert lr is not None
    assert math.log10(lr) == pytest.approx(-3.0, abs=0.1)


def test_min_div_10_is_a_tenth_of_the_minimum() -> None:
    losses = typical_curve()
    assert min_div_10(LRS, losses) == pytest.approx(LRS[np.argmin(losses)] / 10)


def test_valley_is_halfway_down_the_longest_descent() -> None:
    # Flat at 3.0 up to index 19 (the knee: the last point above 10% of the drop), strictly decreasing
    # from 2.5 to the minimum 1.0 at index 80, rising after. The longest decreasing stretch runs from the
    # knee to the minimum (62 points); fastai starts one before it (18) and goes int(62/3) + int(62/6)
    # = 30 points on: index 48.
    losses = np.concatenate([np.full(20, 3.0), np.linspace(2.5, 1.0, 61), np.linspace(1.5, 5.0, 19)])
    assert valley(LRS, losses) == pytest.approx(LRS[48])


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_all_flat_curve_gives_none(name: str) -> None:
    assert STRATEGIES[name](LRS, np.full(100, 1.7)) is None


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_noisy_flat_curve_gives_none(name: str) -> None:
    rng = np.random.default_rng(0)
    losses = _ema(1.7 + 0.05 * rng.standard_normal(100))
    assert STRATEGIES[name](LRS, losses) is None


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_curve_rising_from_the_start_gives_none(name: str) -> None:
    assert STRATEGIES[name](LRS, np.linspace(1.0, 9.0, 100)) is None


@pytest.mark.parametrize("name", sorted(STRATEGIES))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noisy_curve_stays_between_descent_start_and_minimum(name: str, seed: int) -> None:
    clean = typical_curve()
    rng = np.random.default_rng(seed)
    losses = smooth_losses(LRS, clean * (1 + 0.1 * rng.standard_normal(100)))  # what the callback passes
    lr = STRATEGIES[name](LRS, losses)
    assert lr is not None
    # Never in the flat region (< 1e-4) nor near divergence (the clean curve is back at its start at 1e-1).
    assert 1e-4 <= lr <= 5e-2


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_no_suggestion_in_the_flat_region_or_past_the_minimum(name: str) -> None:
    # A cliff: flat until 1e-2, then a sharp drop with its minimum at 0.1, then divergence.
    losses = np.where(LOG < -2, 2.0, 2.0 - 1.5 * np.clip((LOG + 2) / 1, 0, 1))
    losses = losses + np.where(LOG > -1, 20.0 * (LOG + 1), 0.0)
    lr = STRATEGIES[name](LRS, losses)
    assert lr is not None
    assert LRS[np.argmax(losses < 2.0)] <= lr <= LRS[np.argmin(losses)]


def test_non_finite_tail_is_cut_off() -> None:
    losses = typical_curve()
    losses[70:] = np.nan
    descent = usable_descent(LRS, losses)
    assert descent is not None
    assert descent.lrs[-1] < LRS[70]
    assert steepest(LRS, losses) == steepest(LRS[:70], losses[:70])


def test_too_few_points_gives_none() -> None:
    assert usable_descent(LRS[:5], typical_curve()[:5]) is None
    assert suggest(LRS[:5], np.linspace(3, 1, 5)) is None


def test_mismatched_lengths_raise() -> None:
    with pytest.raises(ValueError, match="as many losses as lrs"):
        usable_descent(LRS, typical_curve()[:50])


def test_suggest_with_a_callable_and_rejects_bad_values() -> None:
    assert suggest(LRS, typical_curve(), lambda lrs, losses: 0.25) == 0.25
    assert suggest(LRS, typical_curve(), lambda lrs, losses: None) is None
    assert suggest(LRS, typical_curve(), lambda lrs, losses: float("nan")) is None
    assert suggest(LRS, typical_curve(), lambda lrs, losses: -1.0) is None


def test_resolve_strategy() -> None:
    assert resolve_strategy("valley") == ("valley", valley)
    assert DEFAULT_STRATEGY == "auto"
    assert resolve_strategy("auto") == ("edge", edge)
    assert resolve_strategy("auto", adaptive=True) == ("minimum", minimum)
    assert resolve_strategy("auto", adaptive=True, nadam=True) == ("minimum_nadam", minimum_nadam)

    def mine(lrs, losses):
        return 1.0

    assert resolve_strategy(mine) == ("mine", mine)
    with pytest.raises(ValueError, match="Unknown suggestion strategy 'best'"):
        resolve_strategy("best")
    with pytest.raises(ValueError, match="a strategy name"):
        resolve_strategy(3)  # type: ignore[arg-type]  # the point: a wrong type gets a clear error


def _fastai_valley(lrs: np.ndarray, losses: np.ndarray) -> float:
    """fastai's ``valley`` (fastai/callback/schedule.py), transcribed loop for loop."""
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if losses[i] < losses[j] and lds[i] < lds[j] + 1:
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx])


@pytest.mark.parametrize("seed", range(5))
def test_valley_equals_fastai_on_the_usable_window(seed: int) -> None:
    rng = np.random.default_rng(seed)
    losses = _ema(typical_curve() * (1 + 0.2 * rng.standard_normal(100)), beta=0.9)
    descent = usable_descent(LRS, losses)
    assert descent is not None
    assert valley(LRS, losses) == descent.clamp(_fastai_valley(descent.lrs, descent.losses))


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_a_dip_on_the_plateau_is_not_the_descent(name: str) -> None:
    # Plateau at 4.1 with a dip to 3.9 around 1e-5 (more than 10% of the total drop), then the real
    # descent from 1e-3 to the minimum 3.0 near 0.3, then divergence.
    losses = 4.1 - 0.2 * np.exp(-(((LOG + 5) / 0.2) ** 2))
    losses = losses - 1.1 * np.clip((LOG + 3) / 2.5, 0, 1) + np.where(LOG > -0.5, 30.0 * (LOG + 0.5), 0.0)
    lr = STRATEGIES[name](LRS, losses)
    assert lr is not None
    # NAdam's rule may go past the minimum, never past the edge (where the loss has climbed half way back).
    highest = edge_point(LRS, losses)[0] if name == "minimum_nadam" else LRS[np.argmin(losses)]
    assert 1e-3 <= lr <= highest


def test_smoothing_has_no_lag_unlike_a_running_average() -> None:
    clean = typical_curve()
    rng = np.random.default_rng(3)
    noisy = clean * (1 + 0.1 * rng.standard_normal(100))
    true_min = math.log10(LRS[np.argmin(clean)])
    assert math.log10(LRS[np.argmin(smooth_losses(LRS, noisy))]) == pytest.approx(true_min, abs=0.25)
    assert math.log10(LRS[np.argmin(_ema(noisy))]) > true_min + 0.25  # the running average trails


def test_smoothing_keeps_a_non_finite_tail_and_rejects_mismatched_lengths() -> None:
    losses = typical_curve()
    losses[90:] = np.inf
    smoothed = smooth_losses(LRS, losses)
    assert np.isinf(smoothed[90:]).all() and np.isfinite(smoothed[:90]).all()
    with pytest.raises(ValueError, match="as many losses as lrs"):
        smooth_losses(LRS, losses[:10])


def test_edge_follows_a_long_flat_floor_to_where_the_loss_turns_up() -> None:
    # Falls from 3.0 to 1.0 around 1e-3, stays on the floor until 0.3, then climbs steeply.
    floor = 3.0 - 2.0 * (1 + np.tanh(3 * (LOG + 3))) / 2
    losses = floor * np.exp(np.clip(LOG - math.log10(0.3), 0, None) * 6)
    lr = edge(LRS, losses)
    # the loss is back at the geometric midpoint of 1.0 and 3.0 (sqrt 3) at 0.3 * 10**(ln(3)/12)
    turn = 0.3 * 10 ** (math.log(3) / 2 / 6)
    assert lr == pytest.approx(turn / (EDGE_MARGIN * 3.0**EDGE_DROP_EXPONENT), rel=0.15)  # the loss fell 3x
    assert lr > 3 * min_div_10(LRS, losses)  # far above the minimum-based rule on such a curve


@pytest.mark.parametrize("fall", [1.5, 4.0, 20.0])
def test_edge_margin_grows_with_how_far_the_loss_fell(fall: float) -> None:
    # The same edge (the loss climbs steeply from 0.3 on), reached after falls of different depth.
    floor = 3.0 - (3.0 - 3.0 / fall) * (1 + np.tanh(3 * (LOG + 3))) / 2
    losses = floor * np.exp(np.clip(LOG - math.log10(0.3), 0, None) * 12)
    found = edge_point(LRS, losses)
    assert found is not None and 0.25 <= found[0] <= 0.6
    expected = found[0] / (EDGE_MARGIN * fall**EDGE_DROP_EXPONENT)
    assert edge(LRS, losses) == pytest.approx(expected, rel=0.1)
    assert edge_at(LRS, losses, 3.0) == pytest.approx(found[0] / 3.0)


@pytest.mark.parametrize("fall", [1.5, 4.0, 20.0])
def test_minimum_scales_the_minimum_by_how_far_the_loss_fell(fall: float) -> None:
    # Flat at 3.0, falls to 3 / fall with its minimum at 1e-2, then climbs gradually.
    losses = 3.0 / fall + (3.0 - 3.0 / fall) * np.clip((LOG + 2) / -3, 0, 1) + np.clip(LOG + 2, 0, None)
    min_lr = LRS[np.argmin(losses)]
    assert min_lr == pytest.approx(1e-2, rel=0.2)
    assert losses.min() == pytest.approx(3.0 / fall, abs=0.05)
    expected = min_lr * (losses.min() / 3.0) ** MINIMUM_DROP_EXPONENT / MINIMUM_MARGIN
    assert minimum(LRS, losses) == pytest.approx(expected, rel=0.05)


def test_auto_is_edge_for_sgd_and_minimum_for_adaptive_optimizers() -> None:
    assert (strategy_for(adaptive=False), strategy_for(adaptive=True)) == ("edge", "minimum")
    losses = typical_curve()
    assert suggest(LRS, losses, "auto") == edge(LRS, losses)
    assert suggest(LRS, losses, "auto", adaptive=True) == minimum(LRS, losses)
    assert minimum(LRS, losses) < edge(LRS, losses)  # this curve falls 7x: well below the minimum


def test_edge_ignores_negative_losses_before_the_minimum_without_warnings():
    # One negative point in the skipped start; the climb past the minimum is all positive, so logs are fine there.
    t = np.log10(np.geomspace(1e-5, 10, 60))
    losses = 2.0 - np.tanh(t + 3) + np.exp(3 * (t - 0.5))
    clean = edge_point(np.geomspace(1e-5, 10, 60), losses)
    losses[0] = -0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = edge_point(np.geomspace(1e-5, 10, 60), losses)
    assert found is not None and clean is not None and found[0] == clean[0]


def test_minimum_nadam_is_twice_the_minimum_but_never_past_the_edge() -> None:
    losses = typical_curve()
    assert minimum_nadam(LRS, losses) == pytest.approx(2 * minimum(LRS, losses), rel=1e-12)
    # A shallow fall, then a cliff: twice the minimum rule would pass the edge, so the edge it is.
    shallow = 2.0 - 0.2 * np.clip((LOG + 3) / 2, 0, 1) + np.where(LOG > -1, 20.0 * (LOG + 1), 0.0)
    edge_lr = edge_point(LRS, shallow)[0]
    assert 2 * minimum(LRS, shallow) > edge_lr
    assert minimum_nadam(LRS, shallow) == edge_lr
    # A sharp, deep fall: the minimum rule is clamped up to the start of the descent; twice that, not less.
    cliff = 2.0 - 1.98 * np.clip((LOG + 3) / 0.5, 0, 1) + np.where(LOG > -1, 20.0 * (LOG + 1), 0.0)
    descent = usable_descent(LRS, cliff)
    assert minimum(LRS, cliff) == descent.lowest_lr
    assert minimum_nadam(LRS, cliff) == pytest.approx(min(2 * descent.lowest_lr, edge_point(LRS, cliff)[0]))
