"""lightning-onecycle: Leslie Smith's LR range test and 1cycle policy as Lightning callbacks."""

from lightning_onecycle.classifier import TransferClassifier
from lightning_onecycle.cyclic import CyclicLRCallback
from lightning_onecycle.data import DigitsDataModule, HymenopteraDataModule, ImageFolderDataModule
from lightning_onecycle.one_cycle import OneCycleCallback
from lightning_onecycle.plotting import plot_range_test, plot_weight_decay_sweep
from lightning_onecycle.range_test import LRRangeTestCallback
from lightning_onecycle.range_test_result import RangeTestResult
from lightning_onecycle.reporting import RunHistory, ValidationHistory, plot_comparison, write_comparison
from lightning_onecycle.schedules import CyclicSchedule, LRSweep, OneCycleSchedule
from lightning_onecycle.suggestion_provider import SuggestionProvider
from lightning_onecycle.suggestions import AUTO, DEFAULT_STRATEGY, STRATEGIES, suggest

__all__ = [
    "AUTO",
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "CyclicLRCallback",
    "CyclicSchedule",
    "DigitsDataModule",
    "HymenopteraDataModule",
    "ImageFolderDataModule",
    "LRRangeTestCallback",
    "LRSweep",
    "OneCycleCallback",
    "OneCycleSchedule",
    "RangeTestResult",
    "RunHistory",
    "SuggestionProvider",
    "TransferClassifier",
    "ValidationHistory",
    "plot_comparison",
    "plot_range_test",
    "plot_weight_decay_sweep",
    "suggest",
    "write_comparison",
]

__version__ = "0.1.0"
