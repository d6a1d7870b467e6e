"""The per-step bookkeeping of an LR range test's sweep: the running loss and when to stop.

Pure Python: no Lightning, no tensors. The callback feeds :class:`LossTracker`
one ``(lr, loss)`` pair per optimizer step (the loss already averaged across
ranks, so every rank takes the same decisions); the tracker records the point,
keeps a running average of the loss for display and says when the sweep must
stop. The divergence stop is the rule the suggestion reads the curve with
(:func:`lightning_onecycle.suggestions.divergence_index`), applied as the points come.
"""

from __future__ import annotations

import math
import statistics
from typing import Literal

from lightning_onecycle.suggestions import DIVERGENCE_CONFIRM, LEVEL_FRACTION

__all__ = ["MAX_SKIPPED_STEPS", "LossTracker", "StopReason"]

StopReason = Literal["completed", "diverged", "non-finite loss", "gradient overflow"]

MAX_SKIPPED_STEPS = 50
"""Consecutive steps AMP's GradScaler may skip (overflowing gradients) before the sweep counts as diverged."""


class LossTracker:
    """Records a sweep's points, keeps a running average of the loss, and decides when the sweep stops.

    The sweep stops (:meth:`update` returns the reason) when

    - the loss is NaN or infinite (``"non-finite loss"``; the point is not recorded, its lr is
      kept in :attr:`nonfinite_lr`),
    - AMP's GradScaler skipped more than ``max_skipped_steps`` steps in a row
      (``"gradient overflow"``; a skipped step is not recorded, the caller retries its lr), or
    - the loss blew up (``"diverged"``): it stood above its starting level by
      ``divergence_threshold`` times its scale (how far it has fallen so far, at least
      three standard deviations of its noise) at :data:`~lightning_onecycle.suggestions.DIVERGENCE_CONFIRM`
      points in a row. Differences of losses only: adding a constant to the loss
      changes no decision. The starting level is the median of the first
      :data:`~lightning_onecycle.suggestions.LEVEL_FRACTION` of ``num_steps`` points;
      no divergence stop before those are in.

    Args:
        smoothing: Beta of the bias-corrected exponential moving average of the loss (the progress
            bar's and the CSV's running loss), in [0, 1); 0 is no smoothing.
        divergence_threshold: The multiple of the scale above the starting level that counts as a
            blow-up; ``None`` never stops early for divergence.
        num_steps: The sweep's planned number of points (the starting level is read from the first tenth).
        max_skipped_steps: Consecutive skipped steps tolerated.

    Example::

        >>> tracker = LossTracker(smoothing=0.0, divergence_threshold=4.0, num_steps=30)
        >>> losses = [2.0, 2.01, 1.99] + [1.0] * 5 + [50.0, 60.0, 70.0]
        >>> [tracker.update(0.1 * i, loss) for i, loss in enumerate(losses)][-3:]
        [None, None, 'diverged']
        >>> tracker.num_points, tracker.stop_reason
        (11, 'diverged')
    """

    def __init__(
        self,
        smoothing: float,
        divergence_threshold: float | None,
        num_steps: int = 100,
        max_skipped_steps: int = MAX_SKIPPED_STEPS,
    ) -> None:
        self.smoothing = smoothing
        self.divergence_threshold = divergence_threshold
        self.head = max(3, int(round(LEVEL_FRACTION * num_steps)))
        self.max_skipped_steps = max_skipped_steps
        self._lrs: list[float] = []
        self._losses: list[float] = []
        self._running: list[float] = []
        self._steps: list[float] = []  # |successive differences| of the losses: the noise
        self._average = 0.0
        self._lowest = math.inf
        self._above = 0
        self._skipped = 0
        self._stop_reason: StopReason | None = None
        self.nonfinite_lr: float | None = None
        """The lr whose loss was NaN or infinite (the sweep stopped there), else ``None``."""
        self.divergence_index: int | None = None
        """Where the divergence stop found the blow-up (the first of its confirming points), else ``None``."""

    def update(self, lr: float, loss: float, skipped: bool = False) -> StopReason | None:
        """Take one sweep step: its lr, its loss and whether AMP skipped it; return why to stop, or ``None``.

        Raises:
            RuntimeError: If the sweep has already stopped.
        """
        if self._stop_reason is not None:
            raise RuntimeError(f"The sweep has stopped ({self._stop_reason}); start a new LossTracker.")
        if not math.isfinite(loss):
            self.nonfinite_lr = lr
            return self._stop("non-finite loss")
        if skipped:
            self._skipped += 1
            return self._stop("gradient overflow") if self._skipped > self.max_skipped_steps else None
        self._skipped = 0
        beta = self.smoothing
        self._average = beta * self._average + (1 - beta) * loss
        if self._losses:
            self._steps.append(abs(loss - self._losses[-1]))
        self._lrs.append(lr)
        self._losses.append(loss)
        self._running.append(self._average / (1 - beta ** len(self._lrs)))
        self._lowest = min(self._lowest, loss)
        if self._blown_up(loss):
            return self._stop("diverged")
        return None

    def _blown_up(self, loss: float) -> bool:
        if self.divergence_threshold is None or len(self._losses) <= self.head:
            return False
        level = statistics.median(self._losses[: self.head])
        noise = 1.4826 * statistics.median(self._steps) / math.sqrt(2)
        line = level + self.divergence_threshold * max(level - self._lowest, 3 * noise)
        self._above = self._above + 1 if loss > line else 0
        if self._above >= DIVERGENCE_CONFIRM:
            self.divergence_index = len(self._losses) - DIVERGENCE_CONFIRM
            return True
        return False

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
