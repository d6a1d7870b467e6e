"""CyclicLRCallback inside real Trainer.fit runs agrees with torch's CyclicLR."""

from __future__ import annotations

import math
import re

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_onecycle import CyclicLRCallback, CyclicSchedule

from helpers import EndlessClassifier, FrozenBodyClassifier, OptimizerProbe, TinyClassifier, make_trainer


class _TorchCyclic(TinyClassifier):
    def __init__(self, **clr) -> None:
        super().__init__(optimizer="adam")
        self.clr = clr

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.lr)
        sched = torch.optim.lr_scheduler.CyclicLR(opt, **self.clr)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


@pytest.mark.parametrize(
    ("mode", "up", "down"),
    [
        ("triangular", 3, 2),
        ("triangular2", 3, 2),
        ("exp_range", 3, 2),
        ("triangular", 2.5, 3.0),
        ("triangular", 4.0, None),
    ],
    ids=["triangular", "triangular2", "exp_range", "fractional", "integral-float"],
)
def test_fit_matches_torch_cyclic_lr(tmp_path, mode, up, down):
    # Step sizes as torch takes them: any positive number (a YAML config gives 4.0 for 4).
    clr = {"base_lr": 1e-3, "max_lr": 1e-2, "step_size_up": up, "step_size_down": down, "mode": mode, "gamma": 0.95}
    ours, theirs = OptimizerProbe(), OptimizerProbe()
    make_trainer(tmp_path, [CyclicLRCallback(**clr), ours], max_epochs=3).fit(TinyClassifier(optimizer="adam"))
    make_trainer(tmp_path, [theirs], max_epochs=3).fit(_TorchCyclic(**clr))
    assert len(ours.lrs) == len(theirs.lrs) == 24
    for a, b in zip(ours.lrs + ours.momentums, theirs.lrs + theirs.momentums):
        assert math.isclose(a[0], b[0], rel_tol=1e-9)


def test_runs_as_long_as_training_without_warning(tmp_path, probe, recwarn):
    cb = CyclicLRCallback(base_lr=0.001, max_lr=0.01, step_size_up=4)
    make_trainer(tmp_path, [cb, probe], max_epochs=4).fit(TinyClassifier())
    s = CyclicSchedule(base_lr=0.001, max_lr=0.01, step_size_up=4)
    assert [v[0] for v in probe.lrs] == pytest.approx([s.lr(k) for k in range(32)], rel=1e-12)
    assert not [w for w in recwarn if "past the schedule" in str(w.message)]


def test_bounds_keep_the_group_ratio(tmp_path, probe):
    cb = CyclicLRCallback(base_lr=0.002, max_lr=0.02, step_size_up=4)
    make_trainer(tmp_path, [cb, probe], max_epochs=1).fit(TinyClassifier(groups=2))
    assert probe.lrs[0] == pytest.approx([0.0002, 0.002])
    assert probe.lrs[4] == pytest.approx([0.002, 0.02])


def test_base_lr_list_of_the_wrong_length(tmp_path):
    cb = CyclicLRCallback(base_lr=[0.001, 0.002, 0.003], max_lr=0.1)
    with pytest.raises(MisconfigurationException, match="`base_lr` has 3 values"):
        make_trainer(tmp_path, [cb]).fit(TinyClassifier(groups=2))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_lr": 0.0}, "`base_lr`"),
        ({"base_lr": 1e-3, "max_lr": [0.1, -1.0]}, "positive finite number for `max_lr`"),
        ({"base_lr": 1e-3, "mode": "sawtooth"}, "'triangular', 'triangular2' or 'exp_range'"),
        ({"base_lr": 1e-3, "step_size_up": 0}, "`step_size_up`"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CyclicLRCallback(**kwargs)


@pytest.mark.parametrize("name", ["keep_group_ratios", "cycle_momentum"])
@pytest.mark.parametrize("value", ["False", 1])
def test_flags_must_be_bools(name, value):
    with pytest.raises(ValueError, match=re.escape(f"`{name}` to be True or False") + ".*" + re.escape(repr(value))):
        CyclicLRCallback(base_lr=1e-3, **{name: value})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"base_lr": "1e-3"},
            r"`base_lr` to be a positive number.*but got '1e-3' \(str\)\. Pass the number base_lr=1e-3",
        ),
        ({"base_lr": 1e-3, "max_lr": "auto"}, r"`max_lr` to be a positive number.*or None.*but got 'auto' \(str\)"),
        ({"base_lr": [1e-3, "1e-2"]}, r"`base_lr`.*its item 1 is '1e-2' \(str\)"),
        ({"base_lr": None}, r"`base_lr` to be a positive number.*but got None"),
    ],
)
def test_bounds_of_the_wrong_type_are_named_with_what_is_accepted(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CyclicLRCallback(**kwargs)


def test_tensor_bounds_are_taken_as_their_floats():
    settings = CyclicLRCallback(base_lr=torch.tensor(1e-3), max_lr=torch.tensor([1e-2, 2e-2])).settings
    assert settings.base_lr == pytest.approx(1e-3) and type(settings.base_lr) is float
    assert settings.max_lr == pytest.approx((1e-2, 2e-2))


def test_a_frozen_group_at_lr_0_is_left_alone(tmp_path):
    probe = OptimizerProbe()
    make_trainer(tmp_path, [CyclicLRCallback(base_lr=0.001, max_lr=0.01, step_size_up=4), probe]).fit(
        FrozenBodyClassifier()
    )
    s = CyclicSchedule(base_lr=0.001, max_lr=0.01, step_size_up=4)
    assert [v[0] for v in probe.lrs] == [0.0] * 16
    assert [v[1] for v in probe.lrs] == pytest.approx([s.lr(k) for k in range(16)], rel=1e-12)


def test_a_frozen_group_given_a_positive_bound_is_an_error(tmp_path):
    # base_lr keeps the ratio (0 for the frozen body), max_lr gives the body 0.01: half frozen is no setting.
    callback = CyclicLRCallback(base_lr=0.001, max_lr=[0.01, 0.01], step_size_up=4)
    with pytest.raises(MisconfigurationException, match="Only a frozen group"):
        make_trainer(tmp_path, [callback]).fit(FrozenBodyClassifier())


@pytest.mark.parametrize(
    "flags, per_epoch",
    [
        ({"max_epochs": 2}, 8),
        ({"max_epochs": 2, "limit_train_batches": 4}, 4),
        ({"max_epochs": 2, "accumulate_grad_batches": 2}, 4),
        ({"max_epochs": -1, "max_steps": 16}, 8),
    ],
    ids=["full-epoch", "limited", "accumulated", "max-steps-only"],
)
def test_step_sizes_in_epochs_follow_the_epoch_the_trainer_runs(tmp_path, flags, per_epoch):
    callback = CyclicLRCallback(base_lr=0.001, max_lr=0.01, step_size_up=0.5, step_size_unit="epochs")
    probe = OptimizerProbe()
    make_trainer(tmp_path, [callback, probe], **flags).fit(TinyClassifier())
    up = per_epoch // 2
    s = CyclicSchedule(base_lr=0.001, max_lr=0.01, step_size_up=up)
    assert callback.schedules[0][0].step_size_up == up
    assert [v[0] for v in probe.lrs] == pytest.approx([s.lr(k) for k in range(2 * per_epoch)], rel=1e-12)


def test_step_sizes_in_epochs_need_an_epoch_length(tmp_path):
    callback = CyclicLRCallback(base_lr=0.001, max_lr=0.01, step_size_up=2, step_size_unit="epochs")
    with pytest.raises(MisconfigurationException, match="needs the length of an epoch"):
        make_trainer(tmp_path, [callback], max_epochs=-1, max_steps=10).fit(EndlessClassifier())


def test_step_sizes_in_epochs_with_a_changing_accumulation_are_an_error_before_training(tmp_path):
    from lightning.pytorch.callbacks import GradientAccumulationScheduler

    callback = CyclicLRCallback(base_lr=0.001, max_lr=0.01, step_size_up=1, step_size_unit="epochs")
    probe = OptimizerProbe()
    trainer = make_trainer(tmp_path, [GradientAccumulationScheduler({0: 1, 1: 2}), callback, probe])
    with pytest.raises(MisconfigurationException, match="a GradientAccumulationScheduler changes it"):
        trainer.fit(TinyClassifier())
    assert probe.batches == 0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"step_size_unit": "batches"}, "'steps' or 'epochs'"),
        ({"step_size_up": 0.0, "step_size_unit": "epochs"}, "positive finite number for `step_size_up`"),
        ({"step_size_up": 0}, "positive finite number for `step_size_up`"),
        ({"step_size_down": float("inf")}, "positive finite number for `step_size_down`"),
    ],
)
def test_step_size_unit_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CyclicLRCallback(base_lr=0.001, max_lr=0.01, **kwargs)


def test_wrong_bounds_fail_before_a_range_test_sweeps(tmp_path):
    from lightning_onecycle import LRRangeTestCallback

    model, probe = TinyClassifier(), OptimizerProbe()
    callbacks = [LRRangeTestCallback(num_steps=20), CyclicLRCallback(base_lr=[1e-3, 1e-3], max_lr=0.01), probe]
    with pytest.raises(MisconfigurationException, match="has 2 values, but the optimizer.s. have 1 param groups"):
        make_trainer(tmp_path, callbacks).fit(model)
    assert probe.lrs == []


def test_step_sizes_in_epochs_without_an_epoch_length_fail_before_a_range_test_sweeps(tmp_path):
    from lightning_onecycle import LRRangeTestCallback

    probe = OptimizerProbe()
    clr = CyclicLRCallback(base_lr=0.001, max_lr=0.01, step_size_up=2, step_size_unit="epochs")
    callbacks = [LRRangeTestCallback(num_steps=20), clr, probe]
    with pytest.raises(MisconfigurationException, match="needs the length of an epoch"):
        make_trainer(tmp_path, callbacks, max_epochs=-1, max_steps=10).fit(EndlessClassifier())
    assert probe.lrs == [], "the sweep ran before the error"


def test_a_config_builds_the_callback_with_its_defaults_and_whole_number_step_sizes() -> None:
    # jsonargparse (LightningCLI) types `step_size_up: float`: 2000 arrives as 2000.0.
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_class_arguments(CyclicLRCallback, "clr")
    for args in (["--clr.base_lr", "0.001"], ["--clr.base_lr", "0.001", "--clr.step_size_up", "4"]):
        callback = parser.instantiate(parser.parse_args(args)).clr
        assert callback.schedule_kwargs["step_size_up"] in (2000, 4)


def test_resuming_with_other_settings_says_which_are_ignored(tmp_path, probe):
    import warnings

    from lightning.pytorch.callbacks import ModelCheckpoint

    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    callbacks = [CyclicLRCallback(base_lr=0.01, max_lr=0.1, step_size_up=4), ckpt]
    make_trainer(tmp_path / "a", callbacks, max_epochs=1, enable_checkpointing=True).fit(TinyClassifier())
    callback = CyclicLRCallback(base_lr=0.01, max_lr=0.2, step_size_up=6, mode="triangular2")
    with pytest.warns(UserWarning, match="resuming with the checkpoint's schedule") as record:
        make_trainer(tmp_path / "b", [callback, probe], max_epochs=2).fit(
            TinyClassifier(), ckpt_path=str(tmp_path / "ckpt" / "last.ckpt")
        )
    message = next(str(w.message) for w in record if "resuming" in str(w.message))
    assert "it ignores step_size_up=6, mode='triangular2', max_lr=0.2 passed now" in message
    assert "cycle ends" not in message  # CLR runs as long as training does
    expected = CyclicSchedule(base_lr=0.01, max_lr=0.1, step_size_up=4)
    assert [v[0] for v in probe.lrs] == pytest.approx([expected.lr(k) for k in range(8, 16)], rel=1e-12)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        same = CyclicLRCallback(base_lr=0.01, max_lr=0.1, step_size_up=4)
        make_trainer(tmp_path / "c", [same], max_epochs=2).fit(
            TinyClassifier(), ckpt_path=str(tmp_path / "ckpt" / "last.ckpt")
        )
    assert not [w for w in caught if "CyclicLRCallback" in str(w.message)]


def test_a_state_dict_in_the_old_format_loads() -> None:
    # As version 0.1.0 wrote it: the resolved numbers as one dict, lists for the bounds, no "settings".
    old = {
        "resolved": {
            "base_lrs": [[0.001]],
            "max_lrs": [[0.006]],
            "step_size_up": 4,
            "step_size_down": None,
            "mode": "triangular",
            "gamma": 1.0,
            "base_momentum": 0.8,
            "max_momentum": 0.9,
        },
        "start_step": 3,
    }
    callback = CyclicLRCallback(base_lr=0.001)
    callback.load_state_dict(old)
    state = callback.state_dict()
    assert state["resolved"] == {**old["resolved"], "base_lrs": ((0.001,),), "max_lrs": ((0.006,),)}
    assert state["settings"] is None and state["start_step"] == 3
