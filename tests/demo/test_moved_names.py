"""The demo classes moved to lightning_onecycle.demo; the old top-level names still resolve, with a warning."""

from __future__ import annotations

import pytest

import lightning_onecycle
from lightning_onecycle import demo


@pytest.mark.parametrize("name", sorted(demo.__all__))
def test_the_old_top_level_name_warns_and_gives_the_demo_class(name: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"moved to `lightning_onecycle.demo.{name}`"):
        moved = getattr(lightning_onecycle, name)
    assert moved is getattr(demo, name)


def test_every_demo_name_was_a_top_level_name() -> None:
    assert set(demo.__all__) == lightning_onecycle._MOVED_TO_DEMO
