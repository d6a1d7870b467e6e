"""Run by tests/test_one_cycle_ddp.py: 1cycle under strategy="ddp" on 2 CPU processes (gloo).

Each rank trains on different data and writes the lrs/momentums its optimizer saw.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch

from lightning_onecycle import OneCycleCallback

from helpers import OptimizerProbe, TinyClassifier

if __name__ == "__main__":
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    probe = OptimizerProbe()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[OneCycleCallback(max_lr=0.1), probe],
    )
    trainer.fit(TinyClassifier(seed=trainer.global_rank, n_samples=64, batch_size=8))
    result = {"lrs": probe.lrs, "momentums": probe.momentums, "total_steps": trainer.callbacks[0].total_steps}
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps(result))
    # Lightning's subprocess launcher does not wait for rank 1: without this, rank 0 (the test's
    # subprocess) can exit before rank 1 has written its file.
    trainer.strategy.barrier("results written")
