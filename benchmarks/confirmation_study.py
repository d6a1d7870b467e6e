"""Would short 1cycle trials around the suggestion pick a better max LR? A study, not a feature.

Issue 10 proposed confirming the range test's suggestion with short 1cycle trials from the
same start (successive halving over a bracket). This measures the idea before building it:
for every task of ``suggestion_quality.py``'s sets legacy to test3 and each seed, 1cycle trials at
the suggestion ``s`` of step 8 (the rule shipped before step 9; the trials are cached around it)
times 2**k, k = -2..3, each from the same fresh model and seed, as long as a quarter of the fit
(at most 100 steps, the sweep's length), half of it, or all of it. The trial whose training loss
is lowest over its last quarter is picked (what training sees; an offset of the loss changes no
pick). The pick is scored on the task's grid of full 1cycle runs,
interpolated in log lr (accuracy; for a regression the log of the validation MSE), against the
grid's best, as the suggestion itself is scored the same way. A trial that stops early or whose
loss is not finite loses.

```
python benchmarks/confirmation_study.py [--lengths quarter half full] [--tasks NAME ...]
```

Reads the suggestions and grids of ``results/suggestion_quality.json`` and the caches beside it
(run that benchmark first); keeps its trials' tail losses in ``results/cache/confirmation.json``
and writes ``results/confirmation_study.{md,json}``. Everything runs on one CPU thread.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

sys.path.insert(0, str(Path(__file__).parent))

import _suite  # noqa: E402
from suggestion_quality import CACHE, RESULTS, trainer  # noqa: E402

from lightning_onecycle import OneCycleCallback, _param_groups  # noqa: E402

STUDIED = "step 8 (MINIMUM_MARGIN 2.5, fingerprint 7e3c5913ef6bbba9)"  # the rule whose suggestions were tried
EXPONENTS = range(-2, 4)  # candidates: the suggestion times 2**k
TAIL = 0.25  # the share of a trial's last steps whose mean training loss ranks it
LENGTHS = {"quarter": 0.25, "half": 0.5, "full": 1.0}
STUDY_CACHE = CACHE / "confirmation.json"
SEEDS = 3
HALVINGS = (("quarter", "half"), ("quarter", "full"), ("half", "full"))


class LossRecorder(Callback):
    """Every training step's loss."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        self.losses.append(float(loss))


def trial_steps(task: _suite.Task, length: str) -> int:
    fit = task.epochs * task.steps_per_epoch()
    if length == "quarter":
        return min(100, max(20, fit // 4))
    return max(20, int(fit * LENGTHS[length]))


def trial(task: _suite.Task, max_lr: float, seed: int, steps: int) -> list[float]:
    """The training losses of a 1cycle run of ``steps`` steps at ``max_lr`` from the fit's start."""
    pl.seed_everything(seed, verbose=False)
    model, (train, _) = task.model(), task.loaders(seed)
    recorder = LossRecorder()
    callbacks = [OneCycleCallback(max_lr=max_lr), recorder]
    trainer(max_steps=steps, max_epochs=-1, limit_val_batches=0, callbacks=callbacks).fit(model, train)
    return recorder.losses


def tail_loss(losses: list[float], steps: int) -> float:
    """Mean loss over the last quarter; infinite when the trial stopped early or went non-finite."""
    tail = np.asarray(losses[-max(1, int(len(losses) * TAIL)) :], dtype=float)
    return float(tail.mean()) if len(losses) == steps and np.all(np.isfinite(tail)) else math.inf


def candidate_key(lr: float) -> str:
    return f"{lr:.6g}"


def run_trials(task: _suite.Task, suggestion: float, seed: int, length: str, cache: dict) -> dict:
    """The trials around ``suggestion``, or those already cached for this task, seed and length (around the
    suggestion they were run for: the study measured step 8's, see ``STUDIED``)."""
    entry = cache.setdefault(task.name, {}).setdefault(str(seed), {}).get(length)
    if entry is not None:
        return entry
    steps = trial_steps(task, length)
    began = time.perf_counter()
    tails = {candidate_key(suggestion * 2.0**k): tail_loss(trial(task, suggestion * 2.0**k, seed, steps), steps)
             for k in EXPONENTS}
    entry = {"s": suggestion, "steps": steps, "tails": tails, "seconds": time.perf_counter() - began}
    cache[task.name][str(seed)][length] = entry
    STUDY_CACHE.write_text(json.dumps(cache))
    return entry


def grid_score(report: dict, lr: float) -> float:
    """The grid's mean score at ``lr``, interpolated in log lr (log MSE for a regression)."""
    lrs, means = np.log10(report["grid"]["lrs"]), np.asarray(report["grid"]["means"], dtype=float)
    order = np.argsort(lrs)
    if report["metric"] != "accuracy":
        means = np.log(np.minimum(means, 1e6))
    value = float(np.interp(math.log10(lr), lrs[order], means[order]))
    return value if report["metric"] == "accuracy" else math.exp(value)


def regret(report: dict, lr: float) -> float:
    """pp of accuracy below the grid's best; for a regression, % of excess validation loss."""
    score = grid_score(report, lr)
    if report["metric"] == "accuracy":
        return 100 * (report["best"] - score)
    return 100 * (score / report["best"] - 1)


def adaptive(task: _suite.Task) -> bool:
    return _param_groups.uses_adaptive_steps(task.optimizer([torch.nn.Parameter(torch.zeros(1))]))


def summarize(rows: list[dict]) -> dict:
    accuracy = [r for r in rows if r["metric"] == "accuracy"]
    regression = [r for r in rows if r["metric"] != "accuracy"]
    out: dict[str, Any] = {"tasks": len(accuracy)}
    for method in ("suggestion", "pick"):
        values = [r[method] for r in accuracy]
        out[method] = {
            "mean": statistics.mean(values) if values else math.nan,
            "worst": max(values) if values else math.nan,
            "over_5pp": sum(v > 5 for v in values),
            "regression": {r["task"]: r[method] for r in regression},
        }
    return out


def markdown(results: dict) -> str:
    lines = [
        "# Confirmation trials: would short 1cycle runs around the suggestion pick a better max LR?",
        "",
        f"Candidates: the suggestion of {STUDIED} times 2**k, k = {EXPONENTS.start}..{EXPONENTS.stop - 1}; pick: lowest"
        f" mean training loss over a trial's last {TAIL:.0%}; score: the task's grid of full 1cycle runs,"
        " interpolated in log lr, mean over 3 seeds per task. Regret in pp of accuracy (regressions: % excess"
        f" validation MSE). {results['conditions']}",
        "",
        "| trial length | optimizer | tasks | step 8's suggestion: mean / worst pp (> 5 pp)"
        " | trial pick: mean / worst pp (> 5 pp) | regressions, suggestion → pick | trials' cost, in fits |",
        "|---|---|---|---|---|---|---|",
    ]
    for length, kinds in results["summary"].items():
        for kind, s in kinds.items():
            if not s["tasks"]:
                continue
            sug, pick = s["suggestion"], s["pick"]
            reg = ", ".join(
                f"{t} {sug['regression'][t]:.0f}% → {pick['regression'][t]:.0f}%" for t in sug["regression"]
            )
            lines.append(
                f"| {length} | {kind} | {s['tasks']} | {sug['mean']:.2f} / {sug['worst']:.2f} ({sug['over_5pp']})"
                f" | {pick['mean']:.2f} / {pick['worst']:.2f} ({pick['over_5pp']}) | {reg or '-'} |"
                f" {results['cost'][length]} |"
            )
    lines += ["", "Per task (mean regret over seeds; suggestion → pick):", ""]
    lines += ["| task | optimizer | " + " | ".join(results["summary"]) + " |",
              "|---|---|" + "---|" * len(results["summary"])]
    for name, row in sorted(results["tasks"].items()):
        cells = [f"{row[length]['suggestion']:.2f} → {row[length]['pick']:.2f}" if length in row else "-"
                 for length in results["summary"]]
        lines.append(f"| {name} | {row['kind']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", nargs="+", choices=list(LENGTHS), default=list(LENGTHS))
    parser.add_argument("--tasks", nargs="+", default=None)
    parser.add_argument("--cached-only", action="store_true", help="report only the trials already in the cache")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    reports = json.loads((RESULTS / "suggestion_quality.json").read_text())["tasks"]
    cache = json.loads(STUDY_CACHE.read_text()) if STUDY_CACHE.exists() else {}
    tasks = [t for t in _suite.LEGACY + _suite.DEV + _suite.TEST + _suite.TEST2 + _suite.TEST3
             if args.tasks is None or t.name in args.tasks]
    per_task: dict[str, dict] = {}
    rows: dict[str, dict[str, list[dict]]] = {length: {"adaptive": [], "SGD-like": []} for length in args.lengths}
    for task in tasks:
        report = reports[task.name]
        kind = "adaptive" if adaptive(task) else "SGD-like"
        per_task[task.name] = {"kind": kind}
        for length in args.lengths:
            if args.cached_only and any(length not in cache.get(task.name, {}).get(str(s), {}) for s in range(SEEDS)):
                continue
            sugg, picks = [], []
            for seed in range(SEEDS):
                # Around the suggestion the other lengths were tried at, so all lengths compare the same candidates.
                tried = [e["s"] for e in cache.get(task.name, {}).get(str(seed), {}).values()]
                suggested = tried[0] if tried else report["ours"][seed]["lr"] or task.configured_lr
                entry = run_trials(task, suggested, seed, length, cache)
                tails = entry["tails"]
                picked = float(min(tails, key=lambda c: tails[c]))
                sugg.append(regret(report, entry["s"]))
                picks.append(regret(report, picked))
            row = {"task": task.name, "metric": report["metric"], "suggestion": statistics.mean(sugg),
                   "pick": statistics.mean(picks)}
            per_task[task.name][length] = row
            rows[length][kind].append(row)
    # Successive halving, as issue 10 proposed it: all six candidates at the shorter length, the three
    # best of them again at the longer one (the same runs: every trial is seeded alike), the best of those.
    for first, second in HALVINGS:
        label = f"halving {first} → {second}"
        if first not in args.lengths or second not in args.lengths:
            continue
        rows[label] = {"adaptive": [], "SGD-like": []}
        for task in tasks:
            entry = per_task[task.name]
            if first not in entry or second not in entry:
                continue
            report, sugg, picks = reports[task.name], [], []
            for seed in range(SEEDS):
                short = cache[task.name][str(seed)][first]["tails"]
                long = cache[task.name][str(seed)][second]["tails"]
                kept = sorted(short, key=lambda c: short[c])[: len(short) // 2]
                picked = float(min(kept, key=lambda c: long[c]))
                sugg.append(regret(report, cache[task.name][str(seed)][first]["s"]))
                picks.append(regret(report, picked))
            row = {"task": task.name, "metric": report["metric"], "suggestion": statistics.mean(sugg),
                   "pick": statistics.mean(picks)}
            entry[label] = row
            rows[label][entry["kind"]].append(row)
    cost = {}
    for length in args.lengths:
        shares = [len(list(EXPONENTS)) * trial_steps(t, length) / (t.epochs * t.steps_per_epoch())
                  for t in tasks if length in per_task[t.name]]
        cost[length] = f"{statistics.median(shares):.1f} (median), {max(shares):.1f} (most)"
    for first, second in HALVINGS:
        label = f"halving {first} → {second}"
        if label in rows:
            shares = [
                (len(list(EXPONENTS)) * trial_steps(t, first) + len(list(EXPONENTS)) // 2 * trial_steps(t, second))
                / (t.epochs * t.steps_per_epoch())
                for t in tasks if label in per_task[t.name]
            ]
            cost[label] = f"{statistics.median(shares):.1f} (median), {max(shares):.1f} (most)"
    results = {
        "summary": {length: {kind: summarize(r) for kind, r in kinds.items()} for length, kinds in rows.items()},
        "tasks": per_task,
        "cost": cost,
        "conditions": f"torch {torch.__version__}, lightning {pl.__version__}, 1 torch thread.",
    }
    (RESULTS / "confirmation_study.json").write_text(json.dumps(results, indent=1))
    (RESULTS / "confirmation_study.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
