"""predict → encode on a tiny model: shards, TTA, quantisation, streaming files."""

import keras
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from PIL import Image

from carmask.masks import images, rle
from carmask.stages.encode import encode_shard
from carmask.files import write_parquet
from carmask.network.inference import shard_rows, write_probabilities
from carmask.network.spec import Architecture, Prediction
from carmask.masks.probability_maps import read_probabilities

from ..reference import bilinear

ARCH = Architecture("unet", 24, 36, 3)


def brightness_model() -> keras.Model:
    """Probability = mean brightness, left half only: makes the flip visible."""
    inp = keras.Input((24, 36, 3))
    mean = keras.layers.Lambda(lambda x: keras.ops.mean(x, axis=-1, keepdims=True))(inp)
    left = keras.layers.Lambda(lambda x: x * keras.ops.reshape(keras.ops.cast(keras.ops.arange(36) < 18, "float32"), (1, 1, 36, 1)))(mean)
    return keras.Model(inp, left)


@pytest.fixture
def photos(tmp_path):
    rows = []
    for i in range(5):
        arr = np.zeros((96, 144, 3), np.uint8)
        arr[:, : 20 * (i + 1)] = 255
        path = tmp_path / f"{i:012x}_01.jpg"
        Image.fromarray(arr).save(path, quality=95)
        rows.append({"img": path.name, "image_path": str(path), "height": 96, "width": 144})
    return pd.DataFrame(rows)


def test_shard_rows_cover_everything_once():
    items = pd.DataFrame({"img": [f"{i}" for i in range(103)]})
    parts = [shard_rows(items, s, 7) for s in range(7)]
    assert pd.concat(parts)["img"].tolist() == items["img"].tolist()
    assert max(map(len, parts)) - min(map(len, parts)) <= 1
    with pytest.raises(ValueError):
        shard_rows(items, 7, 7)


def test_predictions_match_direct_model_call(tmp_path, photos):
    model = brightness_model()
    out = tmp_path / "pred.parquet"
    write_probabilities([model], photos, out, ARCH, Prediction(2, "none", "float32"))
    got = list(read_probabilities(out))
    assert [g[0] for g in got] == photos["img"].tolist()
    for (img, probs), path in zip(got, photos["image_path"]):
        x = images.load_image(path, (24, 36), 3)[None].astype("float32") / 255
        want = images.quantise(model.predict(x, verbose=0)[0, ..., 0])
        assert probs.shape == (24, 36) and probs.dtype == np.uint8
        assert np.array_equal(probs, want)
    assert pq.ParquetFile(out).metadata.num_rows == 5


def test_tta_flip_averages_mirror_prediction(tmp_path, photos):
    model = brightness_model()
    write_probabilities([model], photos, tmp_path / "p.parquet", ARCH, Prediction(4, "flip", "float32"))
    for (_, probs), path in zip(read_probabilities(tmp_path / "p.parquet"), photos["image_path"]):
        x = images.load_image(path, (24, 36), 3)[None].astype("float32") / 255
        a = model.predict(x, verbose=0)[0, ..., 0]
        b = model.predict(x[:, :, ::-1], verbose=0)[0, :, ::-1, 0]
        assert np.abs(probs.astype(int) - images.quantise((a + b) / 2).astype(int)).max() <= 1


def test_encode_shard_full_size_and_decodes(tmp_path, photos):
    model = brightness_model()
    write_parquet(photos, tmp_path / "items.parquet")
    write_probabilities([model], photos, tmp_path / "p.parquet", ARCH, Prediction(2, "none", "float32"))
    encode_shard([str(tmp_path / "p.parquet")], [1.0], str(tmp_path / "items.parquet"), str(tmp_path / "rle.parquet"), 0.5)
    table = pd.read_parquet(tmp_path / "rle.parquet")
    assert table["img"].tolist() == photos["img"].tolist()
    for (img, probs), code in zip(read_probabilities(tmp_path / "p.parquet"), table["rle_mask"]):
        mask = rle.decode(code, (96, 144))
        ref = bilinear(probs, (96, 144))
        decided = np.abs(ref - 127.5) > 1e-9
        assert np.array_equal(mask[decided], (ref > 127.5)[decided])


def test_empty_shard(tmp_path, photos):
    empty = photos.iloc[:0]
    write_parquet(empty, tmp_path / "items.parquet")
    write_probabilities([brightness_model()], empty, tmp_path / "p.parquet", ARCH, Prediction(2, "flip", "float32"))
    assert list(read_probabilities(tmp_path / "p.parquet")) == []
    encode_shard([str(tmp_path / "p.parquet")], [1.0], str(tmp_path / "items.parquet"), str(tmp_path / "rle.parquet"), 0.5)
    assert len(pd.read_parquet(tmp_path / "rle.parquet")) == 0


def test_predict_shard_turns_on_deterministic_ops_and_repeats_exactly(tmp_path, photos, monkeypatch):
    # predict_shard configures TensorFlow like training does: deterministic
    # kernels (on a GPU too), so two runs give the same file, byte for byte;
    # what the job measured goes to a timing file beside it.
    import json

    import tensorflow as tf

    from carmask.network.inference import predict_shard

    calls = []
    enable = tf.config.experimental.enable_op_determinism
    monkeypatch.setattr(tf.config.experimental, "enable_op_determinism", lambda: calls.append(1) or enable())
    keras.utils.set_random_seed(0)
    inp = keras.Input((24, 36, 3))
    model = keras.Model(inp, keras.layers.Conv2D(1, 3, padding="same", activation="sigmoid")(keras.layers.Conv2D(8, 3, padding="same")(inp)))
    model.save(tmp_path / "m.keras")
    write_parquet(photos, tmp_path / "items.parquet")
    runs = []
    for name in ("a", "b"):
        predict_shard(str(tmp_path / "m.keras"), str(tmp_path / "items.parquet"), str(tmp_path / f"{name}.parquet"), ARCH,
                      Prediction(2, "flip", "float32"), 0, 1, threads=1)
        runs.append(list(read_probabilities(tmp_path / f"{name}.parquet")))
    assert len(calls) == 2  # once per job, before the model runs
    assert [img for img, _ in runs[0]] == photos["img"].tolist()
    for (_, a), (_, b) in zip(*runs):
        assert np.array_equal(a, b)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    timing = json.loads((tmp_path / "a.timing.json").read_text())
    assert timing["images"] == 5 and timing["images_per_s"] > 0 and timing["precision"] == "float32"


@pytest.mark.parametrize("widths", [{"architecture": "unet", "base_filters": 4},
                                    {"architecture": "mobilenetv2_pix2pix_tuned", "decoder_filters": [16, 8, 8, 8]}])
def test_bf16_inference_copies_the_trained_weights_and_keeps_the_masks(tmp_path, photos, widths):
    # Predicting in bfloat16 rebuilds the architecture in that policy with the
    # float32 model's weights (a nested encoder's too): float32 probabilities
    # out, within bf16's rounding of the float32 ones. Unfolded here, to
    # compare the weights; folded (the default), the probabilities too.
    from carmask.network.architectures import build_model
    from carmask.network.inference import load_for_inference

    arch = Architecture.from_config({"input_height": 24, "input_width": 36, "channels": 3, "encoder_weights": "none",
                                     "freeze_encoder": False, "output_activation": "sigmoid", "train_precision": "float32", **widths})
    keras.utils.set_random_seed(0)
    trained = build_model(arch)
    trained.save(tmp_path / "m.keras")
    [same] = load_for_inference(str(tmp_path / "m.keras"), arch, Prediction(2, "flip", "float32", fold=False))
    [bf16] = load_for_inference(str(tmp_path / "m.keras"), arch, Prediction(2, "flip", "mixed_bfloat16", fold=False))
    [folded] = load_for_inference(str(tmp_path / "m.keras"), arch, Prediction(2, "flip", "mixed_bfloat16"))
    for model in (bf16, folded):
        assert model.layers[-1].dtype_policy.name == "float32" and model.layers[-2].dtype_policy.name == "mixed_bfloat16"
    for a, b in zip(trained.get_weights(), bf16.get_weights()):
        np.testing.assert_array_equal(a, b)
    for name, model in (("f32", same), ("bf16", bf16), ("folded", folded)):
        write_probabilities([model], photos, tmp_path / f"{name}.parquet", arch, Prediction(2, "flip", "float32"))
    for name in ("bf16", "folded"):
        pairs = zip(read_probabilities(tmp_path / "f32.parquet"), read_probabilities(tmp_path / f"{name}.parquet"))
        for (_, a), (_, b) in pairs:
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 3  # bf16 keeps 8 bits of mantissa


def test_the_batch_size_changes_the_speed_not_the_probabilities(tmp_path, photos):
    # inference.batch_size: auto picks smaller float32 batches for large
    # inputs; a real U-Net, folded as the predict jobs load it, writes the
    # same file at any batch size, byte for byte.
    from carmask.network.architectures import build_model
    from carmask.network.inference import load_for_inference

    arch = Architecture.from_config({"architecture": "unet", "base_filters": 4, "input_height": 24, "input_width": 36,
                                     "channels": 3, "encoder_weights": "none", "freeze_encoder": False})
    keras.utils.set_random_seed(0)
    build_model(arch).save(tmp_path / "m.keras")
    files = []
    for batch in (1, 2, 5):
        how = Prediction(batch, "flip", "float32")
        out = tmp_path / f"b{batch}.parquet"
        write_probabilities(load_for_inference(str(tmp_path / "m.keras"), arch, how), photos, out, arch, how)
        files.append([(img, probs.tobytes()) for img, probs in read_probabilities(out)])
    assert len(files[0]) == 5 and len({probs for _, probs in files[0]}) > 1
    assert files[0] == files[1] == files[2]


def test_a_linear_head_is_read_as_logits(tmp_path, photos):
    from carmask.network.inference import to_probability

    logits = np.array([[-30.0, 0.0, 2.0]], np.float32).reshape(1, 1, 3, 1)
    np.testing.assert_allclose(to_probability(logits, "linear")[0, 0], [0.0, 0.5, 1 / (1 + np.exp(-2.0))], atol=1e-7)
    np.testing.assert_array_equal(to_probability(logits.clip(0, 1), "sigmoid"), logits.clip(0, 1)[..., 0])


def test_auto_precision_picks_bf16_only_where_the_cpu_has_it(monkeypatch, tmp_path):
    from carmask.planning import settings

    xeon = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"
    epyc = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n"
    assert settings.cpu_has_bf16(xeon) and not settings.cpu_has_bf16(epyc) and not settings.cpu_has_bf16("")
    assert settings.resolve_precision("float32") == "float32"
    with pytest.raises(ValueError, match="auto or one of float32"):
        settings.resolve_precision("float16")
    monkeypatch.setattr(settings, "gpu_usable", lambda: False)
    for has_bf16, want in ((True, "mixed_bfloat16"), (False, "float32")):
        monkeypatch.setattr(settings, "cpu_has_bf16", lambda: has_bf16)
        assert settings.resolve_precision("auto") == want
    monkeypatch.setattr(settings, "gpu_usable", lambda: True)
    assert settings.resolve_precision("auto") == "mixed_float16"


def test_a_gpu_is_usable_only_when_listed_visible_and_not_a_cpu_build(monkeypatch, tmp_path):
    from carmask.planning import settings

    gpus = tmp_path / "gpus"
    gpus.mkdir()
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(settings, "_installed", lambda name: False)
    assert not settings.gpu_usable(gpus)  # the driver lists none
    assert not settings.gpu_usable(tmp_path / "absent")  # no NVIDIA driver at all
    (gpus / "0000:01:00.0").mkdir()
    assert settings.gpu_usable(gpus)
    for hidden in ("", "-1"):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", hidden)
        assert not settings.gpu_usable(gpus)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    monkeypatch.setattr(settings, "_installed", lambda name: name == "tensorflow-cpu")
    assert not settings.gpu_usable(gpus)


def brightness_model_at(height: int, width: int) -> keras.Model:
    """Probability = mean brightness times a left-to-right ramp: shows both a flip and a rescale."""
    inp = keras.Input((height, width, 3))
    ramp = np.linspace(0.0, 1.0, width, dtype="float32").reshape(1, 1, width, 1)
    out = keras.layers.Lambda(lambda x: keras.ops.mean(x, axis=-1, keepdims=True) * ramp)(inp)
    return keras.Model(inp, out)


@pytest.mark.parametrize("tta", ["scale", "flip_scale"])
def test_scale_tta_averages_the_larger_photo_shrunk_back(tmp_path, photos, tta):
    # The second view is the photo decoded 1.25x larger (30x45 for 24x36),
    # predicted there and area-averaged back to model size; checked against
    # a direct computation with exact area weights.
    from carmask.masks.images import _area_weights
    from carmask.network.spec import TTA_SCALE

    assert ARCH.scaled(TTA_SCALE).size == (30, 45)
    small_model, big_model = brightness_model_at(24, 36), brightness_model_at(30, 45)
    write_probabilities([small_model, big_model], photos, tmp_path / "p.parquet", ARCH, Prediction(2, tta, "float32"))
    rows, cols = _area_weights(24, 30), _area_weights(36, 45)

    def view(model, x):
        out = model.predict(x, verbose=0)[0, ..., 0]
        return (out + model.predict(x[:, :, ::-1], verbose=0)[0, :, ::-1, 0]) / 2 if tta == "flip_scale" else out

    for (_, probs), path in zip(read_probabilities(tmp_path / "p.parquet"), photos["image_path"]):
        x = images.load_image(path, (24, 36), 3)[None].astype("float32") / 255
        xb = images.load_image(path, (30, 45), 3)[None].astype("float32") / 255
        want = (view(small_model, x) + rows @ view(big_model, xb) @ cols.T) / 2
        assert np.abs(probs.astype(int) - images.quantise(want).astype(int)).max() <= 1
    with pytest.raises(ValueError, match="needs 2 models"):
        write_probabilities([small_model], photos, tmp_path / "q.parquet", ARCH, Prediction(2, tta, "float32"))


def test_scale_tta_loads_a_twin_at_the_second_size_with_the_same_weights(tmp_path):
    from carmask.network.architectures import build_model
    from carmask.network.inference import load_for_inference

    arch = Architecture("unet", 32, 48, 3, base_filters=4)
    build_model(arch).save(tmp_path / "m.keras")
    base, twin = load_for_inference(str(tmp_path / "m.keras"), arch, Prediction(2, "scale", "float32", fold=False))
    assert base.input_shape == (None, 32, 48, 3) and twin.input_shape == (None, 40, 60, 3)
    for a, b in zip(base.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert len(load_for_inference(str(tmp_path / "m.keras"), arch, Prediction(2, "flip", "float32"))) == 1
    with pytest.raises(ValueError, match="inference.tta is 'rotate'"):
        Prediction(2, "rotate", "float32")


def test_ensemble_shard_encodes_the_weighted_full_size_mean(tmp_path, photos):
    # Two models' prediction files at different sizes, one shard: the RLE is
    # the mask of their weighted mean at each photo's full size.
    from ..masks.test_upsample import smooth_map, write_predictions

    names = photos["img"].tolist()
    a = [smooth_map((24, 36), i) for i in range(len(names))]
    b = [smooth_map((12, 20), 10 + i) for i in range(len(names))]
    write_predictions(tmp_path / "a.parquet", names, a)
    write_predictions(tmp_path / "b.parquet", names, b)
    write_parquet(photos, tmp_path / "items.parquet")
    encode_shard([str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")], [0.7, 0.3],
                 str(tmp_path / "items.parquet"), str(tmp_path / "rle.parquet"), 0.4)
    table = pd.read_parquet(tmp_path / "rle.parquet")
    assert table["img"].tolist() == names
    for code, pa_, pb in zip(table["rle_mask"], a, b):
        direct = 0.7 * bilinear(pa_, (96, 144)) + 0.3 * bilinear(pb, (96, 144))
        decided = np.abs(direct - 0.4 * 255) > 1e-9
        mask = rle.decode(code, (96, 144))
        np.testing.assert_array_equal(mask[decided], (direct > 0.4 * 255)[decided])
        assert 0.02 < mask.mean() < 0.98
