"""The package's public surface: the core API, its version, and what importing it does not pull in."""

from __future__ import annotations

import subprocess
import sys

import pytest

import lightning_onecycle


def test_the_core_api_is_exported() -> None:
    for name in lightning_onecycle.__all__:
        assert getattr(lightning_onecycle, name) is not None, name
    core = {"LRRangeTestCallback", "OneCycleCallback", "CyclicLRCallback", "RangeTestResult", "is_range_test_running"}
    assert core <= set(lightning_onecycle.__all__)
    assert "ParamGroupScheduler" not in lightning_onecycle.__all__
    assert not [name for name in lightning_onecycle.__all__ if name in lightning_onecycle._MOVED_TO_DEMO]


def test_the_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    assert lightning_onecycle.__version__ == version("lightning-onecycle")


@pytest.mark.slow  # a fresh interpreter importing torch and Lightning
def test_importing_the_core_imports_neither_the_demo_nor_its_extras() -> None:
    # In a fresh interpreter: this one has imported them for other tests. (Lightning itself imports
    # torchvision when it is installed, so that one is checked where it is not: CI's "oldest" stage.)
    code = (
        "import sys, lightning_onecycle;"
        "print(sorted(m for m in ('lightning_onecycle.demo', 'sklearn', 'jsonargparse') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        lightning_onecycle.Nope  # noqa: B018  # the attribute access is the point
