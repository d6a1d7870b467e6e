"""Shared fixtures. The models, data and helpers they use live in ``helpers.py``."""

from __future__ import annotations

import os

import pytest
import torch

from helpers import OptimizerProbe

os.environ.setdefault("PL_DISABLE_FORK", "1")
torch.set_num_threads(1)


@pytest.fixture
def probe() -> OptimizerProbe:
    return OptimizerProbe()
