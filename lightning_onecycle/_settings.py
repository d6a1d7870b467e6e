"""Settings as frozen dataclasses of plain Python values.

The schedule callbacks keep what they were given, and what it resolves to at the
first batch, in frozen dataclasses (:class:`PlainFields`): checked once when
built, compared field by field when a run resumes, and stored in checkpoints as
``dataclasses.asdict(...)``, which ``torch.load(weights_only=True)`` reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

import numpy as np

SettingsT = TypeVar("SettingsT")


def plain_numbers(value: Any) -> Any:
    """NumPy scalars and arrays as the Python numbers and lists they hold; lists and tuples element-wise.

    Callback settings end up in checkpoints, which ``torch.load(weights_only=True)``
    reads only as plain Python, and in the checks, which accept ``int`` and ``float``.

    Example::

        >>> plain_numbers(np.float32(0.5)), plain_numbers([np.int64(3), 0.1]), plain_numbers("auto")
        (0.5, [3, 0.1], 'auto')
    """
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return type(value)(plain_numbers(v) for v in value)
    return value


class PlainFields:
    """Mixin for the frozen dataclasses of settings and plans: every field a plain value, sequences as tuples.

    Callback settings end up in checkpoints, which ``torch.load(weights_only=True)``
    reads only as plain Python, and compare field by field on resume: NumPy numbers,
    lists and a checkpoint's tuples all become the same plain values before the
    class's own checks run.
    """

    def __post_init__(self) -> None:
        for f in fields(self):  # type: ignore[arg-type]  # only dataclasses use this mixin
            object.__setattr__(self, f.name, frozen_numbers(getattr(self, f.name)))
        checks = getattr(super(), "__post_init__", None)
        if checks is not None:
            checks()


def settings_from(cls: type[SettingsT], arguments: Mapping[str, Any], **overrides: Any) -> SettingsT:
    """A settings dataclass built from a callback's ``__init__`` arguments (``locals()``) of the same names."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]  # cls is a dataclass
    return cls(**{name: overrides[name] if name in overrides else arguments[name] for name in names})


def field_values(instance: Any, cls: type) -> dict[str, Any]:
    """``instance``'s values of the fields that dataclass ``cls`` declares (a plan's shape, say)."""
    return {f.name: getattr(instance, f.name) for f in fields(cls)}


def frozen_numbers(value: Any) -> Any:
    """:func:`plain_numbers`, with lists and tuples as tuples at every level (for frozen dataclasses).

    Example::

        >>> frozen_numbers([np.float32(0.5), [1, 2]]), frozen_numbers(0.1)
        ((0.5, (1, 2)), 0.1)
    """
    value = plain_numbers(value)
    if isinstance(value, (list, tuple)):
        return tuple(frozen_numbers(v) for v in value)
    return value
