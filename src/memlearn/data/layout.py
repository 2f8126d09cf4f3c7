"""Reading Omniglot's official layouts, zipped or extracted, without decoding any image.

An image set (``images_background``, ``images_evaluation``, ``images_background_small1``,
``images_background_small2``) is ``<set>/<Alphabet>/characterNN/XXXX_YY.png``: XXXX the global
character id, YY (01-20) the drawer. The one-shot runs (``all_runs``) are
``runNN/training/classNN.png``, ``runNN/test/itemNN.png`` and ``runNN/class_labels.txt``.
Either may be a zip (``<set>.zip``, with or without the top folder inside) or a folder, in
``<data root>/omniglot/`` (or ``omniglot-py/``, or the data root itself).
"""

from __future__ import annotations

import hashlib
import os
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from memlearn.data.roots import data_root_candidates, missing_error
from memlearn.errors import CorruptDataError

IMAGE_SETS = (
    "images_background",
    "images_evaluation",
    "images_background_small1",
    "images_background_small2",
)
RUNS_SET = "all_runs"
DRAWERS = 20  # each character was drawn by 20 people [P] Lake et al., Science 2015
_PNG = re.compile(r"^([^/]+)/(character(\d+))/(\d{4})_(\d{2})\.png$")


def _ignored(rel: str) -> bool:
    """Archive clutter that is not part of the data (macOS metadata, hidden files)."""
    parts = rel.split("/")
    return parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


@dataclass(frozen=True)
class Source:
    """One Omniglot set on disk: ``path`` is a zip file or a folder; ``prefix`` the folder
    inside a zip that holds the set (``""`` when the members sit at the top)."""

    name: str
    path: Path
    prefix: str = ""

    @property
    def is_zip(self) -> bool:
        return self.path.is_file()

    def members(self) -> list[str]:
        """Relative paths (``/``-separated, below the set folder) of every file in the set."""
        if self.is_zip:
            try:
                with zipfile.ZipFile(self.path) as archive:
                    names = [i.filename for i in archive.infolist() if not i.is_dir()]
            except (zipfile.BadZipFile, OSError) as exc:
                raise CorruptDataError(f"{self.path} is not a readable zip file: {exc}") from exc
            out = [n[len(self.prefix) :] for n in names if n.startswith(self.prefix)]
        else:
            out = [
                Path(dirpath, f).relative_to(self.path).as_posix()
                for dirpath, _, files in os.walk(self.path)
                for f in files
            ]
        return sorted(rel for rel in out if not _ignored(rel))

    def read(self, rels: list[str]) -> list[bytes]:
        """The bytes of each member in ``rels`` (CorruptDataError naming the file on failure)."""
        out: list[bytes] = []
        if self.is_zip:
            try:
                with zipfile.ZipFile(self.path) as archive:
                    for rel in rels:
                        out.append(archive.read(self.prefix + rel))
            except (zipfile.BadZipFile, OSError, KeyError, EOFError, zlib.error) as exc:
                at = rels[len(out)] if len(out) < len(rels) else "?"
                raise CorruptDataError(f"{self.path}: cannot read member {at}: {exc}") from exc
        else:
            for rel in rels:
                try:
                    out.append((self.path / rel).read_bytes())
                except OSError as exc:
                    raise CorruptDataError(f"cannot read {self.path / rel}: {exc}") from exc
        return out

    def describe(self, rel: str) -> str:
        """How to name member ``rel`` in an error message."""
        return f"{self.path}:{self.prefix}{rel}" if self.is_zip else str(self.path / rel)

    def fingerprint(self) -> str:
        """Changes whenever the source changes: zip name + size + mtime + member list, or, for a
        folder, every file's relative path, size and mtime."""
        digest = hashlib.sha256()
        if self.is_zip:
            st = self.path.stat()
            digest.update(f"zip\0{self.path.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
            digest.update("\0".join(self.members()).encode())
        else:
            digest.update(b"dir\0")
            for rel in self.members():
                st = (self.path / rel).stat()
                digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        return digest.hexdigest()


def _zip_prefix(path: Path, name: str) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not _ignored(n)]
    except (zipfile.BadZipFile, OSError) as exc:
        raise CorruptDataError(f"{path} is not a readable zip file: {exc}") from exc
    top = f"{name}/"
    if names and all(n.startswith(top) for n in names):
        return top
    return ""


def _dir_source(path: Path, name: str) -> Source:
    # An archive extracted into a folder of its own name: images_background/images_background/.
    inner = path / name
    entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    if inner.is_dir() and len(entries) == 1:
        return Source(name, inner)
    return Source(name, path)


def search_dirs(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Folders searched for Omniglot sets, in order, over every candidate data root."""
    out: list[Path] = []
    for cand in data_root_candidates(root):
        out.extend([cand / "omniglot", cand / "omniglot-py", cand])
    return out


def find_source(name: str, root: str | os.PathLike[str] | None = None) -> Source:
    """The set ``name`` as found under the data roots (zip preferred over an extracted folder);
    :class:`DataNotFoundError` naming every path tried and how to get it otherwise."""
    if name not in (*IMAGE_SETS, RUNS_SET):
        raise ValueError(
            f"unknown Omniglot set {name!r}; known: {', '.join(IMAGE_SETS)}, {RUNS_SET}"
        )
    tried: list[Path] = []
    for base in search_dirs(root):
        zpath, dpath = base / f"{name}.zip", base / name
        tried += [zpath, dpath]
        if zpath.is_file():
            return Source(name, zpath, _zip_prefix(zpath, name))
        if dpath.is_dir():
            return _dir_source(dpath, name)
    raise missing_error(f"Omniglot {name}", tried, dataset="omniglot")


@dataclass(frozen=True)
class ImageSetLayout:
    """The parsed structure of an image set: sorted alphabets, characters and drawings."""

    alphabet_names: list[str]
    class_names: list[str]  # "<Alphabet>/characterNN"
    class_alphabet: list[int]  # index into alphabet_names, per class
    files: list[list[str]]  # per class: the 20 member paths, drawer 01..20 in order


def parse_image_set(source: Source) -> ImageSetLayout:
    """Check the layout ``<Alphabet>/characterNN/XXXX_YY.png`` with 20 drawers per character;
    CorruptDataError naming the offending file or folder otherwise."""
    chars: dict[tuple[str, int, str], dict[int, str]] = {}
    for rel in source.members():
        if not rel.lower().endswith(".png"):
            continue  # licence files, notes: not part of the image layout
        m = _PNG.match(rel)
        if m is None:
            raise CorruptDataError(
                f"unexpected file {source.describe(rel)} in Omniglot {source.name}: expected "
                "<Alphabet>/characterNN/XXXX_YY.png"
            )
        alphabet, char, num, _, drawer = m.groups()
        drawings = chars.setdefault((alphabet, int(num), char), {})
        drawings[int(drawer)] = rel
    if not chars:
        raise CorruptDataError(
            f"{source.path} holds no Omniglot images (expected "
            f"{source.name}/<Alphabet>/characterNN/XXXX_YY.png)"
        )
    alphabets = sorted({a for a, _, _ in chars})
    index = {a: i for i, a in enumerate(alphabets)}
    class_names, class_alphabet, files = [], [], []
    for key in sorted(chars):
        alphabet, _, char = key
        drawings = chars[key]
        if sorted(drawings) != list(range(1, DRAWERS + 1)):
            raise CorruptDataError(
                f"{source.describe(f'{alphabet}/{char}')}: expected drawers 01..{DRAWERS}, "
                f"found {len(drawings)} drawing(s): {sorted(drawings)}"
            )
        class_names.append(f"{alphabet}/{char}")
        class_alphabet.append(index[alphabet])
        files.append([drawings[d] for d in range(1, DRAWERS + 1)])
    return ImageSetLayout(alphabets, class_names, class_alphabet, files)
