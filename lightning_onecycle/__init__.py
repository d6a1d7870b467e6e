"""lightning-onecycle: Leslie Smith's LR range test and 1cycle policy as Lightning callbacks.

The public core: the callbacks, the schedules, the range test's result and the
suggestion API. Demo models, data modules and comparison helpers live in
:mod:`lightning_onecycle.demo` (the ``examples`` extra).
"""

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from lightning_onecycle.cyclic import CyclicLRCallback
from lightning_onecycle.one_cycle import OneCycleCallback
from lightning_onecycle.plotting import plot_range_test, plot_weight_decay_sweep
from lightning_onecycle.range_test import LRRangeTestCallback, is_range_test_running
from lightning_onecycle.range_test_result import RangeTestResult
from lightning_onecycle.schedules import CyclicSchedule, LRSweep, OneCycleSchedule
from lightning_onecycle.suggestion_provider import SuggestionProvider
from lightning_onecycle.suggestions import (
    AUTO,
    DEFAULT_STRATEGY,
    STRATEGIES,
    CurveReading,
    Suggestion,
    read_curve,
    suggest,
    suggest_from,
)

__all__ = [
    "AUTO",
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "CurveReading",
    "CyclicLRCallback",
    "CyclicSchedule",
    "LRRangeTestCallback",
    "LRSweep",
    "OneCycleCallback",
    "OneCycleSchedule",
    "RangeTestResult",
    "Suggestion",
    "SuggestionProvider",
    "is_range_test_running",
    "plot_range_test",
    "plot_weight_decay_sweep",
    "read_curve",
    "suggest",
    "suggest_from",
]

try:
    __version__ = version("lightning-onecycle")  # defined once, in pyproject.toml
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

_MOVED_TO_DEMO = {
    "TransferClassifier",
    "DigitsDataModule",
    "HymenopteraDataModule",
    "ImageFolderDataModule",
    "RunHistory",
    "ValidationHistory",
    "plot_comparison",
    "write_comparison",
}


def __getattr__(name: str) -> Any:
    # The demo classes used to be importable from here; importing them lazily, on request, keeps
    # the core free of torchvision and scikit-learn.
    if name in _MOVED_TO_DEMO:
        import warnings

        from lightning_onecycle import demo

        warnings.warn(
            f"`lightning_onecycle.{name}` moved to `lightning_onecycle.demo.{name}`; import it from there.",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(demo, name)
    raise AttributeError(f"module 'lightning_onecycle' has no attribute {name!r}")
