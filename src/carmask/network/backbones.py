"""The pretrained ``keras.applications`` encoders of the pix2pix U-Nets, and their weights.

Which layers a decoder taps (skips at 1/2 .. 1/16, bottom at 1/32), the
encoder's own input scaling, and where its ImageNet weights come from: Keras's
download, a file the user placed in Keras's cache (offline machines), or any
weights file named in the config, loaded by layer name and refused when
nothing in it matched.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

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


def build_encoder(
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
