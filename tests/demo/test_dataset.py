"""Tests for carmask.demo: the synthetic dataset in Kaggle's Carvana layout."""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from carmask.demo import car as demo_car
from carmask.demo import dataset, shapes
from carmask.masks import rle

SMALL = dict(n_train_cars=2, n_test_cars=1, views=4, width=192, height=128)
NAME = re.compile(r"^([0-9a-f]{12})_(\d{2})\.jpg$")


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def gif_mask(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        assert img.format == "GIF" and img.mode == "P"
        return np.asarray(img)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    dataset.generate(out, seed=0, **SMALL)
    return out


def test_layout_and_names(small: Path) -> None:
    assert sorted(p.name for p in small.iterdir()) == [
        "metadata.csv", "sample_submission.csv", "test", "train", "train_masks", "train_masks.csv",
    ]
    train = sorted(p.name for p in (small / "train").iterdir())
    test = sorted(p.name for p in (small / "test").iterdir())
    masks = sorted(p.name for p in (small / "train_masks").iterdir())
    assert len(train) == 2 * 4 and len(test) == 1 * 4
    for name in train + test:
        assert NAME.match(name), name
    train_cars = {NAME.match(n).group(1) for n in train}
    test_cars = {NAME.match(n).group(1) for n in test}
    assert len(train_cars) == 2 and len(test_cars) == 1 and not train_cars & test_cars
    for car in train_cars | test_cars:
        folder = "train" if car in train_cars else "test"
        assert sorted(p.name for p in (small / folder).glob(f"{car}_*")) == [f"{car}_{k:02d}.jpg" for k in range(1, 5)]
    assert masks == sorted(n.replace(".jpg", "_mask.gif") for n in train)
    assert not [p for p in small.rglob(".tmp-*")]


def test_image_sizes_and_modes(small: Path) -> None:
    for path in list((small / "train").iterdir()) + list((small / "test").iterdir()):
        with Image.open(path) as img:
            assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (192, 128))
    for path in (small / "train_masks").iterdir():
        with Image.open(path) as img:
            assert (img.format, img.mode, img.size) == ("GIF", "P", (192, 128))
            values = np.asarray(img)
        assert set(np.unique(values).tolist()) == {0, 1}  # non-empty, not full, Kaggle's indices
        assert 0.02 < values.mean() < 0.6


def test_train_masks_csv_decodes_to_each_gif(small: Path) -> None:
    rows = read_csv(small / "train_masks.csv")
    assert rows[0] == ["img", "rle_mask"]
    imgs = [r[0] for r in rows[1:]]
    assert imgs == sorted(imgs) == sorted(p.name for p in (small / "train").iterdir())
    for img, code in rows[1:]:
        mask = gif_mask(small / "train_masks" / img.replace(".jpg", "_mask.gif"))
        np.testing.assert_array_equal(rle.decode(code, mask.shape), mask.astype(bool))


def test_sample_submission_lists_exactly_the_test_images(small: Path) -> None:
    rows = read_csv(small / "sample_submission.csv")
    assert rows[0] == ["img", "rle_mask"]
    imgs = [r[0] for r in rows[1:]]
    assert imgs == sorted(imgs) == sorted(p.name for p in (small / "test").iterdir())
    assert {r[1] for r in rows[1:]} == {"1 1"}


def test_metadata_covers_every_car(small: Path) -> None:
    rows = read_csv(small / "metadata.csv")
    assert rows[0] == ["id", "year", "make", "model", "trim1", "trim2"]
    cars = {NAME.match(p.name).group(1) for p in small.rglob("*.jpg")}
    assert sorted(r[0] for r in rows[1:]) == sorted(cars)
    for row in rows[1:]:
        assert 2000 <= int(row[1]) <= 2020 and row[2] and row[3] and row[4]


def test_same_seed_same_bytes_other_seed_differs(small: Path, tmp_path: Path) -> None:
    again, other = tmp_path / "again", tmp_path / "other"
    dataset.generate(again, seed=0, **SMALL)
    dataset.generate(other, seed=1, **SMALL)
    assert all_files(again) == all_files(small)
    other_files = all_files(other)
    assert not set(other_files) & {k for k in all_files(small) if k.endswith((".jpg", ".gif"))}
    assert other_files["train_masks.csv"] != all_files(small)["train_masks.csv"]


def test_silhouette_changes_with_view(tmp_path: Path) -> None:
    dataset.generate(tmp_path, n_train_cars=1, n_test_cars=0, views=16, width=192, height=128, seed=3)
    widths = {}
    for path in (tmp_path / "train_masks").iterdir():
        cols = np.flatnonzero(gif_mask(path).any(axis=0))
        widths[int(path.name.split("_")[1])] = cols[-1] - cols[0] + 1
    # 01 front and 09 back are narrow, 05 and 13 are the long side profiles.
    for side in (5, 13):
        for end in (1, 9):
            assert widths[side] > 1.4 * widths[end], widths
    assert 0.3 * 192 < widths[1] < 0.55 * 192 and 0.55 * 192 < widths[5] < 0.8 * 192, widths


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_some_cars_are_pale_like_the_backdrop(tmp_path: Path, seed: int) -> None:
    """White and silver cars (>= ~1/4) are what defeats background subtraction."""
    dataset.generate(tmp_path, n_train_cars=12, n_test_cars=0, views=4, width=192, height=128, seed=seed)
    gaps = []
    for path in sorted((tmp_path / "train").glob("*_02.jpg")):  # side view
        with Image.open(path) as img:
            grey = np.asarray(img.convert("L"), dtype=float)
        mask = gif_mask(tmp_path / "train_masks" / path.name.replace(".jpg", "_mask.gif")).astype(bool)
        # The body is the bright part of the car (windows and tyres are dark),
        # so the upper quartile of the car's pixels is paint.
        gaps.append(abs(np.percentile(grey[mask], 75) - np.median(grey[~mask])))
    gaps = np.array(gaps)
    assert (gaps < 40).sum() >= 3, gaps  # pale bodies close to the backdrop
    assert (gaps > 80).sum() >= 3, gaps  # and clearly coloured/dark ones


def test_full_size_default_resolution(tmp_path: Path) -> None:
    dataset.generate(tmp_path, n_train_cars=1, n_test_cars=0, views=2, seed=0)
    rows = read_csv(tmp_path / "train_masks.csv")[1:]
    assert len(rows) == 2
    for img_name, code in rows:
        with Image.open(tmp_path / "train" / img_name) as img:
            assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (1918, 1280))
            grey = np.asarray(img.convert("L"), dtype=float)
        mask = gif_mask(tmp_path / "train_masks" / img_name.replace(".jpg", "_mask.gif"))
        assert mask.shape == (1280, 1918) and set(np.unique(mask).tolist()) == {0, 1}
        np.testing.assert_array_equal(rle.decode(code, mask.shape), mask.astype(bool))
        cols = np.flatnonzero(mask.any(axis=0))
        rows_on = np.flatnonzero(mask.any(axis=1))
        assert 0.3 < (cols[-1] - cols[0] + 1) / 1918 < 0.75  # front (01) and back (02)
        # The shadow just under the car is darker floor, and not in the mask.
        bottom, centre = rows_on[-1], (cols[0] + cols[-1]) // 2
        under = grey[bottom + 3:bottom + 15, centre - 40:centre + 40]
        assert mask[bottom + 3:bottom + 15, centre - 40:centre + 40].sum() == 0
        assert under.mean() < grey[1200:1270, 10:90].mean() - 15
        # Sensor noise: a flat-looking wall patch is not one constant value.
        assert grey[20:60, 20:60].std() > 0.5


def test_killed_run_leaves_no_half_files_and_no_csvs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real_save = Image.Image.save

    def flaky_save(self: Image.Image, fp, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 5:
            Path(fp).write_bytes(b"half a file")
            raise KeyboardInterrupt("killed")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", flaky_save)
    with pytest.raises(KeyboardInterrupt):
        dataset.generate(tmp_path, seed=0, **SMALL)
    monkeypatch.undo()
    assert not list(tmp_path.glob("*.csv"))
    assert not list(tmp_path.rglob(".tmp-*"))
    finished = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(finished) == 4
    for path in finished:
        with Image.open(path) as img:
            img.load()


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    for bad in (dict(views=0), dict(views=100), dict(width=8), dict(n_train_cars=-1), dict(jpeg_quality=0)):
        with pytest.raises(ValueError):
            dataset.generate(tmp_path, **{**SMALL, **bad})


def test_negative_seed_is_accepted(tmp_path: Path) -> None:
    dataset.generate(tmp_path, n_train_cars=1, n_test_cars=1, views=1, width=64, height=48, seed=-5)
    assert len(read_csv(tmp_path / "train_masks.csv")) == 2


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.booleans())
def test_car_geometry_is_valid(seed: int, pale: bool) -> None:
    """Convex parts are what makes back-face culling a correct painter's order."""
    rng = np.random.default_rng(seed)
    paint = demo_car.PALE_PAINTS[0] if pale else demo_car.OTHER_PAINTS[0]
    car = demo_car.make_car(rng, "0123456789ab", paint)
    assert shapes.is_convex_ccw(car.cap_profile)
    assert car.cap_profile[:, 1].min() >= car.clearance - 1e-9
    roof = car.roof_quad
    assert roof[:, 0].max() - roof[:, 0].min() > 0.2 * car.length  # a real roof
    for wheel in car.wheels:
        assert abs(wheel.verts[:, 0]).max() < car.length / 2  # wheels under the body
        assert wheel.verts[:, 2].min() == pytest.approx(0.0, abs=1e-9)  # on the ground
    for part in [car.body, car.cabin, *car.wheels, *car.mirrors]:
        centre = part.verts.mean(axis=0)
        for face in part.faces:  # every vertex lies behind every face plane: convex
            assert np.all((part.verts - face.point) @ face.normal <= 1e-6 + 0 * centre[0])


def test_the_generator_draws_the_same_cars_as_it_always_has(tmp_path: Path) -> None:
    # Pinned digests of what one seed makes: a refactor that draws from the
    # generator in another order (or changes a shape) changes the cars, the
    # demo's figures and every cached run. The mask outlines (train_masks.csv,
    # pure geometry and rasterisation) and the drawn metadata are pinned, not
    # the JPEG bytes, which belong to the JPEG encoder's version.
    dataset.generate(tmp_path, n_train_cars=3, n_test_cars=2, views=3, width=240, height=160, seed=0)
    digests = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in ("train_masks.csv", "metadata.csv")}
    assert digests == {
        "train_masks.csv": "2bcebb18b76dd15d4ec6142dafc0cfd3a46d3604ffd019fb34f4feb3ca323b0b",
        "metadata.csv": "9e960512c963f12cc94b4ae1e53e56ad23c120e1ac3f66df5363c47432088bfd",
    }
