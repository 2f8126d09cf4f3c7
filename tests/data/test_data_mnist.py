"""MNIST idx reader: analytic small files, corrupt files, and the real counts."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from memlearn.data.check import check_mnist
from memlearn.data.mnist import load_mnist, read_idx
from memlearn.errors import CorruptDataError, DataNotFoundError


def idx_bytes(array: np.ndarray) -> bytes:
    head = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    return head + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("compressed", [True, False])
def test_read_idx_round_trip(tmp_path, compressed):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / ("x.idx.gz" if compressed else "x.idx")
    path.write_bytes(gzip.compress(idx_bytes(array)) if compressed else idx_bytes(array))
    np.testing.assert_array_equal(read_idx(path), array)
    assert read_idx(path, header_only=True) == (2, 3, 4)


def test_corrupt_idx_files(tmp_path):
    bad_magic = tmp_path / "magic.idx"
    bad_magic.write_bytes(b"\x12\x34\x08\x01" + bytes(8))
    with pytest.raises(CorruptDataError, match="magic.idx: not an idx file"):
        read_idx(bad_magic)
    short = tmp_path / "short.idx"
    short.write_bytes(idx_bytes(np.zeros((5, 2), np.uint8))[:-3])
    with pytest.raises(CorruptDataError, match=r"short.idx: 7 data bytes.*needs 10"):
        read_idx(short)
    broken_gz = tmp_path / "broken.gz"
    broken_gz.write_bytes(gzip.compress(idx_bytes(np.zeros((50, 50), np.uint8)))[:-20])
    with pytest.raises(CorruptDataError, match="broken.gz: cannot read"):
        read_idx(broken_gz)


def test_missing_and_invalid_mnist(tmp_path):
    with pytest.raises(DataNotFoundError, match="memlearn data fetch mnist"):
        load_mnist("test", tmp_path)
    with pytest.raises(ValueError, match="allowed: train, test"):
        load_mnist("validation", tmp_path)
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(np.zeros((10, 28, 28))))
    )
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(np.zeros(10))))
    status = check_mnist("test", tmp_path)
    assert status.state == "invalid" and "expected (10000, 28, 28)" in status.detail
    with pytest.raises(CorruptDataError, match="10 images and 10 labels, expected 10000"):
        load_mnist("test", tmp_path)


@pytest.mark.data
def test_real_mnist_train(shared_data):
    train = load_mnist("train", shared_data)
    assert train.images.shape == (60000, 28, 28)
    # Published facts (shared/data/README.md): label counts and pixel mean / std.
    counts = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert train.labels.bincount().tolist() == counts
    pixels = train.images.float() / 255
    assert pixels.mean().item() == pytest.approx(0.1307, abs=1e-4)
    assert pixels.std().item() == pytest.approx(0.3081, abs=1e-4)
