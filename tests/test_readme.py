"""What the README promises about the callbacks' arguments, checked against the code it describes."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from lightning_onecycle import STRATEGIES, CyclicLRCallback, LRRangeTestCallback, OneCycleCallback

README = Path(__file__).resolve().parents[1] / "README.md"


def _section(title: str) -> str:
    """The README's text under ``### title``, up to the next heading."""
    text = README.read_text()
    start = text.index(f"\n### {title}\n")
    end = min(i for i in (text.find("\n## ", start + 1), text.find("\n### ", start + 1), len(text)) if i != -1)
    return text[start:end]


@pytest.mark.parametrize("callback", [OneCycleCallback, CyclicLRCallback, LRRangeTestCallback])
def test_every_argument_of_a_callback_is_in_its_readme_section(callback) -> None:
    section = _section(f"`{callback.__name__}`")
    names = inspect.signature(callback).parameters
    missing = [name for name in names if f"`{name}`" not in section and f"`{name}=" not in section]
    assert not missing, f"README's {callback.__name__} section does not name {missing}"


def test_the_range_tests_suggestion_row_names_every_built_in_strategy() -> None:
    (row,) = [line for line in _section("`LRRangeTestCallback`").splitlines() if line.startswith("| `suggestion`")]
    missing = [name for name in STRATEGIES if f'`"{name}"`' not in row]
    assert not missing, f"the README's `suggestion` row does not name {missing}"


def test_the_layout_table_names_every_module_of_the_package() -> None:
    text = README.read_text()
    start = text.index("\n## Layout\n")
    table = text[start : text.index("\n## ", start + 1)]
    root = README.parent
    modules = [path.relative_to(root) for path in (root / "lightning_onecycle").rglob("*.py")]
    named = set(re.findall(r"[`/](\w+\.py)`", table))  # as `lightning_onecycle/x.py` or `x.py`
    missing = [str(path) for path in modules if path.name != "__init__.py" and path.name not in named]
    assert not missing, f"README's Layout table does not name {missing}"
