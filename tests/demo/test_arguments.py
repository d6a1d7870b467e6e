"""Every argument of every demo class is checked when the object is built, as the callbacks' arguments are.

A bad value is a ``ValueError`` at construction whose message names the argument, repeats the value and says
what is accepted, instead of a NaN loss or an error deep inside torch later.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from lightning_onecycle.demo import (
    DigitsDataModule,
    HymenopteraDataModule,
    ImageFolderDataModule,
    TransferClassifier,
    ValidationHistory,
)

NAN, INF = math.nan, math.inf
POSITIVE = "a finite number > 0"
IMAGE_SIZE, BATCH_SIZE, NUM_WORKERS = "an integer >= 1", "an integer >= 1", "an integer >= 0"
FOLDER = "a folder path (str or os.PathLike)"

# (class, the bad argument and its value, what the message says is accepted)
CASES = [
    # TransferClassifier
    (TransferClassifier, {"model_name": 5}, "a model name (str)"),
    (TransferClassifier, {"model_name": None}, "a model name (str)"),
    (TransferClassifier, {"num_classes": 1}, "an integer >= 2"),
    (TransferClassifier, {"num_classes": 2.5}, "an integer >= 2"),
    (TransferClassifier, {"num_classes": True}, "an integer >= 2"),
    (TransferClassifier, {"num_classes": "10"}, "an integer >= 2"),
    (TransferClassifier, {"weights": 3}, "None, 'none', a torchvision weights name or a file path"),
    (TransferClassifier, {"weights": True}, "None, 'none', a torchvision weights name or a file path"),
    (TransferClassifier, {"freeze_backbone": "no"}, "True or False"),
    (TransferClassifier, {"freeze_backbone": 1}, "True or False"),
    (TransferClassifier, {"freeze_backbone": None}, "True or False"),
    (TransferClassifier, {"backbone_lr_ratio": 0}, f"None or {POSITIVE}"),
    (TransferClassifier, {"backbone_lr_ratio": NAN}, f"None or {POSITIVE}"),
    (TransferClassifier, {"backbone_lr_ratio": INF}, f"None or {POSITIVE}"),
    (TransferClassifier, {"backbone_lr_ratio": "0.1"}, f"None or {POSITIVE}"),
    (TransferClassifier, {"backbone_lr_ratio": True}, f"None or {POSITIVE}"),
    (TransferClassifier, {"lr": 0}, POSITIVE),
    (TransferClassifier, {"lr": -0.1}, POSITIVE),
    (TransferClassifier, {"lr": NAN}, POSITIVE),
    (TransferClassifier, {"lr": INF}, POSITIVE),
    (TransferClassifier, {"lr": "0.1"}, POSITIVE),
    (TransferClassifier, {"lr": True}, POSITIVE),
    (TransferClassifier, {"lr": None}, POSITIVE),
    (TransferClassifier, {"optimizer": "adam"}, "'sgd' or 'adamw'"),
    (TransferClassifier, {"optimizer": None}, "'sgd' or 'adamw'"),
    (TransferClassifier, {"momentum": 1.0}, "a number in [0, 1)"),
    (TransferClassifier, {"momentum": -0.1}, "a number in [0, 1)"),
    (TransferClassifier, {"momentum": NAN}, "a number in [0, 1)"),
    (TransferClassifier, {"momentum": "0.9"}, "a number in [0, 1)"),
    (TransferClassifier, {"momentum": True}, "a number in [0, 1)"),
    (TransferClassifier, {"weight_decay": -1e-4}, "a finite number >= 0"),
    (TransferClassifier, {"weight_decay": NAN}, "a finite number >= 0"),
    (TransferClassifier, {"weight_decay": INF}, "a finite number >= 0"),
    (TransferClassifier, {"weight_decay": "0"}, "a finite number >= 0"),
    (TransferClassifier, {"weight_decay": True}, "a finite number >= 0"),
    (TransferClassifier, {"step_lr": (0, 0.1)}, "None or (step_size, gamma)"),
    (TransferClassifier, {"step_lr": (2.5, 0.1)}, "None or (step_size, gamma)"),
    (TransferClassifier, {"step_lr": (True, 0.1)}, "None or (step_size, gamma)"),
    (TransferClassifier, {"step_lr": (7, 0)}, "None or (step_size, gamma)"),
    (TransferClassifier, {"step_lr": (7, NAN)}, "None or (step_size, gamma)"),
    (TransferClassifier, {"step_lr": (7, "0.1")}, "None or (step_size, gamma)"),
    (TransferClassifier, {"step_lr": (7,)}, "None or (step_size, gamma)"),
    (TransferClassifier, {"step_lr": (7, 0.1, 3)}, "None or (step_size, gamma)"),
    (TransferClassifier, {"step_lr": 7}, "None or (step_size, gamma)"),
    (TransferClassifier, {"step_lr": "7,0.1"}, "None or (step_size, gamma)"),
    # DigitsDataModule
    (DigitsDataModule, {"image_size": 0}, IMAGE_SIZE),
    (DigitsDataModule, {"image_size": 3.7}, IMAGE_SIZE),
    (DigitsDataModule, {"image_size": NAN}, IMAGE_SIZE),
    (DigitsDataModule, {"image_size": True}, IMAGE_SIZE),
    (DigitsDataModule, {"image_size": "32"}, IMAGE_SIZE),
    (DigitsDataModule, {"batch_size": 0}, BATCH_SIZE),
    (DigitsDataModule, {"batch_size": 2.5}, BATCH_SIZE),
    (DigitsDataModule, {"batch_size": True}, BATCH_SIZE),
    (DigitsDataModule, {"batch_size": None}, BATCH_SIZE),
    (DigitsDataModule, {"val_fraction": 0}, "a number in (0, 1)"),
    (DigitsDataModule, {"val_fraction": 1}, "a number in (0, 1)"),
    (DigitsDataModule, {"val_fraction": NAN}, "a number in (0, 1)"),
    (DigitsDataModule, {"val_fraction": "0.2"}, "a number in (0, 1)"),
    (DigitsDataModule, {"val_fraction": True}, "a number in (0, 1)"),
    (DigitsDataModule, {"test_fraction": -0.1}, "a number in [0, 1)"),
    (DigitsDataModule, {"test_fraction": 1}, "a number in [0, 1)"),
    (DigitsDataModule, {"test_fraction": NAN}, "a number in [0, 1)"),
    (DigitsDataModule, {"test_fraction": False}, "a number in [0, 1)"),
    (DigitsDataModule, {"seed": "x"}, "an integer in [0, 4294967295]"),
    (DigitsDataModule, {"seed": 1.5}, "an integer in [0, 4294967295]"),
    (DigitsDataModule, {"seed": True}, "an integer in [0, 4294967295]"),
    (DigitsDataModule, {"seed": -1}, "an integer in [0, 4294967295]"),
    (DigitsDataModule, {"seed": 2**32}, "an integer in [0, 4294967295]"),
    (DigitsDataModule, {"num_workers": -1}, NUM_WORKERS),
    (DigitsDataModule, {"num_workers": 1.5}, NUM_WORKERS),
    (DigitsDataModule, {"num_workers": True}, NUM_WORKERS),
    # ImageFolderDataModule (data_dir is required)
    (ImageFolderDataModule, {"data_dir": None}, FOLDER),
    (ImageFolderDataModule, {"data_dir": 123}, FOLDER),
    (ImageFolderDataModule, {"data_dir": ""}, FOLDER),
    (ImageFolderDataModule, {"data_dir": True}, FOLDER),
    (ImageFolderDataModule, {"image_size": 3.7}, IMAGE_SIZE),
    (ImageFolderDataModule, {"image_size": 0}, IMAGE_SIZE),
    (ImageFolderDataModule, {"batch_size": 2.5}, BATCH_SIZE),
    (ImageFolderDataModule, {"num_workers": 1.5}, NUM_WORKERS),
    # HymenopteraDataModule
    (HymenopteraDataModule, {"data_dir": 5}, FOLDER),
    (HymenopteraDataModule, {"data_dir": ""}, FOLDER),
    (HymenopteraDataModule, {"image_size": NAN}, IMAGE_SIZE),
    (HymenopteraDataModule, {"batch_size": True}, BATCH_SIZE),
    (HymenopteraDataModule, {"num_workers": -2}, NUM_WORKERS),
    # ValidationHistory (a callback of the comparison)
    (ValidationHistory, {"name": 5}, "a non-empty str"),
    (ValidationHistory, {"name": ""}, "a non-empty str"),
    (ValidationHistory, {"description": None}, "a str"),
    (ValidationHistory, {"acc_key": ""}, "a non-empty str"),
    (ValidationHistory, {"loss_key": 3}, "a non-empty str"),
]
REQUIRED = {
    TransferClassifier: {"model_name": "smallcnn", "num_classes": 10},
    DigitsDataModule: {},
    ImageFolderDataModule: {"data_dir": "data/somewhere"},
    HymenopteraDataModule: {},
    ValidationHistory: {"name": "run"},
}


@pytest.mark.parametrize(("cls", "bad", "accepted"), CASES, ids=lambda v: repr(v) if isinstance(v, dict) else None)
def test_a_bad_argument_is_a_value_error_naming_it_its_value_and_what_is_accepted(cls, bad, accepted) -> None:
    ((name, value),) = bad.items()
    with pytest.raises(ValueError) as err:
        cls(**{**REQUIRED[cls], **bad})
    message = str(err.value)
    assert f"`{name}`" in message, message
    assert repr(value) in message, message
    assert accepted in message, message


def test_every_argument_of_every_demo_class_is_in_the_table() -> None:
    import inspect

    covered = {(cls, name) for cls, bad, _ in CASES for name in bad}
    for cls in REQUIRED:
        for name in inspect.signature(cls.__init__).parameters:
            if name != "self":
                assert (cls, name) in covered, f"{cls.__name__}({name}=...) has no row in CASES"


def test_numpy_numbers_are_accepted_and_stored_as_plain_python_numbers() -> None:
    # Hyper-parameters go into checkpoints, which load with weights_only=True only as plain Python values.
    model = TransferClassifier(
        "smallcnn",
        num_classes=np.int64(10),
        lr=np.float32(0.5),
        momentum=np.float64(0.8),
        weight_decay=np.float32(0),
        backbone_lr_ratio=np.float32(0.5),
        step_lr=[np.int64(3), np.float32(0.5)],
    )
    hp = model.hparams
    assert (type(hp.num_classes), type(hp.lr), type(hp.momentum), type(hp.weight_decay)) == (int, float, float, float)
    assert hp.step_lr == (3, 0.5) and [type(v) for v in hp.step_lr] == [int, float]
    assert [g["lr"] for g in model.configure_optimizers()["optimizer"].param_groups] == [0.25, 0.5]
    data = DigitsDataModule(
        image_size=np.int64(8), batch_size=np.int32(16), val_fraction=np.float32(0.25), seed=np.int64(3)
    )
    assert [type(data.hparams[k]) for k in ("image_size", "batch_size", "val_fraction", "seed")] == [
        int,
        int,
        float,
        int,
    ]
    folder = ImageFolderDataModule(Path("data") / "x", image_size=np.int64(16))
    assert folder.hparams["data_dir"] == str(Path("data") / "x") and type(folder.hparams["image_size"]) is int


def test_good_values_still_build() -> None:
    assert TransferClassifier("smallcnn", num_classes=2, lr=1, momentum=0, weight_decay=0, step_lr=(7, 0.1))
    assert DigitsDataModule(image_size=8, batch_size=1, seed=2**32 - 1, num_workers=0, test_fraction=0)
