"""Study ``ep``: equilibrium propagation on simulated crossbars against backprop, on MNIST.

Test accuracy against epochs for EP and backprop, in float and on arrays of the run's preset
(``accumulate`` scheme); final accuracy of EP on the array against levels per cell and against
the programming spread (:func:`memlearn.devices.variants.scale_spread` factor).  Published
(REFERENCE.md §4; Laborieux et al., Front. Neurosci. 2021): software EP on 784-512-10 reaches
about 2-3 % MNIST test error, close to backprop on the same network.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memlearn.ep.config import EPConfig
from memlearn.ep.run import train
from memlearn.errors import MemlearnError
from memlearn.experiments.common import (
    StudyInfo,
    StudyRun,
    conclude,
    pct,
    pyplot,
    save_figure,
    write_csv,
)
from memlearn.experiments.provenance import write_json
from memlearn.experiments.report import StudyOutcome

KEY = "ep"
TITLE = "Equilibrium propagation on crossbars vs backprop (MNIST)"
PUBLISHED = "software EP ~2-3 % MNIST test error (784-512-10), close to backprop"
INFO = StudyInfo(KEY, TITLE, PUBLISHED)
GAP_POINTS = 0.02  # the target: on the array within 2 points of software EP [E]


def _run(run: StudyRun, base: dict[str, Any], **extra: Any) -> dict[str, Any]:
    config = EPConfig(**{**base, **extra}, preset=run.preset, seed=run.seed)
    result = train(config)
    return {
        "rule": config.rule,
        "substrate": config.substrate,
        "levels": config.levels,
        "spread": config.spread,
        "curve": [h["test_accuracy_mean"] for h in result["history"]],
        "final_accuracy": result["test_accuracy"]["mean"],
        "writes_per_cell": result.get("writes_per_cell", {}).get("mean"),
        "energy_per_image_j": result.get("energy_per_image_j", {}).get("total"),
        "wall_s": result["wall_s"],
    }


def ep_study(
    run: StudyRun,
    *,
    network: str = "784-100-10",
    epochs: int = 2,
    train_images: int = 2000,
    test_images: int = 1000,
    levels: Sequence[int] = (4, 8, 16),
    spreads: Sequence[float] = (0.5, 1.0, 2.0),
) -> StudyOutcome:
    """Accuracy curves (EP and backprop, float and array) and EP on the array vs levels and
    programming spread; verdicts from the measured accuracies."""
    if len(levels) < 2 or len(spreads) < 2:
        raise MemlearnError("levels and spreads need at least two values each")
    base = {"network": network, "epochs": epochs, "train_images": train_images,
            "test_images": test_images}  # fmt: skip
    EPConfig(**base).validate()
    done: dict[tuple, dict[str, Any]] = {}

    def point(**extra: Any) -> dict[str, Any]:
        # the same configuration is trained once (e.g. 8 levels, spread 1 is the curves' run)
        full = {"rule": "ep", "substrate": "array", "levels": 8, "spread": 1.0, **extra}
        key = tuple(sorted(full.items()))
        if key not in done:
            done[key] = _run(run, base, **full)
        return done[key]

    curves = [point(rule=r, substrate=s) for r in ("ep", "backprop") for s in ("float", "array")]
    by_levels = [point(levels=int(n)) for n in sorted(levels)]
    by_spread = [point(spread=float(f)) for f in sorted(spreads)]
    final = {(c["rule"], c["substrate"]): c["final_accuracy"] for c in curves}
    checks = ep_verdicts(final, by_levels, by_spread)
    rows = curves + by_levels + by_spread
    columns = ["rule", "substrate", "levels", "spread", "final_accuracy", "writes_per_cell",
               "energy_per_image_j", "wall_s"]  # fmt: skip
    write_csv(run.path(f"{KEY}.csv"), rows, columns)
    write_json(run.path(f"{KEY}.json"), {"study": KEY, "settings": base, "points": rows})
    figure = _plot(run, curves, by_levels, by_spread)
    observed = (
        f"software EP {pct(final[('ep', 'float')])}, backprop {pct(final[('backprop', 'float')])}"
        f"; on the array EP {pct(final[('ep', 'array')])}, backprop "
        f"{pct(final[('backprop', 'array')])} ({network}, {train_images} training images, "
        f"{epochs} epochs)"
    )
    numbers = [
        (f"{c['rule']} {c['substrate']}", " → ".join(pct(a) for a in c["curve"])) for c in curves
    ]
    numbers += [(f"EP array, {r['levels']} levels", pct(r["final_accuracy"])) for r in by_levels]
    numbers += [(f"EP array, spread x{r['spread']:g}", pct(r["final_accuracy"])) for r in by_spread]
    notes = (
        f"Test accuracy on the first {test_images} MNIST test images; arrays on the run's preset "
        "with the accumulate scheme (float copy off the array), hybrid programming, 8-bit "
        "converters, read noise. Quick settings are a small subset: compare trends, not the "
        "published figure."
    )
    return conclude(INFO, observed, checks, [figure.name], [f"{KEY}.csv", f"{KEY}.json"],
                    numbers, notes)  # fmt: skip


def ep_verdicts(
    final: dict[tuple[str, str], float], by_levels: list[dict], by_spread: list[dict]
) -> dict[str, bool]:
    """The study's verdicts from measured final accuracies: ``final[(rule, substrate)]``, and
    the EP-on-array points ordered by levels (ascending) and by spread factor (ascending)."""
    gap_bp = final[("ep", "float")] - final[("backprop", "float")]
    gap_array = final[("ep", "array")] - final[("ep", "float")]
    fewest, most = by_levels[0], by_levels[-1]
    tight, loose = by_spread[0], by_spread[-1]
    points = f"{100 * GAP_POINTS:g} points"
    return {
        f"software EP within {points} of software backprop": abs(gap_bp) <= GAP_POINTS,
        f"EP on the array within {points} of software EP": gap_array >= -GAP_POINTS,
        f"{most['levels']} levels beat {fewest['levels']} levels": (
            most["final_accuracy"] > fewest["final_accuracy"]
        ),
        f"spread x{tight['spread']:g} at least as accurate as x{loose['spread']:g}": (
            tight["final_accuracy"] >= loose["final_accuracy"]
        ),
    }


def _plot(run: StudyRun, curves: list[dict], by_levels: list[dict], by_spread: list[dict]):
    plt = pyplot()
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(15, 4.2))
    for c in curves:
        epochs = range(1, len(c["curve"]) + 1)
        style = "-" if c["substrate"] == "float" else "--"
        ax.plot(epochs, [100 * a for a in c["curve"]], "o" + style,
                label=f"{c['rule']} ({c['substrate']})")  # fmt: skip
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    bx.plot([r["levels"] for r in by_levels], [100 * r["final_accuracy"] for r in by_levels], "o-")
    bx.set_xlabel("levels per cell")
    bx.set_ylabel("EP on array, test accuracy (%)")
    cx.plot([r["spread"] for r in by_spread], [100 * r["final_accuracy"] for r in by_spread], "o-")
    cx.set_xlabel("programming spread factor")
    cx.set_ylabel("EP on array, test accuracy (%)")
    for a in (ax, bx, cx):
        a.grid(alpha=0.3)
    fig.tight_layout()
    return save_figure(fig, run.path(f"{KEY}.png"))
