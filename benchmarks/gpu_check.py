"""The CUDA path in one command: the example under AMP with a no-sync check, the GradScaler's retry, the overhead.

Three checks, each timed, then a Markdown table (check, result, time); exit code 1 if one failed:

1. ``examples/fit.py --accelerator gpu --precision 16-mixed`` (a range test, then 1cycle; small limits)
   with ``OneCycleCallback``'s per-step hook (``on_train_batch_start``) run under
   ``torch.cuda.set_sync_debug_mode("error")``: a step that reads a value back from the device fails.
   Only that hook runs in error mode (after its first call, which resolves the schedule): the range
   test's sweep reads its loss every step by design.
2. A range test under fp16 AMP whose 5th training step has a gradient fp16 cannot hold: the
   GradScaler skips that step (and any other that overflows), and the sweep retries it at the same
   lr instead of recording it; the scaler's state is restored afterwards.
3. ``benchmarks/overhead.py --accelerator gpu``, run on a copy so that its results land in a
   temporary folder, not in ``benchmarks/results/``.

Under 5 minutes on one GPU (most of it the overhead benchmark):

    python benchmarks/gpu_check.py
    python benchmarks/gpu_check.py --accelerator cpu --overhead-steps 20 --overhead-repeats 1   # the smoke test

With ``--accelerator cpu`` the example runs in ``bf16-mixed`` without the sync check (there is no
device to sync with), and the overflow check uses fp16 with a CPU GradScaler, as the test suite does.
"""

from __future__ import annotations

import argparse
import json
import platform
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.plugins.precision import MixedPrecision
from torch.utils.data import DataLoader, TensorDataset

from lightning_onecycle import LRRangeTestCallback, LRSweep, OneCycleCallback

ROOT = Path(__file__).resolve().parents[1]
_CHILD = "_fit_with_checked_hook"  # argv[1] of the subprocess that runs fit.py with the wrapped hook
_CHECKED = "gpu_check: per-step hook calls checked:"
_OVERFLOW_AT = 5
_SWEEP_STEPS = 12


# --- 1. the example, its per-step hook under the sync debug mode -------------------------------------------


def _fit_with_checked_hook(sync_check: bool, fit_args: list[str]) -> None:
    """In a subprocess: run examples/fit.py with OneCycleCallback's per-step hook wrapped in the sync check."""
    hook = OneCycleCallback.on_train_batch_start
    checked = 0

    def on_train_batch_start(self: OneCycleCallback, trainer: pl.Trainer, *args: Any) -> None:
        nonlocal checked
        if trainer.global_step == 0:  # the first call resolves the schedule: not the per-step path
            return hook(self, trainer, *args)
        mode = torch.cuda.get_sync_debug_mode() if sync_check else 0
        if sync_check:
            torch.cuda.set_sync_debug_mode("error")
        try:
            hook(self, trainer, *args)
        finally:
            if sync_check:
                torch.cuda.set_sync_debug_mode(mode)
        checked += 1

    OneCycleCallback.on_train_batch_start = on_train_batch_start
    sys.argv = [str(ROOT / "examples" / "fit.py"), *fit_args]
    sys.path.insert(0, str(ROOT / "examples"))  # as `python examples/fit.py` does
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
    finally:
        print(f"{_CHECKED} {checked}", flush=True)


def check_example(accelerator: str, workdir: Path) -> str:
    gpu = accelerator != "cpu"
    precision = "16-mixed" if gpu else "bf16-mixed"
    fit_args = ["--accelerator", accelerator, "--precision", precision, "--max-epochs", "2"]
    fit_args += ["--limit-train-batches", "10", "--limit-val-batches", "2", "--enable-progress-bar", "false"]
    # An explicit peak: the range test still runs (on the device, under AMP), but no suggestion is needed.
    fit_args += ["--find-lr", "--max-lr", "0.05", "--range-test-steps", "20", "--log-dir", str(workdir / "logs")]
    proc = subprocess.run(
        [sys.executable, __file__, _CHILD, str(int(gpu)), *fit_args],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"fit.py exited with {proc.returncode}: {_last_lines(output)}")
    checked = int(output.split(_CHECKED)[1].split()[0])
    if checked < 10:  # 2 epochs of 10 batches, less the first call (fewer if AMP skipped a step at global step 0)
        raise RuntimeError(f"only {checked} per-step hook calls were checked (expected 19): {_last_lines(output)}")
    accuracy = next(line for line in proc.stdout.splitlines() if "validation accuracy" in line)
    sync = "under sync debug mode 'error'" if gpu else "(no sync check on the CPU)"
    return f"ok: {checked} per-step hook calls {sync}, {precision}; {accuracy.strip()}"


# --- 2. a step the GradScaler skips is retried ------------------------------------------------------


class _OverflowingRegression(pl.LightningModule):
    """A small regression whose ``overflow_at``-th training step has a gradient that overflows fp16."""

    def __init__(self, overflow_at: int) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU())
        self.head = torch.nn.Linear(16, 1)
        self.overflow_at = overflow_at
        self.lrs: list[float] = []  # the lr of each training step, retried ones included

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.lrs.append(float(self.trainer.optimizers[0].param_groups[0]["lr"]))
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.head(self.body(x)).float().squeeze(-1), y)
        if len(self.lrs) == self.overflow_at:
            # Adds 0 to the loss, but a gradient of 1e38 per weight: inf once the GradScaler scales it.
            big = self.head.weight.float() * 1e38
            loss = loss + (big.sum() - big.sum().detach())
        return loss

    def train_dataloader(self) -> DataLoader:
        g = torch.Generator().manual_seed(1)
        x = torch.randn(160, 4, generator=g)
        y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.1 * torch.randn(160, generator=g)
        return DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)


def check_skipped_step(accelerator: str, workdir: Path) -> str:
    pl.seed_everything(0, verbose=False)
    model = _OverflowingRegression(overflow_at=_OVERFLOW_AT)
    range_test = LRRangeTestCallback(
        min_lr=1e-4,
        max_lr=1e-2,
        num_steps=_SWEEP_STEPS,
        divergence_threshold=None,
        stop_after_test=True,
        progress_bar=False,
        save_files=False,
        log_to_loggers=False,
    )
    amp: dict[str, Any] = {"precision": "16-mixed"}
    if accelerator == "cpu":  # Lightning's CPU AMP has no GradScaler of its own: the test suite's setup
        amp = {"plugins": [MixedPrecision("16-mixed", "cpu", torch.amp.GradScaler("cpu"))]}
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=1,
        max_epochs=1,
        callbacks=[range_test],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(workdir),
        **amp,
    )
    scaler = getattr(trainer.precision_plugin, "scaler", None)
    scale_before = scaler.get_scale() if scaler is not None else None
    trainer.fit(model)
    result = range_test.result
    expected = [LRSweep(1e-4, 1e-2, _SWEEP_STEPS).lr(i) for i in range(_SWEEP_STEPS)]
    problems = []
    if scaler is None:
        problems.append("no GradScaler in the precision plugin")
    if result is None or result.lrs != expected:
        problems.append(f"swept lrs {None if result is None else result.lrs} instead of {expected}")
    seen = model.lrs
    if [lr for i, lr in enumerate(seen) if i == 0 or lr != seen[i - 1]] != expected:
        problems.append(f"training steps ran at lrs {seen}, not each sweep lr until it counted")
    if len(seen) <= _OVERFLOW_AT or seen[_OVERFLOW_AT] != seen[_OVERFLOW_AT - 1]:
        problems.append(f"the step after the overflowing step {_OVERFLOW_AT} did not retry its lr: {seen}")
    if scaler is not None and scaler.get_scale() != scale_before:
        problems.append(f"GradScaler scale {scaler.get_scale()} after the test, {scale_before} before")
    if problems:
        raise RuntimeError("; ".join(problems))
    skipped = len(seen) - _SWEEP_STEPS
    return (
        f"ok: {skipped} steps skipped by the GradScaler (step {_OVERFLOW_AT} forced) and retried at the same lr,"
        f" {_SWEEP_STEPS} points; scale restored to {scale_before:g}"
    )


# --- 3. the overhead benchmark -------------------------------------------------------------------------


def check_overhead(accelerator: str, workdir: Path, steps: int, repeats: int) -> str:
    # A copy writes its results next to itself (its RESULTS folder), leaving benchmarks/results/ alone.
    script = workdir / "overhead.py"
    shutil.copy(ROOT / "benchmarks" / "overhead.py", script)
    command = [sys.executable, str(script), "--accelerator", accelerator]
    command += ["--steps", str(steps), "--repeats", str(repeats)]
    proc = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"overhead.py exited with {proc.returncode}: {_last_lines(proc.stdout + proc.stderr)}")
    rows = json.loads((workdir / "results" / "overhead.json").read_text())["rows"]
    ratios = ", ".join(f"{row['ratio']:.3f} ({row['pairing']})" for row in rows)
    verdict = "ok" if all(row["ratio"] <= 1.03 for row in rows) else "above the target"
    return f"{verdict}: OneCycleCallback / OneCycleLR step time {ratios}, target <= 1.03; {steps} steps x {repeats}"


# --- the table ------------------------------------------------------------------------------------------


def _last_lines(output: str, count: int = 3) -> str:
    return " | ".join(line.strip() for line in output.strip().splitlines()[-count:])


def run(checks: list[tuple[str, Callable[[], str]]]) -> tuple[list[str], bool]:
    """Each check timed; a failure is its error's last lines, not the end of the others."""
    lines = ["| check | result | time |", "|---|---|---|"]
    passed = True
    for name, check in checks:
        start = time.perf_counter()
        try:
            result = check()
        except Exception as err:  # a failed check is a row of the table
            passed = False
            traceback.print_exc()
            result = f"FAILED: {type(err).__name__}: {err}"
        seconds = time.perf_counter() - start
        lines.append(f"| {name} | {' '.join(result.split()).replace('|', '/')} | {seconds:.1f} s |")
        print(lines[-1], flush=True)
    return lines, passed


def main() -> None:
    if sys.argv[1:2] == [_CHILD]:
        _fit_with_checked_hook(sys.argv[2] == "1", sys.argv[3:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accelerator", choices=["gpu", "cuda", "cpu"], default="gpu")
    parser.add_argument("--overhead-steps", type=int, default=1500, help="overhead.py --steps")
    parser.add_argument("--overhead-repeats", type=int, default=5, help="overhead.py --repeats")
    args = parser.parse_args()
    if args.accelerator != "cpu" and not torch.cuda.is_available():
        parser.error(
            f"--accelerator {args.accelerator}: torch sees no CUDA GPU here; --accelerator cpu runs the smoke test"
        )
    device = torch.cuda.get_device_name() if args.accelerator != "cpu" else platform.processor() or "CPU"
    amp = "16-mixed" if args.accelerator != "cpu" else "bf16-mixed"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for sub in ("fit", "overflow", "overhead"):
            (work / sub).mkdir()
        example = f"`fit.py --accelerator {args.accelerator} --precision {amp}`, per-step hook sync check"
        overflow = "range test, fp16 AMP, a step overflows (GradScaler skip, retry)"
        overhead = f"`overhead.py --accelerator {args.accelerator}`"
        checks = [
            (example, lambda: check_example(args.accelerator, work / "fit")),
            (overflow, lambda: check_skipped_step(args.accelerator, work / "overflow")),
            (
                overhead,
                lambda: check_overhead(args.accelerator, work / "overhead", args.overhead_steps, args.overhead_repeats),
            ),
        ]
        lines, passed = run(checks)
    lines.append("")
    lines.append(f"{device}, torch {torch.__version__}, lightning {pl.__version__}.")
    print("\n" + "\n".join(lines))
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
