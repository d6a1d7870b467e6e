"""What fit.py and compare.py share: their common flags (one definition each), the data, the model, the range test.

Each ``add_*`` function adds one group of flags to a jsonargparse parser; the
scripts add their own flags beside them. The checks here are those a flag's type
cannot express and the callbacks cannot make (they do not know the flags' names).
"""

from __future__ import annotations

from typing import Any, Literal

from jsonargparse import ActionConfigFile, ArgumentParser
from jsonargparse.typing import NonNegativeInt, PositiveFloat, PositiveInt

from lightning_onecycle import AUTO, DEFAULT_STRATEGY, STRATEGIES, LRRangeTestCallback
from lightning_onecycle.demo import DigitsDataModule, HymenopteraDataModule, TransferClassifier
from lightning_onecycle.range_test import MIN_NUM_STEPS

# The model and image size each dataset gets unless the flags say otherwise: a small CNN on 32 px digits
# offline; the PyTorch transfer-learning tutorial's ResNet-18 on 224 px ants and bees.
DATASET_DEFAULTS = {
    "digits": {"model": "smallcnn", "image_size": 32},
    "hymenoptera": {"model": "resnet18", "image_size": 224},
}


def new_parser(doc: str) -> ArgumentParser:
    """A parser described by the script's first paragraph, with ``--config`` (a YAML file of the flags)."""
    parser = ArgumentParser(description=doc.split("\n\n")[0], default_env=False)
    parser.add_argument(
        "--config", action=ActionConfigFile, help="YAML file with any of these flags (keys with underscores)."
    )
    return parser


def add_trainer_flags(parser: ArgumentParser, seed_help: str, log_dir_help: str) -> None:
    """Accelerator, precision, progress bar, batch limits, seed and log folder."""
    add = parser.add_argument
    add("--accelerator", type=str, default="auto", help="Lightning accelerator: auto, cpu, gpu, mps, ...")
    add("--precision", type=str, default="32-true", help="Lightning precision: 32-true, 16-mixed, bf16-mixed, ...")
    add("--enable-progress-bar", type=bool, default=True, help="Show Lightning's progress bars.")
    add("--limit-train-batches", type=int | float, default=1.0, help="Batches per epoch (int >= 1) or share "
        "(float in (0, 1]).")  # fmt: skip
    add("--limit-val-batches", type=int | float, default=1.0, help="Validation batches (int >= 1) or share "
        "(float in (0, 1]).")  # fmt: skip
    add("--seed", type=int, default=0, help=seed_help)
    add("--log-dir", type=str, default="lightning_logs", help=log_dir_help)


def add_data_flags(parser: ArgumentParser, batch_size: int | None, batch_size_help: str) -> None:
    """Dataset, its folder, image size, batch size and loader workers."""
    add = parser.add_argument
    add("--dataset", type=Literal["digits", "hymenoptera"], default="digits", help="digits: offline, 10 classes; "
        "hymenoptera: the tutorial's ants and bees, downloaded into --data-dir.")  # fmt: skip
    add("--data-dir", type=str, default="data/hymenoptera_data", help="Folder of the hymenoptera data.")
    add("--image-size", type=PositiveInt | None, default=None, help="Image side; default 32 (digits), "
        "224 (hymenoptera).")  # fmt: skip
    add("--batch-size", type=PositiveInt | None, default=batch_size, help=batch_size_help)
    add("--num-workers", type=NonNegativeInt, default=0, help="DataLoader worker processes.")


def add_model_flags(parser: ArgumentParser) -> None:
    """The network and its initial weights."""
    add = parser.add_argument
    add("--model", type=str | None, default=None, help="smallcnn or a torchvision classifier such as resnet18; "
        "default: smallcnn (digits), resnet18 (hymenoptera).")  # fmt: skip
    add("--weights", type=str | None, default=None, help="Initial weights: none, DEFAULT, IMAGENET1K_V1, a file.")


def add_range_test_flags(parser: ArgumentParser) -> None:
    """The LR range test's sweep and how it picks its suggestion."""
    add = parser.add_argument
    add("--range-test-steps", type=PositiveInt, default=100, help=f"Steps of the LR range test (at least "
        f"{MIN_NUM_STEPS}).")  # fmt: skip
    add("--range-test-min-lr", type=PositiveFloat, default=1e-6, help="First LR of the range test.")
    add("--range-test-max-lr", type=PositiveFloat, default=10.0, help="Last LR of the range test.")
    add("--suggestion", type=Literal[(AUTO, *sorted(STRATEGIES))], default=DEFAULT_STRATEGY, help="How the range test "
        "picks its LR from the loss curve.")  # fmt: skip


def check_batch_limits(parser: ArgumentParser, args: Any) -> None:
    """``--limit-train-batches``/``--limit-val-batches`` as Lightning reads them, but never 0.

    An int is a count of batches (at least 1), a float in (0, 1] a share of them (1.0
    is the whole epoch), and a whole float above 1 a count (Lightning reads 2.0 as 2).
    Both runs need batches to train and validate on: 0 would leave no accuracy to report.
    """
    for name in ("limit_train_batches", "limit_val_batches"):
        value = getattr(args, name)
        if isinstance(value, float) and value > 1 and value.is_integer():
            value = int(value)
        if not ((isinstance(value, int) and value >= 1) or (isinstance(value, float) and 0 < value <= 1)):
            flag = "--" + name.replace("_", "-")
            parser.error(f"{flag} must be a number of batches (>= 1) or a share of them in (0, 1], but got {value}.")
        setattr(args, name, value)


def check_range_test(parser: ArgumentParser, args: Any) -> None:
    """The range test's flags, in the flags' own names, before any data is loaded.

    LRRangeTestCallback refuses the same values when it is built, but names its
    arguments (``min_lr``, ``num_steps``), not these flags.
    """
    if args.range_test_min_lr >= args.range_test_max_lr:
        parser.error(
            f"--range-test-min-lr ({args.range_test_min_lr}) must be below --range-test-max-lr"
            f" ({args.range_test_max_lr})."
        )
    if args.range_test_steps < MIN_NUM_STEPS:
        parser.error(f"--range-test-steps must be at least {MIN_NUM_STEPS}, but got {args.range_test_steps}.")


def range_test(args: Any, stop_after_test: bool) -> LRRangeTestCallback:
    """The LR range test the flags describe."""
    return LRRangeTestCallback(
        min_lr=args.range_test_min_lr,
        max_lr=args.range_test_max_lr,
        num_steps=args.range_test_steps,
        suggestion=args.suggestion,
        stop_after_test=stop_after_test,
    )


def data_module(args: Any, image_size: int, batch_size: int) -> DigitsDataModule | HymenopteraDataModule:
    """The dataset the flags name, prepared (the ants and bees are downloaded once; their folders give the classes)."""
    data: DigitsDataModule | HymenopteraDataModule
    if args.dataset == "digits":
        data = DigitsDataModule(image_size, batch_size, num_workers=args.num_workers)
    else:
        data = HymenopteraDataModule(args.data_dir, image_size, batch_size, args.num_workers)
    data.prepare_data()
    return data


def classifier(parser: ArgumentParser, model_name: str, num_classes: int, **kwargs: Any) -> TransferClassifier:
    """The model, or a parser error that says what to change (an unknown model, weights offline, ...)."""
    try:
        return TransferClassifier(model_name, num_classes=num_classes, **kwargs)
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
        raise  # not reached: parser.error exits
