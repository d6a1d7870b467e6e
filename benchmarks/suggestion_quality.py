"""Is the LR that a range test suggests actually good?

For each task: a grid search of 1cycle max LRs (quarter-decade grid, best
validation accuracy over epochs, averaged over seeds) is the reference. Then
each range test (ours with every suggestion strategy, Lightning's
``Tuner.lr_find`` and ``torch_lr_finder.LRFinder``) sweeps the same LR range on
a fresh model, and 1cycle training at its suggestion gives its accuracy.
Regret = grid best - achieved, in percentage points.

    python benchmarks/suggestion_quality.py [--tasks ...] [--seeds N] [--reuse-grid] [--quick]

Writes benchmarks/results/suggestion_quality.{json,md}; the JSON also caches
the grid for ``--reuse-grid``. ``--quick`` (1 task, 5 grid points, 1 seed)
only prints.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import math
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from _tasks import TASKS, Task
from lightning.pytorch.tuner import Tuner
from torch_lr_finder import LRFinder

from lightning_onecycle import LRRangeTestCallback, OneCycleCallback
from lightning_onecycle.suggestions import DEFAULT_STRATEGY, STRATEGIES, edge_at, suggest

SWEEP = {"min_lr": 1e-7, "max_lr": 10.0, "num_steps": 100}  # the same exponential sweep for every range test
CURVE_MINIMUM = "(reference) our curve's minimum"
GRID_ONE_SEED = "(reference) grid search, one run per LR"
PROBE_FACTORS = (10**-0.25, 1.0, 10**0.25)  # candidates around the suggestion, a quarter decade apart
PROBE_FRACTION = 3  # each probe is a 1cycle run over a third of the task's epochs
RESULTS = Path(__file__).parent / "results" / "suggestion_quality"


def trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, **kwargs,
    )


def train_one_cycle(
    task: Task, max_lr: float, seed: int, epochs: int | None = None, callbacks: list[pl.Callback] | None = None
) -> float:
    """Best validation accuracy over the epochs of one 1cycle run (``task.epochs`` unless ``epochs``)."""
    pl.seed_everything(seed, verbose=False)
    model, (train, val) = task.model(), task.loaders(seed)
    callbacks = [OneCycleCallback(max_lr=max_lr), *(callbacks or [])]
    trainer(max_epochs=epochs or task.epochs, callbacks=callbacks).fit(model, train, val)
    return max(model.val_accs)


class LossRecorder(pl.Callback):
    """The training loss of every step."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx) -> None:
        self.losses.append(float(outputs["loss"]))

    def final_loss(self) -> float:
        """Mean over the last quarter of the steps; inf if any step's loss was not finite."""
        tail = self.losses[-max(1, len(self.losses) // 4) :]
        return statistics.mean(tail) if all(map(math.isfinite, self.losses)) else math.inf


# --- range tests: each returns {method name: suggested lr or None} for a fresh model ---


def ours(task: Task, seed: int) -> dict[str, float | None]:
    """One sweep of our callback with its default suggestion; every other strategy reads the same curve."""
    pl.seed_everything(seed, verbose=False)
    model, (train, _) = task.model(), task.loaders(seed)
    test = LRRangeTestCallback(**SWEEP, stop_after_test=True, save_files=False)
    trainer(max_epochs=1, callbacks=[test]).fit(model, train)
    lrs, losses = test.result.lrs, test.result.smoothed_losses
    suggestions = {f"ours: {DEFAULT_STRATEGY}": test.result.suggested_lr}  # what a user gets, optimizer-aware
    suggestions |= {f"ours: {name}": suggest(lrs, losses, fn) for name, fn in CANDIDATES.items()}
    # Not a strategy: where the curve bottoms out, to show how far below it the best max LR lies.
    suggestions[CURVE_MINIMUM] = lrs[int(np.argmin(losses))]
    return suggestions


def lightning_lr_find(task: Task, seed: int) -> dict[str, float | None]:
    pl.seed_everything(seed, verbose=False)
    model, (train, _) = task.model(), task.loaders(seed)
    with tempfile.TemporaryDirectory() as tmp:  # lr_find writes a temporary checkpoint there
        finder = Tuner(trainer(max_epochs=-1, default_root_dir=tmp)).lr_find(
            model, train_dataloaders=train, min_lr=SWEEP["min_lr"], max_lr=SWEEP["max_lr"],
            num_training=SWEEP["num_steps"], update_attr=False,
        )
    return {"Lightning lr_find": finder.suggestion()}


def torch_lr_finder(task: Task, seed: int) -> dict[str, float | None]:
    pl.seed_everything(seed, verbose=False)
    model, (train, _) = task.model(), task.loaders(seed)
    finder = LRFinder(model, model.configure_optimizers(), torch.nn.CrossEntropyLoss(), device="cpu")
    finder.range_test(train, start_lr=SWEEP["min_lr"], end_lr=SWEEP["max_lr"], num_iter=SWEEP["num_steps"])
    # The rule of LRFinder.plot(suggest_lr=True) in torch-lr-finder 0.2.2: steepest
    # np.gradient of the smoothed loss per sweep step, without the first 10 and last 5 points.
    lrs, losses = finder.history["lr"][10:-5], finder.history["loss"][10:-5]
    return {"torch-lr-finder": lrs[int(np.argmin(np.gradient(losses)))] if len(lrs) >= 2 else None}


RANGE_TESTS = [ours, lightning_lr_find, torch_lr_finder]
# The library's strategies, plus variants under study (not in the library).
CANDIDATES = {**STRATEGIES, "edge/3 (previous default)": lambda lrs, losses: edge_at(lrs, losses, divisor=3.0)}


# --- the benchmark ---


def grid_search(task: Task, lrs: list[float], seeds: list[int]) -> dict:
    accs = [[train_one_cycle(task, lr, s) for s in seeds] for lr in lrs]
    return {"lrs": lrs, "seeds": seeds, "epochs": task.epochs, "accs": accs}


def one_run_per_lr(grid: dict) -> dict[str, list[float]] | None:
    """What a grid search with one training run per LR finds: for each seed, the LR its runs rank first.

    Scored like a suggestion: at the LR seed ``i``'s runs pick, the mean accuracy of
    the *other* seeds' runs (a fresh run at the chosen LR, not the lucky run that chose
    it). ``None`` with fewer than two seeds.

    Example::

        >>> one_run_per_lr({"lrs": [0.1, 1.0], "accs": [[0.5, 0.9, 0.6], [0.8, 0.7, 0.8]]})
        {'lrs': [1.0, 0.1, 1.0], 'accs': [0.75, 0.55, 0.75]}
    """
    accs = np.asarray(grid["accs"], dtype=float)  # one row per LR, one column per seed
    if accs.ndim != 2 or accs.shape[1] < 2:
        return None
    picks = [int(np.argmax(accs[:, i])) for i in range(accs.shape[1])]
    return {
        "lrs": [grid["lrs"][j] for j in picks],
        "accs": [float(np.delete(accs[j], i).mean()) for i, j in enumerate(picks)],
    }


def window(lrs: list[float], mean_accs: list[float], within: float) -> float:
    """Decades spanned by the grid LRs whose accuracy is within ``within`` of the best."""
    good = [lr for lr, acc in zip(lrs, mean_accs) if acc >= max(mean_accs) - within]
    return math.log10(max(good) / min(good))


class Trainings:
    """Full 1cycle trainings of one task by (max LR, seed), each run once (strategies often agree),
    with their wall times for the grid search's cost estimate."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.accs: dict[tuple[float, int], float] = {}
        self.seconds: list[float] = []

    def accuracy(self, lr: float | None, seed: int) -> float | None:
        """Best validation accuracy of the training at ``lr``; ``None`` for no suggestion."""
        if lr is None:
            return None
        if (lr, seed) not in self.accs:
            began = time.perf_counter()
            self.accs[lr, seed] = train_one_cycle(self.task, lr, seed)
            self.seconds.append(time.perf_counter() - began)
        return self.accs[lr, seed]


def evaluate(task: Task, grid: dict) -> dict:
    seeds = grid["seeds"]
    means = [statistics.mean(a) for a in grid["accs"]]
    best = int(np.argmax(means))
    report = {
        "description": task.description,
        "grid": grid,
        "best_lr": grid["lrs"][best],
        "best_acc": means[best],
        "window_decades": {"1pp": window(grid["lrs"], means, 0.01), "5pp": window(grid["lrs"], means, 0.05)},
        "methods": {},
    }
    trained = Trainings(task)
    for range_test in RANGE_TESTS:
        for seed in seeds:
            start = time.perf_counter()
            # Quiet the peers' progress bars and "Stopping early, the loss has diverged".
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                suggestions = range_test(task, seed)
            seconds = time.perf_counter() - start
            for method, lr in suggestions.items():
                entry = report["methods"].setdefault(method, {"lrs": [], "accs": [], "seconds": []})
                entry["lrs"].append(lr)
                entry["accs"].append(trained.accuracy(lr, seed))
                entry["seconds"].append(seconds)
    report["methods"].update(probe_suggestions(task, seeds, report["methods"][f"ours: {DEFAULT_STRATEGY}"], trained))
    picked = one_run_per_lr(grid)
    if picked is not None:  # its "range test" is the whole grid: one training run per grid LR
        cost = len(grid["lrs"]) * statistics.mean(trained.seconds) if trained.seconds else math.nan
        report["methods"][GRID_ONE_SEED] = {**picked, "seconds": [cost] * len(seeds)}
    for entry in report["methods"].values():
        # A range test that suggests nothing scores chance level: 0 accuracy for that seed.
        entry["acc"] = statistics.mean(a if a is not None else 0.0 for a in entry["accs"])
        entry["regret_pp"] = 100 * (report["best_acc"] - entry["acc"])
    return report


def probe_suggestions(task: Task, seeds: list[int], ours: dict, trained: Trainings) -> dict:
    """A confirmation step after the range test: short 1cycle runs at the suggestion and a quarter
    decade either side; the winner by each rule in :data:`PROBE_RULES` gets the full training."""
    rows: dict[str, dict[str, list]] = {name: {"lrs": [], "accs": [], "seconds": []} for name in PROBE_RULES}
    for seed, lr, seconds in zip(seeds, ours["lrs"], ours["seconds"]):
        began = time.perf_counter()
        picks = dict.fromkeys(PROBE_RULES, lr)
        if lr is not None:
            candidates = [lr * f for f in PROBE_FACTORS]
            runs = []  # (best val acc, final training loss) per candidate
            for c in candidates:
                recorder = LossRecorder()
                acc = train_one_cycle(task, c, seed, epochs=max(1, task.epochs // PROBE_FRACTION), callbacks=[recorder])
                runs.append((acc, recorder.final_loss()))
            picks = {name: candidates[rule(runs)] for name, rule in PROBE_RULES.items()}
        spent = seconds + time.perf_counter() - began
        for name, pick in picks.items():
            rows[name]["lrs"].append(pick)
            rows[name]["accs"].append(trained.accuracy(pick, seed))
            rows[name]["seconds"].append(spent)
    return rows


PROBE_RULES = {
    # What a benchmark can see: the validation accuracy of each short run.
    "(study) auto + 3 short runs, best val accuracy": lambda runs: int(np.argmax([acc for acc, _ in runs])),
    # What a callback can see without the user's validation code: the training loss at the end of each.
    "(study) auto + 3 short runs, lowest train loss": lambda runs: int(np.argmin([loss for _, loss in runs])),
}


def summary(results: dict) -> list[str]:
    """Regret (pp) per method and task, worst case last: the table the README shows."""
    tasks = results["tasks"]
    default = f"ours: {results['config']['our_default']}"
    names = [f"{n}{' (held out)' if TASKS[n].held_out else ''}" for n in tasks]
    methods = list(next(iter(tasks.values()))["methods"])
    lines = ["| method | " + " | ".join(names) + " | worst |", "|---" * (len(names) + 2) + "|"]
    for method in methods:
        regrets = [r["methods"][method]["regret_pp"] for r in tasks.values()]
        label = f"**{method}** (default)" if method == default else method
        lines.append(f"| {label} | " + " | ".join(f"{v:.2f}" for v in regrets) + f" | {max(regrets):.2f} |")
    best = " | ".join(f"{r['best_lr']:.3g} → {100 * r['best_acc']:.2f}%" for r in tasks.values())
    lines.append(f"| grid best (max LR → val acc) | {best} | |")
    return lines


def markdown(results: dict) -> str:
    default = results["config"]["our_default"]
    lines = [
        "# Suggestion quality: 1cycle accuracy at each range test's suggested max LR",
        "",
        f"Seeds {results['config']['seeds']}; sweep {SWEEP['min_lr']:g}..{SWEEP['max_lr']:g}, "
        f"{SWEEP['num_steps']} exponential steps, for every range test; 1 CPU thread; "
        f"total {results['config']['wall_time_s']:.0f} s. Our default strategy: `{default}`.",
        "",
    ]
    lines += summary(results) + [""]
    worst: dict[str, float] = {}
    for name, r in results["tasks"].items():
        w = r["window_decades"]
        lines += [
            f"## {name}: {r['description']}",
            "",
            f"Grid best: max LR {r['best_lr']:.3g}, val acc {100 * r['best_acc']:.2f}% "
            f"(grid {r['grid']['lrs'][0]:.3g}..{r['grid']['lrs'][-1]:.3g}, {len(r['grid']['lrs'])} points). "
            f"LRs within 1 pp of the best span {w['1pp']:.2f} decades, within 5 pp {w['5pp']:.2f}.",
            "",
            "| method | suggested LR per seed | log10(geo-mean / best) | val acc % | regret pp | range test s |",
            "|---|---|---|---|---|---|",
        ]
        for method, m in r["methods"].items():
            found = [lr for lr in m["lrs"] if lr is not None]
            lr_text = ", ".join("none" if lr is None else f"{lr:.2g}" for lr in m["lrs"])
            geo = math.exp(statistics.mean(math.log(lr) for lr in found)) if found else None
            offset = "" if geo is None else f"{math.log10(geo / r['best_lr']):+.2f}"
            label = f"**{method}** (default)" if method == f"ours: {default}" else method
            lines.append(
                f"| {label} | {lr_text} | {offset} | {100 * m['acc']:.2f} | {m['regret_pp']:.2f} "
                f"| {statistics.mean(m['seconds']):.2f} |"
            )
            worst[method] = max(worst.get(method, -math.inf), m["regret_pp"])
        lines.append("")
    lines += ["## Worst-case regret over tasks", "", "| method | worst regret pp |", "|---|---|"]
    lines += [f"| {method} | {regret:.2f} |" for method, regret in sorted(worst.items(), key=lambda kv: kv[1])]
    lines += [""] + peer_comparison(results)
    return "\n".join(lines) + "\n"


PEERS = ("Lightning lr_find", "torch-lr-finder")


def paired_difference(ours: list[float | None], peer: list[float | None]) -> tuple[float, float]:
    """Mean and standard error (pp) of ours - peer over seeds; the same seed trains both (no suggestion: 0)."""
    diffs = [100 * ((a or 0.0) - (b or 0.0)) for a, b in zip(ours, peer)]
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else math.inf
    return statistics.mean(diffs), se


def peer_comparison(results: dict) -> list[str]:
    """The issue's target, checked three ways: per task (1 pp), worst/mean over tasks, paired per task."""
    default = f"ours: {results['config']['our_default']}"
    tasks = results["tasks"]
    shown = (default, *PEERS, *([GRID_ONE_SEED] if GRID_ONE_SEED in next(iter(tasks.values()))["methods"] else []))
    regret = {m: [r["methods"][m]["regret_pp"] for r in tasks.values()] for m in shown}
    lines = [
        "## Target: default regret <= 1 pp on every task and below both peers'",
        "",
        "| method | worst regret pp | mean regret pp | tasks within 1 pp | held-out tasks within 1 pp |",
        "|---|---|---|---|---|",
    ]
    held_out = [TASKS[name].held_out for name in tasks]
    for m, values in regret.items():
        kept = [v for v, h in zip(values, held_out) if h]
        lines.append(
            f"| {m} | {max(values):.2f} | {statistics.mean(values):.2f} | {sum(v <= 1.0 for v in values)}/{len(values)} "
            f"| {sum(v <= 1.0 for v in kept)}/{len(kept)} |"
        )
    lines += [
        "",
        "Per task, ours minus each peer, paired by seed (accuracy pp, mean ± standard error; "
        "`better`/`worse` when the mean is more than two standard errors from 0, else `tie`):",
        "",
        "| task | " + " | ".join(f"vs {p}" for p in PEERS) + " |",
        "|---" * (len(PEERS) + 1) + "|",
    ]
    verdicts = []
    for name, r in tasks.items():
        cells = []
        for p in PEERS:
            mean, se = paired_difference(r["methods"][default]["accs"], r["methods"][p]["accs"])
            verdict = "better" if mean > 2 * se else "worse" if mean < -2 * se else "tie"
            verdicts.append(verdict)
            cells.append(f"{mean:+.2f} ± {se:.2f} ({verdict})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    within = all(v <= 1.0 for v in regret[default])
    below = all(max(regret[default]) < max(regret[p]) and statistics.mean(regret[default]) < statistics.mean(regret[p]) for p in PEERS)
    literal = sum(r <= min(regret[p][i] for p in PEERS) for i, r in enumerate(regret[default]))
    lines += [
        "",
        f"- regret <= 1 pp on every task: {'met' if within else 'NOT met'};",
        f"- worst-case and mean regret below both peers': {'met' if below else 'NOT met'};",
        f"- per task, regret no more than either peer's: {literal}/{len(tasks)} tasks; paired by seed, "
        f"{verdicts.count('worse')} significantly worse, {verdicts.count('tie')} ties, "
        f"{verdicts.count('better')} better (of {len(verdicts)} task-peer pairs).",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), help="default: all")
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 for every training run and range test (default 5)")
    parser.add_argument("--reuse-grid", action="store_true", help="reuse the grid cached in the results JSON")
    quick = "one task (tabular_mlp or the first of --tasks), 5 grid points, seed 0; print only"
    parser.add_argument("--quick", action="store_true", help=quick)
    args = parser.parse_args()
    if args.seeds is not None and args.seeds < 1:
        parser.error(f"--seeds must be at least 1, but got {args.seeds}.")
    if args.seeds is not None and args.quick:
        parser.error("--quick runs seed 0 only: drop --seeds, or --quick.")
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    if args.quick:
        tasks, seeds = [TASKS[args.tasks[0] if args.tasks else "tabular_mlp"]], [0]
    else:
        tasks, seeds = [TASKS[t] for t in args.tasks or TASKS], list(range(args.seeds or 5))

    start = time.perf_counter()
    cache = RESULTS.with_suffix(".json")
    cached = json.loads(cache.read_text())["tasks"] if args.reuse_grid and cache.exists() else {}
    results = {"tasks": {}}
    for task in tasks:
        lrs = task.grid()[::4] if args.quick else task.grid()
        grid = cached.get(task.name, {}).get("grid")
        if not grid or (grid["lrs"], grid["seeds"], grid["epochs"]) != (lrs, seeds, task.epochs):
            print(f"{task.name}: grid search, {len(lrs)} LRs x {len(seeds)} seeds", flush=True)
            grid = grid_search(task, lrs, seeds)
        print(f"{task.name}: range tests", flush=True)
        results["tasks"][task.name] = evaluate(task, grid)
    results["config"] = {
        "seeds": seeds,
        "sweep": SWEEP,
        "our_default": DEFAULT_STRATEGY,
        "versions": {"torch": torch.__version__, "lightning": pl.__version__},
        "wall_time_s": time.perf_counter() - start,
    }
    table = markdown(results)
    print(table)
    if not args.quick:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.with_suffix(".json").write_text(json.dumps(results, indent=1))
        RESULTS.with_suffix(".md").write_text(table)


if __name__ == "__main__":
    main()
