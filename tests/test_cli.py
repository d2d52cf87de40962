"""carmask score: scores a good submission, refuses broken ones with a clear message."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from carmask.masks import rle
from carmask.cli import main


def masks_folder(tmp_path):
    folder = tmp_path / "masks"
    folder.mkdir()
    truth = {}
    for i in range(3):
        mask = np.zeros((8, 12), np.uint8)
        mask[2:6, i : i + 5] = 1
        Image.fromarray(mask, mode="L").convert("P").save(folder / f"{i:012x}_01_mask.gif")
        truth[f"{i:012x}_01.jpg"] = mask.astype(bool)
    return folder, truth


def test_score_good_submission_against_folder_and_csv(tmp_path, capsys):
    folder, truth = masks_folder(tmp_path)
    pred = {name: np.roll(m, 1, axis=1) for name, m in truth.items()}  # shifted by one column
    sub = tmp_path / "sub.csv"
    pd.DataFrame({"img": list(pred), "rle_mask": [rle.encode(m) for m in pred.values()]}).to_csv(sub, index=False)
    assert main(["score", str(sub), str(folder)]) == 0
    result = json.loads(capsys.readouterr().out)
    # 20 true pixels, 20 predicted, 16 shared: Dice 32/40 for every image
    assert result["dice_mean"] == pytest.approx(0.8) and result["n_images"] == 3
    truth_csv = tmp_path / "train_masks.csv"
    pd.DataFrame({"img": list(truth), "rle_mask": [rle.encode(m) for m in truth.values()]}).to_csv(truth_csv, index=False)
    assert main(["score", str(sub), str(truth_csv), "--size", "8x12"]) == 0
    assert json.loads(capsys.readouterr().out)["dice_mean"] == pytest.approx(0.8)


def test_score_rejects_broken_submission(tmp_path, capsys):
    folder, truth = masks_folder(tmp_path)
    names = list(truth)
    sub = tmp_path / "bad.csv"
    pd.DataFrame({"img": [names[0], names[0]], "rle_mask": ["1 5", "9 2 3 1"]}).to_csv(sub, index=False)
    assert main(["score", str(sub), str(folder)]) == 2
    err = capsys.readouterr().err
    assert "missing images (2)" in err and "duplicate images (1)" in err and "bad RLE" in err
