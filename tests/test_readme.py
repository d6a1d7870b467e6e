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


@pytest.mark.slow  # a 100-step range test on digits, as examples/compare.py runs it
def test_the_readmes_range_test_picture_and_compare_table_show_todays_suggestion() -> None:
    import lightning.pytorch as pl

    from lightning_onecycle.demo import DigitsDataModule, TransferClassifier

    data = DigitsDataModule(32, 64)  # compare.py's digits preset and flags' defaults
    data.prepare_data()
    pl.seed_everything(0, workers=True)
    model = TransferClassifier("smallcnn", num_classes=10)
    range_test = LRRangeTestCallback(min_lr=1e-6, num_steps=100, stop_after_test=True, save_files=False)
    flags = {"max_epochs": 1, "limit_val_batches": 0, "logger": False, "enable_checkpointing": False}
    trainer = pl.Trainer(accelerator="cpu", devices=1, enable_progress_bar=False, callbacks=[range_test], **flags)
    trainer.fit(model, datamodule=data)
    result = range_test.result
    assert result is not None and result.suggested_lr is not None
    shown = f"suggested lr {result.suggested_lr:.3g} ({result.suggestion})"
    section = README.read_text().split("\n## What you see\n")[1].split("\n## ")[0]
    for where, text in (
        ("README's What you see", section),
        ("docs/compare.md", (README.parent / "docs" / "compare.md").read_text()),
    ):
        assert shown in text and f"max lr {result.suggested_lr:.3g} |" in text, (
            f"{where} no longer shows what examples/compare.py gives ({shown}): rerun it and copy its compare.md,"
            " compare.png and range_test/lr_range_test.png into docs/ and the README"
        )
