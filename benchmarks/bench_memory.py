"""Peak memory (RSS) of a predict job and an encode job at the default config, by shard size.

Each job runs as its own process, the way Snakemake runs a rule's script:
``carmask.network.inference.predict_shard`` (the submission model of config.yaml or ``--model``,
random weights, saved to a temporary ``.keras`` file; ``inference.batch_size``
and ``tta``, float32; 1 thread, as the predict rule gives) and
``carmask.stages.encode.encode_shard`` (``inference.threshold``), invoked with
``python -c``, on shards of 64 and of 512 full-size photos (hard links to the
demo's 48 photos under unique Kaggle-style names). Peak RSS comes from
``/usr/bin/time -v`` (else from polling the process with psutil).

Target: <= 2 GB per job, and a peak that does not grow with the shard size
(both stages stream). Baseline in the same run: the 64-image shard, and the
floor of each job (the same process importing its modules and, for predict,
loading the model, with no images).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from PIL import Image

from _common import OtherLoad, add_model_argument, default_model, demo_folder, header, load_config, wait_for_idle

from carmask.planning.settings import resolve_batch_size

TARGET_MB = 2048
GNU_TIME = Path("/usr/bin/time")

BUILD = """
import sys, json, keras
from carmask.network.architectures import build_model
from carmask.network.spec import Architecture
keras.utils.set_random_seed(0)
build_model(Architecture.from_config(json.loads(sys.argv[1]))).save(sys.argv[2])
"""
PREDICT = """
import sys, json
from carmask.logs import setup
setup()
from carmask.network.inference import predict_shard
from carmask.network.spec import Architecture, Prediction
a = json.loads(sys.argv[1])
how = Prediction(batch_size=a["batch_size"], tta=a["tta"], precision=a["precision"])
predict_shard(a["model"], a["items"], a["out"], Architecture.from_config(a["block"]), how, threads=a["threads"])
"""
PREDICT_FLOOR = """
import sys, json
from carmask.network.runtime import configure
a = json.loads(sys.argv[1])
configure(a["threads"])
import keras, pandas, pyarrow.parquet
import carmask.network.losses, carmask.network.inference, carmask.network.datasets
keras.models.load_model(a["model"], compile=False)
"""
ENCODE = """
import sys, json
from carmask.logs import setup
setup()
from carmask.stages.encode import encode_shard
a = json.loads(sys.argv[1])
encode_shard([a["pred"]], [1.0], a["items"], a["out"], a["threshold"])
"""
ENCODE_FLOOR = """
import carmask.stages.encode, pandas, pyarrow.parquet
"""


def peak_rss(code: str, args: dict, env: dict) -> tuple[float, float]:
    """(peak RSS in MB, wall seconds) of ``python -c code json(args)``."""
    cmd = [sys.executable, "-c", code, json.dumps(args)]
    start = time.perf_counter()
    if GNU_TIME.exists():
        proc = subprocess.run([str(GNU_TIME), "-v", *cmd], capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"job failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)[1])
        return kb / 1024, wall
    import psutil

    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss + sum(c.memory_info().rss for c in ps.children(recursive=True)))
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"job failed ({proc.returncode}):\n{proc.stderr.read()[-4000:]}")
    return peak / 2**20, wall


def make_shard(tmp: Path, photos: list[Path], n: int) -> Path:
    """n unique hard links (Kaggle-style names) to the photos, and their items table."""
    folder = tmp / f"test-{n}"
    folder.mkdir()
    sizes = {}
    rows = []
    for i in range(n):
        src = photos[i % len(photos)]
        if src not in sizes:
            with Image.open(src) as img:
                sizes[src] = img.size
        name = f"{0xBE0000000000 + i // 16:012x}_{i % 16 + 1:02d}.jpg"
        dst = folder / name
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
        w, h = sizes[src]
        rows.append({"img": name, "image_path": str(dst), "width": w, "height": h})
    items = tmp / f"items-{n}.parquet"
    pd.DataFrame(rows).to_parquet(items, index=False)
    return items


def verdict(mb: float) -> str:
    return "ok" if mb <= TARGET_MB else f"OVER by {mb - TARGET_MB:.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,512",
                        help="shard sizes (images), comma-separated; 6254 is one of Kaggle's 16 test shards (~6 min)")
    add_model_argument(parser)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    header("peak memory of predict and encode jobs")
    cfg = load_config()
    name, mcfg = default_model(cfg, args.model)
    mcfg["encoder_weights"] = "none"
    inf = cfg["inference"]
    batch_size = resolve_batch_size(inf["batch_size"], "float32", (mcfg["input_height"], mcfg["input_width"]))
    print(f"model: {name} at {mcfg['input_height']}x{mcfg['input_width']}x{mcfg['channels']}, batch_size "
          f"{batch_size}, tta {inf['tta']}, threshold {inf['threshold']}; "
          f"measured with {'/usr/bin/time -v' if GNU_TIME.exists() else 'psutil polling'}")
    demo = demo_folder()
    photos = sorted((demo / "train").glob("*.jpg")) + sorted((demo / "test").glob("*.jpg"))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")

    with tempfile.TemporaryDirectory(prefix="bench-mem-", dir=demo.parent) as tmp:
        tmp = Path(tmp)
        model = tmp / "model.keras"
        subprocess.run([sys.executable, "-c", BUILD, json.dumps(mcfg), str(model)], check=True, env=env,
                       capture_output=True)
        shards = {n: make_shard(tmp, photos, n) for n in sizes}
        wait_for_idle()
        with OtherLoad() as load:
            common = {"model": str(model), "block": mcfg, "batch_size": batch_size,
                      "tta": inf["tta"], "precision": "float32", "threads": 1}
            floor_p, _ = peak_rss(PREDICT_FLOOR, common, env)
            floor_e, _ = peak_rss(ENCODE_FLOOR, {}, env)
            results = []
            for n, items in shards.items():
                pred = tmp / f"pred-{n}.parquet"
                p_mb, p_s = peak_rss(PREDICT, dict(common, items=str(items), out=str(pred)), env)
                e_mb, e_s = peak_rss(ENCODE, {"pred": str(pred), "items": str(items), "out": str(tmp / f"rle-{n}.parquet"),
                                              "threshold": float(inf["threshold"])}, env)
                rles = pd.read_parquet(tmp / f"rle-{n}.parquet")
                assert len(rles) == n, f"encode wrote {len(rles)} rows for {n} images"
                results.append((n, p_mb, p_s, e_mb, e_s))

        print(f"floor (no images; predict: imports + model load, encode: imports): predict {floor_p:.0f} MB, encode {floor_e:.0f} MB")
        print(f"{'shard':>6} {'predict peak':>13} {'(wall)':>8} {'encode peak':>12} {'(wall)':>8}")
        for n, p_mb, p_s, e_mb, e_s in results:
            print(f"{n:>6} {p_mb:>10.0f} MB {p_s:>7.1f}s {e_mb:>9.0f} MB {e_s:>7.1f}s   "
                  f"[target <= {TARGET_MB} MB: predict {verdict(p_mb)}, encode {verdict(e_mb)}]")
        (n0, p0, _, e0, _), (n1, p1, _, e1, _) = results[0], results[-1]
        if len(results) > 1:
            print(f"{n1} vs {n0} images: predict peak {p1 / p0:.2f}x ({p1 - p0:+.0f} MB), "
                  f"encode peak {e1 / e0:.2f}x ({e1 - e0:+.0f} MB); above the floor: predict "
                  f"{p0 - floor_p:.0f} -> {p1 - floor_p:.0f} MB, encode {e0 - floor_e:.0f} -> {e1 - floor_e:.0f} MB")
        print(load.line())


if __name__ == "__main__":
    main()
