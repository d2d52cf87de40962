"""Decoding with draft and mask shrinking."""

import numpy as np
import pytest
from PIL import Image

from carmask.masks import images
from carmask.masks.upsample import mean_mask


def test_load_image_draft_matches_size(tmp_path):
    rng = np.random.default_rng(0)
    arr = (rng.random((1280, 1918, 3)) * 255).astype(np.uint8)
    path = tmp_path / "a.jpg"
    Image.fromarray(arr).save(path, quality=90)
    out = images.load_image(path, (320, 480), 3)
    assert out.shape == (320, 480, 3) and out.dtype == np.uint8
    gray = images.load_image(path, (100, 150), 1)
    assert gray.shape == (100, 150, 1)
    full = images.load_image(path)
    assert full.shape == (1280, 1918, 3)


def test_load_mask_palette_gif(tmp_path):
    mask = np.zeros((10, 12), np.uint8)
    mask[2:5, 3:9] = 1
    img = Image.fromarray(mask, mode="L").convert("P")
    img.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    img.save(tmp_path / "m.gif")
    assert np.array_equal(images.load_mask(tmp_path / "m.gif"), mask > 0)


def test_downscale_then_upsample_recovers_large_shape():
    mask = np.zeros((128, 192), bool)
    mask[30:100, 40:150] = True
    small = images.downscale_mask(mask, (32, 48))
    back = mean_mask([small], [1.0], mask.shape, 0.5)
    assert (back == mask).mean() > 0.995


def _edge_position(row: np.ndarray) -> float:
    """Where a dark-to-bright step sits along ``row``, in pixels from the left.

    A linear, normalised filter keeps the step's area, so the width minus the
    row's brightness (0..1) is the step's sub-pixel position at any scale.
    """
    return row.size - float(row.sum()) / 255.0


@pytest.mark.parametrize("size", [(96, 144), (128, 192), (160, 240), (320, 480), (640, 960)])
@pytest.mark.parametrize("edge", [300, 1800])
def test_photo_and_mask_edges_land_on_the_same_model_column(tmp_path, size, edge):
    # A step at a known column in a 1918x1280 photo and in its mask: shrunk to
    # model size, both must put it at the same sub-pixel column. Decoding with
    # draft() reads 1918 columns as 239.75 of 240; resizing all 240 would move
    # an edge at x=1800 to 1798.1 full-size pixels (0.14 px at 144 wide).
    mask = np.zeros((1280, 1918), bool)
    mask[:, edge:] = True
    photo = np.repeat((mask * 255).astype(np.uint8)[..., None], 3, axis=2)
    path = tmp_path / "edge.jpg"
    Image.fromarray(photo).save(path, quality=100, subsampling=0)
    h, w = size
    expected = edge * w / 1918
    mid = slice(h // 4, 3 * h // 4)
    in_mask = np.mean([_edge_position(r) for r in images.downscale_mask(mask, size)[mid]])
    assert abs(in_mask - expected) < 0.005  # exact area averaging
    for channels in (3, 1):
        rows = images.load_image(path, size, channels)[mid, :, 0].astype(np.float64)
        in_photo = np.mean([_edge_position(r) for r in rows])
        # within half a full-size pixel (bilinear weights sampled at pixel centres)
        assert abs(in_photo - in_mask) * 1918 / w < 0.5, (channels, in_photo, in_mask)


def test_downscale_mask_is_exact_area_coverage():
    rng = np.random.default_rng(3)
    mask = rng.random((36, 50)) > 0.5
    small = images.downscale_mask(mask, (12, 20))  # 3 rows, 2.5 columns per pixel
    cols = np.arange(50)
    for j in (0, 7, 19):
        left, right = j * 2.5, (j + 1) * 2.5
        weight = np.clip(np.minimum(right, cols + 1) - np.maximum(left, cols), 0, None)
        expected = (mask[6:9] * weight).sum() / (3 * 2.5)
        assert small[2, j] == np.clip(np.rint(expected * 255), 0, 255)


def _one_decode(path, size, channels):
    """Independent truth: Pillow's draft decode and box resize for one size, written out here."""
    mode = "L" if channels == 1 else "RGB"
    with Image.open(path) as img:
        drafted = img.draft(mode, (size[1], size[0]))
        box = drafted[1] if drafted is not None else (0, 0, *img.size)
        img = img.convert(mode).resize((size[1], size[0]), Image.BILINEAR, box=box)
        arr = np.asarray(img)
    return arr[..., None] if channels == 1 else arr


@pytest.mark.parametrize("sizes", [
    [(192, 288), (240, 360)],            # the real-80 model and its 1.25x view: both decode at 1/4
    [(96, 144), (120, 180)],             # the default model's pair: both at 1/8
    [(96, 144), (400, 600), (96, 144)],  # two draft scales, and a size asked twice
])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_load_image_sizes_equals_one_decode_per_size(tmp_path, sizes, channels, suffix):
    rng = np.random.default_rng(1)
    arr = (rng.random((1280, 1918, 3)) * 255).astype(np.uint8)
    path = tmp_path / f"a{suffix}"
    Image.fromarray(arr).save(path)
    got = images.load_image_sizes(path, sizes, channels)
    for size, out in zip(sizes, got):
        assert out.shape == (*size, channels)
        assert np.array_equal(out, _one_decode(path, size, channels))
        assert np.array_equal(out, images.load_image(path, size, channels))


def test_load_image_sizes_decodes_once_per_draft_scale(tmp_path, monkeypatch):
    from PIL import ImageFile

    path = tmp_path / "a.jpg"
    Image.fromarray(np.full((1280, 1918, 3), 120, np.uint8)).save(path)
    decodes = []
    load = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load",
                        lambda self: (decodes.append(self.size) if self.tile else None) or load(self))  # tile: still to decode
    images.load_image_sizes(path, [(192, 288), (240, 360)])
    assert decodes == [(480, 320)]  # one decode at 1/4 for both
    decodes.clear()
    images.load_image_sizes(path, [(96, 144), (400, 600)])
    assert decodes == [(240, 160), (959, 640)]  # 1/8 and 1/2: one each


@pytest.mark.parametrize("threads", [1, 3])
def test_photo_batches_are_load_image_sizes_in_order(tmp_path, threads):
    rng = np.random.default_rng(2)
    paths = []
    for i in range(7):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray((rng.random((128, 192, 3)) * 255).astype(np.uint8)).save(path)
        paths.append(str(path))
    sizes = [(16, 24), (20, 30)]
    batches = list(images.photo_batches(paths, sizes, 3, 3, threads))
    assert [len(b) for b in batches] == [2, 2, 2] and [b[0].shape[0] for b in batches] == [3, 3, 1]
    for i, path in enumerate(paths):
        want = images.load_image_sizes(path, sizes, 3)
        for view in range(2):
            assert batches[i // 3][view].dtype == np.uint8
            assert np.array_equal(batches[i // 3][view][i % 3], want[view])
    assert list(images.photo_batches([], sizes, 3, 3)) == []


def test_photo_batches_reads_a_bounded_number_of_batches_ahead(tmp_path, monkeypatch):
    path = tmp_path / "a.jpg"
    Image.fromarray(np.full((64, 96, 3), 9, np.uint8)).save(path)
    read = []
    load = images.load_image_sizes
    monkeypatch.setattr(images, "load_image_sizes", lambda p, *a: read.append(p) or load(p, *a))
    batches = images.photo_batches([str(path)] * 40, [(8, 12)], 3, 4, threads=2, ahead=2)
    next(batches)
    assert len(read) <= 4 * (2 + 1)  # the batch in use and two ahead; not the other 28 photos
    batches.close()
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        list(images.photo_batches([str(path), str(tmp_path / "missing.jpg")], [(8, 12)], 3, 1))
