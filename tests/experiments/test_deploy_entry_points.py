"""The four entry points that deploy the model - `memlearn adapt`, `memlearn adapt-gap`, the
reference studies' workload and bench/adapt.py - build the same chip and learn the same tasks
for the same options."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from memlearn.cli.main import app
from memlearn.devices.preset import load_preset
from memlearn.experiments import onchip_gap
from memlearn.onchip.deploy import DeployConfig, deploy
from memlearn.onchip.run import task_features

BENCH = Path(__file__).resolve().parents[2] / "bench" / "adapt.py"
TASKS = 12  # as tiny_workload (seed 0)


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_adapt", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _captured(monkeypatch, module, name, args) -> DeployConfig:
    """The DeployConfig the CLI hands to ``module.name`` for ``args``."""
    seen = []

    def capture(config, *args, **kwargs):
        seen.append(config)
        raise SystemExit(0)

    monkeypatch.setattr(module, name, capture)
    CliRunner().invoke(app, args)
    assert len(seen) == 1
    return seen[0]


def _same_chip(a, b) -> None:
    assert torch.equal(a.levels, b.levels)
    assert a.layout == b.layout and a.n_chips == b.n_chips
    assert torch.equal(a.columns["fc2"], b.columns["fc2"])  # the same repair
    for array in ("fc1", "fc2"):
        mine, theirs = a.chip.true_conductances(array), b.chip.true_conductances(array)
        assert all(torch.equal(x, y) for x, y in zip(mine, theirs, strict=True)), array


def test_entry_points_build_the_same_chip_and_tasks(monkeypatch, shared_data, tiny_workload):
    import memlearn.cli.onchip as cli

    n = str(TASKS)
    cli_config = _captured(monkeypatch, cli, "run", ["adapt", "--tasks", n, "--chips", n])
    bench = _bench_module()
    assert bench.config(bench.parse(["--chips", n])) == cli_config
    gap_config = _captured(
        monkeypatch, onchip_gap, "gap_study", ["adapt-gap", "--tasks", n, "--chips", n]
    )
    assert gap_config == cli_config

    with deploy(cli_config) as d:
        assert d.weight_max == [float(w) for w in d.info["weight_max"]]  # the checkpoint's
        assert d.weight_max_source.startswith("checkpoint")
        # adapt-gap's chip for its reference row ("the chip")
        preset = load_preset(cli_config.preset_name)
        gap = onchip_gap.gap_chip(TASKS, preset, d.layout, d.levels, 0, d.spare_pairs, "hybrid")
        _same_chip(d.chip, gap)
        # the studies' workload: the same tasks (as features of the deployed extractor)
        wl = tiny_workload
        assert torch.equal(task_features(d.net, d.tasks.support_x), wl.support_x)
        assert torch.equal(task_features(d.net, d.tasks.query_x), wl.query_x)
        assert torch.equal(d.tasks.support_y.long(), wl.support_y)
        assert torch.equal(d.tasks.query_y.long(), wl.query_y)
        assert wl.levels == d.levels and wl.layout == d.layout


def test_different_seeds_give_different_tasks(shared_data):
    from memlearn.onchip.deploy import sample_tasks

    a = sample_tasks(DeployConfig(tasks=4, seed=0), 5)[1]
    b = sample_tasks(DeployConfig(tasks=4, seed=1), 5)[1]
    assert not torch.equal(a.support_x, b.support_x)


@pytest.mark.parametrize("argv", [["--levels", "99"], ["--strategy", "magic"]])
def test_bench_script_refuses_bad_options_before_any_work(argv):
    bench = _bench_module()
    with pytest.raises(ValueError):
        bench.config(bench.parse(["--checkpoint", "/nonexistent.pt", *argv]))
