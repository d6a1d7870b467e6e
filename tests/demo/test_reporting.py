"""Run comparison: per-epoch validation history, the figure, the Markdown table and the JSON file."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader, TensorDataset

from lightning_onecycle.demo.reporting import (
    RunHistory,
    ValidationHistory,
    comparison_table,
    plot_comparison,
    write_comparison,
)

from helpers import TinyClassifier, make_trainer


class _ValidatedClassifier(TinyClassifier):
    """TinyClassifier with a validation set that logs ``val_acc`` and ``val_loss``."""

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", torch.nn.functional.cross_entropy(logits, y))
        self.log("val_acc", (logits.argmax(-1) == y).float().mean())

    def val_dataloader(self) -> DataLoader:
        g = torch.Generator().manual_seed(1)
        return DataLoader(TensorDataset(torch.randn(16, 8, generator=g), torch.randint(0, 3, (16,), generator=g)), 8)


def _runs() -> list[RunHistory]:
    return [
        RunHistory("fixed", "SGD lr 0.01", [1, 2, 3], [0.5, 0.8, 0.8], [1.0, 0.6, 0.55], 10.04),
        RunHistory("onecycle", "1cycle, max lr 0.1", [1, 2, 3], [0.4, 0.7, 0.9], [1.2, 0.7, 0.3], 9.96),
    ]


def test_run_history_summaries() -> None:
    fixed, onecycle = _runs()
    assert (fixed.best_val_acc, fixed.best_epoch, fixed.final_val_loss) == (0.8, 2, 0.55)  # first of equal bests
    assert (onecycle.best_val_acc, onecycle.best_epoch, onecycle.final_val_loss) == (0.9, 3, 0.3)
    empty = RunHistory("empty")
    assert (empty.best_val_acc, empty.best_epoch, empty.final_val_loss) == (None, None, None)
    assert onecycle.to_dict()["best_val_acc"] == 0.9


def test_validation_history_records_every_epoch_but_not_the_sanity_check(tmp_path) -> None:
    history = ValidationHistory("run", "desc")
    model = _ValidatedClassifier()
    trainer = make_trainer(tmp_path, [history], max_epochs=3, num_sanity_val_steps=2)
    trainer.fit(model)
    run = history.history
    assert (run.name, run.description, run.epochs) == ("run", "desc", [1, 2, 3])
    assert run.val_acc[-1] == pytest.approx(float(trainer.callback_metrics["val_acc"]))
    assert run.val_loss[-1] == pytest.approx(float(trainer.callback_metrics["val_loss"]))
    assert all(0 <= a <= 1 for a in run.val_acc) and all(math.isfinite(v) for v in run.val_loss)
    assert run.wall_time_s is not None and run.wall_time_s > 0
    trainer = make_trainer(tmp_path, [history], max_epochs=1)
    trainer.fit(model)
    assert history.history.epochs == [1], "a new fit starts a new history"


def test_validation_history_names_missing_metrics(tmp_path) -> None:
    trainer = make_trainer(tmp_path, [ValidationHistory("run", acc_key="accuracy")], max_epochs=1)
    with pytest.raises(MisconfigurationException, match=r"\['accuracy'\].*val_acc"):
        trainer.fit(_ValidatedClassifier())


def test_plot_comparison_draws_every_run_on_both_panels() -> None:
    runs = _runs()
    fig = plot_comparison(runs, title="fixed vs 1cycle")
    acc_ax, loss_ax = fig.axes
    assert (acc_ax.get_ylabel(), loss_ax.get_ylabel()) == ("validation accuracy", "validation loss")
    assert loss_ax.get_yscale() == "log"
    acc_lines = [line for line in acc_ax.get_lines() if line.get_marker() == "o"]
    assert [line.get_label() for line in acc_lines] == ["fixed (best 0.8000)", "onecycle (best 0.9000)"]
    assert [list(line.get_ydata()) for line in acc_lines] == [r.val_acc for r in runs]
    assert [list(line.get_ydata()) for line in loss_ax.get_lines()] == [r.val_loss for r in runs]
    stars = [(line.get_xdata()[0], line.get_ydata()[0]) for line in acc_ax.get_lines() if line.get_marker() == "*"]
    assert stars == [(2, 0.8), (3, 0.9)]
    assert fig._suptitle.get_text() == "fixed vs 1cycle"


def test_comparison_table_rows() -> None:
    lines = comparison_table([*_runs(), RunHistory("empty")]).splitlines()
    assert lines[0] == "| run | schedule | best val acc | final val loss | wall time |"
    assert lines[2] == "| fixed | SGD lr 0.01 | 0.8000 (epoch 2) | 0.5500 | 10.0 s |"
    assert lines[3] == "| onecycle | 1cycle, max lr 0.1 | 0.9000 (epoch 3) | 0.3000 | 10.0 s |"
    assert lines[4] == "| empty |  | n/a | n/a | n/a |"


def test_write_comparison_writes_png_markdown_and_json(tmp_path) -> None:
    paths = write_comparison(
        _runs(), tmp_path / "out", title="T", notes=["a note"], extra={"range_test": {"suggested_lr": 0.1}}
    )
    assert set(paths) == {"png", "md", "json"}
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = paths["md"].read_text()
    assert markdown.startswith("## T\n\n| run |") and markdown.endswith("\n- a note\n")
    summary = json.loads(paths["json"].read_text())
    assert [r["name"] for r in summary["runs"]] == ["fixed", "onecycle"]
    assert summary["runs"][1]["best_val_acc"] == 0.9 and summary["runs"][1]["val_loss"] == [1.2, 0.7, 0.3]
    assert summary["range_test"] == {"suggested_lr": 0.1} and summary["notes"] == ["a note"]
