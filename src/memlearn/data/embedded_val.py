"""The held-out ``val`` alphabets shipped inside the package, so the demo runs with no data.

``embedded/omniglot_val.npz`` holds the 3,500 drawings (175 characters x 20 drawers) of the five
:data:`memlearn.data.splits.VAL_ALPHABETS` from the official ``images_background.zip``, as the
1-bit 105x105 ink maps the PNGs hold, bit-packed with :func:`numpy.packbits`, with each class's
alphabet, character id and drawers. On load they are downscaled to 28x28 by the same code as the
zip path (:func:`memlearn.data.preprocess.decode_many` after decoding), so the pixels are
identical. Omniglot is MIT-licensed (Brenden Lake, 2015): ``embedded/LICENSE-omniglot``.
Regenerate with ``python tools/embed_val.py --root <data root>``.
"""

from __future__ import annotations

import functools
import sys
from importlib import resources
from pathlib import Path

import numpy as np

from memlearn.data.layout import DRAWERS
from memlearn.data.preprocess import IMAGE_SIZE, SOURCE_SIZE, ImageSet, resize_many
from memlearn.errors import CorruptDataError

EMBEDDED_FILE = "omniglot_val.npz"
EMBEDDED_SET = "images_background"  # the official set the embedded alphabets come from


def embedded_path() -> Path:
    """Where the embedded copy lies inside the installed package."""
    return Path(str(resources.files("memlearn.data").joinpath("embedded", EMBEDDED_FILE)))


def unpack_ink(packed: np.ndarray) -> np.ndarray:
    """uint8 [N, ceil(105*105/8)] packed bits → bool [N, 105, 105] ink maps."""
    bits = np.unpackbits(packed, axis=1, count=SOURCE_SIZE * SOURCE_SIZE)
    return bits.reshape(len(packed), SOURCE_SIZE, SOURCE_SIZE).astype(np.bool_)


@functools.cache
def load_embedded_val() -> ImageSet:
    """The embedded val alphabets as an :class:`ImageSet` (uint8 [175, 20, 28, 28], ink = 255)."""
    path = embedded_path()
    try:
        with np.load(path, allow_pickle=False) as npz:
            ink = unpack_ink(npz["ink"])
            class_alphabet = npz["class_alphabet"].astype(np.int64)
            alphabet_names = [str(s) for s in npz["alphabet_names"]]
            class_names = [str(s) for s in npz["class_names"]]
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise CorruptDataError(
            f"the embedded val alphabets {path} cannot be read ({exc}); reinstall memlearn"
        ) from exc
    images = resize_many(ink).reshape(len(class_names), DRAWERS, IMAGE_SIZE, IMAGE_SIZE)
    return ImageSet(EMBEDDED_SET, images, class_alphabet, alphabet_names, class_names, path)


@functools.cache
def note_embedded() -> None:
    """Say once, on stderr, that the embedded copy is used."""
    print(
        "note: no Omniglot data found: using the val alphabets embedded in memlearn "
        "(get the full data with `memlearn data fetch omniglot`, or set MEMLEARN_DATA)",
        file=sys.stderr,
    )
