"""What fit.py and compare.py share: their common flags (one definition each), the data, the model, the range test.

Each ``add_*`` function adds one group of flags to a jsonargparse parser; the
scripts add their own flags beside them. The checks here are those a flag's type
cannot express and the callbacks cannot make (they do not know the flags' names).

Expected failures end as the parser's own errors do: one line that names the flag
to change, exit code 2. They are those the flags cause: a device setting this
machine cannot run, a model that cannot take the image size, weights or data that
cannot be downloaded, a setting the Trainer or the callbacks refuse once they see
the model and the data (a ``MisconfigurationException``, or a ``ValueError`` from
this package's own checks). Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import re
import shutil
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Literal, NoReturn

import lightning.pytorch as pl
import torch
from jsonargparse import ActionConfigFile, ArgumentParser
from jsonargparse.typing import NonNegativeInt, PositiveFloat, PositiveInt
from lightning.pytorch.accelerators import CUDAAccelerator, MPSAccelerator, XLAAccelerator
from lightning.pytorch.utilities.exceptions import MisconfigurationException

import lightning_onecycle
from lightning_onecycle import AUTO, DEFAULT_STRATEGY, STRATEGIES, LRRangeTestCallback, RangeTestResult
from lightning_onecycle.demo import DigitsDataModule, HymenopteraDataModule, TransferClassifier
from lightning_onecycle.demo.classifier import WeightsError
from lightning_onecycle.demo.data import DataDownloadError
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


def range_test_plot(folder: Path) -> Path | None:
    """The newest range-test plot under ``folder`` (a second test in one folder gets a new name), if any."""
    plots = list(folder.rglob("lr_range_test*.png")) if folder.is_dir() else []
    return max(plots, key=lambda path: path.stat().st_mtime) if plots else None


def machine_conditions() -> str:
    """What wall times depend on besides the work: torch's CPU threads and how busy the machine is."""
    load = f", 1-minute load average {os.getloadavg()[0]:.1f} (about 0 when idle)" if hasattr(os, "getloadavg") else ""
    return f"torch.get_num_threads() = {torch.get_num_threads()}{load}"


def range_test_summary(result: RangeTestResult, total_s: float, of: str, folder: Path) -> str:
    """One line of a script's summary: the sweep's length, its cost as a share of ``of``, the flag, the plot."""
    seconds = result.seconds
    cost = f" in {seconds:.1f} s, {seconds / total_s:.0%} of {of} {total_s:.1f} s" if seconds is not None else ""
    return (
        f"LR range test: {result.num_steps_run} steps{cost} (--range-test-steps sets its length);"
        f" plot: {range_test_plot(folder)}"
    )


def data_module(
    parser: ArgumentParser, args: Any, image_size: int, batch_size: int
) -> DigitsDataModule | HymenopteraDataModule:
    """The dataset the flags name, prepared (the ants and bees are downloaded once; their folders give the classes)."""
    data: DigitsDataModule | HymenopteraDataModule
    if args.dataset == "digits":
        data = DigitsDataModule(image_size, batch_size, num_workers=args.num_workers)
        data.prepare_data()
        return data
    data = HymenopteraDataModule(args.data_dir, image_size, batch_size, args.num_workers)
    try:
        data.prepare_data()
    except (FileNotFoundError, DataDownloadError) as err:  # a folder without train/ and val/, or offline
        error(parser, f"--data-dir {args.data_dir}: {err}")
    return data


def classifier(
    parser: ArgumentParser, model_name: str, num_classes: int, image_size: int, **kwargs: Any
) -> TransferClassifier:
    """The model, or a parser error that says what to change (an unknown model, weights offline, ...).

    One forward pass of a blank batch checks that the model takes ``image_size``
    (the small CNN needs 4 pixels, a ViT exactly its own size) before any run starts.
    """
    try:
        model = TransferClassifier(model_name, num_classes=num_classes, **kwargs)
    except (ValueError, FileNotFoundError, WeightsError) as err:
        error(parser, in_flag_terms(str(err), parser))
    training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(2, 3, image_size, image_size))  # eval: no batch-norm statistics move
    except (RuntimeError, ValueError, AssertionError) as err:  # what torch and torchvision raise on a bad size
        error(parser, f"--image-size {image_size} does not fit --model {model_name}: {err}")
    finally:
        model.train(training)
    return model


# --- expected failures -------------------------------------------------------------------------------

# Flags by the names the Trainer's and the callbacks' messages give their settings (see in_flag_terms). The range
# test's max_lr is the end of its sweep, not the schedule's peak.
_FLAGS = {
    "limit_train_batches": "--limit-train-batches",
    "limit_val_batches": "--limit-val-batches",
    "max_epochs": "--max-epochs",
    "log_every_n_steps": "--log-every-n-steps",
    "num_steps": "--range-test-steps",
    "min_lr": "--range-test-min-lr",
    "max_lr": "--max-lr",
    "step_size_up": "--clr-step-epochs",
    "backbone_lr_ratio": "--backbone-lr-ratio",
    "freeze_backbone": "--freeze-backbone",
    "weight_decay": "--weight-decay",
    "accelerator": "--accelerator",
    "devices": "--devices",
    "strategy": "--strategy",
    "precision": "--precision",
}
_RANGE_TEST_FLAGS = {**_FLAGS, "max_lr": "--range-test-max-lr", "suggestion": "--suggestion"}
_PACKAGE = Path(lightning_onecycle.__file__).resolve().parent
_DEVICES: dict[str, tuple[str, Callable[[], bool]]] = {
    "gpu": ("GPU (CUDA or MPS)", lambda: CUDAAccelerator.is_available() or MPSAccelerator.is_available()),
    "cuda": ("CUDA GPU", CUDAAccelerator.is_available),
    "mps": ("Apple GPU (MPS)", MPSAccelerator.is_available),
    "tpu": ("TPU", XLAAccelerator.is_available),
}


def in_flag_terms(message: str, parser: ArgumentParser | None = None) -> str:
    """``message`` with the argument names it mentions replaced by the example flags that set them.

    Names with an underscore are replaced wherever they stand; one-word names
    (``accelerator``...) only where the message quotes them as code. In the range
    test's messages ``max_lr`` is the sweep's end, ``--range-test-max-lr``, unless
    they say "the schedule's max_lr"; elsewhere the schedule's peak, ``--max-lr``.
    ``name=value`` becomes ``--flag value``. With the script's ``parser``, a name
    whose flag the script lacks stays as it is (compare.py has no ``--max-lr``).
    """
    flags = _RANGE_TEST_FLAGS if message.startswith("LRRangeTestCallback") else _FLAGS
    options = None if parser is None else _options(parser)
    flags = {name: flag for name, flag in flags.items() if options is None or flag in options}
    peak = _FLAGS["max_lr"] if options is None or _FLAGS["max_lr"] in options else None
    snake = "|".join(name for name in flags if "_" in name) or "(?!)"  # (?!) matches nothing
    words = "|".join(name for name in flags if "_" not in name) or "(?!)"
    code_like = rf"(?<=the schedule's )(?P<peak>max_lr)(?!\w)|(?<![\w-])(?P<snake>{snake})(?!\w)"
    code_like += rf"|(?<=`)(?P<word>{words})(?=[`=])"

    def flag(match: re.Match[str]) -> str:
        name = peak if match["peak"] else flags[match["snake"] or match["word"]]
        if name is None:  # the script has no flag for the schedule's peak
            return match[0]
        return f"{name} " if match["equals"] else name

    return re.sub(rf"(?:{code_like})(?P<equals>=)?", flag, message)


def _options(parser: ArgumentParser) -> set[str]:
    """The script's flags (``--max-lr``...): argparse's table of them, which jsonargparse's parser keeps too."""
    return set(parser._option_string_actions)


def error(parser: ArgumentParser, message: str) -> NoReturn:
    """The parser's error (usage, then ``error: message`` on one line) and exit code 2."""
    parser.error(" ".join(message.split()))
    raise AssertionError("not reached: parser.error exits")


def check_accelerator(parser: ArgumentParser, accelerator: str) -> None:
    """An accelerator this machine lacks, named by its flag before Lightning fails on it."""
    if accelerator in _DEVICES and not _DEVICES[accelerator][1]():
        error(
            parser,
            f"--accelerator {accelerator}: this machine has no {_DEVICES[accelerator][0]} that torch can use. Run with"
            " --accelerator cpu, or --accelerator auto (the best device there is).",
        )


def trainer(parser: ArgumentParser, **kwargs: Any) -> pl.Trainer:
    """``pl.Trainer(**kwargs)``, or one line naming the device flags it refuses (an unknown precision...)."""
    try:
        return pl.Trainer(**kwargs)
    except (MisconfigurationException, ValueError) as err:  # the Trainer's checks of its arguments
        settings = ", ".join(f"--{key} {kwargs[key]}" for key in ("accelerator", "devices", "strategy", "precision")
                             if key in kwargs and f"--{key}" in _options(parser))  # fmt: skip
        error(parser, f"{in_flag_terms(str(err), parser)} (the Trainer got {settings})")


@contextmanager
def warnings_in_flag_terms(parser: ArgumentParser | None = None) -> Iterator[None]:
    """While a script runs, the callbacks' warnings name the flags (``num_steps`` is ``--range-test-steps``)
    that the script (its ``parser``) has."""
    show = warnings.showwarning

    def show_in_flag_terms(message: Any, category: Any, filename: str, lineno: int, *args: Any) -> None:
        if _in_package(filename):
            message = in_flag_terms(str(message), parser)
        show(message, category, filename, lineno, *args)

    warnings.showwarning = show_in_flag_terms
    try:
        yield
    finally:
        warnings.showwarning = show


@contextmanager
def one_line_errors(parser: ArgumentParser, run_dir: Path) -> Iterator[None]:
    """Around a script's runs: an expected failure becomes one line naming the flags; a half-written run goes.

    The callbacks' warnings name the flags too (:func:`warnings_in_flag_terms`).

    ``run_dir`` (the run's folder, made by its logger when the fit starts) is removed
    if this script created it, unless it holds a finished range test: the sweep may
    have cost minutes, and the line says where its plot is.
    """
    made = [folder for folder in (run_dir, *run_dir.parents) if not folder.exists()]  # by this run, if it fails
    try:
        with warnings_in_flag_terms(parser):
            yield
    except SystemExit:  # a parser error from a check inside
        _tidy(run_dir, made)
        raise
    except Exception as err:
        if not isinstance(err, MisconfigurationException) and not (isinstance(err, ValueError) and _raised_here(err)):
            raise  # a bug: keep the traceback
        plot = _tidy(run_dir, made)
        error(parser, in_flag_terms(str(err), parser) + (f" The range test's plot: {plot}" if plot else ""))


def suggested_lr(result: RangeTestResult, instead: str = "") -> float:
    """The range test's suggestion; without one, an error that :func:`one_line_errors` turns into one line.

    ``instead`` ends the message: another way to the LR, such as ``", or pass --max-lr"``.
    """
    if result.suggested_lr is None:
        raise MisconfigurationException(
            f"The LR range test suggested no LR ({result.stop_reason} after {result.num_steps_run} steps): run more"
            f" steps (--range-test-steps) or widen it (--range-test-min-lr, --range-test-max-lr){instead}."
        )
    return result.suggested_lr


def _tidy(run_dir: Path, made: list[Path]) -> Path | None:
    """The plot of a finished range test in ``run_dir``; without one, the folders this run made are removed."""
    plot = range_test_plot(run_dir)
    if plot is None and made:
        shutil.rmtree(run_dir, ignore_errors=True)
        for parent in made[1:]:
            with suppress(OSError):  # not empty: another run writes there now
                parent.rmdir()
    return plot


def _in_package(filename: str) -> bool:
    return Path(filename).resolve().is_relative_to(_PACKAGE)


def _raised_here(err: BaseException) -> bool:
    """Whether this package raised ``err`` itself (its checks), rather than torch or Python deeper down."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and _in_package(tb.tb_frame.f_code.co_filename)
