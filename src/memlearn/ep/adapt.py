"""EP against the gradient loop on the Omniglot head: the same tasks, in software and on chips.

One deployment (:func:`memlearn.onchip.deploy.deploy`: the meta-trained checkpoint, its tasks,
its repaired simulated chips and full-scale weights) is adapted four ways, each ``steps`` updates
with the checkpoint's inner rates: backprop (the computer's gradient) and EP
(:mod:`memlearn.ep.head`), each on float weights and on chips.  The two chip runs use twin chips
(the same seed: the same cells) and the deployment's update policy; writes, pulses and energy
are the loop's (:func:`memlearn.onchip.run.summarise`).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from memlearn.ep.head import (
    HEAD_BETA,
    HEAD_T_NUDGE,
    check_head_ep,
    chip_forward,
    ep_head_gradient,
    gradient_agreement,
)
from memlearn.meta.inner import inner_loop
from memlearn.onchip.deploy import DeployConfig, build_chip, deploy, record
from memlearn.onchip.head import FloatHead, QueryCurves, per_task, software_adapt
from memlearn.onchip.loop import AdaptResult, adapt_on_chip
from memlearn.onchip.run import deployment_summary, head_tasks, head_weights, summarise
from memlearn.stats import ci95


def software_ep(tasks: Any, weights: list[torch.Tensor], inner_lrs: Any, steps: int,
                beta: float, t_nudge: int) -> torch.Tensor:  # fmt: skip
    """Query accuracy ``[T, steps + 1]`` of EP on float weights (exact products)."""
    curves = QueryCurves(tasks, steps)
    holder = FloatHead(per_task(weights, tasks.support_x.shape[0]))
    inner_loop(holder, tasks, inner_lrs, steps, ep_head_gradient(None, beta, t_nudge),
               observe=curves)  # fmt: skip
    return curves.accuracy


def _curve(accuracy: torch.Tensor) -> dict[str, Any]:
    return {
        "accuracy_by_step": [float(a) for a in accuracy.mean(dim=0)],
        "final_accuracy": float(accuracy[:, -1].mean()),
        "ci95": ci95(accuracy[:, -1]),
    }


def _chip(result: AdaptResult) -> dict[str, Any]:
    s = summarise(result)
    return {
        **_curve(result.accuracy),
        "writes_per_adaptation": s["writes_per_adaptation"],
        "pulses_per_adaptation": s["pulses_per_adaptation"],
        "energy_per_adaptation_j": s["energy_per_adaptation_j"],
        "energy_breakdown_j": s["energy_breakdown_j"],
    }


def adapt_head(
    config: DeployConfig,
    beta: float = HEAD_BETA,
    t_nudge: int = HEAD_T_NUDGE,
    chips: bool = True,
) -> dict[str, Any]:
    """Adapt ``config``'s tasks by backprop and by EP (float, and on chips unless ``chips`` is
    false); returns the four curves, the chips' writes and energy, and the gradients' agreement
    at deployment (cosine of EP's estimate to the exact gradient, per layer)."""
    check_head_ep(beta, t_nudge)
    started = time.perf_counter()
    with deploy(config) as d:
        tasks = head_tasks(d.net, d.tasks)
        weights, lrs, steps = head_weights(d.net), d.inner_lrs, config.steps
        n = tasks.support_x.shape[0]
        out: dict[str, Any] = {
            "software": {
                "gradient": _curve(software_adapt(tasks, weights, lrs, steps)[0]),
                "ep": _curve(software_ep(tasks, weights, lrs, steps, beta, t_nudge)),
            },
            "gradient_agreement": gradient_agreement(
                tasks.support_x, per_task(weights, n), tasks.support_y,
                ep_head_gradient(None, beta, t_nudge),
            ),
        }  # fmt: skip
        if chips:
            grad = adapt_on_chip(d.chip, tasks, weights, lrs, d.adapt_config())
            twin = build_chip(config, d.layout, d.levels, d.spare_pairs)
            with twin:
                ep = adapt_on_chip(
                    twin, tasks, weights, lrs, d.adapt_config(),
                    gradient_for=lambda h: ep_head_gradient(chip_forward(h), beta, t_nudge),
                )  # fmt: skip
            out["chip"] = {"gradient": _chip(grad), "ep": _chip(ep)}
            out["deployment"] = deployment_summary(grad)
        out["run"] = {**record(d), "tasks": n, "steps": steps, "beta": beta, "t_nudge": t_nudge}
    out["wall_s"] = time.perf_counter() - started
    return out
