"""The predict stage, four layouts in the same run: images/s on the whole machine and full-size Dice.

Predicts the same real photos with a trained model four ways, each as the
workflow's jobs would, in fresh processes (model load and tracing included):

- ``baseline``: float32, ``batch_size`` 8, one predict job at a time with
  2 TensorFlow threads, shards one after the other;
- ``unfolded``: ``precision: auto`` (bf16 on CPUs with AMX/AVX-512 BF16),
  ``batch_size: auto`` (32 photos in bf16; in float32 32 photos' worth of
  96x144 pixels), one thread per job, as many concurrent jobs as cores;
- ``default``: the same with every BatchNorm folded into its convolution
  (:mod:`carmask.network.folding`), as the predict rule runs;
- ``batch 32``: the default at a fixed 32 photos per batch (what ``auto``
  changes in float32 for inputs larger than 96x144);
- ``2-thread``: the default's settings in one job at a time with 2
  TensorFlow threads (``snakemake --set-threads predict=2``).

The photos are training photos of the 80 real cars (they have masks): every
output is encoded at full size and scored against the true GIFs, and the
pixels where two layouts' masks differ are counted. Every layout uses the
TTA mode of ``--tta`` (flip by default, as config.yaml).

    python studies/predict_stage.py --model /tmp/carmask-bench-full/workflow/results/models/unet

``--model`` is a trained model's folder (``model.keras``); its block comes
from ``config.yaml`` (or ``--configfile``) under the folder's name.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from _common import ROOT, header, quiet_tensorflow, wait_for_idle

quiet_tensorflow()

from carmask.files import write_parquet  # noqa: E402
from carmask.masks import rle  # noqa: E402
from carmask.masks.dice import dice  # noqa: E402
from carmask.masks.images import load_mask  # noqa: E402
from carmask.planning.settings import resolve_batch_size, resolve_precision  # noqa: E402
from carmask.stages.encode import encode_shard  # noqa: E402

EIGHTY = ROOT.parent / "shared" / "data" / "carvana-80"
JOB = """
import json, sys
from carmask.logs import setup
setup()
from carmask.network.inference import predict_shard
from carmask.network.spec import Architecture, Prediction
a = json.loads(sys.argv[1])
how = Prediction(batch_size=a["batch_size"], tta=a["tta"], precision=a["precision"], fold=a["fold"])
predict_shard(a["model"], a["items"], a["out"], Architecture.from_config(a["block"]), how,
              shard=a["shard"], shards=a["shards"], threads=a["threads"])
"""
LAYOUTS = {
    "baseline": {"precision": "float32", "batch_size": 8, "threads": 2, "concurrent": 1, "fold": False},
    "unfolded": {"precision": "auto", "batch_size": "auto", "threads": 1, "concurrent": 0, "fold": False},  # 0: a job per core
    "default": {"precision": "auto", "batch_size": "auto", "threads": 1, "concurrent": 0, "fold": True},
    "batch 32": {"precision": "auto", "batch_size": 32, "threads": 1, "concurrent": 0, "fold": True},
    "2-thread": {"precision": "auto", "batch_size": "auto", "threads": 2, "concurrent": 1, "fold": True},  # one job at a time
}


def run_stage(layout: dict, model: Path, block: dict, items: Path, out: Path, shards: int, tta: str) -> tuple[float, int]:
    """Predict every shard as workflow jobs would (``concurrent`` at a time); return the wall seconds and the batch size.

    ``block`` is the model's config block; each job builds its settings from
    it, with the layout's precision and batch size resolved here, once, as
    the workflow resolves ``auto`` when it plans.
    """
    concurrent = layout["concurrent"] or os.cpu_count() or 1
    precision = resolve_precision(layout["precision"])
    batch_size = resolve_batch_size(layout["batch_size"], precision, (block["input_height"], block["input_width"]))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    pending = list(range(shards))
    running: list[subprocess.Popen] = []
    start = time.perf_counter()
    while pending or running:
        while pending and len(running) < concurrent:
            shard = pending.pop(0)
            args = {"model": str(model), "items": str(items), "out": str(out / f"shard-{shard}.parquet"), "block": block,
                    "shard": shard, "shards": shards, "batch_size": batch_size, "threads": layout["threads"],
                    "precision": precision, "fold": layout["fold"], "tta": tta}
            running.append(subprocess.Popen([sys.executable, "-c", JOB, json.dumps(args)], env=env,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
        time.sleep(0.05)
        for proc in [p for p in running if p.poll() is not None]:
            running.remove(proc)
            if proc.returncode:
                raise SystemExit(f"a predict job failed:\n{proc.stderr.read()[-3000:]}")
    return time.perf_counter() - start, batch_size


def masks(out: Path, items: Path, shards: int) -> dict[str, str]:
    """Full-size RLE per photo from a stage's prediction shards (threshold 0.5)."""
    codes = {}
    for shard in range(shards):
        encode_shard([str(out / f"shard-{shard}.parquet")], [1.0], str(items), str(out / f"rle-{shard}.parquet"), 0.5)
        table = pd.read_parquet(out / f"rle-{shard}.parquet")
        codes.update(zip(table["img"], table["rle_mask"]))
    return codes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="a trained model's folder (results/models/<name>)")
    parser.add_argument("--configfile", nargs="+", default=["config.yaml"], help="config files holding its block")
    parser.add_argument("--photos", type=int, default=1600, help="photos predicted by each layout")
    parser.add_argument("--score", type=int, default=160, help="of those, how many are scored at full size")
    parser.add_argument("--tta", default="flip", help="the TTA mode of every layout")
    args = parser.parse_args()

    header("predict stage: baseline, unfolded, default, batch 32 and 2-thread layouts, same run, whole machine")
    if not (EIGHTY / "train_masks").is_dir():
        print(f"skipped: {EIGHTY} not found (the real photos with masks of ../shared)")
        return
    from snakemake.utils import update_config, validate

    config: dict = {}
    for name in args.configfile:
        update_config(config, yaml.safe_load((ROOT / name).read_text()))
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))  # fills the defaults
    block = dict(config["models"][args.model.name], encoder_weights="none")
    photos = sorted((EIGHTY / "train").glob("*.jpg"))
    chosen = [photos[i % len(photos)] for i in range(args.photos)]
    frame = pd.DataFrame({"img": [f"{i:06d}_{p.name}" for i, p in enumerate(chosen)], "image_path": list(map(str, chosen)),
                          "height": 1280, "width": 1918,
                          "mask_path": [str(EIGHTY / "train_masks" / p.name.replace(".jpg", "_mask.gif")) for p in chosen]})
    shards = 2 * (os.cpu_count() or 1)
    print(f"model {args.model} at {block['input_height']}x{block['input_width']}; {len(frame)} real photos in {shards} shards, "
          f"{args.tta} TTA; {os.cpu_count()} cores")
    wait_for_idle()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        items = Path(tmp) / "items.parquet"
        write_parquet(frame, items)
        for name, layout in LAYOUTS.items():
            out = Path(tmp) / name
            out.mkdir()
            wall, batch = run_stage(layout, args.model / "model.keras", block, items, out, shards, args.tta)
            results[name] = {"wall_s": wall, "batch": batch, "images_per_s": len(frame) / wall, "codes": masks(out, items, shards)}
            print(f"  {name}: {len(frame) / wall:.1f} images/s ({wall:.1f} s)", flush=True)
    scored = frame.iloc[: args.score]
    truth = {img: load_mask(path) for img, path in zip(scored["img"], scored["mask_path"])}
    size = (1280, 1918)
    for name in LAYOUTS:
        decoded = {img: rle.decode(results[name]["codes"][img], size) for img in scored["img"]}
        results[name]["dice"] = float(np.mean([dice(decoded[img], truth[img]) for img in scored["img"]]))
        results[name]["decoded"] = decoded
    def changed(a: str, b: str) -> float:
        return float(np.mean([(results[a]["decoded"][img] != results[b]["decoded"][img]).sum() for img in scored["img"]]))

    base = results["baseline"]["images_per_s"]
    print(f"{'layout':<9} {'precision':<10} {'batch':>6} {'threads/job':>12} {'jobs at once':>13} {'folded':>7} {'images/s':>9} "
          f"{'x baseline':>11} {'Dice (' + str(len(scored)) + ' photos)':>18}")
    for name, layout in LAYOUTS.items():
        r = results[name]
        at_once = layout["concurrent"] or os.cpu_count()
        print(f"{name:<9} {layout['precision']:<10} {r['batch']:>6} {layout['threads']:>12} {at_once:>13} "
              f"{'yes' if layout['fold'] else 'no':>7} {r['images_per_s']:>9.1f} {r['images_per_s'] / base:>10.2f}x {r['dice']:>18.5f}")
    print(f"full-size pixels that differ, per photo of {size[0] * size[1]:,}: baseline/default {changed('baseline', 'default'):.0f}, "
          f"baseline/unfolded {changed('baseline', 'unfolded'):.0f}, unfolded/default {changed('unfolded', 'default'):.0f}, "
          f"batch 32/default {changed('batch 32', 'default'):.0f}")

if __name__ == "__main__":
    main()
