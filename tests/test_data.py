"""tf.data pipelines: model-size tensors, soft mask targets, seeded augmentation."""

import numpy as np
import pandas as pd
import pytest

from carmask.data import image_dataset, training_dataset
from carmask.demo import generate


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


CFG = {"input_height": 20, "input_width": 30, "channels": 3, "batch_size": 2, "seed": 3, "flip_lr": True, "flip_ud": False}


def batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_shapes_ranges_and_soft_targets(frame):
    out = batches(training_dataset(frame, CFG, training=False))
    x, y = np.concatenate([b[0] for b in out]), np.concatenate([b[1] for b in out])
    assert x.shape == (4, 20, 30, 3) and y.shape == (4, 20, 30, 1)
    assert 0 <= x.min() and x.max() <= 1 and 0 <= y.min() and y.max() <= 1
    assert ((y > 0) & (y < 1)).any()  # the outline is soft (area-averaged)
    imgs = np.concatenate(list(image_dataset(frame["image_path"].tolist(), CFG, 3)))
    np.testing.assert_array_equal(imgs, x)  # the same decode for training and inference


def test_augmentation_is_seeded_and_keeps_masks_aligned(frame):
    import keras

    cfg = {**CFG, "color_jitter": 1.0}
    keras.utils.set_random_seed(3)  # as the train job does before building its datasets
    a = batches(training_dataset(frame, cfg, training=True))
    keras.utils.set_random_seed(3)
    b = batches(training_dataset(frame, cfg, training=True))
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    plain = np.concatenate([y for _, y in batches(training_dataset(frame, CFG, training=False))])
    augmented = np.concatenate([y for _, y in a])
    # masks are only ever flipped, never recoloured: each is a plain mask or its mirror
    for y in augmented:
        assert any(np.array_equal(y, p) or np.array_equal(y, p[:, ::-1]) for p in plain)
