"""What the range test makes of the curves it sweeps, through a real Trainer: invariances, curves without
a descent, messages, and the confidence in the log, the JSON and TensorBoard."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_onecycle import LRRangeTestCallback, OneCycleCallback, OneCycleSchedule, RangeTestResult
from lightning_onecycle.suggestions import DIVERGENCE_MARGIN

from helpers import OptimizerProbe, RangeTestModel, make_trainer


def _sweep(tmp_path, make_model: Any, **kwargs: Any) -> LRRangeTestCallback:
    """A test-only range test of a model built after seeding (same weights and dropout for equal arguments)."""
    pl.seed_everything(3)
    model = make_model()
    settings: dict[str, Any] = {"min_lr": 1e-4, "max_lr": 10.0, "num_steps": 40, "stop_after_test": True}
    range_test = LRRangeTestCallback(**{**settings, **kwargs}, dirpath=tmp_path / "rt")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make_trainer(tmp_path, [range_test]).fit(model)
    return range_test


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_an_offset_of_the_loss_changes_no_suggestion(tmp_path, optimizer: str) -> None:
    """loss + 100 has the gradients of loss: the sweep is the same, its losses 100 higher, the reading equal."""
    plain = _sweep(tmp_path, lambda: RangeTestModel(optimizer=optimizer)).result
    shifted = _sweep(tmp_path, lambda: RangeTestModel(optimizer=optimizer, loss_offset=100.0)).result
    assert plain.suggested_lr is not None
    finite = [(a, b) for a, b in zip(plain.losses, shifted.losses) if abs(a) < 1e4]  # before the blow-up
    assert len(finite) > 20 and [b - a for a, b in finite] == pytest.approx([100.0] * len(finite), abs=1e-3)
    for field in ("suggested_lr", "suggestion", "shape", "confidence", "suggestion_bracket", "stop_reason"):
        assert getattr(shifted, field) == getattr(plain, field), field


def test_for_adam_a_scale_of_the_loss_changes_no_suggestion(tmp_path) -> None:
    """Adam normalises the gradient's scale away (up to its eps): 10 * loss sweeps as loss does."""
    plain = _sweep(tmp_path, lambda: RangeTestModel(optimizer="adamw")).result
    scaled = _sweep(tmp_path, lambda: RangeTestModel(optimizer="adamw", loss_scale=10.0)).result
    assert plain.suggested_lr is not None
    assert scaled.suggested_lr == pytest.approx(plain.suggested_lr, rel=1e-6)
    assert (scaled.suggestion, scaled.shape) == (plain.suggestion, plain.shape)


class AtChanceModel(pl.LightningModule):
    """8 Linear layers of width 32 with ReLU at PyTorch's default initialisation (no normalisation): the
    signal fades layer by layer, and the loss sits at ln 4 through the sweep until it blows up."""

    def __init__(self, seed: int = 2) -> None:
        super().__init__()
        torch.manual_seed(seed)
        layers: list[nn.Module] = [nn.Linear(2, 32), nn.ReLU()]
        for _ in range(6):
            layers += [nn.Linear(32, 32), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Linear(32, 4))

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def train_dataloader(self) -> DataLoader:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(256, 2, generator=g)
        y = (x[:, 0] > 0).long() * 2 + (x[:, 1] > 0).long()
        return DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True, generator=g)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)


def _two_line_fit(tmp_path, model: pl.LightningModule, warning: str) -> tuple[RangeTestResult, list[float]]:
    """Range test then 1cycle, as the README's two lines; the result and the lr of each training step."""
    range_test = LRRangeTestCallback(min_lr=1e-4, max_lr=100.0, num_steps=60, dirpath=tmp_path / "rt")
    probe = OptimizerProbe()
    trainer = make_trainer(tmp_path, [range_test, OneCycleCallback(), probe])
    with pytest.warns(UserWarning, match=warning):
        trainer.fit(model)
    # The probe saw the sweep's steps too: training's are the last ones.
    return range_test.result, [step[0] for step in probe.lrs[-trainer.global_step :]]


def _one_cycle_lrs(max_lr: float, steps: int) -> list[float]:
    schedule = OneCycleSchedule(max_lr=max_lr, total_steps=steps)
    return [schedule.lr(k) for k in range(steps)]


def test_a_network_at_chance_gets_the_divergence_rule_and_the_fit_trains_at_it(tmp_path) -> None:
    """The two-line recipe does not crash on a curve without a descent: 1cycle peaks at the blow-up / margin."""
    result, training = _two_line_fit(
        tmp_path, AtChanceModel(), "did not fall during the sweep .* until it blew up at lr"
    )
    assert (result.shape, result.suggestion, result.confidence) == ("flat", "divergence", "low")
    assert result.suggested_lr == pytest.approx(result.divergence_lr / DIVERGENCE_MARGIN)
    assert training == pytest.approx(_one_cycle_lrs(result.suggested_lr, len(training)))
    assert "blew up" in result.message


class FlatUntilBlowUpAdamModel(RangeTestModel):
    """With Adam, a loss that stays at its level (noise only) until the lr passes 1, then blows up."""

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, _ = batch
        self.calls += 1
        lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        noise = 0.01 * torch.randn((), generator=torch.Generator().manual_seed(self.calls)).item()
        return 0.0 * self(x).sum() + 1.0 + noise + 10.0 * max(lr - 1.0, 0.0)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def test_with_adam_a_network_at_chance_gets_no_suggestion_and_the_fit_peaks_at_the_configured_lr(tmp_path) -> None:
    """Adam's blow-up lr comes from the weights' scale, not the curvature: no divergence rule, the configured lr."""
    warning = "With an adaptive optimizer .* there is no suggestion"
    result, training = _two_line_fit(tmp_path, FlatUntilBlowUpAdamModel(), warning)
    assert (result.shape, result.suggestion, result.suggested_lr) == ("flat", "divergence", None)
    assert result.swept_again  # the 60-step curve was flat: swept again, flat again
    assert training == pytest.approx(_one_cycle_lrs(1e-3, len(training)))  # the configured lr


class RandomLabelModel(RangeTestModel):
    """Nothing to learn: labels independent of the inputs, and a sweep too low to blow anything up."""

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, _ = batch
        labels = torch.randint(0, 2, (len(x),), generator=torch.Generator().manual_seed(batch_idx))
        return nn.functional.binary_cross_entropy_with_logits(self(x).squeeze(-1), labels.float())


def test_a_flat_curve_without_a_blow_up_gets_no_suggestion_and_the_fit_trains_at_the_configured_lr(
    tmp_path,
) -> None:
    range_test = LRRangeTestCallback(min_lr=1e-6, max_lr=1e-4, num_steps=40, dirpath=tmp_path / "rt")
    probe = OptimizerProbe()
    trainer = make_trainer(tmp_path, [range_test, OneCycleCallback(), probe], max_epochs=1)
    with pytest.warns(UserWarning) as seen:
        trainer.fit(RandomLabelModel(lr=0.02))
    result = range_test.result
    training = probe.lrs[-trainer.global_step :]  # the probe saw the sweep's steps too
    assert result.shape == "flat-without-divergence" and result.suggested_lr is None
    messages = [str(w.message) for w in seen]
    assert any("neither fell nor blew up between lr 1e-06 and 0.0001" in m for m in messages)
    assert sum("suggested no learning rate" in m for m in messages) == 1  # OneCycleCallback's, once
    schedule = OneCycleSchedule(max_lr=0.02, total_steps=len(training))
    assert [step[0] for step in training] == pytest.approx([schedule.lr(k) for k in range(len(training))])


class ConstantLossModel(RangeTestModel):
    """A loss whose gradient never reaches the parameters (the output multiplied by 0)."""

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, _ = batch
        return 0.0 * self(x).sum() + 1.0


def test_a_constant_loss_says_the_gradients_may_not_reach_the_parameters(tmp_path) -> None:
    range_test = _sweep(tmp_path, ConstantLossModel)
    assert range_test.result.shape == "flat-without-divergence" and range_test.suggested_lr is None
    assert "parameters without gradients" in range_test.result.message


def test_a_nan_at_the_first_step_names_its_lr_and_not_the_sweep(tmp_path) -> None:
    range_test = _sweep(tmp_path, lambda: RangeTestModel(nan_above_lr=0.0))
    result = range_test.result
    assert result.stop_reason == "non-finite loss" and result.num_steps_run == 0
    assert result.nonfinite_lr == pytest.approx(1e-4) and result.suggested_lr is None
    assert "NaN or infinite at lr 0.0001, after 0 sweep step(s)" in result.message
    assert "not from the lr" in result.message


def test_a_nan_past_the_descent_ends_the_curve_where_it_happened(tmp_path) -> None:
    range_test = _sweep(tmp_path, lambda: RangeTestModel(nan_above_lr=0.05), max_lr=10.0, num_steps=60)
    result = range_test.result
    assert result.stop_reason == "non-finite loss"
    assert result.nonfinite_lr is not None and result.nonfinite_lr > 0.05 >= result.lrs[-1]
    assert result.divergence_lr is not None and result.divergence_lr <= result.nonfinite_lr


def test_a_sweep_that_ends_while_the_loss_still_falls_says_so(tmp_path) -> None:
    with pytest.warns(UserWarning, match="still falling at the sweep's last lr"):
        range_test = LRRangeTestCallback(min_lr=1e-3, max_lr=0.05, num_steps=40, stop_after_test=True)
        make_trainer(tmp_path, [range_test]).fit(RangeTestModel(n_batches=20))
    result = range_test.result
    assert result.still_falling and result.confidence == "low" and result.suggested_lr is not None


def test_the_confidence_and_bracket_are_in_the_log_the_json_and_tensorboard(tmp_path, lightning_log) -> None:
    from lightning.pytorch.loggers import TensorBoardLogger
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logger = TensorBoardLogger(tmp_path, name="tb")
    range_test = LRRangeTestCallback(min_lr=1e-4, max_lr=10.0, num_steps=40, stop_after_test=True)
    make_trainer(tmp_path, [range_test], logger=logger).fit(RangeTestModel())
    result = range_test.result
    low, high = result.suggestion_bracket
    assert low <= result.suggested_lr <= high and result.confidence in ("high", "medium", "low")
    line = next(r.getMessage() for r in lightning_log.records if "suggested lr" in r.getMessage())
    assert f"{result.confidence} confidence, bracket {low:.3g}-{high:.3g}" in line
    assert result.seconds > 0 and f"{result.seconds:.1f} s" in line
    written = json.loads((tmp_path / "tb" / "version_0" / "lr_range_test.json").read_text())
    assert (written["confidence"], written["suggestion_bracket"], written["shape"]) == (
        result.confidence,
        [low, high],
        result.shape,
    )
    events = EventAccumulator(logger.log_dir, size_guidance={"scalars": 0, "tensors": 0})
    events.Reload()
    scalars = {tag: events.Scalars(tag)[0].value for tag in events.Tags()["scalars"]}
    assert scalars["range_test/suggested_lr"] == pytest.approx(result.suggested_lr, rel=1e-6)
    assert (scalars["range_test/suggested_lr_low"], scalars["range_test/suggested_lr_high"]) == pytest.approx(
        (low, high), rel=1e-6
    )
    text = events.Tensors("range_test/summary/text_summary")[0].tensor_proto.string_val[0].decode()
    assert f"{result.confidence} confidence" in text and math.isfinite(result.suggested_lr)


def test_a_sweep_that_starts_too_high_says_to_start_lower_not_to_check_the_model(tmp_path) -> None:
    """The loss explodes from the first step and is infinite at the third: the lr did it, so say so."""
    range_test = _sweep(tmp_path, RangeTestModel, min_lr=1e3, max_lr=1e5)
    result = range_test.result
    assert result.stop_reason == "non-finite loss" and result.shape == "too-short" and result.num_steps_run > 0
    assert result.losses == sorted(result.losses)  # it rose at every step
    assert "started above the usable range" in result.message and "min_lr below 1000" in result.message
    assert "not from the lr" not in result.message


def test_a_nan_that_cuts_a_descent_short_is_reported_with_its_lr(tmp_path, lightning_log) -> None:
    """A NaN while the loss still falls ends the curve there: the message and the log line name its lr."""
    range_test = LRRangeTestCallback(min_lr=1e-4, max_lr=10.0, num_steps=60, stop_after_test=True)
    pl.seed_everything(3)
    with pytest.warns(UserWarning, match="NaN or infinite at lr") as seen:
        make_trainer(tmp_path, [range_test]).fit(RangeTestModel(nan_above_lr=0.05))
    result = range_test.result
    assert result.shape == "descent" and result.suggested_lr is not None
    assert result.divergence_lr == result.nonfinite_lr  # nothing blew up before the NaN
    where = f"NaN or infinite at lr {result.nonfinite_lr:.3g}"
    assert result.message is not None and where in result.message and "test again" in result.message
    assert any(where in str(w.message) for w in seen)
    line = next(r.getMessage() for r in lightning_log.records if "suggested lr" in r.getMessage())
    assert f"non-finite loss at lr {result.nonfinite_lr:.3g}" in line


def test_a_nan_on_a_flat_curve_is_named_as_such_not_as_a_blow_up(tmp_path) -> None:
    range_test = _sweep(tmp_path, lambda: RangeTestModel(nan_above_lr=1e-3))
    result = range_test.result
    assert (result.shape, result.suggestion, result.stop_reason) == ("flat", "divergence", "non-finite loss")
    assert f"NaN or infinite at lr {result.nonfinite_lr:.3g}" in result.message
    assert "blew up" not in result.message


class ScriptedLossModel(RangeTestModel):
    """Returns the next loss of a scripted curve at each training step (a zero gradient: the weights stay)."""

    def __init__(self, losses: list[float]) -> None:
        super().__init__()
        self.script = losses

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, _ = batch
        self.calls += 1
        return 0.0 * self(x).sum() + self.script[self.calls - 1]


def test_the_divergence_stop_and_the_reading_agree_on_where_the_loss_blew_up(tmp_path) -> None:
    """Flat noise, then a rise that the sweep's stop fires on at three points in a row. Read alone, the whole
    curve's noise and level see too small a rise to call it a blow-up; the reading takes the stop's point, so
    the curve is a flat one that blew up there, and gets the divergence rule."""
    import numpy as np

    lrs = np.geomspace(1e-4, 10.0, 100)
    rise = np.where(lrs > 1.0, 0.2 * (lrs**1.5 - 1), 0.0)
    losses = (1.0 + 0.1 * np.random.default_rng(115).standard_normal(100) + rise).tolist()
    range_test = _sweep(
        tmp_path, lambda: ScriptedLossModel(losses), min_lr=1e-4, max_lr=10.0, num_steps=100, longer_sweep=None
    )
    result = range_test.result
    assert result.stop_reason == "diverged" and result.num_steps_run < 100
    assert result.divergence_lr == result.lrs[-3]  # the first of the three points the stop fired on
    assert (result.shape, result.suggestion) == ("flat", "divergence")
    assert result.suggested_lr == pytest.approx(result.divergence_lr / DIVERGENCE_MARGIN)
    assert "neither fell nor blew up" not in result.message


def test_a_weight_decay_sweep_where_no_curve_suggests_anything_keeps_the_optimizers_weight_decay(tmp_path) -> None:
    """With no suggestion from any sweep, the lowest minimum is noise (here all equal): no weight decay is chosen."""
    range_test = LRRangeTestCallback(min_lr=1e-4, max_lr=10.0, num_steps=20, weight_decays=[1e-4, 1e-3])
    trainer = make_trainer(tmp_path, [range_test], max_epochs=1)
    with pytest.warns(UserWarning, match="weight decay stays the optimizer's"):
        trainer.fit(ConstantLossModel(weight_decay=5e-4))
    result = range_test.result
    assert result.suggested_lr is None and [s.suggested_lr for s in result.sweeps] == [None, None]
    assert result.weight_decay is None
    assert trainer.optimizers[0].param_groups[0]["weight_decay"] == 5e-4


def test_a_rule_asked_for_by_name_that_reads_nothing_in_the_curve_says_which_rule_would(tmp_path) -> None:
    """'divergence' reads only curves without a descent, the other rules only curves with one: say so."""
    descent = _sweep(tmp_path, RangeTestModel, suggestion="divergence").result
    assert (descent.shape, descent.suggested_lr) == ("descent", None)
    assert "has a descent" in descent.message and "suggestion='auto'" in descent.message

    range_test = LRRangeTestCallback(min_lr=1e-4, max_lr=100.0, num_steps=60, suggestion="edge", stop_after_test=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make_trainer(tmp_path, [range_test]).fit(AtChanceModel())
    flat = range_test.result
    assert (flat.shape, flat.suggested_lr) == ("flat", None)
    assert f"blew up at lr {flat.divergence_lr:.3g}" in flat.message and "suggestion='auto'" in flat.message


class _InfiniteGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        return x.clone()

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return torch.full_like(grad, math.inf)


class GradientOverflowModel(RangeTestModel):
    """Above lr 0.05 every gradient is infinite (the loss stays finite): under fp16 AMP the GradScaler skips
    every step there, until the sweep stops ("diverged") with the loss still where it was."""

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        loss = super().training_step(batch, batch_idx)
        if self.trainer.optimizers[0].param_groups[-1]["lr"] > 0.05:
            loss = loss + 0.0 * _InfiniteGradient.apply(self.head.weight).sum()
        return loss


@pytest.mark.parametrize("num_steps", [60, 40])
def test_a_sweep_stopped_by_overflowing_gradients_does_not_ask_for_a_higher_max_lr(tmp_path, num_steps: int) -> None:
    from lightning.pytorch.plugins.precision import MixedPrecision

    range_test = LRRangeTestCallback(min_lr=1e-4, max_lr=10.0, num_steps=num_steps, stop_after_test=True)
    plugin = MixedPrecision("16-mixed", "cpu", torch.amp.GradScaler("cpu"))
    pl.seed_everything(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make_trainer(tmp_path, [range_test], plugins=[plugin]).fit(GradientOverflowModel())
    result = range_test.result
    assert (result.stop_reason, result.divergence_lr) == ("gradient overflow", None)
    assert result.lrs[-1] < 0.1  # far short of max_lr
    assert result.message is not None and "raise max_lr" not in result.message.lower()
    assert f"stopped early at lr {result.lrs[-1]:.3g}" in result.message and "GradScaler" in result.message
    assert "as the loss rose" not in result.message


def _descent(steps: int, depth: float = 0.5, seed: int = 7) -> list[float]:
    """A noisy descent over lrs 1e-4..10 by ``depth``, turning back up past lr 0.3."""
    import numpy as np

    x = np.linspace(-4, 1, steps)  # log10 of the sweep's lrs
    curve = 1.0 - depth * (np.tanh(2 * (x + 2)) + 1) / 2 + np.where(x > -0.5, 3 * (x + 0.5) ** 2, 0.0)
    return list(curve + 0.01 * np.random.default_rng(seed).standard_normal(steps))


def _flat_then(descent_steps: int) -> list[float]:
    """40 flat noisy losses (a short sweep in which nothing is learnt), then a descent that turns back up."""
    import numpy as np

    flat = 1.0 + 0.02 * np.random.default_rng(8).standard_normal(40)
    return [*flat, *_descent(descent_steps)]


def test_a_flat_curve_is_swept_again_with_more_steps_and_its_descent_is_read(tmp_path) -> None:
    model = ScriptedLossModel(_flat_then(120))
    range_test = _sweep(tmp_path, lambda: model, num_steps=40, divergence_threshold=None)
    result = range_test.result
    assert model.calls == 160  # the short sweep, then one three times as long
    assert result.swept_again and result.shape == "descent" and result.num_steps_run == 120
    assert result.suggestion == "edge" and result.suggested_lr is not None
    assert 1e-3 < result.suggested_lr < 1.0  # read from the longer curve's descent and edge
    assert "a sweep of 120 steps from the same start did" in result.message and "num_steps=120" in result.message
    saved = RangeTestResult.load(tmp_path / "rt" / "lr_range_test.json")
    assert saved.swept_again and saved.num_steps_run == 120


def test_a_curve_flat_in_the_longer_sweep_too_keeps_the_first_reading_and_says_so(tmp_path) -> None:
    model = ScriptedLossModel([1.0] * 160)
    range_test = _sweep(tmp_path, lambda: model, num_steps=40, divergence_threshold=None)
    result = range_test.result
    assert model.calls == 160
    assert result.swept_again and result.num_steps_run == 40 and result.suggested_lr is None
    assert result.message.endswith("A sweep of 120 steps from the same start showed no descent either.")


@pytest.mark.parametrize("settings", [{"longer_sweep": None}, {"longer_sweep": 1}, {"suggestion": "edge"}])
def test_no_longer_sweep_when_switched_off_or_a_rule_is_named(tmp_path, settings: dict) -> None:
    model = ScriptedLossModel(_flat_then(120))
    range_test = _sweep(tmp_path, lambda: model, num_steps=40, divergence_threshold=None, **settings)
    assert model.calls == 40 and not range_test.result.swept_again


@pytest.mark.parametrize("value", [0, 2.5, True, "3"])
def test_longer_sweep_must_be_a_whole_factor_or_none(value: Any) -> None:
    with pytest.raises(ValueError, match="`longer_sweep` to be an integer >= 1"):
        LRRangeTestCallback(longer_sweep=value)


def test_a_flat_curve_in_a_weight_decay_search_sweeps_every_weight_decay_again_and_compares_them_at_one_length(
    tmp_path,
) -> None:
    """The first weight decay's short curve descends, the second's is flat: both are swept again with 120 steps, so
    the choice compares curves of one length (the short descent would have had 80 fewer steps of training)."""
    flat = [1.0 + 0.02 * ((-1) ** k) for k in range(40)]
    script = [*_descent(40, depth=0.3), *flat, *_descent(120, depth=0.3, seed=1), *_descent(120, depth=0.6, seed=2)]
    model = ScriptedLossModel(script)
    range_test = _sweep(tmp_path, lambda: model, num_steps=40, divergence_threshold=None, weight_decays=[1e-4, 1e-2])
    result = range_test.result
    assert model.calls == 320
    assert [(s.weight_decay, s.swept_again, s.num_steps_run) for s in result.sweeps] == [
        (1e-4, True, 120),
        (1e-2, True, 120),
    ]
    assert result.weight_decay == 1e-2  # the deeper of the two longer curves
    assert "as another weight decay's curve showed no descent" in result.sweeps[0].message


def test_longer_sweep_takes_numpy_integers() -> None:
    import numpy as np

    assert LRRangeTestCallback(longer_sweep=np.int64(2)).longer_sweep == 2
