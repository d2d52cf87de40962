"""Predict throughput and prediction size on disk, default model.

Measures images/s of carmask's batched predict path
(``carmask.network.inference.write_probabilities``: threaded decode with JPEG draft
scaling, one ``tf.function`` call per batch of ``inference.batch_size``,
streamed zstd parquet), with and without flip TTA (``inference.tta``), for the config's
``submission_model`` (or ``--model``) at its configured input size (random weights: speed does
not depend on them). Baseline in the same run: the study's naive loop, each
photo decoded fully by Pillow, resized, and ``model.predict(x[None])`` one at
a time. One warm-up batch (``batch_size`` images) is excluded from both sides;
for the batched path the time to its first batch (tf.function tracing) is
printed separately, since a predict job pays it once per shard.

Also reports the predictions parquet's size on disk per image (target
<= 40 KB/image), as written by ``write_probabilities``: for the untrained
model's actual output (with its spread of values: a random-weight network
with BatchNorm in inference mode gives a nearly constant map, so this is not
the worst case it might seem), for "trained-like" probabilities made from
the true masks shrunk to model size (``carmask.masks.images.downscale_mask``: soft
edges, like a trained model's), and for uniform random probabilities, the
incompressible upper bound. The default model size is small, so the
trained-like and worst cases are printed at 320x480 too, the size for
Kaggle's photos.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from _common import OtherLoad, add_model_argument, default_model, demo_folder, header, load_config, quiet_tensorflow, real_folder, wait_for_idle

quiet_tensorflow()

from carmask.masks.images import downscale_mask, load_mask  # noqa: E402
from carmask.masks.probability_maps import read_probabilities  # noqa: E402
from carmask.network import inference, runtime  # noqa: E402
from carmask.network.spec import Architecture, Prediction  # noqa: E402
from carmask.planning.settings import resolve_batch_size  # noqa: E402

KAGGLE_SIZE = (320, 480)
TARGET_KB = 40.0


def rows_for(paths: list[Path]) -> pd.DataFrame:
    return pd.DataFrame({"img": [p.name for p in paths], "image_path": [str(p) for p in paths]})


def batched(model, paths: list[Path], arch: Architecture, batch_size: int, tta: str, out: Path, repeat: int = 2) -> dict:
    """Best of ``repeat`` runs of :func:`batched_once` (the least disturbed one)."""
    runs = []
    for _ in range(repeat):
        with OtherLoad() as load:
            run = batched_once(model, paths, arch, batch_size, tta, out)
        runs.append(dict(run, other=load.share))
    return max(runs, key=lambda r: r["rate"])


def shared(other: float) -> str:
    """A flag for a number measured while other processes used the CPUs."""
    return f" [other processes used {other:.0%} of the CPUs meanwhile]" if other >= 0.1 else ""


def batched_once(model, paths: list[Path], arch: Architecture, batch_size: int, tta: str, out: Path) -> dict:
    """Run write_probabilities; time it whole and from the end of its first batch."""
    marks: dict[str, float] = {}
    original = inference.iter_probabilities

    def timed(*args, **kwargs):
        for probs in original(*args, **kwargs):
            yield probs
            if "first" not in marks:  # the writer has taken the first batch
                marks["first"] = time.perf_counter()
                marks["n_first"] = len(probs)

    how = Prediction(batch_size=batch_size, tta=tta, precision=arch.precision)
    inference.iter_probabilities = timed
    try:
        start = time.perf_counter()
        inference.write_probabilities([model], rows_for(paths), out, arch, how)
        end = time.perf_counter()
    finally:
        inference.iter_probabilities = original
    n = len(paths)
    return {
        "rate": (n - marks["n_first"]) / (end - marks["first"]),
        "first_s": marks["first"] - start,
        "kb": out.stat().st_size / n / 1024,
    }


def naive(model, paths: list[Path], arch: Architecture, warmup: int) -> float:
    """The study's loop: full decode, resize, predict one image at a time. Returns images/s after warm-up."""
    h, w, channels = arch.input_height, arch.input_width, arch.channels
    mode = "L" if channels == 1 else "RGB"
    start = time.perf_counter()
    for i, path in enumerate(paths):
        if i == warmup:
            start = time.perf_counter()
        with Image.open(path) as img:
            img = img.convert(mode).resize((w, h), Image.BILINEAR)
        x = np.asarray(img, dtype=np.float32) / 255.0
        if channels == 1:
            x = x[..., None]
        model.predict(x[None], verbose=0)
    return (len(paths) - warmup) / (time.perf_counter() - start)


def written_kb(images: list[np.ndarray], batch_size: int, out: Path) -> float:
    """KB/image of write_probabilities' file when the 'model' outputs ``images`` (uint8 (h, w))."""
    original = inference.iter_probabilities

    def given(*_args, **_kwargs):
        for i in range(0, len(images), batch_size):
            yield np.stack(images[i : i + batch_size])

    rows = pd.DataFrame({"img": [f"{i:06d}.jpg" for i in range(len(images))], "image_path": ""})
    inference.iter_probabilities = given
    try:  # no model and no architecture: the stand-in above yields the maps
        inference.write_probabilities([None], rows, out, None, Prediction(batch_size=batch_size, tta="none", precision="float32"))
    finally:
        inference.iter_probabilities = original
    return out.stat().st_size / len(images) / 1024


def trained_like_kb(masks: list[Path], size: tuple[int, int], batch_size: int, out: Path) -> float:
    """KB/image when the 'model' outputs the true masks shrunk to ``size`` (soft edges, like a trained model)."""
    return written_kb([downscale_mask(load_mask(m), size) for m in masks], batch_size, out)


def noise_kb(n: int, size: tuple[int, int], batch_size: int, out: Path) -> float:
    """KB/image for uniform random probabilities: incompressible, the true worst case."""
    rng = np.random.default_rng(0)
    return written_kb([rng.integers(0, 256, size, dtype=np.uint8) for _ in range(n)], batch_size, out)


def output_spread(out: Path) -> str:
    """How varied the stored probabilities are (explains their size on disk)."""
    values = np.concatenate([p.ravel() for _, p in read_probabilities(out)])
    return f"values {values.min()}..{values.max()}, {np.unique(values).size} distinct, std {values.std():.2f} of 255"


def verdict(kb: float) -> str:
    return "ok" if kb <= TARGET_KB else f"OVER by {kb - TARGET_KB:.1f} KB"


def throughput(label: str, model, paths: list[Path], arch: Architecture, batch_size: int, tmp: Path) -> None:
    n_timed = len(paths) - batch_size
    plain = batched(model, paths, arch, batch_size, "none", tmp / f"{label}-plain.parquet")
    tta = batched(model, paths, arch, batch_size, "flip", tmp / f"{label}-tta.parquet")
    with OtherLoad() as load:
        base = naive(model, paths, arch, warmup=batch_size)
    print(f"{label}: {len(paths)} photos ({n_timed} timed after a {batch_size}-image warm-up batch)")
    print(f"  naive per-image loop (full decode, model.predict(x[None])): {base:7.1f} images/s{shared(load.share)}")
    print(f"  write_probabilities, tta none: {plain['rate']:7.1f} images/s  ({plain['rate'] / base:.2f}x naive; "
          f"first batch incl. tracing {plain['first_s']:.2f} s){shared(plain['other'])}")
    print(f"  write_probabilities, tta flip: {tta['rate']:7.1f} images/s  ({tta['rate'] / base:.2f}x naive; "
          f"first batch incl. tracing {tta['first_s']:.2f} s){shared(tta['other'])}")
    print(f"  predictions on disk (untrained model output, tta flip): {tta['kb']:.1f} KB/image "
          f"(plain {plain['kb']:.1f}) [target <= {TARGET_KB:.0f}: {verdict(tta['kb'])}]; "
          f"{output_spread(tmp / f'{label}-tta.parquet')}")


def sizes_only(label: str, model, paths: list[Path], arch: Architecture, batch_size: int, tmp: Path) -> None:
    tta = batched(model, paths, arch, batch_size, "flip", tmp / "large.parquet", repeat=1)
    print(f"  {label}: predictions on disk (untrained model output, tta flip): {tta['kb']:.1f} KB/image "
          f"[{verdict(tta['kb'])}] ({tta['rate']:.1f} images/s); {output_spread(tmp / 'large.parquet')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real-limit", type=int, default=64, help="real sample photos used (0: all)")
    parser.add_argument("--no-kaggle-size", action="store_true", help="skip the sizes at 320x480")
    parser.add_argument("--kaggle-size-model", action="store_true",
                        help="also run the untrained model at 320x480 on 24 demo photos (slow)")
    add_model_argument(parser)
    args = parser.parse_args()

    import keras

    from carmask.network.architectures import build_model

    header("predict throughput and predictions size")
    cfg = load_config()
    name, block = default_model(cfg, args.model)
    arch = Architecture.from_config(dict(block, encoder_weights="none"))
    batch_size = resolve_batch_size(cfg["inference"]["batch_size"], arch.precision, arch.size)
    size = arch.size
    runtime.configure(2)  # what the predict rule gives a job
    keras.utils.set_random_seed(0)
    model = build_model(arch)
    print(f"model: {name} ({arch.name}) at {size[0]}x{size[1]}x{arch.channels}, random weights, "
          f"batch_size {batch_size}, TF threads 2")

    demo = demo_folder()
    demo_photos = sorted((demo / "train").glob("*.jpg")) + sorted((demo / "test").glob("*.jpg"))
    demo_masks = sorted((demo / "train_masks").glob("*.gif"))
    real = real_folder()
    real_photos: list[Path] = []
    real_masks: list[Path] = []
    if real is not None:
        real_photos = sorted((real / "train").glob("*.jpg")) + sorted((real / "test").glob("*.jpg"))
        real_masks = sorted((real / "train_masks").glob("*.gif"))
        if args.real_limit:
            real_photos, real_masks = real_photos[: args.real_limit], real_masks[: args.real_limit]

    wait_for_idle()
    with tempfile.TemporaryDirectory() as tmp, OtherLoad() as load:
        tmp = Path(tmp)
        throughput("demo", model, demo_photos, arch, batch_size, tmp)
        if real_photos:
            throughput("real", model, real_photos, arch, batch_size, tmp)
        else:
            print("real: skipped (../shared/data/carvana-sample not found)")
        sizes = [size] + ([] if args.no_kaggle_size or size == KAGGLE_SIZE else [KAGGLE_SIZE])
        for s in sizes:
            print(f"predictions on disk at {s[0]}x{s[1]} (raw {s[0] * s[1] / 1024:.1f} KB/image, target <= {TARGET_KB:.0f}):")
            for label, masks in (("demo", demo_masks), ("real", real_masks)):
                if masks:
                    kb = trained_like_kb(masks, s, batch_size, tmp / f"{label}-masks.parquet")
                    print(f"  {label}, trained-like (true masks shrunk to model size), {len(masks)} images: "
                          f"{kb:.1f} KB/image [{verdict(kb)}]")
            kb = noise_kb(64, s, batch_size, tmp / "noise.parquet")
            print(f"  worst case, uniform random probabilities, 64 images: {kb:.1f} KB/image [{verdict(kb)}]")
        if args.kaggle_size_model:
            big = dataclasses.replace(arch, input_height=KAGGLE_SIZE[0], input_width=KAGGLE_SIZE[1])
            keras.utils.set_random_seed(0)
            big_model = build_model(big)
            sizes_only(f"demo at {KAGGLE_SIZE[0]}x{KAGGLE_SIZE[1]}", big_model, demo_photos[:24], big, batch_size, tmp)
    print(load.line())


if __name__ == "__main__":
    main()
