"""Typed access to what Lightning sets on a Trainer at run time without declaring it on the class.

``Trainer.callbacks``, ``Trainer.fast_dev_run`` and ``Trainer.datamodule`` are
assigned by Lightning's connectors, so a type checker cannot see them; reading
them here keeps that knowledge (and the ``type: ignore`` it needs) in one place.
"""

from __future__ import annotations

import lightning.pytorch as pl


def callbacks(trainer: pl.Trainer) -> list[pl.Callback]:
    """The Trainer's callbacks."""
    return trainer.callbacks  # type: ignore[attr-defined]  # set by Lightning's callback connector


def fast_dev_run(trainer: pl.Trainer) -> bool:
    """Whether the Trainer runs ``fast_dev_run`` (a smoke run of a few batches)."""
    return bool(trainer.fast_dev_run)  # type: ignore[attr-defined]  # set by Lightning's debugging flags


def datamodule(trainer: pl.Trainer) -> pl.LightningDataModule | None:
    """The datamodule given to ``fit``, or ``None``."""
    return trainer.datamodule  # type: ignore[attr-defined]  # set by Lightning's data connector
