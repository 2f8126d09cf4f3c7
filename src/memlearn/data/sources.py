"""The official files of each data set: where to download them and how to verify them.

URLs and checksums are those published by the data set authors (and listed in
``shared/data/README.md``): Omniglot from github.com/brendenlake/omniglot (Lake et al., Science
2015), MNIST from yann.lecun.com with the PyTorch mirror (LeCun et al., 1998).
"""

from __future__ import annotations

from dataclasses import dataclass

OMNIGLOT_BASE = "https://raw.githubusercontent.com/brendenlake/omniglot/master/python"
MNIST_BASES = (
    "https://ossci-datasets.s3.amazonaws.com/mnist",  # the mirror torchvision downloads from
    "http://yann.lecun.com/exdb/mnist",
)
MIRROR_ENV = "MEMLEARN_DATA_MIRROR"


@dataclass(frozen=True)
class OfficialFile:
    """One official file: its name, download URLs, and what a correct copy looks like.

    ``md5``/``size`` are the published values (``None`` where none is published; the file is
    then verified by its structure). ``content_sha256`` lists known content hashes of rebuilt
    containers holding byte-identical members
    (see :func:`memlearn.data.checksums.zip_content_hash`).
    """

    dataset: str
    name: str
    urls: tuple[str, ...]
    md5: str | None
    size: int | None
    content_sha256: tuple[str, ...] = ()


OFFICIAL_FILES: dict[str, tuple[OfficialFile, ...]] = {
    "omniglot": (
        OfficialFile(
            "omniglot",
            "images_background.zip",
            (f"{OMNIGLOT_BASE}/images_background.zip",),
            "68d2efa1b9178cc56df9314c21c6e718",
            9_464_212,
            # The rebuilt container of shared/data (same PNG bytes, new zip): its README
            # documents this content hash.
            ("75288906d655255988a488b7e81923d9c2194356d17b82642d9c51b19bd58594",),
        ),
        OfficialFile(
            "omniglot",
            "images_evaluation.zip",
            (f"{OMNIGLOT_BASE}/images_evaluation.zip",),
            "6b91aef0f799c5bb55b94e3f2daec811",
            6_462_886,
        ),
        OfficialFile(
            "omniglot",
            "images_background_small1.zip",
            (f"{OMNIGLOT_BASE}/images_background_small1.zip",),
            "e704a628b5459e08445c13499850abc4",
            1_319_022,
        ),
        OfficialFile(
            "omniglot",
            "images_background_small2.zip",
            (f"{OMNIGLOT_BASE}/images_background_small2.zip",),
            "b75a71a51d3b13f821f212756fe481fd",
            1_580_917,
        ),
        # No checksum is published for the one-shot runs: a download is verified by its
        # structure (20 runs x 20 training + 20 test images + labels) and the zip CRCs.
        OfficialFile(
            "omniglot",
            "all_runs.zip",
            (f"{OMNIGLOT_BASE}/one-shot-classification/all_runs.zip",),
            None,
            None,
        ),
    ),
    "mnist": tuple(
        OfficialFile("mnist", name, tuple(f"{b}/{name}" for b in MNIST_BASES), md5, size)
        for name, md5, size in (
            ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873", 9_912_422),
            ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432", 28_881),
            ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3", 1_648_877),
            ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c", 4_542),
        )
    ),
}


def official_file(dataset: str, name: str) -> OfficialFile:
    """The :class:`OfficialFile` called ``name`` in ``dataset`` (ValueError naming the choices)."""
    if dataset not in OFFICIAL_FILES:
        raise ValueError(f"unknown data set {dataset!r}; known: {', '.join(OFFICIAL_FILES)}")
    for f in OFFICIAL_FILES[dataset]:
        if f.name == name:
            return f
    names = ", ".join(f.name for f in OFFICIAL_FILES[dataset])
    raise ValueError(f"unknown {dataset} file {name!r}; known: {names}")
