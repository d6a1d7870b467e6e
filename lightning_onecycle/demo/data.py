"""The example data: scikit-learn's digits (offline) and ImageFolder sets such as the tutorial's ants/bees.

:class:`DigitsDataModule` needs no network and no disk: 1797 8x8 digits bundled
with scikit-learn, upsampled to 3-channel images a torchvision network accepts.
:class:`ImageFolderDataModule` reads ``data_dir/train/<class>/*.jpg`` and
``data_dir/val/<class>/*.jpg`` (and ``data_dir/test/`` if there is one) with the
PyTorch transfer-learning tutorial's transforms; :class:`HymenopteraDataModule`
is that tutorial's ants/bees set, downloaded on first use.

``trainer.test`` and ``trainer.predict`` read the test split; a module without
one (the tutorial's ants/bees, digits with ``test_fraction=0``) reads the
validation split and warns that it does.
"""

from __future__ import annotations

import math
from http.client import HTTPException
from pathlib import Path
from urllib.error import URLError

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_warn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision import transforms
from torchvision.datasets import ImageFolder
from torchvision.datasets import utils as dataset_utils
from torchvision.datasets.folder import find_classes

from lightning_onecycle.demo import _arguments

_DIGITS = 1797  # images in scikit-learn's digits
_MAX_SEED = 2**32 - 1  # scikit-learn's random_state takes seeds in [0, 2**32 - 1]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DataDownloadError(RuntimeError):
    """A data set could not be downloaded (offline): the message names the folder to provide instead."""


class _TrainValDataModule(pl.LightningDataModule):
    """What the data modules share: image size, loader settings, train/val/test sets, their loaders."""

    def __init__(self, image_size: int, batch_size: int, num_workers: int) -> None:
        super().__init__()
        self.image_size = _arguments.integer("image_size", image_size, 1)
        self.batch_size = _arguments.integer("batch_size", batch_size, 1)
        self.num_workers = _arguments.integer("num_workers", num_workers, 0)
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    def _loader(self, dataset: Dataset | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}: call `setup()` before asking for a dataloader.")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        """The test split; the validation split, with a warning, when there is no test split."""
        return self._held_out_loader("testing")

    def predict_dataloader(self) -> DataLoader:
        """The test split's images (labels too, which ``predict_step`` ignores); else the validation split's."""
        return self._held_out_loader("predicting")

    def _held_out_loader(self, what: str) -> DataLoader:
        if self.test_set is None:
            rank_zero_warn(f"{type(self).__name__} has no test split: {what} on the validation split.")
            return self._loader(self.val_set, shuffle=False)
        return self._loader(self.test_set, shuffle=False)


class DigitsDataModule(_TrainValDataModule):
    """scikit-learn's 8x8 digits as normalised 3-channel ``image_size`` images, 10 classes.

    The splits are stratified and fixed by ``seed``; images are upsampled
    bilinearly and normalised with the mean and std of the training split
    (stored as ``mean`` and ``std`` after :meth:`setup`). The tensors are built
    once, in the first :meth:`setup`. With ``test_fraction > 0`` the test images
    are set aside first, then the validation images from the rest; with the
    default ``0`` the train/val split is the same as without a test split, and
    ``trainer.test`` tests on the validation split (with a warning).

    Args:
        image_size: side of the square images (8 keeps the originals).
        batch_size: samples per batch.
        val_fraction: share of the 1797 images held out for validation.
        seed: seed of the splits.
        num_workers: DataLoader worker processes.
        test_fraction: share of the 1797 images held out for ``trainer.test``.

    Raises:
        ValueError: on a bad argument (the message names it, its value and what is accepted).

    Example::

        >>> dm = DigitsDataModule(image_size=16, batch_size=8)
        >>> dm.setup("fit")
        >>> x, y = next(iter(dm.train_dataloader()))
        >>> tuple(x.shape), len(dm.train_set), len(dm.val_set), dm.num_classes
        ((8, 3, 16, 16), 1437, 360, 10)
        >>> dm = DigitsDataModule(val_fraction=0.2, test_fraction=0.2)
        >>> dm.setup("fit")
        >>> len(dm.train_set), len(dm.val_set), len(dm.test_set)
        (1077, 360, 360)
    """

    num_classes = 10

    def __init__(
        self,
        image_size: int = 32,
        batch_size: int = 64,
        val_fraction: float = 0.2,
        seed: int = 0,
        num_workers: int = 0,
        test_fraction: float = 0.0,
    ) -> None:
        super().__init__(image_size, batch_size, num_workers)
        val_fraction = _arguments.number("val_fraction", val_fraction, "a number in (0, 1)", lambda v: 0 < v < 1)
        test_fraction = _arguments.number("test_fraction", test_fraction, "a number in [0, 1)", lambda v: 0 <= v < 1)
        seed = _arguments.integer("seed", seed, 0, _MAX_SEED, why=" (scikit-learn's random_state)")
        if val_fraction + test_fraction >= 1:
            raise ValueError(
                f"Expected val_fraction + test_fraction < 1 (some images must be left to "
                f"train on), but got val_fraction={val_fraction} and test_fraction={test_fraction}."
            )
        sizes = self._split_sizes(val_fraction, test_fraction)
        small = {split: n for split, n in sizes.items() if n < self.num_classes and (n or split != "test")}
        if small:
            raise ValueError(
                f"val_fraction={val_fraction} and test_fraction={test_fraction} leave {sizes} of the {_DIGITS} images:"
                f" each split needs at least one image per class ({self.num_classes}), which {small} do not have."
                " Choose fractions that leave each split at least 10 images."
            )
        self.save_hyperparameters(
            {
                "image_size": self.image_size,
                "batch_size": self.batch_size,
                "val_fraction": val_fraction,
                "seed": seed,
                "num_workers": self.num_workers,
                "test_fraction": test_fraction,
            }
        )
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        self.seed = seed
        self.mean: float | None = None
        self.std: float | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        digits = load_digits()
        images = torch.as_tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
        if self.image_size != images.shape[-1]:
            images = F.interpolate(images, size=self.image_size, mode="bilinear", align_corners=False)
        labels = torch.as_tensor(digits.target, dtype=torch.long)
        sizes = self._split_sizes(self.val_fraction, self.test_fraction)
        rest_idx, test_idx = np.arange(len(labels)), None
        if sizes["test"]:
            rest_idx, test_idx = self._split(rest_idx, labels, sizes["test"])
        train_idx, val_idx = self._split(rest_idx, labels, sizes["val"])
        self.mean = images[train_idx].mean().item()
        self.std = images[train_idx].std().item()
        images = ((images - self.mean) / self.std).expand(-1, 3, -1, -1).contiguous()
        self.train_set = TensorDataset(images[train_idx], labels[train_idx])
        self.val_set = TensorDataset(images[val_idx], labels[val_idx])
        if test_idx is not None:
            self.test_set = TensorDataset(images[test_idx], labels[test_idx])

    @staticmethod
    def _split_sizes(val_fraction: float, test_fraction: float) -> dict[str, int]:
        """Images per split, rounded up for val and test as scikit-learn's ``train_test_split`` does."""
        test = math.ceil(test_fraction * _DIGITS) if test_fraction > 0 else 0
        val = math.ceil(val_fraction * _DIGITS)
        return {"train": _DIGITS - val - test, "val": val, "test": test}

    def _split(self, indices: np.ndarray, labels: torch.Tensor, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``indices`` split into (kept, ``count`` held out), stratified by label."""
        kept, held_out = train_test_split(
            indices, test_size=count, random_state=self.seed, stratify=labels.numpy()[indices]
        )
        return kept, held_out


class ImageFolderDataModule(_TrainValDataModule):
    """Images in ``data_dir/train/<class>/`` and ``data_dir/val/<class>/``, with the tutorial's transforms.

    Train: ``RandomResizedCrop(image_size)`` and ``RandomHorizontalFlip``; val
    and test: ``Resize(image_size * 256 / 224)`` and ``CenterCrop(image_size)``;
    all normalised with the ImageNet mean and std, as pretrained torchvision
    weights expect. A ``data_dir/test/`` folder, if there is one, is the test
    split; without it ``trainer.test`` tests on ``val/`` (with a warning).

    Args:
        data_dir: folder holding ``train/`` and ``val/`` (and optionally ``test/``),
            one sub-folder per class in each.
        image_size: side of the crops (224 in the tutorial; smaller for tests).
        batch_size: samples per batch.
        num_workers: DataLoader worker processes.

    Raises:
        FileNotFoundError: from :meth:`prepare_data`, :meth:`setup` or
            :attr:`num_classes` when ``data_dir``, its ``train/`` or its ``val/``
            is missing.
        ValueError: if ``train/``, ``val/`` (and ``test/``) have different classes,
            or on a bad argument (named in the message).

    Example::

        >>> dm = ImageFolderDataModule("data/hymenoptera_data", image_size=64)  # doctest: +SKIP
        >>> dm.setup("fit")  # doctest: +SKIP
        >>> dm.num_classes, dm.classes  # doctest: +SKIP
        (2, ['ants', 'bees'])
    """

    def __init__(
        self,
        data_dir: str | Path,
        image_size: int = 224,
        batch_size: int = 32,
        num_workers: int = 0,
    ) -> None:
        super().__init__(image_size, batch_size, num_workers)
        data_dir = _arguments.folder("data_dir", data_dir)  # a str: checkpoints must load with weights_only=True
        image_size = self.image_size  # checked: a plain int
        self.save_hyperparameters(
            {
                "data_dir": data_dir,
                "image_size": image_size,
                "batch_size": self.batch_size,
                "num_workers": self.num_workers,
            }
        )
        self.data_dir = Path(data_dir)
        normalize = transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)
        self.train_transform = transforms.Compose(
            [
                transforms.RandomResizedCrop(image_size),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                normalize,
            ]
        )
        self.val_transform = transforms.Compose(
            [
                transforms.Resize(round(image_size * 256 / 224)),
                transforms.CenterCrop(image_size),
                transforms.ToTensor(),
                normalize,
            ]
        )

    def _layout_hint(self) -> str:
        return f"expected {self.data_dir}/train/<class>/*.jpg and {self.data_dir}/val/<class>/*.jpg"

    def _check_layout(self) -> None:
        if not self.data_dir.is_dir():
            raise FileNotFoundError(f"Data folder {self.data_dir} does not exist: {self._layout_hint()}.")
        missing = [split for split in ("train", "val") if not (self.data_dir / split).is_dir()]
        if missing:
            raise FileNotFoundError(
                f"Data folder {self.data_dir} has no {' and no '.join(f'{m}/' for m in missing)} sub-folder: "
                f"{self._layout_hint()}."
            )

    @property
    def classes(self) -> list[str]:
        """Class names, sorted, from the ``train/`` sub-folders."""
        if isinstance(self.train_set, ImageFolder):
            return self.train_set.classes
        self._check_layout()
        return find_classes(self.data_dir / "train")[0]

    @property
    def num_classes(self) -> int:
        """Number of classes, from the ``train/`` sub-folders (readable before :meth:`setup`)."""
        return len(self.classes)

    def prepare_data(self) -> None:
        self._check_layout()

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        self._check_layout()
        train_set = ImageFolder(self.data_dir / "train", transform=self.train_transform)
        evaluated = {"val": ImageFolder(self.data_dir / "val", transform=self.val_transform)}
        if (self.data_dir / "test").is_dir():
            evaluated["test"] = ImageFolder(self.data_dir / "test", transform=self.val_transform)
        for split, dataset in evaluated.items():
            if dataset.classes != train_set.classes:
                raise ValueError(
                    f"{self.data_dir}/train and {self.data_dir}/{split} must have the same class folders, "
                    f"but got {train_set.classes} and {dataset.classes}."
                )
        self.train_set, self.val_set, self.test_set = train_set, evaluated["val"], evaluated.get("test")


class HymenopteraDataModule(ImageFolderDataModule):
    """The PyTorch transfer-learning tutorial's ants and bees (244 train, 153 val images).

    :meth:`prepare_data` downloads and unzips :attr:`URL` when ``data_dir`` does
    not exist yet.

    Args:
        data_dir: where the unzipped ``hymenoptera_data`` folder is or goes.
        image_size: side of the crops (224 in the tutorial).
        batch_size: samples per batch.
        num_workers: DataLoader worker processes.

    Raises:
        DataDownloadError: (a ``RuntimeError``) from :meth:`prepare_data` if the
            download fails (offline); the message names the folder to provide and its layout.

    Example::

        >>> dm = HymenopteraDataModule(image_size=64)  # doctest: +SKIP
        >>> dm.prepare_data()  # downloads 45 MB once  # doctest: +SKIP
    """

    URL = "https://download.pytorch.org/tutorial/hymenoptera_data.zip"

    def __init__(
        self,
        data_dir: str | Path = "data/hymenoptera_data",
        image_size: int = 224,
        batch_size: int = 32,
        num_workers: int = 0,
    ) -> None:
        super().__init__(data_dir, image_size=image_size, batch_size=batch_size, num_workers=num_workers)

    def prepare_data(self) -> None:
        if not self.data_dir.exists():
            self._download()
        super().prepare_data()

    def _download(self) -> None:
        root = self.data_dir.parent
        archive = root / Path(self.URL).name
        try:
            dataset_utils.download_and_extract_archive(self.URL, download_root=str(root))
        except (URLError, HTTPException, OSError) as err:
            # A partial zip would pass torchvision's md5-less integrity check next time.
            archive.unlink(missing_ok=True)
            raise DataDownloadError(
                f"Could not download the ants/bees data from {self.URL} ({err}): this machine seems to be "
                f"offline. Download and unzip it elsewhere, then provide the folder {self.data_dir} with the "
                f"layout {self.data_dir}/train/{{ants,bees}}/*.jpg and {self.data_dir}/val/{{ants,bees}}/*.jpg "
                "(or point data_dir, `--data-dir` in examples/fit.py, at such a folder)."
            ) from err
        archive.unlink(missing_ok=True)
        extracted = root / "hymenoptera_data"
        if extracted != self.data_dir:
            extracted.rename(self.data_dir)
