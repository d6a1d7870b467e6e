"""benchmarks/gpu_check.py runs on the CPU too (a smoke test): every check passes and the table has its rows."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


@pytest.mark.slow  # three subprocesses: fit.py, the overflow range test, overhead.py
def test_gpu_check_runs_its_three_checks_on_the_cpu(tmp_path) -> None:
    command = [sys.executable, str(SCRIPT), "--accelerator", "cpu", "--overhead-steps", "20", "--overhead-repeats", "1"]
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    table = proc.stdout[proc.stdout.index("| check | result | time |") :].splitlines()
    example, overflow, overhead = (row.split(" | ") for row in table[2:5])
    assert example[1].startswith("ok: 19 per-step hook calls (no sync check on the CPU), bf16-mixed"), example
    assert "validation accuracy" in example[1]
    assert re.match(
        r"ok: \d+ steps skipped by the GradScaler \(step 5 forced\) and retried at the same lr", overflow[1]
    )
    assert overhead[1].split(":")[0] in ("ok", "above the target"), overhead  # 20 steps time nothing reliably
    assert all(row[2].endswith(" s |") for row in (example, overflow, overhead))
    assert not (tmp_path / "results").exists() and not list(tmp_path.iterdir())  # nothing left behind
