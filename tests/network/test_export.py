"""Export: the SavedModel and the TFLite file serve what the trained Keras model predicts, in float32, folded.

Every BatchNorm gets random statistics and affine weights first (a fresh
layer's would hide a folding that changed the function), and the truth is
the saved ``model.keras`` itself, loaded back and run in float32.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from carmask.network.architectures import build_model, pix2pix_upsample
from carmask.network.export import SAVED_MODEL, TFLITE, export_model
from carmask.network.spec import Architecture

from .test_folding import randomise_batchnorms

HEIGHT, WIDTH = 32, 40  # 40 is no multiple of 16: the unet pads and crops


def spec(activation: str = "linear", precision: str = "float32", base_filters: int = 4) -> Architecture:
    return Architecture(name="unet", input_height=HEIGHT, input_width=WIDTH, channels=3, base_filters=base_filters,
                        output_activation=activation, precision=precision)


def unet(arch: Architecture) -> keras.Model:
    keras.utils.set_random_seed(1)  # seed 0 leaves the 4 channels of the last block dead on most pixels
    return build_model(arch)


def with_nested_block(precision: str) -> keras.Model:
    """A small model shaped like carmask's around one pix2pix decoder block (a nested Sequential), built in ``precision``."""
    keras.utils.set_random_seed(1)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        inputs = keras.Input((HEIGHT, WIDTH, 3), name="image")
        x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="down")(inputs)
        block = pix2pix_upsample(8, 3, name="decoder_stage1")
        x = keras.layers.Conv2D(1, 1, name="output_conv")(block(x))
        model = keras.Model(inputs, keras.layers.Activation("linear", dtype="float32", name="output_activation")(x))
    finally:
        keras.config.set_dtype_policy(previous)
    up = block.layers[0]  # N(0, 0.02) at init: activations too small for the BatchNorm's statistics
    up.kernel.assign(np.random.default_rng(3).normal(0, 0.3, up.kernel.shape).astype("float32"))
    return model


def saved(path: Path, model: keras.Model) -> Path:
    """``model`` with random BatchNorms and logits of a few units, saved as a ``.keras`` file."""
    randomise_batchnorms(model)
    head = model.get_layer("output_conv")  # probabilities spread over (0, 1), neither near 0.5 nor saturated
    head.kernel.assign(np.random.default_rng(2).normal(0, 3, head.kernel.shape).astype("float32"))
    logits = keras.Model(model.input, head.output)(photos(), training=False)
    head.bias.assign(head.bias - float(np.median(keras.ops.convert_to_numpy(logits))))
    model.save(path)
    return path


def photos(n: int = 3) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 1, (n, HEIGHT, WIDTH, 3)).astype("float32")


def served(out: Path, x: np.ndarray) -> np.ndarray:
    loaded = tf.saved_model.load(str(out / "saved_model"))
    return loaded.signatures["serving_default"](image=tf.constant(x))["probability"].numpy()


def tflite_interpreter(out: Path):
    with warnings.catch_warnings():  # tf.lite.Interpreter's notice that LiteRT replaces it
        warnings.simplefilter("ignore")
        return tf.lite.Interpreter(model_path=str(out / "model.tflite"))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@pytest.fixture(scope="module")
def linear_export(tmp_path_factory) -> tuple[Path, Path, dict]:
    """A linear-head unet (logits: a wrong formula would not hide in a saturated sigmoid) and its export."""
    folder = tmp_path_factory.mktemp("linear")
    model_path = saved(folder / "model.keras", unet(spec()))
    return model_path, folder / "export", export_model(model_path, folder / "export")


def test_the_saved_model_serves_the_keras_models_probabilities(linear_export):
    model_path, out, _ = linear_export
    x = photos()
    logits = keras.models.load_model(model_path, compile=False)(x, training=False).numpy()
    assert logits.std() > 1.0 and (logits > 1).mean() > 0.05 and (logits < -1).mean() > 0.05  # not all near 0.5
    got = served(out, x)
    assert got.dtype == np.float32 and got.shape == (3, HEIGHT, WIDTH, 1)
    np.testing.assert_allclose(got, sigmoid(logits), atol=1e-5)


def test_the_tflite_file_serves_the_same_probabilities_at_any_batch_size(linear_export):
    model_path, out, _ = linear_export
    interpreter = tflite_interpreter(out)
    assert interpreter.get_signature_list() == {"serving_default": {"inputs": ["image"], "outputs": ["probability"]}}
    assert list(interpreter.get_input_details()[0]["shape_signature"]) == [-1, HEIGHT, WIDTH, 3]
    run = interpreter.get_signature_runner("serving_default")
    want = sigmoid(keras.models.load_model(model_path, compile=False)(photos(), training=False).numpy())
    got = np.concatenate([run(image=photos()[:2])["probability"], run(image=photos()[2:])["probability"]])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_every_batchnorm_is_folded_out_of_the_export(linear_export):
    model_path, out, info = linear_export
    batchnorms = sum(isinstance(layer, keras.layers.BatchNormalization)
                     for layer in keras.models.load_model(model_path, compile=False).layers)
    assert batchnorms == 18  # 9 conv blocks of 2
    assert info["batchnorm"] == {"folded": batchnorms, "kept": 0}
    loaded = tf.saved_model.load(str(out / "saved_model"))  # kept: its signatures do not keep its variables alive
    variables = loaded.signatures["serving_default"].variables
    names = [v.name for v in variables]
    assert names and not [n for n in names if "moving_" in n or "gamma" in n or "beta" in n]
    assert len(names) == 2 * (batchnorms + 4 + 1)  # kernel and bias of each folded conv, the 4 up-convs and the output conv
    # Each weight is stored once (Keras's own model.export stores it twice).
    stored = tf.train.list_variables(str(out / "saved_model" / "variables" / "variables"))
    values = sum(int(np.prod(shape)) for name, shape in stored if name != "_CHECKPOINTABLE_OBJECT_GRAPH")
    assert values == sum(int(np.prod(v.shape)) for v in variables)


def test_export_json_says_what_is_served(linear_export):
    model_path, out, info = linear_export
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "model.tflite", "saved_model"]
    assert json.loads((out / "export.json").read_text()) == info
    assert info["source_model"] == str(model_path.resolve())
    assert info["input"] == {"name": "image", "shape": [None, HEIGHT, WIDTH, 3], "dtype": "float32", "range": [0.0, 1.0]}
    assert info["output"] == {"name": "probability", "shape": [None, HEIGHT, WIDTH, 1], "dtype": "float32",
                              "meaning": "probability"}
    assert (info["head"], info["sigmoid_added"], info["signature"]) == ("linear", True, "serving_default")
    assert (info["trained_precision"], info["precision"]) == (["float32"], "float32")
    assert (info["saved_model"], info["tflite"], info["architecture"]) == ("saved_model", "model.tflite", "unet")


@pytest.mark.parametrize("with_spec", [False, True])
def test_a_bf16_trained_model_exports_in_float32(tmp_path, with_spec):
    model_path = saved(tmp_path / "model.keras", unet(spec("sigmoid", "mixed_bfloat16")))
    bf16 = keras.models.load_model(model_path, compile=False)
    truth = build_model(spec("sigmoid"))  # the same weights computing in float32
    truth.set_weights(bf16.get_weights())
    x = photos()
    info = export_model(model_path, tmp_path / "out", spec("sigmoid", "mixed_bfloat16") if with_spec else None)
    assert (info["trained_precision"], info["head"], info["sigmoid_added"]) == (["mixed_bfloat16"], "sigmoid", False)
    assert info["batchnorm"] == {"folded": 18, "kept": 0}
    want = truth(x, training=False).numpy()
    got = served(tmp_path / "out", x)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.abs(got - bf16(x, training=False).numpy()).max() < 0.05  # bf16 rounding apart, the same network
    assert np.abs(got - want).max() < np.abs(bf16(x, training=False).numpy() - want).max()
    interpreter = tflite_interpreter(tmp_path / "out")
    interpreter.allocate_tensors()
    assert {np.dtype(d["dtype"]) for d in interpreter.get_tensor_details()} - {np.dtype("int32")} == {np.dtype("float32")}


def test_a_spec_that_describes_another_model_is_refused(tmp_path):
    model_path = saved(tmp_path / "model.keras", unet(spec()))
    with pytest.raises(ValueError, match="sigmoid"):
        export_model(model_path, tmp_path / "out", spec("sigmoid"))
    with pytest.raises(ValueError, match="do not fit"):
        export_model(model_path, tmp_path / "out", spec(base_filters=8))
    assert not (tmp_path / "out").exists()


def test_a_missing_or_foreign_model_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.keras"):
        export_model(tmp_path / "nowhere.keras", tmp_path / "out")
    (tmp_path / "notes.keras").write_text("not a model")
    with pytest.raises(ValueError, match="notes.keras is not a Keras model"):
        export_model(tmp_path / "notes.keras", tmp_path / "out")
    plain = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(1, 1)])
    plain.save(tmp_path / "plain.keras")
    with pytest.raises(ValueError, match="plain.keras is not a carmask segmentation model"):
        export_model(tmp_path / "plain.keras", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".tmp-*"))


def test_nested_blocks_of_a_bf16_model_compute_in_float32_too(tmp_path):
    # A decoder block (a nested Sequential) built under mixed_bfloat16 saves a
    # bfloat16 input: resetting the layers' policies alone would leave every
    # activation entering the block rounded to bf16.
    model_path = saved(tmp_path / "model.keras", with_nested_block("mixed_bfloat16"))
    truth = with_nested_block("float32")
    truth.set_weights(keras.models.load_model(model_path, compile=False).get_weights())
    info = export_model(model_path, tmp_path / "out", tflite=False)
    assert info["trained_precision"] == ["mixed_bfloat16"] and info["batchnorm"] == {"folded": 1, "kept": 0}
    assert info["tflite"] is None and not (tmp_path / "out" / "model.tflite").exists()
    logits = truth(photos(), training=False).numpy()
    assert logits.std() > 1.0
    np.testing.assert_allclose(served(tmp_path / "out", photos()), sigmoid(logits), atol=1e-5)


def test_only_an_earlier_export_is_replaced(linear_export, tmp_path):
    model_path = linear_export[0]
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("someone's")
    with pytest.raises(FileExistsError, match="taken exists and is not an earlier export"):
        export_model(model_path, tmp_path / "taken")
    assert (tmp_path / "taken" / "keep.txt").read_text() == "someone's"
    with pytest.raises(ValueError, match="holds the model"):
        export_model(model_path, model_path.parent, tflite=False)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "export.json").write_text("{}")
    (tmp_path / "old" / "model.tflite").write_bytes(b"stale")
    info = export_model(model_path, tmp_path / "old", tflite=False)
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["export.json", "saved_model"]
    assert json.loads((tmp_path / "old" / "export.json").read_text()) == info


def test_the_command_exports_and_names_its_errors(tmp_path, capsys):
    from carmask.cli import main

    model = saved(tmp_path / "model.keras", unet(spec()))
    assert main(["export", str(model), str(tmp_path / "served"), "--no-tflite"]) == 0
    assert json.loads(capsys.readouterr().out)["batchnorm"]["kept"] == 0
    assert (tmp_path / "served" / SAVED_MODEL).is_dir() and not (tmp_path / "served" / TFLITE).exists()
    (tmp_path / "mine").mkdir()
    assert main(["export", str(model), str(tmp_path / "mine")]) == 2
    assert "mine" in capsys.readouterr().err
