"""Image and mask decoding and resizing, shared by training, inference and scoring.

One place decides how photos are shrunk to model size and how probabilities
are brought back to full size, so training targets, the resolution ceiling
and the submission all use the same arithmetic. Upsampling is bilinear from
the model's own (non-square) size: the study's nearest-neighbour upscaling
from 224x224 cost it most of its score.
"""

from __future__ import annotations

import io
import itertools
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image


def load_image(path: str | Path, size: tuple[int, int] | None = None, channels: int = 3) -> np.ndarray:
    """Decode a photo to ``uint8`` (h, w, channels), resized to ``size`` = (h, w).

    JPEGs are decoded with Pillow's ``draft()``: the DCT decoder scales by 1/2,
    1/4 or 1/8 while decoding, several times faster than decoding 1918x1280
    and shrinking afterwards. ``draft`` never goes below the requested size,
    and the final resize (antialiased bilinear) does the rest.

    The scaled image rounds its size up to whole pixels: 1918 columns at 1/8
    become 240, of which only 239.75 are photo. The resize therefore reads
    the box ``draft`` reports, so the photo is shrunk from exactly the same
    extent as its mask (:func:`downscale_mask`); resizing all 240 columns
    would squeeze the photo ~0.1% against its target.
    """
    if size is None:
        mode = "L" if channels == 1 else "RGB"
        with Image.open(path) as img:
            return _as_array(img.convert(mode), channels)
    return load_image_sizes(path, [size], channels)[0]


def load_image_sizes(path: str | Path, sizes: Sequence[tuple[int, int]], channels: int = 3) -> list[np.ndarray]:
    """The photo at each of ``sizes``, exactly as :func:`load_image` gives it, decoding once per draft scale.

    Test-time augmentation's second scale (1.25x the model's size) needs the
    photo twice; at the model sizes in use both draw from the same DCT
    scale, so one decode serves both and only the cheap resize is repeated.
    Sizes that ``draft`` would decode at different scales still get their
    own decode: the arrays are those of :func:`load_image`, bit for bit.
    """
    mode = "L" if channels == 1 else "RGB"
    data = Path(path).read_bytes()
    decoded: dict[tuple, Image.Image] = {}
    out = []
    for size in sizes:
        with Image.open(io.BytesIO(data)) as img:
            drafted = img.draft(mode, (size[1], size[0]))
            full_box = (0, 0, img.size[0], img.size[1])
            box = None if drafted is None or tuple(drafted[1]) == full_box else tuple(drafted[1])
            key = (img.size, box)  # the decode this size gets: scaled extent and the box it reads
            if key not in decoded:
                decoded[key] = img.convert(mode)
        photo = decoded[key]
        if photo.size != (size[1], size[0]) or box is not None:
            photo = photo.resize((size[1], size[0]), Image.BILINEAR, box=box)
        out.append(_as_array(photo, channels))
    return out


def photo_batches(
    paths: Sequence[str], sizes: Sequence[tuple[int, int]], channels: int, batch_size: int, threads: int = 1, ahead: int = 2
) -> Iterator[list[np.ndarray]]:
    """``paths`` in batches, in order: per batch, one ``uint8`` (b, h, w, channels) array per size in ``sizes``.

    The photos are those of :func:`load_image_sizes`. ``threads`` decode up
    to ``ahead`` batches beyond the one in use: Pillow releases the GIL while
    it decodes and resizes, so the next photos are read while the network
    runs, and memory holds at most ``ahead + 1`` batches. A plain thread pool
    rather than tf.data, whose iterator over a shard of thousands of photos
    took 10-25 s to shut down after its last batch (waiting on its
    ``numpy_function`` workers), about a sixth of a test shard's time.
    """
    starts = iter(range(0, len(paths), batch_size))
    with ThreadPoolExecutor(max(1, threads)) as pool:

        def submit(start: int) -> list:
            return [pool.submit(load_image_sizes, p, sizes, channels) for p in paths[start : start + batch_size]]

        queued = deque(submit(start) for start in itertools.islice(starts, ahead + 1))
        current: list = []
        try:
            while queued:
                current = queued.popleft()
                photos = [future.result() for future in current]
                yield [np.stack([views[i] for views in photos]) for i in range(len(sizes))]
                queued.extend(submit(start) for start in itertools.islice(starts, 1))
        finally:
            for future in itertools.chain(current, *queued):
                future.cancel()


def _as_array(img: Image.Image, channels: int) -> np.ndarray:
    arr = np.asarray(img, dtype=np.uint8)
    return arr[..., None] if channels == 1 else arr


def load_mask(path: str | Path) -> np.ndarray:
    """Decode a mask (Kaggle's palette GIF with values {0, 1}) to bool (H, W)."""
    with Image.open(path) as img:
        arr = np.asarray(img.convert("L") if img.mode not in ("P", "L", "1") else img)
    return arr > 0


def _area_weights(n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) share of each input pixel inside each output pixel, rows summing to 1.

    Output pixel ``o`` covers input coordinates ``[o, o + 1) * n_in / n_out``;
    input pixels cut by its borders count by the fraction inside.
    """
    edges = np.arange(n_out + 1) * (n_in / n_out)
    left, right = edges[:-1, None], edges[1:, None]
    pixels = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(right, pixels + 1) - np.maximum(left, pixels), 0.0, None)
    return (overlap / (n_in / n_out)).astype(np.float32)


def downscale_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Shrink a bool mask to ``size`` = (h, w) as ``uint8`` coverage 0..255.

    Exact area averaging, so a target pixel says how much of it is car: the
    soft edge is what lets bilinear upsampling put the outline back between
    model pixels (on 160 real masks at 224x224: area-down/bilinear-up keeps
    Dice 0.9986, nearest both ways 0.9945). Exact, because Pillow's BOX filter
    rounds its box to whole input pixels and moves edges by up to a third of
    a full-size pixel against the photo.
    """
    rows = _area_weights(size[0], mask.shape[0])
    cols = _area_weights(size[1], mask.shape[1])
    coverage = rows @ mask.astype(np.float32) @ cols.T
    return quantise(coverage)


def quantise(probs: np.ndarray) -> np.ndarray:
    """Float probabilities in [0, 1] to ``uint8`` (round half to even, clipped)."""
    return np.clip(np.rint(np.asarray(probs) * 255.0), 0, 255).astype(np.uint8)
