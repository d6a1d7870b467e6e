"""Comparing training runs: validation accuracy and loss per epoch, as a figure, a table and JSON.

:class:`ValidationHistory` is a callback that records a fit's validation metrics
after every validation epoch and the fit's wall time. :func:`write_comparison`
turns several such histories (a fixed-LR baseline and a 1cycle run, say) into
a figure with one line per run, a Markdown table and a JSON summary.

Figures are built on the Agg canvas without ``pyplot``, as in
:mod:`lightning_onecycle.plotting`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lightning_onecycle.demo import _arguments
from lightning_onecycle.plotting import save_figure

__all__ = ["RunHistory", "ValidationHistory", "comparison_table", "plot_comparison", "write_comparison"]


@dataclass
class RunHistory:
    """One run's validation metrics per epoch.

    Attributes:
        name: Short name of the run (a legend label, a table row).
        description: What the run did, e.g. its LR schedule.
        epochs: The epoch (1-based) of each validation.
        val_acc: Validation accuracy of each validation.
        val_loss: Validation loss of each validation.
        wall_time_s: Seconds from the start to the end of the fit, ``None`` before it ends.
    """

    name: str
    description: str = ""
    epochs: list[int] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    wall_time_s: float | None = None

    @property
    def best_epoch(self) -> int | None:
        """The epoch with the highest validation accuracy (the first of equals)."""
        if not self.val_acc:
            return None
        return self.epochs[max(range(len(self.val_acc)), key=lambda i: (self.val_acc[i], -i))]

    @property
    def best_val_acc(self) -> float | None:
        return max(self.val_acc) if self.val_acc else None

    @property
    def final_val_loss(self) -> float | None:
        return self.val_loss[-1] if self.val_loss else None

    def to_dict(self) -> dict[str, Any]:
        """The fields plus ``best_val_acc``, ``best_epoch`` and ``final_val_loss``."""
        return {
            **asdict(self),
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
            "final_val_loss": self.final_val_loss,
        }


class ValidationHistory(Callback):
    """Records the validation accuracy and loss after every validation epoch, and the fit's wall time.

    The values are the epoch-level metrics the module logs with ``self.log``
    (read from ``trainer.callback_metrics``); the sanity check is skipped. A new
    fit starts a new history.

    Args:
        name: Name of the run in figures and tables.
        description: What the run does, e.g. ``"1cycle, max lr 0.3"``.
        acc_key: Name under which the module logs its validation accuracy.
        loss_key: Name under which the module logs its validation loss.

    Raises:
        ValueError: If ``name``, ``acc_key`` or ``loss_key`` is not a non-empty str, or ``description`` not a str.
        MisconfigurationException: After the first validation epoch, if the module
            did not log ``acc_key`` or ``loss_key``.

    Example::

        >>> history = ValidationHistory("1cycle", description="max lr 0.3")
        >>> trainer = pl.Trainer(callbacks=[history], max_epochs=3)
        >>> # trainer.fit(model); history.history.best_val_acc
    """

    def __init__(self, name: str, description: str = "", acc_key: str = "val_acc", loss_key: str = "val_loss") -> None:
        self.history = RunHistory(
            _arguments.text("name", name), _arguments.text("description", description, empty=True)
        )
        self.acc_key = _arguments.text("acc_key", acc_key)
        self.loss_key = _arguments.text("loss_key", loss_key)
        self._start: float | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.history = RunHistory(self.history.name, self.history.description)
        self._start = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        missing = [key for key in (self.acc_key, self.loss_key) if key not in metrics]
        if missing:
            raise MisconfigurationException(
                f"ValidationHistory records {missing} but the module logged only {sorted(metrics)}."
                " Log them in `validation_step` with `self.log(...)`, or pass `acc_key=`/`loss_key=` with the"
                " names it logs."
            )
        self.history.epochs.append(trainer.current_epoch + 1)
        self.history.val_acc.append(float(metrics[self.acc_key]))
        self.history.val_loss.append(float(metrics[self.loss_key]))

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._start is not None:
            self.history.wall_time_s = time.perf_counter() - self._start


def plot_comparison(runs: Sequence[RunHistory], title: str | None = None) -> Figure:
    """Validation accuracy (left) and loss (right, log scale) per epoch, one line per run, each best accuracy starred.

    Args:
        runs: The runs to compare.
        title: Title above both panels.

    Example::

        >>> a = RunHistory("fixed", epochs=[1, 2], val_acc=[0.8, 0.9], val_loss=[0.6, 0.4])
        >>> b = RunHistory("1cycle", epochs=[1, 2], val_acc=[0.7, 0.95], val_loss=[0.9, 0.2])
        >>> [ax.get_ylabel() for ax in plot_comparison([a, b]).axes]
        ['validation accuracy', 'validation loss']
    """
    fig = Figure(figsize=(10, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    acc_ax, loss_ax = fig.subplots(1, 2)
    for i, run in enumerate(runs):
        color = f"C{i % 10}"
        label = run.name if run.best_val_acc is None else f"{run.name} (best {run.best_val_acc:.4f})"
        acc_ax.plot(run.epochs, run.val_acc, marker="o", markersize=3, color=color, label=label)
        if run.best_epoch is not None:
            acc_ax.plot([run.best_epoch], [run.best_val_acc], marker="*", markersize=12, color=color, zorder=3)
        loss_ax.plot(run.epochs, run.val_loss, marker="o", markersize=3, color=color, label=run.name)
    loss_ax.set_yscale("log")  # early losses are orders of magnitude above the final ones being compared
    for ax, ylabel in ((acc_ax, "validation accuracy"), (loss_ax, "validation loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def comparison_table(runs: Sequence[RunHistory]) -> str:
    """A Markdown table: run, description, best validation accuracy (epoch), final validation loss, wall time.

    Example::

        >>> run = RunHistory("1cycle", "max lr 0.3", [1, 2], [0.7, 0.95], [0.9, 0.2], 12.34)
        >>> print(comparison_table([run]).splitlines()[-1])
        | 1cycle | max lr 0.3 | 0.9500 (epoch 2) | 0.2000 | 12.3 s |
    """

    def number(value: float | None, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    lines = [
        "| run | schedule | best val acc | final val loss | wall time |",
        "| --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        best = number(run.best_val_acc, ".4f")
        if run.best_epoch is not None:
            best += f" (epoch {run.best_epoch})"
        wall = "n/a" if run.wall_time_s is None else f"{run.wall_time_s:.1f} s"
        lines.append(f"| {run.name} | {run.description} | {best} | {number(run.final_val_loss, '.4f')} | {wall} |")
    return "\n".join(lines) + "\n"


def write_comparison(
    runs: Sequence[RunHistory],
    dirpath: str | os.PathLike,
    stem: str = "compare",
    title: str | None = None,
    notes: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``<stem>.png`` (:func:`plot_comparison`), ``<stem>.md`` and ``<stem>.json`` into ``dirpath``.

    Args:
        runs: The runs to compare.
        dirpath: Output folder, created if missing.
        stem: File name without extension.
        title: Title of the figure and heading of the Markdown file.
        notes: Lines written below the Markdown table (as a list).
        extra: More JSON-able entries for the JSON file (settings, a range test result...).

    Returns:
        The paths written, keyed ``"png"``, ``"md"`` and ``"json"``.
    """
    folder = Path(dirpath)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {ext: folder / f"{stem}.{ext}" for ext in ("png", "md", "json")}
    save_figure(plot_comparison(runs, title), paths["png"])
    markdown = (f"## {title}\n\n" if title else "") + comparison_table(runs)
    if notes:
        markdown += "\n" + "".join(f"- {note}\n" for note in notes)
    paths["md"].write_text(markdown)
    summary = {"title": title, "runs": [run.to_dict() for run in runs], "notes": list(notes), **(extra or {})}
    paths["json"].write_text(json.dumps(summary, indent=2) + "\n")
    return paths
