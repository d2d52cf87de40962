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
from typing import Any

import keras

from carmask.network.backbones import BACKBONE_STRIDE, BACKBONES, build_encoder
from carmask.network.spec import Architecture

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
    encoder = build_encoder(backbone, padded, encoder_weights)
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
    return _pix2pix_unet("mobilenetv2", "mobilenetv2_pix2pix", input_shape, decoder_filters, output_channels,
                         output_activation, encoder_weights, freeze_encoder)


def mobilenetv2_pix2pix_tuned(
    input_shape: Sequence[int] = (224, 224, 3),
    decoder_filters: Sequence[int] = (576, 192, 144, 96),
    output_channels: int = 1,
    output_activation: str | None = "sigmoid",
    encoder_weights: str | os.PathLike[str] | None = "imagenet",
    freeze_encoder: bool = True,
) -> keras.Model:
    """The study's model_tl2: each decoder stage as wide as the skip it joins, sigmoid output."""
    return _pix2pix_unet("mobilenetv2", "mobilenetv2_pix2pix_tuned", input_shape, decoder_filters, output_channels,
                         output_activation, encoder_weights, freeze_encoder)


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
    return _pix2pix_unet("vgg19", "vgg19_pix2pix", input_shape, decoder_filters, output_channels,
                         output_activation, encoder_weights, freeze_encoder)


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


def build_model(spec: Architecture) -> keras.Model:
    """Build the network ``spec`` describes, computing in its dtype policy.

    The head has one channel, the car's probability (the builders take
    ``output_channels`` for the study's parameter counts). ``mixed_bfloat16``
    uses the bf16 units of recent CPUs (AMX, AVX-512 BF16), ``mixed_float16``
    a GPU's tensor cores; either way the output stays float32.
    """
    kwargs: dict[str, Any] = {
        "input_shape": (spec.input_height, spec.input_width, spec.channels),
        "output_activation": spec.output_activation,
    }
    if spec.name == "unet":
        if spec.base_filters is not None:
            kwargs["base_filters"] = spec.base_filters
    else:
        if spec.decoder_filters is not None:
            kwargs["decoder_filters"] = list(spec.decoder_filters)
        kwargs["encoder_weights"] = spec.encoder_weights
        kwargs["freeze_encoder"] = spec.freeze_encoder
    previous = keras.config.dtype_policy()
    # Built inside the policy, so the model's own policy is the mixed one
    # (Keras then scales the loss of a mixed_float16 model against
    # underflow); the head computes in float32 either way (_head).
    keras.config.set_dtype_policy(spec.precision)
    try:
        model = ARCHITECTURES[spec.name](**kwargs)
    finally:
        keras.config.set_dtype_policy(previous)
    if spec.bn_momentum is not None:
        set_bn_momentum(model, spec.bn_momentum)
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
