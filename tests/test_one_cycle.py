"""OneCycleCallback inside real Trainer.fit runs: the optimizer sees exactly the schedule."""

from __future__ import annotations

import math
import re
import warnings

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_onecycle import OneCycleCallback, OneCycleSchedule

from helpers import (
    EndlessClassifier,
    FrozenBodyClassifier,
    OptimizerProbe,
    TinyClassifier,
    make_trainer,
    param_groups,
)


def _expected(max_lr: float, total: int, **kw) -> tuple[list[float], list[float]]:
    s = OneCycleSchedule(max_lr=max_lr, total_steps=total, **kw)
    return [s.lr(k) for k in range(total)], [s.momentum(k) for k in range(total)]


def test_fit_applies_the_schedule_every_step(tmp_path, probe):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=0.1), probe], max_epochs=3)
    trainer.fit(TinyClassifier())
    total = 3 * 8
    lrs, moms = _expected(0.1, total)
    assert len(probe.lrs) == total
    assert [v[0] for v in probe.lrs] == pytest.approx(lrs, rel=1e-12)
    assert [v[0] for v in probe.momentums] == pytest.approx(moms, rel=1e-12)


class _TorchOneCycle(TinyClassifier):
    def configure_optimizers(self):
        opt = torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=0.1, total_steps=self.trainer.estimated_stepping_batches, three_phase=True
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def test_fit_matches_torch_one_cycle_lr_in_configure_optimizers(tmp_path):
    ours, theirs = OptimizerProbe(), OptimizerProbe()
    make_trainer(tmp_path, [OneCycleCallback(max_lr=0.1, three_phase=True), ours]).fit(TinyClassifier())
    make_trainer(tmp_path, [theirs]).fit(_TorchOneCycle())
    assert len(ours.lrs) == len(theirs.lrs) == 16
    for a, b in zip(ours.lrs + ours.momentums, theirs.lrs + theirs.momentums):
        assert math.isclose(a[0], b[0], rel_tol=1e-9)


def test_gradient_accumulation_changes_values_once_per_optimizer_step(tmp_path, probe):
    values_per_batch = []

    class BatchProbe(OptimizerProbe):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            values_per_batch.append(trainer.optimizers[0].param_groups[0]["lr"])

    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=0.1), BatchProbe(), probe], accumulate_grad_batches=3)
    trainer.fit(TinyClassifier())
    total = 2 * math.ceil(8 / 3)  # 8 batches an epoch, the last window is short
    assert trainer.global_step == total
    lrs, _ = _expected(0.1, total)
    assert [v[0] for v in probe.lrs] == pytest.approx(lrs, rel=1e-12)
    # the lr seen by every batch of an accumulation window is that window's step value
    assert values_per_batch[:3] == [lrs[0]] * 3 and values_per_batch[3:6] == [lrs[1]] * 3
    assert values_per_batch[6:8] == [lrs[2]] * 2


@pytest.mark.parametrize("extra", [{"gradient_clip_val": 0.01}, {"precision": "bf16-mixed"}])
def test_clipping_and_bf16_leave_the_schedule_exact(tmp_path, probe, extra):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=0.2, anneal_strategy="linear"), probe], **extra)
    trainer.fit(TinyClassifier())
    lrs, moms = _expected(0.2, 16, anneal_strategy="linear")
    assert [v[0] for v in probe.lrs] == pytest.approx(lrs, rel=1e-12)
    assert [v[0] for v in probe.momentums] == pytest.approx(moms, rel=1e-12)


def test_two_param_groups_with_their_own_max_lr(tmp_path, probe):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=[0.01, 0.3]), probe])
    trainer.fit(TinyClassifier(groups=2))
    for group, peak in enumerate([0.01, 0.3]):
        lrs, _ = _expected(peak, 16)
        assert [v[group] for v in probe.lrs] == pytest.approx(lrs, rel=1e-12)


def test_float_max_lr_keeps_the_configured_ratio_between_groups(tmp_path, probe):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=0.5), probe])
    trainer.fit(TinyClassifier(groups=2, lr=0.05))  # body at 1/10 of the head
    head, _ = _expected(0.5, 16)
    body, _ = _expected(0.05, 16)
    assert [v[1] for v in probe.lrs] == pytest.approx(head, rel=1e-12)
    assert [v[0] for v in probe.lrs] == pytest.approx(body, rel=1e-12)


def test_max_lr_none_uses_the_configured_lrs(tmp_path, probe):
    trainer = make_trainer(tmp_path, [OneCycleCallback(pct_start=0.25), probe])
    trainer.fit(TinyClassifier(groups=2, lr=0.07))  # the peak falls on step 3 of 16
    assert max(v[1] for v in probe.lrs) == pytest.approx(0.07)
    assert max(v[0] for v in probe.lrs) == pytest.approx(0.007)


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop"])
def test_momentum_goes_to_betas_or_momentum(tmp_path, probe, name):
    model = TinyClassifier(optimizer=name, lr=0.01)
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=0.01, base_momentum=0.8, max_momentum=0.9), probe])
    trainer.fit(model)
    _, moms = _expected(0.01, 16, base_momentum=0.8, max_momentum=0.9)
    assert [v[0] for v in probe.momentums] == pytest.approx(moms, rel=1e-12)
    if name != "rmsprop":
        assert trainer.optimizers[0].param_groups[0]["betas"][1] == 0.999  # beta2 untouched


def test_optimizer_without_momentum_cycles_lr_and_warns_once(tmp_path, probe):
    with pytest.warns(UserWarning, match="have no momentum or betas; only their learning rate is cycled") as rec:
        make_trainer(tmp_path, [OneCycleCallback(max_lr=0.1), probe]).fit(TinyClassifier(optimizer="adagrad"))
    assert sum("only their learning rate" in str(w.message) for w in rec) == 1
    lrs, _ = _expected(0.1, 16)
    assert [v[0] for v in probe.lrs] == pytest.approx(lrs, rel=1e-12)


def test_explicit_momentum_cycling_without_momentum_is_an_error(tmp_path, probe):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=0.1, cycle_momentum=True), probe])
    with pytest.raises(MisconfigurationException, match=r"cycle_momentum=True\) needs momentum"):
        trainer.fit(TinyClassifier(optimizer="sgd-nomomentum"))
    assert probe.batches == 0


def test_past_the_last_step_holds_the_final_value_and_warns_once(tmp_path, probe):
    with pytest.warns(UserWarning, match="run past the schedule's 5 steps") as rec:
        make_trainer(tmp_path, [OneCycleCallback(max_lr=0.1, total_steps=5), probe]).fit(TinyClassifier())
    assert sum("run past the schedule" in str(w.message) for w in rec) == 1
    lrs, _ = _expected(0.1, 5)
    assert [v[0] for v in probe.lrs[:5]] == pytest.approx(lrs, rel=1e-12)
    assert all(v[0] == pytest.approx(lrs[-1], rel=1e-12) for v in probe.lrs[5:])
    assert len(probe.lrs) == 16


class _StopAfter(OptimizerProbe):
    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch + 1 == self.epochs:
            trainer.should_stop = True


def test_resume_follows_the_uninterrupted_trajectory(tmp_path):
    full = OptimizerProbe()
    make_trainer(tmp_path / "full", [OneCycleCallback(max_lr=0.1), full], max_epochs=4).fit(TinyClassifier())

    first = _StopAfter(2)
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    make_trainer(
        tmp_path / "a", [OneCycleCallback(max_lr=0.1), first, ckpt], max_epochs=4, enable_checkpointing=True
    ).fit(TinyClassifier())
    second = OptimizerProbe()
    make_trainer(tmp_path / "b", [OneCycleCallback(max_lr=0.1), second], max_epochs=4).fit(
        TinyClassifier(), ckpt_path=str(tmp_path / "ckpt" / "last.ckpt")
    )
    assert len(first.lrs) == 16 and len(second.lrs) == 16
    assert first.lrs + second.lrs == full.lrs
    assert first.momentums + second.momentums == full.momentums


def test_resume_with_more_epochs_keeps_the_checkpointed_schedule(tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    make_trainer(tmp_path / "a", [OneCycleCallback(max_lr=0.1), ckpt], max_epochs=2, enable_checkpointing=True).fit(
        TinyClassifier()
    )
    probe = OptimizerProbe()
    with pytest.warns(UserWarning, match="run past the schedule's 16 steps"):
        make_trainer(tmp_path / "b", [OneCycleCallback(max_lr=0.1), probe], max_epochs=3).fit(
            TinyClassifier(), ckpt_path=str(tmp_path / "ckpt" / "last.ckpt")
        )
    lrs, _ = _expected(0.1, 16)
    assert [v[0] for v in probe.lrs] == pytest.approx([lrs[-1]] * 8, rel=1e-12)


def test_resume_with_other_settings_keeps_the_checkpoints_cycle_and_says_what_it_ignores(tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    make_trainer(tmp_path / "a", [OneCycleCallback(max_lr=0.1), ckpt], max_epochs=2, enable_checkpointing=True).fit(
        TinyClassifier()
    )
    probe = OptimizerProbe()
    callback = OneCycleCallback(max_lr=0.5, total_steps=32, pct_start=0.4)
    with pytest.warns(UserWarning) as record:
        make_trainer(tmp_path / "b", [callback, probe], max_epochs=4).fit(
            TinyClassifier(), ckpt_path=str(tmp_path / "ckpt" / "last.ckpt")
        )
    resumed = next(str(w.message) for w in record if "resuming with the checkpoint's schedule" in str(w.message))
    assert "it ignores pct_start=0.4, total_steps=32, max_lr=0.5 passed now" in resumed
    assert "its cycle ends at optimizer step 16 while this run has 32 steps" in resumed
    assert callback.total_steps == 16 and callback.schedules[0][0].max_lr == 0.1
    lrs, _ = _expected(0.1, 16)
    assert [v[0] for v in probe.lrs] == pytest.approx([lrs[-1]] * 16, rel=1e-12)


def test_a_second_fit_of_the_same_trainer_runs_a_new_cycle_over_its_own_steps(tmp_path):
    model, probe = TinyClassifier(), OptimizerProbe()
    callback = OneCycleCallback(max_lr=0.1)
    trainer = make_trainer(tmp_path, [callback, probe], max_epochs=2)
    trainer.fit(model)
    trainer.fit_loop.max_epochs = 5
    trainer.fit(model)

    first, _ = _expected(0.1, 16)
    second, second_momentum = _expected(0.1, 24)  # 3 more epochs: a cycle of their 24 steps, from its start
    assert [v[0] for v in probe.lrs] == pytest.approx(first + second, rel=1e-12)
    assert [v[0] for v in probe.momentums[16:]] == pytest.approx(second_momentum, rel=1e-12)
    assert trainer.global_step == 40 and callback.total_steps == 24


def test_a_second_fit_after_a_mid_epoch_stop_gets_a_cycle_of_the_steps_it_runs(tmp_path):
    model, probe = TinyClassifier(), OptimizerProbe()
    callback = OneCycleCallback(max_lr=0.1)
    trainer = make_trainer(tmp_path, [callback, probe], max_epochs=3, max_steps=5)
    trainer.fit(model)
    trainer.fit_loop.epoch_loop.max_steps = -1
    trainer.fit(model)  # Lightning starts it at the next epoch: 2 epochs of 8 steps
    assert len(probe.lrs) == 5 + 16 and callback.total_steps == 16
    assert probe.lrs[-1][0] == pytest.approx(0.1 / 25 / 1e4, rel=1e-9)  # annealed all the way


def test_resuming_with_the_same_explicit_total_steps_says_nothing(tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=4, save_top_k=-1)

    def callbacks():
        return [OneCycleCallback(max_lr=0.1, total_steps=100)]

    make_trainer(tmp_path / "a", [*callbacks(), ckpt], enable_checkpointing=True).fit(TinyClassifier())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_trainer(tmp_path / "b", callbacks()).fit(
            TinyClassifier(), ckpt_path=str(tmp_path / "ckpt" / "epoch=0-step=4.ckpt")
        )
    assert not [w for w in caught if "OneCycleCallback" in str(w.message)]


def test_a_gradient_accumulation_scheduler_is_counted_epoch_by_epoch(tmp_path, probe):
    from lightning.pytorch.callbacks import GradientAccumulationScheduler

    accumulation = GradientAccumulationScheduler({0: 1, 1: 4})  # 8 batches an epoch: 8, then 2 steps an epoch
    callback = OneCycleCallback(max_lr=0.1)
    make_trainer(tmp_path, [accumulation, callback, probe], max_epochs=3).fit(TinyClassifier())
    lrs, _ = _expected(0.1, 12)
    assert callback.total_steps == 12
    assert [v[0] for v in probe.lrs] == pytest.approx(lrs, rel=1e-12)  # ends at the cycle's final lr


@pytest.mark.parametrize("flags", [{"limit_train_batches": 0}, {"max_steps": 0}])
def test_a_fit_that_trains_nothing_is_no_error(tmp_path, probe, flags):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=0.1), probe], **flags)
    trainer.fit(TinyClassifier())
    assert trainer.global_step == 0 and probe.lrs == []


def test_logs_lr_and_momentum_to_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path, name="tb")
    make_trainer(tmp_path, [OneCycleCallback(max_lr=[0.01, 0.1])], logger=logger).fit(TinyClassifier(groups=2))
    events = EventAccumulator(logger.log_dir, size_guidance={"scalars": 0})
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"lr-SGD/pg1", "lr-SGD/pg2", "lr-SGD/pg1-momentum", "lr-SGD/pg2-momentum"} <= tags
    for tag, peak in (("lr-SGD/pg1", 0.01), ("lr-SGD/pg2", 0.1)):
        scalars = events.Scalars(tag)
        assert [s.step for s in scalars] == list(range(16))
        lrs, _ = _expected(peak, 16)
        assert [s.value for s in scalars] == pytest.approx(lrs, rel=1e-6)  # stored as float32
    _, moms = _expected(0.1, 16)
    assert [s.value for s in events.Scalars("lr-SGD/pg2-momentum")] == pytest.approx(moms, rel=1e-6)


class _KeyLogger(Logger):
    """Keeps the keys of every metric logged to it."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: set[str] = set()

    @property
    def name(self) -> str:
        return "keys"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.keys.update(metrics)


class _NamedGroups(TinyClassifier):
    def configure_optimizers(self):
        groups = [
            {"params": self.body.parameters(), "name": "body"},
            {"params": self.head.parameters(), "name": "head"},
        ]
        return torch.optim.Adam(groups, lr=0.01)


@pytest.mark.parametrize(
    "model",
    [
        lambda: TinyClassifier(),
        lambda: TinyClassifier(groups=2),
        lambda: _NamedGroups(),
        lambda: _TwoOptimizersManual(),
    ],
    ids=["one-group", "two-groups", "two-named-groups", "two-optimizers-of-one-class"],
)
def test_the_tags_are_a_learning_rate_monitors(tmp_path, model):
    # So that either can replace the other in a user's dashboards: the monitor's tags, read from a real one.
    ours, monitors = _KeyLogger(), _KeyLogger()
    make_trainer(tmp_path, [OneCycleCallback()], logger=ours, max_epochs=1, log_every_n_steps=1).fit(model())
    monitor = LearningRateMonitor(logging_interval="step", log_momentum=True)
    make_trainer(tmp_path, [monitor], logger=monitors, max_epochs=1, log_every_n_steps=1).fit(model())
    assert any(key.endswith("-momentum") for key in monitors.keys)
    assert ours.keys == monitors.keys  # the module's own metrics, and the lr and momentum tags


def test_log_every_n_steps_thins_the_logged_points(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path, name="tb")
    make_trainer(tmp_path, [OneCycleCallback(max_lr=0.1, log_every_n_steps=5)], logger=logger).fit(TinyClassifier())
    events = EventAccumulator(logger.log_dir, size_guidance={"scalars": 0})
    events.Reload()
    assert [s.step for s in events.Scalars("lr-SGD")] == [0, 5, 10, 15]


def test_scheduler_from_configure_optimizers_is_a_conflict(tmp_path, probe):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=0.1), probe])
    with pytest.raises(MisconfigurationException, match=r"also returned a scheduler \(StepLR\)"):
        trainer.fit(TinyClassifier(scheduler=True))
    assert probe.batches == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pct_start": 1.2}, "`pct_start` strictly between 0 and 1"),
        ({"max_lr": -1.0}, "positive finite number for `max_lr`"),
        ({"max_lr": [0.1, float("inf")]}, "`max_lr`"),
        ({"max_lr": "big"}, "Expected `max_lr` to be a positive number.*'auto'.*but got 'big' \\(str\\)"),
        ({"total_steps": 0}, "positive integer `total_steps`"),
        ({"max_lr_factor": 0}, "`max_lr_factor`"),
        ({"log_every_n_steps": -1}, "`log_every_n_steps`"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OneCycleCallback(**kwargs)


@pytest.mark.parametrize("name", ["three_phase", "keep_group_ratios", "cycle_momentum"])
@pytest.mark.parametrize("value", ["False", "true", 1, 0])
def test_flags_must_be_bools(name, value):
    # A config's quoted "False" is a string, and a non-empty string is true: it must not pass as a flag.
    with pytest.raises(ValueError, match=re.escape(f"`{name}` to be True or False") + ".*" + re.escape(repr(value))):
        OneCycleCallback(max_lr=0.1, **{name: value})


def test_numpy_bools_are_accepted_as_bools():
    import numpy as np

    callback = OneCycleCallback(three_phase=np.bool_(True), keep_group_ratios=np.bool_(False), cycle_momentum=None)
    assert callback.settings.three_phase is True and callback.settings.keep_group_ratios is False
    assert OneCycleCallback(cycle_momentum=np.bool_(False)).cycle_momentum is False
    assert OneCycleSchedule(max_lr=0.1, total_steps=10, three_phase=np.bool_(True)).three_phase is True


@pytest.mark.parametrize(
    ("max_lr", "message"),
    [
        ("0.1", r"but got '0.1' \(str\)\. Pass the number max_lr=0.1, not a string"),
        ([0.1, "0.2"], r"but got \[0.1, '0.2'\]: its item 1 is '0.2' \(str\)"),
        ({"body": 0.1}, r"but got \{'body': 0.1\} \(dict\)"),
        (torch.tensor([[0.1]]), r"but got a tensor of shape \(1, 1\)"),
    ],
)
def test_a_max_lr_of_the_wrong_type_is_named_with_what_is_accepted(max_lr, message):
    with pytest.raises(
        ValueError, match=r"Expected `max_lr` to be a positive number \(the peak lr\), a list.*" + message
    ):
        OneCycleCallback(max_lr=max_lr)


def test_the_range_test_class_instead_of_an_instance_says_to_pass_an_instance():
    from lightning_onecycle import LRRangeTestCallback

    message = r"got the class LRRangeTestCallback, not an instance\. Pass an instance, LRRangeTestCallback\(\)"
    with pytest.raises(ValueError, match=message):
        OneCycleCallback(max_lr=LRRangeTestCallback)


def test_tensor_max_lrs_are_taken_as_their_floats():
    assert OneCycleCallback(max_lr=torch.tensor(0.1)).settings.max_lr == pytest.approx(0.1)
    assert type(OneCycleCallback(max_lr=torch.tensor(0.1)).settings.max_lr) is float
    assert OneCycleCallback(max_lr=torch.tensor([0.1, 0.2])).settings.max_lr == pytest.approx((0.1, 0.2))
    assert OneCycleCallback(max_lr=[torch.tensor(0.1), 0.2]).settings.max_lr == pytest.approx((0.1, 0.2))


def test_max_lr_list_of_the_wrong_length(tmp_path, probe):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=[0.1, 0.2, 0.3]), probe])
    with pytest.raises(MisconfigurationException, match="has 3 values, but the optimizer\\(s\\) have 2 param groups"):
        trainer.fit(TinyClassifier(groups=2))
    assert probe.lrs == []


def test_non_positive_configured_lr(tmp_path, probe):
    trainer = make_trainer(tmp_path, [OneCycleCallback(), probe])
    with pytest.raises(MisconfigurationException, match="learning rates must be finite and positive"):
        trainer.fit(TinyClassifier(lr=0.0))
    assert probe.lrs == []


def test_auto_without_a_range_test(tmp_path):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr="auto")])
    with pytest.raises(MisconfigurationException, match="Add `LRRangeTestCallback\\(\\)`"):
        trainer.fit(TinyClassifier())


def test_unknown_number_of_steps(tmp_path, probe):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=0.1), probe], max_epochs=-1, max_steps=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(MisconfigurationException, match="could not tell how many optimizer steps"):
            trainer.fit(EndlessClassifier())
    assert probe.lrs == []


def test_iterable_data_with_max_steps_is_fine(tmp_path, probe):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=0.1), probe], max_epochs=-1, max_steps=12)
    trainer.fit(EndlessClassifier())
    lrs, _ = _expected(0.1, 12)
    assert [v[0] for v in probe.lrs] == pytest.approx(lrs, rel=1e-12)


class _TensorLR(TinyClassifier):
    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=torch.tensor(0.01))


def test_tensor_lr_is_scheduled_in_place(tmp_path, probe):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=0.01), probe])
    trainer.fit(_TensorLR())
    assert isinstance(trainer.optimizers[0].param_groups[0]["lr"], torch.Tensor)
    lrs, _ = _expected(0.01, 16)
    assert [v[0] for v in probe.lrs] == pytest.approx(lrs, rel=1e-6)


class _NoSyncOneCycle(OneCycleCallback):
    """Fails the test if a step after the first reads a tensor back to the host."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == 0:
            return super().on_train_batch_start(trainer, pl_module, batch, batch_idx)

        def forbidden(*args, **kwargs):
            raise AssertionError("host-device sync in the per-step hook")

        names = ("item", "tolist", "cpu", "numpy", "__float__", "__bool__")
        saved = {name: getattr(torch.Tensor, name) for name in names}
        try:
            for name in names:
                setattr(torch.Tensor, name, forbidden)
            super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
        finally:
            for name, fn in saved.items():
                setattr(torch.Tensor, name, fn)


def test_per_step_hook_reads_nothing_back_from_the_device(tmp_path, probe):
    logger = TensorBoardLogger(tmp_path, name="tb")
    trainer = make_trainer(tmp_path, [_NoSyncOneCycle(max_lr=0.01), probe], logger=logger)
    trainer.fit(_TensorLR())
    assert len(probe.lrs) == 16


class _NoOptimizer(TinyClassifier):
    def configure_optimizers(self):
        return None


def test_no_optimizer_is_an_error(tmp_path, probe):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=0.1), probe])
    with pytest.raises(MisconfigurationException, match="needs an optimizer, but `configure_optimizers` returned none"):
        trainer.fit(_NoOptimizer())
    assert probe.batches == 0


class _TwoOptimizersManual(TinyClassifier):
    """Manual optimization with two optimizers (body, head), each stepping once a batch."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self(x), y)
        for opt in self.optimizers():
            opt.zero_grad()
        self.manual_backward(loss)
        for opt in self.optimizers():
            opt.step()

    def configure_optimizers(self):
        return [
            torch.optim.SGD(self.body.parameters(), lr=0.01, momentum=0.9),
            torch.optim.SGD(self.head.parameters(), lr=0.01, momentum=0.9),
        ]


@pytest.mark.parametrize(
    "limits", [{"max_epochs": 2}, {"max_epochs": -1, "max_steps": 16}], ids=["epochs", "max_steps"]
)
def test_manual_optimization_with_two_optimizers_spans_the_batches_the_run_has(tmp_path, probe, limits):
    # max_steps counts both optimizers' steps: 16 steps are 8 batches, the cycle's length either way.
    callback = OneCycleCallback(max_lr=0.1)
    make_trainer(tmp_path, [callback, probe], **limits).fit(_TwoOptimizersManual())
    batches = 16 if "max_steps" not in limits else 8
    lrs, moms = _expected(0.1, batches)
    assert callback.total_steps == batches
    assert len(probe.lrs) == 2 * batches
    assert [v[0] for v in probe.lrs[::2]] == pytest.approx(lrs, rel=1e-12)
    assert [v[0] for v in probe.lrs[1::2]] == pytest.approx(lrs, rel=1e-12)
    assert probe.lrs[-1][0] == pytest.approx(0.1 / 25 / 1e4, rel=1e-9)  # annealed all the way


class _StepRecorder(pl.loggers.Logger):
    """Keeps every ``log_metrics`` call's step per metric name."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: dict[str, list[int]] = {}

    name, version = "recorder", 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        for key in metrics:
            self.steps.setdefault(key, []).append(step)


def test_manual_optimization_logs_lr_on_lightnings_own_x_axis(tmp_path):
    class _Logged(_TwoOptimizersManual):
        def training_step(self, batch, batch_idx):
            super().training_step(batch, batch_idx)
            self.log("batch_metric", 1.0, on_step=True, on_epoch=False)

    recorder = _StepRecorder()
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=0.1)], logger=recorder, log_every_n_steps=1)
    trainer.fit(_Logged())
    assert recorder.steps["lr-SGD"] == recorder.steps["lr-SGD-1"] == list(range(16))  # one point a batch
    assert recorder.steps["batch_metric"] == list(range(16))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_schedule_that_reaches_zero_momentum_keeps_running(tmp_path, probe, optimizer):
    # The peak (momentum 0.0 exactly) falls on step 3 of 16 with pct_start=0.25; the step after it must run.
    callback = OneCycleCallback(max_lr=0.1, pct_start=0.25, base_momentum=0.0, max_momentum=0.9)
    make_trainer(tmp_path, [callback, probe], max_epochs=2).fit(TinyClassifier(optimizer=optimizer))
    _, moms = _expected(0.1, 16, pct_start=0.25, base_momentum=0.0, max_momentum=0.9)
    assert moms[3] == 0.0
    assert [v[0] for v in probe.momentums] == pytest.approx(moms, abs=1e-15)


def test_two_schedule_callbacks_are_an_error_before_training(tmp_path, probe):
    from lightning_onecycle import CyclicLRCallback

    callbacks = [OneCycleCallback(max_lr=0.1), CyclicLRCallback(base_lr=0.001, max_lr=0.01), probe]
    with pytest.raises(MisconfigurationException, match="OneCycleCallback and CyclicLRCallback would both set"):
        make_trainer(tmp_path, callbacks).fit(TinyClassifier())
    assert probe.lrs == []


def test_numpy_numbers_are_accepted_and_kept_as_plain_python(tmp_path, probe):
    import numpy as np

    callback = OneCycleCallback(max_lr=np.float32(0.1), total_steps=np.int64(16), pct_start=np.float64(0.25))
    make_trainer(tmp_path, [callback, probe]).fit(TinyClassifier())
    lrs, _ = _expected(0.1, 16, pct_start=0.25)
    assert [v[0] for v in probe.lrs] == pytest.approx(lrs, rel=1e-6)  # 0.1 as float32 is 0.1 to 7 digits
    state = callback.state_dict()["resolved"]
    assert type(state["total_steps"]) is int and type(state["pct_start"]) is float
    assert all(type(lr) is float for lrs in state["max_lrs"] for lr in lrs)


@pytest.mark.parametrize("max_lr", [0.1, None])
def test_a_frozen_group_at_lr_0_is_left_alone(tmp_path, probe, max_lr):
    model = FrozenBodyClassifier()
    body = [p.detach().clone() for p in model.body.parameters()]
    callback = OneCycleCallback(max_lr=max_lr)
    make_trainer(tmp_path, [callback, probe]).fit(model)
    lrs, moms = _expected(0.1 if max_lr else 0.01, 16)
    assert [v[0] for v in probe.lrs] == [0.0] * 16
    assert [v[0] for v in probe.momentums] == [0.9] * 16
    assert [v[1] for v in probe.lrs] == pytest.approx(lrs, rel=1e-12)
    assert [v[1] for v in probe.momentums] == pytest.approx(moms, rel=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(body, model.body.parameters()))


class _StatefulLoader(torch.utils.data.DataLoader):
    """A DataLoader with state in checkpoints, as stateful loaders (torchdata, Lightning's) have."""

    restored: list = []

    def state_dict(self):
        return {"position": 42}

    def load_state_dict(self, state):
        _StatefulLoader.restored.append(state)


class _StatefulLoaderModel(TinyClassifier):
    def train_dataloader(self):
        return _StatefulLoader(super().train_dataloader().dataset, batch_size=8)


def test_a_mid_epoch_resume_restores_the_loader_state_and_needs_no_step_count(tmp_path):
    # The checks before training must not load the data early on resume (the loader's state would be lost)
    # nor ask for a step count the checkpoint already holds.
    class Crash(Exception):
        pass

    class SaveAndCrash(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step == 2:
                trainer.save_checkpoint(tmp_path / "mid.ckpt")
                raise Crash

    class StopAt(pl.Callback):
        def on_train_batch_end(self, trainer, *args):
            trainer.should_stop = trainer.should_stop or trainer.global_step >= 6

    with pytest.raises(Crash):
        make_trainer(tmp_path, [OneCycleCallback(max_lr=0.1), SaveAndCrash()], max_epochs=2).fit(_StatefulLoaderModel())
    _StatefulLoader.restored.clear()
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=0.1), StopAt()], max_epochs=-1, max_steps=-1)
    trainer.fit(_StatefulLoaderModel(), ckpt_path=tmp_path / "mid.ckpt")
    assert _StatefulLoader.restored == [{"position": 42}]
    assert trainer.global_step == 6

    # Resumed with a known run length: the schedule's length is checked against it, after the loader's state is back.
    _StatefulLoader.restored.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # same settings: the resumed schedule fits, nothing to say
        warnings.filterwarnings("ignore", message=".*(num_workers|ckpt_path|mid-epoch|checkpoint path)")
        trainer = make_trainer(tmp_path / "again", [OneCycleCallback(max_lr=0.1)], max_epochs=2)
        trainer.fit(_StatefulLoaderModel(), ckpt_path=tmp_path / "mid.ckpt")
    assert _StatefulLoader.restored == [{"position": 42}]
    assert trainer.global_step == 16


def test_a_learning_rate_monitor_alongside_gets_a_warning(tmp_path):
    from lightning.pytorch.callbacks import LearningRateMonitor

    callbacks = [LearningRateMonitor(logging_interval="step"), OneCycleCallback(max_lr=0.1)]
    logger = TensorBoardLogger(str(tmp_path), name="tb")
    with pytest.warns(UserWarning, match="Remove the LearningRateMonitor, or pass log_every_n_steps=0"):
        make_trainer(tmp_path, callbacks, logger=logger).fit(TinyClassifier())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet = [LearningRateMonitor(logging_interval="step"), OneCycleCallback(max_lr=0.1, log_every_n_steps=0)]
        make_trainer(tmp_path, quiet, logger=TensorBoardLogger(str(tmp_path), name="tb2")).fit(TinyClassifier())
    assert not [w for w in caught if "LearningRateMonitor" in str(w.message)]


class _SharedTensorLR(TinyClassifier):
    """Two param groups that inherit one tensor lr: torch puts the same tensor object in both."""

    def configure_optimizers(self):
        groups = [{"params": self.body.parameters()}, {"params": self.head.parameters()}]
        return torch.optim.Adam(groups, lr=torch.tensor(0.01))


def test_a_tensor_lr_shared_by_two_groups_follows_each_groups_schedule(tmp_path, probe):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=[0.001, 0.1]), probe], max_epochs=1)
    trainer.fit(_SharedTensorLR())
    body, _ = _expected(0.001, 8)
    head, _ = _expected(0.1, 8)
    assert [v[0] for v in probe.lrs] == pytest.approx(body, rel=1e-6)
    assert [v[1] for v in probe.lrs] == pytest.approx(head, rel=1e-6)
    assert float(trainer.optimizers[0].defaults["lr"]) == pytest.approx(0.01)


class _Rprop(TinyClassifier):
    def configure_optimizers(self):
        return torch.optim.Rprop(self.parameters(), lr=0.01)


def test_an_optimizer_that_reads_its_lr_once_is_an_error_before_training(tmp_path, probe):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=0.1), probe])
    with pytest.raises(MisconfigurationException, match="Rprop reads its lr only at its first step"):
        trainer.fit(_Rprop())
    assert probe.batches == 0


class _AdamNoBeta1(TinyClassifier):
    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=0.01, betas=(0.0, 0.99))


def test_adam_with_beta1_zero_keeps_it_and_warns(tmp_path, probe):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=0.01), probe], max_epochs=1)
    with pytest.warns(UserWarning, match=r"have no momentum or betas; only their learning rate is cycled"):
        trainer.fit(_AdamNoBeta1())
    assert {m[0] for m in probe.momentums} == {0.0}
    assert [v[0] for v in probe.lrs] == pytest.approx(_expected(0.01, 8)[0], rel=1e-12)


class _Unfreezing(TinyClassifier):
    """Trains the head only, then adds the body as a second param group at the start of epoch 1."""

    def configure_optimizers(self):
        return torch.optim.SGD(self.head.parameters(), lr=0.05, momentum=0.9)

    def on_train_epoch_start(self):
        if self.current_epoch == 1:
            self.trainer.optimizers[0].add_param_group({"params": self.body.parameters(), "lr": 0.003})


def test_a_group_added_during_training_is_left_alone_with_a_warning(tmp_path, probe):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=0.05), probe])
    with pytest.warns(UserWarning, match=r"1 param group\(s\) were added to SGD during training \(groups \[1\]\)"):
        trainer.fit(_Unfreezing())
    lrs, _ = _expected(0.05, 16)
    assert [v[0] for v in probe.lrs] == pytest.approx(lrs, rel=1e-12)  # the first group keeps its schedule
    assert [v[1:] for v in probe.lrs] == [[]] * 8 + [[0.003]] * 8


def test_resuming_after_a_group_was_added_keeps_the_names_and_says_nothing(tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1)
    full = make_trainer(tmp_path / "a", [OneCycleCallback(max_lr=0.05), ckpt], enable_checkpointing=True, max_epochs=3)
    with pytest.warns(UserWarning, match="were added to SGD during training"):
        full.fit(_Unfreezing())

    class _AddBack(pl.Callback):  # as BackboneFinetuning does on resume: the added group is back before we look
        def on_fit_start(self, trainer, pl_module):
            trainer.optimizers[0].add_param_group({"params": pl_module.body.parameters(), "lr": 0.003})

    callback = OneCycleCallback(max_lr=0.05)
    resumed = make_trainer(tmp_path / "b", [_AddBack(), callback], max_epochs=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed.fit(_Unfreezing(), ckpt_path=str(tmp_path / "ckpt" / "epoch=1-step=16.ckpt"))
    assert not [w for w in caught if "resuming with the checkpoint's schedule" in str(w.message)]
    assert callback._names == [["SGD"]]  # the scheduled group keeps its tag, lr-SGD


class _Shrinking(TinyClassifier):
    def configure_optimizers(self):
        return torch.optim.SGD(param_groups(self, 2, 0.05), lr=0.05, momentum=0.9)

    def on_train_epoch_start(self):
        if self.current_epoch == 1:
            del self.trainer.optimizers[0].param_groups[0]


def test_a_group_removed_during_training_is_an_error(tmp_path):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=0.05)])
    with pytest.raises(MisconfigurationException, match="scheduled 2 param groups of SGD, but it now has 1"):
        trainer.fit(_Shrinking(groups=2))


def test_a_shared_tensor_lr_restored_from_a_checkpoint_is_split_again(tmp_path, probe):
    # The checkpoint's optimizer state comes back after `on_fit_start`, tensor sharing and all.
    first = make_trainer(tmp_path / "a", [], max_epochs=1)
    first.fit(_SharedTensorLR())
    first.save_checkpoint(tmp_path / "shared.ckpt")
    callback = OneCycleCallback(max_lr=[0.1, 0.001], keep_group_ratios=False)
    resumed = make_trainer(tmp_path / "b", [callback, probe], max_epochs=2)
    resumed.fit(_SharedTensorLR(), ckpt_path=tmp_path / "shared.ckpt")
    body, _ = _expected(0.1, 8)
    head, _ = _expected(0.001, 8)
    assert [v[0] for v in probe.lrs] == pytest.approx(body, rel=1e-6)
    assert [v[1] for v in probe.lrs] == pytest.approx(head, rel=1e-6)


def test_settings_are_checked_frozen_and_plain_python():
    import dataclasses

    import numpy as np

    settings = OneCycleCallback(max_lr=np.array([0.1, 0.2]), total_steps=np.int64(10)).settings
    assert settings.max_lr == (0.1, 0.2) and type(settings.max_lr[0]) is float and type(settings.total_steps) is int
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.pct_start = 0.5  # type: ignore[misc]  # the point: a frozen dataclass refuses it
    with pytest.raises(ValueError, match="`div_factor`"):
        dataclasses.replace(settings, div_factor=0.0)


def test_a_checkpoint_holds_the_settings_and_the_plan_as_plain_python(tmp_path):
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    callback = OneCycleCallback(max_lr=[0.1], pct_start=0.25)
    make_trainer(tmp_path, [callback, ckpt], enable_checkpointing=True).fit(TinyClassifier())
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)["callbacks"][callback.state_key]
    assert state["settings"]["max_lr"] == (0.1,) and state["settings"]["pct_start"] == 0.25
    assert state["resolved"]["max_lrs"] == ((0.1,),) and state["resolved"]["total_steps"] == 16
    assert state["start_step"] == 0


def test_a_checkpoint_in_the_old_dict_format_resumes_on_the_same_trajectory(tmp_path):
    full = OptimizerProbe()
    make_trainer(tmp_path / "full", [OneCycleCallback(max_lr=0.1), full], max_epochs=4).fit(TinyClassifier())
    first, ckpt = OptimizerProbe(), ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    callbacks = [OneCycleCallback(max_lr=0.1), first, _StopAfter(2), ckpt]
    make_trainer(tmp_path / "a", callbacks, max_epochs=4, enable_checkpointing=True).fit(TinyClassifier())
    path = tmp_path / "ckpt" / "last.ckpt"
    checkpoint = torch.load(path, weights_only=True)
    # As version 0.1.0 wrote it: the resolved numbers as one dict, lists for the lrs, no "settings".
    checkpoint["callbacks"][callbacks[0].state_key] = {
        "resolved": {
            "total_steps": 32,
            "max_lrs": [[0.1]],
            "pct_start": 0.3,
            "anneal_strategy": "cos",
            "div_factor": 25.0,
            "final_div_factor": 1e4,
            "three_phase": False,
            "base_momentum": 0.85,
            "max_momentum": 0.95,
        },
        "start_step": 0,
    }
    torch.save(checkpoint, path)
    second, callback = OptimizerProbe(), OneCycleCallback(max_lr=0.1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make_trainer(tmp_path / "b", [callback, second], max_epochs=4).fit(TinyClassifier(), ckpt_path=str(path))
    assert not [w for w in caught if "resuming with the checkpoint's schedule" in str(w.message)]
    assert first.lrs + second.lrs == full.lrs
    assert callback.state_dict()["resolved"]["max_lrs"] == ((0.1,),)  # written back in the new format


class _FixedFinder(pl.Callback):
    """A suggestion provider that is not the range test: any callback with `suggested_lr` and `result`."""

    def __init__(self, lr: float | None) -> None:
        self._lr, self.result = lr, None

    @property
    def suggested_lr(self) -> float | None:
        return self._lr

    def on_train_start(self, trainer, pl_module):
        from types import SimpleNamespace

        self.result = SimpleNamespace(stop_reason="searched")


def test_any_suggestion_provider_among_the_callbacks_gives_the_peak(tmp_path, probe):
    from lightning_onecycle import SuggestionProvider

    finder = _FixedFinder(0.2)
    assert isinstance(finder, SuggestionProvider)
    make_trainer(tmp_path, [finder, OneCycleCallback(), probe]).fit(TinyClassifier())
    lrs, _ = _expected(0.2, 16)
    assert [v[0] for v in probe.lrs] == pytest.approx(lrs, rel=1e-12)


def test_a_provider_without_a_suggestion_leaves_the_configured_peak_with_one_warning(tmp_path, probe):
    """A fit never fails after the sweep for want of a suggestion: it trains, peaking at the configured lr."""
    finder = _FixedFinder(None)
    trainer = make_trainer(tmp_path, [finder, OneCycleCallback(max_lr=finder), probe])
    with pytest.warns(UserWarning, match=r"_FixedFinder suggested no learning rate \(stop reason: searched") as seen:
        trainer.fit(TinyClassifier(lr=0.05))
    assert sum("suggested no learning rate" in str(w.message) for w in seen) == 1
    lrs, _ = _expected(0.05, 16)
    assert [step[0] for step in probe.lrs] == pytest.approx(lrs, rel=1e-12)


def test_a_provider_passed_as_max_lr_must_be_among_the_callbacks(tmp_path):
    trainer = make_trainer(tmp_path, [OneCycleCallback(max_lr=_FixedFinder(0.1))])
    with pytest.raises(MisconfigurationException, match="was given a _FixedFinder as `max_lr` that is not among"):
        trainer.fit(TinyClassifier())


@pytest.mark.parametrize("max_lr", [0.1, None])
def test_a_max_lr_factor_without_a_range_test_says_it_does_nothing(tmp_path, max_lr) -> None:
    callback = OneCycleCallback(max_lr=max_lr, max_lr_factor=0.5)
    with pytest.warns(UserWarning, match=r"max_lr_factor=0.5\) multiplies a range test's suggestion"):
        make_trainer(tmp_path, [callback], max_epochs=1).fit(TinyClassifier())
