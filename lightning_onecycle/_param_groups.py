"""Reading and writing lr and momentum in an optimizer's param groups.

One place knows that SGD and RMSprop keep momentum under ``"momentum"`` while
Adam, AdamW, NAdam, RAdam and Adamax keep it as ``betas[0]``, that an lr may be
a tensor (``capturable``/``fused`` optimizers), which optimizers a schedule
cannot drive, and how Lightning's ``LearningRateMonitor`` names groups in the logs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch.optim import Optimizer

MomentumKey = Literal["momentum", "betas"]


def _as_float(value: Any) -> float | None:
    """``value`` as a float (a number or one-element tensor), or ``None`` for ``None`` and other non-numbers."""
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        return None


def _positive(value: Any) -> bool:
    number = _as_float(value)
    return number is not None and number > 0


def momentum_key(group: dict[str, Any]) -> MomentumKey | None:
    """Where this group keeps its momentum, or ``None`` if it has none to cycle.

    A group with ``momentum == 0`` (plain SGD, default RMSprop) or ``betas[0] == 0``
    (Adam as often set up for GANs) has no momentum: turning it on would change
    the optimizer, not schedule it. Nor has a group whose momentum is not a number.

    Example::

        >>> momentum_key({"betas": (0.9, 0.999)}), momentum_key({"betas": (0.0, 0.99)}), momentum_key({"momentum": 0})
        ('betas', None, None)
    """
    if "betas" in group:
        betas = group["betas"]
        return "betas" if isinstance(betas, (tuple, list)) and betas and _positive(betas[0]) else None
    if "momentum" in group and _positive(group["momentum"]):
        return "momentum"
    return None


ADAPTIVE_OPTIMIZERS = tuple(
    cls
    for cls in (
        torch.optim.Adagrad,
        torch.optim.Adadelta,
        torch.optim.RMSprop,
        getattr(torch.optim, "Adafactor", None),  # torch >= 2.5; its betas are not Adam's (beta2_decay)
    )
    if cls is not None
)
"""Optimizers without Adam-style ``betas`` that still scale each parameter's step by its gradient history."""

LR_READ_ONCE = (torch.optim.Rprop,)
"""Optimizers that read ``lr`` only at their first step (Rprop adapts its own step sizes from there):
no schedule can change their learning rate."""


def prepare_for_scheduling(optimizers: Sequence[Optimizer], owner: str) -> None:
    """Check that every param group's lr can be scheduled, and give each group an lr of its own.

    A tensor ``lr`` passed to an optimizer is one tensor object shared by every
    group that inherits it and by ``optimizer.defaults``: filled in place for one
    group, it would change them all (and a group added later would start from the
    last value written). Such a group gets a copy.

    Args:
        optimizers: The trainer's optimizers.
        owner: The callback's name, for messages.

    Raises:
        MisconfigurationException: For an optimizer that reads its lr only once
            (:data:`LR_READ_ONCE`), or a param group without an ``"lr"``.
    """
    for optimizer in optimizers:
        name = type(optimizer).__name__
        if isinstance(optimizer, LR_READ_ONCE):
            raise MisconfigurationException(
                f"{owner} changes the learning rate every step, but {name} reads its lr only at its first step and"
                f" adapts its own step sizes from there, so the schedule would silently do nothing. Use another"
                f" optimizer (SGD, Adam, ...) with {owner}, or remove {owner} from the Trainer's callbacks."
            )
        default = optimizer.defaults.get("lr")
        taken = {id(default)} if isinstance(default, torch.Tensor) else set()
        for index, group in enumerate(optimizer.param_groups):
            if "lr" not in group:
                raise MisconfigurationException(
                    f"{owner} sets each param group's `lr`, but param group {index} of {name} has no `lr` key"
                    f" (it has {sorted(k for k in group if k != 'params')}). Use an optimizer with an `lr`."
                )
            lr = group["lr"]
            if isinstance(lr, torch.Tensor):
                if id(lr) in taken:
                    group["lr"] = lr.clone()
                taken.add(id(group["lr"]))


def uses_adaptive_steps(optimizer: Optimizer) -> bool:
    """Whether ``optimizer`` scales each parameter's step by a running gradient statistic.

    True for the Adam family and everything else with ``betas`` (AdamW, NAdam,
    RAdam, Adamax, third-party LAMB, Lion, ...) and for Adagrad, Adadelta,
    RMSprop and Adafactor; False for SGD and other plain-gradient optimizers.

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
    key = "betas" if "betas" in group else "momentum" if "momentum" in group else None
    if key is None:
        return None
    return _as_float(group[key][0] if key == "betas" else group[key])  # None for e.g. momentum=None


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


def group_names(optimizers: Sequence[Optimizer], counts: Sequence[int] | None = None) -> list[list[str]]:
    """Log names per optimizer and group, following Lightning's ``LearningRateMonitor``.

    ``"SGD"`` for a lone group, ``"SGD/pg1"``, ``"SGD/pg2"``... for several (or the
    group's ``"name"`` key when set), and ``"SGD-1"`` for a second optimizer of the
    same class. ``counts`` names only each optimizer's first groups (those a
    schedule covers), as if the others were not there.

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
        groups = optimizer.param_groups if counts is None else optimizer.param_groups[: counts[len(names)]]
        if len(groups) == 1:
            name = groups[0].get("name")
            names.append([f"{base_name}/{name}" if name else base_name])
        else:
            names.append(
                [
                    f"{base_name}/{g['name']}" if g.get("name") else f"{base_name}/pg{i + 1}"
                    for i, g in enumerate(groups)
                ]
            )
    return names
