"""Decoding Omniglot PNGs to 28x28 arrays, and the versioned cache of a whole image set.

Each 105x105 1-bit PNG (white background, black ink) is decoded with PIL and inverted so that
ink = 1, then resized to 28x28 with PIL's antialiased Lanczos filter (the usual 28x28 Omniglot
preprocessing of the MAML literature), applied to the whole stack as one matrix product. Arrays
are stored as uint8 (ink = 255) and scaled to [0, 1] on load.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from memlearn.data.layout import DRAWERS, Source, find_source, parse_image_set
from memlearn.data.roots import cache_dir
from memlearn.errors import CorruptDataError
from memlearn.io import atomic_write

SOURCE_SIZE = 105  # official Omniglot image side, pixels [P] Lake et al. 2015
IMAGE_SIZE = 28  # side after resizing, pixels (the MAML/Omniglot convention)
FORMAT_VERSION = 1  # bump when the preprocessing or the cache layout changes
_RESAMPLE = Image.Resampling.LANCZOS


def decode_ink(blob: bytes, name: str) -> np.ndarray:
    """One Omniglot PNG → bool [105, 105], True where there is ink; CorruptDataError naming
    ``name`` when the bytes are not a readable 105x105 image."""
    try:
        with Image.open(io.BytesIO(blob)) as im:
            im.load()
            if im.size != (SOURCE_SIZE, SOURCE_SIZE):
                raise CorruptDataError(
                    f"{name}: image is {im.size[0]}x{im.size[1]} pixels, Omniglot images are "
                    f"{SOURCE_SIZE}x{SOURCE_SIZE}"
                )
            gray = np.asarray(im if im.mode == "1" else im.convert("L"))
    except CorruptDataError:
        raise
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise CorruptDataError(f"{name}: not a readable PNG image ({exc})") from exc
    # Mode "1": True is the white background. Other modes: dark pixels are ink.
    return ~gray if gray.dtype == np.bool_ else gray < 128


@functools.cache
def lanczos_matrix(n_in: int = SOURCE_SIZE, n_out: int = IMAGE_SIZE) -> np.ndarray:
    """The [n_out, n_in] matrix of PIL's antialiased Lanczos resampling along one axis.

    Obtained by resizing each unit vector with PIL in float mode, so ``W @ x @ W.T`` is exactly
    PIL's 2-D Lanczos resize of ``x`` (float mode, no 8-bit rounding between the two passes).
    """
    eye = np.eye(n_in, dtype=np.float32)
    cols = [
        np.asarray(Image.fromarray(eye[j : j + 1], mode="F").resize((n_out, 1), _RESAMPLE))[0]
        for j in range(n_in)
    ]
    return np.stack(cols, axis=1)


def resize_ink(ink: np.ndarray) -> np.ndarray:
    """bool/float [N, 105, 105] ink maps → uint8 [N, 28, 28] (ink = 255), antialiased Lanczos,
    one batched matrix product for the whole stack."""
    w = torch.from_numpy(lanczos_matrix(ink.shape[-1], IMAGE_SIZE))
    x = torch.from_numpy(np.ascontiguousarray(ink, dtype=np.float32))
    small = torch.matmul(torch.matmul(w, x), w.T)
    return (small.clamp_(0.0, 1.0) * 255.0).round_().to(torch.uint8).numpy()


def decode_many(blobs: list[bytes], names: list[str]) -> np.ndarray:
    """Decode and resize ``blobs`` → uint8 [N, 28, 28] with ink = 255."""
    ink = np.empty((len(blobs), SOURCE_SIZE, SOURCE_SIZE), dtype=np.bool_)
    for i, blob in enumerate(blobs):
        ink[i] = decode_ink(blob, names[i])
    return resize_many(ink)


def resize_many(ink: np.ndarray) -> np.ndarray:
    """bool [N, 105, 105] ink maps → uint8 [N, 28, 28] (ink = 255), in bounded chunks."""
    out = np.empty((len(ink), IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    step = 2048  # bounds the float32 working set to ~90 MB
    for lo in range(0, len(ink), step):
        out[lo : lo + step] = resize_ink(ink[lo : lo + step])
    return out


@dataclass(frozen=True)
class ImageSet:
    """A decoded Omniglot image set: ``images`` uint8 [classes, 20, 28, 28] (ink = 255)."""

    name: str
    images: np.ndarray
    class_alphabet: np.ndarray  # int64 [classes]
    alphabet_names: list[str]
    class_names: list[str]
    source: Path


def _cache_path(source: Source) -> Path:
    where = hashlib.sha256(str(source.path.resolve()).encode()).hexdigest()[:12]
    return cache_dir() / "omniglot" / f"{source.name}-{IMAGE_SIZE}px-{where}.npz"


def _cache_key(source: Source) -> str:
    return f"v{FORMAT_VERSION}:{IMAGE_SIZE}:{_RESAMPLE.name}:{source.fingerprint()}"


def _read_cache(path: Path, key: str) -> dict[str, np.ndarray] | None:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["key"]) != key:
                return None
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, KeyError, EOFError):
        return None  # unreadable cache: rebuilt below


def build_image_set(source: Source) -> ImageSet:
    """Decode every image of ``source`` (no cache)."""
    layout = parse_image_set(source)
    rels = [rel for files in layout.files for rel in files]
    blobs = source.read(rels)
    flat = decode_many(blobs, [source.describe(r) for r in rels])
    return ImageSet(
        source.name,
        flat.reshape(len(layout.files), DRAWERS, IMAGE_SIZE, IMAGE_SIZE),
        np.asarray(layout.class_alphabet, dtype=np.int64),
        list(layout.alphabet_names),
        list(layout.class_names),
        source.path,
    )


def load_image_set(name: str, root: str | os.PathLike[str] | None = None) -> ImageSet:
    """The image set ``name`` decoded to 28x28, from the processed cache when it is current.

    The cache file (``<cache dir>/omniglot/<set>-28px-<path hash>.npz``) records a format version
    and the source fingerprint; a changed source or preprocessing rebuilds it (atomically).
    """
    source = find_source(name, root)
    path, key = _cache_path(source), _cache_key(source)
    cached = _read_cache(path, key)
    if cached is not None:
        return ImageSet(
            name,
            cached["images"],
            cached["class_alphabet"].astype(np.int64),
            [str(s) for s in cached["alphabet_names"]],
            [str(s) for s in cached["class_names"]],
            source.path,
        )
    built = build_image_set(source)
    try:
        with atomic_write(path, "wb") as handle:
            np.savez_compressed(
                handle,
                key=np.asarray(key),
                images=built.images,
                class_alphabet=built.class_alphabet,
                alphabet_names=np.asarray(built.alphabet_names),
                class_names=np.asarray(built.class_names),
            )
    except OSError as exc:
        warnings.warn(
            f"could not write the Omniglot cache {path} ({exc}); set MEMLEARN_CACHE to a "
            "writable folder to avoid decoding the images again",
            stacklevel=2,
        )
    return built
