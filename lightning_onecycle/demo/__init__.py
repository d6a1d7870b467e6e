"""Demo models, data and comparison reporting for the examples, tests and benchmarks (not the core API).

Needs the ``examples`` extra (``pip install "lightning-onecycle[examples]"``):
torchvision for :class:`TransferClassifier` and the image data modules,
scikit-learn for :class:`DigitsDataModule`.
"""

from lightning_onecycle.demo.classifier import TransferClassifier
from lightning_onecycle.demo.data import DigitsDataModule, HymenopteraDataModule, ImageFolderDataModule
from lightning_onecycle.demo.reporting import RunHistory, ValidationHistory, plot_comparison, write_comparison

__all__ = [
    "DigitsDataModule",
    "HymenopteraDataModule",
    "ImageFolderDataModule",
    "RunHistory",
    "TransferClassifier",
    "ValidationHistory",
    "plot_comparison",
    "write_comparison",
]
