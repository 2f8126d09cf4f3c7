"""Downloads against a real HTTP server on 127.0.0.1 serving the shared data (and broken
copies of it): verified files are written, corrupt or truncated ones are refused."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memlearn.cli.main import app
from memlearn.data.check import check_mnist
from memlearn.data.fetch import fetch, fetch_file
from memlearn.data.mnist import load_mnist
from memlearn.data.sources import OfficialFile
from memlearn.errors import CorruptDataError, MemlearnError

SMALL1 = "images_background_small1.zip"


class Mirror:
    """A loopback HTTP server: ``routes`` maps a URL path to (body, announced length)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, int | None]] = {}
        self.requests: list[str] = []
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                mirror.requests.append(self.path)
                if self.path not in mirror.routes:
                    self.send_error(404)
                    return
                body, length = mirror.routes[self.path]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body) if length is None else length))
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def serve(self, path: str, body: bytes, announced: int | None = None) -> None:
        self.routes[path] = (body, announced)

    def serve_tree(self, root: Path) -> None:
        for f in root.rglob("*"):
            if f.is_file():
                self.serve("/" + f.relative_to(root).as_posix(), f.read_bytes())


@pytest.fixture
def mirror() -> Iterator[Mirror]:
    m = Mirror()
    yield m
    m.server.shutdown()
    m.server.server_close()


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.data
def test_fetch_verifies_md5_and_skips_valid_copies(shared_data, mirror, tmp_path):
    mirror.serve_tree(shared_data)
    results = fetch("omniglot", tmp_path, files=[SMALL1], mirror=mirror.url, progress=False)
    target = tmp_path / "omniglot" / SMALL1
    assert results[0].path == target and results[0].downloaded
    assert results[0].verified == "MD5 matches the official file"
    assert target.read_bytes() == (shared_data / "omniglot" / SMALL1).read_bytes()
    again = fetch("omniglot", tmp_path, files=[SMALL1], mirror=mirror.url, progress=False)
    assert not again[0].downloaded and len(mirror.requests) == 1


@pytest.mark.data
def test_fetch_mnist_then_check_and_load(shared_data, mirror, tmp_path, monkeypatch):
    mirror.serve_tree(shared_data)
    monkeypatch.setenv("MEMLEARN_DATA_MIRROR", mirror.url)  # the environment variable path
    results = fetch("mnist", tmp_path, progress=False)
    assert [r.path.name for r in results] == [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    assert all(r.verified.startswith("MD5") for r in results)
    assert check_mnist("test", tmp_path).state == "valid"
    test = load_mnist("test", tmp_path)
    # Published test-set label counts (shared/data/README.md).
    assert test.labels.bincount().tolist() == [
        980,
        1135,
        1032,
        1010,
        982,
        892,
        958,
        1028,
        974,
        1009,
    ]


@pytest.mark.data
def test_rebuilt_background_zip_accepted_by_content_hash(shared_data, mirror, tmp_path):
    mirror.serve_tree(shared_data)
    [result] = fetch(
        "omniglot", tmp_path, files=["images_background.zip"], mirror=mirror.url, progress=False
    )
    assert result.downloaded and "content hash" in result.verified


@pytest.mark.data
@pytest.mark.parametrize("damage", ["corrupted", "truncated", "closed-early"])
def test_broken_downloads_are_refused_and_leave_nothing(shared_data, mirror, tmp_path, damage):
    good = (shared_data / "omniglot" / SMALL1).read_bytes()
    if damage == "corrupted":  # one byte flipped in the middle, same size
        body = bytearray(good)
        body[len(body) // 2] ^= 0xFF
        mirror.serve(f"/omniglot/{SMALL1}", bytes(body))
        expected = (
            r"fails its checksum: MD5 [0-9a-f]{32}, expected e704a628b5459e08445c13499850abc4"
        )
    elif damage == "truncated":  # a short file, served with its own (short) length
        mirror.serve(f"/omniglot/{SMALL1}", good[: len(good) // 2])
        expected = r"truncated: 659,511 bytes received, the official file has 1,319,022"
    else:  # the server announces the full length and closes the connection half-way
        mirror.serve(f"/omniglot/{SMALL1}", good[: len(good) // 2], announced=len(good))
        expected = r"truncated: the connection closed after 659,511 of 1,319,022 bytes"
    with pytest.raises(CorruptDataError, match=expected) as err:
        fetch("omniglot", tmp_path, files=[SMALL1], mirror=mirror.url, progress=False)
    assert f"{SMALL1} was not written" in str(err.value)
    assert leftovers(tmp_path) == []


def test_fetch_file_without_shared_data(mirror, tmp_path):
    body = b"memlearn test payload\n" * 100
    spec = OfficialFile(
        "mnist", "payload.gz", (), hashlib.md5(body, usedforsecurity=False).hexdigest(), len(body)
    )
    mirror.serve("/mnist/payload.gz", body)
    result = fetch_file(spec, tmp_path, mirror=mirror.url, progress=False)
    assert result.path.read_bytes() == body
    mirror.serve("/mnist/payload.gz", body[:-1] + b"?")
    (tmp_path / "payload.gz").unlink()
    with pytest.raises(CorruptDataError, match="fails its checksum"):
        fetch_file(spec, tmp_path, mirror=mirror.url, progress=False)
    assert leftovers(tmp_path) == []


def test_unreachable_file_and_bad_names(mirror, tmp_path):
    with pytest.raises(MemlearnError, match=r"(?s)could not download t10k-labels.*404"):
        fetch("mnist", tmp_path, files=["t10k-labels-idx1-ubyte.gz"], mirror=mirror.url)
    with pytest.raises(ValueError, match="allowed: omniglot, mnist"):
        fetch("cifar", tmp_path)
    with pytest.raises(ValueError, match="unknown omniglot file 'x.zip'; known: images_background"):
        fetch("omniglot", tmp_path, files=["x.zip"])
    assert leftovers(tmp_path) == []


def test_unwritable_root_is_a_clear_error(tmp_path, mirror):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(MemlearnError, match=r"cannot create .*pass --root DIR"):
        fetch("mnist", blocker, mirror=mirror.url)


@pytest.mark.data
def test_cli_fetch(shared_data, mirror, tmp_path):
    mirror.serve_tree(shared_data)
    runner = CliRunner()
    args = ["data", "fetch", "omniglot", "--file", SMALL1, "--mirror", mirror.url]
    ok = runner.invoke(app, [*args, "--root", str(tmp_path / "a"), "--no-progress"])
    assert ok.exit_code == 0, ok.output
    assert "downloaded" in ok.output and "MD5 matches" in ok.output
    again = runner.invoke(app, [*args, "--root", str(tmp_path / "a"), "--json"])
    report = json.loads(again.stdout)
    assert report["files"][0]["downloaded"] is False
    assert report["files"][0]["path"] == str(tmp_path / "a" / "omniglot" / SMALL1)
    mirror.serve(f"/omniglot/{SMALL1}", b"garbage")
    bad = runner.invoke(app, [*args, "--root", str(tmp_path / "b"), "--no-progress"])
    assert bad.exit_code == 2
    assert "error:" in bad.output and "truncated" in bad.output
    assert leftovers(tmp_path / "b") == []


def test_runs_without_checksum_are_verified_by_structure(mirror, tmp_path, make_runs):
    path, _ = make_runs(tmp_path / "src", n_runs=20, ways=20, as_zip=True)
    mirror.serve("/omniglot/all_runs.zip", path.read_bytes())
    dest = tmp_path / "dest"
    [result] = fetch("omniglot", dest, files=["all_runs.zip"], mirror=mirror.url, progress=False)
    assert result.downloaded and "20 runs" in result.verified
    short, _ = make_runs(tmp_path / "short", n_runs=19, ways=20, as_zip=True)
    mirror.serve("/omniglot/all_runs.zip", short.read_bytes())
    with pytest.raises(CorruptDataError, match="19 runs, expected 20"):
        fetch("omniglot", tmp_path / "d2", files=["all_runs.zip"], mirror=mirror.url)
    assert leftovers(tmp_path / "d2") == []


def test_offline_fetch_leaves_no_folder_and_says_what_to_do(tmp_path):
    # A closed port on loopback: the connection is refused at once, as offline.
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = tmp_path / "new" / "root"
    result = CliRunner().invoke(
        app,
        ["data", "fetch", "mnist", "--root", str(root), "--mirror", f"http://127.0.0.1:{port}"],
    )
    assert result.exit_code == 2
    assert "--mirror" in result.output and "MEMLEARN_DATA" in result.output
    assert not (tmp_path / "new").exists()


def test_partial_fetch_names_what_was_written(mirror, tmp_path):
    body = b"a small official file\n" * 10
    first = "train-images-idx3-ubyte.gz"
    spec = OfficialFile("mnist", first, (), hashlib.md5(body, usedforsecurity=False).hexdigest(), 1)
    mirror.serve(f"/mnist/{first}", body)
    import memlearn.data.fetch as fetch_module

    real = fetch_module.official_file
    fake = {first: spec}
    patched = lambda d, n: fake.get(n) or real(d, n)  # noqa: E731
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fetch_module, "official_file", patched)
        with pytest.raises(MemlearnError) as err:
            fetch("mnist", tmp_path, files=[first, "t10k-labels-idx1-ubyte.gz"], mirror=mirror.url)
    message = str(err.value)
    assert "nothing was written" not in message.lower()
    assert f"Written before this failure: {first}" in message
    assert (tmp_path / "mnist" / first).read_bytes() == body
