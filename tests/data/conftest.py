"""Fixtures of the data tests: an isolated processed-array cache, and small Omniglot trees
written in the official layouts (zip or extracted folder)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every data test writes processed arrays to one temporary cache folder of the session
    (so the real background set is decoded once per session, never into the user's cache)."""
    cache = tmp_path_factory.mktemp("memlearn-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEMLEARN_CACHE", str(cache))
        yield cache


def glyph_png(seed: int, size: int = 105) -> bytes:
    """A 1-bit 105x105 PNG like Omniglot's (white background, black strokes), drawn from
    ``seed``: a few random thick strokes."""
    rng = np.random.default_rng(seed)
    im = Image.new("1", (size, size), 1)
    draw = ImageDraw.Draw(im)
    for _ in range(3):
        pts = [tuple(int(v) for v in rng.integers(15, size - 15, 2)) for _ in range(3)]
        draw.line(pts, fill=0, width=5)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def write_tree(files: dict[str, bytes], dest: Path, as_zip: bool) -> Path:
    """Write ``files`` (relative path → bytes) as ``dest.zip`` or under the folder ``dest``'s
    parent (paths already start with the set folder)."""
    if as_zip:
        path = dest.with_suffix(".zip")
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w") as archive:
            for rel, data in sorted(files.items()):
                archive.writestr(rel, data)
        return path
    for rel, data in files.items():
        target = dest.parent / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return dest


def image_set_files(
    name: str, alphabets: dict[str, int], first_id: int = 1, drawers: int = 20
) -> dict[str, bytes]:
    """``<name>/<Alphabet>/characterNN/XXXX_YY.png`` for each alphabet's character count."""
    files: dict[str, bytes] = {}
    char_id = first_id
    for alphabet, n_chars in alphabets.items():
        for c in range(1, n_chars + 1):
            for d in range(1, drawers + 1):
                rel = f"{name}/{alphabet}/character{c:02d}/{char_id:04d}_{d:02d}.png"
                files[rel] = glyph_png(char_id * 100 + d)
            char_id += 1
    return files


@pytest.fixture
def make_image_set() -> Callable[..., Path]:
    """Factory: ``make_image_set(root, name, alphabets, as_zip=True)`` writes an Omniglot image
    set in ``<root>/omniglot/`` and returns the zip or folder path."""

    def make(
        root: Path, name: str, alphabets: dict[str, int], as_zip: bool = True, first_id: int = 965
    ) -> Path:
        files = image_set_files(name, alphabets, first_id)
        return write_tree(files, root / "omniglot" / name, as_zip)

    return make


def runs_files(n_runs: int = 2, ways: int = 20, top: str = "") -> tuple[dict[str, bytes], list]:
    """Lake's runs layout; test item i of a run is a redrawing of class ``labels[i]``. Returns
    the files and, per run, the label (0-based training class) of each test item."""
    files: dict[str, bytes] = {}
    all_labels = []
    rng = np.random.default_rng(7)
    for r in range(1, n_runs + 1):
        run = f"run{r:02d}"
        labels = rng.permutation(ways)
        lines = []
        for k in range(ways):
            files[f"{top}{run}/training/class{k + 1:02d}.png"] = glyph_png(1000 * r + k)
        for i, k in enumerate(labels):
            # The same glyph as the training class: a nearest-neighbour match must find it.
            files[f"{top}{run}/test/item{i + 1:02d}.png"] = glyph_png(1000 * r + int(k))
            lines.append(f"{run}/test/item{i + 1:02d}.png {run}/training/class{k + 1:02d}.png")
        files[f"{top}{run}/class_labels.txt"] = ("\n".join(lines) + "\n").encode()
        all_labels.append(labels.tolist())
    return files, all_labels


@pytest.fixture
def make_runs() -> Callable[..., tuple[Path, list]]:
    """Factory: ``make_runs(root, n_runs, ways, as_zip, top_folder)`` writes ``all_runs`` in
    ``<root>/omniglot/``; returns the path and the true labels of the test items."""

    def make(
        root: Path, n_runs: int = 2, ways: int = 20, as_zip: bool = True, top_folder: bool = False
    ) -> tuple[Path, list]:
        files, labels = runs_files(n_runs, ways, "all_runs/" if top_folder or not as_zip else "")
        dest = root / "omniglot" / "all_runs"
        if as_zip:
            return write_tree(files, dest, True), labels
        return write_tree(files, dest, False), labels

    return make
