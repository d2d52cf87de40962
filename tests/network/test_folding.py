"""BatchNorm folding: the folded copy computes what the trained network computes, with fewer layers.

Every BatchNorm gets random statistics and affine weights first (a fresh
layer's mean 0 / variance 1 / gamma 1 / beta 0 would hide a wrong formula),
and the truth is the original model's own output in float32.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from carmask.network.folding import fold_batchnorm, foldable_pairs, sublayers
from carmask.network.architectures import build_model
from carmask.network.spec import Architecture

HEIGHT, WIDTH = 40, 70


def randomise_batchnorms(model: keras.Model, seed: int = 0) -> None:
    """Moving statistics and affine weights far from a fresh layer's."""
    rng = np.random.default_rng(seed)
    for layer in sublayers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            layer.gamma.assign(rng.uniform(0.5, 1.5, n).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.2, n).astype("float32"))
            layer.moving_mean.assign(rng.normal(0, 0.2, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n).astype("float32"))


def count(model: keras.Model, kind: type) -> int:
    return sum(isinstance(layer, kind) for layer in sublayers(model))


def tiny(architecture: str, precision: str = "float32", activation: str = "linear", **widths) -> keras.Model:
    """A small model of ``architecture`` with random BatchNorms; a linear head by default, so logits are compared."""
    cfg = {"architecture": architecture, "input_height": HEIGHT, "input_width": WIDTH, "channels": 3,
           "encoder_weights": "none", "freeze_encoder": False, "output_activation": activation,
           "train_precision": precision, **widths}
    keras.utils.set_random_seed(0)
    model = build_model(Architecture.from_config(cfg))
    randomise_batchnorms(model)
    return model


def photos_batch(n: int = 3) -> np.ndarray:
    return np.random.default_rng(1).uniform(0, 1, (n, HEIGHT, WIDTH, 3)).astype("float32")


@pytest.mark.parametrize("architecture, widths, left", [
    ("mobilenetv2_pix2pix_tuned", {"decoder_filters": [16, 8, 8, 8]}, 0),
    ("unet", {"base_filters": 4}, 0),
])
def test_folding_keeps_the_outputs_and_removes_every_batchnorm(architecture, widths, left):
    model = tiny(architecture, **widths)
    before = count(model, keras.layers.BatchNormalization)
    folded = fold_batchnorm(model)
    assert before > 10 and count(folded, keras.layers.BatchNormalization) == left
    assert len(foldable_pairs(model)) == before - left
    x = photos_batch()
    want = model(x, training=False).numpy()
    got = folded(x, training=False).numpy()
    assert got.shape == want.shape
    assert want.std() > 1e-2  # logits that vary, not probabilities squashed near 0 or 1
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-4)
    # The original is untouched and the copy holds its own variables.
    np.testing.assert_array_equal(model(x, training=False).numpy(), want)


def test_vgg19_folds_its_decoder_blocks_and_leaves_the_relu_convs_of_its_encoder():
    model = tiny("vgg19_pix2pix", decoder_filters=[8, 8, 8, 8])
    assert count(model, keras.layers.BatchNormalization) == 4  # the decoder blocks' only
    folded = fold_batchnorm(model)
    assert count(folded, keras.layers.BatchNormalization) == 0
    x = photos_batch(2)
    np.testing.assert_allclose(folded(x).numpy(), model(x).numpy(), atol=1e-5, rtol=1e-4)


def test_a_loaded_model_folds_as_fully_as_a_built_one(tmp_path):
    # A loaded Sequential block rebuilds once per added layer and keeps the
    # stale nodes: only the nodes of the block's own graph count.
    model = tiny("mobilenetv2_pix2pix_tuned", decoder_filters=[16, 8, 8, 8])
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras", compile=False)
    assert foldable_pairs(loaded) == foldable_pairs(model)
    folded = fold_batchnorm(loaded)
    assert count(folded, keras.layers.BatchNormalization) == 0
    x = photos_batch(2)
    np.testing.assert_allclose(folded(x).numpy(), model(x).numpy(), atol=1e-5, rtol=1e-4)


def test_bf16_folding_stays_within_bf16_rounding_of_float32():
    # The folded kernel is rounded to bf16 once, where the unfolded network
    # rounds each activation around a float32 BatchNorm: the two bf16 outputs
    # differ by rounding, both near the float32 truth.
    cfg_widths = {"decoder_filters": [16, 8, 8, 8]}
    truth = tiny("mobilenetv2_pix2pix_tuned", activation="sigmoid", **cfg_widths)(photos_batch(), training=False).numpy()
    bf16 = tiny("mobilenetv2_pix2pix_tuned", "mixed_bfloat16", "sigmoid", **cfg_widths)
    folded = fold_batchnorm(bf16)
    assert folded.layers[-1].dtype_policy.name == "float32"
    computing = [layer for layer in sublayers(bf16) if layer.weights and not isinstance(layer, keras.Model)]
    assert len(computing) > 50 and {layer.dtype_policy.name for layer in computing} == {"mixed_bfloat16"}
    copies = {layer.name: layer for layer in sublayers(folded)}
    assert all(copies[layer.name].dtype_policy.name == "mixed_bfloat16" for layer in computing)
    got = folded(photos_batch(), training=False).numpy()
    assert got.dtype == np.float32
    assert np.abs(got - truth).max() < 0.02


def test_depthwise_multiplier_and_conv_bias_fold():
    inputs = keras.Input((9, 11, 3))
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", use_bias=True, name="dw")(inputs)
    x = keras.layers.BatchNormalization(name="dw_bn")(x)
    x = keras.layers.Conv2DTranspose(5, 3, strides=2, padding="same", use_bias=True, name="up")(x)
    x = keras.layers.BatchNormalization(name="up_bn", epsilon=0.1)(x)
    model = keras.Model(inputs, keras.layers.ReLU()(x))
    keras.utils.set_random_seed(2)
    for layer in model.layers:
        if layer.weights and not isinstance(layer, keras.layers.BatchNormalization):
            layer.set_weights([np.random.default_rng(3).normal(0, 0.5, w.shape).astype("float32") for w in layer.get_weights()])
    randomise_batchnorms(model, seed=4)
    assert foldable_pairs(model) == {"dw_bn": "dw", "up_bn": "up"}
    x = np.random.default_rng(5).normal(0, 1, (2, 9, 11, 3)).astype("float32")
    np.testing.assert_allclose(fold_batchnorm(model)(x).numpy(), model(x).numpy(), atol=1e-5)


def test_a_conv_with_an_activation_keeps_its_batchnorm():
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(x))
    randomise_batchnorms(model)
    assert foldable_pairs(model) == {}
    x = np.random.default_rng(7).normal(0, 1, (2, 8, 8, 2)).astype("float32")
    np.testing.assert_allclose(fold_batchnorm(model)(x).numpy(), model(x).numpy(), atol=1e-6)


def test_a_conv_used_elsewhere_keeps_its_batchnorm():
    # The raw conv output feeds a skip too: folding would change the skip.
    inputs = keras.Input((8, 8, 2))
    conv = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="conv")(inputs)
    normed = keras.layers.BatchNormalization(name="bn")(conv)
    out = keras.layers.Concatenate()([normed, conv])
    model = keras.Model(inputs, out)
    randomise_batchnorms(model)
    assert foldable_pairs(model) == {}
    x = np.random.default_rng(6).normal(0, 1, (2, 8, 8, 2)).astype("float32")
    folded = fold_batchnorm(model)
    assert count(folded, keras.layers.BatchNormalization) == 1
    np.testing.assert_allclose(folded(x).numpy(), model(x).numpy(), atol=1e-6)
