"""The example model: any torchvision classifier with a linear head, given a new one, for transfer learning.

:class:`TransferClassifier` follows the PyTorch transfer-learning tutorial: take a
(pretrained) torchvision network, replace its classifier head for the task's
classes, then either fine-tune everything (optionally with a smaller lr for the
backbone) or train only the head on frozen features. It returns only an
optimizer: lr and momentum schedules are this project's callbacks
(``OneCycleCallback``, ``CyclicLRCallback``), except the tutorial's fixed-lr +
step-decay baseline, which ``step_lr`` adds as a ``StepLR``.

``"smallcnn"`` is a tiny three-conv network for offline CPU demos, tests and
benchmarks; it has a ``features`` backbone and an ``fc`` head like a ResNet.
"""

from __future__ import annotations

import difflib
import os
import pickle
from collections.abc import Mapping
from http.client import HTTPException
from pathlib import Path
from typing import Any, Literal, cast
from urllib.error import URLError

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
import torchvision
from lightning.pytorch.utilities import rank_zero_info
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from lightning_onecycle.demo import _arguments

# Containers in which torchvision keeps a classifier head: resnet/regnet/inception
# ``fc``; densenet ``classifier``; vgg/alexnet/mobilenet/efficientnet/convnext
# ``classifier`` Sequential; vit ``heads.head``; swin ``head``.
_HEAD_CANDIDATES = ("fc", "classifier", "heads.head", "head")
# Wrappers that prefix state_dict keys: a LightningModule attribute, DataParallel /
# DistributedDataParallel, torch.compile.
_KEY_PREFIXES = ("model.", "module.", "_orig_mod.")
_WEIGHTS_FILE_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".tar", ".safetensors")
# The auxiliary classifiers of inception_v3 and googlenet: 1000-class heads that only training mode
# runs. The loss does not use them (and DDP would find them unused): dropped, as torchvision does
# for aux_logits=False, and their keys in a weights file are ignored.
_AUX_HEADS = ("AuxLogits", "aux1", "aux2")
_SHOW = 5


class WeightsError(RuntimeError):
    """The initial weights cannot be had: their download failed (offline), or the file does not fit the model."""


class _SmallCNN(nn.Module):
    """Three conv-BN-ReLU blocks and a linear head: ~25k parameters, any input size >= 4."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()

        def block(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *block(3, 16),
            nn.MaxPool2d(2),
            *block(16, 32),
            nn.MaxPool2d(2),
            *block(32, 64),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


_LOCAL_MODELS = {"smallcnn": _SmallCNN}


class TransferClassifier(pl.LightningModule):
    """A torchvision classifier with its head replaced for ``num_classes``.

    Args:
        model_name: any name from ``torchvision.models.list_models(torchvision.models)``
            (``"resnet18"``, ``"mobilenet_v3_small"``, ``"vit_b_16"``...) but the SqueezeNets
            (their head is a convolution, not a linear layer), or ``"smallcnn"``.
        num_classes: number of classes of the task; the head is replaced when it
            has a different number of outputs.
        weights: initial weights. ``None`` or ``"none"``: random. A torchvision
            weights name for ``model_name`` (``"DEFAULT"``, ``"IMAGENET1K_V1"``, or a
            full ``"ResNet18_Weights.IMAGENET1K_V1"``): downloaded once into the
            torch hub cache. A path to a local file: a raw ``state_dict``, a
            Lightning checkpoint (``"state_dict"`` key) or a dict with a ``"model"``
            key; ``model.``/``module.``/``_orig_mod.`` prefixes are stripped. A file
            whose head does not fit ``num_classes`` (an ImageNet checkpoint) loads
            the backbone only and leaves the new head freshly initialised.
        freeze_backbone: feature extraction: only the head is trained; the backbone's
            parameters get ``requires_grad=False`` and its normalisation layers stay
            in eval mode so their running statistics do not move either.
        backbone_lr_ratio: when set, the optimizer gets two param groups, named
            ``"backbone"`` (lr ``lr * backbone_lr_ratio``) and ``"head"`` (lr ``lr``).
        lr: learning rate of the head (and of the backbone unless
            ``backbone_lr_ratio`` is set). Read in :meth:`configure_optimizers`, so
            an lr finder may overwrite ``self.lr`` before it runs.
        optimizer: ``"sgd"`` (SGD with ``momentum``) or ``"adamw"`` (AdamW with
            ``betas=(momentum, 0.999)``).
        momentum: SGD momentum, or AdamW's ``beta1``.
        weight_decay: weight decay of every param group.
        step_lr: ``(step_size, gamma)`` in epochs: also return a ``StepLR``, the
            tutorial's fixed-lr baseline is ``(7, 0.1)``. ``None``: only the
            optimizer, for schedule callbacks to drive.

    Raises:
        ValueError: on an unknown model or weights name, a model whose head cannot
            be found, or a bad argument (the message names it, its value and what
            is accepted; e.g. a NaN ``weight_decay`` or ``freeze_backbone="no"``).
        FileNotFoundError: if ``weights`` looks like a path but no file is there.
        WeightsError: (a ``RuntimeError``) if named weights cannot be downloaded
            (offline) or a local file does not fit the model (its missing/unexpected
            keys and mismatched shapes are named).

    Attributes:
        model: the torchvision network (keys of its ``state_dict`` are those of
            the torchvision model, prefixed ``model.`` in Lightning checkpoints).
        head_name: dotted path of the head inside ``model`` (``"fc"``,
            ``"classifier.6"``, ``"heads.head"``).
        lr: the head's learning rate, read by :meth:`configure_optimizers`.

    Note:
        ``load_from_checkpoint`` calls ``__init__`` again with the saved
        hyper-parameters, so pass ``weights=None`` there to skip re-loading (or
        re-downloading) the initial weights that the checkpoint overwrites anyway.

    Example::

        >>> model = TransferClassifier("smallcnn", num_classes=10, backbone_lr_ratio=0.1, lr=0.01)
        >>> [(g["name"], g["lr"]) for g in model.configure_optimizers().param_groups]
        [('backbone', 0.001), ('head', 0.01)]
    """

    def __init__(
        self,
        model_name: str = "resnet18",
        *,
        num_classes: int,
        weights: str | Path | None = None,
        freeze_backbone: bool = False,
        backbone_lr_ratio: float | None = None,
        lr: float = 1e-3,
        optimizer: Literal["sgd", "adamw"] = "sgd",
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        step_lr: tuple[int, float] | None = None,
    ) -> None:
        super().__init__()
        hparams = _checked(
            model_name=model_name,
            num_classes=num_classes,
            weights=weights,
            freeze_backbone=freeze_backbone,
            backbone_lr_ratio=backbone_lr_ratio,
            lr=lr,
            optimizer=optimizer,
            momentum=momentum,
            weight_decay=weight_decay,
            step_lr=step_lr,
        )
        self.save_hyperparameters(hparams)
        model_name, num_classes = hparams["model_name"], hparams["num_classes"]
        self.lr = hparams["lr"]
        self.freeze_backbone = hparams["freeze_backbone"]

        _check_model_name(model_name)
        weights_file, named_weights = _resolve_weights(model_name, hparams["weights"])
        self.model = _build(model_name, named_weights)
        _drop_aux_heads(self.model)
        self.head_name = _find_head(self.model, model_name)
        head = self.head
        if head.out_features != num_classes:
            parent, _, attr = self.head_name.rpartition(".")
            new_head = nn.Linear(head.in_features, num_classes, bias=head.bias is not None)
            setattr(self.model.get_submodule(parent), attr, new_head)
        if weights_file is not None:
            _load_file(self.model, weights_file, self.head_name)
        if self.freeze_backbone:
            for param in self._backbone_parameters():
                param.requires_grad_(False)
            self.train()  # puts the backbone's normalisation layers in eval mode

        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        # Epoch means as metrics: synced across processes once an epoch (DDP), not every step.
        self.train_loss = MeanMetric()
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()

    @property
    def head(self) -> nn.Linear:
        """The (replaced) classifier head."""
        return cast(nn.Linear, self.model.get_submodule(self.head_name))  # `_find_head` found a Linear there

    def _is_head(self, name: str) -> bool:
        return name == self.head_name or name.startswith(self.head_name + ".")

    def _backbone_parameters(self) -> list[nn.Parameter]:
        return [p for n, p in self.model.named_parameters() if not self._is_head(n)]

    def train(self, mode: bool = True) -> TransferClassifier:
        """Set train/eval mode; a frozen backbone's normalisation layers stay in eval mode."""
        super().train(mode)
        if mode and getattr(self, "freeze_backbone", False):
            for name, module in self.model.named_modules():
                if getattr(module, "track_running_stats", False) and not self._is_head(name):
                    module.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.train_acc(logits, y)
        # `train_loss_step`: this batch, this process (no sync); `train_loss_epoch`/`train_loss`: the epoch's mean.
        self.train_loss(loss.detach(), weight=len(y))
        self.log("train_loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True)
        self.log("train_acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        x, y = batch
        logits = self(x)
        accuracy, mean_loss = getattr(self, f"{stage}_acc"), getattr(self, f"{stage}_loss")
        accuracy(logits, y)
        mean_loss(F.cross_entropy(logits, y), weight=len(y))
        self.log(f"{stage}_loss", mean_loss, on_epoch=True, prog_bar=True)
        self.log(f"{stage}_acc", accuracy, on_epoch=True, prog_bar=True)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        """Logs ``test_loss`` and ``test_acc``, the means over the test set (``trainer.test``)."""
        self._evaluate(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Class probabilities of a batch of images, or of an ``(images, labels)`` batch (``trainer.predict``)."""
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self(x).softmax(dim=-1)

    def configure_optimizers(self) -> Any:
        """The optimizer over the trainable parameters, plus a ``StepLR`` if ``step_lr`` is set.

        Every param group has a ``"name"``: ``"backbone"`` and ``"head"`` with
        ``backbone_lr_ratio``, ``"head"`` for a frozen backbone, else ``"model"``.
        """
        hp: Any = self.hparams  # an AttributeDict (Lightning types it as a MutableMapping)
        head_params = list(self.head.parameters())
        if self.freeze_backbone:
            groups = [{"name": "head", "params": head_params, "lr": self.lr}]
        elif hp.backbone_lr_ratio is not None:
            groups = [
                {"name": "backbone", "params": self._backbone_parameters(), "lr": self.lr * hp.backbone_lr_ratio},
                {"name": "head", "params": head_params, "lr": self.lr},
            ]
        else:
            groups = [{"name": "model", "params": list(self.model.parameters()), "lr": self.lr}]
        optimizer: torch.optim.Optimizer
        if hp.optimizer == "sgd":
            optimizer = torch.optim.SGD(groups, lr=self.lr, momentum=hp.momentum, weight_decay=hp.weight_decay)
        else:
            optimizer = torch.optim.AdamW(groups, lr=self.lr, betas=(hp.momentum, 0.999), weight_decay=hp.weight_decay)
        if hp.step_lr is None:
            return optimizer
        step_size, gamma = hp.step_lr
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=int(step_size), gamma=float(gamma))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


def _checked(**hparams: Any) -> dict[str, Any]:
    """The constructor's arguments as plain Python values, or a ValueError naming the first bad one."""
    h = dict(hparams)
    h["model_name"] = _arguments.text(
        "model_name",
        h["model_name"],
        accepted="a model name (str): 'smallcnn' or a torchvision classifier such as 'resnet18'",
    )
    h["num_classes"] = _arguments.integer("num_classes", h["num_classes"], 2, why=" (a classifier needs two classes)")
    weights = h["weights"]
    if weights is not None and (not isinstance(weights, (str, os.PathLike)) or not os.fspath(weights)):
        raise ValueError(
            f"Expected `weights` to be None, 'none', a torchvision weights name or a file path, but got {weights!r}."
        )
    h["weights"] = None if weights is None else str(os.fspath(weights))
    h["freeze_backbone"] = _arguments.flag("freeze_backbone", h["freeze_backbone"])
    if h["backbone_lr_ratio"] is not None:
        ratio = h["backbone_lr_ratio"]
        h["backbone_lr_ratio"] = _arguments.number(
            "backbone_lr_ratio", ratio, "None or a finite number > 0 (backbone lr / head lr)", lambda v: v > 0
        )
        if h["freeze_backbone"]:
            raise ValueError(
                "backbone_lr_ratio has no effect with freeze_backbone=True (the backbone is not trained): "
                "pass one or the other."
            )
    h["lr"] = _arguments.positive("lr", h["lr"])
    h["optimizer"] = _arguments.choice("optimizer", h["optimizer"], ("sgd", "adamw"))
    h["momentum"] = _arguments.number("momentum", h["momentum"], "a number in [0, 1)", lambda v: 0 <= v < 1)
    h["weight_decay"] = _arguments.number("weight_decay", h["weight_decay"], "a finite number >= 0", lambda v: v >= 0)
    if h["step_lr"] is not None:
        h["step_lr"] = _step_lr(h["step_lr"])
    return h


def _step_lr(value: Any) -> tuple[int, float]:
    pair = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(pair) == 2 and _arguments.is_integer(pair[0]) and pair[0] >= 1 and _arguments.is_real(pair[1]):
        if pair[1] > 0:
            return int(pair[0]), float(pair[1])
    raise ValueError(
        f"Expected `step_lr` to be None or (step_size, gamma): an integer step_size >= 1 (epochs) and a finite "
        f"gamma > 0, but got {value!r}; the tutorial uses (7, 0.1)."
    )


def _resolve_weights(model_name: str, text: str | None) -> tuple[Path | None, Any]:
    """Split ``weights`` into (local file, torchvision ``WeightsEnum``); at most one is set."""
    if text is None or text.lower() == "none":
        return None, None
    path = Path(text)
    if path.is_file():
        return path, None
    if os.sep in text or "/" in text or text.endswith(_WEIGHTS_FILE_SUFFIXES):
        raise FileNotFoundError(
            f"No weights file at {text!r} (resolved to {path.resolve()}). Loading a checkpoint of this model?"
            " Pass weights=None to `load_from_checkpoint`: the checkpoint holds the trained weights."
        )
    if model_name in _LOCAL_MODELS:
        raise ValueError(
            f"{model_name!r} has no named weights (got {text!r}): pass a local weights file or weights=None."
        )
    options = torchvision.models.get_model_weights(model_name)
    choices = f"choose one of {list(options.__members__)}, a path to a local weights file, or 'none'"
    if "." in text:
        try:
            weight = torchvision.models.get_weight(text)
        except (TypeError, KeyError, ValueError, AttributeError):
            raise ValueError(f"Unknown weights {text!r} for {model_name!r}: {choices}.") from None
        if not isinstance(weight, options):
            raise ValueError(f"{text!r} are the weights of another model, not of {model_name!r}: {choices}.")
        return None, weight
    try:
        return None, options[text]
    except KeyError:
        raise ValueError(f"Unknown weights {text!r} for {model_name!r}: {choices}.") from None


def _check_model_name(model_name: str) -> None:
    known = torchvision.models.list_models(torchvision.models)
    if model_name not in known and model_name not in _LOCAL_MODELS:
        close = difflib.get_close_matches(model_name, known + list(_LOCAL_MODELS), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(
            f"Unknown model {model_name!r}: expected 'smallcnn' or a classification model from "
            f"torchvision.models.list_models(torchvision.models).{hint}"
        )


def _drop_aux_heads(model: nn.Module) -> None:
    if getattr(model, "aux_logits", False):
        model.aux_logits = False  # type: ignore[assignment]  # torchvision's flag; nn.Module types attributes as modules/tensors
        for name in _AUX_HEADS:
            if hasattr(model, name):
                setattr(model, name, None)


def _build(model_name: str, weights: Any) -> nn.Module:
    if model_name in _LOCAL_MODELS:
        return _LOCAL_MODELS[model_name]()
    try:
        return torchvision.models.get_model(model_name, weights=weights)
    except (URLError, HTTPException, OSError) as err:
        raise WeightsError(
            f"Downloading the torchvision weights {weights} for {model_name!r} failed ({err}): this machine "
            "seems to be offline. Pass a local weights file (--weights path/to/file.pth) or train from "
            "scratch with --weights none."
        ) from err


def _find_head(model: nn.Module, model_name: str) -> str:
    for name in _HEAD_CANDIDATES:
        try:
            module = model.get_submodule(name)
        except AttributeError:
            continue
        if isinstance(module, nn.Linear):
            return name
        if isinstance(module, nn.Sequential) and len(module) and isinstance(module[-1], nn.Linear):
            return f"{name}.{len(module) - 1}"
    raise ValueError(
        f"Cannot find the classifier head of {model_name!r}: expected a Linear layer at 'fc', 'classifier', "
        "'heads.head' or 'head', or a 'classifier' Sequential ending in a Linear layer."
    )


def _load_file(model: nn.Module, path: Path, head_name: str) -> None:
    """Load a local weights file into ``model``; a head of the wrong shape stays as it is."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise WeightsError(
            f"{path} holds more than tensors and plain containers, so it is not loaded (weights_only=True). "
            "Save just the weights: torch.save(model.state_dict(), path)."
        ) from err
    except Exception as err:
        raise WeightsError(f"Cannot read {path} as a PyTorch weights file: {err}") from err
    state = _state_dict_of(loaded, path)
    target = model.state_dict()
    state = _strip_prefixes(state, target.keys())
    state = {k: v for k, v in state.items() if k.split(".", 1)[0] not in _AUX_HEADS}

    def is_head(key: str) -> bool:
        return key.startswith(head_name + ".")

    shapes = {
        k: f"{k}: file {tuple(v.shape)} vs model {tuple(target[k].shape)}"
        for k, v in state.items()
        if k in target and v.shape != target[k].shape
    }
    head_mismatched = [text for k, text in shapes.items() if is_head(k)]
    mismatched = [text for k, text in shapes.items() if not is_head(k)]
    head_missing = [k for k in target if is_head(k) and k not in state]
    # Files from before BatchNorm counted batches lack num_batches_tracked; load_state_dict fills it in.
    missing = [k for k in target if k not in state and not is_head(k) and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in target]
    if mismatched or missing or unexpected:
        raise WeightsError(
            f"The weights in {path} do not fit the model: "
            + "; ".join(
                f"{len(items)} {what} ({', '.join(items[:_SHOW])}{', ...' if len(items) > _SHOW else ''})"
                for what, items in (
                    ("missing keys", missing),
                    ("unexpected keys", unexpected),
                    ("mismatched shapes", mismatched),
                )
                if items
            )
            + ". Is it a checkpoint of another architecture?"
        )
    if head_mismatched or head_missing:
        state = {k: v for k, v in state.items() if not is_head(k)}
        why = "the file has no head"
        if head_mismatched:
            why = f"the file's head does not fit ({', '.join(head_mismatched)})"
        rank_zero_info(f"Loaded the backbone weights from {path}; the head {head_name!r} stays new: {why}.")
    model.load_state_dict(state, strict=False)


def _state_dict_of(loaded: Any, path: Path) -> dict[str, torch.Tensor]:
    state = loaded
    if isinstance(loaded, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(loaded.get(key), Mapping):
                state = loaded[key]
                break
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        found = list(loaded)[:_SHOW] if isinstance(loaded, Mapping) else type(loaded).__name__
        raise WeightsError(
            f"No state_dict in {path}: expected a dict of tensors, or a dict with a 'state_dict' or 'model' "
            f"entry holding one; found {found}."
        )
    return dict(state)


def _strip_prefixes(state: dict[str, torch.Tensor], target_keys: Any) -> dict[str, torch.Tensor]:
    """Strip wrapper prefixes (``model.``, ``module.``...) while that matches more of the model's keys."""
    target_keys = set(target_keys)
    improved = True
    while improved:
        improved = False
        for prefix in _KEY_PREFIXES:
            stripped = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            if len(stripped.keys() & target_keys) > len(state.keys() & target_keys):
                state, improved = stripped, True
    return state
