"""1cycle under DDP: both ranks apply identical values at every step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_onecycle import OneCycleSchedule

HERE = Path(__file__).parent


@pytest.mark.slow
@pytest.mark.ddp
def test_both_ranks_apply_identical_values(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(HERE), "PL_DISABLE_FORK": "1"}
    subprocess.run(
        [sys.executable, str(HERE / "_ddp_one_cycle.py"), str(tmp_path)], env=env, check=True, timeout=300, cwd=tmp_path
    )
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    # 64 samples split over 2 ranks: 4 batches of 8 per rank and epoch
    assert r0["total_steps"] == r1["total_steps"] == 8
    assert r0["lrs"] == r1["lrs"] and r0["momentums"] == r1["momentums"]
    s = OneCycleSchedule(max_lr=0.1, total_steps=8)
    assert [v[0] for v in r0["lrs"]] == pytest.approx([s.lr(k) for k in range(8)], rel=1e-12)
