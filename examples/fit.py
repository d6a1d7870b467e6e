"""Train an image classifier with an LR range test and Smith's 1cycle policy, logging to TensorBoard.

With no flags it runs offline on the CPU, in a few minutes on 2 cores (see the
README for the conditions): scikit-learn's digits at 32x32 pixels, a small CNN, a
100-step LR range test whose suggested LR becomes the peak of a 10-epoch 1cycle.
The summary at the end says what the range test cost and where its plot is:

    python examples/fit.py
    tensorboard --logdir lightning_logs

The PyTorch transfer-learning tutorial (ants and bees, ImageNet-pretrained
ResNet-18; downloads the data and the weights once), on a GPU:

    python examples/fit.py --dataset hymenoptera --weights DEFAULT --accelerator gpu --max-epochs 25

Baselines: ``--policy fixed`` (a fixed LR divided by 10 every 7 of 25 epochs, as in
the tutorial) and ``--policy clr`` (cyclical LR). Every flag can also come from a
YAML file: ``--config fit.yaml`` with keys named like the flags (``max_epochs: 5``).
Several processes work too, e.g. ``--strategy ddp_spawn --devices 2 --accelerator cpu``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from jsonargparse import ActionYesNo, ArgumentParser
from jsonargparse.typing import NonNegativeFloat, PositiveFloat, PositiveInt
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from lightning_onecycle import CyclicLRCallback, LRRangeTestCallback, OneCycleCallback, RangeTestResult

import _cli


def parser() -> ArgumentParser:
    """fit.py's flags: the shared groups (``_cli``), the Trainer's, the model's and the schedule's."""
    parser = _cli.new_parser(__doc__)
    add = parser.add_argument
    _cli.add_trainer_flags(parser, "Seed of the initial weights and the shuffling.", "TensorBoard folder (one "
                           "sub-folder per run).")  # fmt: skip
    add("--devices", type=int | str, default="auto", help="Number of devices, a list such as 0,1, or auto.")
    add("--strategy", type=str, default="auto", help="Lightning strategy: auto, ddp, ddp_spawn, ...")
    add("--max-epochs", type=PositiveInt, default=10, help="Training epochs (the 1cycle spans all of them).")
    add("--log-every-n-steps", type=PositiveInt, default=1, help="Log the training loss every this many steps.")
    add("--name", type=str | None, default=None, help="Run name in TensorBoard; default: DATASET-MODEL-POLICY.")
    _cli.add_data_flags(parser, batch_size=64, batch_size_help="Samples per batch.")
    _cli.add_model_flags(parser)
    add("--freeze-backbone", type=bool, default=False, help="Train only the new head (feature extraction).")
    add("--backbone-lr-ratio", type=PositiveFloat | None, default=None, help="Backbone LR / head LR.")
    add("--optimizer", type=Literal["sgd", "adamw"], default="sgd", help="SGD with momentum, or AdamW.")
    add("--weight-decay", type=NonNegativeFloat, default=0.0, help="Weight decay of every param group.")
    add("--policy", type=Literal["onecycle", "clr", "fixed"], default="onecycle", help="onecycle: Smith's 1cycle; "
        "clr: cyclical LR; fixed: fixed LR with StepLR(7 of 25 epochs, 0.1) as in the tutorial.")  # fmt: skip
    add("--find-lr", action=ActionYesNo(no_prefix="no-"), default=None, help="Run the LR range test first; its "
        "suggestion is the schedule's peak LR. Default: on, unless --max-lr is given.")  # fmt: skip
    add("--max-lr", type=PositiveFloat | None, default=None, help="Peak LR: 1cycle's maximum, CLR's upper "
        "bound, the fixed policy's starting LR. Default: the range test's suggestion.")  # fmt: skip
    _cli.add_range_test_flags(parser)
    add("--clr-div-factor", type=PositiveFloat, default=6.0, help="CLR's lower bound is --max-lr / this.")
    add("--clr-step-epochs", type=PositiveFloat, default=2.0, help="Epochs from CLR's lower to upper bound.")
    return parser


def main() -> None:
    # --- config
    flags = parser()
    args = flags.parse_args()
    _cli.check_batch_limits(flags, args)
    _cli.check_accelerator(flags, args.accelerator)
    if args.find_lr is False and args.max_lr is None:
        flags.error("--no-find-lr needs --max-lr: without the range test there is no LR to build the schedule on.")
    find_lr = args.find_lr if args.find_lr is not None else args.max_lr is None
    if find_lr:  # the range test's flags matter only when it runs
        _cli.check_range_test(flags, args)
    defaults = _cli.DATASET_DEFAULTS[args.dataset]
    model_name = args.model or defaults["model"]
    name = args.name or f"{args.dataset}-{model_name}-{args.policy}"
    pl.seed_everything(args.seed, workers=True)

    # --- data
    image_size = args.image_size or defaults["image_size"]
    data = _cli.data_module(flags, args, image_size, args.batch_size)

    # --- model
    # The tutorial's StepLR(step_size=7, gamma=0.1) over 25 epochs, scaled to --max-epochs.
    step_lr = (max(1, round(7 * args.max_epochs / 25)), 0.1) if args.policy == "fixed" else None
    model = _cli.classifier(
        flags,
        model_name,
        data.num_classes,
        image_size,
        weights=args.weights,
        freeze_backbone=args.freeze_backbone,
        backbone_lr_ratio=args.backbone_lr_ratio,
        optimizer=args.optimizer,
        weight_decay=args.weight_decay,
        step_lr=step_lr,
    )
    # No placeholder hp_metric (-1): the run opens on its lr, momentum, loss and accuracy curves.
    logger = TensorBoardLogger(args.log_dir, name=name, default_hp_metric=False)
    # Fixed now: processes that `ddp_spawn` starts write into this run, and this process reads from it afterwards.
    log_dir = Path(logger.log_dir)
    trainer_flags: dict[str, Any] = dict(
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
    range_test = _cli.range_test(args, stop_after_test=args.policy != "onecycle") if find_lr else None
    max_lr = args.max_lr
    # From here on, a setting the Trainer or the callbacks refuse ends in one line that names the flag.
    start = time.perf_counter()
    with _cli.one_line_errors(flags, log_dir):
        if args.policy == "onecycle":
            # The two-line use: the range test runs at the start of the fit, restores the model, and its
            # suggestion becomes 1cycle's peak (max_lr=None); an explicit --max-lr wins over it.
            callbacks += [range_test] if range_test else []
            callbacks.append(OneCycleCallback(max_lr=max_lr))
        else:
            if range_test is not None:
                # CLR and the fixed policy need their peak when they are built: a test-only fit first.
                finder = _cli.trainer(  # the sweep restarts the data where training's epoch ends: same limit
                    flags,
                    max_epochs=1,
                    callbacks=[range_test],
                    limit_train_batches=args.limit_train_batches,
                    limit_val_batches=0,
                    enable_checkpointing=False,
                    **trainer_flags,
                )
                finder.fit(model, datamodule=data)
                if max_lr is None:
                    max_lr = _cli.suggested_lr(_range_test_result(range_test, log_dir), ", or pass --max-lr")
            model.lr = max_lr  # configure_optimizers reads it; with --backbone-lr-ratio it is the head's LR
            if args.policy == "clr":
                bounds = {"base_lr": max_lr / args.clr_div_factor, "max_lr": max_lr}
                clr = CyclicLRCallback(**bounds, step_size_up=args.clr_step_epochs, step_size_unit="epochs")
                callbacks.append(clr)
            else:  # fixed: the model's StepLR sets the LR; log it and the momentum as the schedule callbacks do
                callbacks.append(LearningRateMonitor(logging_interval="step", log_momentum=True))

        # --- training loop
        trainer = _cli.trainer(
            flags,
            max_epochs=args.max_epochs,
            callbacks=callbacks,
            limit_train_batches=args.limit_train_batches,
            limit_val_batches=args.limit_val_batches,
            **trainer_flags,
        )
        trainer.fit(model, datamodule=data)

    # --- report
    result = _range_test_result(range_test, log_dir) if range_test is not None else None
    if max_lr is None:
        assert result is not None  # without --max-lr the range test ran
        max_lr = result.suggested_lr
    # Without a suggestion 1cycle keeps the optimizer's configured lr (its warning said so).
    peak = f"{max_lr:.4g}" if max_lr is not None else f"{model.lr:.4g} (configured: the range test suggested none)"
    if trainer.is_global_zero:
        final, best = float(trainer.callback_metrics["val_acc"]), _best_score(checkpoint)
        print(f"\n{args.policy}, peak LR {peak}: validation accuracy {final:.4f} at the end, {best:.4f} at best")
        print(f"({checkpoint.best_model_path}).")
        if result is not None:
            print(_cli.range_test_summary(result, time.perf_counter() - start, "this run's", log_dir))
        print(f"Logs in {log_dir}. To see them: tensorboard --logdir {args.log_dir}")


def _range_test_result(range_test: LRRangeTestCallback, log_dir: Path) -> RangeTestResult:
    """The test's result: the callback's, or after `ddp_spawn` (whose processes keep theirs) the file it wrote."""
    return range_test.result or RangeTestResult.load(log_dir / "lr_range_test.json")


def _best_score(checkpoint: ModelCheckpoint) -> float:
    """The best validation accuracy: the callback's, or after `ddp_spawn` (which sends back only the best
    checkpoint's path) the one stored in that checkpoint."""
    if checkpoint.best_model_score is not None:
        return float(checkpoint.best_model_score)
    saved = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
    return float(saved["callbacks"][checkpoint.state_key]["best_model_score"])


if __name__ == "__main__":
    main()
