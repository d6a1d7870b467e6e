"""What several test modules share: tiny models and data, an optimizer probe, a quiet Trainer, example runners.

Plain functions and classes, imported as ``helpers`` (pytest puts ``tests/`` on the path); the fixtures
that wrap them live in ``conftest.py``.
"""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.data import DataLoader, IterableDataset, TensorDataset

from lightning_onecycle.range_test_result import RangeTestResult


def param_groups(module: torch.nn.Module, groups: int, lr: float) -> Any:
    """All parameters (``groups=1``), or a "body" group at lr/10 and a "head" group at lr."""
    if groups == 1:
        return module.parameters()
    return [
        {"params": module.body.parameters(), "lr": lr / 10},
        {"params": module.head.parameters(), "lr": lr},
    ]


class TinyClassifier(pl.LightningModule):
    """A two-layer MLP on random data; `optimizer` and `groups` choose what it returns.

    Args:
        optimizer: "sgd", "sgd-nomomentum", "adam", "adamw", "rmsprop" or "adagrad".
        groups: 1 (one param group) or 2 ("body" and "head" groups, head lr 10x body).
        lr: configured lr (of the head group when there are two).
        scheduler: also return a torch scheduler (to test conflict detection).
        n_samples, batch_size: size of the random training set.
    """

    def __init__(
        self,
        optimizer: str = "sgd",
        groups: int = 1,
        lr: float = 0.05,
        scheduler: bool = False,
        n_samples: int = 64,
        batch_size: int = 8,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.body = torch.nn.Linear(8, 16)
        self.head = torch.nn.Linear(16, 3)
        self.optimizer_name, self.groups, self.lr, self.scheduler = optimizer, groups, lr, scheduler
        self.n_samples, self.batch_size, self.seed = n_samples, batch_size, seed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.body(x)))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return loss

    def train_dataloader(self) -> DataLoader:
        g = torch.Generator().manual_seed(self.seed)
        x = torch.randn(self.n_samples, 8, generator=g)
        y = torch.randint(0, 3, (self.n_samples,), generator=g)
        return DataLoader(TensorDataset(x, y), batch_size=self.batch_size)

    def configure_optimizers(self) -> Any:
        params = param_groups(self, self.groups, self.lr)
        make = {
            "sgd": lambda: torch.optim.SGD(params, lr=self.lr, momentum=0.9),
            "sgd-nomomentum": lambda: torch.optim.SGD(params, lr=self.lr),
            "adam": lambda: torch.optim.Adam(params, lr=self.lr),
            "adamw": lambda: torch.optim.AdamW(params, lr=self.lr),
            "rmsprop": lambda: torch.optim.RMSprop(params, lr=self.lr, momentum=0.9),
            "adagrad": lambda: torch.optim.Adagrad(params, lr=self.lr),
        }
        opt = make[self.optimizer_name]()
        if self.scheduler:
            return [opt], [torch.optim.lr_scheduler.StepLR(opt, step_size=1)]
        return opt


class _Endless(IterableDataset):
    def __iter__(self) -> Any:
        while True:
            yield torch.randn(8), torch.tensor(0)


class EndlessClassifier(TinyClassifier):
    """Training data without a length: the Trainer cannot count its steps."""

    def train_dataloader(self) -> DataLoader:
        return DataLoader(_Endless(), batch_size=4)


class FrozenBodyClassifier(TinyClassifier):
    """Two param groups: the body frozen at lr 0, the head at lr 0.01 (SGD, momentum 0.9)."""

    def configure_optimizers(self) -> Any:
        groups = [{"params": self.body.parameters(), "lr": 0.0}, {"params": self.head.parameters(), "lr": 0.01}]
        return torch.optim.SGD(groups, momentum=0.9)


class OptimizerProbe(pl.Callback):
    """Records, right before each optimizer step, every group's lr and momentum/beta1."""

    def __init__(self) -> None:
        self.lrs: list[list[float]] = []
        self.momentums: list[list[float | None]] = []
        self.batches = 0

    def on_train_batch_start(self, *args: Any) -> None:
        self.batches += 1

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        self.lrs.append([float(g["lr"]) for g in optimizer.param_groups])
        self.momentums.append(
            [
                float(g["betas"][0]) if "betas" in g else (float(g["momentum"]) if "momentum" in g else None)
                for g in optimizer.param_groups
            ]
        )


def make_trainer(tmp_path, callbacks, **kwargs: Any) -> pl.Trainer:
    """A quiet CPU trainer writing under ``tmp_path``."""
    defaults: dict[str, Any] = {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 2,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "default_root_dir": str(tmp_path),
    }
    defaults.update(kwargs)
    return pl.Trainer(callbacks=callbacks, **defaults)


def range_test_result(suggested: float | None = 1e-2, wd: float | None = None, shift: float = 0.0) -> RangeTestResult:
    """A made-up 20-point range test result: a tanh-shaped descent over 1e-4..1, ``shift`` lower."""
    lrs = [float(lr) for lr in np.geomspace(1e-4, 1.0, 20)]
    smoothed = [float(2.0 - shift - np.tanh(np.log10(lr) + 2)) for lr in lrs]
    return RangeTestResult(
        lrs=lrs,
        losses=[s + 0.1 for s in smoothed],
        smoothed_losses=smoothed,
        running_losses=[s + 0.05 for s in smoothed],
        suggested_lr=suggested,
        suggestion="valley",
        stop_reason="completed",
        num_steps_run=20,
        weight_decay=wd,
    )


# --- the LR range test's model (tests/test_range_test.py) -------------------------------------


class RangeTestModel(pl.LightningModule):
    """A small regression MLP with dropout, trained on a shuffled random dataset.

    Counts its training steps and batch-transfer hooks, logs every step, updates a
    torchmetrics metric, and can be made to return NaN above an lr.

    Args:
        lr: configured lr (of the head group when ``groups=2``; the body gets a tenth).
        groups: 1 or 2 param groups.
        optimizer: "sgd" (momentum 0.9), "adamw" or "nadam".
        weight_decay: the optimizer's weight decay.
        n_batches, batch_size: size of the training set.
        nan_above_lr: return a NaN loss while the head group's lr is above this.
        rank_data: draw the data from a seed that depends on the global rank.
        generator: shuffle with the DataLoader's own generator instead of the global RNG.
        return_dict: return ``{"loss": loss}`` from ``training_step``.
        overflow_at_call: in this (1-based) training_step call, add a term whose value is
            0 but whose gradient overflows fp16 (for AMP's skipped steps).
        loss_scale, loss_offset: return ``loss_scale * loss + loss_offset`` (what training cannot see:
            the offset changes no gradient, the scale changes none of Adam's steps).
    """

    def __init__(
        self,
        lr: float = 0.01,
        groups: int = 1,
        optimizer: str = "sgd",
        weight_decay: float = 0.0,
        n_batches: int = 5,
        batch_size: int = 32,
        nan_above_lr: float | None = None,
        rank_data: bool = False,
        generator: bool = False,
        return_dict: bool = False,
        overflow_at_call: int | None = None,
        loss_scale: float = 1.0,
        loss_offset: float = 0.0,
    ) -> None:
        super().__init__()
        import torchmetrics

        self.body = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2))
        self.head = torch.nn.Linear(16, 1)
        self.metric = torchmetrics.MeanMetric()
        self.lr, self.groups, self.optimizer_name, self.weight_decay = lr, groups, optimizer, weight_decay
        self.n_batches, self.batch_size = n_batches, batch_size
        self.nan_above_lr, self.rank_data, self.generator = nan_above_lr, rank_data, generator
        self.return_dict = return_dict
        self.overflow_at_call = overflow_at_call
        self.loss_scale, self.loss_offset = loss_scale, loss_offset
        self.calls = 0
        self.before_transfers = 0
        self.after_transfers = 0
        self.autocast_dtypes: set[torch.dtype] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        self.calls += 1
        if torch.is_autocast_enabled("cpu"):
            self.autocast_dtypes.add(torch.get_autocast_dtype("cpu"))
        x, y = batch
        loss = self.loss_scale * torch.nn.functional.mse_loss(self(x).float().squeeze(-1), y) + self.loss_offset
        if self.calls == self.overflow_at_call:
            big = self.head.weight.float() * 1e38
            loss = loss + (big.sum() - big.sum().detach())
        if self.nan_above_lr is not None and self.trainer.optimizers[0].param_groups[-1]["lr"] > self.nan_above_lr:
            loss = loss * float("nan")
        self.metric.update(loss.detach())
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        return {"loss": loss} if self.return_dict else loss

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        self.before_transfers += 1
        return batch

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        self.after_transfers += 1
        return batch

    def train_dataloader(self) -> DataLoader:
        seed = 1 + (self.global_rank if self.rank_data else 0)
        g = torch.Generator().manual_seed(seed)
        n = self.n_batches * self.batch_size
        x = torch.randn(n, 4, generator=g)
        y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(n, generator=g)
        generator = torch.Generator().manual_seed(123) if self.generator else None
        return DataLoader(TensorDataset(x, y), batch_size=self.batch_size, shuffle=True, generator=generator)

    def configure_optimizers(self) -> Any:
        params = param_groups(self, self.groups, self.lr)
        if self.optimizer_name == "adamw":
            return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.optimizer_name == "nadam":
            return torch.optim.NAdam(params, lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.SGD(params, lr=self.lr, momentum=0.9, weight_decay=self.weight_decay)


def snapshot_params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


# --- running the example scripts (tests/test_examples.py, tests/test_tensorboard_server.py) ---------


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# A few batches per epoch; a range test short and narrow enough to find a descent in 40 steps.
TINY = ["--accelerator", "cpu", "--limit-train-batches", "5", "--limit-val-batches", "2"]
TINY += ["--enable-progress-bar", "false"]
TINY_RANGE_TEST = ["--range-test-steps", "40", "--range-test-min-lr", "1e-3"]


def run_example(script: str, *args: str, cwd: Path) -> str:
    """Run an example in a subprocess; return its output, or fail with it."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{script} {' '.join(args)} failed ({proc.returncode}):\n{output[-4000:]}"
    return output


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar in the TensorBoard event files of one run: tag -> [(step, value)]."""
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def image_tags(log_dir: Path) -> list[str]:
    events = EventAccumulator(str(log_dir), size_guidance={"images": 0})
    events.Reload()
    return events.Tags()["images"]


def values(series: list[tuple[int, float]]) -> list[float]:
    return [v for _, v in series]


def run_in_process(script: str, *args: str, monkeypatch) -> None:
    """Run an example in this process (for flags that stop it before any training)."""
    monkeypatch.setattr(sys, "argv", [script, *args])
    monkeypatch.syspath_prepend(str(EXAMPLES))  # as `python examples/<script>` does: its folder first
    runpy.run_path(str(EXAMPLES / script), run_name="__main__")
