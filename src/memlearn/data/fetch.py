"""Downloading the official files: progress bar, checksum verification, atomic write.

A file is downloaded into memory (the largest is 9.9 MB), verified, and only then written with
:func:`memlearn.io.atomic_write`: a corrupt or truncated download never reaches the disk.
Verification: the published MD5 (and size); a zip whose MD5 differs is accepted only when its
content hash is a documented one (a rebuilt container of the same images); a file with no
published checksum (``all_runs.zip``) must have the expected structure.

The URL base can be replaced by a mirror laid out like a data root (``<mirror>/omniglot/<file>``,
``<mirror>/mnist/<file>``): argument ``mirror`` or the ``MEMLEARN_DATA_MIRROR`` variable.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from memlearn import __version__
from memlearn.data.check import check_runs_zip
from memlearn.data.checksums import file_md5, zip_content_hash
from memlearn.data.roots import DATASET_DIRS, resolve_data_root
from memlearn.data.sources import MIRROR_ENV, OFFICIAL_FILES, OfficialFile, official_file
from memlearn.errors import CorruptDataError, MemlearnError
from memlearn.io import atomic_write

_CHUNK = 1 << 16
OFFLINE_HINT = (
    "Offline or behind a proxy? Download from a mirror laid out like a data root with "
    f"--mirror URL (or {MIRROR_ENV}), or copy the official files to a folder and point "
    "MEMLEARN_DATA (or --root) at it."
)


@dataclass(frozen=True)
class FetchResult:
    """One file: where it is, how it was verified, and whether it was downloaded now."""

    path: Path
    verified: str
    downloaded: bool


def verify_bytes(data: bytes, spec: OfficialFile, origin: str) -> str:
    """Check ``data`` against ``spec``; return how it was verified or raise CorruptDataError
    naming ``origin``, what was received and what was expected."""
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if spec.md5 is not None and md5 == spec.md5:
        return "MD5 matches the official file"
    received = f"{len(data):,} bytes received"
    if spec.size is not None:
        received += f", the official file has {spec.size:,}"
    mismatch = CorruptDataError(
        f"{spec.name} from {origin} fails its checksum: MD5 {md5}, expected {spec.md5} ({received})"
    )
    if spec.md5 is not None and not spec.content_sha256:
        if spec.size is not None and len(data) < spec.size:
            raise CorruptDataError(f"{spec.name} from {origin} is truncated: {received}")
        raise mismatch
    # No published checksum, or a documented rebuilt container: look inside the zip.
    try:
        content = zip_content_hash(io.BytesIO(data))
    except CorruptDataError as exc:
        raise CorruptDataError(
            f"{spec.name} from {origin} is not a readable zip ({received})"
        ) from exc
    if content in spec.content_sha256:
        return "content hash matches a documented rebuilt copy of the official file"
    if spec.md5 is None:
        return check_runs_zip(io.BytesIO(data), f"{spec.name} from {origin}")
    raise mismatch


def _download(url: str, spec: OfficialFile, progress: bool, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": f"memlearn/{__version__}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        buffer = io.BytesIO()
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            desc=spec.name,
            disable=not progress,
            file=sys.stderr,
            leave=False,
        ) as bar:
            try:
                while chunk := response.read(_CHUNK):
                    buffer.write(chunk)
                    bar.update(len(chunk))
            except http.client.IncompleteRead as exc:
                got = buffer.tell() + len(exc.partial)
                raise CorruptDataError(
                    f"{spec.name} from {url} is truncated: the connection closed after "
                    f"{got:,} of {total:,} bytes"
                ) from exc
    data = buffer.getvalue()
    if total is not None and len(data) != total:
        raise CorruptDataError(
            f"{spec.name} from {url} is truncated: the connection closed after {len(data):,} of "
            f"{total:,} bytes"
        )
    return data


def _urls(spec: OfficialFile, mirror: str | None) -> tuple[str, ...]:
    mirror = mirror or os.environ.get(MIRROR_ENV) or None
    if mirror:
        return (f"{mirror.rstrip('/')}/{DATASET_DIRS[spec.dataset][0]}/{spec.name}",)
    return spec.urls


def verify_file(path: Path, spec: OfficialFile) -> str:
    """Verify a file on disk as :func:`verify_bytes` does (CorruptDataError if it fails)."""
    if spec.md5 is not None and path.stat().st_size == spec.size and file_md5(path) == spec.md5:
        return "MD5 matches the official file"
    return verify_bytes(path.read_bytes(), spec, str(path))


def fetch_file(
    spec: OfficialFile,
    folder: Path,
    mirror: str | None = None,
    progress: bool = True,
    force: bool = False,
    timeout: float = 60.0,
) -> FetchResult:
    """Download one official file into ``folder`` unless a verified copy is already there."""
    target = folder / spec.name
    if target.is_file() and not force:
        try:
            return FetchResult(target, verify_file(target, spec), downloaded=False)
        except CorruptDataError:
            pass  # a bad copy on disk: download it again
    errors: list[str] = []
    corrupt: CorruptDataError | None = None
    for url in _urls(spec, mirror):
        try:
            data = _download(url, spec, progress, timeout)
            how = verify_bytes(data, spec, url)
        except CorruptDataError as exc:
            corrupt = exc
            errors.append(str(exc))
            continue
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as exc:
            errors.append(f"{url}: {exc}")
            continue
        try:
            with atomic_write(target, "wb") as handle:
                handle.write(data)
        except OSError as exc:
            raise MemlearnError(
                f"cannot write {target} ({exc}); pass --root DIR (or set MEMLEARN_DATA) to a "
                "writable data root"
            ) from exc
        return FetchResult(target, how, downloaded=True)
    if corrupt is not None and len(errors) == 1:
        raise CorruptDataError(f"{corrupt}. {spec.name} was not written.")
    detail = "\n".join(f"  - {e}" for e in errors)
    hint = "" if corrupt else f"\n{OFFLINE_HINT}"
    raise (CorruptDataError if corrupt else MemlearnError)(
        f"could not download {spec.name}; it was not written. Tried:\n{detail}{hint}"
    )


def fetch(
    dataset: str,
    root: str | os.PathLike[str] | None = None,
    files: list[str] | None = None,
    mirror: str | None = None,
    progress: bool = True,
    force: bool = False,
    timeout: float = 60.0,
) -> list[FetchResult]:
    """Download the official files of ``dataset`` (``"omniglot"`` or ``"mnist"``), or only
    ``files``, into ``<data root>/<dataset>/``; files already present and verified are kept."""
    if dataset not in OFFICIAL_FILES:
        raise ValueError(f"unknown data set {dataset!r}; allowed: {', '.join(OFFICIAL_FILES)}")
    specs = [official_file(dataset, f) for f in files] if files else list(OFFICIAL_FILES[dataset])
    folder = resolve_data_root(root) / DATASET_DIRS[dataset][0]
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MemlearnError(
            f"cannot create {folder} ({exc}); pass --root DIR (or set MEMLEARN_DATA) to a "
            "writable data root"
        ) from exc
    results: list[FetchResult] = []
    try:
        for spec in specs:
            results.append(fetch_file(spec, folder, mirror, progress, force, timeout))
    except MemlearnError as exc:
        _remove_empty(created)
        written = [r.path.name for r in results if r.downloaded]
        if not written:
            raise
        raise type(exc)(f"{exc}\nWritten before this failure: {', '.join(written)}.") from exc
    return results


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders this fetch created (deepest first) that are still empty."""
    for path in folders:
        try:
            path.rmdir()
        except OSError:
            return  # not empty, or not ours to remove
