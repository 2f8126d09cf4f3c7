import os
import stat
from pathlib import Path

import pytest

from memlearn.io import atomic_write, current_umask, default_mode


def test_atomic_write_replaces_only_on_success(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind
    with atomic_write(target) as handle:
        handle.write("new")
    assert target.read_text() == "new"


def test_atomic_write_rejects_append_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="mode"), atomic_write(tmp_path / "x", mode="a"):
        pass


@pytest.fixture(params=[0o022, 0o077, 0o002])
def umask(request: pytest.FixtureRequest):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_write_gives_the_umask_permissions(tmp_path: Path, umask: int) -> None:
    assert current_umask() == umask
    target = tmp_path / "sub" / "out.bin"
    with atomic_write(target, "wb") as handle:
        handle.write(b"x")
    assert _mode(target) == 0o666 & ~umask
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    assert _mode(target) == _mode(plain)  # as a plain open would
    assert default_mode(directory=True) == 0o777 & ~umask


def test_writers_of_every_layer_use_the_umask(tmp_path: Path, umask: int) -> None:
    from memlearn.devices.preset import load_preset, save_preset
    from memlearn.experiments.provenance import write_json

    json_path = write_json(tmp_path / "run.json", {"a": 1})
    save_preset(load_preset("hfo2-mlc"), tmp_path / "p.toml")
    for path in (json_path, tmp_path / "p.toml"):
        assert _mode(path) == 0o666 & ~umask, path


def test_reproduce_output_folder_gets_the_umask_permissions(tmp_path: Path, umask: int) -> None:
    from memlearn.experiments.reproduce import staging_dir

    out = tmp_path / "results"
    with staging_dir(out) as stage:
        (stage / "x.json").write_text("{}")
    assert _mode(out) == 0o777 & ~umask
