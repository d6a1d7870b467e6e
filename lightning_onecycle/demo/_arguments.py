"""Checks of the demo classes' arguments, made when an object is built.

Each check returns the value as a plain Python ``int``/``float``/``str`` (NumPy
numbers are accepted: hyper-parameters go into checkpoints, which load with
``weights_only=True`` only as plain values) or raises a ``ValueError`` that names
the argument, repeats the value and says what is accepted. ``bool`` is not taken
for a number: ``batch_size=True`` is a mistake, not a batch of one.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Sequence
from typing import Any


def _refuse(name: str, value: Any, accepted: str, why: str = "") -> ValueError:
    return ValueError(f"Expected `{name}` to be {accepted}, but got {value!r}{why}.")


def is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """A finite real number, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def integer(name: str, value: Any, minimum: int, maximum: int | None = None, why: str = "") -> int:
    """``value`` as an ``int`` in ``[minimum, maximum]``."""
    if not is_integer(value) or value < minimum or (maximum is not None and value > maximum):
        accepted = f"an integer >= {minimum}" if maximum is None else f"an integer in [{minimum}, {maximum}]"
        raise _refuse(name, value, accepted, why)
    return int(value)


def number(name: str, value: Any, accepted: str, within: Callable[[float], bool]) -> float:
    """``value`` as a finite ``float`` for which ``within`` holds; ``accepted`` says which in words."""
    if not is_real(value) or not within(float(value)):
        raise _refuse(name, value, accepted)
    return float(value)


def positive(name: str, value: Any) -> float:
    return number(name, value, "a finite number > 0", lambda v: v > 0)


def flag(name: str, value: Any) -> bool:
    """A real ``bool``: ``"no"`` or ``1`` is refused rather than read as true."""
    if not isinstance(value, bool):
        raise _refuse(name, value, "True or False")
    return value


def choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _refuse(name, value, " or ".join(map(repr, choices)))
    return value


def text(name: str, value: Any, empty: bool = False, accepted: str | None = None) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise _refuse(name, value, accepted or ("a str" if empty else "a non-empty str"))
    return value


def folder(name: str, value: Any) -> str:
    """A path, as a ``str`` (a ``Path`` in the hyper-parameters would not load with ``weights_only=True``)."""
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise _refuse(name, value, "a folder path (str or os.PathLike)")
    return str(os.fspath(value))
