"""Every kind of photo a user has becomes one upright 8-bit RGB array, or one clear reason."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from carmask.photos.reading import PhotoError, find_photos, read_photo


def gradient(height: int = 30, width: int = 40) -> np.ndarray:
    """An RGB image whose every pixel is distinct enough to show a rotation or a flip."""
    y, x = np.mgrid[0:height, 0:width]
    return np.dstack([x * 6, y * 8, (x + y) * 3]).astype(np.uint8)


def test_exif_orientation_is_applied(tmp_path):
    pixels = gradient()
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    img.save(tmp_path / "phone.png", exif=exif)
    upright = read_photo(tmp_path / "phone.png")
    assert upright.shape == (40, 30, 3)
    np.testing.assert_array_equal(upright, np.rot90(pixels, k=-1))


def test_exif_orientation_in_a_jpeg(tmp_path):
    img = Image.fromarray(gradient(48, 64))
    exif = img.getexif()
    exif[0x0112] = 8  # rotated 90 degrees counter-clockwise for display
    img.save(tmp_path / "IMG_0042.JPG", quality=95, exif=exif)
    assert read_photo(tmp_path / "IMG_0042.JPG").shape == (64, 48, 3)


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    Image.fromarray(gradient()).convert("CMYK").save(tmp_path / "print.jpg", quality=95)
    out = read_photo(tmp_path / "print.jpg")
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - gradient().astype(int)).mean() < 12


def test_grayscale_is_repeated_over_three_channels(tmp_path):
    gray = gradient()[..., 0]
    Image.fromarray(gray, mode="L").save(tmp_path / "bw.png")
    out = read_photo(tmp_path / "bw.png")
    assert out.shape == (30, 40, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], gray)


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "scan.png")
    assert Image.open(tmp_path / "scan.png").mode.startswith("I")
    np.testing.assert_array_equal(read_photo(tmp_path / "scan.png")[0, :, 0], [0, 1, 128, 255])


def test_alpha_is_laid_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[:2, :, 3] = 255  # top half opaque red, bottom half transparent
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "cut.png")
    out = read_photo(tmp_path / "cut.png")
    np.testing.assert_array_equal(out[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(out[3, 3], [255, 255, 255])


def test_palette_and_webp_are_read(tmp_path):
    Image.fromarray(gradient()).convert("P").save(tmp_path / "p.gif")
    Image.fromarray(gradient()).save(tmp_path / "w.webp", lossless=True)
    assert read_photo(tmp_path / "p.gif").shape == (30, 40, 3)
    np.testing.assert_array_equal(read_photo(tmp_path / "w.webp"), gradient())


@pytest.mark.parametrize(("content", "reason"), [
    (b"", "empty file"),
    (b"not a photo at all", "not an image"),
    (b"\xff\xd8\xff\xe0" + b"\x00" * 40, "not an image"),  # a JPEG header and nothing after it
])
def test_bad_files_raise_one_clear_reason(tmp_path, content, reason):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(PhotoError, match=reason):
        read_photo(path)


def test_truncated_jpeg_is_unreadable(tmp_path):
    Image.fromarray(gradient(200, 300)).save(tmp_path / "full.jpg", quality=95)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(PhotoError, match="unreadable"):
        read_photo(tmp_path / "cut.jpg")


def test_find_photos_lists_every_file_in_nested_folders_and_skips_hidden_ones(tmp_path):
    for name in ["b.jpg", "a/front.PNG", "a/deeper/side.webp", "notes.txt", ".DS_Store", ".carmask/journal.jsonl"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert find_photos(tmp_path) == ["a/deeper/side.webp", "a/front.PNG", "b.jpg", "notes.txt"]
    with pytest.raises(FileNotFoundError, match="nope"):
        find_photos(tmp_path / "nope")
