"""A synthetic Carvana-like dataset in Kaggle's exact folder layout.

Why it exists: the pipeline must run end to end (and in CI) without the 25 GB
Kaggle download, so this module writes a small stand-in that every stage
reads exactly as it reads the real thing::

    out_dir/train/<car>_<NN>.jpg             RGB JPEG photos, width x height
    out_dir/train_masks/<car>_<NN>_mask.gif  palette GIF, values {0, 1}
    out_dir/test/<car>_<NN>.jpg
    out_dir/train_masks.csv                  img,rle_mask (carmask.masks.rle)
    out_dir/sample_submission.csv            img,rle_mask with "1 1"
    out_dir/metadata.csv                     id,year,make,model,trim1,trim2

The photos imitate Carvana's rotating studio, because that is what the models
learn from: a fixed camera, a turntable, a light-grey wall meeting a floor at a
soft horizon, and a car seen from ``views`` angles (view ``k`` at
``2*pi*(k-1)/views``: 01 front, then round the car). Each car is a small
low-poly 3-D model (a lofted body profile, a cabin, four wheels, two mirrors)
projected with a perspective camera and painted back to front, so its
silhouette really changes with the angle (long profile at the side, narrow at
front and back). What breaks naive background removal in the real data is
copied on purpose: about a third of the cars are white or silver, paint
reflects the wall above a "horizon" line on the doors and the floor below it,
near-white specular streaks sit on the shoulders, hood, roof and glass, a
soft shadow lies under the car, and sensor noise plus JPEG remove exact pixel
values. The mask is the exact union of the projected car faces (body, cabin,
wheels, mirrors; never the shadow) and the photo's car pixels are composited
through that same mask, so mask and photo always agree.

Speed: every shape is a Pillow polygon at full resolution, the backdrop is
built once per car from a 1-pixel gradient column and vignette row stretched
by Pillow, only the small shadow layer is blurred (at 1/8 size), noise is a
crop of one pre-drawn noise image, and the per-view compositing touches only
the car's bounding box. The default dataset (12 cars x 16 views at 1918x1280,
192 photos and 128 masks) takes about 12 s of CPU on one core; JPEG and GIF
encoding are about a third of it.

Determinism: every random choice comes from numpy generators spawned from
one ``SeedSequence(seed)`` (one stream per car and per view), and Pillow's
JPEG/GIF encoders are deterministic, so a rerun with the same arguments
writes byte-identical files.
Every file is written through :func:`carmask.files.atomic_path` and the CSVs come
last, so a killed run never leaves a half file under a final name, nor a CSV
that lists photos which do not exist.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from carmask.demo.car import OTHER_PAINTS, PALE_PAINTS, Car, make_car
from carmask.demo.shapes import Colour
from carmask.demo.studio import make_studio, noise_image, render_view
from carmask.files import atomic_path, write_text
from carmask.masks import rle

__all__ = ["generate"]


def _car_ids(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct 12-hex-digit ids, like Kaggle's ``00087a6bd4dc``."""
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < n:
        car = f"{int(rng.integers(0, 2**48)):012x}"
        if car not in seen:
            seen.add(car)
            ids.append(car)
    return ids

def _save_mask(mask: Image.Image, path: Path) -> None:
    """Write the mask as Kaggle does: a palette GIF with indices 0/1."""
    with atomic_path(path) as tmp:
        mask.save(tmp, format="GIF")

def _csv_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """CSV text with ``\\n`` line ends (stable bytes on every platform)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()

def _deal_paints(rng: np.random.Generator, n_cars: int) -> list[Colour]:
    """One paint per car: at least ~30% white or silver (the hard cases), spread at random.

    The palettes are dealt in shuffled order, so colours vary from car to car.
    """
    n_pale = math.ceil(0.3 * n_cars)
    pale = np.zeros(n_cars, dtype=bool)
    pale[rng.permutation(n_cars)[:n_pale]] = True
    pale_deck = rng.permutation(len(PALE_PAINTS))
    other_deck = rng.permutation(len(OTHER_PAINTS))
    paints: list[Colour] = []
    for i in range(n_cars):
        if pale[i]:
            paints.append(PALE_PAINTS[pale_deck[int(pale[:i].sum()) % len(PALE_PAINTS)]])
        else:
            paints.append(OTHER_PAINTS[other_deck[int((~pale[:i]).sum()) % len(OTHER_PAINTS)]])
    return paints


def _photograph(
    car_id: str, paint: Colour, seq: np.random.SeedSequence, views: int, size: tuple[int, int],
    noise: Image.Image, out: Path, is_train: bool, jpeg_quality: int,
) -> tuple[Car, list[tuple[str, str]]]:
    """Make one car and write its ``views`` photos (and, for training, masks); returns it and (photo, mask RLE) rows."""
    view_seqs = seq.spawn(views + 1)
    car_rng = np.random.default_rng(view_seqs[0])
    car = make_car(car_rng, car_id, paint)
    studio = make_studio(car_rng, size[0], size[1], car.length, car.belt, noise)
    folder = out / ("train" if is_train else "test")
    rows = []
    for k in range(1, views + 1):
        photo, mask = render_view(car, studio, 2 * math.pi * (k - 1) / views, np.random.default_rng(view_seqs[k]), noise)
        name = f"{car_id}_{k:02d}"
        with atomic_path(folder / f"{name}.jpg") as tmp:
            photo.save(tmp, format="JPEG", quality=jpeg_quality)
        if is_train:
            _save_mask(mask, out / "train_masks" / f"{name}_mask.gif")
        rows.append((f"{name}.jpg", rle.encode(np.asarray(mask)) if is_train else ""))
    return car, rows


def generate(
    out_dir: str | os.PathLike[str],
    n_train_cars: int = 8,
    n_test_cars: int = 4,
    views: int = 16,
    width: int = 1918,
    height: int = 1280,
    seed: int = 0,
    jpeg_quality: int = 90,
) -> None:
    """Write a synthetic Carvana dataset in Kaggle's layout under ``out_dir``.

    ``n_train_cars`` cars get photos in ``train/``, masks in ``train_masks/``
    and rows in ``train_masks.csv``; ``n_test_cars`` other cars get photos in
    ``test/`` and rows in ``sample_submission.csv``; all of them get a row in
    ``metadata.csv``. Each car is photographed from ``views`` angles (view
    ``k`` at ``2*pi*(k-1)/views``, 01 = front) as ``width`` x ``height`` JPEGs
    of quality ``jpeg_quality``. The same arguments always give byte-identical
    files (``seed`` may be any int; negative ones are taken modulo 2**63);
    existing files of the same names are replaced.
    """
    if n_train_cars < 0 or n_test_cars < 0:
        raise ValueError("car counts must be >= 0")
    if not 1 <= views <= 99:
        raise ValueError(f"views must be in 1..99 (two-digit names), got {views}")
    if width < 16 or height < 16:
        raise ValueError(f"image size {width}x{height} is too small (min 16x16)")
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")
    out = Path(out_dir)
    base_seed = int(seed) % 2**63  # SeedSequence takes non-negative entropy only
    n_cars = n_train_cars + n_test_cars

    # Independent streams per car and per view (SeedSequence.spawn), so no
    # two cars share correlated draws.
    master_seq, cars_seq = np.random.SeedSequence(base_seed).spawn(2)
    master = np.random.default_rng(master_seq)
    ids = _car_ids(master, n_cars)
    paints = _deal_paints(master, n_cars)
    noise = noise_image(master, width, height)
    car_seqs = cars_seq.spawn(n_cars)

    mask_rows: list[tuple[str, str]] = []
    test_rows: list[tuple[str, str]] = []
    meta_rows: list[list[str]] = []
    for i, car_id in enumerate(ids):
        is_train = i < n_train_cars
        car, names = _photograph(car_id, paints[i], car_seqs[i], views, (width, height), noise, out, is_train, jpeg_quality)
        if is_train:
            mask_rows += names
        else:
            test_rows += [(img, "1 1") for img, _ in names]
        meta_rows.append([car.metadata[c] for c in ("id", "year", "make", "model", "trim1", "trim2")])

    (out / "train").mkdir(parents=True, exist_ok=True)
    (out / "test").mkdir(parents=True, exist_ok=True)
    (out / "train_masks").mkdir(parents=True, exist_ok=True)
    write_text(_csv_text(("id", "year", "make", "model", "trim1", "trim2"), sorted(meta_rows)), out / "metadata.csv")
    write_text(_csv_text(("img", "rle_mask"), sorted(test_rows)), out / "sample_submission.csv")
    write_text(_csv_text(("img", "rle_mask"), sorted(mask_rows)), out / "train_masks.csv")
