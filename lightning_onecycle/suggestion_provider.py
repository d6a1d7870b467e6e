"""What a schedule callback reads from a learning-rate finder: the :class:`SuggestionProvider` protocol.

:class:`~lightning_onecycle.OneCycleCallback` takes its peak lr from any callback
among the Trainer's that provides a suggestion; it does not import the range
test. :class:`~lightning_onecycle.LRRangeTestCallback` is the provider this
package ships; another finder becomes one by having the two attributes below.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import lightning.pytorch as pl

from lightning_onecycle import _trainer

__all__ = ["SuggestionProvider", "find_suggestion_provider"]


class ProviderResult(Protocol):
    """What a provider's result must tell: why its search stopped (for messages)."""

    @property
    def stop_reason(self) -> str: ...


@runtime_checkable
class SuggestionProvider(Protocol):
    """A callback that suggests a learning rate before training starts (at ``on_train_start``).

    Attributes:
        suggested_lr: The suggestion, ``None`` before the search or when it found none.
        result: The search's result (with its ``stop_reason``), ``None`` while there is none
            (not run yet, skipped under ``fast_dev_run``, or failed).

    Example::

        >>> from lightning_onecycle import LRRangeTestCallback, _trainer
        >>> isinstance(LRRangeTestCallback(), SuggestionProvider)
        True
    """

    @property
    def suggested_lr(self) -> float | None: ...

    @property
    def result(self) -> ProviderResult | None: ...


def find_suggestion_provider(trainer: pl.Trainer) -> SuggestionProvider | None:
    """The first of the Trainer's callbacks that is a :class:`SuggestionProvider`, or ``None``."""
    return next((c for c in _trainer.callbacks(trainer) if isinstance(c, SuggestionProvider)), None)
