"""IBM aihwkit on bench/scale.py's workload (optional: aihwkit is never a memlearn dependency).

The meta-learned 32→16→5 head (no biases, ReLU between the layers) becomes two
``AnalogLinear`` tiles of aihwkit's pulsed simulator on its ReRAM preset
(``ReRamSBPresetDevice``: soft-bounds ReRAM fitted to Gong et al. 2018), with aihwkit's default
forward, backward and update periphery (``SingleRPUConfig``), adapted by its ``AnalogSGD``
(stochastic pulse trains, one sample of the batch at a time) with the checkpoint's per-layer
rates of each step.  The ``k`` tasks of a network:

- ``k = 1`` (looped heads): one network per task, one task after another;
- ``k > 1`` (packed heads): ``k`` tasks' heads on the diagonal blocks of one pair of tiles
  (``[32k, 16k]`` and ``[16k, 5k]``, the off-diagonal cells at 0), each sample zero-padded
  outside its task's block.  aihwkit scales and pulses each sample of a batch on its own, so a
  sample's update only touches the rows and columns of its block; the hidden activations are
  masked to their block between the layers (a digital step of the computer), so the analog
  noise of the other blocks' lines never enters a task's forward pass or update either.

Mapping: each layer's full-scale weight (the one memlearn deploys with, ``weight_max``) maps to
``OMEGA`` in the device's weight units; aihwkit's digital mapping scale undoes it at the output
and divides the gradient by it before the update, so an update is the rate × the gradient in
weight units.  aihwkit's ``set_weights`` is an exact copy (no programming pulses), as in its
own training examples.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch

from memlearn.meta.inner import HeadTasks
from memlearn.nn.rates import Rates, rates_at
from memlearn.onchip.head import loss_and_accuracy

OMEGA = 0.6  # [E] full-scale weight in device units (aihwkit's examples' weight_scaling_omega)
FIELDS = ("support_x", "support_y", "query_x", "query_y")


def unavailable() -> str | None:
    """``None`` when aihwkit and its compiled simulator import, else why its column is skipped."""
    try:
        from aihwkit.simulator.rpu_base import tiles  # noqa: F401
    except (ImportError, OSError) as exc:
        return f"aihwkit is not importable ({exc}): its columns are skipped"
    return None


@dataclass
class PackedHead:
    """``k`` tasks' heads on the diagonal blocks of two aihwkit tiles, and their optimiser."""

    k: int
    sizes: tuple[int, int, int]  # inputs, hidden units, classes of one head
    fc1: Any  # aihwkit.nn.AnalogLinear [k·in → k·hidden]
    fc2: Any  # aihwkit.nn.AnalogLinear [k·hidden → k·classes]
    optimizer: Any  # aihwkit.optim.AnalogSGD, one parameter group per layer
    mask: torch.Tensor  # [k, 1, k, 1]: 1 on a sample's own block


def reram_config() -> Any:
    """aihwkit's single-device ReRAM tile: ``ReRamSBPresetDevice``, default periphery."""
    from aihwkit.simulator.configs import SingleRPUConfig
    from aihwkit.simulator.presets.devices import ReRamSBPresetDevice

    return SingleRPUConfig(device=ReRamSBPresetDevice())


def build(
    k: int, sizes: tuple[int, int, int], full_scale: list[float], rpu: Any | None = None
) -> PackedHead:
    """A fresh network (new devices, new device-to-device variation) for ``k`` tasks;
    ``rpu``: aihwkit's tile configuration (default :func:`reram_config`)."""
    from aihwkit.nn import AnalogLinear
    from aihwkit.optim import AnalogSGD

    n_in, hidden, classes = sizes
    rpu = rpu if rpu is not None else reram_config()
    fc1 = AnalogLinear(k * n_in, k * hidden, bias=False, rpu_config=rpu)
    fc2 = AnalogLinear(k * hidden, k * classes, bias=False, rpu_config=rpu)
    for layer, scale in zip((fc1, fc2), full_scale, strict=True):
        for tile in layer.analog_tiles():
            tile.set_mapping_scales(torch.tensor([scale / OMEGA]))
    optimizer = AnalogSGD([{"params": fc1.parameters()}, {"params": fc2.parameters()}], lr=1.0)
    mask = torch.eye(k).view(k, 1, k, 1)
    return PackedHead(k, sizes, fc1, fc2, optimizer, mask)


def deploy(head: PackedHead, weights: list[torch.Tensor], full_scale: list[float]) -> None:
    """Write the head's weights (array orientation ``[in, out]``) on every diagonal block."""
    for layer, w, scale in zip((head.fc1, head.fc2), weights, full_scale, strict=True):
        blocks = torch.block_diag(*[w.T * (OMEGA / scale)] * head.k)
        layer.set_weights(blocks, apply_weight_scaling=False)


def _spread(x: torch.Tensor) -> torch.Tensor:
    """``[k, B, F]`` → ``[k·B, k·F]``: task ``j``'s samples, zero outside block ``j``."""
    k, batch, width = x.shape
    out = x.new_zeros(k, batch, k, width)
    j = torch.arange(k)
    out[j, :, j, :] = x
    return out.view(k * batch, k * width)


def logits(head: PackedHead, x: torch.Tensor) -> torch.Tensor:
    """The analog head's logits ``[k, B, classes]`` for inputs ``x [k, B, in]``."""
    k, batch = x.shape[:2]
    _, hidden, classes = head.sizes
    h = torch.relu(head.fc1(_spread(x)))
    if k > 1:
        h = (h.view(k, batch, k, hidden) * head.mask).view(k * batch, k * hidden)
    j = torch.arange(k)
    return head.fc2(h).view(k, batch, k, classes)[j, :, j, :]


def adapt(head: PackedHead, tasks: HeadTasks, rates: Rates, steps: int) -> torch.Tensor:
    """``steps`` AnalogSGD updates on the support sets, the query accuracy ``[k, steps + 1]``
    before each and after the last (the head's weights deployed before)."""
    accuracy = torch.empty(head.k, steps + 1)
    for step in range(steps + 1):
        with torch.no_grad():
            accuracy[:, step] = loss_and_accuracy(logits(head, tasks.query_x), tasks.query_y)[1]
        if step == steps:
            break
        for group, rate in zip(head.optimizer.param_groups, rates_at(rates, step), strict=True):
            group["lr"] = rate
        head.optimizer.zero_grad()
        loss = loss_and_accuracy(logits(head, tasks.support_x), tasks.support_y)[0]
        loss.sum().backward()  # each task's mean cross-entropy: its own gradient on its block
        head.optimizer.step()
    return accuracy


def run(
    tasks: HeadTasks,
    weights: list[torch.Tensor],
    rates: Rates,
    full_scale: list[float],
    steps: int,
    pack: int,
    group: int,
    rpu: Any | None = None,
) -> tuple[float, torch.Tensor]:
    """Adapt every task, ``pack`` per network; networks built ``group`` tasks at a time outside
    the timing (as memlearn's chips), with tile configuration ``rpu`` (default
    :func:`reram_config`).  Returns the seconds of deploying and adapting, and the query
    accuracy ``[T, steps + 1]``."""
    if pack < 1:
        raise ValueError(f"pack must be >= 1 task per network, got {pack}")
    sizes = (weights[0].shape[0], weights[0].shape[1], weights[1].shape[1])
    n, seconds, curves = len(tasks), 0.0, []
    for start in range(0, n, group):
        stop = min(start + group, n)
        parts = [(a, min(a + pack, stop)) for a in range(start, stop, pack)]
        heads = [build(b - a, sizes, full_scale, rpu) for a, b in parts]
        t0 = time.perf_counter()
        for head, (a, b) in zip(heads, parts, strict=True):
            deploy(head, weights, full_scale)
            part = HeadTasks(*(getattr(tasks, f)[a:b] for f in FIELDS))
            curves.append(adapt(head, part, rates, steps))
        seconds += time.perf_counter() - t0
    return seconds, torch.cat(curves)
