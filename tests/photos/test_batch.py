"""A folder of any photos through a model: every kind of input, bad files, resume, and masks checked against the model."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from carmask.masks.images import quantise
from carmask.masks.upsample import mean_mask
from carmask.photos import batch
from carmask.photos.batch import JOURNAL, SUMMARY, Options, cut_out_folder, output_stems
from carmask.photos.card import load_card
from carmask.photos.fitting import canvas, model_input, place
from carmask.photos.reading import read_photo

from .conftest import make_user_folder


@pytest.fixture
def folder(tmp_path):
    photos = tmp_path / "photos"
    kinds = make_user_folder(photos)
    return photos, kinds


def outputs(out, stem: str) -> list:
    return [out / "masks" / f"{stem}.png", out / "cutouts" / f"{stem}.png", out / "composites" / f"{stem}.jpg"]


def test_every_kind_of_photo_is_cut_out_and_bad_files_are_rows(tiny_model, folder, tmp_path):
    photos, kinds = folder
    out = tmp_path / "out"
    table = cut_out_folder(load_card(tiny_model, batch_size=3), photos, out, Options(background="#00ff00"))
    assert table["photo"].tolist() == sorted(kinds)
    failed = table.set_index("photo")["reason"][table.set_index("photo")["status"] == "failed"]
    assert dict(failed) == {"empty.jpg": "empty file (0 bytes)", "lot/notes.txt": "not an image Pillow can read"}
    for row in table[table["status"] == "ok"].itertuples():
        stem = os.path.splitext(row.photo)[0]
        upright = read_photo(photos / row.photo)
        mask_file, cut_file, comp_file = outputs(out, stem)
        mask = np.asarray(Image.open(mask_file)) > 0
        assert mask.shape == upright.shape[:2] == (row.height, row.width), row.photo
        rgba = np.asarray(Image.open(cut_file))
        np.testing.assert_array_equal(rgba[..., 3] > 0, mask)
        np.testing.assert_array_equal(rgba[..., :3], upright)
        assert Image.open(comp_file).size == (row.width, row.height)
        assert row.car_fraction == pytest.approx(mask.mean(), abs=1e-6)
    assert table.set_index("photo").loc["IMG_0042.JPG", ["height", "width"]].tolist() == [90, 120]  # stored 120x90, shown upright
    written = pd.read_csv(out / SUMMARY, keep_default_na=False)
    assert written["photo"].tolist() == table["photo"].tolist() and "key" not in written.columns
    assert not list(out.rglob(".tmp-*"))


def test_the_masks_are_the_models_own(tiny_model, folder, tmp_path):
    """Independent path: the Keras model on the fitted photo and its mirror, averaged, upsampled, cropped."""
    import keras

    photos, _ = folder
    card = load_card(tiny_model)
    cut_out_folder(card, photos, tmp_path / "out", Options(aspect="pad"))
    model = keras.models.load_model(tiny_model, compile=False)
    for name in ("IMG_0042.JPG", "lot/front.png", "kaggle.jpg"):
        photo = read_photo(photos / name)
        where = place(photo.shape[:2], card.size, "pad")
        x = model_input(canvas(photo, where), card.size, 3)[None].astype(np.float32) / 255.0
        probs = (model.predict(x, verbose=0) + model.predict(x[:, :, ::-1], verbose=0)[:, :, ::-1]) / 2
        expected = where.crop(mean_mask([quantise(probs[0, ..., 0])], [1.0], where.canvas, 0.5))
        got = np.asarray(Image.open(tmp_path / "out" / "masks" / (os.path.splitext(name)[0] + ".png"))) > 0
        assert (got != expected).mean() < 1e-3, name  # folded BatchNorm: a rare pixel at the cut may differ


def test_a_finished_batch_is_not_redone_and_a_lost_output_is(tiny_model, folder, tmp_path):
    photos, _ = folder
    card, out = load_card(tiny_model), tmp_path / "out"
    cut_out_folder(card, photos, out, Options())
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    cut_out_folder(card, photos, out, Options())
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == before
    lost = out / "cutouts" / "kaggle.png"
    lost.unlink()
    cut_out_folder(card, photos, out, Options())
    assert lost.is_file()
    assert all(p.stat().st_mtime_ns == t for p, t in before.items() if p.stem != "kaggle")


def test_an_interrupted_batch_resumes_without_redoing_finished_photos(tiny_model, folder, tmp_path, monkeypatch):
    photos, _ = folder
    card, out = load_card(tiny_model, batch_size=2), tmp_path / "out"
    finish, done, left = batch._finish, [], [3]

    def interrupted(item, *args):
        if not left[0]:
            raise InterruptedError("power cut")  # the machine stops in the middle of a batch
        left[0] -= 1
        done.append(item.photo)
        return finish(item, *args)

    monkeypatch.setattr(batch, "_finish", interrupted)
    with pytest.raises(InterruptedError):
        cut_out_folder(card, photos, out, Options(), threads=1)  # one thread: photos finish in order
    with open(out / JOURNAL, "a") as f:
        f.write('{"photo": "torn')  # a line cut short by the interruption
    first, done[:], left[0] = list(done), [], 100
    table = cut_out_folder(card, photos, out, Options(), threads=1)
    assert len(first) == 3 and not set(first) & set(done)  # every finished photo was journaled and kept
    assert (table["status"] == "ok").sum() == 8 and len(done) == 5


def test_changed_settings_redo_every_photo(tiny_model, folder, tmp_path):
    photos, _ = folder
    card, out = load_card(tiny_model), tmp_path / "out"
    cut_out_folder(card, photos, out, Options(background="white"))
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.jpg")}
    cut_out_folder(card, photos, out, Options(background="black"))
    assert all(p.stat().st_mtime_ns != t for p, t in before.items())
    mask = np.asarray(Image.open(out / "masks" / "kaggle.png")) > 0
    scene = np.asarray(Image.open(out / "composites" / "kaggle.jpg")).astype(int)
    assert np.abs(scene[~mask]).max(initial=0) < 40  # black wherever the mask says background (JPEG noise aside)
    keys = {json.loads(line).get("key", "").split(":")[0] for line in (out / JOURNAL).read_text().splitlines()}
    assert batch.settings_key(dataclasses.replace(card, threshold=0.9), Options(background="black")) not in keys


def test_trim_and_soft_edge(tiny_model, folder, tmp_path):
    photos, _ = folder
    table = cut_out_folder(load_card(tiny_model), photos, tmp_path / "out", Options(trim=0.0, soft_edge=2))
    row = table.set_index("photo").loc["kaggle.jpg"]
    mask = np.asarray(Image.open(tmp_path / "out" / "masks" / "kaggle.png")) > 0
    cut = Image.open(tmp_path / "out" / "cutouts" / "kaggle.png")
    if mask.any():
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        assert cut.size == (cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1)
    assert mask.shape == (row.height, row.width)  # the mask keeps the photo's size


def test_clashing_names_keep_their_suffix():
    assert output_stems(["a.jpg", "a.png", "b/c.webp"]) == {"a.jpg": "a_jpg", "a.png": "a_png", "b/c.webp": "b/c"}


def test_an_output_folder_inside_the_photos_is_refused(tiny_model, folder):
    photos, _ = folder
    with pytest.raises(ValueError, match="inside the photo folder"):
        cut_out_folder(load_card(tiny_model), photos, photos / "out", Options())


def test_scale_views_need_a_card(tiny_model, folder, tmp_path):
    photos, _ = folder
    card = load_card(tiny_model)
    card = dataclasses.replace(card, prediction=dataclasses.replace(card.prediction, tta="flip_scale"))
    with pytest.raises(ValueError, match="no card.json"):
        cut_out_folder(card, photos, tmp_path / "out", Options())


def test_a_learned_refinement_beside_the_model_refines_every_photo(tiny_model, folder, tmp_path):
    """The card's ``refine: learned`` runs the refiner saved beside the model; its bytes are part of the settings."""
    import shutil

    import keras

    from carmask.network.refiner import Refiner, RefinerSpec, build_refiner

    photos, _ = folder
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tiny_model, run / "model.keras")
    card = dataclasses.replace(load_card(run / "model.keras"), refine="learned")
    with pytest.raises(FileNotFoundError, match="refiner.keras does not exist"):
        cut_out_folder(card, photos, tmp_path / "out", Options(aspect="pad"))
    model = build_refiner(RefinerSpec(filters=4, dilations=(1, 2)))
    rng = np.random.default_rng(0)
    weights = [rng.normal(0, 0.5, w.shape).astype(np.float32) for w in model.get_weights()]
    weights[-1][:] = -20.0  # the correction's bias: the band is background, whatever the model said
    model.set_weights(weights)
    model.save(card.refiner_path)
    cut_out_folder(card, photos, tmp_path / "out", Options(aspect="pad"))
    net, refiner = keras.models.load_model(tiny_model, compile=False), Refiner.load(card.refiner_path)
    changed = 0
    for name in ("IMG_0042.JPG", "lot/front.png", "kaggle.jpg"):
        photo = read_photo(photos / name)
        where = place(photo.shape[:2], card.size, "pad")
        x = model_input(canvas(photo, where), card.size, 3)[None].astype(np.float32) / 255.0
        probs = quantise(((net.predict(x, verbose=0) + net.predict(x[:, :, ::-1], verbose=0)[:, :, ::-1]) / 2)[0, ..., 0])
        expected = where.crop(refiner.mask([probs], [1.0], canvas(photo, where), 0.5))
        plain = where.crop(mean_mask([probs], [1.0], where.canvas, 0.5))
        got = np.asarray(Image.open(tmp_path / "out" / "masks" / (os.path.splitext(name)[0] + ".png"))) > 0
        assert (got != expected).mean() < 1e-3, name  # folded BatchNorm: a rare pixel at the cut may differ
        changed += int((expected != plain).sum())
    assert changed > 0  # the refiner was not a no-op
    before = batch.settings_key(card, Options(aspect="pad"))
    model.set_weights([w * 0.5 for w in model.get_weights()])
    model.save(card.refiner_path)
    assert batch.settings_key(card, Options(aspect="pad")) != before  # a retrained refiner redoes every photo
