"""The LR range test's engine: one optimizer step through the Trainer's strategy, and the exact restore.

Everything here drives Lightning's and torch's internals the way the fit loop
does (the strategy's ``training_step``/``backward``/``optimizer_step``, the fit
loop's ``CombinedLoader``, the precision plugin's input conversion and state,
the module's batch-transfer hooks, DataLoader internals, the RNG states). It is
the one module to re-check on every Lightning upgrade; the callback
(:mod:`lightning_onecycle.range_test`) only wires its hooks to it.
"""

from __future__ import annotations

import copy
import math
import random
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.utilities.apply_func import apply_to_collection
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm
from lightning.pytorch.strategies import ParallelStrategy
from lightning.pytorch.utilities import CombinedLoader
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch.optim import Optimizer
from torch.utils.data import DataLoader
from torchmetrics import Metric

from lightning_onecycle import _trainer

__all__ = [
    "Batches",
    "Snapshot",
    "ignored_logging",
    "progress_bar",
    "reset_metrics",
    "sweep_step",
]


# --- the batches ---------------------------------------------------------------------------


class Batches:
    """Batches of ``trainer.train_dataloader`` on the device, started again after each epoch's worth.

    An epoch's worth is ``trainer.num_training_batches``: the loader's length, or
    fewer with ``limit_train_batches``, so the sweep sees the batches training sees.
    """

    def __init__(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        iterables = trainer.train_dataloader
        if iterables is None:
            raise MisconfigurationException(
                "LRRangeTestCallback found no training data (`trainer.train_dataloader` is None)."
            )
        self.trainer = trainer
        # The same wrapper the fit loop uses, so the batches have the same structure as in training.
        self.loader = CombinedLoader(apply_to_collection(iterables, DataLoader, own_workers), "max_size_cycle")
        self.convert_input = trainer.precision_plugin.convert_input
        datamodule = _trainer.datamodule(trainer)
        # `batch_to_device` applies `transfer_batch_to_device` and `on_after_batch_transfer`; the
        # loop applies `on_before_batch_transfer` itself, from the datamodule when it overrides it.
        self.before_transfer: Callable[[Any, int], Any]
        if datamodule is not None and is_overridden("on_before_batch_transfer", datamodule):
            self.before_transfer = datamodule.on_before_batch_transfer
        else:
            self.before_transfer = pl_module.on_before_batch_transfer
        self.iterator: Iterator[Any] | None = None
        limit = trainer.num_training_batches  # inf for a loader without a length
        self.per_epoch = int(limit) if math.isfinite(limit) and limit > 0 else None
        self.taken = 0

    def next(self) -> tuple[Any, int]:
        for _ in range(2):
            if self.iterator is None or (self.per_epoch is not None and self.taken >= self.per_epoch):
                self.iterator, self.taken = iter(self.loader), 0
            try:
                batch, batch_idx, _ = next(self.iterator)
                break
            except StopIteration:
                self.iterator = None
        else:
            raise MisconfigurationException("LRRangeTestCallback: the training dataloader yields no batches.")
        self.taken += 1
        # As the fit loop does: the precision plugin's dtype first (`*-true` precision), then the hooks.
        batch = self.before_transfer(self.convert_input(batch), 0)
        return self.trainer.strategy.batch_to_device(batch, dataloader_idx=0), batch_idx

    def close(self) -> None:
        self.iterator = None


def own_workers(loader: DataLoader) -> DataLoader:
    """``loader``, or for persistent workers a copy that starts its own workers on every pass.

    A DataLoader with persistent workers hands every ``iter()`` the one iterator that
    the fit loop already holds, its first epoch's order drawn and maybe a batch
    prefetched: the sweep must not restart it. The copy shares dataset, sampler and
    generator, so the RNG snapshot covers it.
    """
    if not (loader.persistent_workers and loader.num_workers > 0):
        return loader
    copied = copy.copy(loader)
    # DataLoader refuses to change `persistent_workers` after construction; this copy is the sweep's own.
    object.__setattr__(copied, "persistent_workers", False)
    object.__setattr__(copied, "_iterator", None)
    return copied


# --- one sweep step through the strategy -----------------------------------------------------


def sweep_step(
    trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer, batches: Batches, accumulation: int
) -> tuple[float, bool]:
    """One optimizer step over ``accumulation`` batches; returns its loss averaged across ranks and whether AMP's
    GradScaler skipped it on any rank.

    One collective for both, so every rank sees the same loss and the same skip decision.
    """
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    scale = scaler.get_scale() if scaler is not None else None
    loss = optimizer_step(trainer, pl_module, optimizer, batches, accumulation)
    was_skipped = scaler is not None and scale is not None and scaler.get_scale() < scale
    stats = torch.stack([loss.float(), loss.new_tensor(float(was_skipped), dtype=torch.float32)])
    stats = trainer.strategy.reduce(stats, reduce_op="mean")
    return float(stats[0]), float(stats[1]) > 0


def optimizer_step(
    trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer, batches: Batches, accumulation: int
) -> torch.Tensor:
    """One optimizer step over ``accumulation`` batches, as the automatic loop does it.

    Returns the mean raw loss of those batches (detached).
    """
    strategy = trainer.strategy
    k = accumulation
    raw: list[torch.Tensor] = []

    def forward(batch: Any, batch_idx: int) -> torch.Tensor:
        loss = _loss(strategy.training_step(batch, batch_idx))
        raw.append(loss.detach().float())
        return loss

    batch, batch_idx = batches.next()
    if k > 1:
        pl_module.optimizer_zero_grad(trainer.current_epoch, batch_idx, optimizer)
        for _ in range(k - 1):
            # No DDP gradient sync until the last batch, as in training.
            block: AbstractContextManager[Any] = (
                strategy.block_backward_sync() if isinstance(strategy, ParallelStrategy) else nullcontext()
            )
            with block:
                strategy.backward(forward(batch, batch_idx) / k, optimizer)
            batch, batch_idx = batches.next()
    first_call = len(raw)

    def closure() -> torch.Tensor:
        # Optimizers such as LBFGS call the closure several times; record only the first loss.
        if k == 1:
            pl_module.optimizer_zero_grad(trainer.current_epoch, batch_idx, optimizer)
        loss = forward(batch, batch_idx)
        del raw[first_call + 1 :]
        strategy.backward(loss / k, optimizer)
        return loss.detach()

    strategy.optimizer_step(optimizer, closure)
    return torch.stack(raw).mean()


def _loss(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping) and isinstance(output.get("loss"), torch.Tensor):
        return output["loss"]
    raise MisconfigurationException(
        "LRRangeTestCallback needs `training_step` to return the loss (a tensor, or a dict with a 'loss' tensor),"
        f" but it returned {type(output).__name__}. Return the loss for every batch."
    )


# --- saving and restoring the training state --------------------------------------------


class Snapshot:
    """Everything the sweep changes, held in memory, and put back in place.

    Parameters and buffers are copied back in place (``load_state_dict``), so the
    optimizer's and the DDP wrapper's references stay valid.
    """

    def __init__(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer) -> None:
        self.trainer, self.pl_module, self.optimizer = trainer, pl_module, optimizer
        self.model = copy.deepcopy(pl_module.state_dict())
        # Non-persistent buffers are not in the state dict but change with training all the same.
        self.buffers = {name: b.detach().clone() for name, b in pl_module.named_buffers()}
        self.optimizer_state = copy.deepcopy(optimizer.state_dict())
        self.precision = copy.deepcopy(trainer.precision_plugin.state_dict())
        self.rng = _rng_state()
        self.generators = _loader_generators(trainer)
        self.generator_states = [g.get_state() for g in self.generators]

    def restore(self) -> None:
        self.pl_module.load_state_dict(self.model)
        with torch.no_grad():
            for name, buffer in self.pl_module.named_buffers():
                if name in self.buffers:
                    buffer.copy_(self.buffers[name])
        for param in self.pl_module.parameters():
            param.grad = None
        self.optimizer.load_state_dict(self.optimizer_state)
        self.trainer.precision_plugin.load_state_dict(copy.deepcopy(self.precision))
        _set_rng_state(self.rng)
        for generator, state in zip(self.generators, self.generator_states):
            generator.set_state(state)


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


def _loader_generators(trainer: pl.Trainer) -> list[torch.Generator]:
    """The DataLoaders' own generators (``DataLoader(generator=...)``), which the sweep's shuffling advances."""
    found: dict[int, torch.Generator] = {}
    iterables = trainer.train_dataloader
    if iterables is None:
        return []
    for loader in CombinedLoader(iterables).flattened:
        batch_sampler = getattr(loader, "batch_sampler", None)
        for owner in (loader, getattr(loader, "sampler", None), getattr(batch_sampler, "sampler", None)):
            generator = getattr(owner, "generator", None)
            if isinstance(generator, torch.Generator):
                found[id(generator)] = generator
    return list(found.values())


# --- what else the sweep must not leave behind ------------------------------------------


@contextmanager
def ignored_logging(pl_module: pl.LightningModule) -> Iterator[None]:
    """Make ``self.log``/``self.log_dict`` no-ops: the sweep must not reach epoch metrics (nor raise
    because logging is not allowed in ``on_train_start``)."""

    def ignore(*args: Any, **kwargs: Any) -> None:
        return None

    names = ("log", "log_dict")
    shadowed = {name: pl_module.__dict__[name] for name in names if name in pl_module.__dict__}
    for name in names:
        setattr(pl_module, name, ignore)
    try:
        yield
    finally:
        for name in names:
            if name in shadowed:
                setattr(pl_module, name, shadowed[name])
            else:
                delattr(pl_module, name)


def reset_metrics(pl_module: pl.LightningModule) -> None:
    """Reset the module's torchmetrics metrics, which the sweep's ``training_step`` calls updated."""
    for module in pl_module.modules():
        if isinstance(module, Metric):
            module.reset()


def progress_bar(trainer: pl.Trainer, total: int, desc: str) -> Tqdm | None:
    """A bar for the sweep where the Trainer shows one (rank zero, an enabled progress bar), else ``None``."""
    bar = trainer.progress_bar_callback
    if not (trainer.is_global_zero and bar is not None and getattr(bar, "is_enabled", True)):
        return None
    return Tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True, file=sys.stdout, smoothing=0)
