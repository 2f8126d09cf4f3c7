"""The val alphabets embedded in the package: same pixels as the official zip, used only when
no data is found, said once on stderr."""

from __future__ import annotations

import numpy as np
import pytest

from memlearn.data import VAL_ALPHABETS, load_split
from memlearn.data.embedded_val import embedded_path, load_embedded_val
from memlearn.data.preprocess import load_image_set
from memlearn.errors import DataNotFoundError


def test_embedded_file_is_small_and_licensed():
    path = embedded_path()
    assert 100_000 < path.stat().st_size < 1_000_000
    licence = (path.parent / "LICENSE-omniglot").read_text()
    assert "MIT License" in licence and "Brenden Lake" in licence


def test_embedded_holds_the_val_alphabets():
    raw = load_embedded_val()
    assert raw.alphabet_names == sorted(VAL_ALPHABETS)
    assert raw.images.shape == (175, 20, 28, 28) and raw.images.dtype == np.uint8
    assert all(n.split("/")[0] in VAL_ALPHABETS for n in raw.class_names)


@pytest.mark.data
def test_embedded_is_bit_identical_to_the_zip(shared_data):
    full = load_image_set("images_background", shared_data)
    raw = load_embedded_val()
    keep = [i for i, n in enumerate(full.class_names) if n.split("/")[0] in VAL_ALPHABETS]
    assert [full.class_names[i] for i in keep] == raw.class_names
    assert np.array_equal(full.images[keep], raw.images)
    from_zip = load_split("val", shared_data)
    assert from_zip.class_names == raw.class_names


def _no_data(monkeypatch, tmp_path):
    monkeypatch.delenv("MEMLEARN_DATA", raising=False)
    monkeypatch.setattr("platformdirs.user_cache_dir", lambda *a, **k: str(tmp_path / "cache"))


def test_val_falls_back_to_embedded_once(monkeypatch, tmp_path, capsys):
    _no_data(monkeypatch, tmp_path)
    import memlearn.data.embedded_val as ev

    ev.note_embedded.cache_clear()
    first = load_split("val")
    second = load_split("val")
    err = capsys.readouterr().err
    assert err.count("embedded") == 1 and len(err.strip().splitlines()) == 1
    assert first.n_classes == 175 and first.split == "val"
    assert np.array_equal(first.images.numpy(), second.images.numpy())
    assert float(first.images.max()) == 1.0


def test_other_splits_and_explicit_roots_still_fail(monkeypatch, tmp_path):
    _no_data(monkeypatch, tmp_path)
    with pytest.raises(DataNotFoundError):
        load_split("train")
    with pytest.raises(DataNotFoundError):
        load_split("val", tmp_path / "nothing")


@pytest.mark.data
def test_full_data_takes_precedence(shared_data, monkeypatch, capsys):
    monkeypatch.setenv("MEMLEARN_DATA", str(shared_data))
    classes = load_split("val")
    assert "embedded" not in capsys.readouterr().err
    assert classes.n_classes == 175
