"""Full-resolution validation and submission scoring.

Two paths give the same number on purpose: ``evaluate_model`` scores the
validation split's RLE shards (written by the very predict/encode rules that
make the submission), and ``score_submission`` scores any submission CSV
against ground truth. Both decode RLE and compare with the true masks at
full size with :func:`carmask.masks.dice.dice`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from carmask import files
from carmask.masks import rle
from carmask.masks.images import load_mask
from carmask.logs import Progress
from carmask.masks.dice import ceiling_dice, dice
from carmask.masks.probability_maps import read_precision, read_rate
from carmask.stages.submission import read_submission, validate_submission

log = logging.getLogger(__name__)


def per_image_dice(
    predictions: pd.DataFrame, truth: Callable[[str], np.ndarray], sizes: dict[str, tuple[int, int]]
) -> pd.DataFrame:
    """Dice of every (img, rle_mask) row against ``truth(img)``."""
    progress = Progress(len(predictions), "scored", log)
    scores = []
    for img, code in zip(predictions["img"], predictions["rle_mask"]):
        scores.append(dice(rle.decode(code, sizes[img]), truth(img)))
        progress.update()
    return pd.DataFrame({"img": predictions["img"].to_numpy(), "dice": scores})


def summarise(scores: pd.DataFrame) -> dict:
    """Mean/min Dice overall, per view and per car (img names <car>_<NN>.jpg)."""
    stem = scores["img"].str.replace(r"\.jpg$", "", regex=True)
    frame = scores.assign(car=stem.str.rsplit("_", n=1).str[0], view=stem.str.rsplit("_", n=1).str[1])
    return {
        "dice_mean": float(frame["dice"].mean()),
        "dice_min": float(frame["dice"].min()),
        "n_images": int(len(frame)),
        "dice_per_view": {k: float(v) for k, v in frame.groupby("view")["dice"].mean().items()},
        "dice_per_car": {k: float(v) for k, v in frame.groupby("car")["dice"].mean().items()},
    }


def evaluate_model(
    rle_paths: Sequence[str],
    val_path: str,
    cfgs: dict[str, dict],
    threshold: float,
    training_paths: Sequence[str],
    timing_paths: dict[str, Sequence[str]],
    out_json: str,
    weights: Sequence[float] | None = None,
    tuned_json: str | None = None,
) -> dict:
    """Score the validation RLE shards of a model, or of an ensemble of ``cfgs``' models, at full size.

    Writes ``out_json``: the headline (``dice_mean``, ``dice_min``) and
    everything behind it (per image, per view, per car, the resolution
    ceiling, training facts, inference speed, the threshold and how it was
    tuned), for the report, the choice of model and the submission message.
    An ensemble's ceiling is
    that of its largest input size, its training time and parameters the
    sums of its models', and its images/s the rate at which its models
    predict one photo each.
    """
    val = pd.read_parquet(val_path)
    preds = pd.concat([pd.read_parquet(p) for p in rle_paths], ignore_index=True)
    sizes = dict(zip(val["img"], zip(val["height"].tolist(), val["width"].tolist())))
    validate_submission(preds, val, source="validation RLE shards")
    masks = dict(zip(val["img"], val["mask_path"]))
    size = max(((int(c["input_height"]), int(c["input_width"])) for c in cfgs.values()), key=lambda s: s[0] * s[1])
    ceilings = []

    def truth(img: str) -> np.ndarray:
        mask = load_mask(masks[img])
        ceilings.append(ceiling_dice(mask, size, threshold))
        return mask

    scores = per_image_dice(preds, truth, sizes)
    result = summarise(scores)
    result["per_image"] = dict(zip(scores["img"], map(float, scores["dice"])))
    result["resolution_ceiling"] = float(np.mean(ceilings))
    result["input_size"] = list(size)
    result["threshold"] = threshold
    if tuned_json:
        result["threshold_tuning"] = json.loads(Path(tuned_json).read_text())
    result["precision"] = read_precision([p for paths in timing_paths.values() for p in paths], "the validation predictions")
    result.update(_how_made(cfgs, training_paths, timing_paths, weights))
    files.write_json(result, out_json)
    log.info("%s: val Dice %.5f (min %.5f), ceiling %.5f, threshold %s", result["architecture"], result["dice_mean"],
             result["dice_min"], result["resolution_ceiling"], threshold)
    return result


def _how_made(cfgs: dict[str, dict], training_paths: Sequence[str], timing_paths: dict[str, Sequence[str]],
              weights: Sequence[float] | None) -> dict:
    """The architecture, training facts and prediction speed of a model or ensemble (see :func:`evaluate_model`)."""
    trainings = [json.loads(Path(p).read_text()) for p in training_paths]
    rates = {name: prediction_rate(paths) for name, paths in timing_paths.items()}
    if len(cfgs) == 1:
        return {"architecture": next(iter(cfgs.values()))["architecture"], "training": trainings[0],
                "predict_images_per_s": next(iter(rates.values()))}
    weights = list(weights) if weights is not None else [1.0 / len(cfgs)] * len(cfgs)
    known = [r for r in rates.values() if r]
    return {
        "architecture": "ensemble of " + " + ".join(f"{w:.2f} {c['architecture']}" for w, c in zip(weights, cfgs.values())),
        "members": dict(zip(cfgs, weights)),
        "training": combined_training(dict(zip(cfgs, trainings))),
        "predict_images_per_s": round(1.0 / sum(1.0 / r for r in known), 2) if len(known) == len(rates) else None,
    }


def combined_training(trainings: dict[str, dict]) -> dict:
    """An ensemble's training facts: its models' time and parameters summed, and each model's own."""
    def total(key: str) -> int | None:
        values = [t.get("params", {}).get(key) for t in trainings.values()]
        return sum(values) if all(v is not None for v in values) else None

    return {
        "train_seconds": sum(float(t.get("train_seconds") or 0.0) for t in trainings.values()),
        "params": {"total": total("total"), "trainable": total("trainable")},
        "members": trainings,
    }


def prediction_rate(paths: Sequence[str]) -> float | None:
    """Images/s of the predict jobs, from their timing files."""
    rates = [read_rate(p) for p in paths]
    rates = [r for r in rates if r]
    return round(float(np.mean(rates)), 2) if rates else None


def _truth_from_csv(path: Path, sizes: dict[str, tuple[int, int]]) -> Callable[[str], np.ndarray]:
    table = pd.read_csv(path, dtype=str, keep_default_na=False).set_index("img")["rle_mask"]
    return lambda img: rle.decode(table[img], sizes[img])


def _mask_file(folder: Path, img: str) -> Path:
    stem = img[: -len(".jpg")] if img.endswith(".jpg") else img
    for name in (f"{stem}_mask.gif", f"{stem}.gif", f"{stem}_mask.png", f"{stem}.png"):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"no mask for {img} in {folder}")


def _mask_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:  # header only
        return img.height, img.width


def score_submission(submission: str | Path, truth: str | Path, size: tuple[int, int] = (1280, 1918)) -> dict:
    """Score a submission CSV against ``train_masks.csv``-style RLE or a mask folder.

    The submission must cover exactly the images of the ground truth. Image
    sizes come from the masks of a folder; an RLE CSV carries no sizes, so
    ``size`` (H, W) applies to all its images (Kaggle's photos are 1280x1918).
    """
    sub = read_submission(submission)
    truth = Path(truth)
    if truth.is_dir():
        names = sorted(p.name for p in truth.iterdir() if p.suffix in (".gif", ".png"))
        imgs = [n.replace("_mask", "").rsplit(".", 1)[0] + ".jpg" for n in names]
        mask_files = {img: _mask_file(truth, img) for img in imgs}
        sizes = {img: _mask_size(f) for img, f in mask_files.items()}
        truth_fn = lambda img: load_mask(mask_files[img])  # noqa: E731
    else:
        table = pd.read_csv(truth, dtype=str, keep_default_na=False)
        imgs = table["img"].tolist()
        sizes = {img: size for img in imgs}
        truth_fn = _truth_from_csv(truth, sizes)
    expected = pd.DataFrame({"img": imgs, "height": [sizes[i][0] for i in imgs], "width": [sizes[i][1] for i in imgs]})
    validate_submission(sub, expected, source=str(submission))
    scores = per_image_dice(sub, truth_fn, sizes)
    result = summarise(scores)
    result["per_image"] = dict(zip(scores["img"], map(float, scores["dice"])))
    return result
