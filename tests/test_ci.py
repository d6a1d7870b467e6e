"""CI's stages (``.ci/run``) can run what they select."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What the oldest stage does not install: the [examples] extra's packages (and what imports them), the [dev] peers.
NOT_IN_THE_CORE = ("torchvision", "sklearn", "torch_lr_finder", "lightning_onecycle.demo")


def _imports(path: Path) -> set[str]:
    """The modules ``path`` imports when it is loaded (its top-level import statements)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _oldest_stage_ignores() -> list[Path]:
    stage = (ROOT / ".ci" / "run").read_text().split("    oldest)", 1)[1].split(";;", 1)[0]
    return [ROOT / ignored for ignored in re.findall(r"--ignore=(\S+)", stage)]


def _needs_an_extra(name: str) -> bool:
    return any(name == module or name.startswith(module + ".") for module in NOT_IN_THE_CORE)


def test_the_oldest_stage_ignores_every_module_that_imports_what_it_does_not_install() -> None:
    ignored = _oldest_stage_ignores()
    assert ignored, "the oldest stage ignores nothing: has .ci/run changed its layout?"
    collected = [*ROOT.glob("tests/**/*.py"), *ROOT.glob("lightning_onecycle/**/*.py")]  # tests and doctests
    failing = []
    for path in collected:
        if any(path == skipped or skipped in path.parents for skipped in ignored):
            continue
        needed = sorted(name for name in _imports(path) if _needs_an_extra(name))
        if needed:
            failing.append(f"{path.relative_to(ROOT)} imports {needed}")
    assert not failing, "the oldest stage (the core alone) would fail to collect: " + "; ".join(failing)
