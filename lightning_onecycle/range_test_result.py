"""What an LR range test measured and suggests, and its CSV and JSON files.

No Lightning here: a result can be read back (``RangeTestResult.load``) and
plotted (:mod:`lightning_onecycle.plotting`) without a Trainer.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from lightning_onecycle.loss_tracking import StopReason

__all__ = ["RangeTestResult", "StopReason"]


@dataclass
class RangeTestResult:
    """What an LR range test measured and suggests.

    Attributes:
        lrs: Learning rate of the group with the largest configured lr at each sweep point.
        losses: Raw training loss at each point (averaged over ranks and accumulated batches).
        smoothed_losses: ``losses`` smoothed without lag
            (:func:`~lightning_onecycle.suggestions.smooth_losses`): the curve the
            suggestion is read from and the plot shows.
        running_losses: Bias-corrected exponential moving average of ``losses``
            (beta ``smoothing``): the running loss of the progress bar.
        suggested_lr: The suggestion, or ``None`` when the curve shows nothing to suggest from.
        suggestion: Name of the strategy that made the suggestion (for ``"auto"``, the one it chose).
        stop_reason: ``"completed"``, ``"diverged"`` (the loss blew up, see ``divergence_threshold``),
            ``"non-finite loss"`` (the point with a non-finite loss is not recorded) or ``"gradient
            overflow"`` (AMP's GradScaler skipped too many steps in a row).
        num_steps_run: Number of recorded sweep points.
        weight_decay: The weight decay of this sweep (the chosen one for a
            weight-decay sweep), ``None`` when the optimizer's own was used.
        sweeps: For a weight-decay sweep, one result per weight decay; the fields
            above are then those of the chosen sweep.
        shape: What the curve shows (:class:`~lightning_onecycle.suggestions.CurveReading`):
            ``"descent"``, ``"flat"`` (no descent, but the loss blew up), ``"flat-without-divergence"``
            or ``"too-short"``.
        confidence: ``"high"``, ``"medium"`` or ``"low"`` (see
            :class:`~lightning_onecycle.suggestions.Suggestion`); ``None`` without a suggestion.
        suggestion_bracket: ``[low, high]``: the lrs the same rule reads anywhere in the curve's
            ambiguous stretch; ``None`` without a suggestion.
        divergence_lr: Where the loss blew up (or went non-finite), ``None`` if it did not.
        nonfinite_lr: The lr whose loss was NaN or infinite (where the sweep stopped), ``None`` if none.
        still_falling: The loss was still falling at the sweep's last lr.
        swept_again: The first sweep's curve showed no descent, so the test swept again with
            ``longer_sweep`` times the steps; the result is the longer sweep's if it showed one.
        message: What the curve showed and what to do, when the suggestion is not a plain one
            (no descent, still falling, none at all); ``None`` otherwise.
        seconds: Wall time of the whole test (every sweep, the restore included), on rank zero.
    """

    lrs: list[float]
    losses: list[float]
    smoothed_losses: list[float]
    suggested_lr: float | None
    suggestion: str
    stop_reason: StopReason
    num_steps_run: int
    weight_decay: float | None = None
    sweeps: list[RangeTestResult] = field(default_factory=list)
    running_losses: list[float] = field(default_factory=list)
    shape: str | None = None
    confidence: str | None = None
    suggestion_bracket: list[float] | None = None
    divergence_lr: float | None = None
    nonfinite_lr: float | None = None
    still_falling: bool = False
    swept_again: bool = False
    message: str | None = None
    seconds: float | None = field(default=None, compare=False)  # wall time: two equal results may differ in it

    @property
    def stop_text(self) -> str:
        """Why the sweep stopped, with the lr of a non-finite loss (``"non-finite loss at lr 0.0515"``)."""
        if self.nonfinite_lr is None:
            return self.stop_reason
        return f"{self.stop_reason} at lr {self.nonfinite_lr:.3g}"

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values only (JSON-able and safe for ``torch.load(weights_only=True)``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RangeTestResult:
        """The result from :meth:`to_dict`'s values; other keys (the JSON file's ``config``) are ignored."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        values["sweeps"] = [cls.from_dict(s) for s in values.get("sweeps", [])]
        return cls(**values)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> RangeTestResult:
        """Read the ``lr_range_test.json`` the callback wrote (e.g. from ``ddp_spawn`` workers).

        Example::

            >>> result = RangeTestResult.load("lightning_logs/version_0/lr_range_test.json")  # doctest: +SKIP
            >>> result.suggested_lr  # doctest: +SKIP
            0.0123
        """
        with open(path) as f:
            return cls.from_dict(json.load(f))

    def write_json(self, path: str | os.PathLike[str], config: Mapping[str, Any] | None = None) -> None:
        """Write :meth:`to_dict`'s values as JSON, after a ``config`` entry (the test's settings) when given."""
        summary = {"config": dict(config), **self.to_dict()} if config is not None else self.to_dict()
        with open(path, "w") as f:
            json.dump(summary, f, indent=2)

    def write_csv(self, path: str | os.PathLike[str]) -> None:
        """One row per sweep point (``weight_decay, step, lr, loss, smoothed_loss, running_loss``), all sweeps."""
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["weight_decay", "step", "lr", "loss", "smoothed_loss", "running_loss"])
            for sweep in self.sweeps or [self]:
                wd = "" if sweep.weight_decay is None else repr(sweep.weight_decay)
                for i, row in enumerate(zip(sweep.lrs, sweep.losses, sweep.smoothed_losses, sweep.running_losses)):
                    writer.writerow([wd, i, *map(repr, row)])
