"""Omniglot splits by alphabet, as float tensors ready for few-shot learning.

=============  ============================================================================
split          classes
=============  ============================================================================
``train``      the 25 background alphabets not in :data:`VAL_ALPHABETS` (rotations on)
``val``        the 5 background alphabets of :data:`VAL_ALPHABETS` (held out of training)
``evaluation`` the official evaluation set (20 alphabets, 659 characters), when present
``small1``     the official minimal background set 1 (5 alphabets, 136 characters)
``small2``     the official minimal background set 2 (5 alphabets, 156 characters)
``rest1``      the background alphabets that neither ``small1``, ``val`` nor a sibling script
               of a ``small1`` alphabet holds (22 alphabets): held out of a model meta-trained
               on ``small1``, and of the choice of the recipe (made on ``val``)
``rest2``      the same for ``small2`` (19 alphabets)
``runs``       Lake's 20 one-shot runs: fixed tasks, see :func:`memlearn.data.runs.load_runs`
=============  ============================================================================

Characters of one alphabet are never on both sides of train/val, nor of small1/rest1 or
small2/rest2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np
import torch

from memlearn.data.embedded_val import load_embedded_val, note_embedded
from memlearn.data.layout import find_source
from memlearn.data.preprocess import ImageSet, load_image_set
from memlearn.errors import DataNotFoundError

SPLITS = ("train", "val", "evaluation", "small1", "small2", "rest1", "rest2", "runs")
SPLIT_SETS = {
    "train": "images_background",
    "val": "images_background",
    "evaluation": "images_evaluation",
    "small1": "images_background_small1",
    "small2": "images_background_small2",
    "rest1": "images_background",
    "rest2": "images_background",
}
# Validation alphabets held out of meta-training: 5 of the 30 background alphabets, 175 of
# the 964 characters (18 %). Chosen from different script families, each with no sibling
# script left in `train` that shares its glyphs (the Georgian, Japanese and Canadian-syllabics
# pairs stay together in `train`). [E] project choice, fixed so that results are comparable.
VAL_ALPHABETS = ("Armenian", "Bengali", "Early_Aramaic", "Futurama", "Korean")
# The alphabets of the official minimal background sets [S] Lake et al., Science 2015, the
# Omniglot repository's images_background_small1/2.
SMALL_ALPHABETS = {
    "small1": ("Balinese", "Early_Aramaic", "Greek", "Korean", "Latin"),
    "small2": ("Greek", "Japanese_(katakana)", "Latin", "Sanskrit", "Tagalog"),
}
# Background alphabets that share glyphs with a sibling script (the pairs VAL_ALPHABETS keeps
# together): a rest split leaves out the siblings of its small set's alphabets.  [E] as above.
SIBLING_SCRIPTS = (
    ("Asomtavruli_(Georgian)", "Mkhedruli_(Georgian)"),
    ("Japanese_(hiragana)", "Japanese_(katakana)"),
    (
        "Blackfoot_(Canadian_Aboriginal_Syllabics)",
        "Inuktitut_(Canadian_Aboriginal_Syllabics)",
        "Ojibwe_(Canadian_Aboriginal_Syllabics)",
    ),
)
REST_OF = {"rest1": "small1", "rest2": "small2"}  # rest split -> the small set it complements
ROTATIONS = (0, 90, 180, 270)  # degrees, counter-clockwise


@dataclass(frozen=True)
class ClassImages:
    """Images of one split, grouped by class.

    ``images``: float32 [n_classes, n_per_class, 1, 28, 28] in [0, 1], ink = 1.
    ``alphabet``: int64 [n_classes], index into ``alphabet_names``.
    ``rotation``: int64 [n_classes], rotation of the class in degrees (0, 90, 180, 270).
    ``class_names``: ``"<Alphabet>/characterNN"`` (``"...@rot90"`` for rotated classes).
    """

    images: torch.Tensor
    alphabet: torch.Tensor
    alphabet_names: list[str]
    class_names: list[str]
    split: str
    rotation: torch.Tensor

    @property
    def n_classes(self) -> int:
        return int(self.images.shape[0])

    @property
    def n_per_class(self) -> int:
        return int(self.images.shape[1])

    def unrotated(self) -> ClassImages:
        """The classes as drawn: a copy without the rotated ones (``rotation`` 0 only)."""
        keep = self.rotation == 0
        if bool(keep.all()):
            return self
        names = [n for n, k in zip(self.class_names, keep.tolist(), strict=True) if k]
        return replace(
            self,
            images=self.images[keep],
            alphabet=self.alphabet[keep],
            class_names=names,
            rotation=self.rotation[keep],
        )

    def to(self, device: torch.device | str) -> ClassImages:
        """A copy with the tensors on ``device``."""
        return replace(
            self,
            images=self.images.to(device),
            alphabet=self.alphabet.to(device),
            rotation=self.rotation.to(device),
        )


def rest_excluded(split: str) -> set[str]:
    """The background alphabets a rest split leaves out: its small set's, their sibling
    scripts, and ``val``'s."""
    small = set(SMALL_ALPHABETS[REST_OF[split]])
    siblings = {a for group in SIBLING_SCRIPTS if small & set(group) for a in group}
    return small | siblings | set(VAL_ALPHABETS)


def _select(split: str, alphabets: list[str]) -> np.ndarray:
    if split in REST_OF:
        out = rest_excluded(split)
        keep = np.asarray([a not in out for a in alphabets], dtype=bool)
    else:
        held = set(VAL_ALPHABETS)
        keep = np.asarray([(a in held) == (split == "val") for a in alphabets], dtype=bool)
    if not keep.any():
        raise DataNotFoundError(
            f"split {split!r}: none of its alphabets is in the background set "
            f"(val alphabets: {', '.join(VAL_ALPHABETS)}; found: {', '.join(alphabets)})"
        )
    return keep


def _image_set(split: str, root: str | os.PathLike[str] | None) -> ImageSet:
    """The decoded image set of ``split``; for ``val`` with no data root given and no data
    found, the copy embedded in the package (said once on stderr)."""
    try:
        return load_image_set(SPLIT_SETS[split], root)
    except DataNotFoundError:
        if split != "val" or root is not None:
            raise
    note_embedded()
    return load_embedded_val()


def load_split(
    split: str, root: str | os.PathLike[str] | None = None, rotations: bool | None = None
) -> ClassImages:
    """The classes of ``split`` (see the module table) as a :class:`ClassImages`.

    ``rotations``: add each class rotated by 90°, 180° and 270° as three extra classes (4x the
    classes); default on for ``train`` only. Images are decoded once and cached (see
    :func:`memlearn.data.preprocess.load_image_set`).
    """
    if split == "runs":
        raise ValueError(
            "split 'runs' holds Lake's fixed one-shot tasks, not classes: use "
            "memlearn.data.load_runs()"
        )
    if split not in SPLIT_SETS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    rotations = (split == "train") if rotations is None else rotations
    raw = _image_set(split, root)
    images = torch.from_numpy(raw.images).float().div_(255.0).unsqueeze(2)
    alphabet = torch.from_numpy(raw.class_alphabet)
    alphabet_names, class_names = raw.alphabet_names, raw.class_names
    if split in ("train", "val", *REST_OF):
        keep_alpha = _select(split, alphabet_names)
        keep = torch.from_numpy(keep_alpha[raw.class_alphabet])
        new_index = torch.from_numpy(np.cumsum(keep_alpha) - 1)
        images, alphabet = images[keep], new_index[alphabet[keep]]
        class_names = [n for n, k in zip(class_names, keep.tolist(), strict=True) if k]
        alphabet_names = [a for a, k in zip(alphabet_names, keep_alpha, strict=True) if k]
    rotation = torch.zeros(len(class_names), dtype=torch.int64)
    if rotations:
        images = torch.cat([torch.rot90(images, k, dims=(-2, -1)) for k in range(4)])
        alphabet = alphabet.repeat(4)
        rotation = torch.tensor(ROTATIONS).repeat_interleave(len(class_names))
        class_names = [n if d == 0 else f"{n}@rot{d}" for d in ROTATIONS for n in class_names]
    return ClassImages(
        images.contiguous(), alphabet, list(alphabet_names), class_names, split, rotation
    )


def default_eval_split(root: str | os.PathLike[str] | None = None) -> str:
    """``"evaluation"`` when the official evaluation set is under the data root, else ``"val"``."""
    try:
        find_source(SPLIT_SETS["evaluation"], root)
    except DataNotFoundError:
        return "val"
    return "evaluation"
