"""Typed settings of the network code: one small frozen dataclass per idea, made once from the validated config.

A ``models.<name>`` block of the config becomes a :class:`ModelSpec` (what
builds the network, how it trains, how its photos are augmented); the
``inference`` block and the resolved precision become a :class:`Prediction`.
The rule scripts make them; below them no function reads the raw config, and
each setting is checked here, once, with one message naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from carmask.planning.settings import PRECISIONS, resolve_precision

ARCHITECTURE_NAMES = ("mobilenetv2_pix2pix", "mobilenetv2_pix2pix_tuned", "vgg19_pix2pix", "unet")
LOSS_NAMES = ("bce", "dice", "bce_dice", "edge_bce_dice")
LR_SCHEDULES = ("plateau", "cosine")
#: ``monitor`` setting -> (history column, whether lower or higher is better).
MONITORS = {"loss": ("val_loss", "min"), "dice": ("val_dice_coef", "max")}
#: Test-time augmentation: which extra views of each photo are predicted and
#: averaged with it. ``flip``: its mirror image (Carvana cars are
#: near-symmetric views, so the mirror is a free second opinion); ``scale``:
#: the photo decoded :data:`TTA_SCALE` times larger, its prediction shrunk
#: back to model size; ``flip_scale``: both, and the larger photo's mirror.
TTA_MODES: dict[str, tuple[bool, bool]] = {
    "none": (False, False),
    "flip": (True, False),
    "scale": (False, True),
    "flip_scale": (True, True),
}
#: The second scale: the car 25% larger, so the decoder sees its outline over more pixels.
TTA_SCALE = 1.25


def _one_of(what: str, value: Any, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"{what} is {value!r}; it must be one of {', '.join(map(str, allowed))}")


#: Config keys whose field in :class:`Architecture` has another name: the
#: block's ``architecture`` is the builder's name, and ``train_precision`` the
#: policy the trained network computes in (``inference.precision`` is the
#: other idea: the policy a run predicts in).
_RENAMED = {"architecture": "name", "train_precision": "precision"}


def config_keys(cls) -> set[str]:
    """The config keys of a block that set the fields of ``cls``."""
    fields = {f.name for f in dataclasses.fields(cls)}
    return {key for key, field in _RENAMED.items() if field in fields} | (fields - set(_RENAMED.values()))


def _from_block(cls, block: Mapping[str, Any]):
    """An instance of the settings dataclass ``cls`` from the keys of ``block`` it has (others are left alone)."""
    values = {_RENAMED.get(key, key): value for key, value in block.items() if key in config_keys(cls)}
    missing = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING and f.name not in values]
    if missing:
        back = {field: key for key, field in _RENAMED.items()}
        raise ValueError(f"model settings lack {', '.join(repr(back.get(m, m)) for m in missing)}")
    return cls(**values)


@dataclass(frozen=True)
class Architecture:
    """What builds the network (:func:`carmask.network.architectures.build_model`).

    ``base_filters`` (unet) or ``decoder_filters`` (pix2pix) set the widths;
    None keeps the architecture's own. ``output_activation`` ``"linear"`` or
    None leaves logits. ``precision`` is the Keras dtype policy the network
    computes in (the config's ``train_precision``; a prediction twin's is
    ``inference.precision``); the head's output is float32 either way. ``bn_momentum``
    (None: Keras's) is every BatchNorm's moving-average momentum.
    """

    name: str
    input_height: int
    input_width: int
    channels: int
    encoder_weights: str | None = "none"
    freeze_encoder: bool = False
    base_filters: int | None = None
    decoder_filters: tuple[int, ...] | None = None
    bn_momentum: float | None = None
    output_activation: str | None = "sigmoid"
    precision: str = "float32"

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> Architecture:
        """The architecture part of a ``models.<name>`` block (training keys are left alone).

        ``train_precision: auto`` becomes the policy ``inference.precision:
        auto`` would pick on this machine (the workflow resolves it when it
        plans, so its jobs see the policy itself).
        """
        block = dict(block)
        if block.get("train_precision") == "auto":
            block["train_precision"] = resolve_precision("auto")
        if block.get("decoder_filters") is not None:
            block["decoder_filters"] = tuple(int(f) for f in block["decoder_filters"])
        return _from_block(cls, block)

    def __post_init__(self) -> None:
        _one_of("architecture", self.name, ARCHITECTURE_NAMES)
        _one_of("precision", self.precision, PRECISIONS)
        if not isinstance(self.freeze_encoder, bool):
            raise ValueError(f"freeze_encoder must be true or false, got {self.freeze_encoder!r}")
        if self.name == "unet":
            if self.decoder_filters is not None:
                raise ValueError("unet sets its widths with base_filters, not decoder_filters")
            if self.encoder_weights not in (None, "none"):
                raise ValueError(f"unet has no pretrained encoder; encoder_weights must be 'none', got {self.encoder_weights!r}")
        elif self.base_filters is not None:
            raise ValueError(f"{self.name} sets its widths with decoder_filters, not base_filters")

    @property
    def size(self) -> tuple[int, int]:
        """The input (height, width)."""
        return self.input_height, self.input_width

    def scaled(self, factor: float) -> Architecture:
        """The same network at ``factor`` times the input size (test-time augmentation's second scale)."""
        return dataclasses.replace(self, input_height=round(self.input_height * factor), input_width=round(self.input_width * factor))

    def twin(self, precision: str) -> Architecture:
        """The same network computing in ``precision``, built to receive trained weights (no encoder download)."""
        return dataclasses.replace(self, precision=precision, encoder_weights="none")


@dataclass(frozen=True)
class Training:
    """How a model trains: loss, schedule, batches, when to stop and which epoch to keep."""

    loss: str
    epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    lr_schedule: str = "plateau"
    monitor: str = "loss"
    seed: int = 0

    def __post_init__(self) -> None:
        _one_of("loss", self.loss, LOSS_NAMES)
        _one_of("lr_schedule", self.lr_schedule, LR_SCHEDULES)
        _one_of("monitor", self.monitor, tuple(MONITORS))
        for key in ("epochs", "batch_size", "patience"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be at least 1, got {getattr(self, key)}")


@dataclass(frozen=True)
class Augmentation:
    """Random changes to each training photo and its mask (0 or False: none)."""

    flip_lr: bool = False
    flip_ud: bool = False
    color_jitter: float = 0.0
    zoom: float = 0.0
    stretch: float = 0.0
    shift: float = 0.0


@dataclass(frozen=True)
class ModelSpec:
    """One ``models.<name>`` block of the config, typed."""

    architecture: Architecture
    training: Training
    augmentation: Augmentation

    @classmethod
    def from_config(cls, block: Mapping[str, Any]) -> ModelSpec:
        """The spec of a config block (as the schema checked and completed it); unknown keys are errors."""
        known = config_keys(Architecture) | config_keys(Training) | config_keys(Augmentation)
        unknown = sorted(set(block) - known)
        if unknown:
            raise ValueError(f"unknown model settings: {', '.join(unknown)}")
        return cls(Architecture.from_config(block), _from_block(Training, block), _from_block(Augmentation, block))


@dataclass(frozen=True)
class Prediction:
    """How a trained model predicts: batch size, test-time views, the dtype policy, BatchNorm folding.

    ``precision`` is a concrete Keras dtype policy (the workflow resolves
    ``inference.precision: auto`` while it plans). ``fold`` merges each
    BatchNorm into the convolution before it: the same function in fewer
    passes (benchmarks compare it with ``False``).
    """

    batch_size: int
    tta: str
    precision: str
    fold: bool = True

    def __post_init__(self) -> None:
        _one_of("inference.tta", self.tta, tuple(TTA_MODES))
        _one_of("inference.precision", self.precision, PRECISIONS)
        if self.batch_size < 1:
            raise ValueError(f"inference.batch_size must be at least 1, got {self.batch_size}")

    @property
    def views(self) -> tuple[bool, bool]:
        """(flip, scale): which extra views test-time augmentation adds."""
        return TTA_MODES[self.tta]
