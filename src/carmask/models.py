"""The four U-Net architectures of the reference study, as plain Keras 3 builders.

Every model takes ``(input_height, input_width, channels)`` float32 images in
[0, 1] and returns ``(input_height, input_width, output_channels)``. What an
encoder needs beyond that happens inside the model, so callers (training,
prediction) never depend on the architecture:

- sizes that the network's total stride does not divide are zero-padded at the
  start (``ZeroPadding2D``) and cropped back at the end (``Cropping2D``);
- grayscale input is repeated to the three channels a pretrained encoder expects;
- the encoder's own input scaling (MobileNetV2: [-1, 1]; VGG19: caffe-style BGR
  minus the ImageNet mean) is a layer of the model.

The saved ``.keras`` files therefore load with plain ``keras.models.load_model``
and no custom objects.

The pix2pix models nest their encoder as one sub-model named ``"encoder"``,
as the study did; that is what ``freeze_encoder`` freezes and what an
``encoder_weights`` file is loaded into.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from carmask.settings import PRECISIONS

#: Allowed values of ``output_activation``; ``None`` and ``"linear"`` both leave
#: the last layer linear (the study's model_tl1 had no activation).
OUTPUT_ACTIVATIONS = ("sigmoid", "linear", None)

#: Parameter counts printed in the reference study, with the size and output
#: channels they were measured at. ``mobilenetv2_pix2pix*`` reproduce exactly at
#: that size (encoder frozen, 3 outputs, no activation: it adds no parameters);
#: the study's VGG19 and from-scratch U-Net layouts are not recoverable from its
#: numbers, so ours differ (see the builders' docstrings).
STUDY_PARAMETER_COUNTS: dict[str, dict[str, Any]] = {
    "mobilenetv2_pix2pix": {
        "input_shape": "224x224x3",
        "output_channels": 3,
        "total": 6_504_227,
        "trainable": 4_660_323,
        "non_trainable": 1_843_904,
    },
    "mobilenetv2_pix2pix_tuned": {
        "input_shape": "224x224x3",
        "output_channels": 3,
        "total": 6_247_235,
        "trainable": 4_403_235,
        "non_trainable": 1_844_000,
    },
    "vgg19_pix2pix": {
        "input_shape": "512x512x3",
        "output_channels": 3,
        "total": 21_364_035,
        "trainable": 8_415_491,
        "non_trainable": 12_948_544,
    },
    "unet": {
        "input_shape": "224x224x1",
        "output_channels": 1,
        "total": 9_325_601,
        "trainable": 9_318_945,
        "non_trainable": 6_656,
    },
}


# --------------------------------------------------------------------------
# Backbones
# --------------------------------------------------------------------------


def _preprocess_mobilenetv2(x: keras.KerasTensor) -> keras.KerasTensor:
    """[0, 1] -> [-1, 1], what ``keras.applications.mobilenet_v2.preprocess_input`` gives for [0, 255]."""
    return keras.layers.Rescaling(2.0, offset=-1.0, name="preprocess")(x)


def _preprocess_vgg19(x: keras.KerasTensor) -> keras.KerasTensor:
    """[0, 1] RGB -> caffe-style BGR in [0, 255] minus the ImageNet channel means.

    The channel flip is a ``keras.ops`` call rather than a layer: Keras has no
    channel-reversing layer, and ops serialize in ``.keras`` files without
    custom objects (a ``Lambda`` would not load in safe mode).
    """
    bgr = keras.ops.flip(x, axis=-1)
    return keras.layers.Rescaling(255.0, offset=[-103.939, -116.779, -123.68], name="preprocess")(bgr)


@dataclass(frozen=True)
class Backbone:
    """A pretrained ``keras.applications`` encoder and where a U-Net taps it.

    ``skip_layers`` run shallow to deep at 1/2, 1/4, 1/8 and 1/16 of the
    input size; ``bottom_layer`` is at 1/32. ``weights_file`` is the name Keras
    downloads the ImageNet no-top weights to (under ``~/.keras/models/``); it
    may hold ``{size}``, which ``native_sizes`` fills in the way Keras does.
    """

    constructor: Callable[..., keras.Model]
    skip_layers: tuple[str, ...]
    bottom_layer: str
    preprocess: Callable[[keras.KerasTensor], keras.KerasTensor]
    weights_file: str
    native_sizes: tuple[int, ...] = ()

    def weights_file_for(self, height: int, width: int) -> str:
        """The ImageNet weights file Keras looks for at this (padded) input size.

        MobileNetV2 has one file per square size in ``native_sizes`` and falls
        back to the 224 file for anything else, so the name depends on the size.
        """
        size = height if height == width and height in self.native_sizes else 224
        return self.weights_file.format(size=size)


BACKBONES: dict[str, Backbone] = {
    "mobilenetv2": Backbone(
        constructor=keras.applications.MobileNetV2,
        skip_layers=("block_1_expand_relu", "block_3_expand_relu", "block_6_expand_relu", "block_13_expand_relu"),
        bottom_layer="block_16_project",
        preprocess=_preprocess_mobilenetv2,
        weights_file="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{size}_no_top.h5",
        native_sizes=(96, 128, 160, 192, 224),
    ),
    # The last conv of each block before its pooling, so every skip is at the
    # resolution the decoder has reached; the pooled block5 output is the bottom.
    "vgg19": Backbone(
        constructor=keras.applications.VGG19,
        skip_layers=("block2_conv2", "block3_conv4", "block4_conv4", "block5_conv4"),
        bottom_layer="block5_pool",
        preprocess=_preprocess_vgg19,
        weights_file="vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
}

#: The downsampling factor of every backbone (bottom layer at 1/32).
BACKBONE_STRIDE = 32


def _keras_models_dir() -> Path:
    """Where ``keras.utils.get_file`` caches application weights."""
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def _build_encoder(
    backbone: str, input_shape: tuple[int, int, int], encoder_weights: str | os.PathLike[str] | None
) -> keras.Model:
    """The backbone cut at its bottom layer, with one output per skip plus the bottom.

    ``input_shape`` is the padded 3-channel shape. The result is named
    ``"encoder"`` so weights can be saved from and loaded into it by name.
    """
    spec = BACKBONES[backbone]

    def backbone_model(weights: str | None) -> keras.Model:
        # Our own named input: keras.applications would auto-name it. The
        # shape is passed too because MobileNetV2 picks its weights file by it.
        inputs = keras.Input(input_shape, name="encoder_input")
        return spec.constructor(include_top=False, weights=weights, input_shape=input_shape, input_tensor=inputs)

    if encoder_weights == "imagenet":
        try:
            base = backbone_model("imagenet")
        except Exception as exc:
            raise RuntimeError(_imagenet_help(backbone, input_shape, exc)) from exc
    else:
        base = backbone_model(None)
    outputs = [base.get_layer(name).output for name in (*spec.skip_layers, spec.bottom_layer)]
    encoder = keras.Model(base.input, outputs, name="encoder")
    if encoder_weights not in ("imagenet", "none", None):
        load_encoder_weights(encoder, encoder_weights)
    return encoder


def _imagenet_help(backbone: str, input_shape: tuple[int, int, int], exc: Exception) -> str:
    """Say exactly which file to put where when the ImageNet download fails (offline)."""
    fname = BACKBONES[backbone].weights_file_for(input_shape[0], input_shape[1])
    return (
        f"Could not get the ImageNet weights for the {backbone} encoder ({type(exc).__name__}: {exc}). "
        f"If this machine is offline, either place the file {fname} in {_keras_models_dir()}/ "
        f"(Keras's cache: ~/.keras/models/, or $KERAS_HOME/models/), "
        f"or set 'encoder_weights: none' to start from random weights, "
        f"or set 'encoder_weights' to the path of a weights file for this encoder."
    )


def load_encoder_weights(encoder: keras.Model, path: str | os.PathLike[str]) -> None:
    """Load a weights file into ``encoder``, matching layers by name where the format allows.

    A legacy ``.h5``/``.hdf5`` file (such as Keras's own ImageNet file, or one
    saved from any model containing these layer names) is matched by layer
    name and layers it lacks or shapes that differ are skipped. A Keras 3
    ``.weights.h5`` or ``.keras`` file is matched by structure, so it must
    come from an encoder of the same backbone (``model.get_layer("encoder")``).
    Raises if the file is missing or if nothing in it matched, because a
    silently random "pretrained" encoder is the costliest possible mistake.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(
            f"encoder_weights {str(path)!r} is neither 'imagenet', 'none' nor an existing weights file"
        )
    before = [w.numpy() for w in encoder.weights]
    name = file.name.lower()
    if name.endswith((".h5", ".hdf5")) and not name.endswith(".weights.h5"):
        encoder.load_weights(file, skip_mismatch=True, by_name=True)
    else:
        encoder.load_weights(file, skip_mismatch=True)
    if all(np.array_equal(old, w.numpy()) for old, w in zip(before, encoder.weights)):
        raise ValueError(f"no layer of the encoder matched the weights in {file}")


# --------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------


def pix2pix_upsample(filters: int, size: int, name: str) -> keras.Sequential:
    """The pix2pix decoder block: doubles the resolution.

    Conv2DTranspose (stride 2, 'same', N(0, 0.02) init, no bias: BatchNorm's
    offset replaces it) -> BatchNorm -> ReLU, as in the TensorFlow pix2pix
    example the study used. A ``Sequential`` so the summary shows one row per
    block, like the study's.
    """
    return keras.Sequential(
        [
            keras.layers.Conv2DTranspose(
                filters,
                size,
                strides=2,
                padding="same",
                kernel_initializer=keras.initializers.RandomNormal(0.0, 0.02),
                use_bias=False,
                name=f"{name}_conv",
            ),
            keras.layers.BatchNormalization(name=f"{name}_bn"),
            keras.layers.ReLU(name=f"{name}_relu"),
        ],
        name=name,
    )


def _padding(height: int, width: int, multiple: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """((top, bottom), (left, right)) zeros that bring the size up to a multiple, split evenly."""
    pad_h, pad_w = -height % multiple, -width % multiple
    return ((pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2))


def _pad(x: keras.KerasTensor, padding: tuple[tuple[int, int], tuple[int, int]]) -> keras.KerasTensor:
    """Zero-pad (black in [0, 1]); no layer when nothing is needed, so such models match the study's layers."""
    return keras.layers.ZeroPadding2D(padding, name="pad")(x) if any(sum(p) for p in padding) else x


def _crop(x: keras.KerasTensor, padding: tuple[tuple[int, int], tuple[int, int]]) -> keras.KerasTensor:
    """Undo :func:`_pad`, so the mask has the input's size."""
    return keras.layers.Cropping2D(padding, name="crop")(x) if any(sum(p) for p in padding) else x


def _head(logits: keras.KerasTensor, activation: str | None) -> keras.KerasTensor:
    """The output activation, computed in float32 whatever the model's dtype policy.

    Under mixed precision the output conv computes logits in 16 bits; a
    sigmoid in bf16 rounds to exactly 1.0 from a logit of about 6.3 (fp16:
    8.4), so a confidently wrong pixel would get no gradient. Here the
    logits are cast to float32 first and the activation (or, for a linear
    head, nothing) is applied there: the probabilities and the loss are
    float32, and the layer has no weights, so weights copy between policies.
    """
    return keras.layers.Activation(activation or "linear", dtype="float32", name="output_activation")(logits)


def _check_input_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    height, width, channels = (int(v) for v in input_shape)
    if height < 1 or width < 1:
        raise ValueError(f"input size must be positive, got {height}x{width}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    return height, width, channels


def _check_output_activation(output_activation: str | None) -> str | None:
    if output_activation not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"output_activation must be one of {OUTPUT_ACTIVATIONS}, got {output_activation!r}")
    return None if output_activation == "linear" else output_activation


# --------------------------------------------------------------------------
# Architectures
# --------------------------------------------------------------------------


def _pix2pix_unet(
    backbone: str,
    name: str,
    input_shape: Sequence[int],
    decoder_filters: Sequence[int],
    output_channels: int,
    output_activation: str | None,
    encoder_weights: str | os.PathLike[str] | None,
    freeze_encoder: bool,
) -> keras.Model:
    """A pretrained encoder, a pix2pix decoder concatenating its skips, and a stride-2 output conv.

    The TensorFlow image-segmentation tutorial layout the study built on.
    """
    height, width, channels = _check_input_shape(input_shape)
    activation = _check_output_activation(output_activation)
    skips = BACKBONES[backbone].skip_layers
    if len(decoder_filters) != len(skips):
        raise ValueError(f"decoder_filters needs {len(skips)} values (one per skip), got {list(decoder_filters)}")
    padding = _padding(height, width, BACKBONE_STRIDE)
    padded = (height + sum(padding[0]), width + sum(padding[1]), 3)

    inputs = keras.Input((height, width, channels), name="image")
    x = _pad(inputs, padding)
    if channels == 1:
        x = keras.layers.Concatenate(name="gray_to_rgb")([x, x, x])
    x = BACKBONES[backbone].preprocess(x)
    encoder = _build_encoder(backbone, padded, encoder_weights)
    encoder.trainable = not freeze_encoder
    *skip_outputs, x = encoder(x)
    for stage, (filters, skip) in enumerate(zip(decoder_filters, reversed(skip_outputs)), start=1):
        x = pix2pix_upsample(int(filters), 3, name=f"decoder_stage{stage}")(x)
        x = keras.layers.Concatenate(name=f"decoder_stage{stage}_concat")([x, skip])
    x = keras.layers.Conv2DTranspose(output_channels, 3, strides=2, padding="same", name="output_conv")(x)
    return keras.Model(inputs, _head(_crop(x, padding), activation), name=name)


def mobilenetv2_pix2pix(
    input_shape: Sequence[int] = (224, 224, 3),
    decoder_filters: Sequence[int] = (512, 256, 128, 64),
    output_channels: int = 1,
    output_activation: str | None = None,
    encoder_weights: str | os.PathLike[str] | None = "imagenet",
    freeze_encoder: bool = True,
) -> keras.Model:
    """The study's model_tl1: MobileNetV2 + the tutorial's pix2pix decoder, no output activation.

    The tutorial's decoder widths leave each concatenation unbalanced
    (512 upsampled + 576 skip at 1/16, ...), which is what model_tl2 fixed.
    """
    return _pix2pix_unet(
        "mobilenetv2",
        "mobilenetv2_pix2pix",
        input_shape,
        decoder_filters,
        output_channels,
        output_activation,
        encoder_weights,
        freeze_encoder,
    )


def mobilenetv2_pix2pix_tuned(
    input_shape: Sequence[int] = (224, 224, 3),
    decoder_filters: Sequence[int] = (576, 192, 144, 96),
    output_channels: int = 1,
    output_activation: str | None = "sigmoid",
    encoder_weights: str | os.PathLike[str] | None = "imagenet",
    freeze_encoder: bool = True,
) -> keras.Model:
    """The study's model_tl2: each decoder stage as wide as the skip it joins, sigmoid output."""
    return _pix2pix_unet(
        "mobilenetv2",
        "mobilenetv2_pix2pix_tuned",
        input_shape,
        decoder_filters,
        output_channels,
        output_activation,
        encoder_weights,
        freeze_encoder,
    )


def vgg19_pix2pix(
    input_shape: Sequence[int] = (512, 512, 3),
    decoder_filters: Sequence[int] = (512, 512, 256, 128),
    output_channels: int = 1,
    output_activation: str | None = "sigmoid",
    encoder_weights: str | os.PathLike[str] | None = "imagenet",
    freeze_encoder: bool = True,
) -> keras.Model:
    """VGG19 + pix2pix decoder, balanced like model_tl2.

    Skips are the last conv of blocks 2-5 and the bottom is ``block5_pool``,
    the same 1/2..1/32 taps as MobileNetV2. That gives the study's output
    layer exactly (6,915 parameters: 128 upsampled + 128 skip -> 3), but its
    totals imply an encoder cut after ``block5_conv1``, which no stride-2
    output layout reaches; ours keeps all of VGG19 (20,024,384 parameters).
    """
    return _pix2pix_unet(
        "vgg19",
        "vgg19_pix2pix",
        input_shape,
        decoder_filters,
        output_channels,
        output_activation,
        encoder_weights,
        freeze_encoder,
    )


def _conv_block(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    """Two 3x3 conv -> BatchNorm -> ReLU; the convs have no bias since BatchNorm's offset replaces it."""
    for i in (1, 2):
        x = keras.layers.Conv2D(
            filters, 3, padding="same", use_bias=False, kernel_initializer="he_normal", name=f"{name}_conv{i}"
        )(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = keras.layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def unet(
    input_shape: Sequence[int] = (224, 224, 1),
    base_filters: int = 32,
    output_channels: int = 1,
    output_activation: str | None = "sigmoid",
) -> keras.Model:
    """A U-Net trained from scratch: 4 down blocks, a bottleneck, 4 up blocks, 1x1 output conv.

    Widths double per level from ``base_filters`` (32 -> 512 at the bottom), up
    blocks use a 3x3 stride-2 Conv2DTranspose. Pooling 4 times needs sizes
    divisible by 16 only, so that is what it pads to. Inputs in [0, 1] need no
    scaling: there is no pretrained encoder to match.
    """
    height, width, channels = _check_input_shape(input_shape)
    activation = _check_output_activation(output_activation)
    levels = [base_filters * 2**i for i in range(4)]
    padding = _padding(height, width, 2 ** len(levels))

    inputs = keras.Input((height, width, channels), name="image")
    x = _pad(inputs, padding)
    skips = []
    for stage, filters in enumerate(levels, start=1):
        x = _conv_block(x, filters, name=f"encoder_stage{stage}")
        skips.append(x)
        x = keras.layers.MaxPooling2D(name=f"encoder_stage{stage}_pool")(x)
    x = _conv_block(x, 2 * levels[-1], name="bottleneck")
    for stage, (filters, skip) in enumerate(zip(reversed(levels), reversed(skips)), start=1):
        x = keras.layers.Conv2DTranspose(filters, 3, strides=2, padding="same", name=f"decoder_stage{stage}_up")(x)
        x = keras.layers.Concatenate(name=f"decoder_stage{stage}_concat")([x, skip])
        x = _conv_block(x, filters, name=f"decoder_stage{stage}")
    x = keras.layers.Conv2D(output_channels, 1, name="output_conv")(x)
    return keras.Model(inputs, _head(_crop(x, padding), activation), name="unet")


ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {
    "mobilenetv2_pix2pix": mobilenetv2_pix2pix,
    "mobilenetv2_pix2pix_tuned": mobilenetv2_pix2pix_tuned,
    "vgg19_pix2pix": vgg19_pix2pix,
    "unet": unet,
}




def build_model(cfg: dict[str, Any]) -> keras.Model:
    """Build the model a config block describes, as the schema checked and completed it.

    Required (the schema requires or defaults them all): ``architecture``,
    ``input_height``, ``input_width``, ``channels``, ``encoder_weights``,
    ``freeze_encoder`` and ``output_activation`` (``"linear"`` or null leave
    logits). The head has one channel, the car's probability (the builders
    take ``output_channels`` for the study's parameter counts). Per family,
    ``decoder_filters`` (pix2pix) or ``base_filters`` (unet) set the widths;
    unset, the architecture's own. Training keys (loss, epochs, ...) are
    ignored. ``unet`` has no encoder, so it ignores ``freeze_encoder`` and
    accepts only ``encoder_weights: none``. ``bn_momentum`` (optional) sets
    every BatchNorm layer's moving-average momentum. ``precision`` (optional,
    default ``float32``) is a Keras dtype policy: ``mixed_bfloat16`` uses the
    bf16 units of recent CPUs (AMX, AVX-512 BF16), ``mixed_float16`` a GPU's
    tensor cores; either way the output stays float32.
    """
    architecture = cfg.get("architecture")
    if architecture not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {architecture!r}; allowed: {', '.join(ARCHITECTURES)}")
    for key in ("input_height", "input_width", "channels", "encoder_weights", "freeze_encoder", "output_activation"):
        if key not in cfg:
            raise ValueError(f"model config for {architecture} lacks {key!r}")
    kwargs: dict[str, Any] = {
        "input_shape": (int(cfg["input_height"]), int(cfg["input_width"]), int(cfg["channels"])),
        "output_activation": cfg["output_activation"],
    }
    encoder_weights = cfg["encoder_weights"]
    freeze_encoder = cfg["freeze_encoder"]
    if not isinstance(freeze_encoder, bool):
        raise ValueError(f"freeze_encoder must be true or false, got {freeze_encoder!r}")
    if architecture == "unet":
        if "decoder_filters" in cfg:
            raise ValueError("unet sets its widths with base_filters, not decoder_filters")
        if encoder_weights not in (None, "none"):
            raise ValueError(f"unet has no pretrained encoder; encoder_weights must be 'none', got {encoder_weights!r}")
        if "base_filters" in cfg:
            kwargs["base_filters"] = int(cfg["base_filters"])
    else:
        if "base_filters" in cfg:
            raise ValueError(f"{architecture} sets its widths with decoder_filters, not base_filters")
        if "decoder_filters" in cfg:
            kwargs["decoder_filters"] = [int(f) for f in cfg["decoder_filters"]]
        kwargs["encoder_weights"] = encoder_weights
        kwargs["freeze_encoder"] = freeze_encoder
    precision = cfg.get("precision", "float32")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    previous = keras.config.dtype_policy()
    # Built inside the policy, so the model's own policy is the mixed one
    # (Keras then scales the loss of a mixed_float16 model against
    # underflow); the head computes in float32 either way (_head).
    keras.config.set_dtype_policy(precision)
    try:
        model = ARCHITECTURES[architecture](**kwargs)
    finally:
        keras.config.set_dtype_policy(previous)
    if cfg.get("bn_momentum") is not None:
        set_bn_momentum(model, float(cfg["bn_momentum"]))
    return model


def set_bn_momentum(model: keras.Model, momentum: float) -> None:
    """Set the moving-average momentum of every BatchNorm layer, nested ones too.

    Keras' MobileNetV2 uses 0.999, tuned for a million ImageNet steps. A run
    of a few hundred steps from scratch leaves the moving statistics near
    their initial values, so the model predicts well in training mode and
    garbage in inference mode; 0.9 converges within ~50 steps.
    """
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
        elif hasattr(layer, "layers"):  # a nested model: the encoder, a decoder block
            set_bn_momentum(layer, momentum)


def parameter_counts(model: keras.Model) -> dict[str, int]:
    """Total, trainable and non-trainable parameters, counted as Keras's summary does.

    Frozen layers and BatchNorm moving statistics are non-trainable.
    """
    trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
    non_trainable = sum(math.prod(w.shape) for w in model.non_trainable_weights)
    return {"total": trainable + non_trainable, "trainable": trainable, "non_trainable": non_trainable}
