"""Regenerate the embedded val alphabets (src/memlearn/data/embedded/omniglot_val.npz).

Reads the official ``images_background.zip`` (or its extracted folder) under a data root, keeps
the five held-out val alphabets (memlearn.data.splits.VAL_ALPHABETS), and stores each drawing's
1-bit 105x105 ink map, bit-packed, with its class metadata. Usage, from the repository root:

    PYTHONPATH=src python tools/embed_val.py --root /path/to/data   # holds omniglot/*.zip

The written file is deterministic (same zip -> same bytes).
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np

from memlearn.data.checksums import zip_content_hash
from memlearn.data.embedded_val import EMBEDDED_SET, embedded_path
from memlearn.data.layout import find_source, parse_image_set
from memlearn.data.preprocess import decode_ink
from memlearn.data.splits import VAL_ALPHABETS


def embedded_arrays(root: str | None) -> dict[str, np.ndarray]:
    """The arrays of the embedded file, from the official set under ``root``."""
    source = find_source(EMBEDDED_SET, root)
    layout = parse_image_set(source)
    keep = [i for i, n in enumerate(layout.class_names) if n.split("/")[0] in VAL_ALPHABETS]
    alphabets = sorted({layout.class_names[i].split("/")[0] for i in keep})
    if tuple(alphabets) != tuple(sorted(VAL_ALPHABETS)):
        raise SystemExit(f"{source.path}: val alphabets found {alphabets}, want {VAL_ALPHABETS}")
    rels = [rel for i in keep for rel in layout.files[i]]
    ink = np.stack(
        [decode_ink(b, source.describe(r)) for b, r in zip(source.read(rels), rels, strict=True)]
    )
    names = [layout.class_names[i] for i in keep]
    return {
        "ink": np.packbits(ink.reshape(len(ink), -1), axis=1),
        "class_alphabet": np.asarray([alphabets.index(n.split("/")[0]) for n in names]),
        "alphabet_names": np.asarray(alphabets),
        "class_names": np.asarray(names),
        "files": np.asarray(rels).reshape(len(names), -1),  # <Alphabet>/characterNN/XXXX_YY.png
        "source": np.asarray(
            f"{source.path.name} content sha256 {zip_content_hash(source.path)}"
            if source.is_zip
            else str(source.path.name)
        ),
    }


def write_npz(arrays: dict[str, np.ndarray], out: Path) -> None:
    """Write ``arrays`` as a compressed npz with fixed member timestamps (reproducible bytes)."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buf.getvalue(), compresslevel=9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="data root (default: $MEMLEARN_DATA, else user cache)")
    parser.add_argument("--out", type=Path, default=None, help="output (default: the package's)")
    args = parser.parse_args()
    out = args.out or Path(__file__).resolve().parents[1] / "src/memlearn/data/embedded" / (
        embedded_path().name
    )
    write_npz(embedded_arrays(args.root), out)
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
