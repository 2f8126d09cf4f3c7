"""Omniglot official layouts (zip / folder), preprocessing, cache, and clear errors."""

from __future__ import annotations

import io
import os
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from memlearn.data import default_eval_split, load_split, resolve_data_root
from memlearn.data import preprocess as prep
from memlearn.data.layout import find_source
from memlearn.data.roots import data_root_candidates, user_data_dir
from memlearn.errors import CorruptDataError, DataNotFoundError

EVAL_ALPHABETS = {"Angelic": 3, "Atemayar_Qelisayer": 2, "ULOG": 4}


def files_of(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_root_order_explicit_then_env_then_user(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMLEARN_DATA", str(tmp_path / "env"))
    assert data_root_candidates(tmp_path / "arg") == [tmp_path / "arg"]
    assert data_root_candidates() == [tmp_path / "env", user_data_dir()]
    assert resolve_data_root() == tmp_path / "env"
    monkeypatch.delenv("MEMLEARN_DATA")
    assert resolve_data_root() == user_data_dir()


def test_missing_set_names_dirs_tried_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMLEARN_DATA", str(tmp_path / "env"))
    with pytest.raises(DataNotFoundError) as err:
        load_split("evaluation")
    msg = str(err.value)
    assert str(tmp_path / "env" / "omniglot" / "images_evaluation.zip") in msg
    assert str(user_data_dir() / "omniglot") in msg
    assert "memlearn data fetch omniglot" in msg
    with pytest.raises(DataNotFoundError, match="memlearn data fetch mnist"):
        resolve_data_root(tmp_path, dataset="mnist")
    (tmp_path / "env" / "mnist").mkdir(parents=True)
    (tmp_path / "env" / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"")
    assert resolve_data_root(dataset="mnist") == tmp_path / "env"
    with pytest.raises(ValueError, match="unknown data set 'cifar'"):
        resolve_data_root(dataset="cifar")


@pytest.mark.parametrize("as_zip", [True, False])
def test_evaluation_layout_loads_with_counts(tmp_path, make_image_set, as_zip):
    make_image_set(tmp_path, "images_evaluation", EVAL_ALPHABETS, as_zip=as_zip)
    classes = load_split("evaluation", root=tmp_path)
    assert classes.images.shape == (9, 20, 1, 28, 28)
    assert classes.images.dtype == torch.float32
    assert classes.alphabet_names == sorted(EVAL_ALPHABETS)
    assert torch.bincount(classes.alphabet).tolist() == [3, 2, 4]
    assert classes.class_names[0] == "Angelic/character01"
    assert classes.images.min() >= 0.0 and classes.images.max() <= 1.0
    # Every drawing has ink, and ink is the minority of the pixels (ink = 1, background = 0).
    ink = classes.images.mean(dim=(2, 3, 4))
    assert (classes.images.amax(dim=(2, 3, 4)) > 0.5).all() and (ink < 0.3).all()
    assert not (classes.rotation != 0).any()
    assert default_eval_split(tmp_path) == "evaluation"
    assert default_eval_split(tmp_path / "nothing") == "val"


def test_zip_and_extracted_give_identical_arrays(tmp_path, make_image_set):
    make_image_set(tmp_path / "a", "images_evaluation", EVAL_ALPHABETS, as_zip=True)
    make_image_set(tmp_path / "b", "images_evaluation", EVAL_ALPHABETS, as_zip=False)
    a, b = (load_split("evaluation", root=tmp_path / r) for r in "ab")
    assert torch.equal(a.images, b.images) and a.class_names == b.class_names


def test_folder_extracted_into_its_own_name(tmp_path, make_image_set):
    outer = tmp_path / "omniglot" / "images_evaluation"
    make_image_set(outer, "images_evaluation", {"Angelic": 2}, as_zip=False)
    (outer / "omniglot" / "images_evaluation").rename(outer / "moved")
    (outer / "omniglot").rmdir()
    (outer / "moved").rename(outer / "images_evaluation")
    assert find_source("images_evaluation", tmp_path).path == outer / "images_evaluation"
    assert load_split("evaluation", root=tmp_path).n_classes == 2


def test_preprocessing_analytic_cases():
    def png(array: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(array).convert("1").save(buf, format="PNG")
        return buf.getvalue()

    white = np.full((105, 105), 255, np.uint8)
    black = np.zeros((105, 105), np.uint8)
    half = white.copy()
    half[:, :52] = 0  # left half inked (52.5 would be exact)
    out = prep.decode_many([png(white), png(black), png(half)], ["w", "b", "h"])
    assert out.dtype == np.uint8 and out.shape == (3, 28, 28)
    assert out[0].max() == 0  # blank page: no ink
    assert out[1].min() == 255  # all ink: 1.0 everywhere (the filter's rows sum to one)
    # Half the page inked: the left columns saturate, the right ones stay empty (up to the
    # filter's small ringing next to the edge), and the ink fraction is kept.
    assert out[2][:, :10].min() == 255 and out[2][:, 16:].max() <= 3
    assert out[2].mean() / 255 == pytest.approx(52 / 105, abs=0.01)
    # The batched Lanczos equals PIL's own float-mode Lanczos resize.
    x = (np.random.default_rng(0).random((105, 105)) < 0.2).astype(np.float32)
    pil = np.asarray(Image.fromarray(x, mode="F").resize((28, 28), Image.Resampling.LANCZOS))
    mine = prep.lanczos_matrix() @ x @ prep.lanczos_matrix().T
    np.testing.assert_allclose(mine, pil, atol=1e-5)


def test_cache_written_once_outside_data_and_invalidated(tmp_path, make_image_set, monkeypatch):
    path = make_image_set(tmp_path, "images_evaluation", {"Angelic": 2}, as_zip=True)
    data_files = files_of(tmp_path)
    first = load_split("evaluation", root=tmp_path)
    assert files_of(tmp_path) == data_files  # nothing written beside the data
    cached = prep._cache_path(find_source("images_evaluation", tmp_path))
    assert cached.is_file() and cached.is_relative_to(Path(os.environ["MEMLEARN_CACHE"]))

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although the cache is current")

    monkeypatch.setattr(prep, "build_image_set", no_decoding)
    assert torch.equal(load_split("evaluation", root=tmp_path).images, first.images)
    monkeypatch.undo()

    # Change one drawing (a blank page) and the source's mtime: the cache must be rebuilt.
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    target = "images_evaluation/Angelic/character01/0965_01.png"
    buf = io.BytesIO()
    Image.new("1", (105, 105), 1).save(buf, format="PNG")
    members[target] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    second = load_split("evaluation", root=tmp_path)
    assert second.images[0, 0].max() == 0 and first.images[0, 0].max() > 0
    assert torch.equal(second.images[1], first.images[1])


def test_corrupt_png_names_the_file(tmp_path, make_image_set):
    folder = make_image_set(tmp_path, "images_evaluation", {"Angelic": 1}, as_zip=False)
    bad = folder / "Angelic" / "character01" / "0965_07.png"
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(CorruptDataError, match="0965_07.png"):
        load_split("evaluation", root=tmp_path)


def test_wrong_size_image_names_the_file(tmp_path, make_image_set):
    folder = make_image_set(tmp_path, "images_evaluation", {"Angelic": 1}, as_zip=False)
    Image.new("1", (64, 64), 1).save(folder / "Angelic" / "character01" / "0965_03.png")
    with pytest.raises(CorruptDataError, match=r"0965_03.png.*64x64.*105x105"):
        load_split("evaluation", root=tmp_path)


def test_wrong_layout_errors(tmp_path, make_image_set):
    folder = make_image_set(tmp_path, "images_evaluation", {"Angelic": 2}, as_zip=False)
    (folder / "Angelic" / "character02" / "0966_20.png").unlink()
    with pytest.raises(CorruptDataError, match=r"Angelic/character02.*drawers 01..20"):
        load_split("evaluation", root=tmp_path)
    (folder / "stray.png").write_bytes(b"x")
    with pytest.raises(CorruptDataError, match=r"stray.png.*<Alphabet>/characterNN/XXXX_YY.png"):
        load_split("evaluation", root=tmp_path)


def test_bad_split_names():
    with pytest.raises(ValueError, match="allowed: train, val, evaluation"):
        load_split("test")
    with pytest.raises(ValueError, match="load_runs"):
        load_split("runs")


def test_unreadable_or_unwritable_cache_falls_back_to_decoding(
    tmp_path, make_image_set, monkeypatch
):
    make_image_set(tmp_path, "images_evaluation", {"Angelic": 1}, as_zip=True)
    first = load_split("evaluation", root=tmp_path)
    cached = prep._cache_path(find_source("images_evaluation", tmp_path))
    cached.write_bytes(b"not an npz")  # a damaged cache file is rebuilt, not trusted
    assert torch.equal(load_split("evaluation", root=tmp_path).images, first.images)
    assert cached.read_bytes()[:2] == b"PK"
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    monkeypatch.setenv("MEMLEARN_CACHE", str(blocker / "cache"))  # cannot be created
    with pytest.warns(UserWarning, match="could not write the Omniglot cache"):
        again = load_split("evaluation", root=tmp_path)
    assert torch.equal(again.images, first.images)
