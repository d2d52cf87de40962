"""A test photo's cost, part by part beside each part's floor, and the Dice/time frontier of a trained model.

Takes a finished real-photo run (``--run``, ``--configfile`` as it ran) and
its submission model, and measures on its validation photos, in this one
process with one TensorFlow thread (one predict or encode job of the
workflow; two such jobs share the 2 cores):

- **decode**: the photo at model size as predict decodes it (JPEG
  ``draft`` to the nearest DCT scale above, then an antialiased resize), the
  draft decode alone (the floor: what the DCT scaling costs with no resize),
  a full-size decode and resize (what ``draft`` saves), and the two sizes
  of the ``scale`` views decoded once against twice;
- **forward**: the compiled views of each TTA mode on a fixed batch
  (the graph with nothing around it), at the run's batch size and
  precision, BatchNorm folded; for ``tta: none`` also unfolded, in
  float32, and the exported float32 TFLite model on its XNNPACK CPU
  kernels: the levers, each on the same batch;
- **predict as the stage runs it** (``write_probabilities``: decode, views,
  quantise, parquet), per TTA mode, against the sum of its parts;
- **encode**: bilinear full-size mask and RLE, against RLE alone on the
  finished mask (its floor), with the guided refinement (its full-size
  brightness decode and the filter in the band), and with the learned one
  when the run trained it (its full-size colour decode and the network on
  the band's tiles);
- **Dice** at full size against the true GIFs for every TTA mode, with and
  without each refinement, and with every pixel of the uncertain band
  decided right (what any refinement of the band could reach); and **TTA only where uncertain**: the ``none``
  pass everywhere, ``flip_scale`` redone on the photos whose ``none`` map
  has the widest uncertain band, for a range of shares.

Every part is a median over repeats (encode: over photos), in ms per
photo on one core; the projected test-set time is 100,064 photos times
(predict + encode) over 2 cores, plus the merge. The validation photos'
model-size maps are held in memory (a few MB).

    python studies/cost_split.py --run <run> --configfile config.yaml config/real-80.yaml --json real-80.json
    python studies/cost_split.py --run <run2> --configfile config.yaml studies/default-real-80.yaml \
        --json default.json --label "the default (config.yaml)" --plot docs/images/frontier.png --also real-80.json

Without ``--run``, ``--plot`` draws the ``--also`` files alone (measured
before, by runs like the above), in the order given:

    python studies/cost_split.py --plot docs/images/frontier.png --also default.json real-80.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from _common import OtherLoad, finished_run, header, quiet_tensorflow, wait_for_idle

quiet_tensorflow()

from carmask.masks import rle  # noqa: E402
from carmask.masks.dice import dice  # noqa: E402
from carmask.masks.images import load_image, load_image_sizes, load_mask  # noqa: E402
from carmask.masks.probability_maps import read_probabilities  # noqa: E402
from carmask.masks.refine import BAND, METHODS, load_gray, load_rgb, refined_mask  # noqa: E402
from carmask.masks.block_rle import mean_mask_rle  # noqa: E402
from carmask.masks.upsample import mean_mask, pixels_between  # noqa: E402
from carmask.network import inference, runtime  # noqa: E402
from carmask.network.refiner import Refiner  # noqa: E402
from carmask.network.spec import TTA_MODES, TTA_SCALE, Architecture, Prediction  # noqa: E402
from carmask.planning.settings import resolve_batch_size, resolve_precision  # noqa: E402

TEST_PHOTOS = 100_064
CORES = 2
MERGE_S = 32.0  # the merge of 100,064 rows: the slowest measured (2026-12-01, Xeon; docs/performance.md)
SHARES = (0.0, 0.1, 0.25, 0.5, 1.0)
DECODE = "decode at model size (draft + resize, as predict)"
DECODE_BOTH = "both scale-view sizes, one decode (as predict)"
#: The encode part of each refinement, by ``inference.refine``.
ENCODE = {"none": "encode: RLE of the bilinear cut, from its blocks (as the stage)",
          "guided": "encode with refine: guided (brightness decode + filter + RLE)",
          "learned": "encode with refine: learned (colour decode + network on the band + RLE)"}


def projected_minutes(ms_per_photo: float) -> float:
    """Projected minutes for the whole test set: every photo's predict + encode spread over the cores, then the merge."""
    return (TEST_PHOTOS * ms_per_photo / 1e3 / CORES + MERGE_S) / 60


def per_photo_ms(fn: Callable[[], object], photos: int, repeat: int) -> float:
    """Median over ``repeat`` calls of ``fn`` (after one warm-up call), in ms per photo."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) / photos * 1e3


def decode_costs(paths: list[str], size: tuple[int, int], second: tuple[int, int], channels: int) -> dict[str, float]:
    mode = "L" if channels == 1 else "RGB"

    def draft_only() -> None:
        for p in paths:
            with Image.open(p) as img:
                img.draft(mode, (size[1], size[0]))
                img.convert(mode)

    def full_then_resize() -> None:
        for p in paths:
            with Image.open(p) as img:
                img.convert(mode).resize((size[1], size[0]), Image.BILINEAR)

    n = len(paths)
    return {
        DECODE: per_photo_ms(lambda: [load_image(p, size, channels) for p in paths], n, 3),
        "floor: the draft decode alone": per_photo_ms(draft_only, n, 3),
        "full-size decode + resize (no draft)": per_photo_ms(full_then_resize, n, 3),
        "both scale-view sizes, two decodes": per_photo_ms(
            lambda: [(load_image(p, size, channels), load_image(p, second, channels)) for p in paths], n, 3),
        DECODE_BOTH: per_photo_ms(
            lambda: [load_image_sizes(p, [size, second], channels) for p in paths], n, 3),
    }


def forward_costs(model_path: str, spec: Architecture, precision: str, batch: int, repeat: int) -> dict[str, float]:
    """ms per photo of the compiled views alone, on one fixed batch."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((batch, *spec.size, spec.channels), dtype=np.float32))
    larger = tf.constant(rng.random((batch, *spec.scaled(TTA_SCALE).size, spec.channels), dtype=np.float32))
    out = {}
    variants = [(tta, precision, True) for tta in TTA_MODES] + [("none", precision, False), ("none", "float32", True)]
    for tta, prec, fold in variants:
        how = Prediction(batch_size=batch, tta=tta, precision=prec, fold=fold)
        infer = inference.view_averager(inference.load_for_inference(model_path, spec, how), spec.size, how)
        arg = (x, larger) if how.views[1] else x
        label = f"forward, tta {tta}, {prec}{'' if fold else ', BatchNorm not folded'}"
        out[label] = per_photo_ms(lambda: infer(arg).numpy(), batch, repeat)
    return out


def tflite_cost(model_path: str, spec: Architecture, batch: int, repeat: int) -> tuple[str, float]:
    """ms per photo of the exported float32 TFLite model (XNNPACK, one thread), tta none."""
    import tensorflow as tf

    from carmask.network.export import TFLITE, export_model

    with tempfile.TemporaryDirectory() as tmp:
        export_model(model_path, Path(tmp) / "export", spec)
        interp = tf.lite.Interpreter(model_path=str(Path(tmp) / "export" / TFLITE), num_threads=1)
    inp = interp.get_input_details()[0]["index"]
    interp.resize_tensor_input(inp, [batch, *spec.size, spec.channels])
    interp.allocate_tensors()
    interp.set_tensor(inp, np.random.default_rng(0).random((batch, *spec.size, spec.channels), dtype=np.float32))
    return "forward, tta none, float32 TFLite (XNNPACK)", per_photo_ms(interp.invoke, batch, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a finished workflow directory (without it: only --plot the --also files)")
    parser.add_argument("--configfile", nargs="+", help="its config files, in --configfile order")
    parser.add_argument("--photos", type=int, default=64, help="validation photos timed per part (Dice uses all)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--label", default="", help="the recipe's name in the plot (default: the model's)")
    parser.add_argument("--plot", type=Path, help="draw the frontier here (PNG)")
    parser.add_argument("--also", nargs="*", type=Path, default=[], help="--json files of other recipes, drawn beside it")
    args = parser.parse_args()

    if args.run is None:
        if not (args.plot and args.also):
            parser.error("without --run, give --plot and the --also files to draw")
        plot([json.loads(p.read_text()) for p in args.also], args.plot)
        return
    if not args.configfile:
        parser.error("--run needs the --configfile files it ran with")
    header("a test photo's cost, part by part, and the Dice/time frontier")
    config, val = finished_run(args.run, args.configfile)
    name = config["submission_model"]
    spec = Architecture.from_config(config["models"][name])
    model_path = str(args.run / "results" / "models" / name / "model.keras")
    precision = resolve_precision(config["inference"]["precision"])
    batch = resolve_batch_size(config["inference"]["batch_size"], precision, spec.size)
    threshold = float(config["inference"]["threshold"]) if config["inference"]["threshold"] != "auto" else 0.5
    runtime.configure(1)
    refiner_path = args.run / "results" / "models" / name / "refiner.keras"
    refiner = Refiner.load(refiner_path) if refiner_path.is_file() else None
    methods = [how for how in METHODS if how != "learned" or refiner is not None]
    paths = val["image_path"].tolist()[: args.photos]
    second = spec.scaled(TTA_SCALE).size
    print(f"model {name} at {spec.size[0]}x{spec.size[1]} from {args.run}; {precision}, batch {batch}, one thread; "
          f"{len(paths)} photos timed, {len(val)} scored; threshold {threshold}")
    wait_for_idle()
    figures: dict[str, float] = {}
    with OtherLoad() as load:
        figures |= decode_costs(paths, spec.size, second, spec.channels)
        figures |= forward_costs(model_path, spec, precision, batch, args.repeat)
        label, ms = tflite_cost(model_path, spec, batch, args.repeat)
        figures[label] = ms
    print(f"  parts timed (other load {load.share:.0%})", flush=True)

    # Predict as the stage runs it, every TTA mode, over all validation photos.
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        maps: dict[str, dict[str, np.ndarray]] = {}
        for tta in TTA_MODES:
            how = Prediction(batch_size=batch, tta=tta, precision=precision)
            out = Path(tmp) / f"{tta}.parquet"
            models = inference.load_for_inference(model_path, spec, how)
            with OtherLoad() as load:
                rate = inference.write_probabilities(models, val, out, spec, how)
            maps[tta] = dict(read_probabilities(out))
            figures[f"predict as the stage, tta {tta}"] = 1e3 / rate
            print(f"  predicted tta {tta}: {rate:.1f} images/s (other load {load.share:.0%})", flush=True)

    # Encode, refine and Dice per photo, per mode.
    truth = {img: load_mask(p) for img, p in zip(val["img"], val["mask_path"])}
    photo = dict(zip(val["img"], val["image_path"]))
    scores: dict[tuple[str, str], dict[str, float]] = {}
    timed = set(val["img"].tolist()[: args.photos])
    encode_ms: dict[str, list[float]] = {how: [] for how in methods}
    rle_ms = []
    for tta in TTA_MODES:
        for how in methods:
            per: dict[str, float] = {}
            for img, probs in maps[tta].items():
                size = truth[img].shape
                start = time.perf_counter()
                if how == "guided":
                    rle.encode(mask := refined_mask([probs], [1.0], load_gray(photo[img]), threshold))
                elif how == "learned":
                    rle.encode(mask := refiner.mask([probs], [1.0], load_rgb(photo[img], size), threshold))
                else:
                    mean_mask_rle([probs], [1.0], size, threshold)  # as the stage: no full-size mask drawn
                end = time.perf_counter()
                if how == "none":
                    mask = mean_mask([probs], [1.0], size, threshold)
                    middle = time.perf_counter()
                    rle.encode(mask)
                    rle_end = time.perf_counter()
                if tta == "none" and img in timed:
                    encode_ms[how].append((end - start) * 1e3)
                    if how == "none":
                        rle_ms.append((rle_end - middle) * 1e3)
                per[img] = dice(mask, truth[img])
            scores[tta, how] = per
    # What any refinement of the band could reach: every band pixel decided right.
    oracle = {}
    for tta in TTA_MODES:
        per = []
        for img, probs in maps[tta].items():
            mask, flat, value = pixels_between([probs], [1.0], truth[img].shape, 255 * BAND[0], 255 * BAND[1])
            mask.reshape(-1)[flat] = value > 255 * threshold
            band = flat[(value > 255 * BAND[0]) & (value < 255 * BAND[1])]
            mask.reshape(-1)[band] = truth[img].reshape(-1)[band]
            per.append(dice(mask, truth[img]))
        oracle[tta] = float(np.mean(per))
    figures["floor: RLE of the finished mask"] = statistics.median(rle_ms)
    for how in methods:
        figures[ENCODE[how]] = statistics.median(encode_ms[how])

    cars = val.set_index("img")["car"]
    for tta in TTA_MODES:
        for how in methods:
            per = scores[tta, how]
            by_car = {}
            for img, d in per.items():
                by_car.setdefault(cars[img], []).append(d)
            per_photo = figures[f"predict as the stage, tta {tta}"] + figures[ENCODE[how]]
            rows.append({"tta": tta, "refine": how, "dice": float(np.mean(list(per.values()))),
                         "worst_car": float(min(np.mean(v) for v in by_car.values())), "ms_per_photo": per_photo,
                         "test_set_min": projected_minutes(per_photo)})

    # flip_scale only where the none pass is uncertain: widest band first.
    band = {img: float(np.mean((p > 255 * BAND[0]) & (p < 255 * BAND[1]))) for img, p in maps["none"].items()}
    order = sorted(band, key=band.get, reverse=True)
    mixed = []
    for share in SHARES:
        redo = set(order[: round(share * len(order))])
        for how in methods:
            d = np.mean([scores["flip_scale" if img in redo else "none", how][img] for img in order])
            ms = (figures["predict as the stage, tta none"] + share * figures["predict as the stage, tta flip_scale"]
                  + figures[ENCODE[how]])
            mixed.append({"share_redone": share, "refine": how, "dice": float(d), "ms_per_photo": ms,
                          "test_set_min": projected_minutes(ms)})

    print(f"\n{'part':<66} {'ms/photo':>9}")
    for label, ms in figures.items():
        print(f"{label:<66} {ms:>9.2f}")
    for tta in TTA_MODES:
        parts = figures[DECODE] + figures[f"forward, tta {tta}, {precision}"]
        if TTA_MODES[tta][1]:
            parts += figures[DECODE_BOTH] - figures[DECODE]
        print(f"predict, tta {tta}: as the stage / sum of its parts = {figures[f'predict as the stage, tta {tta}'] / parts:.2f}")
    print(f"\n{'tta':<11} {'refine':<7} {'Dice':>8} {'worst car':>10} {'ms/photo':>9} {'test set, min':>14}")
    for r in rows:
        print(f"{r['tta']:<11} {r['refine']:<7} {r['dice']:>8.5f} {r['worst_car']:>10.4f} {r['ms_per_photo']:>9.1f} {r['test_set_min']:>14.1f}")
    print("\nevery band pixel decided right (the most a refinement of the band can reach): "
          + ", ".join(f"tta {tta} {d:.5f}" for tta, d in oracle.items()))
    print(f"\nflip_scale redone on the most uncertain photos (band {BAND[0]}..{BAND[1]} at model size)")
    print(f"{'share':>6} {'refine':<7} {'Dice':>8} {'ms/photo':>9} {'test set, min':>14}")
    for r in mixed:
        print(f"{r['share_redone']:>6.2f} {r['refine']:<7} {r['dice']:>8.5f} {r['ms_per_photo']:>9.1f} {r['test_set_min']:>14.1f}")
    result = {"label": args.label or f"{name} {spec.size[0]}x{spec.size[1]}", "parts_ms": figures,
              "frontier": rows, "uncertain_only": mixed, "band_oracle": oracle}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    if args.plot:
        plot([result, *(json.loads(p.read_text()) for p in args.also)], args.plot)


def plot(results: list[dict], path: Path) -> None:
    """Validation Dice against the projected test-set minutes: one marker per TTA mode and refinement."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10.5, 4.5))
    for result, colour in zip(results, ("tab:blue", "tab:orange", "tab:green")):
        for how, marker in (("none", "o"), ("guided", "s"), ("learned", "^")):
            rows = [r for r in result["frontier"] if r["refine"] == how]
            if not rows:
                continue
            ax.plot([r["test_set_min"] for r in rows], [r["dice"] for r in rows], marker, color=colour,
                    fillstyle="none" if how == "none" else "full",
                    label=f"{result['label']}, refine {how}")
            for r in rows:
                ax.annotate(r["tta"], (r["test_set_min"], r["dice"]), fontsize=7, xytext=(4, -3), textcoords="offset points")
        mixed = [r for r in result["uncertain_only"] if r["refine"] == "guided"]
        ax.plot([r["test_set_min"] for r in mixed], [r["dice"] for r in mixed], ":", color=colour,
                label=f"{result['label']}, refined, flip_scale only on the most uncertain photos")
    ax.axvline(20, color="grey", linewidth=0.8)
    ax.margins(x=0.1)  # room for the labels of the last points
    ax.set_xscale("log")  # 17 minutes to several hours
    ax.set_xlabel("100,064 test photos on 2 cores, minutes (projected, log scale)")
    ax.set_ylabel("validation Dice, full size")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # beside the axes: no point hidden
    fig.tight_layout()
    fig.savefig(path, dpi=90, bbox_inches="tight")


if __name__ == "__main__":
    main()
