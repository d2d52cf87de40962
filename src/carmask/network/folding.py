"""BatchNorm folded into the convolution before it, for inference.

At inference a BatchNormalization layer is a fixed per-channel affine map,
``y = (x - mean) / sqrt(var + eps) * gamma + beta``, so it can be merged
into the kernel and bias of the convolution that feeds it: the same
function with one layer fewer. On a CPU that matters more than the
arithmetic suggests. The tuned MobileNetV2 U-Net has 56 BatchNorm layers,
each a full pass over its activations, and under a mixed bf16 policy Keras
computes every one of them in float32 (a cast up and a cast down around
it), which made bf16 inference of the depthwise-heavy encoder slower than
float32. Folded, each pair is one convolution with a bias, in bf16 from end
to end (speeds in docs/performance.md).

Training never sees a folded model: it needs BatchNorm's batch statistics.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

#: Convolutions a following BatchNorm folds into, and the kernel axis that
#: indexes their output channels (Conv2DTranspose keeps (h, w, out, in)).
_OUTPUT_AXIS: dict[type, int] = {
    keras.layers.Conv2D: 3,
    keras.layers.DepthwiseConv2D: 2,  # (h, w, in, multiplier): output channel in * multiplier + m
    keras.layers.Conv2DTranspose: 2,
}


@keras.saving.register_keras_serializable(package="carmask")
class FoldedBatchNorm(keras.layers.Layer):
    """What is left of a BatchNorm folded into its conv: nothing, under the old name.

    A layer rather than a skipped call so the copy pairs with the original
    layer by layer (nested ``Sequential`` blocks have no call hook); it takes
    BatchNorm's call arguments (``training``, ``mask``) and ignores them.
    """

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


def _conv_type(layer: Any) -> type | None:
    return next((kind for kind in _OUTPUT_AXIS if type(layer) is kind), None)


def sublayers(model: keras.Model) -> list:
    """Every layer of ``model`` and of the models nested in it (the encoder, each decoder block)."""
    out = []
    for layer in model.layers:
        out.append(layer)
        if isinstance(layer, keras.Model):
            out.extend(sublayers(layer))
    return out


def _graphs(model: keras.Model) -> list:
    """The layer graphs of ``model`` and of the models nested in it (a Sequential's is its ``_functional``)."""
    graphs = []
    for m in [model, *(layer for layer in sublayers(model) if isinstance(layer, keras.Model))]:
        graph = m._functional if isinstance(m, keras.Sequential) else m
        if graph is not None:
            graphs.append(graph)
    return graphs


def foldable_pairs(model: keras.Model) -> dict[str, str]:
    """``{batchnorm name: conv name}`` for each BatchNorm whose only input is a plain conv feeding nothing else.

    Looked up graph by graph, counting only the nodes of that graph: a
    loaded ``Sequential`` rebuilds itself once per added layer, which leaves
    its layers with stale nodes from the earlier builds. A conv whose raw
    output is also used elsewhere (a skip connection, a model output) keeps
    its BatchNorm, and so does one with an activation or channels first:
    folding would change that other use, or scale the wrong values.
    """
    pairs = {}
    for graph in _graphs(model):
        nodes = {node for level in graph._nodes_by_depth.values() for node in level}
        outputs = {id(t._keras_history.operation) for t in keras.tree.flatten(graph.outputs)}
        for layer in graph.operations:
            if not isinstance(layer, keras.layers.BatchNormalization):
                continue
            inbound = [node for node in layer._inbound_nodes if node in nodes]
            if len(inbound) != 1 or len(inbound[0].parent_nodes) != 1:
                continue
            if layer.axis not in (-1, len(inbound[0].input_tensors[0].shape) - 1):
                continue
            conv = inbound[0].parent_nodes[0].operation
            if (
                _conv_type(conv) is None
                or conv.get_config().get("activation", "linear") != "linear"
                or conv.data_format != "channels_last"
                or len([node for node in conv._inbound_nodes if node in nodes]) != 1
                or len([node for node in conv._outbound_nodes if node in nodes]) != 1
                or id(conv) in outputs
            ):
                continue
            pairs[layer.name] = conv.name
    return pairs


def folded_weights(conv: Any, bn: keras.layers.BatchNormalization) -> tuple[np.ndarray, np.ndarray]:
    """The kernel and bias of ``conv`` with ``bn`` merged in, computed in float64."""
    kernel = np.asarray(conv.kernel.numpy(), dtype=np.float64)
    bias = np.asarray(conv.bias.numpy(), dtype=np.float64) if conv.use_bias else 0.0
    mean = np.asarray(bn.moving_mean.numpy(), dtype=np.float64)
    variance = np.asarray(bn.moving_variance.numpy(), dtype=np.float64)
    gamma = np.asarray(bn.gamma.numpy(), dtype=np.float64) if bn.scale else 1.0
    beta = np.asarray(bn.beta.numpy(), dtype=np.float64) if bn.center else 0.0
    scale = gamma / np.sqrt(variance + bn.epsilon)
    axis = _OUTPUT_AXIS[_conv_type(conv)]
    if isinstance(conv, keras.layers.DepthwiseConv2D):
        scaled = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:
        shape = [1] * kernel.ndim
        shape[axis] = -1
        scaled = kernel * scale.reshape(shape)
    return scaled, beta + (bias - mean) * scale


def fold_batchnorm(model: keras.Model) -> keras.Model:
    """An inference copy of ``model`` with every foldable BatchNorm merged into its conv.

    Each folded BatchNorm becomes a :class:`FoldedBatchNorm` of the same name (so
    the copy's layers pair one to one with the original's), its conv gains a
    bias. Other layers keep their configs and dtype policies, and their
    weights are copied unchanged.
    """
    originals = sublayers(model)
    names = [layer.name for layer in originals]
    if len(set(names)) != len(names):
        raise ValueError(f"folding {model.name}: layer names repeat across its nested models")
    pairs = foldable_pairs(model)
    convs = set(pairs.values())

    def clone(layer: Any) -> Any:
        config = layer.get_config()
        if layer.name in pairs:
            return FoldedBatchNorm(name=layer.name, dtype=layer.dtype_policy)
        if layer.name in convs:
            config["use_bias"] = True
        return layer.__class__.from_config(config)

    folded = keras.models.clone_model(model, clone_function=clone, recursive=True)
    copies = sublayers(folded)

    def key(layer: Any) -> str:  # a clone's new Input may take another automatic name
        return "<input>" if isinstance(layer, keras.layers.InputLayer) else layer.name

    if list(map(key, originals)) != list(map(key, copies)):
        raise RuntimeError(f"folding {model.name}: the copy's layers do not pair with the original's")
    folded.dtype_policy = model.dtype_policy
    by_name = dict(zip(names, originals))
    bn_of = {conv: bn for bn, conv in pairs.items()}
    for source, layer in zip(originals, copies):
        if isinstance(layer, keras.Model):
            # Cloned nested models come back under the global policy (their
            # layers keep their own); give them the original's, so the copy
            # reads as the original does.
            layer.dtype_policy = source.dtype_policy
            continue
        if layer.name in pairs:
            continue
        if layer.name in bn_of:
            layer.set_weights(folded_weights(source, by_name[bn_of[layer.name]]))
        else:
            layer.set_weights(source.get_weights())
    return folded
