"""Param-group access: momentum vs betas, tensor lrs, log names."""

from __future__ import annotations

import pytest
import torch

from lightning_onecycle import _param_groups as pg


def _opt(cls, **kw):
    return cls([torch.nn.Parameter(torch.zeros(2))], **kw)


@pytest.mark.parametrize(
    ("cls", "kw", "key"),
    [
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}, "momentum"),
        (torch.optim.SGD, {"lr": 0.1}, None),
        (torch.optim.RMSprop, {"lr": 0.1, "momentum": 0.5}, "momentum"),
        (torch.optim.RMSprop, {"lr": 0.1}, None),
        (torch.optim.Adam, {"lr": 0.1}, "betas"),
        (torch.optim.AdamW, {"lr": 0.1}, "betas"),
        (torch.optim.NAdam, {"lr": 0.1}, "betas"),
        (torch.optim.RAdam, {"lr": 0.1}, "betas"),
        (torch.optim.Adagrad, {"lr": 0.1}, None),
        (torch.optim.Adam, {"lr": 0.1, "betas": (0.0, 0.99)}, None),  # beta1 0 (GANs): turning it on would change Adam
    ],
)
def test_momentum_key(cls, kw, key):
    assert pg.momentum_key(_opt(cls, **kw).param_groups[0]) == key


@pytest.mark.parametrize(
    ("cls", "kw", "adaptive"),
    [
        (torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}, False),
        (torch.optim.SGD, {"lr": 0.1}, False),
        (torch.optim.Adam, {}, True),
        (torch.optim.AdamW, {}, True),
        (torch.optim.NAdam, {}, True),
        (torch.optim.RAdam, {}, True),
        (torch.optim.Adamax, {}, True),
        (torch.optim.RMSprop, {}, True),
        (torch.optim.Adagrad, {}, True),
        (torch.optim.Adadelta, {}, True),
        *([(torch.optim.Adafactor, {}, True)] if hasattr(torch.optim, "Adafactor") else []),
    ],
)
def test_uses_adaptive_steps(cls, kw, adaptive):
    assert pg.uses_adaptive_steps(_opt(cls, **kw)) is adaptive


def test_set_momentum_writes_beta1_only():
    group = _opt(torch.optim.Adam, lr=0.1, betas=(0.9, 0.99)).param_groups[0]
    pg.set_momentum(group, 0.85)
    assert group["betas"] == (0.85, 0.99) and pg.get_momentum(group) == 0.85


def test_set_momentum_without_momentum_is_an_error():
    with pytest.raises(ValueError, match="no momentum or betas"):
        pg.set_momentum(_opt(torch.optim.Adagrad, lr=0.1).param_groups[0], 0.9)


def test_tensor_lr_is_written_in_place():
    opt = _opt(torch.optim.Adam, lr=torch.tensor(0.01))
    lr_tensor = opt.param_groups[0]["lr"]
    pg.set_lr(opt.param_groups[0], 0.05)
    assert opt.param_groups[0]["lr"] is lr_tensor
    assert pg.get_lr(opt.param_groups[0]) == pytest.approx(0.05)


def test_group_names_follow_lr_monitor_conventions():
    p = [torch.nn.Parameter(torch.zeros(1)) for _ in range(3)]
    a = torch.optim.SGD([{"params": [p[0]]}, {"params": [p[1]], "name": "head"}], lr=0.1)
    b = torch.optim.SGD([p[2]], lr=0.1)
    c = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))])
    assert pg.group_names([a, b, c]) == [["SGD/pg1", "SGD/head"], ["SGD-1"], ["Adam"]]


def test_set_momentum_writes_zero_and_back():
    # A schedule may pass through 0 (base_momentum=0): the next step must still find the key.
    group = _opt(torch.optim.SGD, lr=0.1, momentum=0.9).param_groups[0]
    pg.set_momentum(group, 0.0)
    assert pg.get_momentum(group) == 0.0
    pg.set_momentum(group, 0.85)
    assert group["momentum"] == 0.85


def test_tensor_beta1_is_written_in_place():
    beta1 = torch.tensor(0.9)
    group = _opt(torch.optim.Adam, lr=0.01, betas=(beta1, torch.tensor(0.999))).param_groups[0]
    pg.set_momentum(group, 0.85)
    assert group["betas"][0] is beta1
    assert pg.get_momentum(group) == pytest.approx(0.85)


def test_a_momentum_that_is_not_a_number_is_no_momentum():
    group = {"params": [], "lr": 0.1, "momentum": None}
    assert pg.momentum_key(group) is None and pg.get_momentum(group) is None


def test_prepare_gives_each_group_its_own_tensor_lr():
    shared = torch.tensor(0.01)
    opt = torch.optim.Adam(
        [{"params": [torch.nn.Parameter(torch.zeros(1))]}, {"params": [torch.nn.Parameter(torch.zeros(1))]}],
        lr=shared,
    )
    assert opt.param_groups[0]["lr"] is opt.param_groups[1]["lr"] is opt.defaults["lr"]

    pg.prepare_for_scheduling([opt], "Owner")
    pg.set_lr(opt.param_groups[0], 0.5)
    pg.set_lr(opt.param_groups[1], 0.25)

    assert [pg.get_lr(g) for g in opt.param_groups] == [0.5, 0.25]
    assert float(shared) == pytest.approx(0.01) and opt.defaults["lr"] is shared  # the user's tensor is untouched
    assert all(isinstance(g["lr"], torch.Tensor) for g in opt.param_groups)


def test_prepare_rejects_what_a_schedule_cannot_drive():
    from lightning.pytorch.utilities.exceptions import MisconfigurationException

    with pytest.raises(MisconfigurationException, match="Owner changes the learning rate every step, but Rprop reads"):
        pg.prepare_for_scheduling([_opt(torch.optim.Rprop, lr=0.01)], "Owner")
    no_lr = _opt(torch.optim.SGD, lr=0.1)
    del no_lr.param_groups[0]["lr"]
    with pytest.raises(MisconfigurationException, match="param group 0 of SGD has no `lr` key"):
        pg.prepare_for_scheduling([no_lr], "Owner")
