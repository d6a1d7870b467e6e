from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torchvision.datasets.utils
from PIL import Image

from lightning_onecycle.demo.data import (
    IMAGENET_MEAN,
    DigitsDataModule,
    HymenopteraDataModule,
    ImageFolderDataModule,
)


def _make_image_folder(root: Path, classes=("ants", "bees"), per_split=None) -> Path:
    """JPEGs of different sizes, a different colour per class, in root/{train,val}/<class>/."""
    per_split = per_split or {"train": 3, "val": 2}
    for split, count in per_split.items():
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                colour = (200 * label, 100, 50 + 40 * i)
                Image.new("RGB", (40 + 7 * i, 30 + 5 * label), colour).save(folder / f"{i}.jpg")
    return root


def test_digits_shapes_dtypes_and_split_sizes():
    dm = DigitsDataModule(image_size=32, batch_size=16)
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))

    assert (x.shape, x.dtype, y.shape, y.dtype) == ((16, 3, 32, 32), torch.float32, (16,), torch.int64)
    assert (len(dm.train_set), len(dm.val_set)) == (1437, 360)
    assert dm.num_classes == 10
    assert set(dm.val_set.tensors[1].tolist()) == set(range(10))
    assert len(dm.val_dataloader()) == 23


def test_digits_split_is_fixed_by_the_seed():
    a, b, c = DigitsDataModule(seed=1), DigitsDataModule(seed=1), DigitsDataModule(seed=2)
    for dm in (a, b, c):
        dm.setup("fit")

    assert torch.equal(a.val_set.tensors[0], b.val_set.tensors[0])
    assert torch.equal(a.val_set.tensors[1], b.val_set.tensors[1])
    assert not torch.equal(a.val_set.tensors[1], c.val_set.tensors[1])
    first = a.train_set
    a.setup("validate")
    assert a.train_set is first  # tensors are built once


def test_digits_are_normalised_with_training_statistics():
    dm = DigitsDataModule(image_size=8)
    dm.setup("fit")
    train = dm.train_set.tensors[0]

    assert train.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert train.std().item() == pytest.approx(1.0, abs=1e-4)
    assert torch.equal(train[:, 0], train[:, 2])
    # 8x8 originals are 0..16 counts: pixel value 0 maps to -mean/std.
    assert train.min().item() == pytest.approx(-dm.mean / dm.std, abs=1e-5)
    assert 0.2 < dm.mean < 0.4


def test_digits_test_split_is_disjoint_and_stratified():
    without = DigitsDataModule(image_size=8, seed=3)
    with_test = DigitsDataModule(image_size=8, seed=3, val_fraction=0.2, test_fraction=0.25)
    without.setup("fit")
    with_test.setup("test")

    assert without.test_set is None
    assert (len(with_test.train_set), len(with_test.val_set), len(with_test.test_set)) == (987, 360, 450)
    splits = (with_test.train_set, with_test.val_set, with_test.test_set)
    train, val, test = ({tuple(x.flatten().tolist()) for x, _ in split} for split in splits)
    assert not (train & val or train & test or val & test)
    test_counts = torch.bincount(with_test.test_set.tensors[1], minlength=10)
    assert test_counts.min() >= 43 and test_counts.max() <= 47  # 45 per class, give or take rounding


def test_test_loader_reads_the_test_split_or_warns_and_reads_val(tmp_path):
    digits = DigitsDataModule(image_size=8, batch_size=500, test_fraction=0.1)
    digits.setup("test")
    assert len(next(iter(digits.test_dataloader()))[1]) == len(digits.test_set) == 180

    no_test = DigitsDataModule(image_size=8, batch_size=500)
    no_test.setup("test")
    with pytest.warns(UserWarning, match="DigitsDataModule has no test split: testing on the validation split"):
        loader = no_test.test_dataloader()
    assert torch.equal(next(iter(loader))[1], no_test.val_set.tensors[1])

    root = _make_image_folder(tmp_path / "imgs", per_split={"train": 2, "val": 1, "test": 3})
    folder = ImageFolderDataModule(root, image_size=16, batch_size=8)
    folder.setup("test")
    assert next(iter(folder.test_dataloader()))[1].tolist() == [0, 0, 0, 1, 1, 1]


def test_image_folder_test_classes_must_match(tmp_path):
    root = _make_image_folder(tmp_path / "imgs", per_split={"train": 1, "val": 1})
    _make_image_folder(root, classes=("ants",), per_split={"test": 1})

    with pytest.raises(ValueError, match=r"train and .*/test must have the same class folders"):
        ImageFolderDataModule(root, image_size=16).setup("test")


def test_digits_rejects_fractions_that_leave_too_few_images():
    # Each argument alone is checked in test_arguments.py; these are the combinations.
    with pytest.raises(ValueError, match="val_fraction=0.5 and test_fraction=0.5"):
        DigitsDataModule(val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match=r"leave \{'train': 8, 'val': 899, 'test': 890\}.*which \{'train': 8\}"):
        DigitsDataModule(val_fraction=0.5, test_fraction=0.495)
    with pytest.raises(ValueError, match=r"which \{'test': 2\} do not have"):
        DigitsDataModule(test_fraction=0.001)


def test_image_folder_batches_and_classes(tmp_path):
    root = _make_image_folder(tmp_path / "imgs")
    dm = ImageFolderDataModule(root, image_size=24, batch_size=4)

    assert dm.num_classes == 2  # read from the folder, before setup
    dm.prepare_data()
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    vx, vy = next(iter(dm.val_dataloader()))

    assert (x.shape, x.dtype, y.dtype) == ((4, 3, 24, 24), torch.float32, torch.int64)
    assert (vx.shape, vy.tolist()) == ((4, 3, 24, 24), [0, 0, 1, 1])
    assert (len(dm.train_set), len(dm.val_set), dm.classes) == (6, 4, ["ants", "bees"])
    # Val images are plain colours: after ImageNet normalisation the red channel of
    # class 0 (red = 0) is -mean/std everywhere (JPEG may shift a level or two).
    assert vx[0, 0].mean().item() == pytest.approx(-IMAGENET_MEAN[0] / 0.229, abs=0.05)


@pytest.mark.parametrize(
    ("splits", "message"),
    [
        (None, "does not exist"),
        (("train",), "has no val/ sub-folder"),
        ((), "has no train/ and no val/ sub-folder"),
    ],
)
def test_image_folder_layout_errors(tmp_path, splits, message):
    root = tmp_path / "data"
    if splits is not None:
        root.mkdir()
        for split in splits:
            (root / split / "a").mkdir(parents=True)
    dm = ImageFolderDataModule(root, image_size=16)

    for step in (dm.prepare_data, lambda: dm.setup("fit"), lambda: dm.num_classes):
        with pytest.raises(FileNotFoundError, match=message) as err:
            step()
        assert f"expected {root}/train/<class>/*.jpg and {root}/val/<class>/*.jpg" in str(err.value)


def test_image_folder_train_and_val_classes_must_match(tmp_path):
    root = _make_image_folder(tmp_path / "imgs", per_split={"train": 1})
    _make_image_folder(root, classes=("ants", "wasps"), per_split={"val": 1})

    with pytest.raises(ValueError, match=r"same class folders, but got \['ants', 'bees'\] and \['ants', 'wasps'\]"):
        ImageFolderDataModule(root, image_size=16).setup("fit")


def _offline(*args, **kwargs):
    raise URLError("[Errno -3] Temporary failure in name resolution")


def test_hymenoptera_offline_names_the_folder_to_provide(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", _offline)
    data_dir = tmp_path / "data" / "hymenoptera_data"
    dm = HymenopteraDataModule(data_dir, image_size=16)

    with pytest.raises(RuntimeError) as err:
        dm.prepare_data()

    message = str(err.value)
    assert (
        "Could not download the ants/bees data from https://download.pytorch.org/tutorial/hymenoptera_data.zip"
        in message
    )
    assert "seems to be offline" in message
    assert f"{data_dir}/train/{{ants,bees}}/*.jpg and {data_dir}/val/{{ants,bees}}/*.jpg" in message
    assert not (tmp_path / "data" / "hymenoptera_data.zip").exists()


def test_hymenoptera_uses_an_existing_folder_without_downloading(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", _offline)
    dm = HymenopteraDataModule(_make_image_folder(tmp_path / "hymenoptera_data"), image_size=16, batch_size=2)

    dm.prepare_data()
    dm.setup("fit")

    assert (dm.num_classes, len(dm.train_set)) == (2, 6)
    assert type(dm.hparams.data_dir) is str  # checkpoints must load with weights_only=True


def test_hymenoptera_download_lands_in_data_dir(tmp_path, monkeypatch):
    def fake_download(url, download_root, **kwargs):
        assert url == HymenopteraDataModule.URL
        _make_image_folder(Path(download_root) / "hymenoptera_data")

    monkeypatch.setattr(torchvision.datasets.utils, "download_and_extract_archive", fake_download)
    dm = HymenopteraDataModule(tmp_path / "sets" / "ants_bees", image_size=16)

    dm.prepare_data()

    assert dm.classes == ["ants", "bees"]
    assert sorted(p.name for p in (tmp_path / "sets").iterdir()) == ["ants_bees"]
