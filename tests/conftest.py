"""Shared fixtures: the real data root (skips visibly when MEMLEARN_DATA is unset)."""

from __future__ import annotations

import os
from pathlib import Path

# Threads that wait sleep instead of spinning: on a shared 2-core machine spinning OpenMP threads
# make the suite several times slower.  Must precede torch's start of its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

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
