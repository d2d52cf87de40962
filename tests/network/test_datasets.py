"""tf.data pipelines: model-size tensors, soft mask targets, seeded augmentation."""

import numpy as np
import pandas as pd
import pytest

from carmask.masks.images import photo_batches
from carmask.network.datasets import training_dataset
from carmask.network.spec import Architecture, Augmentation, ModelSpec, Training
from carmask.demo.dataset import generate


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo")
    generate(folder, n_train_cars=2, n_test_cars=1, views=2, width=192, height=128, seed=5)
    names = sorted(p.name for p in (folder / "train").glob("*.jpg"))
    return pd.DataFrame(
        {
            "image_path": [str(folder / "train" / n) for n in names],
            "mask_path": [str(folder / "train_masks" / n.replace(".jpg", "_mask.gif")) for n in names],
        }
    )


def spec(**augmentation) -> ModelSpec:
    """20x30 RGB photos in batches of 2, flipped left-right, with ``augmentation`` on top."""
    return ModelSpec(Architecture("unet", 20, 30, 3), Training("bce_dice", epochs=1, batch_size=2, learning_rate=1e-3, patience=1, seed=3),
                     Augmentation(flip_lr=True, **augmentation))


CFG = spec()


def batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def same_twice(frame, cfg):
    """Augmented batches, checked to be identical when the same seed is set again."""
    import keras

    runs = []
    for _ in range(2):
        keras.utils.set_random_seed(3)  # as the train job does before building its datasets
        runs.append(batches(training_dataset(frame, cfg, training=True)))
    for (xa, ya), (xb, yb) in zip(*runs):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    return runs[0]


def test_shapes_ranges_and_soft_targets(frame):
    out = batches(training_dataset(frame, CFG, training=False))
    x, y = np.concatenate([b[0] for b in out]), np.concatenate([b[1] for b in out])
    assert x.shape == (4, 20, 30, 3) and y.shape == (4, 20, 30, 1)
    assert 0 <= x.min() and x.max() <= 1 and 0 <= y.min() and y.max() <= 1
    assert ((y > 0) & (y < 1)).any()  # the outline is soft (area-averaged)
    imgs = np.concatenate([b[0] for b in photo_batches(frame["image_path"].tolist(), [(20, 30)], 3, 3)])
    np.testing.assert_array_equal(imgs.astype(np.float32) / np.float32(255), x)  # the same decode for training and inference


def test_augmentation_is_seeded_and_keeps_masks_aligned(frame):
    cfg = spec(color_jitter=1.0)
    a = same_twice(frame, cfg)
    plain = np.concatenate([y for _, y in batches(training_dataset(frame, CFG, training=False))])
    augmented = np.concatenate([y for _, y in a])
    # masks are only ever flipped, never recoloured: each is a plain mask or its mirror
    for y in augmented:
        assert any(np.array_equal(y, p) or np.array_equal(y, p[:, ::-1]) for p in plain)


def _affine(image: np.ndarray, seed: int, zoom: float = 0.0, stretch: float = 0.0, shift: float = 0.0) -> np.ndarray:
    import tensorflow as tf

    from carmask.network.datasets import _random_affine

    seeds = tf.constant([seed, 7], tf.int64)
    return _random_affine(tf.constant(image, tf.float32), seeds, zoom, stretch, shift).numpy()


def _box(h: int = 64, w: int = 96, size: int = 24) -> np.ndarray:
    """A centred square: its bounding box tells scale, stretch and shift apart."""
    img = np.zeros((h, w, 2), np.float32)
    top, left = (h - size) // 2, (w - size) // 2
    img[top : top + size, left : left + size] = 1.0
    img[..., 1] *= 0.5  # a second channel must move with the first
    return img


def _extent(channel: np.ndarray) -> tuple[float, float, float, float, float]:
    """(area, height, width, centre row, centre column) of the part above one half."""
    rows, cols = np.nonzero(channel > 0.5 * channel.max())
    return (
        float(channel.sum()),
        float(rows.max() - rows.min() + 1),
        float(cols.max() - cols.min() + 1),
        float(rows.mean()),
        float(cols.mean()),
    )


def test_affine_off_is_identity():
    img = np.random.default_rng(0).random((16, 24, 4)).astype(np.float32)
    np.testing.assert_allclose(_affine(img, 1), img, atol=1e-6)


def test_affine_moves_all_channels_together():
    for seed in range(5):
        out = _affine(_box(), seed, zoom=0.3, stretch=0.3, shift=0.2)
        np.testing.assert_allclose(out[..., 1], 0.5 * out[..., 0], atol=1e-6)


def test_affine_zoom_scales_about_the_centre():
    box, scales = _box(), []
    area0, *_, cy0, cx0 = _extent(box[..., 0])
    for seed in range(12):
        area, h, w, cy, cx = _extent(_affine(box, seed, zoom=0.25)[..., 0])
        scale = np.sqrt(area / area0)
        assert 0.75 - 0.03 <= scale <= 1.25 + 0.03
        assert abs(h - w) <= 1 and abs(cy - cy0) <= 0.6 and abs(cx - cx0) <= 0.6
        scales.append(scale)
    assert min(scales) < 0.95 and max(scales) > 1.05  # both ways


def test_affine_stretch_changes_proportions_not_area():
    box, ratios = _box(), []
    area0 = box[..., 0].sum()
    for seed in range(12):
        area, h, w, *_ = _extent(_affine(box, seed, stretch=0.3)[..., 0])
        assert abs(area / area0 - 1) < 0.05
        assert 1 / 1.3 - 0.06 <= h / w <= 1.3 + 0.06
        ratios.append(h / w)
    assert min(ratios) < 0.93 and max(ratios) > 1.07


def test_affine_shift_moves_by_at_most_the_fraction():
    box, moves = _box(), []
    _, h0, w0, cy0, cx0 = _extent(box[..., 0])
    for seed in range(12):
        _, h, w, cy, cx = _extent(_affine(box, seed, shift=0.1)[..., 0])
        assert (h, w) == (h0, w0)
        assert abs(cy - cy0) <= 0.1 * 64 + 0.5 and abs(cx - cx0) <= 0.1 * 96 + 0.5
        moves.append(abs(cx - cx0))
    assert max(moves) > 2


def test_geometric_augmentation_in_the_training_pipeline(frame):
    cfg = spec(zoom=0.2, stretch=0.2, shift=0.1)
    a = same_twice(frame, cfg)
    plain = np.concatenate([y for _, y in batches(training_dataset(frame, CFG, training=False))])
    augmented = np.concatenate([y for _, y in a])
    assert not any(np.array_equal(y, p) or np.array_equal(y, p[:, ::-1]) for y in augmented for p in plain)
    assert 0 <= augmented.min() and augmented.max() <= 1
