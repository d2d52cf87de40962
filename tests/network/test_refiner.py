"""The learned refinement: its network, its crops, tiles against a whole pass, and a tiny training that learns."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from carmask.files import write_parquet
from carmask.masks import rle
from carmask.masks.dice import dice
from carmask.masks.images import quantise
from carmask.masks.probability_maps import PREDICTIONS_SCHEMA, record_batch
from carmask.masks.refine import BAND
from carmask.masks.upsample import full_probabilities, mean_mask, mean_probabilities
from carmask.network.refiner import (
    TILE,
    Refiner,
    RefinerSpec,
    build_refiner,
    photo_crops,
    reach,
    refiner_input,
    train_refiner,
    training_crops,
)
from carmask.stages.encode import encode_shard

FULL = (128, 192)  # photo size
MODEL = (16, 24)  # 8x smaller, as 160x240 is for Kaggle's photos
SMALL = RefinerSpec(filters=8, dilations=(1, 2, 1), crop=32, crops_per_photo=16, epochs=6, batch_size=16,
                    learning_rate=0.01, seed=0)


def scene(offset: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(RGB photo, true mask, model-size probabilities whose outline is ``offset`` pixels right of the car's edge).

    A red car on a grey floor, its edge slanted and placed per ``seed``.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[: FULL[0], : FULL[1]]
    edge = rng.uniform(90, 110) + rng.uniform(-0.3, 0.3) * (rows - 64)
    truth = cols < edge
    rgb = np.where(truth[..., None], [180, 40, 40], [110, 110, 110]) + rng.normal(0, 6, (*FULL, 3))
    soft = 1 / (1 + np.exp((cols - edge - offset) / 4.0))
    small = np.asarray(Image.fromarray(soft.astype(np.float32)).resize(MODEL[::-1], Image.BOX))
    return np.clip(rgb, 0, 255).astype(np.uint8), truth, quantise(small)


def randomised(spec: RefinerSpec, seed: int = 0):
    """A refiner network with random weights everywhere, its last layer too (a trained one is not the identity)."""
    model = build_refiner(spec)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def test_network_shape_parameters_and_reach():
    model = build_refiner(RefinerSpec())
    # 4->16, then four 16->16 3x3 convolutions, then the 1x1 correction
    assert model.count_params() == (4 * 9 * 16 + 16) + 4 * (16 * 9 * 16 + 16) + (16 + 1)
    assert reach(model) == 1 + 2 + 4 + 8 + 1
    assert model(np.zeros((2, 40, 56, 4), np.float32)).shape == (2, 40, 56, 1)


def test_an_untrained_refiner_keeps_the_bilinear_mask():
    rgb, _, probs = scene(offset=3, seed=0)
    plain = mean_mask([probs], [1.0], FULL, 0.5)
    refined = Refiner(build_refiner(SMALL)).mask([probs], [1.0], rgb, 0.5)
    # its logit is the probability's own (on 1/255 steps, which never cross 0.5 away from it)
    np.testing.assert_array_equal(refined, plain)


def test_tiles_give_the_values_of_one_pass_over_the_photo():
    spec = RefinerSpec(filters=6, dilations=(1, 3, 2))
    model = randomised(spec)
    rng = np.random.default_rng(1)
    size = (2 * TILE + 37, 3 * TILE + 5)  # tiles cut at the photo's edges
    x = refiner_input(rng.integers(0, 256, (*size, 3), dtype=np.uint8), rng.random(size).astype(np.float32))
    whole = np.asarray(model(x[None]))[0, ..., 0]
    m = reach(model)
    inner = np.zeros(size, bool)
    inner[m:-m, m:-m] = True
    flat = np.flatnonzero(inner & (rng.random(size) < 0.3))  # pixels scattered over every tile
    got = Refiner(model).logits(x, flat)
    np.testing.assert_allclose(got, whole.reshape(-1)[flat], atol=1e-4)


def test_only_the_band_is_re_decided_and_inside_it_the_networks_logit_decides():
    rgb, _, probs = scene(offset=3, seed=0)
    maps, weights = [probs, np.roll(probs, 2, axis=1)], [0.6, 0.4]  # an ensemble of two
    model = randomised(SMALL, seed=2)
    got = Refiner(model).mask(maps, weights, rgb, 0.5)
    exact = mean_probabilities(maps, weights, FULL) / 255.0
    band = (exact > BAND[0]) & (exact < BAND[1])
    assert band.any() and not band.all()
    np.testing.assert_array_equal(got[~band], mean_mask(maps, weights, FULL, 0.5)[~band])
    logits = np.asarray(model(refiner_input(rgb, full_probabilities(maps, weights, FULL))[None]))[0, ..., 0]
    m = reach(model)
    inner = np.zeros(FULL, bool)
    inner[m:-m, m:-m] = True
    np.testing.assert_array_equal(got[band & inner], logits[band & inner] > 0)
    assert (got[band] != (exact[band] > 0.5)).any()


def test_crops_are_centred_on_the_band_and_hold_photo_probability_and_truth():
    rgb, truth, probs = scene(offset=3, seed=0)
    full = full_probabilities([probs], [1.0], FULL)
    crops = photo_crops(rgb, full, truth, SMALL, np.random.default_rng(0))
    assert crops.shape == (SMALL.crops_per_photo, SMALL.crop, SMALL.crop, 5) and crops.dtype == np.uint8
    again = photo_crops(rgb, full, truth, SMALL, np.random.default_rng(0))
    np.testing.assert_array_equal(crops, again)
    stacked = np.concatenate([rgb, np.round(full * 255).astype(np.uint8)[..., None], truth[..., None].astype(np.uint8) * 255], -1)
    for crop in crops:  # each is a window of the stacked photo whose centre region holds band pixels
        hits = [(y, x) for y in range(FULL[0] - SMALL.crop + 1) for x in range(FULL[1] - SMALL.crop + 1)
                if crop[0, 0, 3] == stacked[y, x, 3] and np.array_equal(crop, stacked[y:y + SMALL.crop, x:x + SMALL.crop])]
        assert hits
        p = crop[..., 3] / 255.0
        assert ((p > BAND[0]) & (p < BAND[1])).any()
    none = photo_crops(rgb, np.zeros(FULL, np.float32), truth, SMALL, np.random.default_rng(0))
    assert none.shape == (0, SMALL.crop, SMALL.crop, 5)
    with pytest.raises(ValueError, match="larger than a 192x128 photo"):
        photo_crops(rgb, full, truth, RefinerSpec(crop=130), np.random.default_rng(0))


def test_spec_from_config_checks_its_settings():
    assert RefinerSpec.from_config({"dilations": [1, 2], "filters": 4}) == RefinerSpec(dilations=(1, 2), filters=4)
    with pytest.raises(ValueError, match="unknown settings \\['depth'\\]"):
        RefinerSpec.from_config({"depth": 3})
    with pytest.raises(ValueError, match="refiner.epochs must be at least 1"):
        RefinerSpec(epochs=0)
    with pytest.raises(ValueError, match="refiner.dilations"):
        RefinerSpec(dilations=())
    with pytest.raises(ValueError, match="refiner.train_precision is 'bf16'"):
        RefinerSpec(train_precision="bf16")


def test_a_bf16_refiner_computes_its_convolutions_in_bf16_and_keeps_its_policy_when_saved(tmp_path):
    spec = RefinerSpec(filters=6, dilations=(1, 3, 2), train_precision="mixed_bfloat16")
    model = build_refiner(spec)
    convs = [layer for layer in model.layers if layer.name.startswith("conv")]
    assert [layer.compute_dtype for layer in convs] == ["bfloat16"] * 3
    assert {w.dtype for w in model.weights} == {"float32"}
    assert model.get_layer("correction").compute_dtype == "float32"
    # untrained, the correction is exactly zero: the bilinear mask, as in float32
    rgb, _, probs = scene(offset=3, seed=0)
    np.testing.assert_array_equal(Refiner(model).mask([probs], [1.0], rgb, 0.5), mean_mask([probs], [1.0], FULL, 0.5))
    trained = randomised(spec)
    trained.save(tmp_path / "r.keras")
    loaded = Refiner.load(tmp_path / "r.keras")
    assert [layer.compute_dtype for layer in loaded.model.layers if layer.name.startswith("conv")] == ["bfloat16"] * 3
    x = refiner_input(rgb, full_probabilities([probs], [1.0], FULL))[None]
    np.testing.assert_array_equal(np.asarray(loaded.model(x)), np.asarray(trained(x)))
    # bf16 rounds: close to the same weights computing in float32, not equal
    plain = build_refiner(dataclasses.replace(spec, train_precision="float32"))
    plain.set_weights(trained.get_weights())
    np.testing.assert_allclose(np.asarray(trained(x)), np.asarray(plain(x)), atol=0.5)


def write_photos(folder, scenes, offset: int):
    """Photos (JPEG), masks (GIF), their items table and predictions file for ``scenes`` seeds."""
    rows, batches = [], []
    for seed in scenes:
        rgb, truth, probs = scene(offset, seed)
        img = f"{seed:012x}_01.jpg"
        Image.fromarray(rgb).save(folder / img, quality=97)
        Image.fromarray(truth.astype(np.uint8)).save(folder / f"{seed:012x}_01_mask.gif")
        rows.append({"img": img, "image_path": str(folder / img), "mask_path": str(folder / f"{seed:012x}_01_mask.gif"),
                     "height": FULL[0], "width": FULL[1]})
        batches.append(record_batch([img], probs[None]))
    write_parquet(pd.DataFrame(rows), folder / "items.parquet")
    pq.write_table(pa.Table.from_batches(batches, schema=PREDICTIONS_SCHEMA), folder / "p.parquet")
    return folder / "items.parquet", folder / "p.parquet"


def test_crops_are_the_same_whatever_the_number_of_threads(tmp_path):
    items, preds = write_photos(tmp_path, range(6), offset=4)
    frame = pd.read_parquet(items)
    one = training_crops(frame, [str(preds)], [1.0], SMALL, threads=1)
    assert len(one) == 6 * SMALL.crops_per_photo
    np.testing.assert_array_equal(training_crops(frame, [str(preds)], [1.0], SMALL, threads=3), one)


def test_a_tiny_training_learns_to_move_the_outline_onto_the_cars_edge(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "val").mkdir()
    items, preds = write_photos(tmp_path / "train", range(8), offset=4)
    facts = train_refiner(str(items), [str(preds)], [1.0], SMALL, str(tmp_path / "refiner.keras"),
                          str(tmp_path / "refiner.json"), threads=1)
    assert json.loads((tmp_path / "refiner.json").read_text()) == facts
    assert facts["crops"] == 8 * SMALL.crops_per_photo and facts["reach"] == 4
    before, after = facts["sample_loss"]
    assert after < 0.7 * before and facts["band_loss"][-1] < 0.7 * before
    # unseen photos through the encode stage, as the workflow runs it
    val_items, val_preds = write_photos(tmp_path / "val", range(100, 104), offset=4)
    refiner = Refiner.load(tmp_path / "refiner.keras")
    args = ([str(val_preds)], [1.0], str(val_items))
    encode_shard(*args, str(tmp_path / "plain.parquet"), 0.5)
    encode_shard(*args, str(tmp_path / "learned.parquet"), 0.5, refine="learned", refine_band=refiner.mask)
    truths = {f"{s:012x}_01.jpg": scene(4, s)[1] for s in range(100, 104)}

    def scores(name):
        codes = pd.read_parquet(tmp_path / name)
        return np.mean([dice(rle.decode(c, FULL), truths[i]) for i, c in zip(codes["img"], codes["rle_mask"])])

    assert scores("learned.parquet") > scores("plain.parquet") + 0.005
    with pytest.raises(ValueError, match="takes a trained refiner exactly when it is 'learned'"):
        encode_shard(*args, str(tmp_path / "x.parquet"), 0.5, refine="learned")
    with pytest.raises(ValueError, match="takes a trained refiner exactly when it is 'learned'"):
        encode_shard(*args, str(tmp_path / "x.parquet"), 0.5, refine="guided", refine_band=refiner.mask)


def test_a_missing_refiner_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.keras does not exist"):
        Refiner.load(tmp_path / "nothing.keras")
