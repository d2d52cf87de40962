"""The encode stage per core: read a predictions shard, upsample, threshold, RLE, write.

Predictions are the true masks shrunk (as uint8 probabilities) to the model
sizes of config.yaml and config/real-80.yaml, and to 320x480, so the work per
image is exactly what a real shard of such a model costs.
"ragged" adds noise of +-120 to every probability within 3 cells of the
outline, so the masks' edges cross the threshold back and forth, as a model
that has not learnt a photo's outline draws it: many more outline blocks to
interpolate and many more runs, and still no slower path to fall back to.
Compared in the same run: the same stage drawing every full-size mask and
scanning it (``rle.encode``), and the baseline, drawing it and encoding it
with the Kaggle kernel encoder; all three write the same RLE (asserted).
Projects the 100,064-image test set on this machine's cores.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from _common import best_of_interleaved, default_model, demo_folder, header, load_config, real_folder
from baselines import kaggle_kernel_encode
from carmask import files
from carmask.masks import rle
from carmask.masks.images import downscale_mask, load_mask
from carmask.masks.probability_maps import PREDICTIONS_SCHEMA, read_probabilities
from carmask.masks.upsample import mean_mask
from carmask.stages import encode

N_TEST = 100_064


def roughen(small: np.ndarray, rng: np.random.Generator, band: int = 3) -> np.ndarray:
    """``small`` with noise of +-120 on the cells within ``band`` cells of the outline."""
    padded = np.pad(small > 127, band, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (2 * band + 1, 2 * band + 1))
    near = windows.any(axis=(2, 3)) & ~windows.all(axis=(2, 3))
    noise = rng.integers(-120, 121, size=small.shape)
    return np.where(near, np.clip(small.astype(np.int64) + noise, 0, 255), small).astype(np.uint8)


def make_shard(masks: list[Path], size: tuple[int, int], copies: int, tmp: Path,
               ragged: bool = False) -> tuple[Path, Path]:
    names, probs, items = [], [], []
    rng = np.random.default_rng(0)
    for path in masks:
        truth = load_mask(path)
        small = downscale_mask(truth, size)
        if ragged:
            small = roughen(small, rng)
        for c in range(copies):
            name = f"{path.stem}_{c}.jpg"
            names.append(name)
            probs.append(small.tobytes())
            items.append({"img": name, "height": truth.shape[0], "width": truth.shape[1]})
    pred = tmp / "pred.parquet"
    table = pa.table([names, [size[0]] * len(names), [size[1]] * len(names), probs], schema=PREDICTIONS_SCHEMA)
    pq.write_table(table, pred, compression="zstd")
    items_path = tmp / "items.parquet"
    files.write_parquet(pd.DataFrame(items), items_path)
    return pred, items_path


def mask_then_encode(pred: Path, items_path: Path, out: Path, threshold: float,
                     encoder: Callable[[np.ndarray], str]) -> None:
    """The stage drawing every full-size mask (``mean_mask``), then scanning it with ``encoder``."""
    items = pd.read_parquet(items_path)
    sizes = dict(zip(items["img"], zip(items["height"], items["width"])))
    rows = [(img, encoder(mean_mask([p], [1.0], sizes[img], threshold))) for img, p in read_probabilities(pred)]
    pd.DataFrame(rows, columns=["img", "rle_mask"]).to_parquet(out)


def run(label: str, masks: list[Path], size: tuple[int, int], ragged: bool = False) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pred, items = make_shard(masks, size, copies=max(1, 256 // len(masks)), tmp=tmp, ragged=ragged)
        n = pq.ParquetFile(pred).metadata.num_rows
        per_image_kb = pred.stat().st_size / n / 1024
        ours, drawn, base = best_of_interleaved([
            lambda: encode.encode_shard([str(pred)], [1.0], str(items), str(tmp / "rle.parquet"), 0.5),
            lambda: mask_then_encode(pred, items, tmp / "drawn.parquet", 0.5, rle.encode),
            lambda: mask_then_encode(pred, items, tmp / "base.parquet", 0.5, lambda m: kaggle_kernel_encode(m.astype(np.uint8))),
        ], repeat=5)
        a = pd.read_parquet(tmp / "rle.parquet")["rle_mask"].tolist()
        assert a == pd.read_parquet(tmp / "drawn.parquet")["rle_mask"].tolist()
        assert a == pd.read_parquet(tmp / "base.parquet")["rle_mask"].tolist()
        cores = os.cpu_count() or 1
        runs = np.mean([len(code.split()) // 2 for code in a])
        print(f"{label}{' ragged' if ragged else ''}: {n} masks ({runs:.0f} runs each) from {size[0]}x{size[1]} predictions ({per_image_kb:.1f} KB/image on disk): "
              f"{n / ours:.0f} masks/s per core (every mask drawn and scanned {n / drawn:.0f}/s, {drawn / ours:.2f}x; "
              f"baseline: drawn, then the Kaggle kernel encoder {n / base:.0f}/s, {base / ours:.2f}x); "
              f"{N_TEST:,} test images on {cores} cores: {N_TEST / (n / ours) / cores / 60:.1f} min")


def model_size(*layers: str) -> tuple[int, int]:
    """The (height, width) at which the submission model of config.yaml with ``layers`` predicts."""
    _, block = default_model(load_config(layers))
    return block["input_height"], block["input_width"]


def main() -> None:
    header("encode stage (one core)")
    sizes = sorted({model_size(), model_size("config/real-80.yaml"), (320, 480)})
    demo_masks = sorted((demo_folder() / "train_masks").glob("*.gif"))
    for size in sizes:
        run("demo", demo_masks, size)
    real = real_folder()
    if real is None:
        print("real: skipped (../shared/data/carvana-sample not found)")
    else:
        for size in sizes:
            run("real", sorted((real / "train_masks").glob("*.gif"))[:64], size)
            run("real", sorted((real / "train_masks").glob("*.gif"))[:64], size, ragged=True)


if __name__ == "__main__":
    main()
