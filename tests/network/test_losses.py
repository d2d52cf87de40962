"""Dice, BCE and their sum on 3x3 masks whose answers are worked out on paper."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from carmask.network.losses import bce, bce_dice, bce_from_logits, dice_coef, dice_loss, get_loss, get_metrics

# Two 4-pixel masks sharing 2 pixels.
LEFT = [[1, 1, 0], [1, 1, 0], [0, 0, 0]]
RIGHT = [[0, 1, 1], [0, 1, 1], [0, 0, 0]]
BOTTOM_ROW = [[0, 0, 0], [0, 0, 0], [1, 1, 1]]
EMPTY = [[0, 0, 0], [0, 0, 0], [0, 0, 0]]


def batch(*masks) -> np.ndarray:
    """(batch, 3, 3, 1) float32, the shape the model's masks have."""
    return np.asarray(masks, dtype=np.float32)[..., None]


def value(tensor) -> float:
    return float(keras.ops.convert_to_numpy(tensor))


def test_identical_masks_score_one():
    assert value(dice_coef(batch(LEFT), batch(LEFT))) == pytest.approx(1.0)
    assert value(dice_loss(batch(LEFT), batch(LEFT))) == pytest.approx(0.0)


def test_disjoint_masks_score_zero_up_to_smoothing():
    # 4 + 3 pixels, no overlap: (2*0 + smooth) / (7 + smooth).
    assert value(dice_coef(batch(LEFT), batch(BOTTOM_ROW))) == pytest.approx(1 / 8)
    assert value(dice_coef(batch(LEFT), batch(BOTTOM_ROW), smooth=1e-6)) == pytest.approx(0.0, abs=1e-6)


def test_half_overlap():
    # |A| = |B| = 4, |A.B| = 2: soft (4 + 1)/(8 + 1) = 5/9.
    assert value(dice_coef(batch(LEFT), batch(RIGHT))) == pytest.approx(5 / 9)
    assert value(dice_loss(batch(LEFT), batch(RIGHT))) == pytest.approx(4 / 9)


def test_soft_dice_uses_probabilities():
    # p = 0.5 everywhere against LEFT: overlap 4*0.5 = 2, sum p = 4.5,
    # so soft (4 + 1)/(4 + 4.5 + 1) = 10/19.
    half = np.full((1, 3, 3, 1), 0.5, dtype=np.float32)
    assert value(dice_coef(batch(LEFT), half)) == pytest.approx(10 / 19)


def test_empty_truth_predicted_empty_scores_one():
    assert value(dice_coef(batch(EMPTY), batch(EMPTY))) == pytest.approx(1.0)


def test_dice_is_per_image_then_averaged_over_the_batch():
    # Image 2 misses its only pixel: per image, then averaged, where Dice
    # over the pooled pixels would be near 2*4/(5 + 4) = 8/9.
    one_pixel = [[0, 0, 0], [0, 1, 0], [0, 0, 0]]
    truth, pred = batch(LEFT, one_pixel), batch(LEFT, EMPTY)
    # Soft: 1 and (0 + 1)/(1 + 0 + 1) = 1/2.
    assert value(dice_coef(truth, pred)) == pytest.approx(0.75)


def test_masks_in_integer_dtypes_work():
    truth = batch(LEFT).astype(np.uint8)
    assert value(dice_coef(truth, batch(RIGHT))) == pytest.approx(5 / 9)


def test_bce_of_a_coin_flip_is_log_two():
    half = np.full((2, 3, 3, 1), 0.5, dtype=np.float32)
    assert value(bce(batch(LEFT, RIGHT), half)) == pytest.approx(math.log(2), rel=1e-5)


def test_bce_dice_is_the_sum_of_its_parts():
    truth = batch(LEFT, RIGHT)
    pred = np.random.default_rng(0).uniform(0.05, 0.95, size=truth.shape).astype(np.float32)
    expected = value(bce(truth, pred)) + value(dice_loss(truth, pred))
    assert value(bce_dice(truth, pred)) == pytest.approx(expected, rel=1e-6)


def test_get_loss_by_name():
    assert get_loss("bce") is bce
    assert get_loss("dice") is dice_loss
    assert get_loss("bce_dice") is bce_dice
    with pytest.raises(ValueError, match="bce, dice, bce_dice"):
        get_loss("focal")


def test_model_compiled_with_them_saves_and_loads(tmp_path):
    model = keras.Sequential([keras.Input((3, 3, 1)), keras.layers.Conv2D(1, 1, activation="sigmoid", name="mask")])
    model.compile(optimizer="adam", loss=bce_dice, metrics=[dice_coef])
    truth = batch(LEFT, RIGHT)
    model.train_on_batch(truth, truth)  # builds the optimizer, so it is saved too
    scores = model.evaluate(truth, truth, verbose=0, return_dict=True)
    assert set(scores) == {"loss", "dice_coef"}

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)

    assert loaded.loss is bce_dice
    assert loaded.evaluate(truth, truth, verbose=0, return_dict=True) == pytest.approx(scores)


def test_logit_losses_equal_the_probability_losses_of_the_sigmoid():
    truth = batch(LEFT, RIGHT)
    logits = np.random.default_rng(0).normal(0, 2, truth.shape).astype(np.float32)
    probs = 1 / (1 + np.exp(-logits))
    for name in ("bce", "dice", "bce_dice"):
        assert value(get_loss(name, from_logits=True)(truth, logits)) == pytest.approx(value(get_loss(name)(truth, probs)), rel=1e-5)
    assert get_loss("bce", from_logits=True) is bce_from_logits


def test_logit_bce_keeps_the_gradient_of_a_confidently_wrong_pixel():
    # Logit 20 on background: BCE of the sigmoid clips p to 1 - 1e-7 and the
    # gradient vanishes; BCE from logits gives d/dz = sigmoid(z) - t ~ 1 / 9.
    import tensorflow as tf

    truth = tf.constant(batch(EMPTY))
    logits = tf.Variable(np.full((1, 3, 3, 1), 20.0, np.float32))
    with tf.GradientTape(persistent=True) as tape:
        through_sigmoid = bce(truth, tf.sigmoid(logits))
        from_logits = bce_from_logits(truth, logits)
    assert np.abs(tape.gradient(through_sigmoid, logits).numpy()).max() < 1e-6
    np.testing.assert_allclose(tape.gradient(from_logits, logits).numpy(), 1 / 9, rtol=1e-5)


def test_logit_metrics_read_like_the_probability_ones():
    truth = batch(LEFT, RIGHT)
    logits = np.where(truth > 0, 3.0, -3.0).astype(np.float32)
    dice_metric, accuracy = get_metrics(from_logits=True)
    dice_metric.update_state(truth, logits)
    accuracy.update_state(truth, logits)
    assert dice_metric.name == "dice_coef" and accuracy.name == "binary_accuracy"
    assert value(dice_metric.result()) == pytest.approx(value(dice_coef(truth, 1 / (1 + np.exp(-logits)))), rel=1e-6)
    assert value(accuracy.result()) == 1.0


def test_edge_weights_mark_the_pixels_near_the_outline():
    from carmask.network.losses import EDGE_RADIUS, EDGE_WEIGHT, edge_weights

    truth = np.zeros((1, 12, 12, 1), np.float32)
    truth[:, :, :6] = 1  # left half is car: the outline runs between columns 5 and 6
    w = keras.ops.convert_to_numpy(edge_weights(truth))[0]
    near = np.abs(np.arange(12) - 5.5) <= EDGE_RADIUS - 0.5  # columns 4..7: a differing pixel within the window
    np.testing.assert_array_equal(w, np.where(near[None, :], 1 + EDGE_WEIGHT, 1.0).repeat(12, axis=0))
    # a car filling the image has no outline, not even at the border
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(edge_weights(np.ones_like(truth))), 1.0)


def test_edge_bce_is_the_weighted_mean_worked_out_directly():
    from carmask.network.losses import edge_bce, edge_bce_dice, edge_weights

    truth = np.zeros((2, 8, 8, 1), np.float32)
    truth[0, 2:6, 2:6] = 1
    truth[1, :, :3] = 1
    probs = np.random.default_rng(3).uniform(0.05, 0.95, truth.shape).astype(np.float32)
    w = keras.ops.convert_to_numpy(edge_weights(truth))
    per_pixel = -(truth * np.log(probs) + (1 - truth) * np.log(1 - probs))[..., 0]
    direct = np.mean([(per_pixel[i] * w[i]).sum() / w[i].sum() for i in range(2)])
    assert value(edge_bce(truth, probs)) == pytest.approx(direct, rel=1e-5)
    assert value(edge_bce_dice(truth, probs)) == pytest.approx(direct + value(dice_loss(truth, probs)), rel=1e-5)
    # the logit version is the same loss of the sigmoid
    logits = np.log(probs / (1 - probs))
    assert value(get_loss("edge_bce_dice", from_logits=True)(truth, logits)) == pytest.approx(value(edge_bce_dice(truth, probs)), rel=1e-4)


def test_edge_bce_dice_gradient_matches_finite_differences():
    import tensorflow as tf

    truth = np.zeros((1, 8, 8, 1), np.float32)
    truth[0, 1:5, 2:7] = 1
    logits = tf.Variable(np.random.default_rng(5).normal(0, 1, truth.shape), dtype=tf.float64)
    loss = get_loss("edge_bce_dice", from_logits=True)

    def f(z):
        return loss(tf.constant(truth, tf.float64), tf.cast(z, tf.float32))

    with tf.GradientTape() as tape:
        out = f(logits)
    grad = tape.gradient(out, logits).numpy()
    z = logits.numpy()
    for idx in [(0, 1, 2, 0), (0, 4, 6, 0), (0, 7, 0, 0), (0, 3, 3, 0)]:  # outline, corner, far, inside
        h = 1e-2
        up, down = z.copy(), z.copy()
        up[idx] += h
        down[idx] -= h
        numeric = (value(f(tf.constant(up))) - value(f(tf.constant(down)))) / (2 * h)
        assert grad[idx] == pytest.approx(numeric, rel=2e-2, abs=1e-5)
    # pixels on the outline pull harder than the same error far from it
    assert abs(grad[0, 1, 2, 0]) > abs(grad[0, 7, 0, 0])
