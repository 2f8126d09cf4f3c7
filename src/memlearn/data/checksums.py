"""Checksums of data files: MD5 of a whole file, and a content hash of a zip's members."""

from __future__ import annotations

import hashlib
import os
import zipfile
import zlib
from pathlib import Path
from typing import IO

from memlearn.errors import CorruptDataError

_CHUNK = 1 << 20


def file_md5(path: str | os.PathLike[str]) -> str:
    """Hex MD5 of the file's bytes."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def zip_content_hash(path: str | os.PathLike[str] | IO[bytes]) -> str:
    """Hash of a zip's content, independent of the container.

    SHA-256 of the sorted lines ``"<member path>\\t<sha256 of the member bytes>\\n"`` over the
    file members (directory entries excluded). Two zips holding byte-identical files under the
    same paths have the same content hash whatever their compression or timestamps. Raises
    :class:`CorruptDataError` naming the file when the zip cannot be read or a CRC fails.
    """
    lines: list[str] = []
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                data = archive.read(info)
                lines.append(f"{info.filename}\t{hashlib.sha256(data).hexdigest()}\n")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error) as exc:
        where = str(Path(path)) if isinstance(path, str | os.PathLike) else "zip data"
        raise CorruptDataError(f"{where} is not a readable zip file: {exc}") from exc
    lines.sort()
    return hashlib.sha256("".join(lines).encode()).hexdigest()
