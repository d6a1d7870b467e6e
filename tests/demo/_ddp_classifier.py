"""Run by tests/test_classifier.py: TransferClassifier under strategy="ddp" on 2 CPU processes (gloo).

Each rank validates on its own shard of the data and writes the epoch metrics it ends with.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch

from lightning_onecycle.demo.classifier import TransferClassifier
from lightning_onecycle.demo.data import DigitsDataModule

if __name__ == "__main__":
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=3,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    model = TransferClassifier("smallcnn", num_classes=10, lr=0.05)
    trainer.fit(model, DigitsDataModule(image_size=8, batch_size=32))
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(metrics))
    trainer.strategy.barrier("results written")  # the launcher does not wait for rank 1
