"""RangeTestResult: plain values, and the CSV and JSON files, without a Trainer."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from lightning_onecycle.range_test_result import RangeTestResult

from helpers import range_test_result


def _weight_decay_sweep() -> RangeTestResult:
    sweeps = [range_test_result(wd=1e-4), range_test_result(suggested=None, wd=1e-3, shift=0.2)]
    return RangeTestResult(**{**sweeps[0].__dict__, "sweeps": sweeps})


def test_to_dict_and_from_dict_round_trip_nested_sweeps() -> None:
    result = _weight_decay_sweep()
    data = result.to_dict()
    assert isinstance(data["sweeps"][0], dict)
    assert RangeTestResult.from_dict({**data, "config": {"num_steps": 20}}) == result  # other keys are ignored


def test_the_dict_is_plain_python_that_torch_loads_with_weights_only(tmp_path) -> None:
    path = tmp_path / "state.pt"
    torch.save({"result": _weight_decay_sweep().to_dict()}, path)
    loaded = torch.load(path, weights_only=True)
    assert RangeTestResult.from_dict(loaded["result"]) == _weight_decay_sweep()


def test_json_holds_the_config_first_and_loads_back(tmp_path) -> None:
    path = tmp_path / "lr_range_test.json"
    range_test_result().write_json(path, {"min_lr": 1e-4, "num_steps": 20})
    data = json.loads(path.read_text())
    assert next(iter(data)) == "config" and data["config"] == {"min_lr": 1e-4, "num_steps": 20}
    assert RangeTestResult.load(path) == range_test_result()
    range_test_result().write_json(path)
    assert "config" not in json.loads(path.read_text())


def test_csv_has_one_row_per_point_of_every_sweep(tmp_path) -> None:
    path = tmp_path / "lr_range_test.csv"
    result = _weight_decay_sweep()
    result.write_csv(path)
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["weight_decay", "step", "lr", "loss", "smoothed_loss", "running_loss"]
    assert [(r["weight_decay"], int(r["step"])) for r in rows] == [
        *(("0.0001", i) for i in range(20)),
        *(("0.001", i) for i in range(20)),
    ]
    second = result.sweeps[1]
    assert [float(r["lr"]) for r in rows[20:]] == second.lrs  # repr: the values exactly
    assert [float(r["running_loss"]) for r in rows[20:]] == second.running_losses
    assert [float(r["loss"]) for r in rows[:20]] == pytest.approx(result.sweeps[0].losses, rel=0)


def test_csv_of_a_single_sweep_leaves_the_weight_decay_empty(tmp_path) -> None:
    path = tmp_path / "lr_range_test.csv"
    range_test_result().write_csv(path)
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20 and {r["weight_decay"] for r in rows} == {""}
