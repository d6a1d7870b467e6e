"""Reading and writing lr and momentum in an optimizer's param groups.

One place knows that SGD and RMSprop keep momentum under ``"momentum"`` while
Adam, AdamW, NAdam, RAdam and Adamax keep it as ``betas[0]``, that an lr may be
a tensor (``capturable``/``fused`` optimizers), and how Lightning's
``LearningRateMonitor`` names groups in the logs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch.optim import Optimizer

MomentumKey = Literal["momentum", "betas"]


def momentum_key(group: dict[str, Any]) -> MomentumKey | None:
    """Where this group keeps its momentum, or ``None`` if it has none to cycle.

    A group with ``momentum == 0`` (plain SGD, default RMSprop) has no momentum:
    turning it on would change the optimizer, not schedule it.
    """
    if "betas" in group:
        return "betas"
    if "momentum" in group and float(group["momentum"]) > 0:
        return "momentum"
    return None


ADAPTIVE_OPTIMIZERS = (torch.optim.Adagrad, torch.optim.Adadelta, torch.optim.RMSprop)
"""Optimizers without ``betas`` that still scale each parameter's step by its gradient history."""


def uses_adaptive_steps(optimizer: Optimizer) -> bool:
    """Whether ``optimizer`` scales each parameter's step by a running gradient statistic.

    True for the Adam family and everything else with ``betas`` (AdamW, NAdam,
    RAdam, Adamax, third-party LAMB, Lion, ...) and for Adagrad, Adadelta and
    RMSprop; False for SGD and other plain-gradient optimizers.

    Example::

        >>> w = [torch.nn.Parameter(torch.zeros(1))]
        >>> uses_adaptive_steps(torch.optim.AdamW(w)), uses_adaptive_steps(torch.optim.SGD(w, lr=0.1))
        (True, False)
    """
    return isinstance(optimizer, ADAPTIVE_OPTIMIZERS) or any("betas" in g for g in optimizer.param_groups)


def get_lr(group: dict[str, Any]) -> float:
    lr = group["lr"]
    return float(lr.item()) if isinstance(lr, torch.Tensor) else float(lr)


def set_lr(group: dict[str, Any], value: float) -> None:
    """Write ``value`` as the group's lr, in place for tensor lrs (no recompilation, no sync)."""
    lr = group["lr"]
    if isinstance(lr, torch.Tensor):
        lr.fill_(value)
    else:
        group["lr"] = value


def get_momentum(group: dict[str, Any]) -> float | None:
    """The group's momentum as it stands (``betas[0]`` for Adam-style optimizers, 0 included), or ``None``."""
    if "betas" in group:
        return float(group["betas"][0])
    if "momentum" in group:
        return float(group["momentum"])
    return None


def set_momentum(group: dict[str, Any], value: float) -> None:
    """Write ``value`` as the group's momentum (``betas[0]`` for Adam-style optimizers).

    Any value a schedule reaches is written, 0 included: whether a group's momentum
    is cycled at all is decided once, before training (:func:`momentum_key`). A tensor
    ``betas[0]`` is filled in place, like a tensor lr.
    """
    if "betas" in group:
        betas = tuple(group["betas"])
        if isinstance(betas[0], torch.Tensor):
            betas[0].fill_(value)
        else:
            group["betas"] = (value, *betas[1:])
    elif "momentum" in group:
        group["momentum"] = value
    else:
        raise ValueError("This param group has no momentum or betas to set.")


def group_names(optimizers: Sequence[Optimizer]) -> list[list[str]]:
    """Log names per optimizer and group, following Lightning's ``LearningRateMonitor``.

    ``"SGD"`` for a lone group, ``"SGD/pg1"``, ``"SGD/pg2"``... for several (or the
    group's ``"name"`` key when set), and ``"SGD-1"`` for a second optimizer of the
    same class.

    Example::

        >>> opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
        >>> group_names([opt])
        [['SGD']]
    """
    seen: Counter[str] = Counter()
    names: list[list[str]] = []
    for optimizer in optimizers:
        base = type(optimizer).__name__
        if seen[base]:
            base_name = f"{base}-{seen[base]}"
        else:
            base_name = base
        seen[base] += 1
        groups = optimizer.param_groups
        if len(groups) == 1:
            name = groups[0].get("name")
            names.append([f"{base_name}/{name}" if name else base_name])
        else:
            names.append([f"{base_name}/{g['name']}" if g.get("name") else f"{base_name}/pg{i + 1}" for i, g in enumerate(groups)])
    return names
