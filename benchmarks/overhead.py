"""Step-time overhead of OneCycleCallback against torch's OneCycleLR in configure_optimizers.

Same model, data, seed and number of steps; only who sets the lr differs. The
model is a small MLP so that any per-step overhead shows. Two pairings:

* ``no logger``: ``OneCycleCallback`` vs ``OneCycleLR`` (interval="step").
* ``tensorboard``: ``OneCycleCallback`` logging lr and momentum every step vs
  ``OneCycleLR`` + ``LearningRateMonitor(logging_interval="step", log_momentum=True)``
  with ``Trainer(log_every_n_steps=1)``: the same curves in TensorBoard.

Runs alternate between the two sides; the time is the training loop's wall time
(``on_train_start`` to ``on_train_end``) per optimizer step, median over repeats.

    python benchmarks/overhead.py            # under a minute on 2 CPU cores (40 s measured)
    python benchmarks/overhead.py --accelerator gpu --steps 3000
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader, TensorDataset

from lightning_onecycle import OneCycleCallback

RESULTS = Path(__file__).parent / "results"
MAX_LR = 0.05


class SmallMLP(pl.LightningModule):
    def __init__(self, torch_scheduler: bool, steps: int) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
        self.torch_scheduler, self.steps = torch_scheduler, steps

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self.net(x), y)

    def train_dataloader(self):
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(self.steps * 16, 32, generator=g), torch.randint(0, 10, (self.steps * 16,), generator=g)
        return DataLoader(TensorDataset(x, y), batch_size=16)

    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=MAX_LR, momentum=0.9)
        if not self.torch_scheduler:
            return opt
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=MAX_LR, total_steps=self.trainer.estimated_stepping_batches)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class LoopTimer(pl.Callback):
    def on_train_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self.seconds = time.perf_counter() - self.start


def run_once(side: str, logging: bool, steps: int, accelerator: str, root: str) -> float:
    pl.seed_everything(0, verbose=False)
    timer = LoopTimer()
    callbacks: list[pl.Callback] = [timer]
    if side == "ours":
        callbacks.append(OneCycleCallback(max_lr=MAX_LR))
    elif logging:
        callbacks.append(LearningRateMonitor(logging_interval="step", log_momentum=True))
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        max_epochs=1,
        logger=TensorBoardLogger(root, name=side) if logging else False,
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
    )
    trainer.fit(SmallMLP(torch_scheduler=side == "torch", steps=steps))
    return timer.seconds / steps


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=_positive_int, default=1500, help="optimizer steps per run")
    parser.add_argument("--repeats", type=_positive_int, default=5, help="runs per side and pairing")
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--threads", type=_positive_int, default=1, help="torch CPU threads (1 keeps timings steady)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    with tempfile.TemporaryDirectory() as root:
        for logging in (False, True):
            times: dict[str, list[float]] = {"ours": [], "torch": []}
            run_once("ours", logging, 100, args.accelerator, root)  # warm-up
            for _ in range(args.repeats):
                for side in ("torch", "ours"):
                    times[side].append(run_once(side, logging, args.steps, args.accelerator, root))
            ours, theirs = statistics.median(times["ours"]), statistics.median(times["torch"])
            rows.append(
                {
                    "pairing": "tensorboard" if logging else "no logger",
                    "torch_ms_per_step": theirs * 1e3,
                    "ours_ms_per_step": ours * 1e3,
                    "ratio": ours / theirs,
                    "runs": times,
                }
            )

    RESULTS.mkdir(exist_ok=True)
    meta = {"steps": args.steps, "repeats": args.repeats, "accelerator": args.accelerator, "threads": args.threads,
            "torch": torch.__version__, "lightning": pl.__version__}
    (RESULTS / "overhead.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [
        "| pairing | OneCycleLR (ms/step) | OneCycleCallback (ms/step) | ratio (target <= 1.03) |",
        "|---|---|---|---|",
        *(f"| {r['pairing']} | {r['torch_ms_per_step']:.3f} | {r['ours_ms_per_step']:.3f} | {r['ratio']:.3f} |" for r in rows),
        "",
        f"{args.steps} steps per run, median of {args.repeats} alternating runs, accelerator={args.accelerator},"
        f" torch threads={args.threads}, torch {torch.__version__}, lightning {pl.__version__}.",
    ]
    (RESULTS / "overhead.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
