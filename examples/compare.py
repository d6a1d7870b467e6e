"""Fixed LR with step decay versus 1cycle, from the same initial weights: the seed experiment.

1. An LR range test (test only: the model is left as it was) suggests 1cycle's peak LR.
2. The same model trains twice, from the same initial weights and seed, for the same epochs:
   "fixed", SGD (momentum 0.9) at a fixed LR divided by 10 every 7 of 25 epochs (the PyTorch
   transfer-learning tutorial's StepLR(7, 0.1), scaled to --max-epochs), and "onecycle",
   SGD with 1cycle peaking at the range test's LR.
3. The comparison goes to ``<log-dir>/compare/version_N/``: ``compare.png`` (validation
   accuracy and loss per epoch), ``compare.md`` and ``compare.json`` (best accuracy, final
   loss, wall time), the range test's ``range_test/lr_range_test.png``, and one TensorBoard
   run per schedule (``fixed/``, ``onecycle/``).

Offline on the CPU (digits, a small CNN, about a minute):

    python examples/compare.py
    tensorboard --logdir lightning_logs/compare

The seed experiment, with the tutorial's settings (ResNet-18 pretrained on ImageNet,
ants and bees at 224 pixels, batch size 4, 25 epochs, fixed LR 1e-3):

    python examples/compare.py --dataset hymenoptera --weights DEFAULT --accelerator gpu
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Literal, Optional, Union

import lightning.pytorch as pl
from jsonargparse import ActionConfigFile, ArgumentParser
from jsonargparse.typing import NonNegativeInt, PositiveFloat, PositiveInt
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import TensorBoardLogger

from _checks import check_batch_limits, check_range_test
from lightning_onecycle import AUTO, DEFAULT_STRATEGY, STRATEGIES, LRRangeTestCallback, OneCycleCallback
from lightning_onecycle.demo import (
    DigitsDataModule,
    HymenopteraDataModule,
    TransferClassifier,
    ValidationHistory,
    write_comparison,
)

# Defaults per dataset. Hymenoptera: the tutorial's settings. Digits: a network trained from
# scratch needs a far larger LR than the tutorial's fine-tuning, so the fixed LR is the range
# test's suggestion (fixed_lr None): both runs then peak at the same LR and differ only in schedule.
PRESETS = {
    "digits": {"model": "smallcnn", "image_size": 32, "batch_size": 64, "max_epochs": 12, "fixed_lr": None},
    "hymenoptera": {"model": "resnet18", "image_size": 224, "batch_size": 4, "max_epochs": 25, "fixed_lr": 1e-3},
}


# --- config
parser = ArgumentParser(description=__doc__.split("\n\n")[0], default_env=False)
add = parser.add_argument
add("--config", action=ActionConfigFile, help="YAML file with any of these flags (keys with underscores).")
add("--accelerator", type=str, default="auto", help="Lightning accelerator: auto, cpu, gpu, mps, ...")
add("--precision", type=str, default="32-true", help="Lightning precision: 32-true, 16-mixed, bf16-mixed, ...")
add("--enable-progress-bar", type=bool, default=True, help="Show Lightning's progress bars.")
add("--seed", type=int, default=0, help="Seed of the initial weights and the shuffling (the same for both runs).")
add("--log-dir", type=str, default="lightning_logs", help="Outputs go to LOG_DIR/compare/version_N/.")
add("--dataset", type=Literal["digits", "hymenoptera"], default="digits", help="digits: offline; "
    "hymenoptera: the tutorial's ants and bees, downloaded into --data-dir.")  # fmt: skip
add("--data-dir", type=str, default="data/hymenoptera_data", help="Folder of the hymenoptera data.")
add("--model", type=Optional[str], default=None, help="smallcnn or a torchvision classifier; default per dataset.")
add("--weights", type=Optional[str], default=None, help="Initial weights: none, DEFAULT, IMAGENET1K_V1, a file.")
add("--image-size", type=Optional[PositiveInt], default=None, help="Image side; default per dataset.")
add("--batch-size", type=Optional[PositiveInt], default=None, help="Samples per batch; default per dataset.")
add("--num-workers", type=NonNegativeInt, default=0, help="DataLoader worker processes.")
add("--max-epochs", type=Optional[PositiveInt], default=None, help="Epochs of each run; default per dataset.")
add("--fixed-lr", type=Optional[PositiveFloat], default=None, help="LR of the fixed run (before its step decay); "
    "default per dataset: 1e-3 (hymenoptera, the tutorial's), the range test's suggestion (digits).")  # fmt: skip
add("--range-test-steps", type=PositiveInt, default=100, help="Steps of the LR range test (at least 10).")
add("--range-test-min-lr", type=PositiveFloat, default=1e-6, help="First LR of the range test.")
add("--range-test-max-lr", type=PositiveFloat, default=10.0, help="Last LR of the range test.")
add("--suggestion", type=Literal[(AUTO, *sorted(STRATEGIES))], default=DEFAULT_STRATEGY, help="How the range test "
    "picks its LR from the loss curve.")  # fmt: skip
add("--limit-train-batches", type=Union[int, float], default=1.0, help="Batches per epoch (int >= 1) or share "
    "(float in (0, 1]).")  # fmt: skip
add("--limit-val-batches", type=Union[int, float], default=1.0, help="Validation batches (int >= 1) or share "
    "(float in (0, 1]).")  # fmt: skip
args = parser.parse_args()
check_batch_limits(parser, args)
check_range_test(parser, args)
preset = PRESETS[args.dataset]
model_name = args.model or preset["model"]
image_size = args.image_size or preset["image_size"]
batch_size = args.batch_size or preset["batch_size"]
max_epochs = args.max_epochs or preset["max_epochs"]
run_dir = Path(TensorBoardLogger(args.log_dir, name="compare").log_dir)  # the next free compare/version_N
trainer_flags = dict(
    accelerator=args.accelerator,
    devices=1,  # wall times compare on one device
    precision=args.precision,
    enable_progress_bar=args.enable_progress_bar,
)

# --- data
if args.dataset == "digits":
    data = DigitsDataModule(image_size, batch_size, num_workers=args.num_workers)
else:
    data = HymenopteraDataModule(args.data_dir, image_size, batch_size, args.num_workers)
data.prepare_data()  # downloads the ants and bees once; their class folders give num_classes

# --- model: one set of initial weights for every run
pl.seed_everything(args.seed, workers=True)
try:
    model = TransferClassifier(model_name, num_classes=data.num_classes, weights=args.weights)
except (ValueError, FileNotFoundError) as err:
    parser.error(str(err))
initial_weights = {k: v.clone() for k, v in model.state_dict().items()}

# --- LR range test (test only)
range_test = LRRangeTestCallback(
    min_lr=args.range_test_min_lr,
    max_lr=args.range_test_max_lr,
    num_steps=args.range_test_steps,
    suggestion=args.suggestion,
    stop_after_test=True,
)
start = time.perf_counter()
pl.Trainer(
    max_epochs=1,
    callbacks=[range_test],
    limit_train_batches=args.limit_train_batches,  # the sweep restarts the data where training's epoch ends
    limit_val_batches=0,
    logger=TensorBoardLogger(run_dir, name="", version="range_test"),
    enable_checkpointing=False,
    enable_model_summary=False,
    **trainer_flags,
).fit(model, datamodule=data)
range_test_seconds = time.perf_counter() - start
max_lr = range_test.suggested_lr
if max_lr is None:
    raise SystemExit(f"The LR range test suggested no LR ({range_test.result.stop_reason}); see {run_dir}/range_test/.")
fixed_lr = args.fixed_lr or preset["fixed_lr"] or max_lr

# --- the two runs
step_size = max(1, round(7 * max_epochs / 25))  # the tutorial's StepLR(7, 0.1) over 25 epochs
runs = {
    "fixed": {
        "description": f"SGD lr {fixed_lr:.3g}, StepLR({step_size}, 0.1)",
        "model": {"lr": fixed_lr, "step_lr": (step_size, 0.1)},
        "schedule": LearningRateMonitor("step"),  # StepLR sets the LR; log it as OneCycleCallback does
    },
    "onecycle": {
        "description": f"SGD 1cycle, max lr {max_lr:.3g}",
        "model": {"lr": max_lr},
        "schedule": OneCycleCallback(max_lr=max_lr),
    },
}
histories = []
for name, run in runs.items():
    pl.seed_everything(args.seed, workers=True)  # the same batches in the same order
    model = TransferClassifier(model_name, num_classes=data.num_classes, **run["model"])
    model.load_state_dict(initial_weights)  # every parameter and buffer, so no need to load --weights again
    history = ValidationHistory(name, run["description"])
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        callbacks=[run["schedule"], history],
        limit_train_batches=args.limit_train_batches,
        limit_val_batches=args.limit_val_batches,
        log_every_n_steps=1,
        logger=TensorBoardLogger(run_dir, name="", version=name),
        enable_checkpointing=False,
        **trainer_flags,
    )
    trainer.fit(model, datamodule=data)
    histories.append(history.history)

# --- report
result = range_test.result
paths = write_comparison(
    histories,
    run_dir,
    title=f"{model_name} on {args.dataset}, {max_epochs} epochs: fixed LR with step decay vs 1cycle",
    notes=[
        f"Same initial weights{' (' + args.weights + ')' if args.weights else ''}, seed {args.seed} and batch"
        f" order; batch size {batch_size}, {image_size}x{image_size} images, SGD momentum 0.9 (1cycle: 0.95-0.85).",
        f"LR range test: {result.num_steps_run} steps ({result.stop_reason}), suggested lr {max_lr:.3g}"
        f" ({result.suggestion}), {range_test_seconds:.1f} s, not counted in the wall times.",
        "Both runs do the same work per step (setting the LR costs nothing measurable): wall times differ by"
        " machine load only.",
    ],
    extra={
        "settings": {
            "dataset": args.dataset,
            "model": model_name,
            "weights": args.weights,
            "image_size": image_size,
            "batch_size": batch_size,
            "max_epochs": max_epochs,
            "seed": args.seed,
            "fixed_lr": fixed_lr,
            "step_lr": [step_size, 0.1],
            "max_lr": max_lr,
        },
        "range_test": {**result.to_dict(), "wall_time_s": range_test_seconds, "plot": "range_test/lr_range_test.png"},
    },
)
print("\n" + paths["md"].read_text())
print(f"Figure {paths['png']}, table {paths['md']} and {paths['json']}, range test {run_dir}/range_test/.")
print(f"To see both runs side by side: tensorboard --logdir {run_dir}")
