"""What a person looks at: the model table, per-view Dice, error galleries.

Galleries draw at full resolution, where the errors are (a car outline is
wrong by a few pixels, not by a model pixel), then shrink for display; error
regions are widened by a few pixels first so they stay visible.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from carmask import files
from carmask.masks import rle
from carmask.masks.images import load_image, load_mask

MISSED = (230, 30, 30)  # car the model called background
EXTRA = (30, 120, 255)  # background the model called car
OUTLINE = (40, 220, 60)  # predicted car outline


def compare_models(metrics_paths: dict[str, str], out_csv: str) -> pd.DataFrame:
    """One row per model: architecture, size, parameters, time, Dice, ceiling, speed."""
    rows = []
    for name, path in metrics_paths.items():
        m = json.loads(Path(path).read_text())
        t = m.get("training", {})
        rows.append(
            {
                "model": name,
                "architecture": m["architecture"],
                "input_size": "x".join(map(str, m["input_size"])),
                "parameters": t.get("params", {}).get("total"),
                "trainable_parameters": t.get("params", {}).get("trainable"),
                "training_seconds": t.get("train_seconds"),
                "dice_mean": round(m["dice_mean"], 5),
                "dice_min": round(m["dice_min"], 5),
                "resolution_ceiling": round(m["resolution_ceiling"], 5),
                "inference_images_per_s": m.get("predict_images_per_s"),
                "val_images": m["n_images"],
            }
        )
    table = pd.DataFrame(rows).sort_values("dice_mean", ascending=False)
    with files.atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    return table


def plot_dice_per_view(metrics_path: str, out_png: str) -> None:
    """Bar chart of validation Dice per view (01 front ... 16), with the ceiling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = json.loads(Path(metrics_path).read_text())
    views = sorted(m["dice_per_view"])
    values = [m["dice_per_view"][v] for v in views]
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.bar(views, values, color="#4477aa")
    ax.axhline(m["resolution_ceiling"], color="#cc3311", linestyle="--", label=f"resolution ceiling {m['resolution_ceiling']:.4f}")
    low = min(values + [m["resolution_ceiling"]])
    ax.set_ylim(max(0.0, low - (1 - low) * 0.5 - 0.001), 1.0)
    ax.set_xlabel("view")
    ax.set_ylabel("mean Dice (full size)")
    ax.set_title(f"{m['architecture']}: validation Dice per view (mean {m['dice_mean']:.4f})")
    ax.legend(loc="lower right")
    fig.tight_layout()
    with files.atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def _widen(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary dilation by a (2r+1) square, done with array shifts."""
    out = mask.copy()
    for _ in range(radius):
        grown = out.copy()
        grown[1:] |= out[:-1]
        grown[:-1] |= out[1:]
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :-1] |= grown[:, 1:].copy()
        out = grown
    return out


def overlay(photo: np.ndarray, pred: np.ndarray, truth: np.ndarray, widen: int = 2) -> np.ndarray:
    """Photo with missed car in red, extra car in blue and the predicted outline in green."""
    out = photo.astype(np.float32)
    for region, colour in ((truth & ~pred, MISSED), (pred & ~truth, EXTRA)):
        region = _widen(region, widen)
        out[region] = 0.35 * out[region] + 0.65 * np.array(colour, np.float32)
    outline = _widen(pred & _widen(~pred, 1), 1)  # car pixels touching background, thickened
    out[outline] = OUTLINE
    return out.astype(np.uint8)


def _tile(item: dict, code: str, dice: float, width: int) -> Image.Image:
    photo = load_image(item["image_path"])
    truth = load_mask(item["mask_path"])
    pred = rle.decode(code, truth.shape)
    img = Image.fromarray(overlay(photo, pred, truth))
    img = img.resize((width, round(width * img.height / img.width)), Image.BOX)
    draw = ImageDraw.Draw(img)
    draw.rectangle((0, 0, width, 22), fill=(0, 0, 0))
    draw.text((6, 5), f"{item['img']}  Dice {dice:.5f}", fill=(255, 255, 255))
    return img


def gallery(
    rle_paths: Sequence[str], val_path: str, metrics_path: str, out_best: str, out_worst: str, n: int, tile_width: int = 640
) -> None:
    """Sheets of the best and worst ``n`` validation images, errors coloured."""
    items = {r["img"]: r for r in pd.read_parquet(val_path).to_dict("records")}
    codes = pd.concat([pd.read_parquet(p) for p in rle_paths]).set_index("img")["rle_mask"]
    scores = pd.Series(json.loads(Path(metrics_path).read_text())["per_image"]).sort_values(kind="stable")
    for names, out in ((scores.index[::-1][:n], out_best), (scores.index[:n], out_worst)):
        tiles = [_tile(items[name], codes[name], scores[name], tile_width) for name in names]
        cols = min(2, len(tiles))
        rows = -(-len(tiles) // cols)
        height = tiles[0].height
        sheet = Image.new("RGB", (cols * tile_width, rows * height + 26), (255, 255, 255))
        legend = "red: car missed   blue: background called car   green: predicted outline"
        ImageDraw.Draw(sheet).text((6, 7), legend, fill=(0, 0, 0))
        for i, tile in enumerate(tiles):
            sheet.paste(tile, ((i % cols) * tile_width, 26 + (i // cols) * height))
        with files.atomic_path(out) as tmp:
            sheet.save(tmp, format="PNG", optimize=True)
