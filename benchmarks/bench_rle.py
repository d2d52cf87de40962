"""RLE encode: carmask's word-skipping encoder vs the common Kaggle kernel encoder.

Both encode the same full-size masks (demo masks, and the real Carvana
masks when ../shared has them); the outputs are checked equal first.
"""

from __future__ import annotations

import numpy as np

from _common import best_of, demo_folder, header, real_folder
from baselines import kaggle_kernel_encode
from carmask.masks import rle
from carmask.masks.images import load_mask


def run(label: str, masks: list[np.ndarray]) -> None:
    as_uint8 = [m.astype(np.uint8) for m in masks]
    for m, u in zip(masks, as_uint8):
        assert rle.encode(m) == kaggle_kernel_encode(u)
    ours = best_of(lambda: [rle.encode(m) for m in masks]) / len(masks) * 1e3
    base = best_of(lambda: [kaggle_kernel_encode(u) for u in as_uint8]) / len(masks) * 1e3
    print(f"{label}: {len(masks)} masks {masks[0].shape[1]}x{masks[0].shape[0]}: "
          f"carmask {ours:.2f} ms/mask, kaggle kernel {base:.2f} ms/mask, speed-up {base / ours:.1f}x")


def main() -> None:
    header("RLE encode")
    run("demo", [load_mask(p) for p in sorted((demo_folder() / "train_masks").glob("*.gif"))])
    real = real_folder()
    if real is None:
        print("real: skipped (../shared/data/carvana-sample not found)")
    else:
        run("real", [load_mask(p) for p in sorted((real / "train_masks").glob("*.gif"))[:64]])


if __name__ == "__main__":
    main()
