"""The examples end to end: ``examples/fit.py`` and ``examples/compare.py`` on a few batches of digits."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import pytest

from helpers import EXAMPLES, PNG_MAGIC, TINY, TINY_RANGE_TEST, image_tags, run_example, run_in_process, scalars, values

# --- fit.py ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onecycle_run(tmp_path_factory) -> tuple[Path, str]:
    """fit.py's default policy: range test, then 1cycle at its suggestion, 2 epochs of 5 batches."""
    cwd = tmp_path_factory.mktemp("fit")
    args = [*TINY, *TINY_RANGE_TEST, "--max-epochs", "2", "--log-dir", "logs"]
    output = run_example("fit.py", *args, cwd=cwd)
    return cwd / "logs" / "digits-smallcnn-onecycle" / "version_0", output


@pytest.mark.slow
def test_fit_writes_the_range_test_files(onecycle_run) -> None:
    run_dir, _ = onecycle_run
    result = json.loads((run_dir / "lr_range_test.json").read_text())
    assert result["config"]["num_steps"] == 40 and result["config"]["min_lr"] == 1e-3
    assert result["suggested_lr"] is not None and 1e-3 <= result["suggested_lr"] <= 10
    with open(run_dir / "lr_range_test.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == result["num_steps_run"] > 10
    assert float(rows[0]["lr"]) == pytest.approx(1e-3)
    assert all(math.isfinite(float(row["loss"])) for row in rows)
    assert (run_dir / "lr_range_test.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.slow
def test_fit_logs_lr_momentum_loss_accuracy_and_the_range_test(onecycle_run) -> None:
    run_dir, _ = onecycle_run
    logged = scalars(run_dir)
    for tag in ("lr-SGD/model", "lr-SGD/model-momentum", "train_loss_step", "train_loss_epoch", "train_acc"):
        assert tag in logged, sorted(logged)
    for tag in ("val_loss", "val_acc", "range_test/lr", "range_test/loss", "range_test/smoothed_loss"):
        assert tag in logged, sorted(logged)
    assert "hp_metric" not in logged  # no placeholder -1 between the curves
    suggested = json.loads((run_dir / "lr_range_test.json").read_text())["suggested_lr"]
    lrs = values(logged["lr-SGD/model"])
    assert len(lrs) == 10  # one per optimizer step: 2 epochs of 5 batches
    assert max(lrs) == pytest.approx(suggested, rel=0.2)  # 1cycle peaks at the suggestion
    assert lrs[0] == pytest.approx(suggested / 25, rel=1e-5)  # OneCycleLR's div_factor
    assert lrs[-1] < lrs[0]
    momentums = values(logged["lr-SGD/model-momentum"])
    assert momentums[0] == pytest.approx(0.95) and min(momentums) >= 0.85 - 1e-6
    assert len(logged["val_acc"]) == 2 and all(0 <= v <= 1 for v in values(logged["val_acc"]))
    assert all(math.isfinite(v) and v > 0 for v in values(logged["val_loss"]))
    assert image_tags(run_dir) == ["range_test/plot"]


@pytest.mark.slow
def test_fit_saves_the_best_checkpoint_and_says_where_the_logs_are(onecycle_run) -> None:
    run_dir, output = onecycle_run
    assert len(list((run_dir / "checkpoints").glob("best-epoch=*-val_acc=*.ckpt"))) == 1
    assert "tensorboard --logdir logs" in output
    assert "validation accuracy" in output and "at best" in output


@pytest.mark.slow
def test_fit_says_what_the_range_test_cost_and_where_its_plot_is_in_flag_terms(onecycle_run) -> None:
    run_dir, output = onecycle_run
    # 40 sweep steps before 10 training batches: the callback warns up front, naming the example's flag.
    warnings = [line for line in output.splitlines() if "lightning_onecycle" in line and "LRRangeTestCallback" in line]
    assert any("--range-test-steps" in line for line in warnings), warnings
    assert not any("num_steps" in line for line in warnings), warnings
    # The summary at the end: the sweep's time and share of the fit, the flag that sets it, where its plot is.
    summary = re.search(r"LR range test: 40 steps in [0-9.]+ s, [0-9]+% of this run's [0-9.]+ s", output)
    assert summary, output[-2000:]
    assert "(--range-test-steps sets its length)" in output
    assert f"plot: {run_dir.relative_to(run_dir.parents[2]) / 'lr_range_test.png'}" in output


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["fixed", "clr"])
def test_fit_baseline_policies_with_an_explicit_max_lr(tmp_path, policy) -> None:
    args = [*TINY, "--policy", policy, "--max-lr", "0.05", "--max-epochs", "2", "--log-dir", "logs"]
    args += ["--clr-step-epochs", "0.4"]  # CLR: 2 steps up, 2 down (an epoch is limited to 5 batches)
    run_example("fit.py", *args, cwd=tmp_path)
    run_dir = tmp_path / "logs" / f"digits-smallcnn-{policy}" / "version_0"
    assert not (run_dir / "lr_range_test.csv").exists(), "--max-lr skips the range test"
    logged = scalars(run_dir)
    lrs = values(logged["lr-SGD/model"])
    assert {"val_acc", "val_loss", "train_acc"} <= set(logged)
    assert "hp_metric" not in logged  # no placeholder -1 between the curves
    if policy == "fixed":
        # The tutorial's StepLR(7 of 25 epochs, 0.1) scaled to 2 epochs: a tenth from the second epoch.
        assert lrs == pytest.approx([0.05] * 5 + [0.005] * 5)
        # Momentum too, step by step, under 1cycle's tag: the runs compare side by side.
        assert values(logged["lr-SGD/model-momentum"]) == pytest.approx([0.9] * 10)
    else:
        assert lrs[:7] == pytest.approx([0.05 / 6 + k * (0.05 - 0.05 / 6) / 2 for k in (0, 1, 2, 1, 0, 1, 2)])
        assert "lr-SGD/model-momentum" in logged


def test_fit_help_documents_every_flag(monkeypatch, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_in_process("fit.py", "--help", monkeypatch=monkeypatch)
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    flags = (
        "--config --accelerator --devices --strategy --precision --max-epochs --batch-size --num-workers --dataset"
        " --data-dir --model --weights --freeze-backbone --backbone-lr-ratio --optimizer --weight-decay --policy"
        " --find-lr --no-find-lr --max-lr --seed --log-dir --limit-train-batches --limit-val-batches"
        " --range-test-steps --suggestion"
    ).split()
    for flag in flags:
        assert f"{flag} " in text or f"{flag}," in text, flag
    assert "{digits,hymenoptera}" in text and "{onecycle,clr,fixed}" in text
    assert "range test's suggestion" in text


def test_fit_reads_flags_from_a_config_file(tmp_path, monkeypatch, capsys) -> None:
    config = tmp_path / "fit.yaml"
    config.write_text("max_epochs: 3\npolicy: clr\nfind_lr: false\nmax_lr: 0.2\nlimit_train_batches: 1.0\n")
    with pytest.raises(SystemExit) as exit_info:
        run_in_process(
            "fit.py", "--config", str(config), "--max-epochs", "4", "--print_config", monkeypatch=monkeypatch
        )
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    # 1.0 stays the whole epoch (a share), not one batch; later flags win.
    for line in ("max_epochs: 4", "policy: clr", "find_lr: false", "max_lr: 0.2", "limit_train_batches: 1.0"):
        assert line in printed.splitlines(), printed


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-epochs", "0"], "max_epochs"),
        (["--policy", "sgdr"], "policy"),
        (["--dataset", "cifar10"], "dataset"),
        (["--max-lr", "-0.1"], "max_lr"),
        (["--suggestion", "middle"], "'minimum', 'minimum_nadam', 'steepest', 'valley']. Got value: middle"),
        (["--limit-val-batches", "0"], "--limit-val-batches must be a number of batches (>= 1) or a share"),
        (["--limit-train-batches", "1.5"], "share of them in (0, 1], but got 1.5"),
        (["--range-test-steps", "5"], "--range-test-steps must be at least 10, but got 5"),
        (["--range-test-min-lr", "1", "--range-test-max-lr", "0.1"], "must be below --range-test-max-lr (0.1)"),
        (["--no-find-lr"], "--no-find-lr needs --max-lr"),
        (["--model", "resnet1800", "--max-lr", "0.1"], "Unknown model 'resnet1800'"),
        (["--freeze-backbone", "true", "--backbone-lr-ratio", "0.1", "--max-lr", "0.1"], "--backbone-lr-ratio has no"),
    ],
)
def test_fit_rejects_bad_flags_with_a_clear_message(monkeypatch, capsys, args, message) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_in_process("fit.py", *args, monkeypatch=monkeypatch)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


# --- compare.py --------------------------------------------------------------------------


@pytest.mark.slow
def test_compare_trains_both_schedules_and_writes_the_comparison(tmp_path) -> None:
    args = [*TINY, *TINY_RANGE_TEST, "--max-epochs", "2", "--log-dir", "logs"]
    output = run_example("compare.py", *args, cwd=tmp_path)
    out = tmp_path / "logs" / "compare" / "version_0"
    assert (out / "compare.png").read_bytes()[:8] == PNG_MAGIC
    assert (out / "range_test" / "lr_range_test.png").read_bytes()[:8] == PNG_MAGIC

    summary = json.loads((out / "compare.json").read_text())
    fixed, onecycle = summary["runs"]
    max_lr = summary["range_test"]["suggested_lr"]
    assert (fixed["name"], onecycle["name"]) == ("fixed", "onecycle")
    assert summary["settings"]["max_lr"] == max_lr and summary["settings"]["fixed_lr"] == max_lr  # digits preset
    for run in (fixed, onecycle):
        assert run["epochs"] == [1, 2]
        assert all(0 <= a <= 1 for a in run["val_acc"]) and run["best_val_acc"] == max(run["val_acc"])
        assert all(math.isfinite(v) and v > 0 for v in run["val_loss"]) and run["final_val_loss"] == run["val_loss"][-1]
        assert run["wall_time_s"] > 0

    table = (out / "compare.md").read_text()
    assert f"| fixed | SGD lr {max_lr:.3g}, StepLR(1, 0.1) | {fixed['best_val_acc']:.4f} (epoch" in table
    assert f"| onecycle | SGD 1cycle, max lr {max_lr:.3g} | {onecycle['best_val_acc']:.4f} (epoch" in table
    assert table in output  # printed too
    assert re.search(r"Timed on CPU with torch.get_num_threads\(\) = \d+, 1-minute load average [0-9.]+", table)
    summary = r"LR range test: 40 steps in [0-9.]+ s, [0-9]+% of this comparison's [0-9.]+ s"
    assert re.search(summary, output), output[-2000:]
    assert "(--range-test-steps sets its length)" in output
    assert f"plot: {Path('logs/compare/version_0/range_test/lr_range_test.png')}" in output
    # The test-only fit logs no training steps: no Lightning warning that its epoch is shorter than the log interval.
    assert "smaller than the logging interval" not in output

    # TensorBoard: one run per schedule, side by side, with lr and momentum each step and no placeholder hp_metric.
    fixed_logged = scalars(out / "fixed")
    onecycle_logged = scalars(out / "onecycle")
    assert values(fixed_logged["lr-SGD/model"]) == pytest.approx([max_lr] * 5 + [max_lr / 10] * 5)
    assert values(fixed_logged["lr-SGD/model-momentum"]) == pytest.approx([0.9] * 10)
    schedule_tags = {"lr-SGD/model", "lr-SGD/model-momentum"}
    assert {tag for tag in fixed_logged if tag.startswith("lr-")} == schedule_tags
    assert {tag for tag in onecycle_logged if tag.startswith("lr-")} == schedule_tags
    for run in ("range_test", "fixed", "onecycle"):
        assert "hp_metric" not in scalars(out / run), run
    assert max(values(onecycle_logged["lr-SGD/model"])) == pytest.approx(max_lr, rel=0.2)
    assert {"val_acc", "val_loss", "lr-SGD/model-momentum"} <= set(onecycle_logged)
    assert image_tags(out / "range_test") == ["range_test/plot"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fixed-lr", "0"], "fixed_lr"),
        (["--dataset", "mnist"], "dataset"),
        (["--range-test-steps", "0"], "range"),
        (["--limit-train-batches", "0"], "--limit-train-batches must be a number of batches"),
        (["--range-test-min-lr", "1", "--range-test-max-lr", "0.1"], "must be below --range-test-max-lr (0.1)"),
    ],
)
def test_compare_rejects_bad_flags(monkeypatch, capsys, args, message) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_in_process("compare.py", *args, monkeypatch=monkeypatch)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_compare_help_documents_its_flags(monkeypatch, capsys) -> None:
    with pytest.raises(SystemExit):
        run_in_process("compare.py", "--help", monkeypatch=monkeypatch)
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--fixed-lr", "--max-epochs", "--dataset", "--weights", "--accelerator", "--range-test-steps"):
        assert f"{flag} " in text, flag
    assert "the tutorial's" in text


def test_batch_limits_are_read_as_lightning_reads_them(monkeypatch) -> None:
    from types import SimpleNamespace

    monkeypatch.syspath_prepend(str(EXAMPLES))
    from _cli import check_batch_limits

    class Parser:
        def error(self, message: str) -> None:
            raise SystemExit(message)

    args = SimpleNamespace(limit_train_batches=2.0, limit_val_batches=1.0)
    check_batch_limits(Parser(), args)
    assert (args.limit_train_batches, type(args.limit_train_batches)) == (2, int)  # 2.0 batches is 2 batches
    assert (args.limit_val_batches, type(args.limit_val_batches)) == (1.0, float)  # 1.0 is the whole epoch
    for bad in (0, -3, 1.5, 0.0):
        with pytest.raises(SystemExit, match="must be a number of batches"):
            check_batch_limits(Parser(), SimpleNamespace(limit_train_batches=bad, limit_val_batches=1.0))


@pytest.mark.slow
@pytest.mark.ddp
def test_fit_runs_under_ddp_spawn_on_two_cpu_processes(tmp_path) -> None:
    # The spawned processes import the script again: only its `__main__` guard keeps them from re-running it.
    args = ["--strategy", "ddp_spawn", "--devices", "2", "--max-epochs", "1", "--limit-train-batches", "2"]
    args += ["--limit-val-batches", "1", "--range-test-steps", "20", "--range-test-min-lr", "1e-3"]
    output = run_example(
        "fit.py", *TINY[:2], "--enable-progress-bar", "false", *args, "--log-dir", "logs", cwd=tmp_path
    )
    runs = sorted((tmp_path / "logs" / "digits-smallcnn-onecycle").iterdir())
    assert [r.name for r in runs] == ["version_0"]  # the workers wrote where this process reads
    result = json.loads((runs[0] / "lr_range_test.json").read_text())
    assert result["num_steps_run"] == 20 and result["suggested_lr"] is not None
    # This process has no result of its own (the workers had it): the report reads the file.
    assert f"onecycle, peak LR {result['suggested_lr']:.4g}: validation accuracy" in output
    assert len(list((runs[0] / "checkpoints").glob("best-epoch=0-val_acc=*.ckpt"))) == 1
    assert max(values(scalars(runs[0])["lr-SGD/model"])) == pytest.approx(result["suggested_lr"], rel=0.2)
