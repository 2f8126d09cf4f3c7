"""Shared fixtures: the real data root (skips visibly when MEMLEARN_DATA is unset)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The directory of real data sets named by MEMLEARN_DATA; skips the test when unset."""
    root = os.environ.get("MEMLEARN_DATA")
    if not root:
        pytest.skip("MEMLEARN_DATA is not set: tests on the real data sets are skipped")
    path = Path(root)
    if not path.is_dir():
        pytest.fail(f"MEMLEARN_DATA={root} is not a directory")
    return path
