"""A real TensorBoard server serves what ``examples/fit.py`` logged: lr, momentum, loss, accuracy, range-test plot."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from helpers import PNG_MAGIC, TINY, run_example

pytestmark = pytest.mark.slow  # starts a TensorBoard server and runs fit.py

STARTUP_TIMEOUT_S = 60
RUN = "digits-smallcnn-onecycle/version_0"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(base: str, path: str, **query: str) -> bytes:
    url = f"{base}{path}" + (f"?{urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def _get_json(base: str, path: str, **query: str):
    return json.loads(_get(base, path, **query))


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory) -> Path:
    """A short fit.py run: a range test (for its plot) and 1cycle at an explicit max LR, 2 epochs of 5 batches."""
    cwd = tmp_path_factory.mktemp("tensorboard")
    args = [*TINY, "--find-lr", "--range-test-steps", "10", "--max-lr", "0.05", "--max-epochs", "2"]
    args += ["--log-dir", "logs"]
    run_example("fit.py", *args, cwd=cwd)
    return cwd / "logs"


@pytest.fixture(scope="module")
def tensorboard(log_dir) -> Iterator[str]:
    """The real TensorBoard server on a free loopback port, answering with the run's scalars; always stopped."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server_log = log_dir.parent / "tensorboard.log"
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(log_dir), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--load_fast", "false", "--reload_interval", "1"]
    with open(server_log, "w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"TensorBoard exited with {server.returncode}:\n{server_log.read_text()[-3000:]}")
            try:
                if "val_acc" in _get_json(base, "/data/plugin/scalars/tags").get(RUN, {}):
                    break  # the server is up and has read the event files
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"TensorBoard did not serve {RUN} within {STARTUP_TIMEOUT_S} s:\n{server_log.read_text()}")
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def test_tensorboard_lists_the_run_and_its_scalar_tags(tensorboard) -> None:
    assert RUN in _get_json(tensorboard, "/data/runs")
    tags = _get_json(tensorboard, "/data/plugin/scalars/tags")[RUN]
    expected = {
        "lr-SGD/model",
        "lr-SGD/model-momentum",
        "train_loss_step",
        "train_loss_epoch",
        "train_acc",
        "val_loss",
        "val_acc",
        "range_test/lr",
        "range_test/loss",
        "range_test/smoothed_loss",
    }
    assert expected <= set(tags), sorted(tags)
    assert "hp_metric" not in tags  # Lightning's placeholder (-1) would sit among the curves


def test_tensorboard_serves_the_1cycle_lr_and_momentum(tensorboard) -> None:
    # Each point is [wall_time, step, value].
    lrs = _get_json(tensorboard, "/data/plugin/scalars/scalars", run=RUN, tag="lr-SGD/model")
    assert [step for _, step, _ in lrs] == list(range(10))
    values = [v for _, _, v in lrs]
    assert values[0] == pytest.approx(0.05 / 25, rel=1e-5) and max(values) == pytest.approx(0.05, rel=1e-5)
    points = _get_json(tensorboard, "/data/plugin/scalars/scalars", run=RUN, tag="lr-SGD/model-momentum")
    momentums = [v for _, _, v in points]
    assert momentums[0] == pytest.approx(0.95) and min(momentums) == pytest.approx(0.85, abs=0.01)


def test_tensorboard_serves_loss_and_accuracy(tensorboard) -> None:
    for tag, low, high in (("val_acc", 0, 1), ("train_acc", 0, 1), ("val_loss", 0, 100), ("train_loss_epoch", 0, 100)):
        points = _get_json(tensorboard, "/data/plugin/scalars/scalars", run=RUN, tag=tag)
        assert len(points) == 2, tag  # one per epoch
        assert all(low <= v <= high for _, _, v in points), (tag, points)


def test_tensorboard_serves_the_range_test_plot(tensorboard) -> None:
    tags = _get_json(tensorboard, "/data/plugin/images/tags")
    assert list(tags[RUN]) == ["range_test/plot"]
    (image,) = _get_json(tensorboard, "/data/plugin/images/images", run=RUN, tag="range_test/plot")
    png = _get(tensorboard, f"/data/plugin/images/individualImage?{image['query']}")
    assert png[:8] == PNG_MAGIC and len(png) > 10_000
