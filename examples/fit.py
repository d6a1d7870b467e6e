"""Train an image classifier with an LR range test and Smith's 1cycle policy, logging to TensorBoard.

With no flags it runs offline on the CPU in a minute or so: scikit-learn's digits
at 32x32 pixels, a small CNN, a 100-step LR range test whose suggested LR becomes
the peak of a 10-epoch 1cycle:

    python examples/fit.py
    tensorboard --logdir lightning_logs

The PyTorch transfer-learning tutorial (ants and bees, ImageNet-pretrained
ResNet-18; downloads the data and the weights once), on a GPU:

    python examples/fit.py --dataset hymenoptera --weights DEFAULT --accelerator gpu --max-epochs 25

Baselines: ``--policy fixed`` (a fixed LR divided by 10 every 7 of 25 epochs, as in
the tutorial) and ``--policy clr`` (cyclical LR). Every flag can also come from a
YAML file: ``--config fit.yaml`` with keys named like the flags (``max_epochs: 5``).
"""

from __future__ import annotations

from typing import Literal, Optional, Union

import lightning.pytorch as pl
from jsonargparse import ActionConfigFile, ActionYesNo, ArgumentParser
from jsonargparse.typing import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from _checks import check_batch_limits, check_range_test
from lightning_onecycle import AUTO, DEFAULT_STRATEGY, STRATEGIES, CyclicLRCallback, LRRangeTestCallback, OneCycleCallback
from lightning_onecycle.demo import DigitsDataModule, HymenopteraDataModule, TransferClassifier


# --- config
parser = ArgumentParser(description=__doc__.split("\n\n")[0], default_env=False)
add = parser.add_argument
add("--config", action=ActionConfigFile, help="YAML file with any of these flags (keys with underscores).")
# Trainer
add("--accelerator", type=str, default="auto", help="Lightning accelerator: auto, cpu, gpu, mps, ...")
add("--devices", type=Union[int, str], default="auto", help="Number of devices, a list such as 0,1, or auto.")
add("--strategy", type=str, default="auto", help="Lightning strategy: auto, ddp, ...")
add("--precision", type=str, default="32-true", help="Lightning precision: 32-true, 16-mixed, bf16-mixed, ...")
add("--enable-progress-bar", type=bool, default=True, help="Show Lightning's progress bars.")
add("--max-epochs", type=PositiveInt, default=10, help="Training epochs (the 1cycle spans all of them).")
add("--limit-train-batches", type=Union[int, float], default=1.0, help="Batches per epoch (int >= 1) or share "
    "(float in (0, 1]).")  # fmt: skip
add("--limit-val-batches", type=Union[int, float], default=1.0, help="Validation batches (int >= 1) or share "
    "(float in (0, 1]).")  # fmt: skip
add("--log-every-n-steps", type=PositiveInt, default=1, help="Log the training loss every this many steps.")
add("--seed", type=int, default=0, help="Seed of the initial weights and the shuffling.")
add("--log-dir", type=str, default="lightning_logs", help="TensorBoard folder (one sub-folder per run).")
add("--name", type=Optional[str], default=None, help="Run name in TensorBoard; default: DATASET-MODEL-POLICY.")
# Data
add("--dataset", type=Literal["digits", "hymenoptera"], default="digits", help="digits: offline, 10 classes; "
    "hymenoptera: the tutorial's ants and bees, downloaded into --data-dir.")  # fmt: skip
add("--data-dir", type=str, default="data/hymenoptera_data", help="Folder of the hymenoptera data.")
add("--image-size", type=Optional[PositiveInt], default=None, help="Image side; default 32 (digits), "
    "224 (hymenoptera).")  # fmt: skip
add("--batch-size", type=PositiveInt, default=64, help="Samples per batch.")
add("--num-workers", type=NonNegativeInt, default=0, help="DataLoader worker processes.")
# Model
add("--model", type=Optional[str], default=None, help="smallcnn or a torchvision classifier such as resnet18; "
    "default: smallcnn (digits), resnet18 (hymenoptera).")  # fmt: skip
add("--weights", type=Optional[str], default=None, help="Initial weights: none, DEFAULT, IMAGENET1K_V1, a file.")
add("--freeze-backbone", type=bool, default=False, help="Train only the new head (feature extraction).")
add("--backbone-lr-ratio", type=Optional[PositiveFloat], default=None, help="Backbone LR / head LR.")
add("--optimizer", type=Literal["sgd", "adamw"], default="sgd", help="SGD with momentum, or AdamW.")
add("--weight-decay", type=NonNegativeFloat, default=0.0, help="Weight decay of every param group.")
# LR range test and schedule
add("--policy", type=Literal["onecycle", "clr", "fixed"], default="onecycle", help="onecycle: Smith's 1cycle; "
    "clr: cyclical LR; fixed: fixed LR with StepLR(7 of 25 epochs, 0.1) as in the tutorial.")  # fmt: skip
add("--find-lr", action=ActionYesNo(no_prefix="no-"), default=None, help="Run the LR range test first; its "
    "suggestion is the schedule's peak LR. Default: on, unless --max-lr is given.")  # fmt: skip
add("--max-lr", type=Optional[PositiveFloat], default=None, help="Peak LR: 1cycle's maximum, CLR's upper "
    "bound, the fixed policy's starting LR. Default: the range test's suggestion.")  # fmt: skip
add("--range-test-steps", type=PositiveInt, default=100, help="Steps of the LR range test (at least 10).")
add("--range-test-min-lr", type=PositiveFloat, default=1e-6, help="First LR of the range test.")
add("--range-test-max-lr", type=PositiveFloat, default=10.0, help="Last LR of the range test.")
add("--suggestion", type=Literal[(AUTO, *sorted(STRATEGIES))], default=DEFAULT_STRATEGY, help="How the range test "
    "picks its LR from the loss curve.")  # fmt: skip
add("--clr-div-factor", type=PositiveFloat, default=6.0, help="CLR's lower bound is --max-lr / this.")
add("--clr-step-epochs", type=PositiveFloat, default=2.0, help="Epochs from CLR's lower to upper bound.")
args = parser.parse_args()
check_batch_limits(parser, args)
if args.find_lr is False and args.max_lr is None:
    parser.error("--no-find-lr needs --max-lr: without the range test there is no LR to build the schedule on.")
find_lr = args.find_lr if args.find_lr is not None else args.max_lr is None
if find_lr:  # the range test's flags matter only when it runs
    check_range_test(parser, args)
model_name = args.model or {"digits": "smallcnn", "hymenoptera": "resnet18"}[args.dataset]
name = args.name or f"{args.dataset}-{model_name}-{args.policy}"
pl.seed_everything(args.seed, workers=True)

# --- data
if args.dataset == "digits":
    data = DigitsDataModule(args.image_size or 32, args.batch_size, num_workers=args.num_workers)
else:
    data = HymenopteraDataModule(args.data_dir, args.image_size or 224, args.batch_size, args.num_workers)
data.prepare_data()  # downloads the ants and bees once; their class folders give num_classes

# --- model
# The tutorial's StepLR(step_size=7, gamma=0.1) over 25 epochs, scaled to --max-epochs.
step_lr = (max(1, round(7 * args.max_epochs / 25)), 0.1) if args.policy == "fixed" else None
try:
    model = TransferClassifier(
        model_name,
        num_classes=data.num_classes,
        weights=args.weights,
        freeze_backbone=args.freeze_backbone,
        backbone_lr_ratio=args.backbone_lr_ratio,
        optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        step_lr=step_lr,
    )
except (ValueError, FileNotFoundError) as err:
    parser.error(str(err))
logger = TensorBoardLogger(args.log_dir, name=name)
trainer_flags = dict(
    accelerator=args.accelerator,
    devices=args.devices,
    strategy=args.strategy,
    precision=args.precision,
    enable_progress_bar=args.enable_progress_bar,
    log_every_n_steps=args.log_every_n_steps,
    logger=logger,  # the range test and the training write into the same run
)

# --- LR range test and schedule
checkpoint = ModelCheckpoint(monitor="val_acc", mode="max", filename="best-{epoch}-{val_acc:.4f}")
callbacks: list[pl.Callback] = [checkpoint]
range_test = None
if find_lr:
    range_test = LRRangeTestCallback(
        min_lr=args.range_test_min_lr,
        max_lr=args.range_test_max_lr,
        num_steps=args.range_test_steps,
        suggestion=args.suggestion,
        stop_after_test=args.policy != "onecycle",
    )
max_lr = args.max_lr
if args.policy == "onecycle":
    # The two-line use: the range test runs at the start of the fit, restores the model, and its
    # suggestion becomes 1cycle's peak (max_lr=None); an explicit --max-lr wins over it.
    callbacks += [range_test] if range_test else []
    callbacks.append(OneCycleCallback(max_lr=max_lr))
else:
    if range_test is not None:
        # CLR and the fixed policy need their peak when they are built: a test-only fit first.
        finder = pl.Trainer(  # the sweep restarts the data where training's epoch ends: same limit
            max_epochs=1,
            callbacks=[range_test],
            limit_train_batches=args.limit_train_batches,
            limit_val_batches=0,
            enable_checkpointing=False,
            **trainer_flags,
        )
        finder.fit(model, datamodule=data)
        if max_lr is None:
            if range_test.suggested_lr is None:
                raise SystemExit(
                    f"The LR range test suggested no LR ({range_test.result.stop_reason}); see its plot in"
                    f" {logger.log_dir}. Widen it (--range-test-min-lr, --range-test-max-lr) or pass --max-lr."
                )
            max_lr = range_test.suggested_lr
    model.lr = max_lr  # configure_optimizers reads it; with --backbone-lr-ratio it is the head's LR
    if args.policy == "clr":
        bounds = {"base_lr": max_lr / args.clr_div_factor, "max_lr": max_lr}
        callbacks.append(CyclicLRCallback(**bounds, step_size_up=args.clr_step_epochs, step_size_unit="epochs"))
    else:  # fixed: the model's StepLR sets the LR; log it as the schedule callbacks do
        callbacks.append(LearningRateMonitor(logging_interval="step"))

# --- training loop
trainer = pl.Trainer(
    max_epochs=args.max_epochs,
    callbacks=callbacks,
    limit_train_batches=args.limit_train_batches,
    limit_val_batches=args.limit_val_batches,
    **trainer_flags,
)
trainer.fit(model, datamodule=data)

# --- report
if max_lr is None:
    max_lr = range_test.suggested_lr
if trainer.is_global_zero:
    final, best = float(trainer.callback_metrics["val_acc"]), float(checkpoint.best_model_score)
    print(f"\n{args.policy}, peak LR {max_lr:.4g}: validation accuracy {final:.4f} at the end, {best:.4f} at best")
    print(f"({checkpoint.best_model_path}).")
    print(f"Logs in {logger.log_dir}. To see them: tensorboard --logdir {args.log_dir}")
