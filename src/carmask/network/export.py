"""A trained model as a standalone serving artifact: a TensorFlow SavedModel and a TFLite file.

A ``model.keras`` needs this package to load (the custom losses it was
compiled with) and computes in whatever policy it trained in, BatchNorm
included. What serves masks elsewhere (TF Serving, a phone, a browser)
should need none of that, so the export is the inference network and only
that: computing in float32 (a bf16-trained model would be slow or
unsupported on most serving hardware, and its weights are float32 anyway),
every foldable BatchNorm merged into its conv (:mod:`carmask.network.folding`),
and one signature, ``serving_default``, that takes what the pipeline feeds
its models and always returns probabilities, whatever the head:

- input ``image``: float32 ``(batch, height, width, channels)`` in [0, 1]
  (the photo's uint8 values divided by 255, as the predict stage feeds them);
- output ``probability``: float32 ``(batch, height, width, 1)``, the car's
  probability per pixel at model size (a linear head's logits go through a
  sigmoid in the export).

``export.json`` beside the two says so, with the source model and what was folded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from carmask import files
from carmask.network.folding import FoldedBatchNorm, fold_batchnorm, sublayers
from carmask.network.inference import load_keras_model
from carmask.network.spec import Architecture

#: Names inside the export folder.
SAVED_MODEL = "saved_model"
TFLITE = "model.tflite"
INFO = "export.json"
#: The serving signature's input and output names.
INPUT_NAME, OUTPUT_NAME = "image", "probability"
HEADS = ("sigmoid", "linear")


def head_activation(model: keras.Model, source: str | Path) -> str:
    """``"sigmoid"`` or ``"linear"``: the head of a carmask segmentation model (one output channel)."""
    try:
        activation = model.get_layer("output_activation").get_config()["activation"]
    except ValueError:
        raise ValueError(f"{source} is not a carmask segmentation model: it has no 'output_activation' layer") from None
    if activation not in HEADS or len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise ValueError(f"{source}: expected one image input and a sigmoid or linear head, got {activation!r}")
    if tuple(model.outputs[0].shape[1:]) != tuple(model.inputs[0].shape[1:3]) + (1,):
        raise ValueError(f"{source}: the output {model.outputs[0].shape} is not one channel at the input's size")
    return activation


def in_float32(model: keras.Model, source: str | Path, spec: Architecture | None = None) -> keras.Model:
    """``model`` computing in float32 with its trained weights (``model`` itself if it already does).

    With ``spec`` the network is rebuilt from it (:func:`rebuilt_from`);
    without, the model is remade from its own config with every dtype
    float32 (:func:`float32_config`). Mixed-policy variables are float32
    already, so the weights copy unchanged.
    """
    if spec is not None:
        return rebuilt_from(spec, model, source)
    if policies(model) == ["float32"]:
        return model
    copy = keras.saving.deserialize_keras_object(float32_config(keras.saving.serialize_keras_object(model)))
    copy.set_weights(model.get_weights())
    return copy


def rebuilt_from(spec: Architecture, model: keras.Model, source: str | Path) -> keras.Model:
    """The network ``spec`` describes, in float32, holding ``model``'s weights.

    The way prediction rebuilds a model (:func:`carmask.network.inference.load_for_inference`).
    A spec that describes another model (input, head, layers) is an error naming ``source``.
    """
    from carmask.network.architectures import build_model
    from carmask.network.losses import outputs_logits

    shape, head = tuple(model.inputs[0].shape[1:]), head_activation(model, source)
    if shape != (*spec.size, spec.channels) or outputs_logits(spec.output_activation) != (head == "linear"):
        raise ValueError(f"{source}: the model takes {shape} with a {head} head; the spec describes "
                         f"{(*spec.size, spec.channels)} with {spec.output_activation!r}")
    rebuilt = build_model(spec.twin("float32"))
    try:
        rebuilt.set_weights(model.get_weights())
    except ValueError as exc:
        raise ValueError(f"{source}: its weights do not fit the {spec.name} the spec describes: {exc}") from exc
    return rebuilt


def policies(model: keras.Model) -> list[str]:
    """The dtype policies the layers of ``model`` compute in (nested models' layers included)."""
    computing = [layer for layer in sublayers(model) if layer.weights and not isinstance(layer, keras.Model)]
    return sorted({layer.dtype_policy.name for layer in computing})


def float32_config(config: Any) -> Any:
    """A serialized model with every ``dtype`` set to float32: each layer's policy, and each input's dtype.

    The inputs matter as much as the policies: a nested block built under a
    mixed policy (a decoder ``Sequential``) saves a bfloat16 input, which
    would round every activation entering it. A carmask model has no
    integer inputs, so no ``dtype`` is left alone.
    """
    if isinstance(config, list):
        return [float32_config(value) for value in config]
    if not isinstance(config, dict):
        return config
    return {key: "float32" if key == "dtype" and value is not None else float32_config(value)
            for key, value in config.items()}


def check_target(out_dir: str | Path, model_path: str | Path) -> None:
    """Refuse an ``out_dir`` whose replacement would lose anything but an earlier export (the model itself, say)."""
    out = Path(out_dir).resolve()
    if Path(model_path).resolve().is_relative_to(out):
        raise ValueError(f"the export folder {out_dir} holds the model {model_path}; export elsewhere")
    if out.exists() and not (out / INFO).is_file():
        raise FileExistsError(f"{out_dir} exists and is not an earlier export (no {INFO}); refusing to replace it")


def write_saved_model(model: keras.Model, head: str, path: Path) -> None:
    """``model`` as a SavedModel whose ``serving_default`` maps ``image`` to ``probability``."""
    logits = head == "linear"

    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        out = model(image, training=False)
        return {OUTPUT_NAME: tf.sigmoid(out) if logits else out}

    # No archive.track(model): the endpoint's trace collects the variables it
    # reads, and tracking the model as well stores every weight a second time
    # (keras-team/keras#23553: twice the folder, twice the memory when served).
    archive = keras.export.ExportArchive()
    spec = tf.TensorSpec((None, *model.inputs[0].shape[1:]), tf.float32, name=INPUT_NAME)
    archive.add_endpoint("serve", serve, input_signature=[spec])
    archive.write_out(str(path), verbose=False)


def tflite_bytes(saved_model: Path) -> bytes:
    """The SavedModel converted to a TFLite flatbuffer, float32 builtin ops only (no quantisation)."""
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    return converter.convert()


def export_model(model_path: str | Path, out_dir: str | Path, spec: Architecture | None = None,
                 tflite: bool = True) -> dict:
    """Write ``out_dir/saved_model/``, ``out_dir/model.tflite`` (unless not ``tflite``) and ``out_dir/export.json``.

    The whole folder appears at once (:func:`carmask.files.atomic_dir`); an
    earlier export there is replaced, any other folder is left alone
    (:func:`check_target`). Returns what ``export.json`` holds.
    """
    check_target(out_dir, model_path)
    model = load_keras_model(model_path)
    head = head_activation(model, model_path)
    folded = fold_batchnorm(in_float32(model, model_path, spec))
    layers = sublayers(folded)
    shape = [None, *model.inputs[0].shape[1:]]
    info = {
        "source_model": str(Path(model_path).resolve()),
        "architecture": model.name,
        "trained_precision": policies(model),
        "precision": "float32",
        "signature": "serving_default",
        "input": {"name": INPUT_NAME, "shape": shape, "dtype": "float32", "range": [0.0, 1.0]},
        "output": {"name": OUTPUT_NAME, "shape": [*shape[:3], 1], "dtype": "float32", "meaning": "probability"},
        "head": head,
        "sigmoid_added": head == "linear",
        "batchnorm": {"folded": sum(isinstance(layer, FoldedBatchNorm) for layer in layers),
                      "kept": sum(isinstance(layer, keras.layers.BatchNormalization) for layer in layers)},
        "saved_model": SAVED_MODEL,
        "tflite": TFLITE if tflite else None,
    }
    with files.atomic_dir(out_dir) as tmp:
        write_saved_model(folded, head, tmp / SAVED_MODEL)
        if tflite:
            (tmp / TFLITE).write_bytes(tflite_bytes(tmp / SAVED_MODEL))
        files.write_json(info, tmp / INFO)
    return info
