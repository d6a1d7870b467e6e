"""Shared fixtures: a tiny model, tiny data and a probe that records what the optimizer sees."""

from __future__ import annotations

import os
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

os.environ.setdefault("PL_DISABLE_FORK", "1")
torch.set_num_threads(1)


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
        if self.groups == 1:
            params: Any = self.parameters()
        else:
            params = [
                {"params": self.body.parameters(), "lr": self.lr / 10},
                {"params": self.head.parameters(), "lr": self.lr},
            ]
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


@pytest.fixture
def probe() -> OptimizerProbe:
    return OptimizerProbe()
