"""Real cars made to look like users' photos: full-size Dice through ``carmask cutout``, and its speed on 12-megapixel photos.

Takes a finished real-photo run (``--run``, with ``results/models/<m>/card.json``
and ``results/split/val.parquet``) and a sample of its validation photos
(``--views``: the views kept per car). Each photo and its true mask are
transformed the same way into a variant a user might have:

- ``kaggle``: as is (1918x1280 JPEG);
- ``crop 4:3`` / ``crop 1:1``: the centre re-cropped to 4:3 (1707x1280) or to a square (1280x1280);
- ``12 MP 4:3``: the 4:3 crop rescaled to 4032x3024; ``small``: the photo rescaled to 1024x683;
- ``exif``: stored rotated by 90 degrees with an EXIF orientation tag;
- ``png``: re-saved as PNG; ``gray``: re-saved as a grayscale JPEG;
- ``upside down`` and ``wall only`` (the top fifth of the photo, stretched): photos unlike the
  validation photos, to see whether the flag finds them.

The folder of each variant goes through :func:`carmask.photos.batch.cut_out_photos`
(the card's model, views, threshold and refinement), once per ``--aspect``
for the variants that are not 3:2. Masks are scored at full size against
the transformed truth (resized masks: area-averaged and cut at one half,
so their edge stays sub-pixel exact). Photos/s is the wall time of the
whole batch (read, fit, predict, upsample, refine, write the three files).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from _common import OtherLoad, header, quiet_tensorflow, wait_for_idle

quiet_tensorflow()

from carmask.masks.dice import dice as mask_dice  # noqa: E402
from carmask.masks.images import load_mask  # noqa: E402
from carmask.photos.batch import Options, cut_out_photos  # noqa: E402
from carmask.photos.card import load_card  # noqa: E402


def crop(img: Image.Image, ratio: float) -> Image.Image:
    """The centre of ``img`` at width/height ``ratio``."""
    width = round(img.height * ratio)
    left = (img.width - width) // 2
    return img.crop((left, 0, left + width, img.height))


def resized_truth(mask: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A bool mask resized to ``size`` (W, H) by area/bilinear and cut at one half."""
    soft = Image.fromarray(np.asarray(mask, dtype=np.uint8) * 255, mode="L").resize(size, Image.BILINEAR, reducing_gap=None)
    return Image.fromarray(np.asarray(soft) >= 128)


VARIANTS = {
    "kaggle": (lambda p: p, lambda m: m, "jpg"),
    "crop 4:3": (lambda p: crop(p, 4 / 3), lambda m: crop(m, 4 / 3), "jpg"),
    "crop 1:1": (lambda p: crop(p, 1.0), lambda m: crop(m, 1.0), "jpg"),
    "12 MP 4:3": (lambda p: crop(p, 4 / 3).resize((4032, 3024), Image.BICUBIC),
                  lambda m: resized_truth(crop(m, 4 / 3), (4032, 3024)), "jpg"),
    "small": (lambda p: p.resize((1024, 683), Image.BICUBIC), lambda m: resized_truth(m, (1024, 683)), "jpg"),
    "exif": (lambda p: p, lambda m: m, "exif"),
    "png": (lambda p: p, lambda m: m, "png"),
    "gray": (lambda p: p.convert("L"), lambda m: m, "jpg"),
    # Unlike the studio photos the model knows, for the flag: the car upside
    # down, and the studio's wall alone (the top fifth, widened to 3:2).
    "upside down": (lambda p: p.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
                    lambda m: m.transpose(Image.Transpose.FLIP_TOP_BOTTOM), "jpg"),
    "wall only": (lambda p: p.crop((0, 0, p.width, p.height // 5)).resize(p.size, Image.BICUBIC),
                  lambda m: m.crop((0, 0, m.width, m.height // 5)).resize(m.size, Image.NEAREST), "jpg"),
}
NOT_3_2 = {"crop 4:3", "crop 1:1", "12 MP 4:3"}


def make_variant(name: str, val: pd.DataFrame, folder: Path) -> dict[str, np.ndarray]:
    """Write the variant's photos into ``folder``; return each photo's true mask."""
    to_photo, to_mask, kind = VARIANTS[name]
    truth = {}
    for row in val.itertuples():
        photo = to_photo(Image.open(row.image_path))
        stem = Path(row.img).stem
        if kind == "exif":
            stored = photo.transpose(Image.Transpose.ROTATE_270)  # shown rotated back by orientation 8
            exif = stored.getexif()
            exif[0x0112] = 8
            stored.save(folder / f"{stem}.jpg", quality=95, exif=exif)
        elif kind == "png":
            photo.save(folder / f"{stem}.png")
        else:
            photo.save(folder / f"{stem}.jpg", quality=95)
        truth[stem] = np.asarray(to_mask(Image.fromarray(load_mask(row.mask_path))), dtype=bool)
    return truth


def run_variant(card, name: str, aspect: str, val: pd.DataFrame, work: Path, threads: int) -> tuple[dict, pd.DataFrame]:
    photos, out = work / "photos", work / "out"
    photos.mkdir(parents=True)
    truth = make_variant(name, val, photos)
    listing = sorted(p.name for p in photos.iterdir())
    with OtherLoad() as load:
        start = time.perf_counter()
        table = cut_out_photos(card, photos, out, listing, Options(aspect=aspect), work / "journal.jsonl", threads)
        seconds = time.perf_counter() - start
    dice = []
    for row in table.itertuples():
        stem = Path(row.photo).stem
        mask = np.asarray(Image.open(out / "masks" / f"{stem}.png")) > 0
        dice.append(mask_dice(mask, truth[stem]))  # Kaggle's: both empty is 1
    sizes = {f"{r.width}x{r.height}" for r in table.itertuples()}
    table = table.assign(variant=name, aspect=aspect, dice=dice)
    return {"variant": name, "aspect": aspect if name in NOT_3_2 else "", "photos": len(table), "size": ",".join(sorted(sizes)),
            "dice_mean": round(float(np.mean(dice)), 5), "dice_min": round(float(np.min(dice)), 4),
            "flagged": int(table["flagged"].sum()), "photos_per_s": round(len(table) / seconds, 2),
            "other_load": round(load.share, 2)}, table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="finished workflow directory (results/ with a card.json)")
    parser.add_argument("--views", default="01,05,09,13", help="views kept per validation car")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="which variants")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=Path, help="also write every photo's row of every variant here (CSV)")
    args = parser.parse_args()
    run = Path(args.run).resolve()
    card = load_card(run / "results")
    val = pd.read_parquet(run / "results" / "split" / "val.parquet")
    val = val[val["view"].isin([int(v) for v in args.views.split(",")])]
    for column in ("image_path", "mask_path"):
        val[column] = [str(run / p) for p in val[column]]
    header(f"user photos: {len(val)} validation photos of {val['car'].nunique()} cars, model {card.model_path}, "
           f"tta {card.prediction.tta}, refine {card.refine}, {card.prediction.precision}")
    wait_for_idle()
    rows, tables = [], []
    for name in args.variants.split(","):
        for aspect in ("pad", "squeeze") if name in NOT_3_2 else ("pad",):
            with tempfile.TemporaryDirectory() as tmp:
                row, table = run_variant(card, name, aspect, val, Path(tmp), args.threads)
            rows.append(row)
            tables.append(table)
            print(row, flush=True)
    print(pd.DataFrame(rows).to_string(index=False))
    if args.rows:
        pd.concat(tables).to_csv(args.rows, index=False)


if __name__ == "__main__":
    main()
