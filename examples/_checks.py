"""Checks of the examples' flags that a jsonargparse type cannot express, shared by fit.py and compare.py."""

from __future__ import annotations

from typing import Any

from jsonargparse import ArgumentParser

MIN_RANGE_TEST_STEPS = 10  # fewer leave nothing to suggest from


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
    """The range test's flags: an lr range that rises and enough steps to suggest from."""
    if args.range_test_min_lr >= args.range_test_max_lr:
        parser.error(
            f"--range-test-min-lr ({args.range_test_min_lr}) must be below --range-test-max-lr"
            f" ({args.range_test_max_lr})."
        )
    if args.range_test_steps < MIN_RANGE_TEST_STEPS:
        parser.error(f"--range-test-steps must be at least {MIN_RANGE_TEST_STEPS}, but got {args.range_test_steps}.")
