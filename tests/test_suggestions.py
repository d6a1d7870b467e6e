"""Reading range-test curves and suggesting from them: synthetic curves, invariances, shapes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_onecycle.suggestions import (
    DEFAULT_STRATEGY,
    DIVERGENCE_MARGIN,
    EDGE_MARGIN,
    EDGE_RISE,
    MINIMUM_MARGIN,
    NADAM_FACTOR,
    STRATEGIES,
    StrategyName,
    divergence_index,
    read_curve,
    resolve_strategy,
    smooth_losses,
    strategy_for,
    suggest,
    suggest_from,
)

LRS = np.geomspace(1e-7, 10.0, 100)
LOG = np.log10(LRS)


def curve(
    level: float = 2.3,
    drop: float = 2.0,
    start: float = -4.0,
    blow_up: float | None = -0.5,
    noise: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Flat at ``level``, falls by ``drop`` around lr 10**start, blows up past 10**blow_up; Gaussian noise."""
    y = level - drop * (1 + np.tanh(2 * (LOG - start))) / 2
    if blow_up is not None:
        y = y + np.where(LOG > blow_up, 30.0 * (LOG - blow_up) ** 2, 0.0)
    return y + noise * np.random.default_rng(seed).standard_normal(LOG.size)


# --- smoothing -------------------------------------------------------------------------------------


def test_smoothing_commutes_with_an_offset_and_a_scale_and_has_no_lag() -> None:
    y = curve(noise=0.05)
    smoothed = smooth_losses(LRS, y)
    assert np.allclose(smooth_losses(LRS, 3.0 * y - 7.0), 3.0 * smoothed - 7.0)
    # A centred kernel: the minimum of a valley stays where it is; a running average's trails it by decades.
    valley = (LOG + 2.0) ** 2
    assert abs(int(np.argmin(smooth_losses(LRS, valley))) - int(np.argmin(valley))) <= 1
    running, average = [], 0.0
    for i, v in enumerate(valley, start=1):
        average = 0.98 * average + 0.02 * v
        running.append(average / (1 - 0.98**i))
    assert LOG[int(np.argmin(running))] - LOG[int(np.argmin(valley))] > 1.0


def test_smoothing_keeps_a_non_finite_tail_and_rejects_mismatched_lengths() -> None:
    y = curve()
    y[80:] = np.nan
    assert np.isnan(smooth_losses(LRS, y)[80:]).all()
    with pytest.raises(ValueError, match="as many losses as lrs"):
        smooth_losses(LRS, y[:-1])


# --- reading: landmarks and shapes ---------------------------------------------------------------------


def test_a_descent_is_read_with_its_minimum_edge_and_divergence() -> None:
    reading = read_curve(LRS, curve())
    assert reading.shape == "descent" and reading.rises and not reading.still_falling
    assert reading.level == pytest.approx(2.3, abs=1e-3)
    assert reading.drop == pytest.approx(2.0, abs=0.05)
    assert 10**-1.2 < reading.min_lr < 10**-0.4  # the floor ends where the blow-up starts
    # The edge: the last point before the smoothed loss is back up EDGE_RISE of the drop.
    after = reading.smoothed[reading.edge_index + 1]
    assert after > reading.bottom + EDGE_RISE * reading.drop >= reading.smoothed[reading.edge_index]
    assert reading.divergence_lr is not None and reading.divergence_lr > reading.edge_lr


def test_divergence_needs_the_loss_to_stay_up_not_one_spike() -> None:
    y = curve(blow_up=None, noise=0.01)
    spiked = y.copy()
    spiked[70] = 50.0
    assert divergence_index(spiked, level=2.3, noise=0.01) is None
    spiked[71:73] = 50.0
    assert divergence_index(spiked, level=2.3, noise=0.01) == 70
    # A non-finite loss is where the curve ends, blown up or not.
    y[60] = np.nan
    assert divergence_index(y, level=2.3, noise=0.01) == 60


def test_false_descents_on_pure_noise_are_rare() -> None:
    """Pure noise (nothing learnt, e.g. random labels): the fall of its smoothed minimum exceeds DESCENT_NOISE
    noise deviations in a few percent of sweeps only, and such a curve then gets no suggestion."""
    readings = [read_curve(LRS, 1.6 + 0.05 * np.random.default_rng(s).chisquare(3, LRS.size)) for s in range(200)]
    assert sum(r.shape == "descent" for r in readings) <= 10
    flat = [r for r in readings if r.shape != "descent"]
    assert flat and all(r.shape == "flat-without-divergence" and suggest_from(r).lr is None for r in flat)


def test_a_network_at_chance_until_it_blows_up_is_flat_and_gets_the_divergence_rule() -> None:
    y = curve(drop=0.0, blow_up=0.3, noise=0.01)
    reading = read_curve(LRS, y)
    assert reading.shape == "flat"
    found = suggest_from(reading, "auto", adaptive=False)
    assert found.strategy == "divergence" and found.confidence == "low"
    assert found.lr == pytest.approx(reading.divergence_lr / DIVERGENCE_MARGIN)


def test_for_an_adaptive_optimizer_a_flat_curve_that_blows_up_suggests_nothing() -> None:
    reading = read_curve(LRS, curve(drop=0.0, blow_up=0.3, noise=0.01))
    found = suggest_from(reading, "auto", adaptive=True)
    assert reading.shape == "flat" and found.lr is None and found.confidence is None
    # Asked for by name, the rule still reads the blow-up.
    assert suggest_from(reading, "divergence", adaptive=True).lr == pytest.approx(
        reading.divergence_lr / DIVERGENCE_MARGIN
    )


def test_a_dip_just_before_the_blow_up_is_not_a_descent() -> None:
    y = curve(drop=0.0, blow_up=0.3, noise=0.005)
    dip = int(np.searchsorted(LOG, 0.3)) - 2
    y[dip : dip + 2] -= 0.3  # the last two points before the blow-up fall: a last gasp
    assert read_curve(LRS, y).shape == "flat"


def test_a_curve_still_falling_at_the_end_is_a_descent_of_low_confidence() -> None:
    y = curve(start=0.0, blow_up=None)
    reading = read_curve(LRS, y)
    assert reading.shape == "descent" and reading.still_falling
    assert suggest_from(reading).confidence == "low"


def test_a_nan_at_the_first_step_is_too_short_and_says_where() -> None:
    y = curve()
    y[0] = np.nan
    reading = read_curve(LRS, y)
    assert reading.shape == "too-short" and reading.nonfinite_lr == LRS[0]
    assert suggest(LRS, y) is None


def test_a_constant_curve_has_no_descent_whatever_the_rounding() -> None:
    assert read_curve(LRS, np.full(LRS.size, 2.3)).shape == "flat-without-divergence"
    assert suggest(LRS, np.full(LRS.size, 2.3)) is None


# --- strategies ---------------------------------------------------------------------------------------


def test_edge_minimum_and_nadam_are_their_landmarks_over_their_margins() -> None:
    reading = read_curve(LRS, curve(noise=0.01))
    assert STRATEGIES["edge"](reading) == pytest.approx(reading.edge_lr / EDGE_MARGIN)
    assert STRATEGIES["minimum"](reading) == pytest.approx(reading.min_lr / MINIMUM_MARGIN)
    nadam = STRATEGIES["minimum_nadam"](reading)
    assert nadam == pytest.approx(min(reading.min_lr / MINIMUM_MARGIN * NADAM_FACTOR, reading.edge_lr))


@pytest.mark.parametrize("name", sorted(set(STRATEGIES) - {"divergence"}))
def test_strategies_need_a_descent(name: str) -> None:
    assert STRATEGIES[name](read_curve(LRS, curve(drop=0.0, blow_up=0.3, noise=0.01))) is None


@pytest.mark.parametrize("name", ["steepest", "min_div_10", "valley"])
def test_the_peers_rules_suggest_inside_the_descent(name: str) -> None:
    reading = read_curve(LRS, curve(noise=0.01))
    lr = STRATEGIES[name](reading)
    assert 10**-5.5 < lr <= reading.min_lr


def test_auto_by_optimizer_and_shape() -> None:
    assert strategy_for(adaptive=False) == "edge"
    assert strategy_for(adaptive=True) == "minimum"
    assert strategy_for(adaptive=True, nadam=True) == "minimum_nadam"
    assert strategy_for(adaptive=False, shape="flat") == "divergence"
    y = curve(noise=0.01)
    assert suggest(LRS, y, "auto", adaptive=True) == suggest(LRS, y, "minimum")
    assert suggest(LRS, y) == suggest(LRS, y, "edge") and DEFAULT_STRATEGY == "auto"


def test_a_callable_gets_the_usable_smoothed_curve() -> None:
    seen = {}

    def mine(lrs, losses):
        seen["n"] = len(lrs)
        return float(lrs[int(np.argmin(losses))])

    y = curve()
    reading = read_curve(LRS, y)
    assert suggest(LRS, y, mine) == pytest.approx(reading.min_lr)
    assert seen["n"] == reading.usable
    assert suggest(LRS, y, lambda lrs, losses: -1.0) is None  # not a usable lr
    assert resolve_strategy(mine)[0] == "mine"


def test_unknown_strategies_are_rejected_with_the_choices() -> None:
    with pytest.raises(ValueError, match="Unknown suggestion strategy 'nope'"):
        resolve_strategy("nope")
    with pytest.raises(ValueError, match="a callable"):
        resolve_strategy(3)  # type: ignore[arg-type]  # the wrong type on purpose


def test_the_strategy_names_a_config_accepts_are_the_strategies() -> None:
    assert set(StrategyName.__args__) == {"auto", *STRATEGIES}


# --- the bracket and the confidence ------------------------------------------------------------------------


@pytest.mark.parametrize("adaptive", [False, True])
def test_the_bracket_holds_the_suggestion_and_widens_with_a_flatter_landmark(adaptive: bool) -> None:
    sharp = suggest_from(read_curve(LRS, curve(noise=0.01)), adaptive=adaptive)
    low, high = sharp.bracket
    assert low <= sharp.lr <= high
    assert sharp.confidence in ("high", "medium")
    # A long flat floor (the loss at its bottom for two decades): the minimum could be anywhere on it.
    floor = curve(start=-4.0, blow_up=0.5, noise=0.002)
    wide = suggest_from(read_curve(LRS, floor), adaptive=True)
    assert math.log10(wide.bracket[1] / wide.bracket[0]) > 1.0


# --- invariances: what training cannot see does not change the suggestion -------------------------------

CURVES = st.builds(
    curve,
    level=st.floats(0.5, 5.0),
    drop=st.floats(0.2, 0.45).map(lambda f: f * 4),
    start=st.floats(-6.0, -2.0),
    blow_up=st.one_of(st.none(), st.floats(-1.5, 0.8)),
    noise=st.floats(1e-3, 0.05),  # real sweeps are noisy; exact ties of a noise-free curve break by rounding
    seed=st.integers(0, 2**16),
)


@settings(max_examples=60, deadline=None)
@given(y=CURVES, offset=st.floats(-100.0, 100.0), scale=st.floats(1e-3, 1e3), adaptive=st.booleans())
def test_an_offset_or_a_scale_of_the_loss_changes_no_suggestion(
    y: np.ndarray, offset: float, scale: float, adaptive: bool
) -> None:
    expected = suggest_from(read_curve(LRS, y), adaptive=adaptive)
    for changed in (y + offset, y * scale, scale * y + offset):
        found = suggest_from(read_curve(LRS, changed), adaptive=adaptive)
        assert (found.lr, found.strategy, found.bracket, found.confidence) == (
            expected.lr,
            expected.strategy,
            expected.bracket,
            expected.confidence,
        )


@settings(max_examples=25, deadline=None)
@given(y=CURVES, factor_steps=st.integers(1, 20))
def test_for_sgd_a_scaled_loss_moves_the_suggestion_with_the_curve(y: np.ndarray, factor_steps: int) -> None:
    """SGD on ``c * loss`` takes the steps of lr ``c * lr`` on the loss: the curve moves ``1/c`` along the lr
    axis (by whole sweep points here, so the lrs match exactly), and the suggestion moves with it."""
    ratio = LRS[1] / LRS[0]
    c = ratio**factor_steps
    shifted_lrs = LRS / c  # the same losses, read at lrs 1/c lower: the curve of SGD on c * loss
    original = suggest(LRS, y)
    moved = suggest(shifted_lrs, c * y)
    assert (original is None) == (moved is None)
    if original is not None:
        assert moved == pytest.approx(original / c, rel=1e-9)


def test_a_descent_cut_short_by_a_nan_has_not_turned_up_and_is_of_low_confidence() -> None:
    y = curve(blow_up=None, noise=0.01)
    y[70:] = np.nan  # the sweep stopped on a NaN while the loss still sat on its floor
    reading = read_curve(LRS, y)
    assert reading.shape == "descent" and reading.nonfinite_lr == LRS[70]
    assert not reading.rises and reading.still_falling
    assert suggest_from(reading).confidence == "low"


def test_rules_no_stretch_of_the_curve_defines_have_no_bracket_and_never_high_confidence() -> None:
    reading = read_curve(LRS, curve(noise=0.01))
    for rule in ("steepest", "valley", lambda lrs, losses: float(lrs[int(np.argmin(losses))])):
        found = suggest_from(reading, rule)
        assert found.lr is not None and found.bracket is None and found.confidence == "medium"


def test_the_reading_takes_the_level_window_and_the_blow_up_it_is_given() -> None:
    """The callback passes what its divergence stop used, so that stop and reading agree on one curve."""
    y = curve(noise=0.01)
    given = read_curve(LRS, y, level_points=20, divergence_at=60)
    assert given.divergence_index == 60 and given.usable == 60
    assert given.level == pytest.approx(float(np.median(y[:20])))
