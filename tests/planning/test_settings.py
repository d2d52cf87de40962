"""Settings resolved when the workflow is planned: the predict batch size."""

import pytest

from carmask.planning.settings import resolve_batch_size


def test_auto_batch_is_32_photos_in_bf16_and_fp16_whatever_the_size():
    for precision in ("mixed_bfloat16", "mixed_float16"):
        for size in ((96, 144), (192, 288), (1280, 1918)):
            assert resolve_batch_size("auto", precision, size) == 32


def test_auto_batch_in_float32_holds_the_pixels_of_32_photos_at_96x144():
    assert resolve_batch_size("auto", "float32", (96, 144)) == 32
    assert resolve_batch_size("auto", "float32", (128, 192)) == 18
    assert resolve_batch_size("auto", "float32", (192, 288)) == 8
    assert resolve_batch_size("auto", "float32", (48, 72)) == 128
    assert resolve_batch_size("auto", "float32", (1280, 1918)) == 1  # never none


def test_a_number_is_kept_and_anything_else_named():
    assert resolve_batch_size(5, "float32", (192, 288)) == 5
    assert resolve_batch_size(64, "mixed_bfloat16", (96, 144)) == 64
    for bad in (0, -1, "big", 2.5, True):
        with pytest.raises(ValueError, match="inference.batch_size must be auto or a whole number"):
            resolve_batch_size(bad, "float32", (96, 144))
