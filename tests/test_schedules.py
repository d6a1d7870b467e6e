"""The pure schedules agree with PyTorch's schedulers value for value."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lightning_onecycle.schedules import CyclicSchedule, LRSweep, OneCycleSchedule, anneal_cos, anneal_linear

REL = 1e-9


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL, abs_tol=1e-300)


def _torch_trajectory(make_scheduler, n_steps: int, n_groups: int = 1, betas: bool = False):
    """lr and momentum that a torch scheduler has set before each optimizer step."""
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(n_groups)]
    groups = [{"params": [p]} for p in params]
    opt = torch.optim.Adam(groups, lr=0.1) if betas else torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    sched = make_scheduler(opt)
    lrs, moms = [], []
    for _ in range(n_steps):
        lrs.append([g["lr"] for g in opt.param_groups])
        moms.append([g["betas"][0] if betas else g["momentum"] for g in opt.param_groups])
        opt.step()
        sched.step()
    return lrs, moms


one_cycle_settings = st.fixed_dictionaries(
    {
        "max_lr": st.floats(1e-6, 10.0),
        "total_steps": st.integers(2, 400),
        "pct_start": st.floats(0.01, 0.99),
        "anneal_strategy": st.sampled_from(["cos", "linear"]),
        "div_factor": st.floats(1.0, 1e3),
        "final_div_factor": st.floats(1.0, 1e5),
        "three_phase": st.booleans(),
        "base_momentum": st.floats(0.0, 0.99),
        "max_momentum": st.floats(0.0, 0.99),
    }
)


def _torch_can_run(kw: dict) -> bool:
    # OneCycleLR divides by each phase's length; it crashes (ZeroDivisionError) when a
    # phase is shorter than one step. Our schedule defines those cases; compare the rest.
    n, p = kw["total_steps"], kw["pct_start"]
    ends = [p * n - 1, 2 * p * n - 2, n - 1] if kw["three_phase"] else [p * n - 1, n - 1]
    starts = [0.0, *ends[:-1]]
    return all(e - s > 1e-9 for s, e in zip(starts, ends)) and ends == sorted(ends)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(kw=one_cycle_settings, betas=st.booleans())
def test_one_cycle_matches_torch_one_cycle_lr(kw, betas):
    assume(_torch_can_run(kw))
    ours = OneCycleSchedule(**kw)
    lrs, moms = _torch_trajectory(
        lambda opt: torch.optim.lr_scheduler.OneCycleLR(opt, **kw), kw["total_steps"], betas=betas
    )
    for step in range(kw["total_steps"]):
        assert _close(ours.lr(step), lrs[step][0]), (step, ours.lr(step), lrs[step][0])
        assert _close(ours.momentum(step), moms[step][0]), (step, ours.momentum(step), moms[step][0])


cyclic_settings = st.fixed_dictionaries(
    {
        "base_lr": st.floats(1e-6, 1e-2),
        "max_lr": st.floats(1e-2, 10.0),
        "step_size_up": st.integers(1, 50),
        "step_size_down": st.one_of(st.none(), st.integers(1, 50)),
        "mode": st.sampled_from(["triangular", "triangular2", "exp_range"]),
        "gamma": st.floats(0.9, 1.0),
        "base_momentum": st.floats(0.5, 0.85),
        "max_momentum": st.floats(0.85, 0.99),
    }
)


@settings(max_examples=150, deadline=None)
@given(kw=cyclic_settings, betas=st.booleans())
def test_cyclic_matches_torch_cyclic_lr(kw, betas):
    ours = CyclicSchedule(**kw)
    n = 3 * (kw["step_size_up"] + (kw["step_size_down"] or kw["step_size_up"])) + 1
    lrs, moms = _torch_trajectory(lambda opt: torch.optim.lr_scheduler.CyclicLR(opt, **kw), n, betas=betas)
    for step in range(n):
        assert _close(ours.lr(step), lrs[step][0]), (step, ours.lr(step), lrs[step][0])
        assert _close(ours.momentum(step), moms[step][0]), (step, ours.momentum(step), moms[step][0])


def test_one_cycle_endpoints_and_holds_past_the_end():
    s = OneCycleSchedule(max_lr=0.1, total_steps=100)
    assert s.lr(0) == pytest.approx(0.1 / 25)
    assert max(s.lr(k) for k in range(100)) == pytest.approx(0.1)
    assert s.lr(99) == pytest.approx(0.1 / 25 / 1e4)
    assert s.momentum(0) == pytest.approx(0.95)
    assert min(s.momentum(k) for k in range(100)) == pytest.approx(0.85)
    assert s.lr(10_000) == s.lr(99) and s.momentum(10_000) == s.momentum(99)


def test_one_cycle_defines_phases_shorter_than_a_step():
    # torch's OneCycleLR divides by zero here (pct_start * total_steps == 1).
    s = OneCycleSchedule(max_lr=1.0, total_steps=10, pct_start=0.1)
    assert s.lr(0) == pytest.approx(1.0)
    assert s.lr(9) == pytest.approx(1.0 / 25 / 1e4)
    one = OneCycleSchedule(max_lr=1.0, total_steps=1)
    assert one.lr(0) == pytest.approx(1.0 / 25 / 1e4)


def test_lr_sweep_exponential_and_linear():
    exp = LRSweep(1e-6, 1.0, num_steps=7)
    assert [exp.lr(k) for k in range(7)] == pytest.approx([10.0**e for e in range(-6, 1)], rel=1e-12)
    lin = LRSweep(0.1, 1.0, num_steps=10, mode="linear")
    assert lin.lr(0) == pytest.approx(0.1) and lin.lr(9) == pytest.approx(1.0) and lin.lr(4) == pytest.approx(0.5)
    assert exp.lr(100) == pytest.approx(1.0) and exp.momentum(3) is None


def test_annealers():
    assert anneal_cos(2.0, 0.0, 0.0) == 2.0 and anneal_cos(2.0, 0.0, 1.0) == 0.0
    assert anneal_linear(1.0, 3.0, 0.5) == 2.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_lr": 0.0, "total_steps": 10}, "positive finite number for `max_lr`"),
        ({"max_lr": float("nan"), "total_steps": 10}, "`max_lr`"),
        ({"max_lr": 0.1, "total_steps": 0}, "positive integer `total_steps`"),
        ({"max_lr": 0.1, "total_steps": 10, "pct_start": 1.0}, "`pct_start` strictly between 0 and 1"),
        ({"max_lr": 0.1, "total_steps": 10, "pct_start": 0.0}, "`pct_start`"),
        ({"max_lr": 0.1, "total_steps": 10, "anneal_strategy": "cosine"}, "'cos' or 'linear'"),
        ({"max_lr": 0.1, "total_steps": 10, "base_momentum": 1.5}, "`base_momentum` in [0, 1)"),
        ({"max_lr": 0.1, "total_steps": 10, "div_factor": -1}, "`div_factor`"),
    ],
)
def test_one_cycle_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        OneCycleSchedule(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_lr": 0.1, "max_lr": 1.0, "mode": "sine"}, "'triangular', 'triangular2' or 'exp_range'"),
        ({"base_lr": 0.1, "max_lr": 1.0, "step_size_up": 0}, "`step_size_up`"),
        ({"base_lr": -0.1, "max_lr": 1.0}, "`base_lr`"),
        ({"base_lr": 0.1, "max_lr": 1.0, "base_momentum": None}, "both `base_momentum` and `max_momentum`"),
    ],
)
def test_cyclic_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CyclicSchedule(**kwargs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((1.0, 0.1, 10), "`min_lr` < `max_lr`"),
        ((0.0, 1.0, 10), "`min_lr`"),
        ((1e-3, 1.0, 1), "`num_steps` >= 2"),
    ],
)
def test_sweep_rejects_bad_settings(args, message):
    with pytest.raises(ValueError, match=message):
        LRSweep(*args)
