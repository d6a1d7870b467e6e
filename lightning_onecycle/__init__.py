"""lightning-onecycle: Leslie Smith's LR range test and 1cycle policy as Lightning callbacks."""

from lightning_onecycle.cyclic import CyclicLRCallback
from lightning_onecycle.one_cycle import OneCycleCallback
from lightning_onecycle.param_scheduler import ParamGroupScheduler
from lightning_onecycle.range_test import LRRangeTestCallback
from lightning_onecycle.schedules import CyclicSchedule, LRSweep, OneCycleSchedule

__all__ = [
    "CyclicLRCallback",
    "CyclicSchedule",
    "LRRangeTestCallback",
    "LRSweep",
    "OneCycleCallback",
    "OneCycleSchedule",
    "ParamGroupScheduler",
]

__version__ = "0.1.0"
