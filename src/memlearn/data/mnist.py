"""MNIST from the four official idx files (gzip-compressed or not)."""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from memlearn.data.roots import dataset_dirs, missing_error
from memlearn.errors import CorruptDataError

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
MNIST_COUNTS = {"train": 60_000, "test": 10_000}  # [P] LeCun et al. 1998
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike[str], header_only: bool = False) -> np.ndarray | tuple:
    """Read an idx file (``.gz`` or raw) → its array; with ``header_only`` → its shape only.

    CorruptDataError naming the file when the magic number, the shape or the length is wrong.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(4)
            if len(head) != 4 or head[:2] != b"\0\0" or head[2] not in _IDX_TYPES:
                raise CorruptDataError(f"{path}: not an idx file (magic bytes {head.hex()})")
            ndim = head[3]
            dims = struct.unpack(f">{ndim}I", handle.read(4 * ndim))
            if header_only:
                return dims
            dtype = np.dtype(_IDX_TYPES[head[2]])
            data = handle.read()
    except (OSError, EOFError, struct.error) as exc:  # gzip CRC / truncation errors are OSError
        raise CorruptDataError(f"{path}: cannot read ({exc})") from exc
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(data) != expected:
        raise CorruptDataError(
            f"{path}: {len(data)} data bytes, the header's shape {dims} needs {expected}"
        )
    return np.frombuffer(data, dtype=dtype).reshape(dims)


def find_mnist_file(stem: str, root: str | os.PathLike[str] | None = None) -> Path:
    """The path of the official file ``stem`` (``.gz`` or uncompressed) under the data roots."""
    tried: list[Path] = []
    for folder in dataset_dirs("mnist", root):
        for name in (f"{stem}.gz", stem):
            tried.append(folder / name)
            if tried[-1].is_file():
                return tried[-1]
    raise missing_error(f"MNIST file {stem}.gz", tried, dataset="mnist")


@dataclass(frozen=True)
class MnistSet:
    """``images`` uint8 [N, 28, 28] (ink = 255), ``labels`` int64 [N] in 0..9."""

    images: torch.Tensor
    labels: torch.Tensor
    split: str


def load_mnist(split: str = "train", root: str | os.PathLike[str] | None = None) -> MnistSet:
    """The MNIST ``train`` (60,000) or ``test`` (10,000) set from the official files."""
    if split not in MNIST_FILES:
        raise ValueError(f"unknown MNIST split {split!r}; allowed: train, test")
    image_path, label_path = (find_mnist_file(s, root) for s in MNIST_FILES[split])
    images, labels = read_idx(image_path), read_idx(label_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1:
        raise CorruptDataError(
            f"{image_path}: shape {images.shape} / labels {labels.shape}, "
            "expected [N, 28, 28] / [N]"
        )
    if len(images) != len(labels) or len(labels) != MNIST_COUNTS[split]:
        raise CorruptDataError(
            f"MNIST {split}: {len(images)} images and {len(labels)} labels, expected "
            f"{MNIST_COUNTS[split]} of each"
        )
    if labels.max() > 9:
        raise CorruptDataError(f"{label_path}: label {int(labels.max())} outside 0..9")
    return MnistSet(
        torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)), split
    )
