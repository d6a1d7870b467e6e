"""Shared fixtures. The models, data and helpers they use live in ``helpers.py``."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
import torch

from helpers import OptimizerProbe

os.environ.setdefault("PL_DISABLE_FORK", "1")
torch.set_num_threads(1)


@pytest.fixture
def probe() -> OptimizerProbe:
    return OptimizerProbe()


@pytest.fixture
def lightning_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """``caplog`` that also sees Lightning's log (``rank_zero_info`` lines), which does not reach the root logger."""
    logger = logging.getLogger("lightning.pytorch")
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)
