"""The simulated chips on a torch device: the explicit CPU device runs the device-aware code
and changes no bit; CUDA, where present, agrees with the CPU."""

from __future__ import annotations

import pytest
import torch
from test_loop import LRS, synthetic_tasks
from test_pinned import LAYOUT

from memlearn.chip.simulated import SimulatedChip
from memlearn.meta.inner import HeadTasks
from memlearn.onchip.config import AdaptConfig
from memlearn.onchip.loop import adapt_on_chip

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _adapt(device: str | None, read_noise: bool = True, tasks: int = 4, seed: int = 0):
    sx, sy, qx, qy, weights = synthetic_tasks(tasks, seed=seed)
    chip = SimulatedChip(
        tasks, layout=LAYOUT, levels=8, seed=seed, device=device, read_noise=read_noise
    )
    config = AdaptConfig(steps=3, seed=seed)
    return chip, adapt_on_chip(chip, HeadTasks(sx, sy, qx, qy), weights, LRS, config)


def test_the_explicit_cpu_device_changes_no_bit():
    _, default = _adapt(None)
    chip, explicit = _adapt("cpu")
    assert chip.generator.device.type == "cpu" and chip.arrays["fc1"].cells.g.device.type == "cpu"
    for name in ("accuracy", "loss", "cells_written", "set_pulses", "verify_reads"):
        assert torch.equal(getattr(default, name), getattr(explicit, name)), name
    for c in default.energy_j:
        assert torch.equal(default.energy_j[c], explicit.energy_j[c])


@cuda
def test_cuda_analog_product_agrees_with_cpu():
    """The same cells multiplied on CUDA and on the CPU, without read noise (no draws)."""
    cpu = SimulatedChip(3, layout=LAYOUT, levels=8, seed=1, read_noise=False)
    gpu = SimulatedChip(3, layout=LAYOUT, levels=8, seed=1, read_noise=False, device="cuda")
    for array in ("fc1", "fc2"):  # the cells as the CPU drew them
        gpu.arrays[array].cells.g = cpu.arrays[array].cells.g.clone().cuda()
    volts = torch.rand(3, 7, 12, generator=torch.Generator().manual_seed(2)) * cpu.read_voltage
    want = cpu.multiply("fc1", volts)
    got = gpu.multiply("fc1", volts)
    assert got.device.type == "cuda"
    lsb = cpu.arrays["fc1"].adc_full_scale / 127  # a sum rounded apart differs by one step
    torch.testing.assert_close(got.cpu(), want, rtol=0, atol=1.01 * lsb)


@cuda
def test_cuda_adaptation_agrees_with_cpu_within_its_spread():
    """The loop on CUDA: results on the CPU, the same shapes and a mean accuracy within the
    spread of the CPU's (the draws of a CUDA generator differ from the CPU's)."""
    _, cpu = _adapt(None, tasks=32, seed=3)
    _, gpu = _adapt("cuda", tasks=32, seed=3)
    assert gpu.accuracy.device.type == "cpu" and gpu.accuracy.shape == cpu.accuracy.shape
    spread = 3 * float(cpu.accuracy[:, -1].std()) / 32**0.5
    assert abs(float(gpu.accuracy[:, -1].mean() - cpu.accuracy[:, -1].mean())) <= spread + 0.02
    assert (gpu.cells_written > 0).any()
