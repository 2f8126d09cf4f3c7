"""The accuracy panel shared by the learning-curve and retention figures."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from memlearn.onchip.plot import finish_accuracy_axes, plot_accuracy  # noqa: E402
from memlearn.stats import ci95  # noqa: E402


def test_error_bars_are_the_mean_and_95ci_in_percent():
    acc = torch.rand(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    fig, ax = plt.subplots()
    color = plot_accuracy(ax, [1.0, 2.0, 4.0], acc, "after")
    bars = ax.containers[0]
    assert color == bars[0].get_color()
    assert bars[0].get_ydata() == pytest.approx((100 * acc.mean(dim=0)).tolist())
    low = bars[2][0].get_segments()  # one vertical segment per point: mean - half to mean + half
    half = [(seg[1][1] - seg[0][1]) / 2 for seg in low]
    assert half == pytest.approx([100 * ci95(acc[:, k]) for k in range(3)])
    finish_accuracy_axes(ax, "k", top=105, legend_size=7)
    assert ax.get_ylim() == (0, 105) and ax.get_ylabel() == "query accuracy (%)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["after"]
    plt.close(fig)


def test_a_single_task_has_no_band_and_a_band_needs_a_color():
    fig, ax = plt.subplots()
    acc = torch.tensor([[0.5, 0.75]])
    assert plot_accuracy(ax, [0, 1], acc, "one", "tab:red", band=True) == "tab:red"
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert set(band.round(4).tolist()) <= {50.0, 75.0}  # no width: the band is the line
    with pytest.raises(ValueError, match="band needs a color"):
        plot_accuracy(ax, [0, 1], acc, "one", band=True)
    plt.close(fig)
