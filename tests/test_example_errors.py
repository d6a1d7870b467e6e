"""The examples' expected failures: one line that names the flag to change, exit code 2, no half-written run.

Expected failures are those the flags cause: a Trainer setting that cannot work here (an accelerator the
machine lacks, an unknown precision), a combination the Trainer or the callbacks refuse once they see the data,
a model that cannot take the image size, weights or data that cannot be downloaded. Anything else is a bug and
keeps its traceback.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
import torchvision

from lightning_onecycle.demo import TransferClassifier

from helpers import EXAMPLES, TINY, run_in_process


def _one_error_line(script: str, *args: str, cwd: Path) -> str:
    """Run an example that must fail as the parser's errors do; return its one error line."""
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, f"{script} {' '.join(args)} exited with {proc.returncode}:\n{output[-4000:]}"
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and proc.stderr.rstrip().splitlines()[-1] == errors[0], proc.stderr[-4000:]
    return errors[0]


def _runs(cwd: Path) -> list[Path]:
    return sorted((cwd / "logs").glob("**/version_*"))


NO_GPU = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("script", "args", "flag", "says"),
    [
        pytest.param("fit.py", ["--accelerator", "gpu"], "--accelerator gpu", "--accelerator cpu", marks=NO_GPU),
        ("fit.py", ["--precision", "bogus"], "--precision", "'bogus'"),
        # Lightning refuses it only once it knows the data: 0.01 of 23 batches is no batch.
        ("fit.py", ["--limit-train-batches", "0.01", "--max-lr", "0.1"], "--limit-train-batches", "0.01"),
        # The small CNN halves the image twice: 2 pixels leave nothing to convolve.
        ("fit.py", ["--image-size", "2", "--max-lr", "0.1"], "--image-size 2", "--model smallcnn"),
        pytest.param("compare.py", ["--accelerator", "gpu"], "--accelerator gpu", "--accelerator cpu", marks=NO_GPU),
        ("compare.py", ["--limit-train-batches", "0.01"], "--limit-train-batches", "0.01"),
    ],
)
def test_an_expected_failure_is_one_line_naming_the_flag_and_leaves_no_run(tmp_path, script, args, flag, says) -> None:
    line = _one_error_line(script, *TINY[2:], "--max-epochs", "1", *args, "--log-dir", "logs", cwd=tmp_path)
    assert flag in line and says in line, line
    assert _runs(tmp_path) == [], "a run that failed before training leaves no version_N folder"


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["onecycle", "fixed"])
def test_the_newcomers_command_ends_in_a_result_or_in_one_line_naming_the_range_test_flags(tmp_path, policy) -> None:
    # The command: values the parser accepts, a 10-step sweep over 2 batches an epoch.
    args = ["--limit-train-batches", "2", "--range-test-steps", "10", "--max-epochs", "1", "--limit-val-batches", "1"]
    args += ["--policy", policy]
    args += ["--enable-progress-bar", "false", "--log-dir", "logs"]
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "fit.py"), *args], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
    if proc.returncode == 0:  # the range test found an LR
        assert "validation accuracy" in proc.stdout
        return
    assert proc.returncode == 2, proc.stderr[-4000:]
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert "--range-test-steps" in line and "--max-lr" in line and "max_lr=" not in line, line
    # The finished sweep is the one thing worth keeping: its folder stays, and the line says where its plot is.
    (run,) = _runs(tmp_path)
    assert str(run.relative_to(tmp_path) / "lr_range_test.png") in line and (run / "lr_range_test.png").exists()


def _error_line_in_process(script: str, *args: str, monkeypatch, capsys) -> str:
    """Run an example in this process (for failures before any training); return its one error line."""
    with pytest.raises(SystemExit) as exit_info:
        run_in_process(script, *args, monkeypatch=monkeypatch)
    assert exit_info.value.code == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    return line


def _offline(*args, **kwargs):
    raise URLError("[Errno -3] Temporary failure in name resolution")


@pytest.mark.parametrize("script", ["fit.py", "compare.py"])
def test_named_weights_offline_are_one_line_naming_the_flag(script, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no cached weights answer instead
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline)
    monkeypatch.chdir(tmp_path)
    args = ["--model", "resnet18", "--weights", "DEFAULT", "--log-dir", "logs"]
    line = _error_line_in_process(script, *args, monkeypatch=monkeypatch, capsys=capsys)
    assert "seems to be offline" in line and "--weights none" in line
    assert not (tmp_path / "logs").exists()


def test_ants_and_bees_offline_are_one_line_naming_the_folder_flag(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(torchvision.datasets.utils, "download_url", _offline)
    monkeypatch.chdir(tmp_path)
    args = ["--dataset", "hymenoptera", "--data-dir", "data/ants"]
    line = _error_line_in_process("fit.py", *args, monkeypatch=monkeypatch, capsys=capsys)
    assert "--data-dir data/ants: Could not download the ants/bees data" in line


def test_a_data_folder_without_train_and_val_is_one_line_naming_the_flag(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "ants").mkdir()
    monkeypatch.chdir(tmp_path)
    args = ["--dataset", "hymenoptera", "--data-dir", "ants"]
    line = _error_line_in_process("fit.py", *args, monkeypatch=monkeypatch, capsys=capsys)
    assert "--data-dir ants: Data folder ants has no train/ and no val/ sub-folder" in line


def _raise_from_the_test(*args, **kwargs):
    raise ValueError("a bug, not a flag")


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch) -> None:
    # A ValueError from outside the callbacks' checks is no flag's fault: it must not become a one-line error.
    monkeypatch.setattr(TransferClassifier, "training_step", _raise_from_the_test)
    monkeypatch.chdir(tmp_path)
    args = [*TINY, "--max-lr", "0.1", "--max-epochs", "1", "--log-dir", "logs"]
    with pytest.raises(ValueError, match="a bug, not a flag"):
        run_in_process("fit.py", *args, monkeypatch=monkeypatch)


def test_messages_of_the_callbacks_and_the_trainer_name_the_flags(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from _cli import in_flag_terms

    lightning = "Please increase the `limit_train_batches` argument. Try at least `limit_train_batches=0.04`"
    assert in_flag_terms(lightning) == (
        "Please increase the `--limit-train-batches` argument. Try at least `--limit-train-batches 0.04`"
    )
    sweep = "LRRangeTestCallback: the sweep (num_steps=100) will take 9x the training; lower num_steps or max_lr"
    assert in_flag_terms(sweep) == (
        "LRRangeTestCallback: the sweep (--range-test-steps 100) will take 9x the training;"
        " lower --range-test-steps or --range-test-max-lr"
    )
    assert in_flag_terms("OneCycleCallback: pass `max_lr=...`") == "OneCycleCallback: pass `--max-lr ...`"
    # Plain words stay words: only code-like mentions of the Trainer's one-word arguments are flags.
    assert in_flag_terms("the accelerator is not available; pass `accelerator='cpu'`") == (
        "the accelerator is not available; pass `--accelerator 'cpu'`"
    )


def test_the_range_tests_advice_on_the_schedules_peak_names_the_peaks_flag_where_the_script_has_one(
    monkeypatch,
) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import compare
    import fit

    from _cli import in_flag_terms

    # A range-test message names two max_lr: the schedule's peak (fit.py's --max-lr) and the sweep's end.
    message = (
        "LRRangeTestCallback: the loss did not fall. Check it with a short run, or pass the schedule's max_lr"
        " yourself; or raise max_lr."
    )
    expected = "pass the schedule's --max-lr yourself; or raise --range-test-max-lr."
    assert in_flag_terms(message).endswith(expected)
    assert in_flag_terms(message, fit.parser()).endswith(expected)
    # compare.py has no flag for 1cycle's peak (nor --devices, --strategy): a name without a flag stays a name.
    shown = in_flag_terms(message + " Or `devices=2`.", compare.parser())
    assert shown.endswith("pass the schedule's max_lr yourself; or raise --range-test-max-lr. Or `devices=2`.")


def test_warnings_of_the_callbacks_name_the_flags_while_an_example_runs(monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import lightning_onecycle.range_test

    from _cli import warnings_in_flag_terms

    message = "LRRangeTestCallback: the sweep is 90% of the fit; lower `num_steps`."
    with warnings.catch_warnings(record=True) as shown, warnings_in_flag_terms():
        warnings.simplefilter("always")
        warnings.warn_explicit(message, UserWarning, lightning_onecycle.range_test.__file__, 1)
        warnings.warn_explicit("elsewhere: `num_steps`", UserWarning, __file__, 1)
    assert [str(w.message) for w in shown] == [
        "LRRangeTestCallback: the sweep is 90% of the fit; lower `--range-test-steps`.",
        "elsewhere: `num_steps`",  # not ours to rename
    ]
