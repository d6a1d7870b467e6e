"""RangeTestResult: plain values, and the CSV and JSON files, without a Trainer."""

from __future__ import annotations

import csv
import json

import torch

from lightning_onecycle.range_test_result import RangeTestResult


def _result(wd: float | None = None, suggested: float | None = 1e-2) -> RangeTestResult:
    return RangeTestResult(
        lrs=[1e-3, 1e-2, 1e-1],
        losses=[1.0, 0.5, 2.0],
        smoothed_losses=[1.0, 0.6, 1.5],
        running_losses=[1.0, 0.7, 1.2],
        suggested_lr=suggested,
        suggestion="edge",
        stop_reason="diverged",
        num_steps_run=3,
        weight_decay=wd,
    )


def _weight_decay_sweep() -> RangeTestResult:
    sweeps = [_result(wd=1e-4), _result(wd=1e-3, suggested=None)]
    return RangeTestResult(**{**sweeps[0].__dict__, "sweeps": sweeps})


def test_to_dict_and_from_dict_round_trip_nested_sweeps() -> None:
    result = _weight_decay_sweep()
    data = result.to_dict()
    assert isinstance(data["sweeps"][0], dict)
    assert RangeTestResult.from_dict({**data, "config": {"num_steps": 3}}) == result  # other keys are ignored


def test_the_dict_is_plain_python_that_torch_loads_with_weights_only(tmp_path) -> None:
    path = tmp_path / "state.pt"
    torch.save({"result": _weight_decay_sweep().to_dict()}, path)
    loaded = torch.load(path, weights_only=True)
    assert RangeTestResult.from_dict(loaded["result"]) == _weight_decay_sweep()


def test_json_holds_the_config_first_and_loads_back(tmp_path) -> None:
    path = tmp_path / "lr_range_test.json"
    _result().write_json(path, {"min_lr": 1e-3, "num_steps": 3})
    data = json.loads(path.read_text())
    assert next(iter(data)) == "config" and data["config"] == {"min_lr": 1e-3, "num_steps": 3}
    assert RangeTestResult.load(path) == _result()
    _result().write_json(path)
    assert "config" not in json.loads(path.read_text())


def test_csv_has_one_row_per_point_of_every_sweep(tmp_path) -> None:
    path = tmp_path / "lr_range_test.csv"
    _weight_decay_sweep().write_csv(path)
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["weight_decay", "step", "lr", "loss", "smoothed_loss", "running_loss"]
    assert [(r["weight_decay"], r["step"]) for r in rows] == [
        ("0.0001", "0"),
        ("0.0001", "1"),
        ("0.0001", "2"),
        ("0.001", "0"),
        ("0.001", "1"),
        ("0.001", "2"),
    ]
    assert float(rows[1]["lr"]) == 1e-2 and float(rows[2]["running_loss"]) == 1.2


def test_csv_of_a_single_sweep_leaves_the_weight_decay_empty(tmp_path) -> None:
    path = tmp_path / "lr_range_test.csv"
    _result().write_csv(path)
    with open(path) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 and {r["weight_decay"] for r in rows} == {""}
