"""``memlearn data check``: present / missing / invalid, with counts."""

from __future__ import annotations

import json
import zipfile

import pytest
from typer.testing import CliRunner

from memlearn.cli.main import app
from memlearn.data.check import check_data, check_runs_zip
from memlearn.errors import CorruptDataError


def by_name(statuses):
    return {s.name: s for s in statuses}


@pytest.mark.data
def test_check_shared_data(shared_data):
    found = by_name(check_data(shared_data))
    bg = found["omniglot/images_background"]
    assert bg.state == "valid" and "content hash matches" in bg.detail
    assert bg.counts == {"alphabets": 30, "characters": 964, "images": 19280}
    assert found["omniglot/images_background_small1"].counts["characters"] == 136
    assert found["omniglot/images_background_small2"].counts["characters"] == 156
    assert "MD5 ok" in found["omniglot/images_background_small2"].detail
    assert found["omniglot/images_evaluation"].state == "missing"
    assert found["omniglot/all_runs"].state == "missing"
    assert found["mnist/train"].state == "valid" and found["mnist/train"].counts["images"] == 60000
    assert found["mnist/test"].counts["images"] == 10000
    result = CliRunner().invoke(app, ["data", "check", "--root", str(shared_data)])
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines() if line[:1] != " "}
    assert "valid" in lines["omniglot/images_background"]
    assert "missing" in lines["omniglot/images_evaluation"]


def test_check_fixture_root(tmp_path, make_image_set, make_runs):
    make_image_set(tmp_path, "images_evaluation", {"Angelic": 2, "ULOG": 1}, as_zip=True)
    path, _ = make_runs(tmp_path, n_runs=20, ways=20, as_zip=False)
    found = by_name(check_data(tmp_path))
    evaluation = found["omniglot/images_evaluation"]
    assert evaluation.state == "invalid"  # a layout-valid set, but not the official counts
    assert "2 alphabets / 3 characters, expected 20 / 659" in evaluation.detail
    runs = found["omniglot/all_runs"]
    assert runs.state == "valid" and runs.counts["runs"] == 20
    assert found["mnist/train"].state == "missing"
    (path / "run07" / "class_labels.txt").unlink()
    assert "run07/class_labels.txt is missing" in check_data(tmp_path)[4].detail
    result = CliRunner().invoke(app, ["data", "check", "--root", str(tmp_path), "--json"])
    assert result.exit_code == 1  # something present is invalid
    report = json.loads(result.output)
    states = {d["name"]: d["state"] for d in report["datasets"]}
    assert states["omniglot/all_runs"] == "invalid" and states["mnist/test"] == "missing"
    assert str(tmp_path / "omniglot") in report["searched"]


def test_check_runs_zip_structure(tmp_path, make_runs):
    path, _ = make_runs(tmp_path, n_runs=20, ways=20, as_zip=True, top_folder=True)
    with open(path, "rb") as handle:
        assert "20 runs" in check_runs_zip(handle, str(path))
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "short.zip", "w") as dst:
        for info in src.infolist():
            if not info.filename.startswith("all_runs/run20/"):
                dst.writestr(info, src.read(info))
    with (
        open(tmp_path / "short.zip", "rb") as handle,
        pytest.raises(CorruptDataError, match="19 runs, expected 20"),
    ):
        check_runs_zip(handle, "short.zip")


def _replace_member(path, member, data):
    """Rewrite zip ``path`` with ``member``'s bytes replaced (valid CRCs, different content)."""
    with zipfile.ZipFile(path) as src:
        items = [(i.filename, src.read(i)) for i in src.infolist()]
    with zipfile.ZipFile(path, "w") as dst:
        for name, body in items:
            dst.writestr(name, data if name == member else body)


def test_an_unreadable_png_makes_the_set_invalid(tmp_path, make_image_set):
    path = make_image_set(tmp_path, "images_background_small1", {"Latin": 1}, as_zip=True)
    found = by_name(check_data(tmp_path))["omniglot/images_background_small1"]
    assert "expected 5 / 136" in found.detail  # a small fixture: readable, wrong counts
    member = "images_background_small1/Latin/character01/0965_07.png"
    _replace_member(path, member, b"\x89PNG\r\n\x1a\n this is not an image")
    found = by_name(check_data(tmp_path))["omniglot/images_background_small1"]
    assert found.state == "invalid" and "0965_07.png: not a readable PNG" in found.detail


def test_an_unreadable_png_in_a_folder_is_found(tmp_path, make_image_set):
    folder = make_image_set(tmp_path, "images_background_small2", {"Latin": 1}, as_zip=False)
    png = next(folder.rglob("*_03.png"))
    png.write_bytes(png.read_bytes()[:60])  # truncated
    found = by_name(check_data(tmp_path))["omniglot/images_background_small2"]
    assert found.state == "invalid" and png.name in found.detail


def test_a_truncated_zip_marks_its_row_and_the_check_goes_on(tmp_path, make_image_set, make_runs):
    path = make_image_set(tmp_path, "images_evaluation", {"Angelic": 2}, as_zip=True)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    make_runs(tmp_path, n_runs=20, ways=20, as_zip=True)
    found = by_name(check_data(tmp_path))
    evaluation = found["omniglot/images_evaluation"]
    assert evaluation.state == "invalid" and evaluation.path == str(path)
    assert "zip" in evaluation.detail
    assert found["omniglot/all_runs"].state == "valid"  # later rows still checked
    result = CliRunner().invoke(app, ["data", "check", "--root", str(tmp_path)])
    assert result.exit_code == 1 and "Traceback" not in result.output


def test_nothing_present_exits_2_saying_what_to_do(tmp_path):
    result = CliRunner().invoke(app, ["data", "check", "--root", str(tmp_path)])
    assert result.exit_code == 2
    for words in ("memlearn data fetch", "--mirror", "MEMLEARN_DATA"):
        assert words in result.output
