"""``memlearn data check``: which data sets are present, and whether they are valid.

Omniglot image sets are checked for their layout and counts (alphabets, characters, 20 drawings
each) and, for zips, for their checksum (official MD5, a documented content hash, or at least
intact CRCs); the runs for 20 runs of 20 training + 20 test images with their labels; MNIST for
its idx headers, counts and MD5s.  Every PNG of a set that is not byte-for-byte the official
file (an extracted folder, a zip whose MD5 and content hash differ, the runs, which have no
published checksum) must open as a 105x105 image and pass Pillow's ``verify`` (structure and
chunk CRCs).  A zip that cannot be read (truncated, damaged) marks its row invalid.
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from typing import IO

from PIL import Image

from memlearn.data.checksums import file_md5, zip_content_hash
from memlearn.data.layout import (
    IMAGE_SETS,
    RUNS_SET,
    Source,
    find_source,
    parse_image_set,
    search_dirs,
)
from memlearn.data.mnist import MNIST_COUNTS, MNIST_FILES, find_mnist_file, read_idx
from memlearn.data.sources import official_file
from memlearn.errors import CorruptDataError, DataNotFoundError

# (alphabets, characters) of each official set [P] Lake et al. 2015, github.com/brendenlake/omniglot
EXPECTED_COUNTS = {
    "images_background": (30, 964),
    "images_evaluation": (20, 659),
    "images_background_small1": (5, 136),
    "images_background_small2": (5, 156),
}
RUNS = 20  # one-shot runs, each 20-way 1-shot with 20 test items [P] Lake et al. 2015
RUN_WAYS = 20
SOURCE_SIZE = 105  # official image side, pixels [P] Lake et al. 2015
# Errors reading a damaged or truncated zip (zipfile raises several kinds).
_READ_ERRORS = (CorruptDataError, zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error)


@dataclass
class DatasetStatus:
    """One data set's state: ``"valid"``, ``"missing"`` or ``"invalid"``, with details."""

    name: str
    state: str
    path: str | None
    detail: str
    counts: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def verify_images(source: Source, rels: list[str]) -> None:
    """Every PNG among ``rels`` opens as a 105x105 image and passes Pillow's ``verify``;
    CorruptDataError naming the first that does not."""
    pngs = [r for r in rels if r.lower().endswith(".png")]
    for rel, blob in zip(pngs, source.read(pngs), strict=True):
        try:
            with Image.open(io.BytesIO(blob)) as im:
                size = im.size
                im.verify()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise CorruptDataError(f"{source.describe(rel)}: not a readable PNG ({exc})") from exc
        if size != (SOURCE_SIZE, SOURCE_SIZE):
            raise CorruptDataError(
                f"{source.describe(rel)}: image is {size[0]}x{size[1]} pixels, expected "
                f"{SOURCE_SIZE}x{SOURCE_SIZE}"
            )


def _verification(source: Source, name: str, rels: list[str]) -> str:
    """How ``source`` was verified; its images are decoded-checked unless its bytes are proven
    to be the official ones (MD5, or a documented content hash)."""
    if not source.is_zip:
        verify_images(source, rels)
        return "extracted folder, every image readable"
    path = source.path
    spec = official_file("omniglot", f"{name}.zip")
    if spec.md5 is not None and path.stat().st_size == spec.size and file_md5(path) == spec.md5:
        return "official file (MD5 ok)"
    content = zip_content_hash(path)  # also checks every member's CRC
    if content in spec.content_sha256:
        return "rebuilt container, content hash matches the documented one (MD5 differs)"
    verify_images(source, rels)
    if spec.md5 is None:
        return "zip CRCs ok, every image readable (no published checksum)"
    return "zip CRCs ok, every image readable, but not the official file (MD5 differs)"


def check_image_set(name: str, root: str | os.PathLike[str] | None = None) -> DatasetStatus:
    """The state of one Omniglot image set."""
    label = f"omniglot/{name}"
    try:
        source = find_source(name, root)
    except DataNotFoundError:
        return DatasetStatus(label, "missing", None, "not found (memlearn data fetch omniglot)")
    except _READ_ERRORS as exc:
        return DatasetStatus(label, "invalid", _where(name, root), str(exc))
    try:
        layout = parse_image_set(source)
        how = _verification(source, name, [r for files in layout.files for r in files])
    except _READ_ERRORS as exc:
        return DatasetStatus(label, "invalid", str(source.path), str(exc))
    counts = {
        "alphabets": len(layout.alphabet_names),
        "characters": len(layout.class_names),
        "images": sum(len(f) for f in layout.files),
    }
    want_alpha, want_chars = EXPECTED_COUNTS[name]
    if (counts["alphabets"], counts["characters"]) != (want_alpha, want_chars):
        return DatasetStatus(
            label,
            "invalid",
            str(source.path),
            f"{counts['alphabets']} alphabets / {counts['characters']} characters, expected "
            f"{want_alpha} / {want_chars}",
            counts,
        )
    detail = f"{want_alpha} alphabets, {want_chars} characters x 20 drawings; {how}"
    return DatasetStatus(label, "valid", str(source.path), detail, counts)


def _where(name: str, root: str | os.PathLike[str] | None) -> str | None:
    """The zip a search stopped at (it could not be read), for the status row."""
    for base in search_dirs(root):
        if (base / f"{name}.zip").is_file():
            return str(base / f"{name}.zip")
    return None


def runs_counts(members: list[str], where: str) -> dict[str, int]:
    """Check the runs layout from the member list; CorruptDataError naming the problem."""
    runs = sorted({m.split("/")[0] for m in members if m.startswith("run") and "/" in m})
    if len(runs) != RUNS:
        raise CorruptDataError(f"{where}: {len(runs)} runs, expected {RUNS} (run01..run{RUNS})")
    have = set(members)
    for run in runs:
        train = [m for m in members if m.startswith(f"{run}/training/") and m.endswith(".png")]
        test = [m for m in members if m.startswith(f"{run}/test/") and m.endswith(".png")]
        if len(train) != RUN_WAYS or len(test) != RUN_WAYS:
            raise CorruptDataError(
                f"{where}: {run} has {len(train)} training and {len(test)} test images, "
                f"expected {RUN_WAYS} of each"
            )
        if f"{run}/class_labels.txt" not in have:
            raise CorruptDataError(f"{where}: {run}/class_labels.txt is missing")
    return {"runs": RUNS, "training_images": RUNS * RUN_WAYS, "test_images": RUNS * RUN_WAYS}


def check_runs_zip(handle: IO[bytes], where: str) -> str:
    """Structure and CRC check of an ``all_runs.zip`` held in memory (used after a download)."""
    try:
        with zipfile.ZipFile(handle) as archive:
            bad = archive.testzip()
            names = [i.filename for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise CorruptDataError(f"{where} is not a readable zip: {exc}") from exc
    if bad is not None:
        raise CorruptDataError(f"{where}: member {bad} fails its CRC")
    prefix = f"{RUNS_SET}/" if names and all(n.startswith(f"{RUNS_SET}/") for n in names) else ""
    runs_counts([n[len(prefix) :] for n in names if n.startswith(prefix)], where)
    return f"{RUNS} runs x {RUN_WAYS} training + {RUN_WAYS} test images, zip CRCs ok"


def check_runs(root: str | os.PathLike[str] | None = None) -> DatasetStatus:
    """The state of the one-shot runs."""
    label = f"omniglot/{RUNS_SET}"
    try:
        source: Source = find_source(RUNS_SET, root)
    except DataNotFoundError:
        return DatasetStatus(label, "missing", None, "not found (memlearn data fetch omniglot)")
    except _READ_ERRORS as exc:
        return DatasetStatus(label, "invalid", _where(RUNS_SET, root), str(exc))
    try:
        members = source.members()
        counts = runs_counts(members, str(source.path))
        how = _verification(source, RUNS_SET, members)
    except _READ_ERRORS as exc:
        return DatasetStatus(label, "invalid", str(source.path), str(exc))
    detail = f"{RUNS} runs x {RUN_WAYS} training + {RUN_WAYS} test images; {how}"
    return DatasetStatus(label, "valid", str(source.path), detail, counts)


def check_mnist(split: str, root: str | os.PathLike[str] | None = None) -> DatasetStatus:
    """The state of the MNIST ``train`` or ``test`` files (headers, counts, MD5s)."""
    label = f"mnist/{split}"
    try:
        paths = [find_mnist_file(stem, root) for stem in MNIST_FILES[split]]
    except DataNotFoundError:
        return DatasetStatus(label, "missing", None, "not found (memlearn data fetch mnist)")
    want = MNIST_COUNTS[split]
    official = True
    try:
        images, labels = (read_idx(p, header_only=True) for p in paths)
        if tuple(images) != (want, 28, 28) or tuple(labels) != (want,):
            raise CorruptDataError(
                f"headers say images {tuple(images)}, labels {tuple(labels)}; expected "
                f"({want}, 28, 28) and ({want},)"
            )
        for p, stem in zip(paths, MNIST_FILES[split], strict=True):
            spec = official_file("mnist", f"{stem}.gz")
            if p.suffix != ".gz" or file_md5(p) != spec.md5:
                official = False
                read_idx(p)  # not the official bytes: at least the whole file must decode
    except CorruptDataError as exc:
        return DatasetStatus(label, "invalid", str(paths[0].parent), str(exc))
    how = "official files (MD5 ok)" if official else "idx files decode (not the official MD5)"
    return DatasetStatus(
        label, "valid", str(paths[0].parent), f"{want:,} images + labels; {how}", {"images": want}
    )


def check_data(root: str | os.PathLike[str] | None = None) -> list[DatasetStatus]:
    """Every known data set's state under the data roots, in a fixed order."""
    out = [check_image_set(name, root) for name in IMAGE_SETS]
    out.append(check_runs(root))
    out += [check_mnist(split, root) for split in MNIST_FILES]
    return out
