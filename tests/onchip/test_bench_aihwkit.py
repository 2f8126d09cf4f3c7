"""bench/scale_aihwkit.py (aihwkit's column of bench/scale.py): on ideal floating-point tiles
its looped and packed heads adapt exactly as memlearn's float adaptation.  Skipped where
aihwkit is not importable (it is never a memlearn dependency)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from memlearn.meta.inner import HeadTasks, inner_loop
from memlearn.onchip.head import FloatHead, forward, gradients, per_task

pytest.importorskip("aihwkit.simulator.rpu_base")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import scale_aihwkit  # noqa: E402

RATES = [[0.3, 2.0], [0.2, 1.0], [0.1, 0.5]]  # per step, per layer


def _tasks(n: int, gen: torch.Generator) -> HeadTasks:
    """Random non-negative features of ``n`` 5-way tasks, 10 support and 15 query samples."""
    return HeadTasks(
        support_x=torch.rand(n, 10, 8, generator=gen),
        support_y=torch.randint(0, 5, (n, 10), generator=gen),
        query_x=torch.rand(n, 15, 8, generator=gen),
        query_y=torch.randint(0, 5, (n, 15), generator=gen),
    )


@pytest.mark.parametrize("k", [1, 3])
def test_ideal_tiles_adapt_as_float_sgd_and_keep_blocks_apart(k: int) -> None:
    from aihwkit.simulator.configs import FloatingPointRPUConfig

    gen = torch.Generator().manual_seed(0)
    tasks = _tasks(k, gen)
    weights = [torch.randn(8, 6, generator=gen) * 0.5, torch.randn(6, 5, generator=gen) * 0.1]
    full_scale = [0.7, 0.2]
    head = scale_aihwkit.build(k, (8, 6, 5), full_scale, FloatingPointRPUConfig())
    scale_aihwkit.deploy(head, weights, full_scale)
    scale_aihwkit.adapt(head, tasks, RATES, steps=3)

    holder = FloatHead(per_task(weights, k))
    inner_loop(holder, tasks, RATES, 3, gradients)
    with torch.no_grad():
        got = scale_aihwkit.logits(head, tasks.query_x)
    torch.testing.assert_close(
        got, forward(tasks.query_x, holder.weights)[-1], rtol=1e-4, atol=1e-5
    )
    outside = 1 - torch.block_diag(*[torch.ones(6, 8)] * k)  # fc1's off-diagonal cells
    assert (head.fc1.get_weights()[0] * outside).abs().max() == 0
