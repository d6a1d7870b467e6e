"""Fixed LR with step decay versus 1cycle, from the same initial weights: the seed experiment.

1. An LR range test (test only: the model is left as it was) suggests 1cycle's peak LR.
2. The same model trains twice, from the same initial weights and seed, for the same epochs:
   "fixed", SGD (momentum 0.9) at a fixed LR divided by 10 every 7 of 25 epochs (the PyTorch
   transfer-learning tutorial's StepLR(7, 0.1), scaled to --max-epochs), and "onecycle",
   SGD with 1cycle peaking at the range test's LR.
3. The comparison goes to ``<log-dir>/compare/version_N/``: ``compare.png`` (validation
   accuracy and loss per epoch), ``compare.md`` and ``compare.json`` (best accuracy, final
   loss, wall time and what it was measured under: torch's threads, the machine's load),
   the range test's ``range_test/lr_range_test.png``, and one TensorBoard run per schedule
   (``fixed/``, ``onecycle/``).

Offline on the CPU (digits, a small CNN; a few minutes on 2 cores, see the README for the conditions):

    python examples/compare.py
    tensorboard --logdir lightning_logs/compare

The seed experiment, with the tutorial's settings (ResNet-18 pretrained on ImageNet,
ants and bees at 224 pixels, batch size 4, 25 epochs, fixed LR 1e-3):

    python examples/compare.py --dataset hymenoptera --weights DEFAULT --accelerator gpu
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from jsonargparse import ArgumentParser
from jsonargparse.typing import PositiveFloat, PositiveInt
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import TensorBoardLogger

from lightning_onecycle import OneCycleCallback
from lightning_onecycle.demo import TransferClassifier, ValidationHistory, write_comparison

import _cli

# Defaults per dataset besides the model and image size. Hymenoptera: the tutorial's settings. Digits: a network
# trained from scratch needs a far larger LR than the tutorial's fine-tuning, so the fixed LR is the range test's
# suggestion (fixed_lr None): both runs then peak at the same LR and differ only in schedule.
PRESETS: dict[str, dict[str, Any]] = {
    "digits": {"batch_size": 64, "max_epochs": 12, "fixed_lr": None},
    "hymenoptera": {"batch_size": 4, "max_epochs": 25, "fixed_lr": 1e-3},
}


def parser() -> ArgumentParser:
    """compare.py's flags: the shared groups (``_cli``) and the two runs' own."""
    parser = _cli.new_parser(__doc__)
    add = parser.add_argument
    _cli.add_trainer_flags(parser, "Seed of the initial weights and the shuffling (the same for both runs).",
                           "Outputs go to LOG_DIR/compare/version_N/.")  # fmt: skip
    _cli.add_data_flags(parser, batch_size=None, batch_size_help="Samples per batch; default per dataset.")
    _cli.add_model_flags(parser)
    add("--max-epochs", type=PositiveInt | None, default=None, help="Epochs of each run; default per dataset.")
    add("--fixed-lr", type=PositiveFloat | None, default=None, help="LR of the fixed run (before its step decay); "
        "default per dataset: 1e-3 (hymenoptera, the tutorial's), the range test's suggestion (digits).")  # fmt: skip
    _cli.add_range_test_flags(parser)
    return parser


def main() -> None:
    # --- config
    flags = parser()
    args = flags.parse_args()
    _cli.check_batch_limits(flags, args)
    _cli.check_range_test(flags, args)
    _cli.check_accelerator(flags, args.accelerator)
    conditions = _cli.machine_conditions()  # before this script adds to the load
    preset = {**_cli.DATASET_DEFAULTS[args.dataset], **PRESETS[args.dataset]}
    model_name = args.model or preset["model"]
    image_size = args.image_size or preset["image_size"]
    batch_size = args.batch_size or preset["batch_size"]
    max_epochs = args.max_epochs or preset["max_epochs"]
    run_dir = Path(TensorBoardLogger(args.log_dir, name="compare").log_dir)  # the next free compare/version_N
    trainer_flags: dict[str, Any] = dict(
        accelerator=args.accelerator,
        devices=1,  # wall times compare on one device
        precision=args.precision,
        enable_progress_bar=args.enable_progress_bar,
    )

    # --- data
    data = _cli.data_module(flags, args, image_size, batch_size)

    # --- model: one set of initial weights for every run
    pl.seed_everything(args.seed, workers=True)
    model = _cli.classifier(flags, model_name, data.num_classes, image_size, weights=args.weights)
    initial_weights = {k: v.clone() for k, v in model.state_dict().items()}

    # --- LR range test (test only)
    range_test = _cli.range_test(args, stop_after_test=True)
    # From here on, a setting the Trainer or the callbacks refuse ends in one line that names the flag.
    with _cli.one_line_errors(flags, run_dir):
        start = time.perf_counter()
        _cli.trainer(
            flags,
            max_epochs=1,
            callbacks=[range_test],
            limit_train_batches=args.limit_train_batches,  # the sweep restarts the data where training's epoch ends
            limit_val_batches=0,
            log_every_n_steps=1,  # it trains nothing: no warning that its epochs are shorter than Lightning's 50
            logger=TensorBoardLogger(run_dir, name="", version="range_test", default_hp_metric=False),
            enable_checkpointing=False,
            enable_model_summary=False,
            **trainer_flags,
        ).fit(model, datamodule=data)
        result = range_test.result
        assert result is not None  # the test ran: no fast_dev_run, nothing resumed
        range_test_seconds = result.seconds or time.perf_counter() - start
        max_lr = _cli.suggested_lr(result)
        fixed_lr = args.fixed_lr or preset["fixed_lr"] or max_lr

        # --- the two runs
        step_size = max(1, round(7 * max_epochs / 25))  # the tutorial's StepLR(7, 0.1) over 25 epochs
        runs = {
            "fixed": {
                "description": f"SGD lr {fixed_lr:.3g}, StepLR({step_size}, 0.1)",
                "model": {"lr": fixed_lr, "step_lr": (step_size, 0.1)},
                # StepLR sets the LR; log it and the momentum as OneCycleCallback does, under the same tags
                "schedule": LearningRateMonitor("step", log_momentum=True),
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
            trainer = _cli.trainer(
                flags,
                max_epochs=max_epochs,
                callbacks=[run["schedule"], history],
                limit_train_batches=args.limit_train_batches,
                limit_val_batches=args.limit_val_batches,
                log_every_n_steps=1,
                logger=TensorBoardLogger(run_dir, name="", version=name, default_hp_metric=False),
                enable_checkpointing=False,
                **trainer_flags,
            )
            trainer.fit(model, datamodule=data)
            histories.append(history.history)

    # --- report
    device = type(trainer.accelerator).__name__.removesuffix("Accelerator")  # what --accelerator auto chose
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
            f" machine load only. Timed on {device} with {conditions} at the start.",
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
            "range_test": {
                **result.to_dict(),
                "wall_time_s": range_test_seconds,
                "plot": "range_test/lr_range_test.png",
            },
        },
    )
    print("\n" + paths["md"].read_text())
    total_s = range_test_seconds + sum(history.wall_time_s or 0.0 for history in histories)
    print(_cli.range_test_summary(result, total_s, "this comparison's", run_dir / "range_test"))
    print(f"Figure {paths['png']}, table {paths['md']} and {paths['json']}.")
    print(f"To see both runs side by side: tensorboard --logdir {run_dir}")


if __name__ == "__main__":
    main()
