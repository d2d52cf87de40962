"""carmask cutout: the folder command's summary, exit status and errors."""

from __future__ import annotations

import pandas as pd

from carmask.cli import main

from .conftest import make_user_folder


def test_cutout_reports_failures_in_its_exit_status(tiny_model, tmp_path, capsys):
    make_user_folder(tmp_path / "photos")
    status = main(["cutout", "--model", str(tiny_model), str(tmp_path / "photos"), str(tmp_path / "out"),
                   "--trim", "0.05", "--soft-edge", "2", "--tta", "none", "--batch-size", "4"])
    captured = capsys.readouterr()
    assert status == 1
    assert "10 files: 8 cut out, 2 failed" in captured.out
    assert "failed: empty.jpg: empty file" in captured.err and "lot/notes.txt" in captured.err
    table = pd.read_csv(tmp_path / "out" / "photos.csv", keep_default_na=False)
    assert (table["status"] == "ok").sum() == 8


def test_cutout_of_good_photos_exits_zero(tiny_model, tmp_path, capsys):
    make_user_folder(tmp_path / "photos")
    (tmp_path / "photos" / "empty.jpg").unlink()
    (tmp_path / "photos" / "lot" / "notes.txt").unlink()
    assert main(["cutout", "--model", str(tiny_model), str(tmp_path / "photos"), str(tmp_path / "out")]) == 0
    assert "8 cut out, 0 failed" in capsys.readouterr().out


def test_cutout_errors_name_the_problem(tiny_model, tmp_path, capsys):
    make_user_folder(tmp_path / "photos")
    assert main(["cutout", "--model", str(tmp_path / "missing.keras"), str(tmp_path / "photos"), str(tmp_path / "o")]) == 2
    assert "missing.keras does not exist" in capsys.readouterr().err
    assert main(["cutout", "--model", str(tiny_model), str(tmp_path / "nope"), str(tmp_path / "o")]) == 2
    assert "nope does not exist" in capsys.readouterr().err
    assert main(["cutout", "--model", str(tiny_model), "--background", "nocolour", str(tmp_path / "photos"), str(tmp_path / "o")]) == 2
    assert "neither a colour nor an image" in capsys.readouterr().err
