"""The per-step bookkeeping of an LR range test's sweep: the running loss and when to stop.

Pure Python: no Lightning, no tensors. The callback feeds :class:`LossTracker`
one ``(lr, loss)`` pair per optimizer step (the loss already averaged across
ranks, so every rank takes the same decisions); the tracker records the point,
keeps the bias-corrected running average of the loss and says when the sweep
must stop.
"""

from __future__ import annotations

import math
from typing import Literal

__all__ = ["MAX_SKIPPED_STEPS", "LossTracker", "StopReason"]

StopReason = Literal["completed", "diverged", "non-finite loss"]

MAX_SKIPPED_STEPS = 50
"""Consecutive steps AMP's GradScaler may skip (overflowing gradients) before the sweep counts as diverged."""


class LossTracker:
    """Records a sweep's points, keeps the running average of the loss, and decides when the sweep stops.

    The sweep stops (:meth:`update` returns the reason) when

    - the loss is NaN or infinite (``"non-finite loss"``; the point is not recorded),
    - AMP's GradScaler skipped more than ``max_skipped_steps`` steps in a row
      (``"diverged"``; a skipped step is not recorded, the caller retries its lr), or
    - the running average exceeds ``divergence_threshold`` times its best value, once
      two points are recorded and while the best is positive (``"diverged"``; the
      point is recorded).

    Args:
        smoothing: Beta of the bias-corrected exponential moving average of the loss, in [0, 1); 0 is no smoothing.
        divergence_threshold: The multiple of the best running average that counts as divergence; ``None``
            never stops early for divergence.
        max_skipped_steps: Consecutive skipped steps tolerated.

    Example::

        >>> tracker = LossTracker(smoothing=0.0, divergence_threshold=4.0)
        >>> [tracker.update(lr, loss) for lr, loss in [(0.1, 1.0), (0.2, 0.5), (0.4, 2.5)]]
        [None, None, 'diverged']
        >>> tracker.lrs, tracker.losses, tracker.stop_reason
        ([0.1, 0.2, 0.4], [1.0, 0.5, 2.5], 'diverged')
    """

    def __init__(
        self, smoothing: float, divergence_threshold: float | None, max_skipped_steps: int = MAX_SKIPPED_STEPS
    ) -> None:
        self.smoothing = smoothing
        self.divergence_threshold = divergence_threshold
        self.max_skipped_steps = max_skipped_steps
        self._lrs: list[float] = []
        self._losses: list[float] = []
        self._running: list[float] = []
        self._average = 0.0
        self._best = math.inf
        self._skipped = 0
        self._stop_reason: StopReason | None = None

    def update(self, lr: float, loss: float, skipped: bool = False) -> StopReason | None:
        """Take one sweep step: its lr, its loss and whether AMP skipped it; return why to stop, or ``None``.

        Raises:
            RuntimeError: If the sweep has already stopped.
        """
        if self._stop_reason is not None:
            raise RuntimeError(f"The sweep has stopped ({self._stop_reason}); start a new LossTracker.")
        if not math.isfinite(loss):
            return self._stop("non-finite loss")
        if skipped:
            self._skipped += 1
            return self._stop("diverged") if self._skipped > self.max_skipped_steps else None
        self._skipped = 0
        beta = self.smoothing
        self._average = beta * self._average + (1 - beta) * loss
        running = self._average / (1 - beta ** (len(self._lrs) + 1))
        self._lrs.append(lr)
        self._losses.append(loss)
        self._running.append(running)
        self._best = min(self._best, running)
        threshold = self.divergence_threshold
        if threshold is not None and len(self._lrs) > 1 and self._best > 0 and running > threshold * self._best:
            return self._stop("diverged")
        return None

    def _stop(self, reason: StopReason) -> StopReason:
        self._stop_reason = reason
        return reason

    @property
    def lrs(self) -> list[float]:
        """The learning rate of each recorded point."""
        return list(self._lrs)

    @property
    def losses(self) -> list[float]:
        """The raw loss of each recorded point."""
        return list(self._losses)

    @property
    def running_losses(self) -> list[float]:
        """The bias-corrected running average of the loss at each recorded point."""
        return list(self._running)

    @property
    def num_points(self) -> int:
        """How many points are recorded."""
        return len(self._lrs)

    @property
    def skipped_in_a_row(self) -> int:
        """Steps skipped by AMP since the last recorded point."""
        return self._skipped

    @property
    def stop_reason(self) -> StopReason | None:
        """Why the sweep stopped, or ``None`` while it may go on."""
        return self._stop_reason
