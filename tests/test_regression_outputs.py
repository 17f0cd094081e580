"""Every output of the README examples and presets stays what it was recorded as.

The cases and the digests are in ``tests/regression/`` (``record_outputs.py``
says how they are made and when to record again). A refactoring must leave
every one identical.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "regression"))
import record_outputs  # noqa: E402

WANT = json.loads(record_outputs.MANIFEST.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def got() -> dict[str, dict[str, str]]:
    return record_outputs.run_all()


@pytest.mark.parametrize("name", sorted(WANT))
def test_outputs_identical_to_recorded(name: str, got: dict[str, dict[str, str]]) -> None:
    assert got[name] == WANT[name]
