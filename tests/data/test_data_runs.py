"""Lake's one-shot runs layout (all_runs), as zip (with or without top folder) and folder."""

from __future__ import annotations

import pytest
import torch

from memlearn.data import load_runs
from memlearn.errors import CorruptDataError


@pytest.mark.parametrize(
    ("as_zip", "top_folder"), [(True, False), (True, True), (False, True)], ids=str
)
def test_runs_load_as_tasks_with_the_right_labels(tmp_path, make_runs, as_zip, top_folder):
    _, labels = make_runs(tmp_path, n_runs=2, ways=20, as_zip=as_zip, top_folder=top_folder)
    runs = load_runs(tmp_path)
    tasks = runs.tasks
    assert runs.names == ["run01", "run02"]
    assert tasks.support_x.shape == (2, 20, 1, 28, 28)
    assert tasks.query_x.shape == (2, 20, 1, 28, 28)
    assert torch.equal(tasks.support_y, torch.arange(20).expand(2, -1))
    assert tasks.query_y.tolist() == labels
    # Each test item is a redrawing of its class: nearest neighbour among the 20 training
    # images recovers exactly the label read from class_labels.txt.
    dist = torch.cdist(tasks.query_x.flatten(2), tasks.support_x.flatten(2))
    assert torch.equal(dist.argmin(dim=2), tasks.query_y)


def test_malformed_labels_name_file_and_line(tmp_path, make_runs):
    folder, _ = make_runs(tmp_path, n_runs=1, ways=3, as_zip=False)
    labels = folder / "run01" / "class_labels.txt"
    lines = labels.read_text().splitlines()
    lines[1] = "run01/test/item02.png"
    labels.write_text("\n".join(lines))
    with pytest.raises(CorruptDataError, match=r"class_labels.txt line 2"):
        load_runs(tmp_path)
    lines[1] = "run01/test/item02.png run01/training/class09.png"
    labels.write_text("\n".join(lines))
    with pytest.raises(CorruptDataError, match=r"names run01/training/class09.png"):
        load_runs(tmp_path)


def test_corrupt_run_image_names_it(tmp_path, make_runs):
    folder, _ = make_runs(tmp_path, n_runs=1, ways=3, as_zip=False)
    (folder / "run01" / "test" / "item03.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(CorruptDataError, match=r"item03.png: not a readable PNG"):
        load_runs(tmp_path)
