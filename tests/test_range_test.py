"""LRRangeTestCallback: the sweep, its stops, exact restore, precision, DDP, outputs and hand-off."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import statistics
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.plugins.precision import MixedPrecision
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.warnings import PossibleUserWarning

from lightning_onecycle.one_cycle import OneCycleCallback
from lightning_onecycle.range_test import LRRangeTestCallback, RangeTestResult, is_range_test_running
from lightning_onecycle.schedules import LRSweep, OneCycleSchedule
from lightning_onecycle.suggestions import read_curve, suggest_from

from helpers import RangeTestModel, make_trainer, snapshot_params


@pytest.fixture(autouse=True)
def _seed() -> None:
    # The models' initial weights come from the global RNG: fix them so every test sees the same curve.
    torch.manual_seed(0)


class SweepProbe(pl.Callback):
    """Records every group's lr (and weight decay) before each optimizer step, sweep and training apart."""

    def __init__(self) -> None:
        self.sweep_lrs: list[list[float]] = []
        self.sweep_wds: list[list[float]] = []
        self.train_lrs: list[list[float]] = []
        self.train_wds: list[list[float]] = []
        self.train_epochs = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.train_epochs += 1

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        range_test = next(c for c in trainer.callbacks if isinstance(c, LRRangeTestCallback))
        lrs = [float(g["lr"]) for g in optimizer.param_groups]
        wds = [float(g["weight_decay"]) for g in optimizer.param_groups]
        if range_test.is_running:
            self.sweep_lrs.append(lrs)
            self.sweep_wds.append(wds)
        else:
            self.train_lrs.append(lrs)
            self.train_wds.append(wds)


class DumpResult(pl.Callback):
    """Each rank writes its range-test result and its own (unreduced) first losses to ``dirpath``."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = dirpath

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        range_test = next(c for c in trainer.callbacks if isinstance(c, LRRangeTestCallback))
        out = {"result": range_test.result.to_dict(), "first_local_losses": pl_module.local_losses[:3]}
        with open(f"{self.dirpath}/rank{trainer.global_rank}.json", "w") as f:
            json.dump(out, f)


class LocalLossModel(RangeTestModel):
    """Keeps this rank's own losses (before any averaging across ranks)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.local_losses: list[float] = []

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        loss = super().training_step(batch, batch_idx)
        self.local_losses.append(float(loss))
        return loss


class ClipCountingModel(RangeTestModel):
    """Counts ``configure_gradient_clipping`` calls (the precision plugin calls it every optimizer step)."""

    clips = 0

    def configure_gradient_clipping(
        self, optimizer: Any, gradient_clip_val: Any = None, gradient_clip_algorithm: Any = None
    ) -> None:
        self.clips += 1
        super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)


def _test_only(**kwargs: Any) -> LRRangeTestCallback:
    defaults: dict[str, Any] = {"min_lr": 1e-4, "max_lr": 1e-2, "num_steps": 12, "stop_after_test": True}
    defaults.update(kwargs)
    return LRRangeTestCallback(**defaults)


def _final_weights(tmp_path, with_test: bool, generator: bool) -> dict[str, torch.Tensor]:
    pl.seed_everything(7)
    model = RangeTestModel(lr=0.01, generator=generator)
    callbacks = [LRRangeTestCallback(min_lr=1e-4, max_lr=1.0, num_steps=15)] if with_test else []
    make_trainer(tmp_path, callbacks, max_epochs=2).fit(model)
    return snapshot_params(model)


@pytest.mark.parametrize("generator", [False, True], ids=["global-rng", "loader-generator"])
def test_training_after_the_test_is_bit_identical(tmp_path, generator: bool) -> None:
    without = _final_weights(tmp_path, with_test=False, generator=generator)
    with_test = _final_weights(tmp_path, with_test=True, generator=generator)
    assert without.keys() == with_test.keys()
    for name in without:
        assert torch.equal(without[name], with_test[name]), name


class CountingModel(RangeTestModel):
    """Weighs its loss by a warm-up that grows with a plain Python count of its training steps.

    ``keep_out``: how the count stays out of the range test: ``None`` (it does not),
    ``"flag"`` (``training_step`` reads :func:`is_range_test_running`) or ``"hooks"``
    (``on_lr_range_test_start``/``on_lr_range_test_end`` save and restore it).
    """

    def __init__(self, keep_out: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.keep_out = keep_out
        self.steps_seen = 0
        self.hook_calls: list[str] = []

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        if not (self.keep_out == "flag" and is_range_test_running(self.trainer)):
            self.steps_seen += 1
        return super().training_step(batch, batch_idx) * min(1.0, self.steps_seen / 8)

    def on_lr_range_test_start(self) -> None:
        self.hook_calls.append(f"start, running={is_range_test_running(self.trainer)}")
        if self.keep_out == "hooks":
            self._saved_steps = self.steps_seen

    def on_lr_range_test_end(self) -> None:
        self.hook_calls.append(f"end, running={is_range_test_running(self.trainer)}")
        if self.keep_out == "hooks":
            self.steps_seen = self._saved_steps


def _counting_run(tmp_path, keep_out: str | None, with_test: bool) -> CountingModel:
    pl.seed_everything(7)
    model = CountingModel(keep_out=keep_out, lr=0.01)
    callbacks = [LRRangeTestCallback(min_lr=1e-4, max_lr=1.0, num_steps=15, save_files=False)] if with_test else []
    make_trainer(tmp_path, callbacks, max_epochs=2).fit(model)
    return model


@pytest.mark.parametrize("keep_out", ["flag", "hooks"])
def test_a_module_can_keep_its_python_state_out_of_the_sweep(tmp_path, keep_out: str) -> None:
    without = _counting_run(tmp_path, keep_out, with_test=False)
    with_test = _counting_run(tmp_path, keep_out, with_test=True)
    assert without.steps_seen == with_test.steps_seen == 10
    assert with_test.hook_calls == ["start, running=True", "end, running=False"]
    for name, value in snapshot_params(without).items():
        assert torch.equal(value, snapshot_params(with_test)[name]), name
    # Unguarded, the sweep's steps count too (what the guard is for).
    assert _counting_run(tmp_path, None, with_test=True).steps_seen > 10


@pytest.mark.parametrize("mode", ["exponential", "linear"])
def test_sweep_lrs_follow_lrsweep_and_keep_group_ratios(tmp_path, mode: str) -> None:
    probe = SweepProbe()
    range_test = _test_only(longer_sweep=None, mode=mode, divergence_threshold=None)
    make_trainer(tmp_path, [range_test, probe]).fit(RangeTestModel(groups=2, lr=0.05))
    expected = [LRSweep(1e-4, 1e-2, 12, mode).lr(i) for i in range(12)]
    assert range_test.result.lrs == expected
    assert [head for _, head in probe.sweep_lrs] == expected
    assert [body for body, _ in probe.sweep_lrs] == pytest.approx([lr / 10 for lr in expected], rel=1e-12)
    assert range_test.result.stop_reason == "completed"


class BatchIndexModel(RangeTestModel):
    """Records the ``batch_idx`` of every training step, the sweep's included."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch_indices: list[int] = []

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        self.batch_indices.append(batch_idx)
        return super().training_step(batch, batch_idx)


@pytest.mark.parametrize("limit", [2, 0.4], ids=["count", "fraction"])
def test_sweep_draws_only_the_batches_limit_train_batches_allows(tmp_path, limit: float) -> None:
    model = BatchIndexModel(n_batches=5)
    range_test = LRRangeTestCallback(longer_sweep=None, min_lr=1e-4, max_lr=1e-2, num_steps=11)
    trainer = make_trainer(tmp_path, [range_test], max_epochs=1, limit_train_batches=limit)
    trainer.fit(model)
    assert range_test.result.num_steps_run == 11
    # 11 sweep steps over 2-batch epochs, then the training epoch of 2 batches.
    assert model.batch_indices == [0, 1] * 5 + [0] + [0, 1]
    assert trainer.global_step == 2


class _ThreeBatchStream(torch.utils.data.IterableDataset):
    """Three batches of 32 samples, and no ``__len__``: the Trainer cannot count an epoch."""

    def __iter__(self) -> Any:
        g = torch.Generator().manual_seed(0)
        for _ in range(3 * 32):
            x = torch.randn(4, generator=g)
            yield x, x.sum()


class StreamModel(BatchIndexModel):
    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(_ThreeBatchStream(), batch_size=32)


def test_a_sweep_that_costs_more_than_a_quarter_of_the_fit_says_so_before_it_starts(tmp_path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        class Model(RangeTestModel):
            def training_step(self, batch: Any, batch_idx: int) -> Any:
                if self.calls == 0:  # the sweep's first batch
                    self.told = [str(w.message) for w in caught if issubclass(w.category, PossibleUserWarning)]
                return super().training_step(batch, batch_idx)

        model = Model()  # 5 batches an epoch
        range_test = LRRangeTestCallback(min_lr=1e-4, max_lr=1e-2, num_steps=20, save_files=False)
        make_trainer(tmp_path, [range_test], max_epochs=2, accumulate_grad_batches=2).fit(model)
    assert len(model.told) == 1
    assert (
        "LRRangeTestCallback: the range test will train on 40 batches (20 steps of 2 batches) before training"
        " starts, 400% of this fit's 10 training batches, so it adds about 400% to the training time" in model.told[0]
    )
    assert "(4 times that in all if its curve shows no descent and it sweeps again with longer_sweep=3" in model.told[0]
    assert "pass a smaller `num_steps`" in model.told[0]


@pytest.mark.parametrize("settings", [{"longer_sweep": None}, {"suggestion": "edge"}])
def test_the_cost_warning_names_no_longer_sweep_that_cannot_happen(tmp_path, settings: dict[str, Any]) -> None:
    range_test = LRRangeTestCallback(min_lr=1e-4, max_lr=1e-2, num_steps=20, save_files=False, **settings)
    with pytest.warns(PossibleUserWarning, match="adds about 200% to the training time. To shorten it"):
        make_trainer(tmp_path, [range_test], max_epochs=2).fit(RangeTestModel(n_batches=5))


@pytest.mark.parametrize(
    ("flags", "fit_batches"),
    [({"max_epochs": 10, "max_steps": 8}, 8), ({"max_epochs": 3, "accumulate_grad_batches": 4}, 15)],
    ids=["max-steps", "accumulation"],
)
def test_the_fits_batches_the_cost_is_measured_against(tmp_path, flags: dict[str, Any], fit_batches: int) -> None:
    range_test = LRRangeTestCallback(min_lr=1e-4, max_lr=1e-2, num_steps=10, save_files=False)
    with pytest.warns(PossibleUserWarning, match=rf"of this fit's {fit_batches} training batches"):
        make_trainer(tmp_path, [range_test], **flags).fit(RangeTestModel(n_batches=5))


def test_the_shortest_sweep_that_still_costs_too_much_is_not_told_to_shorten_itself(tmp_path) -> None:
    range_test = LRRangeTestCallback(min_lr=1e-4, max_lr=1e-2, num_steps=10, save_files=False)
    with pytest.warns(PossibleUserWarning) as seen:
        make_trainer(tmp_path, [range_test], max_epochs=1).fit(RangeTestModel(n_batches=5))
    told = next(str(w.message) for w in seen if "the range test will train on" in str(w.message))
    assert "smaller `num_steps`" not in told and "test once with stop_after_test=True" in told


@pytest.mark.parametrize(
    ("num_steps", "flags"),
    [(10, {"max_epochs": 8}), (20, {"max_epochs": 1, "limit_train_batches": 2, "max_steps": 1})],
    ids=["a-quarter-of-the-fit", "test-only"],
)
def test_a_sweep_that_costs_at_most_a_quarter_of_the_fit_or_is_all_there_is_says_nothing(
    tmp_path, num_steps: int, flags: dict[str, Any]
) -> None:
    range_test = LRRangeTestCallback(min_lr=1e-4, max_lr=1e-2, num_steps=num_steps, save_files=False)
    range_test.stop_after_test = "max_steps" in flags
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_trainer(tmp_path, [range_test], **flags).fit(RangeTestModel(n_batches=5))
    assert not [w for w in caught if issubclass(w.category, PossibleUserWarning)]


def test_sweep_restarts_a_stream_without_length_when_it_runs_out(tmp_path) -> None:
    model = StreamModel()
    range_test = LRRangeTestCallback(longer_sweep=None, min_lr=1e-4, max_lr=1e-2, num_steps=10)
    make_trainer(tmp_path, [range_test], max_epochs=1).fit(model)
    assert range_test.result.num_steps_run == 10
    assert model.batch_indices == [0, 1, 2] * 3 + [0] + [0, 1, 2]


def test_full_sweep_on_five_batches_with_max_epochs_1_then_training(tmp_path) -> None:
    model = RangeTestModel(n_batches=5)
    range_test = LRRangeTestCallback(min_lr=1e-4, max_lr=1e-2, num_steps=23)
    trainer = make_trainer(tmp_path, [range_test], max_epochs=1)
    trainer.fit(model)
    assert range_test.result.num_steps_run == 23
    assert range_test.result.stop_reason == "completed"
    assert model.calls == 23 + 5
    # The batch-transfer hooks applied to every sweep batch as well as to the training batches.
    assert model.before_transfers == model.after_transfers == 23 + 5
    assert trainer.global_step == 5


def test_stop_after_test_ends_the_fit_and_restores_the_module(tmp_path) -> None:
    model = RangeTestModel()
    before = snapshot_params(model)
    probe = SweepProbe()
    trainer = make_trainer(tmp_path, [_test_only(), probe])
    trainer.fit(model)
    assert trainer.global_step == 0
    assert probe.train_epochs == 0 and probe.train_lrs == []
    assert model.calls == 12
    after = snapshot_params(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())
    assert trainer.optimizers[0].state_dict()["state"] == {}
    assert trainer.optimizers[0].param_groups[0]["lr"] == 0.01
    # `self.log` was only shadowed during the sweep, and the metric updated by the sweep was reset.
    assert "log" not in vars(model) and "log_dict" not in vars(model)
    assert not model.metric.update_called
    assert "train_loss" not in trainer.callback_metrics


def test_divergence_stops_early_and_restores(tmp_path) -> None:
    model = RangeTestModel()
    before = snapshot_params(model)
    range_test = _test_only(longer_sweep=None, min_lr=1e-3, max_lr=1e3, num_steps=40)
    make_trainer(tmp_path, [range_test]).fit(model)
    result = range_test.result
    assert result.stop_reason == "diverged"
    assert 2 <= result.num_steps_run < 40
    assert len(result.lrs) == len(result.losses) == len(result.smoothed_losses) == result.num_steps_run
    assert len(result.running_losses) == result.num_steps_run
    # The stop watches the raw loss: the last three points stand above the starting level (median of the first
    # tenth of num_steps) by 4 times the drop so far (at least 3 noise deviations); no three in a row did before.
    losses = result.losses
    level = statistics.median(losses[:4])
    noise = 1.4826 * statistics.median(abs(b - a) for a, b in zip(losses, losses[1:])) / math.sqrt(2)
    line = [level + 4.0 * max(level - min(losses[: i + 1]), 3 * noise) for i in range(len(losses))]
    above = [loss > bound for loss, bound in zip(losses, line)]
    assert above[-3:] == [True, True, True]
    assert not any(all(above[i : i + 3]) for i in range(4, len(above) - 3))
    assert result.divergence_lr is not None and result.divergence_lr <= result.lrs[-3]
    after = snapshot_params(model)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_nan_loss_stops_and_restores(tmp_path) -> None:
    model = RangeTestModel(nan_above_lr=1e-2)
    before = snapshot_params(model)
    range_test = _test_only(longer_sweep=None, min_lr=1e-4, max_lr=1.0, num_steps=20, divergence_threshold=None)
    trainer = make_trainer(tmp_path, [range_test])
    trainer.fit(model)
    result = range_test.result
    sweep = LRSweep(1e-4, 1.0, 20)
    finite_points = sum(sweep.lr(i) <= 1e-2 for i in range(20))
    assert result.stop_reason == "non-finite loss"
    assert result.num_steps_run == finite_points
    assert all(math.isfinite(v) for v in result.losses + result.smoothed_losses)
    assert model.calls == finite_points + 1
    after = snapshot_params(model)
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert trainer.optimizers[0].state_dict()["state"] == {}


def test_accumulation_clipping_and_dict_loss(tmp_path) -> None:
    model = ClipCountingModel(return_dict=True)
    probe = SweepProbe()
    range_test = _test_only(
        longer_sweep=None,
    )
    make_trainer(tmp_path, [range_test, probe], accumulate_grad_batches=3, gradient_clip_val=0.5).fit(model)
    assert range_test.result.num_steps_run == 12
    assert model.calls == 12 * 3
    assert len(probe.sweep_lrs) == 12
    assert model.clips == 12


def test_a_gradient_accumulation_scheduler_accumulates_in_the_sweep_as_in_the_first_epoch(tmp_path) -> None:
    from lightning.pytorch.callbacks import GradientAccumulationScheduler

    def sweep(callbacks: list[pl.Callback], **flags: Any) -> tuple[RangeTestResult, int]:
        torch.manual_seed(0)
        model, range_test = RangeTestModel(), _test_only(num_steps=12)
        make_trainer(tmp_path, [*callbacks, range_test], **flags).fit(model)
        return range_test.result, model.calls

    # The scheduler sets `trainer.accumulate_grad_batches` only when the epoch starts, after the sweep.
    scheduled, calls = sweep([GradientAccumulationScheduler({0: 4, 1: 2})])
    fixed, _ = sweep([], accumulate_grad_batches=4)
    assert calls == 12 * 4
    assert scheduled == fixed
    assert scheduled != sweep([])[0]


def test_bf16_mixed_runs_the_step_under_autocast(tmp_path) -> None:
    model = RangeTestModel()
    before = snapshot_params(model)
    range_test = _test_only()
    make_trainer(tmp_path, [range_test], precision="bf16-mixed").fit(model)
    assert model.autocast_dtypes == {torch.bfloat16}
    assert range_test.result.num_steps_run == 12
    assert all(math.isfinite(v) for v in range_test.result.losses)
    after = snapshot_params(model)
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("precision", ["bf16-true", "64-true"])
def test_true_precision_converts_the_sweep_batches_like_training(tmp_path, precision: str) -> None:
    # The weights are bf16/float64 and the data float32: the precision plugin converts each batch, sweep included.
    model = RangeTestModel()
    range_test = LRRangeTestCallback(min_lr=1e-4, max_lr=1e-2, num_steps=12)
    trainer = make_trainer(tmp_path, [range_test], precision=precision, max_epochs=1)
    trainer.fit(model)
    assert range_test.result.num_steps_run == 12
    assert all(math.isfinite(v) for v in range_test.result.losses)
    assert trainer.global_step == 5


class PersistentWorkersModel(BatchIndexModel):
    """Shuffled batches from one persistent worker; records the targets of the training batches."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.trained_targets: list[float] = []

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        sweeping = any(getattr(c, "is_running", False) for c in self.trainer.callbacks)
        if not sweeping:
            self.trained_targets.append(float(batch[1][0]))
        return super().training_step(batch, batch_idx)

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        loader = super().train_dataloader()
        return torch.utils.data.DataLoader(
            loader.dataset, batch_size=self.batch_size, shuffle=True, num_workers=1, persistent_workers=True
        )


def _persistent_run(tmp_path, with_test: bool) -> tuple[dict[str, torch.Tensor], list[float]]:
    pl.seed_everything(7)
    model = PersistentWorkersModel()
    callbacks = [LRRangeTestCallback(min_lr=1e-4, max_lr=1.0, num_steps=15)] if with_test else []
    make_trainer(tmp_path, callbacks, max_epochs=2).fit(model)
    return snapshot_params(model), model.trained_targets


def test_persistent_workers_keep_the_training_batches_and_the_result_bit_identical(tmp_path) -> None:
    # The fit loop already holds the persistent iterator of its first epoch: the sweep must leave it alone.
    weights, batches = _persistent_run(tmp_path, with_test=False)
    weights_with_test, batches_with_test = _persistent_run(tmp_path, with_test=True)
    assert batches_with_test == batches and len(batches) == 10
    assert all(torch.equal(weights[k], weights_with_test[k]) for k in weights)


def test_steps_skipped_by_the_grad_scaler_are_retried(tmp_path) -> None:
    # fp16 AMP with a GradScaler on CPU; the 9th training_step's gradient overflows on purpose.
    model = RangeTestModel(overflow_at_call=9)
    probe = SweepProbe()
    range_test = _test_only(longer_sweep=None, divergence_threshold=None)
    plugin = MixedPrecision("16-mixed", "cpu", torch.amp.GradScaler("cpu"))
    trainer = make_trainer(tmp_path, [range_test, probe], plugins=[plugin])
    trainer.fit(model)
    expected = [LRSweep(1e-4, 1e-2, 12).lr(i) for i in range(12)]
    seen = [lrs[0] for lrs in probe.sweep_lrs]
    assert range_test.result.lrs == expected
    assert len(seen) == model.calls > 12
    assert [lr for i, lr in enumerate(seen) if i == 0 or lr != seen[i - 1]] == expected
    assert seen[8] == seen[9]  # the overflowing step was retried at the same lr
    assert model.autocast_dtypes == {torch.float16}
    assert trainer.precision_plugin.scaler.state_dict()["scale"] == 65536.0
    assert trainer.precision_plugin.scaler.state_dict()["_growth_tracker"] == 0


def test_csv_json_png_and_tensorboard(tmp_path) -> None:
    logger = TensorBoardLogger(str(tmp_path), name="tb")
    range_test = _test_only(min_lr=1e-3, max_lr=10.0, num_steps=20)
    make_trainer(tmp_path, [range_test], logger=logger).fit(RangeTestModel())
    result = range_test.result
    log_dir = tmp_path / "tb" / "version_0"

    with open(log_dir / "lr_range_test.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["lr"]) for r in rows] == result.lrs
    assert [float(r["loss"]) for r in rows] == result.losses
    assert [float(r["smoothed_loss"]) for r in rows] == result.smoothed_losses
    assert [float(r["running_loss"]) for r in rows] == result.running_losses
    summary = json.loads((log_dir / "lr_range_test.json").read_text())
    assert RangeTestResult.from_dict({k: v for k, v in summary.items() if k != "config"}) == result
    assert RangeTestResult.load(log_dir / "lr_range_test.json") == result  # the file as written, config and all
    assert summary["config"]["num_steps"] == 20
    assert (log_dir / "lr_range_test.png").read_bytes()[:4] == b"\x89PNG"

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"images": 0, "scalars": 0}).Reload()
    assert "range_test/plot" in events.Tags()["images"]
    for tag, values in [
        ("range_test/loss", result.losses),
        ("range_test/smoothed_loss", result.smoothed_losses),
        ("range_test/lr", result.lrs),
    ]:
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == list(range(result.num_steps_run))
        assert [s.value for s in scalars] == pytest.approx(values, rel=1e-6)


def test_one_cycle_peaks_at_the_suggestion(tmp_path) -> None:
    probe = SweepProbe()
    range_test = LRRangeTestCallback(min_lr=1e-4, max_lr=10.0, num_steps=40)
    trainer = make_trainer(tmp_path, [range_test, OneCycleCallback(), probe], max_epochs=4)
    trainer.fit(RangeTestModel())
    assert range_test.suggested_lr is not None
    assert len(probe.train_lrs) == 20
    assert max(lrs[0] for lrs in probe.train_lrs) == pytest.approx(range_test.suggested_lr, rel=1e-12)


@pytest.mark.parametrize(("optimizer", "strategy"), [("sgd", "edge"), ("adamw", "minimum"), ("nadam", "minimum_nadam")])
def test_auto_suggestion_picks_the_strategy_by_optimizer(tmp_path, optimizer: str, strategy: str) -> None:
    range_test = LRRangeTestCallback(
        min_lr=1e-4, max_lr=10.0, num_steps=40, stop_after_test=True, dirpath=tmp_path / "rt"
    )
    make_trainer(tmp_path, [range_test]).fit(RangeTestModel(optimizer=optimizer))
    result = range_test.result
    assert result is not None and result.suggestion == strategy
    assert result.nonfinite_lr is None  # the raw curve is all the suggestion read
    # Read as the callback reads it: the level from a tenth of the planned 40 steps, the blow-up where the
    # divergence stop found it (the first of its three confirming points).
    diverged_at = result.num_steps_run - 3 if result.stop_reason == "diverged" else None
    reading = read_curve(result.lrs, result.losses, level_points=4, divergence_at=diverged_at)
    expected = suggest_from(reading, strategy).lr
    assert expected is not None and result.suggested_lr == expected
    written = json.loads((tmp_path / "rt" / "lr_range_test.json").read_text())
    assert (written["suggestion"], written["config"]["suggestion"]) == (strategy, "auto")


def test_update_attr_sets_the_attribute_and_the_starting_lr(tmp_path) -> None:
    model = RangeTestModel(groups=2, lr=0.05)
    probe = SweepProbe()
    range_test = LRRangeTestCallback(min_lr=1e-4, max_lr=10.0, num_steps=40, update_attr=True)
    make_trainer(tmp_path, [range_test, probe], max_epochs=1).fit(model)
    suggestion = range_test.suggested_lr
    assert suggestion is not None
    assert model.lr == suggestion
    assert probe.train_lrs[0] == pytest.approx([suggestion / 10, suggestion], rel=1e-12)


def test_update_attr_without_attribute_raises(tmp_path) -> None:
    range_test = _test_only(update_attr="base_lr")
    with pytest.raises(MisconfigurationException, match="has 'base_lr'"):
        make_trainer(tmp_path, [range_test]).fit(RangeTestModel())


def test_weight_decay_sweep(tmp_path) -> None:
    probe = SweepProbe()
    range_test = LRRangeTestCallback(min_lr=1e-4, max_lr=10.0, num_steps=40, weight_decays=[1e-4, 0.3])
    trainer = make_trainer(tmp_path, [range_test, probe], max_epochs=1)
    trainer.fit(RangeTestModel())
    result = range_test.result
    assert [s.weight_decay for s in result.sweeps] == [1e-4, 0.3]
    with_suggestion = [s for s in result.sweeps if s.suggested_lr is not None]
    chosen = min(with_suggestion, key=lambda s: min(s.smoothed_losses))
    assert (result.suggested_lr, result.weight_decay) == (chosen.suggested_lr, chosen.weight_decay)
    assert result.lrs == chosen.lrs
    # Both sweeps start from the same point: the same first batch at the same lr gives the same first loss.
    assert result.sweeps[0].losses[0] == result.sweeps[1].losses[0]
    first = result.sweeps[0].num_steps_run
    assert probe.sweep_wds == [[1e-4]] * first + [[0.3]] * result.sweeps[1].num_steps_run
    assert probe.train_wds[0] == [chosen.weight_decay]
    with open(tmp_path / "lr_range_test.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(s.num_steps_run for s in result.sweeps)
    assert {float(r["weight_decay"]) for r in rows} == {1e-4, 0.3}
    assert (tmp_path / "lr_range_test.png").exists()


@pytest.mark.parametrize("update_attr", [False, True])
def test_resume_reuses_the_result(tmp_path, update_attr: bool) -> None:
    checkpoint = ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), save_last=True)
    first = LRRangeTestCallback(min_lr=1e-4, max_lr=10.0, num_steps=20, update_attr=update_attr)
    make_trainer(tmp_path, [first, checkpoint], max_epochs=1, enable_checkpointing=True).fit(RangeTestModel())

    second = LRRangeTestCallback(min_lr=1e-4, max_lr=10.0, num_steps=20, update_attr=update_attr)
    model = RangeTestModel(lr=0.01)
    trainer = make_trainer(tmp_path, [second], max_epochs=2)
    trainer.fit(model, ckpt_path=str(tmp_path / "ckpt" / "last.ckpt"))
    assert second.result == first.result
    assert model.calls == 5  # one epoch of training, no sweep
    # The module's lr attribute is set from the reused result as from a fresh one.
    assert model.lr == (first.suggested_lr if update_attr else 0.01)


@pytest.mark.parametrize("written", ["before suggestion v2", "now"])
def test_a_resumed_result_without_a_suggestion_says_why_before_one_cycle_keeps_the_configured_lr(
    tmp_path, written: str
) -> None:
    """1cycle's warning points at the range test's ("its warning above"): a reused result must give one too."""
    checkpoint = ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), save_last=True)
    first = LRRangeTestCallback(min_lr=1e-4, max_lr=10.0, num_steps=20)
    make_trainer(tmp_path, [first, checkpoint], max_epochs=1, enable_checkpointing=True).fit(RangeTestModel())
    path = tmp_path / "ckpt" / "last.ckpt"
    saved = torch.load(path, weights_only=True)
    key = next(k for k in saved["callbacks"] if k.startswith("LRRangeTestCallback"))
    result = {**saved["callbacks"][key]["result"], "suggested_lr": None, "message": "The curve said nothing."}
    if written == "before suggestion v2":  # a result dict of the first suggestion: none of the reading's fields
        new_fields = {"shape", "confidence", "suggestion_bracket", "divergence_lr", "nonfinite_lr", "still_falling"}
        result = {k: v for k, v in result.items() if k not in new_fields | {"message", "seconds"}}
    saved["callbacks"][key]["result"] = result
    torch.save(saved, path)

    callbacks = [LRRangeTestCallback(min_lr=1e-4, max_lr=10.0, num_steps=20), OneCycleCallback()]
    with pytest.warns(UserWarning) as seen:
        make_trainer(tmp_path, callbacks, max_epochs=2).fit(RangeTestModel(), ckpt_path=str(path))
    messages = [str(w.message) for w in seen]
    one_cycle = next(i for i, m in enumerate(messages) if "suggested no learning rate" in m)
    reused = [m for m in messages[:one_cycle] if m.startswith("LRRangeTestCallback") and "checkpoint" in m]
    assert len(reused) == 1
    assert ("The curve said nothing." if written == "now" else "stop reason: ") in reused[0]


@pytest.mark.parametrize("max_lr", ["auto", None])
def test_a_resumed_one_cycle_that_keeps_its_peak_skips_a_new_test_and_says_what_it_ignores(
    tmp_path, lightning_log, max_lr: str | None
) -> None:
    # The checkpoint's 1cycle peaked at 0.1 without a range test; this fit adds one and asks for its suggestion.
    checkpoint = ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), every_n_train_steps=3, save_top_k=-1)
    first = [OneCycleCallback(max_lr=0.1), checkpoint]
    make_trainer(tmp_path, first, max_epochs=1, enable_checkpointing=True).fit(RangeTestModel())

    model, range_test, one_cycle = RangeTestModel(), LRRangeTestCallback(num_steps=20), OneCycleCallback(max_lr=max_lr)
    with pytest.warns(UserWarning) as record:
        make_trainer(tmp_path, [range_test, one_cycle], max_epochs=1).fit(
            model, ckpt_path=str(tmp_path / "ckpt" / "epoch=0-step=3.ckpt")
        )
    assert model.calls == 2  # the epoch's last two batches: no sweep
    assert range_test.result is None
    assert one_cycle.schedules[0][0].max_lr == 0.1
    resumed = [str(w.message) for w in record if "resuming with the checkpoint's schedule" in str(w.message)]
    assert len(resumed) == 1
    assert (
        f"it ignores max_lr={max_lr!r} passed now (the peak stays the checkpoint's 0.1, not LRRangeTestCallback's"
        " suggestion)" in resumed[0]
    )
    skipped = [r.getMessage() for r in lightning_log.records if "LRRangeTestCallback: skipping" in r.getMessage()]
    assert len(skipped) == 1 and "a new suggestion would go unused" in skipped[0]


def test_a_resumed_one_cycle_with_a_weight_decay_sweep_still_tests(tmp_path) -> None:
    # The chosen weight decay is used even though the peak lr is not: the test runs.
    checkpoint = ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), every_n_train_steps=3, save_top_k=-1)
    first = [OneCycleCallback(max_lr=0.1), checkpoint]
    make_trainer(tmp_path, first, max_epochs=1, enable_checkpointing=True).fit(RangeTestModel())
    range_test = LRRangeTestCallback(num_steps=12, weight_decays=[1e-4, 1e-3])
    with pytest.warns(UserWarning, match="resuming with the checkpoint's schedule"):
        make_trainer(tmp_path, [range_test, OneCycleCallback()], max_epochs=1).fit(
            RangeTestModel(), ckpt_path=str(tmp_path / "ckpt" / "epoch=0-step=3.ckpt")
        )
    assert range_test.result is not None


def test_state_dict_round_trip() -> None:
    result = RangeTestResult([1e-3, 1e-2], [1.0, 0.5], [1.0, 0.7], 1e-2, "valley", "completed", 2)
    callback = LRRangeTestCallback()
    callback.result = result
    other = LRRangeTestCallback()
    other.load_state_dict(callback.state_dict())
    assert other.result == result and other.suggested_lr == 1e-2


def test_progress_bar_shows_the_sweep(tmp_path, capsys) -> None:
    make_trainer(tmp_path, [_test_only()], enable_progress_bar=True).fit(RangeTestModel())
    assert "LR range test" in capsys.readouterr().out


def _ddp_spawn_fit(tmp_path, range_test: LRRangeTestCallback, model: pl.LightningModule) -> None:
    """Fit ``model`` on 2 spawned CPU processes, each with its own data; each writes its result to rank<N>.json."""
    trainer = make_trainer(
        tmp_path,
        [range_test, DumpResult(str(tmp_path))],
        strategy="ddp_spawn",
        devices=2,
        use_distributed_sampler=False,
    )
    trainer.fit(model)


@pytest.mark.slow
@pytest.mark.ddp
def test_ddp_ranks_average_the_loss_and_agree(tmp_path) -> None:
    range_test = _test_only(min_lr=1e-3, max_lr=1e3, num_steps=40)
    _ddp_spawn_fit(tmp_path, range_test, LocalLossModel(rank_data=True))
    rank0 = json.loads((tmp_path / "rank0.json").read_text())
    rank1 = json.loads((tmp_path / "rank1.json").read_text())
    assert rank0["first_local_losses"] != rank1["first_local_losses"]  # the ranks saw different data
    assert rank0["result"] == rank1["result"]
    assert rank0["result"]["stop_reason"] == "diverged"
    # Whether the 40-step curve reads as flat (then both ranks sweep again, 120 steps) turns on the last bits of
    # the spawned processes' arithmetic; either way both ranks took the same decision and stopped early.
    assert rank0["result"]["num_steps_run"] < (120 if rank0["result"]["swept_again"] else 40)
    # The recorded loss is the mean of the ranks' losses.
    first_mean = (rank0["first_local_losses"][0] + rank1["first_local_losses"][0]) / 2
    assert rank0["result"]["losses"][0] == pytest.approx(first_mean, rel=1e-6)


class OneRankNaNModel(LocalLossModel):
    """Rank 1's loss is NaN at its 25th training step, well inside the descent: a bug of that rank, not the lr."""

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        loss = super().training_step(batch, batch_idx)
        return loss * float("nan") if self.global_rank == 1 and self.calls == 25 else loss


@pytest.mark.slow
@pytest.mark.ddp
def test_a_nan_on_one_ddp_rank_stops_both_and_both_name_its_lr(tmp_path) -> None:
    range_test = _test_only(min_lr=1e-4, max_lr=10.0, num_steps=60)
    _ddp_spawn_fit(tmp_path, range_test, OneRankNaNModel(rank_data=True))
    rank0 = json.loads((tmp_path / "rank0.json").read_text())["result"]
    rank1 = json.loads((tmp_path / "rank1.json").read_text())["result"]
    assert rank0 == rank1
    assert rank0["stop_reason"] == "non-finite loss" and rank0["num_steps_run"] == 24
    assert f"NaN or infinite at lr {rank0['nonfinite_lr']:.3g}" in rank0["message"]
    assert "one process's data under DDP" in rank0["message"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_lr": 1.0, "max_lr": 0.1}, "Expected `min_lr` < `max_lr`"),
        ({"min_lr": 0.0}, "positive finite number for `min_lr`"),
        ({"max_lr": -1.0}, "positive finite number for `max_lr`"),
        ({"num_steps": 5}, "too short to suggest"),
        ({"mode": "cosine"}, "'exponential' or 'linear'"),
        ({"suggestion": "best"}, "Unknown suggestion strategy 'best'"),
        ({"smoothing": 1.0}, r"`smoothing` in \[0, 1\)"),
        ({"divergence_threshold": 0.0}, "positive finite number for `divergence_threshold`"),
        ({"weight_decays": []}, "`weight_decays` is empty"),
        ({"weight_decays": [1e-4, -1e-3]}, "finite number >= 0"),
        ({"weight_decays": [float("inf")]}, "finite number >= 0"),
        ({"weight_decays": 1e-4}, "list of weight decays"),
        ({"weight_decays": [1e-4, 1e-3, 0.0001]}, "lists a value twice"),
        ({"update_attr": ""}, "`update_attr`"),
    ],
)
def test_bad_arguments_raise(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LRRangeTestCallback(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_lr": "1e-5"}, r"`min_lr` to be a positive number, but got '1e-5' \(str\)\. Pass the number min_lr=1e-5"),
        ({"max_lr": [1.0]}, r"`max_lr` to be a positive number, but got \[1.0\] \(list\)"),
    ],
)
def test_sweep_bounds_of_the_wrong_type_are_named_with_what_is_accepted(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LRRangeTestCallback(**kwargs)


def test_tensor_sweep_bounds_are_taken_as_their_floats() -> None:
    callback = LRRangeTestCallback(min_lr=torch.tensor(1e-5), max_lr=torch.tensor(1.0))
    assert callback.sweep.min_lr == pytest.approx(1e-5) and type(callback.sweep.max_lr) is float


@pytest.mark.parametrize(
    ("dirpath", "message"),
    [
        (123, r"Expected `dirpath` to be a directory path .* or None .*, but got 123 \(int\)"),
        ("", r"`dirpath` is empty"),
        ("  ", r"`dirpath` is empty"),
    ],
)
def test_a_dirpath_that_is_no_path_fails_at_construction(dirpath: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LRRangeTestCallback(dirpath=dirpath)


@pytest.mark.parametrize("case", ["a-file", "under-a-file", "unwritable"])
def test_a_dirpath_that_cannot_hold_the_files_fails_before_the_sweep(tmp_path, case: str) -> None:
    existing_file = tmp_path / "notes.txt"
    existing_file.write_text("not a directory")
    if case == "a-file":
        dirpath, reason = existing_file, "it is a file, not a directory"
    elif case == "under-a-file":
        dirpath, reason = existing_file / "range_test", "Not a directory"
    elif os.geteuid() != 0:
        dirpath, reason = tmp_path / "read-only", "(Permission denied|not permitted)"
        dirpath.mkdir(mode=0o500)
    elif os.path.isdir("/sys"):  # root writes into any directory with write permission bits unset, but not into sysfs
        dirpath, reason = Path("/sys"), "(Permission denied|not permitted)"
    else:
        pytest.skip("no unwritable directory for root here")
    model = RangeTestModel()
    message = (
        rf"LRRangeTestCallback\(dirpath='{re.escape(str(dirpath))}'\) cannot hold the range test's files: .*{reason}"
    )
    with pytest.raises(MisconfigurationException, match=message):
        make_trainer(tmp_path, [_test_only(dirpath=dirpath)]).fit(model)
    assert model.calls == 0


def test_a_dirpath_that_does_not_exist_yet_is_created(tmp_path) -> None:
    dirpath = tmp_path / "a" / "b"
    make_trainer(tmp_path, [_test_only(dirpath=str(dirpath))]).fit(RangeTestModel())
    assert (dirpath / "lr_range_test.json").exists()


@pytest.mark.parametrize("name", ["stop_after_test", "progress_bar", "save_files", "log_to_loggers"])
@pytest.mark.parametrize("value", ["False", "true", 1, None])
def test_flags_must_be_bools(name: str, value: Any) -> None:
    # A config's quoted "False" is a string, and a non-empty string is true: it must not pass as a flag.
    with pytest.raises(ValueError, match=re.escape(f"Expected `{name}` to be True or False, but got {value!r}")):
        LRRangeTestCallback(**{name: value})


@pytest.mark.parametrize("value", ["False", "true", 1, 0.0])
def test_update_attr_is_a_bool_or_an_attribute_name(value: Any) -> None:
    with pytest.raises(ValueError, match="`update_attr`.*True, False or the attribute's name"):
        LRRangeTestCallback(update_attr=value)


def test_numpy_bools_are_accepted_as_bools() -> None:
    callback = LRRangeTestCallback(stop_after_test=np.bool_(True), update_attr=np.bool_(False))
    assert callback.stop_after_test is True and callback.update_attr is False
    assert LRRangeTestCallback(update_attr="my_lr").update_attr == "my_lr"


class ManualModel(RangeTestModel):
    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False


class NoOptimizerModel(RangeTestModel):
    def configure_optimizers(self) -> None:
        return None


@pytest.mark.parametrize(
    ("model_cls", "message"),
    [(ManualModel, "needs automatic optimization"), (NoOptimizerModel, "needs an optimizer")],
)
def test_unsupported_modules_raise_before_the_first_batch(tmp_path, model_cls: type, message: str) -> None:
    model = model_cls()
    with pytest.raises(MisconfigurationException, match=message):
        make_trainer(tmp_path, [_test_only()]).fit(model)
    assert model.calls == 0


class FrozenBodyModel(RangeTestModel):
    def configure_optimizers(self) -> Any:
        groups = [{"params": self.body.parameters(), "lr": 0.0}, {"params": self.head.parameters(), "lr": 0.01}]
        return torch.optim.SGD(groups, momentum=0.9)


def test_a_frozen_group_stays_at_lr_0_in_the_sweep_and_after_the_hand_off(tmp_path) -> None:
    probe = SweepProbe()
    range_test = LRRangeTestCallback(longer_sweep=None, min_lr=1e-4, max_lr=10.0, num_steps=30, update_attr=True)
    make_trainer(tmp_path, [range_test, probe], max_epochs=1).fit(FrozenBodyModel())
    assert range_test.suggested_lr is not None
    assert [body for body, _ in probe.sweep_lrs] == [0.0] * len(probe.sweep_lrs)
    assert [head for _, head in probe.sweep_lrs] == range_test.result.lrs
    assert probe.train_lrs[0] == [0.0, range_test.suggested_lr]


def test_fast_dev_run_skips_the_test_and_one_cycle_peaks_at_the_configured_lr(tmp_path) -> None:
    probe = SweepProbe()
    trainer = make_trainer(tmp_path, [LRRangeTestCallback(), OneCycleCallback(), probe], fast_dev_run=True)
    with pytest.warns(UserWarning, match="skipped .`fast_dev_run`., so this smoke run peaks at the optimizer"):
        trainer.fit(RangeTestModel(lr=0.02))
    assert probe.sweep_lrs == []
    assert probe.train_lrs == [[OneCycleSchedule(max_lr=0.02, total_steps=1).lr(0)]]


@pytest.mark.parametrize(
    "case",
    [
        ({"max_lr": None}, StreamModel, "could not tell how many optimizer steps"),
        ({"max_lr": [0.1, 0.2, 0.3]}, RangeTestModel, "has 3 values, but the optimizer.s. have 1 param groups"),
    ],
    ids=["unknown-length", "wrong-list"],
)
def test_one_cycle_settings_that_cannot_work_fail_before_the_sweep(tmp_path, case) -> None:
    kwargs, model_class, message = case
    model = model_class()
    trainer = make_trainer(tmp_path, [LRRangeTestCallback(num_steps=30), OneCycleCallback(**kwargs)], max_epochs=1)
    with pytest.raises(MisconfigurationException, match=message):
        trainer.fit(model)
    assert model.calls == 0


def test_a_fit_that_has_nothing_left_to_train_keeps_the_result(tmp_path) -> None:
    range_test = LRRangeTestCallback(min_lr=1e-4, max_lr=10.0, num_steps=20)
    trainer = make_trainer(tmp_path, [range_test], max_epochs=1)
    model = RangeTestModel()
    trainer.fit(model)
    first, calls = range_test.result, model.calls
    assert first is not None
    trainer.fit(model)  # max_epochs already reached: no training, no test
    assert range_test.result is first
    assert model.calls == calls


class NoLossModel(RangeTestModel):
    def training_step(self, batch: Any, batch_idx: int) -> Any:
        super().training_step(batch, batch_idx)
        return None


def test_a_fit_whose_sweep_fails_holds_no_result_from_an_earlier_fit(tmp_path) -> None:
    range_test = LRRangeTestCallback(min_lr=1e-4, max_lr=1e-2, num_steps=12)
    make_trainer(tmp_path, [range_test], max_epochs=1).fit(RangeTestModel())
    assert range_test.suggested_lr is not None
    with pytest.raises(MisconfigurationException, match="needs `training_step` to return the loss"):
        make_trainer(tmp_path, [range_test], max_epochs=1).fit(NoLossModel())
    assert range_test.result is None


def test_a_config_names_a_suggestion_function_by_its_import_path() -> None:
    # LightningCLI/jsonargparse: a dotted path imports the callable; a strategy name stays a string.
    from jsonargparse import ArgumentParser

    from lightning_onecycle.suggestions import valley

    parser = ArgumentParser()
    parser.add_class_arguments(LRRangeTestCallback, "range_test")
    parsed = parser.parse_args(["--range_test.suggestion", "lightning_onecycle.suggestions.valley"])
    assert parser.instantiate(parsed).range_test.suggestion is valley
    parsed = parser.parse_args(["--range_test.suggestion", "minimum"])
    assert parser.instantiate(parsed).range_test.suggestion == "minimum"
    # A saved config (LightningCLI's config.yaml) holds the name as written, and loads again.
    saved = parser.dump(parsed)
    assert "suggestion: minimum" in saved
    assert parser.instantiate(parser.parse_string(saved)).range_test.suggestion == "minimum"
    with pytest.raises(SystemExit):  # an unknown name fails when the config is read, not after the sweep
        parser.parse_args(["--range_test.suggestion", "best"])


def test_the_strategy_names_a_config_accepts_are_the_strategies() -> None:
    from typing import get_args

    from lightning_onecycle.suggestions import AUTO, STRATEGIES, StrategyName

    assert set(get_args(StrategyName)) == {AUTO, *STRATEGIES}


class _TensorLRModel(RangeTestModel):
    """AdamW with a tensor lr, which torch shares with `optimizer.defaults`."""

    def configure_optimizers(self) -> Any:
        return torch.optim.AdamW(self.parameters(), lr=torch.tensor(0.01))


def test_the_sweep_leaves_a_shared_tensor_lr_and_the_optimizer_defaults_alone(tmp_path):
    model = _TensorLRModel()
    trainer = make_trainer(tmp_path, [LRRangeTestCallback(num_steps=12, save_files=False)], max_epochs=1)
    trainer.fit(model)
    optimizer = trainer.optimizers[0]
    # A group added later inherits `defaults["lr"]`: it must still be the configured lr, not the sweep's last.
    assert float(optimizer.defaults["lr"]) == pytest.approx(0.01)
    assert optimizer.param_groups[0]["lr"] is not optimizer.defaults["lr"]


class _RpropModel(RangeTestModel):
    def configure_optimizers(self) -> Any:
        return torch.optim.Rprop(self.parameters(), lr=0.01)


def test_an_optimizer_that_reads_its_lr_once_is_an_error_before_the_sweep(tmp_path):
    model = _RpropModel()
    trainer = make_trainer(tmp_path, [LRRangeTestCallback(num_steps=12, save_files=False)], max_epochs=1)
    with pytest.raises(MisconfigurationException, match="LRRangeTestCallback changes the learning rate every step"):
        trainer.fit(model)
    assert model.calls == 0


def test_a_second_fit_tests_again_without_overwriting_the_first_tests_files_or_tags(tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(str(tmp_path), name="tb")
    range_test = LRRangeTestCallback(min_lr=1e-3, max_lr=10.0, num_steps=12)
    trainer = make_trainer(tmp_path, [range_test], logger=logger, max_epochs=1)
    model = RangeTestModel()
    trainer.fit(model)
    first = range_test.result
    trainer.fit_loop.max_epochs = 2
    trainer.fit(model)  # continues at global step 5: a new test on the trained model
    second = range_test.result

    log_dir = tmp_path / "tb" / "version_0"
    assert RangeTestResult.load(log_dir / "lr_range_test.json") == first
    assert RangeTestResult.load(log_dir / "lr_range_test_step5.json") == second
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    for tag, result in (("range_test/loss", first), ("range_test/step5/loss", second)):
        scalars = events.Scalars(tag)
        assert [e.step for e in scalars] == list(range(result.num_steps_run))
        assert [e.value for e in scalars] == pytest.approx(result.losses, rel=1e-6)
    assert {"range_test/plot", "range_test/step5/plot"} <= set(events.Tags()["images"])


@pytest.mark.parametrize("explicit_dirpath", [False, True], ids=["default_root_dir", "dirpath"])
def test_a_second_run_into_the_same_directory_keeps_the_first_runs_files(
    tmp_path, lightning_log, explicit_dirpath: bool
) -> None:
    # `logger=False` puts the files in `default_root_dir` (the working directory by default); a config run twice
    # reuses its `dirpath`. Either way the second run must not replace the first one's files.
    dirpath = tmp_path / "range_test" if explicit_dirpath else tmp_path
    results = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        # A sweep long enough to read a descent for both seeds, so that both say where their files went.
        range_test = _test_only(max_lr=1.0, num_steps=30, dirpath=dirpath if explicit_dirpath else None)
        make_trainer(tmp_path, [range_test]).fit(RangeTestModel())
        results.append(range_test.result)
    assert results[0] != results[1]
    assert RangeTestResult.load(dirpath / "lr_range_test.json") == results[0]
    assert RangeTestResult.load(dirpath / "lr_range_test_2.json") == results[1]
    assert (dirpath / "lr_range_test_2.csv").exists() and (dirpath / "lr_range_test_2.png").exists()
    lines = [r.getMessage() for r in lightning_log.records if "LRRangeTestCallback: suggested lr" in r.getMessage()]
    assert len(lines) == 2
    assert str(dirpath / "lr_range_test.{csv,json,png}") in lines[0]
    assert str(dirpath / "lr_range_test_2.{csv,json,png}") in lines[1]


def test_a_test_only_fit_then_a_second_fit_keep_both_tests_files_and_tags(tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(str(tmp_path), name="tb")
    range_test = LRRangeTestCallback(min_lr=1e-3, max_lr=10.0, num_steps=12, stop_after_test=True)
    trainer = make_trainer(tmp_path, [range_test], logger=logger, max_epochs=1)
    model = RangeTestModel()
    trainer.fit(model)
    first = range_test.result
    range_test.stop_after_test = False
    trainer.fit(model)  # still at global step 0: the test runs again
    second = range_test.result

    log_dir = tmp_path / "tb" / "version_0"
    assert RangeTestResult.load(log_dir / "lr_range_test.json") == first
    assert RangeTestResult.load(log_dir / "lr_range_test_test2.json") == second
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("range_test/loss")] == list(range(first.num_steps_run))
    assert [e.step for e in events.Scalars("range_test/test2/loss")] == list(range(second.num_steps_run))


@pytest.mark.parametrize("strategy", ["FSDPStrategy", "DeepSpeedStrategy", "ModelParallelStrategy"])
def test_sharded_strategies_are_refused_before_the_sweep(strategy: str) -> None:
    """They shard parameters and optimizer state, which the snapshot does not restore (no GPU needed to check:
    the check reads the strategy's class)."""
    import lightning.pytorch.strategies as strategies

    from lightning_onecycle.range_test import _check_strategy

    sharded = object.__new__(getattr(strategies, strategy))  # the class is all the check reads
    with pytest.raises(MisconfigurationException, match=f"does not support {strategy}.*strategy='ddp'"):
        _check_strategy(sharded)
    _check_strategy(strategies.SingleDeviceStrategy("cpu"))  # the others pass
