"""The four architectures: study parameter counts, any input size, one training step, save/load, encoder weights.

Inputs are tiny (40x70, not multiples of 32 nor square) and training steps run
eagerly: tracing a graph for a single step costs far more than the step on a
2-core machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from carmask.network import backbones
from carmask.network.losses import bce_dice
from carmask.network.architectures import ARCHITECTURES, STUDY_PARAMETER_COUNTS, build_model, parameter_counts
from carmask.network.spec import Architecture

HEIGHT, WIDTH = 40, 70


def tiny_cfg(architecture: str, channels: int = 3, **overrides) -> dict:
    """A model block as the schema leaves it (required keys set, defaults filled in)."""
    cfg = {
        "architecture": architecture,
        "input_height": HEIGHT,
        "input_width": WIDTH,
        "channels": channels,
        "encoder_weights": "none",
        "freeze_encoder": architecture != "unet",
        "output_activation": "sigmoid",
        "loss": "bce_dice",  # training keys ride along in real configs
        "epochs": 3,
    }
    cfg.update(overrides)
    return cfg


def arch(architecture: str, channels: int = 3, **overrides) -> Architecture:
    """The typed architecture of :func:`tiny_cfg`'s block."""
    return Architecture.from_config(tiny_cfg(architecture, channels, **overrides))


def random_batch(channels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((2, HEIGHT, WIDTH, channels), dtype=np.float32)
    y = (rng.random((2, HEIGHT, WIDTH, 1)) > 0.5).astype(np.float32)
    return x, y


@pytest.mark.parametrize(
    ("architecture", "total", "trainable"),
    [
        ("mobilenetv2_pix2pix", 6_504_227, 4_660_323),
        ("mobilenetv2_pix2pix_tuned", 6_247_235, 4_403_235),
    ],
)
def test_mobilenet_models_match_the_study_parameter_counts(architecture, total, trainable):
    model = ARCHITECTURES[architecture](
        input_shape=(224, 224, 3),
        output_channels=3,
        output_activation=None,
        encoder_weights="none",
        freeze_encoder=True,
    )
    assert model.count_params() == total
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == trainable
    assert parameter_counts(model) == {"total": total, "trainable": trainable, "non_trainable": total - trainable}
    study = STUDY_PARAMETER_COUNTS[architecture]
    assert (study["total"], study["trainable"]) == (total, trainable)


def test_study_counts_cover_every_architecture_and_add_up():
    assert set(STUDY_PARAMETER_COUNTS) == set(ARCHITECTURES)
    for counts in STUDY_PARAMETER_COUNTS.values():
        assert counts["trainable"] + counts["non_trainable"] == counts["total"]


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_any_size_and_channel_count_gives_a_same_size_mask(architecture, channels):
    model = build_model(arch(architecture, channels))
    x, _ = random_batch(channels)
    probs = np.asarray(model(x))
    assert probs.shape == (2, HEIGHT, WIDTH, 1)
    assert np.all((probs >= 0) & (probs <= 1)), "sigmoid is the config default"


@pytest.mark.parametrize(
    ("architecture", "channels", "freeze"),
    [
        ("mobilenetv2_pix2pix", 3, True),
        ("mobilenetv2_pix2pix_tuned", 1, False),
        ("vgg19_pix2pix", 1, True),
        ("unet", 3, False),
    ],
)
def test_one_training_step_then_keras_file_round_trip(tmp_path, architecture, channels, freeze):
    cfg = tiny_cfg(architecture, channels)
    if architecture != "unet":
        cfg["freeze_encoder"] = freeze
    model = build_model(Architecture.from_config(cfg))
    x, y = random_batch(channels)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=bce_dice, run_eagerly=True)
    encoder = model.get_layer("encoder") if architecture != "unet" else None
    encoder_before = [w.numpy() for w in encoder.weights] if encoder else []
    output_before = [w.numpy() for w in model.get_layer("output_conv").weights]

    loss = model.train_on_batch(x, y)

    assert np.isfinite(loss)
    assert not np.array_equal(output_before[0], model.get_layer("output_conv").weights[0].numpy())
    if encoder:
        unchanged = all(np.array_equal(b, w.numpy()) for b, w in zip(encoder_before, encoder.weights))
        assert unchanged == freeze

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    np.testing.assert_array_equal(np.asarray(loaded(x)), np.asarray(model(x)))
    assert parameter_counts(loaded) == parameter_counts(model)


@pytest.mark.parametrize(
    ("backbone", "architecture"),
    [("mobilenetv2", "mobilenetv2_pix2pix"), ("vgg19", "vgg19_pix2pix")],
)
def test_encoder_preprocessing_matches_keras_preprocess_input(backbone, architecture):
    model = ARCHITECTURES[architecture](input_shape=(64, 64, 3), encoder_weights="none")
    preprocess = keras.Model(model.input, model.get_layer("preprocess").output)
    x = np.random.default_rng(1).random((1, 64, 64, 3), dtype=np.float32)
    expected = getattr(
        keras.applications, {"mobilenetv2": "mobilenet_v2", "vgg19": "vgg19"}[backbone]
    ).preprocess_input(255.0 * x)
    np.testing.assert_allclose(np.asarray(preprocess(x)), expected, atol=1e-3)


def test_output_activation_linear_leaves_logits():
    model = build_model(arch("unet", 1, output_activation=None))
    assert model.get_layer("output_conv").activation is keras.activations.linear
    assert model.get_layer("output_activation").activation is keras.activations.linear


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("architecture", ["mobilenetv2_pix2pix_tuned", "unet"])
@pytest.mark.parametrize("logit", [10.0, -10.0])
def test_mixed_precision_head_keeps_the_gradient_of_confidently_wrong_pixels(architecture, precision, logit):
    # A sigmoid computed in bf16 is exactly 1.0 from a logit of ~6.3 (fp16:
    # ~8.4): a pixel that confident and wrong would get no gradient. The head
    # applies the sigmoid in float32, where sigmoid(+-10) is 4.5e-5 from 0/1.
    import tensorflow as tf

    model = build_model(arch(architecture, train_precision=precision))
    head = model.get_layer("output_conv")
    assert head.activation is keras.activations.linear and head.compute_dtype == precision.removeprefix("mixed_")
    assert model.get_layer("output_activation").compute_dtype == "float32"
    # Every output pixel's logit set to `logit`: zero kernel, the bias alone.
    kernel, bias = head.get_weights()
    head.set_weights([np.zeros_like(kernel), np.full_like(bias, logit)])
    x, _ = random_batch(3)
    wrong = np.full(model.output.shape[1:], 0.0 if logit > 0 else 1.0, np.float32)[None].repeat(2, axis=0)
    with tf.GradientTape() as tape:
        loss = bce_dice(wrong, model(x, training=True))
    grad = tape.gradient(loss, head.trainable_weights[1])
    assert np.all(np.isfinite(grad.numpy())) and abs(float(grad.numpy()[0])) > 1e-3


def test_weights_copy_between_precisions_and_give_the_same_probabilities():
    full = build_model(arch("unet"))
    x, _ = random_batch(3)
    for precision, atol in (("mixed_bfloat16", 0.05), ("mixed_float16", 0.01)):
        mixed = build_model(arch("unet", train_precision=precision))
        mixed.set_weights(full.get_weights())
        np.testing.assert_allclose(np.asarray(mixed(x, training=False)), np.asarray(full(x, training=False)), atol=atol)


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (tiny_cfg("resnet_unet"), "mobilenetv2_pix2pix, mobilenetv2_pix2pix_tuned, vgg19_pix2pix, unet"),
        (tiny_cfg("unet", output_activation="softmax"), "sigmoid"),
        (tiny_cfg("unet", channels=2), "1 .grayscale. or 3"),
        (tiny_cfg("mobilenetv2_pix2pix", decoder_filters=[64, 32]), "4 values"),
        (tiny_cfg("mobilenetv2_pix2pix", base_filters=16), "decoder_filters"),
        (tiny_cfg("unet", decoder_filters=[64, 32, 16, 8]), "base_filters"),
        (tiny_cfg("unet", encoder_weights="imagenet"), "'none'"),
        (tiny_cfg("vgg19_pix2pix", freeze_encoder="yes"), "true or false"),
        ({"architecture": "unet", "input_height": 64}, "input_width"),
        (tiny_cfg("unet", train_precision="float16"), "float32, mixed_bfloat16, mixed_float16"),
    ],
)
def test_bad_config_values_raise_value_error_naming_what_is_allowed(cfg, message):
    with pytest.raises(ValueError, match=message):
        build_model(Architecture.from_config(cfg))


@pytest.mark.parametrize(
    ("architecture", "size", "weights_file"),
    [
        ("mobilenetv2_pix2pix", (HEIGHT, WIDTH), "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"),
        ("mobilenetv2_pix2pix_tuned", (96, 96), "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5"),
        ("vgg19_pix2pix", (HEIGHT, WIDTH), "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    ],
)
def test_imagenet_weights_offline_name_the_file_and_the_alternatives(tmp_path, architecture, size, weights_file):
    # A fresh process whose Keras cache is empty and whose downloads go to a
    # closed port on this machine (a proxy Python's urllib honours): offline,
    # hermetically, through public APIs only.
    proc = _isolated(
        tmp_path,
        f"""
        from carmask.network.architectures import build_model
        from carmask.network.spec import Architecture
        cfg = {tiny_cfg(architecture, input_height=size[0], input_width=size[1], encoder_weights="imagenet")!r}
        try:
            build_model(Architecture.from_config(cfg))
        except RuntimeError as err:
            print("ERROR:", err)
        else:
            raise SystemExit("built without the weights")
        """,
    )
    message = proc.stdout.split("ERROR:", 1)[1]  # not Keras' own "Downloading data from ..." line
    cause, advice = message.split("If this machine is offline", 1)
    assert "URL fetch failure" in cause and f"/{weights_file}" in cause, "the file Keras asked for"
    assert f"place the file {weights_file} in {tmp_path / 'keras' / 'models'}/" in advice, "our advice names that same file"
    assert "~/.keras/models/" in message
    assert "encoder_weights: none" in message
    assert "path of a weights file" in message


def _isolated(tmp_path, code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh Python with Keras' cache under ``tmp_path`` and no way out.

    Keras reads KERAS_HOME once, at import, hence a process of its own.
    """
    with socket.socket() as sock:  # a port nothing listens on: connections are refused at once
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "all_proxy")}
    env.update(HOME=str(tmp_path), KERAS_HOME=str(tmp_path / "keras"))
    for name in ("https_proxy", "http_proxy"):  # urllib reads the lower-case names first
        env[name] = env[name.upper()] = closed
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    return proc


def _encoder_weights(model: keras.Model) -> list[np.ndarray]:
    return [w.numpy() for w in model.get_layer("encoder").weights]


def test_encoder_weights_path_keras3_weights_file(tmp_path):
    source = build_model(arch("mobilenetv2_pix2pix"))
    path = tmp_path / "encoder.weights.h5"
    source.get_layer("encoder").save_weights(path)

    model = build_model(arch("mobilenetv2_pix2pix_tuned", 1, encoder_weights=str(path)))

    for expected, got in zip(_encoder_weights(source), _encoder_weights(model), strict=True):
        np.testing.assert_array_equal(got, expected)


def test_encoder_weights_path_legacy_h5_matches_layers_by_name(tmp_path):
    # Laid out like Keras's own ImageNet file: the whole no-top backbone, at
    # another input size, with layers (Conv_1, ...) the cut encoder lacks.
    backbone = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(96, 96, 3))
    path = tmp_path / "mobilenet_v2_no_top.h5"
    backbone.save(path)

    model = build_model(arch("mobilenetv2_pix2pix", encoder_weights=str(path)))

    encoder = model.get_layer("encoder")
    for layer in (layer for layer in encoder.layers if layer.weights):
        for expected, got in zip(backbone.get_layer(layer.name).weights, layer.weights, strict=True):
            np.testing.assert_array_equal(got.numpy(), expected.numpy())


def test_encoder_weights_path_that_matches_nothing_fails(tmp_path):
    other = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3, name="not_in_mobilenet")])
    path = tmp_path / "other.h5"
    other.save(path)
    with pytest.raises(ValueError, match="no layer of the encoder matched"):
        build_model(arch("mobilenetv2_pix2pix", encoder_weights=str(path)))


def test_encoder_weights_missing_file_fails_clearly(tmp_path):
    missing = tmp_path / "nowhere.h5"
    with pytest.raises(FileNotFoundError, match="neither 'imagenet', 'none' nor an existing weights file"):
        build_model(arch("vgg19_pix2pix", encoder_weights=str(missing)))


def test_weights_file_names_follow_keras_rules():
    mobilenet = backbones.BACKBONES["mobilenetv2"]
    assert mobilenet.weights_file_for(160, 160).endswith("_1.0_160_no_top.h5")
    assert mobilenet.weights_file_for(160, 256).endswith("_1.0_224_no_top.h5")
    assert backbones.BACKBONES["vgg19"].weights_file_for(512, 512) == "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"


@pytest.mark.parametrize("architecture", ["vgg19_pix2pix", "unet"])
def test_layer_names_are_deterministic(architecture):
    names = [[layer.name for layer in build_model(arch(architecture, 1)).layers] for _ in range(2)]
    assert names[0] == names[1]
    assert "decoder_stage1_concat" in names[0]


def test_imagenet_weights_placed_where_the_message_says_are_used(tmp_path):
    # A stand-in for the real file (random weights, same layout) in the folder
    # the message names; 40x70 pads to 64x96, not a native square size, so
    # Keras falls back to the 224 file.
    (tmp_path / "keras" / "models").mkdir(parents=True)
    _isolated(
        tmp_path,
        f"""
        import keras, numpy as np
        from carmask.network.architectures import build_model
        from carmask.network.spec import Architecture
        stand_in = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(224, 224, 3))
        stand_in.save({str(tmp_path / "keras" / "models" / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5")!r})
        model = build_model(Architecture.from_config({tiny_cfg("mobilenetv2_pix2pix", encoder_weights="imagenet")!r}))
        expected = stand_in.get_layer("block_13_expand").weights[0].numpy()
        np.testing.assert_array_equal(model.get_layer("encoder").get_layer("block_13_expand").weights[0].numpy(), expected)
        """,
    )


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_bn_momentum_reaches_every_batchnorm_layer_nested_ones_too(architecture):
    def batchnorms(layer):
        found = [layer] if isinstance(layer, keras.layers.BatchNormalization) else []
        for inner in getattr(layer, "layers", []):
            found += batchnorms(inner)
        return found

    model = build_model(arch(architecture, bn_momentum=0.7))
    layers = batchnorms(model)
    assert layers and {layer.momentum for layer in layers} == {0.7}
    # every BatchNorm of the model, wherever it sits, owns one moving mean
    assert len(layers) == sum(v.path.endswith("moving_mean") for v in model.variables)


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("architecture", ["mobilenetv2_pix2pix_tuned", "unet"])
def test_mixed_precision_computes_in_16_bits_outputs_float32_and_keeps_the_weights(architecture, precision):
    full = build_model(arch(architecture))
    mixed = build_model(arch(architecture, train_precision=precision))
    compute = precision.removeprefix("mixed_")
    convs = [layer for layer in mixed._flatten_layers() if isinstance(layer, keras.layers.Conv2D)]
    assert convs and {layer.compute_dtype for layer in convs} == {compute}
    assert {v.dtype for v in mixed.weights} == {"float32"}  # mixed: variables stay float32
    assert [w.shape for w in mixed.get_weights()] == [w.shape for w in full.get_weights()]
    x, _ = random_batch(3)
    out = mixed(x, training=False)
    assert out.dtype == "float32" and tuple(out.shape) == tuple(full(x, training=False).shape)
    # building in a policy leaves the global one as it was
    assert keras.config.dtype_policy().name == "float32"
    # float16 training scales the loss (small gradients would underflow)
    mixed.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    assert isinstance(mixed.optimizer, keras.optimizers.LossScaleOptimizer) == (precision == "mixed_float16")
