"""Is the LR that a range test suggests actually good? Measured against a grid search, per task set.

For each task of ``_suite.py`` (the first suite's 14 ``legacy`` tasks, the ``dev``
set the rules were chosen on, the ``test`` set written down before any run on it, and ``test2``, written
down after ``test`` was scored and before any change made for what it showed; ``test3``, written down
after ``test2`` was scored, likewise; ``test4``, written down after the shipped rule was scored on ``test3``,
to score that rule once more; ``test5``, written down before step 9 to judge it):

1. a grid search of 1cycle max LRs (half decades over the task's range, then the quarter
   decades either side of the best), the mean over seeds of the best validation score over
   the epochs (accuracy, or the loss of a regression) is the reference;
2. each range test (ours: the callback with its defaults; Lightning's ``Tuner.lr_find``;
   ``torch_lr_finder.LRFinder``) sweeps 1e-7..10 in 100 steps on a fresh model per seed,
   and 1cycle trains at its suggestion with the same seed;
3. regret = grid best - score at the suggestion, in points of accuracy (pp), or for a loss
   the excess over the best loss, in percent. Without a suggestion, 1cycle trains at the
   optimizer's configured lr, as ``OneCycleCallback`` does then (until the first test set
   was scored, no suggestion scored 0 accuracy or an infinite loss).

Everything is cached per task in ``results/cache/<task>.json`` (grid runs, peers'
suggestions, trainings at any suggested LR, and the raw curves used to choose the rules),
so a rerun only trains what is new. Ours is rerun when the library's sweep or suggestion
code changes (a fingerprint of those sources is cached with it).

    python benchmarks/suggestion_quality.py [--set legacy dev test test2 test3 test4 test5] [--tasks ...] [--quick]

Writes ``results/suggestion_quality.{md,json}``; ``--quick`` (one task, seed 0) only prints.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import inspect
import io
import json
import logging
import math
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from _suite import TASKS, Task
from lightning.pytorch.tuner import Tuner
from torch_lr_finder import LRFinder

import lightning_onecycle
from lightning_onecycle import LRRangeTestCallback, OneCycleCallback, range_test

SWEEP = {"min_lr": 1e-7, "max_lr": 10.0, "num_steps": 100}  # the same exponential sweep for every range test
SEEDS = {"legacy": 5, "dev": 3, "test": 3, "test2": 3, "test3": 3, "test4": 3, "test5": 3}  # every set, oldest first
HELD_OUT = tuple(split for split in SEEDS if split.startswith("test"))  # written down before any run on them
NEWEST_FIRST = tuple(reversed(SEEDS))  # the order of the report's sections
OURS = "ours (default)"
PEERS = ("Lightning lr_find", "torch-lr-finder")
GRID_ONE_SEED = "(reference) grid search, one run per LR"
RESULTS = Path(__file__).parent / "results"
CACHE = RESULTS / "cache"
# The library code behind our suggestion (the sweep and how it is read): a change reruns our range tests.
FINGERPRINTED = ("suggestions.py", "loss_tracking.py", "_sweep_engine.py")


def trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, **kwargs,
    )


def fingerprint() -> str:
    root = Path(lightning_onecycle.__file__).parent
    digest = hashlib.sha256()
    for name in FINGERPRINTED:
        digest.update((root / name).read_bytes())
    # How the callback runs and reads its sweeps (the longer sweep of a flat curve included).
    for method in (LRRangeTestCallback._run, LRRangeTestCallback._sweeps_again, LRRangeTestCallback._sweep):
        digest.update(inspect.getsource(method).encode())
    digest.update(inspect.getsource(range_test._after_longer_sweep).encode())
    return digest.hexdigest()[:16]


def key(lr: float) -> str:
    return f"{lr:.6g}"


def train_one_cycle(task: Task, max_lr: float, seed: int) -> float:
    """The best validation score over the epochs of one 1cycle run (highest accuracy, lowest loss)."""
    pl.seed_everything(seed, verbose=False)
    model, (train, val) = task.model(), task.loaders(seed)
    trainer(max_epochs=task.epochs, callbacks=[OneCycleCallback(max_lr=max_lr)]).fit(model, train, val)
    bad = 0.0 if task.higher_is_better else math.inf
    scores = [s if math.isfinite(s) else bad for s in model.scores] or [bad]
    return max(scores) if task.higher_is_better else min(scores)


class Cache:
    """One task's runs and range tests, on disk."""

    def __init__(self, task: Task, write: bool = True) -> None:
        self.task, self.write = task, write
        self.path = CACHE / f"{task.name}.json"
        self.data = json.loads(self.path.read_text()) if self.path.exists() else {}
        for name in ("runs", "sweeps", "peers", "ours"):
            self.data.setdefault(name, {})
        self.data.setdefault("seconds", [])

    def save(self) -> None:
        if self.write:
            CACHE.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data))

    def score(self, lr: float | None, seed: int) -> float | None:
        """The score of 1cycle at ``lr`` with ``seed`` (trained once); ``None`` for no suggestion."""
        if lr is None:
            return None
        runs = self.data["runs"].setdefault(key(lr), {})
        if str(seed) not in runs:
            began = time.perf_counter()
            runs[str(seed)] = train_one_cycle(self.task, lr, seed)
            self.data["seconds"].append(time.perf_counter() - began)
            self.save()
        return runs[str(seed)]


def grid_lrs(task: Task, cache: Cache, seeds: list[int], points: int | None = None) -> list[float]:
    """Half decades over the task's range, then the quarter decades either side of the best."""
    lo, hi = (round(2 * math.log10(v)) for v in task.grid_range)
    coarse = [10 ** (k / 2) for k in range(lo, hi + 1)]
    if points is not None:  # --quick: a few points around the middle
        middle = len(coarse) // 2
        coarse = coarse[max(0, middle - points // 2) : middle + points // 2 + 1]
    for lr in coarse:
        for seed in seeds:
            cache.score(lr, seed)
    means = [statistics.mean(cache.data["runs"][key(lr)][str(s)] for s in seeds) for lr in coarse]
    best = coarse[int(np.argmax(means) if task.higher_is_better else np.argmin(means))]
    fine = [best * 10**-0.25, best * 10**0.25] if points is None else []
    for lr in fine:
        for seed in seeds:
            cache.score(lr, seed)
    # Every point with all seeds (the first suite's cached quarter-decade grid included).
    complete = [float(k) for k, runs in cache.data["runs"].items() if all(str(s) in runs for s in seeds)]
    within = [lr for lr in complete if coarse[0] / 1.01 <= lr <= coarse[-1] * 1.01]
    return sorted(set(within) | set(coarse) | set(fine), key=float)


# --- range tests: each returns {"lr": suggestion or None, "seconds": wall time, ...} ----------------


def ours(task: Task, seed: int) -> dict:
    """The callback with its defaults, as a user gets it (test only: the fit ends after it)."""
    pl.seed_everything(seed, verbose=False)
    model, (train, _) = task.model(), task.loaders(seed)
    test = LRRangeTestCallback(**SWEEP, stop_after_test=True, save_files=False, progress_bar=False)
    began = time.perf_counter()
    trainer(max_epochs=1, callbacks=[test]).fit(model, train)
    result = test.result
    return {
        "lr": result.suggested_lr,
        "seconds": time.perf_counter() - began,
        "suggestion": result.suggestion,
        "shape": getattr(result, "shape", None),
        "confidence": getattr(result, "confidence", None),
        "bracket": getattr(result, "suggestion_bracket", None),
        "steps": result.num_steps_run,
    }


def raw_sweep(task: Task, seed: int) -> dict:
    """A sweep without the divergence stop, its raw losses kept: what the rules were chosen on."""
    pl.seed_everything(seed, verbose=False)
    model, (train, _) = task.model(), task.loaders(seed)
    test = LRRangeTestCallback(
        **SWEEP, stop_after_test=True, save_files=False, progress_bar=False, divergence_threshold=None
    )
    trainer(max_epochs=1, callbacks=[test]).fit(model, train)
    optimizer = type(model.configure_optimizers()).__name__
    return {"lrs": test.result.lrs, "losses": test.result.losses, "optimizer": optimizer}


def lightning_lr_find(task: Task, seed: int) -> dict:
    pl.seed_everything(seed, verbose=False)
    model, (train, _) = task.model(), task.loaders(seed)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:  # lr_find writes a temporary checkpoint there
        finder = Tuner(trainer(max_epochs=-1, default_root_dir=tmp)).lr_find(
            model, train_dataloaders=train, min_lr=SWEEP["min_lr"], max_lr=SWEEP["max_lr"],
            num_training=SWEEP["num_steps"], update_attr=False,
        )
    return {"lr": finder.suggestion(), "seconds": time.perf_counter() - began}


def torch_lr_finder(task: Task, seed: int) -> dict:
    pl.seed_everything(seed, verbose=False)
    model, (train, _) = task.model(), task.loaders(seed)
    began = time.perf_counter()
    finder = LRFinder(model, model.configure_optimizers(), model.criterion, device="cpu")
    finder.range_test(train, start_lr=SWEEP["min_lr"], end_lr=SWEEP["max_lr"], num_iter=SWEEP["num_steps"])
    # The rule of LRFinder.plot(suggest_lr=True) in torch-lr-finder 0.2.2: steepest np.gradient of
    # the smoothed loss per sweep step, without the first 10 and last 5 points.
    lrs, losses = finder.history["lr"][10:-5], finder.history["loss"][10:-5]
    lr = lrs[int(np.argmin(np.gradient(losses)))] if len(lrs) >= 2 else None
    return {"lr": lr, "seconds": time.perf_counter() - began}


PEER_TESTS = {"Lightning lr_find": lightning_lr_find, "torch-lr-finder": torch_lr_finder}


def quietly(fn, *args):
    """Run ``fn`` with the peers' progress bars and "the loss has diverged" prints silenced."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return fn(*args)


# --- scoring ---------------------------------------------------------------------------------------


def regret(task: Task, best: float, scores: list[float | None]) -> float:
    """Accuracy: best - mean score, in pp (a missing score counts as 0). Loss: mean loss / best - 1, in %."""
    if task.higher_is_better:
        return 100 * (best - statistics.mean(s if s is not None else 0.0 for s in scores))
    losses = [s if s is not None else math.inf for s in scores]
    mean = statistics.mean(losses) if all(map(math.isfinite, losses)) else math.inf
    return 100 * (mean / best - 1)


def one_run_per_lr(lrs: list[float], scores: np.ndarray, higher: bool) -> tuple[list[float], list[float]] | None:
    """What a grid search with one training run per LR finds: for each seed, the LR its own runs rank first,
    scored by the mean of the *other* seeds' runs there (a fresh run, not the lucky one that chose it).

    Args:
        lrs: The grid.
        scores: One row per LR, one column per seed.
        higher: Whether a higher score is better.

    Example::

        >>> one_run_per_lr([0.1, 1.0], np.array([[0.5, 0.9, 0.6], [0.8, 0.7, 0.8]]), higher=True)
        ([1.0, 0.1, 1.0], [0.75, 0.55, 0.75])
    """
    if scores.ndim != 2 or scores.shape[1] < 2:
        return None
    picks = [int(np.argmax(col) if higher else np.argmin(col)) for col in scores.T]
    return [lrs[j] for j in picks], [float(np.delete(scores[j], i).mean()) for i, j in enumerate(picks)]


def window(lrs: list[float], means: list[float], higher: bool, within: float) -> float:
    """Decades spanned by the grid LRs within ``within`` of the best (accuracy points, or loss ratio)."""
    best = max(means) if higher else min(means)
    good = [lr for lr, m in zip(lrs, means) if (m >= best - within if higher else m <= best * (1 + within))]
    return math.log10(max(good) / min(good))


def evaluate(task: Task, seeds: list[int], quick: bool, write: bool) -> dict:
    cache = Cache(task, write=write)
    lrs = grid_lrs(task, cache, seeds, points=3 if quick else None)
    scores = np.array([[cache.data["runs"][key(lr)][str(s)] for s in seeds] for lr in lrs])
    means = scores.mean(axis=1)
    best_i = int(np.argmax(means) if task.higher_is_better else np.argmin(means))
    best = float(means[best_i])
    report = {
        "description": task.description, "family": task.family, "split": task.split, "metric": task.metric,
        "grid": {"lrs": lrs, "means": means.tolist()}, "best_lr": lrs[best_i], "best": best,
        "window_decades": window(lrs, means.tolist(), task.higher_is_better, 0.01),
        "methods": {},
    }
    stamp = fingerprint()
    for seed in seeds:
        entry = cache.data["ours"].get(str(seed))
        if entry is None or entry.get("fingerprint") != stamp:
            cache.data["ours"][str(seed)] = {**quietly(ours, task, seed), "fingerprint": stamp}
            cache.save()
        for name, run in PEER_TESTS.items():
            if str(seed) not in cache.data["peers"].get(name, {}):
                found = quietly(run, task, seed)
                cache.data["peers"].setdefault(name, {})[str(seed)] = found["lr"]
                cache.data["peers"].setdefault(f"{name} seconds", {})[str(seed)] = found["seconds"]
                cache.save()
    rows = {OURS: [cache.data["ours"][str(s)]["lr"] for s in seeds]}
    rows |= {name: [cache.data["peers"][name][str(s)] for s in seeds] for name in PEERS}
    seconds = {OURS: [cache.data["ours"][str(s)]["seconds"] for s in seeds]}
    seconds |= {name: [cache.data["peers"][f"{name} seconds"].get(str(s), math.nan) for s in seeds] for name in PEERS}
    for name, suggested in rows.items():
        # No suggestion: 1cycle peaks at the optimizer's configured lr, as OneCycleCallback does (for a peer,
        # what a user who keeps their lr gets).
        achieved = [cache.score(task.configured_lr if lr is None else lr, s) for lr, s in zip(suggested, seeds)]
        report["methods"][name] = {
            "lrs": suggested, "scores": achieved, "regret": regret(task, best, achieved),
            "seconds": statistics.mean(seconds[name]),
        }
    picked = one_run_per_lr(lrs, scores, task.higher_is_better)
    if picked is not None:
        report["methods"][GRID_ONE_SEED] = {"lrs": picked[0], "scores": picked[1], "regret": regret(task, best, picked[1])}
    report["ours"] = [cache.data["ours"][str(s)] for s in seeds]
    training = cache.data["seconds"]
    report["training_seconds"] = statistics.median(training) if training else None
    if not quick and task.split not in HELD_OUT and not any(str(s) in cache.data["sweeps"] for s in seeds):
        for seed in seeds:  # the raw curves the rules are chosen on (development sets only)
            cache.data["sweeps"][str(seed)] = quietly(raw_sweep, task, seed)
        cache.save()
    return report


# --- tables ----------------------------------------------------------------------------------------


def unit(report: dict) -> str:
    return "pp" if report["metric"] == "accuracy" else "%"


def split_table(tasks: dict[str, dict]) -> list[str]:
    names = list(tasks)
    methods = [OURS, *PEERS, GRID_ONE_SEED]
    lines = [
        "| method | " + " | ".join(f"{n} ({unit(tasks[n])})" for n in names) + " | worst pp | mean pp |",
        "|---" * (len(names) + 3) + "|",
    ]
    for method in methods:
        if not all(method in r["methods"] for r in tasks.values()):
            continue
        values = [tasks[n]["methods"][method]["regret"] for n in names]
        acc = [v for v, n in zip(values, names) if tasks[n]["metric"] == "accuracy"]
        label = f"**{method}**" if method == OURS else method
        lines.append(
            f"| {label} | " + " | ".join(_fmt(v) for v in values)
            + f" | {_fmt(max(acc)) if acc else '-'} | {_fmt(statistics.mean(acc)) if acc else '-'} |"
        )
    best = " | ".join(f"{r['best_lr']:.3g} → {_score(r, r['best'])}" for r in tasks.values())
    lines.append(f"| grid best (max LR → score) | {best} | | |")
    return lines


def summary_table(tasks: dict[str, dict]) -> list[str]:
    """Worst and mean regret over the accuracy tasks, tasks within 1 pp, regression tasks apart."""
    methods = [OURS, *PEERS, GRID_ONE_SEED]
    accuracy = [n for n, r in tasks.items() if r["metric"] == "accuracy"]
    losses = [n for n, r in tasks.items() if r["metric"] != "accuracy"]
    lines = [
        "| method | worst pp | mean pp | within 1 pp | within 5 pp | regression (% excess loss) | no suggestion |",
        "|---|---|---|---|---|---|---|",
    ]
    for method in methods:
        if not all(method in tasks[n]["methods"] for n in tasks):
            continue
        acc = [tasks[n]["methods"][method]["regret"] for n in accuracy]
        loss = ", ".join(f"{n} {_fmt(tasks[n]['methods'][method]['regret'])}" for n in losses) or "-"
        label = f"**{method}**" if method == OURS else method
        lines.append(
            f"| {label} | {_fmt(max(acc))} | {_fmt(statistics.mean(acc))} | {sum(v <= 1 for v in acc)}/{len(acc)}"
            f" | {sum(v <= 5 for v in acc)}/{len(acc)} | {loss} | {_missing(tasks, method)} |"
        )
    return lines


def _missing(tasks: dict[str, dict], method: str) -> str:
    """Runs without a suggestion (trained at the configured lr), out of all seeds' runs."""
    lrs = [lr for r in tasks.values() for lr in r["methods"][method]["lrs"]]
    return f"{sum(lr is None for lr in lrs)}/{len(lrs)}"


def family_table(results: dict) -> list[str]:
    families: dict[str, list[dict]] = {}
    for r in results["tasks"].values():
        families.setdefault(f"{r['split']}: {r['family']}", []).append(r)
    lines = ["| family | tasks | " + " | ".join([OURS, *PEERS]) + " |", "|---" * (len(PEERS) + 3) + "|"]
    for family, reports in sorted(families.items()):
        worst = [max(r["methods"][m]["regret"] for r in reports) for m in (OURS, *PEERS)]
        lines.append(f"| {family} | {len(reports)} | " + " | ".join(_fmt(w) for w in worst) + " |")
    return lines


def bracket_lines(results: dict) -> list[str]:
    lines = []
    for split in NEWEST_FIRST:
        inside = total = 0
        widths = []
        for r in results["tasks"].values():
            if r["split"] != split:
                continue
            for i, own in enumerate(r["ours"]):
                if not own.get("bracket"):
                    continue
                low, high = own["bracket"]
                widths.append(math.log10(high / low))
                others = [o["lr"] for j, o in enumerate(r["ours"]) if j != i and o["lr"]]
                inside += sum(low / 1.0001 <= lr <= high * 1.0001 for lr in others)
                total += len(others)
        if total:
            lines.append(
                f"- {split}: {inside}/{total} ({inside / total:.0%}) of the other seeds' suggestions lie inside a"
                f" seed's bracket; median bracket width {statistics.median(widths):.2f} decades."
            )
    return lines


def _fmt(value: float) -> str:
    return "inf" if not math.isfinite(value) else f"{value:.2f}" if abs(value) < 1000 else f"{value:.3g}"


def _score(report: dict, value: float) -> str:
    return f"{100 * value:.2f}%" if report["metric"] == "accuracy" else f"MSE {value:.4g}"


def detail(name: str, r: dict) -> list[str]:
    lines = [
        f"### {name} ({r['split']}, {r['family']}): {r['description']}",
        "",
        f"Grid best: max LR {r['best_lr']:.3g}, {_score(r, r['best'])} ({len(r['grid']['lrs'])} grid points,"
        f" {r['grid']['lrs'][0]:.3g}..{r['grid']['lrs'][-1]:.3g}); LRs within 1 "
        f"{'pp' if r['metric'] == 'accuracy' else '%'} of it span {r['window_decades']:.2f} decades.",
        "",
        f"| method | suggested LR per seed | regret ({unit(r)}) | range test s |",
        "|---|---|---|---|",
    ]
    for method, m in r["methods"].items():
        configured = f"none (→ {TASKS[name].configured_lr:.2g})"
        lrs = ", ".join(configured if lr is None else f"{lr:.2g}" for lr in m["lrs"])
        seconds = f"{m['seconds']:.1f}" if "seconds" in m else ""
        lines.append(f"| {method} | {lrs} | {_fmt(m['regret'])} | {seconds} |")
    ours_runs = r["ours"]
    shapes = ", ".join(f"{o.get('shape')}/{o.get('suggestion')}/{o.get('confidence')}" for o in ours_runs)
    lines += ["", f"Ours per seed (curve shape / rule / confidence): {shapes}."]
    task = TASKS[name]
    batches = task.epochs * task.steps_per_epoch()
    again = sum(swept_again(o) for o in ours_runs)
    test_s = statistics.mean(o["seconds"] for o in ours_runs)
    train_s = r.get("training_seconds")
    share = f" ({test_s / train_s:.2f} of a 1cycle run's median {train_s:.1f} s)" if train_s else ""
    lines.append(
        f"Cost: a sweep trains on {SWEEP['num_steps']} batches, the 1cycle run on {batches}"
        f" ({SWEEP['num_steps'] / batches:.2f} of it); swept again ({SWEEP['num_steps']} + up to"
        f" {3 * SWEEP['num_steps']} batches) for {again} of {len(ours_runs)} seeds; range test {test_s:.1f} s{share}."
    )
    return lines + [""]


def cost_lines(tasks: dict[str, dict]) -> list[str]:
    """Our range test's wall time against one 1cycle run's, and how often it swept again."""
    ratios = {
        n: statistics.mean(o["seconds"] for o in r["ours"]) / r["training_seconds"]
        for n, r in tasks.items()
        if r.get("training_seconds")
    }
    runs = [o for r in tasks.values() for o in r["ours"]]
    if not ratios:
        return []
    worst = max(ratios, key=ratios.__getitem__)
    return [
        f"Cost of our range test, as a share of one 1cycle run's wall time: median {statistics.median(ratios.values()):.2f},"
        f" most {ratios[worst]:.2f} ({worst}); it swept again (a flat first curve) in {sum(map(swept_again, runs))}"
        f" of {len(runs)} runs.",
        "",
    ]


def swept_again(run: dict) -> bool:
    """Whether ours swept again (a flat first curve): the kept curve is the longer one, or a flat one."""
    return run["steps"] > SWEEP["num_steps"] or run.get("shape") in range_test.FLAT_SHAPES


def markdown(results: dict) -> str:
    config = results["config"]
    lines = [
        "# Suggestion quality: 1cycle at each range test's suggested max LR, against a grid search",
        "",
        f"Sweep {SWEEP['min_lr']:g}..{SWEEP['max_lr']:g} in {SWEEP['num_steps']} exponential steps for every"
        " range test (no suggestion: 1cycle at the optimizer's configured lr, as `OneCycleCallback` does);"
        f" seeds per task: {', '.join(f'{split} {n}' for split, n in SEEDS.items())}; ours: the library's suggestion"
        f" code with fingerprint {fingerprint()} (cached with each result);"
        f" torch {config['versions']['torch']}, lightning {config['versions']['lightning']}, 1 torch thread,"
        f" load average {config['load']}. Regret in pp of accuracy, or in % of excess loss for a regression.",
        "",
    ]
    for split in NEWEST_FIRST:
        tasks = {n: r for n, r in results["tasks"].items() if r["split"] == split}
        if tasks:
            lines += [f"## {split}", ""] + summary_table(tasks) + [""] + split_table(tasks) + [""]
            lines += cost_lines(tasks)
    lines += ["## Per family: worst regret of each method (pp; % for a regression)", ""] + family_table(results)
    lines += ["", "## The bracket: how often other seeds' suggestions fall inside a seed's", ""]
    lines += bracket_lines(results) + ["", "## Per task", ""]
    for name, r in results["tasks"].items():
        lines += detail(name, r)
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", nargs="+", choices=sorted(SEEDS), default=sorted(SEEDS), dest="sets")
    parser.add_argument("--tasks", nargs="+", choices=sorted(TASKS), help="only these tasks")
    parser.add_argument("--quick", action="store_true", help="one task (the first of --tasks), seed 0, 3 grid points")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    names = args.tasks or [n for n, t in TASKS.items() if t.split in args.sets]
    if args.quick:
        names = names[:1]
    start = time.perf_counter()
    results: dict = {"tasks": {}}
    for name in names:
        task = TASKS[name]
        seeds = [0] if args.quick else list(range(SEEDS[task.split]))
        print(f"{name} ({task.split})", flush=True)
        results["tasks"][name] = evaluate(task, seeds, args.quick, write=not args.quick)
    results["config"] = {
        "sweep": SWEEP, "seeds": SEEDS, "wall_time_s": time.perf_counter() - start,
        "versions": {"torch": torch.__version__, "lightning": pl.__version__},
        "load": " ".join(f"{v:.1f}" for v in os.getloadavg()), "threads": torch.get_num_threads(),
    }
    table = markdown(results)
    print(table)
    if not args.quick:
        previous = RESULTS / "suggestion_quality.json"
        merged = json.loads(previous.read_text())["tasks"] if previous.exists() and args.tasks else {}
        results["tasks"] = {**merged, **results["tasks"]}
        (RESULTS / "suggestion_quality.json").write_text(json.dumps(results, indent=1))
        (RESULTS / "suggestion_quality.md").write_text(markdown(results))


if __name__ == "__main__":
    sys.exit(main())
