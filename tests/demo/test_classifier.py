import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.error import URLError

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
import torchvision

from lightning_onecycle.demo.classifier import TransferClassifier
from lightning_onecycle.demo.data import DigitsDataModule


def _trainer(**kwargs) -> pl.Trainer:
    defaults = dict(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    return pl.Trainer(**{**defaults, **kwargs})


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """smallcnn trained 2 epochs on digits, and a Lightning checkpoint of it."""
    pl.seed_everything(0)
    model = TransferClassifier("smallcnn", num_classes=10, lr=0.05)
    trainer = _trainer(max_epochs=2)
    trainer.fit(model, DigitsDataModule(image_size=16, batch_size=32))
    ckpt = tmp_path_factory.mktemp("ckpt") / "digits.ckpt"
    trainer.save_checkpoint(ckpt)
    return trainer, model, ckpt


def test_fit_on_digits_logs_metrics_and_beats_chance(fitted):
    trainer, _, _ = fitted
    metrics = trainer.callback_metrics
    assert {"train_loss", "train_loss_step", "train_loss_epoch", "train_acc", "val_loss", "val_acc"} <= metrics.keys()
    assert metrics["val_acc"] > 0.5
    assert metrics["train_loss_epoch"] < 2.0  # chance is ln(10) = 2.30


def test_test_and_predict_report_on_the_test_split(fitted):
    _, model, _ = fitted
    data = DigitsDataModule(image_size=16, batch_size=32, test_fraction=0.1)  # the val split now lies in the test
    data.setup("test")
    results = _trainer().test(model, datamodule=data, verbose=False)
    probabilities = torch.cat(_trainer().predict(model, datamodule=data))

    labels = data.test_set.tensors[1]
    assert probabilities.shape == (len(labels), 10)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(len(labels)))
    accuracy = (probabilities.argmax(dim=1) == labels).float().mean().item()
    assert results[0]["test_acc"] == pytest.approx(accuracy, abs=1e-6)
    model.eval()
    with torch.no_grad():
        expected_loss = F.cross_entropy(model(data.test_set.tensors[0]), labels).item()
    assert results[0]["test_loss"] == pytest.approx(expected_loss, rel=1e-5)


def test_weights_from_a_lightning_checkpoint(fitted):
    _, model, ckpt = fitted
    loaded = TransferClassifier("smallcnn", num_classes=10, weights=ckpt)
    _assert_same(loaded.model.state_dict(), model.model.state_dict())


@pytest.mark.parametrize("layout", ["raw", "state_dict_with_model_prefix", "model_key_with_module_prefix"])
def test_weights_from_a_local_file(tmp_path, layout):
    source = TransferClassifier("smallcnn", num_classes=10).model.state_dict()
    payload = {
        "raw": source,
        "state_dict_with_model_prefix": {"state_dict": {f"model.{k}": v for k, v in source.items()}, "epoch": 3},
        "model_key_with_module_prefix": {"model": {f"module.{k}": v for k, v in source.items()}},
    }[layout]
    path = tmp_path / "w.pth"
    torch.save(payload, path)

    model = TransferClassifier("smallcnn", num_classes=10, weights=path)
    fresh = TransferClassifier("smallcnn", num_classes=10).model.state_dict()

    _assert_same(model.model.state_dict(), source)
    assert not torch.equal(fresh["features.0.weight"], source["features.0.weight"])
    # Saved as a str: a Path would make Lightning checkpoints fail to load with weights_only=True.
    assert model.hparams.weights == str(path) and type(model.hparams.weights) is str


def test_weights_file_with_another_head_loads_the_backbone_only(tmp_path, caplog):
    source = TransferClassifier("smallcnn", num_classes=1000).model.state_dict()
    torch.save(source, tmp_path / "imagenet.pth")

    with caplog.at_level(logging.INFO):
        loaded = TransferClassifier("smallcnn", num_classes=10, weights=tmp_path / "imagenet.pth").model.state_dict()

    _assert_same(
        {k: v for k, v in loaded.items() if not k.startswith("fc.")},
        {k: v for k, v in source.items() if not k.startswith("fc.")},
    )
    assert loaded["fc.weight"].shape == (10, 64)
    assert "head 'fc' stays new" in caplog.text
    assert "fc.weight: file (1000, 64) vs model (10, 64)" in caplog.text


def test_weights_file_that_does_not_fit_names_keys_and_shapes(tmp_path):
    state = TransferClassifier("smallcnn", num_classes=10).model.state_dict()
    del state["features.0.weight"]
    state["extra.weight"] = torch.zeros(3)
    state["features.4.weight"] = torch.zeros(7, 16, 3, 3)
    torch.save(state, tmp_path / "bad.pth")

    with pytest.raises(RuntimeError) as err:
        TransferClassifier("smallcnn", num_classes=10, weights=tmp_path / "bad.pth")

    message = str(err.value)
    assert "1 missing keys (features.0.weight)" in message
    assert "1 unexpected keys (extra.weight)" in message
    assert "features.4.weight: file (7, 16, 3, 3) vs model (32, 16, 3, 3)" in message


@pytest.mark.parametrize(
    "name, kwargs, error, message",
    [
        ("smallcnn", {"weights": "missing.pth"}, FileNotFoundError, "No weights file at .* Pass weights=None"),
        ("smallcnn", {"weights": "DEFAULT"}, ValueError, "'smallcnn' has no named weights"),
        ("resnet18", {"weights": "IMAGENET9K"}, ValueError, r"Unknown weights 'IMAGENET9K' for 'resnet18': choose"),
        ("resnet81", {}, ValueError, "Did you mean 'resnet18'"),
        ("resnet81", {"weights": "DEFAULT"}, ValueError, "Did you mean 'resnet18'"),  # the model before its weights
        ("resnet50", {"weights": "ResNet18_Weights.IMAGENET1K_V1"}, ValueError, "are the weights of another model"),
        ("resnet18", {"weights": "ResNet18_Weights.IMAGENET9K"}, ValueError, "Unknown weights 'ResNet18_Weights"),
        ("smallcnn", {"weights": "no_weights.pth"}, RuntimeError, r"No state_dict in .*found \['epoch', 'optimizer'\]"),
    ],
)
def test_weights_and_names_errors(tmp_path, monkeypatch, name, kwargs, error, message):
    monkeypatch.chdir(tmp_path)
    torch.save({"epoch": 3, "optimizer": {}}, tmp_path / "no_weights.pth")
    with pytest.raises(error, match=message):
        TransferClassifier(name, **{"num_classes": 10, **kwargs})


def test_named_weights_offline_say_how_to_proceed(tmp_path, monkeypatch):
    # torchvision binds torch.hub.load_state_dict_from_url at import, so cut the wire below it;
    # an empty TORCH_HOME makes sure no cached file answers instead.
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)

    with pytest.raises(RuntimeError) as err:
        TransferClassifier("resnet18", num_classes=2, weights="DEFAULT")

    message = str(err.value)
    assert "Downloading the torchvision weights ResNet18_Weights.IMAGENET1K_V1 for 'resnet18' failed" in message
    assert "seems to be offline" in message
    assert "--weights path/to/file.pth" in message
    assert "--weights none" in message


def test_named_weights_from_the_hub_cache_get_a_new_head(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    cached = tmp_path / "hub" / "checkpoints" / url.rsplit("/", 1)[1]
    cached.parent.mkdir(parents=True)
    pretrained = torchvision.models.resnet18().state_dict()
    torch.save(pretrained, cached)

    model = TransferClassifier("resnet18", num_classes=2, weights="IMAGENET1K_V1")

    loaded = model.model.state_dict()
    assert torch.equal(loaded["conv1.weight"], pretrained["conv1.weight"])
    assert torch.equal(loaded["layer4.1.bn2.running_var"], pretrained["layer4.1.bn2.running_var"])
    assert model.head_name == "fc" and model.head.weight.shape == (2, 512)


def test_head_is_found_in_a_classifier_sequential_or_an_error_says_where_it_looked():
    model = TransferClassifier("mobilenet_v3_small", num_classes=5)
    assert model.head_name == "classifier.3"
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
    with pytest.raises(ValueError, match="Cannot find the classifier head of 'squeezenet1_1'"):
        TransferClassifier("squeezenet1_1", num_classes=5)


def test_frozen_backbone_does_not_move_during_training():
    pl.seed_everything(0)
    model = TransferClassifier("smallcnn", num_classes=10, freeze_backbone=True, lr=0.1)
    before = {k: v.clone() for k, v in model.model.state_dict().items()}

    _trainer(max_epochs=2, limit_train_batches=3, limit_val_batches=1).fit(
        model, DigitsDataModule(image_size=8, batch_size=16)
    )

    after = model.model.state_dict()
    backbone = [k for k in before if not k.startswith("fc.")]
    assert "features.1.running_mean" in backbone
    _assert_same({k: after[k] for k in backbone}, {k: before[k] for k in backbone})
    assert not torch.equal(after["fc.weight"], before["fc.weight"])
    assert all(not p.requires_grad for p in model.model.features.parameters())
    assert [g["name"] for g in model.configure_optimizers().param_groups] == ["head"]


def test_unfrozen_batchnorm_does_move():
    model = TransferClassifier("smallcnn", num_classes=10).train()
    before = model.model.features[1].running_mean.clone()
    model(torch.randn(4, 3, 8, 8))
    assert not torch.equal(model.model.features[1].running_mean, before)


def test_backbone_lr_ratio_makes_named_groups():
    model = TransferClassifier("smallcnn", num_classes=10, lr=0.01, backbone_lr_ratio=0.1, weight_decay=1e-4)
    groups = model.configure_optimizers().param_groups

    assert [g["name"] for g in groups] == ["backbone", "head"]
    assert [g["lr"] for g in groups] == pytest.approx([0.001, 0.01])
    assert [g["weight_decay"] for g in groups] == [1e-4, 1e-4]
    assert {id(p) for p in groups[0]["params"]} == {id(p) for p in model.model.features.parameters()}
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model.model.fc.parameters()}
    with pytest.raises(ValueError, match="backbone_lr_ratio has no effect with freeze_backbone=True"):
        TransferClassifier("smallcnn", num_classes=10, freeze_backbone=True, backbone_lr_ratio=0.1)


def test_optimizer_reads_self_lr_and_is_returned_alone():
    model = TransferClassifier("smallcnn", num_classes=10)
    model.lr = 0.3  # what an lr finder does
    optimizer = model.configure_optimizers()

    assert isinstance(optimizer, torch.optim.SGD)
    assert [(g["name"], g["lr"], g["momentum"]) for g in optimizer.param_groups] == [("model", 0.3, 0.9)]
    assert len(optimizer.param_groups[0]["params"]) == len(list(model.model.parameters()))

    adamw = TransferClassifier("smallcnn", num_classes=10, optimizer="adamw", momentum=0.85).configure_optimizers()
    assert isinstance(adamw, torch.optim.AdamW)
    assert adamw.param_groups[0]["betas"] == (0.85, 0.999)


def test_step_lr_adds_the_tutorials_step_decay():
    config = TransferClassifier("smallcnn", num_classes=10, lr=0.1, step_lr=(7, 0.1)).configure_optimizers()

    scheduler = config["lr_scheduler"]["scheduler"]
    assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR)
    assert (scheduler.step_size, scheduler.gamma) == (7, 0.1)
    assert config["lr_scheduler"]["interval"] == "epoch"
    assert scheduler.optimizer is config["optimizer"]


def test_training_step_returns_the_loss_and_hparams_are_saved():
    model = TransferClassifier("smallcnn", num_classes=3, lr=0.02)
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    model.log = lambda *args, **kwargs: None  # no trainer attached

    loss = model.training_step((x, y), 0)

    assert torch.allclose(loss, F.cross_entropy(model(x), y))
    assert model.hparams.model_name == "smallcnn" and model.hparams.lr == 0.02 and model.hparams.num_classes == 3


@pytest.mark.parametrize("name, size", [("googlenet", 64), ("inception_v3", 80)])
def test_models_with_auxiliary_heads_train_on_their_main_logits(tmp_path, name, size):
    # torchvision builds both with 1000-class auxiliary heads that run in training mode only.
    model = TransferClassifier(name, num_classes=3, weights=None)
    assert not any(m.out_features == 1000 for m in model.modules() if isinstance(m, torch.nn.Linear))
    model.train()
    model.log = lambda *args, **kwargs: None  # no trainer attached
    x, y = torch.randn(2, 3, size, size), torch.tensor([0, 2])
    loss = model.training_step((x, y), 0)
    assert loss.shape == () and torch.isfinite(loss)
    assert model(x).shape == (2, 3)
    if name == "googlenet":  # a torchvision state_dict, auxiliary heads included, loads into it
        torchvision_model = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
        assert any(k.startswith("aux1.") for k in torchvision_model.state_dict())
        torch.save(torchvision_model.state_dict(), tmp_path / "googlenet.pth")
        loaded = TransferClassifier(name, num_classes=3, weights=tmp_path / "googlenet.pth")
        expected = torchvision_model.state_dict()["conv1.conv.weight"]
        assert torch.equal(loaded.model.state_dict()["conv1.conv.weight"], expected)


def test_epoch_losses_are_the_means_over_all_samples(fitted):
    # The last validation batch is smaller (360 = 11 x 32 + 8): the epoch value weights batches by size.
    trainer, model, _ = fitted
    data = DigitsDataModule(image_size=16, batch_size=32)
    data.setup("fit")
    model.eval()
    with torch.no_grad():
        pairs = [(model(x), y) for x, y in data.val_dataloader()]
    logits, targets = torch.cat([p for p, _ in pairs]), torch.cat([t for _, t in pairs])
    assert len(pairs[-1][1]) != 32
    assert float(trainer.callback_metrics["val_loss"]) == pytest.approx(
        float(F.cross_entropy(logits, targets)), rel=1e-5
    )


@pytest.mark.slow
@pytest.mark.ddp
def test_epoch_metrics_agree_across_ddp_processes(tmp_path):
    # Each rank sees its own shard: unsynced epoch losses would differ between the ranks.
    here = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": str(here), "PL_DISABLE_FORK": "1"}
    script = here / "_ddp_classifier.py"
    subprocess.run([sys.executable, str(script), str(tmp_path)], env=env, check=True, timeout=300, cwd=tmp_path)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for key in ("val_loss", "val_acc", "train_loss_epoch", "train_acc"):
        assert ranks[0][key] == ranks[1][key], key
    assert 0 < ranks[0]["val_loss"] < 10
