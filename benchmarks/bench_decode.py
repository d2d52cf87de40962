"""JPEG decode to model size: Pillow draft() DCT scaling vs full decode + resize."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from _common import best_of, demo_folder, header, real_folder
from carmask.masks.images import load_image

SIZES = [(160, 240), (320, 480), (640, 960)]


def full_decode(path: Path, size: tuple[int, int]) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB").resize((size[1], size[0]), Image.BILINEAR))


def run(label: str, paths: list[Path]) -> None:
    for size in SIZES:
        ours = best_of(lambda: [load_image(p, size, 3) for p in paths]) / len(paths) * 1e3
        base = best_of(lambda: [full_decode(p, size) for p in paths]) / len(paths) * 1e3
        print(f"{label}: {len(paths)} photos to {size[0]}x{size[1]}: draft {ours:.1f} ms, "
              f"full decode+resize {base:.1f} ms, speed-up {base / ours:.1f}x")


def main() -> None:
    header("JPEG decode")
    run("demo", sorted((demo_folder() / "train").glob("*.jpg"))[:16])
    real = real_folder()
    if real is None:
        print("real: skipped (../shared/data/carvana-sample not found)")
    else:
        run("real", sorted((real / "train").glob("*.jpg"))[:16])


if __name__ == "__main__":
    main()
